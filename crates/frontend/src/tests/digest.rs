//! Digest authentication through the pipeline (RFC 3261 §22, RFC 7616, RFC 8760) and the
//! throttle in front of it.

use super::*;

fn challenge_values(sent: &Sent, name: HeaderName) -> Vec<String> {
    sent.all(name).into_iter().map(str::to_owned).collect()
}

fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value
        .trim_start_matches("Digest ")
        .split(", ")
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
}

#[test]
fn rfc8760_section_2_3_register_gets_401_with_sha256_then_md5() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 401);
    assert_eq!(sent.response.reason(), b"Unauthorized");
    assert_echoes(&req, &sent);
    let values = challenge_values(&sent, HeaderName::WwwAuthenticate);
    assert_eq!(values.len(), 2, "{}", sent.text());
    assert_eq!(param(&values[0], "algorithm"), Some("SHA-256"));
    assert_eq!(param(&values[1], "algorithm"), Some("MD5"));
    for v in &values {
        assert!(v.starts_with("Digest "), "{v}");
        assert_eq!(param(v, "realm"), Some(DOMAIN), "{v}");
        assert_eq!(param(v, "qop"), Some("auth"), "{v}");
        assert_eq!(param(v, "stale"), None, "{v}");
    }
    // One nonce for both algorithms, so the client may pick either.
    assert_eq!(param(&values[0], "nonce"), param(&values[1], "nonce"));
    assert!(sent.all(HeaderName::ProxyAuthenticate).is_empty());
    assert!(h.lookups.is_empty(), "no credentials, no lookup");
}

#[test]
fn rfc3261_section_22_3_options_gets_407_with_proxy_authenticate() {
    let mut h = Harness::new();
    let req = Req::options("alice");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 407);
    assert_eq!(sent.response.reason(), b"Proxy Authentication Required");
    assert_echoes(&req, &sent);
    let values = challenge_values(&sent, HeaderName::ProxyAuthenticate);
    assert_eq!(values.len(), 2, "{}", sent.text());
    assert_eq!(param(&values[0], "algorithm"), Some("SHA-256"));
    assert_eq!(param(&values[1], "algorithm"), Some("MD5"));
    assert!(sent.all(HeaderName::WwwAuthenticate).is_empty());
}

#[test]
fn rfc7616_section_3_4_sha256_credentials_are_accepted() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let (_, ok) = h.register_with_auth(ALICE, &req, "alice", ALICE_PASSWORD, Algorithm::Sha256);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_echoes(&req.next(), &ok);
    assert_eq!(
        h.lookups,
        [Aor::parse("alice@example.test").expect("valid AOR")]
    );
}

#[test]
fn rfc7616_section_3_4_md5_credentials_are_accepted() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let (_, ok) = h.register_with_auth(ALICE, &req, "alice", ALICE_PASSWORD, Algorithm::Md5);
    assert_eq!(ok.status(), 200, "{}", ok.text());
}

#[test]
fn rfc3261_section_11_2_authenticated_options_gets_200_with_capabilities() {
    let mut h = Harness::new();
    let req = Req::options("alice");
    let challenge = h.udp1(ALICE, &req.text());
    let creds = credentials(
        &challenge,
        Algorithm::Sha256,
        "alice",
        ALICE_PASSWORD,
        "OPTIONS",
        &req.uri,
        1,
    );
    let retry = req.next().header("Proxy-Authorization", &creds);
    let ok = h.udp1(ALICE, &retry.text());
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_echoes(&retry, &ok);
    assert_eq!(
        ok.header(HeaderName::Allow),
        Some("REGISTER, OPTIONS, ACK, CANCEL")
    );
    assert_eq!(ok.header(HeaderName::AcceptEncoding), Some("identity"));
    assert_eq!(
        ok.all(HeaderName::Supported),
        ["msrtc-event-categories", "adhoclist"]
    );
    // Credentials in the header of the other kind are not looked at.
    let wrong_header = req.next().next().header("Authorization", &creds);
    assert_eq!(h.udp1(ALICE, &wrong_header.text()).status(), 407);
}

