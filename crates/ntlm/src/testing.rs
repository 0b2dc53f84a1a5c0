//! The client side of the handshake, as SIPE performs it: for round-trip tests here and in the
//! crates that drive the acceptor (feature `testing`).

use crate::av_pair::{AvId, AvPair, AvPairs};
use crate::challenge::{MESSAGE_TYPE_AUTHENTICATE, MESSAGE_TYPE_CHALLENGE};
use crate::crypto::{FileTime, NtHash, hmac_md5, ntowfv2, rc4k};
use crate::flags::NegotiateFlags;
use crate::header::{AuthenticationInfo, NtlmCredentials};
use crate::session::{Direction, SessionKeys};
use crate::sipae::{AuthFields, MessageFields, SIPAE_SEQ_NUM, SignatureError, signature_buffer};
use crate::wire::{FieldRef, MessageWriter, Reader, SIGNATURE, utf16le};

/// What a client learns from a CHALLENGE_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedChallenge {
    /// The offered flags.
    pub flags: NegotiateFlags,
    /// The server's nonce.
    pub server_challenge: [u8; 8],
    /// TargetInfo, raw (EOL included).
    pub target_info: Vec<u8>,
    /// MsvAvTimestamp, if offered.
    pub timestamp: Option<FileTime>,
    /// The message itself, for the MIC.
    pub raw: Vec<u8>,
}

/// Parses a CHALLENGE_MESSAGE; `None` when it is malformed.
pub fn parse_challenge(raw: &[u8]) -> Option<ParsedChallenge> {
    let mut r = Reader::new(raw);
    if r.bytes(8)? != SIGNATURE || r.u32()? != MESSAGE_TYPE_CHALLENGE {
        return None;
    }
    let _target_name = FieldRef::read(&mut r)?;
    let flags = NegotiateFlags(r.u32()?);
    let server_challenge = r.array::<8>()?;
    r.bytes(8)?;
    let target_info = FieldRef::read(&mut r)?.slice(raw)?.to_vec();
    let timestamp = AvPairs::parse(&target_info).ok()?.timestamp();
    Some(ParsedChallenge {
        flags,
        server_challenge,
        target_info,
        timestamp,
        raw: raw.to_vec(),
    })
}

/// The client's inputs: who, and the values a real client would draw at random.
#[derive(Debug, Clone)]
pub struct ClientParams<'a> {
    /// User name as sent (case preserved).
    pub user: &'a str,
    /// Domain, possibly empty.
    pub domain: &'a str,
    /// Workstation name.
    pub workstation: &'a str,
    /// The password's NT hash.
    pub nt_hash: NtHash,
    /// The 8-byte client nonce.
    pub client_challenge: [u8; 8],
    /// The random session key sent encrypted under KEY_EXCH.
    pub random_session_key: [u8; 16],
    /// Used when the challenge has no MsvAvTimestamp.
    pub timestamp: FileTime,
    /// The Version structure to send.
    pub version: [u8; 8],
    /// Add MsvAvFlags 0x2 and a MIC, as Windows clients do when the challenge has a timestamp.
    pub with_mic: bool,
}

/// Builds an AUTHENTICATE_MESSAGE for `challenge` the way SIPE 1.25 does
/// (`sip_sec_ntlm_gen_authenticate`), returning it with the client's view of the keys.
pub fn build_authenticate(
    challenge: &ParsedChallenge,
    p: &ClientParams<'_>,
) -> (Vec<u8>, SessionKeys) {
    let mut flags = (challenge.flags & SIPE_FLAGS) | NegotiateFlags::REQUEST_TARGET;
    if flags.contains(NegotiateFlags::NEGOTIATE_128) {
        flags = flags & !NegotiateFlags::NEGOTIATE_56;
    }
    let time = challenge.timestamp.unwrap_or(p.timestamp);

    let mut target_info = challenge.target_info.clone();
    if p.with_mic {
        let mut pairs = AvPairs::parse(&target_info).unwrap_or_default();
        pairs.0.push(AvPair {
            id: AvId::Flags,
            value: 2u32.to_le_bytes().to_vec(),
        });
        target_info = pairs.encode();
    }
    let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
    blob.extend_from_slice(&time.0.to_le_bytes());
    blob.extend_from_slice(&p.client_challenge);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(&target_info);
    blob.extend_from_slice(&[0; 4]);

    let response_key = ntowfv2(&p.nt_hash, &p.user.to_ascii_uppercase(), p.domain);
    let nt_proof = hmac_md5(&response_key, &[&challenge.server_challenge, &blob]);
    let mut nt_response = nt_proof.to_vec();
    nt_response.extend_from_slice(&blob);
    let mut lm_response = hmac_md5(
        &response_key,
        &[&challenge.server_challenge, &p.client_challenge],
    )
    .to_vec();
    lm_response.extend_from_slice(&p.client_challenge);

    let key_exchange_key = hmac_md5(&response_key, &[&nt_proof]);
    let (exported, encrypted) = if flags.contains(NegotiateFlags::KEY_EXCH) {
        (
            p.random_session_key,
            rc4k(&key_exchange_key, p.random_session_key).to_vec(),
        )
    } else {
        (key_exchange_key, Vec::new())
    };

    let header_len = if p.with_mic { 88 } else { 72 };
    // SIPE's payload order: domain, user, host, LM, NT, session key; the header refers to
    // them in the spec's order, so the fields are laid out first and referenced after.
    let domain = utf16le(p.domain);
    let user = utf16le(p.user);
    let host = utf16le(p.workstation);
    let mut offsets = Vec::new();
    let mut at = header_len;
    for part in [
        &domain,
        &user,
        &host,
        &lm_response,
        &nt_response,
        &encrypted,
    ] {
        offsets.push(at);
        at += part.len();
    }
    let field = |w: &mut MessageWriter, data: &[u8], offset: usize| {
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX).to_le_bytes();
        w.put(&len);
        w.put(&len);
        w.u32(u32::try_from(offset).unwrap_or(u32::MAX));
    };
    let mut w = MessageWriter::new(header_len);
    w.put(SIGNATURE);
    w.u32(MESSAGE_TYPE_AUTHENTICATE);
    field(&mut w, &lm_response, offsets[3]);
    field(&mut w, &nt_response, offsets[4]);
    field(&mut w, &domain, offsets[0]);
    field(&mut w, &user, offsets[1]);
    field(&mut w, &host, offsets[2]);
    field(&mut w, &encrypted, offsets[5]);
    w.u32(flags.0);
    w.put(&p.version);
    if p.with_mic {
        w.put(&[0; 16]);
    }
    let mut message = w.finish();
    for part in [
        &domain,
        &user,
        &host,
        &lm_response,
        &nt_response,
        &encrypted,
    ] {
        message.extend_from_slice(part);
    }
    if p.with_mic {
        let mic = hmac_md5(&exported, &[&challenge.raw, &message]);
        message[72..88].copy_from_slice(&mic);
    }
    (message, SessionKeys::new(exported, flags))
}

