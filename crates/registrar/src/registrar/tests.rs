use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::error::ConfigError;

type Flow = u32;

fn aor(s: &str) -> Aor {
    Aor::parse(s).unwrap()
}

fn alice() -> Aor {
    aor("alice@example.test")
}

fn req(
    aor: &Aor,
    call_id: &str,
    cseq: u32,
    contacts: Vec<Contact>,
    expires: Option<u32>,
    flow: Flow,
) -> RegisterRequest<Flow> {
    RegisterRequest {
        aor: aor.clone(),
        call_id: call_id.to_owned(),
        cseq,
        contacts,
        expires,
        flow,
        source: format!("127.0.0.1:{}/tcp", 40000 + flow),
        user_agent: Some("test".to_owned()),
        epid: None,
    }
}

fn c(uri: &str) -> Contact {
    Contact::Binding(ContactBinding::new(uri))
}

fn c_exp(uri: &str, expires: u32) -> Contact {
    Contact::Binding(ContactBinding {
        expires: Some(expires),
        ..ContactBinding::new(uri)
    })
}

fn c_inst(uri: &str, instance: &str, reg_id: Option<u32>) -> Contact {
    Contact::Binding(ContactBinding {
        instance: Some(instance.to_owned()),
        reg_id,
        ..ContactBinding::new(uri)
    })
}

fn registrar() -> Registrar<Flow> {
    Registrar::new(RegistrarConfig::default()).unwrap()
}

fn drain(r: &mut Registrar<Flow>) -> Vec<Event<Flow>> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn removed_reasons(events: &[Event<Flow>]) -> Vec<RemovalReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::EndpointRemoved { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn count<F>(events: &[Event<F>], pred: impl Fn(&Event<F>) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---- step 6: Contact: * --------------------------------------------------------------------

#[test]
fn rfc3261_10_3_step_6_star_requires_expires_zero() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "c1", 1, vec![c("sip:a@h1")], None, 1))
        .unwrap();
    drain(&mut r);
    for expires in [None, Some(3600)] {
        let err = r
            .register(now, req(&a, "c1", 2, vec![Contact::Wildcard], expires, 1))
            .unwrap_err();
        assert_eq!(err, RegisterError::WildcardNeedsExpiresZero);
        assert_eq!(err.status_code(), 400);
    }
    assert_eq!(r.binding_count(), 1);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn rfc3261_10_3_step_6_star_must_be_the_only_contact() {
    let mut r = registrar();
    let now = Instant::now();
    let err = r
        .register(
            now,
            req(
                &alice(),
                "c1",
                1,
                vec![Contact::Wildcard, c("sip:a@h1")],
                Some(0),
                1,
            ),
        )
        .unwrap_err();
    assert_eq!(err, RegisterError::WildcardNotAlone);
    assert_eq!(err.status_code(), 400);
    assert_eq!(err.reason_phrase(), "Bad Request");
}

#[test]
fn rfc3261_10_3_step_6_star_removes_every_binding() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "c1", 1, vec![c("sip:a@h1")], None, 1))
        .unwrap();
    r.register(now, req(&a, "c2", 1, vec![c("sip:a@h2")], None, 2))
        .unwrap();
    drain(&mut r);
    let ok = r
        .register(now, req(&a, "c1", 2, vec![Contact::Wildcard], Some(0), 1))
        .unwrap();
    assert!(ok.bindings.is_empty());
    assert_eq!(ok.expires, 0);
    let events = drain(&mut r);
    assert_eq!(
        removed_reasons(&events),
        [RemovalReason::Unregistered, RemovalReason::Unregistered]
    );
    assert_eq!(events.last(), Some(&Event::AorOffline { aor: a.clone() }));
    assert_eq!((r.aor_count(), r.binding_count()), (0, 0));
    assert_eq!(r.lookup_flow(&a, Target::Contact("sip:a@h1")), None);
}

#[test]
fn rfc3261_10_3_step_6_star_with_stale_cseq_fails() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "c1", 5, vec![c("sip:a@h1")], None, 1))
        .unwrap();
    let err = r
        .register(now, req(&a, "c1", 5, vec![Contact::Wildcard], Some(0), 1))
        .unwrap_err();
    assert_eq!(err, RegisterError::OutOfOrder { cseq: 5, stored: 5 });
    assert_eq!(r.binding_count(), 1);
}

