//! A client layer and a server layer joined by a simulated lossy network (after quinn's test
//! `Pair`). Messages use a toy wire format, `REQ <method> <branch>` and
//! `RSP <status> <method> <branch>`, since this crate does not parse SIP.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{
    ClientId, ClientKey, ClientVerdict, Config, Event, MethodKind, ServerKey, ServerVerdict,
    TransactionLayer,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Client,
    Server,
}

/// Decides whether the `n`th datagram (counted from 0) towards `to` is lost.
type Loss = Box<dyn FnMut(Peer, usize) -> bool>;

struct Pair {
    now: Instant,
    latency: Duration,
    reliable: bool,
    client: TransactionLayer<Peer>,
    server: TransactionLayer<Peer>,
    in_flight: Vec<(Instant, Peer, Bytes)>,
    loss: Loss,
    sent_to: [usize; 2],
    /// What the server TU answers to each method.
    answer: fn(&str) -> u16,
    // What the TUs saw.
    server_new: Vec<String>,
    server_retransmissions: usize,
    server_acks: usize,
    client_delivered: Vec<(String, u16)>,
    client_absorbed: usize,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
}

impl Pair {
    fn new(loss: Loss) -> Self {
        Self {
            now: Instant::now(),
            latency: Duration::from_millis(20),
            reliable: false,
            client: TransactionLayer::new(Config::default()),
            server: TransactionLayer::new(Config::default()),
            in_flight: Vec::new(),
            loss,
            sent_to: [0; 2],
            answer: |method| if method == "INVITE" { 486 } else { 200 },
            server_new: Vec::new(),
            server_retransmissions: 0,
            server_acks: 0,
            client_delivered: Vec::new(),
            client_absorbed: 0,
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    fn start(&mut self, method: &str, branch: &str) -> ClientId {
        let key = ClientKey::new(branch, MethodKind::from_name(method));
        let request = Bytes::from(format!("REQ {method} {branch}"));
        self.client
            .start_client(self.now, key, Peer::Server, self.reliable, request)
            .expect("client started")
    }

    /// Runs until both layers are idle and the network is empty.
    fn drive(&mut self) {
        for _ in 0..100_000 {
            self.flush();
            let next = [
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                self.in_flight.iter().map(|(at, _, _)| *at).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return };
            self.now = self.now.max(next);
            let now = self.now;
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
            let (due, later) = self.in_flight.drain(..).partition(|(at, _, _)| *at <= now);
            self.in_flight = later;
            for (_, to, payload) in due {
                match to {
                    Peer::Server => self.server_receives(&payload),
                    Peer::Client => self.client_receives(&payload),
                }
            }
        }
        panic!("the simulation did not settle");
    }

    /// Moves what both layers want to send onto the network, dropping what `loss` says.
    fn flush(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            self.put(t.destination, t.payload);
        }
        while let Some(t) = self.server.poll_transmit() {
            self.put(t.destination, t.payload);
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
    }

    fn put(&mut self, to: Peer, payload: Bytes) {
        let counter = &mut self.sent_to[to as usize];
        let n = *counter;
        *counter += 1;
        if !(self.loss)(to, n) {
            self.in_flight.push((self.now + self.latency, to, payload));
        }
    }

    /// The server's runtime and TU: match the request, answer new ones at once.
    fn server_receives(&mut self, payload: &[u8]) {
        let text = std::str::from_utf8(payload).expect("toy format");
        let mut words = text.split(' ');
        let (Some("REQ"), Some(method), Some(branch)) = (words.next(), words.next(), words.next())
        else {
            panic!("not a request: {text}");
        };
        let key = ServerKey::new(branch, "client.example", MethodKind::from_name(method))
            .expect("magic cookie");
        let verdict = self
            .server
            .on_request(self.now, key, Peer::Client, self.reliable)
            .expect("below the bound");
        match verdict {
            ServerVerdict::New(id) => {
                self.server_new.push(format!("{method} {branch}"));
                let status = (self.answer)(method);
                let response = Bytes::from(format!("RSP {status} {method} {branch}"));
                self.server
                    .send_response(self.now, id, status, response)
                    .expect("response accepted");
            }
            ServerVerdict::Retransmission => self.server_retransmissions += 1,
            ServerVerdict::AckForCompleted => self.server_acks += 1,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The client's runtime and TU: match the response, ACK non-2xx finals to INVITE.
    fn client_receives(&mut self, payload: &[u8]) {
        let text = std::str::from_utf8(payload).expect("toy format");
        let mut words = text.split(' ');
        let (Some("RSP"), Some(status), Some(method), Some(branch)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            panic!("not a response: {text}");
        };
        let status: u16 = status.parse().expect("status");
        let key = ClientKey::new(branch, MethodKind::from_name(method));
        match self.client.on_response(self.now, &key, status) {
            ClientVerdict::Deliver(_) => self.client_delivered.push((branch.into(), status)),
            ClientVerdict::NeedAck(id) => {
                self.client_delivered.push((branch.into(), status));
                let ack = Bytes::from(format!("REQ ACK {branch}"));
                self.client.send_ack(id, ack).expect("ack accepted");
            }
            ClientVerdict::Absorb => self.client_absorbed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn terminated(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Terminated { .. }))
        .count()
}

#[test]
fn rfc3261_17_non_invite_completes_despite_lost_datagrams() {
    // Lose the first two requests and the first response.
    let mut pair = Pair::new(Box::new(|to, n| match to {
        Peer::Server => n < 2,
        Peer::Client => n == 0,
    }));
    pair.start("REGISTER", "z9hG4bKreg1");
    pair.drive();
    assert_eq!(
        pair.server_new,
        vec!["REGISTER z9hG4bKreg1"],
        "TU saw it once"
    );
    // Request 3 created the transaction; request 4 (sent before response 1 would have arrived)
    // got the cached 200, which reached the client.
    assert_eq!(pair.server_retransmissions, 1);
    assert_eq!(pair.sent_to, [2, 4], "two responses, four requests");
    assert_eq!(pair.client_delivered, vec![("z9hG4bKreg1".into(), 200)]);
    assert_eq!(terminated(&pair.client_events), 1);
    assert_eq!(terminated(&pair.server_events), 1);
    assert!(
        pair.client_events
            .iter()
            .all(|e| !matches!(e, Event::TimedOut { .. }))
    );
}

#[test]
fn rfc3261_17_invite_rejection_survives_a_lost_ack() {
    // The first ACK (the second datagram towards the server) is lost.
    let mut pair = Pair::new(Box::new(|to, n| to == Peer::Server && n == 1));
    pair.start("INVITE", "z9hG4bKinv1");
    pair.drive();
    assert_eq!(pair.server_new, vec!["INVITE z9hG4bKinv1"]);
    // Timer G re-sent the 486; the client absorbed it and re-sent the ACK, which landed.
    assert_eq!(pair.client_delivered, vec![("z9hG4bKinv1".into(), 486)]);
    assert_eq!(pair.client_absorbed, 1);
    assert_eq!(pair.server_acks, 1);
    assert!(
        pair.server_events
            .iter()
            .all(|e| !matches!(e, Event::TimedOut { .. })),
        "the ACK arrived before Timer H"
    );
    assert_eq!(terminated(&pair.client_events), 1);
    assert_eq!(terminated(&pair.server_events), 1);
}

#[test]
fn rfc3261_17_many_transactions_over_a_lossy_network() {
    // 30 % loss both ways, from a fixed-seed xorshift so the run is repeatable.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut pair = Pair::new(Box::new(move |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % 10 < 3
    }));
    for i in 0..200 {
        pair.start("NOTIFY", &format!("z9hG4bKn{i}"));
    }
    pair.drive();
    assert_eq!(
        pair.server_new.len(),
        200,
        "each request reached the TU once"
    );
    assert_eq!(
        pair.client_delivered.len(),
        200,
        "each response reached the TU once"
    );
    assert!(pair.server_retransmissions > 0);
    assert_eq!(terminated(&pair.client_events), 200);
    assert_eq!(terminated(&pair.server_events), 200);
    assert_eq!(pair.client.client_count() + pair.server.server_count(), 0);
}

#[test]
fn rfc3261_17_reliable_transport_sends_each_message_once() {
    let mut pair = Pair::new(Box::new(|_, _| false));
    pair.reliable = true;
    pair.start("INVITE", "z9hG4bKinv1");
    pair.start("SUBSCRIBE", "z9hG4bKsub1");
    pair.drive();
    // INVITE, SUBSCRIBE, ACK one way; 486 and 200 the other.
    assert_eq!(pair.sent_to, [2, 3]);
    assert_eq!(pair.server_retransmissions, 0);
    assert_eq!(pair.client_absorbed, 0);
    assert_eq!(terminated(&pair.client_events), 2);
    assert_eq!(terminated(&pair.server_events), 2);
}
