//! RFC 6665 / RFC 3856 subscriptions, with MS-SIP's BENOTIFY, piggyback and autoextend.

use std::time::Duration;

use super::lync::{batch_subscribe, rlmi_of};
use super::rfc3903::{PIDF_AWAY, PIDF_BUSY, PIDF_OPEN, publish};
use super::*;

const BOB: &str = "bob@example.test";
const CAROL: &str = "carol@example.test";

/// Bob (registered) subscribes to carol with `extra` headers; returns (flow, 200).
fn bob_subscribes(h: &mut Harness, call: &str, extra: &str) -> (u32, Response) {
    let flow = h.register(BOB, &format!("bob-{call}"));
    let r = h.send(BOB, flow, &subscribe(BOB, CAROL, call, extra));
    (flow, r)
}

pub(super) fn in_dialog(call: &str, to_tag: &str, cseq: u32, extra: &str) -> String {
    format!(
        "SUBSCRIBE sip:{CAROL} SIP/2.0
Via: SIP/2.0/TCP 10.0.0.9:5060;branch=z9hG4bK{call}{cseq}
Max-Forwards: 70
From: <sip:{BOB}>;tag=ft-{call}
To: <sip:{CAROL}>;tag={to_tag}
Call-ID: {call}
CSeq: {cseq} SUBSCRIBE
Contact: <sip:bob@10.0.0.9:5060;transport=tcp>
Event: presence
{extra}"
    )
}

fn to_tag(r: &Response) -> String {
    r.to().tag().expect("To tag").to_owned()
}

#[test]
fn rfc6665_section_4_2_1_1_ok_then_immediate_notify_with_full_state() {
    let mut h = Harness::new();
    let (flow, r) = bob_subscribes(&mut h, "c1", "Event: presence\nExpires: 3600");
    assert_eq!(r.status(), 200);
    assert_eq!(rhdr(&r, "Expires"), Some("3600"));
    assert!(
        rhdr(&r, "Contact").is_some(),
        "a dialog-creating 2xx carries Contact"
    );
    assert_eq!(h.engine.subscription_count(), 1);
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    let (o, notify) = &n[0];
    assert_eq!(o.flow, flow);
    assert!(matches!(o.kind, OutboundKind::Notify(_)));
    assert_eq!(notify.method(), &Method::Notify);
    assert_eq!(
        notify.from().tag(),
        Some(to_tag(&r).as_str()),
        "From carries our tag"
    );
    assert_eq!(notify.to().tag(), Some("ft-c1"), "To carries theirs");
    assert_eq!(notify.call_id(), "c1");
    assert_eq!(notify.cseq().seq, 1);
    assert_eq!(hdr(notify, "Event"), Some("presence"));
    assert_eq!(
        hdr(notify, "Subscription-State"),
        Some("active;expires=3600")
    );
    assert!(hdr(notify, "Contact").is_some());
    assert_eq!(
        notify.uri().to_string(),
        "sip:bob@10.0.0.9:5060;transport=tcp"
    );
    assert_eq!(hdr(notify, "Content-Type"), Some("application/pidf+xml"));
    let body = text(notify.body());
    assert!(body.contains("entity=\"sip:carol@example.test\""));
    assert!(
        body.contains("<basic>closed</basic>"),
        "carol is offline: {body}"
    );
}

#[test]
fn rfc6665_section_4_2_1_1_expiry_negotiated_within_bounds() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(&mut h, "c1", "Event: presence\nExpires: 10");
    assert_eq!(r.status(), 423);
    assert_eq!(rhdr(&r, "Min-Expires"), Some("60"));
    let (_, r) = bob_subscribes(&mut h, "c2", "Event: presence\nExpires: 999999");
    assert_eq!(rhdr(&r, "Expires"), Some("43200"));
    let (_, r) = bob_subscribes(&mut h, "c3", "Event: presence");
    assert_eq!(rhdr(&r, "Expires"), Some("3600"));
}