#[test]
fn rfc3261_10_3_step_6_star_on_an_empty_aor_changes_nothing() {
    let mut r = registrar();
    let ok = r
        .register(
            Instant::now(),
            req(&alice(), "c1", 1, vec![Contact::Wildcard], Some(0), 1),
        )
        .unwrap();
    assert!(ok.bindings.is_empty());
    assert!(drain(&mut r).is_empty());
}

#[test]
fn rfc3261_10_3_step_6_without_contact_is_a_query() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    let ok = r.register(now, req(&a, "c1", 1, vec![], None, 1)).unwrap();
    assert!(ok.bindings.is_empty());
    assert_eq!(ok.expires, 0);
    r.register(now, req(&a, "c1", 2, vec![c("sip:a@h1")], Some(300), 1))
        .unwrap();
    drain(&mut r);
    let ok = r
        .register(now + secs(100), req(&a, "c9", 1, vec![], None, 7))
        .unwrap();
    assert_eq!(ok.bindings.len(), 1);
    assert_eq!(ok.bindings[0].expires, 200);
    assert_eq!(ok.expires, 200);
    assert!(drain(&mut r).is_empty(), "a query changes nothing");
    assert_eq!(r.lookup_flow(&a, Target::Contact("sip:a@h1")), Some(&1));
}

// ---- step 7: expiry --------------------------------------------------------------------------

#[test]
fn rfc3261_10_3_step_7_expires_param_then_header_then_default() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    let ok = r
        .register(
            now,
            req(
                &a,
                "c1",
                1,
                vec![c_exp("sip:a@h1", 120), c("sip:a@h2")],
                Some(300),
                1,
            ),
        )
        .unwrap();
    let exp: Vec<u32> = ok.bindings.iter().map(|b| b.expires).collect();
    assert_eq!(exp, [120, 300]);
    assert_eq!(ok.expires, 120);
    let ok = r
        .register(now, req(&a, "c1", 2, vec![c("sip:a@h3")], None, 1))
        .unwrap();
    assert_eq!(ok.expires, RegistrarConfig::default().default_expires);
}

#[test]
fn rfc3261_10_3_step_7_interval_too_brief_is_423_with_min_expires() {
    let mut r = registrar();
    let err = r
        .register(
            Instant::now(),
            req(&alice(), "c1", 1, vec![c("sip:a@h1")], Some(59), 1),
        )
        .unwrap_err();
    assert_eq!(err, RegisterError::IntervalTooBrief { min_expires: 60 });
    assert_eq!(err.status_code(), 423);
    assert_eq!(err.reason_phrase(), "Interval Too Brief");
    assert_eq!(r.binding_count(), 0);
}

#[test]
fn rfc3261_10_3_step_7_423_only_below_one_hour() {
    let mut r = Registrar::<Flow>::new(RegistrarConfig {
        min_expires: 7200,
        max_expires: 10_000,
        default_expires: 7200,
        max_bindings_per_aor: 8,
    })
    .unwrap();
    let now = Instant::now();
    let a = alice();
    let ok = r
        .register(now, req(&a, "c1", 1, vec![c("sip:a@h1")], Some(5000), 1))
        .unwrap();
    assert_eq!(ok.expires, 7200, "raised to the minimum instead of 423");
    let err = r
        .register(now, req(&a, "c1", 2, vec![c("sip:a@h1")], Some(100), 1))
        .unwrap_err();
    assert_eq!(err, RegisterError::IntervalTooBrief { min_expires: 7200 });
}

#[test]
fn rfc3261_10_3_step_7_expiry_above_max_is_clamped() {
    let mut r = registrar();
    let ok = r
        .register(
            Instant::now(),
            req(&alice(), "c1", 1, vec![c("sip:a@h1")], Some(86_400), 1),
        )
        .unwrap();
    assert_eq!(ok.expires, 3600);
    assert_eq!(ok.bindings[0].expires, 3600);
}

#[test]
fn rfc3261_10_3_step_7_expires_zero_removes_that_binding() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(
        now,
        req(&a, "c1", 1, vec![c("sip:a@h1"), c("sip:a@h2")], None, 1),
    )
    .unwrap();
    drain(&mut r);
    let ok = r
        .register(now, req(&a, "c1", 2, vec![c_exp("sip:a@h1", 0)], None, 1))
        .unwrap();
    assert_eq!(ok.bindings.len(), 1);
    assert!(ok.bindings[0].contact.contains("h2"));
    assert_eq!(ok.expires, 0);
    let events = drain(&mut r);
    assert_eq!(removed_reasons(&events), [RemovalReason::Unregistered]);
    assert_eq!(count(&events, |e| matches!(e, Event::AorOffline { .. })), 0);

    r.register(now, req(&a, "c1", 3, vec![c("sip:a@h2")], Some(0), 1))
        .unwrap();
    let events = drain(&mut r);
    assert_eq!(removed_reasons(&events), [RemovalReason::Unregistered]);
    assert_eq!(events.last(), Some(&Event::AorOffline { aor: a }));
    assert_eq!(r.aor_count(), 0);
}

