//! SIPp (Debian `sip-tester`) runs `tests/sipp/register_digest.xml` against herald: REGISTER,
//! 401, REGISTER with MD5 Digest, 200 with the Lync headers, then `Contact: *` removal.
//!
//! SIPp answers only the first challenge and only knows MD5, so these servers offer MD5 only
//! (`digest_algorithms = ["MD5"]`). A missing `sipp` fails the tests: `scripts/test.sh`
//! installs it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::support::sip::{headers, pick_challenge};
use crate::support::{Account, Server, Setup, SipClient, Ua, assert_status, shared};

const DOMAIN: &str = "sipp.test";

fn server() -> Arc<Server> {
    static SLOT: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    shared(&SLOT, || {
        Setup::new(DOMAIN)
            .tls(&[])
            .sip("digest_algorithms", "[\"MD5\"]")
            // A server for SIMPLE clients only: SIPp answers the first challenge it gets.
            .sip("auth_schemes", "[\"digest\"]")
            .user("sippudp", "pw-sippudp")
            .user("sipptcp", "pw-sipptcp")
            .user("sippload", "pw-sippload")
            .user("md5only", "pw-md5only")
            .start()
    })
}

/// Runs the scenario; returns SIPp's exit status and its output and logs for messages.
fn run_sipp(server: &Server, transport: &str, user: &str, extra: &[&str]) -> (i32, String) {
    let sipp = crate::support::sipp_binary();
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp/register_digest.xml");
    assert!(scenario.is_file(), "{} is missing", scenario.display());
    let work = tempfile::tempdir().expect("a temporary folder");
    let inf = work.path().join("domain.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{DOMAIN};\n")).expect("writing the -inf file");
    let (target, mode) = match transport {
        "udp" => (server.udp(), "u1"),
        "tcp" => (server.tcp(), "t1"),
        other => panic!("unknown transport {other}"),
    };
    let password = format!("pw-{user}");
    let mut cmd = Command::new(&sipp);
    cmd.current_dir(work.path())
        .arg(target.to_string())
        .args(["-sf", &scenario.to_string_lossy()])
        .args(["-t", mode])
        .args(["-i", "127.0.0.1"])
        .args(["-s", user, "-au", user, "-ap", &password])
        .args(["-auth_uri", DOMAIN])
        .args(["-inf", &inf.to_string_lossy()])
        .args(["-nostdin", "-trace_err", "-trace_msg"])
        .args(["-timeout", "30s", "-timeout_error"])
        .args(["-recv_timeout", "5000"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", sipp.display()));
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for sipp") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sipp did not finish in 40 s\n{}", server.logs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("sipp output");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    // The error log and message trace say what went wrong, when something did.
    for entry in std::fs::read_dir(work.path())
        .expect("sipp's folder")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("_errors.log") || name.ends_with("_messages.log") {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: String = log
                .chars()
                .rev()
                .take(6000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            text.push_str(&format!("\n--- {name} (tail) ---\n{tail}"));
        }
    }
    (status.code().unwrap_or(-1), text)
}

/// The server the SIPp tests use offers only MD5.
#[test]
fn rfc8760_2_3_md5_only_server_offers_one_md5_challenge() {
    let s = server();
    let mut ua = Ua::new(
        SipClient::udp(s.udp()),
        Account::new("md5only", "pw-md5only", DOMAIN),
    );
    let r = ua.register_request(&[], None).send(&mut ua.client);
    assert_status(&r, 401);
    let all = headers(&r, "WWW-Authenticate");
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(pick_challenge(&r, "WWW-Authenticate", None).contains("algorithm=MD5"));
    assert_status(&ua.register(&["<sip:md5only@192.0.2.1>"], Some(300)), 200);
}

/// RFC 3261 §10.2 with a real third-party client over UDP: SIPp's scenario passes (exit 0).
#[test]
fn rfc3261_10_2_sipp_registers_with_digest_over_udp() {
    let s = server();
    let (code, out) = run_sipp(&s, "udp", "sippudp", &["-m", "1"]);
    assert_eq!(
        code,
        0,
        "sipp failed over UDP:\n{out}\n--- herald log ---\n{}",
        s.logs()
    );
}

/// The same over TCP.
#[test]
fn rfc3261_10_2_sipp_registers_with_digest_over_tcp() {
    let s = server();
    let (code, out) = run_sipp(&s, "tcp", "sipptcp", &["-m", "1"]);
    assert_eq!(
        code,
        0,
        "sipp failed over TCP:\n{out}\n--- herald log ---\n{}",
        s.logs()
    );
}

/// 50 registrations at 50 per second over UDP all succeed.
#[test]
fn rfc3261_10_2_sipp_fifty_registrations_all_succeed() {
    let s = server();
    let (code, out) = run_sipp(&s, "udp", "sippload", &["-m", "50", "-r", "50"]);
    assert_eq!(
        code,
        0,
        "sipp -m 50 -r 50 failed:\n{out}\n--- herald log ---\n{}",
        s.logs()
    );
    // SIPp's final screen: `Successful call | <periodic> | <cumulative>`.
    let cumulative = |label: &str| {
        out.lines()
            .rev()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.rsplit('|').next())
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    assert_eq!(cumulative("Successful call"), Some(50), "{out}");
    assert_eq!(cumulative("Failed call"), Some(0), "{out}");
}
