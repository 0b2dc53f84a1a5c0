//! End-to-end checks against real traffic and against the SIPE-style client, plus property
//! tests for the parsers.
//!
//! The "OC 2007 R2" vectors are a sign-in of Microsoft Office Communicator 2007 R2 to Office
//! Communications Server 2007 R2 (user `COSMO\User`, password `Pa$$word`) as published with
//! pidgin-sipe's NTLM tests: real client bytes and real server signatures, so passing them
//! means herald computes what a Microsoft server computes.

use base64::Engine;
use proptest::prelude::*;

use crate::testing::{
    ClientAssociation, ClientParams, SIPE_VERSION, build_authenticate, parse_challenge,
};
use crate::*;

const OC_R2_CHALLENGE: &str = "\
    4E544C4D53535000020000000000000038000000F38298E2DD1BAAF4E7E218D1000000000000000096009600\
    380000000502CE0E0000000F02000A0043004F0053004D004F000100180043004F0053004D004F002D004F00\
    430053002D00520032000400160063006F0073006D006F002E006C006F00630061006C000300300063006F00\
    73006D006F002D006F00630073002D00720032002E0063006F0073006D006F002E006C006F00630061006C00\
    0500160063006F0073006D006F002E006C006F00630061006C0000000000";

const OC_R2_AUTHENTICATE: &str = "\
    4E544C4D53535000030000001800180072000000C600C6008A0000000A000A00480000000800080052000000\
    180018005A0000001000100050010000558298620502CE0E0000000F43004F0053004D004F00550073006500\
    720043004F0053004D004F002D004F00430053002D0052003200A1E92EFE4E078BF7C5C0049ACC6166C2D6AE\
    875CB0FDAA418DC0C800AE76ECA606D2B9FBEBD04731010100000000000059519A1727B9CA01D6AE875CB0FD\
    AA410000000002000A0043004F0053004D004F000100180043004F0053004D004F002D004F00430053002D00\
    520032000400160063006F0073006D006F002E006C006F00630061006C000300300063006F0073006D006F00\
    2D006F00630073002D00720032002E0063006F0073006D006F002E006C006F00630061006C00050016006300\
    6F0073006D006F002E006C006F00630061006C00000000000000000031CB739E1CA80A498591E8AE797115E4";

/// The Proxy-Authorization of the final REGISTER, signed (version 4).
const OC_R2_PROXY_AUTHORIZATION: &str = r#"NTLM qop="auth", realm="SIP Communications Service", opaque="2BDBAC9D", targetname="cosmo-ocs-r2.cosmo.local", version=4, gssapi-data="TlRMTVNTUAADAAAAGAAYAHIAAADGAMYAigAAAAoACgBIAAAACAAIAFIAAAAYABgAWgAAABAAEABQAQAAVYKYYgUCzg4AAAAPQwBPAFMATQBPAFUAcwBlAHIAQwBPAFMATQBPAC0ATwBDAFMALQBSADIAoeku/k4Hi/fFwASazGFmwtauh1yw/apBjcDIAK527KYG0rn769BHMQEBAAAAAAAAWVGaFye5ygHWrodcsP2qQQAAAAACAAoAQwBPAFMATQBPAAEAGABDAE8AUwBNAE8ALQBPAEMAUwAtAFIAMgAEABYAYwBvAHMAbQBvAC4AbABvAGMAYQBsAAMAMABjAG8AcwBtAG8ALQBvAGMAcwAtAHIAMgAuAGMAbwBzAG0AbwAuAGwAbwBjAGEAbAAFABYAYwBvAHMAbQBvAC4AbABvAGMAYQBsAAAAAAAAAAAAMctznhyoCkmFkeiueXEV5A==", crand="13317733", cnum="1", response="0100000029618e9651b65a7764000000""#;

/// The server's Authentication-Info on the 200 OK to that REGISTER.
const OC_R2_AUTHENTICATION_INFO: &str = r#"NTLM rspauth="01000000E615438A917661BE64000000", srand="9616454F", snum="1", opaque="2BDBAC9D", qop="auth", targetname="cosmo-ocs-r2.cosmo.local", realm="SIP Communications Service""#;

const REALM: &str = "SIP Communications Service";

fn oc_r2_request_fields() -> MessageFields<'static> {
    MessageFields::from_headers(&HeaderValues {
        call_id: "4037df9284354df39065195bd57a4b14",
        cseq: "3 REGISTER",
        from: "<sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15",
        to: "<sip:user@cosmo.local>",
        asserted_identity: None,
        expires: None,
        status_code: None,
    })
}

