//! A real Debian SIMPLE client against `herald serve` (issue 3: "a Debian SIMPLE client sees a
//! Lync-dialect user go Busy"): baresip (Debian `baresip-core`), run headless with a private
//! config folder, registers as one user with Digest over UDP (one test: TCP), SUBSCRIBEs to
//! the presence of the contact in its contacts file (`;presence=p2p`) and PUBLISHes its own
//! status as PIDF. The test drives and reads it through its `ctrl_tcp` module (JSON in netstrings): the
//! `contacts` command lists each contact with the status baresip derived from the last
//! NOTIFY, and `presence_online` / `presence_offline` change its own status.
//!
//! What baresip 1.0 understands of PIDF (its `presence` module): `<basic>open</basic>` is
//! Online, `<rpid:busy/>` or `<rpid:on-the-phone/>` Busy, `<rpid:away/>` (and anything closed)
//! Offline. It publishes only `open` or `closed`. Two things about its SIP stack (libre 1.1)
//! shape the server's config here: it answers the first challenge of a 401/407 only and knows
//! MD5 only (as the `[sip] digest_algorithms` doc says of SIPp), and it gives up on a 401 that
//! also offers NTLM (it parses every `WWW-Authenticate` as Digest). So the server offers
//! Digest MD5 alone (`digest_algorithms = ["MD5"]`, `auth_schemes = ["digest"]`), which is
//! how a deployment with such clients is configured.
//!
//! One test configures baresip with the server's IP address in place of a domain (no outbound
//! proxy), as a client without DNS is set up: herald takes its own listen addresses as its
//! domain.
//!
//! Each state baresip shows is also checked against the NOTIFY it received, which it prints
//! with `-s` (SIP trace): a wrong mapping fails on the display (Busy, Online) or on the PIDF
//! (Away must arrive as basic open with `<rpid:away/>`, not as closed, though both display
//! Offline).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::spread;
use crate::support::presence::{
    CATEGORY_PUBLISH, Peer, Received, assert_answer, category_publish, state_publication,
};
use crate::support::{Account, Server, Setup, SipClient, tail};

const DOMAIN: &str = "baresip.test";
/// SIPE's userState instance (0x20000000).
const USER_STATE: u32 = 536_870_912;
/// How long baresip may take to show a change.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server baresip can sign in to: Digest MD5 only (see the module documentation), UDP and
/// TCP.
fn start_server() -> Server {
    let mut setup = Setup::new(DOMAIN)
        .tls(&[])
        .sip("digest_algorithms", "[\"MD5\"]")
        .sip("auth_schemes", "[\"digest\"]");
    for u in ["bs-alice", "bs-bob", "bs-carol"] {
        setup = setup.user(u, &password(u));
    }
    setup.start()
}

fn password(user: &str) -> String {
    format!("pw-{user}")
}

fn uri(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

fn peer(server: &Server, user: &str) -> Peer {
    Peer::new(
        SipClient::udp(server.udp()),
        Account::new(user, &password(user), DOMAIN),
    )
}

/// The folder of baresip's loadable modules (Debian's path, or `HERALD_BARESIP_MODULES`).
fn module_path() -> PathBuf {
    let dir = std::env::var_os("HERALD_BARESIP_MODULES")
        .map_or_else(|| PathBuf::from("/usr/lib/baresip/modules"), PathBuf::from);
    for m in ["account.so", "contact.so", "presence.so", "ctrl_tcp.so"] {
        assert!(
            dir.join(m).is_file(),
            "baresip's {m} is not in {} (Debian's baresip-core has it; set \
             HERALD_BARESIP_MODULES for another folder)",
            dir.display()
        );
    }
    dir
}

/// A headless baresip registered as `user` with `contact` in its contact list; killed when
/// dropped. Its output (with the SIP trace) goes to a file in its config folder.
struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    ctrl: SocketAddr,
}

impl Baresip {
    /// baresip signed in as `user` through the server as outbound proxy (the usual set-up:
    /// AOR in the domain, the server's address as proxy).
    fn start(server: &Server, user: &str, contact: &str) -> Self {
        Self::start_over(server, "udp", user, contact)
    }

