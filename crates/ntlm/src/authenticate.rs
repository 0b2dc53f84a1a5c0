//! The client's AUTHENTICATE_MESSAGE ([MS-NLMP] §2.2.1.3), parsed completely before anything
//! is computed from it.

use crate::av_pair::{AvPairError, AvPairs};
use crate::challenge::MESSAGE_TYPE_AUTHENTICATE;
use crate::crypto::FileTime;
use crate::flags::NegotiateFlags;
use crate::wire::{FieldRef, Reader, SIGNATURE, from_utf16le};

/// A decoded AUTHENTICATE_MESSAGE.
///
/// Every offset and length has been checked against the message, every string decoded and the
/// NTLMv2 response split into its parts; nothing has been verified yet. Read
/// [`user`](Self::user) and [`domain`](Self::domain) to look the NT hash up, then pass the
/// message to [`accept`](crate::accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateMessage {
    flags: NegotiateFlags,
    lm_response: Vec<u8>,
    nt_response: NtResponse,
    domain: String,
    user: String,
    workstation: String,
    encrypted_random_session_key: Option<[u8; 16]>,
    version: Option<[u8; 8]>,
    mic: Option<[u8; 16]>,
    raw: Vec<u8>,
}

/// The NtChallengeResponse, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NtResponse {
    /// No response: an anonymous logon attempt.
    Empty,
    /// A 24-byte NTLMv1 response (not accepted: it is DES-based and crackable).
    V1([u8; 24]),
    /// An NTLMv2_RESPONSE.
    V2(NtlmV2Response),
}

/// An NTLMv2_RESPONSE ([MS-NLMP] §2.2.2.8) with its NTLMv2_CLIENT_CHALLENGE decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtlmV2Response {
    /// NTProofStr: HMAC-MD5 over the server challenge and `client_blob`.
    pub nt_proof_str: [u8; 16],
    /// The NTLMv2_CLIENT_CHALLENGE exactly as sent ("temp" in §3.3.2), which the proof covers.
    pub client_blob: Vec<u8>,
    /// The client's timestamp (the challenge's MsvAvTimestamp when there was one).
    pub timestamp: FileTime,
    /// The client's 8-byte nonce.
    pub client_challenge: [u8; 8],
    /// The AV pairs the client echoed: the server's TargetInfo plus the client's additions.
    pub av_pairs: AvPairs,
}

