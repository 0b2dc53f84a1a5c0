//! The server's CHALLENGE_MESSAGE for connectionless NTLM ([MS-NLMP] §2.2.1.2, §3.2.5.2.1).

use crate::av_pair::{AvId, AvPairs};
use crate::crypto::FileTime;
use crate::flags::NegotiateFlags;
use crate::wire::{MessageWriter, SERVER_VERSION, SIGNATURE, utf16le};

/// The names the server announces in TargetInfo ([MS-NLMP] §2.2.2.1).
///
/// Clients echo them inside the NTLMv2 response (so they are covered by the proof) and show
/// nothing of them to the user; SIPE does not check them at all. They still should be the
/// server's real names, since Windows clients may match them against the SPN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    netbios_domain: String,
    netbios_computer: String,
    dns_domain: String,
    dns_computer: String,
    dns_tree: Option<String>,
}

impl ServerIdentity {
    /// The four names every Windows server sends; each is at most [`MAX_NAME_CHARS`] UTF-16
    /// units, since the wire format counts bytes in 16 bits.
    pub fn new(
        netbios_domain: &str,
        netbios_computer: &str,
        dns_domain: &str,
        dns_computer: &str,
    ) -> Result<Self, IdentityError> {
        Ok(Self {
            netbios_domain: checked("netbios_domain", netbios_domain)?,
            netbios_computer: checked("netbios_computer", netbios_computer)?,
            dns_domain: checked("dns_domain", dns_domain)?,
            dns_computer: checked("dns_computer", dns_computer)?,
            dns_tree: None,
        })
    }

    /// Adds MsvAvDnsTreeName (the forest name).
    pub fn with_dns_tree(mut self, dns_tree: &str) -> Result<Self, IdentityError> {
        self.dns_tree = Some(checked("dns_tree", dns_tree)?);
        Ok(self)
    }

    /// The NetBIOS domain name, also sent as TargetName.
    pub fn netbios_domain(&self) -> &str {
        &self.netbios_domain
    }
}

/// A [`ServerIdentity`] name that the wire format cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Empty, too long, or containing NUL.
    #[error("{field} must be 1..={max} UTF-16 units without NUL")]
    InvalidName {
        /// Which name.
        field: &'static str,
        /// The limit.
        max: usize,
    },
}

fn checked(field: &'static str, name: &str) -> Result<String, IdentityError> {
    let units = name.encode_utf16().count();
    if units == 0 || units > MAX_NAME_CHARS || name.contains('\0') {
        return Err(IdentityError::InvalidName {
            field,
            max: MAX_NAME_CHARS,
        });
    }
    Ok(name.to_owned())
}

/// A CHALLENGE_MESSAGE as sent, plus what verifying its answer needs.
///
/// Keep it (keyed by the `opaque` of the 401) until the client's AUTHENTICATE_MESSAGE arrives,
/// and use it once: the server challenge is what makes the client's proof fresh.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeMessage {
    bytes: Vec<u8>,
    server_challenge: [u8; 8],
    flags: NegotiateFlags,
}

impl ChallengeMessage {
    /// Builds the message with [`NegotiateFlags::SIPAE_CHALLENGE`].
    ///
    /// `server_challenge` must come from a CSPRNG and never repeat. `timestamp`, when given,
    /// becomes MsvAvTimestamp: SIPE then stamps its response with it instead of its own clock,
    /// and Windows clients add a MIC.
    pub fn new(
        identity: &ServerIdentity,
        server_challenge: [u8; 8],
        timestamp: Option<FileTime>,
    ) -> Self {
        Self::with_flags(
            identity,
            server_challenge,
            timestamp,
            NegotiateFlags::SIPAE_CHALLENGE,
        )
    }

