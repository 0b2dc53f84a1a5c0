//! RFC 3261 §10: the registrar, over UDP, as a Lync client (SIPE) signs in.
//!
//! One server for the module; every test registers its own user, so bindings never mix.

use std::sync::{Arc, Mutex, Weak};

use herald_sip::HeaderName;

use crate::support::sip::{answer, contact_expiries, header, headers, pick_challenge};
use crate::support::{
    Account, Req, Server, Setup, SipClient, Ua, assert_status, register_with_digest, shared, show,
};

const DOMAIN: &str = "registrar.test";
const USERS: &[&str] = &[
    "ok", "refresh", "query", "star", "star400", "brief", "clamp", "max", "md5", "default", "zero",
    "order", "param", "owner", "victim",
];

fn server() -> Arc<Server> {
    static SLOT: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    shared(&SLOT, || {
        let mut setup = Setup::new(DOMAIN)
            .tcp(&[])
            .tls(&[])
            .sip("min_expires", "60")
            .sip("max_expires", "3600")
            .sip("default_expires", "600")
            .sip("max_bindings", "8");
        for u in USERS {
            setup = setup.user(u, &format!("pw-{u}"));
        }
        setup.start()
    })
}

fn ua(server: &Server, user: &str) -> Ua {
    assert!(USERS.contains(&user), "{user} is not created by server()");
    Ua::new(
        SipClient::udp(server.udp()),
        Account::new(user, &format!("pw-{user}"), DOMAIN),
    )
}

/// Step 8: the 200 OK carries every binding with its `expires`, an `Expires` header, and the
/// headers SIPE needs to start presence: ONE `Allow-Events` without spaces, and `Supported`
/// tokens as SEPARATE header fields.
#[test]
fn rfc3261_10_3_step_8_ok_lists_bindings_with_expires() {
    let s = server();
    let client = SipClient::udp(s.udp());
    let contact = client.contact("ok");
    let (r, ua) = register_with_digest(client, &Account::new("ok", "pw-ok", DOMAIN), &contact, 300);
    assert_status(&r, 200);

    // The client answered the first challenge, which must be SHA-256 (RFC 8760 §2.3).
    let challenge = ua.last_challenge.as_ref().expect("a 401 came first");
    let first = pick_challenge(challenge, "WWW-Authenticate", None);
    assert!(
        first.contains("algorithm=SHA-256"),
        "first challenge is not SHA-256: {first}"
    );

    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("300"));
    let contacts = contact_expiries(&r);
    assert_eq!(contacts.len(), 1, "{}", show(&r));
    assert_eq!(contacts[0].1, Some(300), "{}", show(&r));
    assert!(
        contacts[0].0.contains(&ua.client.local.port().to_string()),
        "{}",
        show(&r)
    );
    assert_eq!(
        headers(&r, "Allow-Events"),
        ["vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-self,presence"],
        "exactly one Allow-Events field, no spaces:\n{}",
        show(&r)
    );
    assert_eq!(
        headers(&r, "Supported"),
        ["msrtc-event-categories", "adhoclist"],
        "two separate Supported fields:\n{}",
        show(&r)
    );
    // §8.2.6.2: the To of a final response carries a tag.
    assert!(r.to().tag().is_some(), "{}", show(&r));
}

/// Without any expiry in the request the registrar grants `default_expires` (§10.3 step 7).
#[test]
fn rfc3261_10_3_step_7_no_expiry_gets_default() {
    let s = server();
    let mut ua = ua(&s, "default");
    let contact = ua.client.contact("default");
    let r = ua.register(&[&contact], None);
    assert_status(&r, 200);
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("600"));
    assert_eq!(contact_expiries(&r)[0].1, Some(600), "{}", show(&r));
}

/// §10.2.4: a refresh with the same Call-ID and a higher CSeq updates the binding in place.
#[test]
fn rfc3261_10_2_4_refresh_updates_the_binding() {
    let s = server();
    let mut ua = ua(&s, "refresh");
    let contact = ua.client.contact("refresh");
    assert_status(&ua.register(&[&contact], Some(120)), 200);
    let r = ua.register(&[&contact], Some(900));
    assert_status(&r, 200);
    let contacts = contact_expiries(&r);
    assert_eq!(
        contacts.len(),
        1,
        "a refresh must not add a binding:\n{}",
        show(&r)
    );
    assert_eq!(contacts[0].1, Some(900), "{}", show(&r));
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("900"));
}

