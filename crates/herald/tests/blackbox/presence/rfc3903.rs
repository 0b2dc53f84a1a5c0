//! RFC 3903 event state publication of PIDF (RFC 3863) with RPID (RFC 4480) activities, through
//! Digest authentication (407, then the authenticated retry).

use herald_sip::HeaderName;

use std::time::{Duration, Instant};

use super::{eventually_report, peer, server, short_server, uri};
use crate::support::presence::{PIDF, assert_answer, pidf};
use crate::support::show;
use crate::support::sip::{header, headers};

fn etag(r: &herald_sip::Response) -> String {
    let tag = r
        .header_str("SIP-ETag")
        .unwrap_or_else(|| panic!("no SIP-ETag in:\n{}", show(r)));
    assert!(!tag.trim().is_empty(), "{}", show(r));
    tag.trim().to_owned()
}

/// §4.1 and §6: the first PUBLISH is challenged (407, RFC 3261 §22.3: PUBLISH is not a
/// registration, so the server authenticates as a proxy would); the answer with credentials
/// gets 200 with a SIP-ETag and the granted Expires, and the state is the user's.
#[test]
fn rfc3903_6_initial_publish_is_challenged_then_gets_etag_and_expires() {
    let s = server();
    let mut p = peer(&s, "pub-initial");
    p.authenticate = false;
    let busy = pidf(
        &uri("pub-initial"),
        "open",
        Some("busy"),
        Some("In the lab"),
    );
    let r = p.publish(Some(&busy), &[("Expires", "120")]);
    assert_answer(&r, 407, "an unauthenticated PUBLISH");
    assert!(
        !headers(&r, "Proxy-Authenticate").is_empty(),
        "{}",
        show(&r)
    );
    assert!(r.header_str("SIP-ETag").is_none(), "{}", show(&r));

    p.authenticate = true;
    let r = p.publish(Some(&busy), &[("Expires", "120")]);
    assert_answer(&r, 200, "the authenticated PUBLISH");
    etag(&r);
    assert_eq!(
        header(&r, HeaderName::Expires).as_deref(),
        Some("120"),
        "{}",
        show(&r)
    );
    eventually_report(&s, "pub-initial", |t| t.contains("Busy"));
}

/// §4.2–§4.4: refresh (SIP-If-Match, no body) gets a new entity-tag and retires the old one;
/// modify replaces the document; remove (Expires: 0) ends the publication.
#[test]
fn rfc3903_4_refresh_modify_and_remove() {
    let s = server();
    let me = uri("pub-cycle");
    let mut p = peer(&s, "pub-cycle");
    let r = p.publish(
        Some(&pidf(&me, "open", Some("busy"), None)),
        &[("Expires", "600")],
    );
    assert_answer(&r, 200, "initial");
    let tag1 = etag(&r);
    eventually_report(&s, "pub-cycle", |t| t.contains("Busy"));

    // §4.2 refresh.
    let r = p.publish(None, &[("SIP-If-Match", &tag1), ("Expires", "900")]);
    assert_answer(&r, 200, "refresh");
    let tag2 = etag(&r);
    assert_ne!(
        tag1, tag2,
        "§6 step 8: every success mints a new entity-tag"
    );
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("900"));
    let r = p.publish(None, &[("SIP-If-Match", &tag1)]);
    assert_answer(&r, 412, "the refreshed-away entity-tag");

    // §4.3 modify.
    let r = p.publish(
        Some(&pidf(&me, "open", Some("away"), None)),
        &[("SIP-If-Match", &tag2)],
    );
    assert_answer(&r, 200, "modify");
    let tag3 = etag(&r);
    eventually_report(&s, "pub-cycle", |t| t.contains("Away"));

    // §4.4 remove.
    let r = p.publish(None, &[("SIP-If-Match", &tag3), ("Expires", "0")]);
    assert_answer(&r, 200, "remove");
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("0"));
    eventually_report(&s, "pub-cycle", |t| t.contains("Offline"));
    let r = p.publish(None, &[("SIP-If-Match", &tag3)]);
    assert_answer(&r, 412, "a removed publication");
}

/// §6 step 3: an entity-tag the server never issued is 412 Conditional Request Failed.
#[test]
fn rfc3903_6_step_3_unknown_entity_tag_is_412() {
    let s = server();
    let mut p = peer(&s, "pub-412");
    let r = p.publish(None, &[("SIP-If-Match", "no-such-etag")]);
    assert_answer(&r, 412, "an unknown entity-tag");
    let r = p.publish(
        Some(&pidf(&uri("pub-412"), "open", None, None)),
        &[("SIP-If-Match", "no-such-etag")],
    );
    assert_answer(&r, 412, "an unknown entity-tag with a body");
}

/// §6 step 2: an event package other than presence is 489 Bad Event with Allow-Events.
#[test]
fn rfc3903_6_step_2_unknown_event_package_is_489() {
    let s = server();
    let me = uri("pub-489");
    let mut p = peer(&s, "pub-489");
    let req = p
        .req("PUBLISH", &me)
        .header("Event", "dialog")
        .header("Content-Type", PIDF)
        .body(&pidf(&me, "open", None, None));
    let r = p.send(req);
    assert_answer(&r, 489, "Event: dialog");
    let allow = headers(&r, "Allow-Events").join(",");
    assert!(allow.contains("presence"), "{}", show(&r));
}