#[test]
fn rfc3261_10_3_step_7_expires_zero_for_an_unknown_contact_is_a_no_op() {
    let mut r = registrar();
    let ok = r
        .register(
            Instant::now(),
            req(&alice(), "c1", 1, vec![c("sip:a@h1")], Some(0), 1),
        )
        .unwrap();
    assert!(ok.bindings.is_empty());
    assert!(drain(&mut r).is_empty());
}

// ---- step 7: Call-ID / CSeq ----------------------------------------------------------------

#[test]
fn rfc3261_10_3_step_7_cseq_older_is_rejected() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "c1", 10, vec![c("sip:a@h1")], Some(300), 1))
        .unwrap();
    drain(&mut r);
    for cseq in [9, 10] {
        let err = r
            .register(now, req(&a, "c1", cseq, vec![c("sip:a@h1")], Some(0), 1))
            .unwrap_err();
        assert_eq!(err, RegisterError::OutOfOrder { cseq, stored: 10 });
        assert_eq!(err.status_code(), 500);
    }
    assert!(drain(&mut r).is_empty());
    let b = r.bindings(&a).next().unwrap();
    assert_eq!((b.cseq(), b.remaining_secs(now)), (10, 300));
}

#[test]
fn rfc3261_10_3_step_7_higher_cseq_refreshes_in_place() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "c1", 1, vec![c("sip:a@h1")], Some(300), 1))
        .unwrap();
    let id = r.bindings(&a).next().unwrap().id();
    drain(&mut r);
    let later = now + secs(200);
    let ok = r
        .register(later, req(&a, "c1", 2, vec![c("sip:a@h1")], Some(300), 1))
        .unwrap();
    assert_eq!(ok.bindings[0].binding, id);
    assert_eq!(ok.bindings[0].expires, 300);
    let events = drain(&mut r);
    assert!(matches!(
        events.as_slice(),
        [Event::EndpointRefreshed { endpoint, flow: 1, moved: false, .. }] if endpoint.binding == id
    ));
    assert_eq!(r.binding_count(), 1);
}

#[test]
fn rfc3261_10_3_step_7_new_call_id_replaces_the_binding() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "boot1", 50, vec![c("sip:a@h1")], None, 1))
        .unwrap();
    let old = r.bindings(&a).next().unwrap().id();
    drain(&mut r);
    // A lower CSeq is fine under a new Call-ID: the client restarted.
    let ok = r
        .register(now, req(&a, "boot2", 1, vec![c("sip:a@h1")], None, 2))
        .unwrap();
    assert_eq!(ok.bindings.len(), 1);
    assert_ne!(ok.bindings[0].binding, old);
    let events = drain(&mut r);
    assert!(matches!(
        events.as_slice(),
        [
            Event::EndpointRegistered { flow: 2, .. },
            Event::EndpointRemoved { reason: RemovalReason::Replaced, flow: 1, endpoint, .. },
        ] if endpoint.binding == old
    ));
    assert_eq!(r.lookup_flow(&a, Target::Contact("sip:a@h1")), Some(&2));
}

#[test]
fn rfc3261_10_3_step_7_update_is_atomic() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "c1", 1, vec![c("sip:a@h1")], Some(300), 1))
        .unwrap();
    drain(&mut r);
    let err = r
        .register(
            now,
            req(
                &a,
                "c1",
                2,
                vec![c_exp("sip:a@h1", 0), c("sip:a@h2"), c_exp("sip:a@h3", 5)],
                Some(600),
                1,
            ),
        )
        .unwrap_err();
    assert_eq!(err, RegisterError::IntervalTooBrief { min_expires: 60 });
    assert!(drain(&mut r).is_empty());
    let uris: Vec<&str> = r.bindings(&a).map(Binding::contact).collect();
    assert_eq!(uris, ["sip:a@h1"]);
    assert_eq!(r.bindings(&a).next().unwrap().cseq(), 1);
}

