//! Deterministic tests of the whole pipeline, named after the RFC sections they check.
//!
//! Everything runs on simulated time (`t0` plus offsets) against an in-memory user table that
//! stands in for the directory: a [`Harness`] feeds request text as a datagram or as a parsed
//! stream message, completes every [`Step::Lookup`] from the table, and parses what
//! [`Frontend::poll_transmit`] hands out with [`Message::parse`], as a client would.

mod aliases;
mod digest;
mod ntlm;
mod parse_errors;
mod registrar;
mod responses;
mod transactions;
mod validation;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_auth::{Algorithm, DigestConfig, NonceCount, ThrottleConfig, answer_challenge};
use herald_directory::{Aor, Directory, Domain, NewUser, SqliteDirectory, User};
use herald_registrar::RegistrarConfig;
use herald_sip::{HeaderName, Limits, Message, Response, Transport};

use crate::{
    FlowPath, Frontend, FrontendConfig, FrontendEvent, Inbound, Lookup, Payload, RegistrarEvent,
    Step,
};

/// The runtime's flow handle as the tests model it: a UDP socket towards one remote address, or
/// a numbered TCP/TLS connection.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum TestFlow {
    Udp(SocketAddr),
    Conn(u32),
}

impl FlowPath for TestFlow {
    fn datagram_to(&self, peer: SocketAddr) -> Option<Self> {
        match self {
            Self::Udp(_) => Some(Self::Udp(peer)),
            Self::Conn(_) => None,
        }
    }

    fn is_reliable(&self) -> bool {
        matches!(self, Self::Conn(_))
    }

    fn persistent(&self) -> Option<String> {
        match self {
            Self::Udp(peer) => Some(peer.to_string()),
            Self::Conn(_) => None,
        }
    }

    fn from_persistent(text: &str) -> Option<Self> {
        text.parse().ok().map(Self::Udp)
    }
}

/// The domain herald serves; also the realm (no override is configured).
const DOMAIN: &str = "example.test";
/// A domain herald does not serve.
const FOREIGN: &str = "foreign.test";
const SERVER: &str = "herald-test/1.0";

const ALICE_PASSWORD: &str = "alice-secret";
const BOB_PASSWORD: &str = "bob-secret";
/// Disabled in the directory, but with valid credentials for this password.
const DAVE_PASSWORD: &str = "dave-secret";

/// Where alice's client sends from, matching the sent-by of its Via.
const ALICE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 5060);
/// The outside address of a NAT in front of a client.
const NAT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 40000);

const CNONCE: &str = "0a4f113b";

/// The configuration every test starts from.
fn config() -> FrontendConfig {
    FrontendConfig {
        primary_domain: DOMAIN.into(),
        domains: vec![DOMAIN.into()],
        realm: None,
        server_header: SERVER.into(),
        limits: Limits::default(),
        registrar: RegistrarConfig::default(),
        transactions: herald_transaction::Config::default(),
        digest: DigestConfig::default(),
        throttle: ThrottleConfig::default(),
        presence: false,
        trusted_networks: Vec::new(),
        persist_registrations: false,
        homing: None,
        ntlm: None,
        domain_aliases: Vec::new(),
    }
}

/// The user table: alice and bob (enabled), dave (disabled). Users are minted by the real
/// directory (an in-memory SQLite store) because `User` is `#[non_exhaustive]`; the credentials
/// are the HA1s the admin CLI stores ([`crate::password_credentials`]).
fn user_table() -> HashMap<Aor, User> {
    let dir = SqliteDirectory::open_in_memory().expect("an in-memory store opens");
    dir.add_domain(&Domain::parse(DOMAIN).expect("valid domain"))
        .expect("domain added");
    let mut table = HashMap::new();
    for (user, password, enabled) in [
        ("alice", ALICE_PASSWORD, true),
        ("bob", BOB_PASSWORD, true),
        ("dave", DAVE_PASSWORD, false),
    ] {
        let aor = Aor::parse(&format!("{user}@{DOMAIN}")).expect("valid AOR");
        let mut new = NewUser::new(aor.clone());
        new.enabled = enabled;
        new.credentials =
            crate::password_credentials(&aor, DOMAIN, password).expect("valid credentials");
        let stored = dir.add_user(&new).expect("user added");
        table.insert(aor, stored);
    }
    table
}

/// One response as the client receives it.
#[derive(Debug)]
struct Sent {
    flow: TestFlow,
    bytes: Bytes,
    response: Response,
}