/// §6 step 5: a body of a type the package does not define is 415 with Accept.
#[test]
fn rfc3903_6_step_5_unsupported_content_type_is_415() {
    let s = server();
    let me = uri("pub-415");
    let mut p = peer(&s, "pub-415");
    let req = p
        .req("PUBLISH", &me)
        .header("Event", "presence")
        .header("Content-Type", "text/plain")
        .body("I am busy");
    let r = p.send(req);
    assert_answer(&r, 415, "text/plain");
    assert_eq!(
        header(&r, HeaderName::Accept).as_deref(),
        Some(PIDF),
        "{}",
        show(&r)
    );
}

/// §6 step 5: PIDF that is not well-formed, or not PIDF, is 400 and stores nothing.
#[test]
fn rfc3903_6_step_5_malformed_pidf_is_400() {
    let s = server();
    let mut p = peer(&s, "pub-400");
    let r = p.publish(Some("<presence xmlns=\"urn:ietf:params:xml:ns:pidf\""), &[]);
    assert_answer(&r, 400, "truncated XML");
    let r = p.publish(Some("<html><body>busy</body></html>"), &[]);
    assert_answer(&r, 400, "XML that is not PIDF");
    let r = p.publish(None, &[]);
    assert_answer(&r, 400, "an initial PUBLISH without a body");
    eventually_report(&s, "pub-400", |t| {
        t.contains("Offline") && !t.contains("pidf")
    });
}

/// §6 step 4: a non-zero expiry below the minimum is 423 with Min-Expires; a longer one is
/// granted up to the maximum.
#[test]
fn rfc3903_6_step_4_too_brief_expiry_is_423_with_min_expires() {
    let s = server();
    let me = uri("pub-423");
    let mut p = peer(&s, "pub-423");
    let doc = pidf(&me, "open", None, None);
    let r = p.publish(Some(&doc), &[("Expires", "5")]);
    assert_answer(&r, 423, "Expires: 5");
    assert_eq!(
        header(&r, HeaderName::MinExpires).as_deref(),
        Some("60"),
        "{}",
        show(&r)
    );
    let r = p.publish(Some(&doc), &[("Expires", "9999999")]);
    assert_answer(&r, 200, "a long expiry");
    assert_eq!(
        header(&r, HeaderName::Expires).as_deref(),
        Some("86400"),
        "clamped to the maximum:\n{}",
        show(&r)
    );
}

/// §6 step 1: a user publishes only its own state; another presentity's is 403.
#[test]
fn rfc3903_6_step_1_publishing_another_users_state_is_403() {
    let s = server();
    let victim = uri("pub-victim");
    let mut p = peer(&s, "pub-other");
    let req = p
        .req("PUBLISH", &victim)
        .header("Event", "presence")
        .header("Content-Type", PIDF)
        .body(&pidf(&victim, "open", Some("away"), None));
    let r = p.send(req);
    assert_answer(&r, 403, "PUBLISH for someone else");
    eventually_report(&s, "pub-victim", |t| {
        t.contains("Offline") && !t.contains("pidf")
    });
}

/// §4.1 (soft state): a publication not refreshed in time expires, and watchers hear the
/// presentity fall back to Offline; the same publication refreshed in time lives on.
#[test]
fn rfc3903_4_1_publication_expires_without_refresh() {
    let s = short_server();
    let me = uri("exp-p");
    let mut w = peer(&s, "exp-w");
    let (r, _) = w.subscribe(&me, 600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let n = w.expect_notify();
    assert!(n.body().contains("<basic>closed</basic>"), "{}", n.show());

    let mut p = peer(&s, "exp-p");
    let r = p.publish(
        Some(&pidf(&me, "open", Some("busy"), None)),
        &[("Expires", "3")],
    );
    assert_answer(&r, 200, "PUBLISH for 3 s");
    let published = Instant::now();
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("3"));
    let n = w.expect_notify();
    assert!(n.body().contains("busy/>"), "{}", n.show());
    // Refreshed before it runs out: still there after the first 3 s.
    let tag = etag(&r);
    let r = p.publish(None, &[("SIP-If-Match", &tag), ("Expires", "4")]);
    assert_answer(&r, 200, "refresh for 4 s");
    let refreshed = Instant::now();
    let n = w
        .next_request(Duration::from_secs(10))
        .expect("a NOTIFY when the refreshed publication expires");
    w.reply(&n, 200);
    let lived = n.at - refreshed;
    assert!(
        n.body().contains("<basic>closed</basic>"),
        "expiry is a change to Offline:\n{}",
        n.show()
    );
    assert!(
        lived >= Duration::from_millis(3000) && n.at - published >= Duration::from_secs(3),
        "the refreshed publication expired after {lived:?}"
    );
    println!("a 4 s publication expired after {lived:?}");
    eventually_report(&s, "exp-p", |t| t.contains("Offline"));
}
