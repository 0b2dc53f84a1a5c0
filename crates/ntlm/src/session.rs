//! Session keys and connectionless message signatures ([MS-NLMP] §3.4.4.2, §3.4.5).

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;

use crate::crypto::{Rc4, hmac_md5, md5};
use crate::flags::NegotiateFlags;

/// The keys of one authenticated NTLM session, both directions.
///
/// Stateless on purpose: in connectionless mode the RC4 handle is re-keyed for every message
/// from the sealing key and the sequence number ([MS-NLMP] §3.4), so signing needs no mutable
/// cipher state and the same keys can sign and verify in any order.
#[derive(Clone)]
pub struct SessionKeys {
    flags: NegotiateFlags,
    exported_session_key: [u8; 16],
    client_signing_key: [u8; 16],
    client_sealing_key: [u8; 16],
    server_signing_key: [u8; 16],
    server_sealing_key: [u8; 16],
}

/// Which way a message travels, which picks the key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Signed by the client (`response=` in Authorization), verified by the server.
    ClientToServer,
    /// Signed by the server (`rspauth=` in Authentication-Info), verified by the client.
    ServerToClient,
}

impl SessionKeys {
    /// Derives the four keys from ExportedSessionKey and the negotiated flags (§3.4.5.2
    /// SIGNKEY, §3.4.5.3 SEALKEY with extended session security).
    pub(crate) fn new(exported_session_key: [u8; 16], flags: NegotiateFlags) -> Self {
        let seal_len = if flags.contains(NegotiateFlags::NEGOTIATE_128) {
            16
        } else if flags.contains(NegotiateFlags::NEGOTIATE_56) {
            7
        } else {
            5
        };
        let seal_base = &exported_session_key[..seal_len];
        Self {
            flags,
            exported_session_key,
            client_signing_key: md5(&[&exported_session_key, CLIENT_SIGNING]),
            client_sealing_key: md5(&[seal_base, CLIENT_SEALING]),
            server_signing_key: md5(&[&exported_session_key, SERVER_SIGNING]),
            server_sealing_key: md5(&[seal_base, SERVER_SEALING]),
        }
    }

    /// The negotiated flags the keys were derived under.
    pub fn flags(&self) -> NegotiateFlags {
        self.flags
    }

    pub(crate) fn exported_session_key(&self) -> [u8; 16] {
        self.exported_session_key
    }

    /// The signing and sealing key of one direction.
    fn pair(&self, direction: Direction) -> (&[u8; 16], &[u8; 16]) {
        match direction {
            Direction::ClientToServer => (&self.client_signing_key, &self.client_sealing_key),
            Direction::ServerToClient => (&self.server_signing_key, &self.server_sealing_key),
        }
    }

    /// MAC(Handle, SigningKey, SeqNum, Message) with extended session security (§3.4.4.2).
    ///
    /// The checksum is HMAC_MD5(SigningKey, SeqNum || Message)[0..8]; with KEY_EXCH it is then
    /// RC4-encrypted, in connectionless mode (DATAGRAM) under a per-message key
    /// SealingKey' = MD5(SealingKey || SeqNum).
    pub fn sign(&self, direction: Direction, seq_num: u32, message: &[u8]) -> MessageSignature {
        let (signing_key, sealing_key) = self.pair(direction);
        let seq = seq_num.to_le_bytes();
        let digest = hmac_md5(signing_key, &[&seq, message]);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&digest[..8]);
        if self.flags.contains(NegotiateFlags::KEY_EXCH) {
            let handle_key = if self.flags.contains(NegotiateFlags::DATAGRAM) {
                md5(&[sealing_key, &seq])
            } else {
                *sealing_key
            };
            Rc4::new(&handle_key).apply(&mut checksum);
        }
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&SIGNATURE_VERSION.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq);
        MessageSignature(sig)
    }

    /// Checks a received signature in constant time.
    pub fn verify(
        &self,
        direction: Direction,
        seq_num: u32,
        message: &[u8],
        signature: &MessageSignature,
    ) -> Result<(), BadSignature> {
        let expected = self.sign(direction, seq_num, message);
        if bool::from(expected.0.ct_eq(&signature.0)) {
            Ok(())
        } else {
            Err(BadSignature)
        }
    }
}

impl fmt::Debug for SessionKeys {
    /// Redacted: the keys are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// An NTLMSSP_MESSAGE_SIGNATURE ([MS-NLMP] §2.2.2.9.1): version 1, checksum, sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageSignature(pub [u8; 16]);

impl MessageSignature {
    /// The sequence number field.
    pub fn seq_num(&self) -> u32 {
        u32::from_le_bytes([self.0[12], self.0[13], self.0[14], self.0[15]])
    }
}

/// 32 upper-case hex digits, the form of `rspauth` that Lync servers send.
impl fmt::Display for MessageSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl fmt::Debug for MessageSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageSignature({self})")
    }
}

