//! AV_PAIR lists ([MS-NLMP] §2.2.2.1): the server's TargetInfo, echoed by the client inside its
//! NTLMv2 response.

use crate::crypto::FileTime;
use crate::wire::{Reader, utf16le};

/// AvId values herald reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AvId {
    /// MsvAvEOL: ends the list.
    Eol,
    /// MsvAvNbComputerName.
    NbComputerName,
    /// MsvAvNbDomainName.
    NbDomainName,
    /// MsvAvDnsComputerName.
    DnsComputerName,
    /// MsvAvDnsDomainName.
    DnsDomainName,
    /// MsvAvDnsTreeName.
    DnsTreeName,
    /// MsvAvFlags: bit 0x2 says the AUTHENTICATE_MESSAGE carries a MIC.
    Flags,
    /// MsvAvTimestamp: a FILETIME.
    Timestamp,
    /// MsvAvSingleHost.
    SingleHost,
    /// MsvAvTargetName: the SPN the client aimed at.
    TargetName,
    /// MsvAvChannelBindings.
    ChannelBindings,
    /// An id this crate does not interpret, kept so nothing is silently lost.
    Other(u16),
}

impl AvId {
    pub(crate) fn from_u16(v: u16) -> Self {
        match v {
            0 => Self::Eol,
            1 => Self::NbComputerName,
            2 => Self::NbDomainName,
            3 => Self::DnsComputerName,
            4 => Self::DnsDomainName,
            5 => Self::DnsTreeName,
            6 => Self::Flags,
            7 => Self::Timestamp,
            8 => Self::SingleHost,
            9 => Self::TargetName,
            10 => Self::ChannelBindings,
            other => Self::Other(other),
        }
    }

    pub(crate) fn to_u16(self) -> u16 {
        match self {
            Self::Eol => 0,
            Self::NbComputerName => 1,
            Self::NbDomainName => 2,
            Self::DnsComputerName => 3,
            Self::DnsDomainName => 4,
            Self::DnsTreeName => 5,
            Self::Flags => 6,
            Self::Timestamp => 7,
            Self::SingleHost => 8,
            Self::TargetName => 9,
            Self::ChannelBindings => 10,
            Self::Other(v) => v,
        }
    }
}

/// One AV_PAIR, value kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvPair {
    /// Which attribute.
    pub id: AvId,
    /// The value bytes as sent.
    pub value: Vec<u8>,
}

/// Why an AV_PAIR list did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AvPairError {
    /// The list ended inside a pair's header or value.
    #[error("AV_PAIR list truncated at byte {offset}")]
    Truncated {
        /// Where the unfinished pair starts.
        offset: usize,
    },
    /// The bytes ran out before MsvAvEOL.
    #[error("AV_PAIR list has no MsvAvEOL")]
    MissingEol,
    /// More pairs than any real client sends.
    #[error("more than {max} AV_PAIRs")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// A fixed-size value (MsvAvFlags, MsvAvTimestamp) of the wrong size.
    #[error("AV_PAIR {id:?} has length {len}, expected {expected}")]
    BadLength {
        /// Which attribute.
        id: AvId,
        /// Its length as sent.
        len: u16,
        /// The length the attribute requires.
        expected: u16,
    },
}

/// A parsed AV_PAIR list, without the terminating MsvAvEOL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AvPairs(pub Vec<AvPair>);

