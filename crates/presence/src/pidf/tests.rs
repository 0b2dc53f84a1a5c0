use super::*;
use crate::availability::{ActivityToken, Availability, Band};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str) -> Presence {
    Presence::parse(&fixture(name), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn round_trips(p: &Presence) {
    let rendered = p.render();
    let back = Presence::parse(&rendered, &Limits::default()).unwrap_or_else(|e| {
        panic!(
            "re-parse failed: {e}\n{}",
            String::from_utf8_lossy(&rendered)
        )
    });
    assert_eq!(&back, p, "{}", String::from_utf8_lossy(&rendered));
}

#[test]
fn rfc3863_section_4_2_2_prefixed_and_default_namespace_read_the_same() {
    let a = parse("rfc3863_4_2_2_prefixed.xml");
    let b = parse("rfc3863_4_2_2_default.xml");
    assert_eq!(a, b);
    assert_eq!(a.entity, "pres:someone@example.com");
    assert_eq!(a.tuples[0].id, "sg89ae");
    assert_eq!(a.tuples[0].status.basic, Some(Basic::Open));
    let c = a.tuples[0].contact.as_ref().expect("contact");
    assert_eq!(
        (c.uri.as_str(), c.priority),
        ("tel:+09012345678", Some(800))
    );
    round_trips(&a);
}

#[test]
fn rfc3863_section_4_3_1_status_extensions_notes_and_timestamp() {
    let p = parse("rfc3863_4_3_1.xml");
    assert_eq!(p.tuples.len(), 2);
    let t = &p.tuples[0];
    assert_eq!(
        t.status.extensions.len(),
        2,
        "im:im and myex:location are kept"
    );
    assert!(
        t.status.extensions[0]
            .as_str()
            .contains("xmlns:im=\"urn:ietf:params:xml:ns:pidf:im\"")
    );
    assert_eq!(t.notes.len(), 2);
    assert_eq!(t.notes[1].lang.as_deref(), Some("fr"));
    assert_eq!(t.notes[0].text, "Don't Disturb Please!");
    assert_eq!(
        t.timestamp.map(|t| t.to_string()).as_deref(),
        Some("2001-10-27T16:49:29Z")
    );
    assert_eq!(p.notes[0].text, "I'll be in Tokyo next week");
    round_trips(&p);
}

#[test]
fn rfc3863_section_4_3_2_other_extension_elements_are_kept() {
    let p = parse("rfc3863_4_3_2.xml");
    assert_eq!(p.tuples[0].extensions.len(), 1);
    assert_eq!(p.extensions.len(), 1);
    assert!(
        p.extensions[0]
            .as_str()
            .starts_with("<myex:mytag xmlns:myex=")
    );
    assert_eq!(
        p.tuples[1].contact.as_ref().map(|c| c.uri.as_str()),
        Some("im:someone@mobilecarrier.net")
    );
    round_trips(&p);
}

#[test]
fn rfc3863_section_4_3_3_must_understand_extension_is_kept_unprocessed() {
    let p = parse("rfc3863_4_3_3.xml");
    let ext = &p.tuples[0].extensions[0];
    assert!(ext.as_str().contains("impp:mustUnderstand=\"1\""));
    assert!(
        ext.as_str()
            .contains("xmlns:impp=\"urn:ietf:params:xml:ns:pidf\""),
        "{ext}"
    );
    assert_eq!(
        p.tuples[0].contact.as_ref().and_then(|c| c.priority),
        Some(725)
    );
    round_trips(&p);
}

#[test]
fn rfc4480_section_4_example() {
    let p = parse("rfc4480_4.xml");
    assert_eq!(p.tuples.len(), 3);
    assert_eq!(
        p.devices[0].device_id.as_deref(),
        Some("urn:device:0003ba4811e3")
    );
    let ui = p.devices[0].user_input.expect("user-input");
    assert!(ui.idle);
    assert_eq!(ui.idle_threshold, Some(600));
    assert_eq!(
        ui.last_input.map(|t| t.to_string()).as_deref(),
        Some("2004-10-21T18:20:00Z")
    );
    let person = &p.persons[0];
    let acts = person.activities.as_ref().expect("activities");
    assert_eq!(acts.items, vec![RpidActivity::Away]);
    assert_eq!(acts.notes[0].text, "Far away");
    assert_eq!(
        acts.from.map(|t| t.to_string()).as_deref(),
        Some("2005-05-30T07:00:00Z")
    );
    assert_eq!(person.notes[0].text, "Scoring 120");
    assert!(person.extensions.len() >= 6, "mood, place-is, ... are kept");
    round_trips(&p);
    let s = to_summary(&p);
    assert_eq!(s.availability.band(), Band::Away);
}

#[test]
fn rfc4479_section_7_1_basic_im_client() {
    let p = parse("rfc4479_7_1.xml");
    assert_eq!(p.entity, "", "the RFC's example has no entity");
    round_trips(&p);
    let s = to_summary(&p);
    assert_eq!(
        s.availability,
        Availability::BUSY_IDLE,
        "on the phone, PC idle"
    );
    assert_eq!(s.activity, Some(ActivityToken::OnThePhone));
}

#[test]
fn sipe_2005_mode_pidf_without_namespace_is_refused() {
    // sipe-client §6 fallback sample: SIPE ignores namespaces, herald does not.
    let body = br#"<presence entity="sip:bob@example.test"><tuple id="t1"><status><basic>open</basic></status></tuple></presence>"#;
    let err = Presence::parse(body, &Limits::default()).expect_err("no PIDF namespace");
    assert!(matches!(err, BodyError::UnexpectedRoot { .. }));
    assert_eq!(err.status_code(), 400);
}

#[test]
fn malformed_bodies_are_400_and_unsupported_415() {
    let l = Limits::default();
    let cases: &[(&[u8], u16)] = &[
        (b"", 400),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'><tuple id='a'/></presence>", 400),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'><tuple><status/></tuple></presence>", 400),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'><tuple id='a'><status><basic>maybe</basic></status></tuple></presence>", 400),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'>&bogus;</presence>", 400),
        (b"<!DOCTYPE x [<!ENTITY a 'b'>]><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'/>", 400),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'></presenc>", 400),
        (b"<p:presence entity='x'/>", 400),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'/><second/>", 400),
        (b"\xff\xfe<presence/>", 400),
        (b"<?xml version='1.0' encoding='ISO-8859-1'?><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'/>", 415),
    ];
    for (body, code) in cases {
        let err = Presence::parse(body, &l).expect_err(&String::from_utf8_lossy(body));
        assert_eq!(
            err.status_code(),
            *code,
            "{err} for {}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn limits_bound_size_depth_and_elements() {
    let deep = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'>{}{}</presence>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    assert!(matches!(
        Presence::parse(deep.as_bytes(), &Limits::default()),
        Err(BodyError::TooDeep { .. })
    ));
    let small = Limits {
        max_body: 10,
        ..Limits::default()
    };
    let err = Presence::parse(&fixture("rfc3863_4_3_1.xml"), &small).expect_err("too large");
    assert_eq!(err.status_code(), 413);
    let few = Limits {
        max_elements: 3,
        ..Limits::default()
    };
    assert!(matches!(
        Presence::parse(&fixture("rfc3863_4_3_1.xml"), &few),
        Err(BodyError::TooManyElements { .. })
    ));
}

#[test]
fn escaping_survives_round_trip() {
    let p = Presence {
        entity: "sip:a&b@example.test".into(),
        notes: vec![Note {
            text: "<tag> & \"quotes\" ]]> \r\n tab\t".into(),
            lang: Some("en".into()),
        }],
        tuples: vec![Tuple {
            id: "x\"y\n".into(),
            status: Status {
                basic: Some(Basic::Closed),
                extensions: vec![],
            },
            ..Tuple::default()
        }],
        ..Presence::default()
    };
    round_trips(&p);
}

#[test]
fn priority_follows_rfc3863_section_4_1_5() {
    for (s, v) in [
        ("0", Some(0)),
        ("1", Some(1000)),
        ("1.00", Some(1000)),
        ("0.021", Some(21)),
        ("0.5", Some(500)),
    ] {
        assert_eq!(parse_priority(s), v, "{s}");
    }
    for s in ["1.5", "2", "-0.1", "0.0001", "", ".5", "a"] {
        assert_eq!(parse_priority(s), None, "{s}");
    }
    for v in [0, 1, 21, 500, 999, 1000] {
        assert_eq!(parse_priority(&format_priority(v)), Some(v));
    }
}

/// Every row of the mapping table in [`mapping`], both ways.
#[test]
fn lync_to_pidf_mapping_rows_both_ways() {
    let rows: &[(Band, Basic, &[RpidActivity], Option<bool>)] = &[
        (Band::Available, Basic::Open, &[], Some(false)),
        (Band::AvailableIdle, Basic::Open, &[], Some(true)),
        (Band::Busy, Basic::Open, &[RpidActivity::Busy], Some(false)),
        (
            Band::BusyIdle,
            Basic::Open,
            &[RpidActivity::Busy],
            Some(true),
        ),
        (
            Band::DoNotDisturb,
            Basic::Open,
            &[RpidActivity::Busy, RpidActivity::Other(String::new())],
            Some(false),
        ),
        (
            Band::BeRightBack,
            Basic::Open,
            &[RpidActivity::Away, RpidActivity::Other(String::new())],
            Some(false),
        ),
        (Band::Away, Basic::Open, &[RpidActivity::Away], Some(false)),
        (Band::Offline, Basic::Closed, &[], None),
    ];
    for (band, basic, acts, idle) in rows {
        let s = Summary {
            availability: band.canonical(),
            activity: None,
            note: None,
        };
        let p = from_summary("sip:bob@example.test", &s, None, None);
        assert_eq!(p.tuples[0].status.basic, Some(*basic), "{band:?}");
        let items = p.persons[0]
            .activities
            .as_ref()
            .map(|a| a.items.clone())
            .unwrap_or_default();
        assert_eq!(items.len(), acts.len(), "{band:?}: {items:?}");
        for (got, want) in items.iter().zip(acts.iter()) {
            assert_eq!(got.element_name(), want.element_name(), "{band:?}");
        }
        assert_eq!(p.persons[0].user_input.map(|u| u.idle), *idle, "{band:?}");
        let back = to_summary(
            &Presence::parse(&p.render(), &Limits::default()).expect("renders valid PIDF"),
        );
        assert_eq!(back.availability.band(), *band);
        assert_eq!(back.activity, None);
    }
    let unknown = from_summary(
        "sip:x@y",
        &Summary {
            availability: Availability::new(0),
            activity: None,
            note: None,
        },
        None,
        None,
    );
    assert_eq!(unknown.tuples[0].status.basic, Some(Basic::Closed));
}

#[test]
fn lync_tokens_map_to_rpid_and_back_in_every_band() {
    let mut tokens: Vec<Option<ActivityToken>> =
        ActivityToken::KNOWN.iter().cloned().map(Some).collect();
    tokens.push(None);
    tokens.push(Some(ActivityToken::parse("busy").expect("custom")));
    // Every combination aggregation can produce: a token only inside the band range it is
    // shown in (crate::availability::Activity::applies_at), custom tokens anywhere.
    for band in Band::ALL.into_iter().filter(|b| *b != Band::Unknown) {
        for token in &tokens {
            let shown = token.as_ref().is_none_or(|t| {
                crate::availability::Activity::token(t.clone()).applies_at(band.canonical())
            });
            if !shown {
                continue;
            }
            let s = Summary {
                availability: band.canonical(),
                activity: token.clone(),
                note: Some("n".into()),
            };
            let p = from_summary(
                "sip:bob@example.test",
                &s,
                Some("sip:bob@example.test"),
                None,
            );
            let back =
                to_summary(&Presence::parse(&p.render(), &Limits::default()).expect("valid"));
            assert_eq!(back.availability.band(), band, "{band:?} {token:?}");
            assert_eq!(&back.activity, token, "{band:?} {token:?}");
            assert_eq!(back.note.as_deref(), Some("n"));
        }
    }
    let rows = [
        (ActivityToken::OnThePhone, RpidActivity::OnThePhone),
        (ActivityToken::InAMeeting, RpidActivity::Meeting),
        (ActivityToken::InPresentation, RpidActivity::Presentation),
        (
            ActivityToken::OffWork,
            RpidActivity::Other("off-work".into()),
        ),
        (
            ActivityToken::OutOfOffice,
            RpidActivity::Other("out-of-office".into()),
        ),
    ];
    for (token, rpid) in rows {
        let s = Summary {
            availability: Availability::BUSY,
            activity: Some(token.clone()),
            note: None,
        };
        let p = from_summary("sip:b@x", &s, None, None);
        assert!(
            p.persons[0]
                .activities
                .as_ref()
                .is_some_and(|a| a.items.contains(&rpid)),
            "{token}"
        );
    }
}

fn simple_client(activities: &[RpidActivity], basic: Basic, idle: Option<bool>) -> Presence {
    Presence {
        entity: "sip:carol@example.test".into(),
        tuples: vec![Tuple {
            id: "a".into(),
            status: Status {
                basic: Some(basic),
                extensions: vec![],
            },
            ..Tuple::default()
        }],
        persons: vec![Person {
            id: "p".into(),
            activities: Some(Activities {
                items: activities.to_vec(),
                ..Activities::default()
            }),
            user_input: idle.map(|idle| UserInput {
                idle,
                last_input: None,
                idle_threshold: None,
            }),
            ..Person::default()
        }],
        ..Presence::default()
    }
}

#[test]
fn simple_client_states_read_as_lync() {
    use RpidActivity as R;
    type Case<'a> = (&'a [R], Basic, Option<bool>, Band, Option<ActivityToken>);
    let cases: &[Case<'_>] = &[
        (&[], Basic::Open, None, Band::Available, None),
        (&[R::Away], Basic::Open, None, Band::Away, None),
        (&[R::Busy], Basic::Open, None, Band::Busy, None),
        (
            &[R::OnThePhone],
            Basic::Open,
            None,
            Band::Busy,
            Some(ActivityToken::OnThePhone),
        ),
        (
            &[R::Meeting],
            Basic::Open,
            Some(true),
            Band::BusyIdle,
            Some(ActivityToken::InAMeeting),
        ),
        (&[R::Appointment], Basic::Open, None, Band::Busy, None),
        (
            &[R::Vacation],
            Basic::Open,
            None,
            Band::Away,
            Some(ActivityToken::OutOfOffice),
        ),
        (&[R::Sleeping], Basic::Open, None, Band::Away, None),
        (
            &[R::Presentation],
            Basic::Open,
            None,
            Band::DoNotDisturb,
            Some(ActivityToken::InPresentation),
        ),
        (&[R::Busy], Basic::Closed, None, Band::Offline, None),
        (&[], Basic::Open, Some(true), Band::AvailableIdle, None),
        (&[R::Unknown], Basic::Open, None, Band::Available, None),
    ];
    for (acts, basic, idle, band, token) in cases {
        let s = to_summary(&simple_client(acts, *basic, *idle));
        assert_eq!(s.availability.band(), *band, "{acts:?} {basic:?}");
        assert_eq!(&s.activity, token, "{acts:?}");
    }
}

#[test]
fn sipe_reads_busy_from_rendered_pidf() {
    // SIPE's PIDF path (sipe-client §3.5) reads basic and busy/away activities by local name.
    let s = Summary {
        availability: Availability::BUSY,
        activity: None,
        note: None,
    };
    let body = from_summary("sip:bob@example.test", &s, None, None).render();
    let text = std::str::from_utf8(&body).expect("utf-8");
    assert!(text.contains("entity=\"sip:bob@example.test\""));
    assert!(text.contains("<basic>open</basic>"));
    assert!(text.contains("<rpid:busy/>"));
}
