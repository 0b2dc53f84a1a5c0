//! The presence half of the SIPE sign-in ladder (sipe-client §6) pushed through this crate the
//! way the engine will: SIPE's publications are parsed and aggregated, the aggregate is stored
//! per container and rendered once per view, and the rendered bodies are read back the way
//! SIPE (categories, RLMI) and a SIMPLE client (PIDF) read them.

use std::time::Instant;

use bytes::Bytes;
use herald_presence::aggregate::{IdlePolicy, Inputs, MachineInput, UserInput, aggregate};
use herald_presence::availability::{Availability, Band, StateType};
use herald_presence::categories::publish::{PublishOp, PublishRequest};
use herald_presence::categories::{
    Categories, CategoryInstance, CategoryName, CategorySet, CategoryValue, ExpireType, State,
    instance, personal_note,
};
use herald_presence::containers::{
    AccessLevel, Container, ContainerId, Relation, Watcher, access_level,
};
use herald_presence::pidf::{self, Presence};
use herald_presence::render::{BodyFormat, Snapshot, render_view};
use herald_presence::rlmi::{self, Instance, List, Part, Resource};
use herald_presence::{Limits, Timestamp};

const L: Limits = Limits::DEFAULT;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The engine's bookkeeping, reduced to what aggregation needs: machine and user states from
/// container 2 publications.
fn inputs_from(req: &PublishRequest, at: Instant) -> (Vec<MachineInput>, Vec<UserInput>) {
    let mut machines = Vec::new();
    let mut users = Vec::new();
    for op in &req.ops {
        let PublishOp::Publish(p) = op else { continue };
        let CategoryValue::State(s) = &p.value else {
            continue;
        };
        if p.container != ContainerId::AGGREGATION {
            continue;
        }
        let availability = s.availability.unwrap_or(Availability::new(0));
        match s.kind {
            StateType::MachineState => machines.push(MachineInput {
                availability,
                activity: s.activity.clone(),
                published_at: at,
                last_input: None,
            }),
            StateType::UserState => users.push(UserInput {
                availability,
                activity: s.activity.clone(),
                until: None,
                published_at: at,
            }),
            _ => {}
        }
    }
    (machines, users)
}

/// The aggregate published into the remote containers, plus a note.
fn store_for(a: Availability, note: &str) -> Vec<CategoryInstance> {
    let mut v = Vec::new();
    for c in [
        ContainerId::EXTERNAL,
        ContainerId::COMPANY,
        ContainerId::TEAM,
        ContainerId::PERSONAL,
    ] {
        v.push(CategoryInstance {
            name: CategoryName::State,
            instance: instance::AGGREGATE,
            publish_time: Some(Timestamp::from_unix_millis(1_704_067_200_000)),
            container: Some(c),
            version: Some(1),
            expire_type: Some(ExpireType::User),
            value: CategoryValue::State(State::new(StateType::AggregateState, a)),
        });
        v.push(CategoryInstance {
            name: CategoryName::Note,
            instance: 0,
            publish_time: Some(Timestamp::from_unix_millis(1_704_067_200_000)),
            container: Some(c),
            version: Some(1),
            expire_type: Some(ExpireType::Static),
            value: CategoryValue::Opaque(personal_note(note)),
        });
    }
    v
}