/// §10.2.3: a REGISTER without Contact is a query; the answer lists every binding.
#[test]
fn rfc3261_10_2_3_query_without_contact_lists_all_bindings() {
    let s = server();
    let mut ua = ua(&s, "query");
    let a = "<sip:query@192.0.2.1:5060>";
    let b = "<sip:query@192.0.2.2:5062;transport=tcp>";
    assert_status(&ua.register(&[a], Some(300)), 200);
    let r = ua.register(&[b], Some(600));
    assert_status(&r, 200);
    assert_eq!(contact_expiries(&r).len(), 2, "{}", show(&r));

    let q = ua.register(&[], None);
    assert_status(&q, 200);
    let mut listed = contact_expiries(&q);
    listed.sort();
    assert_eq!(listed.len(), 2, "{}", show(&q));
    assert!(listed[0].0.contains("192.0.2.1:5060"), "{}", show(&q));
    assert!(listed[1].0.contains("192.0.2.2:5062"), "{}", show(&q));
    for (uri, expires) in &listed {
        let e = expires.unwrap_or_else(|| panic!("{uri} without expires:\n{}", show(&q)));
        assert!(e > 0 && e <= 600, "{uri}: expires={e}");
    }
    // A query changes nothing: a second one lists the same two.
    assert_eq!(contact_expiries(&ua.register(&[], None)).len(), 2);
}

/// §10.2.2: `Contact: *` with `Expires: 0` removes every binding of the AOR.
#[test]
fn rfc3261_10_2_2_wildcard_with_expires_zero_removes_all() {
    let s = server();
    let mut ua = ua(&s, "star");
    assert_status(&ua.register(&["<sip:star@192.0.2.1>"], Some(300)), 200);
    assert_status(&ua.register(&["<sip:star@192.0.2.2>"], Some(300)), 200);
    let r = ua.register(&["*"], Some(0));
    assert_status(&r, 200);
    assert!(contact_expiries(&r).is_empty(), "{}", show(&r));
    let q = ua.register(&[], None);
    assert_status(&q, 200);
    assert!(contact_expiries(&q).is_empty(), "{}", show(&q));
}

/// §10.3 step 6: `*` is only valid with `Expires: 0`; otherwise 400 and nothing changes.
#[test]
fn rfc3261_10_3_step_6_wildcard_without_expires_zero_is_400() {
    let s = server();
    let mut ua = ua(&s, "star400");
    assert_status(&ua.register(&["<sip:star400@192.0.2.9>"], Some(300)), 200);
    assert_status(&ua.register(&["*"], None), 400);
    assert_status(&ua.register(&["*"], Some(300)), 400);
    let q = ua.register(&[], None);
    assert_eq!(contact_expiries(&q).len(), 1, "{}", show(&q));
}

/// §10.3 step 7: a non-zero expiry under `min_expires` gets 423 with `Min-Expires`.
#[test]
fn rfc3261_10_3_step_7_too_brief_gets_423_with_min_expires() {
    let s = server();
    let mut ua = ua(&s, "brief");
    let r = ua.register(&["<sip:brief@192.0.2.3>"], Some(30));
    assert_status(&r, 423);
    assert_eq!(
        header(&r, HeaderName::MinExpires).as_deref(),
        Some("60"),
        "{}",
        show(&r)
    );
    // The same through the Contact's own expires parameter.
    let r = ua.register(&["<sip:brief@192.0.2.3>;expires=10"], None);
    assert_status(&r, 423);
    assert_eq!(header(&r, HeaderName::MinExpires).as_deref(), Some("60"));
    assert!(contact_expiries(&ua.register(&[], None)).is_empty());
}

/// §10.3 step 7: a longer expiry than `max_expires` is shortened to it.
#[test]
fn rfc3261_10_3_step_7_too_long_is_clamped_to_max() {
    let s = server();
    let mut ua = ua(&s, "clamp");
    let r = ua.register(&["<sip:clamp@192.0.2.4>"], Some(100_000));
    assert_status(&r, 200);
    assert_eq!(header(&r, HeaderName::Expires).as_deref(), Some("3600"));
    assert_eq!(contact_expiries(&r)[0].1, Some(3600), "{}", show(&r));
}

