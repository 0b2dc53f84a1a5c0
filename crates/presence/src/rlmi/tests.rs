use super::*;
use crate::pidf::Presence;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const L: Limits = Limits::DEFAULT;
const RFC4662_CT: &str = "multipart/related;type=\"application/rlmi+xml\";\r\n start=\"<nXYxAE@pres.vancouver.example.com>\";\r\n boundary=\"50UBfW7LSCVLtggUPe5z\"";

fn rfc4662_section_6_body(fix_erratum: bool) -> Bytes {
    let text = String::from_utf8(fixture("rfc4662_6_notify_body.txt")).expect("utf-8");
    let text = if fix_erratum {
        text.replace("example.com\"\">", "example.com\">")
    } else {
        text
    };
    Bytes::from(text.replace('\n', "\r\n"))
}

#[test]
fn rfc4662_section_5_1_rlmi_example_parses() {
    let l = List::parse(&fixture("rfc4662_5_1.xml"), &L).expect("parses");
    assert_eq!(l.uri, "sip:adam-friends@lists.vancouver.example.com");
    assert_eq!((l.version, l.full_state), (7, true));
    assert_eq!(
        l.names[1],
        Name {
            text: "Liste d'amis".into(),
            lang: Some("fr".into())
        }
    );
    assert_eq!(l.resources.len(), 4);
    let jim = &l.resources[2].instances[0];
    assert_eq!(
        (jim.state, jim.reason.as_deref(), jim.cid.as_deref()),
        (InstanceState::Terminated, Some("rejected"), None)
    );
    assert_eq!(l.resources[3].instances[0].state, InstanceState::Pending);
    assert_eq!(List::parse(&l.render(), &L).expect("round trip"), l);
}

#[test]
fn rfc4662_section_6_notify_body_parses_once_its_erratum_is_fixed() {
    // The RFC's first NOTIFY has `uri="sip:bob@vancouver.example.com""` — not XML.
    let verbatim =
        parse_notification(RFC4662_CT, rfc4662_section_6_body(false), &L).expect_err("erratum");
    assert_eq!(verbatim.status_code(), 400);
    let n = parse_notification(RFC4662_CT, rfc4662_section_6_body(true), &L).expect("parses");
    assert_eq!(n.root_id, "nXYxAE@pres.vancouver.example.com");
    assert_eq!(n.list.version, 1);
    assert_eq!(n.list.resources.len(), 4);
    assert_eq!(n.parts.len(), 2);
    assert_eq!(n.parts[0].content_id, "bUZBsM@pres.vancouver.example.com");
    assert_eq!(
        n.parts[0].content_type,
        "application/pidf+xml;charset=\"UTF-8\""
    );
    let bob = Presence::parse(&n.parts[0].body, &L).expect("pidf part");
    assert_eq!(bob.entity, "sip:bob@vancouver.example.com");
    let dave = Presence::parse(&n.parts[1].body, &L).expect("pidf part");
    assert_eq!(
        dave.tuples[0].status.basic,
        Some(crate::pidf::Basic::Closed)
    );
    assert_eq!(
        n.list.resources[0].instances[0].cid.as_deref(),
        Some(n.parts[0].content_id.as_str())
    );
}

#[test]
fn lync_rlmi_examples_parse() {
    let l = List::parse(&fixture("lync_1_7_rlmi.xml"), &L).expect("parses");
    assert_eq!(l.resources[0].instances[0], Instance::active("0", "x@…"));
    let q = List::parse(&fixture("lync_1_7_rlmi_quota.xml"), &L).expect("parses");
    assert_eq!(
        q.resources[0].instances[0],
        Instance::quota_exceeded("0", "popular@contoso.com")
    );
    assert_eq!(List::parse(&q.render(), &L).expect("round trip"), q);
}