#[test]
fn sipe_publishes_busy_and_watchers_of_both_dialects_see_it() {
    let t0 = Instant::now();
    // 1. SIPE's initial publish: machine and user state 3500.
    let initial =
        PublishRequest::parse(&fixture("sipe_3_6_initial_publish.xml"), &L).expect("parses");
    let (machines, users) = inputs_from(&initial, t0);
    let agg = aggregate(
        &Inputs {
            machines: &machines,
            user: &users,
            activities: &[],
        },
        &IdlePolicy::default(),
        t0,
    );
    assert_eq!(agg.availability, Availability::AVAILABLE);

    // 2. Status change to Busy: a userState 6500 publication (as SIPE sends it).
    let busy_body = String::from_utf8(fixture("sipe_3_6_initial_publish.xml"))
        .expect("utf-8")
        .replace(
            r#"xsi:type="userState"><availability>3500"#,
            r#"xsi:type="userState"><availability>6500"#,
        );
    let busy = PublishRequest::parse(busy_body.as_bytes(), &L).expect("parses");
    let (machines, users) = inputs_from(&busy, t0);
    let agg = aggregate(
        &Inputs {
            machines: &machines,
            user: &users,
            activities: &[],
        },
        &IdlePolicy::default(),
        t0,
    );
    assert_eq!(agg.availability, Availability::BUSY);

    // 3. Render once per view; a colleague (Company) gets the categories body.
    let store = store_for(agg.availability, "Busy building");
    let snap = Snapshot {
        uri: "sip:bob@example.test",
        instances: &store,
        contact: Some("sip:bob@example.test"),
        time: Timestamp::from_unix_millis(1_704_067_201_000),
    };
    let containers = Container::defaults();
    let alice = Watcher {
        uri: "sip:alice@example.test",
        relation: Relation::SameEnterprise,
    };
    let view = access_level(&containers, "sip:bob@example.test", &alice);
    assert_eq!(view, AccessLevel::Company);
    let fmt = BodyFormat::Categories(CategorySet::lync_default());
    let body = render_view(&snap, view, fmt);
    // SIPE keys presence by the exact `uri` and maps 6000–7499 to "busy" (sipe-client §3.5).
    let seen = Categories::parse(&body, &L).expect("SIPE-shaped body parses");
    assert_eq!(seen.uri, "sip:bob@example.test");
    let state = seen
        .instances
        .iter()
        .find_map(|i| match &i.value {
            CategoryValue::State(s) => Some(s),
            _ => None,
        })
        .expect("state instance");
    assert_eq!(state.kind, StateType::AggregateState);
    assert_eq!(state.availability.map(Availability::band), Some(Band::Busy));
    assert!(seen.instances.iter().all(|i| i.container.is_none()));

    // 4. The batched subscription: the same bytes become an RLMI part.
    let list = List {
        uri: "sip:alice@example.test".into(),
        version: 0,
        full_state: true,
        cid: None,
        names: vec![],
        resources: vec![Resource {
            uri: "sip:bob@example.test".into(),
            names: vec![],
            instances: vec![Instance::active("0", "bob@example.test")],
        }],
    };
    let part = Part {
        content_id: "bob@example.test".into(),
        content_type: fmt.content_type().into(),
        body: body.clone(),
    };
    let m = rlmi::render_notification(
        &list,
        "resourceList",
        std::slice::from_ref(&part),
        "herald-1",
    );
    let n =
        rlmi::parse_notification(&m.content_type, m.body.clone(), &L).expect("multipart parses");
    assert_eq!(
        n.parts[0].body.strip_suffix(b"\r\n"),
        Some(&body[..]),
        "the shared bytes, unchanged (plus the CRLF libpurple's MIME parser needs)"
    );

    // 5. A SIMPLE watcher gets PIDF and sees busy.
    let pidf_body = render_view(&snap, view, BodyFormat::Pidf);
    let p = Presence::parse(&pidf_body, &L).expect("valid PIDF");
    let s = pidf::to_summary(&p);
    assert_eq!(s.availability.band(), Band::Busy);
    assert_eq!(s.note.as_deref(), Some("Busy building"));
}

#[test]
fn simple_client_away_reaches_a_lync_watcher() {
    let body = Bytes::from_static(
        br#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:carol@example.test">
 <tuple id="c1"><status><basic>open</basic></status><contact>sip:carol@example.test</contact></tuple>
 <dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities><dm:note>Out for lunch</dm:note></dm:person>
</presence>"#,
    );
    let p = Presence::parse(&body, &L).expect("baresip-style PUBLISH parses");
    let s = pidf::to_summary(&p);
    assert_eq!(s.availability, Availability::AWAY);
    let store = store_for(s.availability, s.note.as_deref().unwrap_or_default());
    let snap = Snapshot {
        uri: "sip:carol@example.test",
        instances: &store,
        contact: None,
        time: Timestamp::from_unix_millis(0),
    };
    let seen = Categories::parse(
        &render_view(
            &snap,
            AccessLevel::Company,
            BodyFormat::Categories(CategorySet::lync_default()),
        ),
        &L,
    )
    .expect("parses");
    let text = String::from_utf8(
        render_view(
            &snap,
            AccessLevel::Company,
            BodyFormat::Categories(CategorySet::lync_default()),
        )
        .to_vec(),
    )
    .expect("utf-8");
    assert!(
        text.contains("<availability>15500</availability>"),
        "{text}"
    );
    assert!(text.contains("Out for lunch"));
    assert_eq!(seen.uri, "sip:carol@example.test");
}
