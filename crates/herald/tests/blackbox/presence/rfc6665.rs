//! RFC 6665 SUBSCRIBE / NOTIFY for the presence package (RFC 3856), over UDP with Digest.

use std::time::{Duration, Instant};

use herald_sip::HeaderName;

use super::{eventually_report, peer, report, server, short_server, spread, uri};
use crate::support::presence::{Dialog, Peer, Received, assert_answer, pidf};
use crate::support::sip::{header, headers, token};
use crate::support::{Req, show};

/// `watcher` subscribes to `presentity` for an hour; returns the dialog and the first NOTIFY
/// (answered 200).
#[track_caller]
fn watch(w: &mut Peer, presentity: &str) -> (Dialog, Received) {
    let (r, dialog) = w.subscribe(presentity, 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let n = w.expect_notify();
    (dialog.expect("a dialog"), n)
}

/// The RPID activity a PIDF body shows, or "open"/"closed" when it shows none.
fn shown(n: &Received) -> String {
    let body = n.body();
    for a in ["busy", "away", "on-the-phone"] {
        if body.contains(&format!("<rpid:{a}/>")) || body.contains(&format!(":{a}/>")) {
            return a.to_owned();
        }
    }
    if body.contains("<basic>open</basic>") {
        "open".to_owned()
    } else if body.contains("<basic>closed</basic>") {
        "closed".to_owned()
    } else {
        format!("unreadable body: {body}")
    }
}

/// §4.2.1 and §4.2.2 (RFC 3856 §6): 200 with Expires and a To tag, then at once a NOTIFY in
/// the new dialog with the full state: Event, Subscription-State active with expires, PIDF
/// for the presentity, sent to the subscriber's Contact.
#[test]
fn rfc6665_4_2_1_subscribe_gets_200_then_notify_with_full_state() {
    let s = server();
    let presentity = uri("sub-first-p");
    let mut p = peer(&s, "sub-first-p");
    assert_answer(
        &p.publish(
            Some(&pidf(&presentity, "open", Some("busy"), Some("Heads down"))),
            &[],
        ),
        200,
        "PUBLISH",
    );
    let mut w = peer(&s, "sub-first-w");
    let (r, dialog) = w.subscribe(&presentity, 600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let dialog = dialog.expect("a dialog");
    assert!(!dialog.remote_tag().is_empty(), "no To tag:\n{}", show(&r));
    let granted: u32 = header(&r, HeaderName::Expires)
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("no Expires:\n{}", show(&r)));
    assert!(granted > 0 && granted <= 600, "{}", show(&r));
    assert!(
        !headers(&r, "Contact").is_empty(),
        "§4.2.1.1: a 200 that creates a dialog has a Contact:\n{}",
        show(&r)
    );

    let n = w.expect_notify();
    assert_eq!(n.request.call_id(), dialog.call_id, "{}", n.show());
    assert_eq!(
        n.request.from().tag(),
        Some(dialog.remote_tag()),
        "NOTIFY From tag = the 200's To tag:\n{}",
        n.show()
    );
    let our_tag = dialog.local.split(";tag=").nth(1).unwrap_or_default();
    assert_eq!(n.request.to().tag(), Some(our_tag), "{}", n.show());
    assert_eq!(n.header("Event"), "presence", "{}", n.show());
    assert_eq!(n.state(), "active", "{}", n.show());
    let expires: u32 = n
        .state_param("expires")
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("no expires in Subscription-State:\n{}", n.show()));
    assert!(expires <= granted && expires + 5 >= granted, "{}", n.show());
    assert!(
        n.header("Content-Type").starts_with("application/pidf+xml"),
        "{}",
        n.show()
    );
    assert!(
        n.body().contains(&format!("entity=\"{presentity}\"")),
        "{}",
        n.show()
    );
    assert_eq!(shown(&n), "busy", "{}", n.show());
    assert!(n.body().contains("Heads down"), "{}", n.show());
    assert!(
        n.request
            .uri()
            .to_string()
            .contains(&w.client.local.to_string()),
        "the NOTIFY goes to the subscriber's Contact:\n{}",
        n.show()
    );
}