#[test]
fn rfc6665_section_4_2_1_2_refresh_resets_expiry_and_sends_full_state() {
    let mut h = Harness::new();
    let (flow, r) = bob_subscribes(&mut h, "c1", "Event: presence\nExpires: 120");
    let tag = to_tag(&r);
    h.deliver();
    h.advance(Duration::from_secs(100));
    let r = h.send(BOB, flow, &in_dialog("c1", &tag, 2, "Expires: 600"));
    assert_eq!(r.status(), 200);
    assert_eq!(rhdr(&r, "Expires"), Some("600"));
    let n = h.deliver();
    assert_eq!(n.len(), 1, "a refresh gets a full-state NOTIFY");
    assert_eq!(n[0].1.cseq().seq, 2);
    assert_eq!(
        hdr(&n[0].1, "Subscription-State"),
        Some("active;expires=600")
    );
    h.advance(Duration::from_secs(500));
    assert!(h.deliver().is_empty(), "the old expiry no longer applies");
    h.advance(Duration::from_secs(101));
    let n = h.deliver();
    assert_eq!(
        hdr(&n[0].1, "Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(h.engine.subscription_count(), 0);
}

#[test]
fn rfc6665_section_4_2_1_4_unsubscribe_gets_final_terminated_notify() {
    let mut h = Harness::new();
    let (flow, r) = bob_subscribes(&mut h, "c1", "Event: presence");
    let tag = to_tag(&r);
    h.deliver();
    let r = h.send(BOB, flow, &in_dialog("c1", &tag, 2, "Expires: 0"));
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    assert_eq!(
        hdr(&n[0].1, "Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert!(
        !n[0].1.body().is_empty(),
        "the final NOTIFY carries the state"
    );
    assert_eq!(h.engine.subscription_count(), 0);
    let r = h.send(BOB, flow, &in_dialog("c1", &tag, 3, "Expires: 600"));
    assert_eq!(r.status(), 481, "the dialog is gone");
}

#[test]
fn rfc6665_section_4_1_2_3_unknown_dialog_is_481() {
    let mut h = Harness::new();
    let (flow, r) = bob_subscribes(&mut h, "c1", "Event: presence");
    let tag = to_tag(&r);
    assert_eq!(
        h.send(BOB, flow, &in_dialog("c1", "0123456789abcdef", 2, ""))
            .status(),
        481
    );
    assert_eq!(
        h.send(BOB, flow, &in_dialog("other", &tag, 2, "")).status(),
        481,
        "Call-ID must match"
    );
    assert_eq!(
        h.send(BOB, flow, &in_dialog("c1", "x", 2, "")).status(),
        481
    );
    let stolen = in_dialog("c1", &tag, 2, "");
    assert_eq!(
        h.send("mallory@example.test", flow, &stolen).status(),
        481,
        "only the subscriber refreshes"
    );
    assert_eq!(
        h.send(BOB, flow, &in_dialog("c1", &tag, 2, "")).status(),
        200
    );
}

#[test]
fn rfc6665_section_4_4_1_fetch_with_expires_0_is_one_terminated_notify() {
    let mut h = Harness::new();
    h.send(CAROL, 7, &publish(1, "", Some(PIDF_BUSY)));
    let (flow, r) = bob_subscribes(&mut h, "q1", "Event: presence\nExpires: 0");
    assert_eq!(r.status(), 200);
    assert_eq!(rhdr(&r, "Expires"), Some("0"));
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    assert_eq!(
        hdr(&n[0].1, "Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert!(text(n[0].1.body()).contains("<rpid:busy/>"));
    assert_eq!(h.engine.subscription_count(), 0, "nothing is kept");
    h.send(CAROL, 7, &publish(2, "", Some(PIDF_OPEN)));
    assert!(h.deliver().is_empty(), "no later notifications");
    let r = h.send(BOB, flow, &in_dialog("q1", &to_tag(&r), 2, "Expires: 600"));
    assert_eq!(r.status(), 481);
}

#[test]
fn lync_polling_is_answered_rate_limited_and_not_counted() {
    let mut h = Harness::with(EngineConfig {
        poll_burst: 3,
        poll_refill: Duration::from_secs(10),
        max_subscriptions_per_user: 1,
        ..EngineConfig::default()
    });
    let flow = h.register(BOB, "bobpc");
    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "persist", "Event: presence"),
    );
    assert_eq!(r.status(), 200, "uses the whole quota of 1");
    for i in 0..3 {
        let r = h.send(
            BOB,
            flow,
            &subscribe(BOB, CAROL, &format!("p{i}"), "Event: presence\nExpires: 0"),
        );
        assert_eq!(r.status(), 200, "polls do not count against the quota");
    }
    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "p3", "Event: presence\nExpires: 0"),
    );
    assert_eq!(r.status(), 503);
    assert_eq!(rhdr(&r, "Retry-After"), Some("10"));
    h.advance(Duration::from_secs(10));
    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "p4", "Event: presence\nExpires: 0"),
    );
    assert_eq!(
        r.status(),
        200,
        "one poll came back after the refill interval"
    );
    assert_eq!(h.engine.subscription_count(), 1);
}

