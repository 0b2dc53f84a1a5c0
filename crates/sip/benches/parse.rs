//! Parse cost of a typical Lync/SIPE REGISTER (~700 bytes), including the always-decoded headers
//! (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length). Target: ≤ 1 µs per message.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald_sip::{Limits, Message, Response, StreamDeframer};

/// The REGISTER SIPE 1.25 sends (shared/briefs/sipe-client.md §3.1), plus Max-Forwards and rport.
const REGISTER: &[u8] = include_bytes!("lync_register.sip");

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let raw = Bytes::from_static(REGISTER);
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("parse_register_{}b", REGISTER.len()), |b| {
        b.iter(|| Message::parse(black_box(raw.clone()), &limits).expect("valid"))
    });
    let Message::Request(req) = Message::parse(raw.clone(), &limits).expect("valid") else {
        unreachable!("a request")
    };
    g.bench_function("parse_register_and_contacts", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(raw.clone()), &limits).expect("valid");
            let Message::Request(r) = m else {
                unreachable!("a request")
            };
            black_box((
                r.contacts().expect("contacts").contacts().len(),
                r.expires().ok(),
            ))
        })
    });
    g.bench_function("build_200_for_register", |b| {
        b.iter(|| {
            Response::for_request(black_box(&req), 200, "OK")
                .to_tag("b4f1")
                .header(herald_sip::HeaderName::Expires, "7200")
                .to_bytes()
        })
    });
    g.bench_function("deframe_and_parse_register", |b| {
        let mut d = StreamDeframer::new(limits.clone());
        b.iter(|| {
            d.feed(black_box(REGISTER));
            black_box(d.next_frame().expect("framed").expect("one message"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
