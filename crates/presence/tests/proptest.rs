//! Property tests: every parser survives arbitrary input, and parse(render(x)) == x for
//! generated documents of every format.

use bytes::Bytes;
use herald_presence::availability::{Activity, ActivityToken, Availability, CustomText, StateType};
use herald_presence::categories::batch::{
    BatchAction, BatchActionKind, BatchResource, BatchSubscribe,
};
use herald_presence::categories::fault::{FaultOperation, WrongDelta};
use herald_presence::categories::members::{
    ContainerUpdate, MemberAction, MemberChange, SetContainerMembers,
};
use herald_presence::categories::publish::{Publication, PublishOp, PublishRequest, Removal};
use herald_presence::categories::roaming::{ContactEntry, ContactList, Group, GroupId};
use herald_presence::categories::{
    Categories, CategoryInstance, CategoryName, CategoryValue, ExpireType, State,
};
use herald_presence::containers::{ContainerId, Member};
use herald_presence::pidf::{
    self, Activities, Basic, Contact, Device, Note, Person, Presence, RpidActivity, Status, Tuple,
    UserInput,
};
use herald_presence::render::parse_body;
use herald_presence::rlmi::{self, Instance, InstanceState, List, Name, Part, Resource};
use herald_presence::watcherinfo::{
    Watcher, WatcherEvent, WatcherInfo, WatcherList, WatcherStatus,
};
use herald_presence::{Limits, Timestamp, XmlFragment};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

const TYPES: &[&str] = &[
    "application/pidf+xml",
    "application/msrtc-category-publish+xml",
    "application/msrtc-event-categories+xml",
    "application/msrtc-adrl-categorylist+xml",
    "application/msrtc-setcontainermembers+xml",
    "application/vnd-microsoft-roaming-self+xml",
    "application/vnd-microsoft-roaming-contacts+xml",
    "application/rlmi+xml",
    "multipart/related;type=\"application/rlmi+xml\";boundary=b",
    "application/watcherinfo+xml",
    "application/msrtc-fault+xml",
];

/// Free text: XML-special characters, whitespace that XML normalises, non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&\"'\\r\\n\\t.:@_~é€-]{0,16}"
}

/// A value the parsers trim: no surrounding whitespace.
fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9<>&\"'.:@_~é-]{1,16}"
}

fn uri() -> impl Strategy<Value = String> {
    "[a-z]{1,8}@[a-z]{1,8}\\.test".prop_map(|s| format!("sip:{s}"))
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (Timestamp::MIN.unix_millis()..=Timestamp::MAX.unix_millis())
        .prop_map(Timestamp::from_unix_millis)
}

fn fragment() -> impl Strategy<Value = XmlFragment> {
    ("[a-z]{1,6}", text(), any::<bool>()).prop_map(|(name, t, prefixed)| {
        let mut t2 = String::new();
        for c in t.chars() {
            match c {
                '<' => t2.push_str("&lt;"),
                '&' => t2.push_str("&amp;"),
                c => t2.push(c),
            }
        }
        let xml = if prefixed {
            format!("<x:{name} xmlns:x=\"urn:example:{name}\" a=\"1\">{t2}</x:{name}>")
        } else {
            format!("<{name} xmlns=\"urn:example\"><inner/>{t2}</{name}>")
        };
        XmlFragment::parse(&xml).expect("generated fragment is well formed")
    })
}

fn note() -> impl Strategy<Value = Note> {
    (text(), option::of("[a-z]{2}")).prop_map(|(text, lang)| Note { text, lang })
}

fn user_input() -> impl Strategy<Value = UserInput> {
    (
        any::<bool>(),
        option::of(timestamp()),
        option::of(any::<u32>()),
    )
        .prop_map(|(idle, last_input, idle_threshold)| UserInput {
            idle,
            last_input,
            idle_threshold,
        })
}

fn rpid_activity() -> impl Strategy<Value = RpidActivity> {
    prop_oneof![
        (0..RpidActivity::NAMED.len()).prop_map(|i| RpidActivity::NAMED[i].clone()),
        text().prop_map(RpidActivity::Other),
    ]
}

