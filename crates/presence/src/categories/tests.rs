use super::batch::{BatchAction, BatchActionKind, BatchResource, BatchSubscribe};
use super::fault::{FaultOperation, WrongDelta};
use super::members::{ContainerUpdate, MemberAction, MemberChange, SetContainerMembers};
use super::publish::{PublishOp, PublishRequest, Removal};
use super::roaming::{ContactChange, ContactDelta};
use super::roaming::{
    ContactEntry, ContactList, Group, GroupId, RoamingList, RoamingSelf, Subscriber,
};
use super::*;
use crate::containers::{Container, Member};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(b: &Bytes) -> &str {
    std::str::from_utf8(b).expect("rendered UTF-8")
}

const L: Limits = Limits::DEFAULT;

#[test]
fn sipe_3_5_categories_notification_parses() {
    let c = Categories::parse(&fixture("sipe_3_5_categories.xml"), &L).expect("parses");
    assert_eq!(c.uri, "sip:bob@example.test");
    assert_eq!(c.instances.len(), 3);
    let CategoryValue::State(s) = &c.instances[0].value else {
        panic!("state value expected")
    };
    assert_eq!(s.kind, StateType::AggregateState);
    assert_eq!(s.availability, Some(Availability::BUSY));
    assert_eq!(
        s.activity
            .as_ref()
            .and_then(|a| a.token.as_ref())
            .map(ActivityToken::as_str),
        Some("busy")
    );
    assert_eq!(c.instances[0].container, Some(ContainerId::AGGREGATION));
    let CategoryValue::Opaque(card) = &c.instances[1].value else {
        panic!("contactCard is opaque")
    };
    assert!(
        card.as_str()
            .contains("<displayName>Bob Builder</displayName>")
    );
    let CategoryValue::Opaque(note) = &c.instances[2].value else {
        panic!("note is opaque")
    };
    assert_eq!(
        note_body(note),
        Some(("Busy building".into(), Some("personal".into())))
    );
    let back = Categories::parse(&c.render(), &L).expect("re-parses");
    assert_eq!(back, c);
}

#[test]
fn lync_1_7_last_active_example_parses() {
    let c = Categories::parse(&fixture("lync_1_7_categories_last_active.xml"), &L).expect("parses");
    let CategoryValue::State(s) = &c.instances[0].value else {
        panic!("state")
    };
    assert_eq!(
        s.availability.map(|a| a.band()),
        Some(crate::availability::Band::Offline)
    );
    assert_eq!(
        s.last_active.map(|t| t.to_string()).as_deref(),
        Some("2012-07-12T13:58:54Z")
    );
    assert_eq!(
        c.instances[0]
            .publish_time
            .map(|t| t.to_string())
            .as_deref(),
        Some("2012-07-12T13:58:54.237Z")
    );
}

