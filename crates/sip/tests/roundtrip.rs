//! Property tests: generated messages (with LWS, folding, compact forms, odd case, binary
//! bodies) parse, serialise byte-exact and re-parse to the same values; a stream of them cut at
//! random points deframes to the same messages; arbitrary bytes never panic.

use bytes::Bytes;
use herald_sip::{Frame, Limits, Message, Method, StreamDeframer, Transport};
use proptest::prelude::*;

fn lws() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        2 => Just(" ".to_owned()),
        1 => Just("  \t".to_owned()),
        1 => Just("\r\n ".to_owned()),
    ]
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,12}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,8}){0,3}",
        (0u8..=255, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[2001:db8::1]".to_owned()),
        Just("[::ffff:192.0.2.1]".to_owned()),
    ]
}

fn sip_uri() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}|%[0-9A-F]{2}[a-z]{0,4}"),
        host(),
        prop::option::of(1u16..),
        prop::collection::vec(
            (
                "[a-zA-Z0-9_.!~*'()-]{1,8}",
                prop::option::of("[a-zA-Z0-9_.-]{1,8}"),
            ),
            0..3,
        ),
    )
        .prop_map(|(user, host, port, params)| {
            let mut s = "sip:".to_owned();
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            for (n, v) in params {
                s.push(';');
                s.push_str(&n);
                if let Some(v) = v {
                    s.push('=');
                    s.push_str(&v);
                }
            }
            s
        })
}

fn via() -> impl Strategy<Value = String> {
    (
        lws(),
        prop::sample::select(vec!["UDP", "TCP", "tls", "SCTP", "WS", "XYZ"]),
        host(),
        prop::option::of(1u16..),
        "[a-zA-Z0-9]{1,16}",
        any::<bool>(),
        lws(),
    )
        .prop_map(|(w, t, host, port, branch, rport, w2)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let rport = if rport { ";rport" } else { "" };
            format!("SIP{w}/{w}2.0{w}/{w}{t} {host}{port}{w2};{w2}branch=z9hG4bK{branch}{rport}")
        })
}

fn name_addr() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(String::new()),
            "[a-zA-Z0-9 ]{0,12}".prop_map(|d| format!("\"{d}\\\\\\\"x\" ")),
            token().prop_map(|t| format!("{t} ")),
        ],
        sip_uri(),
        any::<bool>(),
        "[a-zA-Z0-9]{1,10}",
        lws(),
    )
        .prop_map(|(display, uri, angle, tag, w)| {
            if angle || !display.is_empty() {
                format!("{display}<{uri}>{w};{w}tag{w}={w}{tag}")
            } else {
                // addr-spec: a URI with `;`, `,` or `?` must be enclosed in `<>` (RFC 3261 §20.10).
                let uri = if uri.contains([';', ',', '?']) {
                    format!("<{uri}>")
                } else {
                    uri
                };
                format!("{uri};tag={tag}")
            }
        })
}

/// Randomises the case of a header name.
fn cased(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Generated {
    raw: Vec<u8>,
    request: bool,
    vias: usize,
}

fn message() -> impl Strategy<Value = Generated> {
    (
        any::<bool>(),
        prop::sample::select(vec![
            "REGISTER",
            "SUBSCRIBE",
            "NOTIFY",
            "BENOTIFY",
            "SERVICE",
            "INVITE",
            "X-CUSTOM",
        ]),
        sip_uri(),
        (100u16..700, "[a-zA-Z0-9 =*.]{0,20}"),
        prop::collection::vec(via(), 1..4),
        (name_addr(), name_addr()),
        (
            "[a-zA-Z0-9.!%*_+`'~-]{1,20}(@[a-z0-9.]{1,10})?",
            0u32..=u32::MAX,
            0usize..3,
        ),
        prop::collection::vec((token(), "[ -~]{0,30}", any::<bool>()), 0..6),
        prop::collection::vec(any::<u8>(), 0..64),
        (any::<u64>(), any::<bool>()),
    )
        .prop_map(
            |(
                request,
                method,
                uri,
                (code, reason),
                vias,
                (from, to),
                (call_id, seq, zeros),
                extra,
                body,
                (mask, compact),
            )| {
                let mut s = Vec::new();
                if request {
                    s.extend_from_slice(format!("{method} {uri} SIP/2.0\r\n").as_bytes());
                } else {
                    s.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes());
                }
                let name = |long: &str, short: &str| {
                    if compact {
                        short.to_owned()
                    } else {
                        cased(long, mask)
                    }
                };
                let nvias = vias.len();
                // Sometimes two Via values share one field.
                if nvias > 1 && mask & 1 == 1 {
                    s.extend_from_slice(
                        format!("{}: {} ,{}\r\n", name("Via", "v"), vias[0], vias[1]).as_bytes(),
                    );
                    for v in &vias[2..] {
                        s.extend_from_slice(format!("Via: {v}\r\n").as_bytes());
                    }
                } else {
                    for v in &vias {
                        s.extend_from_slice(format!("{} : {v}\r\n", name("Via", "v")).as_bytes());
                    }
                }
                s.extend_from_slice(format!("{}: {from}\r\n", name("From", "f")).as_bytes());
                s.extend_from_slice(format!("{}:{to}\r\n", name("To", "t")).as_bytes());
                s.extend_from_slice(format!("{}: {call_id}\r\n", name("Call-ID", "i")).as_bytes());
                let m = if request { method } else { "OPTIONS" };
                s.extend_from_slice(
                    format!("CSeq: {}{seq}\r\n  {m}\r\n", "0".repeat(zeros)).as_bytes(),
                );
                for (n, v, fold) in extra {
                    let n = format!("X-{n}");
                    if fold {
                        s.extend_from_slice(format!("{n}: {v}\r\n\t{v}\r\n").as_bytes());
                    } else {
                        s.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
                    }
                }
                s.extend_from_slice(
                    format!("{}: {}\r\n\r\n", name("Content-Length", "l"), body.len()).as_bytes(),
                );
                s.extend_from_slice(&body);
                Generated {
                    raw: s,
                    request,
                    vias: nvias,
                }
            },
        )
}

