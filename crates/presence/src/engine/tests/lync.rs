//! The Lync dialect: category publication (lync-exchange-facts §1.6), aggregation (§1.3),
//! batched subscriptions (§1.7), roaming contacts (§1.9), roaming self and containers (§1.5).

use std::time::Duration;

use super::*;
use crate::categories::Categories;
use crate::categories::fault::WrongDelta;
use crate::rlmi;

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

/// A SERVICE from `user` (with `epid`) carrying `body` of type `ct`.
pub(super) fn service(user: &str, epid: &str, cseq: u32, ct: &str, body: &str) -> String {
    let local = user.split('@').next().unwrap_or(user);
    format!(
        "SERVICE sip:{user} SIP/2.0
Via: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKs{cseq}
Max-Forwards: 70
From: <sip:{user}>;tag=svc-{epid};epid={epid}
To: <sip:{user}>
Call-ID: service-{epid}
CSeq: {cseq} SERVICE
Contact: <sip:{local}@10.0.0.5:5060;transport=tcp>
Content-Type: {ct}

{body}"
    )
}

/// One `state` publication element.
pub(super) fn state_pub(
    kind: &str,
    instance: u32,
    container: u16,
    version: u32,
    expire: &str,
    availability: u32,
) -> String {
    let manual = if kind == "userState" { "true" } else { "false" };
    format!(
        r#"<publication categoryName="state" instance="{instance}" container="{container}" version="{version}" expireType="{expire}"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" manual="{manual}" xsi:type="{kind}"><availability>{availability}</availability></state></publication>"#
    )
}

/// A `note` publication element.
pub(super) fn note_pub(container: u16, version: u32, text: &str) -> String {
    format!(
        r#"<publication categoryName="note" instance="0" container="{container}" version="{version}" expireType="static"><note xmlns="http://schemas.microsoft.com/2006/09/sip/note"><body type="personal" uri="">{text}</body></note></publication>"#
    )
}

/// A publication body for `user`.
pub(super) fn publish_body(user: &str, pubs: &[String]) -> String {
    format!(
        r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:{user}">{}</publications></publish>"#,
        pubs.concat()
    )
}

pub(super) const PUBLISH_CT: &str = "application/msrtc-category-publish+xml";

/// Bob subscribes to alice's categories (single, NOTIFY); returns bob's flow.
fn bob_watches_alice(h: &mut Harness) -> u32 {
    let flow = h.register(BOB, "bobpc");
    let r = h.send(
        BOB,
        flow,
        &subscribe(
            BOB,
            ALICE,
            "bw",
            "Event: presence\nAccept: application/msrtc-event-categories+xml",
        ),
    );
    assert_eq!(r.status(), 200);
    h.deliver();
    flow
}

fn availability_in(body: &str) -> Option<u32> {
    let doc = Categories::parse(body.as_bytes(), &crate::Limits::DEFAULT).ok()?;
    doc.instances.iter().find_map(|i| match &i.value {
        crate::categories::CategoryValue::State(s)
            if i.name == crate::categories::CategoryName::State =>
        {
            s.availability.map(|a| a.value())
        }
        _ => None,
    })
}

fn last_availability(h: &mut Harness) -> Option<u32> {
    h.deliver()
        .last()
        .and_then(|(_, n)| availability_in(&text(n.body())))
}

