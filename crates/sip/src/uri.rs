//! URIs (RFC 3261 §19, RFC 3966): SIP/SIPS parsed fully, `tel:` parsed loosely, anything else
//! kept opaque so a server can still answer `416 Unsupported URI Scheme`.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use crate::error::ParseError;
use crate::scan::{
    self, HCHAR, HOST, OPAQUE, PARAMCHAR, PASSWORD, ParamIter, SCHEME, Span, TEL, USER,
};

/// Any URI that may appear in a SIP message.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Uri {
    /// `sip:`
    Sip(SipUri),
    /// `sips:`
    Sips(SipUri),
    /// `tel:` (RFC 3966)
    Tel(TelUri),
    /// Any other scheme, kept opaque: a registrar answers 416 for it in a Request-URI and 400 for
    /// it in an AOR, but the parser must accept it (RFC 4475 §3.3.2–3.3.4).
    Other {
        /// The scheme, as received (compare case-insensitively).
        scheme: Bytes,
        /// The whole URI, as received.
        raw: Bytes,
    },
}

impl Uri {
    /// Parses a URI from text (e.g. configuration or an application-built target).
    pub fn parse_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// Parses a whole URI from `raw` (zero-copy: the result keeps slices of `raw`).
    pub fn parse(raw: Bytes) -> Result<Self, ParseError> {
        if raw.len() > u32::MAX as usize {
            return Err(ParseError::InvalidUri);
        }
        let colon = raw
            .iter()
            .position(|&c| c == b':')
            .ok_or(ParseError::InvalidUri)?;
        let scheme = &raw[..colon];
        match scheme.first() {
            Some(c) if c.is_ascii_alphabetic() => {}
            _ => return Err(ParseError::InvalidUri),
        }
        if !scheme.iter().all(|&c| scan::is(c, SCHEME)) {
            return Err(ParseError::InvalidUri);
        }
        if scheme.eq_ignore_ascii_case(b"sip") {
            Ok(Self::Sip(SipUri::parse_after_scheme(
                raw,
                colon + 1,
                false,
            )?))
        } else if scheme.eq_ignore_ascii_case(b"sips") {
            Ok(Self::Sips(SipUri::parse_after_scheme(
                raw,
                colon + 1,
                true,
            )?))
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            Ok(Self::Tel(TelUri::parse_after_scheme(raw, colon + 1)?))
        } else {
            let rest = &raw[colon + 1..];
            if rest.is_empty() || !rest.iter().all(|&c| scan::is(c, OPAQUE)) {
                return Err(ParseError::InvalidUri);
            }
            Ok(Self::Other {
                scheme: raw.slice(..colon),
                raw,
            })
        }
    }

    /// The scheme in lower case for known schemes, as received otherwise. A server checks this
    /// to decide on 416.
    pub fn scheme(&self) -> &str {
        match self {
            Self::Sip(_) => "sip",
            Self::Sips(_) => "sips",
            Self::Tel(_) => "tel",
            Self::Other { scheme, .. } => scan::ascii_str(scheme),
        }
    }

    /// The SIP or SIPS URI, if this is one.
    pub fn sip(&self) -> Option<&SipUri> {
        match self {
            Self::Sip(u) | Self::Sips(u) => Some(u),
            _ => None,
        }
    }

    /// The URI exactly as received.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Sip(u) | Self::Sips(u) => &u.raw,
            Self::Tel(t) => &t.raw,
            Self::Other { raw, .. } => raw,
        }
    }

    /// The canonical address-of-record key (`user@host`, see [`SipUri::aor`]) for SIP and SIPS
    /// URIs; `None` for other schemes, which a registrar rejects as AORs.
    pub fn aor(&self) -> Option<String> {
        self.sip().map(SipUri::aor)
    }
}

