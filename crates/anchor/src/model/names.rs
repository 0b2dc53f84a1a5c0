//! The identifiers of the anchoring directory, parsed once at the edge (CLI, store, request
//! headers) so that the rules and the proxy only ever see canonical forms.

use std::fmt;
use std::str::FromStr;

/// Why a name, address or identifier was refused. The CLI prints it next to the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty, or longer than the kind allows.
    #[error("{kind} must be 1 to {max} characters long")]
    Length {
        /// What was being parsed ("server name", "SMTP address", ...).
        kind: &'static str,
        /// The largest accepted length.
        max: usize,
    },
    /// A character the kind does not allow.
    #[error("{kind} may not contain {found:?}")]
    Character {
        /// What was being parsed.
        kind: &'static str,
        /// The first offending character.
        found: char,
    },
    /// The overall shape is wrong (missing `@`, wrong GUID grouping, no port, ...).
    #[error("{kind} is malformed: {expected}")]
    Shape {
        /// What was being parsed.
        kind: &'static str,
        /// What a well-formed value looks like.
        expected: &'static str,
    },
}

macro_rules! object_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        ///
        /// Names are case-insensitive, as Exchange's are, and are kept in lower case so that
        /// lookups, ordering and the store agree. 1 to 64 characters: letters, digits, `-`,
        /// `_` and `.`, starting with a letter or digit.
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The canonical (lower-case) spelling, as stored and shown.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_object_name(s, $kind).map(Self)
            }
        }
    };
}

object_name!(
    /// A mailbox server's name (its NetBIOS name or FQDN), the key Active Manager and the
    /// diagnostic headers use.
    ServerName,
    "server name"
);
object_name!(
    /// A database availability group's name.
    DagName,
    "DAG name"
);
object_name!(
    /// A mailbox database's name.
    DatabaseName,
    "database name"
);
object_name!(
    /// An Active Directory site name; kept so that a later redirect-across-sites rule has it.
    SiteName,
    "site name"
);

impl SiteName {
    /// The site a server is in when the administrator does not say, as in Active Directory.
    pub fn default_site() -> Self {
        Self(DEFAULT_SITE.to_owned())
    }
}

/// A primary SMTP address such as `alice@contoso.com`.
///
/// Exchange matches addresses case-insensitively, so the address is kept in lower case. The
/// local part is RFC 5322 `dot-atom` text (which admits `SystemMailbox{bb558c35-...}`); the
/// domain is DNS labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SmtpAddress(String);

impl SmtpAddress {
    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for SmtpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SmtpAddress {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_address(s, "SMTP address").map(Self)
    }
}

/// A user's logon name (user principal name, `alice@contoso.com`): what authentication yields
/// and what a mailbox's owner is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_address(s, "user name").map(Self)
    }
}

impl From<&UserId> for SmtpAddress {
    /// Logon names and addresses share one syntax, so a logon name is always a valid address
    /// (a user signed into a shared mailbox by its address).
    fn from(user: &UserId) -> Self {
        Self(user.0.clone())
    }
}

impl From<&SmtpAddress> for UserId {
    /// The converse of `From<&UserId> for SmtpAddress`: `X-AnchorMailbox` may name a user.
    fn from(address: &SmtpAddress) -> Self {
        Self(address.0.clone())
    }
}

/// A Windows security identifier (`S-1-5-21-...`), the other way clients name a mailbox in
/// `X-AnchorMailbox: SID:...` and in Exchange's backend cookies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sid(String);

impl Sid {
    /// The canonical spelling (upper-case `S`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Sid {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const KIND: &str = "SID";
        const EXPECTED: &str = "S-1-<authority>-<sub-authority>..., up to 15 sub-authorities";
        if s.is_empty() || s.len() > MAX_SID_LEN {
            return Err(NameError::Length {
                kind: KIND,
                max: MAX_SID_LEN,
            });
        }
        let mut parts = s.split('-');
        if !parts.next().is_some_and(|p| p.eq_ignore_ascii_case("s")) {
            return Err(NameError::Shape {
                kind: KIND,
                expected: EXPECTED,
            });
        }
        let mut count = 0;
        for part in parts {
            if part.is_empty() || part.len() > 15 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(NameError::Shape {
                    kind: KIND,
                    expected: EXPECTED,
                });
            }
            count += 1;
        }
        // Revision and authority, then 1 to 15 sub-authorities.
        if !(3..=17).contains(&count) {
            return Err(NameError::Shape {
                kind: KIND,
                expected: EXPECTED,
            });
        }
        Ok(Self(format!("S{}", &s[1..])))
    }
}

/// A mailbox's ExchangeGuid: the identity that survives renames and address changes, and the
/// key the front door resolves every anchor to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExchangeGuid(u128);