    /// Builds the message with other flags, e.g. to add SEAL for a client that wants it.
    pub fn with_flags(
        identity: &ServerIdentity,
        server_challenge: [u8; 8],
        timestamp: Option<FileTime>,
        flags: NegotiateFlags,
    ) -> Self {
        let mut info = AvPairs::default();
        info.push_text(AvId::NbDomainName, &identity.netbios_domain);
        info.push_text(AvId::NbComputerName, &identity.netbios_computer);
        info.push_text(AvId::DnsDomainName, &identity.dns_domain);
        info.push_text(AvId::DnsComputerName, &identity.dns_computer);
        if let Some(tree) = &identity.dns_tree {
            info.push_text(AvId::DnsTreeName, tree);
        }
        if let Some(ts) = timestamp {
            info.0.push(crate::av_pair::AvPair {
                id: AvId::Timestamp,
                value: ts.0.to_le_bytes().to_vec(),
            });
        }
        // TargetName is only meaningful with a TARGET_TYPE flag; the domain name goes with
        // TARGET_TYPE_DOMAIN, the computer name with TARGET_TYPE_SERVER.
        let target_name = if flags.contains(NegotiateFlags::TARGET_TYPE_DOMAIN) {
            utf16le(&identity.netbios_domain)
        } else if flags.contains(NegotiateFlags::TARGET_TYPE_SERVER) {
            utf16le(&identity.netbios_computer)
        } else {
            Vec::new()
        };

        let mut w = MessageWriter::new(CHALLENGE_HEADER_LEN);
        w.put(SIGNATURE);
        w.u32(MESSAGE_TYPE_CHALLENGE);
        w.field(&target_name);
        w.u32(flags.0);
        w.put(&server_challenge);
        w.put(&[0; 8]); // Reserved
        w.field(&info.encode());
        w.put(&SERVER_VERSION);
        Self {
            bytes: w.finish(),
            server_challenge,
            flags,
        }
    }

    /// The encoded message, for `gssapi-data` (base64) in WWW-Authenticate/Proxy-Authenticate.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The 8-byte nonce the client's proof is computed over.
    pub fn server_challenge(&self) -> [u8; 8] {
        self.server_challenge
    }

    /// The flags offered.
    pub fn flags(&self) -> NegotiateFlags {
        self.flags
    }
}

impl std::fmt::Debug for ChallengeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeMessage")
            .field("server_challenge", &hex::encode(self.server_challenge))
            .field("flags", &self.flags)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Longest name accepted in [`ServerIdentity`], in UTF-16 units (DNS names are at most 255).
pub const MAX_NAME_CHARS: usize = 255;
pub(crate) const MESSAGE_TYPE_CHALLENGE: u32 = 2;
pub(crate) const MESSAGE_TYPE_AUTHENTICATE: u32 = 3;
/// Signature, type, TargetNameFields, flags, challenge, reserved, TargetInfoFields, Version.
const CHALLENGE_HEADER_LEN: usize = 56;

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ServerIdentity {
        ServerIdentity::new("EXAMPLE", "FE01", "example.test", "fe01.example.test").unwrap()
    }

    #[test]
    fn layout_matches_ms_nlmp_section_2_2_1_2() {
        let msg = ChallengeMessage::new(&identity(), [1, 2, 3, 4, 5, 6, 7, 8], None);
        let b = msg.as_bytes();
        assert_eq!(&b[..8], b"NTLMSSP\0");
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 2);
        // TargetName: "EXAMPLE" in UTF-16 right after the 56-byte header.
        assert_eq!(u16::from_le_bytes([b[12], b[13]]), 14);
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 56);
        assert_eq!(&b[56..70], utf16le("EXAMPLE").as_slice());
        assert_eq!(
            u32::from_le_bytes(b[20..24].try_into().unwrap()),
            0xE299_8255
        );
        assert_eq!(&b[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[32..40], &[0; 8]);
        let ti_len = usize::from(u16::from_le_bytes([b[40], b[41]]));
        let ti_off = u32::from_le_bytes(b[44..48].try_into().unwrap()) as usize;
        assert_eq!(ti_off, 70);
        assert_eq!(ti_off + ti_len, b.len());
        let info = AvPairs::parse(&b[ti_off..]).unwrap();
        assert_eq!(info.get(AvId::NbComputerName), Some(&utf16le("FE01")[..]));
        assert_eq!(
            info.get(AvId::DnsComputerName),
            Some(&utf16le("fe01.example.test")[..])
        );
        assert_eq!(info.timestamp(), None);
    }

    #[test]
    fn timestamp_becomes_msv_av_timestamp() {
        let msg = ChallengeMessage::new(&identity(), [0; 8], Some(FileTime(0x01CA_B927_179A_5159)));
        let b = msg.as_bytes();
        let info = AvPairs::parse(&b[70..]).unwrap();
        assert_eq!(info.timestamp(), Some(FileTime(0x01CA_B927_179A_5159)));
    }

    #[test]
    fn identity_names_are_bounded() {
        assert!(ServerIdentity::new("", "A", "b", "c").is_err());
        assert!(ServerIdentity::new(&"x".repeat(256), "A", "b", "c").is_err());
        assert!(ServerIdentity::new("A\0", "A", "b", "c").is_err());
        assert!(identity().with_dns_tree("example.test").is_ok());
    }
}