#[test]
fn rendered_categories_have_the_shape_sipe_parses() {
    let mut state = State::new(StateType::AggregateState, Availability::BUSY);
    state.activity = Some(Activity::token(ActivityToken::OnThePhone));
    let instances = [
        CategoryInstance {
            name: CategoryName::State,
            instance: instance::AGGREGATE,
            publish_time: Some(Timestamp::from_unix_millis(1_704_067_200_000)),
            container: Some(ContainerId::COMPANY),
            version: Some(3),
            expire_type: Some(ExpireType::User),
            value: CategoryValue::State(state),
        },
        CategoryInstance {
            name: CategoryName::Note,
            instance: 0,
            publish_time: None,
            container: None,
            version: None,
            expire_type: None,
            value: CategoryValue::Opaque(personal_note("Busy <building>")),
        },
    ];
    let remote: Vec<_> = instances.iter().map(CategoryInstance::for_remote).collect();
    let body = render_categories("sip:bob@example.test", &remote);
    assert_eq!(
        body,
        render_categories_remote("sip:bob@example.test", &instances)
    );
    let t = text(&body);
    assert!(t.starts_with(r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:bob@example.test"><category name="state" instance="1" publishTime="2024-01-01T00:00:00Z">"#), "{t}");
    assert!(t.contains(r#"xsi:type="aggregateState"><availability>6500</availability><activity token="on-the-phone"/></state>"#), "{t}");
    assert!(
        !t.contains("container="),
        "remote watchers never see container ids"
    );
    assert!(t.contains("<body type=\"personal\" uri=\"\">Busy &lt;building&gt;</body>"));
    let owner = Categories {
        uri: "sip:bob@example.test".into(),
        instances: instances.to_vec(),
    };
    assert_eq!(
        Categories::parse(&owner.render(), &L).expect("round trip"),
        owner
    );
    assert_eq!(
        text(&render_categories("sip:x@y", [])),
        r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:x@y"/>"#
    );
}

#[test]
fn sipe_3_6_initial_publish_parses() {
    let req = PublishRequest::parse(&fixture("sipe_3_6_initial_publish.xml"), &L).expect("parses");
    assert_eq!(req.uri, "sip:alice@example.test");
    assert_eq!(req.ops.len(), 5);
    let PublishOp::Publish(device) = &req.ops[0] else {
        panic!("publication")
    };
    assert_eq!(device.category, CategoryName::Device);
    assert_eq!(device.container, ContainerId::AGGREGATION);
    assert_eq!(device.expire_type, ExpireType::Endpoint);
    assert!(matches!(device.value, CategoryValue::Opaque(_)));
    let PublishOp::Publish(user) = &req.ops[3] else {
        panic!("publication")
    };
    assert_eq!(user.instance, instance::USER_STATIC);
    assert_eq!(instance::kind(user.instance), Some(StateType::UserState));
    assert_eq!(user.expire_type, ExpireType::Static);
    let CategoryValue::State(s) = &user.value else {
        panic!("state")
    };
    assert!(s.manual);
    assert_eq!(s.kind, StateType::UserState);
    assert_eq!(s.availability, Some(Availability::AVAILABLE));
    assert_eq!(s.extensions.len(), 1, "endpointLocation kept");
    assert_eq!(
        PublishRequest::parse(&req.render(), &L).expect("round trip"),
        req
    );
}

#[test]
fn lync_1_6_note_publication_parses() {
    let req = PublishRequest::parse(&fixture("lync_1_6_publish_note.xml"), &L).expect("parses");
    let PublishOp::Publish(p) = &req.ops[0] else {
        panic!("publication")
    };
    assert_eq!(
        (p.instance, p.container, p.version),
        (1, ContainerId::EXTERNAL, 3)
    );
    let CategoryValue::Opaque(n) = &p.value else {
        panic!("note")
    };
    assert_eq!(note_body(n).map(|b| b.0).as_deref(), Some("…"));
}

#[test]
fn deletion_and_remove_publication() {
    let body = br#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:a@x">
<publication categoryName="note" instance="0" container="200" version="4" expireType="time" expires="0"/>
<removePublication categoryName="state" instance="536870912" container="2" version="7"/>
</publications></publish>"#;
    let req = PublishRequest::parse(body, &L).expect("parses");
    assert!(
        matches!(&req.ops[0], PublishOp::Publish(p) if p.is_deletion() && p.value == CategoryValue::Empty)
    );
    assert_eq!(
        req.ops[1],
        PublishOp::Remove(Removal {
            category: CategoryName::State,
            instance: instance::USER_STATIC,
            container: ContainerId::AGGREGATION,
            version: Some(7),
            expire_type: None,
        })
    );
    assert_eq!(
        PublishRequest::parse(&req.render(), &L).expect("round trip"),
        req
    );
}

#[test]
fn bad_publications_are_400() {
    let bad: &[&[u8]] = &[
        br#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"/>"#,
        br#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:a@x"><publication categoryName="state" instance="x" container="2"/></publications></publish>"#,
        br#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:a@x"><publication categoryName="state" instance="1" container="99999"/></publications></publish>"#,
        br#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:a@x"><publication categoryName="state" instance="1" container="2" expireType="forever"/></publications></publish>"#,
        br#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:a@x"><publication categoryName="state" instance="1" container="2"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>busy</availability></state></publication></publications></publish>"#,
        br#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:a@x"><publication categoryName="state" instance="1" container="2"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state"><availability>3500</availability></state></publication></publications></publish>"#,
        br#"<publish xmlns="urn:other"><publications uri="sip:a@x"/></publish>"#,
    ];
    for b in bad {
        let e = PublishRequest::parse(b, &L).expect_err(&String::from_utf8_lossy(b));
        assert_eq!(e.status_code(), 400, "{e}");
    }
}

#[test]
fn sipe_3_3_roaming_self_minimal_parses_and_renders() {
    let r = RoamingSelf::parse(&fixture("sipe_3_3_roaming_self_minimal.xml"), &L).expect("parses");
    assert_eq!(
        r.categories.as_ref().map(|c| c.uri.as_str()),
        Some("sip:alice@example.test")
    );
    assert_eq!(r.containers.as_deref(), Some(&[][..]));
    assert_eq!(r.subscribers.as_deref(), Some(&[][..]));
    let t = r.render();
    assert_eq!(
        text(&t),
        concat!(
            r#"<roamingData xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-self">"#,
            r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:alice@example.test"/>"#,
            r#"<containers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"/>"#,
            r#"<subscribers xmlns="http://schemas.microsoft.com/2006/09/sip/presence-subscribers"/>"#,
            "</roamingData>"
        )
    );
}

#[test]
fn roaming_self_round_trips_with_everything() {
    let r = RoamingSelf {
        categories: Some(Categories {
            uri: "sip:alice@example.test".into(),
            instances: vec![CategoryInstance {
                name: CategoryName::State,
                instance: instance::USER_STATIC,
                publish_time: Some(Timestamp::from_unix_millis(1_700_000_000_123)),
                container: Some(ContainerId::AGGREGATION),
                version: Some(2),
                expire_type: Some(ExpireType::Static),
                value: CategoryValue::State(State {
                    manual: true,
                    ..State::new(StateType::UserState, Availability::DO_NOT_DISTURB)
                }),
            }],
        }),
        containers: Some(vec![
            Container {
                id: ContainerId::BLOCKED,
                version: 3,
                members: vec![Member::User("mallory@example.test".into())],
            },
            Container {
                id: ContainerId::TEAM,
                version: 0,
                members: vec![],
            },
        ]),
        subscribers: Some(vec![Subscriber {
            user: "sip:bob@example.test".into(),
            display_name: Some("Bob".into()),
            acknowledged: false,
        }]),
    };
    assert_eq!(RoamingSelf::parse(&r.render(), &L).expect("round trip"), r);
}

#[test]
fn sipe_3_3_roaming_list_parses() {
    let r = RoamingList::parse(&fixture("sipe_3_3_roaming_list.xml"), &L).expect("parses");
    assert!(r.categories && r.containers && r.subscribers);
}

#[test]
fn sipe_3_3_contact_list_parses_and_renders_without_sip_prefix() {
    let c = ContactList::parse(&fixture("sipe_3_3_contact_list.xml"), &L).expect("parses");
    assert_eq!(c.delta_num, 1);
    assert_eq!(c.groups[0].id, GroupId::DEFAULT);
    assert_eq!(c.groups[0].name, "~");
    assert_eq!(c.contacts[0].uri, "sip:bob@example.test");
    assert_eq!(c.contacts[0].groups, vec![GroupId::DEFAULT]);
    assert!(c.contacts[0].subscribed);
    let t = c.render();
    assert_eq!(
        text(&t),
        concat!(
            r#"<contactList deltaNum="1" xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-contacts">"#,
            r#"<group id="1" name="~" externalURI=""/>"#,
            r#"<contact uri="bob@example.test" name="" groups="1" subscribed="true" externalURI=""/>"#,
            "</contactList>"
        )
    );
    assert!(!text(&t).contains("ucsmode"), "sipe-client §8 item 3");
    assert_eq!(ContactList::parse(&t, &L).expect("round trip"), c);
}

#[test]
fn ms_sip_contact_list_without_namespace_parses() {
    let c = ContactList::parse(&fixture("lync_1_9_contact_list.xml"), &L).expect("parses");
    assert_eq!(c.delta_num, 685);
    assert_eq!(
        c.contacts[0].groups,
        vec![GroupId::DEFAULT, GroupId::new(3).expect("3")]
    );
    assert!(
        ContactList::parse(
            br#"<contactList><group id="64" name="x"/></contactList>"#,
            &L
        )
        .is_err()
    );
    assert!(
        ContactList::parse(
            br#"<contactList><contact uri="a@b" groups="0"/></contactList>"#,
            &L
        )
        .is_err()
    );
}

#[test]
fn contact_list_round_trips_non_sip_uris() {
    let c = ContactList {
        delta_num: 9,
        groups: vec![Group {
            id: GroupId::new(5).expect("5"),
            name: "Work & play".into(),
            external: String::new(),
        }],
        contacts: vec![ContactEntry {
            uri: "tel:+15551234".into(),
            name: "Phone".into(),
            groups: vec![GroupId::new(5).expect("5"), GroupId::DEFAULT],
            subscribed: false,
            external: "x".into(),
        }],
    };
    assert_eq!(ContactList::parse(&c.render(), &L).expect("round trip"), c);
}

#[test]
fn sipe_3_4_batch_subscribe_parses() {
    let b = BatchSubscribe::parse(&fixture("sipe_3_4_batch_subscribe.xml"), &L).expect("parses");
    assert_eq!(b.uri, "sip:alice@example.test");
    let a = &b.actions[0];
    assert_eq!(
        (a.kind, a.id.as_str()),
        (BatchActionKind::Subscribe, "63792024")
    );
    assert_eq!(a.resources[0].uri, "sip:bob@example.test");
    assert_eq!(
        a.categories,
        vec![
            CategoryName::CalendarData,
            CategoryName::ContactCard,
            CategoryName::Note,
            CategoryName::State
        ]
    );
    assert!(a.category_set().contains(&CategoryName::State));
    assert!(!a.category_set().contains(&CategoryName::Services));
    assert_eq!(
        BatchSubscribe::parse(&b.render(), &L).expect("round trip"),
        b
    );
}

#[test]
fn lync_1_7_batch_subscribe_parses_with_context() {
    let b = BatchSubscribe::parse(&fixture("lync_1_7_batch_subscribe.xml"), &L).expect("parses");
    assert_eq!(b.actions[0].categories.len(), 5);
    let with_ctx = BatchSubscribe {
        uri: "sip:bob@contoso.com".into(),
        name: String::new(),
        actions: vec![BatchAction {
            kind: BatchActionKind::Unsubscribe,
            id: "1".into(),
            resources: vec![BatchResource {
                uri: "sip:alice@contoso.com".into(),
                context: Some(
                    XmlFragment::parse(r#"<context xmlns="http://schemas.microsoft.com/2006/01/sip/batch-subscribe"><subscriptionContext xmlns="http://schemas.microsoft.com/2008/09/sip/SubscriptionContext"><watcher><contactList/></watcher></subscriptionContext></context>"#)
                        .expect("fragment"),
                ),
            }],
            categories: vec![CategoryName::State],
        }],
    };
    assert_eq!(
        BatchSubscribe::parse(&with_ctx.render(), &L).expect("round trip"),
        with_ctx
    );
}

#[test]
fn sipe_3_6_set_container_members_parses() {
    let s = SetContainerMembers::parse(&fixture("sipe_3_6_set_container_members.xml"), &L)
        .expect("parses");
    assert_eq!(
        s.containers,
        vec![
            ContainerUpdate {
                id: ContainerId::COMPANY,
                version: 0,
                changes: vec![MemberChange {
                    action: MemberAction::Add,
                    member: Member::SameEnterprise
                }],
            },
            ContainerUpdate {
                id: ContainerId::EXTERNAL,
                version: 0,
                changes: vec![MemberChange {
                    action: MemberAction::Add,
                    member: Member::Federated
                }],
            },
        ]
    );
    assert_eq!(
        SetContainerMembers::parse(&s.render(), &L).expect("round trip"),
        s
    );
}

#[test]
fn lync_1_6_wrong_delta_fault() {
    let f = WrongDelta::parse(&fixture("lync_1_6_wrong_delta.xml"), &L).expect("parses");
    assert_eq!(
        f.operations,
        vec![FaultOperation {
            index: 1,
            version: Some(1),
            cur_version: 2
        }]
    );
    assert_eq!(
        text(&f.render()),
        std::str::from_utf8(&fixture("lync_1_6_wrong_delta.xml"))
            .expect("utf-8")
            .trim()
    );
    let other = br#"<Fault><Faultcode>Server.Busy</Faultcode></Fault>"#;
    assert_eq!(
        WrongDelta::parse(other, &L).map_err(|e| e.status_code()),
        Err(415)
    );
}

#[test]
fn category_set_and_names() {
    for n in CategoryName::KNOWN {
        assert_eq!(CategoryName::parse(n.as_str()).expect("known"), n);
        assert!(CategorySet::of(std::slice::from_ref(&n)).contains(&n));
    }
    let custom = CategoryName::parse("myAppData").expect("custom");
    assert!(matches!(custom, CategoryName::Other(_)));
    assert!(CategorySet::ALL.contains(&custom));
    assert!(!CategorySet::lync_default().contains(&custom));
    assert!(CategoryName::parse("").is_err());
}

#[test]
fn state_instance_kinds() {
    assert_eq!(
        instance::kind(instance::AGGREGATE),
        Some(StateType::AggregateState)
    );
    assert_eq!(
        instance::kind(instance::AGGREGATE_MACHINE),
        Some(StateType::AggregateMachineState)
    );
    assert_eq!(instance::kind(0x3123_4567), Some(StateType::MachineState));
    assert_eq!(instance::kind(0x5000_0001), Some(StateType::CalendarState));
    assert_eq!(instance::kind(0x9000_0001), Some(StateType::PhoneState));
    assert_eq!(instance::kind(0xF000_0000), None);
}

#[test]
fn state_with_activity_custom_texts_round_trips() {
    let s = State {
        manual: true,
        activity: Some(Activity {
            token: Some(ActivityToken::UrgentInterruptionsOnly),
            min_availability: Some(Availability::new(6900)),
            max_availability: Some(Availability::new(8999)),
            custom: vec![CustomText {
                lcid: Some(1033),
                text: "Urgent only".into(),
            }],
        }),
        last_active: Some(Timestamp::from_unix_millis(1_000)),
        start_time: Some(Timestamp::from_unix_millis(2_000)),
        endpoint_id: Some("{abc}".into()),
        ..State::new(
            StateType::UserState,
            Availability::URGENT_INTERRUPTIONS_ONLY,
        )
    };
    let c = Categories {
        uri: "sip:a@b".into(),
        instances: vec![CategoryInstance {
            name: CategoryName::State,
            instance: instance::USER_TIMED,
            publish_time: None,
            container: Some(ContainerId::AGGREGATION_TEAM),
            version: None,
            expire_type: Some(ExpireType::Time),
            value: CategoryValue::State(s),
        }],
    };
    assert_eq!(Categories::parse(&c.render(), &L).expect("round trip"), c);
}

#[test]
fn contact_delta_round_trips_and_strips_sip() {
    let d = ContactDelta {
        delta_num: 8,
        prev_delta_num: 7,
        changes: vec![
            ContactChange::AddedGroup(Group {
                id: GroupId::new(2).expect("2"),
                name: "Team".into(),
                external: String::new(),
            }),
            ContactChange::AddedContact(ContactEntry {
                uri: "sip:carol@example.test".into(),
                name: "Carol".into(),
                groups: vec![GroupId::new(2).expect("2")],
                subscribed: true,
                external: String::new(),
            }),
            ContactChange::ModifiedGroup(Group {
                id: GroupId::DEFAULT,
                name: "~".into(),
                external: String::new(),
            }),
            ContactChange::DeletedContact("sip:bob@example.test".into()),
            ContactChange::DeletedGroup(GroupId::new(3).expect("3")),
        ],
    };
    let body = d.render();
    let t = text(&body);
    assert!(t.starts_with(r#"<contactDelta deltaNum="8" prevDeltaNum="7" xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-contacts">"#));
    assert!(t.contains(r#"<addedContact uri="carol@example.test" "#));
    assert!(t.contains(r#"<deletedContact uri="bob@example.test"/>"#));
    assert_eq!(ContactDelta::parse(&body, &L).expect("round trip"), d);
}