#[test]
fn rfc7616_section_3_3_credentials_for_another_realm_are_rechallenged() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let challenge = h.udp1(ALICE, &req.text());
    let value = challenge_values(&challenge, HeaderName::WwwAuthenticate)[0]
        .replace(&format!("realm=\"{DOMAIN}\""), "realm=\"elsewhere.test\"");
    let creds = answer_challenge(
        &value,
        "alice",
        ALICE_PASSWORD,
        "REGISTER",
        &req.uri,
        CNONCE,
        NonceCount(1),
    )
    .expect("answerable")
    .to_string();
    assert!(creds.contains("realm=\"elsewhere.test\""), "{creds}");
    let retry = req.next().header("Authorization", &creds);
    let sent = h.udp1(ALICE, &retry.text());
    assert_eq!(sent.status(), 401, "{}", sent.text());
    assert_eq!(
        param(sent.all(HeaderName::WwwAuthenticate)[0], "realm"),
        Some(DOMAIN)
    );
    assert!(
        h.lookups.is_empty(),
        "credentials for another realm are not ours to check"
    );
}

#[test]
fn rfc7616_section_3_3_stale_nonce_gets_401_with_stale_true() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let challenge = h.udp1(ALICE, &req.text());
    h.advance(DigestConfig::default().nonce_lifetime + secs(1));
    let retry = req.next().header(
        "Authorization",
        &credentials(
            &challenge,
            Algorithm::Sha256,
            "alice",
            ALICE_PASSWORD,
            "REGISTER",
            &req.uri,
            1,
        ),
    );
    let stale = h.udp1(ALICE, &retry.text());
    assert_eq!(stale.status(), 401, "{}", stale.text());
    let values = challenge_values(&stale, HeaderName::WwwAuthenticate);
    assert_eq!(values.len(), 2);
    assert!(
        values.iter().all(|v| param(v, "stale") == Some("true")),
        "{values:?}"
    );
    assert_ne!(
        param(&values[0], "nonce"),
        param(
            &challenge_values(&challenge, HeaderName::WwwAuthenticate)[0],
            "nonce"
        )
    );
    // The fresh nonce works.
    let again = retry.next().without("Authorization").header(
        "Authorization",
        &credentials(
            &stale,
            Algorithm::Sha256,
            "alice",
            ALICE_PASSWORD,
            "REGISTER",
            &req.uri,
            1,
        ),
    );
    assert_eq!(h.udp1(ALICE, &again.text()).status(), 200);
}

#[test]
fn rfc7616_section_3_3_stale_nonce_with_wrong_password_is_a_failure_not_stale() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let challenge = h.udp1(ALICE, &req.text());
    h.advance(DigestConfig::default().nonce_lifetime + secs(1));
    let retry = req.next().header(
        "Authorization",
        &credentials(
            &challenge,
            Algorithm::Sha256,
            "alice",
            "guess",
            "REGISTER",
            &req.uri,
            1,
        ),
    );
    assert_eq!(h.udp1(ALICE, &retry.text()).status(), 403);
}

#[test]
fn rfc7616_section_5_4_replayed_nonce_count_is_rechallenged() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let challenge = h.udp1(ALICE, &req.text());
    let answer = |nc| {
        credentials(
            &challenge,
            Algorithm::Sha256,
            "alice",
            ALICE_PASSWORD,
            "REGISTER",
            &req.uri,
            nc,
        )
    };
    let first = req.next().header("Authorization", &answer(1));
    let accepted = h.udp1(ALICE, &first.text());
    assert_eq!(accepted.status(), 200, "{}", accepted.text());
    // A new request (new branch, next CSeq) carrying the very same Authorization.
    let replay = first.next();
    let sent = h.udp1(ALICE, &replay.text());
    assert_eq!(sent.status(), 401, "{}", sent.text());
    let values = challenge_values(&sent, HeaderName::WwwAuthenticate);
    assert!(
        values.iter().all(|v| param(v, "stale").is_none()),
        "{values:?}"
    );
    // The next count on the same nonce is fine.
    let next = replay
        .next()
        .without("Authorization")
        .header("Authorization", &answer(2));
    let sent = h.udp1(ALICE, &next.text());
    assert_eq!(sent.status(), 200, "{}", sent.text());
}

