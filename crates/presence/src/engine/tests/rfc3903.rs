//! RFC 3903 event state publication with PIDF (RFC 3863) and RPID (RFC 4480).

use std::time::Duration;

use super::*;
use crate::availability::Availability;

pub(super) const PIDF_BUSY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:carol@example.test">
<tuple id="t1"><status><basic>open</basic></status></tuple>
<dm:person id="p1"><rpid:activities><rpid:busy/></rpid:activities></dm:person>
<note>In the lab</note>
</presence>"#;

pub(super) const PIDF_OPEN: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:carol@example.test"><tuple id="t1"><status><basic>open</basic></status></tuple></presence>"#;

pub(super) const PIDF_AWAY: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:carol@example.test"><tuple id="t1"><status><basic>open</basic></status></tuple><dm:person id="p"><rpid:activities><rpid:away/></rpid:activities></dm:person></presence>"#;

/// A PUBLISH from carol; `extra` adds headers, `body` a PIDF body.
pub(super) fn publish(cseq: u32, extra: &str, body: Option<&str>) -> String {
    let head = format!(
        "PUBLISH sip:carol@example.test SIP/2.0
Via: SIP/2.0/TCP 10.0.0.3:5060;branch=z9hG4bKp{cseq}
Max-Forwards: 70
From: <sip:carol@example.test>;tag=pub
To: <sip:carol@example.test>
Call-ID: publish-carol
CSeq: {cseq} PUBLISH
Event: presence
{extra}"
    );
    let head: Vec<&str> = head.lines().filter(|l| !l.trim().is_empty()).collect();
    let head = head.join("\n");
    match body {
        Some(b) => format!("{head}\nContent-Type: application/pidf+xml\n\n{b}"),
        None => head,
    }
}

fn etag(r: &Response) -> String {
    rhdr(r, "SIP-ETag").expect("SIP-ETag").to_owned()
}

/// Bob watches carol with PIDF; returns the NOTIFY bodies seen so far.
fn watch_carol(h: &mut Harness) -> u32 {
    let flow = h.register("bob@example.test", "bobpc");
    let r = h.send(
        "bob@example.test",
        flow,
        &subscribe(
            "bob@example.test",
            "carol@example.test",
            "w1",
            "Event: presence\nAccept: application/pidf+xml\nExpires: 3600",
        ),
    );
    assert_eq!(r.status(), 200);
    h.deliver();
    flow
}

fn state_of(h: &mut Harness) -> Availability {
    h.engine
        .report(h.now, &aor("carol@example.test"))
        .map_or(Availability::OFFLINE, |r| r.availability)
}

#[test]
fn rfc3903_section_6_initial_publish_gets_etag_and_expires() {
    let mut h = Harness::new();
    let r = h.send(
        "carol@example.test",
        7,
        &publish(1, "Expires: 120", Some(PIDF_BUSY)),
    );
    assert_eq!(r.status(), 200);
    assert!(!etag(&r).is_empty());
    assert_eq!(rhdr(&r, "Expires"), Some("120"));
    assert_eq!(state_of(&mut h), Availability::BUSY);
}

#[test]
fn rfc3903_section_6_step_2_unknown_event_package_is_489() {
    let mut h = Harness::new();
    let t = publish(1, "", Some(PIDF_OPEN)).replace("Event: presence", "Event: dialog");
    let r = h.send("carol@example.test", 7, &t);
    assert_eq!(r.status(), 489);
    assert!(rhdr(&r, "Allow-Events").is_some_and(|v| v.contains("presence")));
    let t = publish(1, "", Some(PIDF_OPEN)).replace("Event: presence\n", "");
    assert_eq!(h.send("carol@example.test", 7, &t).status(), 489);
}

#[test]
fn rfc3903_section_6_step_3_unknown_entity_tag_is_412() {
    let mut h = Harness::new();
    let r = h.send(
        "carol@example.test",
        7,
        &publish(1, "SIP-If-Match: nope", None),
    );
    assert_eq!(r.status(), 412);
    let r = h.send(
        "carol@example.test",
        7,
        &publish(2, "SIP-If-Match: a, b", None),
    );
    assert_eq!(r.status(), 400, "more than one entity-tag");
}

