//! Digest authentication (RFC 8760, RFC 7616, RFC 3261 §22), throttling, and the Via
//! `received`/`rport` stamping of RFC 3261 §18.2.1 and RFC 3581 §4.
//!
//! One server for the module with `auth_failures_before_backoff = 3`. herald throttles per user
//! AND per source address, so every test sends from its own loopback address
//! ([`fresh_loopback`]) and uses its own users: a failure in one test cannot throttle another.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};

use herald_sip::HeaderName;

use crate::support::sip::{answer, header, header_names, headers, pick_challenge};
use crate::support::{
    Account, Req, Server, Setup, SipClient, Ua, assert_status, fresh_loopback, shared, show,
};

const DOMAIN: &str = "digest.test";

fn server() -> Arc<Server> {
    static SLOT: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    shared(&SLOT, || {
        let mut setup = Setup::new(DOMAIN)
            .tls(&[])
            .sip("auth_failures_before_backoff", "3");
        for u in [
            "alice",
            "wrongpw",
            "disabled",
            "replay",
            "forged",
            "throttled",
            "bystander",
            "uri",
            "options",
            "via",
            "viatcp",
            "challenge",
            "aorform",
        ] {
            setup = setup.user(u, &format!("pw-{u}"));
        }
        setup.start()
    })
}

fn account(user: &str) -> Account {
    Account::new(user, &format!("pw-{user}"), DOMAIN)
}

fn client(s: &Server, ip: IpAddr) -> SipClient {
    SipClient::udp_from(ip, s.udp())
}

/// RFC 8760 §2.3: one challenge per algorithm, in the order of preference, SHA-256 first; all
/// with the same realm (the domain) and `qop="auth"`.
#[test]
fn rfc8760_2_3_challenges_list_sha256_before_md5() {
    let s = server();
    let mut ua = Ua::new(client(&s, fresh_loopback()), account("challenge"));
    let r = ua.register_request(&[], None).send(&mut ua.client);
    assert_status(&r, 401);
    let all = headers(&r, "WWW-Authenticate");
    // The NTLM offer for Lync clients comes after the Digest challenges ([MS-SIPAE]).
    assert!(
        all.last().is_some_and(|c| c.starts_with("NTLM ")),
        "{}",
        show(&r)
    );
    let challenges: Vec<_> = all
        .into_iter()
        .filter(|c| !c.starts_with("NTLM "))
        .collect();
    assert_eq!(challenges.len(), 2, "{}", show(&r));
    assert!(
        challenges[0].contains("algorithm=SHA-256"),
        "{challenges:?}"
    );
    assert!(challenges[1].contains("algorithm=MD5"), "{challenges:?}");
    for c in &challenges {
        assert!(c.starts_with("Digest "), "{c}");
        assert!(c.contains(&format!("realm=\"{DOMAIN}\"")), "{c}");
        assert!(c.contains("qop=\"auth\""), "{c}");
        assert!(c.contains("nonce=\""), "{c}");
    }
}

/// RFC 3261 §22.1 / RFC 7616 §5.3: an unknown user is challenged like anyone, then refused with
/// the same 403 a wrong password gets. Nothing in the answers tells the two apart.
#[test]
fn rfc3261_22_1_unknown_user_gets_the_same_403_as_a_wrong_password() {
    let s = server();
    let ip = fresh_loopback();

    let mut unknown = Ua::new(client(&s, ip), Account::new("nobody", "whatever", DOMAIN));
    let first = unknown
        .register_request(&[], None)
        .send(&mut unknown.client);
    assert_status(&first, 401);
    let r_unknown = unknown.register(&["<sip:nobody@192.0.2.1>"], Some(300));
    assert_status(&r_unknown, 403);

    // wrongpw exists: the right password works (from another address, so this success does
    // not clear the failures below).
    let mut right = Ua::new(client(&s, fresh_loopback()), account("wrongpw"));
    assert_status(
        &right.register(&["<sip:wrongpw@192.0.2.1>"], Some(300)),
        200,
    );
    let mut wrong = Ua::new(client(&s, ip), account("wrongpw"));
    let r_wrong =
        wrong.register_with_password(&["<sip:wrongpw@192.0.2.1>"], Some(300), "not-the-password");
    assert_status(&r_wrong, 403);

    assert_eq!(r_unknown.reason(), r_wrong.reason());
    assert_eq!(
        header_names(&r_unknown),
        header_names(&r_wrong),
        "different headers:\n{}\n---\n{}",
        show(&r_unknown),
        show(&r_wrong)
    );
    for name in [
        "Server",
        "Warning",
        "Retry-After",
        "WWW-Authenticate",
        "Content-Length",
    ] {
        assert_eq!(
            headers(&r_unknown, name),
            headers(&r_wrong, name),
            "{name} differs:\n{}\n---\n{}",
            show(&r_unknown),
            show(&r_wrong)
        );
    }
    assert!(headers(&r_wrong, "WWW-Authenticate").is_empty());
}