#[test]
fn lync_1_6_category_publish_aggregates_and_reaches_watchers() {
    let mut h = Harness::new();
    let aflow = h.register(ALICE, "alicepc");
    bob_watches_alice(&mut h);
    let initial = std::fs::read_to_string(format!(
        "{}/tests/fixtures/sipe_3_6_initial_publish.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let r = h.send(
        ALICE,
        aflow,
        &service(ALICE, "alicepc", 1, PUBLISH_CT, &initial),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(
        rhdr(&r, "Content-Type"),
        Some("application/vnd-microsoft-roaming-self+xml"),
        "the 200 carries the new versions (sipe-client §3.6)"
    );
    let body = text(r.body());
    assert!(
        body.contains(r#"name="state" instance="536870912""#) && body.contains(r#"version="1""#),
        "{body}"
    );
    // Registration alone already showed alice Available, so nothing changed for bob.
    assert!(h.deliver().is_empty());

    let busy = publish_body(
        ALICE,
        &[
            state_pub("userState", 536_870_912, 2, 1, "static", 6500),
            state_pub("userState", 536_870_912, 3, 1, "static", 6500),
        ],
    );
    assert_eq!(
        h.send(
            ALICE,
            aflow,
            &service(ALICE, "alicepc", 2, PUBLISH_CT, &busy)
        )
        .status(),
        200
    );
    assert_eq!(
        last_availability(&mut h),
        Some(6500),
        "manual Busy wins over the machine"
    );
    let report = h.engine.report(h.now, &aor(ALICE)).expect("alice known");
    assert!(
        report
            .publications
            .iter()
            .any(|p| p.key.starts_with("device/"))
    );
}

#[test]
fn lync_1_6_stale_version_is_409_wrong_delta_and_changes_nothing() {
    let mut h = Harness::new();
    let aflow = h.register(ALICE, "alicepc");
    bob_watches_alice(&mut h);
    let first = publish_body(
        ALICE,
        &[state_pub("userState", 536_870_912, 2, 0, "static", 6500)],
    );
    assert_eq!(
        h.send(
            ALICE,
            aflow,
            &service(ALICE, "alicepc", 1, PUBLISH_CT, &first)
        )
        .status(),
        200
    );
    h.deliver();
    let stale = publish_body(
        ALICE,
        &[
            state_pub("userState", 536_870_912, 2, 5, "static", 9500),
            state_pub("userState", 536_870_912, 3, 4, "static", 9500),
        ],
    );
    let r = h.send(
        ALICE,
        aflow,
        &service(ALICE, "alicepc", 2, PUBLISH_CT, &stale),
    );
    assert_eq!(r.status(), 409);
    assert_eq!(
        rhdr(&r, "Content-Type"),
        Some("application/msrtc-fault+xml")
    );
    assert!(rhdr(&r, "ms-diagnostics").is_some());
    let fault = WrongDelta::parse(r.body(), &crate::Limits::DEFAULT).expect("fault body");
    assert_eq!(fault.operations.len(), 2);
    assert_eq!(
        (fault.operations[0].index, fault.operations[0].cur_version),
        (1, 1)
    );
    assert_eq!(
        (fault.operations[1].index, fault.operations[1].cur_version),
        (2, 0),
        "new instance: version 0"
    );
    assert!(h.deliver().is_empty(), "nothing was applied");
    let ok = publish_body(
        ALICE,
        &[state_pub("userState", 536_870_912, 2, 1, "static", 9500)],
    );
    assert_eq!(
        h.send(ALICE, aflow, &service(ALICE, "alicepc", 3, PUBLISH_CT, &ok))
            .status(),
        200
    );
    assert_eq!(last_availability(&mut h), Some(9500));
}

#[test]
fn lync_1_6_static_publications_are_stored_before_the_200_and_survive_a_restart() {
    let mut h = Harness::new();
    let aflow = h.register(ALICE, "alicepc");
    let body = publish_body(
        ALICE,
        &[
            state_pub("userState", 536_870_912, 2, 0, "static", 12500),
            note_pub(200, 0, "Back at 3"),
        ],
    );
    h.store.set_failing(true);
    let r = h.send(
        ALICE,
        aflow,
        &service(ALICE, "alicepc", 1, PUBLISH_CT, &body),
    );
    assert_eq!(r.status(), 500, "a store failure refuses the publication");
    h.store.set_failing(false);
    let report = h.engine.report(h.now, &aor(ALICE)).expect("alice");
    assert!(report.publications.is_empty(), "and changes nothing");
    assert_eq!(
        h.send(
            ALICE,
            aflow,
            &service(ALICE, "alicepc", 2, PUBLISH_CT, &body)
        )
        .status(),
        200
    );
    assert_eq!(h.store.statics(&aor(ALICE)).len(), 2);

    // A new engine on the same store: the manual state and the note come back.
    let mut h2 = Harness::new();
    h2.store = h.store.clone();
    h2.engine = Engine::new(
        EngineConfig::default(),
        Box::new(h.store.clone()),
        h2.now,
        Timestamp::from_unix_millis(WALL0),
    )
    .expect("engine");
    h2.register(ALICE, "alicepc");
    let flow = h2.register(BOB, "bobpc");
    h2.send(
        BOB,
        flow,
        &subscribe(
            BOB,
            ALICE,
            "w",
            "Event: presence\nAccept: application/msrtc-event-categories+xml",
        ),
    );
    let n = h2.deliver();
    let body = text(n[0].1.body());
    assert!(
        body.contains("<availability>12500</availability>"),
        "{body}"
    );
    assert!(body.contains("Back at 3"));
}

#[test]
fn lync_1_6_expire_type_endpoint_dies_with_its_endpoint() {
    let mut h = Harness::new();
    let pc = h.register(ALICE, "alicepc");
    let phone = h.register(ALICE, "alicephone");
    bob_watches_alice(&mut h);
    let away = publish_body(
        ALICE,
        &[state_pub(
            "machineState",
            0x3000_0001,
            2,
            0,
            "endpoint",
            15500,
        )],
    );
    h.send(ALICE, pc, &service(ALICE, "alicepc", 1, PUBLISH_CT, &away));
    let avail = publish_body(
        ALICE,
        &[state_pub(
            "machineState",
            0x3000_0002,
            2,
            0,
            "endpoint",
            6500,
        )],
    );
    h.send(
        ALICE,
        phone,
        &service(ALICE, "alicephone", 1, PUBLISH_CT, &avail),
    );
    assert_eq!(
        last_availability(&mut h),
        Some(6500),
        "the most active machine wins"
    );
    h.unregister(ALICE, "alicephone", phone);
    assert_eq!(
        last_availability(&mut h),
        Some(15500),
        "the phone's state went with it"
    );
    h.unregister(ALICE, "alicepc", pc);
    assert_eq!(
        last_availability(&mut h),
        Some(18500),
        "last endpoint gone: Offline"
    );
    let report = h.engine.report(h.now, &aor(ALICE)).expect("alice");
    assert!(report.publications.is_empty());
}

#[test]
fn lync_1_6_expire_type_time_and_user_and_deletion() {
    let mut h = Harness::new();
    let pc = h.register(ALICE, "alicepc");
    bob_watches_alice(&mut h);
    let timed = publish_body(
        ALICE,
        &[state_pub("userState", 0x2400_0000, 2, 0, "time", 9500)
            .replace(r#"expireType="time""#, r#"expireType="time" expires="60""#)],
    );
    h.send(ALICE, pc, &service(ALICE, "alicepc", 1, PUBLISH_CT, &timed));
    assert_eq!(last_availability(&mut h), Some(9500));
    h.advance(Duration::from_secs(61));
    assert_eq!(
        last_availability(&mut h),
        Some(3500),
        "the time-bound state expired"
    );

    let user = publish_body(
        ALICE,
        &[state_pub("userState", 536_870_912, 2, 0, "user", 6500)],
    );
    h.send(ALICE, pc, &service(ALICE, "alicepc", 2, PUBLISH_CT, &user));
    assert_eq!(last_availability(&mut h), Some(6500));
    let delete = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:alice@example.test"><publication categoryName="state" instance="536870912" container="2" version="1" expireType="time" expires="0"/></publications></publish>"#;
    assert_eq!(
        h.send(ALICE, pc, &service(ALICE, "alicepc", 3, PUBLISH_CT, delete))
            .status(),
        200
    );
    assert_eq!(
        last_availability(&mut h),
        Some(3500),
        "deleted by expires=0"
    );

    h.send(ALICE, pc, &service(ALICE, "alicepc", 4, PUBLISH_CT, &user));
    h.deliver();
    h.unregister(ALICE, "alicepc", pc);
    h.deliver();
    let pc = h.register(ALICE, "alicepc");
    let _ = pc;
    assert_eq!(
        last_availability(&mut h),
        Some(3500),
        "a user-bound state died at sign-out"
    );
}

#[test]
fn lync_1_3_idle_machine_turns_away_after_the_configured_interval() {
    let mut h = Harness::new();
    let pc = h.register(ALICE, "alicepc");
    bob_watches_alice(&mut h);
    let idle = publish_body(
        ALICE,
        &[state_pub(
            "machineState",
            0x3000_0001,
            2,
            0,
            "endpoint",
            5000,
        )],
    );
    h.send(ALICE, pc, &service(ALICE, "alicepc", 1, PUBLISH_CT, &idle));
    assert_eq!(last_availability(&mut h), Some(5000));
    h.advance(Duration::from_secs(14 * 60));
    assert!(h.deliver().is_empty());
    h.advance(Duration::from_secs(61));
    let n = h.deliver();
    let body = text(n[0].1.body());
    assert_eq!(
        availability_in(&body),
        Some(15500),
        "idle → away after 15 minutes"
    );
    assert!(
        body.contains("lastActive=\"2024-01-01T00:00:00Z\""),
        "{body}"
    );
}

#[test]
fn lync_1_3_do_not_disturb_shows_urgent_interruptions_to_the_team() {
    let mut h = Harness::new();
    let pc = h.register(ALICE, "alicepc");
    let members = r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="300" version="0"><member action="add" type="user" value="dave@example.test"/></container></setContainerMembers>"#;
    assert_eq!(
        h.send(
            ALICE,
            pc,
            &service(
                ALICE,
                "alicepc",
                1,
                "application/msrtc-setcontainermembers+xml",
                members
            )
        )
        .status(),
        200
    );
    let dnd = publish_body(
        ALICE,
        &[
            state_pub("userState", 536_870_912, 2, 0, "static", 9500),
            state_pub("userState", 536_870_912, 3, 0, "static", 6900).replace(
                "<availability>6900</availability>",
                r#"<availability>6900</availability><activity token="urgent-interruptions-only"/>"#,
            ),
        ],
    );
    h.send(ALICE, pc, &service(ALICE, "alicepc", 2, PUBLISH_CT, &dnd));
    bob_watches_alice(&mut h);
    let dflow = h.register("dave@example.test", "davepc");
    h.send(
        "dave@example.test",
        dflow,
        &subscribe(
            "dave@example.test",
            ALICE,
            "dw",
            "Event: presence\nAccept: application/msrtc-event-categories+xml",
        ),
    );
    let n = h.deliver();
    let body = text(n[0].1.body());
    assert_eq!(availability_in(&body), Some(6900), "{body}");
    assert!(body.contains("urgent-interruptions-only"));
    let report = h.engine.report(h.now, &aor(ALICE)).expect("alice");
    assert_eq!(
        report.availability.value(),
        9500,
        "colleagues see Do Not Disturb"
    );
}

/// SIPE's batched SUBSCRIBE (sipe-client §3.4) for `resources`.
pub(super) fn batch_subscribe(
    user: &str,
    call: &str,
    cseq: u32,
    to_tag: Option<&str>,
    resources: &[&str],
) -> String {
    let local = user.split('@').next().unwrap_or(user);
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let res: String = resources
        .iter()
        .map(|r| format!(r#"<resource uri="sip:{r}"/>"#))
        .collect();
    format!(
        r#"SUBSCRIBE sip:{user} SIP/2.0
Via: SIP/2.0/tcp 127.0.0.1:34404;branch=z9hG4bK{call}{cseq}
Max-Forwards: 70
From: <sip:{user}>;tag={call}-tag;epid={local}-epid
To: <sip:{user}>{to_tag}
Call-ID: {call}
CSeq: {cseq} SUBSCRIBE
Contact: <sip:127.0.0.1:34404;transport=tcp;ms-opaque=d3470f2e1d>
Require: adhoclist, categoryList
Supported: eventlist
Accept: application/rlmi+xml, multipart/related, text/xml+msrtc.pidf, application/msrtc-event-categories+xml, application/xpidf+xml, application/pidf+xml
Supported: ms-piggyback-first-notify
Supported: ms-benotify
Proxy-Require: ms-benotify
Event: presence
Content-Type: application/msrtc-adrl-categorylist+xml

<batchSub xmlns="http://schemas.microsoft.com/2006/01/sip/batch-subscribe" uri="sip:{user}" name=""><action name="subscribe" id="63792024"><adhocList>{res}</adhocList><categoryList xmlns="http://schemas.microsoft.com/2006/09/sip/categorylist"><category name="calendarData"/><category name="contactCard"/><category name="note"/><category name="state"/></categoryList></action></batchSub>"#
    )
}

/// Parses a multipart RLMI body from a message's Content-Type and body.
pub(super) fn rlmi_of(ct: &str, body: &Bytes) -> rlmi::Notification {
    rlmi::parse_notification(ct, body.clone(), &crate::Limits::DEFAULT)
        .expect("multipart/related RLMI")
}

#[test]
fn lync_1_7_batched_subscription_piggybacks_rlmi_and_notifies_partial_state() {
    let mut h = Harness::new();
    let cflow = h.register("carol@example.test", "carolpc");
    let aflow = h.register(ALICE, "alicepc");
    let r = h.send(
        ALICE,
        aflow,
        &batch_subscribe(ALICE, "batch1", 1, None, &[BOB, "carol@example.test"]),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(rhdr(&r, "ms-piggyback-cseq"), Some("1"));
    assert_eq!(rhdr(&r, "Require"), Some("eventlist"));
    assert!(r.supported().any(|t| t == "ms-benotify"));
    let ct = rhdr(&r, "Content-Type").expect("multipart");
    assert!(ct.starts_with("multipart/related") && ct.contains("application/rlmi+xml"));
    let n = rlmi_of(ct, r.body());
    assert!(n.list.full_state);
    assert_eq!(n.list.version, 0);
    assert_eq!(n.list.uri, "sip:alice@example.test");
    assert_eq!(n.list.resources.len(), 2);
    assert_eq!(n.parts.len(), 2);
    assert!(
        n.parts
            .iter()
            .all(|p| p.content_type == "application/msrtc-event-categories+xml")
    );
    let bob_part = n
        .parts
        .iter()
        .find(|p| p.content_id == BOB)
        .expect("bob's part");
    assert!(text(&bob_part.body).contains(r#"uri="sip:bob@example.test""#));
    assert_eq!(availability_in(&text(&bob_part.body)), Some(18500));
    assert!(h.outbound().is_empty(), "piggybacked: no NOTIFY yet");

    let busy = publish_body(
        "carol@example.test",
        &[state_pub("userState", 536_870_912, 2, 0, "static", 6500)],
    );
    h.send(
        "carol@example.test",
        cflow,
        &service("carol@example.test", "carolpc", 1, PUBLISH_CT, &busy),
    );
    let out = h.outbound();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.kind, OutboundKind::Benotify);
    let bn = &out[0].1;
    assert_eq!(hdr(bn, "Require"), Some("eventlist"));
    let n = rlmi_of(hdr(bn, "Content-Type").expect("ct"), bn.body());
    assert!(!n.list.full_state, "only what changed");
    assert_eq!(n.list.version, 1);
    assert_eq!(n.parts.len(), 1);
    assert_eq!(availability_in(&text(&n.parts[0].body)), Some(6500));
}

#[test]
fn lync_1_7_quota_exceeded_per_resource_and_for_single_subscriptions() {
    let mut h = Harness::with(EngineConfig {
        max_watchers_per_presentity: 1,
        ..EngineConfig::default()
    });
    let bflow = h.register(BOB, "bobpc");
    assert_eq!(
        h.send(
            BOB,
            bflow,
            &subscribe(BOB, "carol@example.test", "b1", "Event: presence")
        )
        .status(),
        200
    );
    let aflow = h.register(ALICE, "alicepc");
    let r = h.send(
        ALICE,
        aflow,
        &batch_subscribe(
            ALICE,
            "batch1",
            1,
            None,
            &["carol@example.test", "dave@example.test"],
        ),
    );
    let n = rlmi_of(rhdr(&r, "Content-Type").expect("ct"), r.body());
    let carol = n
        .list
        .resources
        .iter()
        .find(|res| res.uri == "sip:carol@example.test")
        .expect("carol listed");
    let i = &carol.instances[0];
    assert_eq!(i.state, rlmi::InstanceState::Terminated);
    assert_eq!(i.reason.as_deref(), Some("quotaExceeded"));
    assert_eq!(i.status_code, Some(413));
    assert_eq!(i.ms_diag_code, Some(2012));
    assert_eq!(n.parts.len(), 1, "dave is watched");

    let r = h.send(
        ALICE,
        aflow,
        &subscribe(ALICE, "carol@example.test", "a2", "Event: presence"),
    );
    assert_eq!(r.status(), 413);
    assert!(rhdr(&r, "ms-diagnostics").is_some_and(|d| d.starts_with("2012;")));
}

#[test]
fn lync_batched_refresh_carries_the_whole_list_again() {
    let mut h = Harness::new();
    let aflow = h.register(ALICE, "alicepc");
    let r = h.send(
        ALICE,
        aflow,
        &batch_subscribe(ALICE, "batch1", 1, None, &[BOB]),
    );
    let tag = r.to().tag().expect("tag").to_owned();
    assert_eq!(h.engine.user(h.engine.by_aor[&aor(ALICE)]).watched, 1);
    let r = h.send(
        ALICE,
        aflow,
        &batch_subscribe(ALICE, "batch1", 2, Some(&tag), &[BOB, "carol@example.test"]),
    );
    assert_eq!(r.status(), 200);
    let n = rlmi_of(rhdr(&r, "Content-Type").expect("ct"), r.body());
    assert!(n.list.full_state);
    assert_eq!(n.parts.len(), 2, "the refresh's list replaced the old one");
    assert_eq!(h.engine.user(h.engine.by_aor[&aor(ALICE)]).watched, 2);
    assert_eq!(h.engine.user(h.engine.by_aor[&aor(BOB)]).watchers.len(), 1);
}

fn roaming_contacts(user: &str, call: &str) -> String {
    let local = user.split('@').next().unwrap_or(user);
    format!(
        "SUBSCRIBE sip:{user} SIP/2.0
Via: SIP/2.0/tcp 127.0.0.1:34404;branch=z9hG4bK{call}
Max-Forwards: 70
From: <sip:{user}>;tag={call};epid={local}-epid
To: <sip:{user}>
Call-ID: {call}
CSeq: 1 SUBSCRIBE
Contact: <sip:127.0.0.1:34404;transport=tcp>
Event: vnd-microsoft-roaming-contacts
Accept: application/vnd-microsoft-roaming-contacts+xml
Supported: com.microsoft.autoextend
Supported: ms-benotify
Proxy-Require: ms-benotify
Supported: ms-piggyback-first-notify
Supported: ms-ucs"
    )
}

fn soap(method: &str, inner: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/winrtc/2002/11/sip"><s:Body><m:{method}>{inner}<m:deltaNum>1</m:deltaNum></m:{method}></s:Body></s:Envelope>"#
    )
}

#[test]
fn ms_sip_3_7_roaming_contacts_list_and_soap_changes() {
    let mut h = Harness::with(EngineConfig {
        max_contacts: 2,
        ..EngineConfig::default()
    });
    let flow = h.register(ALICE, "alicepc");
    let r = h.send(ALICE, flow, &roaming_contacts(ALICE, "rc1"));
    assert_eq!(r.status(), 200);
    assert_eq!(rhdr(&r, "Event"), Some("vnd-microsoft-roaming-contacts"));
    assert_eq!(rhdr(&r, "ms-piggyback-cseq"), Some("1"));
    let body = text(r.body());
    assert!(body.starts_with(r#"<contactList deltaNum="1""#), "{body}");
    assert!(body.contains(r#"<group id="1" name="~""#));
    assert!(
        !body.contains("ucsmode"),
        "never send ucsmode (sipe-client §8)"
    );

    let set_bob = soap(
        "setContact",
        "<m:displayName>Bob</m:displayName><m:groups>1</m:groups><m:subscribed>true</m:subscribed><m:URI>sip:bob@example.test</m:URI><m:externalURI />",
    );
    let r = h.send(
        ALICE,
        flow,
        &service(ALICE, "alice-epid", 1, "application/SOAP+xml", &set_bob),
    );
    assert_eq!(r.status(), 200);
    let n = h.outbound();
    assert_eq!(n.len(), 1);
    let list = text(n[0].1.body());
    assert!(
        list.contains(r#"deltaNum="2""#) && list.contains(r#"uri="bob@example.test""#),
        "{list}"
    );

    let r = h.send(
        ALICE,
        flow,
        &service(
            ALICE,
            "alice-epid",
            2,
            "application/SOAP+xml",
            &soap("addGroup", "<m:name>Friends</m:name><m:externalURI />"),
        ),
    );
    assert_eq!(r.status(), 200);
    assert!(
        text(r.body()).contains("<m:groupID>2</m:groupID>"),
        "SIPE reads Body/addGroup/groupID"
    );
    let move_bob = set_bob.replace("<m:groups>1</m:groups>", "<m:groups>1 2</m:groups>");
    h.send(
        ALICE,
        flow,
        &service(ALICE, "alice-epid", 3, "application/SOAP+xml", &move_bob),
    );
    let stored = h.store.stored_contact_list(&aor(ALICE)).expect("persisted");
    assert_eq!(stored.contacts[0].groups.len(), 2);
    assert_eq!(stored.delta_num, 4);

    let carol = set_bob.replace("bob@", "carol@");
    assert_eq!(
        h.send(
            ALICE,
            flow,
            &service(ALICE, "alice-epid", 4, "application/SOAP+xml", &carol)
        )
        .status(),
        200
    );
    let dave = set_bob.replace("bob@", "dave@");
    let r = h.send(
        ALICE,
        flow,
        &service(ALICE, "alice-epid", 5, "application/SOAP+xml", &dave),
    );
    assert_eq!(r.status(), 413, "over max_contacts");
    assert!(rhdr(&r, "ms-diagnostics").is_some_and(|d| d.contains("quotaExceeded")));

    let r = h.send(
        ALICE,
        flow,
        &service(
            ALICE,
            "alice-epid",
            6,
            "application/SOAP+xml",
            &soap("deleteGroup", "<m:groupID>1</m:groupID>"),
        ),
    );
    assert_eq!(r.status(), 400, "the default group stays");
    let r = h.send(
        ALICE,
        flow,
        &service(
            ALICE,
            "alice-epid",
            7,
            "application/SOAP+xml",
            &soap("deleteGroup", "<m:groupID>2</m:groupID>"),
        ),
    );
    assert_eq!(r.status(), 200);
    let r = h.send(
        ALICE,
        flow,
        &service(
            ALICE,
            "alice-epid",
            8,
            "application/SOAP+xml",
            &soap("deleteContact", "<m:URI>sip:bob@example.test</m:URI>"),
        ),
    );
    assert_eq!(r.status(), 200);
    let list = h.engine.contact_list(h.now, &aor(ALICE)).expect("list");
    assert_eq!(list.contacts.len(), 1);
    assert_eq!(list.groups.len(), 1);

    // The admin CLI path.
    h.engine
        .remove_contact(h.now, &aor(ALICE), &aor("carol@example.test"))
        .expect("removed");
    h.engine
        .add_contact(
            h.now,
            &aor(ALICE),
            &aor("erin@example.test"),
            Some("Erin"),
            None,
        )
        .expect("added");
    let list = h.engine.contact_list(h.now, &aor(ALICE)).expect("list");
    assert_eq!(
        list.contacts
            .iter()
            .map(|c| c.uri.as_str())
            .collect::<Vec<_>>(),
        ["sip:erin@example.test"]
    );
}

fn roaming_self(user: &str, call: &str) -> String {
    let local = user.split('@').next().unwrap_or(user);
    format!(
        r#"SUBSCRIBE sip:{user} SIP/2.0
Via: SIP/2.0/tcp 127.0.0.1:34404;branch=z9hG4bK{call}
Max-Forwards: 70
From: <sip:{user}>;tag={call};epid={local}-epid
To: <sip:{user}>
Call-ID: {call}
CSeq: 1 SUBSCRIBE
Contact: <sip:127.0.0.1:34404;transport=tcp>
Event: vnd-microsoft-roaming-self
Accept: application/vnd-microsoft-roaming-self+xml
Supported: com.microsoft.autoextend
Supported: ms-benotify
Proxy-Require: ms-benotify
Supported: ms-piggyback-first-notify
Content-Type: application/vnd-microsoft-roaming-self+xml

<roamingList xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-self"><roaming type="categories"/><roaming type="containers"/><roaming type="subscribers"/></roamingList>"#
    )
}

#[test]
fn lync_1_5_roaming_self_and_set_container_members() {
    let mut h = Harness::new();
    let flow = h.register(ALICE, "alicepc");
    let r = h.send(ALICE, flow, &roaming_self(ALICE, "rs1"));
    assert_eq!(r.status(), 200);
    let body = text(r.body());
    assert!(body.starts_with("<roamingData"));
    assert!(body.contains(r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:alice@example.test""#));
    assert!(
        body.contains(
            r#"<containers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"/>"#
        ),
        "{body}"
    );
    assert!(body.contains("<subscribers"));

    let members = std::fs::read_to_string(format!(
        "{}/tests/fixtures/sipe_3_6_set_container_members.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let r = h.send(
        ALICE,
        flow,
        &service(
            ALICE,
            "alice-epid",
            1,
            "application/msrtc-setcontainermembers+xml",
            &members,
        ),
    );
    assert_eq!(r.status(), 200);
    let n = h.outbound();
    assert_eq!(n.len(), 1);
    let body = text(n[0].1.body());
    assert!(
        body.contains(r#"<container id="200" version="1"><member type="sameEnterprise"/>"#),
        "{body}"
    );
    assert!(!body.contains("<categories"), "only the part that changed");
    assert_eq!(h.store.stored_containers(&aor(ALICE)).len(), 2);
    let r = h.send(
        ALICE,
        flow,
        &service(
            ALICE,
            "alice-epid",
            2,
            "application/msrtc-setcontainermembers+xml",
            &members,
        ),
    );
    assert_eq!(r.status(), 409, "version 0 is stale now");
}

#[test]
fn rfc4662_list_of_own_contacts_with_pidf_parts() {
    let mut h = Harness::new();
    h.engine
        .add_contact(h.now, &aor(ALICE), &aor(BOB), None, None)
        .expect("added");
    h.register(BOB, "bobpc");
    let flow = h.register(ALICE, "alicepc");
    let r = h.send(
        ALICE,
        flow,
        &subscribe(ALICE, ALICE, "l1", "Event: presence\nSupported: eventlist\nAccept: multipart/related, application/rlmi+xml, application/pidf+xml"),
    );
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    assert_eq!(hdr(&n[0].1, "Require"), Some("eventlist"));
    let doc = rlmi_of(hdr(&n[0].1, "Content-Type").expect("ct"), n[0].1.body());
    assert_eq!(doc.parts.len(), 1);
    assert_eq!(doc.parts[0].content_type, "application/pidf+xml");
    assert!(text(&doc.parts[0].body).contains("<basic>open</basic>"));
}

#[test]
fn sipe_3_3_provisioning_v2_gets_a_bare_200_and_no_notification() {
    let mut h = Harness::new();
    let flow = h.register(ALICE, "alicepc");
    let r = h.send(
        ALICE,
        flow,
        &subscribe(
            ALICE,
            ALICE,
            "prov",
            "Event: vnd-microsoft-provisioning-v2\nExpires: 0",
        ),
    );
    assert_eq!(r.status(), 200);
    assert!(r.body().is_empty());
    assert!(
        h.outbound().is_empty(),
        "a provisioning notification would start group chat"
    );
}

#[test]
fn ms_sip_service_acts_only_on_the_sender_and_takes_known_bodies() {
    let mut h = Harness::new();
    let flow = h.register(ALICE, "alicepc");
    let body = publish_body(
        BOB,
        &[state_pub("userState", 536_870_912, 2, 0, "static", 6500)],
    );
    let t = service(ALICE, "alicepc", 1, PUBLISH_CT, &body);
    assert_eq!(
        h.send(ALICE, flow, &t).status(),
        403,
        "publications uri must be the sender"
    );
    let t = service(BOB, "alicepc", 2, PUBLISH_CT, &body);
    assert_eq!(
        h.send(ALICE, flow, &t).status(),
        403,
        "Request-URI must be the sender"
    );
    let t = service(ALICE, "alicepc", 3, "text/plain", "hello");
    let r = h.send(ALICE, flow, &t);
    assert_eq!(r.status(), 415);
    assert!(rhdr(&r, "Accept").is_some());
    let t = service(ALICE, "alicepc", 4, PUBLISH_CT, "<publish");
    assert_eq!(h.send(ALICE, flow, &t).status(), 400);
    let aggregate = publish_body(
        ALICE,
        &[state_pub("aggregateState", 1, 2, 0, "static", 3500)],
    );
    let t = service(ALICE, "alicepc", 5, PUBLISH_CT, &aggregate);
    assert_eq!(
        h.send(ALICE, flow, &t).status(),
        400,
        "the server computes aggregates"
    );
}

#[test]
fn lync_identity_changes_reach_watchers_and_the_report_shows_everything() {
    let mut h = Harness::new();
    h.register(ALICE, "alicepc");
    bob_watches_alice(&mut h);
    let id = Identity {
        display_name: Some("Alice Liddell".to_owned()),
        ..Identity::default()
    };
    h.store.set_identity(&aor(ALICE), id.clone());
    h.engine
        .set_identity(h.now, &aor(ALICE), Some(&id))
        .expect("set");
    let n = h.deliver();
    assert!(text(n[0].1.body()).contains("<displayName>Alice Liddell</displayName>"));
    let report = h.engine.report(h.now, &aor(ALICE)).expect("alice");
    assert_eq!(report.uri, "sip:alice@example.test");
    assert_eq!(report.availability.value(), 3500);
    assert_eq!(report.endpoints, ["alicepc"]);
    assert_eq!(report.watchers.len(), 1);
    assert_eq!(report.watchers[0].uri, "sip:bob@example.test");
}
