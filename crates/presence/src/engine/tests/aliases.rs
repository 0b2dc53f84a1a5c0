//! A server's own address as its domain (`EngineConfig::domain_aliases`): presentities written
//! at an alias are the primary domain's users, and the dialog keeps the URIs the subscriber
//! wrote (RFC 3261 §12.1.1, §12.2.1.1).

use super::rfc3903::{PIDF_BUSY, publish};
use super::*;

fn aliased() -> Harness {
    Harness::with(EngineConfig {
        local_domains: vec!["example.test".to_owned(), "other.test".to_owned()],
        domain_aliases: vec!["192.0.2.1".to_owned(), "[2001:db8::1]".to_owned()],
        ..EngineConfig::default()
    })
}

#[test]
fn alias_target_is_the_first_local_domain() {
    let c = EngineConfig {
        local_domains: vec!["example.test".to_owned()],
        domain_aliases: vec!["192.0.2.1".to_owned(), "2001:db8::1".to_owned()],
        ..EngineConfig::default()
    };
    assert_eq!(c.alias_target("192.0.2.1"), Some("example.test"));
    assert_eq!(c.alias_target("[2001:DB8::1]"), Some("example.test"));
    assert_eq!(c.alias_target("192.0.2.2"), None);
    assert_eq!(
        c.alias_target("example.test"),
        None,
        "a domain, not an alias"
    );
    let open = EngineConfig {
        domain_aliases: c.domain_aliases,
        ..EngineConfig::default()
    };
    assert_eq!(open.alias_target("192.0.2.1"), None, "no primary domain");
}

/// RFC 3856 §6.1 with the presentity written at the server's address: the subscription
/// watches carol@example.test, whose PUBLISH reaches it; the NOTIFYs carry the To and From
/// URIs of the SUBSCRIBE as written.
#[test]
fn rfc3856_subscribe_to_a_user_at_an_alias_watches_the_primary_domain_user() {
    let mut h = aliased();
    let flow = h.register("bob@example.test", "bobpc");
    let req = subscribe(
        "bob@192.0.2.1:5060",
        "carol@192.0.2.1",
        "alias1",
        "Event: presence\nAccept: application/pidf+xml\nExpires: 600",
    );
    let r = h.send("bob@example.test", flow, &req);
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    assert!(
        hdr(&n[0].1, "From").is_some_and(|f| f.starts_with("<sip:carol@192.0.2.1>;tag=")),
        "{:?}",
        hdr(&n[0].1, "From")
    );
    assert!(
        hdr(&n[0].1, "To").is_some_and(|t| t.starts_with("<sip:bob@192.0.2.1:5060>;tag=")),
        "{:?}",
        hdr(&n[0].1, "To")
    );
    let body = text(n[0].1.body());
    assert!(body.contains("<basic>closed</basic>"), "{body}");

    let r = h.send(
        "carol@example.test",
        7,
        &publish(1, "Expires: 600", Some(PIDF_BUSY)),
    );
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    assert_eq!(
        n.len(),
        1,
        "carol's PUBLISH reaches the watcher of carol@192.0.2.1"
    );
    let body = text(n[0].1.body());
    assert!(body.contains("busy/>"), "{body}");
    assert!(
        body.contains(r#"entity="sip:carol@example.test""#),
        "{body}"
    );
    assert!(
        hdr(&n[0].1, "From").is_some_and(|f| f.starts_with("<sip:carol@192.0.2.1>;tag=")),
        "every NOTIFY of the dialog"
    );
}

/// Canonical URIs keep the canonical dialog URIs (nothing extra stored or sent).
#[test]
fn rfc3261_section_12_2_1_1_canonical_subscriptions_notify_with_the_canonical_uris() {
    let mut h = aliased();
    let flow = h.register("bob@example.test", "bobpc");
    let req = subscribe(
        "bob@example.test",
        "carol@EXAMPLE.test",
        "canon1",
        "Event: presence\nAccept: application/pidf+xml\nExpires: 600",
    );
    assert_eq!(h.send("bob@example.test", flow, &req).status(), 200);
    let n = h.deliver();
    assert!(hdr(&n[0].1, "From").is_some_and(|f| f.starts_with("<sip:carol@example.test>;tag=")));
    assert!(hdr(&n[0].1, "To").is_some_and(|t| t.starts_with("<sip:bob@example.test>;tag=")));
}

/// RFC 3903: a PUBLISH to the publisher's own address written at an alias is its own.
#[test]
fn rfc3903_publish_at_an_alias_is_the_publishers_own() {
    let mut h = aliased();
    let t = publish(1, "Expires: 600", Some(PIDF_BUSY)).replace(
        "PUBLISH sip:carol@example.test",
        "PUBLISH sip:carol@[2001:db8::1]",
    );
    assert_eq!(h.send("carol@example.test", 7, &t).status(), 200);
    let report = h
        .engine
        .report(h.now, &aor("carol@example.test"))
        .expect("carol is known");
    assert_eq!(report.availability, crate::availability::Availability::BUSY);
}

/// Another address is another domain: 404, as before.
#[test]
fn rfc3856_a_user_at_an_address_that_is_not_ours_is_not_found() {
    let mut h = aliased();
    let flow = h.register("bob@example.test", "bobpc");
    let req = subscribe(
        "bob@example.test",
        "carol@192.0.2.99",
        "far1",
        "Event: presence\nAccept: application/pidf+xml\nExpires: 600",
    );
    assert_eq!(h.send("bob@example.test", flow, &req).status(), 404);
}