/// A disabled user (`herald user set --disable`, while the server runs) is refused with the
/// same 403 as a wrong password; `--enable` lets them in again.
#[test]
fn rfc3261_22_1_disabled_user_gets_403() {
    let s = server();
    let ip = fresh_loopback();
    let mut ua = Ua::new(client(&s, ip), account("disabled"));
    assert_status(&ua.register(&["<sip:disabled@192.0.2.1>"], Some(300)), 200);

    s.home()
        .cli(&["user", "set", &format!("disabled@{DOMAIN}"), "--disable"])
        .success();
    crate::support::settle();
    let r = ua.register(&["<sip:disabled@192.0.2.1>"], Some(300));
    assert_status(&r, 403);
    assert!(headers(&r, "WWW-Authenticate").is_empty(), "{}", show(&r));

    s.home()
        .cli(&["user", "set", &format!("disabled@{DOMAIN}"), "--enable"])
        .success();
    crate::support::settle();
    assert_status(&ua.register(&["<sip:disabled@192.0.2.1>"], Some(300)), 200);
}

/// RFC 7616 §3.4 / §5.5: a nonce-count already used with a nonce is a replay: herald answers
/// with a fresh challenge. A higher nc with the same nonce is accepted.
#[test]
fn rfc7616_3_4_replayed_nonce_count_is_rechallenged() {
    let s = server();
    let acc = account("replay");
    let mut ua = Ua::new(client(&s, fresh_loopback()), acc.clone());
    let r = ua.register_request(&[], None).send(&mut ua.client);
    assert_status(&r, 401);
    let challenge = pick_challenge(&r, "WWW-Authenticate", None);
    let uri = acc.registrar_uri();
    let auth1 = answer(&challenge, &acc, &acc.password, "REGISTER", &uri, 1);

    let ok = ua
        .register_request(&["<sip:replay@192.0.2.1>"], Some(300))
        .header("Authorization", &auth1)
        .send(&mut ua.client);
    assert_status(&ok, 200);

    // The very same credentials (nonce, nc=1, cnonce, response) on a new request.
    let replayed = ua
        .register_request(&["<sip:replay@192.0.2.1>"], Some(300))
        .header("Authorization", &auth1)
        .send(&mut ua.client);
    assert_status(&replayed, 401);
    assert!(!headers(&replayed, "WWW-Authenticate").is_empty());

    // The next count with the same nonce is fine.
    let auth2 = answer(&challenge, &acc, &acc.password, "REGISTER", &uri, 2);
    let ok2 = ua
        .register_request(&["<sip:replay@192.0.2.1>"], Some(300))
        .header("Authorization", &auth2)
        .send(&mut ua.client);
    assert_status(&ok2, 200);
}

/// RFC 7616 §3.3: a nonce the server did not issue is not trusted: a new challenge, not 200.
#[test]
fn rfc7616_3_3_forged_nonce_is_rechallenged() {
    let s = server();
    let acc = account("forged");
    let mut ua = Ua::new(client(&s, fresh_loopback()), acc.clone());
    let r = ua.register_request(&[], None).send(&mut ua.client);
    assert_status(&r, 401);
    let challenge = pick_challenge(&r, "WWW-Authenticate", None);
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a quoted nonce")
        .to_owned();
    // Flip the first character of the nonce; everything else is a correct answer to it.
    let first = nonce.chars().next().expect("a non-empty nonce");
    let flipped = if first == 'A' { 'B' } else { 'A' };
    let forged_nonce = format!("{flipped}{}", &nonce[first.len_utf8()..]);
    let forged = challenge.replace(&nonce, &forged_nonce);
    let auth = answer(
        &forged,
        &acc,
        &acc.password,
        "REGISTER",
        &acc.registrar_uri(),
        1,
    );
    let r = ua
        .register_request(&["<sip:forged@192.0.2.1>"], Some(300))
        .header("Authorization", &auth)
        .send(&mut ua.client);
    assert_status(&r, 401);
    let fresh = pick_challenge(&r, "WWW-Authenticate", None);
    assert!(!fresh.contains(&forged_nonce), "{fresh}");
}