/// A wrong password, an unknown user, a disabled user and a name in a domain we do not serve
/// all get the same 403: nothing in the answer tells which names exist.
#[test]
fn rfc7616_section_5_4_failures_are_indistinguishable() {
    let mut answers = Vec::new();
    for (user, username, password) in [
        ("alice", "alice", "wrong"),
        ("mallory", "mallory", "whatever"),
        ("dave", "dave", DAVE_PASSWORD),
        ("alice", "alice@foreign.test", ALICE_PASSWORD),
    ] {
        let mut h = Harness::new();
        let req = Req::register(user);
        let (_, sent) = h.register_with_auth(ALICE, &req, username, password, Algorithm::Sha256);
        assert_eq!(sent.status(), 403, "{username}: {}", sent.text());
        assert_echoes(&req.next(), &sent);
        answers.push((username, sent));
    }
    let (first_name, first) = &answers[0];
    for (name, other) in &answers[1..] {
        assert_eq!(
            other.response.reason(),
            first.response.reason(),
            "{first_name} vs {name}"
        );
        assert_eq!(
            comparable_headers(other),
            comparable_headers(first),
            "{first_name} vs {name}:\n{}\n{}",
            first.text(),
            other.text()
        );
        assert_eq!(other.response.body(), first.response.body());
    }
}

#[test]
fn rfc7616_section_5_4_throttle_refuses_even_the_right_password_then_recovers() {
    let throttle = ThrottleConfig::default();
    let mut h = Harness::new();
    let mut req = Req::register("alice");
    for attempt in 1..=throttle.max_failures {
        let (_, sent) = h.register_with_auth(ALICE, &req, "alice", "guess", Algorithm::Sha256);
        assert_eq!(sent.status(), 403, "attempt {attempt}");
        assert_eq!(
            sent.header(HeaderName::RetryAfter),
            None,
            "attempt {attempt}"
        );
        req = req.next().next();
        h.advance(secs(1));
    }
    let lookups = h.lookups.len();
    let (_, refused) =
        h.register_with_auth(ALICE, &req, "alice", ALICE_PASSWORD, Algorithm::Sha256);
    assert_eq!(refused.status(), 403, "{}", refused.text());
    let expected = throttle.initial_backoff.as_secs() - 1;
    assert_eq!(
        refused.header(HeaderName::RetryAfter),
        Some(expected.to_string().as_str()),
        "{}",
        refused.text()
    );
    assert!(refused.header(HeaderName::Warning).is_some());
    assert_eq!(
        h.lookups.len(),
        lookups,
        "a throttled request is not looked up"
    );
    assert_echoes(&req.next(), &refused);

    h.advance(throttle.initial_backoff);
    req = req.next().next();
    let (_, ok) = h.register_with_auth(ALICE, &req, "alice", ALICE_PASSWORD, Algorithm::Sha256);
    assert_eq!(ok.status(), 200, "{}", ok.text());
}

/// The throttle is keyed by the username as sent, but the account behind it is found
/// case-insensitively (and also as `alice@example.test`), and the response is checked against
/// the stored HA1, which does not depend on the spelling sent. So once "alice" is locked out,
/// "Alice", "ALICE", "alice@example.test", ... are fresh throttle keys for the same account:
/// from addresses the per-address limit has not caught yet, guessing goes on at the full rate.
#[test]
fn rfc7616_section_5_4_throttle_counts_one_account_under_every_spelling() {
    let throttle = ThrottleConfig::default();
    let mut h = Harness::new();
    let mut req = Req::register("alice");
    for _ in 0..throttle.max_failures {
        let (_, sent) = h.register_with_auth(NAT, &req, "alice", "guess", Algorithm::Sha256);
        assert_eq!(sent.status(), 403);
        req = req.next().next();
    }
    // Locked out: the right password as "alice" is refused, from anywhere.
    let (_, refused) =
        h.register_with_auth(ALICE, &req, "alice", ALICE_PASSWORD, Algorithm::Sha256);
    assert!(
        refused.header(HeaderName::RetryAfter).is_some(),
        "{}",
        refused.text()
    );
    req = req.next().next();
    // The same account spelled "Alice", response computed over the stored HA1 ("alice").
    let challenge = h.udp1(ALICE, &req.text());
    let mut creds = answer_challenge(
        &challenge_values(&challenge, HeaderName::WwwAuthenticate)[0],
        "alice",
        ALICE_PASSWORD,
        "REGISTER",
        &req.uri,
        CNONCE,
        NonceCount(1),
    )
    .expect("answerable");
    creds.username = "Alice".into();
    let retry = req.next().header("Authorization", &creds.to_string());
    let sent = h.udp1(ALICE, &retry.text());
    assert_eq!(
        h.lookups.last(),
        Some(&Aor::parse("alice@example.test").expect("valid")),
        "the same account"
    );
    assert_eq!(sent.status(), 403, "{}", sent.text());
    assert!(
        sent.header(HeaderName::RetryAfter).is_some(),
        "{}",
        sent.text()
    );
}