/// RFC 3856 §6.6 / RFC 6665 §4.2.2: each PUBLISH that changes the presentity's state reaches
/// the watcher as a NOTIFY with the new state, CSeq counting up within the dialog. The time
/// from sending the PUBLISH to reading the NOTIFY is printed.
#[test]
fn rfc3856_6_6_publish_reaches_watcher_and_latency_is_printed() {
    let s = server();
    let presentity = uri("lat-p");
    let mut p = peer(&s, "lat-p");
    let mut w = peer(&s, "lat-w");
    let (_, first) = watch(&mut w, &presentity);
    assert_eq!(shown(&first), "closed", "{}", first.show());
    let mut cseq = first.cseq();

    let mut etag: Option<String> = None;
    let mut latencies = Vec::new();
    for i in 0..20 {
        let activity = if i % 2 == 0 { "busy" } else { "away" };
        let doc = pidf(&presentity, "open", Some(activity), None);
        let mut extra = Vec::new();
        if let Some(tag) = &etag {
            extra.push(("SIP-If-Match", tag.as_str()));
        }
        let r = p.publish(Some(&doc), &extra);
        assert_answer(&r, 200, "PUBLISH");
        let sent = p.last_sent.expect("sent");
        etag = r.header_str("SIP-ETag").map(str::to_owned);
        let n = w.expect_notify();
        latencies.push(n.at.saturating_duration_since(sent));
        assert_eq!(shown(&n), activity, "change {i}:\n{}", n.show());
        assert_eq!(n.state(), "active", "{}", n.show());
        assert!(
            n.cseq() > cseq,
            "§4.2.2: CSeq {} after {cseq}:\n{}",
            n.cseq(),
            n.show()
        );
        cseq = n.cseq();
    }
    let line = spread(&mut latencies);
    println!("publish→notify latency (PIDF PUBLISH → NOTIFY, UDP, Digest): {line}");
    w.expect_silence(Duration::from_millis(300));
}

/// §4.1.2.1 / §4.2.1.2: a SUBSCRIBE in the dialog refreshes it: 200 with the new Expires and
/// a NOTIFY with full state and the new expiry; CSeq keeps counting up.
#[test]
fn rfc6665_4_1_2_1_refresh_gets_200_and_full_state() {
    let s = server();
    let presentity = uri("ref-p");
    let mut w = peer(&s, "ref-w");
    let (r, dialog) = w.subscribe(&presentity, 300, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let mut dialog = dialog.expect("a dialog");
    let first = w.expect_notify();

    let r = w.resubscribe(&mut dialog, 1800);
    assert_answer(&r, 200, "refresh");
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("1800"));
    let to_tag = r.to().tag().unwrap_or_default().to_owned();
    assert_eq!(to_tag, dialog.remote_tag(), "same dialog:\n{}", show(&r));
    let n = w.expect_notify();
    assert_eq!(n.request.call_id(), dialog.call_id);
    assert_eq!(n.state(), "active", "{}", n.show());
    let expires: u32 = n
        .state_param("expires")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    assert!((1795..=1800).contains(&expires), "{}", n.show());
    assert!(n.cseq() > first.cseq(), "{}", n.show());
    eventually_report(&s, "ref-p", |t| t.contains("ref-w@presence.test"));
}

/// §4.1.2.3 / §4.2.1.4: `Expires: 0` in the dialog unsubscribes: 200, then a final NOTIFY
/// with Subscription-State terminated; later changes send nothing.
#[test]
fn rfc6665_4_1_2_3_unsubscribe_gets_final_terminated_notify() {
    let s = server();
    let presentity = uri("unsub-p");
    let mut p = peer(&s, "unsub-p");
    let mut w = peer(&s, "unsub-w");
    let (mut dialog, first) = watch(&mut w, &presentity);
    let r = w.resubscribe(&mut dialog, 0);
    assert_answer(&r, 200, "unsubscribe");
    let n = w.expect_notify();
    assert_eq!(n.state(), "terminated", "{}", n.show());
    assert!(n.cseq() > first.cseq(), "{}", n.show());
    eventually_report(&s, "unsub-p", |t| !t.contains("unsub-w@"));
    assert_answer(
        &p.publish(Some(&pidf(&presentity, "open", Some("busy"), None)), &[]),
        200,
        "PUBLISH",
    );
    w.expect_silence(Duration::from_millis(500));
    let r = w.resubscribe(&mut dialog, 600);
    assert_answer(&r, 481, "a refresh of the ended subscription");
}