#[test]
fn rfc3261_10_3_step_7_contact_named_twice_last_one_wins() {
    let mut r = registrar();
    let ok = r
        .register(
            Instant::now(),
            req(
                &alice(),
                "c1",
                1,
                vec![c_exp("sip:a@h1", 100), c_exp("SIP:a@H1", 200)],
                None,
                1,
            ),
        )
        .unwrap();
    assert_eq!(ok.bindings.len(), 1);
    assert_eq!(ok.bindings[0].expires, 200);
}

#[test]
fn rfc3261_10_3_step_7_runtime_supplied_key_is_used() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    let keyed = |uri: &str, cseq| {
        req(
            &a,
            "c1",
            cseq,
            vec![Contact::Binding(ContactBinding {
                key: Some("same".to_owned()),
                ..ContactBinding::new(uri)
            })],
            None,
            1,
        )
    };
    r.register(now, keyed("sip:a@h1;x=1", 1)).unwrap();
    r.register(now, keyed("sip:a@h1;y=2", 2)).unwrap();
    let uris: Vec<&str> = r.bindings(&a).map(Binding::contact).collect();
    assert_eq!(uris, ["sip:a@h1;y=2"]);
}

// ---- step 8 --------------------------------------------------------------------------------

#[test]
fn rfc3261_10_3_step_8_response_lists_all_bindings() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "pc", 1, vec![c("sip:a@pc")], Some(3600), 1))
        .unwrap();
    let ok = r
        .register(
            now + secs(600),
            req(&a, "phone", 1, vec![c("sip:a@phone")], Some(120), 2),
        )
        .unwrap();
    let parts = ok.response_parts();
    assert_eq!(
        parts.contacts,
        ["<sip:a@pc>;expires=3000", "<sip:a@phone>;expires=120"]
    );
    assert_eq!(parts.expires, 120);
}

#[test]
fn sipe_register_gets_default_expiry_and_its_contact_echoed() {
    let mut r = registrar();
    let a = alice();
    let params = ";methods=\"INVITE, MESSAGE, BENOTIFY\";proxy=replace;+sip.instance=\"<urn:uuid:085e0bd8>\"";
    let mut rq = req(
        &a,
        "sipe-call",
        1,
        vec![Contact::Binding(ContactBinding {
            params: params.to_owned(),
            instance: Some("<urn:uuid:085e0bd8>".to_owned()),
            ..ContactBinding::new("sip:127.0.0.1:34404;transport=tcp;ms-opaque=d3470f2e1d")
        })],
        None,
        1,
    );
    rq.epid = Some("b34afb6ebb23".to_owned());
    let ok = r.register(Instant::now(), rq).unwrap();
    assert_eq!(ok.expires, 600);
    assert_eq!(
        ok.response_parts().contacts,
        [format!(
            "<sip:127.0.0.1:34404;transport=tcp;ms-opaque=d3470f2e1d>{params};expires=600"
        )]
    );
    let b = r.bindings(&a).next().unwrap();
    assert_eq!(b.epid(), Some("b34afb6ebb23"));
    assert_eq!(b.user_agent(), Some("test"));
    assert_eq!(b.source(), "127.0.0.1:40001/tcp");
    let events = drain(&mut r);
    assert!(matches!(
        events.as_slice(),
        [Event::AorOnline { .. }, Event::EndpointRegistered { endpoint, flow: 1, .. }]
            if endpoint.epid.as_deref() == Some("b34afb6ebb23")
                && endpoint.instance.as_deref() == Some("<urn:uuid:085e0bd8>")
    ));
}

// ---- binding limit -------------------------------------------------------------------------

#[test]
fn lync_max_endpoints_per_user_is_enforced_with_403() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    for i in 0..8 {
        r.register(
            now,
            req(
                &a,
                &format!("c{i}"),
                1,
                vec![c(&format!("sip:a@h{i}"))],
                None,
                i,
            ),
        )
        .unwrap();
    }
    drain(&mut r);
    let err = r
        .register(now, req(&a, "c8", 1, vec![c("sip:a@h8")], None, 8))
        .unwrap_err();
    assert_eq!(err, RegisterError::TooManyBindings { limit: 8 });
    assert_eq!((err.status_code(), err.reason_phrase()), (403, "Forbidden"));
    assert!(err.to_string().contains("too many endpoints"));
    assert!(drain(&mut r).is_empty());
    // Refreshing at the limit is fine, and so is swapping one binding for another in one request.
    r.register(now, req(&a, "c0", 2, vec![c("sip:a@h0")], None, 0))
        .unwrap();
    let ok = r
        .register(
            now,
            req(
                &a,
                "c1",
                2,
                vec![c_exp("sip:a@h1", 0), c("sip:a@h8")],
                None,
                1,
            ),
        )
        .unwrap();
    assert_eq!(ok.bindings.len(), 8);
    assert_eq!(r.binding_count(), 8);
}

