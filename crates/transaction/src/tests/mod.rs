//! Conformance tests named after the RFC sections they check, on simulated time: every instant
//! is `base + offset`, and the layer is woken exactly at the deadlines it asks for.

mod pair;

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{
    ClientId, ClientKey, ClientState, ClientVerdict, Config, Error, Event, LegacyKeyParts,
    MethodKind, ServerId, ServerKey, ServerState, ServerVerdict, Timer, Timers, TransactionId,
    TransactionLayer,
};

const MS: Duration = Duration::from_millis(1);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A layer plus a simulated clock and everything it sent or reported, with the time.
struct Harness {
    base: Instant,
    now: Instant,
    layer: TransactionLayer<&'static str>,
    sent: Vec<(Duration, Bytes)>,
    events: Vec<(Duration, Event)>,
}

impl Harness {
    fn new() -> Self {
        Self::with_config(Config::default())
    }

    fn with_config(config: Config) -> Self {
        let base = Instant::now();
        Self {
            base,
            now: base,
            layer: TransactionLayer::new(config),
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Collects what the last input produced, stamped with the current time.
    fn drain(&mut self) {
        let at = self.elapsed();
        while let Some(t) = self.layer.poll_transmit() {
            self.sent.push((at, t.payload));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push((at, e));
        }
    }

    /// Advances the clock to `offset`, firing every timer on the way at its exact deadline.
    fn run_until(&mut self, offset: Duration) {
        let until = self.base + offset;
        self.drain();
        while let Some(at) = self.layer.poll_timeout() {
            if at > until {
                break;
            }
            assert!(at >= self.now, "deadlines never go back in time");
            self.now = at;
            self.layer.handle_timeout(at);
            self.drain();
        }
        self.now = until;
    }

    fn send_times(&self) -> Vec<Duration> {
        self.sent.iter().map(|(t, _)| *t).collect()
    }

    fn take_sent(&mut self) -> Vec<Bytes> {
        self.sent.drain(..).map(|(_, b)| b).collect()
    }

    fn request(&mut self, key: &ServerKey, reliable: bool) -> ServerVerdict {
        let verdict = self
            .layer
            .on_request(self.now, key.clone(), "client", reliable)
            .expect("below the bound");
        self.drain();
        verdict
    }

    fn new_server(&mut self, key: &ServerKey, reliable: bool) -> ServerId {
        match self.request(key, reliable) {
            ServerVerdict::New(id) => id,
            other => panic!("expected a new transaction, got {other:?}"),
        }
    }

    fn respond(&mut self, id: ServerId, status: u16) {
        let bytes = Bytes::from(format!("SIP/2.0 {status}"));
        self.layer
            .send_response(self.now, id, status, bytes)
            .expect("response accepted");
        self.drain();
    }

    fn start(&mut self, key: &ClientKey, reliable: bool) -> ClientId {
        let id = self
            .layer
            .start_client(
                self.now,
                key.clone(),
                "server",
                reliable,
                request_bytes(key),
            )
            .expect("client started");
        self.drain();
        id
    }

    fn response(&mut self, key: &ClientKey, status: u16) -> ClientVerdict {
        let verdict = self.layer.on_response(self.now, key, status);
        self.drain();
        verdict
    }
}

fn request_bytes(key: &ClientKey) -> Bytes {
    Bytes::from(format!("{:?} {}", key.method(), key.branch()))
}

fn skey(branch: &str, method: &str) -> ServerKey {
    ServerKey::new(branch, "client.example:5060", MethodKind::from_name(method))
        .expect("magic cookie")
}

fn ckey(branch: &str, method: &str) -> ClientKey {
    ClientKey::new(branch, MethodKind::from_name(method))
}

fn terminated(events: &[(Duration, Event)]) -> Vec<Duration> {
    events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Terminated { .. }))
        .map(|(t, _)| *t)
        .collect()
}

fn timed_out(events: &[(Duration, Event)]) -> Vec<(Duration, Timer)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::TimedOut { timer, .. } => Some((*t, *timer)),
            _ => None,
        })
        .collect()
}

// ---- Table 4 -----------------------------------------------------------------------------

