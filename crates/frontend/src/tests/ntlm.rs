//! NTLM per [MS-SIPAE] as SIPE speaks it (sipe-client §1.3): the three-REGISTER handshake, the
//! signed 200 OK, signed later requests verified, bad signatures and wrong passwords refused.

use herald_ntlm::testing::{ClientAssociation, ClientParams, build_authenticate, parse_challenge};
use herald_ntlm::{
    AuthenticationInfo, FileTime, HeaderValues, MessageFields, NtHash, NtlmChallenge,
    NtlmCredentials, ServerIdentity,
};

use super::*;
use crate::NtlmConfig;

const TARGET: &str = "fe01.example.test";

fn ntlm_harness() -> Harness {
    let mut c = config();
    c.ntlm = Some(NtlmConfig {
        realm: crate::NTLM_REALM.to_owned(),
        targetname: TARGET.to_owned(),
        identity: ServerIdentity::new("EXAMPLE", "FE01", DOMAIN, TARGET).expect("identity"),
    });
    Harness::with_config(c)
}

/// A REGISTER over TLS connection 1, as SIPE sends it.
fn sipe_register() -> Req {
    Req::register("alice")
        .via("TLS", "192.0.2.10:50000", "")
        .header("Expires", "600")
}

/// The fields SIPE signs, from the request as built.
fn fields_of(req: &Req) -> (String, String, String, String) {
    (
        req.call_id.clone(),
        format!("{} {}", req.cseq, req.method),
        req.from.clone(),
        req.to.clone(),
    )
}

fn ntlm_header(sent: &Sent) -> NtlmChallenge {
    let value = sent
        .all(HeaderName::WwwAuthenticate)
        .into_iter()
        .find(|v| v.starts_with("NTLM"))
        .unwrap_or_else(|| panic!("no NTLM challenge in\n{}", sent.text()));
    NtlmChallenge::parse(value.as_bytes()).expect("the NTLM challenge parses")
}

/// Runs the handshake with `password`; returns the final answer and the client's association.
fn handshake(h: &mut Harness, password: &str) -> (Req, Sent, ClientAssociation) {
    let first = sipe_register();
    let offer = h.tcp1(1, ALICE, &first.text());
    assert_eq!(offer.status(), 401, "{}", offer.text());
    let offer = ntlm_header(&offer);
    assert_eq!(offer.realm, crate::NTLM_REALM);
    assert_eq!(offer.version, Some(4));
    assert!(offer.gssapi_data.is_none() && offer.opaque.is_none());

    let ask = first.next().header(
        "Authorization",
        &format!(
            "NTLM qop=\"auth\", realm=\"{}\", targetname=\"{}\", gssapi-data=\"\", version=4",
            offer.realm, offer.targetname
        ),
    );
    let challenge = h.tcp1(1, ALICE, &ask.text());
    assert_eq!(challenge.status(), 401, "{}", challenge.text());
    let challenge = ntlm_header(&challenge);
    let opaque = challenge
        .opaque
        .clone()
        .expect("an opaque names the association");
    let parsed = parse_challenge(challenge.gssapi_data.as_deref().expect("gssapi-data"))
        .expect("a CHALLENGE_MESSAGE");
    let (authenticate, keys) = build_authenticate(
        &parsed,
        &ClientParams {
            user: "alice@example.test",
            domain: "",
            workstation: "WS01",
            nt_hash: NtHash::from_password(password),
            client_challenge: [7; 8],
            random_session_key: [9; 16],
            timestamp: FileTime(133_000_000_000_000_000),
            version: [6, 1, 0xb1, 0x1d, 0, 0, 0, 15],
            with_mic: false,
        },
    );
    let mut client = ClientAssociation {
        keys,
        realm: challenge.realm.clone(),
        targetname: challenge.targetname,
        opaque,
        version: Some(4),
        cnum: 0,
    };
    let last = ask.next().without("Authorization");
    let (call_id, cseq, from, to) = fields_of(&last);
    let fields = MessageFields::from_headers(&HeaderValues {
        call_id: &call_id,
        cseq: &cseq,
        from: &from,
        to: &to,
        asserted_identity: None,
        expires: Some("600"),
        status_code: None,
    });
    let mut credentials = client.sign_request(0x741394f7, &fields);
    credentials.gssapi_data = Some(authenticate);
    credentials.version = Some(4);
    let last = last.header("Authorization", &credentials.to_string());
    let answer = h.tcp1(1, ALICE, &last.text());
    (last, answer, client)
}

