//! REGISTER through the whole pipeline (RFC 3261 §10.3) and the registrar's events.

use herald_registrar::RemovalReason;

use super::*;

fn registrar_aor(s: &str) -> herald_registrar::Aor {
    herald_registrar::Aor::parse(s).expect("valid AOR")
}

/// REGISTERs `req` as alice over UDP from her address and returns the final answer.
fn register_alice(h: &mut Harness, req: &Req) -> Sent {
    h.register_with_auth(ALICE, req, "alice", ALICE_PASSWORD, Algorithm::Sha256)
        .1
}

#[test]
fn rfc3261_section_10_3_step_8_200_lists_bindings_with_expires() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let ok = register_alice(&mut h, &req);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_echoes(&req.next(), &ok);
    let default = RegistrarConfig::default().default_expires;
    assert_eq!(
        ok.all(HeaderName::Contact),
        [format!("<sip:alice@192.0.2.10:5060>;expires={default}")]
    );
    assert_eq!(ok.all(HeaderName::Expires), [default.to_string().as_str()]);
    assert_eq!(
        ok.all(HeaderName::AllowEvents),
        ["vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-self,presence"]
    );
    assert_eq!(
        ok.all(HeaderName::Supported),
        ["msrtc-event-categories", "adhoclist"]
    );
    let alice = registrar_aor("alice@example.test");
    assert_eq!(h.fe.registrar().bindings(&alice).count(), 1);
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [
            RegistrarEvent::AorOnline { aor },
            RegistrarEvent::EndpointRegistered { aor: aor2, flow, .. },
        ] if *aor == alice && *aor2 == alice && *flow == TestFlow::Udp(ALICE)),
        "{events:?}"
    );
}

#[test]
fn rfc3261_section_10_3_step_8_contact_params_are_echoed_and_expires_honoured() {
    let mut h = Harness::new();
    let req = Req::register("alice")
        .without("Contact")
        .header(
            "Contact",
            "<sip:alice@192.0.2.10:5060;transport=udp>;q=0.5;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";expires=120",
        )
        .header("Expires", "900");
    let ok = register_alice(&mut h, &req);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(
        ok.all(HeaderName::Contact),
        [
            "<sip:alice@192.0.2.10:5060;transport=udp>;q=0.5;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";expires=120"
        ]
    );
}

/// RFC 3261 §20.10: without angle brackets, the parameters after the URI are header
/// parameters, so `expires=120` is the binding's expiry, not part of the Contact URI.
#[test]
fn rfc3261_section_20_10_addr_spec_contact_parameters_are_header_parameters() {
    let mut h = Harness::new();
    let req = Req::register("alice")
        .without("Contact")
        .header("Contact", "sip:alice@192.0.2.10:5060;expires=120");
    let ok = register_alice(&mut h, &req);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(
        ok.all(HeaderName::Contact),
        ["<sip:alice@192.0.2.10:5060>;expires=120"]
    );
}

#[test]
fn rfc3261_section_10_3_step_7_too_brief_gets_423_with_min_expires() {
    let mut h = Harness::new();
    let min = RegistrarConfig::default().min_expires;
    let req = Req::register("alice").header("Expires", &(min - 1).to_string());
    let sent = register_alice(&mut h, &req);
    assert_eq!(sent.status(), 423, "{}", sent.text());
    assert_eq!(sent.response.reason(), b"Interval Too Brief");
    assert_eq!(sent.all(HeaderName::MinExpires), [min.to_string().as_str()]);
    assert_echoes(&req.next(), &sent);
    assert_eq!(h.fe.registrar().binding_count(), 0);
    assert!(h.events().is_empty());
}

#[test]
fn rfc3261_section_10_3_step_1_foreign_domain_gets_403_before_any_challenge() {
    let mut h = Harness::new();
    let mut req = Req::register("alice");
    req.uri = format!("sip:{FOREIGN}");
    req.to = format!("<sip:alice@{FOREIGN}>");
    req.from = format!("<sip:alice@{FOREIGN}>;tag=f1");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 403, "{}", sent.text());
    assert!(sent.all(HeaderName::WwwAuthenticate).is_empty());
    assert!(sent.header(HeaderName::Warning).is_some());
    assert_echoes(&req, &sent);
    // With credentials too: nothing is looked up.
    let retry = req.next().header(
        "Authorization",
        &format!(
            "Digest username=\"alice\", realm=\"{FOREIGN}\", nonce=\"00\", uri=\"sip:{FOREIGN}\", response=\"{}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c\"",
            "0".repeat(64)
        ),
    );
    assert_eq!(h.udp1(ALICE, &retry.text()).status(), 403);
    assert!(h.lookups.is_empty());
}

/// RFC 3261 §10.3 step 1: "The registrar inspects the Request-URI to determine whether it has
/// access to bindings for the domain identified in the Request-URI." The pipeline only looks at
/// the To domain, so a REGISTER addressed to another domain's registrar is served here.
#[test]
fn rfc3261_section_10_3_step_1_request_uri_of_a_foreign_domain_is_refused() {
    let mut h = Harness::new();
    let mut req = Req::register("alice");
    req.uri = format!("sip:{FOREIGN}");
    let first = h.udp1(ALICE, &req.text());
    // Show where going on with the challenge leads.
    let answer = (first.status() == 401).then(|| {
        let retry = req.next().header(
            "Authorization",
            &credentials(
                &first,
                Algorithm::Sha256,
                "alice",
                ALICE_PASSWORD,
                "REGISTER",
                &req.uri,
                1,
            ),
        );
        h.udp1(ALICE, &retry.text())
    });
    assert_eq!(
        h.fe.registrar().binding_count(),
        0,
        "bound through a REGISTER for another domain:\n{}",
        answer.map(|a| a.text()).unwrap_or_default()
    );
    assert_eq!(first.status(), 403, "{}", first.text());
}