#[test]
fn lync_binding_limit_counts_the_whole_request() {
    let mut r = Registrar::<Flow>::new(RegistrarConfig {
        max_bindings_per_aor: 2,
        ..RegistrarConfig::default()
    })
    .unwrap();
    let err = r
        .register(
            Instant::now(),
            req(
                &alice(),
                "c1",
                1,
                vec![c("sip:a@h1"), c("sip:a@h2"), c("sip:a@h3")],
                None,
                1,
            ),
        )
        .unwrap_err();
    assert_eq!(err, RegisterError::TooManyBindings { limit: 2 });
    assert_eq!(r.binding_count(), 0);
}

// ---- RFC 5626 instance keys ----------------------------------------------------------------

#[test]
fn rfc5626_6_instance_id_replaces_the_contact_uri() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    let inst = "<urn:uuid:0001>";
    r.register(
        now,
        req(
            &a,
            "c1",
            1,
            vec![c_inst("sip:10.0.0.1:5000", inst, None)],
            None,
            1,
        ),
    )
    .unwrap();
    let id = r.bindings(&a).next().unwrap().id();
    drain(&mut r);
    // Same device, new port after reconnecting: same binding, new URI and flow.
    let ok = r
        .register(
            now,
            req(
                &a,
                "c1",
                2,
                vec![c_inst("sip:10.0.0.1:6000", "<URN:UUID:0001>", None)],
                None,
                2,
            ),
        )
        .unwrap();
    assert_eq!(ok.bindings.len(), 1);
    assert_eq!(ok.bindings[0].binding, id);
    assert_eq!(ok.bindings[0].contact, "<sip:10.0.0.1:6000>");
    assert_eq!(r.lookup_flow(&a, Target::Instance(inst)), Some(&2));
    assert!(matches!(
        drain(&mut r).as_slice(),
        [Event::EndpointRefreshed {
            flow: 2,
            moved: true,
            ..
        }]
    ));
}

#[test]
fn rfc5626_6_reg_id_keeps_separate_flows_of_one_instance() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    let inst = "<urn:uuid:0001>";
    r.register(
        now,
        req(&a, "c1", 1, vec![c_inst("sip:x1", inst, Some(1))], None, 1),
    )
    .unwrap();
    r.register(
        now,
        req(&a, "c2", 1, vec![c_inst("sip:x2", inst, Some(2))], None, 2),
    )
    .unwrap();
    assert_eq!(r.binding_count(), 2);
    r.register(
        now,
        req(&a, "c3", 1, vec![c_inst("sip:x3", inst, Some(1))], None, 3),
    )
    .unwrap();
    let uris: Vec<&str> = r.bindings(&a).map(Binding::contact).collect();
    assert_eq!(uris, ["sip:x3", "sip:x2"]);
    assert_eq!(r.bindings(&a).next().unwrap().reg_id(), Some(1));
}

// ---- expiry --------------------------------------------------------------------------------

#[test]
fn expiry_with_simulated_time_emits_removed_and_offline() {
    let mut r = registrar();
    let t0 = Instant::now();
    let a = alice();
    let b = aor("bob@example.test");
    r.register(t0, req(&a, "c1", 1, vec![c("sip:a@h1")], Some(100), 1))
        .unwrap();
    r.register(t0, req(&a, "c2", 1, vec![c("sip:a@h2")], Some(200), 2))
        .unwrap();
    r.register(t0, req(&b, "c3", 1, vec![c("sip:b@h1")], Some(150), 3))
        .unwrap();
    drain(&mut r);
    assert_eq!(r.poll_timeout(), Some(t0 + secs(100)));

    r.handle_timeout(t0 + secs(99));
    assert!(drain(&mut r).is_empty());

    r.handle_timeout(t0 + secs(100));
    let events = drain(&mut r);
    assert_eq!(removed_reasons(&events), [RemovalReason::Expired]);
    assert_eq!(count(&events, |e| matches!(e, Event::AorOffline { .. })), 0);
    assert_eq!(r.poll_timeout(), Some(t0 + secs(150)));

    r.handle_timeout(t0 + secs(1000));
    let events = drain(&mut r);
    assert_eq!(
        events,
        [
            Event::EndpointRemoved {
                aor: b.clone(),
                endpoint: events_endpoint(&events, 0),
                flow: 3,
                reason: RemovalReason::Expired
            },
            Event::AorOffline { aor: b },
            Event::EndpointRemoved {
                aor: a.clone(),
                endpoint: events_endpoint(&events, 2),
                flow: 2,
                reason: RemovalReason::Expired
            },
            Event::AorOffline { aor: a },
        ]
    );
    assert_eq!(r.poll_timeout(), None);
    assert_eq!((r.aor_count(), r.binding_count()), (0, 0));
}

