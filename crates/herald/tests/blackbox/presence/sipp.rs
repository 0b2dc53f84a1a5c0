//! Third-party SIPp presence scenarios (`../shared/specs/sipp-presence-scenarios/`), run as
//! they are from that folder (never copied into this repository) against `herald serve` with
//! `trusted_networks` (SIPp does not authenticate these requests) and, for the two Kamailio
//! scenarios that wait for `202 Accepted`, `[presence] legacy_202 = true`. Their `-inf` files
//! are written into a temporary folder with this test's domain and users.
//!
//! Run:
//! - `kamailio-test-unit/subscribe_notify_scenario.xml`: SUBSCRIBE, 202, NOTIFY, 200, three
//!   watcher/presentity pairs from the CSV (`watcher;domain;presentity`).
//! - `kamailio-test-unit/publish_scenario.xml`: PUBLISH of PIDF, 200 with SIP-ETag, then a
//!   modify to busy with SIP-If-Match (in a new Call-ID, as the scenario writes it), 200, for
//!   two users. The file is not well-formed XML (two `header=To:"` attributes, as the specs
//!   README says), but SIPp 3.6's parser accepts it and the broken attributes only belong to
//!   `ereg` actions on the To tag, so it runs unchanged.
//! - `kamailio-presence_conference/subscribe.xml`: SUBSCRIBE (its `[presentity]`,
//!   `[username]`, `[event]`, `[expiry]`, `[content-type]` and `[rand_tag]` given with `-key`),
//!   202, NOTIFY, 200.
//! - `restcomm-sip-presence-service/functionality__publication__uac.xml`: PUBLISH, then after
//!   20 s a modify with SIP-If-Match, a body-less refresh, and a remove (Expires: 0), each
//!   200 (about 90 s with its pauses).
//! - `restcomm-sip-presence-service/functionality__subscription__subscriber.xml` with its
//!   notifier side, `functionality__subscription__notifiers.csv` (the presentities; ours name
//!   users with a published state) and `users.csv` (the subscribers): SUBSCRIBE, 200, NOTIFY;
//!   an in-dialog refresh 20 s later; an unsubscribe (Expires: 0) with its final NOTIFY (about
//!   75 s). It runs at the same time as the publication scenario, in the same test.
//! - `pjproject/uac-subscribe.xml`: SUBSCRIBE, 200, NOTIFY, then an unsubscribe in the dialog,
//!   200, the final NOTIFY.
//! - `restcomm-sip-presence-service/functionality__subscription-winfo__uac.xml`: a
//!   `presence.winfo` subscription to oneself (RFC 3857): subscribe, refresh, unsubscribe, each
//!   200 and a NOTIFY.
//! - `restcomm-sip-presence-service/functionality__subscription-408__uac.xml`: subscribe,
//!   unsubscribe, and the final NOTIFY answered 408.
//! - `restcomm-sip-presence-service/functionality__publication-full-oma-doc__uac.xml`: PUBLISH
//!   of a full OMA presence document (OMA, GEOPRIV, caps extensions), removed 10 s later.
//!
//! Skipped:
//! - `kamailio-presence_conference/publish.xml`: publishes `conference-info` for the
//!   `conference` event package, which herald does not serve (489; with `Event: presence` the
//!   body is not PIDF, 400). The scenario expects 200 either way.
//! - `kamailio-presence_conference/notify.xml`: a UAS that only waits for a NOTIFY another
//!   party's subscription would cause; herald sends a subscription's NOTIFYs back over the
//!   flow the SUBSCRIBE came on, so no subscriber can point them at this SIPp instance.
//! - `pjproject/uas-*.xml`: SIPp as the notifier (it receives a SUBSCRIBE and sends NOTIFY);
//!   herald is never a subscriber.
//! - `restcomm-sip-presence-service/load__*.xml`: long-running load scenarios over 1000 random
//!   users: `load__publisher.xml` refreshes every 50 s ten times (about 9 minutes a call);
//!   `load__winfo-subscriber.xml` and `load__eventlist-subscriber.xml` wait up to 115 s in
//!   each of ten rounds for a further NOTIFY (up to about 19 minutes a call).
//!
//! All but the two `kamailio-test-unit` scenarios address herald by IP address: the
//! Request-URI and To of their requests are `sip:user@[remote_ip]`, the From
//! `sip:user@[local_ip]`. herald treats its own listen addresses as its domain (as Kamailio's
//! `alias` does), so they run directly against it: `user@127.0.0.1` is `user@` the test
//! domain, and the NOTIFYs carry the URIs the scenario wrote.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::presence::{Peer, assert_answer, pidf};
use crate::support::{Account, Server, Setup, SipClient, tail};

