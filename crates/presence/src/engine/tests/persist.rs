//! Subscription dialogs across a restart (issue 3, "nothing acknowledged is lost"): what the
//! engine queues for the store, and what a new engine makes of the stored rows.

use std::time::Duration;

use super::lync::batch_subscribe;
use super::lync::rlmi_of;
use super::rfc3903::{PIDF_AWAY, PIDF_BUSY, publish};
use super::*;

const BOB: &str = "bob@example.test";
const CAROL: &str = "carol@example.test";
const DAVE: &str = "dave@example.test";

fn harness() -> Harness {
    Harness::with(EngineConfig {
        persist_subscriptions: true,
        ..EngineConfig::default()
    })
}

fn changes(h: &mut Harness) -> Vec<SubscriptionChange<u32>> {
    std::iter::from_fn(|| h.engine.poll_subscription_change()).collect()
}

fn put(c: &[SubscriptionChange<u32>]) -> StoredSubscription<u32> {
    match c {
        [SubscriptionChange::Put(row)] => (**row).clone(),
        other => panic!("expected one Put, got {other:?}"),
    }
}

/// An in-dialog SUBSCRIBE from bob asking for `expires`.
fn in_dialog(call: &str, to_tag: &str, cseq: u32, expires: u32) -> String {
    rfc6665::in_dialog(call, to_tag, cseq, &format!("Expires: {expires}"))
}

/// Bob subscribes to carol (PIDF) in a fresh engine; returns the harness, the 200's To tag
/// and the stored row.
fn subscribed() -> (Harness, String, StoredSubscription<u32>) {
    let mut h = harness();
    let flow = h.register(BOB, "bobpc");
    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "p1", "Event: presence\nExpires: 3600"),
    );
    assert_eq!(r.status(), 200);
    let tag = r.to().tag().expect("To tag").to_owned();
    let n = h.deliver();
    assert_eq!(n.len(), 1);
    let row = put(&changes(&mut h));
    (h, tag, row)
}

#[test]
fn a_new_subscription_queues_its_row_a_refresh_rewrites_it_an_unsubscribe_deletes_it() {
    let (mut h, tag, row) = subscribed();
    assert_eq!(row.local_tag, tag);
    assert_eq!(row.watcher, aor(BOB));
    assert_eq!(row.package, "presence");
    assert_eq!(row.call_id, "p1");
    assert_eq!(row.remote_tag, "ft-p1");
    assert_eq!(row.remote_target, "sip:bob@10.0.0.9:5060;transport=tcp");
    assert_eq!(row.resource, Some(aor(CAROL)));
    assert_eq!(row.list_uri, None);
    assert_eq!(row.format, "pidf");
    assert_eq!(row.duration, 3600);
    assert_eq!(row.expires_at_ms, WALL0 + 3_600_000);
    assert_eq!(
        row.cseq, CSEQ_RESERVATION,
        "above the first NOTIFY's CSeq 1"
    );
    assert_eq!(row.flow, 1);

    h.advance(Duration::from_secs(100));
    let r = h.send(BOB, 1, &in_dialog("p1", &tag, 2, 600));
    assert_eq!(r.status(), 200);
    let row = put(&changes(&mut h));
    assert_eq!(
        row.expires_at_ms,
        WALL0 + 100_000 + 600_000,
        "the new expiry"
    );

    let r = h.send(BOB, 1, &in_dialog("p1", &tag, 3, 0));
    assert_eq!(r.status(), 200);
    assert_eq!(changes(&mut h), vec![SubscriptionChange::Delete(tag)]);
}

#[test]
fn queries_are_not_stored_and_expiry_and_sign_out_delete_the_row() {
    let mut h = harness();
    let flow = h.register(BOB, "bobpc");
    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "q1", "Event: presence\nExpires: 0"),
    );
    assert_eq!(r.status(), 200);
    assert!(changes(&mut h).is_empty(), "a one-time query is not stored");

    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "e1", "Event: presence\nExpires: 60"),
    );
    let tag = r.to().tag().expect("tag").to_owned();
    put(&changes(&mut h));
    h.advance(Duration::from_secs(61));
    assert_eq!(changes(&mut h), vec![SubscriptionChange::Delete(tag)]);

    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "s1", "Event: presence\nExpires: 600"),
    );
    let tag = r.to().tag().expect("tag").to_owned();
    put(&changes(&mut h));
    h.unregister(BOB, "bobpc", flow);
    assert_eq!(changes(&mut h), vec![SubscriptionChange::Delete(tag)]);
}