#[test]
fn rfc3261_section_10_3_step_3_registering_another_users_aor_gets_403() {
    let mut h = Harness::new();
    // Bob's credentials, alice's AOR.
    let req = Req::register("alice");
    let (_, sent) = h.register_with_auth(ALICE, &req, "bob", BOB_PASSWORD, Algorithm::Sha256);
    assert_eq!(sent.status(), 403, "{}", sent.text());
    assert!(sent.header(HeaderName::Warning).is_some());
    assert_echoes(&req.next(), &sent);
    assert_eq!(h.fe.registrar().binding_count(), 0);
    assert_eq!(h.lookups, [Aor::parse("bob@example.test").expect("valid")]);
}

#[test]
fn rfc3261_section_10_3_step_5_aor_case_is_canonical() {
    let mut h = Harness::new();
    let mut req = Req::register("alice");
    req.to = "<sip:Alice@Example.TEST>".into();
    let ok = register_alice(&mut h, &req);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(
        h.fe.registrar()
            .bindings(&registrar_aor("alice@example.test"))
            .count(),
        1
    );
}

#[test]
fn rfc3261_section_10_2_2_expires_zero_removes_the_binding() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    assert_eq!(register_alice(&mut h, &req).status(), 200);
    h.events();
    let remove = req.next().next().header("Expires", "0");
    let ok = register_alice(&mut h, &remove);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert!(ok.all(HeaderName::Contact).is_empty(), "{}", ok.text());
    let alice = registrar_aor("alice@example.test");
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [
            RegistrarEvent::EndpointRemoved { reason: RemovalReason::Unregistered, .. },
            RegistrarEvent::AorOffline { aor },
        ] if *aor == alice),
        "{events:?}"
    );
}

#[test]
fn rfc3261_section_10_3_expired_binding_goes_offline_via_handle_timeout() {
    let mut h = Harness::new();
    let min = RegistrarConfig::default().min_expires;
    let req = Req::register("alice").header("Expires", &min.to_string());
    let ok = register_alice(&mut h, &req);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(
        ok.header(HeaderName::Expires),
        Some(min.to_string().as_str())
    );
    let registered_at = h.now;
    h.events();
    // Nothing happens before the binding's time is up.
    h.run_until(registered_at + secs(u64::from(min)) - Duration::from_millis(1));
    assert!(h.events().is_empty());
    assert_eq!(h.fe.registrar().binding_count(), 1);
    let sent = h.run_until(registered_at + secs(u64::from(min)));
    assert!(sent.is_empty(), "expiry sends nothing");
    let alice = registrar_aor("alice@example.test");
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [
            RegistrarEvent::EndpointRemoved { reason: RemovalReason::Expired, .. },
            RegistrarEvent::AorOffline { aor },
        ] if *aor == alice),
        "{events:?}"
    );
    assert_eq!(h.fe.registrar().binding_count(), 0);
}

#[test]
fn rfc5626_section_5_flow_closed_removes_that_flows_bindings() {
    let mut h = Harness::new();
    for (conn, user, password) in [(1, "alice", ALICE_PASSWORD), (2, "bob", BOB_PASSWORD)] {
        let req = Req::register(user).via("TCP", &format!("192.0.2.{conn}:5060"), "");
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, conn as u8)), 50000);
        let challenge = h.tcp1(conn, peer, &req.text());
        let retry = req.next().header(
            "Authorization",
            &credentials(
                &challenge,
                Algorithm::Sha256,
                user,
                password,
                "REGISTER",
                &req.uri,
                1,
            ),
        );
        let ok = h.tcp1(conn, peer, &retry.text());
        assert_eq!(ok.status(), 200, "{}", ok.text());
        assert_eq!(ok.flow, TestFlow::Conn(conn));
    }
    h.events();
    h.fe.flow_closed(h.now, &TestFlow::Conn(1));
    let alice = registrar_aor("alice@example.test");
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [
            RegistrarEvent::EndpointRemoved { reason: RemovalReason::FlowFailed, flow, aor: a, .. },
            RegistrarEvent::AorOffline { aor },
        ] if *aor == alice && *a == alice && *flow == TestFlow::Conn(1)),
        "{events:?}"
    );
    assert_eq!(h.fe.registrar().bindings(&alice).count(), 0);
    let bob = registrar_aor("bob@example.test");
    assert_eq!(
        h.fe.registrar().lookup_flow(
            &bob,
            herald_registrar::Target::Contact("sip:bob@192.0.2.10:5060")
        ),
        Some(&TestFlow::Conn(2))
    );
    // Closing an unknown or already closed flow is harmless.
    h.fe.flow_closed(h.now, &TestFlow::Conn(1));
    h.fe.flow_closed(h.now, &TestFlow::Conn(99));
    assert!(h.events().is_empty());
}