#[test]
fn rfc3261_table_4_default_timer_values() {
    let t = Timers::default();
    assert_eq!(t.t1, secs(0.5));
    assert_eq!(t.t2, secs(4.0));
    assert_eq!(t.t4, secs(5.0));
    assert_eq!(t.timeout(), secs(32.0), "B, F, H, J = 64*T1");
    assert_eq!(t.d(false), secs(32.0));
    assert_eq!(t.d(true), Duration::ZERO);
    assert_eq!(t.t4_unless_reliable(false), secs(5.0), "I, K = T4 on UDP");
    assert_eq!(t.t4_unless_reliable(true), Duration::ZERO);
    assert_eq!(t.j(false), secs(32.0));
    assert_eq!(t.j(true), Duration::ZERO);
}

// ---- §17.1.1 INVITE client ---------------------------------------------------------------

#[test]
fn rfc3261_17_1_1_2_timer_a_doubles_and_timer_b_times_out_after_64_t1() {
    let mut h = Harness::new();
    let id = h.start(&ckey("z9hG4bKa", "INVITE"), false);
    assert_eq!(h.layer.client_state(id), Some(ClientState::Calling));
    h.run_until(secs(40.0));
    // Timer A: T1, 2*T1, 4*T1, ... without a cap, until Timer B.
    let expected: Vec<Duration> = [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
        .into_iter()
        .map(secs)
        .collect();
    assert_eq!(h.send_times(), expected);
    assert_eq!(timed_out(&h.events), vec![(secs(32.0), Timer::B)]);
    assert_eq!(terminated(&h.events), vec![secs(32.0)]);
    assert_eq!(h.layer.client_state(id), None);
}

#[test]
fn rfc3261_17_1_1_2_timer_b_does_not_fire_early() {
    let mut h = Harness::new();
    let id = h.start(&ckey("z9hG4bKa", "INVITE"), false);
    h.run_until(secs(32.0) - MS);
    assert!(h.events.is_empty());
    assert_eq!(h.layer.client_state(id), Some(ClientState::Calling));
}

#[test]
fn rfc3261_17_1_1_2_reliable_transport_has_no_timer_a() {
    let mut h = Harness::new();
    h.start(&ckey("z9hG4bKa", "INVITE"), true);
    h.run_until(secs(40.0));
    assert_eq!(h.send_times(), vec![Duration::ZERO]);
    assert_eq!(timed_out(&h.events), vec![(secs(32.0), Timer::B)]);
}

#[test]
fn rfc3261_17_1_1_2_provisional_stops_timer_a_and_timer_b() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "INVITE");
    let id = h.start(&key, false);
    h.run_until(secs(1.0));
    assert_eq!(h.response(&key, 180), ClientVerdict::Deliver(id));
    h.run_until(secs(100.0));
    assert_eq!(h.send_times(), vec![secs(0.0), secs(0.5)]);
    assert!(h.events.is_empty(), "no Timer B in Proceeding");
    assert_eq!(h.layer.client_state(id), Some(ClientState::Proceeding));
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn rfc3261_17_1_1_2_non_2xx_needs_ack_and_timer_d() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "INVITE");
    let id = h.start(&key, false);
    h.run_until(secs(1.0));
    h.take_sent();
    assert_eq!(h.response(&key, 486), ClientVerdict::NeedAck(id));
    assert_eq!(h.layer.client_state(id), Some(ClientState::Completed));
    h.layer
        .send_ack(id, Bytes::from_static(b"ACK"))
        .expect("ack accepted");
    h.drain();
    assert_eq!(h.take_sent(), vec![Bytes::from_static(b"ACK")]);
    // A retransmitted 486 is absorbed and answered with the same ACK.
    h.run_until(secs(2.0));
    assert_eq!(h.response(&key, 486), ClientVerdict::Absorb);
    assert_eq!(h.take_sent(), vec![Bytes::from_static(b"ACK")]);
    // No request retransmissions in Completed; Timer D is 32 s from entering Completed.
    h.run_until(secs(33.0) - MS);
    assert!(h.sent.is_empty());
    assert!(h.events.is_empty());
    h.run_until(secs(40.0));
    assert_eq!(terminated(&h.events), vec![secs(33.0)]);
    assert!(timed_out(&h.events).is_empty());
}