#[test]
fn without_persistence_configured_nothing_is_queued() {
    let mut h = Harness::new();
    let flow = h.register(BOB, "bobpc");
    h.send(
        BOB,
        flow,
        &subscribe(BOB, CAROL, "n1", "Event: presence\nExpires: 600"),
    );
    assert!(h.engine.poll_subscription_change().is_none());
}

#[test]
fn a_restored_dialog_is_notified_at_once_with_a_higher_cseq_and_answers_refreshes_and_publications()
{
    let (mut h1, tag, row) = subscribed();
    // Some more notifications before the stop.
    let cflow = h1.register(CAROL, "carolpc");
    let r = h1.send(CAROL, cflow, &publish(1, "Expires: 3600", Some(PIDF_BUSY)));
    assert_eq!(r.status(), 200);
    let sent: Vec<u32> = h1.deliver().iter().map(|(_, n)| n.cseq().seq).collect();
    let last = *sent.iter().max().expect("notified");

    // The new process: bob's registration was restored (same flow number), then the row.
    let mut h2 = harness();
    h2.register_on(BOB, "bobpc", 1, 3600);
    h2.engine
        .restore_subscription(h2.now, row.clone())
        .expect("restored");
    assert_eq!(h2.engine.subscription_count(), 1);
    let renewed = put(&changes(&mut h2));
    assert_eq!(
        renewed.cseq,
        2 * CSEQ_RESERVATION,
        "the next block is reserved"
    );
    let n = h2.deliver();
    assert_eq!(n.len(), 1, "one NOTIFY with the current state");
    let (o, notify) = &n[0];
    assert_eq!(o.flow, 1);
    assert_eq!(notify.from().tag(), Some(tag.as_str()), "the same dialog");
    assert_eq!(notify.to().tag(), Some("ft-p1"));
    assert_eq!(notify.call_id(), "p1");
    assert!(notify.cseq().seq > last, "{} > {last}", notify.cseq().seq);
    assert_eq!(notify.cseq().seq, CSEQ_RESERVATION + 1);
    assert!(
        hdr(notify, "Subscription-State").is_some_and(|s| s.starts_with("active")),
        "{notify:?}"
    );

    // A refresh in the restored dialog is 200, not 481, and keeps the tag.
    let r = h2.send(BOB, 1, &in_dialog("p1", &tag, 5, 3600));
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(put(&changes(&mut h2)).local_tag, tag);
    let n = h2.deliver();
    assert_eq!(n[0].1.cseq().seq, CSEQ_RESERVATION + 2);
    // A publication reaches it.
    let cflow = h2.register(CAROL, "carolpc");
    h2.deliver();
    let r = h2.send(CAROL, cflow, &publish(1, "Expires: 3600", Some(PIDF_BUSY)));
    assert_eq!(r.status(), 200);
    let n = h2.deliver();
    assert!(
        n.iter()
            .any(|(_, m)| m.from().tag() == Some(tag.as_str()) && text(m.body()).contains("busy")),
        "the publication reached the restored dialog"
    );
    // The same row cannot be restored twice.
    assert_eq!(
        h2.engine.restore_subscription(h2.now, row),
        Err(RestoreError::Duplicate)
    );
    // Unsubscribing deletes the restored row by its stored tag.
    let r = h2.send(BOB, 1, &in_dialog("p1", &tag, 6, 0));
    assert_eq!(r.status(), 200);
    assert_eq!(
        changes(&mut h2),
        vec![SubscriptionChange::Delete(tag.clone())]
    );
    let r = h2.send(BOB, 1, &in_dialog("p1", &tag, 7, 600));
    assert_eq!(r.status(), 481, "gone for good");
}