#[test]
fn rfc6665_section_4_2_2_cseq_strictly_increases_per_dialog() {
    let mut h = Harness::new();
    bob_subscribes(&mut h, "c1", "Event: presence");
    let mut seqs = vec![h.deliver()[0].1.cseq().seq];
    let mut etag: Option<String> = None;
    for (i, body) in [PIDF_BUSY, PIDF_AWAY, PIDF_OPEN, PIDF_BUSY]
        .into_iter()
        .enumerate()
    {
        let extra = etag
            .map(|t| format!("SIP-If-Match: {t}"))
            .unwrap_or_default();
        let r = h.send(
            CAROL,
            7,
            &publish(u32::try_from(i).unwrap_or(0) + 1, &extra, Some(body)),
        );
        etag = rhdr(&r, "SIP-ETag").map(str::to_owned);
        for (_, n) in h.deliver() {
            seqs.push(n.cseq().seq);
        }
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

#[test]
fn rfc6665_section_4_2_2_481_to_a_notify_ends_the_subscription() {
    let mut h = Harness::new();
    bob_subscribes(&mut h, "c1", "Event: presence");
    let n = h.outbound();
    let OutboundKind::Notify(id) = n[0].0.kind else {
        panic!("NOTIFY expected")
    };
    h.engine.on_notify_response(h.now, id, 481);
    assert_eq!(h.engine.subscription_count(), 0);
    h.send(CAROL, 7, &publish(1, "", Some(PIDF_BUSY)));
    assert!(
        h.outbound().is_empty(),
        "no NOTIFY for a terminated subscription"
    );
}

#[test]
fn rfc6665_section_4_2_2_notify_timeout_ends_the_subscription() {
    let mut h = Harness::new();
    bob_subscribes(&mut h, "c1", "Event: presence");
    let n = h.outbound();
    let OutboundKind::Notify(id) = n[0].0.kind else {
        panic!("NOTIFY expected")
    };
    h.engine.on_notify_timeout(h.now, id);
    assert_eq!(h.engine.subscription_count(), 0);

    // An unreported NOTIFY is treated as timed out after notify_timeout.
    bob_subscribes(&mut h, "c2", "Event: presence");
    let _ = h.outbound();
    h.advance(Duration::from_secs(41));
    assert_eq!(h.engine.subscription_count(), 0);
}

#[test]
fn rfc6665_section_4_2_2_expiry_sends_terminated_timeout() {
    let mut h = Harness::new();
    bob_subscribes(&mut h, "c1", "Event: presence\nExpires: 60");
    h.deliver();
    h.advance(Duration::from_secs(60));
    let n = h.deliver();
    assert_eq!(
        hdr(&n[0].1, "Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(h.engine.subscription_count(), 0);
}

#[test]
fn rfc6665_section_8_2_1_unknown_package_is_489_and_missing_event_400() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(&mut h, "c1", "Event: dialog");
    assert_eq!(r.status(), 489);
    assert!(rhdr(&r, "Allow-Events").is_some_and(|v| !v.contains(' ')));
    let (_, r) = bob_subscribes(&mut h, "c2", "");
    assert_eq!(r.status(), 400);
}

#[test]
fn rfc3261_section_8_2_2_3_unknown_required_extension_is_420() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(&mut h, "c1", "Event: presence\nRequire: 100rel-ish");
    assert_eq!(r.status(), 420);
    assert_eq!(rhdr(&r, "Unsupported"), Some("100rel-ish"));
}

#[test]
fn rfc3856_section_6_7_accept_decides_the_body_format() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(&mut h, "c1", "Event: presence\nAccept: text/plain");
    assert_eq!(r.status(), 406);
    let (_, r) = bob_subscribes(
        &mut h,
        "c2",
        "Event: presence\nAccept: application/msrtc-event-categories+xml, application/pidf+xml",
    );
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    assert_eq!(
        hdr(&n[0].1, "Content-Type"),
        Some("application/msrtc-event-categories+xml")
    );
    assert!(text(n[0].1.body()).contains("<availability>18500</availability>"));
}

#[test]
fn ms_sip_3_5_benotify_when_offered_and_enabled() {
    let mut h = Harness::new();
    let offer = "Event: presence\nSupported: ms-benotify\nProxy-Require: ms-benotify";
    let (_, r) = bob_subscribes(&mut h, "c1", offer);
    assert_eq!(r.status(), 200);
    assert!(
        r.supported().any(|t| t == "ms-benotify"),
        "the 200 echoes ms-benotify"
    );
    let n = h.outbound();
    assert_eq!(n[0].0.kind, OutboundKind::Benotify);
    assert_eq!(n[0].1.method(), &Method::Benotify);
    assert_eq!(n[0].1.cseq().method, Method::Benotify);

    let mut h = Harness::with(EngineConfig {
        benotify: false,
        ..EngineConfig::default()
    });
    let (_, r) = bob_subscribes(&mut h, "c1", offer);
    assert!(!r.supported().any(|t| t == "ms-benotify"));
    assert!(matches!(h.outbound()[0].0.kind, OutboundKind::Notify(_)));
}

#[test]
fn ms_sip_3_4_piggybacked_first_notification() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(
        &mut h,
        "c1",
        "Event: presence\nSupported: ms-piggyback-first-notify",
    );
    assert_eq!(r.status(), 200);
    assert_eq!(rhdr(&r, "ms-piggyback-cseq"), Some("1"));
    assert_eq!(rhdr(&r, "Event"), Some("presence"));
    assert_eq!(rhdr(&r, "Subscription-State"), Some("active;expires=3600"));
    assert!(text(r.body()).contains("<basic>closed</basic>"));
    assert!(
        h.outbound().is_empty(),
        "the first NOTIFY is deferred until a change"
    );
    h.send(CAROL, 7, &publish(1, "", Some(PIDF_BUSY)));
    let n = h.deliver();
    assert_eq!(
        n[0].1.cseq().seq,
        2,
        "CSeq continues after the piggybacked one"
    );
}

