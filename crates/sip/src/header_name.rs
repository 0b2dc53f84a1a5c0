//! Header field names, including compact forms.

use std::fmt;

use bytes::Bytes;

use crate::scan::{self, TOKEN};

macro_rules! header_names {
    ($( $(#[$doc:meta])* $var:ident => $canon:literal, $lower:literal $(, $compact:literal)? ;)*) => {
        /// A header field name. Known names are recognised case-insensitively and in compact form
        /// (RFC 3261 §7.3.3 and later extensions), so `v`, `VIA` and `Via` all compare equal;
        /// anything else is [`HeaderName::Other`], compared case-insensitively.
        #[derive(Clone, Debug)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $var, )*
            /// Any other (extension) header; the name bytes are kept as received.
            Other(OtherName),
        }

        impl HeaderName {
            /// The canonical (long, conventionally capitalised) form, used when serialising
            /// headers this crate creates.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$var => $canon, )*
                    Self::Other(o) => o.as_str(),
                }
            }
        }
    };
}

header_names! {
    /// RFC 3261 §20.1.
    Accept => "Accept", b"accept";
    /// RFC 3841 (compact `a`).
    AcceptContact => "Accept-Contact", b"accept-contact", b"a";
    /// RFC 3261 §20.2.
    AcceptEncoding => "Accept-Encoding", b"accept-encoding";
    /// RFC 3261 §20.3.
    AcceptLanguage => "Accept-Language", b"accept-language";
    /// RFC 3261 §20.4.
    AlertInfo => "Alert-Info", b"alert-info";
    /// RFC 3261 §20.5.
    Allow => "Allow", b"allow";
    /// RFC 6665 (compact `u`).
    AllowEvents => "Allow-Events", b"allow-events", b"u";
    /// RFC 3261 §20.6.
    AuthenticationInfo => "Authentication-Info", b"authentication-info";
    /// RFC 3261 §20.7.
    Authorization => "Authorization", b"authorization";
    /// RFC 3261 §20.8 (compact `i`).
    CallId => "Call-ID", b"call-id", b"i";
    /// RFC 3261 §20.9.
    CallInfo => "Call-Info", b"call-info";
    /// RFC 3261 §20.10 (compact `m`).
    Contact => "Contact", b"contact", b"m";
    /// RFC 3261 §20.11.
    ContentDisposition => "Content-Disposition", b"content-disposition";
    /// RFC 3261 §20.12 (compact `e`).
    ContentEncoding => "Content-Encoding", b"content-encoding", b"e";
    /// RFC 3261 §20.13.
    ContentLanguage => "Content-Language", b"content-language";
    /// RFC 3261 §20.14 (compact `l`).
    ContentLength => "Content-Length", b"content-length", b"l";
    /// RFC 3261 §20.15 (compact `c`).
    ContentType => "Content-Type", b"content-type", b"c";
    /// RFC 3261 §20.16.
    CSeq => "CSeq", b"cseq";
    /// RFC 3261 §20.17.
    Date => "Date", b"date";
    /// RFC 3261 §20.18.
    ErrorInfo => "Error-Info", b"error-info";
    /// RFC 6665 (compact `o`).
    Event => "Event", b"event", b"o";
    /// RFC 3261 §20.19.
    Expires => "Expires", b"expires";
    /// RFC 3261 §20.20 (compact `f`).
    From => "From", b"from", b"f";
    /// RFC 8224 (compact `y`).
    Identity => "Identity", b"identity", b"y";
    /// RFC 4474 (compact `n`).
    IdentityInfo => "Identity-Info", b"identity-info", b"n";
    /// RFC 3261 §20.21.
    InReplyTo => "In-Reply-To", b"in-reply-to";
    /// RFC 3261 §20.22.
    MaxForwards => "Max-Forwards", b"max-forwards";
    /// RFC 3261 §20.23.
    MinExpires => "Min-Expires", b"min-expires";
    /// RFC 3261 §20.24.
    MimeVersion => "MIME-Version", b"mime-version";
    /// RFC 3261 §20.25.
    Organization => "Organization", b"organization";
    /// RFC 3327.
    Path => "Path", b"path";
    /// RFC 3261 §20.26.
    Priority => "Priority", b"priority";
    /// RFC 3261 §20.27.
    ProxyAuthenticate => "Proxy-Authenticate", b"proxy-authenticate";
    /// RFC 3261 §20.28.
    ProxyAuthorization => "Proxy-Authorization", b"proxy-authorization";
    /// RFC 3261 §20.29.
    ProxyRequire => "Proxy-Require", b"proxy-require";
    /// RFC 3262.
    RAck => "RAck", b"rack";
    /// RFC 3261 §20.30.
    RecordRoute => "Record-Route", b"record-route";
    /// RFC 3515 (compact `r`).
    ReferTo => "Refer-To", b"refer-to", b"r";
    /// RFC 3892 (compact `b`).
    ReferredBy => "Referred-By", b"referred-by", b"b";
    /// RFC 3841 (compact `j`).
    RejectContact => "Reject-Contact", b"reject-contact", b"j";
    /// RFC 3261 §20.31.
    ReplyTo => "Reply-To", b"reply-to";
    /// RFC 3841 (compact `d`).
    RequestDisposition => "Request-Disposition", b"request-disposition", b"d";
    /// RFC 3261 §20.32.
    Require => "Require", b"require";
    /// RFC 3261 §20.33.
    RetryAfter => "Retry-After", b"retry-after";
    /// RFC 3261 §20.34.
    Route => "Route", b"route";
    /// RFC 3262.
    RSeq => "RSeq", b"rseq";
    /// RFC 3261 §20.35.
    Server => "Server", b"server";
    /// RFC 4028 (compact `x`).
    SessionExpires => "Session-Expires", b"session-expires", b"x";
    /// RFC 3903.
    SipETag => "SIP-ETag", b"sip-etag";
    /// RFC 3903.
    SipIfMatch => "SIP-If-Match", b"sip-if-match";
    /// RFC 3261 §20.36 (compact `s`).
    Subject => "Subject", b"subject", b"s";
    /// RFC 6665.
    SubscriptionState => "Subscription-State", b"subscription-state";
    /// RFC 3261 §20.37 (compact `k`).
    Supported => "Supported", b"supported", b"k";
    /// RFC 3261 §20.38.
    Timestamp => "Timestamp", b"timestamp";
    /// RFC 3261 §20.39 (compact `t`).
    To => "To", b"to", b"t";
    /// RFC 3261 §20.40.
    Unsupported => "Unsupported", b"unsupported";
    /// RFC 3261 §20.41.
    UserAgent => "User-Agent", b"user-agent";
    /// RFC 3261 §20.42 (compact `v`).
    Via => "Via", b"via", b"v";
    /// RFC 3261 §20.43.
    Warning => "Warning", b"warning";
    /// RFC 3261 §20.44.
    WwwAuthenticate => "WWW-Authenticate", b"www-authenticate";
}