fn events_endpoint(events: &[Event<Flow>], i: usize) -> Endpoint {
    match &events[i] {
        Event::EndpointRemoved { endpoint, .. } => endpoint.clone(),
        other => panic!("not a removal: {other:?}"),
    }
}

#[test]
fn refresh_moves_expiry_and_the_old_timer_is_ignored() {
    let mut r = registrar();
    let t0 = Instant::now();
    let a = alice();
    r.register(t0, req(&a, "c1", 1, vec![c("sip:a@h1")], Some(100), 1))
        .unwrap();
    r.register(
        t0 + secs(90),
        req(&a, "c1", 2, vec![c("sip:a@h1")], Some(100), 1),
    )
    .unwrap();
    drain(&mut r);
    // The stale entry may wake the runtime early; nothing happens.
    assert_eq!(r.poll_timeout(), Some(t0 + secs(100)));
    r.handle_timeout(t0 + secs(100));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), Some(t0 + secs(190)));
    r.handle_timeout(t0 + secs(190));
    assert_eq!(removed_reasons(&drain(&mut r)), [RemovalReason::Expired]);
}

#[test]
fn late_refresh_after_expiry_registers_anew() {
    let mut r = registrar();
    let t0 = Instant::now();
    let a = alice();
    r.register(t0, req(&a, "c1", 1, vec![c("sip:a@h1")], Some(100), 1))
        .unwrap();
    drain(&mut r);
    // The runtime missed the timer; the REGISTER must not revive the dead binding.
    r.register(
        t0 + secs(150),
        req(&a, "c1", 2, vec![c("sip:a@h1")], Some(100), 1),
    )
    .unwrap();
    let events = drain(&mut r);
    assert!(matches!(
        events.as_slice(),
        [
            Event::EndpointRemoved {
                reason: RemovalReason::Expired,
                ..
            },
            Event::AorOffline { .. },
            Event::AorOnline { .. },
            Event::EndpointRegistered { .. },
        ]
    ));
}

#[test]
fn timer_heap_stays_bounded_under_refreshes() {
    let mut r = registrar();
    let t0 = Instant::now();
    let a = alice();
    for cseq in 1..5000u32 {
        r.register(t0, req(&a, "c1", cseq, vec![c("sip:a@h1")], Some(3600), 1))
            .unwrap();
    }
    assert!(r.timers.len() <= 2 + TIMER_SLACK + 1);
    r.handle_timeout(t0 + secs(3600));
    assert_eq!(removed_reasons(&drain(&mut r)).len(), 1);
}

// ---- flows ---------------------------------------------------------------------------------

#[test]
fn rfc5626_flow_closed_removes_bindings_on_that_flow() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    let b = aor("bob@example.test");
    r.register(now, req(&a, "c1", 1, vec![c("sip:a@h1")], None, 1))
        .unwrap();
    r.register(now, req(&a, "c2", 1, vec![c("sip:a@h2")], None, 2))
        .unwrap();
    r.register(now, req(&b, "c3", 1, vec![c("sip:b@h1")], None, 2))
        .unwrap();
    drain(&mut r);

    r.flow_closed(&1);
    let events = drain(&mut r);
    assert_eq!(removed_reasons(&events), [RemovalReason::FlowFailed]);
    assert_eq!(count(&events, |e| matches!(e, Event::AorOffline { .. })), 0);
    assert_eq!(r.lookup_flow(&a, Target::Contact("sip:a@h1")), None);
    assert_eq!(r.lookup_flow(&a, Target::Contact("sip:a@h2")), Some(&2));

    r.flow_closed(&2);
    let events = drain(&mut r);
    assert_eq!(
        removed_reasons(&events),
        [RemovalReason::FlowFailed, RemovalReason::FlowFailed]
    );
    assert_eq!(count(&events, |e| matches!(e, Event::AorOffline { .. })), 2);
    assert_eq!((r.aor_count(), r.binding_count()), (0, 0));

    r.flow_closed(&99);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn refresh_over_a_new_flow_moves_the_flow_index() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    r.register(now, req(&a, "c1", 1, vec![c("sip:a@h1")], None, 1))
        .unwrap();
    r.register(now, req(&a, "c1", 2, vec![c("sip:a@h1")], None, 2))
        .unwrap();
    drain(&mut r);
    r.flow_closed(&1);
    assert!(drain(&mut r).is_empty());
    r.flow_closed(&2);
    assert_eq!(removed_reasons(&drain(&mut r)), [RemovalReason::FlowFailed]);
}