fn oc_r2_response_fields() -> MessageFields<'static> {
    MessageFields::from_headers(&HeaderValues {
        call_id: "4037df9284354df39065195bd57a4b14",
        cseq: "3 REGISTER",
        from: "\"User\"<sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15",
        to: "<sip:user@cosmo.local>;tag=5E61CCD925D17E043D9A74835A88F664",
        asserted_identity: None,
        expires: Some("7200"),
        status_code: Some(200),
    })
}

fn oc_r2_challenge() -> ChallengeMessage {
    // Only the server challenge of the captured CHALLENGE_MESSAGE enters the proof (the
    // client sent no MIC), so herald's own message with the same nonce stands in for it.
    let identity = ServerIdentity::new(
        "COSMO",
        "COSMO-OCS-R2",
        "cosmo.local",
        "cosmo-ocs-r2.cosmo.local",
    )
    .unwrap();
    let nonce = hex::decode("DD1BAAF4E7E218D1").unwrap();
    ChallengeMessage::new(&identity, nonce.try_into().unwrap(), None)
}

fn oc_r2_association() -> SecurityAssociation {
    let message = AuthenticateMessage::parse(&hex::decode(OC_R2_AUTHENTICATE).unwrap()).unwrap();
    assert_eq!((message.user(), message.domain()), ("User", "COSMO"));
    assert_eq!(message.workstation(), "COSMO-OCS-R2");
    assert_eq!(message.flags(), NegotiateFlags(0x6298_8255));
    let authenticated = accept(
        &oc_r2_challenge(),
        &message,
        &NtHash::from_password("Pa$$word"),
    )
    .unwrap();
    let params = SipaeParams::new(REALM, "cosmo-ocs-r2.cosmo.local", "2BDBAC9D", Some(4)).unwrap();
    SecurityAssociation::new(authenticated, params)
}

#[test]
fn oc_r2_final_register_credentials_parse() {
    let creds = NtlmCredentials::parse(OC_R2_PROXY_AUTHORIZATION.as_bytes()).unwrap();
    assert_eq!(
        creds.gssapi_data,
        Some(hex::decode(OC_R2_AUTHENTICATE).unwrap())
    );
    assert_eq!(creds.opaque.as_deref(), Some("2BDBAC9D"));
    assert_eq!(creds.version, Some(4));
}

#[test]
fn oc_r2_signature_text_of_the_request_and_the_response() {
    let auth = AuthFields {
        protocol: "NTLM",
        rand: "13317733",
        num: "1",
        realm: REALM,
        targetname: "cosmo-ocs-r2.cosmo.local",
    };
    assert_eq!(
        signature_buffer(4, &auth, &oc_r2_request_fields()),
        "<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>\
         <4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>\
         <sip:user@cosmo.local><><><><>"
    );
    let auth = AuthFields {
        rand: "9616454F",
        ..auth
    };
    assert_eq!(
        signature_buffer(4, &auth, &oc_r2_response_fields()),
        "<NTLM><9616454F><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>\
         <4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>\
         <sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664><><><7200><200>"
    );
}

#[test]
fn oc_r2_client_signature_verifies() {
    let mut sa = oc_r2_association();
    let creds = NtlmCredentials::parse(OC_R2_PROXY_AUTHORIZATION.as_bytes()).unwrap();
    assert!(sa.matches(&creds));
    assert_eq!(sa.verify(&creds, &oc_r2_request_fields()), Ok(()));
    assert_eq!(sa.highest_cnum(), Some(1));

    // Any change to a signed field breaks it.
    let mut fields = oc_r2_request_fields();
    fields.from_tag = "3e49177a53";
    assert_eq!(sa.verify(&creds, &fields), Err(SignatureError::Mismatch));
    let mut other = creds.clone();
    other.cnum = Some("2".into());
    assert_eq!(
        sa.verify(&other, &oc_r2_request_fields()),
        Err(SignatureError::Mismatch)
    );
    other.opaque = Some("00000000".into());
    assert_eq!(
        sa.verify(&other, &oc_r2_request_fields()),
        Err(SignatureError::OtherAssociation { param: "opaque" })
    );
    other.opaque = None;
    assert_eq!(
        sa.verify(&other, &oc_r2_request_fields()),
        Err(SignatureError::MissingParam { param: "opaque" })
    );
}