#[test]
fn rfc3261_17_1_1_2_timer_d_is_zero_on_reliable_transport() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "INVITE");
    let id = h.start(&key, true);
    assert_eq!(h.response(&key, 603), ClientVerdict::NeedAck(id));
    h.layer
        .send_ack(id, Bytes::from_static(b"ACK"))
        .expect("ack accepted");
    h.drain();
    assert_eq!(terminated(&h.events), vec![Duration::ZERO]);
    assert_eq!(h.layer.client_count(), 0);
}

#[test]
fn rfc3261_17_1_1_2_reliable_transport_waits_t1_for_the_ack_bytes() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "INVITE");
    let id = h.start(&key, true);
    assert_eq!(h.response(&key, 486), ClientVerdict::NeedAck(id));
    h.run_until(secs(1.0));
    assert_eq!(terminated(&h.events), vec![secs(0.5)]);
    assert_eq!(
        h.layer.send_ack(id, Bytes::from_static(b"ACK")),
        Err(Error::UnknownTransaction)
    );
}

#[test]
fn rfc6026_8_4_2xx_moves_invite_client_to_accepted_until_timer_m() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "INVITE");
    let id = h.start(&key, false);
    h.run_until(secs(1.0));
    assert_eq!(h.response(&key, 200), ClientVerdict::Deliver(id));
    assert_eq!(h.layer.client_state(id), Some(ClientState::Accepted));
    h.run_until(secs(2.0));
    // Retransmitted 2xx go to the TU, which re-sends its ACK; no ACK from the layer.
    assert_eq!(h.response(&key, 200), ClientVerdict::Deliver(id));
    assert_eq!(h.response(&key, 180), ClientVerdict::Absorb);
    assert_eq!(
        h.layer.send_ack(id, Bytes::from_static(b"ACK")),
        Err(Error::AckNotExpected)
    );
    h.run_until(secs(40.0));
    assert_eq!(h.send_times(), vec![secs(0.0), secs(0.5)]);
    assert_eq!(terminated(&h.events), vec![secs(33.0)], "Timer M = 64*T1");
    assert_eq!(h.response(&key, 200), ClientVerdict::Stray);
}

#[test]
fn rfc3261_17_1_3_cancel_responses_match_their_own_transaction() {
    let mut h = Harness::new();
    let invite = ckey("z9hG4bKa", "INVITE");
    let cancel = ckey("z9hG4bKa", "CANCEL");
    let invite_id = h.start(&invite, false);
    let cancel_id = h.start(&cancel, false);
    assert_eq!(h.response(&cancel, 200), ClientVerdict::Deliver(cancel_id));
    assert_eq!(h.response(&invite, 487), ClientVerdict::NeedAck(invite_id));
    assert_eq!(
        h.layer.client_state(cancel_id),
        Some(ClientState::Completed)
    );
}

#[test]
fn rfc3261_17_1_3_response_without_transaction_is_stray() {
    let mut h = Harness::new();
    assert_eq!(
        h.response(&ckey("z9hG4bKx", "OPTIONS"), 200),
        ClientVerdict::Stray
    );
    let key = ckey("z9hG4bKa", "OPTIONS");
    h.start(&key, false);
    assert_eq!(h.response(&key, 99), ClientVerdict::Discard);
    assert_eq!(h.response(&key, 700), ClientVerdict::Discard);
}

#[test]
fn rfc3261_17_1_1_3_ack_is_not_a_client_transaction() {
    let mut h = Harness::new();
    let result = h.layer.start_client(
        h.now,
        ckey("z9hG4bKa", "ACK"),
        "server",
        false,
        Bytes::new(),
    );
    assert_eq!(result, Err(Error::AckIsNotATransaction));
}

#[test]
fn duplicate_client_branch_is_refused() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "OPTIONS");
    h.start(&key, false);
    let again = h
        .layer
        .start_client(h.now, key.clone(), "server", false, Bytes::new());
    assert_eq!(again, Err(Error::DuplicateKey));
}

// ---- §17.1.2 non-INVITE client -----------------------------------------------------------

#[test]
fn rfc3261_17_1_2_2_timer_e_doubles_to_t2() {
    let mut h = Harness::new();
    h.start(&ckey("z9hG4bKa", "REGISTER"), false);
    h.run_until(secs(31.9));
    // Intervals 0.5, 1, 2, 4 (= T2), then T2 each time.
    let expected: Vec<Duration> = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        .into_iter()
        .map(secs)
        .collect();
    assert_eq!(h.send_times(), expected);
}