fn presence() -> impl Strategy<Value = Presence> {
    let tuple = (
        token(),
        option::of(prop_oneof![Just(Basic::Open), Just(Basic::Closed)]),
        vec(fragment(), 0..2),
        option::of(user_input()),
        option::of((token(), option::of(0u16..=1000))),
        vec(note(), 0..2),
        option::of(timestamp()),
        vec(fragment(), 0..2),
    )
        .prop_map(|(id, basic, sx, ui, contact, notes, ts, ext)| Tuple {
            id,
            status: Status {
                basic,
                extensions: sx,
            },
            user_input: ui,
            contact: contact.map(|(uri, priority)| Contact { uri, priority }),
            notes,
            timestamp: ts,
            extensions: ext,
        });
    let activities = (
        option::of(timestamp()),
        option::of(timestamp()),
        vec(note(), 0..2),
        vec(rpid_activity(), 0..4),
        vec(fragment(), 0..2),
    )
        .prop_map(|(from, until, notes, items, extensions)| Activities {
            from,
            until,
            notes,
            items,
            extensions,
        });
    let person = (
        token(),
        option::of(activities),
        option::of(user_input()),
        vec(note(), 0..2),
        option::of(timestamp()),
        vec(fragment(), 0..2),
    )
        .prop_map(
            |(id, activities, user_input, notes, timestamp, extensions)| Person {
                id,
                activities,
                user_input,
                notes,
                timestamp,
                extensions,
            },
        );
    let device = (
        token(),
        option::of(token()),
        option::of(user_input()),
        vec(note(), 0..2),
        option::of(timestamp()),
        vec(fragment(), 0..2),
    )
        .prop_map(
            |(id, device_id, user_input, notes, timestamp, extensions)| Device {
                id,
                device_id,
                user_input,
                notes,
                timestamp,
                extensions,
            },
        );
    (
        uri(),
        vec(tuple, 0..3),
        vec(note(), 0..2),
        vec(person, 0..2),
        vec(device, 0..2),
        vec(fragment(), 0..2),
    )
        .prop_map(
            |(entity, tuples, notes, persons, devices, extensions)| Presence {
                entity,
                tuples,
                notes,
                persons,
                devices,
                extensions,
            },
        )
}

fn category_name() -> impl Strategy<Value = CategoryName> {
    prop_oneof![
        (0..CategoryName::KNOWN.len()).prop_map(|i| CategoryName::KNOWN[i].clone()),
        "[a-zA-Z]{1,12}".prop_map(|s| CategoryName::parse(&s).expect("valid name")),
    ]
}

fn activity_token() -> impl Strategy<Value = ActivityToken> {
    prop_oneof![
        (0..ActivityToken::KNOWN.len()).prop_map(|i| ActivityToken::KNOWN[i].clone()),
        "[a-zA-Z-]{1,12}".prop_map(|s| ActivityToken::parse(&s).expect("valid token")),
    ]
}

fn state() -> impl Strategy<Value = State> {
    let activity = (
        option::of(activity_token()),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        vec((option::of(any::<u32>()), text()), 0..2),
    )
        .prop_map(|(token, min, max, custom)| Activity {
            token,
            min_availability: min.map(Availability::new),
            max_availability: max.map(Availability::new),
            custom: custom
                .into_iter()
                .map(|(lcid, text)| CustomText { lcid, text })
                .collect(),
        });
    (
        0..StateType::ALL.len(),
        any::<bool>(),
        option::of(any::<u32>()),
        option::of(activity),
        option::of(timestamp()),
        option::of(timestamp()),
        option::of(token()),
        vec(fragment(), 0..2),
    )
        .prop_map(
            |(
                k,
                manual,
                availability,
                activity,
                last_active,
                start_time,
                endpoint_id,
                extensions,
            )| State {
                kind: StateType::ALL[k],
                manual,
                availability: availability.map(Availability::new),
                activity,
                last_active,
                start_time,
                endpoint_id,
                extensions,
            },
        )
}

