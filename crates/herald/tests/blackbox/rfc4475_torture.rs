//! RFC 4475: every torture message of `crates/sip/tests/rfc4475/` sent, byte for byte, as one
//! UDP datagram to a running `herald serve`, and the answer compared with two tables:
//!
//! - [`herald_outcome`]: what herald answers, message by message, and why. This is exact, so
//!   any change of behaviour shows.
//! - `expectations.toml` (shared with herald-sip's parser tests): what RFC 4475 requires or
//!   permits. Every entry of the first table must be allowed by the second ([`permits`]).
//!
//! Two things about a running server the parser tests do not see:
//!
//! - herald authenticates. A valid REGISTER (or OPTIONS) that passes validation is answered
//!   401 (407) with a Digest challenge: that is "accept" for a server that requires
//!   authentication (RFC 4475 §3.3.7 says as much for a registrar). herald implements REGISTER,
//!   OPTIONS, ACK and CANCEL only, so a valid INVITE or MESSAGE gets 405 and an unknown method
//!   501, both after a successful parse (RFC 3261 §8.2.1) and before content checks (§8.2.3:
//!   415, 406) could apply.
//! - Where the answer goes. A request without `rport` is answered to its `received` address at
//!   the sent-by port, 5060 by default (RFC 3261 §18.2.2). The messages name hosts such as
//!   `192.0.2.1` or `host.example.com` and mostly no port, so the test sends them from a UDP
//!   socket bound to port 5060 on a loopback address of its own (127.0.x.y): `received` is
//!   that address, and every answer, stateless or not, reaches the socket.
//!
//! Some messages share a transaction key (branch, sent-by, method: RFC 3261 §17.2.3), e.g.
//! `cparam01` and `cparam02`. Sent to one server, the second is a retransmission of the first
//! and gets the first one's answer, which is correct SIP but not what the torture test is about;
//! such messages are sent in a second round to a fresh server.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::sip::{answer, pick_challenge, show};
use crate::support::{Account, Server, Setup, SipClient, Ua, assert_status};

/// The domain the torture messages register to.
const DOMAIN: &str = "example.com";
/// No answer within this long counts as "drop".
const DROP_WAIT: Duration = Duration::from_millis(300);
/// An expected answer must come within this long.
const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// What herald did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Status(u16),
    Drop,
}

