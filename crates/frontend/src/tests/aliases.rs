//! The server's own addresses and configured aliases as its domain (RFC 3261 §10.3 step 1,
//! §16.4: a request addressed to the server itself is for the domain it serves), as
//! Kamailio's `alias` does: a user at `192.0.2.1` is the primary domain's user.

use super::*;

/// The server's address in these tests.
const SELF_IP: &str = "192.0.2.1";

fn aliased() -> FrontendConfig {
    let mut c = config();
    c.domain_aliases = vec![SELF_IP.into(), "[2001:db8::1]".into(), "pbx.local".into()];
    c
}

#[test]
fn domain_of_maps_served_domains_to_themselves_and_aliases_to_the_primary_domain() {
    let mut c = aliased();
    c.domains.push("other.test".into());
    assert_eq!(c.domain_of(DOMAIN), Some(DOMAIN));
    assert_eq!(c.domain_of("EXAMPLE.test."), Some(DOMAIN));
    assert_eq!(c.domain_of("other.test"), Some("other.test"));
    assert_eq!(c.domain_of(SELF_IP), Some(DOMAIN));
    assert_eq!(c.domain_of("PBX.Local"), Some(DOMAIN));
    // IPv6 as a URI writes it (brackets) or as a listener prints it (none).
    assert_eq!(c.domain_of("[2001:DB8::1]"), Some(DOMAIN));
    assert_eq!(c.domain_of("2001:db8::1"), Some(DOMAIN));
    assert_eq!(c.domain_of("192.0.2.2"), None);
    assert_eq!(c.domain_of(FOREIGN), None);
    assert_eq!(config().domain_of(SELF_IP), None, "no aliases configured");
}

/// A client registering `sip:alice@192.0.2.1` (Request-URI `sip:192.0.2.1`) is alice of the
/// primary domain: challenged in its realm, and the binding lands on `alice@example.test`.
#[test]
fn rfc3261_section_10_3_step_1_register_at_an_alias_binds_the_primary_domain_user() {
    let mut h = Harness::with_config(aliased());
    let mut req = Req::register("alice");
    req.uri = format!("sip:{SELF_IP}");
    req.from = format!("<sip:alice@{SELF_IP}>;tag=reg-alias");
    req.to = format!("<sip:alice@{SELF_IP}>");
    let (challenge, ok) =
        h.register_with_auth(ALICE, &req, "alice", ALICE_PASSWORD, Algorithm::Sha256);
    assert!(
        challenge
            .all(HeaderName::WwwAuthenticate)
            .iter()
            .all(|c| c.contains(&format!("realm=\"{DOMAIN}\""))),
        "{}",
        challenge.text()
    );
    assert_eq!(ok.status(), 200, "{}", ok.text());
    let alice = herald_registrar::Aor::parse(&format!("alice@{DOMAIN}")).expect("valid AOR");
    assert_eq!(h.fe.registrar().bindings(&alice).count(), 1);
}

/// Without the alias the same To names a domain that is not ours: 403, before a challenge.
#[test]
fn rfc3261_section_10_3_step_1_register_at_an_unaliased_address_is_refused() {
    let mut h = Harness::new();
    let mut req = Req::register("alice");
    req.uri = format!("sip:{SELF_IP}");
    req.to = format!("<sip:alice@{SELF_IP}>");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 403, "{}", sent.text());
    assert!(h.lookups.is_empty());
}

/// Credentials for alice do not register bob's address written at an alias.
#[test]
fn rfc3261_section_10_3_step_3_an_alias_does_not_widen_who_may_register_what() {
    let mut h = Harness::with_config(aliased());
    let mut req = Req::register("bob");
    req.uri = format!("sip:{SELF_IP}");
    req.to = format!("<sip:bob@{SELF_IP}>");
    let (_, answer) = h.register_with_auth(ALICE, &req, "alice", ALICE_PASSWORD, Algorithm::Sha256);
    assert_eq!(answer.status(), 403, "{}", answer.text());
}

/// From a trusted network the user is the one From names: `sip:bob@192.0.2.1` is
/// `bob@example.test` when the address is an alias, and nobody (404) when it is not.
#[test]
fn trusted_requests_from_an_alias_are_the_primary_domain_user() {
    let trusted = |aliases: bool| {
        let mut c = if aliases { aliased() } else { config() };
        c.presence = true;
        c.trusted_networks = vec!["192.0.2.0/24".parse().expect("a network")];
        c
    };
    let mut req = Req::new("PUBLISH", &format!("sip:bob@{SELF_IP}"))
        .header("Event", "presence")
        .header("Expires", "60");
    req.from = format!("<sip:bob@{SELF_IP}:5060>;tag=pub-1");
    req.to = format!("<sip:bob@{SELF_IP}>");

    let mut h = Harness::with_config(trusted(true));
    assert!(
        h.udp(ALICE, &req.text()).is_empty(),
        "handed on, not answered"
    );
    let bob = Aor::parse(&format!("bob@{DOMAIN}")).expect("valid AOR");
    assert_eq!(h.lookups, std::slice::from_ref(&bob));
    match h.fe.poll_event() {
        Some(FrontendEvent::Service(s)) => assert_eq!(s.user.to_string(), bob.to_string()),
        other => panic!("expected the request for the presence service, got {other:?}"),
    }

    let mut h = Harness::with_config(trusted(false));
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 404, "{}", sent.text());
}