/// §4.4.3 (fetch): `Expires: 0` outside a dialog is a one-time query: 200, then one NOTIFY
/// with the current state and Subscription-State terminated; nothing after.
#[test]
fn rfc6665_4_4_3_one_time_query_gets_one_terminated_notify() {
    let s = server();
    let presentity = uri("query-p");
    let mut p = peer(&s, "query-p");
    assert_answer(
        &p.publish(Some(&pidf(&presentity, "open", Some("away"), None)), &[]),
        200,
        "PUBLISH",
    );
    let mut w = peer(&s, "query-w");
    let (r, _) = w.subscribe(&presentity, 0, &[]);
    assert_answer(&r, 200, "a query");
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("0"));
    let n = w.expect_notify();
    assert_eq!(n.state(), "terminated", "{}", n.show());
    assert_eq!(shown(&n), "away", "{}", n.show());
    eventually_report(&s, "query-p", |t| !t.contains("query-w@"));
    assert_answer(
        &p.publish(Some(&pidf(&presentity, "open", Some("busy"), None)), &[]),
        200,
        "PUBLISH",
    );
    w.expect_silence(Duration::from_millis(500));
}

/// §4.1.2.1 / §4.2.1.2: a SUBSCRIBE in a dialog the notifier does not know is 481.
#[test]
fn rfc6665_4_2_1_2_subscribe_in_unknown_dialog_is_481() {
    let s = server();
    let presentity = uri("unknown-p");
    let mut w = peer(&s, "unknown-w");
    let mut dialog = Dialog {
        uri: presentity.clone(),
        call_id: format!("{}@blackbox.test", token()),
        local: format!("<{}>;tag={}", w.aor(), token()),
        remote: format!("<{presentity}>;tag=never-issued-{}", token()),
        cseq: 1,
        event: "presence".to_owned(),
    };
    let r = w.resubscribe(&mut dialog, 600);
    assert_answer(&r, 481, "an unknown dialog");
    let r = w.resubscribe(&mut dialog, 0);
    assert_answer(&r, 481, "unsubscribing an unknown dialog");
    w.expect_silence(Duration::from_millis(300));
}