/// herald's answer to each message, and why. Keep the reasons: they are the documentation of
/// herald's behaviour on RFC 4475.
fn herald_outcome(name: &str) -> (Outcome, &'static str) {
    use Outcome::{Drop, Status};
    match name {
        // 3.1.1 valid messages
        "wsinv" => (
            Status(405),
            "valid INVITE; herald serves no INVITE: 405 with Allow (§8.2.1)",
        ),
        "intmeth" => (
            Status(501),
            "valid request of an unknown method: 501 (§8.2.1)",
        ),
        "esc01" => (Status(405), "valid INVITE: 405"),
        "escnull" => (
            Status(401),
            "valid REGISTER for example.com: Digest challenge",
        ),
        "esc02" => (
            Status(501),
            "RE%47IST%45R is an unknown method, not REGISTER: 501",
        ),
        "lwsdisp" => (Status(407), "valid OPTIONS: herald authenticates it: 407"),
        "longreq" => (
            Status(405),
            "valid INVITE (RFC 2543 transaction key, 34 Vias): 405",
        ),
        "dblreq" => (
            Status(401),
            "the REGISTER is challenged; the trailing INVITE is ignored",
        ),
        "semiuri" => (Status(407), "valid OPTIONS: 407"),
        "transports" => (Status(407), "valid OPTIONS: 407"),
        "mpart01" => (
            Status(405),
            "valid MESSAGE; herald serves no MESSAGE yet: 405",
        ),
        "unreason" => (
            Drop,
            "a response that matches no client transaction is discarded",
        ),
        "noreason" => (
            Drop,
            "a response that matches no client transaction is discarded",
        ),
        // 3.1.2 invalid messages
        "badinv01" => (Status(400), "empty Via/Contact parameters: parse error"),
        "clerr" => (Status(400), "Content-Length larger than the datagram"),
        "ncl" => (Status(400), "negative Content-Length"),
        "scalar02" => (Status(400), "CSeq over 2**32-1"),
        "scalarlg" => (Drop, "malformed response: discarded"),
        "quotbal" => (Status(400), "unterminated quoted display name"),
        "ltgtruri" => (Status(400), "<> around the Request-URI (strict choice)"),
        "lwsruri" => (Status(400), "LWS inside the Request-URI"),
        "lwsstart" => (
            Status(400),
            "several SP between Request-Line elements (strict choice)",
        ),
        "trws" => (Status(400), "SP after SIP/2.0 (strict choice)"),
        "escruri" => (Status(400), "headers in the Request-URI (strict choice)"),
        "baddate" => (
            Status(405),
            "Date is not used, so the INVITE is valid for herald: 405",
        ),
        "regbadct" => (
            Status(400),
            "Contact URI with ? outside <>: malformed Contact",
        ),
        "badaspec" => (Status(400), "spaces inside <> (strict choice)"),
        "baddn" => (Status(400), "unquoted display name with ','"),
        "badvers" => (Status(505), "SIP/7.0"),
        "mismatch01" => (Status(400), "CSeq method differs from the request method"),
        "mismatch02" => (
            Status(400),
            "CSeq mismatch is a parse error before the method check (400 allowed)",
        ),
        "bigcode" => (Drop, "response with a status over 699: discarded"),
        // 3.2 transaction layer
        "badbranch" => (
            Status(407),
            "bare magic cookie: RFC 2543 matching fallback, then 407 (accept)",
        ),
        // 3.3 application layer
        "insuf" => (Status(400), "no Call-ID, From, To: parse error"),
        "unkscm" => (Status(416), "unknown Request-URI scheme"),
        "novelsc" => (Status(416), "soap.beep Request-URI is never served: 416"),
        "unksm2" => (
            Status(400),
            "To is not a SIP address of record (§10.3 step 2)",
        ),
        "bext01" => (
            Status(420),
            "Require: nothingSupportsThis, with Unsupported",
        ),
        "invut" => (
            Status(405),
            "INVITE is refused (§8.2.1) before its Content-Type matters",
        ),
        "regaut01" => (
            Status(401),
            "unknown Authorization scheme: a Digest challenge",
        ),
        "multi01" => (Status(400), "duplicate single-valued headers: parse error"),
        "mcl01" => (Status(400), "two Content-Length values"),
        "bcast" => (
            Drop,
            "a response that matches no client transaction is discarded",
        ),
        "zeromf" => (Status(483), "OPTIONS for a user with Max-Forwards 0: 483"),
        "cparam01" => (
            Status(401),
            "valid REGISTER: challenged (the binding needs credentials)",
        ),
        "cparam02" => (Status(401), "valid REGISTER: challenged"),
        "regescrt" => (Status(401), "valid REGISTER: challenged"),
        "sdp01" => (
            Status(405),
            "INVITE is refused (§8.2.1) before its Accept matters",
        ),
        // 3.4 backward compatibility
        "inv2543" => (
            Status(405),
            "RFC 2543 INVITE parsed (no branch, no Content-Length): 405",
        ),
        // not in the RFC body
        "test" => (Drop, "no Via: nowhere to send an answer"),
        other => panic!("no herald outcome recorded for {other}: add it to herald_outcome"),
    }
}

