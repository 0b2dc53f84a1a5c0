//! RFC 4475 torture messages, byte-exact from the RFC's archive (`tests/rfc4475/*.dat`).
//!
//! Each test checks herald-sip's outcome twice: against the exact outcome written here (so a
//! behaviour change is noticed), and against `expectations.toml`, which names the outcome the
//! RFC requires and the ones it also permits.

use std::path::PathBuf;

use bytes::Bytes;
use herald_sip::{
    ContactList, Disposition, HeaderName, Limits, Message, Method, ParseError, Request, Transport,
    Uri,
};

/// What herald-sip did with a message.
#[derive(Debug)]
enum Outcome {
    Parsed(Box<Message>),
    Reply(u16),
    Drop,
    Close,
}

fn load(name: &str) -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rfc4475")
        .join(format!("{name}.dat"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn outcome(raw: &Bytes) -> Outcome {
    match Message::parse(raw.clone(), &Limits::default()) {
        Ok(m) => Outcome::Parsed(Box::new(m)),
        Err(e) => match e.disposition(raw, Transport::Datagram) {
            Disposition::Reply(r) => {
                // The error response is framed correctly; its copied headers are as broken as the
                // request's, so it is not re-parsed.
                let resp = r.to_bytes(Some("herald-tag"));
                assert!(resp.starts_with(format!("SIP/2.0 {} ", r.status()).as_bytes()));
                assert!(resp.ends_with(b"\r\nContent-Length: 0\r\n\r\n"));
                Outcome::Reply(r.status())
            }
            Disposition::Drop => Outcome::Drop,
            Disposition::Close => Outcome::Close,
            other => panic!("unexpected disposition {other:?}"),
        },
    }
}

/// One `[table]` of expectations.toml, read without a TOML dependency (the file is flat).
#[derive(Debug, Default)]
struct Expectation {
    kind: String,
    valid: bool,
    expect: String,
    app_status: Option<u16>,
    also: Vec<String>,
}

fn expectation(name: &str) -> Expectation {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475/expectations.toml");
    let text = std::fs::read_to_string(path).expect("expectations.toml");
    let mut in_table = false;
    let mut e = Expectation::default();
    let unquote = |v: &str| v.trim().trim_matches('"').to_owned();
    for line in text.lines() {
        if line.starts_with('[') {
            in_table = line.trim() == format!("[{name}]");
            continue;
        }
        if !in_table {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim() {
            "kind" => e.kind = unquote(v),
            "valid" => e.valid = v.trim() == "true",
            "expect" => e.expect = unquote(v),
            "app_status" => e.app_status = v.trim().parse().ok(),
            "also_acceptable" => {
                e.also = v
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(unquote)
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            _ => {}
        }
    }
    assert!(
        !e.expect.is_empty(),
        "{name} missing from expectations.toml"
    );
    e
}

/// Whether `outcome` is one of the outcomes `word` (expectations.toml vocabulary) allows.
fn permits(word: &str, e: &Expectation, outcome: &Outcome) -> bool {
    match (word, outcome) {
        ("accept", Outcome::Parsed(_)) => true,
        (w, Outcome::Parsed(_)) if w.starts_with("accept_then_reject") => true,
        // A well-formed response the application drops (RFC 4475 §3.3.10) must still parse.
        ("drop", Outcome::Parsed(_)) => e.valid && e.kind == "response",
        ("drop", Outcome::Drop | Outcome::Close) => true,
        (status, Outcome::Reply(got)) => status.parse::<u16>().is_ok_and(|s| s == *got),
        _ => false,
    }
}

/// The status a server answers when one of the headers it decodes on demand is malformed.
fn lazy_decode_status(m: &Message) -> Option<u16> {
    let r = m.as_request()?;
    let bad = r.contacts().is_err()
        || r.expires().is_err()
        || r.content_type().is_err()
        || r.event().is_err()
        || r.authorizations().any(|a| a.is_err())
        || r.routes().is_err();
    bad.then_some(400)
}

fn check(name: &str, want: &str) -> Outcome {
    let raw = load(name);
    let got = outcome(&raw);
    // What the server ends up doing: a malformed header decoded on demand is a 400 too.
    let effective = match &got {
        Outcome::Parsed(m) => lazy_decode_status(m).map(Outcome::Reply),
        _ => None,
    };
    let shown = match (&got, &effective) {
        (Outcome::Parsed(_), Some(Outcome::Reply(s))) => format!("accept, then {s} on decode"),
        (Outcome::Parsed(_), _) => "accept".to_owned(),
        (Outcome::Reply(s), _) => s.to_string(),
        (Outcome::Drop, _) => "drop".to_owned(),
        (Outcome::Close, _) => "close".to_owned(),
    };
    assert_eq!(shown, want, "{name}: outcome changed");
    let e = expectation(name);
    let judged = effective.as_ref().unwrap_or(&got);
    let ok = permits(&e.expect, &e, judged) || e.also.iter().any(|w| permits(w, &e, judged));
    assert!(
        ok,
        "{name}: {shown} is not allowed by expectations.toml ({e:?})"
    );
    if let Outcome::Parsed(m) = &got {
        // Byte-exact round trip (a datagram's surplus after Content-Length is not part of it).
        let out = m.to_bytes();
        assert!(
            raw.starts_with(&out),
            "{name}: serialisation differs from input"
        );
        if out.len() != raw.len() {
            assert_eq!(name, "dblreq", "{name}: only dblreq carries surplus octets");
        }
        let again = Message::parse(out.clone(), &Limits::default()).expect("re-parse");
        assert_eq!(again.to_bytes(), out);
    }
    got
}

fn request(o: Outcome) -> Request {
    match o {
        Outcome::Parsed(m) => match *m {
            Message::Request(r) => r,
            Message::Response(_) => panic!("expected a request"),
        },
        other => panic!("expected a parsed request, got {other:?}"),
    }
}

macro_rules! rfc4475 {
    ($( $(#[$doc:meta])* $name:ident => $want:literal $(, $extra:expr)? ;)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                let _got = check(stringify!($name), $want);
                $( ($extra)(_got); )?
            }
        )*

        /// Every message file in the directory has a test above.
        #[test]
        fn every_message_file_is_covered() {
            let names = [$(stringify!($name)),*];
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
            for entry in std::fs::read_dir(dir).expect("rfc4475 dir") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "dat") {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                    assert!(names.contains(&stem.as_str()), "no test for {stem}");
                }
            }
        }
    };
}

rfc4475! {
    /// §3.1.1.1: folding, LWS everywhere, compact and long forms, escaped quotes.
    wsinv => "accept", |o| {
        let r = request(o);
        assert_eq!(r.max_forwards(), Some(68));
        assert_eq!(r.cseq().seq, 9);
        assert_eq!(r.vias().len(), 3);
        assert_eq!(r.vias()[1].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(r.vias()[2].branch(), Some("z9hG4bK30239"));
        assert_eq!(r.to().tag(), Some("1918181833n"));
        assert_eq!(r.from().display_name().as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(r.header("UnknownHeaderWithUnusualValue"), Some(&b";;,,;;,;"[..]));
        assert_eq!(r.header(HeaderName::Subject), Some(&b""[..]));
        let ContactList::Contacts(c) = r.contacts().unwrap() else { panic!() };
        assert_eq!(c[0].q(), Some(330));
    };
    /// §3.1.1.2: unusual token characters, NUL inside a quoted display name.
    intmeth => "accept", |o| {
        let r = request(o);
        assert_eq!(r.method().as_str(), "!interesting-Method0123456789_*+`.%indeed'~");
        assert_eq!(r.vias()[0].branch(), Some("z9hG4bK-.!%66*_+`'~"));
        assert!(r.to().display_name().unwrap().contains('\0'));
        assert_eq!(r.from().tag(), Some("_token~1'+`*%!-."));
    };
    /// §3.1.1.3: %-escapes are equivalent to the characters they encode in SIP URIs.
    esc01 => "accept", |o| {
        let r = request(o);
        assert_eq!(r.to().uri().aor().as_deref(), Some("user@example.com"));
        let ContactList::Contacts(c) = r.contacts().unwrap() else { panic!() };
        assert_eq!(c[0].uri().sip().unwrap().param("n%61me"), Some(Some("v%61lue%25%34%31")));
    };
    /// §3.1.1.4: escaped NULs must not truncate the AOR; two distinct contacts.
    escnull => "accept", |o| {
        let r = request(o);
        assert_eq!(r.to().uri().aor().as_deref(), Some("null-%00-null@example.com"));
        let c = r.contacts().unwrap();
        assert_eq!(c.contacts().len(), 2);
        assert_ne!(c.contacts()[0].uri(), c.contacts()[1].uri());
    };
    /// §3.1.1.5: % is not an escape in methods, display names or header names.
    esc02 => "accept", |o| {
        let r = request(o);
        assert!(matches!(r.method(), Method::Extension(_)));
        assert_eq!(r.contacts().unwrap().contacts().len(), 2);
        assert!(r.header("C%6Fntact").is_some());
    };
    /// §3.1.1.6: no LWS between display name and `<`.
    lwsdisp => "accept";
    /// §3.1.1.7: long values, many Vias in mixed spellings.
    longreq => "accept", |o| {
        let r = request(o);
        assert_eq!(r.vias().len(), 34);
        assert!(r.from().tag().unwrap().len() > 150);
    };
    /// §3.1.1.8: surplus octets after Content-Length are ignored on UDP.
    dblreq => "accept", |o| {
        let r = request(o);
        assert_eq!(r.method(), &Method::Register);
        assert!(r.body().is_empty());
    };
    /// §3.1.1.9: `;` in the user part of the Request-URI.
    semiuri => "accept", |o| {
        let r = request(o);
        assert_eq!(r.uri().sip().unwrap().user(), Some("user;par=u%40example.net"));
    };
    /// §3.1.1.10: known and unknown Via transports.
    transports => "accept", |o| {
        let r = request(o);
        let t: Vec<_> = r.vias().iter().map(|v| v.transport().as_str().to_owned()).collect();
        assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    };
    /// §3.1.1.11: binary multipart body with NULs kept exact.
    mpart01 => "accept", |o| {
        let r = request(o);
        assert_eq!(r.body().len(), 553);
        assert!(r.content_type().unwrap().unwrap().is("multipart", "mixed"));
    };
    /// §3.1.1.12: reason phrase with UTF-8.
    unreason => "accept";
    /// §3.1.1.13: empty reason phrase.
    noreason => "accept", |o| {
        let Outcome::Parsed(m) = o else { panic!() };
        assert_eq!(m.as_response().unwrap().reason(), b"");
    };
    /// §3.1.2.1: `;;,;,,` in Via.
    badinv01 => "400";
    /// §3.1.2.2: Content-Length larger than the datagram.
    clerr => "400";
    /// §3.1.2.3: negative Content-Length.
    ncl => "400";
    /// §3.1.2.4: CSeq over 2**32-1.
    scalar02 => "400";
    /// §3.1.2.5: a response with overlarge scalars is dropped.
    scalarlg => "drop";
    /// §3.1.2.6: unterminated quoted display name.
    quotbal => "400";
    /// §3.1.2.7: `<>` around the Request-URI.
    ltgtruri => "400";
    /// §3.1.2.8: LWS inside the Request-URI.
    lwsruri => "400";
    /// §3.1.2.9: several SPs between Request-Line elements.
    lwsstart => "400";
    /// §3.1.2.10: SPs after the SIP version.
    trws => "400";
    /// §3.1.2.11: URI headers in the Request-URI.
    escruri => "400";
    /// §3.1.2.12: Date is not decoded, so a bad time zone does not matter.
    baddate => "accept";
    /// §3.1.2.13: a URI with `?` headers outside `<>` in Contact (decoded on demand).
    regbadct => "accept, then 400 on decode", |o| {
        // The parse succeeds (Contact is decoded lazily); the registrar's first look at the
        // Contact gives the 400 the table expects.
        let r = request(o);
        assert_eq!(r.contacts().unwrap_err(), ParseError::InvalidHeader { header: "Contact" });
    };
    /// §3.1.2.14: spaces inside `<>` in To.
    badaspec => "400";
    /// §3.1.2.15: unquoted display names with non-token characters.
    baddn => "400";
    /// §3.1.2.16: SIP/7.0 gets 505.
    badvers => "505";
    /// §3.1.2.17: CSeq method differs from the request method.
    mismatch01 => "400";
    /// §3.1.2.18: the same with an unknown method (400 is allowed; 501 preferred by the RFC).
    mismatch02 => "400";
    /// §3.1.2.19: status code over 699 in a response: dropped.
    bigcode => "drop";
    /// §3.2.1: `branch=z9hG4bK` with nothing after the cookie parses; the transaction layer decides.
    badbranch => "accept", |o| {
        assert_eq!(request(o).top_via().branch(), Some("z9hG4bK"));
    };
    /// §3.3.1: no From, To or Call-ID: 400 from the parser.
    insuf => "400";
    /// §3.3.2: unknown Request-URI scheme: parses, the server answers 416.
    unkscm => "accept", |o| {
        let r = request(o);
        assert!(matches!(r.uri(), Uri::Other { .. }));
        assert_eq!(r.uri().scheme(), "nobodyKnowsThisScheme");
    };
    /// §3.3.3: known but atypical scheme: parses, the server answers 416.
    novelsc => "accept", |o| {
        assert_eq!(request(o).uri().scheme(), "soap.beep");
    };
    /// §3.3.4: non-SIP URIs in To/From/Contact parse; a registrar answers 400 (no SIP AOR).
    unksm2 => "accept", |o| {
        let r = request(o);
        assert_eq!(r.to().uri().aor(), None);
        assert_eq!(r.contacts().unwrap().contacts()[0].uri().scheme(), "name");
    };
    /// §3.3.5: unknown Require / Proxy-Require: the application answers 420.
    bext01 => "accept", |o| {
        let r = request(o);
        assert_eq!(r.require().collect::<Vec<_>>(), ["nothingSupportsThis", "nothingSupportsThisEither"]);
        assert_eq!(r.proxy_require().count(), 2);
    };
    /// §3.3.6: unknown Content-Type: the application answers 415.
    invut => "accept", |o| {
        assert!(request(o).content_type().unwrap().unwrap().is("application", "unknownformat"));
    };
    /// §3.3.7: unknown Authorization scheme: scheme and raw params exposed.
    regaut01 => "accept", |o| {
        let r = request(o);
        let a = r.authorizations().next().unwrap().unwrap();
        assert_eq!((a.scheme, a.params), ("NoOneKnowsThisScheme", &b"opaque-data=here"[..]));
    };
    /// §3.3.8: duplicate single-valued headers: 400 from the parser.
    multi01 => "400";
    /// §3.3.9: two different Content-Lengths: 400 on UDP (a stream would close).
    mcl01 => "400";
    /// §3.3.10: a broadcast Via in a response parses; the transaction user drops it.
    bcast => "accept", |o| {
        let Outcome::Parsed(m) = o else { panic!() };
        assert_eq!(m.as_response().unwrap().vias()[1].host_str(), "255.255.255.255");
    };
    /// §3.3.11: Max-Forwards 0 parses.
    zeromf => "accept", |o| {
        assert_eq!(request(o).max_forwards(), Some(0));
    };
    /// §3.3.12: `unknownparam` is a contact parameter, not a URI parameter.
    cparam01 => "accept", |o| {
        let r = request(o);
        let c = r.contacts().unwrap();
        let c = &c.contacts()[0];
        assert_eq!(c.param("unknownparam"), Some(None));
        assert_eq!(c.uri().sip().unwrap().param("unknownparam"), None);
    };
    /// §3.3.13: `unknownparam` inside `<>` is a URI parameter.
    cparam02 => "accept", |o| {
        let r = request(o);
        let c = r.contacts().unwrap();
        let c = &c.contacts()[0];
        assert_eq!(c.param("unknownparam"), None);
        assert_eq!(c.uri().sip().unwrap().param("unknownparam"), Some(None));
    };
    /// §3.3.14: escaped headers in a Contact URI are kept.
    regescrt => "accept", |o| {
        let r = request(o);
        let c = r.contacts().unwrap();
        assert_eq!(c.contacts()[0].uri().sip().unwrap().headers(), Some("Route=%3Csip:sip.example.com%3E"));
    };
    /// §3.3.15: Accept without application/sdp: the application decides (406 or 400).
    sdp01 => "accept", |o| {
        assert_eq!(request(o).header_values(HeaderName::Accept).collect::<Vec<_>>(), [&b"text/nobodyKnowsThis"[..]]);
    };
    /// §3.4.1: RFC 2543 syntax: no branch, no From tag, no Content-Length, no Max-Forwards.
    inv2543 => "accept", |o| {
        let r = request(o);
        assert_eq!(r.top_via().branch(), None);
        assert_eq!(r.from().tag(), None);
        assert_eq!(r.content_length(), None);
        assert_eq!(r.max_forwards(), None);
        assert!(!r.body().is_empty());
    };
    /// Archive-only `test.dat`: no Via and a header line without a colon: dropped.
    test => "drop";
}
