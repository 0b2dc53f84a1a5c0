//! Registrations drive presence (issue 3 points 2 and 4): a watcher that signs out (its last
//! registration removed) loses its subscriptions; a presentity that signs out shows Offline.

use std::time::Duration;

use super::{eventually_report, peer, server, uri};
use crate::support::presence::{assert_answer, pidf};

/// A watcher that signs in, subscribes and signs out again (REGISTER with Expires: 0 for its
/// only binding) holds no subscription afterwards: the presentity lists no watcher, a change
/// sends nothing, and a refresh of the old dialog is 481.
#[test]
fn presence_watcher_subscriptions_end_with_its_last_registration() {
    let s = server();
    let presentity = uri("so-p");
    let mut w = peer(&s, "so-watcher");
    assert_answer(&w.register(600, None), 200, "REGISTER");
    let (r, dialog) = w.subscribe(&presentity, 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let mut dialog = dialog.expect("a dialog");
    w.expect_notify();
    eventually_report(&s, "so-p", |t| t.contains("so-watcher@presence.test"));

    assert_answer(&w.register(0, None), 200, "un-REGISTER");
    eventually_report(&s, "so-p", |t| !t.contains("so-watcher@"));
    let mut p = peer(&s, "so-p");
    assert_answer(
        &p.publish(Some(&pidf(&presentity, "open", Some("busy"), None)), &[]),
        200,
        "PUBLISH",
    );
    w.expect_silence(Duration::from_millis(500));
    let r = w.resubscribe(&mut dialog, 600);
    assert_answer(&r, 481, "a refresh after signing out");
}

/// A presentity that is signed in shows open to a SIMPLE watcher, busy once it publishes so,
/// and closed (Offline) when its last registration goes, even though its PUBLISH had not
/// expired.
#[test]
fn presence_presentity_that_signs_out_shows_offline() {
    let s = server();
    let presentity = uri("so-p2");
    let mut p = peer(&s, "so-p2");
    let mut w = peer(&s, "so-w2");
    let (r, _) = w.subscribe(&presentity, 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let n = w.expect_notify();
    assert!(n.body().contains("<basic>closed</basic>"), "{}", n.show());

    assert_answer(&p.register(600, None), 200, "REGISTER");
    let n = w.expect_notify();
    assert!(
        n.body().contains("<basic>open</basic>"),
        "signed in is Available:\n{}",
        n.show()
    );

    assert_answer(
        &p.publish(
            Some(&pidf(&presentity, "open", Some("busy"), None)),
            &[("Expires", "3600")],
        ),
        200,
        "PUBLISH",
    );
    let n = w.expect_notify();
    assert!(n.body().contains("busy/>"), "{}", n.show());

    assert_answer(&p.register(0, None), 200, "un-REGISTER");
    let n = w.expect_notify();
    assert_eq!(n.state(), "active", "{}", n.show());
    assert!(
        n.body().contains("<basic>closed</basic>") && !n.body().contains("busy/>"),
        "signed out is Offline:\n{}",
        n.show()
    );
    eventually_report(&s, "so-p2", |t| t.contains("Offline"));
}