/// Sends every request and response of the RFC 4475 archive to herald over UDP and checks the
/// answers (§3.1.1 to §3.4, and the unlisted `test.dat`), then that the server still answers.
#[test]
fn rfc4475_3_every_torture_message_gets_the_expected_answer_over_udp() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip/tests/rfc4475");
    let table: toml::Table = std::fs::read_to_string(dir.join("expectations.toml"))
        .expect("reading expectations.toml")
        .parse()
        .expect("parsing expectations.toml");
    let mut messages: Vec<Torture> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("reading the rfc4475 folder") {
        let path = entry.expect("a folder entry").path();
        if path.extension().is_none_or(|e| e != "dat") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name")
            .to_owned();
        let raw = std::fs::read(&path).expect("reading a message");
        let e = table
            .get(&name)
            .and_then(|v| v.as_table())
            .unwrap_or_else(|| panic!("{name} is missing from expectations.toml"));
        messages.push(Torture::new(name, raw, e));
    }
    messages.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(messages.len(), 50, "RFC 4475's archive has 50 messages");

    // The recorded herald outcome must itself be allowed by the RFC's table.
    let mut problems = Vec::new();
    for m in &messages {
        let (outcome, why) = herald_outcome(&m.name);
        if !permits(m, outcome) {
            problems.push(format!(
                "{}: herald_outcome {outcome:?} ({why}) is not allowed by expectations.toml \
                 (expect={}, app_status={:?}, also={:?})",
                m.name, m.expect, m.app_status, m.also
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Rounds without two messages of one transaction key.
    let mut rounds: Vec<(BTreeSet<String>, Vec<&Torture>)> = Vec::new();
    for m in &messages {
        let key = m.transaction_key();
        let slot = rounds
            .iter()
            .position(|(keys, _)| key.as_ref().is_none_or(|k| !keys.contains(k)));
        let i = slot.unwrap_or_else(|| {
            rounds.push((BTreeSet::new(), Vec::new()));
            rounds.len() - 1
        });
        if let Some(k) = key {
            rounds[i].0.insert(k);
        }
        rounds[i].1.push(m);
    }
    assert!(
        rounds.len() <= 3,
        "unexpectedly many rounds: {}",
        rounds.len()
    );

    let mut report = Vec::new();
    for (round, (_, batch)) in rounds.iter().enumerate() {
        let server = Setup::new(DOMAIN)
            .tcp(&[])
            .tls(&[])
            .user("alice", "pw-alice")
            .start();
        let catcher = Catcher::bind();
        for m in batch {
            let (want, why) = herald_outcome(&m.name);
            let got = catcher.exchange(&server, m, want);
            let line = format!(
                "round {round} {:<10} §{:<8} expect={:<18} herald={got:?} ({why})",
                m.name, m.section, m.expect
            );
            if got != want {
                problems.push(format!("{line}  <-- MISMATCH, recorded {want:?}"));
            }
            report.push(line);
        }
        // Late answers to messages that should have been dropped.
        for (call_id, status) in catcher.drain(DROP_WAIT) {
            if let Some(m) = batch
                .iter()
                .find(|m| m.call_id.as_deref() == Some(call_id.as_str()))
                && herald_outcome(&m.name).0 == Outcome::Drop
            {
                problems.push(format!(
                    "{}: late answer {status} to a dropped message",
                    m.name
                ));
            }
        }
        // The server is still alive and registers a user.
        let mut ua = Ua::new(
            SipClient::udp(server.udp()),
            Account::new("alice", "pw-alice", DOMAIN),
        );
        assert_status(&ua.register(&["<sip:alice@192.0.2.1>"], Some(300)), 200);
        drop(server);
    }
    println!("{}", report.join("\n"));
    assert!(
        problems.is_empty(),
        "{}\n\nall:\n{}",
        problems.join("\n"),
        report.join("\n")
    );
}

/// RFC 4475 §3.3.12-§3.3.14 go beyond the first answer: the REGISTER "should succeed", and a
/// later retrieval must show the Contact as sent. herald challenges first, so the messages are
/// sent again with Digest credentials, changed only where the test must: the Via (so that the
/// answer reaches this test: `rport`, no 5060), the CSeq (one higher, as a client retrying
/// after 401 does), and the added Authorization. The Contact lines stay byte for byte.
#[test]
fn rfc4475_3_3_12_to_3_3_14_registered_contacts_keep_their_parameters() {
    let s = Setup::new(DOMAIN)
        .tcp(&[])
        .tls(&[])
        .user("watson", "pw-watson")
        .user("user", "pw-user")
        .start();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip/tests/rfc4475");
    let load = |name: &str| std::fs::read(dir.join(format!("{name}.dat"))).expect("a message");

    // §3.3.12: `unknownparam` outside <> is a Contact parameter, not a URI parameter.
    let ok = register_torture(&s, &load("cparam01"), "watson");
    let c = one_contact(&ok, "gw1.example.net");
    assert_eq!(
        c.uri().sip().and_then(|u| u.param("unknownparam")),
        None,
        "{}",
        show(&ok)
    );

    // §3.3.13: inside <> it is a URI parameter, and a retrieval shows it.
    let ok = register_torture(&s, &load("cparam02"), "watson");
    let c = one_contact(&ok, "unknownparam");
    assert_eq!(
        c.uri().sip().and_then(|u| u.param("unknownparam")),
        Some(None),
        "{}",
        show(&ok)
    );
    let mut watson = Ua::new(
        SipClient::udp(s.udp()),
        Account::new("watson", "pw-watson", DOMAIN),
    );
    let q = watson.register(&[], None);
    assert_status(&q, 200);
    assert!(
        q.contacts().expect("contacts").contacts().iter().any(|c| c
            .uri()
            .sip()
            .and_then(|u| u.param("unknownparam"))
            .is_some()),
        "retrieval lost the url-parameter:\n{}",
        show(&q)
    );

    // §3.3.14: the escaped Route header stays in the Contact URI, in the 200 and on retrieval.
    let ok = register_torture(&s, &load("regescrt"), "user");
    let c = one_contact(&ok, "example.com");
    let headers = c.uri().sip().and_then(|u| u.headers()).map(str::to_owned);
    assert_eq!(
        headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E"),
        "{}",
        show(&ok)
    );
    let mut user = Ua::new(
        SipClient::udp(s.udp()),
        Account::new("user", "pw-user", DOMAIN),
    );
    let q = user.register(&[], None);
    let c = one_contact(&q, "example.com");
    assert_eq!(
        c.uri().sip().and_then(|u| u.headers()),
        Some("Route=%3Csip:sip.example.com%3E"),
        "{}",
        show(&q)
    );
}

/// Sends a torture REGISTER with this client's Via, answers the 401 with `user`'s password,
/// and returns the 200.
fn register_torture(s: &Server, raw: &[u8], user: &str) -> herald_sip::Response {
    let mut client = SipClient::udp(s.udp());
    let text = String::from_utf8(raw.to_vec()).expect("a UTF-8 message");
    let first = rewrite(&text, &client.via(), 0, None);
    let r = client.request(&first);
    assert_status(&r, 401);
    let challenge = pick_challenge(&r, "WWW-Authenticate", None);
    let acc = Account::new(user, &format!("pw-{user}"), DOMAIN);
    let auth = answer(
        &challenge,
        &acc,
        &acc.password,
        "REGISTER",
        "sip:example.com",
        1,
    );
    let second = rewrite(&text, &client.via(), 1, Some(&auth));
    let r = client.request(&second);
    assert_status(&r, 200);
    r
}

/// The message with its top Via replaced, its CSeq raised by `bump`, and an Authorization
/// header added after the last header.
fn rewrite(text: &str, via: &str, bump: u32, auth: Option<&str>) -> String {
    let (head, body) = text.split_once("\r\n\r\n").expect("a header section");
    let mut lines: Vec<String> = Vec::new();
    let mut via_done = false;
    for line in head.split("\r\n") {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if (name == "via" || name == "v") && !via_done {
            lines.push(format!("Via: {via}"));
            via_done = true;
        } else if name == "cseq" {
            let value = line
                .split_once(':')
                .map(|(_, v)| v.trim())
                .unwrap_or_default();
            let (n, method) = value.split_once(' ').expect("CSeq: N METHOD");
            let n: u32 = n.parse().expect("a CSeq number");
            lines.push(format!("CSeq: {} {method}", n + bump));
        } else {
            lines.push(line.to_owned());
        }
    }
    if let Some(a) = auth {
        lines.push(format!("Authorization: {a}"));
    }
    format!("{}\r\n\r\n{body}", lines.join("\r\n"))
}

/// The Contact of a 200 whose URI text contains `needle`; fails unless exactly one does.
fn one_contact(r: &herald_sip::Response, needle: &str) -> herald_sip::Contact {
    assert_status(r, 200);
    let list = r
        .contacts()
        .unwrap_or_else(|e| panic!("bad Contact ({e}):\n{}", show(r)));
    let found: Vec<&herald_sip::Contact> = list
        .contacts()
        .iter()
        .filter(|c| c.uri().to_string().contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "Contacts with {needle:?}:\n{}", show(r));
    found[0].clone()
}

/// One message of the archive with its expectations.
struct Torture {
    name: String,
    raw: Vec<u8>,
    section: String,
    kind: String,
    valid: bool,
    expect: String,
    app_status: Option<u16>,
    also: Vec<String>,
    method: Option<String>,
    call_id: Option<String>,
    via: Option<String>,
}

impl Torture {
    fn new(name: String, raw: Vec<u8>, e: &toml::Table) -> Self {
        let s = |k: &str| {
            e.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let head = lenient_headers(&raw);
        let start = raw.split(|&b| b == b'\n').next().unwrap_or_default();
        let start = String::from_utf8_lossy(start).trim().to_owned();
        let method = (!start.starts_with("SIP/"))
            .then(|| start.split(' ').next().unwrap_or_default().to_owned());
        Self {
            section: s("section"),
            kind: s("kind"),
            valid: e.get("valid").and_then(|v| v.as_bool()).unwrap_or(false),
            expect: s("expect"),
            app_status: e
                .get("app_status")
                .and_then(|v| v.as_integer())
                .map(|v| u16::try_from(v).expect("a status code")),
            also: e
                .get("also_acceptable")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            method,
            call_id: find(&head, &["call-id", "i"]),
            via: find(&head, &["via", "v"]),
            name,
            raw,
        }
    }

    /// Branch, sent-by and method of the top Via, as RFC 3261 §17.2.3 matches transactions;
    /// `None` without a branch (RFC 2543 matching uses the Call-ID, unique here).
    fn transaction_key(&self) -> Option<String> {
        let via = self.via.as_deref()?;
        let first = via.split(',').next().unwrap_or_default();
        let mut parts = first.split(';');
        let sent_by = parts
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let branch = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("branch")
                .then(|| v.trim().to_owned())
        })?;
        let method = match self.method.as_deref() {
            Some("ACK") | Some("INVITE") => "INVITE".to_owned(),
            Some(m) => m.to_owned(),
            None => return None,
        };
        Some(format!("{branch}|{sent_by}|{method}"))
    }

    fn branch(&self) -> Option<String> {
        let via = self.via.as_deref()?;
        via.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("branch")
                .then(|| v.trim().to_owned())
        })
    }
}