impl PartialEq for Uri {
    /// RFC 3261 §19.1.4 for SIP/SIPS, RFC 3966 §4 (loosely) for tel, byte equality otherwise.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sip(a), Self::Sip(b)) | (Self::Sips(a), Self::Sips(b)) => a == b,
            (Self::Tel(a), Self::Tel(b)) => a == b,
            (Self::Other { scheme: sa, raw: a }, Self::Other { scheme: sb, raw: b }) => {
                sa.eq_ignore_ascii_case(sb) && a[sa.len()..] == b[sb.len()..]
            }
            _ => false,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A host in a URI or Via sent-by.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Host {
    /// A domain name (compared case-insensitively).
    Domain(DomainName),
    /// A dotted-quad IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference (`[...]` on the wire).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses a host as it appears in a URI or Via (`example.com`, `192.0.2.1`, `[2001:db8::1]`).
    pub(crate) fn parse(src: &Bytes, b: &[u8]) -> Result<Self, ()> {
        HostRepr::parse(b).map(|r| r.to_host(src, b))
    }

    /// Parses a host from text (e.g. a configured domain).
    pub fn parse_str(s: &str) -> Option<Self> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        Self::parse(&b, &b).ok()
    }

    /// The IP address, if the host is one.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Self::Ipv4(a) => Some((*a).into()),
            Self::Ipv6(a) => Some((*a).into()),
            Self::Domain(_) => None,
        }
    }
}

