//! Request methods.

use std::fmt;

use bytes::Bytes;

use crate::scan::{self, TOKEN};

/// A request method. Methods are case-sensitive (RFC 3261 §7.1): `register` and `RE%47IST%45R`
/// are extension methods, not REGISTER. Microsoft's BENOTIFY, SERVICE and NEGOTIATE are known so
/// the server can dispatch on them without string compares.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// RFC 3261.
    Register,
    /// RFC 3261.
    Invite,
    /// RFC 3261.
    Ack,
    /// RFC 3261.
    Cancel,
    /// RFC 3261.
    Bye,
    /// RFC 3261.
    Options,
    /// RFC 6665.
    Subscribe,
    /// RFC 6665.
    Notify,
    /// RFC 3903.
    Publish,
    /// RFC 3428.
    Message,
    /// RFC 6086.
    Info,
    /// RFC 3515.
    Refer,
    /// RFC 3262.
    Prack,
    /// RFC 3311.
    Update,
    /// MS-SIP: a NOTIFY that expects no response ("best effort").
    Benotify,
    /// MS-SIP: presence publication and roaming data operations.
    Service,
    /// MS-SIP: compression and SA negotiation.
    Negotiate,
    /// Any other token; the bytes are kept exactly as received.
    Extension(MethodToken),
}

/// The text of an extension method: a validated RFC 3261 token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MethodToken(Bytes);

impl MethodToken {
    /// The method as text (tokens are ASCII).
    pub fn as_str(&self) -> &str {
        scan::ascii_str(&self.0)
    }
}

impl fmt::Debug for MethodToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Method {
    /// Parses a method token from a slice of `src` (kept zero-copy for extension methods).
    /// Returns `None` if the bytes are not a token.
    pub(crate) fn from_token(src: &Bytes, b: &[u8]) -> Option<Self> {
        Some(match b {
            b"REGISTER" => Self::Register,
            b"INVITE" => Self::Invite,
            b"ACK" => Self::Ack,
            b"CANCEL" => Self::Cancel,
            b"BYE" => Self::Bye,
            b"OPTIONS" => Self::Options,
            b"SUBSCRIBE" => Self::Subscribe,
            b"NOTIFY" => Self::Notify,
            b"PUBLISH" => Self::Publish,
            b"MESSAGE" => Self::Message,
            b"INFO" => Self::Info,
            b"REFER" => Self::Refer,
            b"PRACK" => Self::Prack,
            b"UPDATE" => Self::Update,
            b"BENOTIFY" => Self::Benotify,
            b"SERVICE" => Self::Service,
            b"NEGOTIATE" => Self::Negotiate,
            _ => {
                if b.is_empty() || !b.iter().all(|&c| scan::is(c, TOKEN)) {
                    return None;
                }
                Self::Extension(MethodToken(scan::share(src, b)))
            }
        })
    }

    /// Parses a method from text, e.g. for building requests. Returns `None` for a non-token.
    pub fn parse(s: &str) -> Option<Self> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        Self::from_token(&b, &b)
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Register => "REGISTER",
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Cancel => "CANCEL",
            Self::Bye => "BYE",
            Self::Options => "OPTIONS",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Publish => "PUBLISH",
            Self::Message => "MESSAGE",
            Self::Info => "INFO",
            Self::Refer => "REFER",
            Self::Prack => "PRACK",
            Self::Update => "UPDATE",
            Self::Benotify => "BENOTIFY",
            Self::Service => "SERVICE",
            Self::Negotiate => "NEGOTIATE",
            Self::Extension(t) => t.as_str(),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_and_escapes_are_literal() {
        assert_eq!(Method::parse("REGISTER"), Some(Method::Register));
        assert!(matches!(
            Method::parse("register"),
            Some(Method::Extension(_))
        ));
        let m = Method::parse("RE%47IST%45R").unwrap();
        assert_eq!(m.as_str(), "RE%47IST%45R");
        assert_ne!(m, Method::Register);
        assert_eq!(Method::parse("BENOTIFY"), Some(Method::Benotify));
        assert_eq!(Method::parse("BAD METHOD"), None);
        assert_eq!(Method::parse(""), None);
    }
}
