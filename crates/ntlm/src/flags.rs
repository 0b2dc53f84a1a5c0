//! NegotiateFlags ([MS-NLMP] §2.2.2.5).

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};

/// The 32-bit NegotiateFlags word of NTLM messages.
///
/// A newtype rather than a bare `u32` so that a flag set cannot be confused with a sequence
/// number or a length, and so that `Debug` names the flags (the first thing one wants to read
/// when a client refuses a challenge).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NegotiateFlags(pub u32);

impl NegotiateFlags {
    /// A: strings are UTF-16LE.
    pub const UNICODE: Self = Self(0x0000_0001);
    /// B: strings are in the OEM code page.
    pub const OEM: Self = Self(0x0000_0002);
    /// C: the TargetName field of the CHALLENGE_MESSAGE is requested.
    pub const REQUEST_TARGET: Self = Self(0x0000_0004);
    /// D: message integrity (signing).
    pub const SIGN: Self = Self(0x0000_0010);
    /// E: message confidentiality (sealing).
    pub const SEAL: Self = Self(0x0000_0020);
    /// F: connectionless authentication.
    pub const DATAGRAM: Self = Self(0x0000_0040);
    /// G: LAN Manager session key computation.
    pub const LM_KEY: Self = Self(0x0000_0080);
    /// H: NTLM v1/v2 session security.
    pub const NTLM: Self = Self(0x0000_0200);
    /// J: anonymous connection.
    pub const ANONYMOUS: Self = Self(0x0000_0800);
    /// K: the NEGOTIATE_MESSAGE carries a domain name.
    pub const OEM_DOMAIN_SUPPLIED: Self = Self(0x0000_1000);
    /// L: the NEGOTIATE_MESSAGE carries a workstation name.
    pub const OEM_WORKSTATION_SUPPLIED: Self = Self(0x0000_2000);
    /// M: a signature block is present even when neither SIGN nor SEAL is negotiated.
    pub const ALWAYS_SIGN: Self = Self(0x0000_8000);
    /// N: TargetName is a domain name.
    pub const TARGET_TYPE_DOMAIN: Self = Self(0x0001_0000);
    /// O: TargetName is a server name.
    pub const TARGET_TYPE_SERVER: Self = Self(0x0002_0000);
    /// P: NTLM v2 session security ("extended session security").
    pub const EXTENDED_SESSIONSECURITY: Self = Self(0x0008_0000);
    /// Q: identify-level token requested.
    pub const IDENTIFY: Self = Self(0x0010_0000);
    /// R: LMOWF-based session key requested.
    pub const REQUEST_NON_NT_SESSION_KEY: Self = Self(0x0040_0000);
    /// S: the TargetInfo field is present.
    pub const TARGET_INFO: Self = Self(0x0080_0000);
    /// T: the Version field is present.
    pub const VERSION: Self = Self(0x0200_0000);
    /// U: 128-bit session key.
    pub const NEGOTIATE_128: Self = Self(0x2000_0000);
    /// V: explicit key exchange (EncryptedRandomSessionKey).
    pub const KEY_EXCH: Self = Self(0x4000_0000);
    /// W: 56-bit encryption.
    pub const NEGOTIATE_56: Self = Self(0x8000_0000);

    /// What a Lync-style front end offers in its connectionless CHALLENGE_MESSAGE (0xE2998255).
    ///
    /// SIPE refuses a challenge lacking any of UNICODE, NTLM, ALWAYS_SIGN,
    /// EXTENDED_SESSIONSECURITY, TARGET_INFO, SIGN, DATAGRAM, IDENTIFY or KEY_EXCH ("received
    /// incompatible NTLM NegotiateFlags"); this value adds REQUEST_TARGET, TARGET_TYPE_DOMAIN,
    /// VERSION, 128 and 56 and was accepted by SIPE 1.25 end to end. SEAL is left out: MS-SIPAE
    /// only signs, and offering it would invite a client to expect sealed payloads.
    pub const SIPAE_CHALLENGE: Self = Self(
        Self::UNICODE.0
            | Self::REQUEST_TARGET.0
            | Self::SIGN.0
            | Self::DATAGRAM.0
            | Self::NTLM.0
            | Self::ALWAYS_SIGN.0
            | Self::TARGET_TYPE_DOMAIN.0
            | Self::EXTENDED_SESSIONSECURITY.0
            | Self::IDENTIFY.0
            | Self::TARGET_INFO.0
            | Self::VERSION.0
            | Self::NEGOTIATE_128.0
            | Self::KEY_EXCH.0
            | Self::NEGOTIATE_56.0,
    );

    /// What the acceptor insists on in an AUTHENTICATE_MESSAGE.
    ///
    /// UNICODE because names are only decoded as UTF-16; NTLM and EXTENDED_SESSIONSECURITY
    /// because only NTLMv2 keys and the HMAC-MD5 signature are implemented; SIGN because
    /// MS-SIPAE is useless without signatures; DATAGRAM because the signature rules differ for
    /// connection-oriented NTLM.
    pub const REQUIRED: Self = Self(
        Self::UNICODE.0
            | Self::NTLM.0
            | Self::EXTENDED_SESSIONSECURITY.0
            | Self::SIGN.0
            | Self::DATAGRAM.0,
    );

