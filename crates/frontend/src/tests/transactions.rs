//! Server transactions under the pipeline (RFC 3261 §17.2) and where responses go (§18.2.2,
//! RFC 3581 §4).

use super::*;

/// A REGISTER with valid credentials for a nonce obtained first.
fn authorized_register(h: &mut Harness) -> Req {
    let req = Req::register("alice");
    let challenge = h.udp1(ALICE, &req.text());
    req.next().header(
        "Authorization",
        &credentials(
            &challenge,
            Algorithm::Sha256,
            "alice",
            ALICE_PASSWORD,
            "REGISTER",
            &req.uri,
            1,
        ),
    )
}

#[test]
fn rfc3261_section_17_2_2_retransmitted_register_is_absorbed_and_answered_from_cache() {
    let mut h = Harness::new();
    let text = authorized_register(&mut h).text();
    let Step::Lookup(lookup) = h.udp_step(ALICE, &text) else {
        panic!("credentials need a lookup");
    };
    // Retransmitted while the directory is still being read: absorbed, nothing sent (Trying).
    h.advance(Duration::from_millis(500));
    assert!(matches!(h.udp_step(ALICE, &text), Step::Done));
    assert!(h.transmits().is_empty());
    h.complete(*lookup);
    let ok = one(h.transmits());
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(h.events().len(), 2, "AorOnline, EndpointRegistered");
    // Retransmitted after the answer: the same bytes again, no second lookup, no second binding
    // update (that would be an out-of-order REGISTER and a 500).
    h.advance(Duration::from_millis(1000));
    assert!(matches!(h.udp_step(ALICE, &text), Step::Done));
    let again = one(h.transmits());
    assert_eq!(again.bytes, ok.bytes);
    assert_eq!(again.flow, ok.flow);
    assert_eq!(h.lookups.len(), 1);
    assert!(h.events().is_empty(), "the registrar saw the REGISTER once");
    assert_eq!(h.fe.registrar().binding_count(), 1);
}

/// Challenges are sent statelessly (RFC 3261 §26.3.2.4): no transaction is kept for a client
/// that has not authenticated, and a retransmission is challenged afresh.
#[test]
fn rfc3261_section_26_3_2_4_challenge_is_stateless() {
    let mut h = Harness::new();
    let text = Req::register("alice").text();
    let first = h.udp1(ALICE, &text);
    assert_eq!(first.status(), 401);
    assert_eq!(
        h.fe.transaction_count(),
        0,
        "no transaction holds the challenge"
    );
    let again = h.udp1(ALICE, &text);
    assert_eq!(again.status(), 401);
    assert_ne!(again.bytes, first.bytes, "a fresh nonce and tag");
    assert_eq!(h.fe.transaction_count(), 0);
}

#[test]
fn rfc3261_section_17_2_2_completed_transaction_ends_after_timer_j_on_udp() {
    let mut h = Harness::new();
    let text = Req::new("SUBSCRIBE", "sip:bob@example.test").text();
    assert_eq!(h.udp1(ALICE, &text).status(), 405);
    assert_eq!(h.fe.transaction_count(), 1);
    let timer_j = herald_transaction::Config::default().timers.timeout();
    let sent = h.run_until(h.t0 + timer_j);
    assert!(
        sent.is_empty(),
        "non-INVITE responses are not retransmitted by timer"
    );
    assert_eq!(h.fe.transaction_count(), 0);
    // A late retransmission is a new request now, answered afresh (a new To tag).
    let late = h.udp1(ALICE, &text);
    assert_eq!(late.status(), 405);
    assert_eq!(h.fe.transaction_count(), 1);
}

#[test]
fn rfc3261_section_17_2_2_non_invite_over_a_stream_ends_at_once() {
    let mut h = Harness::new();
    let sent = h.tcp1(
        1,
        NAT,
        &Req::options("alice")
            .via("TCP", "10.0.0.5:5060", ";rport")
            .text(),
    );
    assert_eq!(sent.status(), 407);
    assert_eq!(h.fe.transaction_count(), 0);
    assert_eq!(h.fe.poll_timeout(), None);
}

