//! Small typed headers: CSeq, Call-ID, numbers, Content-Type, Event, Subscription-State,
//! authentication headers and token lists.

use std::fmt;

use bytes::Bytes;

use crate::error::ParseError;
use crate::method::Method;
use crate::scan::{self, Cursor, ParamIter, Span, WORD};

/// The CSeq header: orders requests within a dialog and ties responses to requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (`< 2**31` by RFC 3261 §8.1.1.5, but any `u32` is accepted).
    pub seq: u32,
    /// The method, which must equal the request's method.
    pub method: Method,
}

impl CSeq {
    pub(crate) fn parse(src: &Bytes, v: &[u8]) -> Result<Self, ParseError> {
        let err = ParseError::InvalidHeader { header: "CSeq" };
        let mut cur = Cursor::new(v);
        cur.skip_lws();
        let digits = cur.take_class(scan::TOKEN);
        let seq = scan::parse_u32(digits.get(v)).ok_or(err.clone())?;
        if !cur.skip_lws() {
            return Err(err);
        }
        let m = cur.token().ok_or(err.clone())?;
        cur.skip_lws();
        if !cur.at_end() {
            return Err(err);
        }
        let method = Method::from_token(src, m.get(v)).ok_or(err)?;
        Ok(Self { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Validates a Call-ID (`word ["@" word]`) and returns it as a slice of `src`.
pub(crate) fn parse_call_id(src: &Bytes, v: &[u8]) -> Result<Bytes, ParseError> {
    let ok = !v.is_empty() && {
        let (a, b) = match memchr::memchr(b'@', v) {
            Some(i) => (&v[..i], Some(&v[i + 1..])),
            None => (v, None),
        };
        let word = |w: &[u8]| !w.is_empty() && w.iter().all(|&c| scan::is(c, WORD));
        word(a) && b.is_none_or(word)
    };
    if ok {
        Ok(scan::share(src, v))
    } else {
        Err(ParseError::InvalidHeader { header: "Call-ID" })
    }
}

/// Parses a header made of one unsigned number (Max-Forwards, Content-Length, Expires, ...).
pub(crate) fn parse_number(v: &[u8], header: &'static str) -> Result<u32, ParseError> {
    scan::parse_u32(scan::trim_lws(v)).ok_or(ParseError::InvalidHeader { header })
}

/// Parses a delta-seconds header (Expires, Min-Expires): digits only, values over `u32::MAX`
/// saturate (RFC 4475 §3.1.2.4 lets an element treat an overlarge expiry as a large value).
pub(crate) fn parse_delta_seconds(v: &[u8], header: &'static str) -> Result<u32, ParseError> {
    let v = scan::trim_lws(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::InvalidHeader { header });
    }
    Ok(scan::parse_u32(v).unwrap_or(u32::MAX))
}

/// A media type with parameters (Content-Type, one Accept entry).
#[derive(Clone, Debug)]
pub struct MediaType<'a> {
    raw: &'a [u8],
    ty: Span,
    subtype: Span,
    params: Span,
}

impl<'a> MediaType<'a> {
    pub(crate) fn parse(v: &'a [u8]) -> Result<Self, ParseError> {
        let err = || ParseError::InvalidHeader {
            header: "Content-Type",
        };
        let mut cur = Cursor::new(v);
        cur.skip_lws();
        let ty = cur.token().ok_or_else(err)?;
        if !cur.eat_sep(b'/') {
            return Err(err());
        }
        let subtype = cur.token().ok_or_else(err)?;
        let params = cur.params(|_, _| Ok(())).map_err(|()| err())?;
        cur.skip_lws();
        if !cur.at_end() {
            return Err(err());
        }
        Ok(Self {
            raw: v,
            ty,
            subtype,
            params,
        })
    }

    /// The top-level type, e.g. `application`.
    pub fn ty(&self) -> &'a str {
        scan::ascii_str(self.ty.get(self.raw))
    }

    /// The subtype, e.g. `msrtc-category-publish+xml`.
    pub fn subtype(&self) -> &'a str {
        scan::ascii_str(self.subtype.get(self.raw))
    }

    /// Whether this is `ty/subtype` (case-insensitive).
    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty().eq_ignore_ascii_case(ty) && self.subtype().eq_ignore_ascii_case(subtype)
    }

    /// Parameters in order (`boundary`, `charset`, ...); values may be quoted.
    pub fn params(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        ParamIter::header(self.params.get(self.raw))
    }

    /// A parameter by name (case-insensitive), quotes removed.
    pub fn param(&self, name: &str) -> Option<Option<String>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.map(|v| String::from_utf8_lossy(&scan::unquote(v)).into_owned()))
    }
}

/// The Event header (RFC 6665 §8.2.1): package name plus `id` and other parameters.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    raw: &'a [u8],
    package: Span,
    id: Option<Span>,
    params: Span,
}

impl<'a> Event<'a> {
    pub(crate) fn parse(v: &'a [u8]) -> Result<Self, ParseError> {
        let err = || ParseError::InvalidHeader { header: "Event" };
        let mut cur = Cursor::new(v);
        cur.skip_lws();
        let package = cur.token().ok_or_else(err)?;
        let mut id = None;
        let params = cur
            .params(|n, val| {
                if n.get(v).eq_ignore_ascii_case(b"id") {
                    id = Some(val.ok_or(())?);
                }
                Ok(())
            })
            .map_err(|()| err())?;
        cur.skip_lws();
        if !cur.at_end() {
            return Err(err());
        }
        Ok(Self {
            raw: v,
            package,
            id,
            params,
        })
    }