impl PartialEq for Host {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Domain(a), Self::Domain(b)) => a == b,
            (Self::Ipv4(a), Self::Ipv4(b)) => a == b,
            (Self::Ipv6(a), Self::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Host {}

impl fmt::Display for Host {
    /// Lower-case domain, dotted quad, or bracketed IPv6 reference: the form used in AORs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => {
                for c in d.as_str().chars() {
                    fmt::Write::write_char(f, c.to_ascii_lowercase())?;
                }
                Ok(())
            }
            Self::Ipv4(a) => write!(f, "{a}"),
            Self::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A host as stored inside a URI or Via: the kind and address, with the text left in the owner's
/// buffer so parsing takes no extra reference count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostRepr {
    Domain,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostRepr {
    /// Classifies and validates a host (`example.com`, `192.0.2.1`, `[2001:db8::1]`).
    pub(crate) fn parse(b: &[u8]) -> Result<Self, ()> {
        match b {
            [] => Err(()),
            [b'[', inner @ .., b']'] => {
                let s = std::str::from_utf8(inner).map_err(|_| ())?;
                s.parse().map(Self::V6).map_err(|_| ())
            }
            _ => {
                let mut numeric = true;
                for &c in b {
                    if !scan::is(c, HOST) {
                        return Err(());
                    }
                    numeric &= c.is_ascii_digit() || c == b'.';
                }
                if numeric {
                    return scan::ascii_str(b).parse().map(Self::V4).map_err(|_| ());
                }
                Ok(Self::Domain)
            }
        }
    }

    /// The public [`Host`] for this host whose text is `text` inside `src`.
    pub(crate) fn to_host(self, src: &Bytes, text: &[u8]) -> Host {
        match self {
            Self::Domain => Host::Domain(DomainName(scan::share(src, text))),
            Self::V4(a) => Host::Ipv4(a),
            Self::V6(a) => Host::Ipv6(a),
        }
    }

    /// Host equality (domains case-insensitive) given each side's text.
    pub(crate) fn same(self, text: &[u8], other: Self, other_text: &[u8]) -> bool {
        match (self, other) {
            (Self::Domain, Self::Domain) => text.eq_ignore_ascii_case(other_text),
            (a, b) => a == b,
        }
    }

    /// Writes the AOR form: lower-case domain, dotted quad, or bracketed IPv6.
    pub(crate) fn write_canonical(self, text: &[u8], out: &mut String) {
        match self {
            Self::Domain => out.extend(
                scan::ascii_str(text)
                    .chars()
                    .map(|c| c.to_ascii_lowercase()),
            ),
            Self::V4(a) => out.push_str(&a.to_string()),
            Self::V6(a) => out.push_str(&format!("[{a}]")),
        }
    }
}

/// A domain name from the wire (validated hostname characters).
#[derive(Clone)]
pub struct DomainName(Bytes);

impl DomainName {
    /// The name as received (ASCII).
    pub fn as_str(&self) -> &str {
        scan::ascii_str(&self.0)
    }
}

impl PartialEq for DomainName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for DomainName {}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A SIP or SIPS URI: `sip:user:password@host:port;params?headers`.
///
/// Components are kept escaped, exactly as received, so the URI serialises unchanged; comparison
/// ([`PartialEq`], RFC 3261 §19.1.4) and [`SipUri::aor`] decode escapes.
#[derive(Clone)]
pub struct SipUri {
    raw: Bytes,
    secure: bool,
    user: Option<Span>,
    password: Option<Span>,
    host: HostRepr,
    host_span: Span,
    port: Option<u16>,
    params: Span,
    headers: Option<Span>,
}

impl SipUri {
    /// Parses `sip:` or `sips:` text.
    pub fn parse_str(s: &str) -> Result<Self, ParseError> {
        match Uri::parse_str(s)? {
            Uri::Sip(u) | Uri::Sips(u) => Ok(u),
            _ => Err(ParseError::InvalidUri),
        }
    }

    fn parse_after_scheme(raw: Bytes, start: usize, secure: bool) -> Result<Self, ParseError> {
        let bad = |()| ParseError::InvalidUri;
        let b = &raw[..];
        let mut pos = start;
        let (mut user, mut password) = (None, None);
        // `@` cannot appear unescaped after the userinfo, so the first one ends it.
        if let Some(at) = memchr::memchr(b'@', &b[pos..]) {
            let ui_end = pos + at;
            let (u_end, p) = match b[pos..ui_end].iter().position(|&c| c == b':') {
                Some(c) => (pos + c, Some(Span::new(pos + c + 1, ui_end))),
                None => (ui_end, None),
            };
            let u = Span::new(pos, u_end);
            if u.is_empty() || !scan::all_escaped(u.get(b), USER) {
                return Err(ParseError::InvalidUri);
            }
            if let Some(p) = p
                && !scan::all_escaped(p.get(b), PASSWORD)
            {
                return Err(ParseError::InvalidUri);
            }
            user = Some(u);
            password = p;
            pos = ui_end + 1;
        }
        let host_start = pos;
        if b.get(pos) == Some(&b'[') {
            let close = memchr::memchr(b']', &b[pos..]).ok_or(ParseError::InvalidUri)?;
            pos += close + 1;
        } else {
            while pos < b.len() && scan::is(b[pos], HOST) {
                pos += 1;
            }
        }
        let host_span = Span::new(host_start, pos);
        let host = HostRepr::parse(host_span.get(b)).map_err(bad)?;
        let mut port = None;
        if b.get(pos) == Some(&b':') {
            pos += 1;
            let ds = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            port = Some(parse_port(&b[ds..pos]).ok_or(ParseError::InvalidUri)?);
        }
        let pstart = pos;
        while b.get(pos) == Some(&b';') {
            pos += 1;
            let ns = pos;
            pos = scan_escaped(b, pos, PARAMCHAR);
            if pos == ns {
                return Err(ParseError::InvalidUri);
            }
            if b.get(pos) == Some(&b'=') {
                pos += 1;
                let vs = pos;
                pos = scan_escaped(b, pos, PARAMCHAR);
                if pos == vs {
                    return Err(ParseError::InvalidUri);
                }
            }
        }
        let params = Span::new(pstart, pos);
        let mut headers = None;
        if b.get(pos) == Some(&b'?') {
            pos += 1;
            let hs = pos;
            loop {
                let ns = pos;
                pos = scan_escaped(b, pos, HCHAR);
                if pos == ns || b.get(pos) != Some(&b'=') {
                    return Err(ParseError::InvalidUri);
                }
                pos += 1;
                pos = scan_escaped(b, pos, HCHAR);
                if b.get(pos) == Some(&b'&') {
                    pos += 1;
                } else {
                    break;
                }
            }
            headers = Some(Span::new(hs, pos));
        }
        if pos != b.len() {
            return Err(ParseError::InvalidUri);
        }
        Ok(Self {
            raw,
            secure,
            user,
            password,
            host,
            host_span,
            port,
            params,
            headers,
        })
    }

    /// Whether this is a `sips:` URI.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The user part, still escaped (e.g. `null-%00-null`).
    pub fn user(&self) -> Option<&str> {
        self.user.map(|s| scan::ascii_str(s.get(&self.raw)))
    }

    /// The user part with `%HH` escapes decoded; may contain any byte, including NUL.
    pub fn user_unescaped(&self) -> Option<Cow<'_, [u8]>> {
        self.user.map(|s| scan::unescape(s.get(&self.raw)))
    }

    /// The password, still escaped (deprecated by RFC 3261 but part of the grammar).
    pub fn password(&self) -> Option<&str> {
        self.password.map(|s| scan::ascii_str(s.get(&self.raw)))
    }

    /// The host.
    pub fn host(&self) -> Host {
        self.host.to_host(&self.raw, self.host_span.get(&self.raw))
    }

    /// The host exactly as written (brackets included for IPv6).
    pub fn host_str(&self) -> &str {
        scan::ascii_str(self.host_span.get(&self.raw))
    }

    /// The explicit port, if any (`sip:a@b` and `sip:a@b:5060` are different URIs).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// URI parameters in order, still escaped: `(name, value)`.
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        ParamIter::uri(self.params.get(&self.raw))
            .map(|(n, v)| (scan::ascii_str(n), v.map(scan::ascii_str)))
    }

    /// The raw parameter section including the leading `;` (empty if none).
    pub fn params_str(&self) -> &str {
        scan::ascii_str(self.params.get(&self.raw))
    }

    /// A URI parameter by name (case-insensitive): `Some(None)` for a flag like `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    /// Whether the `lr` (loose routing) parameter is present.
    pub fn lr(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        self.param("maddr").flatten()
    }

    /// The header section after `?`, still escaped. A Request-URI must not have one.
    pub fn headers(&self) -> Option<&str> {
        self.headers.map(|s| scan::ascii_str(s.get(&self.raw)))
    }

    /// The URI exactly as received.
    pub fn as_str(&self) -> &str {
        scan::ascii_str(&self.raw)
    }

    /// The URI as a shared buffer (cheap to clone into a binding or a message).
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The canonical address-of-record key: `user@host` (or `host`) with the user's escapes
    /// normalised (characters allowed unescaped are decoded, everything else is `%HH` in upper
    /// case, so `%75se%72` and `user` agree and `%00` keeps its NUL) and the host lower-cased.
    /// Scheme, port, parameters and headers are not part of an AOR.
    pub fn aor(&self) -> String {
        let mut out = String::new();
        if let Some(user) = self.user_unescaped() {
            for &c in user.iter() {
                if c.is_ascii() && scan::is(c, USER) {
                    out.push(c as char);
                } else {
                    out.push_str(&format!("%{c:02X}"));
                }
            }
            out.push('@');
        }
        self.host
            .write_canonical(self.host_span.get(&self.raw), &mut out);
        out
    }
}