/// Whether expectations.toml allows `outcome` for `m`. The vocabulary is the one of
/// `crates/sip/tests/rfc4475/README.md`, read for a server that authenticates:
/// - `accept`: parsed and handed to the application. For a request, any answer the application
///   gives after a successful parse (challenge, 405/501, 416, 420, 483, 2xx), never a parse
///   error (400, 505, 513); for a response, being discarded (RFC 3261 §18.1.2).
/// - `accept_then_reject` (+ `app_status`): that status; or the challenge, for a request that
///   reaches authentication before the check that would give it; or 405/501 for a method herald
///   does not implement, since §8.2.1 comes before the content checks of §8.2.2-§8.2.3.
/// - a status: that status; `drop`: no answer.
fn permits(m: &Torture, outcome: Outcome) -> bool {
    std::iter::once(m.expect.as_str())
        .chain(m.also.iter().map(String::as_str))
        .any(|word| permits_word(m, word, outcome))
}

fn permits_word(m: &Torture, word: &str, outcome: Outcome) -> bool {
    const APPLICATION: &[u16] = &[200, 401, 403, 405, 407, 416, 420, 423, 483, 501];
    let implemented = matches!(
        m.method.as_deref(),
        Some("REGISTER" | "OPTIONS" | "ACK" | "CANCEL")
    );
    match (word, outcome) {
        ("drop", Outcome::Drop) => true,
        ("accept", Outcome::Drop) => m.kind == "response",
        ("accept", Outcome::Status(s)) => m.kind == "request" && APPLICATION.contains(&s),
        (w, Outcome::Status(s)) if w.starts_with("accept_then_reject") => {
            let app = w
                .strip_prefix("accept_then_reject:")
                .and_then(|v| v.parse().ok())
                .or(m.app_status);
            Some(s) == app
                || (m.valid && matches!(s, 401 | 407))
                || (!implemented && matches!(s, 405 | 501))
        }
        (status, Outcome::Status(s)) => status.parse::<u16>().is_ok_and(|want| want == s),
        _ => false,
    }
}

