//! Subscription dialogs survive a restart of `herald serve` (issue 3: "nothing that was
//! acknowledged is lost on restart"). A server stopped with SIGKILL right after its answers (so
//! only what was stored before each 200 can come back) and started again on the same data
//! folder and ports:
//!
//! - tells each restored dialog the current state at once (RFC 6665 §4.2.2), over the same
//!   dialog (Call-ID, tags) with a higher CSeq (RFC 3261 §12.2.1.1), as NOTIFY for an RFC
//!   dialect PIDF subscription and as BENOTIFY for a Lync batched subscription that negotiated
//!   `ms-benotify` (MS-SIP §3.5);
//! - delivers a publication made after the restart through those dialogs;
//! - answers a refresh inside a restored dialog 200, not 481 (RFC 6665 §4.1.2.1);
//! - does not restore a dialog that was unsubscribed before the stop (its refresh is 481).
//!
//! Restored registrations are what make the subscribers reachable (see
//! `registration_restart`), so every peer registers over UDP first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::ports::{PORT_PATIENCE, start_on_fixed_ports, start_when_free};
use crate::support::presence::{CATEGORIES, Dialog, PIDF, Peer, Received, assert_answer, pidf};
use crate::support::server::Home;
use crate::support::sip::token;
use crate::support::{Account, Server, SipClient, show};

const DOMAIN: &str = "subrestart.test";
const USERS: &[&str] = &["presentity", "other", "simple", "lync", "gone"];

fn password(user: &str) -> String {
    format!("pw-{user}")
}