impl PartialEq for SipUri {
    /// RFC 3261 §19.1.4: escapes decoded; user and password case-sensitive; host
    /// case-insensitive; ports must both be absent or equal; `user`, `ttl`, `method`, `maddr`
    /// and `transport` must match if either URI has them; other parameters must match if both
    /// have them; headers must match exactly as sets.
    fn eq(&self, other: &Self) -> bool {
        if self.secure != other.secure
            || self.user_unescaped() != other.user_unescaped()
            || self.password.map(|s| scan::unescape(s.get(&self.raw)))
                != other.password.map(|s| scan::unescape(s.get(&other.raw)))
            || !self.host.same(
                self.host_span.get(&self.raw),
                other.host,
                other.host_span.get(&other.raw),
            )
            || self.port != other.port
        {
            return false;
        }
        const MUST: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        let norm = |v: Option<&str>| v.map(|v| scan::unescape(v.as_bytes()).to_ascii_lowercase());
        for (name, value) in self.params() {
            let name_l = scan::unescape(name.as_bytes()).to_ascii_lowercase();
            match find_param(other, &name_l) {
                Some(ov) => {
                    if norm(value) != norm(ov) {
                        return false;
                    }
                }
                None => {
                    if MUST.iter().any(|m| m.as_bytes() == name_l.as_slice()) {
                        return false;
                    }
                }
            }
        }
        for (name, _) in other.params() {
            let name_l = scan::unescape(name.as_bytes()).to_ascii_lowercase();
            if MUST.iter().any(|m| m.as_bytes() == name_l.as_slice())
                && find_param(self, &name_l).is_none()
            {
                return false;
            }
        }
        let headers = |u: &Self| {
            let mut v: Vec<(Vec<u8>, Vec<u8>)> = u
                .headers()
                .map(|h| {
                    h.split('&')
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (
                                scan::unescape(k.as_bytes()).to_ascii_lowercase(),
                                scan::unescape(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        headers(self) == headers(other)
    }
}

impl fmt::Debug for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `tel:` URI (RFC 3966), parsed only as far as a registrar needs: the number and raw params.
#[derive(Clone)]
pub struct TelUri {
    raw: Bytes,
    number: Span,
    params: Span,
}

impl TelUri {
    fn parse_after_scheme(raw: Bytes, start: usize) -> Result<Self, ParseError> {
        let b = &raw[..];
        let mut pos = start;
        while pos < b.len() && scan::is(b[pos], TEL) {
            pos += 1;
        }
        let number = Span::new(start, pos);
        if number.is_empty() {
            return Err(ParseError::InvalidUri);
        }
        let pstart = pos;
        while b.get(pos) == Some(&b';') {
            pos += 1;
            let ns = pos;
            while pos < b.len() && (scan::is(b[pos], TEL) || matches!(b[pos], b'=' | b'/' | b':')) {
                pos += 1;
            }
            if pos == ns {
                return Err(ParseError::InvalidUri);
            }
        }
        if pos != b.len() {
            return Err(ParseError::InvalidUri);
        }
        Ok(Self {
            raw,
            number,
            params: Span::new(pstart, pos),
        })
    }

    /// The number as written (`+1-201-555-0123` or a local number).
    pub fn number(&self) -> &str {
        scan::ascii_str(self.number.get(&self.raw))
    }

    /// The raw parameters including the leading `;`.
    pub fn params_str(&self) -> &str {
        scan::ascii_str(self.params.get(&self.raw))
    }

    /// The URI exactly as received.
    pub fn as_str(&self) -> &str {
        scan::ascii_str(&self.raw)
    }

    fn digits(&self) -> Vec<u8> {
        self.number()
            .bytes()
            .filter(|c| !matches!(c, b'-' | b'.' | b'(' | b')'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    }
}

impl PartialEq for TelUri {
    /// Visual separators ignored, case-insensitive, parameters compared as a set.
    fn eq(&self, other: &Self) -> bool {
        let params = |t: &Self| {
            let mut v: Vec<String> = t
                .params_str()
                .split(';')
                .skip(1)
                .map(|p| p.to_ascii_lowercase())
                .collect();
            v.sort();
            v
        };
        self.digits() == other.digits() && params(self) == params(other)
    }
}

impl fmt::Debug for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

fn find_param<'a>(u: &'a SipUri, name_l: &[u8]) -> Option<Option<&'a str>> {
    u.params()
        .find(|(n, _)| scan::unescape(n.as_bytes()).eq_ignore_ascii_case(name_l))
        .map(|(_, v)| v)
}

/// Scans bytes of `class` or `%HH` escapes from `pos`; returns the new position.
fn scan_escaped(b: &[u8], mut pos: usize, class: u16) -> usize {
    while pos < b.len() {
        let c = b[pos];
        if scan::is(c, class) {
            pos += 1;
        } else if c == b'%'
            && b.get(pos + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(pos + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            pos += 3;
        } else {
            break;
        }
    }
    pos
}

pub(crate) fn parse_port(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    scan::parse_u32(b).and_then(|p| u16::try_from(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        SipUri::parse_str(s).unwrap()
    }

    #[test]
    fn parses_components() {
        let u = sip("sip:alice:pw@Example.COM:5061;transport=tcp;lr?subject=x&a=b");
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("pw"));
        assert_eq!(u.host_str(), "Example.COM");
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.lr());
        assert_eq!(u.headers(), Some("subject=x&a=b"));
        assert_eq!(u.aor(), "alice@example.com");
    }

    #[test]
    fn ipv6_and_ipv4_hosts() {
        let u = sip("sip:[2001:db8::10]:5070");
        assert!(matches!(u.host(), Host::Ipv6(_)));
        assert_eq!(u.port(), Some(5070));
        assert!(matches!(sip("sip:192.0.2.1").host(), Host::Ipv4(_)));
        assert!(SipUri::parse_str("sip:[2001:db8:::192.0.2.1]").is_err());
        assert!(SipUri::parse_str("sip:999.0.0.1").is_err());
    }

    #[test]
    fn rfc4475_unusual_user_parts() {
        let u = sip(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.user(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        let semi = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(semi.user(), Some("user;par=u%40example.net"));
        assert_eq!(semi.host_str(), "example.com");
    }

    #[test]
    fn rfc3261_section_19_1_4_equality() {
        assert_eq!(
            sip("sip:%61lice@atlanta.com;transport=TCP"),
            sip("sip:alice@AtLanTa.CoM;Transport=tcp")
        );
        assert_ne!(sip("sip:alice@atlanta.com"), sip("sip:ALICE@atlanta.com"));
        assert_ne!(sip("sip:bob@biloxi.com"), sip("sip:bob@biloxi.com:5060"));
        assert_ne!(
            sip("sip:bob@biloxi.com"),
            sip("sip:bob@biloxi.com;transport=udp")
        );
        assert_eq!(
            sip("sip:carol@chicago.com"),
            sip("sip:carol@chicago.com;newparam=5")
        );
        assert_eq!(
            sip("sip:carol@chicago.com;security=on"),
            sip("sip:carol@chicago.com;newparam=5")
        );
        assert_ne!(
            sip("sip:carol@chicago.com;security=on"),
            sip("sip:carol@chicago.com;security=off")
        );
        assert_eq!(
            sip("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com"),
            sip("sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com")
        );
        assert_ne!(
            sip("sip:carol@chicago.com"),
            sip("sip:carol@chicago.com?Subject=next%20meeting")
        );
        assert_ne!(
            Uri::parse_str("sip:a@b").unwrap(),
            Uri::parse_str("sips:a@b").unwrap()
        );
    }

    #[test]
    fn escaped_nul_users_are_distinct() {
        let a = sip("sip:%00@host5.example.com");
        let b = sip("sip:%00%00@host5.example.com");
        assert_ne!(a, b);
        assert_eq!(
            sip("sip:null-%00-null@example.com").aor(),
            "null-%00-null@example.com"
        );
        assert_eq!(sip("sip:%75se%72@example.com").aor(), "user@example.com");
        assert_eq!(sip("sip:a%26b@X.org").aor(), sip("sip:a&b@x.org").aor());
    }

    #[test]
    fn other_and_tel_schemes() {
        let u = Uri::parse_str("nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert_eq!(u.scheme(), "nobodyKnowsThisScheme");
        let u = Uri::parse_str("soap.beep://192.0.2.103:3002").unwrap();
        assert!(matches!(u, Uri::Other { .. }));
        let t = Uri::parse_str("tel:+1-201-555-0123;phone-context=x").unwrap();
        assert_eq!(
            t,
            Uri::parse_str("tel:+12015550123;PHONE-CONTEXT=x").unwrap()
        );
        assert!(Uri::parse_str("<sip:a@b>").is_err());
        assert!(Uri::parse_str("sip:a@b; lr").is_err());
        assert!(Uri::parse_str("sip:").is_err());
        assert!(Uri::parse_str("sip:a@b;;").is_err());
    }
}