    /// The event package including any template (`presence`, `presence.winfo`,
    /// `vnd-microsoft-roaming-contacts`); compare case-insensitively.
    pub fn package(&self) -> &'a str {
        scan::ascii_str(self.package.get(self.raw))
    }

    /// The `id` parameter that distinguishes subscriptions in one dialog.
    pub fn id(&self) -> Option<&'a str> {
        self.id.map(|s| scan::ascii_str(s.get(self.raw)))
    }

    /// Parameters in order.
    pub fn params(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        ParamIter::header(self.params.get(self.raw))
    }
}

/// The Subscription-State header (RFC 6665 §8.2.3).
#[derive(Clone, Debug)]
pub struct SubscriptionState<'a> {
    raw: &'a [u8],
    state: Span,
    params: Span,
}

impl<'a> SubscriptionState<'a> {
    pub(crate) fn parse(v: &'a [u8]) -> Result<Self, ParseError> {
        let err = || ParseError::InvalidHeader {
            header: "Subscription-State",
        };
        let mut cur = Cursor::new(v);
        cur.skip_lws();
        let state = cur.token().ok_or_else(err)?;
        let params = cur.params(|_, _| Ok(())).map_err(|()| err())?;
        cur.skip_lws();
        if !cur.at_end() {
            return Err(err());
        }
        Ok(Self {
            raw: v,
            state,
            params,
        })
    }

    /// `active`, `pending`, `terminated` or an extension; compare case-insensitively.
    pub fn state(&self) -> &'a str {
        scan::ascii_str(self.state.get(self.raw))
    }

    /// The `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.param("expires").and_then(|v| scan::parse_u32(v?))
    }

    /// The `reason` parameter.
    pub fn reason(&self) -> Option<&'a str> {
        self.param("reason").flatten().map(scan::ascii_str)
    }

    /// A parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<Option<&'a [u8]>> {
        ParamIter::header(self.params.get(self.raw))
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// An Authorization, Proxy-Authorization, WWW-Authenticate or Proxy-Authenticate value: the
/// scheme and the raw parameter text, which the auth crate parses (Digest, NTLM, Kerberos and
/// TLS-DSK all differ in detail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthHeader<'a> {
    /// The scheme token (`Digest`, `NTLM`, ...); compare case-insensitively.
    pub scheme: &'a str,
    /// Everything after the scheme, LWS-trimmed (`realm="...", nonce="..."`).
    pub params: &'a [u8],
}

impl<'a> AuthHeader<'a> {
    pub(crate) fn parse(v: &'a [u8], header: &'static str) -> Result<Self, ParseError> {
        let mut cur = Cursor::new(v);
        cur.skip_lws();
        let scheme = cur.token().ok_or(ParseError::InvalidHeader { header })?;
        if !cur.at_end() && !cur.skip_lws() {
            return Err(ParseError::InvalidHeader { header });
        }
        Ok(Self {
            scheme: scan::ascii_str(scheme.get(v)),
            params: scan::trim_lws(&v[cur.pos..]),
        })
    }
}

/// Splits token-list header values (Supported, Require, Allow, Allow-Events, Proxy-Require) at
/// commas, trimming LWS and skipping empty items.
pub(crate) fn tokens<'a>(values: impl Iterator<Item = &'a [u8]>) -> impl Iterator<Item = &'a str> {
    values
        .flat_map(scan::split_commas)
        .filter(|t| !t.is_empty())
        .filter_map(|t| std::str::from_utf8(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_forms() {
        let b = Bytes::from_static(b"0009\r\n  INVITE");
        let c = CSeq::parse(&b, &b).unwrap();
        assert_eq!(
            c,
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        let b = Bytes::from_static(b"36893488147419103232 REGISTER");
        assert!(CSeq::parse(&b, &b).is_err());
        let b = Bytes::from_static(b"1REGISTER");
        assert!(CSeq::parse(&b, &b).is_err());
        let b = Bytes::from_static(b"1 REGISTER x");
        assert!(CSeq::parse(&b, &b).is_err());
    }

    #[test]
    fn call_ids() {
        let b = Bytes::from_static(b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
        assert!(parse_call_id(&b, &b).is_ok());
        let b = Bytes::from_static(b"a b");
        assert!(parse_call_id(&b, &b).is_err());
        let b = Bytes::from_static(b"a@b@c");
        assert!(parse_call_id(&b, &b).is_err());
    }

    #[test]
    fn media_event_state_auth() {
        let m = MediaType::parse(b"multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(m.is("MULTIPART", "mixed"));
        assert_eq!(m.param("boundary").unwrap().unwrap(), "7a9cbec02ceef655");
        let e = Event::parse(b"presence;id=5").unwrap();
        assert_eq!((e.package(), e.id()), ("presence", Some("5")));
        let s = SubscriptionState::parse(b"active;expires=600").unwrap();
        assert_eq!((s.state(), s.expires()), ("active", Some(600)));
        let a = AuthHeader::parse(
            b"NTLM qop=\"auth\", realm=\"SIP Communications Service\"",
            "Authorization",
        )
        .unwrap();
        assert_eq!(a.scheme, "NTLM");
        assert!(a.params.starts_with(b"qop="));
        let list: Vec<_> =
            tokens([&b"gruu-10, adhoclist"[..], b"ms-benotify"].into_iter()).collect();
        assert_eq!(list, ["gruu-10", "adhoclist", "ms-benotify"]);
        assert_eq!(
            parse_delta_seconds(b"10000000000000", "Expires").unwrap(),
            u32::MAX
        );
        assert!(parse_delta_seconds(b"-1", "Expires").is_err());
    }
}