#[test]
fn rfc3261_17_1_2_2_timer_f_times_out_after_64_t1() {
    let mut h = Harness::new();
    let id = h.start(&ckey("z9hG4bKa", "REGISTER"), false);
    h.run_until(secs(32.0) - MS);
    assert!(h.events.is_empty());
    h.run_until(secs(60.0));
    let id = TransactionId::Client(id);
    assert_eq!(
        h.events,
        vec![
            (
                secs(32.0),
                Event::TimedOut {
                    id,
                    timer: Timer::F
                }
            ),
            (secs(32.0), Event::Terminated { id }),
        ]
    );
    assert_eq!(h.send_times().len(), 11, "no retransmission after Timer F");
}

#[test]
fn rfc3261_17_1_2_2_proceeding_retransmits_every_t2() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "SUBSCRIBE");
    let id = h.start(&key, false);
    h.run_until(secs(0.7));
    assert_eq!(h.response(&key, 100), ClientVerdict::Deliver(id));
    assert_eq!(h.layer.client_state(id), Some(ClientState::Proceeding));
    h.run_until(secs(40.0));
    // The pending E (armed at 0.5 for 1 s) fires at 1.5, then every T2 until F at 32.
    let expected: Vec<Duration> = [0.0, 0.5, 1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
        .into_iter()
        .map(secs)
        .collect();
    assert_eq!(h.send_times(), expected);
    assert_eq!(timed_out(&h.events), vec![(secs(32.0), Timer::F)]);
}

#[test]
fn rfc3261_17_1_2_2_reliable_transport_has_no_timer_e() {
    let mut h = Harness::new();
    h.start(&ckey("z9hG4bKa", "REGISTER"), true);
    h.run_until(secs(40.0));
    assert_eq!(h.send_times(), vec![Duration::ZERO]);
    assert_eq!(timed_out(&h.events), vec![(secs(32.0), Timer::F)]);
}

#[test]
fn rfc3261_17_1_2_2_timer_k_absorbs_retransmitted_responses_for_t4() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "REGISTER");
    let id = h.start(&key, false);
    h.run_until(secs(1.0));
    assert_eq!(h.response(&key, 200), ClientVerdict::Deliver(id));
    assert_eq!(h.layer.client_state(id), Some(ClientState::Completed));
    h.run_until(secs(3.0));
    assert_eq!(h.response(&key, 200), ClientVerdict::Absorb);
    h.run_until(secs(6.0) - MS);
    assert!(h.events.is_empty());
    h.run_until(secs(40.0));
    assert_eq!(terminated(&h.events), vec![secs(6.0)], "Timer K = T4");
    assert_eq!(
        h.send_times(),
        vec![secs(0.0), secs(0.5)],
        "E stops in Completed"
    );
    assert!(timed_out(&h.events).is_empty());
}

#[test]
fn rfc3261_17_1_2_2_timer_k_is_zero_on_reliable_transport() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "REGISTER");
    let id = h.start(&key, true);
    assert_eq!(h.response(&key, 401), ClientVerdict::Deliver(id));
    assert_eq!(terminated(&h.events), vec![Duration::ZERO]);
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn rfc3261_17_1_4_transport_error_ends_client_transaction() {
    let mut h = Harness::new();
    let id = h.start(&ckey("z9hG4bKa", "NOTIFY"), false);
    h.layer.on_transport_error(id.into());
    h.drain();
    let id = TransactionId::Client(id);
    assert_eq!(
        h.events,
        vec![
            (Duration::ZERO, Event::TransportError { id }),
            (Duration::ZERO, Event::Terminated { id }),
        ]
    );
    h.layer.on_transport_error(id);
    h.drain();
    assert_eq!(h.events.len(), 2, "a second report is ignored");
    h.run_until(secs(40.0));
    assert_eq!(h.send_times(), vec![Duration::ZERO], "timers die with it");
}

// ---- §17.2.1 INVITE server ---------------------------------------------------------------