/// The name of an extension header, as received (or as given when building).
#[derive(Clone)]
pub struct OtherName(Bytes);

impl OtherName {
    /// The name as text (names are tokens, so ASCII).
    pub fn as_str(&self) -> &str {
        scan::ascii_str(&self.0)
    }
}

impl fmt::Debug for OtherName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl HeaderName {
    /// Classifies a wire name that is a slice of `src` (zero-copy for extension names). Returns
    /// `None` if `name` is not a token.
    pub(crate) fn from_wire(src: &Bytes, name: &[u8]) -> Option<Self> {
        if let Some(known) = classify(name) {
            return Some(known);
        }
        if name.is_empty() || !name.iter().all(|&c| scan::is(c, TOKEN)) {
            return None;
        }
        Some(Self::Other(OtherName(scan::share(src, name))))
    }

    /// Classifies a known header name (any case, long or compact); `None` for extension names.
    pub(crate) fn known(name: &[u8]) -> Option<Self> {
        classify(name)
    }

    /// Parses a header name given by the application (e.g. `"ms-keep-alive"`). Returns `None` if
    /// it is not a token.
    pub fn parse(name: &str) -> Option<Self> {
        let b = Bytes::copy_from_slice(name.as_bytes());
        Self::from_wire(&b, &b)
    }

