//! Fully qualified domain names as this crate keeps them: checked once, lower-cased, without the
//! trailing dot, so that every comparison elsewhere is a plain string comparison.

use std::fmt;

/// A host or zone name that passed the RFC 1035 §2.3.1 / RFC 1123 §2.1 syntax check.
///
/// Kept as one lower-case string because DNS names compare case-insensitively (RFC 4343) and the
/// record tables are built once and read many times.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fqdn(String);

/// Why a string is not a usable host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing left after trimming the trailing dot.
    #[error("the name is empty")]
    Empty,
    /// RFC 1035 §2.3.4: a name is at most 255 octets on the wire (253 characters of text).
    #[error("the name is longer than 253 characters")]
    TooLong,
    /// Two dots in a row, or a leading dot.
    #[error("the name has an empty label")]
    EmptyLabel,
    /// RFC 1035 §2.3.4: a label is at most 63 octets.
    #[error("the label {0:?} is longer than 63 characters")]
    LabelTooLong(String),
    /// Host names hold letters, digits and inner hyphens only (RFC 1123 §2.1).
    #[error("the label {0:?} holds a character other than a letter, digit or inner hyphen")]
    BadLabel(String),
    /// An IP address literal where a name is needed (certificates, SRV targets and autodiscover
    /// documents all need names).
    #[error("{0:?} is an IP address, not a name")]
    Address(String),
}

impl Fqdn {
    /// Checks and normalises `text` (case, trailing dot).
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let trimmed = text.trim().strip_suffix('.').unwrap_or(text.trim());
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed.len() > MAX_NAME_TEXT {
            return Err(NameError::TooLong);
        }
        if trimmed.parse::<std::net::IpAddr>().is_ok() {
            return Err(NameError::Address(trimmed.to_owned()));
        }
        let lower = trimmed.to_ascii_lowercase();
        for label in lower.split('.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL {
                return Err(NameError::LabelTooLong(label.to_owned()));
            }
            let bytes = label.as_bytes();
            let inner_ok = bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
            if !inner_ok || bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
                return Err(NameError::BadLabel(label.to_owned()));
            }
        }
        Ok(Self(lower))
    }

    /// Prefixes labels that are known to be well-formed (the Lync record names, `_sip._tls`).
    ///
    /// Service labels start with an underscore (RFC 2782), which [`Fqdn::parse`] rejects for host
    /// names, so this constructor is how SRV owner names are made.
    pub(crate) fn prefixed(&self, labels: &str) -> Self {
        Self(format!("{labels}.{}", self.0))
    }

    /// The name as text, lower-case, without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is `zone` or lies below it, compared label by label so that
    /// `notcontoso.com` is not inside `contoso.com`.
    pub fn is_within(&self, zone: &Fqdn) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(zone.0.as_str())
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// The name one label up (`fe01.contoso.com` → `contoso.com`); `None` for a single label.
    pub fn parent(&self) -> Option<Self> {
        self.0
            .split_once('.')
            .map(|(_, rest)| Self(rest.to_owned()))
    }

    /// The first label (`fe01` of `fe01.contoso.com`).
    pub fn first_label(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }

    /// Appends the RFC 1035 §3.1 wire form (length-prefixed labels, root byte).
    pub(crate) fn write_wire(&self, out: &mut Vec<u8>) {
        for label in self.0.split('.') {
            // Labels are at most 63 bytes, checked at construction.
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }

    /// The wire form as a fresh buffer.
    pub(crate) fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 2);
        self.write_wire(&mut out);
        out
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Fqdn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// RFC 1035 §2.3.4 gives 255 octets on the wire: two fewer characters in dotted text.
const MAX_NAME_TEXT: usize = 253;
/// RFC 1035 §2.3.4.
const MAX_LABEL: usize = 63;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lowercases_and_drops_the_trailing_dot() {
        assert_eq!(
            Fqdn::parse("Sip.Contoso.COM.").unwrap().as_str(),
            "sip.contoso.com"
        );
    }

    #[test]
    fn rfc1123_section_2_1_rejects_bad_labels() {
        assert!(matches!(Fqdn::parse("a..b"), Err(NameError::EmptyLabel)));
        assert!(matches!(Fqdn::parse("-a.b"), Err(NameError::BadLabel(_))));
        assert!(matches!(Fqdn::parse("a_b.c"), Err(NameError::BadLabel(_))));
        assert!(matches!(Fqdn::parse(""), Err(NameError::Empty)));
        assert!(matches!(
            Fqdn::parse("10.0.0.1"),
            Err(NameError::Address(_))
        ));
        let long = "a".repeat(64);
        assert!(matches!(
            Fqdn::parse(&long),
            Err(NameError::LabelTooLong(_))
        ));
        let huge = vec!["abcdefghi"; 30].join(".");
        assert!(matches!(Fqdn::parse(&huge), Err(NameError::TooLong)));
    }

    #[test]
    fn is_within_compares_whole_labels() {
        let zone = Fqdn::parse("contoso.com").unwrap();
        assert!(Fqdn::parse("sip.contoso.com").unwrap().is_within(&zone));
        assert!(zone.is_within(&zone));
        assert!(!Fqdn::parse("notcontoso.com").unwrap().is_within(&zone));
    }

    #[test]
    fn rfc1035_section_3_1_wire_form() {
        let wire = Fqdn::parse("sip.a.b").unwrap().to_wire();
        assert_eq!(wire, b"\x03sip\x01a\x01b\x00");
    }
}
