//! Privacy: containers and access levels (lync-exchange-facts §1.5), watcher information
//! (RFC 3857/3858) and roaming-self subscribers.

use super::lync::{PUBLISH_CT, note_pub, publish_body, service, state_pub};
use super::*;
use crate::watcherinfo::WatcherInfo;

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

const MEMBERS_CT: &str = "application/msrtc-setcontainermembers+xml";

/// Alice is Busy with a note visible to colleagues.
fn busy_alice(h: &mut Harness) -> u32 {
    let flow = h.register(ALICE, "alicepc");
    let body = publish_body(
        ALICE,
        &[
            state_pub("userState", 536_870_912, 2, 0, "static", 6500),
            note_pub(200, 0, "Heads down"),
            note_pub(100, 0, "Heads down"),
        ],
    );
    assert_eq!(
        h.send(
            ALICE,
            flow,
            &service(ALICE, "alicepc", 1, PUBLISH_CT, &body)
        )
        .status(),
        200
    );
    flow
}

fn watch(h: &mut Harness, who: &str, accept: &str) -> String {
    let flow = h.register(who, &format!("{who}-pc"));
    let call = format!("w-{}-{}", who.replace(['@', '.'], "-"), h.counter);
    let r = h.send(
        who,
        flow,
        &subscribe(
            who,
            ALICE,
            &call,
            &format!("Event: presence\nAccept: {accept}"),
        ),
    );
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    text(n.last().expect("first NOTIFY").1.body())
}

const CATS: &str = "application/msrtc-event-categories+xml";

#[test]
fn lync_1_5_colleagues_see_company_view_and_blocked_watchers_see_offline() {
    let mut h = Harness::new();
    let aflow = busy_alice(&mut h);
    let colleague = watch(&mut h, "carol@example.test", CATS);
    assert!(colleague.contains("<availability>6500</availability>"));
    assert!(
        colleague.contains("Heads down"),
        "non-contacts in the company get the Company view"
    );

    let block = r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="32000" version="0"><member action="add" type="user" value="bob@example.test"/></container></setContainerMembers>"#;
    assert_eq!(
        h.send(
            ALICE,
            aflow,
            &service(ALICE, "alicepc", 2, MEMBERS_CT, block)
        )
        .status(),
        200
    );
    let blocked = watch(&mut h, BOB, CATS);
    assert!(
        blocked.contains("<availability>18500</availability>"),
        "{blocked}"
    );
    assert!(!blocked.contains("6500") && !blocked.contains("Heads down"));
    let pidf = watch(&mut h, BOB, "application/pidf+xml");
    assert!(pidf.contains("<basic>closed</basic>"));
}

#[test]
fn lync_1_5_blocking_an_existing_watcher_takes_effect_at_once() {
    let mut h = Harness::new();
    let aflow = busy_alice(&mut h);
    watch(&mut h, BOB, CATS);
    let block = r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="32000" version="0"><member action="add" type="user" value="bob@example.test"/></container></setContainerMembers>"#;
    h.send(
        ALICE,
        aflow,
        &service(ALICE, "alicepc", 2, MEMBERS_CT, block),
    );
    let n = h.deliver();
    assert_eq!(n.len(), 1, "only bob's view changed");
    assert!(text(n[0].1.body()).contains("<availability>18500</availability>"));
    let unblock = block
        .replace("action=\"add\"", "action=\"remove\"")
        .replace("version=\"0\"", "version=\"1\"");
    h.send(
        ALICE,
        aflow,
        &service(ALICE, "alicepc", 3, MEMBERS_CT, &unblock),
    );
    let n = h.deliver();
    assert!(text(n[0].1.body()).contains("<availability>6500</availability>"));
}

#[test]
fn lync_1_5_federated_watchers_get_the_external_view() {
    let mut h = Harness::with(EngineConfig {
        local_domains: vec!["example.test".to_owned()],
        ..EngineConfig::default()
    });
    busy_alice(&mut h);
    let external = watch(&mut h, "fred@partner.test", CATS);
    assert!(external.contains("<availability>6500</availability>"));
    assert!(
        !external.contains("Heads down"),
        "External does not see notes by default"
    );
    let flow = h.register(BOB, "bobpc");
    let r = h.send(
        BOB,
        flow,
        &subscribe(BOB, "x@elsewhere.test", "nx", "Event: presence"),
    );
    assert_eq!(r.status(), 404, "not a presentity of ours");
}

#[test]
fn lync_1_5_team_members_see_the_team_container() {
    let mut h = Harness::new();
    let aflow = busy_alice(&mut h);
    let team = r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="300" version="0"><member action="add" type="user" value="dave@example.test"/></container></setContainerMembers>"#;
    h.send(
        ALICE,
        aflow,
        &service(ALICE, "alicepc", 2, MEMBERS_CT, team),
    );
    let dave = watch(&mut h, "dave@example.test", CATS);
    assert!(
        dave.contains("<availability>6500</availability>"),
        "aggregate also goes to 300"
    );
    assert!(
        !dave.contains("Heads down"),
        "no note was published into 300"
    );
}