#[test]
fn ms_sip_3_6_autoextend_rearms_the_expiry_on_every_notify() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(
        &mut h,
        "c1",
        "Event: presence\nExpires: 100\nSupported: com.microsoft.autoextend",
    );
    assert!(r.supported().any(|t| t == "com.microsoft.autoextend"));
    h.deliver();
    h.advance(Duration::from_secs(90));
    h.send(CAROL, 7, &publish(1, "", Some(PIDF_BUSY)));
    let n = h.deliver();
    assert_eq!(
        hdr(&n[0].1, "Subscription-State"),
        Some("active;expires=100")
    );
    h.advance(Duration::from_secs(90));
    assert_eq!(h.engine.subscription_count(), 1, "re-armed by the NOTIFY");
    h.advance(Duration::from_secs(11));
    assert_eq!(h.engine.subscription_count(), 0);
}

#[test]
fn rfc3856_section_6_6_watcher_sign_out_ends_its_subscriptions_silently() {
    let mut h = Harness::new();
    let flow = h.register(BOB, "bobpc");
    h.send(BOB, flow, &subscribe(BOB, CAROL, "c1", "Event: presence"));
    h.send(
        BOB,
        flow,
        &subscribe(BOB, "dave@example.test", "c2", "Event: presence"),
    );
    h.deliver();
    assert_eq!(h.engine.subscription_count(), 2);
    h.unregister(BOB, "bobpc", flow);
    assert_eq!(h.engine.subscription_count(), 0);
    assert!(h.outbound().is_empty(), "nobody is left to notify");
}