const DOMAIN: &str = "sipp-presence.test";

const USERS: &[&str] = &[
    "user1",
    "user2",
    "user3",
    "kc-watcher",
    "kc-presentity",
    "sipp",
    "pj-presentity",
    "publisher1",
    "rc-notifier1",
    "rc-notifier2",
    "rc-subscriber1",
    "rc-subscriber2",
    "subscriber1",
    "publisher",
];

/// A server for SIPp: loopback is trusted, UDP only.
fn start_server(legacy_202: bool) -> Server {
    let mut setup = Setup::new(DOMAIN)
        .tcp(&[])
        .tls(&[])
        .sip("trusted_networks", "[\"127.0.0.0/8\"]");
    if legacy_202 {
        setup = setup.presence("legacy_202", "true");
    }
    for u in USERS {
        setup = setup.user(u, &format!("pw-{u}"));
    }
    setup.start()
}

/// The scenarios' folder: `HERALD_SIPP_PRESENCE_SCENARIOS`, else `specs/sipp-presence-scenarios`
/// in the project's shared folder beside the repository (`../shared`), else in `/work/shared`
/// (where a clone elsewhere on the development machine finds it). Missing, the test fails:
/// third-party scenarios are run from there, never copied into the repository.
fn scenarios() -> PathBuf {
    const REL: &str = "specs/sipp-presence-scenarios";
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates: Vec<PathBuf> = match std::env::var_os("HERALD_SIPP_PRESENCE_SCENARIOS") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            repo.join("../shared").join(REL),
            Path::new("/work/shared").join(REL),
        ],
    };
    candidates
        .iter()
        .find(|d| d.is_dir())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the third-party SIPp presence scenarios are not at any of {candidates:?} \
                 (set HERALD_SIPP_PRESENCE_SCENARIOS)"
            )
        })
}

/// One SIPp process running a scenario in its own temporary folder.
struct Sipp {
    name: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Sipp {
    /// Starts `sipp TARGET -sf SCENARIO` as a UDP client from 127.0.0.1, with `files` (name,
    /// content) written into its folder first and `args` after the common ones.
    fn start(scenario: &Path, target: SocketAddr, files: &[(&str, String)], args: &[&str]) -> Self {
        assert!(scenario.is_file(), "{} is missing", scenario.display());
        let dir = tempfile::Builder::new()
            .prefix("herald-sipp-presence-")
            .tempdir()
            .expect("a temporary folder");
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).expect("writing an -inf file");
        }
        let child = Command::new(crate::support::sipp_binary())
            .current_dir(dir.path())
            .arg(target.to_string())
            .arg("-sf")
            .arg(scenario)
            .args(["-t", "u1", "-i", "127.0.0.1"])
            .args(["-nostdin", "-trace_err", "-trace_msg"])
            .args(["-timeout", "150s", "-timeout_error"])
            .args(["-recv_timeout", "10000"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting sipp");
        Self {
            name: scenario
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            child,
            dir,
        }
    }

    /// Waits for the exit; returns the exit code and SIPp's output with the tails of its
    /// error log and message trace.
    fn wait(mut self, limit: Duration) -> (i32, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for sipp") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let (_, log) = self.collect();
                panic!("sipp {} did not finish in {limit:?}\n{log}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (out, mut text) = self.collect();
        text.insert_str(0, &out);
        (status.code().unwrap_or(-1), text)
    }

    fn collect(&mut self) -> (String, String) {
        use std::io::Read;
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut out);
        }
        let mut logs = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .expect("sipp's folder")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("_errors.log") || name.ends_with("_messages.log") {
                let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let start = log.len().saturating_sub(8000);
                let start = (start..log.len())
                    .find(|&i| log.is_char_boundary(i))
                    .unwrap_or(log.len());
                logs.push_str(&format!("\n--- {name} (tail) ---\n{}", &log[start..]));
            }
        }
        (out, logs)
    }
}