/// `max_bindings = 8` (Lync's endpoints per user): the 9th binding is refused with 403 and the
/// 8 stay.
#[test]
fn rfc3261_10_3_step_7_ninth_binding_is_refused_403() {
    let s = server();
    let mut ua = ua(&s, "max");
    for i in 1..=8 {
        let r = ua.register(&[&format!("<sip:max@192.0.2.{i}:5060>")], Some(300));
        assert_status(&r, 200);
        assert_eq!(contact_expiries(&r).len(), i, "{}", show(&r));
    }
    let r = ua.register(&["<sip:max@192.0.2.9:5060>"], Some(300));
    assert_status(&r, 403);
    assert_eq!(contact_expiries(&ua.register(&[], None)).len(), 8);
    // Refreshing one of the 8 is still fine.
    assert_status(&ua.register(&["<sip:max@192.0.2.1:5060>"], Some(600)), 200);
}

/// RFC 8760 §2.4: a client that only knows MD5 answers the MD5 challenge, and is accepted.
#[test]
fn rfc8760_2_4_md5_answer_is_accepted_when_offered() {
    let s = server();
    let mut ua = ua(&s, "md5");
    ua.algorithm = Some("MD5");
    let contact = ua.client.contact("md5");
    let r = ua.register(&[&contact], Some(300));
    assert_status(&r, 200);
    assert_eq!(contact_expiries(&r).len(), 1);
}

/// §10.2.2: `expires=0` on one Contact removes that binding only.
#[test]
fn rfc3261_10_2_2_contact_expires_zero_removes_that_binding() {
    let s = server();
    let mut ua = ua(&s, "zero");
    assert_status(
        &ua.register(&["<sip:zero@192.0.2.1>", "<sip:zero@192.0.2.2>"], Some(300)),
        200,
    );
    let r = ua.register(&["<sip:zero@192.0.2.1>;expires=0"], None);
    assert_status(&r, 200);
    let left = contact_expiries(&r);
    assert_eq!(left.len(), 1, "{}", show(&r));
    assert!(left[0].0.contains("192.0.2.2"), "{}", show(&r));
}

/// §10.2.1.1: a Contact's `expires` parameter takes precedence over the Expires header.
#[test]
fn rfc3261_10_2_1_1_contact_expires_param_overrides_expires_header() {
    let s = server();
    let mut ua = ua(&s, "param");
    let r = ua.register(&["<sip:param@192.0.2.1>;expires=120"], Some(3000));
    assert_status(&r, 200);
    assert_eq!(contact_expiries(&r)[0].1, Some(120), "{}", show(&r));
}

/// §10.3 step 7: a REGISTER with the Call-ID of an existing binding and a CSeq not higher than
/// the stored one is refused (the RFC names no code), and the binding is left as it was.
#[test]
fn rfc3261_10_3_step_7_out_of_order_cseq_is_refused() {
    let s = server();
    let mut ua = ua(&s, "order");
    let r = ua.register(&["<sip:order@192.0.2.1>"], Some(300));
    assert_status(&r, 200);
    let stored_cseq = ua.cseq;
    // Replay the sequence from the start: 1 (401), then 2 = the stored CSeq (with credentials).
    ua.cseq = stored_cseq - 2;
    let late = ua.register(&["<sip:order@192.0.2.1>"], Some(3600));
    assert!(
        late.status() >= 400,
        "an out-of-order REGISTER was accepted:\n{}",
        show(&late)
    );
    ua.cseq = stored_cseq + 10;
    let q = ua.register(&[], None);
    let e = contact_expiries(&q)[0].1.expect("expires");
    assert!(
        e <= 300,
        "the refused REGISTER changed the binding: expires={e}"
    );
}

/// §10.3 step 3: the authenticated user may only change its own bindings; credentials of one
/// user for another user's To get 403.
#[test]
fn rfc3261_10_3_step_3_credentials_of_another_user_are_refused() {
    let s = server();
    let owner = Account::new("owner", "pw-owner", DOMAIN);
    let victim = Account::new("victim", "pw-victim", DOMAIN);
    let mut c = SipClient::udp(s.udp());
    let first = Req::new("REGISTER", &victim.registrar_uri(), &victim.aor())
        .header("Contact", "<sip:attacker@192.0.2.66>")
        .send(&mut c);
    assert_status(&first, 401);
    let challenge = pick_challenge(&first, "WWW-Authenticate", None);
    let auth = answer(
        &challenge,
        &owner,
        &owner.password,
        "REGISTER",
        &owner.registrar_uri(),
        1,
    );
    let r = Req::new("REGISTER", &victim.registrar_uri(), &victim.aor())
        .header("Contact", "<sip:attacker@192.0.2.66>")
        .header("Authorization", &auth)
        .send(&mut c);
    assert_status(&r, 403);
    let mut v = ua(&s, "victim");
    assert!(contact_expiries(&v.register(&[], None)).is_empty());
}