/// The client's half of a security association: signs requests, checks `rspauth`.
#[derive(Debug, Clone)]
pub struct ClientAssociation {
    /// The keys from [`build_authenticate`].
    pub keys: SessionKeys,
    /// `realm` from the challenge.
    pub realm: String,
    /// `targetname` from the challenge.
    pub targetname: String,
    /// `opaque` from the challenge.
    pub opaque: String,
    /// `version` from the challenge.
    pub version: Option<u32>,
    /// The last `cnum` used; SIPE starts at 1.
    pub cnum: u64,
}

impl ClientAssociation {
    /// Signs a request as SIPE does and returns its Authorization credentials.
    pub fn sign_request(&mut self, crand: u32, fields: &MessageFields<'_>) -> NtlmCredentials {
        self.cnum += 1;
        let crand = format!("{crand:08x}");
        let cnum = self.cnum.to_string();
        let text = signature_buffer(
            self.version.unwrap_or(0),
            &AuthFields {
                protocol: "NTLM",
                rand: &crand,
                num: &cnum,
                realm: &self.realm,
                targetname: &self.targetname,
            },
            fields,
        );
        let response = self
            .keys
            .sign(Direction::ClientToServer, SIPAE_SEQ_NUM, text.as_bytes());
        NtlmCredentials {
            qop: Some("auth".to_owned()),
            realm: Some(self.realm.clone()),
            targetname: Some(self.targetname.clone()),
            opaque: Some(self.opaque.clone()),
            version: None,
            gssapi_data: None,
            crand: Some(crand),
            cnum: Some(cnum),
            response: Some(response),
        }
    }

    /// Checks a server signature the way SIPE does: the signed text takes protocol, rand,
    /// num, realm and targetname from the Authentication-Info header itself.
    pub fn verify_response(
        &self,
        info: &AuthenticationInfo,
        fields: &MessageFields<'_>,
    ) -> Result<(), SignatureError> {
        let text = signature_buffer(
            self.version.unwrap_or(0),
            &AuthFields {
                protocol: "NTLM",
                rand: &info.srand,
                num: &info.snum,
                realm: &info.realm,
                targetname: &info.targetname,
            },
            fields,
        );
        self.keys
            .verify(
                Direction::ServerToClient,
                SIPAE_SEQ_NUM,
                text.as_bytes(),
                &info.rspauth,
            )
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// SIPE's `NEGOTIATE_FLAGS` for connectionless NTLM: what it keeps of the server's offer.
const SIPE_FLAGS: NegotiateFlags = NegotiateFlags(
    NegotiateFlags::UNICODE.0
        | NegotiateFlags::NTLM.0
        | NegotiateFlags::ALWAYS_SIGN.0
        | NegotiateFlags::EXTENDED_SESSIONSECURITY.0
        | NegotiateFlags::TARGET_INFO.0
        | NegotiateFlags::VERSION.0
        | NegotiateFlags::NEGOTIATE_128.0
        | NegotiateFlags::KEY_EXCH.0
        | NegotiateFlags::NEGOTIATE_56.0
        | NegotiateFlags::REQUEST_TARGET.0
        | NegotiateFlags::SIGN.0
        | NegotiateFlags::DATAGRAM.0
        | NegotiateFlags::IDENTIFY.0,
);

/// 5.1.2600 (Windows XP SP2), NTLMSSP_REVISION_W2K3: the Version SIPE sends.
pub const SIPE_VERSION: [u8; 8] = [5, 1, 0x28, 0x0A, 0, 0, 0, 0x0F];