/// The UDP socket the messages are sent from, on port 5060 of a loopback address of its own.
struct Catcher {
    sock: UdpSocket,
}

impl Catcher {
    fn bind() -> Self {
        // 127.0.x.y with x, y from the process id: two test runs at once do not collide, and
        // nothing else binds these addresses.
        let pid = std::process::id();
        let mut last_error = None;
        for i in 0..32u32 {
            let n = pid.wrapping_add(i.wrapping_mul(7919));
            let ip = Ipv4Addr::new(127, 45 + (n % 50) as u8, ((n / 50) % 250) as u8 + 1, 2);
            match UdpSocket::bind(SocketAddr::new(IpAddr::V4(ip), 5060)) {
                Ok(sock) => return Self { sock },
                Err(e) => last_error = Some(e),
            }
        }
        panic!(
            "cannot bind UDP port 5060 on a 127.x.y.2 address ({last_error:?}). The RFC 4475 \
             messages name no port in their Via, so herald answers to port 5060 (RFC 3261 \
             §18.2.2); is something (a `herald serve --demo`?) bound to 0.0.0.0:5060?"
        );
    }

    /// Sends `m` to the server and waits for its answer (matched by Call-ID, else branch).
    fn exchange(&self, server: &Server, m: &Torture, expected: Outcome) -> Outcome {
        self.sock
            .send_to(&m.raw, server.udp())
            .unwrap_or_else(|e| panic!("sending {}: {e}", m.name));
        let wait = match expected {
            Outcome::Drop => DROP_WAIT,
            Outcome::Status(_) => ANSWER_WAIT,
        };
        let deadline = Instant::now() + wait;
        let branch = m.branch();
        loop {
            let Some(raw) = self.recv(deadline) else {
                return Outcome::Drop;
            };
            let head = lenient_headers(&raw);
            let matches = match &m.call_id {
                Some(id) => find(&head, &["call-id", "i"]).as_deref() == Some(id.as_str()),
                None => branch.as_ref().is_some_and(|b| {
                    find(&head, &["via", "v"]).is_some_and(|v| v.contains(b.as_str()))
                }),
            };
            if matches {
                return Outcome::Status(status_of(&raw).unwrap_or_else(|| {
                    panic!(
                        "{}: the answer has no status line:\n{}",
                        m.name,
                        String::from_utf8_lossy(&raw)
                    )
                }));
            }
        }
    }

