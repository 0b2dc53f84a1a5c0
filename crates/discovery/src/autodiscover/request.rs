//! The parts of an autodiscover request that carry meaning, parsed into types: the resource, the
//! `sipuri` / `originalDomain` parameters and the wanted format.

use std::fmt;

use crate::name::Fqdn;

/// The document format a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/vnd.microsoft.rtc.autodiscover+xml;v=1` (SIPE, Lync desktop).
    Xml,
    /// `application/vnd.microsoft.rtc.autodiscover+json;v=1` (UCWA clients; the default).
    Json,
}

/// A user's SIP address as given in `sipuri=` (`alice@contoso.com` or `sip:alice@contoso.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// The user part.
    pub user: String,
    /// The SIP domain.
    pub domain: Fqdn,
}

/// Why a query string cannot be used (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// Longer than any real client sends.
    #[error("query string too long")]
    TooLong,
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
    #[error("bad percent-encoding")]
    Encoding,
    /// `sipuri` is not `user@domain`.
    #[error("sipuri is not user@domain")]
    SipUri,
    /// `originalDomain` is not a domain name.
    #[error("originalDomain is not a domain name")]
    Domain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Root,
    User,
    Domain,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) sipuri: Option<SipUri>,
    pub(crate) original_domain: Option<Fqdn>,
}

impl Format {
    /// Picks the format from an `Accept` header: the acceptable candidate with the highest
    /// q-value, the first listed on a tie; JSON when nothing decides ([MS-OCDISCWS] makes JSON
    /// the default). Generic XML/JSON types count too.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Json;
        };
        let mut best: Option<(Format, u16)> = None;
        for range in accept.split(',').take(MAX_ACCEPT_RANGES) {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let format = match media.as_str() {
                "application/vnd.microsoft.rtc.autodiscover+xml"
                | "application/xml"
                | "text/xml" => Format::Xml,
                "application/vnd.microsoft.rtc.autodiscover+json" | "application/json" => {
                    Format::Json
                }
                _ => continue,
            };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(parse_q)
                .unwrap_or(1000);
            if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
                best = Some((format, q));
            }
        }
        best.map_or(Format::Json, |(f, _)| f)
    }
}

impl SipUri {
    /// Parses `user@domain`, with or without the `sip:` scheme.
    pub fn parse(text: &str) -> Option<SipUri> {
        let text = text.trim();
        let bare = match text.get(..4) {
            Some(s) if s.eq_ignore_ascii_case("sip:") => &text[4..],
            _ => text,
        };
        let (user, domain) = bare.rsplit_once('@')?;
        let user_ok = !user.is_empty()
            && user.len() <= MAX_USER
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+~!$'*=".contains(&b));
        if !user_ok {
            return None;
        }
        Some(SipUri {
            user: user.to_owned(),
            domain: Fqdn::parse(domain).ok()?,
        })
    }
}

impl fmt::Display for SipUri {
    /// `user@domain`, the form clients put in `sipuri=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.domain)
    }
}

impl Resource {
    pub(crate) fn from_path(path: &str) -> Option<Resource> {
        let lower = path.to_ascii_lowercase();
        let trimmed = lower.trim_end_matches('/');
        match trimmed {
            "" => Some(Resource::Root),
            "/autodiscover/autodiscoverservice.svc/root" => Some(Resource::Root),
            "/autodiscover/autodiscoverservice.svc/root/user"
            | "/autodiscover/autodiscoverservice.svc/root/oauth/user" => Some(Resource::User),
            "/autodiscover/autodiscoverservice.svc/root/domain" => Some(Resource::Domain),
            _ => None,
        }
    }
}

impl Params {
    pub(crate) fn parse(query: &str) -> Result<Params, ParamError> {
        if query.len() > MAX_QUERY {
            return Err(ParamError::TooLong);
        }
        let mut params = Params::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            if key.eq_ignore_ascii_case("sipuri") {
                params.sipuri = Some(SipUri::parse(&value).ok_or(ParamError::SipUri)?);
            } else if key.eq_ignore_ascii_case("originaldomain") {
                params.original_domain = Some(Fqdn::parse(&value).map_err(|_| ParamError::Domain)?);
            }
        }
        Ok(params)
    }

    /// The parameters to carry into links: `sipuri=…` or `originalDomain=…`, or nothing.
    pub(crate) fn forward_query(&self) -> String {
        match (&self.sipuri, &self.original_domain) {
            (Some(uri), _) => format!("sipuri={}", percent_encode(&uri.to_string())),
            (None, Some(d)) => format!("originalDomain={d}"),
            (None, None) => String::new(),
        }
    }

    /// [`Params::forward_query`] with a leading `?` when not empty.
    pub(crate) fn query_suffix(&self) -> String {
        let q = self.forward_query();
        if q.is_empty() { q } else { format!("?{q}") }
    }
}