#[test]
fn rfc7616_section_5_4_throttle_is_per_source_address_too() {
    let throttle = ThrottleConfig::default();
    let mut h = Harness::new();
    // One address guessing a different name each time.
    for attempt in 0..throttle.max_failures {
        let user = format!("nobody{attempt}");
        let (_, sent) =
            h.register_with_auth(NAT, &Req::register(&user), &user, "x", Algorithm::Sha256);
        assert_eq!(sent.status(), 403);
        assert_eq!(sent.header(HeaderName::RetryAfter), None);
    }
    let (_, refused) = h.register_with_auth(
        NAT,
        &Req::register("alice"),
        "alice",
        ALICE_PASSWORD,
        Algorithm::Sha256,
    );
    assert_eq!(refused.status(), 403);
    assert!(refused.header(HeaderName::RetryAfter).is_some());
    // Alice's own address is not affected.
    let (_, ok) = h.register_with_auth(
        ALICE,
        &Req::register("alice"),
        "alice",
        ALICE_PASSWORD,
        Algorithm::Sha256,
    );
    assert_eq!(ok.status(), 200);
}

#[test]
fn rfc3261_section_21_5_4_directory_error_gets_503_with_retry_after() {
    let mut h = Harness::new();
    h.directory_down = true;
    let req = Req::register("alice");
    let (_, sent) = h.register_with_auth(ALICE, &req, "alice", ALICE_PASSWORD, Algorithm::Sha256);
    assert_eq!(sent.status(), 503, "{}", sent.text());
    assert_eq!(sent.header(HeaderName::RetryAfter), Some("30"));
    assert_echoes(&req.next(), &sent);
    assert_eq!(h.lookups.len(), 1);
    // Not counted as a failed attempt: the store coming back lets the client straight in.
    h.directory_down = false;
    let (_, ok) = h.register_with_auth(
        ALICE,
        &req.next().next(),
        "alice",
        ALICE_PASSWORD,
        Algorithm::Sha256,
    );
    assert_eq!(ok.status(), 200);
}

#[test]
fn rfc7616_section_3_4_6_digest_uri_mismatch_gets_400() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let challenge = h.udp1(ALICE, &req.text());
    let creds = credentials(
        &challenge,
        Algorithm::Sha256,
        "alice",
        ALICE_PASSWORD,
        "REGISTER",
        "sip:elsewhere.test",
        1,
    );
    let retry = req.next().header("Authorization", &creds);
    let sent = h.udp1(ALICE, &retry.text());
    assert_eq!(sent.status(), 400, "{}", sent.text());
    assert!(sent.header(HeaderName::Warning).is_some());
    assert_echoes(&retry, &sent);
    assert_eq!(h.fe.registrar().binding_count(), 0);
    // An equivalent spelling of the Request-URI (§19.1.4) is the same resource.
    let challenge = h.udp1(ALICE, &req.next().next().text());
    let creds = credentials(
        &challenge,
        Algorithm::Sha256,
        "alice",
        ALICE_PASSWORD,
        "REGISTER",
        "sip:EXAMPLE.test",
        1,
    );
    let retry = req.next().next().next().header("Authorization", &creds);
    assert_eq!(h.udp1(ALICE, &retry.text()).status(), 200);
}

#[test]
fn rfc3261_section_22_4_malformed_credentials_get_400() {
    let mut h = Harness::new();
    let req = Req::register("alice").header("Authorization", "Digest username=");
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 400, "{}", sent.text());
    assert!(h.lookups.is_empty());
}

#[test]
fn rfc3261_section_22_other_schemes_are_answered_with_our_challenge() {
    let mut h = Harness::new();
    let req = Req::register("alice").header(
        "Authorization",
        "NTLM qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"fe.example.test\"",
    );
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), 401, "{}", sent.text());
    assert!(h.lookups.is_empty());
}

/// `user_of` accepts a Digest username of the form `alice@example.test` and looks alice up, but
/// the directory's HA1 (admin CLI: `ha1(alg, aor.user(), realm, password)`) is computed over
/// `alice`, and HA1 covers the username: a client that authenticates as `alice@example.test`
/// with the right password can never match and gets 403 (and a throttle failure).
#[test]
fn rfc7616_section_3_4_4_username_with_domain_authenticates() {
    let mut h = Harness::new();
    let req = Req::register("alice");
    let (_, sent) = h.register_with_auth(
        ALICE,
        &req,
        "alice@example.test",
        ALICE_PASSWORD,
        Algorithm::Sha256,
    );
    assert_eq!(sent.status(), 200, "{}", sent.text());
}