impl ExchangeGuid {
    /// A random (version 4) GUID from 16 random bytes the caller supplies, so that this crate
    /// needs no random source and tests can be deterministic.
    pub fn from_random_bytes(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(u128::from_be_bytes(bytes))
    }

    /// The GUID as one number, for compact storage.
    pub fn as_u128(&self) -> u128 {
        self.0
    }

    /// Rebuilds a GUID from [`ExchangeGuid::as_u128`].
    pub fn from_u128(value: u128) -> Self {
        Self(value)
    }
}

impl fmt::Display for ExchangeGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

impl FromStr for ExchangeGuid {
    type Err = NameError;

    /// Accepts the registry form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, optionally in braces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const KIND: &str = "GUID";
        const EXPECTED: &str = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in hexadecimal";
        let inner = s
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(s);
        if inner.len() != 36 {
            return Err(NameError::Shape {
                kind: KIND,
                expected: EXPECTED,
            });
        }
        let mut value: u128 = 0;
        for (i, c) in inner.chars().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != '-' {
                    return Err(NameError::Shape {
                        kind: KIND,
                        expected: EXPECTED,
                    });
                }
                continue;
            }
            let digit = c.to_digit(16).ok_or(NameError::Character {
                kind: KIND,
                found: c,
            })?;
            value = (value << 4) | u128::from(digit);
        }
        Ok(Self(value))
    }
}

/// Where a mailbox server answers HTTP: `host:port`, with `[v6]:port` for IPv6 literals.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerAddress {
    host: String,
    port: u16,
}

impl ServerAddress {
    /// The host part without brackets (a name, IPv4 or IPv6 literal), lower case.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for ServerAddress {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const KIND: &str = "server address";
        const EXPECTED: &str = "HOST:PORT, with [IPv6]:PORT for IPv6";
        if s.is_empty() || s.len() > MAX_HOST_LEN + 8 {
            return Err(NameError::Length {
                kind: KIND,
                max: MAX_HOST_LEN + 8,
            });
        }
        let (host, port) = s.rsplit_once(':').ok_or(NameError::Shape {
            kind: KIND,
            expected: EXPECTED,
        })?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(NameError::Shape {
                kind: KIND,
                expected: EXPECTED,
            })?;
        let host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            v6.parse::<std::net::Ipv6Addr>()
                .map_err(|_| NameError::Shape {
                    kind: KIND,
                    expected: EXPECTED,
                })?;
            v6.to_ascii_lowercase()
        } else {
            check_dns_name(host, KIND)?;
            host.to_ascii_lowercase()
        };
        Ok(Self { host, port })
    }
}

/// What a server name, DAG or database name may hold.
fn parse_object_name(s: &str, kind: &'static str) -> Result<String, NameError> {
    if s.is_empty() || s.len() > MAX_OBJECT_NAME_LEN {
        return Err(NameError::Length {
            kind,
            max: MAX_OBJECT_NAME_LEN,
        });
    }
    if let Some(found) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(NameError::Character { kind, found });
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(NameError::Shape {
            kind,
            expected: "starts with a letter or digit",
        });
    }
    Ok(s.to_ascii_lowercase())
}

/// `local@domain` with a dot-atom local part and a DNS domain, lower-cased.
fn parse_address(s: &str, kind: &'static str) -> Result<String, NameError> {
    const EXPECTED: &str = "local-part@domain";
    if s.is_empty() || s.len() > MAX_ADDRESS_LEN {
        return Err(NameError::Length {
            kind,
            max: MAX_ADDRESS_LEN,
        });
    }
    let (local, domain) = s.rsplit_once('@').ok_or(NameError::Shape {
        kind,
        expected: EXPECTED,
    })?;
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return Err(NameError::Shape {
            kind,
            expected: EXPECTED,
        });
    }
    if let Some(found) = local.chars().find(|c| !is_atext(*c) && *c != '.') {
        return Err(NameError::Character { kind, found });
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(NameError::Shape {
            kind,
            expected: "local part without leading, trailing or doubled dots",
        });
    }
    check_dns_name(domain, kind)?;
    if !domain.contains(|c: char| c.is_ascii_alphabetic()) {
        return Err(NameError::Shape {
            kind,
            expected: EXPECTED,
        });
    }
    Ok(s.to_ascii_lowercase())
}

/// RFC 5322 `atext`.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// Dot-separated labels of letters, digits and hyphens (an IPv4 literal passes too).
fn check_dns_name(host: &str, kind: &'static str) -> Result<(), NameError> {
    const EXPECTED: &str = "DNS labels of letters, digits and hyphens";
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return Err(NameError::Length {
            kind,
            max: MAX_HOST_LEN,
        });
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Shape {
                kind,
                expected: EXPECTED,
            });
        }
        if let Some(found) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(NameError::Character { kind, found });
        }
    }
    Ok(())
}