// ---- lookups, counts, config ---------------------------------------------------------------

#[test]
fn lookups_by_instance_epid_contact_and_id() {
    let mut r = registrar();
    let now = Instant::now();
    let a = alice();
    let mut rq = req(
        &a,
        "c1",
        1,
        vec![c_inst("sip:10.0.0.1:5000", "<urn:uuid:AB>", None)],
        None,
        4,
    );
    rq.epid = Some("B34AFB".to_owned());
    r.register(now, rq).unwrap();
    let id = r.bindings(&a).next().unwrap().id();
    assert_eq!(
        r.lookup_flow(&a, Target::Instance("<urn:uuid:ab>")),
        Some(&4)
    );
    assert_eq!(r.lookup_flow(&a, Target::Epid("b34afb")), Some(&4));
    assert_eq!(
        r.lookup_flow(&a, Target::Contact("<SIP:10.0.0.1:5000>")),
        Some(&4)
    );
    assert_eq!(r.lookup_flow(&a, Target::Binding(id)), Some(&4));
    assert_eq!(r.lookup_flow(&a, Target::Epid("other")), None);
    assert_eq!(
        r.lookup_flow(&aor("bob@example.test"), Target::Binding(id)),
        None
    );
    assert_eq!(r.aors().collect::<Vec<_>>(), [&a]);
}

#[test]
fn counts_for_metrics() {
    let mut r = registrar();
    let now = Instant::now();
    r.register(
        now,
        req(&alice(), "c1", 1, vec![c("sip:a@1"), c("sip:a@2")], None, 1),
    )
    .unwrap();
    r.register(
        now,
        req(&aor("bob@x"), "c2", 1, vec![c("sip:b@1")], None, 2),
    )
    .unwrap();
    assert_eq!((r.aor_count(), r.binding_count()), (2, 3));
}

#[test]
fn config_errors_are_reported_at_start() {
    let d = RegistrarConfig::default();
    let bad = |c: RegistrarConfig| Registrar::<Flow>::new(c).unwrap_err();
    assert_eq!(
        bad(RegistrarConfig {
            max_expires: 0,
            ..d
        }),
        ConfigError::MaxExpiresZero
    );
    assert!(matches!(
        bad(RegistrarConfig {
            min_expires: 4000,
            ..d
        }),
        ConfigError::MinAboveMax { .. }
    ));
    assert!(matches!(
        bad(RegistrarConfig {
            default_expires: 10,
            ..d
        }),
        ConfigError::DefaultOutOfRange { .. }
    ));
    assert_eq!(
        bad(RegistrarConfig {
            max_bindings_per_aor: 0,
            ..d
        }),
        ConfigError::NoBindingsAllowed
    );
    assert_eq!(r_config_default(), d);
}

fn r_config_default() -> RegistrarConfig {
    registrar().config().clone()
}

// ---- property ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Register {
        aor: u8,
        call: u8,
        cseq: u32,
        wildcard: bool,
        contacts: Vec<(u8, Option<u32>, bool)>,
        expires: Option<u32>,
        flow: u8,
    },
    Advance(u64),
    FlowClosed(u8),
}

fn expiry() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(30)),
        Just(Some(60)),
        Just(Some(300)),
        Just(Some(5000)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            0u8..3,
            0u8..3,
            0u32..6,
            prop::bool::weighted(0.1),
            prop::collection::vec((0u8..12, expiry(), any::<bool>()), 0..5),
            expiry(),
            0u8..4,
        )
            .prop_map(|(aor, call, cseq, wildcard, contacts, expires, flow)| Op::Register {
                aor,
                call,
                cseq,
                wildcard,
                contacts,
                expires,
                flow,
            }),
        2 => (0u64..700).prop_map(Op::Advance),
        1 => (0u8..4).prop_map(Op::FlowClosed),
    ]
}