/// Checks the response's `Authentication-Info` the way SIPE does.
fn assert_signed(sent: &Sent, client: &ClientAssociation) {
    let info = sent
        .response
        .header_str("Authentication-Info")
        .unwrap_or_else(|| panic!("unsigned response:\n{}", sent.text()));
    let info = AuthenticationInfo::parse(info.as_bytes()).expect("Authentication-Info parses");
    let r = &sent.response;
    let raw = |n: HeaderName| r.header_str(n).unwrap_or("");
    let fields = MessageFields::from_headers(&HeaderValues {
        call_id: raw(HeaderName::CallId),
        cseq: raw(HeaderName::CSeq),
        from: raw(HeaderName::From),
        to: raw(HeaderName::To),
        asserted_identity: None,
        expires: r.header_str(HeaderName::Expires),
        status_code: Some(r.status()),
    });
    client
        .verify_response(&info, &fields)
        .unwrap_or_else(|e| panic!("bad server signature ({e:?}):\n{}", sent.text()));
}

#[test]
fn ms_sipae_3_2_5_handshake_registers_and_signs_the_200() {
    let mut h = ntlm_harness();
    let (_, ok, client) = handshake(&mut h, ALICE_PASSWORD);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(ok.header(HeaderName::Expires), Some("600"));
    assert_signed(&ok, &client);
}

#[test]
fn ms_sipae_3_2_5_later_requests_are_verified_and_answers_signed() {
    let mut h = ntlm_harness();
    let (_, ok, mut client) = handshake(&mut h, ALICE_PASSWORD);
    assert_eq!(ok.status(), 200);

    let options = Req::options("alice").via("TLS", "192.0.2.10:50000", "");
    let (call_id, cseq, from, to) = fields_of(&options);
    let fields = MessageFields::from_headers(&HeaderValues {
        call_id: &call_id,
        cseq: &cseq,
        from: &from,
        to: &to,
        ..HeaderValues::default()
    });
    let credentials = client.sign_request(0x1234_5678, &fields);
    let answer = h.tcp1(
        1,
        ALICE,
        &options
            .clone()
            .header("Authorization", &credentials.to_string())
            .text(),
    );
    assert_eq!(answer.status(), 200, "{}", answer.text());
    assert_signed(&answer, &client);

    // A signature over other fields (here: another CSeq) is refused with a new challenge.
    let mut forged: NtlmCredentials = client.sign_request(0x1111_2222, &fields);
    forged.cnum = Some("99".to_owned());
    let refused = h.tcp1(
        1,
        ALICE,
        &options
            .next()
            .header("Authorization", &forged.to_string())
            .text(),
    );
    assert_eq!(refused.status(), 401, "{}", refused.text());

    // Another connection has no association: also refused.
    let other = client.sign_request(0x3333_4444, &fields);
    let refused = h.tcp1(
        2,
        ALICE,
        &options
            .next()
            .next()
            .header("Authorization", &other.to_string())
            .text(),
    );
    assert_eq!(refused.status(), 401);
}

#[test]
fn ms_sipae_a_wrong_password_is_refused_like_an_unknown_user() {
    let mut h = ntlm_harness();
    let (_, answer, _) = handshake(&mut h, "not-the-password");
    assert_eq!(answer.status(), 403, "{}", answer.text());
    assert!(answer.response.header("Authentication-Info").is_none());
}

#[test]
fn ms_sipae_the_ntlm_offer_follows_the_digest_challenges() {
    let mut h = ntlm_harness();
    let offer = h.tcp1(1, ALICE, &sipe_register().text());
    let schemes: Vec<&str> = offer
        .all(HeaderName::WwwAuthenticate)
        .into_iter()
        .map(|v| v.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(schemes.last(), Some(&"NTLM"), "{}", offer.text());
    assert!(schemes[0].eq_ignore_ascii_case("Digest"));
}