fn container() -> impl Strategy<Value = ContainerId> {
    (0u16..=32767).prop_map(|c| ContainerId::new(c).expect("in range"))
}

fn expire_type() -> impl Strategy<Value = ExpireType> {
    prop_oneof![
        Just(ExpireType::Endpoint),
        Just(ExpireType::Static),
        Just(ExpireType::User),
        Just(ExpireType::Time),
        Just(ExpireType::Custom)
    ]
}

fn value(name: &CategoryName) -> BoxedStrategy<CategoryValue> {
    if *name == CategoryName::State {
        prop_oneof![
            state().prop_map(CategoryValue::State),
            Just(CategoryValue::Empty)
        ]
        .boxed()
    } else {
        prop_oneof![
            fragment().prop_map(CategoryValue::Opaque),
            Just(CategoryValue::Empty)
        ]
        .boxed()
    }
}

fn category_instance() -> impl Strategy<Value = CategoryInstance> {
    category_name().prop_flat_map(|name| {
        (
            any::<u32>(),
            option::of(timestamp()),
            option::of(container()),
            option::of(any::<u32>()),
            option::of(expire_type()),
            value(&name),
            Just(name),
        )
            .prop_map(
                |(instance, publish_time, container, version, expire_type, value, name)| {
                    CategoryInstance {
                        name,
                        instance,
                        publish_time,
                        container,
                        version,
                        expire_type,
                        value,
                    }
                },
            )
    })
}

fn member() -> impl Strategy<Value = Member> {
    prop_oneof![
        "[a-z]{1,8}@[a-z]{1,8}\\.test".prop_map(Member::User),
        "[a-z]{1,8}\\.test".prop_map(Member::Domain),
        Just(Member::SameEnterprise),
        Just(Member::Federated),
        Just(Member::PublicCloud),
        Just(Member::Everyone),
    ]
}

fn instance() -> impl Strategy<Value = Instance> {
    (
        token(),
        prop_oneof![
            Just(InstanceState::Active),
            Just(InstanceState::Pending),
            Just(InstanceState::Terminated),
            Just(InstanceState::Resubscribe)
        ],
        option::of(token()),
        option::of(token()),
        option::of(any::<u16>()),
        option::of(any::<u32>()),
        option::of(token()),
    )
        .prop_map(
            |(id, state, reason, cid, status_code, ms_diag_code, pool_fqdn)| Instance {
                id,
                state,
                reason,
                cid,
                status_code,
                ms_diag_code,
                pool_fqdn,
            },
        )
}

fn name() -> impl Strategy<Value = Name> {
    (text(), option::of("[a-z]{2}")).prop_map(|(text, lang)| Name { text, lang })
}

fn rlmi_list() -> impl Strategy<Value = List> {
    let resource =
        (uri(), vec(name(), 0..2), vec(instance(), 0..3)).prop_map(|(uri, names, instances)| {
            Resource {
                uri,
                names,
                instances,
            }
        });
    (
        uri(),
        any::<u32>(),
        any::<bool>(),
        option::of(token()),
        vec(name(), 0..2),
        vec(resource, 0..4),
    )
        .prop_map(|(uri, version, full_state, cid, names, resources)| List {
            uri,
            version,
            full_state,
            cid,
            names,
            resources,
        })
}