#[test]
fn oc_r2_server_signature_is_reproduced_byte_for_byte() {
    let mut sa = oc_r2_association();
    let info = sa.sign(0x9616_454F, &oc_r2_response_fields());
    assert_eq!(info.to_string(), OC_R2_AUTHENTICATION_INFO);
    // The next message gets the next snum.
    assert_eq!(sa.sign(1, &oc_r2_response_fields()).snum, "2");
}

#[test]
fn oc_r2_wrong_password_is_refused() {
    let message = AuthenticateMessage::parse(&hex::decode(OC_R2_AUTHENTICATE).unwrap()).unwrap();
    assert_eq!(
        accept(
            &oc_r2_challenge(),
            &message,
            &NtHash::from_password("Pa$$word2")
        )
        .unwrap_err(),
        VerifyError::WrongProof
    );
}

#[test]
fn sipe_style_client_reproduces_the_oc_r2_authenticate_message() {
    let challenge = parse_challenge(&hex::decode(OC_R2_CHALLENGE).unwrap()).unwrap();
    let message = AuthenticateMessage::parse(&hex::decode(OC_R2_AUTHENTICATE).unwrap()).unwrap();
    let authenticated = accept(
        &oc_r2_challenge(),
        &message,
        &NtHash::from_password("Pa$$word"),
    )
    .unwrap();
    let (built, _) = build_authenticate(
        &challenge,
        &ClientParams {
            user: "User",
            domain: "COSMO",
            workstation: "COSMO-OCS-R2",
            nt_hash: NtHash::from_password("Pa$$word"),
            client_challenge: hex::decode("D6AE875CB0FDAA41").unwrap().try_into().unwrap(),
            random_session_key: authenticated.keys.exported_session_key(),
            timestamp: FileTime(0x01CA_B927_179A_5159),
            version: [5, 2, 0xCE, 0x0E, 0, 0, 0, 0x0F],
            with_mic: false,
        },
    );
    assert_eq!(hex::encode_upper(built), OC_R2_AUTHENTICATE);
}

struct Handshake {
    server: SecurityAssociation,
    client: ClientAssociation,
}

fn handshake(
    user: &str,
    domain: &str,
    password: &str,
    server_challenge: [u8; 8],
    with_mic: bool,
) -> Result<Handshake, VerifyError> {
    let identity =
        ServerIdentity::new("EXAMPLE", "FE01", "example.test", "fe01.example.test").unwrap();
    let challenge = ChallengeMessage::new(
        &identity,
        server_challenge,
        Some(FileTime(0x01DB_0000_0000_0000)),
    );
    let params = SipaeParams::new(REALM, "fe01.example.test", "4C40C5B3", Some(4)).unwrap();

    // What travels in the 401: parse it back as the client would.
    let www = NtlmChallenge {
        realm: params.realm().into(),
        targetname: params.targetname().into(),
        version: params.version(),
        opaque: Some(params.opaque().into()),
        gssapi_data: Some(challenge.as_bytes().to_vec()),
    }
    .to_string();
    let seen = NtlmChallenge::parse(www.as_bytes()).unwrap();
    let parsed = parse_challenge(&seen.gssapi_data.unwrap()).unwrap();
    assert_eq!(parsed.timestamp, Some(FileTime(0x01DB_0000_0000_0000)));

    let (bytes, client_keys) = build_authenticate(
        &parsed,
        &ClientParams {
            user,
            domain,
            workstation: "HOST",
            nt_hash: NtHash::from_password(password),
            client_challenge: [7; 8],
            random_session_key: [0x42; 16],
            timestamp: FileTime(1),
            version: SIPE_VERSION,
            with_mic,
        },
    );
    let authorization = NtlmCredentials {
        qop: Some("auth".into()),
        realm: Some(seen.realm.clone()),
        targetname: Some(seen.targetname.clone()),
        opaque: seen.opaque.clone(),
        version: seen.version,
        gssapi_data: Some(bytes),
        ..NtlmCredentials::default()
    }
    .to_string();

    let creds = NtlmCredentials::parse(authorization.as_bytes()).unwrap();
    let message = AuthenticateMessage::parse(&creds.gssapi_data.unwrap()).unwrap();
    let stored = NtHash::from_password("secret");
    let authenticated = accept(&challenge, &message, &stored)?;
    assert_eq!(authenticated.user, user);
    Ok(Handshake {
        server: SecurityAssociation::new(authenticated, params),
        client: ClientAssociation {
            keys: client_keys,
            realm: seen.realm,
            targetname: seen.targetname,
            opaque: seen.opaque.unwrap_or_default(),
            version: seen.version,
            cnum: 0,
        },
    })
}