    /// Whether every flag of `other` is set in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags of `other` that `self` lacks.
    pub fn missing(self, other: Self) -> Self {
        Self(other.0 & !self.0)
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for NegotiateFlags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for NegotiateFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for NegotiateFlags {
    type Output = Self;

    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl Not for NegotiateFlags {
    type Output = Self;

    fn not(self) -> Self {
        Self(!self.0)
    }
}

impl fmt::Debug for NegotiateFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NegotiateFlags({:#010x}", self.0)?;
        let mut sep = ": ";
        for (flag, name) in NAMES {
            if self.contains(*flag) {
                write!(f, "{sep}{name}")?;
                sep = " | ";
            }
        }
        f.write_str(")")
    }
}

impl fmt::Display for NegotiateFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

const NAMES: &[(NegotiateFlags, &str)] = &[
    (NegotiateFlags::UNICODE, "UNICODE"),
    (NegotiateFlags::OEM, "OEM"),
    (NegotiateFlags::REQUEST_TARGET, "REQUEST_TARGET"),
    (NegotiateFlags::SIGN, "SIGN"),
    (NegotiateFlags::SEAL, "SEAL"),
    (NegotiateFlags::DATAGRAM, "DATAGRAM"),
    (NegotiateFlags::LM_KEY, "LM_KEY"),
    (NegotiateFlags::NTLM, "NTLM"),
    (NegotiateFlags::ANONYMOUS, "ANONYMOUS"),
    (NegotiateFlags::OEM_DOMAIN_SUPPLIED, "OEM_DOMAIN_SUPPLIED"),
    (
        NegotiateFlags::OEM_WORKSTATION_SUPPLIED,
        "OEM_WORKSTATION_SUPPLIED",
    ),
    (NegotiateFlags::ALWAYS_SIGN, "ALWAYS_SIGN"),
    (NegotiateFlags::TARGET_TYPE_DOMAIN, "TARGET_TYPE_DOMAIN"),
    (NegotiateFlags::TARGET_TYPE_SERVER, "TARGET_TYPE_SERVER"),
    (
        NegotiateFlags::EXTENDED_SESSIONSECURITY,
        "EXTENDED_SESSIONSECURITY",
    ),
    (NegotiateFlags::IDENTIFY, "IDENTIFY"),
    (
        NegotiateFlags::REQUEST_NON_NT_SESSION_KEY,
        "REQUEST_NON_NT_SESSION_KEY",
    ),
    (NegotiateFlags::TARGET_INFO, "TARGET_INFO"),
    (NegotiateFlags::VERSION, "VERSION"),
    (NegotiateFlags::NEGOTIATE_128, "128"),
    (NegotiateFlags::KEY_EXCH, "KEY_EXCH"),
    (NegotiateFlags::NEGOTIATE_56, "56"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipae_challenge_is_the_value_sipe_accepted() {
        assert_eq!(NegotiateFlags::SIPAE_CHALLENGE.0, 0xE299_8255);
    }

    #[test]
    fn ms_nlmp_section_4_2_4_challenge_flags() {
        // [MS-NLMP] §4.2.4: KEY_EXCH, 56, 128, VERSION, TARGET_INFO, EXTENDED_SESSIONSECURITY,
        // TARGET_TYPE_SERVER, ALWAYS_SIGN, NTLM, SEAL, SIGN, OEM, UNICODE = 0xE28A8233.
        let flags = NegotiateFlags::KEY_EXCH
            | NegotiateFlags::NEGOTIATE_56
            | NegotiateFlags::NEGOTIATE_128
            | NegotiateFlags::VERSION
            | NegotiateFlags::TARGET_INFO
            | NegotiateFlags::EXTENDED_SESSIONSECURITY
            | NegotiateFlags::TARGET_TYPE_SERVER
            | NegotiateFlags::ALWAYS_SIGN
            | NegotiateFlags::NTLM
            | NegotiateFlags::SEAL
            | NegotiateFlags::SIGN
            | NegotiateFlags::OEM
            | NegotiateFlags::UNICODE;
        assert_eq!(flags.0, 0xE28A_8233);
    }

    #[test]
    fn missing_lists_only_absent_flags() {
        let have = NegotiateFlags::UNICODE | NegotiateFlags::SIGN;
        assert_eq!(
            have.missing(NegotiateFlags::UNICODE | NegotiateFlags::DATAGRAM),
            NegotiateFlags::DATAGRAM
        );
        assert!(have.contains(NegotiateFlags::SIGN));
        assert_eq!(
            format!("{:?}", NegotiateFlags::DATAGRAM),
            "NegotiateFlags(0x00000040: DATAGRAM)"
        );
    }
}