    /// [`Baresip::start`] with `transport` (`udp`, `tcp`) to the server.
    fn start_over(server: &Server, transport: &str, user: &str, contact: &str) -> Self {
        let proxy = match transport {
            "tcp" => server.tcp(),
            _ => server.udp(),
        };
        let account = format!(
            "<{}>;auth_pass={};outbound=\"sip:{proxy};transport={transport}\";regint=600;pubint=600\n",
            uri(user),
            password(user),
        );
        Self::start_with(&account, contact)
    }

    /// baresip with the account line `account` (baresip's `accounts` file syntax).
    fn start_with(account: &str, contact: &str) -> Self {
        let binary = crate::support::tool_binary("baresip", "baresip-core");
        let modules = module_path();
        let dir = tempfile::Builder::new()
            .prefix("herald-baresip-")
            .tempdir()
            .expect("creating baresip's config folder");
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ctrl = SocketAddr::new(loopback, crate::support::ports::free_port(&[loopback], &[]));
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:0\n\
             sip_trans_def\t\tudp\n\
             module_path\t\t{}\n\
             module_app\t\taccount.so\n\
             module_app\t\tcontact.so\n\
             module_app\t\tpresence.so\n\
             module_app\t\tctrl_tcp.so\n\
             ctrl_tcp_listen\t\t{ctrl}\n",
            modules.display()
        );
        let contacts = format!("\"{contact}\" <{contact}>;presence=p2p\n");
        for (name, text) in [
            ("config", config),
            ("accounts", account.to_owned()),
            ("contacts", contacts),
        ] {
            std::fs::write(dir.path().join(name), text).expect("writing baresip's config");
        }
        let log = std::fs::File::create(dir.path().join("baresip.log")).expect("baresip's log");
        let child = Command::new(&binary)
            .arg("-f")
            .arg(dir.path())
            .arg("-s")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a second handle on the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut b = Self { child, dir, ctrl };
        b.wait_for_ctrl();
        b
    }

    /// Waits for `ctrl_tcp` to listen (baresip loads its modules first).
    fn wait_for_ctrl(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.ctrl, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("baresip exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "baresip's ctrl_tcp never listened on {}:\n{}",
                self.ctrl,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything baresip printed, without colour codes.
    fn log(&self) -> String {
        let raw = std::fs::read(self.dir.path().join("baresip.log")).unwrap_or_default();
        strip_ansi(&String::from_utf8_lossy(&raw))
    }

    /// Runs a long command through `ctrl_tcp` and returns its `data` (what it printed).
    fn command(&self, command: &str) -> String {
        let mut s = TcpStream::connect_timeout(&self.ctrl, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connecting to baresip's ctrl_tcp: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let json = format!(r#"{{"command":"{command}","token":"herald"}}"#);
        s.write_all(format!("{}:{json},", json.len()).as_bytes())
            .expect("sending a ctrl_tcp command");
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        // One netstring: `<length>:<json>,`.
        loop {
            let n = s.read(&mut buf).unwrap_or_else(|e| {
                panic!("no answer from baresip to {command}: {e}\n{}", self.log())
            });
            assert!(n > 0, "baresip closed ctrl_tcp during {command}");
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            if let Some((len, rest)) = text.split_once(':')
                && let Ok(len) = len.parse::<usize>()
                && rest.len() > len
            {
                let json = &rest[..len];
                assert!(
                    json.contains(r#""ok":true"#),
                    "baresip refused {command}: {json}"
                );
                return json_string_field(json, "data").unwrap_or_default();
            }
        }
    }

    /// The status baresip shows for `contact` (`Online`, `Offline`, `Busy`, `Unknown`).
    fn status_of(&self, contact: &str) -> Option<String> {
        let list = strip_ansi(&self.command("contacts"));
        let needle = format!("<{contact}>");
        list.lines().find(|l| l.contains(&needle)).and_then(|l| {
            l.trim_start_matches(|c: char| c == '>' || c.is_whitespace())
                .split_whitespace()
                .next()
                .map(str::to_owned)
        })
    }

    /// Polls the contact list until `contact` shows `status`; returns when it was seen.
    #[track_caller]
    fn wait_for_status(&self, contact: &str, status: &str) -> Instant {
        let deadline = Instant::now() + CHANGE_TIMEOUT;
        loop {
            let now = self.status_of(contact);
            if now.as_deref() == Some(status) {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "baresip never showed {contact} as {status} (last: {now:?}); its log:\n{}",
                tail(&self.log(), 12_000)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The body of the last NOTIFY baresip received (from its SIP trace).
    fn last_notify_body(&self) -> String {
        let log = self.log();
        let Some(at) = log.rfind("\nNOTIFY sip:") else {
            return String::new();
        };
        let message = &log[at + 1..];
        let message = message.split("\n#\n").next().unwrap_or(message);
        message
            .split_once("\r\n\r\n")
            .or_else(|| message.split_once("\n\n"))
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Text without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A string field of a flat JSON object, unescaped (what ctrl_tcp's answers need).
fn json_string_field(json: &str, name: &str) -> Option<String> {
    let start = json.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let mut out = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// A Lync client's manual state, as SIPE publishes it (userState in containers 2 and 3).
fn lync_state(p: &mut Peer, epid: &str, version: u32, availability: u32) -> Instant {
    let aor = p.aor();
    let body = category_publish(
        &aor,
        &[
            state_publication("userState", USER_STATE, 2, version, "static", availability),
            state_publication("userState", USER_STATE, 3, version, "static", availability),
        ],
    );
    let r = p.service(epid, CATEGORY_PUBLISH, &body);
    assert_answer(&r, 200, "SERVICE category publish");
    p.last_sent.expect("sent")
}

/// Issue 3: baresip (a SIMPLE client) watches a Lync-dialect user. It sees the user signed
/// out, then signed in (Online), then each manual state SIPE publishes: Busy 6500 as Busy,
/// Away 15500 as its Offline (from basic open + `<rpid:away/>`), Available 3500 as Online,
/// Do Not Disturb 9500 as Busy. The SERVICE → change-in-baresip latency is printed.
#[test]
fn rfc3856_baresip_sees_a_lync_user_go_busy_away_and_available() {
    lync_ladder_seen_by_baresip("udp");
}

/// The same with baresip on TCP: its NOTIFYs come back over its connection.
#[test]
fn rfc3856_baresip_over_tcp_sees_a_lync_user_go_busy_away_and_available() {
    lync_ladder_seen_by_baresip("tcp");
}

fn lync_ladder_seen_by_baresip(transport: &str) {
    let s = start_server();
    let bob = uri("bs-bob");
    let client = Baresip::start_over(&s, transport, "bs-alice", &bob);
    // The first NOTIFY: bob has not signed in.
    client.wait_for_status(&bob, "Offline");
    let first = client.last_notify_body();
    assert!(first.contains("<basic>closed</basic>"), "{first}");

    let mut b = peer(&s, "bs-bob");
    assert_answer(&b.register(3600, Some("b0b0b0b0b0")), 200, "REGISTER");
    client.wait_for_status(&bob, "Online");

    let mut latencies = Vec::new();
    let steps: [(u32, &str, &[&str], &[&str]); 4] = [
        (
            6500,
            "Busy",
            &["<basic>open</basic>", "<rpid:busy/>"],
            &["<rpid:away/>"],
        ),
        (
            15500,
            "Offline",
            &["<basic>open</basic>", "<rpid:away/>"],
            &["<rpid:busy/>"],
        ),
        (
            3500,
            "Online",
            &["<basic>open</basic>"],
            &["<rpid:busy/>", "<rpid:away/>"],
        ),
        (
            9500,
            "Busy",
            &["<basic>open</basic>", "<rpid:busy/>"],
            &["<rpid:away/>"],
        ),
    ];
    for (version, (availability, shown, has, lacks)) in (0u32..).zip(steps) {
        let sent = lync_state(&mut b, "b0b0b0b0b0", version, availability);
        let seen = client.wait_for_status(&bob, shown);
        latencies.push(seen.saturating_duration_since(sent));
        let body = client.last_notify_body();
        for want in has {
            assert!(body.contains(want), "{availability}: no {want} in\n{body}");
        }
        for unwanted in lacks {
            assert!(
                !body.contains(unwanted),
                "{availability}: {unwanted} in\n{body}"
            );
        }
    }
    // The NOTIFYs came over the transport asked for (baresip's trace names each message's).
    let server = if transport == "tcp" { s.tcp() } else { s.udp() };
    let from_server = format!("\n{} {server} -> ", transport.to_uppercase());
    assert!(
        client.log().contains(&from_server),
        "nothing from {server} over {transport} in baresip's trace:\n{}",
        tail(&client.log(), 4000)
    );
    println!(
        "publish→notify latency (Lync SERVICE → baresip's contact list, baresip on {}, Digest, \
         polled every 5 ms over ctrl_tcp): {}",
        transport.to_uppercase(),
        spread(&mut latencies)
    );
}

/// The availability in a Lync watcher's notification for `presentity` (the state category of
/// an RLMI part).
fn availability_in(n: &Received, presentity: &str) -> Option<u32> {
    let body = n.body();
    if !body.contains(presentity) {
        return None;
    }
    let at = body.find("<availability>")? + "<availability>".len();
    body[at..].split('<').next()?.trim().parse().ok()
}

/// The reverse: a Lync watcher (a batched SUBSCRIBE, as SIPE sends) watches the baresip user.
/// baresip PUBLISHes `open` at start (3500 Available); `presence_offline` PUBLISHes `closed`
/// (18500 Offline); `presence_online` `open` again (3500). The ctrl command → NOTIFY latency
/// is printed.
#[test]
fn rfc3903_a_lync_watcher_sees_baresips_publications() {
    let s = start_server();
    let alice = uri("bs-alice");
    let client = Baresip::start(&s, "bs-alice", &uri("bs-bob"));
    // Signed in and published once baresip shows its contact's first state.
    client.wait_for_status(&uri("bs-bob"), "Offline");

    let mut w = peer(&s, "bs-carol");
    let (r, _) = w.batch_subscribe(&[&alice], 3600);
    assert_answer(&r, 200, "batched SUBSCRIBE");
    // The first notification, and any that baresip's start-up PUBLISH caused meanwhile, until
    // alice shows Available.
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        let n = w.expect_notify();
        if availability_in(&n, &alice) == Some(3500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice never showed 3500:\n{}",
            n.show()
        );
    }

    let mut latencies = Vec::new();
    for (command, availability) in [
        ("presence_offline", 18500),
        ("presence_online", 3500),
        ("presence_offline", 18500),
    ] {
        let sent = Instant::now();
        client.command(command);
        let n = w.expect_notify();
        latencies.push(n.at.saturating_duration_since(sent));
        assert_eq!(
            availability_in(&n, &alice),
            Some(availability),
            "after {command}:\n{}",
            n.show()
        );
    }
    println!(
        "publish→notify latency (baresip ctrl_tcp command → its PUBLISH → Lync watcher's \
         NOTIFY, UDP, Digest): {}",
        spread(&mut latencies)
    );
}

/// A client configured with the server's IP address instead of a domain (no DNS, no outbound
/// proxy): baresip registers `sip:bs-alice@127.0.0.1:<port>` and subscribes to
/// `sip:bs-bob@127.0.0.1:<port>`. herald takes its own address as its domain, so that is
/// bs-bob of the test domain, and baresip sees the Lync user go Busy.
#[test]
fn rfc3261_10_3_baresip_addressing_the_server_by_ip_sees_a_lync_user_go_busy() {
    let s = start_server();
    let at = s.udp();
    let account = format!(
        "<sip:bs-alice@{at}>;auth_pass={};regint=600;pubint=0\n",
        password("bs-alice")
    );
    let bob_by_ip = format!("sip:bs-bob@{at}");
    let client = Baresip::start_with(&account, &bob_by_ip);
    client.wait_for_status(&bob_by_ip, "Offline");
    // The subscription to bs-bob@127.0.0.1 is bs-bob's, from bs-alice of the test domain.
    let (status, report) =
        crate::support::http::get(s.admin(), &format!("/presence/bs-bob@{DOMAIN}"));
    assert_eq!(status, 200, "{report}");
    assert!(report.contains(&format!("bs-alice@{DOMAIN}")), "{report}");

    let mut b = peer(&s, "bs-bob");
    assert_answer(&b.register(3600, Some("b1b1b1b1b1")), 200, "REGISTER");
    client.wait_for_status(&bob_by_ip, "Online");
    let sent = lync_state(&mut b, "b1b1b1b1b1", 0, 6500);
    let seen = client.wait_for_status(&bob_by_ip, "Busy");
    let body = client.last_notify_body();
    assert!(body.contains("<rpid:busy/>"), "{body}");
    println!(
        "publish→notify latency (Lync SERVICE → baresip that addresses the server by IP): {:.2} ms",
        seen.saturating_duration_since(sent).as_secs_f64() * 1000.0
    );
}