/// A `Host` header we are willing to copy into links: a name or address with an optional port.
pub(crate) fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

fn parse_q(text: &str) -> Option<u16> {
    let value: f32 = text.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&value)
        .then(|| (value * 1000.0).round() as u16)
}

fn percent_decode(text: &str) -> Result<String, ParamError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(ParamError::Encoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ParamError::Encoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ParamError::Encoding)
}

/// Encodes everything but unreserved characters (RFC 3986 §2.3) and `@`, which query strings
/// may carry as is.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Longest query string accepted.
const MAX_QUERY: usize = 2048;
/// Longest user part of a SIP URI accepted.
const MAX_USER: usize = 128;
/// Longest `Host` header copied into links.
const MAX_HOST: usize = 262;
/// Media ranges looked at in one `Accept` header.
const MAX_ACCEPT_RANGES: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_xml_for_sipe_and_json_by_default() {
        assert_eq!(
            Format::negotiate(Some("application/vnd.microsoft.rtc.autodiscover+xml;v=1")),
            Format::Xml
        );
        assert_eq!(
            Format::negotiate(Some("application/vnd.microsoft.rtc.autodiscover+json;v=1")),
            Format::Json
        );
        assert_eq!(Format::negotiate(None), Format::Json);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Json);
        assert_eq!(
            Format::negotiate(Some("text/html, application/xml;q=0.9")),
            Format::Xml
        );
        assert_eq!(
            Format::negotiate(Some("application/json;q=0.5, application/xml;q=0.8")),
            Format::Xml
        );
        assert_eq!(Format::negotiate(Some("application/xml;q=0")), Format::Json);
    }

    #[test]
    fn sipuri_accepts_both_forms_and_rejects_junk() {
        let u = SipUri::parse("sip:Alice@Contoso.com").unwrap();
        assert_eq!(
            (u.user.as_str(), u.domain.as_str()),
            ("Alice", "contoso.com")
        );
        assert_eq!(
            SipUri::parse("bob@contoso.com").unwrap().to_string(),
            "bob@contoso.com"
        );
        for bad in [
            "contoso.com",
            "@contoso.com",
            "a b@contoso.com",
            "a@",
            "a@<x>",
        ] {
            assert!(SipUri::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn params_decode_percent_and_ignore_unknown_keys() {
        let p = Params::parse("SipUri=sip%3Aalice%40contoso.com&x=1").unwrap();
        assert_eq!(p.sipuri.unwrap().to_string(), "alice@contoso.com");
        let p = Params::parse("originalDomain=contoso.com").unwrap();
        assert_eq!(p.query_suffix(), "?originalDomain=contoso.com");
        assert_eq!(Params::parse("sipuri=%zz"), Err(ParamError::Encoding));
        assert_eq!(Params::parse("sipuri=nobody"), Err(ParamError::SipUri));
        assert_eq!(Params::parse(&"a".repeat(5000)), Err(ParamError::TooLong));
    }

    #[test]
    fn paths_compare_case_insensitively() {
        assert_eq!(Resource::from_path("/"), Some(Resource::Root));
        assert_eq!(
            Resource::from_path("/Autodiscover/AutodiscoverService.svc/root"),
            Some(Resource::Root)
        );
        assert_eq!(
            Resource::from_path("/autodiscover/autodiscoverservice.svc/root/USER"),
            Some(Resource::User)
        );
        assert_eq!(
            Resource::from_path("/Autodiscover/AutodiscoverService.svc/root/oauth/user"),
            Some(Resource::User)
        );
        assert_eq!(Resource::from_path("/index.html"), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_query_strings_and_accept_headers_never_panic(q in ".{0,300}", a in ".{0,200}") {
            let _ = Params::parse(&q);
            let _ = Format::negotiate(Some(&a));
            let _ = SipUri::parse(&q);
            let _ = Resource::from_path(&q);
        }
    }

    #[test]
    fn host_header_check_blocks_markup() {
        assert!(valid_host("lyncdiscover.contoso.com:8443"));
        assert!(valid_host("[::1]:80"));
        assert!(!valid_host("evil\"/><x"));
        assert!(!valid_host(""));
    }
}
