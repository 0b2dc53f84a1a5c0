//! Verifying an AUTHENTICATE_MESSAGE against a stored NT hash and deriving the session keys
//! ([MS-NLMP] §3.2.5.2.2, §3.3.2, §3.4.5).

use subtle::ConstantTimeEq;

use crate::authenticate::{AuthenticateMessage, NtResponse, NtlmV2Response};
use crate::challenge::ChallengeMessage;
use crate::crypto::{NtHash, hmac_md5, ntowfv2, rc4k, upper_user_candidates};
use crate::flags::NegotiateFlags;
use crate::session::SessionKeys;

/// Verifies `message`, the answer to `challenge`, with the user's stored NT hash.
///
/// The caller looks `nt_hash` up by [`AuthenticateMessage::user`] and
/// [`AuthenticateMessage::domain`]; for an unknown user it should still call this with a
/// random hash, so that unknown users and wrong passwords take the same time and give the same
/// answer. On success the returned keys sign and verify every later message of the client
/// (wrap them in a [`SecurityAssociation`](crate::SecurityAssociation)).
pub fn accept(
    challenge: &ChallengeMessage,
    message: &AuthenticateMessage,
    nt_hash: &NtHash,
) -> Result<Authenticated, VerifyError> {
    let flags = message.flags();
    let missing = flags.missing(NegotiateFlags::REQUIRED);
    if !missing.is_empty() {
        return Err(VerifyError::MissingFlags { missing });
    }
    // Flags beyond those offered are not refused: clients add REQUEST_TARGET and others, and
    // only the flags that shape the keys (KEY_EXCH, 128, 56) matter, all handled below.
    let v2 = match message.nt_response() {
        NtResponse::Empty => return Err(VerifyError::Anonymous),
        NtResponse::V1(_) => return Err(VerifyError::NtlmV1),
        NtResponse::V2(v2) => v2,
    };
    let derived = derive(challenge.server_challenge(), message, v2, nt_hash)?;

    if v2.av_pairs.mic_present() {
        let Some(mic) = message.mic() else {
            return Err(VerifyError::MicMissing);
        };
        // Connectionless: HMAC_MD5(ExportedSessionKey, CHALLENGE_MESSAGE ||
        // AUTHENTICATE_MESSAGE with a zeroed MIC) — there is no NEGOTIATE_MESSAGE to include.
        let expected = hmac_md5(
            &derived.keys.exported_session_key(),
            &[challenge.as_bytes(), &message.bytes_without_mic()],
        );
        if !bool::from(expected.ct_eq(&mic)) {
            return Err(VerifyError::MicMismatch);
        }
    }

    Ok(Authenticated {
        user: message.user().to_owned(),
        domain: message.domain().to_owned(),
        workstation: message.workstation().to_owned(),
        keys: derived.keys,
    })
}

/// Who logged on, and the keys of their session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user name from the message.
    pub user: String,
    /// The domain from the message.
    pub domain: String,
    /// The workstation from the message.
    pub workstation: String,
    /// The four signing/sealing keys.
    pub keys: SessionKeys,
}

/// Why a well-formed AUTHENTICATE_MESSAGE is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The client did not negotiate something MS-SIPAE needs ([`NegotiateFlags::REQUIRED`]).
    #[error("required flags not negotiated: {missing}")]
    MissingFlags {
        /// What is missing.
        missing: NegotiateFlags,
    },
    /// An empty NT response: anonymous logon, which a registrar never accepts.
    #[error("anonymous logon")]
    Anonymous,
    /// A 24-byte NTLMv1 response.
    #[error("NTLMv1 responses are not accepted")]
    NtlmV1,
    /// NTProofStr does not match: wrong password, unknown user, or a replayed response.
    #[error("NTLMv2 proof does not match")]
    WrongProof,
    /// MsvAvFlags announces a MIC but the header has no room for one.
    #[error("MIC announced but absent")]
    MicMissing,
    /// The MIC does not match: the messages were tampered with.
    #[error("MIC does not match")]
    MicMismatch,
}

pub(crate) struct Derived {
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "only the §4.2.4 test inspects the intermediate key"
        )
    )]
    pub(crate) session_base_key: [u8; 16],
    pub(crate) keys: SessionKeys,
}

/// The NTLMv2 computation of §3.2.5.1.2 without any policy, so the §4.2.4 example (which is
/// connection-oriented) can be checked step by step.
pub(crate) fn derive(
    server_challenge: [u8; 8],
    message: &AuthenticateMessage,
    v2: &NtlmV2Response,
    nt_hash: &NtHash,
) -> Result<Derived, VerifyError> {
    // "NTLM servers SHOULD support NTLM clients which incorrectly use NIL for the UserDom".
    let domains: &[&str] = if message.domain().is_empty() {
        &[""]
    } else {
        &[message.domain(), ""]
    };
    let mut found = None;
    for upper_user in upper_user_candidates(message.user()) {
        for domain in domains {
            let response_key = ntowfv2(nt_hash, &upper_user, domain);
            let proof = hmac_md5(&response_key, &[&server_challenge, &v2.client_blob]);
            if bool::from(proof.ct_eq(&v2.nt_proof_str)) && found.is_none() {
                found = Some(response_key);
            }
        }
    }
    let response_key = found.ok_or(VerifyError::WrongProof)?;
    let session_base_key = hmac_md5(&response_key, &[&v2.nt_proof_str]);
    // KXKEY for NTLMv2 is the session base key.
    let key_exchange_key = session_base_key;
    let flags = message.flags();
    let exported = match message.encrypted_random_session_key() {
        Some(encrypted)
            if flags.contains(NegotiateFlags::KEY_EXCH)
                && (flags.contains(NegotiateFlags::SIGN)
                    || flags.contains(NegotiateFlags::SEAL)) =>
        {
            rc4k(&key_exchange_key, *encrypted)
        }
        _ => key_exchange_key,
    };
    Ok(Derived {
        session_base_key,
        keys: SessionKeys::new(exported, flags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authenticate::tests::ms_nlmp_authenticate;

    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    #[test]
    fn ms_nlmp_section_4_2_4_keys() {
        let msg = ms_nlmp_authenticate();
        let NtResponse::V2(v2) = msg.nt_response() else {
            panic!()
        };
        let hash = NtHash::from_password("Password");
        let derived = derive(SERVER_CHALLENGE, &msg, v2, &hash).unwrap();
        // §4.2.4.1.2 Session Base Key.
        assert_eq!(
            hex::encode(derived.session_base_key),
            "8de40ccadbc14a82f15cb0ad0de95ca3"
        );
        // §4.2.4.2.3: the RandomSessionKey was 0x55 × 16.
        assert_eq!(derived.keys.exported_session_key(), [0x55; 16]);
        assert!(matches!(
            derive(
                SERVER_CHALLENGE,
                &msg,
                v2,
                &NtHash::from_password("password")
            ),
            Err(VerifyError::WrongProof)
        ));
    }

    #[test]
    fn the_connection_oriented_example_is_refused_for_lack_of_datagram() {
        let identity =
            crate::ServerIdentity::new("Domain", "Server", "domain.test", "server.domain.test")
                .unwrap();
        let challenge = ChallengeMessage::new(&identity, SERVER_CHALLENGE, None);
        let err = accept(
            &challenge,
            &ms_nlmp_authenticate(),
            &NtHash::from_password("Password"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            VerifyError::MissingFlags {
                missing: NegotiateFlags::DATAGRAM
            }
        );
    }
}