fn sample(full: bool, version: u32) -> (List, Vec<Part>) {
    let body = Bytes::from_static(b"<categories xmlns=\"http://schemas.microsoft.com/2006/09/sip/categories\" uri=\"sip:bob@example.test\"/>");
    let list = List {
        uri: "sip:alice@example.test".into(),
        version,
        full_state: full,
        cid: None,
        names: vec![],
        resources: vec![
            Resource {
                uri: "sip:bob@example.test".into(),
                names: vec![],
                instances: vec![Instance::active("0", "bob@example.test")],
            },
            Resource {
                uri: "sip:carol@example.test".into(),
                names: vec![],
                instances: vec![],
            },
        ],
    };
    let parts = vec![Part {
        content_id: "bob@example.test".into(),
        content_type: crate::categories::CONTENT_TYPE.into(),
        body,
    }];
    (list, parts)
}

#[test]
fn rendered_notification_round_trips_and_has_the_lync_shape() {
    for (full, version) in [(true, 0), (false, 7)] {
        let (list, parts) = sample(full, version);
        let m = render_notification(&list, "resourceList", &parts, "herald.sub1");
        assert!(m.content_type.starts_with(
            "multipart/related;type=\"application/rlmi+xml\";start=\"<resourceList>\";boundary="
        ));
        let text = std::str::from_utf8(&m.body).expect("utf-8");
        assert!(text.starts_with("--herald.sub1\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <resourceList>\r\nContent-Type: application/rlmi+xml"));
        assert!(text.ends_with("\r\n--herald.sub1--\r\n"));
        assert!(text.contains("Content-ID: <bob@example.test>\r\nContent-Type: application/msrtc-event-categories+xml\r\n\r\n<categories"));
        assert!(
            text.contains("\r\n\r\n--herald.sub1\r\n"),
            "the extra CRLF libpurple needs"
        );
        let n = parse_notification(&m.content_type, m.body.clone(), &L).expect("parses");
        assert_eq!(n.list, list);
        // Each part comes back with the extra CRLF written for libpurple's MIME parser.
        let padded: Vec<Part> = parts
            .iter()
            .map(|p| Part {
                body: Bytes::from([&p.body[..], b"\r\n"].concat()),
                ..p.clone()
            })
            .collect();
        assert_eq!(n.parts, padded, "part bodies come back byte for byte");
        assert_eq!(n.root_id, "resourceList");
    }
}

#[test]
fn boundary_that_occurs_in_a_part_is_extended() {
    let (list, mut parts) = sample(true, 0);
    parts[0].body = Bytes::from_static(b"<x>--b</x>");
    let m = render_notification(&list, "root", &parts, "b");
    let n = parse_notification(&m.content_type, m.body.clone(), &L).expect("parses");
    assert_eq!(&n.parts[0].body[..], b"<x>--b</x>\r\n");
}

#[test]
fn malformed_multipart_bodies() {
    let (list, parts) = sample(true, 0);
    let m = render_notification(&list, "root", &parts, "bnd");
    let cases: Vec<(String, Bytes, u16)> = vec![
        ("text/plain".into(), m.body.clone(), 415),
        (
            "multipart/related;type=\"application/pidf+xml\";boundary=bnd".into(),
            m.body.clone(),
            415,
        ),
        ("multipart/related".into(), m.body.clone(), 400),
        (
            "multipart/related;boundary=bnd;start=\"<nope>\"".into(),
            m.body.clone(),
            400,
        ),
        (
            "multipart/related;boundary=bnd".into(),
            m.body.slice(..m.body.len() - 10),
            400,
        ),
        (
            "multipart/related;boundary=\"bnd".into(),
            m.body.clone(),
            400,
        ),
        (
            "multipart/related;boundary=other".into(),
            m.body.clone(),
            400,
        ),
    ];
    for (ct, body, code) in cases {
        let e = parse_notification(&ct, body, &L).expect_err(&ct);
        assert_eq!(e.status_code(), code, "{ct}: {e}");
    }
    let few = Limits {
        max_parts: 1,
        ..Limits::default()
    };
    assert!(matches!(
        parse_notification(&m.content_type, m.body.clone(), &few),
        Err(BodyError::TooMany { .. })
    ));
}

#[test]
fn rfc4662_section_5_2_version_starts_at_zero_and_increments() {
    let mut v = VersionCounter::new();
    assert_eq!(v.current(), None);
    assert_eq!((v.advance(), v.advance(), v.advance()), (0, 1, 2));
    assert_eq!(v.current(), Some(2));
}
