//! What every response carries (RFC 3261 §8.2.6, §18.2.1; RFC 3581 §4).

use super::*;

#[test]
fn rfc3261_section_8_2_6_2_response_copies_vias_from_call_id_cseq_and_tags_to() {
    let mut h = Harness::new();
    let mut req = Req::register("alice").via("UDP", "192.0.2.10:5060", "");
    req.lower_vias = vec![
        "SIP/2.0/UDP edge.example.test:5060;branch=z9hG4bK-edge;received=192.0.2.99".into(),
        "SIP/2.0/TCP 192.0.2.10:5090;branch=z9hG4bK-ua".into(),
    ];
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 401);
    assert_echoes(&req, &sent);
    // Nothing to stamp: the request came from its sent-by and asked for no rport.
    assert_eq!(sent.response.top_via().as_str(), req.top_via());
}

#[test]
fn rfc3261_section_8_2_6_2_existing_to_tag_is_kept() {
    let mut h = Harness::new();
    let mut req = Req::options("alice");
    req.to = format!("<sip:{DOMAIN}>;tag=dialog-7");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 407);
    assert_echoes(&req, &sent);
    assert_eq!(sent.response.to().tag(), Some("dialog-7"));
}

#[test]
fn rfc3261_section_8_2_6_2_each_new_response_gets_its_own_to_tag() {
    let mut h = Harness::new();
    let req = Req::options("alice");
    let a = h.udp1(ALICE, &req.text());
    let b = h.udp1(ALICE, &req.next().text());
    let (ta, tb) = (a.response.to().tag(), b.response.to().tag());
    assert!(ta.is_some() && tb.is_some());
    assert_ne!(ta, tb);
}

#[test]
fn rfc3261_section_8_2_6_every_response_carries_server() {
    let mut h = Harness::new();
    let mut tel = Req::options("alice");
    tel.uri = "tel:+1".into();
    let (challenge, ok) = h.register_with_auth(
        ALICE,
        &Req::register("alice"),
        "alice",
        ALICE_PASSWORD,
        Algorithm::Sha256,
    );
    let mut sent = vec![challenge, ok];
    for req in [
        tel,
        Req::new("INVITE", &format!("sip:bob@{DOMAIN}")),
        Req::new("FOOBAR", &format!("sip:{DOMAIN}")),
        Req::options("alice").header("Require", "foo"),
        Req::options("alice"),
        Req::new("CANCEL", &format!("sip:{DOMAIN}")),
    ] {
        sent.push(h.udp1(ALICE, &req.text()));
    }
    let statuses: Vec<u16> = sent.iter().map(Sent::status).collect();
    assert_eq!(statuses, [401, 200, 416, 405, 501, 420, 407, 481]);
    for s in &sent {
        assert_eq!(s.header(HeaderName::Server), Some(SERVER), "{}", s.text());
        assert_eq!(s.all(HeaderName::Server).len(), 1, "{}", s.text());
    }
}

#[test]
fn rfc3581_section_4_rport_request_gets_received_and_rport() {
    let mut h = Harness::new();
    // Behind a NAT: the Via names the private address, the datagram comes from the NAT.
    let req = Req::register("alice").via("UDP", "10.0.0.5:5060", ";rport");
    let sent = h.udp1(NAT, &req.text());
    let via = sent.response.top_via();
    assert_eq!(via.rport(), Some(Some(NAT.port())), "{}", sent.text());
    assert_eq!(via.received(), Some(NAT.ip()), "{}", sent.text());
    assert_eq!(via.branch(), Some(req.branch().as_str()));
    assert_echoes(&req, &sent);
}

#[test]
fn rfc3581_section_4_received_is_added_even_when_sent_by_matches() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    assert_eq!(req.via_params, ";rport");
    let sent = h.udp1(ALICE, &req.text());
    let via = sent.response.top_via();
    assert_eq!(via.rport(), Some(Some(ALICE.port())), "{}", sent.text());
    assert_eq!(via.received(), Some(ALICE.ip()), "{}", sent.text());
}

#[test]
fn rfc3261_section_18_2_1_received_is_added_when_the_source_differs() {
    let mut h = Harness::new();
    let req = Req::register("alice").via("UDP", "10.0.0.5:5060", "");
    let sent = h.udp1(NAT, &req.text());
    let via = sent.response.top_via();
    assert_eq!(via.received(), Some(NAT.ip()), "{}", sent.text());
    assert_eq!(via.rport(), None, "{}", sent.text());
    // A host name as sent-by is never the source IP either.
    let req = Req::register("alice").via("UDP", "alice-pc.example.test", "");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.response.top_via().received(), Some(ALICE.ip()));
}

#[test]
fn rfc3261_section_18_2_1_nothing_is_stamped_when_the_source_matches() {
    let mut h = Harness::new();
    let req = Req::register("alice").via("UDP", "192.0.2.10:5060", "");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.response.top_via().as_str(), req.top_via());
    assert_eq!(sent.response.top_via().received(), None);
}

#[test]
fn rfc3261_section_8_2_6_stream_responses_are_stamped_too() {
    let mut h = Harness::new();
    let req = Req::register("alice").via("TCP", "10.0.0.5:5061", ";rport");
    let sent = h.tcp1(3, NAT, &req.text());
    assert_eq!(sent.flow, TestFlow::Conn(3));
    let via = sent.response.top_via();
    assert_eq!(via.rport(), Some(Some(NAT.port())));
    assert_eq!(via.received(), Some(NAT.ip()));
    assert_echoes(&req, &sent);
}
