//! Parses the benchmark REGISTER in a loop, for measuring CPU time per message with
//! `perf stat -e task-clock` on a busy machine where wall-clock benchmarks are noisy.

use bytes::Bytes;
use herald_sip::{Frame, Limits, Message, StreamDeframer};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let raw = Bytes::from_static(include_bytes!("../benches/lync_register.sip"));
    let limits = Limits::default();
    let mut vias = 0;
    if std::env::args().nth(2).as_deref() == Some("stream") {
        let mut d = StreamDeframer::new(limits);
        for _ in 0..n {
            d.feed(std::hint::black_box(&raw));
            match d.next_frame() {
                Ok(Some(Frame::Message(m))) => vias += m.top_via().rport().map_or(0, |_| 1),
                other => panic!("{other:?}"),
            }
        }
        println!("{n} stream messages, {vias} vias");
        return;
    }
    for _ in 0..n {
        match Message::parse(std::hint::black_box(raw.clone()), &limits) {
            Ok(m) => vias += m.as_request().map_or(0, |r| r.vias().len()),
            Err(e) => panic!("{e}"),
        }
    }
    println!("{n} messages, {vias} vias, {} bytes each", raw.len());
}
