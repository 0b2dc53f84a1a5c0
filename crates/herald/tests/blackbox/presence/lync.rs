//! The Lync dialect (issue 3 points 1 and 2, lync-exchange-facts §1.6, sipe-client §3.6 and
//! §6): category publication through SERVICE, seen by SIMPLE watchers as PIDF and by Lync
//! watchers as categories; BENOTIFY for subscribers that offer `ms-benotify`.

use std::time::Duration;

use super::{peer, server, spread, uri};
use crate::support::presence::{
    CATEGORIES, CATEGORY_PUBLISH, assert_answer, category_publish, note_publication, pidf,
    state_publication,
};
use crate::support::show;
use crate::support::sip::headers;

/// SIPE's userState instance (0x20000000).
const USER_STATE: u32 = 536_870_912;

/// A Lync client publishes a manual Busy (6500) as SIPE does (userState in containers 2 and
/// 3); a SIMPLE watcher's NOTIFY carries PIDF with basic open and the RPID busy activity.
/// Then Away (15500) and Available (3500) the same way. The time from the SERVICE to the
/// NOTIFY is printed.
#[test]
fn lync_1_6_service_state_reaches_a_simple_watcher_as_pidf() {
    let s = server();
    let alice = uri("lync-alice");
    let mut a = peer(&s, "lync-alice");
    assert_answer(&a.register(3600, Some("a1b2c3d4e5")), 200, "REGISTER");
    let mut w = peer(&s, "lync-simple");
    let (r, _) = w.subscribe(&alice, 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let n = w.expect_notify();
    assert!(
        n.body().contains("<basic>open</basic>"),
        "signed in:\n{}",
        n.show()
    );

    let mut latencies = Vec::new();
    let steps = [
        (6500, Some("busy/>")),
        (15500, Some("away/>")),
        (3500, None),
        (6500, Some("busy/>")),
    ];
    for (version, (availability, expected)) in (0u32..).zip(steps) {
        let body = category_publish(
            &alice,
            &[
                state_publication("userState", USER_STATE, 2, version, "static", availability),
                state_publication("userState", USER_STATE, 3, version, "static", availability),
            ],
        );
        let r = a.service("a1b2c3d4e5", CATEGORY_PUBLISH, &body);
        assert_answer(&r, 200, "SERVICE category publish");
        let sent = a.last_sent.expect("sent");
        let n = w.expect_notify();
        latencies.push(n.at.saturating_duration_since(sent));
        assert!(
            n.header("Content-Type").starts_with("application/pidf+xml"),
            "{}",
            n.show()
        );
        let body = n.body();
        assert!(
            body.contains("<basic>open</basic>"),
            "{availability}:\n{body}"
        );
        match expected {
            Some(activity) => assert!(body.contains(activity), "{availability}:\n{body}"),
            None => assert!(
                !body.contains("busy/>") && !body.contains("away/>"),
                "{availability}:\n{body}"
            ),
        }
    }
    let line = spread(&mut latencies);
    println!("publish→notify latency (Lync SERVICE → PIDF NOTIFY, UDP, Digest): {line}");
}

/// A SIMPLE client's PUBLISH of away reaches a Lync watcher (Accept: categories) as
/// availability 15500, busy as 6500.
#[test]
fn lync_1_3_simple_publication_reaches_a_lync_watcher_as_categories() {
    let s = server();
    let bob = uri("lync-bob");
    let mut b = peer(&s, "lync-bob");
    let mut w = peer(&s, "lync-carol");
    let (r, _) = w.subscribe(&bob, 3600, &[("Accept", CATEGORIES)]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let n = w.expect_notify();
    assert!(
        n.header("Content-Type").starts_with(CATEGORIES),
        "{}",
        n.show()
    );

    let r = b.publish(
        Some(&pidf(&bob, "open", Some("away"), Some("Out for lunch"))),
        &[],
    );
    assert_answer(&r, 200, "PUBLISH");
    let etag = r.header_str("SIP-ETag").unwrap_or_default().to_owned();
    let n = w.expect_notify();
    assert!(
        n.header("Content-Type").starts_with(CATEGORIES),
        "{}",
        n.show()
    );
    assert!(
        n.body().contains("<availability>15500</availability>"),
        "{}",
        n.show()
    );
    assert!(n.body().contains("Out for lunch"), "{}", n.show());

    let r = b.publish(
        Some(&pidf(&bob, "open", Some("busy"), None)),
        &[("SIP-If-Match", &etag)],
    );
    assert_answer(&r, 200, "PUBLISH");
    let n = w.expect_notify();
    assert!(
        n.body().contains("<availability>6500</availability>"),
        "{}",
        n.show()
    );
}

/// MS-SIP §3.5: a subscriber offering `Supported: ms-benotify` gets it echoed in the 200 and
/// its notifications as BENOTIFY, which expects no answer and is never retransmitted.
#[test]
fn lync_ms_sip_3_5_benotify_for_subscribers_that_offer_it() {
    let s = server();
    let alice = uri("ben-alice");
    let mut a = peer(&s, "ben-alice");
    assert_answer(&a.register(3600, Some("0badc0ffee")), 200, "REGISTER");
    let mut w = peer(&s, "ben-w");
    w.absorb_retransmissions = false;
    let (r, _) = w.subscribe(
        &alice,
        3600,
        &[("Accept", CATEGORIES), ("Supported", "ms-benotify")],
    );
    assert_answer(&r, 200, "SUBSCRIBE");
    assert!(
        headers(&r, "Supported")
            .iter()
            .any(|v| v.split(',').any(|t| t.trim() == "ms-benotify")),
        "the 200 echoes ms-benotify:\n{}",
        show(&r)
    );
    let first = w
        .next_request(crate::support::presence::NOTIFY_TIMEOUT)
        .expect("a first notification");
    assert!(
        matches!(first.method(), "NOTIFY" | "BENOTIFY"),
        "{}",
        first.show()
    );
    println!(
        "first notification of an ms-benotify subscription: {}",
        first.method()
    );
    if first.method() == "NOTIFY" {
        w.reply(&first, 200);
    }

    let body = category_publish(
        &alice,
        &[
            state_publication("userState", USER_STATE, 2, 0, "static", 9500),
            state_publication("userState", USER_STATE, 3, 0, "static", 9500),
            note_publication(200, 0, "Presenting"),
        ],
    );
    assert_answer(
        &a.service("0badc0ffee", CATEGORY_PUBLISH, &body),
        200,
        "SERVICE",
    );
    let n = w.expect_request("BENOTIFY");
    assert!(
        n.header("Content-Type").starts_with(CATEGORIES),
        "{}",
        n.show()
    );
    assert!(
        n.body().contains("<availability>9500</availability>"),
        "{}",
        n.show()
    );
    assert!(n.body().contains("Presenting"), "{}", n.show());
    assert_eq!(n.state(), "active", "{}", n.show());
    // Unanswered, yet never sent again (a NOTIFY would be after T1 = 500 ms).
    w.expect_silence(Duration::from_millis(1500));
}