/// Active Directory's name for the first site.
const DEFAULT_SITE: &str = "default-first-site-name";
/// Longest server, DAG, database or site name.
const MAX_OBJECT_NAME_LEN: usize = 64;
/// RFC 5321's path limit minus the angle brackets.
const MAX_ADDRESS_LEN: usize = 254;
/// RFC 5321's local-part limit.
const MAX_LOCAL_LEN: usize = 64;
/// RFC 1035's name limit.
const MAX_HOST_LEN: usize = 253;
/// `S-1-` plus an authority and 15 sub-authorities of at most 10 digits each, with room.
const MAX_SID_LEN: usize = 184;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_lowercased() {
        let a: ServerName = "EX13-1".parse().expect("valid");
        let b: ServerName = "ex13-1".parse().expect("valid");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "ex13-1");
    }

    #[test]
    fn names_refuse_bad_characters_and_lengths() {
        assert!(matches!(
            "ex 1".parse::<ServerName>(),
            Err(NameError::Character { found: ' ', .. })
        ));
        assert!(matches!(
            "".parse::<DagName>(),
            Err(NameError::Length { .. })
        ));
        assert!(matches!(
            "-db".parse::<DatabaseName>(),
            Err(NameError::Shape { .. })
        ));
        assert!("a".repeat(65).parse::<DatabaseName>().is_err());
    }

    #[test]
    fn smtp_addresses_accept_arbitration_mailbox_names() {
        let a: SmtpAddress = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@Contoso.com"
            .parse()
            .expect("valid");
        assert_eq!(
            a.as_str(),
            "systemmailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.com"
        );
        assert_eq!(a.domain(), "contoso.com");
    }

    #[test]
    fn smtp_addresses_refuse_malformed_input() {
        assert!("alice".parse::<SmtpAddress>().is_err());
        assert!("@contoso.com".parse::<SmtpAddress>().is_err());
        assert!("alice@".parse::<SmtpAddress>().is_err());
        assert!("al ice@contoso.com".parse::<SmtpAddress>().is_err());
        assert!("alice@contoso..com".parse::<SmtpAddress>().is_err());
        assert!("a..b@contoso.com".parse::<SmtpAddress>().is_err());
        assert!("alice@1.2.3.4".parse::<SmtpAddress>().is_err());
    }

    #[test]
    fn guids_round_trip_with_and_without_braces() {
        let text = "bb558c35-97f1-4cb9-8ff7-d53741dc928c";
        let g: ExchangeGuid = text.parse().expect("valid");
        assert_eq!(g.to_string(), text);
        let braced: ExchangeGuid = "{BB558C35-97F1-4CB9-8FF7-D53741DC928C}"
            .parse()
            .expect("ok");
        assert_eq!(g, braced);
        assert!(
            "bb558c35-97f1-4cb9-8ff7d53741dc928c0"
                .parse::<ExchangeGuid>()
                .is_err()
        );
        assert!(
            "zb558c35-97f1-4cb9-8ff7-d53741dc928c"
                .parse::<ExchangeGuid>()
                .is_err()
        );
    }

    #[test]
    fn random_guids_carry_version_4() {
        let g = ExchangeGuid::from_random_bytes([0xff; 16]);
        assert_eq!(&g.to_string()[14..15], "4");
    }

    #[test]
    fn sids_parse_and_normalise() {
        let s: Sid = "s-1-5-21-3623811015-3361044348-30300820-1013"
            .parse()
            .expect("ok");
        assert_eq!(s.as_str(), "S-1-5-21-3623811015-3361044348-30300820-1013");
        assert!("S-1".parse::<Sid>().is_err());
        assert!("S-1-5-x".parse::<Sid>().is_err());
        assert!("X-1-5-21".parse::<Sid>().is_err());
    }

    #[test]
    fn server_addresses_parse_names_and_literals() {
        let a: ServerAddress = "EX1.contoso.com:444".parse().expect("ok");
        assert_eq!((a.host(), a.port()), ("ex1.contoso.com", 444));
        let v6: ServerAddress = "[::1]:8080".parse().expect("ok");
        assert_eq!(v6.to_string(), "[::1]:8080");
        assert!("ex1".parse::<ServerAddress>().is_err());
        assert!("ex1:0".parse::<ServerAddress>().is_err());
        assert!("ex1:70000".parse::<ServerAddress>().is_err());
        assert!("[nonsense]:80".parse::<ServerAddress>().is_err());
    }
}