/// RFC 3261 §17.1.2.2 (Timer E): a NOTIFY over UDP that gets no answer is retransmitted,
/// the same request after T1 = 500 ms, then after 1 s; an answer stops it.
#[test]
fn rfc3261_17_1_2_2_unanswered_notify_is_retransmitted_over_udp() {
    let s = server();
    let presentity = uri("rtx-p");
    let mut w = peer(&s, "rtx-w");
    w.absorb_retransmissions = false;
    let (r, _) = w.subscribe(&presentity, 600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let first = w.expect_request("NOTIFY");
    let second = w.expect_request("NOTIFY");
    let third = w.expect_request("NOTIFY");
    for again in [&second, &third] {
        assert_eq!(
            again.request.to_bytes().as_ref().len(),
            first.request.to_bytes().as_ref().len(),
            "a retransmission is the same request:\n{}\n---\n{}",
            first.show(),
            again.show()
        );
        assert_eq!(
            again.request.top_via().branch(),
            first.request.top_via().branch()
        );
        assert_eq!(again.cseq(), first.cseq());
    }
    let gap1 = second.at - first.at;
    let gap2 = third.at - second.at;
    println!("NOTIFY retransmissions after {gap1:?} and {gap2:?}");
    assert!(
        gap1 >= Duration::from_millis(400) && gap1 <= Duration::from_millis(2500),
        "first retransmission after {gap1:?}, T1 is 500 ms"
    );
    assert!(
        gap2 >= Duration::from_millis(800) && gap2 <= Duration::from_millis(4000),
        "second retransmission after {gap2:?}, 2*T1 is 1 s"
    );
    w.reply(&third, 200);
    // Timer E would fire next 2 s after the third copy; nothing more comes.
    let quiet = Instant::now();
    if let Some(more) = w.next_request(Duration::from_millis(2600)) {
        panic!(
            "NOTIFY retransmitted after it was answered ({:?} later):\n{}",
            quiet.elapsed(),
            more.show()
        );
    }
    eventually_report(&s, "rtx-p", |t| t.contains("rtx-w@presence.test"));
}

/// RFC 6665 §4.1.3 / §4.2.2: a 481 answer to a NOTIFY ends the subscription at the notifier:
/// no watcher left, no more NOTIFYs, a refresh is 481.
#[test]
fn rfc6665_4_2_2_notify_answered_481_ends_the_subscription() {
    let s = server();
    let presentity = uri("end481-p");
    let mut p = peer(&s, "end481-p");
    let mut w = peer(&s, "end481-w");
    let (r, dialog) = w.subscribe(&presentity, 600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let mut dialog = dialog.expect("a dialog");
    let n = w.expect_request("NOTIFY");
    w.reply(&n, 481);
    eventually_report(&s, "end481-p", |t| !t.contains("end481-w@"));
    assert_answer(
        &p.publish(Some(&pidf(&presentity, "open", Some("busy"), None)), &[]),
        200,
        "PUBLISH",
    );
    w.expect_silence(Duration::from_millis(500));
    let r = w.resubscribe(&mut dialog, 600);
    assert_answer(&r, 481, "a refresh after the 481");
}

/// herald is never a subscriber: NOTIFY and BENOTIFY sent to it are 405 with Allow.
#[test]
fn rfc6665_notify_and_benotify_sent_to_the_server_are_405() {
    let s = server();
    let me = uri("notify405");
    let mut c = peer(&s, "notify405");
    for method in ["NOTIFY", "BENOTIFY"] {
        let req = Req::new(method, &me, &me)
            .to(&format!("<{me}>;tag={}", token()))
            .header("Event", "presence")
            .header("Subscription-State", "active;expires=600")
            .header("Content-Type", "application/pidf+xml")
            .body(&pidf(&me, "open", None, None));
        let r = c.send_plain(&req);
        assert_answer(&r, 405, method);
        let allow = headers(&r, "Allow").join(",");
        assert!(allow.contains("SUBSCRIBE"), "{}", show(&r));
        assert!(!allow.contains("NOTIFY"), "{}", show(&r));
    }
}

/// §4.2.1.1: a subscription shorter than the minimum is 423 with Min-Expires.
#[test]
fn rfc6665_4_2_1_1_too_brief_subscription_is_423() {
    let s = server();
    let mut w = peer(&s, "sub423-w");
    let (r, dialog) = w.subscribe(&uri("sub-first-p"), 10, &[]);
    assert_answer(&r, 423, "Expires: 10");
    assert!(dialog.is_none());
    assert_eq!(
        header(&r, HeaderName::MinExpires).as_deref(),
        Some("60"),
        "{}",
        show(&r)
    );
    w.expect_silence(Duration::from_millis(300));
}

/// §4.2.1.1 / §8.2.1: an event package the notifier does not support is 489 with
/// Allow-Events.
#[test]
fn rfc6665_4_2_1_1_unknown_event_package_is_489() {
    let s = server();
    let presentity = uri("sub-first-p");
    let mut w = peer(&s, "sub489-w");
    let req = w
        .req("SUBSCRIBE", &presentity)
        .header("Contact", &w.contact())
        .header("Event", "dialog")
        .header("Expires", "600");
    let r = w.send(req);
    assert_answer(&r, 489, "Event: dialog");
    let allow = headers(&r, "Allow-Events").join(",");
    assert!(allow.contains("presence"), "{}", show(&r));
}

/// §4.2.2 / §4.1.2.4: a subscription that is not refreshed ends at its expiry with a NOTIFY
/// `terminated;reason=timeout`.
#[test]
fn rfc6665_4_2_2_unrefreshed_subscription_ends_with_reason_timeout() {
    let s = short_server();
    let presentity = uri("subexp-p");
    let mut w = peer(&s, "subexp-w");
    let (r, _) = w.subscribe(&presentity, 3, &[]);
    assert_answer(&r, 200, "SUBSCRIBE for 3 s");
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("3"));
    let first = w.expect_notify();
    let n = w
        .next_request(Duration::from_secs(10))
        .expect("a final NOTIFY at the expiry");
    w.reply(&n, 200);
    assert_eq!(n.state(), "terminated", "{}", n.show());
    assert_eq!(
        n.state_param("reason").as_deref(),
        Some("timeout"),
        "{}",
        n.show()
    );
    assert!(n.cseq() > first.cseq());
    let lived = n.at - first.at;
    assert!(
        lived >= Duration::from_millis(2000),
        "ended after {lived:?}, granted 3 s"
    );
    println!("a 3 s subscription ended after {lived:?}");
    eventually_report(&s, "subexp-p", |t| !t.contains("subexp-w@"));
}

/// RFC 3261 §17.2.2 with RFC 6665 §4.2.1: a SUBSCRIBE retransmitted over UDP (the same bytes,
/// the same branch) is one transaction: one subscription, one dialog tag, one NOTIFY.
#[test]
fn rfc3261_17_2_2_retransmitted_subscribe_creates_one_subscription() {
    let s = server();
    let presentity = uri("dup-p");
    let mut w = peer(&s, "dup-w");
    // A first request to learn the challenge, so the copies carry credentials.
    let (r, _) = w.subscribe(&presentity, 0, &[]);
    assert_answer(&r, 200, "a query");
    w.expect_notify();

    let req = w
        .req("SUBSCRIBE", &presentity)
        .via(&w.client.via())
        .header("Contact", &w.contact())
        .header("Event", "presence")
        .header("Accept", "application/pidf+xml")
        .header("Expires", "600");
    let req = w.authorize(req);
    let text = req.text(&w.client);
    for _ in 0..3 {
        w.client.send_raw(text.as_bytes());
    }
    let mut tags = Vec::new();
    let mut notifies = Vec::new();
    let until = Instant::now() + Duration::from_millis(1500);
    while let Some(m) = w.next_message(until.saturating_duration_since(Instant::now())) {
        match m {
            herald_sip::Message::Response(r) => {
                assert_answer(&r, 200, "the SUBSCRIBE and its copies");
                tags.push(r.to().tag().unwrap_or_default().to_owned());
            }
            herald_sip::Message::Request(_) => {
                while let Some(n) = w.next_request(Duration::ZERO) {
                    w.reply(&n, 200);
                    notifies.push(n);
                }
            }
        }
    }
    assert!(!tags.is_empty(), "no answer to the SUBSCRIBE");
    assert!(
        tags.iter().all(|t| *t == tags[0]),
        "every copy of the answer is the same dialog: {tags:?}"
    );
    assert_eq!(
        notifies.len(),
        1,
        "one subscription, one NOTIFY:\n{}",
        notifies
            .iter()
            .map(Received::show)
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    eventually_report(&s, "dup-p", |t| t.matches("dup-w@").count() == 1);
}

/// RFC 6665 §4.2.2 with RFC 3261 §17.1.2.2 (Timer F): a NOTIFY that never gets an answer
/// times out after 64*T1 = 32 s and ends the subscription.
#[test]
fn rfc6665_4_2_2_notify_never_answered_times_out_and_ends_the_subscription() {
    let s = server();
    let presentity = uri("timeout-p");
    let mut w = peer(&s, "timeout-w");
    w.absorb_retransmissions = false;
    let (r, _) = w.subscribe(&presentity, 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let first = w.expect_request("NOTIFY");
    eventually_report(&s, "timeout-p", |t| t.contains("timeout-w@"));
    // Never answered: the copies keep coming (each read, none answered) until Timer F.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut copies = 0;
    loop {
        let gone = !report(&s, "timeout-p").contains("timeout-w@");
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the subscription outlived its unanswered NOTIFY by 60 s"
        );
        if w.next_request(Duration::from_millis(500)).is_some() {
            copies += 1;
        }
    }
    let ended = first.at.elapsed();
    println!("unanswered NOTIFY: {copies} retransmissions, subscription ended after {ended:?}");
    assert!(
        ended >= Duration::from_secs(30),
        "ended after {ended:?}, before Timer F (32 s)"
    );
    assert!(copies >= 5, "only {copies} retransmissions seen");
}

/// RFC 3856 §6.5 / RFC 6665 §4.2.1.2: a SUBSCRIBE to the presence of an address of our own
/// domain that is no user is 404 (nothing notified); in a Lync batched subscription that
/// resource's RLMI instance is terminated with reason `noresource` (RFC 4662 §5.2) while the
/// real user is watched.
#[test]
fn rfc3856_6_5_subscribe_to_an_unknown_user_is_404_and_noresource_in_a_list() {
    let s = server();
    let mut w = peer(&s, "nores-w");
    assert_answer(&w.register(3600, Some("n0res")), 200, "REGISTER");
    let (r, _) = w.subscribe(&uri("nobody-here"), 3600, &[]);
    assert_answer(&r, 404, "SUBSCRIBE to an unknown user");
    let (r, _) = w.subscribe(&uri("nobody-here"), 0, &[]);
    assert_answer(&r, 404, "query of an unknown user");
    w.expect_silence(Duration::from_millis(500));

    let dialog = Dialog {
        uri: w.aor(),
        call_id: format!("{}@blackbox.test", token()),
        local: format!("<{}>;tag={}", w.aor(), token()),
        remote: String::new(),
        cseq: 1,
        event: "presence".to_owned(),
    };
    let req = super::subscription_restart::batch_subscribe(
        &mut w,
        &dialog,
        None,
        &[&uri("nores-p"), &uri("nobody-here")],
    );
    let r = w.send(req);
    assert_answer(&r, 200, "batched SUBSCRIBE");
    let n = w
        .next_request(crate::support::presence::NOTIFY_TIMEOUT)
        .expect("a first notification");
    if n.method() == "NOTIFY" {
        w.reply(&n, 200);
    }
    let body = n.body();
    let nobody = body
        .split("<resource ")
        .find(|r| r.contains(&uri("nobody-here")))
        .unwrap_or_else(|| panic!("the unknown resource is listed:\n{}", n.show()));
    assert!(
        nobody.contains(r#"state="terminated""#) && nobody.contains(r#"reason="noresource""#),
        "{}",
        n.show()
    );
    let known = body
        .split("<resource ")
        .find(|r| r.contains(&uri("nores-p")))
        .unwrap_or_else(|| panic!("the user is listed:\n{}", n.show()));
    assert!(known.contains(r#"state="active""#), "{}", n.show());
}

/// RFC 3261 §12.1.1 / RFC 6665 §4.2.1.1: a subscriber over TCP is given, in the 200 and in
/// the NOTIFYs, a Contact naming herald's TCP listener (not the UDP one), so its in-dialog
/// requests use a transport it speaks.
#[test]
fn rfc6665_4_2_1_1_contact_of_a_tcp_dialog_names_the_tcp_listener() {
    let s = server();
    let mut w = Peer::new(
        crate::support::SipClient::tcp(s.tcp()),
        crate::support::Account::new("tcp-w", &super::password("tcp-w"), super::DOMAIN),
    );
    let (r, _) = w.subscribe(&uri("tcp-p"), 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE over TCP");
    let expected = format!("<sip:{};transport=tcp>", s.tcp());
    assert_eq!(
        header(&r, HeaderName::Contact).as_deref(),
        Some(expected.as_str()),
        "{}",
        show(&r)
    );
    let n = w.expect_notify();
    assert_eq!(n.header("Contact"), expected, "{}", n.show());
    // A UDP subscriber is still given the UDP listener.
    let mut u = peer(&s, "tcp-p");
    let (r, _) = u.subscribe(&uri("tcp-w"), 3600, &[]);
    assert_answer(&r, 200, "SUBSCRIBE over UDP");
    assert_eq!(
        header(&r, HeaderName::Contact),
        Some(format!("<sip:{};transport=udp>", s.udp())),
        "{}",
        show(&r)
    );
    u.expect_notify();
}