impl AuthenticateMessage {
    /// Parses a message as it came out of `gssapi-data`.
    pub fn parse(raw: &[u8]) -> Result<Self, ParseError> {
        if raw.len() > MAX_MESSAGE_LEN {
            return Err(ParseError::TooLong {
                len: raw.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let mut r = Reader::new(raw);
        let truncated = ParseError::Truncated {
            len: raw.len(),
            min: HEADER_LEN,
        };
        if r.bytes(8).ok_or(truncated)? != SIGNATURE {
            return Err(ParseError::BadSignature);
        }
        let message_type = r.u32().ok_or(truncated)?;
        if message_type != MESSAGE_TYPE_AUTHENTICATE {
            return Err(ParseError::WrongMessageType {
                found: message_type,
            });
        }
        let mut refs = [FieldRef { len: 0, offset: 0 }; 6];
        for slot in &mut refs {
            *slot = FieldRef::read(&mut r).ok_or(truncated)?;
        }
        let flags = NegotiateFlags(r.u32().ok_or(truncated)?);

        // The payload starts at the lowest offset of a non-empty field; what lies between the
        // fixed header and it is the optional Version and MIC.
        let mut payload_start = raw.len();
        let mut fields: [&[u8]; 6] = [&[]; 6];
        for ((field, fref), out) in Field::ALL.iter().zip(&refs).zip(&mut fields) {
            if fref.len == 0 {
                continue;
            }
            let Some(bytes) = fref.slice(raw) else {
                return Err(ParseError::FieldOutOfBounds {
                    field: *field,
                    offset: fref.offset,
                    len: fref.len,
                    message_len: raw.len(),
                });
            };
            // A valid offset is below MAX_MESSAGE_LEN, so it fits in usize.
            let offset = fref.offset as usize;
            if offset < HEADER_LEN {
                return Err(ParseError::FieldOverlapsHeader {
                    field: *field,
                    offset: fref.offset,
                });
            }
            payload_start = payload_start.min(offset);
            *out = bytes;
        }
        let [lm, nt, domain, user, workstation, session_key] = fields;

        let version = (flags.contains(NegotiateFlags::VERSION) && payload_start >= HEADER_LEN + 8)
            .then(|| raw.get(HEADER_LEN..HEADER_LEN + 8))
            .flatten()
            .and_then(|v| v.try_into().ok());
        let mic = (payload_start >= MIC_OFFSET + 16)
            .then(|| raw.get(MIC_OFFSET..MIC_OFFSET + 16))
            .flatten()
            .and_then(|v| v.try_into().ok());

        let unicode = flags.contains(NegotiateFlags::UNICODE);
        let text = |field: Field, bytes: &[u8]| -> Result<String, ParseError> {
            if unicode {
                from_utf16le(bytes).ok_or(ParseError::InvalidUtf16 { field })
            } else {
                // OEM code page: without knowing which, Latin-1 at least never fails. The
                // acceptor refuses non-Unicode messages anyway.
                Ok(bytes.iter().map(|&b| char::from(b)).collect())
            }
        };

        let encrypted_random_session_key = if flags.contains(NegotiateFlags::KEY_EXCH) {
            let key: [u8; 16] =
                session_key
                    .try_into()
                    .map_err(|_| ParseError::BadSessionKeyLength {
                        len: session_key.len(),
                    })?;
            Some(key)
        } else {
            None
        };

        Ok(Self {
            flags,
            lm_response: lm.to_vec(),
            nt_response: NtResponse::parse(nt)?,
            domain: text(Field::DomainName, domain)?,
            user: text(Field::UserName, user)?,
            workstation: text(Field::Workstation, workstation)?,
            encrypted_random_session_key,
            version,
            mic,
            raw: raw.to_vec(),
        })
    }

    /// The negotiated flags.
    pub fn flags(&self) -> NegotiateFlags {
        self.flags
    }

    /// The user name, as typed by the user (case preserved).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The domain the user claims; empty when the client sent none.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The client's workstation name (SIPE sends the upper-cased host name).
    pub fn workstation(&self) -> &str {
        &self.workstation
    }

    /// The NT response.
    pub fn nt_response(&self) -> &NtResponse {
        &self.nt_response
    }

    /// The LM response (SIPE sends a 24-byte LMv2 response; it is not checked).
    pub fn lm_response(&self) -> &[u8] {
        &self.lm_response
    }

    /// EncryptedRandomSessionKey, present exactly when KEY_EXCH is negotiated.
    pub fn encrypted_random_session_key(&self) -> Option<&[u8; 16]> {
        self.encrypted_random_session_key.as_ref()
    }

    /// The client's Version structure, when sent.
    pub fn version(&self) -> Option<[u8; 8]> {
        self.version
    }

    /// The 16 bytes at the MIC position, when the header leaves room for them; they are a MIC
    /// only if the NTLMv2 response's MsvAvFlags says so.
    pub fn mic(&self) -> Option<[u8; 16]> {
        self.mic
    }

    /// The message as received, for MIC computation.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The message with the MIC field zeroed ("AUTHENTICATE_MESSAGE_MIC0").
    pub(crate) fn bytes_without_mic(&self) -> Vec<u8> {
        let mut out = self.raw.clone();
        if let Some(mic) = out.get_mut(MIC_OFFSET..MIC_OFFSET + 16) {
            mic.fill(0);
        }
        out
    }
}

impl NtResponse {
    fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.is_empty() {
            return Ok(Self::Empty);
        }
        if let Ok(v1) = <[u8; 24]>::try_from(bytes) {
            return Ok(Self::V1(v1));
        }
        let too_short = ParseError::NtResponseTooShort { len: bytes.len() };
        // NTProofStr and the fixed part of NTLMv2_CLIENT_CHALLENGE, before looking inside.
        if bytes.len() < 16 + 28 {
            return Err(too_short);
        }
        let mut r = Reader::new(bytes);
        let nt_proof_str = r.array::<16>().ok_or(too_short)?;
        let client_blob = &bytes[16..];
        let (Some(resp_type), Some(hi_resp_type)) = (r.u8(), r.u8()) else {
            return Err(too_short);
        };
        if resp_type != 1 {
            return Err(ParseError::UnknownResponseVersion {
                resp_type,
                hi_resp_type,
            });
        }
        // Reserved1 (2) and Reserved2 (4): ignored as the spec asks.
        r.bytes(6).ok_or(too_short)?;
        let timestamp = FileTime(r.u64().ok_or(too_short)?);
        let client_challenge = r.array::<8>().ok_or(too_short)?;
        r.bytes(4).ok_or(too_short)?; // Reserved3
        let rest = r.bytes(r.remaining()).unwrap_or_default();
        let av_pairs = AvPairs::parse(rest).map_err(ParseError::AvPairs)?;
        Ok(Self::V2(NtlmV2Response {
            nt_proof_str,
            client_blob: client_blob.to_vec(),
            timestamp,
            client_challenge,
            av_pairs,
        }))
    }
}

/// The payload fields of an AUTHENTICATE_MESSAGE, for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// LmChallengeResponse.
    LmResponse,
    /// NtChallengeResponse.
    NtResponse,
    /// DomainName.
    DomainName,
    /// UserName.
    UserName,
    /// Workstation.
    Workstation,
    /// EncryptedRandomSessionKey.
    EncryptedRandomSessionKey,
}

impl Field {
    /// In header order.
    const ALL: [Self; 6] = [
        Self::LmResponse,
        Self::NtResponse,
        Self::DomainName,
        Self::UserName,
        Self::Workstation,
        Self::EncryptedRandomSessionKey,
    ];
}

/// Why bytes are not an AUTHENTICATE_MESSAGE; answer the client with a 400 or a new challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Longer than any real message.
    #[error("message is {len} bytes, more than {max}")]
    TooLong {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Shorter than the fixed header.
    #[error("message is {len} bytes, the fixed header alone is {min}")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// The header size.
        min: usize,
    },
    /// Does not start with "NTLMSSP\0".
    #[error("not an NTLMSSP message")]
    BadSignature,
    /// An NTLM message, but not type 3.
    #[error("NTLM message type {found}, expected 3 (AUTHENTICATE)")]
    WrongMessageType {
        /// The MessageType field.
        found: u32,
    },
    /// A field points outside the message.
    #[error("{field:?} ({len} bytes at {offset}) lies outside the {message_len}-byte message")]
    FieldOutOfBounds {
        /// Which field.
        field: Field,
        /// Its BufferOffset.
        offset: u32,
        /// Its Len.
        len: u16,
        /// The message size.
        message_len: usize,
    },
    /// A field points into the fixed header.
    #[error("{field:?} at offset {offset} overlaps the fixed header")]
    FieldOverlapsHeader {
        /// Which field.
        field: Field,
        /// Its BufferOffset.
        offset: u32,
    },
    /// A Unicode string with an odd length or an unpaired surrogate.
    #[error("{field:?} is not valid UTF-16LE")]
    InvalidUtf16 {
        /// Which field.
        field: Field,
    },
    /// KEY_EXCH negotiated but the EncryptedRandomSessionKey is not 16 bytes.
    #[error("EncryptedRandomSessionKey is {len} bytes, expected 16")]
    BadSessionKeyLength {
        /// Its length.
        len: usize,
    },
    /// An NT response neither empty, NTLMv1 (24 bytes) nor long enough for NTLMv2.
    #[error("NtChallengeResponse of {len} bytes is too short for NTLMv2")]
    NtResponseTooShort {
        /// Its length.
        len: usize,
    },
    /// An NTLMv2 client challenge of an unknown version.
    #[error("NTLMv2 response version {resp_type}/{hi_resp_type}, expected 1")]
    UnknownResponseVersion {
        /// RespType.
        resp_type: u8,
        /// HiRespType.
        hi_resp_type: u8,
    },
    /// The AV pairs inside the NTLMv2 response are malformed.
    #[error("NTLMv2 response AV pairs: {0}")]
    AvPairs(AvPairError),
}