/// After `auth_failures_before_backoff` (3) wrong passwords, even the right password is refused
/// with 403 and a `Retry-After` (online guessing, RFC 7616 §5.7), without checking it.
#[test]
fn throttle_after_3_failures_refuses_correct_password_with_retry_after() {
    let s = server();
    let mut ua = Ua::new(client(&s, fresh_loopback()), account("throttled"));
    for attempt in 1..=3 {
        let r = ua.register_with_password(&["<sip:throttled@192.0.2.1>"], Some(300), "guess");
        assert_eq!(
            r.status(),
            403,
            "wrong password, attempt {attempt}:\n{}",
            show(&r)
        );
        assert!(
            headers(&r, "Retry-After").is_empty(),
            "attempt {attempt}:\n{}",
            show(&r)
        );
    }
    let r = ua.register(&["<sip:throttled@192.0.2.1>"], Some(300));
    assert_status(&r, 403);
    let retry = header(&r, HeaderName::RetryAfter)
        .unwrap_or_else(|| panic!("no Retry-After:\n{}", show(&r)));
    let secs: u64 = retry
        .split(';')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("Retry-After {retry:?} is not delta-seconds"));
    assert!((1..=300).contains(&secs), "Retry-After {secs}");

    // The user key: the right password from another address is refused as well.
    let mut elsewhere = Ua::new(client(&s, fresh_loopback()), account("throttled"));
    let r = elsewhere.register(&["<sip:throttled@192.0.2.1>"], Some(300));
    assert_status(&r, 403);
    assert!(header(&r, HeaderName::RetryAfter).is_some(), "{}", show(&r));

    // The address key: another user from the guessing address is refused as well.
    let ip = ua.client.local.ip();
    let mut other = Ua::new(client(&s, ip), account("bystander"));
    let r = other.register(&["<sip:bystander@192.0.2.1>"], Some(300));
    assert_status(&r, 403);
    assert!(header(&r, HeaderName::RetryAfter).is_some(), "{}", show(&r));
}

/// RFC 3261 §22.3: a request other than REGISTER is challenged with 407 and
/// `Proxy-Authenticate`; answered with `Proxy-Authorization` it gets 200.
#[test]
fn rfc3261_22_3_options_without_credentials_gets_407() {
    let s = server();
    let acc = account("options");
    let mut c = client(&s, fresh_loopback());
    let r = Req::new("OPTIONS", &acc.registrar_uri(), &acc.aor()).send(&mut c);
    assert_status(&r, 407);
    assert!(headers(&r, "WWW-Authenticate").is_empty(), "{}", show(&r));
    let challenge = pick_challenge(&r, "Proxy-Authenticate", None);
    let auth = answer(
        &challenge,
        &acc,
        &acc.password,
        "OPTIONS",
        &acc.registrar_uri(),
        1,
    );
    let r = Req::new("OPTIONS", &acc.registrar_uri(), &acc.aor())
        .header("Proxy-Authorization", &auth)
        .send(&mut c);
    assert_status(&r, 200);
    let allow = header(&r, HeaderName::Allow).unwrap_or_default();
    assert!(allow.contains("REGISTER"), "{}", show(&r));
}

/// RFC 3261 §10.3 step 1: a REGISTER for a domain the server is not responsible for is refused
/// with 403 at once, without a challenge.
#[test]
fn rfc3261_10_3_step_1_foreign_domain_register_is_403_without_challenge() {
    let s = server();
    let acc = Account::new("alice", "pw-alice", "elsewhere.test");
    let mut c = client(&s, fresh_loopback());
    let r = Req::new("REGISTER", &acc.registrar_uri(), &acc.aor())
        .header("Contact", "<sip:alice@192.0.2.1>")
        .send(&mut c);
    assert_status(&r, 403);
    assert!(headers(&r, "WWW-Authenticate").is_empty(), "{}", show(&r));
}

