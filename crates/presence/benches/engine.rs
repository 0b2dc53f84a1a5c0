//! The presence engine under load (DESIGN §4): one state change fanned out to 20 and to 1000
//! watchers (ns per NOTIFY), as single subscriptions with NOTIFY (answered 200) or BENOTIFY,
//! and as Lync batched subscriptions (RLMI multipart per watcher); plus the heap bytes one
//! held subscription costs, counted by an instrumented allocator.

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use herald_presence::Timestamp;
use herald_presence::engine::{
    AuthenticatedRequest, EndpointKey, Engine, EngineConfig, MemoryStore, OutboundKind,
};
use herald_registrar::{Aor, Contact, ContactBinding, RegisterRequest, Registrar, RegistrarConfig};
use herald_sip::{Limits, Message, Request};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PRESENTITY: &str = "bob@example.test";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Notify,
    Benotify,
    Batch,
}

struct Setup {
    engine: Engine<u64>,
    now: Instant,
    version: u32,
}

fn request(text: &str) -> Request {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut msg = String::with_capacity(text.len() + 64);
    for line in head.lines() {
        msg.push_str(line.trim());
        msg.push_str("\r\n");
    }
    msg.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    match Message::parse(Bytes::from(msg), &Limits::default()) {
        Ok(Message::Request(r)) => r,
        _ => panic!("bench request does not parse"),
    }
}

fn aor(s: &str) -> Aor {
    Aor::parse(s).expect("bench AOR")
}

fn handle(engine: &mut Engine<u64>, now: Instant, user: &str, flow: u64, text: &str) -> u16 {
    let request = request(text);
    let endpoint = EndpointKey::from_request(&request);
    engine
        .handle_request(
            now,
            AuthenticatedRequest {
                request,
                user: aor(user),
                flow,
                endpoint,
                contact: None,
            },
        )
        .status()
}

/// Drains the outbound queue, answering NOTIFYs with 200; returns how many there were.
fn drain(engine: &mut Engine<u64>, now: Instant) -> usize {
    let mut n = 0;
    while let Some(o) = engine.poll_outbound() {
        n += 1;
        if let OutboundKind::Notify(id) = o.kind {
            engine.on_notify_response(now, id, 200);
        }
        black_box(
            o.request
                .with_via("SIP/2.0/TLS pool.example.test:5061;branch=z9hG4bKbench"),
        );
    }
    n
}

fn watcher(i: usize) -> String {
    format!("w{i}@example.test")
}