    /// Everything that arrives within `wait`, as (Call-ID, status).
    fn drain(&self, wait: Duration) -> BTreeMap<String, u16> {
        let deadline = Instant::now() + wait;
        let mut out = BTreeMap::new();
        while let Some(raw) = self.recv(deadline) {
            let head = lenient_headers(&raw);
            if let (Some(id), Some(status)) = (find(&head, &["call-id", "i"]), status_of(&raw)) {
                out.insert(id, status);
            }
        }
        out
    }

    fn recv(&self, deadline: Instant) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 70_000];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => return Some(buf[..n].to_vec()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => panic!("receiving: {e}"),
            }
        }
    }
}

/// `NNN` of `SIP/2.0 NNN reason`.
fn status_of(raw: &[u8]) -> Option<u16> {
    let line = raw.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let rest = line.strip_prefix("SIP/2.0 ")?;
    rest.get(..3)?.parse().ok()
}

/// Header fields as (lower-case name, value), unfolded, without any grammar: enough to find
/// the Call-ID and Via of broken messages.
fn lenient_headers(raw: &[u8]) -> Vec<(String, String)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n').skip(1) {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

fn find(head: &[(String, String)], names: &[&str]) -> Option<String> {
    head.iter()
        .find(|(n, _)| names.contains(&n.as_str()))
        .map(|(_, v)| v.clone())
}