#[test]
fn rfc3261_17_2_1_retransmitted_invite_resends_latest_provisional() {
    let mut h = Harness::new();
    let key = skey("z9hG4bKa", "INVITE");
    let id = h.new_server(&key, false);
    assert_eq!(h.layer.server_state(id), Some(ServerState::Proceeding));
    assert_eq!(h.request(&key, false), ServerVerdict::Retransmission);
    assert!(
        h.take_sent().is_empty(),
        "nothing sent yet, nothing to resend"
    );
    h.respond(id, 100);
    h.respond(id, 180);
    h.take_sent();
    assert_eq!(h.request(&key, false), ServerVerdict::Retransmission);
    assert_eq!(h.take_sent(), vec![Bytes::from_static(b"SIP/2.0 180")]);
}

#[test]
fn rfc3261_17_2_1_timer_g_doubles_to_t2_and_timer_h_times_out() {
    let mut h = Harness::new();
    let id = h.new_server(&skey("z9hG4bKa", "INVITE"), false);
    h.respond(id, 486);
    assert_eq!(h.layer.server_state(id), Some(ServerState::Completed));
    h.run_until(secs(40.0));
    let expected: Vec<Duration> = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        .into_iter()
        .map(secs)
        .collect();
    assert_eq!(h.send_times(), expected);
    assert_eq!(timed_out(&h.events), vec![(secs(32.0), Timer::H)]);
    assert_eq!(terminated(&h.events), vec![secs(32.0)]);
}

#[test]
fn rfc3261_17_2_1_reliable_transport_has_no_timer_g_but_timer_h() {
    let mut h = Harness::new();
    let id = h.new_server(&skey("z9hG4bKa", "INVITE"), true);
    h.respond(id, 486);
    h.run_until(secs(40.0));
    assert_eq!(h.send_times(), vec![Duration::ZERO]);
    assert_eq!(timed_out(&h.events), vec![(secs(32.0), Timer::H)]);
}

#[test]
fn rfc3261_17_2_1_retransmitted_invite_resends_final_response() {
    let mut h = Harness::new();
    let key = skey("z9hG4bKa", "INVITE");
    let id = h.new_server(&key, false);
    h.respond(id, 404);
    h.take_sent();
    assert_eq!(h.request(&key, false), ServerVerdict::Retransmission);
    assert_eq!(h.take_sent(), vec![Bytes::from_static(b"SIP/2.0 404")]);
    let again = h
        .layer
        .send_response(h.now, id, 500, Bytes::from_static(b"x"));
    assert_eq!(again, Err(Error::FinalAlreadySent));
}

#[test]
fn rfc3261_17_2_1_non_2xx_ack_absorbed_timer_i() {
    let mut h = Harness::new();
    let invite = skey("z9hG4bKa", "INVITE");
    let ack = skey("z9hG4bKa", "ACK");
    let id = h.new_server(&invite, false);
    h.respond(id, 486);
    h.run_until(secs(1.0));
    assert_eq!(h.request(&ack, false), ServerVerdict::AckForCompleted);
    assert_eq!(h.layer.server_state(id), Some(ServerState::Confirmed));
    // Confirmed absorbs both INVITE and ACK retransmissions, sending nothing.
    assert_eq!(h.request(&ack, false), ServerVerdict::AckForCompleted);
    assert_eq!(h.request(&invite, false), ServerVerdict::Retransmission);
    h.run_until(secs(6.0) - MS);
    assert!(h.events.is_empty());
    h.run_until(secs(40.0));
    assert_eq!(
        h.send_times(),
        vec![secs(0.0), secs(0.5)],
        "G stops at the ACK"
    );
    assert_eq!(terminated(&h.events), vec![secs(6.0)], "Timer I = T4");
    assert!(timed_out(&h.events).is_empty(), "H was cancelled");
}

#[test]
fn rfc3261_17_2_1_timer_i_is_zero_on_reliable_transport() {
    let mut h = Harness::new();
    let id = h.new_server(&skey("z9hG4bKa", "INVITE"), true);
    h.respond(id, 486);
    assert_eq!(
        h.request(&skey("z9hG4bKa", "ACK"), true),
        ServerVerdict::AckForCompleted
    );
    assert_eq!(terminated(&h.events), vec![Duration::ZERO]);
    assert_eq!(h.layer.server_count(), 0);
}