#[test]
fn lync_1_3_last_endpoint_gone_makes_the_presentity_offline() {
    let mut h = Harness::new();
    let cflow = h.register(CAROL, "carolpc");
    bob_subscribes(&mut h, "c1", "Event: presence");
    assert!(
        text(h.deliver()[0].1.body()).contains("<basic>open</basic>"),
        "registered = signed in"
    );
    h.unregister(CAROL, "carolpc", cflow);
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    assert!(text(n[0].1.body()).contains("<basic>closed</basic>"));
}

#[test]
fn design_4_one_change_is_rendered_once_per_view_and_format() {
    let mut h = Harness::new();
    for i in 0..5 {
        let w = format!("w{i}@example.test");
        let flow = h.register(&w, &format!("w{i}"));
        h.send(
            &w,
            flow,
            &subscribe(&w, CAROL, &format!("c{i}"), "Event: presence"),
        );
    }
    h.deliver();
    h.send(CAROL, 7, &publish(1, "", Some(PIDF_BUSY)));
    let n = h.deliver();
    assert_eq!(n.len(), 5, "every watcher hears it");
    let first = n[0].1.body().clone();
    assert!(n.iter().all(|(_, r)| *r.body() == first));
    let uid = h.engine.by_aor[&aor(CAROL)];
    assert_eq!(
        h.engine.user(uid).renders.len(),
        1,
        "one render for (Company, PIDF)"
    );
}

#[test]
fn rfc6665_section_8_3_1_no_202_unless_configured_for_rfc3265_peers() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(&mut h, "c1", "Event: presence");
    assert_eq!(r.status(), 200);
    let mut h = Harness::with(EngineConfig {
        legacy_202: true,
        ..EngineConfig::default()
    });
    let (_, r) = bob_subscribes(&mut h, "c1", "Event: presence");
    assert_eq!(r.status(), 202);
    assert_eq!(h.deliver().len(), 1, "the NOTIFY follows as with 200");
}

#[test]
fn rfc6665_section_4_2_2_shutdown_deactivates_every_subscription() {
    let mut h = Harness::new();
    bob_subscribes(&mut h, "c1", "Event: presence");
    h.deliver();
    h.engine.shutdown(h.now);
    let n = h.deliver();
    assert_eq!(
        hdr(&n[0].1, "Subscription-State"),
        Some("terminated;reason=deactivated")
    );
    assert_eq!(h.engine.subscription_count(), 0);
}

#[test]
fn rfc3261_section_8_2_1_other_methods_are_405() {
    let mut h = Harness::new();
    let t = subscribe(BOB, CAROL, "m1", "")
        .replacen("SUBSCRIBE", "MESSAGE", 1)
        .replace("CSeq: 1 SUBSCRIBE", "CSeq: 1 MESSAGE");
    let r = h.send(BOB, 1, &t);
    assert_eq!(r.status(), 405);
    assert_eq!(rhdr(&r, "Allow"), Some("PUBLISH, SUBSCRIBE, SERVICE"));
}