fn uri(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

/// A server on one fixed UDP+TCP port (picked free now) so the subscribers' dialogs reach it
/// again after the restart.
fn start_fresh() -> Server {
    start_on_fixed_ports(DOMAIN, |setup| {
        USERS.iter().fold(setup, |s, u| s.user(u, &password(u)))
    })
}

fn start_again(home: &Arc<Home>) -> Server {
    start_when_free(home, PORT_PATIENCE)
}

fn peer(s: &Server, user: &str) -> Peer {
    Peer::new(
        SipClient::udp(s.udp()),
        Account::new(user, &password(user), DOMAIN),
    )
}

/// The Lync batched SUBSCRIBE (sipe-client §3.4, without piggyback) for `resources`,
/// `to_tag` inside an existing dialog.
pub(super) fn batch_subscribe(
    p: &mut Peer,
    dialog: &Dialog,
    to_tag: Option<&str>,
    resources: &[&str],
) -> crate::support::Req {
    let me = p.aor();
    let res: String = resources
        .iter()
        .map(|r| format!(r#"<resource uri="{r}"/>"#))
        .collect();
    let body = format!(
        r#"<batchSub xmlns="http://schemas.microsoft.com/2006/01/sip/batch-subscribe" uri="{me}" name=""><action name="subscribe" id="63792024"><adhocList>{res}</adhocList><categoryList xmlns="http://schemas.microsoft.com/2006/09/sip/categorylist"><category name="contactCard"/><category name="note"/><category name="state"/></categoryList></action></batchSub>"#
    );
    let to = match to_tag {
        Some(t) => format!("<{me}>;tag={t}"),
        None => format!("<{me}>"),
    };
    p.req("SUBSCRIBE", &me)
        .from(&dialog.local)
        .to(&to)
        .call_id(&dialog.call_id)
        .cseq(dialog.cseq)
        .header("Contact", &p.contact())
        .header("Event", "presence")
        .header("Require", "adhoclist, categoryList")
        .header("Supported", "eventlist, ms-benotify")
        .header(
            "Accept",
            &format!("application/rlmi+xml, multipart/related, {CATEGORIES}, {PIDF}"),
        )
        .header("Expires", "3600")
        .header("Content-Type", "application/msrtc-adrl-categorylist+xml")
        .body(&body)
}

/// The next NOTIFY or BENOTIFY (answering a NOTIFY).
#[track_caller]
fn notification(p: &mut Peer) -> Received {
    let n = p
        .next_request(crate::support::presence::NOTIFY_TIMEOUT)
        .unwrap_or_else(|| panic!("{} got no notification", p.account.user));
    assert!(
        matches!(n.method(), "NOTIFY" | "BENOTIFY"),
        "unexpected request:\n{}",
        n.show()
    );
    if n.method() == "NOTIFY" {
        p.reply(&n, 200);
    }
    n
}

/// Whether `n` belongs to `dialog` (Call-ID, our tag in To, the server's in From).
fn in_dialog(n: &Received, dialog: &Dialog) -> bool {
    let from_tag = n.request.from().tag().unwrap_or_default().to_owned();
    let to_tag = n.request.to().tag().unwrap_or_default().to_owned();
    n.request.call_id() == dialog.call_id
        && from_tag == dialog.remote_tag()
        && dialog
            .local
            .split(";tag=")
            .nth(1)
            .and_then(|t| t.split(';').next())
            == Some(to_tag.as_str())
}

#[test]
fn rfc6665_4_2_2_acknowledged_subscriptions_survive_a_restart() {
    let s = start_fresh();
    let target = uri("presentity");
    let mut p = peer(&s, "presentity");
    assert_answer(&p.register(3600, None), 200, "REGISTER presentity");
    assert_answer(
        &p.publish(Some(&pidf(&target, "open", None, Some("before"))), &[]),
        200,
        "PUBLISH",
    );
    let mut o = peer(&s, "other");
    assert_answer(&o.register(3600, Some("0the4")), 200, "REGISTER other");

    // An RFC dialect PIDF subscription.
    let mut simple = peer(&s, "simple");
    assert_answer(&simple.register(3600, None), 200, "REGISTER simple");
    let (r, d) = simple.subscribe(&target, 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE (PIDF)");
    let mut simple_dialog = d.expect("dialog");
    let first = simple.expect_notify();
    assert!(first.body().contains("before"), "{}", first.show());
    let simple_cseq = first.cseq();

    // A Lync batched subscription with BENOTIFY.
    let mut lync = peer(&s, "lync");
    assert_answer(&lync.register(3600, Some("1ync1ync")), 200, "REGISTER lync");
    let mut lync_dialog = Dialog {
        uri: lync.aor(),
        call_id: format!("{}@blackbox.test", token()),
        local: format!("<{}>;tag={};epid=1ync1ync", lync.aor(), token()),
        remote: String::new(),
        cseq: 1,
        event: "presence".to_owned(),
    };
    let req = batch_subscribe(&mut lync, &lync_dialog, None, &[&target, &uri("other")]);
    let r = lync.send(req);
    assert_answer(&r, 200, "batched SUBSCRIBE");
    assert!(
        crate::support::sip::headers(&r, "Supported")
            .iter()
            .any(|v| v.contains("ms-benotify")),
        "{}",
        show(&r)
    );
    lync_dialog.cseq = r.cseq().seq;
    lync_dialog.remote = r
        .header_str(herald_sip::HeaderName::To)
        .unwrap_or_default()
        .to_owned();
    let first = notification(&mut lync);
    assert!(
        first
            .header("Content-Type")
            .starts_with("multipart/related"),
        "{}",
        first.show()
    );
    let lync_cseq = first.cseq();

    // A dialog ended before the stop.
    let mut gone = peer(&s, "gone");
    assert_answer(&gone.register(3600, None), 200, "REGISTER gone");
    let (r, d) = gone.subscribe(&target, 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE (gone)");
    let mut gone_dialog = d.expect("dialog");
    gone.expect_notify();
    assert_answer(&gone.resubscribe(&mut gone_dialog, 0), 200, "unsubscribe");
    let last = gone.expect_notify();
    assert_eq!(last.state(), "terminated", "{}", last.show());

    let home = s.stop();
    let restarted_at = Instant::now();
    let s = start_again(&home);

    // Each restored dialog is told the current state at once, with a higher CSeq.
    let n = simple.expect_notify();
    let caught_up = restarted_at.elapsed();
    assert!(
        in_dialog(&n, &simple_dialog),
        "not the same dialog:\n{}",
        n.show()
    );
    assert!(
        n.cseq() > simple_cseq,
        "CSeq {} after {simple_cseq}",
        n.cseq()
    );
    assert_eq!(n.state(), "active", "{}", n.show());
    // The current state: signed in (the presentity's registration was restored; its RFC 3903
    // publication is soft state that its next refresh re-creates after a 412).
    assert!(n.body().contains("<basic>open</basic>"), "{}", n.show());
    let simple_restored = n.cseq();
    let n = lync.expect_request("BENOTIFY");
    assert!(
        in_dialog(&n, &lync_dialog),
        "not the same dialog:\n{}",
        n.show()
    );
    assert!(n.cseq() > lync_cseq, "CSeq {} after {lync_cseq}", n.cseq());
    assert!(
        n.header("Content-Type").starts_with("multipart/related")
            && n.body().contains(&target)
            && n.body().contains(&uri("other")),
        "full state of the list:\n{}",
        n.show()
    );
    println!(
        "restart → first NOTIFY on a restored dialog: {:.0} ms (including the server's start)",
        caught_up.as_secs_f64() * 1000.0
    );
    // (c) The unsubscribed dialog did not come back.
    gone.expect_silence(Duration::from_millis(1500));

    // (a) A publication after the restart reaches both over the same dialogs.
    let lync_restored = n.cseq();
    assert_answer(
        &p.publish(
            Some(&pidf(&target, "open", Some("busy"), Some("after"))),
            &[],
        ),
        200,
        "PUBLISH after the restart",
    );
    let n = simple.expect_notify();
    assert!(in_dialog(&n, &simple_dialog), "{}", n.show());
    assert!(
        n.body().contains("after") && n.body().contains("busy"),
        "{}",
        n.show()
    );
    assert!(n.cseq() > simple_restored, "{}", n.show());
    let b = lync.expect_request("BENOTIFY");
    assert!(in_dialog(&b, &lync_dialog), "{}", b.show());
    assert!(b.cseq() > lync_restored, "{}", b.show());
    assert!(b.body().contains(&target), "{}", b.show());

    // (b) Refreshes inside the restored dialogs are 200.
    let r = simple.resubscribe(&mut simple_dialog, 3600);
    assert_answer(&r, 200, "refresh of the restored PIDF dialog");
    let n = simple.expect_notify();
    assert!(in_dialog(&n, &simple_dialog), "{}", n.show());
    lync_dialog.cseq += 1;
    let tag = lync_dialog.remote_tag().to_owned();
    let req = batch_subscribe(
        &mut lync,
        &lync_dialog,
        Some(&tag),
        &[&target, &uri("other")],
    );
    let r = lync.send(req);
    assert_answer(&r, 200, "refresh of the restored batched dialog");
    let n = lync.expect_request("BENOTIFY");
    assert!(in_dialog(&n, &lync_dialog), "{}", n.show());

    // (c) The unsubscribed dialog is unknown.
    let r = gone.resubscribe(&mut gone_dialog, 3600);
    assert_answer(
        &r,
        481,
        "refresh of a dialog unsubscribed before the restart",
    );
    drop(s);
}
