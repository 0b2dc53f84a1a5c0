//! parse → serialize → parse must agree, for untouched and for edited messages, and nothing in
//! the parser, the lazy decoders, the builders or the error triage may panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use herald_sip::{HeaderName, Limits, Message, Response, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let input = Bytes::copy_from_slice(data);
    let msg = match Message::parse(input.clone(), &limits) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.disposition(data, Transport::Datagram);
            let _ = e.disposition(data, Transport::Stream);
            return;
        }
    };
    // Untouched: the output is the input minus leading CRLFs and datagram surplus.
    let out = msg.to_bytes();
    let skipped = data.len() - data.trim_ascii_start().len();
    let start = (0..=skipped).step_by(2).find(|&s| data[s..].starts_with(&out)).expect("output is a slice of the input");
    assert!(data[..start].iter().all(|&c| c == b'\r' || c == b'\n'));
    let again = Message::parse(out.clone(), &limits).expect("serialised message re-parses");
    assert_eq!(again.to_bytes(), out);
    assert_eq!(again.call_id(), msg.call_id());
    assert_eq!(again.cseq(), msg.cseq());
    assert_eq!(again.top_via(), msg.top_via());
    assert_eq!(again.body(), msg.body());

    let Message::Request(mut req) = msg else {
        let r = msg.as_response().expect("response");
        let _ = (r.status(), r.reason(), r.contacts(), r.expires(), r.www_authenticates().count());
        return;
    };
    // Lazy decoders must not panic.
    let _ = req.contacts().map(|c| c.contacts().iter().map(|c| (c.expires(), c.q(), c.instance().map(|i| i.len()), c.reg_id())).count());
    let _ = (req.expires(), req.min_expires(), req.content_type().map(|c| c.map(|c| c.params().count())));
    let _ = (req.event(), req.subscription_state(), req.routes(), req.record_routes());
    let _ = (req.supported().count(), req.require().count(), req.allow_events().count());
    let _ = req.authorizations().count();
    let _ = req.uri().aor();
    let _ = req.to().uri() == req.from().uri();
    let _ = req.to().display_name();

    // A response built from it parses and copies the transaction identifiers.
    let resp = Response::for_request(&req, 200, "OK").to_tag("fz").header(HeaderName::Expires, "3600").build().expect("response builds");
    assert_eq!(resp.call_id(), req.call_id());
    assert_eq!(resp.cseq(), req.cseq());
    assert_eq!(resp.vias().len(), req.vias().len());
    assert!(resp.to().tag().is_some());

    // Edited: stamp the Via, add and remove headers; the result re-parses to the same thing.
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 5062);
    req.stamp_via_source(src);
    req.push_header(HeaderName::parse("X-Fuzz").expect("token"), "1").expect("push");
    let _ = req.remove_header("X-Fuzz");
    let edited = req.to_bytes();
    let back = Message::parse(edited.clone(), &limits).expect("edited message re-parses");
    assert_eq!(back.to_bytes(), edited);
    assert_eq!(back.top_via(), req.top_via());
});