fn same(a: &Message, b: &Message) {
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(a.call_id(), b.call_id());
    assert_eq!(a.cseq(), b.cseq());
    assert_eq!(a.top_via(), b.top_via());
    assert_eq!(a.from().as_str(), b.from().as_str());
    assert_eq!(a.to().as_str(), b.to().as_str());
    assert_eq!(a.body(), b.body());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_messages_round_trip_byte_exact(g in message()) {
        let raw = Bytes::from(g.raw.clone());
        let m = Message::parse(raw.clone(), &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&g.raw))))?;
        prop_assert_eq!(&m.to_bytes(), &raw);
        prop_assert_eq!(m.as_request().is_some(), g.request);
        let vias = match &m {
            Message::Request(r) => r.vias().len(),
            Message::Response(r) => r.vias().len(),
        };
        prop_assert_eq!(vias, g.vias);
        if let Message::Request(r) = &m {
            prop_assert!(!matches!(r.method(), Method::Extension(_)) || r.method().as_str() == "X-CUSTOM");
        }
        let again = Message::parse(m.to_bytes(), &Limits::default()).expect("re-parse");
        same(&m, &again);
        let framed = Message::parse_stream_frame(raw, &Limits::default()).expect("stream frame");
        same(&m, &framed);
    }

    #[test]
    fn stream_cut_anywhere_deframes_the_same(msgs in prop::collection::vec(message(), 1..4), cuts in prop::collection::vec(1usize..97, 1..40), pings in any::<bool>()) {
        let mut stream = Vec::new();
        for g in &msgs {
            if pings {
                stream.extend_from_slice(b"\r\n\r\n");
            }
            stream.extend_from_slice(&g.raw);
        }
        let mut d = StreamDeframer::new(Limits::default());
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            i += 1;
            d.feed(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = d.next_frame().expect("stream stays framed") {
                match f {
                    Frame::Message(m) => got.push(m.to_bytes()),
                    Frame::Ping => {}
                    other => panic!("unexpected frame {other:?}"),
                }
            }
        }
        prop_assert_eq!(got.len(), msgs.len());
        for (g, m) in msgs.iter().zip(&got) {
            prop_assert_eq!(&g.raw[..], &m[..]);
        }
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let raw = Bytes::from(data.clone());
        match Message::parse(raw, &Limits::default()) {
            Ok(m) => {
                let again = Message::parse(m.to_bytes(), &Limits::default()).expect("re-parse");
                prop_assert_eq!(again.to_bytes(), m.to_bytes());
            }
            Err(e) => {
                let _ = e.disposition(&data, Transport::Datagram);
            }
        }
    }

    #[test]
    fn mutated_generated_messages_never_panic(g in message(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut data = g.raw;
        for (idx, byte) in flips {
            let i = idx.index(data.len());
            data[i] = byte;
        }
        match Message::parse(Bytes::from(data.clone()), &Limits::default()) {
            Ok(m) => {
                let again = Message::parse(m.to_bytes(), &Limits::default()).expect("re-parse");
                same(&m, &again);
            }
            Err(e) => {
                let _ = e.disposition(&data, Transport::Datagram);
            }
        }
    }
}