/// An engine with the presentity signed in and `n` registered watchers, none subscribed yet.
fn signed_in(n: usize) -> Setup {
    let now = Instant::now();
    let config = EngineConfig {
        max_watchers_per_presentity: u32::MAX,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(
        config,
        Box::new(MemoryStore::new()),
        now,
        Timestamp::from_unix_millis(1_704_067_200_000),
    )
    .expect("engine");
    let mut registrar: Registrar<u64> =
        Registrar::new(RegistrarConfig::default()).expect("registrar");
    for (i, user) in std::iter::once(PRESENTITY.to_owned())
        .chain((0..n).map(watcher))
        .enumerate()
    {
        let flow = u64::try_from(i).unwrap_or(u64::MAX);
        registrar
            .register(
                now,
                RegisterRequest {
                    aor: aor(&user),
                    call_id: format!("reg{i}"),
                    cseq: 1,
                    contacts: vec![Contact::Binding(ContactBinding::new(format!(
                        "sip:{i}@10.1.{}.{}:5060;transport=tcp",
                        i / 250,
                        i % 250
                    )))],
                    expires: Some(3600),
                    flow,
                    source: String::new(),
                    user_agent: None,
                    epid: Some(format!("ep{i}")),
                },
            )
            .expect("REGISTER");
        while let Some(e) = registrar.poll_event() {
            engine.on_registrar_event(now, e);
        }
    }
    Setup {
        engine,
        now,
        version: 0,
    }
}

fn subscribe(s: &mut Setup, range: std::ops::Range<usize>, mode: Mode) {
    for i in range {
        let user = watcher(i);
        let flow = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let text = match mode {
            Mode::Batch => format!(
                r#"SUBSCRIBE sip:{user} SIP/2.0
Via: SIP/2.0/TCP 10.1.0.1:5060;branch=z9hG4bKb{i}
Max-Forwards: 70
From: <sip:{user}>;tag=t{i};epid=ep{i}
To: <sip:{user}>
Call-ID: batch{i}@10.1.0.1
CSeq: 1 SUBSCRIBE
Contact: <sip:{i}@10.1.0.1:5060;transport=tcp>
Require: adhoclist, categoryList
Supported: eventlist
Supported: ms-benotify
Accept: application/rlmi+xml, multipart/related, application/msrtc-event-categories+xml
Event: presence
Content-Type: application/msrtc-adrl-categorylist+xml

<batchSub xmlns="http://schemas.microsoft.com/2006/01/sip/batch-subscribe" uri="sip:{user}" name=""><action name="subscribe" id="1"><adhocList><resource uri="sip:{PRESENTITY}"/></adhocList><categoryList xmlns="http://schemas.microsoft.com/2006/09/sip/categorylist"><category name="contactCard"/><category name="note"/><category name="state"/></categoryList></action></batchSub>"#
            ),
            _ => format!(
                "SUBSCRIBE sip:{PRESENTITY} SIP/2.0
Via: SIP/2.0/TCP 10.1.0.1:5060;branch=z9hG4bKs{i}
Max-Forwards: 70
From: <sip:{user}>;tag=t{i};epid=ep{i}
To: <sip:{PRESENTITY}>
Call-ID: sub{i}@10.1.0.1
CSeq: 1 SUBSCRIBE
Contact: <sip:{i}@10.1.0.1:5060;transport=tcp>
Event: presence
Accept: application/msrtc-event-categories+xml{}",
                if mode == Mode::Benotify {
                    "\nSupported: ms-benotify"
                } else {
                    ""
                }
            ),
        };
        assert_eq!(handle(&mut s.engine, s.now, &user, flow, &text), 200);
        drain(&mut s.engine, s.now);
    }
}

/// The presentity changes its manual state; returns how many notifications went out.
fn change(s: &mut Setup) -> usize {
    let availability = if s.version.is_multiple_of(2) {
        6500
    } else {
        9500
    };
    let body = format!(
        r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:{PRESENTITY}"><publication categoryName="state" instance="536870912" container="2" version="{v}" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" manual="true" xsi:type="userState"><availability>{availability}</availability></state></publication></publications></publish>"#,
        v = s.version
    );
    let text = format!(
        "SERVICE sip:{PRESENTITY} SIP/2.0
Via: SIP/2.0/TCP 10.1.0.1:5060;branch=z9hG4bKp{v}
Max-Forwards: 70
From: <sip:{PRESENTITY}>;tag=p;epid=ep0
To: <sip:{PRESENTITY}>
Call-ID: publish@10.1.0.1
CSeq: {v} SERVICE
Content-Type: application/msrtc-category-publish+xml

{body}",
        v = s.version + 1
    );
    assert_eq!(handle(&mut s.engine, s.now, PRESENTITY, 0, &text), 200);
    s.version += 1;
    drain(&mut s.engine, s.now)
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("fan_out");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_secs(1));
    for (name, mode) in [
        ("notify", Mode::Notify),
        ("benotify", Mode::Benotify),
        ("batch_rlmi", Mode::Batch),
    ] {
        for n in [20usize, 1000] {
            let mut s = signed_in(n);
            subscribe(&mut s, 0..n, mode);
            assert_eq!(change(&mut s), n, "every watcher is notified");
            group.throughput(Throughput::Elements(u64::try_from(n).unwrap_or(0)));
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| black_box(change(&mut s)));
            });
            // A plain per-NOTIFY figure for the report (optimised builds only: `cargo test
            // --benches` runs this file unoptimised to check it and count bytes).
            if cfg!(debug_assertions) {
                continue;
            }
            let rounds = 200_000 / n;
            let start = Instant::now();
            for _ in 0..rounds {
                black_box(change(&mut s));
            }
            let per = start.elapsed().as_nanos() / (rounds as u128 * n as u128);
            println!("fan_out/{name}/{n}: {per} ns per notification (publish parse included)");
        }
    }
    group.finish();
}