#[test]
fn rfc3903_section_6_step_4_too_brief_expiry_is_423_with_min_expires() {
    let mut h = Harness::new();
    let r = h.send(
        "carol@example.test",
        7,
        &publish(1, "Expires: 5", Some(PIDF_OPEN)),
    );
    assert_eq!(r.status(), 423);
    assert_eq!(rhdr(&r, "Min-Expires"), Some("60"));
    let r = h.send(
        "carol@example.test",
        7,
        &publish(2, "Expires: 999999", Some(PIDF_OPEN)),
    );
    assert_eq!(rhdr(&r, "Expires"), Some("86400"), "clamped to the maximum");
}

#[test]
fn rfc3903_section_6_step_5_unsupported_or_malformed_bodies() {
    let mut h = Harness::new();
    let t = publish(1, "", Some(PIDF_OPEN)).replace("application/pidf+xml", "text/plain");
    let r = h.send("carol@example.test", 7, &t);
    assert_eq!(r.status(), 415);
    assert_eq!(rhdr(&r, "Accept"), Some("application/pidf+xml"));
    let r = h.send("carol@example.test", 7, &publish(2, "", Some("<presence")));
    assert_eq!(r.status(), 400);
    let r = h.send("carol@example.test", 7, &publish(3, "", None));
    assert_eq!(r.status(), 400, "an initial PUBLISH needs a body");
    assert_eq!(
        state_of(&mut h),
        Availability::OFFLINE,
        "nothing was stored"
    );
}

#[test]
fn rfc3903_section_6_step_1_only_the_presentity_publishes() {
    let mut h = Harness::new();
    let r = h.send("mallory@example.test", 7, &publish(1, "", Some(PIDF_BUSY)));
    assert_eq!(r.status(), 403);
}