#[test]
fn rfc6665_section_4_1_2_1_refresh_is_a_target_refresh() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(&mut h, "c1", "Event: presence");
    let tag = to_tag(&r);
    h.deliver();
    let moved = in_dialog("c1", &tag, 2, "Expires: 600")
        .replace("sip:bob@10.0.0.9:5060", "sip:bob@10.0.0.77:5070");
    assert_eq!(h.send(BOB, 55, &moved).status(), 200);
    let n = h.deliver();
    assert_eq!(
        n[0].0.flow, 55,
        "notifications follow the flow of the refresh"
    );
    assert_eq!(
        n[0].1.uri().to_string(),
        "sip:bob@10.0.0.77:5070;transport=tcp"
    );
}

#[test]
fn rfc3261_section_12_1_1_record_route_becomes_the_route_set_and_event_id_is_kept() {
    let mut h = Harness::new();
    let (_, r) = bob_subscribes(
        &mut h,
        "c1",
        "Event: presence;id=7\nRecord-Route: <sip:edge1.example.test;lr>\nRecord-Route: <sip:edge2.example.test;lr>",
    );
    assert_eq!(rhdr(&r, "Event"), Some("presence;id=7"));
    let n = h.deliver();
    assert_eq!(hdr(&n[0].1, "Event"), Some("presence;id=7"));
    assert_eq!(
        hdr(&n[0].1, "Route"),
        Some("<sip:edge1.example.test;lr>, <sip:edge2.example.test;lr>")
    );
    let tag = to_tag(&r);
    let wrong_id = in_dialog("c1", &tag, 2, "").replace("Event: presence", "Event: presence;id=8");
    assert_eq!(
        h.send(BOB, 1, &wrong_id).status(),
        481,
        "the event id is part of the dialog"
    );
}

#[test]
fn registrar_refresh_on_a_new_flow_moves_the_subscriptions() {
    let mut h = Harness::new();
    let flow = h.register(BOB, "bobpc");
    h.send(BOB, flow, &subscribe(BOB, CAROL, "c1", "Event: presence"));
    h.deliver();
    // The same binding (same Contact, same Call-ID) refreshed over a new connection.
    h.counter += 1;
    let refresh = RegisterRequest {
        aor: aor(BOB),
        call_id: "reg-bobpc".to_owned(),
        cseq: h.counter,
        contacts: vec![RegContact::Binding(ContactBinding::new(format!(
            "sip:bobpc@10.0.0.{flow}:5060;transport=tcp"
        )))],
        expires: Some(3600),
        flow: 42,
        source: String::new(),
        user_agent: None,
        epid: Some("bobpc".to_owned()),
    };
    h.registrar.register(h.now, refresh).expect("refresh");
    h.advance(Duration::ZERO);
    h.send(CAROL, 7, &publish(1, "", Some(PIDF_BUSY)));
    let n = h.deliver();
    assert_eq!(n[0].0.flow, 42, "the client reconnected on flow 42");
}

#[test]
fn registration_refresh_keeps_subscriptions_and_a_moved_endpoint_takes_them_along() {
    let mut h = Harness::new();
    let (flow, r) = bob_subscribes(&mut h, "c1", "Event: presence\nExpires: 3600");
    assert_eq!(r.status(), 200);
    assert_eq!(h.deliver().len(), 1, "the first NOTIFY");
    // A plain re-REGISTER (same Call-ID, same flow) changes nothing watchers see.
    h.register_on(BOB, "bob-c1", flow, 3600);
    assert!(h.deliver().is_empty(), "a plain refresh sends nothing");
    assert_eq!(h.engine.subscription_count(), 1);
    // Re-registering over another connection moves the subscriptions to it.
    h.register_moved(BOB, "bob-c1", flow, 9, 3600);
    let r = h.send(CAROL, 7, &publish(1, "", Some(PIDF_BUSY)));
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].0.flow, 9, "the NOTIFY follows the endpoint's new flow");
}