/// Heap bytes per (watcher, presentity) pair when each of `watchers` watchers batches all of
/// `presentities` presentities in one subscription (the Lync contact-list shape).
fn bytes_per_batched_resource(watchers: usize, presentities: usize) -> isize {
    let mut s = signed_in(watchers);
    let now = s.now;
    let mut registrar: Registrar<u64> =
        Registrar::new(RegistrarConfig::default()).expect("registrar");
    for k in 0..presentities {
        registrar
            .register(
                now,
                RegisterRequest {
                    aor: aor(&format!("p{k}@example.test")),
                    call_id: format!("preg{k}"),
                    cseq: 1,
                    contacts: vec![Contact::Binding(ContactBinding::new(format!(
                        "sip:p{k}@10.2.0.1:5060;transport=tcp"
                    )))],
                    expires: Some(3600),
                    flow: 1_000_000 + u64::try_from(k).unwrap_or(0),
                    source: String::new(),
                    user_agent: None,
                    epid: Some(format!("pep{k}")),
                },
            )
            .expect("REGISTER");
        while let Some(e) = registrar.poll_event() {
            s.engine.on_registrar_event(now, e);
        }
    }
    let resources: String = (0..presentities)
        .map(|k| format!(r#"<resource uri="sip:p{k}@example.test"/>"#))
        .collect();
    let batch = |s: &mut Setup, i: usize| {
        let user = watcher(i);
        let text = format!(
            r#"SUBSCRIBE sip:{user} SIP/2.0
Via: SIP/2.0/TCP 10.1.0.1:5060;branch=z9hG4bKl{i}
Max-Forwards: 70
From: <sip:{user}>;tag=t{i};epid=ep{i}
To: <sip:{user}>
Call-ID: list{i}@10.1.0.1
CSeq: 1 SUBSCRIBE
Contact: <sip:{i}@10.1.0.1:5060;transport=tcp>
Require: adhoclist, categoryList
Supported: ms-benotify
Event: presence
Content-Type: application/msrtc-adrl-categorylist+xml

<batchSub xmlns="http://schemas.microsoft.com/2006/01/sip/batch-subscribe" uri="sip:{user}" name=""><action name="subscribe" id="1"><adhocList>{resources}</adhocList><categoryList xmlns="http://schemas.microsoft.com/2006/09/sip/categorylist"><category name="state"/></categoryList></action></batchSub>"#
        );
        assert_eq!(
            handle(
                &mut s.engine,
                s.now,
                &user,
                u64::try_from(i + 1).unwrap_or(0),
                &text
            ),
            200
        );
        drain(&mut s.engine, s.now);
    };
    batch(&mut s, 0);
    let region = Region::new(GLOBAL);
    for i in 1..watchers {
        batch(&mut s, i);
    }
    let stats = region.change();
    let net = isize::try_from(stats.bytes_allocated).unwrap_or(isize::MAX)
        - isize::try_from(stats.bytes_deallocated).unwrap_or(isize::MAX);
    net / isize::try_from((watchers - 1) * presentities).unwrap_or(1)
}

fn bytes_per_subscription(_: &mut Criterion) {
    println!(
        "bytes per batched resource (1000 watchers x 50 presentities): {}",
        bytes_per_batched_resource(1000, 50)
    );
    const N: usize = 10_000;
    for (name, mode) in [("single", Mode::Notify), ("batch of one", Mode::Batch)] {
        let mut s = signed_in(N);
        // The first subscription warms the presentity's render cache; it is not counted.
        subscribe(&mut s, 0..1, mode);
        let region = Region::new(GLOBAL);
        subscribe(&mut s, 1..N, mode);
        let stats = region.change();
        // Reallocations are already in bytes_allocated / bytes_deallocated.
        let net = isize::try_from(stats.bytes_allocated).unwrap_or(isize::MAX)
            - isize::try_from(stats.bytes_deallocated).unwrap_or(isize::MAX);
        println!(
            "bytes per subscription ({name}): {} ({} held)",
            net / isize::try_from(N - 1).unwrap_or(1),
            s.engine.subscription_count(),
        );
    }
}

criterion_group!(benches, bytes_per_subscription, fan_out);
criterion_main!(benches);