#[test]
fn rfc3261_section_17_2_1_timer_g_retransmits_405_over_udp_until_ack() {
    let mut h = Harness::new();
    let invite = Req::new("INVITE", &format!("sip:bob@{DOMAIN}"));
    let first = h.udp1(ALICE, &invite.text());
    assert_eq!(first.status(), 405);
    let t1 = herald_transaction::Config::default().timers.t1;
    let sent = h.run_until(h.t0 + t1 * 3);
    let offsets: Vec<Duration> = sent.iter().map(|(at, _)| *at).collect();
    assert_eq!(offsets, [t1, t1 * 3], "Timer G: T1, then 2*T1 later");
    assert!(sent.iter().all(|(_, s)| s.bytes == first.bytes));
    // The ACK for the 405 (same branch, §17.1.1.3) stops the retransmissions.
    let to = first.header(HeaderName::To).expect("To").to_owned();
    let mut ack = invite;
    ack.method = "ACK".into();
    ack.to = to;
    assert!(h.udp(ALICE, &ack.text()).is_empty());
    let sent = h.run_until(h.t0 + secs(64));
    assert!(
        sent.is_empty(),
        "{:?}",
        sent.iter().map(|(at, _)| at).collect::<Vec<_>>()
    );
    assert_eq!(h.fe.transaction_count(), 0);
}

#[test]
fn rfc3261_section_17_2_1_no_retransmission_timers_over_a_stream() {
    let mut h = Harness::new();
    let invite = Req::new("INVITE", &format!("sip:bob@{DOMAIN}")).via("TCP", "10.0.0.5:5060", "");
    let first = h.tcp1(4, NAT, &invite.text());
    assert_eq!(first.status(), 405);
    assert_eq!(first.flow, TestFlow::Conn(4));
    let sent = h.run_until(h.t0 + secs(64));
    assert!(sent.is_empty(), "no Timer G on a reliable transport");
    assert_eq!(h.fe.transaction_count(), 0, "Timer H ended the transaction");
}

#[test]
fn rfc3261_section_9_2_cancel_without_invite_gets_481() {
    let mut h = Harness::new();
    let cancel = Req::new("CANCEL", &format!("sip:bob@{DOMAIN}"));
    let sent = h.udp1(ALICE, &cancel.text());
    assert_eq!(sent.status(), 481, "{}", sent.text());
    assert_echoes(&cancel, &sent);
}

/// RFC 3261 §8.2.2.3: "Require and Proxy-Require MUST NOT be used in a SIP CANCEL request
/// ... These header fields MUST be ignored if they are present in these requests."
#[test]
fn rfc3261_section_8_2_2_3_require_in_cancel_is_ignored() {
    let mut h = Harness::new();
    let cancel = Req::new("CANCEL", &format!("sip:bob@{DOMAIN}")).header("Require", "foo");
    let sent = h.udp1(ALICE, &cancel.text());
    assert_eq!(sent.status(), 481, "{}", sent.text());
}

#[test]
fn rfc3261_section_17_2_3_stray_ack_is_dropped() {
    let mut h = Harness::new();
    let ack = Req::new("ACK", &format!("sip:bob@{DOMAIN}"));
    assert!(h.udp(ALICE, &ack.text()).is_empty());
    assert_eq!(h.fe.transaction_count(), 0);
}

#[test]
fn rfc3261_section_18_2_2_udp_response_goes_to_the_source_when_rport() {
    let mut h = Harness::new();
    let req = Req::options("alice").via("UDP", "10.0.0.5:5070", ";rport");
    let sent = h.udp1(NAT, &req.text());
    assert_eq!(sent.flow, TestFlow::Udp(NAT));
}

