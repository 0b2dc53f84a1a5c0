//! Engine tests: a simulated network and clock around one [`Engine`], with a real registrar
//! producing the endpoint events. Test names follow the RFC section or the MS ladder step they
//! check.

mod aliases;
mod lync;
mod persist;
mod privacy;
mod props;
mod rfc3903;
mod rfc6665;
mod sipe_ladder;

use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_registrar::{
    Aor, Contact as RegContact, ContactBinding, RegisterRequest, Registrar, RegistrarConfig,
};
use herald_sip::{Message, Request, Response};

use super::*;

/// The wall clock at the simulated start (2024-01-01T00:00:00Z).
pub(super) const WALL0: i64 = 1_704_067_200_000;

pub(super) fn aor(s: &str) -> Aor {
    Aor::parse(s).expect("test AOR")
}

/// The engine, its store, a registrar, and a clock.
pub(super) struct Harness {
    pub(super) engine: Engine<u32>,
    pub(super) store: MemoryStore,
    pub(super) registrar: Registrar<u32>,
    pub(super) now: Instant,
    pub(super) next_flow: u32,
    pub(super) counter: u32,
}

impl Harness {
    pub(super) fn new() -> Self {
        Self::with(EngineConfig::default())
    }

    pub(super) fn with(config: EngineConfig) -> Self {
        let now = Instant::now();
        let store = MemoryStore::new();
        Self {
            engine: Engine::new(
                config,
                Box::new(store.clone()),
                now,
                Timestamp::from_unix_millis(WALL0),
            )
            .expect("valid config"),
            store,
            registrar: Registrar::new(RegistrarConfig {
                max_expires: 86_400,
                ..RegistrarConfig::default()
            })
            .expect("valid registrar config"),
            now,
            next_flow: 1,
            counter: 0,
        }
    }

    /// Moves the clock and runs both cores' timers.
    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.registrar.handle_timeout(self.now);
        self.drain_registrar();
        self.engine.handle_timeout(self.now);
    }

    fn drain_registrar(&mut self) {
        while let Some(e) = self.registrar.poll_event() {
            self.engine.on_registrar_event(self.now, e);
        }
    }

    /// Registers `user` from a new flow (epid `epid`); returns the flow.
    pub(super) fn register(&mut self, user: &str, epid: &str) -> u32 {
        let flow = self.next_flow;
        self.next_flow += 1;
        self.register_on(user, epid, flow, 3600);
        flow
    }

    pub(super) fn register_on(&mut self, user: &str, epid: &str, flow: u32, expires: u32) {
        self.register_moved(user, epid, flow, flow, expires);
    }

    /// Registers the Contact first registered over `contact_flow` again, now over `flow`: a
    /// client that reconnected.
    pub(super) fn register_moved(
        &mut self,
        user: &str,
        epid: &str,
        contact_flow: u32,
        flow: u32,
        expires: u32,
    ) {
        self.counter += 1;
        let req = RegisterRequest {
            aor: aor(user),
            call_id: format!("reg-{epid}"),
            cseq: self.counter,
            contacts: vec![RegContact::Binding(ContactBinding::new(format!(
                "sip:{epid}@10.0.0.{contact_flow}:5060;transport=tcp"
            )))],
            expires: Some(expires),
            flow,
            source: format!("10.0.0.{flow}:5060/tcp"),
            user_agent: None,
            epid: Some(epid.to_owned()),
        };
        self.registrar
            .register(self.now, req)
            .expect("test REGISTER accepted");
        self.drain_registrar();
    }

    pub(super) fn unregister(&mut self, user: &str, epid: &str, flow: u32) {
        self.counter += 1;
        let req = RegisterRequest {
            aor: aor(user),
            call_id: format!("reg-{epid}"),
            cseq: self.counter,
            contacts: vec![RegContact::Binding(ContactBinding::new(format!(
                "sip:{epid}@10.0.0.{flow}:5060;transport=tcp"
            )))],
            expires: Some(0),
            flow,
            source: format!("10.0.0.{flow}:5060/tcp"),
            user_agent: None,
            epid: Some(epid.to_owned()),
        };
        self.registrar
            .register(self.now, req)
            .expect("test un-REGISTER accepted");
        self.drain_registrar();
    }

    /// Hands a request (text without Content-Length) from `user` on `flow` to the engine and
    /// returns the response as the pipeline would send it (with a To tag if none was set).
    pub(super) fn send(&mut self, user: &str, flow: u32, text: &str) -> Response {
        let request = parse_request(text);
        let endpoint = EndpointKey::from_request(&request);
        let reply = self.engine.handle_request(
            self.now,
            AuthenticatedRequest {
                request,
                user: aor(user),
                flow,
                endpoint,
                contact: None,
            },
        );
        let mut b = reply.response;
        if reply.dialog_tag.is_none() {
            b = b.to_tag("pipeline-tag");
        }
        b.build().expect("engine responses parse")
    }

    /// Every queued outbound request, parsed (with a test Via added).
    pub(super) fn outbound(&mut self) -> Vec<(Outbound<u32>, Request)> {
        let mut out = Vec::new();
        while let Some(o) = self.engine.poll_outbound() {
            let bytes = o
                .request
                .with_via("SIP/2.0/TCP 192.0.2.1:5061;branch=z9hG4bKtest");
            let req = Request::parse(bytes, &herald_sip::Limits::default())
                .expect("engine requests parse");
            out.push((o, req));
        }
        out
    }

    /// Answers every queued NOTIFY with 200 and returns them all.
    pub(super) fn deliver(&mut self) -> Vec<(Outbound<u32>, Request)> {
        let out = self.outbound();
        for (o, _) in &out {
            if let OutboundKind::Notify(id) = o.kind {
                self.engine.on_notify_response(self.now, id, 200);
            }
        }
        out
    }
}

/// Builds a request: `head` holds the start line and headers (CRLF or LF separated, no
/// Content-Length); `body` is appended with its length.
pub(super) fn parse_request(text: &str) -> Request {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b),
        None => (text, ""),
    };
    let mut msg = String::new();
    for line in head.lines() {
        let line = line.trim();
        if !line.is_empty() {
            msg.push_str(line);
            msg.push_str("\r\n");
        }
    }
    msg.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    match Message::parse(Bytes::from(msg), &herald_sip::Limits::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("test request does not parse: {other:?}"),
    }
}

/// A SUBSCRIBE from `from` (epid `epid`) to `to`, new dialog `call`.
pub(super) fn subscribe(from: &str, to: &str, call: &str, extra: &str) -> String {
    let local = from.split('@').next().unwrap_or(from);
    format!(
        "SUBSCRIBE sip:{to} SIP/2.0
Via: SIP/2.0/TCP 10.0.0.9:5060;branch=z9hG4bK{call}
Max-Forwards: 70
From: <sip:{from}>;tag=ft-{call}
To: <sip:{to}>
Call-ID: {call}
CSeq: 1 SUBSCRIBE
Contact: <sip:{local}@10.0.0.9:5060;transport=tcp>
{extra}"
    )
}

/// The value of `name` in `r`, as text.
pub(super) fn hdr<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.header_str(herald_sip::HeaderName::parse(name).expect("test header name"))
}

/// The value of `name` in `r` (response), as text.
pub(super) fn rhdr<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.header_str(herald_sip::HeaderName::parse(name).expect("test header name"))
}

/// A body as text.
pub(super) fn text(b: &Bytes) -> String {
    String::from_utf8(b.to_vec()).expect("UTF-8 body")
}