/// Generous for a message whose biggest part is the echoed TargetInfo (about 300 bytes).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;
/// Signature, type, six field references, flags.
const HEADER_LEN: usize = 64;
/// After the 8-byte Version.
const MIC_OFFSET: usize = 72;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::av_pair::AvId;
    use crate::wire::utf16le;

    /// [MS-NLMP] §4.2.4.3: the AUTHENTICATE_MESSAGE of the NTLMv2 example.
    pub(crate) const MS_NLMP_4_2_4_AUTHENTICATE: &str = "\
        4e544c4d5353500003000000180018006c00000054005400840000000c000c00\
        480000000800080054000000100010005c00000010001000d8000000358288e2\
        0501280a0000000f44006f006d00610069006e00550073006500720043004f00\
        4d0050005500540045005200\
        86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa\
        68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000\
        aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c00\
        5300650072007600650072000000000000000000\
        c5dad2544fc9799094ce1ce90bc9d03e";

    pub(crate) fn ms_nlmp_authenticate() -> AuthenticateMessage {
        AuthenticateMessage::parse(&hex::decode(MS_NLMP_4_2_4_AUTHENTICATE).unwrap()).unwrap()
    }

    #[test]
    fn ms_nlmp_section_4_2_4_3_authenticate_message_parses() {
        let msg = ms_nlmp_authenticate();
        assert_eq!(msg.flags(), NegotiateFlags(0xE288_8235));
        assert_eq!(msg.domain(), "Domain");
        assert_eq!(msg.user(), "User");
        assert_eq!(msg.workstation(), "COMPUTER");
        assert_eq!(
            hex::encode(msg.lm_response()),
            "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"
        );
        assert_eq!(
            msg.encrypted_random_session_key()
                .map(hex::encode)
                .as_deref(),
            Some("c5dad2544fc9799094ce1ce90bc9d03e")
        );
        assert_eq!(msg.version(), Some([5, 1, 0x28, 0x0a, 0, 0, 0, 0x0f]));
        assert_eq!(msg.mic(), None);
        let NtResponse::V2(v2) = msg.nt_response() else {
            panic!("NTLMv2 expected")
        };
        assert_eq!(
            hex::encode(v2.nt_proof_str),
            "68cd0ab851e51c96aabc927bebef6a1c"
        );
        assert_eq!(v2.client_challenge, [0xaa; 8]);
        assert_eq!(v2.timestamp, FileTime(0));
        assert_eq!(
            v2.av_pairs.get(AvId::NbDomainName),
            Some(&utf16le("Domain")[..])
        );
    }

    #[test]
    fn every_truncation_of_a_valid_message_is_an_error_not_a_panic() {
        let raw = hex::decode(MS_NLMP_4_2_4_AUTHENTICATE).unwrap();
        for len in 0..raw.len() {
            assert!(AuthenticateMessage::parse(&raw[..len]).is_err(), "{len}");
        }
    }

    #[test]
    fn precise_errors() {
        let raw = hex::decode(MS_NLMP_4_2_4_AUTHENTICATE).unwrap();
        let mut bad = raw.clone();
        bad[0] = b'X';
        assert_eq!(
            AuthenticateMessage::parse(&bad),
            Err(ParseError::BadSignature)
        );

        let mut bad = raw.clone();
        bad[8] = 2;
        assert_eq!(
            AuthenticateMessage::parse(&bad),
            Err(ParseError::WrongMessageType { found: 2 })
        );

        // UserName offset (bytes 40..44) pushed past the end.
        let mut bad = raw.clone();
        bad[40..44].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert_eq!(
            AuthenticateMessage::parse(&bad),
            Err(ParseError::FieldOutOfBounds {
                field: Field::UserName,
                offset: 0xFFFF_FFF0,
                len: 8,
                message_len: raw.len()
            })
        );

        // DomainName pointing into the header.
        let mut bad = raw.clone();
        bad[32..36].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(
            AuthenticateMessage::parse(&bad),
            Err(ParseError::FieldOverlapsHeader {
                field: Field::DomainName,
                offset: 8
            })
        );

        // Odd-length user name.
        let mut bad = raw.clone();
        bad[36] = 7;
        assert_eq!(
            AuthenticateMessage::parse(&bad),
            Err(ParseError::InvalidUtf16 {
                field: Field::UserName
            })
        );

        // Session key of 15 bytes with KEY_EXCH.
        let mut bad = raw;
        bad[52] = 15;
        assert_eq!(
            AuthenticateMessage::parse(&bad),
            Err(ParseError::BadSessionKeyLength { len: 15 })
        );

        assert_eq!(
            AuthenticateMessage::parse(&vec![0; MAX_MESSAGE_LEN + 1]),
            Err(ParseError::TooLong {
                len: MAX_MESSAGE_LEN + 1,
                max: MAX_MESSAGE_LEN
            })
        );
    }

    #[test]
    fn nt_response_kinds() {
        assert_eq!(NtResponse::parse(&[]), Ok(NtResponse::Empty));
        assert_eq!(NtResponse::parse(&[7; 24]), Ok(NtResponse::V1([7; 24])));
        assert_eq!(
            NtResponse::parse(&[0; 30]),
            Err(ParseError::NtResponseTooShort { len: 30 })
        );
        let mut v2 = vec![0u8; 16];
        v2.extend_from_slice(&[2, 2]);
        v2.extend_from_slice(&[0; 26]);
        assert_eq!(
            NtResponse::parse(&v2),
            Err(ParseError::UnknownResponseVersion {
                resp_type: 2,
                hi_resp_type: 2
            })
        );
    }
}