#[test]
fn rfc3903_section_4_2_refresh_modify_remove_and_notifications() {
    let mut h = Harness::new();
    watch_carol(&mut h);
    let r = h.send(
        "carol@example.test",
        7,
        &publish(1, "Expires: 600", Some(PIDF_BUSY)),
    );
    let tag1 = etag(&r);
    let n = h.deliver();
    assert_eq!(n.len(), 1, "the watcher hears the change");
    let body = text(n[0].1.body());
    assert!(
        body.contains("<basic>open</basic>") && body.contains("<rpid:busy/>"),
        "{body}"
    );
    assert!(body.contains("In the lab"));

    // Refresh: new entity-tag, no body, no change for watchers.
    let r = h.send(
        "carol@example.test",
        7,
        &publish(2, &format!("SIP-If-Match: {tag1}\nExpires: 600"), None),
    );
    assert_eq!(r.status(), 200);
    let tag2 = etag(&r);
    assert_ne!(
        tag1, tag2,
        "§6 step 6: a new entity-tag per successful publication"
    );
    assert!(
        h.deliver().is_empty(),
        "a refresh changes nothing watchers see"
    );
    assert_eq!(
        h.send(
            "carol@example.test",
            7,
            &publish(3, &format!("SIP-If-Match: {tag1}"), None)
        )
        .status(),
        412,
        "the old entity-tag is gone"
    );

    // Modify.
    let r = h.send(
        "carol@example.test",
        7,
        &publish(4, &format!("SIP-If-Match: {tag2}"), Some(PIDF_AWAY)),
    );
    let tag3 = etag(&r);
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    assert!(text(n[0].1.body()).contains("<rpid:away/>"));
    assert_eq!(state_of(&mut h), Availability::AWAY);

    // Remove.
    let r = h.send(
        "carol@example.test",
        7,
        &publish(5, &format!("SIP-If-Match: {tag3}\nExpires: 0"), None),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(rhdr(&r, "Expires"), Some("0"));
    let n = h.deliver();
    assert!(text(n[0].1.body()).contains("<basic>closed</basic>"));
    assert_eq!(state_of(&mut h), Availability::OFFLINE);
}

#[test]
fn rfc3903_section_4_1_publication_expires_without_refresh() {
    let mut h = Harness::new();
    watch_carol(&mut h);
    h.send(
        "carol@example.test",
        7,
        &publish(1, "Expires: 60", Some(PIDF_OPEN)),
    );
    assert!(text(h.deliver()[0].1.body()).contains("<basic>open</basic>"));
    h.advance(Duration::from_secs(59));
    assert!(h.deliver().is_empty());
    h.advance(Duration::from_secs(2));
    let n = h.deliver();
    assert_eq!(n.len(), 1, "expiry is a change");
    assert!(text(n[0].1.body()).contains("<basic>closed</basic>"));
}

#[test]
fn rfc3903_pidf_note_and_state_reach_a_lync_watcher_as_categories() {
    let mut h = Harness::new();
    let flow = h.register("bob@example.test", "bobpc");
    h.send(
        "bob@example.test",
        flow,
        &subscribe(
            "bob@example.test",
            "carol@example.test",
            "w2",
            "Event: presence\nAccept: application/msrtc-event-categories+xml\nExpires: 3600",
        ),
    );
    h.deliver();
    h.send("carol@example.test", 7, &publish(1, "", Some(PIDF_BUSY)));
    let n = h.deliver();
    assert_eq!(
        hdr(&n[0].1, "Content-Type"),
        Some("application/msrtc-event-categories+xml")
    );
    let body = text(n[0].1.body());
    assert!(body.contains("<availability>6500</availability>"), "{body}");
    assert!(body.contains("In the lab"));
    assert!(
        !body.contains("container="),
        "containers are not revealed to watchers"
    );
}

/// A signed-in SIMPLE client that publishes `closed` (baresip's `presence_offline`) is shown
/// offline, as Lync's Appear Offline (a manual 18500); `open` again shows it Available. A
/// document with no basic status at all says nothing and leaves the signed-in user Available.
#[test]
fn rfc3863_closed_from_a_signed_in_client_is_appear_offline() {
    let mut h = Harness::new();
    h.register("carol@example.test", "carolpc");
    let closed = PIDF_OPEN.replace("<basic>open</basic>", "<basic>closed</basic>");
    let person_only = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:carol@example.test"><dm:person id="p"/></presence>"#;
    let r = h.send(
        "carol@example.test",
        7,
        &publish(1, "Expires: 600", Some(&closed)),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(state_of(&mut h), Availability::OFFLINE);
    let tag = etag(&r);
    let r = h.send(
        "carol@example.test",
        7,
        &publish(
            2,
            &format!("Expires: 600\nSIP-If-Match: {tag}"),
            Some(PIDF_OPEN),
        ),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(state_of(&mut h), Availability::AVAILABLE);
    let tag = etag(&r);
    let r = h.send(
        "carol@example.test",
        7,
        &publish(
            3,
            &format!("Expires: 600\nSIP-If-Match: {tag}"),
            Some(person_only),
        ),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(state_of(&mut h), Availability::AVAILABLE);
}

/// A watcher of a SIMPLE user who went `closed` gets `closed` (and a Lync watcher 18500).
#[test]
fn rfc3856_watchers_see_a_closed_publication() {
    let mut h = Harness::new();
    watch_carol(&mut h);
    h.register("carol@example.test", "carolpc");
    let n = h.deliver();
    assert!(
        n.iter()
            .any(|(_, r)| text(r.body()).contains("<basic>open</basic>"))
    );
    let closed = PIDF_OPEN.replace("<basic>open</basic>", "<basic>closed</basic>");
    let r = h.send(
        "carol@example.test",
        7,
        &publish(1, "Expires: 600", Some(&closed)),
    );
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    assert!(text(n[0].1.body()).contains("<basic>closed</basic>"));
}