impl FromStr for MessageSignature {
    type Err = BadSignature;

    /// 32 hex digits in either case (SIPE sends lower case, Lync upper case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadSignature)?;
        Ok(Self(out))
    }
}

/// A signature that does not match, or is not 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message signature does not verify")]
pub struct BadSignature;

const SIGNATURE_VERSION: u32 = 1;
const CLIENT_SIGNING: &[u8] = b"session key to client-to-server signing key magic constant\0";
const CLIENT_SEALING: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SIGNING: &[u8] = b"session key to server-to-client signing key magic constant\0";
const SERVER_SEALING: &[u8] = b"session key to server-to-client sealing key magic constant\0";

#[cfg(test)]
mod tests {
    use super::*;

    /// "Plaintext" in UTF-16LE, the data of [MS-NLMP] §4.2.4.4.
    const PLAINTEXT: &[u8] = b"P\0l\0a\0i\0n\0t\0e\0x\0t\0";

    fn ms_nlmp_keys(flags: NegotiateFlags) -> SessionKeys {
        SessionKeys::new([0x55; 16], flags)
    }

    fn ms_nlmp_flags() -> NegotiateFlags {
        NegotiateFlags(0xE288_8235)
    }

    #[test]
    fn ms_nlmp_section_4_2_4_4_signkey_and_sealkey() {
        let keys = ms_nlmp_keys(ms_nlmp_flags());
        assert_eq!(
            hex::encode(keys.client_signing_key),
            "4788dc861b4782f35d43fd98fe1a2d39"
        );
        assert_eq!(
            hex::encode(keys.client_sealing_key),
            "59f600973cc4960a25480a7c196e4c58"
        );
    }

    #[test]
    fn ms_nlmp_section_4_2_4_4_seal_and_checksum() {
        // Connection-oriented: one RC4 stream seals the data, then encrypts the checksum.
        let keys = ms_nlmp_keys(ms_nlmp_flags());
        let mut handle = Rc4::new(&keys.client_sealing_key);
        let mut data = PLAINTEXT.to_vec();
        handle.apply(&mut data);
        assert_eq!(hex::encode(&data), "54e50165bf1936dc996020c1811b0f06fb5f");
        let digest = hmac_md5(&keys.client_signing_key, &[&0u32.to_le_bytes(), PLAINTEXT]);
        assert_eq!(hex::encode(&digest[..8]), "70352851f2564309");
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&digest[..8]);
        handle.apply(&mut checksum);
        assert_eq!(hex::encode(checksum), "7fb38ec5c55d4976");
    }

    #[test]
    fn mac_without_key_exchange_is_the_plain_checksum() {
        let keys = ms_nlmp_keys(ms_nlmp_flags() & !NegotiateFlags::KEY_EXCH);
        let sig = keys.sign(Direction::ClientToServer, 0, PLAINTEXT);
        assert_eq!(sig.to_string(), "0100000070352851F256430900000000");
        assert_eq!(sig.seq_num(), 0);
    }

    #[test]
    fn connectionless_mac_rekeys_rc4_per_message() {
        let flags = ms_nlmp_flags() | NegotiateFlags::DATAGRAM;
        let keys = ms_nlmp_keys(flags);
        let sig = keys.sign(Direction::ClientToServer, 100, PLAINTEXT);
        let digest = hmac_md5(
            &keys.client_signing_key,
            &[&100u32.to_le_bytes(), PLAINTEXT],
        );
        let mut expected = [0u8; 8];
        expected.copy_from_slice(&digest[..8]);
        let per_message = md5(&[&keys.client_sealing_key, &100u32.to_le_bytes()]);
        Rc4::new(&per_message).apply(&mut expected);
        assert_eq!(&sig.0[4..12], &expected);
        assert_eq!(sig.seq_num(), 100);
        // Same input, same signature: no hidden cipher state.
        assert_eq!(keys.sign(Direction::ClientToServer, 100, PLAINTEXT), sig);
        assert!(
            keys.verify(Direction::ClientToServer, 100, PLAINTEXT, &sig)
                .is_ok()
        );
        assert_eq!(
            keys.verify(Direction::ServerToClient, 100, PLAINTEXT, &sig),
            Err(BadSignature)
        );
    }

    #[test]
    fn signature_text_form() {
        let sig: MessageSignature = "0100000029618e9651b65a7764000000".parse().unwrap();
        assert_eq!(sig.to_string(), "0100000029618E9651B65A7764000000");
        assert_eq!(sig.seq_num(), 100);
        assert_eq!("0100".parse::<MessageSignature>(), Err(BadSignature));
        assert_eq!(
            format!("{:?}", ms_nlmp_keys(NegotiateFlags(0))),
            "SessionKeys { flags: NegotiateFlags(0x00000000), .. }"
        );
    }
}