#[test]
fn rows_of_subscribers_not_signed_in_and_expired_rows_are_not_restored() {
    let (_, _, row) = subscribed();
    let mut h2 = harness();
    assert_eq!(
        h2.engine.restore_subscription(h2.now, row.clone()),
        Err(RestoreError::NotSignedIn)
    );
    h2.register_on(BOB, "bobpc", 1, 3600);
    let expired = StoredSubscription {
        expires_at_ms: WALL0 + 500,
        ..row.clone()
    };
    assert_eq!(
        h2.engine.restore_subscription(h2.now, expired),
        Err(RestoreError::Expired)
    );
    let unknown = StoredSubscription {
        package: "dialog".to_owned(),
        ..row
    };
    assert_eq!(
        h2.engine.restore_subscription(h2.now, unknown),
        Err(RestoreError::Unknown)
    );
    assert_eq!(h2.engine.subscription_count(), 0);
    assert!(h2.outbound().is_empty());
}

#[test]
fn the_row_is_rewritten_when_the_cseq_reaches_its_reservation() {
    let (mut h, _tag, row) = subscribed();
    assert_eq!(row.cseq, CSEQ_RESERVATION);
    let cflow = h.register(CAROL, "carolpc");
    h.deliver();
    assert!(changes(&mut h).is_empty());
    let mut cseq = 0;
    let mut version = 1;
    let bodies = [PIDF_BUSY, PIDF_AWAY];
    let mut etag: Option<String> = None;
    while cseq < CSEQ_RESERVATION {
        let body = bodies[version as usize % 2];
        let extra = match &etag {
            Some(e) => format!("Expires: 3600\nSIP-If-Match: {e}"),
            None => "Expires: 3600".to_owned(),
        };
        let r = h.send(CAROL, cflow, &publish(version, &extra, Some(body)));
        assert_eq!(r.status(), 200);
        etag = rhdr(&r, "SIP-ETag").map(str::to_owned);
        version += 1;
        for (_, n) in h.deliver() {
            cseq = n.cseq().seq;
        }
        let c = changes(&mut h);
        if cseq < CSEQ_RESERVATION {
            assert!(c.is_empty(), "no write at CSeq {cseq}");
        } else {
            assert_eq!(put(&c).cseq, 2 * CSEQ_RESERVATION, "written at CSeq {cseq}");
        }
    }
}

#[test]
fn a_restored_lync_batch_keeps_its_resources_format_and_benotify() {
    let mut h1 = harness();
    h1.register(CAROL, "carolpc");
    h1.register(DAVE, "davepc");
    let flow = h1.register(BOB, "bobpc");
    let r = h1.send(
        BOB,
        flow,
        &batch_subscribe(
            BOB,
            "b1",
            1,
            None,
            &[CAROL, DAVE, "nobody@elsewhere.example"],
        ),
    );
    assert_eq!(r.status(), 200);
    let tag = r.to().tag().expect("tag").to_owned();
    h1.deliver();
    let row = put(&changes(&mut h1));
    assert_eq!(row.list_uri.as_deref(), Some("sip:bob@example.test"));
    assert_eq!(row.list.len(), 3, "{:?}", row.list);
    assert!(row.format.starts_with("categories:"), "{}", row.format);

    let mut h2 = harness();
    h2.register(CAROL, "carolpc");
    h2.register(DAVE, "davepc");
    h2.register_on(BOB, "bobpc", flow, 3600);
    h2.deliver();
    h2.engine
        .restore_subscription(h2.now, row)
        .expect("restored");
    let n = h2.outbound();
    assert_eq!(n.len(), 1);
    let (o, m) = &n[0];
    assert!(matches!(o.kind, OutboundKind::Benotify), "ms-benotify kept");
    assert_eq!(m.from().tag(), Some(tag.as_str()));
    let ct = hdr(m, "Content-Type").expect("multipart");
    let rlmi = rlmi_of(ct, m.body());
    assert!(rlmi.list.full_state);
    let uris: Vec<&str> = rlmi.list.resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(
        uris.contains(&"sip:carol@example.test") && uris.contains(&"sip:dave@example.test"),
        "{uris:?}"
    );
    assert!(
        rlmi.parts
            .iter()
            .all(|p| p.content_type == "application/msrtc-event-categories+xml"),
        "categories parts"
    );
}