    /// Whether two names denote the same header (compact and long forms are equal, other names
    /// compare case-insensitively).
    pub fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Other(a), Self::Other(b)) => a.0.eq_ignore_ascii_case(&b.0),
            (Self::Other(_), _) | (_, Self::Other(_)) => false,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }

    /// Whether this is `name` given as text (any case, long or compact form).
    pub(crate) fn matches_str(&self, name: &[u8]) -> bool {
        match self {
            Self::Other(o) => o.0.eq_ignore_ascii_case(name),
            known => classify(name).is_some_and(|n| n.matches(known)),
        }
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl Eq for HeaderName {}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that names a header for lookups: a [`HeaderName`] or its text (`"Contact"`, `"m"`,
/// `"ms-keep-alive"`). Lets callers write `req.header("ms-keep-alive")` without building a name.
pub trait AsHeaderName {
    /// Whether a stored header name is this one.
    fn is_name(&self, name: &HeaderName) -> bool;
}

impl AsHeaderName for HeaderName {
    fn is_name(&self, name: &HeaderName) -> bool {
        self.matches(name)
    }
}

impl AsHeaderName for &HeaderName {
    fn is_name(&self, name: &HeaderName) -> bool {
        self.matches(name)
    }
}

impl AsHeaderName for &str {
    fn is_name(&self, name: &HeaderName) -> bool {
        name.matches_str(self.as_bytes())
    }
}

impl AsHeaderName for &String {
    fn is_name(&self, name: &HeaderName) -> bool {
        name.matches_str(self.as_bytes())
    }
}

/// Looks up a known header name in any case without allocating: dispatch on the first byte and
/// the length, then one case-insensitive compare.
fn classify(name: &[u8]) -> Option<HeaderName> {
    use HeaderName as H;
    let first = name.first()?.to_ascii_lowercase();
    if name.len() == 1 {
        return Some(match first {
            b'a' => H::AcceptContact,
            b'b' => H::ReferredBy,
            b'c' => H::ContentType,
            b'd' => H::RequestDisposition,
            b'e' => H::ContentEncoding,
            b'f' => H::From,
            b'i' => H::CallId,
            b'j' => H::RejectContact,
            b'k' => H::Supported,
            b'l' => H::ContentLength,
            b'm' => H::Contact,
            b'n' => H::IdentityInfo,
            b'o' => H::Event,
            b'r' => H::ReferTo,
            b's' => H::Subject,
            b't' => H::To,
            b'u' => H::AllowEvents,
            b'v' => H::Via,
            b'x' => H::SessionExpires,
            b'y' => H::Identity,
            _ => return None,
        });
    }
    let is = |lower: &[u8]| name.eq_ignore_ascii_case(lower);
    Some(match (first, name.len()) {
        (b'a', 5) if is(b"allow") => H::Allow,
        (b'a', 6) if is(b"accept") => H::Accept,
        (b'a', 10) if is(b"alert-info") => H::AlertInfo,
        (b'a', 12) if is(b"allow-events") => H::AllowEvents,
        (b'a', 13) if is(b"authorization") => H::Authorization,
        (b'a', 14) if is(b"accept-contact") => H::AcceptContact,
        (b'a', 15) if is(b"accept-encoding") => H::AcceptEncoding,
        (b'a', 15) if is(b"accept-language") => H::AcceptLanguage,
        (b'a', 19) if is(b"authentication-info") => H::AuthenticationInfo,
        (b'c', 4) if is(b"cseq") => H::CSeq,
        (b'c', 7) if is(b"call-id") => H::CallId,
        (b'c', 7) if is(b"contact") => H::Contact,
        (b'c', 9) if is(b"call-info") => H::CallInfo,
        (b'c', 12) if is(b"content-type") => H::ContentType,
        (b'c', 14) if is(b"content-length") => H::ContentLength,
        (b'c', 16) if is(b"content-encoding") => H::ContentEncoding,
        (b'c', 16) if is(b"content-language") => H::ContentLanguage,
        (b'c', 19) if is(b"content-disposition") => H::ContentDisposition,
        (b'd', 4) if is(b"date") => H::Date,
        (b'e', 5) if is(b"event") => H::Event,
        (b'e', 7) if is(b"expires") => H::Expires,
        (b'e', 10) if is(b"error-info") => H::ErrorInfo,
        (b'f', 4) if is(b"from") => H::From,
        (b'i', 8) if is(b"identity") => H::Identity,
        (b'i', 11) if is(b"in-reply-to") => H::InReplyTo,
        (b'i', 13) if is(b"identity-info") => H::IdentityInfo,
        (b'm', 11) if is(b"min-expires") => H::MinExpires,
        (b'm', 12) if is(b"max-forwards") => H::MaxForwards,
        (b'm', 12) if is(b"mime-version") => H::MimeVersion,
        (b'o', 12) if is(b"organization") => H::Organization,
        (b'p', 4) if is(b"path") => H::Path,
        (b'p', 8) if is(b"priority") => H::Priority,
        (b'p', 13) if is(b"proxy-require") => H::ProxyRequire,
        (b'p', 18) if is(b"proxy-authenticate") => H::ProxyAuthenticate,
        (b'p', 19) if is(b"proxy-authorization") => H::ProxyAuthorization,
        (b'r', 4) if is(b"rack") => H::RAck,
        (b'r', 4) if is(b"rseq") => H::RSeq,
        (b'r', 5) if is(b"route") => H::Route,
        (b'r', 7) if is(b"require") => H::Require,
        (b'r', 8) if is(b"refer-to") => H::ReferTo,
        (b'r', 8) if is(b"reply-to") => H::ReplyTo,
        (b'r', 11) if is(b"referred-by") => H::ReferredBy,
        (b'r', 11) if is(b"retry-after") => H::RetryAfter,
        (b'r', 12) if is(b"record-route") => H::RecordRoute,
        (b'r', 14) if is(b"reject-contact") => H::RejectContact,
        (b'r', 19) if is(b"request-disposition") => H::RequestDisposition,
        (b's', 6) if is(b"server") => H::Server,
        (b's', 7) if is(b"subject") => H::Subject,
        (b's', 8) if is(b"sip-etag") => H::SipETag,
        (b's', 9) if is(b"supported") => H::Supported,
        (b's', 12) if is(b"sip-if-match") => H::SipIfMatch,
        (b's', 15) if is(b"session-expires") => H::SessionExpires,
        (b's', 18) if is(b"subscription-state") => H::SubscriptionState,
        (b't', 2) if is(b"to") => H::To,
        (b't', 9) if is(b"timestamp") => H::Timestamp,
        (b'u', 10) if is(b"user-agent") => H::UserAgent,
        (b'u', 11) if is(b"unsupported") => H::Unsupported,
        (b'v', 3) if is(b"via") => H::Via,
        (b'w', 7) if is(b"warning") => H::Warning,
        (b'w', 16) if is(b"www-authenticate") => H::WwwAuthenticate,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive() {
        let b = Bytes::from_static(b"v");
        let v = HeaderName::from_wire(&b, b"v").unwrap();
        assert_eq!(v, HeaderName::Via);
        assert!(HeaderName::Via.matches_str(b"VIA"));
        assert_eq!(HeaderName::parse("i").unwrap(), HeaderName::CallId);
        assert_eq!(HeaderName::parse("m").unwrap().as_str(), "Contact");
        assert_eq!(HeaderName::parse("u").unwrap(), HeaderName::AllowEvents);
        assert_eq!(HeaderName::parse("k").unwrap(), HeaderName::Supported);
        assert_eq!(HeaderName::parse("o").unwrap(), HeaderName::Event);
    }

    #[test]
    fn other_names() {
        let a = HeaderName::parse("ms-keep-alive").unwrap();
        let b = HeaderName::parse("MS-Keep-Alive").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, HeaderName::Via);
        assert_eq!(b.as_str(), "MS-Keep-Alive");
        assert!(HeaderName::parse("C%6Fntact").is_some_and(|n| n != HeaderName::Contact));
        assert!(HeaderName::parse("bad name").is_none());
        assert!(HeaderName::parse("").is_none());
    }
}