fn notify_fields() -> MessageFields<'static> {
    MessageFields::from_headers(&HeaderValues {
        call_id: "A5B5BF74x",
        cseq: "8 BENOTIFY",
        from: "<sip:alice@example.test>;tag=ee2391e681",
        to: "<sip:alice@example.test>;tag=682334454",
        asserted_identity: None,
        expires: None,
        status_code: None,
    })
}

#[test]
fn round_trip_with_a_sipe_style_client() {
    let mut hs = handshake("alice", "EXAMPLE", "secret", [1; 8], false).unwrap();
    // Client → server.
    let creds = hs.client.sign_request(0x741394f7, &notify_fields());
    let creds = NtlmCredentials::parse(creds.to_string().as_bytes()).unwrap();
    assert_eq!(hs.server.verify(&creds, &notify_fields()), Ok(()));
    // Server → client, through the printed header.
    let info = hs.server.sign(0xb8030244, &notify_fields());
    let info = AuthenticationInfo::parse(info.to_string().as_bytes()).unwrap();
    assert_eq!(hs.client.verify_response(&info, &notify_fields()), Ok(()));
    let mut other = notify_fields();
    other.cseq_number = "9";
    assert_eq!(
        hs.client.verify_response(&info, &other),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn round_trip_with_a_mic() {
    let hs = handshake("alice", "EXAMPLE", "secret", [2; 8], true);
    assert!(hs.is_ok());
}

#[test]
fn a_tampered_mic_is_refused() {
    let identity =
        ServerIdentity::new("EXAMPLE", "FE01", "example.test", "fe01.example.test").unwrap();
    let challenge = ChallengeMessage::new(&identity, [3; 8], Some(FileTime(5)));
    let parsed = parse_challenge(challenge.as_bytes()).unwrap();
    let params = ClientParams {
        user: "alice",
        domain: "",
        workstation: "HOST",
        nt_hash: NtHash::from_password("secret"),
        client_challenge: [7; 8],
        random_session_key: [0x42; 16],
        timestamp: FileTime(1),
        version: SIPE_VERSION,
        with_mic: true,
    };
    let (mut bytes, _) = build_authenticate(&parsed, &params);
    bytes[80] ^= 1;
    let message = AuthenticateMessage::parse(&bytes).unwrap();
    assert_eq!(
        accept(&challenge, &message, &NtHash::from_password("secret")).unwrap_err(),
        VerifyError::MicMismatch
    );
}

#[test]
fn wrong_password_and_reused_challenge_answers_are_refused() {
    assert_eq!(
        handshake("alice", "EXAMPLE", "wrong", [4; 8], false).err(),
        Some(VerifyError::WrongProof)
    );
}

#[test]
fn a_client_that_uses_an_empty_domain_for_ntowfv2_is_accepted() {
    // [MS-NLMP] §3.2.5.1.2: "NTLM servers SHOULD support NTLM clients which incorrectly use
    // NIL for the UserDom". Simulate by proving with domain "" but sending "EXAMPLE".
    let identity =
        ServerIdentity::new("EXAMPLE", "FE01", "example.test", "fe01.example.test").unwrap();
    let challenge = ChallengeMessage::new(&identity, [5; 8], None);
    let parsed = parse_challenge(challenge.as_bytes()).unwrap();
    let (bytes, _) = build_authenticate(
        &parsed,
        &ClientParams {
            user: "alice",
            domain: "",
            workstation: "HOST",
            nt_hash: NtHash::from_password("secret"),
            client_challenge: [7; 8],
            random_session_key: [0x42; 16],
            timestamp: FileTime(1),
            version: SIPE_VERSION,
            with_mic: false,
        },
    );
    // Patch the domain field to point at the user name bytes: same proof, non-empty domain.
    let mut patched = bytes;
    let user_ref = patched[36..44].to_vec();
    patched[28..36].copy_from_slice(&user_ref);
    let message = AuthenticateMessage::parse(&patched).unwrap();
    assert_eq!(message.domain(), "alice");
    assert!(accept(&challenge, &message, &NtHash::from_password("secret")).is_ok());
}

#[test]
fn anonymous_and_ntlm_v1_are_refused() {
    let challenge = oc_r2_challenge();
    let mut raw = hex::decode(OC_R2_AUTHENTICATE).unwrap();
    // NT response length 0: anonymous.
    raw[20..24].copy_from_slice(&[0, 0, 0, 0]);
    let message = AuthenticateMessage::parse(&raw).unwrap();
    assert_eq!(
        accept(&challenge, &message, &NtHash::from_password("x")).unwrap_err(),
        VerifyError::Anonymous
    );
    // NT response length 24: NTLMv1.
    raw[20..24].copy_from_slice(&[24, 0, 24, 0]);
    let message = AuthenticateMessage::parse(&raw).unwrap();
    assert_eq!(
        accept(&challenge, &message, &NtHash::from_password("x")).unwrap_err(),
        VerifyError::NtlmV1
    );
}

fn valid_authenticate() -> Vec<u8> {
    hex::decode(OC_R2_AUTHENTICATE).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn authenticate_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = AuthenticateMessage::parse(&bytes);
        let mut with_header = b"NTLMSSP\0\x03\0\0\0".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = AuthenticateMessage::parse(&with_header);
    }

    #[test]
    fn mutated_messages_parse_or_fail_cleanly_and_never_verify_wrongly(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut raw = valid_authenticate();
        for (at, byte) in &edits {
            let i = at.index(raw.len());
            raw[i] = *byte;
        }
        if truncate {
            raw.truncate(cut.index(raw.len()));
        }
        if let Ok(message) = AuthenticateMessage::parse(&raw) {
            // Whatever the outcome, it is an outcome, not a panic; and a message whose
            // proof-bearing bytes changed must not verify.
            let result = accept(&oc_r2_challenge(), &message, &NtHash::from_password("Pa$$word"));
            if raw != valid_authenticate() && result.is_ok() {
                // Only bytes outside the proof may have changed: names' case, the LM
                // response, the Version, the workstation or flags not affecting the keys.
                let NtResponse::V2(v2) = message.nt_response() else { unreachable!() };
                prop_assert_eq!(
                    hex::encode_upper(v2.nt_proof_str),
                    "8DC0C800AE76ECA606D2B9FBEBD04731"
                );
            }
        }
    }

    #[test]
    fn header_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = NtlmCredentials::parse(&bytes);
        let _ = NtlmChallenge::parse(&bytes);
        let _ = AuthenticationInfo::parse(&bytes);
        let mut ntlm = b"NTLM ".to_vec();
        ntlm.extend_from_slice(&bytes);
        let _ = NtlmCredentials::parse(&ntlm);
    }

    #[test]
    fn credentials_print_and_parse_back(
        crand in "[0-9a-f]{8}",
        cnum in 1u32..100_000,
        realm in "[ -!#-;=?-~]{1,40}",
        opaque in "[0-9A-F]{8}",
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let creds = NtlmCredentials {
            qop: Some("auth".into()),
            realm: Some(realm),
            targetname: Some("fe01.example.test".into()),
            opaque: Some(opaque),
            version: Some(4),
            gssapi_data: Some(data),
            crand: Some(crand),
            cnum: Some(cnum.to_string()),
            response: Some(MessageSignature([9; 16])),
        };
        prop_assert_eq!(NtlmCredentials::parse(creds.to_string().as_bytes()), Ok(creds));
    }

    #[test]
    fn any_user_domain_and_password_round_trip(
        user in "[A-Za-z0-9._ äöüéß-]{1,20}",
        domain in "[A-Za-z0-9.-]{0,15}",
        server_challenge in any::<[u8; 8]>(),
        with_mic in any::<bool>(),
    ) {
        // The handshake stores "secret" server-side; the client proves with the same.
        let hs = handshake(&user, &domain, "secret", server_challenge, with_mic);
        prop_assert!(hs.is_ok());
        let mut hs = hs.unwrap();
        let creds = hs.client.sign_request(1, &notify_fields());
        prop_assert_eq!(hs.server.verify(&creds, &notify_fields()), Ok(()));
        let info = hs.server.sign(2, &notify_fields());
        prop_assert_eq!(hs.client.verify_response(&info, &notify_fields()), Ok(()));
    }
}

#[test]
fn base64_of_the_challenge_is_standard_padded() {
    let challenge = oc_r2_challenge();
    let text = base64::engine::general_purpose::STANDARD.encode(challenge.as_bytes());
    let header = NtlmChallenge {
        realm: REALM.into(),
        targetname: "t".into(),
        version: Some(4),
        opaque: Some("1".into()),
        gssapi_data: Some(challenge.as_bytes().to_vec()),
    }
    .to_string();
    assert!(header.contains(&format!("gssapi-data=\"{text}\"")));
}