impl Sent {
    fn status(&self) -> u16 {
        self.response.status()
    }

    /// The first value of a header, as text.
    fn header(&self, name: HeaderName) -> Option<&str> {
        self.response.header_str(name)
    }

    /// Every header field with this name, one item per field.
    fn all(&self, name: HeaderName) -> Vec<&str> {
        self.response
            .headers_named(name)
            .map(|v| std::str::from_utf8(v).expect("UTF-8 header"))
            .collect()
    }

    /// The whole response, for assertion messages.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// A frontend on simulated time, with a user table for its lookups.
struct Harness {
    fe: Frontend<TestFlow>,
    t0: Instant,
    now: Instant,
    users: HashMap<Aor, User>,
    /// When set, every lookup fails as a broken store would.
    directory_down: bool,
    /// Every user looked up, in order.
    lookups: Vec<Aor>,
}

impl Harness {
    fn new() -> Self {
        Self::with_config(config())
    }

    fn with_config(config: FrontendConfig) -> Self {
        let t0 = Instant::now();
        Self {
            fe: Frontend::new(config, [7; 32], t0).expect("the test configuration is valid"),
            t0,
            now: t0,
            users: user_table(),
            directory_down: false,
            lookups: Vec::new(),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Feeds one message and returns the step as is (a lookup is left to the caller).
    fn step(
        &mut self,
        flow: TestFlow,
        transport: Transport,
        peer: SocketAddr,
        payload: Payload,
    ) -> Step<TestFlow> {
        self.fe.handle_inbound(
            self.now,
            Inbound {
                flow,
                transport,
                peer,
                payload,
            },
        )
    }

    /// A datagram from `peer`, step as is.
    fn udp_step(&mut self, peer: SocketAddr, text: &str) -> Step<TestFlow> {
        self.step(
            TestFlow::Udp(peer),
            Transport::Datagram,
            peer,
            Payload::Datagram(Bytes::copy_from_slice(text.as_bytes())),
        )
    }

    /// Answers a lookup from the table, or with an error while the directory is down.
    fn complete(&mut self, lookup: Lookup<TestFlow>) {
        let aor = lookup.user().clone();
        self.lookups.push(aor.clone());
        let result = if self.directory_down {
            Err("database is locked")
        } else {
            Ok(self.users.get(&aor).cloned())
        };
        self.fe.complete_lookup(self.now, lookup, result);
    }

    /// Feeds one message, completes its lookup if any, and returns what was sent.
    fn feed(
        &mut self,
        flow: TestFlow,
        transport: Transport,
        peer: SocketAddr,
        payload: Payload,
    ) -> Vec<Sent> {
        match self.step(flow, transport, peer, payload) {
            Step::Done => {}
            Step::Lookup(lookup) => self.complete(*lookup),
            Step::Close(flow) => panic!("unexpected close of {flow:?}"),
        }
        self.transmits()
    }

    /// A request as a UDP datagram from `peer`.
    fn udp(&mut self, peer: SocketAddr, text: &str) -> Vec<Sent> {
        self.feed(
            TestFlow::Udp(peer),
            Transport::Datagram,
            peer,
            Payload::Datagram(Bytes::copy_from_slice(text.as_bytes())),
        )
    }

    /// A request over UDP that must get exactly one answer.
    fn udp1(&mut self, peer: SocketAddr, text: &str) -> Sent {
        one(self.udp(peer, text))
    }

    /// A request cut from connection `conn` by the deframer and parsed.
    fn tcp(&mut self, conn: u32, peer: SocketAddr, text: &str) -> Vec<Sent> {
        let message = Message::parse_stream_frame(
            Bytes::copy_from_slice(text.as_bytes()),
            &Limits::default(),
        )
        .expect("the test request parses as a stream frame");
        self.feed(
            TestFlow::Conn(conn),
            Transport::Stream,
            peer,
            Payload::Parsed(Box::new(message)),
        )
    }

    fn tcp1(&mut self, conn: u32, peer: SocketAddr, text: &str) -> Sent {
        one(self.tcp(conn, peer, text))
    }

    /// Everything queued for the network, parsed as the client would.
    fn transmits(&mut self) -> Vec<Sent> {
        let mut out = Vec::new();
        while let Some(t) = self.fe.poll_transmit() {
            let response = match Message::parse(t.bytes.clone(), &Limits::default()) {
                Ok(Message::Response(r)) => r,
                other => panic!(
                    "herald sent something that is not a response ({other:?}):\n{}",
                    String::from_utf8_lossy(&t.bytes)
                ),
            };
            out.push(Sent {
                flow: t.flow,
                bytes: t.bytes,
                response,
            });
        }
        out
    }

    fn events(&mut self) -> Vec<RegistrarEvent<TestFlow>> {
        let mut out = Vec::new();
        while let Some(FrontendEvent::Registrar(e)) = self.fe.poll_event() {
            out.push(e);
        }
        out
    }

    /// Wakes the frontend at every deadline it asks for up to `until` (then sets the clock
    /// there) and returns what it sent, each with the offset from `t0` it was sent at.
    fn run_until(&mut self, until: Instant) -> Vec<(Duration, Sent)> {
        let mut out = Vec::new();
        while let Some(at) = self.fe.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.fe.handle_timeout(self.now);
            let offset = self.now - self.t0;
            out.extend(self.transmits().into_iter().map(|s| (offset, s)));
        }
        self.now = self.now.max(until);
        out
    }

    /// REGISTERs `req` the way a client does: unauthenticated first, then again with
    /// credentials for the challenge's `algorithm` (next CSeq, new branch). Returns the
    /// challenge and the final answer.
    fn register_with_auth(
        &mut self,
        peer: SocketAddr,
        req: &Req,
        username: &str,
        password: &str,
        algorithm: Algorithm,
    ) -> (Sent, Sent) {
        let challenge = self.udp1(peer, &req.text());
        assert_eq!(challenge.status(), 401, "{}", challenge.text());
        let retry = req.next().header(
            "Authorization",
            &credentials(
                &challenge, algorithm, username, password, "REGISTER", &req.uri, 1,
            ),
        );
        let answer = self.udp1(peer, &retry.text());
        (challenge, answer)
    }
}

/// The only element, with a clear failure otherwise.
fn one(mut sent: Vec<Sent>) -> Sent {
    assert_eq!(
        sent.len(),
        1,
        "expected exactly one response, got {:#?}",
        sent.iter().map(Sent::text).collect::<Vec<_>>()
    );
    sent.remove(0)
}

/// The credentials header value a client computes from a 401/407 for `algorithm`.
fn credentials(
    challenge: &Sent,
    algorithm: Algorithm,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let name = match challenge.status() {
        401 => HeaderName::WwwAuthenticate,
        407 => HeaderName::ProxyAuthenticate,
        other => panic!("{other} is not a challenge:\n{}", challenge.text()),
    };
    let wanted = format!("algorithm={}", algorithm.as_str());
    let value = challenge
        .all(name)
        .into_iter()
        .find(|v| v.split(", ").any(|p| p == wanted))
        .unwrap_or_else(|| panic!("no {wanted} challenge in\n{}", challenge.text()));
    answer_challenge(
        value,
        username,
        password,
        method,
        uri,
        CNONCE,
        NonceCount(nc),
    )
    .expect("the challenge is answerable")
    .to_string()
}

/// A fresh branch prefix for every request built, so requests never collide in the transaction
/// layer by accident (tests that want a retransmission resend the same text).
fn fresh_branch() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("z9hG4bK-test-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Request text, built field by field with a correct Content-Length.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    uri: String,
    /// `UDP` or `TCP`.
    via_transport: String,
    via_sent_by: String,
    /// The branch is this plus the CSeq number: [`Req::next`] gets a new one, and the same
    /// request built twice has the same one.
    branch_base: String,
    /// Appended after the branch, e.g. `;rport`.
    via_params: String,
    /// Further Via values below the top one (proxies on the way).
    lower_vias: Vec<String>,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    max_forwards: Option<u8>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    /// A request from alice's client at [`ALICE`] asking for rport.
    fn new(method: &str, uri: &str) -> Self {
        Self {
            method: method.into(),
            uri: uri.into(),
            via_transport: "UDP".into(),
            via_sent_by: ALICE.to_string(),
            branch_base: fresh_branch(),
            via_params: ";rport".into(),
            lower_vias: Vec::new(),
            from: format!("\"Alice\" <sip:alice@{DOMAIN}>;tag=1928301774"),
            to: format!("<sip:alice@{DOMAIN}>"),
            call_id: "a84b4c76e66710@192.0.2.10".into(),
            cseq: 1,
            max_forwards: Some(70),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// A REGISTER of `user`'s own AOR with one UDP Contact.
    fn register(user: &str) -> Self {
        let mut r = Self::new("REGISTER", &format!("sip:{DOMAIN}"));
        r.from = format!("<sip:{user}@{DOMAIN}>;tag=reg-{user}");
        r.to = format!("<sip:{user}@{DOMAIN}>");
        r.call_id = format!("reg-{user}@192.0.2.10");
        r.header("Contact", &format!("<sip:{user}@192.0.2.10:5060>"))
    }

    /// An OPTIONS to the server from `user`.
    fn options(user: &str) -> Self {
        let mut r = Self::new("OPTIONS", &format!("sip:{DOMAIN}"));
        r.from = format!("<sip:{user}@{DOMAIN}>;tag=opt-{user}");
        r.to = format!("<sip:{DOMAIN}>");
        r.call_id = format!("opt-{user}@192.0.2.10");
        r
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn via(mut self, transport: &str, sent_by: &str, params: &str) -> Self {
        self.via_transport = transport.into();
        self.via_sent_by = sent_by.into();
        self.via_params = params.into();
        self
    }

    fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }

    /// The client's next request in the same registration: CSeq + 1, hence a new branch.
    fn next(&self) -> Self {
        let mut r = self.clone();
        r.cseq += 1;
        r
    }

    fn branch(&self) -> String {
        format!("{}.{}", self.branch_base, self.cseq)
    }

    fn top_via(&self) -> String {
        format!(
            "SIP/2.0/{} {};branch={}{}",
            self.via_transport,
            self.via_sent_by,
            self.branch(),
            self.via_params
        )
    }

    fn text(&self) -> String {
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        out.push_str(&format!("Via: {}\r\n", self.top_via()));
        for via in &self.lower_vias {
            out.push_str(&format!("Via: {via}\r\n"));
        }
        if let Some(mf) = self.max_forwards {
            out.push_str(&format!("Max-Forwards: {mf}\r\n"));
        }
        out.push_str(&format!("From: {}\r\n", self.from));
        out.push_str(&format!("To: {}\r\n", self.to));
        out.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        out.push_str(&format!("CSeq: {} {}\r\n", self.cseq, self.method));
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        out.push_str(&self.body);
        out
    }
}

/// Checks what RFC 3261 §8.2.6.2 asks of every response to `req`: the Via values (top one
/// possibly stamped, see `responses`), From, Call-ID and CSeq copied, To copied with a tag
/// added when the request had none; plus our Server header.
fn assert_echoes(req: &Req, sent: &Sent) {
    let r = &sent.response;
    let text = sent.text();
    let vias: Vec<&str> = r.vias().iter().map(|v| v.as_str()).collect();
    assert_eq!(vias.len(), 1 + req.lower_vias.len(), "{text}");
    assert!(
        vias[0].starts_with(&req.top_via()),
        "top Via {:?} is not the request's {:?}\n{text}",
        vias[0],
        req.top_via()
    );
    assert_eq!(&vias[1..], req.lower_vias.as_slice(), "{text}");
    assert_eq!(
        sent.header(HeaderName::From),
        Some(req.from.as_str()),
        "{text}"
    );
    assert_eq!(r.call_id(), req.call_id, "{text}");
    assert_eq!(
        sent.header(HeaderName::CSeq),
        Some(format!("{} {}", req.cseq, req.method).as_str()),
        "{text}"
    );
    let to = sent.header(HeaderName::To).expect("a To header");
    let request_has_tag = req.to.contains(";tag=");
    if request_has_tag {
        assert_eq!(to, req.to, "{text}");
    } else {
        let tag = r.to().tag().expect("a To tag on the response");
        assert!(!tag.is_empty(), "{text}");
        assert_eq!(to, format!("{};tag={tag}", req.to), "{text}");
    }
    assert_eq!(sent.header(HeaderName::Server), Some(SERVER), "{text}");
}

/// The header fields of a response other than the ones that legitimately differ between two
/// requests (Via, From, To, Call-ID, CSeq), as (name, value) text.
fn comparable_headers(sent: &Sent) -> Vec<(String, String)> {
    sent.response
        .headers()
        .filter(|h| {
            !matches!(
                h.name(),
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            )
        })
        .map(|h| {
            (
                h.name().as_str().to_owned(),
                String::from_utf8_lossy(h.value()).into_owned(),
            )
        })
        .collect()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