/// RFC 7616 §3.4.6: the digest-uri must name the Request-URI; correct credentials computed for
/// another URI get 400.
#[test]
fn rfc7616_3_4_6_digest_uri_mismatch_is_400() {
    let s = server();
    let acc = account("uri");
    let mut ua = Ua::new(client(&s, fresh_loopback()), acc.clone());
    let r = ua.register_request(&[], None).send(&mut ua.client);
    assert_status(&r, 401);
    let challenge = pick_challenge(&r, "WWW-Authenticate", None);
    let auth = answer(
        &challenge,
        &acc,
        &acc.password,
        "REGISTER",
        "sip:other.test",
        1,
    );
    let r = ua
        .register_request(&["<sip:uri@192.0.2.1>"], Some(300))
        .header("Authorization", &auth)
        .send(&mut ua.client);
    assert_status(&r, 400);
}

/// RFC 3581 §4: with `rport` in the top Via the server fills in `rport` with the source port and
/// adds `received` even when it equals the sent-by address; the answer comes back to the source
/// address and port.
#[test]
fn rfc3581_4_rport_and_received_are_filled_in() {
    let s = server();
    let ip = fresh_loopback();
    let acc = account("via");
    let mut c = client(&s, ip);
    // sent-by names a port nobody listens on: the answer must follow rport, not sent-by.
    let via = format!(
        "SIP/2.0/UDP {ip}:9;rport;branch=z9hG4bK{}",
        crate::support::sip::token()
    );
    let r = Req::new("REGISTER", &acc.registrar_uri(), &acc.aor())
        .via(&via)
        .send(&mut c);
    assert_status(&r, 401);
    let top = r.top_via();
    assert_eq!(top.rport(), Some(Some(c.local.port())), "{}", show(&r));
    assert_eq!(top.received(), Some(ip), "{}", show(&r));

    // rport naming the exact source: received is still added (RFC 3581 §4 "even if identical").
    let via = format!(
        "SIP/2.0/UDP {};rport;branch=z9hG4bK{}",
        c.local,
        crate::support::sip::token()
    );
    let r = Req::new("REGISTER", &acc.registrar_uri(), &acc.aor())
        .via(&via)
        .send(&mut c);
    assert_eq!(r.top_via().received(), Some(ip), "{}", show(&r));
    assert_eq!(
        r.top_via().rport(),
        Some(Some(c.local.port())),
        "{}",
        show(&r)
    );
}

/// RFC 3261 §18.2.1: without rport, `received` is added when sent-by is not the source address,
/// and the answer goes to the sent-by port (§18.2.2).
#[test]
fn rfc3261_18_2_1_received_added_when_sent_by_is_a_name() {
    let s = server();
    let ip = fresh_loopback();
    let acc = account("via");
    let mut c = client(&s, ip);
    let via = format!(
        "SIP/2.0/UDP client.invalid:{};branch=z9hG4bK{}",
        c.local.port(),
        crate::support::sip::token()
    );
    let r = Req::new("REGISTER", &acc.registrar_uri(), &acc.aor())
        .via(&via)
        .send(&mut c);
    assert_status(&r, 401);
    assert_eq!(r.top_via().received(), Some(ip), "{}", show(&r));
    assert_eq!(r.top_via().rport(), None, "{}", show(&r));
}

/// RFC 3581 §4 applies "independent of the transport protocol": over TCP too.
#[test]
fn rfc3581_4_rport_is_filled_in_over_tcp() {
    let s = server();
    let acc = account("viatcp");
    let mut c = SipClient::tcp(s.tcp());
    let r = Req::new("REGISTER", &acc.registrar_uri(), &acc.aor()).send(&mut c);
    assert_status(&r, 401);
    assert_eq!(
        r.top_via().rport(),
        Some(Some(c.local.port())),
        "{}",
        show(&r)
    );
    assert_eq!(r.top_via().received(), Some(c.local.ip()), "{}", show(&r));
    // And the connection still works for a full registration.
    let mut ua = Ua::new(c, acc);
    let contact = ua.client.contact("viatcp");
    assert_status(&ua.register(&[&contact], Some(300)), 200);
}

/// Lync-era clients (SIPE) send the whole sign-in address as the Digest username
/// (`alice@example.test`); that spelling is accepted with both algorithms.
#[test]
fn rfc8760_2_4_username_as_full_address_is_accepted() {
    let s = server();
    let acc = account("aorform");
    for algorithm in ["SHA-256", "MD5"] {
        let mut c = client(&s, fresh_loopback());
        let r = Req::new("REGISTER", &acc.registrar_uri(), &acc.aor()).send(&mut c);
        assert_status(&r, 401);
        let challenge = pick_challenge(&r, "WWW-Authenticate", Some(algorithm));
        let auth = herald_auth::answer_challenge(
            &challenge,
            &format!("aorform@{DOMAIN}"),
            &acc.password,
            "REGISTER",
            &acc.registrar_uri(),
            "0a4f113b",
            herald_auth::NonceCount(1),
        )
        .expect("an answer")
        .to_string();
        let r = Req::new("REGISTER", &acc.registrar_uri(), &acc.aor())
            .header("Contact", "<sip:aorform@192.0.2.1>")
            .header("Authorization", &auth)
            .send(&mut c);
        assert_eq!(r.status(), 200, "{algorithm}:\n{}", show(&r));
    }
}