proptest! {
    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(body in vec(any::<u8>(), 0..512), t in 0..TYPES.len()) {
        let _ = parse_body(TYPES[t], Bytes::from(body), &Limits::default());
    }

    #[test]
    fn parsers_never_panic_on_xmlish_input(body in "(<[a-zA-Z:]{0,6}( [a-z:]{1,5}=\"[^\"]{0,5}\")?/?>|</[a-z:]{0,6}>|&[a-z#0-9]{0,5};|[a-z ]{0,4}|<!\\[CDATA\\[x\\]\\]>|<\\?xml version=\"1.0\"\\?>|--b|\\r\\n){0,24}", t in 0..TYPES.len()) {
        let _ = parse_body(TYPES[t], Bytes::from(body), &Limits::default());
    }

    #[test]
    fn multipart_parser_never_panics(body in "(--b|--b--|\\r\\n|Content-ID: <[a-z]{0,3}>|Content-Type: application/rlmi\\+xml|<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"u\" version=\"1\" fullState=\"true\"/>|x){0,20}",
                                     ct in "multipart/related(;(type|start|boundary)=\"?[a-z<>/+]{0,8}\"?){0,3}") {
        let _ = rlmi::parse_notification(&ct, Bytes::from(body), &Limits::default());
    }

    #[test]
    fn timestamp_round_trips(t in timestamp()) {
        prop_assert_eq!(Timestamp::parse(&t.to_string()).expect("renders RFC 3339"), t);
    }

    #[test]
    fn pidf_round_trips(p in presence()) {
        let body = p.render();
        prop_assert_eq!(Presence::parse(&body, &Limits::default()).expect("renders valid PIDF"), p);
    }

    #[test]
    fn pidf_mapping_reads_back_what_it_writes(a in 3000u32..30000, t in option::of(activity_token()), note in option::of("[a-z]{1,8}")) {
        let band = Availability::new(a).band();
        let shown = t.as_ref().is_none_or(|t| Activity::token(t.clone()).applies_at(band.canonical()));
        prop_assume!(shown);
        prop_assume!(!matches!(&t, Some(ActivityToken::Other(c)) if ["do-not-disturb", "be-right-back"].contains(&c.as_str())));
        let s = pidf::Summary { availability: Availability::new(a), activity: t.clone(), note: note.clone() };
        let back = pidf::to_summary(&pidf::from_summary("sip:x@y", &s, None, None));
        prop_assert_eq!(back.availability.band(), band);
        prop_assert_eq!(back.activity, t);
        prop_assert_eq!(back.note, note);
    }

    #[test]
    fn categories_round_trip(uri in uri(), instances in vec(category_instance(), 0..4)) {
        let c = Categories { uri, instances };
        prop_assert_eq!(Categories::parse(&c.render(), &Limits::default()).expect("valid"), c);
    }

    #[test]
    fn publish_round_trips(uri in uri(), ops in vec(prop_oneof![
        (category_instance(), container(), any::<u32>(), expire_type(), option::of(any::<u32>())).prop_map(|(i, container, version, expire_type, expires)| PublishOp::Publish(Publication {
            category: i.name, instance: i.instance, container, version, expire_type, expires, value: i.value,
        })),
        (category_name(), any::<u32>(), container(), option::of(any::<u32>()), option::of(expire_type())).prop_map(|(category, instance, container, version, expire_type)| PublishOp::Remove(Removal {
            category, instance, container, version, expire_type,
        })),
    ], 0..4)) {
        let r = PublishRequest { uri, ops };
        prop_assert_eq!(PublishRequest::parse(&r.render(), &Limits::default()).expect("valid"), r);
    }

    #[test]
    fn contact_list_round_trips(delta_num in any::<u32>(), groups in vec((1u8..=63, text(), text()), 0..3),
                                contacts in vec((uri(), text(), vec(1u8..=63, 1..3), any::<bool>(), text()), 0..4)) {
        let c = ContactList {
            delta_num,
            groups: groups.into_iter().map(|(id, name, external)| Group { id: GroupId::new(id).expect("1..=63"), name, external }).collect(),
            contacts: contacts.into_iter().map(|(uri, name, g, subscribed, external)| ContactEntry {
                uri, name, groups: g.into_iter().filter_map(GroupId::new).collect(), subscribed, external,
            }).collect(),
        };
        prop_assert_eq!(ContactList::parse(&c.render(), &Limits::default()).expect("valid"), c);
    }

    #[test]
    fn batch_subscribe_round_trips(uri in uri(), name in text(), actions in vec((any::<bool>(), text(), vec(uri(), 0..4), vec(category_name(), 0..5)), 0..3)) {
        let b = BatchSubscribe {
            uri, name,
            actions: actions.into_iter().map(|(sub, id, resources, categories)| BatchAction {
                kind: if sub { BatchActionKind::Subscribe } else { BatchActionKind::Unsubscribe },
                id,
                resources: resources.into_iter().map(|uri| BatchResource { uri, context: None }).collect(),
                categories,
            }).collect(),
        };
        prop_assert_eq!(BatchSubscribe::parse(&b.render(), &Limits::default()).expect("valid"), b);
    }

    #[test]
    fn set_container_members_round_trips(updates in vec((container(), any::<u32>(), vec((any::<bool>(), member()), 0..3)), 0..3)) {
        let s = SetContainerMembers {
            containers: updates.into_iter().map(|(id, version, changes)| ContainerUpdate {
                id, version,
                changes: changes.into_iter().map(|(add, member)| MemberChange {
                    action: if add { MemberAction::Add } else { MemberAction::Remove }, member,
                }).collect(),
            }).collect(),
        };
        prop_assert_eq!(SetContainerMembers::parse(&s.render(), &Limits::default()).expect("valid"), s);
    }

    #[test]
    fn fault_round_trips(ops in vec((any::<u32>(), option::of(any::<u32>()), any::<u32>()), 0..3)) {
        let f = WrongDelta { operations: ops.into_iter().map(|(index, version, cur_version)| FaultOperation { index, version, cur_version }).collect() };
        prop_assert_eq!(WrongDelta::parse(&f.render(), &Limits::default()).expect("valid"), f);
    }

    #[test]
    fn rlmi_and_multipart_round_trip(list in rlmi_list(), bodies in vec(vec(any::<u8>(), 0..64), 0..4), seed in "[a-z0-9]{0,8}") {
        prop_assert_eq!(&List::parse(&list.render(), &Limits::default()).expect("valid"), &list);
        let parts: Vec<Part> = bodies.into_iter().enumerate().map(|(i, b)| Part {
            content_id: format!("p{i}@x"),
            content_type: "application/octet-stream".into(),
            body: Bytes::from(b),
        }).collect();
        let m = rlmi::render_notification(&list, "root@x", &parts, &seed);
        let n = rlmi::parse_notification(&m.content_type, m.body.clone(), &Limits::default()).expect("valid multipart");
        prop_assert_eq!(n.list, list);
        // Every part comes back with the extra CRLF written for libpurple's MIME parser.
        let padded: Vec<Part> = parts
            .iter()
            .map(|p| Part { body: Bytes::from([&p.body[..], b"\r\n"].concat()), ..p.clone() })
            .collect();
        prop_assert_eq!(n.parts, padded);
    }

    #[test]
    fn watcherinfo_round_trips(version in any::<u32>(), full in any::<bool>(),
                               lists in vec((uri(), token(), vec((uri(), token(), 0usize..4, 0usize..8, option::of(text()), option::of(any::<u64>()), option::of(any::<u64>())), 0..3)), 0..3)) {
        const S: [WatcherStatus; 4] = [WatcherStatus::Pending, WatcherStatus::Active, WatcherStatus::Waiting, WatcherStatus::Terminated];
        const E: [WatcherEvent; 8] = [WatcherEvent::Subscribe, WatcherEvent::Approved, WatcherEvent::Deactivated, WatcherEvent::Probation,
            WatcherEvent::Rejected, WatcherEvent::Timeout, WatcherEvent::Giveup, WatcherEvent::Noresource];
        let w = WatcherInfo {
            version, full,
            lists: lists.into_iter().map(|(resource, package, ws)| WatcherList {
                resource, package,
                watchers: ws.into_iter().map(|(uri, id, s, e, display_name, expiration, duration_subscribed)| Watcher {
                    uri, id, status: S[s], event: E[e], display_name, expiration, duration_subscribed,
                }).collect(),
            }).collect(),
        };
        prop_assert_eq!(WatcherInfo::parse(&w.render(), &Limits::default()).expect("valid"), w);
    }
}