/// Checks the event stream against a running count of bindings per AOR, updating the counts.
fn check_events(events: &[Event<Flow>], counts: &mut HashMap<Aor, usize>) {
    for (i, e) in events.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| &events[p]);
        let next = events.get(i + 1);
        match e {
            Event::AorOnline { aor } => {
                assert_eq!(
                    counts.get(aor).copied().unwrap_or(0),
                    0,
                    "online while online"
                );
                assert!(matches!(next, Some(Event::EndpointRegistered { aor: n, .. }) if n == aor));
            }
            Event::EndpointRegistered { aor, .. } => {
                let n = counts.entry(aor.clone()).or_default();
                if *n == 0 {
                    assert!(matches!(prev, Some(Event::AorOnline { aor: p }) if p == aor));
                }
                *n += 1;
            }
            Event::EndpointRemoved { aor, .. } => {
                let n = counts.get_mut(aor).expect("removal of an unknown AOR");
                *n -= 1;
                if *n == 0 {
                    assert!(
                        matches!(next, Some(Event::AorOffline { aor: o }) if o == aor),
                        "count hit zero without AorOffline: {events:?}"
                    );
                }
            }
            Event::EndpointRefreshed { aor, .. } => {
                assert!(
                    counts.get(aor).copied().unwrap_or(0) > 0,
                    "refresh of nothing"
                );
            }
            Event::AorOffline { aor } => {
                assert_eq!(
                    counts.get(aor).copied(),
                    Some(0),
                    "offline with bindings left"
                );
                assert!(matches!(prev, Some(Event::EndpointRemoved { aor: p, .. }) if p == aor));
                counts.remove(aor);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn registrar_invariants_hold(ops in prop::collection::vec(op(), 1..60)) {
        let config = RegistrarConfig { max_bindings_per_aor: 3, ..RegistrarConfig::default() };
        let limit = config.max_bindings_per_aor;
        let mut r = Registrar::<Flow>::new(config).unwrap();
        let aors = [aor("a@x"), aor("b@x"), aor("c@x")];
        let mut now = Instant::now();
        let mut counts: HashMap<Aor, usize> = HashMap::new();
        for op in ops {
            match op {
                Op::Register { aor, call, cseq, wildcard, contacts, expires, flow } => {
                    let contacts = if wildcard {
                        vec![Contact::Wildcard]
                    } else {
                        contacts
                            .into_iter()
                            .map(|(k, exp, inst)| {
                                let mut cb = ContactBinding::new(format!("sip:u@h{k}"));
                                cb.expires = exp;
                                if inst {
                                    cb.instance = Some(format!("<urn:uuid:{}>", k % 4));
                                }
                                Contact::Binding(cb)
                            })
                            .collect()
                    };
                    let rq = req(&aors[usize::from(aor)], &format!("call{call}"), cseq,
                        contacts, expires, u32::from(flow));
                    let before = r.binding_count();
                    if r.register(now, rq).is_err() {
                        // Atomic: a refused REGISTER changes nothing. (Expiry already ran at
                        // `now` in `Advance`, so the register's own expiry pass has no work.)
                        prop_assert_eq!(r.binding_count(), before);
                        prop_assert!(r.poll_event().is_none());
                    }
                }
                Op::Advance(s) => {
                    now += secs(s);
                    r.handle_timeout(now);
                }
                Op::FlowClosed(f) => r.flow_closed(&u32::from(f)),
            }
            let events = drain(&mut r);
            check_events(&events, &mut counts);
            let mut total = 0;
            for a in &aors {
                let n = r.bindings(a).count();
                total += n;
                prop_assert!(n <= limit, "{a} has {n} bindings");
                prop_assert_eq!(counts.get(a).copied().unwrap_or(0), n);
                for b in r.bindings(a) {
                    prop_assert!(b.expires_at() > now, "binding in the past");
                    prop_assert_eq!(r.lookup_flow(a, Target::Binding(b.id())), Some(b.flow()));
                }
            }
            prop_assert_eq!(total, r.binding_count());
            prop_assert_eq!(counts.len(), r.aor_count());
        }
    }
}