#[test]
fn rfc3261_section_18_2_2_udp_response_goes_to_received_and_via_port_without_rport() {
    let mut h = Harness::new();
    let req = Req::options("alice").via("UDP", "10.0.0.5:5070", "");
    let sent = h.udp1(NAT, &req.text());
    assert_eq!(
        sent.flow,
        TestFlow::Udp(SocketAddr::new(NAT.ip(), 5070)),
        "received IP, sent-by port"
    );
    // No port in sent-by: the default 5060.
    let req = Req::options("alice").via("UDP", "10.0.0.5", "");
    let sent = h.udp1(NAT, &req.text());
    assert_eq!(sent.flow, TestFlow::Udp(SocketAddr::new(NAT.ip(), 5060)));
    // A final response after a lookup goes to the same place.
    let req = Req::register("alice").via("UDP", "10.0.0.5:5070", "");
    let (challenge, ok) =
        h.register_with_auth(NAT, &req, "alice", ALICE_PASSWORD, Algorithm::Sha256);
    assert_eq!(ok.status(), 200);
    for s in [challenge, ok] {
        assert_eq!(s.flow, TestFlow::Udp(SocketAddr::new(NAT.ip(), 5070)));
    }
}

/// A `received` parameter the client put in its own Via is not an address herald observed:
/// RFC 3261 §18.2.1 has the *server* add `received`, and §18.2.2 sends to that. Because
/// `stamp_via_source` leaves the Via alone when sent-by equals the source address, a client (no
/// spoofing needed) can steer every answer, a 401 with two challenges included, to any address:
/// a reflection/amplification vector.
#[test]
fn rfc3261_section_18_2_2_client_supplied_received_is_not_trusted() {
    let mut h = Harness::new();
    let req = Req::register("alice").via("UDP", "192.0.2.10:5060", ";received=203.0.113.66");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 401);
    assert_eq!(sent.flow, TestFlow::Udp(ALICE), "{}", sent.text());
}

#[test]
fn rfc3261_section_18_2_2_stream_response_goes_back_over_the_connection() {
    let mut h = Harness::new();
    // Whatever the Via says, the answer goes over the connection the request came on.
    let req = Req::options("alice").via("TCP", "10.0.0.5:5070", "");
    let sent = h.tcp1(9, NAT, &req.text());
    assert_eq!(sent.flow, TestFlow::Conn(9));
}

#[test]
fn rfc3261_section_21_5_4_overload_gets_stateless_503_with_retry_after() {
    let mut config = config();
    config.transactions.max_server_transactions = 1;
    let mut h = Harness::with_config(config);
    let busy = Req::new("SUBSCRIBE", "sip:bob@example.test").text();
    assert_eq!(h.udp1(ALICE, &busy).status(), 405);
    let req = Req::options("alice");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 503, "{}", sent.text());
    assert_eq!(sent.flow, TestFlow::Udp(ALICE));
    assert_eq!(sent.header(HeaderName::RetryAfter), Some("5"));
    assert_eq!(h.fe.transaction_count(), 1);
    assert!(sent.response.to().tag().is_some());
    assert_echoes_but_server(&req, &sent);
}

/// The stateless answers (overload 503, and 400/505 to what does not parse) bypass `answer` and
/// carry no Server header, unlike every other response.
#[test]
fn rfc3261_section_8_2_6_stateless_responses_carry_server() {
    let mut config = config();
    config.transactions.max_server_transactions = 1;
    let mut h = Harness::with_config(config);
    let busy = Req::new("SUBSCRIBE", "sip:bob@example.test").text();
    assert_eq!(h.udp1(ALICE, &busy).status(), 405);
    let overload = h.udp1(ALICE, &Req::options("alice").text());
    assert_eq!(overload.status(), 503);
    let bad = Req::options("alice")
        .text()
        .replace("Max-Forwards: 70", "Max-Forwards: x");
    let unparseable = h.udp1(ALICE, &bad);
    assert_eq!(unparseable.status(), 400);
    for sent in [overload, unparseable] {
        assert_eq!(
            sent.header(HeaderName::Server),
            Some(SERVER),
            "{}",
            sent.text()
        );
    }
}

/// [`assert_echoes`] without the Server check (the overload answer has none, see the ignored
/// test below it).
fn assert_echoes_but_server(req: &Req, sent: &Sent) {
    let r = &sent.response;
    assert_eq!(r.vias()[0].branch(), Some(req.branch().as_str()));
    assert_eq!(sent.header(HeaderName::From), Some(req.from.as_str()));
    assert_eq!(r.call_id(), req.call_id);
    assert_eq!(
        sent.header(HeaderName::CSeq),
        Some(format!("{} {}", req.cseq, req.method).as_str())
    );
}