/// RFC 7616 §3.3: credentials on an expired nonce are answered with a new challenge marked
/// `stale=true`, so the client retries without asking its user for the password.
#[test]
fn rfc7616_3_3_expired_nonce_gets_stale_true() {
    let s = Setup::new(DOMAIN)
        .tcp(&[])
        .tls(&[])
        .sip("nonce_lifetime_secs", "1")
        .user("stale", "pw-stale")
        .start();
    let acc = Account::new("stale", "pw-stale", DOMAIN);
    let mut ua = Ua::new(SipClient::udp(s.udp()), acc.clone());
    let r = ua.register_request(&[], None).send(&mut ua.client);
    assert_status(&r, 401);
    assert!(
        !headers(&r, "WWW-Authenticate")
            .iter()
            .any(|c| c.contains("stale"))
    );
    let challenge = pick_challenge(&r, "WWW-Authenticate", None);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let auth = answer(
        &challenge,
        &acc,
        &acc.password,
        "REGISTER",
        &acc.registrar_uri(),
        1,
    );
    let r = ua
        .register_request(&["<sip:stale@192.0.2.1>"], Some(300))
        .header("Authorization", &auth)
        .send(&mut ua.client);
    assert_status(&r, 401);
    let fresh: Vec<_> = headers(&r, "WWW-Authenticate")
        .into_iter()
        .filter(|c| c.starts_with("Digest "))
        .collect();
    assert!(
        !fresh.is_empty()
            && fresh
                .iter()
                .all(|c| c.to_ascii_lowercase().contains("stale=true")),
        "{}",
        show(&r)
    );
    // The fresh nonce works.
    let challenge = pick_challenge(&r, "WWW-Authenticate", None);
    let auth = answer(
        &challenge,
        &acc,
        &acc.password,
        "REGISTER",
        &acc.registrar_uri(),
        1,
    );
    let r = ua
        .register_request(&["<sip:stale@192.0.2.1>"], Some(300))
        .header("Authorization", &auth)
        .send(&mut ua.client);
    assert_status(&r, 200);
}

/// RFC 3261 §18.2.2: `received` is what the server saw; a `received` written by the client
/// itself must not send the answer elsewhere (it would make herald a reflector).
#[test]
fn rfc3261_18_2_2_client_written_received_is_not_followed() {
    let s = server();
    let ip = fresh_loopback();
    let acc = account("via");
    let mut c = client(&s, ip);
    let via = format!(
        "SIP/2.0/UDP {}:{};received=192.0.2.99;branch=z9hG4bK{}",
        ip,
        c.local.port(),
        crate::support::sip::token()
    );
    let r = Req::new("REGISTER", &acc.registrar_uri(), &acc.aor())
        .via(&via)
        .send(&mut c);
    assert_status(&r, 401);
}

/// RFC 3581 §4 for a request that fails to parse (here Content-Length larger than the
/// datagram, RFC 4475 §3.1.2.2): herald answers it statelessly (400) to the source address, but copies the top Via as received, so a bare `rport` stays without its
/// value and no `received` is added.
#[test]
fn rfc3581_4_rport_is_filled_in_on_stateless_error_answers() {
    let s = server();
    let ip = fresh_loopback();
    let mut c = client(&s, ip);
    let text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: <sip:via@{DOMAIN}>;tag=1\r\nTo: <sip:via@{DOMAIN}>\r\nCall-ID: stateless-rport\r\nCSeq: 1 REGISTER\r\nContent-Length: 9999\r\n\r\n",
        c.via()
    );
    c.send_raw(text.as_bytes());
    let r = c
        .recv_response(std::time::Duration::from_secs(3))
        .expect("an answer to a malformed request");
    assert_status(&r, 400);
    assert_eq!(
        r.top_via().rport(),
        Some(Some(c.local.port())),
        "{}",
        show(&r)
    );
    assert_eq!(r.top_via().received(), Some(ip), "{}", show(&r));
}
