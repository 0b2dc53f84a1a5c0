//! Presence through `herald serve` (issue 3), over real UDP sockets, the admin listener, the
//! command line and SIPp.
//!
//! - `rfc3903`: PUBLISH of PIDF with Digest: initial, refresh, modify, remove, expiry without
//!   refresh, and every rejection of RFC 3903 §6 (412, 489, 415, 400, 423, 403).
//! - `rfc6665`: SUBSCRIBE / NOTIFY (RFC 6665, RFC 3856): the first NOTIFY with full state, a
//!   PUBLISH reaching the watcher (the publish→notify latency is printed), refresh,
//!   unsubscribe, expiry (`terminated;reason=timeout`), one-time queries, 481 for unknown
//!   dialogs, CSeq order, a retransmitted SUBSCRIBE making one subscription, NOTIFY
//!   retransmission over UDP (RFC 3261 §17.1.2.2) and a 481 answer or Timer F ending the
//!   subscription, NOTIFY / BENOTIFY sent to the server (405).
//! - `signout`: registrations drive presence: a watcher's subscriptions end with its last
//!   registration; a presentity that signs out shows Offline.
//! - `lync`: the Lync dialect: SERVICE category publication seen by a SIMPLE watcher as PIDF
//!   (the SERVICE→NOTIFY latency is printed), a SIMPLE publication seen by a Lync watcher as
//!   categories, BENOTIFY for `ms-benotify`.
//! - `persistence`: `herald contact add|list|remove` against the running server (reaching the
//!   owner's roaming-contacts subscription at once) and against the stopped server's store,
//!   `herald presence show`, static publications surviving a restart.
//! - `subscription_restart`: acknowledged subscription dialogs (PIDF, Lync batch with
//!   BENOTIFY) survive a SIGKILL and restart: caught up at once, publications and refreshes
//!   work in the same dialogs, unsubscribed ones stay gone.
//! - `sipp`: third-party SIPp presence scenarios from `../shared/specs/sipp-presence-scenarios/`
//!   run as they are (the list of those that run and those skipped, and why, is there).
//! - `simple_client`: baresip, a Debian SIMPLE client, sees a Lync-dialect user go Busy, Away
//!   and Available, and a Lync watcher sees what baresip publishes (latencies printed).
//!
//! Most tests share one server and use their own users, so one test's notifications never
//! reach another's sockets; tests that wait for soft state to expire share a second server
//! that accepts 1 s expiries; tests that restart or reconfigure the server start their own.

mod lync;
mod persistence;
mod rfc3903;
mod rfc6665;
mod signout;
mod simple_client;
mod sipp;
mod subscription_restart;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::support::presence::Peer;
use crate::support::{Account, Server, Setup, SipClient, shared};

pub(crate) const DOMAIN: &str = "presence.test";

/// The users of the shared server; each test takes its own.
const USERS: &[&str] = &[
    // rfc3903
    "pub-initial",
    "pub-cycle",
    "pub-412",
    "pub-489",
    "pub-415",
    "pub-400",
    "pub-423",
    "pub-other",
    "pub-victim",
    // rfc6665
    "sub-first-w",
    "sub-first-p",
    "lat-w",
    "lat-p",
    "ref-w",
    "ref-p",
    "unsub-w",
    "unsub-p",
    "query-w",
    "query-p",
    "unknown-w",
    "unknown-p",
    "rtx-w",
    "rtx-p",
    "end481-w",
    "end481-p",
    "notify405",
    "sub423-w",
    "sub489-w",
    "dup-p",
    "dup-w",
    "nores-w",
    "nores-p",
    "tcp-w",
    "tcp-p",
    "timeout-p",
    "timeout-w",
    // signout
    "so-watcher",
    "so-p",
    "so-p2",
    "so-w2",
    // lync
    "lync-alice",
    "lync-simple",
    "lync-bob",
    "lync-carol",
    "ben-alice",
    "ben-w",
];

/// The users of [`short_server`].
const SHORT_USERS: &[&str] = &["exp-p", "exp-w", "subexp-p", "subexp-w"];

/// The shared server: Digest for every request, default presence settings.
pub(crate) fn server() -> Arc<Server> {
    static SLOT: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    shared(&SLOT, || {
        let mut setup = Setup::new(DOMAIN).tls(&[]);
        for u in USERS {
            setup = setup.user(u, &password(u));
        }
        setup.start()
    })
}

/// A server that accepts expiries down to 1 s, for the tests that wait for soft state to
/// expire (the default minimum is 60 s).
pub(crate) fn short_server() -> Arc<Server> {
    static SLOT: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    shared(&SLOT, || {
        let mut setup = Setup::new(DOMAIN)
            .tcp(&[])
            .tls(&[])
            .presence("min_publication_expires", "1")
            .presence("min_subscription_expires", "1");
        for u in SHORT_USERS {
            setup = setup.user(u, &password(u));
        }
        setup.start()
    })
}

pub(crate) fn password(user: &str) -> String {
    format!("pw-{user}")
}

/// A peer of `user` on a fresh UDP socket to the server.
#[track_caller]
pub(crate) fn peer(server: &Server, user: &str) -> Peer {
    assert!(
        USERS.contains(&user) || SHORT_USERS.contains(&user),
        "{user} is not created by server() or short_server()"
    );
    Peer::new(
        SipClient::udp(server.udp()),
        Account::new(user, &password(user), DOMAIN),
    )
}

/// `sip:user@presence.test`.
pub(crate) fn uri(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

/// What `GET /presence/{user}` (the text `herald presence show` prints) says.
#[track_caller]
pub(crate) fn report(server: &Server, user: &str) -> String {
    let (status, body) =
        crate::support::http::get(server.admin(), &format!("/presence/{user}@{DOMAIN}"));
    assert_eq!(status, 200, "GET /presence/{user}: {body}");
    body
}

/// Polls `report` until `check` holds (the admin view is asked through the presence thread,
/// which may still be handling what a test just sent); panics with the last report after 5 s.
#[track_caller]
pub(crate) fn eventually_report(server: &Server, user: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = report(server, user);
        if check(&r) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the report of {user} never matched:\n{r}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Min, median and max of a list of durations, in milliseconds, as text.
pub(crate) fn spread(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "min {:.2} ms, median {:.2} ms, max {:.2} ms over {} changes",
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
        samples.len()
    )
}