impl AvPairs {
    /// Parses pairs up to MsvAvEOL; bytes after it (the NTLMv2 blob's trailing zeros) are not
    /// part of the list and are ignored.
    pub(crate) fn parse(input: &[u8]) -> Result<Self, AvPairError> {
        let mut r = Reader::new(input);
        let mut pairs = Vec::new();
        loop {
            let offset = r.position();
            if r.remaining() == 0 {
                return Err(AvPairError::MissingEol);
            }
            let (Some(id), Some(len)) = (r.u16(), r.u16()) else {
                return Err(AvPairError::Truncated { offset });
            };
            let id = AvId::from_u16(id);
            let Some(value) = r.bytes(usize::from(len)) else {
                return Err(AvPairError::Truncated { offset });
            };
            let expected = match id {
                AvId::Flags => Some(4),
                AvId::Timestamp => Some(8),
                _ => None,
            };
            if let Some(expected) = expected.filter(|&e| e != len) {
                return Err(AvPairError::BadLength { id, len, expected });
            }
            if id == AvId::Eol {
                return Ok(Self(pairs));
            }
            if pairs.len() == MAX_AV_PAIRS {
                return Err(AvPairError::TooMany { max: MAX_AV_PAIRS });
            }
            pairs.push(AvPair {
                id,
                value: value.to_vec(),
            });
        }
    }

    /// The first value with this id.
    pub fn get(&self, id: AvId) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.value.as_slice())
    }

    /// MsvAvFlags, 0 when absent.
    pub fn flags(&self) -> u32 {
        self.get(AvId::Flags)
            .and_then(|v| v.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    /// MsvAvTimestamp, if present.
    pub fn timestamp(&self) -> Option<FileTime> {
        self.get(AvId::Timestamp)
            .and_then(|v| v.try_into().ok())
            .map(|b| FileTime(u64::from_le_bytes(b)))
    }

    /// Whether MsvAvFlags announces a MIC in the AUTHENTICATE_MESSAGE.
    pub fn mic_present(&self) -> bool {
        self.flags() & AV_FLAG_MIC_PRESENT != 0
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for pair in &self.0 {
            let len = u16::try_from(pair.value.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&pair.id.to_u16().to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&pair.value[..usize::from(len).min(pair.value.len())]);
        }
        out.extend_from_slice(&[0, 0, 0, 0]); // MsvAvEOL
        out
    }

    pub(crate) fn push_text(&mut self, id: AvId, text: &str) {
        self.0.push(AvPair {
            id,
            value: utf16le(text),
        });
    }
}

/// MsvAvFlags bit: "the client is providing message integrity in the MIC field".
pub(crate) const AV_FLAG_MIC_PRESENT: u32 = 0x0000_0002;
/// Windows sends about ten pairs; this bounds the work a hostile list can cause.
const MAX_AV_PAIRS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ms_nlmp_section_4_2_4_target_info() {
        let raw = hex::decode(
            "02000c0044006f006d00610069006e00\
             01000c00530065007200760065007200\
             0000000000000000",
        )
        .unwrap();
        let pairs = AvPairs::parse(&raw).unwrap();
        assert_eq!(pairs.0.len(), 2);
        assert_eq!(pairs.get(AvId::NbDomainName), Some(&utf16le("Domain")[..]));
        assert_eq!(
            pairs.get(AvId::NbComputerName),
            Some(&utf16le("Server")[..])
        );
        assert!(!pairs.mic_present());
        assert_eq!(pairs.encode(), raw[..raw.len() - 4]);
    }

    #[test]
    fn refuses_truncation_missing_eol_and_bad_fixed_lengths() {
        assert_eq!(AvPairs::parse(&[]), Err(AvPairError::MissingEol));
        assert_eq!(
            AvPairs::parse(&[2, 0, 4, 0, 1]),
            Err(AvPairError::Truncated { offset: 0 })
        );
        assert_eq!(
            AvPairs::parse(&[7, 0, 2, 0, 1, 2, 0, 0, 0, 0]),
            Err(AvPairError::BadLength {
                id: AvId::Timestamp,
                len: 2,
                expected: 8
            })
        );
        let many: Vec<u8> = std::iter::repeat_n([9u8, 0, 0, 0], 65).flatten().collect();
        assert_eq!(
            AvPairs::parse(&many),
            Err(AvPairError::TooMany { max: MAX_AV_PAIRS })
        );
    }
}