#[test]
fn rfc3261_17_2_3_ack_matching_no_transaction_goes_to_the_tu() {
    let mut h = Harness::new();
    assert_eq!(
        h.request(&skey("z9hG4bKa", "ACK"), false),
        ServerVerdict::Ack2xxOrStray
    );
    assert_eq!(
        h.layer.server_count(),
        0,
        "an ACK never creates a transaction"
    );
    let id = h.new_server(&skey("z9hG4bKb", "INVITE"), false);
    assert_eq!(
        h.request(&skey("z9hG4bKb", "ACK"), false),
        ServerVerdict::Ack2xxOrStray,
        "an ACK before any final response is not absorbed"
    );
    assert_eq!(h.layer.server_state(id), Some(ServerState::Proceeding));
}

#[test]
fn rfc6026_8_7_2xx_moves_invite_server_to_accepted_until_timer_l() {
    let mut h = Harness::new();
    let invite = skey("z9hG4bKa", "INVITE");
    let id = h.new_server(&invite, false);
    h.respond(id, 200);
    assert_eq!(h.layer.server_state(id), Some(ServerState::Accepted));
    h.take_sent();
    h.run_until(secs(1.0));
    // Retransmitted INVITE: absorbed, and the layer does not repeat the 2xx itself.
    assert_eq!(h.request(&invite, false), ServerVerdict::Retransmission);
    assert!(h.take_sent().is_empty());
    // The TU's own 2xx retransmission goes out; nothing else may.
    h.respond(id, 200);
    assert_eq!(h.take_sent(), vec![Bytes::from_static(b"SIP/2.0 200")]);
    let late = h
        .layer
        .send_response(h.now, id, 486, Bytes::from_static(b"x"));
    assert_eq!(late, Err(Error::FinalAlreadySent));
    // An ACK matching it is passed up.
    assert_eq!(
        h.request(&skey("z9hG4bKa", "ACK"), false),
        ServerVerdict::Ack2xxOrStray
    );
    h.run_until(secs(40.0));
    assert!(h.sent.is_empty());
    assert_eq!(terminated(&h.events), vec![secs(32.0)], "Timer L = 64*T1");
    assert!(timed_out(&h.events).is_empty());
}

#[test]
fn rfc3261_17_2_3_sent_by_and_method_tell_transactions_apart() {
    let mut h = Harness::new();
    let a = h.new_server(&skey("z9hG4bKa", "INVITE"), false);
    let other_host =
        ServerKey::new("z9hG4bKa", "evil.example", MethodKind::Invite).expect("magic cookie");
    let b = h.new_server(&other_host, false);
    let cancel = h.new_server(&skey("z9hG4bKa", "CANCEL"), false);
    assert_ne!(a, b);
    assert_eq!(h.layer.server_count(), 3);
    // §9.2: the CANCEL's TU finds the INVITE it targets.
    let target = skey("z9hG4bKa", "CANCEL")
        .cancel_target()
        .expect("a CANCEL");
    assert_eq!(h.layer.server_id(&target), Some(a));
    assert_ne!(TransactionId::from(cancel), TransactionId::from(a));
}

#[test]
fn rfc3261_17_2_3_legacy_rfc2543_invite_and_ack_match() {
    let mut h = Harness::new();
    let parts = LegacyKeyParts {
        request_uri: "sip:bob@example.com",
        to_tag: None,
        from_tag: Some("1928301774"),
        call_id: "a84b4c76e66710",
        cseq: 314159,
        top_via: "SIP/2.0/UDP pc33.atlanta.com",
        method: &MethodKind::Invite,
    };
    let invite = ServerKey::legacy(parts);
    let id = h.new_server(&invite, false);
    assert_eq!(h.request(&invite, false), ServerVerdict::Retransmission);
    h.respond(id, 486);
    let ack = ServerKey::legacy(LegacyKeyParts {
        to_tag: Some("server-tag"),
        method: &MethodKind::Ack,
        ..parts
    });
    assert_eq!(h.request(&ack, false), ServerVerdict::AckForCompleted);
}

// ---- §17.2.2 non-INVITE server -----------------------------------------------------------