/// Asserts SIPp exited 0 with `calls` successful calls.
#[track_caller]
/// Runs RestComm's single-call UAC scenario `file` against `server` and asserts it passed.
fn run_restcomm_uac(server: &Server, file: &str) {
    let run = Sipp::start(
        &scenarios().join("restcomm-sip-presence-service").join(file),
        server.udp(),
        &[],
        &["-m", "1"],
    )
    .wait(Duration::from_secs(60));
    assert_passed(run, 1, server, &format!("restcomm {file}"));
}

fn assert_passed(run: (i32, String), calls: u32, server: &Server, what: &str) {
    let (code, out) = run;
    assert_eq!(
        code,
        0,
        "sipp {what} failed:\n{out}\n--- herald log (tail) ---\n{}",
        tail(&server.logs(), 12_000)
    );
    // SIPp's final screen: `Successful call | <periodic> | <cumulative>`.
    let cumulative = |label: &str| {
        out.lines()
            .rev()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.rsplit('|').next())
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    assert_eq!(cumulative("Successful call"), Some(calls), "{what}:\n{out}");
    assert_eq!(cumulative("Failed call"), Some(0), "{what}:\n{out}");
    println!("sipp {what}: {calls} successful call(s)");
}

/// Publishes a state for `user` (as the user, over a trusted socket) so the scenarios'
/// NOTIFYs carry a document.
fn publish_state(server: &Server, user: &str, activity: &str) {
    let mut p = Peer::new(
        SipClient::udp(server.udp()),
        Account::new(user, &format!("pw-{user}"), DOMAIN),
    );
    p.authenticate = false;
    let doc = pidf(
        &format!("sip:{user}@{DOMAIN}"),
        "open",
        Some(activity),
        None,
    );
    assert_answer(
        &p.publish(Some(&doc), &[]),
        200,
        "PUBLISH before the scenario",
    );
}

/// Kamailio's unit test: three SUBSCRIBEs from the CSV, each answered 202 (legacy_202) and
/// followed by a NOTIFY that SIPp answers.
#[test]
fn rfc6665_sipp_kamailio_subscribe_notify_scenario() {
    let dir = scenarios();
    let s = start_server(true);
    publish_state(&s, "user2", "busy");
    let csv =
        format!("SEQUENTIAL\nuser1;{DOMAIN};user2\nuser2;{DOMAIN};user1\nuser2;{DOMAIN};user3\n");
    let run = Sipp::start(
        &dir.join("kamailio-test-unit/subscribe_notify_scenario.xml"),
        s.udp(),
        &[("subscribe_notify.csv", csv)],
        &["-inf", "subscribe_notify.csv", "-m", "3", "-r", "3"],
    )
    .wait(Duration::from_secs(60));
    assert_passed(
        run,
        3,
        &s,
        "kamailio-test-unit/subscribe_notify_scenario.xml",
    );
}

/// Kamailio presence_conference's subscriber, for the presence package: SUBSCRIBE, 202,
/// NOTIFY, 200.
#[test]
fn rfc6665_sipp_kamailio_presence_conference_subscribe() {
    let dir = scenarios();
    let s = start_server(true);
    publish_state(&s, "kc-presentity", "away");
    let run = Sipp::start(
        &dir.join("kamailio-presence_conference/subscribe.xml"),
        s.udp(),
        &[],
        &[
            "-key",
            "presentity",
            "kc-presentity",
            "-key",
            "username",
            "kc-watcher",
            "-key",
            "event",
            "presence",
            "-key",
            "expiry",
            "600",
            "-key",
            "content-type",
            "application/pidf+xml",
            "-key",
            "rand_tag",
            "kc1",
            "-m",
            "1",
        ],
    )
    .wait(Duration::from_secs(60));
    assert_passed(run, 1, &s, "kamailio-presence_conference/subscribe.xml");
}

