//! Rendering cost of one presence change in each body format (DESIGN §4: each is paid once per
//! (view, format) and shared by every watcher), plus the per-watcher RLMI wrapper and the
//! parse cost of the bodies clients send.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use herald_presence::availability::{Activity, ActivityToken, Availability, StateType};
use herald_presence::categories::publish::PublishRequest;
use herald_presence::categories::roaming::{ContactEntry, ContactList, Group, GroupId};
use herald_presence::categories::{
    CategoryInstance, CategoryName, CategorySet, CategoryValue, ExpireType, State, instance,
    personal_note,
};
use herald_presence::containers::{AccessLevel, ContainerId};
use herald_presence::pidf::Presence;
use herald_presence::render::{BodyFormat, Snapshot, render_view};
use herald_presence::rlmi::{self, Instance, List, Part, Resource};
use herald_presence::watcherinfo::{
    Watcher, WatcherEvent, WatcherInfo, WatcherList, WatcherStatus,
};
use herald_presence::{Limits, Timestamp, XmlFragment};

fn store() -> Vec<CategoryInstance> {
    let t = Some(Timestamp::from_unix_millis(1_700_000_000_000));
    let mut v = Vec::new();
    let mut busy = State::new(StateType::AggregateState, Availability::BUSY);
    busy.activity = Some(Activity::token(ActivityToken::OnThePhone));
    let card = XmlFragment::parse(
        r#"<contactCard xmlns="http://schemas.microsoft.com/2006/09/sip/contactcard"><identity><name><displayName>Bob Builder</displayName></name><email>bob@example.test</email></identity></contactCard>"#,
    )
    .expect("valid card");
    for c in [
        ContainerId::EXTERNAL,
        ContainerId::COMPANY,
        ContainerId::TEAM,
        ContainerId::PERSONAL,
    ] {
        for (name, inst, value) in [
            (
                CategoryName::State,
                instance::AGGREGATE,
                CategoryValue::State(busy.clone()),
            ),
            (
                CategoryName::Note,
                0,
                CategoryValue::Opaque(personal_note("Busy building")),
            ),
            (
                CategoryName::ContactCard,
                0,
                CategoryValue::Opaque(card.clone()),
            ),
        ] {
            v.push(CategoryInstance {
                name,
                instance: inst,
                publish_time: t,
                container: Some(c),
                version: Some(4),
                expire_type: Some(ExpireType::User),
                value,
            });
        }
    }
    v
}

fn benches(c: &mut Criterion) {
    let store = store();
    let snap = Snapshot {
        uri: "sip:bob@example.test",
        instances: &store,
        contact: Some("sip:bob@example.test"),
        time: Timestamp::from_unix_millis(1_700_000_001_000),
    };
    let cats = BodyFormat::Categories(CategorySet::lync_default());
    let mut g = c.benchmark_group("render");
    g.bench_function("categories_company_view", |b| {
        b.iter(|| render_view(black_box(&snap), AccessLevel::Company, cats))
    });
    g.bench_function("categories_owner_view", |b| {
        b.iter(|| {
            render_view(
                black_box(&snap),
                AccessLevel::Owner,
                BodyFormat::Categories(CategorySet::ALL),
            )
        })
    });
    g.bench_function("categories_blocked_view", |b| {
        b.iter(|| render_view(black_box(&snap), AccessLevel::Blocked, cats))
    });
    g.bench_function("pidf_company_view", |b| {
        b.iter(|| render_view(black_box(&snap), AccessLevel::Company, BodyFormat::Pidf))
    });

    let part = Part {
        content_id: "bob@example.test".into(),
        content_type: herald_presence::categories::CONTENT_TYPE.into(),
        body: render_view(&snap, AccessLevel::Company, cats),
    };
    let list = List {
        uri: "sip:alice@example.test".into(),
        version: 17,
        full_state: false,
        cid: None,
        names: vec![],
        resources: vec![Resource {
            uri: "sip:bob@example.test".into(),
            names: vec![],
            instances: vec![Instance::active("0", "bob@example.test")],
        }],
    };
    g.bench_function("rlmi_partial_1_resource_per_watcher", |b| {
        b.iter(|| {
            rlmi::render_notification(
                black_box(&list),
                "resourceList",
                std::slice::from_ref(&part),
                "herald.s1",
            )
        })
    });
    let mut full = list.clone();
    full.full_state = true;
    let mut parts = Vec::new();
    for i in 0..50 {
        let cid = format!("u{i}@example.test");
        full.resources.push(Resource {
            uri: format!("sip:{cid}"),
            names: vec![],
            instances: vec![Instance::active("0", &cid)],
        });
        parts.push(Part {
            content_id: cid,
            ..part.clone()
        });
    }
    g.bench_function("rlmi_full_50_resources_per_watcher", |b| {
        b.iter(|| rlmi::render_notification(black_box(&full), "resourceList", &parts, "herald.s1"))
    });
    let winfo = WatcherInfo {
        version: 3,
        full: true,
        lists: vec![WatcherList {
            resource: "sip:bob@example.test".into(),
            package: "presence".into(),
            watchers: (0..10)
                .map(|i| Watcher {
                    uri: format!("sip:w{i}@example.test"),
                    id: format!("w{i}"),
                    status: WatcherStatus::Active,
                    event: WatcherEvent::Approved,
                    display_name: None,
                    expiration: Some(3600),
                    duration_subscribed: Some(60),
                })
                .collect(),
        }],
    };
    g.bench_function("watcherinfo_10_watchers", |b| {
        b.iter(|| black_box(&winfo).render())
    });
    let contacts = ContactList {
        delta_num: 42,
        groups: vec![Group {
            id: GroupId::DEFAULT,
            name: "~".into(),
            external: String::new(),
        }],
        contacts: (0..250)
            .map(|i| ContactEntry {
                uri: format!("sip:user{i}@example.test"),
                name: String::new(),
                groups: vec![GroupId::DEFAULT],
                subscribed: true,
                external: String::new(),
            })
            .collect(),
    };
    g.bench_function("roaming_contacts_250", |b| {
        b.iter(|| black_box(&contacts).render())
    });
    g.finish();

    let mut p = c.benchmark_group("parse");
    let publish = Bytes::from_static(include_bytes!(
        "../tests/fixtures/sipe_3_6_initial_publish.xml"
    ));
    p.bench_function("sipe_initial_publish", |b| {
        b.iter(|| PublishRequest::parse(black_box(&publish), &Limits::DEFAULT))
    });
    let pidf = Bytes::from_static(include_bytes!("../tests/fixtures/rfc4480_4.xml"));
    p.bench_function("pidf_rfc4480_example", |b| {
        b.iter(|| Presence::parse(black_box(&pidf), &Limits::DEFAULT))
    });
    p.finish();
}

criterion_group!(render, benches);
criterion_main!(render);