#[test]
fn rfc3261_17_2_2_trying_discards_retransmissions() {
    let mut h = Harness::new();
    let key = skey("z9hG4bKa", "REGISTER");
    let id = h.new_server(&key, false);
    assert_eq!(h.layer.server_state(id), Some(ServerState::Trying));
    assert_eq!(h.request(&key, false), ServerVerdict::Retransmission);
    assert!(h.sent.is_empty());
    assert_eq!(h.layer.poll_timeout(), None, "no timer before a response");
}

#[test]
fn rfc3261_17_2_2_retransmitted_request_resends_provisional() {
    let mut h = Harness::new();
    let key = skey("z9hG4bKa", "SUBSCRIBE");
    let id = h.new_server(&key, false);
    h.respond(id, 100);
    assert_eq!(h.layer.server_state(id), Some(ServerState::Proceeding));
    h.take_sent();
    assert_eq!(h.request(&key, false), ServerVerdict::Retransmission);
    assert_eq!(h.take_sent(), vec![Bytes::from_static(b"SIP/2.0 100")]);
}

#[test]
fn rfc3261_17_2_2_retransmitted_request_resends_final_response() {
    let mut h = Harness::new();
    let key = skey("z9hG4bKa", "REGISTER");
    let id = h.new_server(&key, false);
    h.respond(id, 100);
    h.respond(id, 200);
    assert_eq!(h.layer.server_state(id), Some(ServerState::Completed));
    h.take_sent();
    h.run_until(secs(10.0));
    assert_eq!(h.request(&key, false), ServerVerdict::Retransmission);
    assert_eq!(h.take_sent(), vec![Bytes::from_static(b"SIP/2.0 200")]);
    let again = h
        .layer
        .send_response(h.now, id, 200, Bytes::from_static(b"x"));
    assert_eq!(again, Err(Error::FinalAlreadySent));
    assert!(
        h.take_sent().is_empty(),
        "the server never retransmits on its own"
    );
}

#[test]
fn rfc3261_17_2_2_timer_j_is_64_t1_on_unreliable_transport() {
    let mut h = Harness::new();
    let key = skey("z9hG4bKa", "REGISTER");
    let id = h.new_server(&key, false);
    h.run_until(secs(1.0));
    h.respond(id, 200);
    h.run_until(secs(33.0) - MS);
    assert!(h.events.is_empty());
    assert_eq!(h.request(&key, false), ServerVerdict::Retransmission);
    h.run_until(secs(60.0));
    assert_eq!(terminated(&h.events), vec![secs(33.0)]);
    // After J the same branch is a new request again.
    assert!(matches!(h.request(&key, false), ServerVerdict::New(_)));
}