/// pjproject's presence UAC: SUBSCRIBE, 200, NOTIFY, then an unsubscribe in the dialog, 200
/// and the final NOTIFY.
#[test]
fn rfc6665_sipp_pjproject_uac_subscribe() {
    let dir = scenarios();
    let s = start_server(false);
    publish_state(&s, "pj-presentity", "busy");
    let run = Sipp::start(
        &dir.join("pjproject/uac-subscribe.xml"),
        s.udp(),
        &[],
        &["-s", "pj-presentity", "-m", "1"],
    )
    .wait(Duration::from_secs(60));
    assert_passed(run, 1, &s, "pjproject/uac-subscribe.xml");
}

/// RestComm's functional publication (initial, modify, refresh, remove) and subscription
/// (subscribe, refresh, unsubscribe) scenarios, side by side on one server (about 90 s: the
/// scenarios pause 20 s between steps).
#[test]
fn rfc3903_rfc6665_sipp_restcomm_publication_and_subscription() {
    let dir = scenarios();
    let s = start_server(false);
    publish_state(&s, "rc-notifier1", "busy");
    publish_state(&s, "rc-notifier2", "away");
    let dir = dir.join("restcomm-sip-presence-service");

    let publication = Sipp::start(
        &dir.join("functionality__publication__uac.xml"),
        s.udp(),
        &[],
        &["-m", "1"],
    );
    let subscription = Sipp::start(
        &dir.join("functionality__subscription__subscriber.xml"),
        s.udp(),
        &[
            (
                "notifiers.csv",
                "SEQUENTIAL\nrc-notifier1;\nrc-notifier2;\n".to_owned(),
            ),
            (
                "users.csv",
                "SEQUENTIAL\nrc-subscriber1;\nrc-subscriber2;\n".to_owned(),
            ),
        ],
        &[
            "-inf",
            "notifiers.csv",
            "-inf",
            "users.csv",
            "-m",
            "2",
            "-r",
            "2",
        ],
    );
    let sub_run = subscription.wait(Duration::from_secs(150));
    let pub_run = publication.wait(Duration::from_secs(150));
    assert_passed(
        sub_run,
        2,
        &s,
        "restcomm functionality__subscription__subscriber.xml",
    );
    assert_passed(
        pub_run,
        1,
        &s,
        "restcomm functionality__publication__uac.xml",
    );
}

/// RestComm's watcher-information subscription (RFC 3857): a user subscribes to
/// `presence.winfo` for itself, refreshes, unsubscribes; each step 200 and a NOTIFY.
#[test]
fn rfc3857_sipp_restcomm_winfo_subscription() {
    let s = start_server(false);
    run_restcomm_uac(&s, "functionality__subscription-winfo__uac.xml");
}

/// RestComm's subscription that answers the final NOTIFY of its unsubscribe with 408: the
/// server takes it (the subscription is over either way) and stays up.
#[test]
fn rfc6665_sipp_restcomm_final_notify_answered_408() {
    let s = start_server(false);
    publish_state(&s, "publisher", "busy");
    run_restcomm_uac(&s, "functionality__subscription-408__uac.xml");
    // Still serving.
    publish_state(&s, "publisher", "away");
}

/// RestComm's PUBLISH of a full OMA presence document (two tuples, OMA, GEOPRIV, caps and
/// RPID extensions, a namespace URI with a leading space), then its removal 10 s later.
#[test]
fn rfc3903_sipp_restcomm_publication_of_a_full_oma_document() {
    let s = start_server(false);
    run_restcomm_uac(&s, "functionality__publication-full-oma-doc__uac.xml");
}

/// Kamailio's unit-test PUBLISH: an initial PIDF publication, then a modify to busy with
/// SIP-If-Match, each 200.
#[test]
fn rfc3903_sipp_kamailio_publish_scenario() {
    let dir = scenarios();
    let s = start_server(true);
    let csv = format!("SEQUENTIAL\nuser1;{DOMAIN}\nuser2;{DOMAIN}\n");
    let run = Sipp::start(
        &dir.join("kamailio-test-unit/publish_scenario.xml"),
        s.udp(),
        &[("publish.csv", csv)],
        &["-inf", "publish.csv", "-m", "2", "-r", "2"],
    )
    .wait(Duration::from_secs(60));
    assert_passed(run, 2, &s, "kamailio-test-unit/publish_scenario.xml");
}