/// RFC 3856 §6.5 / RFC 6665 §4.2.1.2: a SUBSCRIBE to the presence of someone who is not a user
/// of our own domain is 404, with nothing kept and nothing notified; a query too.
#[test]
fn rfc3856_6_5_subscribe_to_an_unknown_user_of_our_domain_is_404() {
    let mut h = Harness::new();
    h.store.set_directory(&[aor(BOB), aor(CAROL)]);
    let flow = h.register(BOB, "bobpc");
    for (call, expires) in [("nx1", 3600), ("nx2", 0)] {
        let r = h.send(
            BOB,
            flow,
            &subscribe(
                BOB,
                "nobody@example.test",
                call,
                &format!("Event: presence\nExpires: {expires}"),
            ),
        );
        assert_eq!(r.status(), 404, "Expires: {expires}");
    }
    assert_eq!(h.engine.subscription_count(), 0);
    assert!(h.outbound().is_empty());
    // A user of the directory is watched as before.
    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "ok1", "Event: presence\nExpires: 3600"),
    );
    assert_eq!(r.status(), 200);
}

/// RFC 4662 §5.2: in a list (here a Lync batch), an unknown user of our domain is a resource
/// whose instance is terminated with reason `noresource`; the others are watched.
#[test]
fn rfc4662_5_2_unknown_list_resource_is_terminated_noresource() {
    let mut h = Harness::new();
    h.store.set_directory(&[aor(BOB), aor(CAROL)]);
    let flow = h.register(BOB, "bobpc");
    let r = h.send(
        BOB,
        flow,
        &batch_subscribe(BOB, "nxb", 1, None, &[CAROL, "nobody@example.test"]),
    );
    assert_eq!(r.status(), 200);
    let ct = rhdr(&r, "Content-Type").expect("piggybacked RLMI");
    let n = rlmi_of(ct, r.body());
    let nobody = n
        .list
        .resources
        .iter()
        .find(|res| res.uri == "sip:nobody@example.test")
        .expect("the unknown resource is listed");
    assert_eq!(
        nobody.instances[0].state,
        crate::rlmi::InstanceState::Terminated
    );
    assert_eq!(nobody.instances[0].reason.as_deref(), Some("noresource"));
    let carol = n
        .list
        .resources
        .iter()
        .find(|res| res.uri == "sip:carol@example.test")
        .expect("carol is listed");
    assert_eq!(carol.instances[0].state, crate::rlmi::InstanceState::Active);
}

/// RFC 3261 §12.1.1 / RFC 6665 §4.2.1.1: the Contact of the 2xx and of the notifications is
/// the one the pipeline gives for the transport the SUBSCRIBE came over (a TLS subscriber is
/// not pointed at the UDP listener); a refresh over another transport moves it.
#[test]
fn rfc6665_4_2_1_1_contact_names_the_transport_of_the_subscribe() {
    let mut h = Harness::new();
    let flow = h.register(BOB, "bobpc");
    let tls: std::sync::Arc<str> = "<sip:192.0.2.1:5061;transport=tls>".into();
    let send = |h: &mut Harness, text: &str, contact: Option<std::sync::Arc<str>>| {
        let request = parse_request(text);
        let reply = h.engine.handle_request(
            h.now,
            AuthenticatedRequest {
                request,
                user: aor(BOB),
                flow,
                endpoint: None,
                contact,
            },
        );
        reply.response.build().expect("response")
    };
    let r = send(
        &mut h,
        &subscribe(BOB, CAROL, "ct1", "Event: presence\nExpires: 3600"),
        Some(tls.clone()),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(rhdr(&r, "Contact"), Some(&*tls));
    let n = h.deliver();
    assert_eq!(hdr(&n[0].1, "Contact"), Some(&*tls), "the NOTIFY too");
    // Refreshed without one (the configured Contact): later NOTIFYs follow.
    let r = send(
        &mut h,
        &in_dialog("ct1", &to_tag(&r), 2, "Expires: 3600"),
        None,
    );
    assert_eq!(r.status(), 200);
    let configured = h.engine.config().contact.clone();
    assert_eq!(rhdr(&r, "Contact"), Some(configured.as_str()));
    let n = h.deliver();
    assert_eq!(hdr(&n[0].1, "Contact"), Some(configured.as_str()));
}
