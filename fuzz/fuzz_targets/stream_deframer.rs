//! Feeding a stream in arbitrary chunks yields the same frames as feeding it at once, and the
//! deframer never buffers more than the message bound plus one read.
#![no_main]

use herald_sip::{Frame, Limits, StreamDeframer};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize, limits: &Limits) -> (Vec<Vec<u8>>, bool) {
    let mut d = StreamDeframer::new(limits.clone());
    let mut frames = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        d.feed(piece);
        loop {
            match d.next_frame() {
                Ok(Some(Frame::Message(m))) => frames.push(m.to_bytes().to_vec()),
                Ok(Some(Frame::Invalid { bytes, error })) => {
                    let _ = error.disposition(&bytes, herald_sip::Transport::Stream);
                    frames.push(bytes.to_vec());
                }
                Ok(Some(Frame::Ping)) => frames.push(b"PING".to_vec()),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
            assert!(d.buffered() <= limits.max_message + piece.len() + 4);
        }
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, data)) = data.split_first() else { return };
    let limits = Limits { max_message: 4096, ..Limits::default() };
    let whole = run(data, data.len(), &limits);
    let chunked = run(data, usize::from(seed % 64) + 1, &limits);
    // Frames completed before an error must match; an error is an error either way (the whole
    // feed may find an oversize header earlier than a chunked one finds anything).
    if !whole.1 && !chunked.1 {
        assert_eq!(whole.0, chunked.0);
    } else {
        let n = whole.0.len().min(chunked.0.len());
        assert_eq!(whole.0[..n], chunked.0[..n]);
    }
});