#[test]
fn rfc3261_17_2_2_timer_j_is_zero_on_reliable_transport() {
    let mut h = Harness::new();
    let id = h.new_server(&skey("z9hG4bKa", "REGISTER"), true);
    h.respond(id, 200);
    assert_eq!(h.sent.len(), 1, "the response still goes out");
    assert_eq!(terminated(&h.events), vec![Duration::ZERO]);
    assert_eq!(h.layer.server_state(id), None);
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn rfc3261_17_2_4_transport_error_ends_server_transaction() {
    let mut h = Harness::new();
    let id = h.new_server(&skey("z9hG4bKa", "INVITE"), false);
    h.respond(id, 486);
    h.layer.on_transport_error(id.into());
    h.run_until(secs(40.0));
    let id = TransactionId::Server(id);
    assert_eq!(
        h.events,
        vec![
            (Duration::ZERO, Event::TransportError { id }),
            (Duration::ZERO, Event::Terminated { id }),
        ]
    );
    assert_eq!(h.sent.len(), 1, "Timer G died with it");
}

#[test]
fn send_response_rejects_bad_status_and_stale_ids() {
    let mut h = Harness::new();
    let id = h.new_server(&skey("z9hG4bKa", "OPTIONS"), true);
    assert_eq!(
        h.layer.send_response(h.now, id, 99, Bytes::new()),
        Err(Error::InvalidStatus(99))
    );
    h.respond(id, 200);
    // The slot is reused by the next transaction; the old id must not reach it.
    let next = h.new_server(&skey("z9hG4bKb", "OPTIONS"), true);
    assert_ne!(id, next);
    assert_eq!(
        h.layer.send_response(h.now, id, 200, Bytes::new()),
        Err(Error::UnknownTransaction)
    );
    assert_eq!(h.layer.server_state(next), Some(ServerState::Trying));
}

#[test]
fn abort_ends_a_transaction_quietly() {
    let mut h = Harness::new();
    let key = ckey("z9hG4bKa", "INVITE");
    let id = h.start(&key, false);
    assert_eq!(h.response(&key, 180), ClientVerdict::Deliver(id));
    h.layer.abort(id.into());
    h.drain();
    assert_eq!(
        h.events,
        vec![(Duration::ZERO, Event::Terminated { id: id.into() })]
    );
}

// ---- bounds ------------------------------------------------------------------------------

#[test]
fn server_transactions_are_bounded() {
    let mut h = Harness::with_config(Config {
        max_server_transactions: 2,
        ..Config::default()
    });
    let first = skey("z9hG4bK1", "REGISTER");
    let id = h.new_server(&first, false);
    h.new_server(&skey("z9hG4bK2", "REGISTER"), false);
    let third = h
        .layer
        .on_request(h.now, skey("z9hG4bK3", "REGISTER"), "client", false);
    assert_eq!(third, Err(Error::TooManyServerTransactions { limit: 2 }));
    // Known transactions keep working at the bound.
    assert_eq!(h.request(&first, false), ServerVerdict::Retransmission);
    assert_eq!(
        h.request(&skey("z9hG4bKz", "ACK"), false),
        ServerVerdict::Ack2xxOrStray
    );
    // Client transactions have their own bound.
    h.start(&ckey("z9hG4bKc", "NOTIFY"), false);
    // Room again once one ends.
    h.layer
        .send_response(h.now, id, 200, Bytes::new())
        .expect("response");
    h.run_until(secs(33.0));
    assert!(matches!(
        h.request(&skey("z9hG4bK3", "REGISTER"), false),
        ServerVerdict::New(_)
    ));
}

#[test]
fn client_transactions_are_bounded() {
    let mut h = Harness::with_config(Config {
        max_client_transactions: 1,
        ..Config::default()
    });
    h.start(&ckey("z9hG4bK1", "NOTIFY"), false);
    let second = h.layer.start_client(
        h.now,
        ckey("z9hG4bK2", "NOTIFY"),
        "server",
        false,
        Bytes::new(),
    );
    assert_eq!(second, Err(Error::TooManyClientTransactions { limit: 1 }));
}

#[test]
fn timer_heap_stays_proportional_to_live_transactions() {
    let mut h = Harness::new();
    for i in 0..10_000 {
        let key = ckey(&format!("z9hG4bK{i}"), "NOTIFY");
        h.start(&key, true);
        // Timer F stays in the heap after the transaction ends at once (Timer K = 0).
        h.response(&key, 200);
    }
    assert_eq!(h.layer.client_count(), 0);
    assert!(
        h.layer.deadlines.len() <= 64 + 1,
        "{}",
        h.layer.deadlines.len()
    );
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn timers_scale_with_configured_t1() {
    let mut h = Harness::with_config(Config {
        timers: Timers {
            t1: Duration::from_millis(100),
            t2: Duration::from_millis(400),
            ..Timers::default()
        },
        ..Config::default()
    });
    h.start(&ckey("z9hG4bKa", "OPTIONS"), false);
    h.run_until(secs(10.0));
    let expected: Vec<Duration> = [0, 100, 300, 700, 1100, 1500, 1900, 2300, 2700, 3100, 3500]
        .into_iter()
        .chain((3900..6400).step_by(400))
        .map(Duration::from_millis)
        .collect();
    assert_eq!(h.send_times(), expected);
    assert_eq!(
        timed_out(&h.events),
        vec![(Duration::from_millis(6400), Timer::F)]
    );
}

#[test]
fn late_wakeup_does_not_burst_retransmissions() {
    let mut h = Harness::new();
    h.start(&ckey("z9hG4bKa", "OPTIONS"), false);
    h.take_sent();
    // The runtime oversleeps until 10 s: one retransmission, not five.
    h.now = h.base + secs(10.0);
    h.layer.handle_timeout(h.now);
    h.drain();
    assert_eq!(h.sent.len(), 1);
}