#[test]
fn rfc3857_section_5_watcher_information_follows_the_watchers() {
    let mut h = Harness::new();
    let aflow = h.register(ALICE, "alicepc");
    let r = h.send(
        ALICE,
        aflow,
        &subscribe(
            ALICE,
            ALICE,
            "winfo",
            "Event: presence.winfo\nAccept: application/watcherinfo+xml",
        ),
    );
    assert_eq!(r.status(), 200);
    let n = h.deliver();
    let w = WatcherInfo::parse(n[0].1.body(), &crate::Limits::DEFAULT).expect("watcherinfo");
    assert_eq!((w.version, w.full), (0, true));
    assert!(w.lists[0].watchers.is_empty());

    let bflow = h.register(BOB, "bobpc");
    h.send(BOB, bflow, &subscribe(BOB, ALICE, "b1", "Event: presence"));
    let n = h.deliver();
    let winfo = n
        .iter()
        .find(|(_, r)| hdr(r, "Event") == Some("presence.winfo"))
        .expect("winfo NOTIFY");
    let w = WatcherInfo::parse(winfo.1.body(), &crate::Limits::DEFAULT).expect("watcherinfo");
    assert_eq!(w.version, 1);
    assert_eq!(w.lists[0].resource, "sip:alice@example.test");
    assert_eq!(w.lists[0].watchers[0].uri, "sip:bob@example.test");

    h.unregister(BOB, "bobpc", bflow);
    let n = h.deliver();
    let w = WatcherInfo::parse(n[0].1.body(), &crate::Limits::DEFAULT).expect("watcherinfo");
    assert!(w.lists[0].watchers.is_empty(), "bob signed out");

    let r = h.send(
        BOB,
        bflow,
        &subscribe(BOB, ALICE, "spy", "Event: presence.winfo"),
    );
    assert_eq!(r.status(), 403, "only the presentity sees its watchers");
}

#[test]
fn lync_roaming_self_subscribers_are_prompted_until_acknowledged() {
    let mut h = Harness::new();
    let aflow = h.register(ALICE, "alicepc");
    h.send(
        ALICE,
        aflow,
        &subscribe(ALICE, ALICE, "rs", "Event: vnd-microsoft-roaming-self"),
    );
    h.deliver();
    let bflow = h.register(BOB, "bobpc");
    h.send(BOB, bflow, &subscribe(BOB, ALICE, "b1", "Event: presence"));
    let n = h.deliver();
    let rs = n
        .iter()
        .find(|(_, r)| hdr(r, "Event") == Some("vnd-microsoft-roaming-self"))
        .expect("roaming-self NOTIFY");
    let body = text(rs.1.body());
    assert!(
        body.contains(r#"<subscriber user="bob@example.test" acknowledged="false"/>"#),
        "{body}"
    );
    let ack = r#"<setSubscribers xmlns="http://schemas.microsoft.com/2006/09/sip/presence-subscribers"><subscriber user="bob@example.test" acknowledged="true"/></setSubscribers>"#;
    let r = h.send(
        ALICE,
        aflow,
        &service(
            ALICE,
            "alicepc",
            1,
            "application/msrtc-presence-setsubscriber+xml",
            ack,
        ),
    );
    assert_eq!(r.status(), 200);
    let uid = h.engine.by_aor[&aor(ALICE)];
    assert!(h.engine.subscribers_of(uid)[0].acknowledged);
}

#[test]
fn lync_owner_subscribing_to_itself_sees_every_container() {
    let mut h = Harness::new();
    let aflow = busy_alice(&mut h);
    let r = h.send(
        ALICE,
        aflow,
        &subscribe(
            ALICE,
            ALICE,
            "self",
            &format!("Event: presence\nAccept: {CATS}"),
        ),
    );
    assert_eq!(r.status(), 200);
    let body = text(h.deliver()[0].1.body());
    assert!(
        body.contains(r#"container="2""#) && body.contains("userState"),
        "{body}"
    );
}

#[test]
fn lync_roaming_self_subscribers_are_not_re_announced() {
    let mut h = Harness::new();
    let aflow = h.register(ALICE, "alicepc");
    h.send(
        ALICE,
        aflow,
        &subscribe(ALICE, ALICE, "rs", "Event: vnd-microsoft-roaming-self"),
    );
    h.deliver();
    let bflow = h.register(BOB, "bobpc");
    h.send(BOB, bflow, &subscribe(BOB, ALICE, "b1", "Event: presence"));
    let first = h.deliver();
    assert_eq!(first.iter().filter(|(o, _)| o.flow == aflow).count(), 1);
    h.send(BOB, bflow, &subscribe(BOB, ALICE, "b2", "Event: presence"));
    let second = h.deliver();
    assert_eq!(
        second.iter().filter(|(o, _)| o.flow == aflow).count(),
        0,
        "bob is already known"
    );
    h.unregister(BOB, "bobpc", bflow);
    assert!(
        h.deliver().is_empty(),
        "departures are not announced to roaming-self"
    );
}
