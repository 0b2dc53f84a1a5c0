//! Reading the anchoring hints out of an HTTP request: the protocol path, `X-AnchorMailbox`,
//! explicit logon in the URL, MAPI's `MailboxId`, the shell's `ExchClientVer` and backend
//! cookies. Everything is parsed into typed values or refused with a precise 400 before the
//! routing rules see it.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, HeaderValue, Uri};

use crate::build::BuildNumber;
use crate::model::{ExchangeGuid, Sid, SmtpAddress};

/// The client protocols the front door anchors, by their virtual directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Outlook on the web, `/owa`.
    Owa,
    /// Exchange admin center / control panel, `/ecp`.
    Ecp,
    /// Exchange Web Services, `/ews`.
    Ews,
    /// MAPI over HTTP, `/mapi`.
    Mapi,
    /// Remote PowerShell (the management shell), `/powershell`.
    PowerShell,
    /// Autodiscover, `/autodiscover`.
    Autodiscover,
}

impl Protocol {
    /// The protocol of a request path, matched case-insensitively on the first segment as IIS
    /// does; `None` for paths the front door does not proxy.
    pub fn from_path(path: &str) -> Option<Self> {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        [
            Self::Owa,
            Self::Ecp,
            Self::Ews,
            Self::Mapi,
            Self::PowerShell,
            Self::Autodiscover,
        ]
        .into_iter()
        .find(|p| p.vdir()[1..].eq_ignore_ascii_case(first))
    }

    /// The virtual directory, also the `Path` of the backend cookie for this protocol.
    pub fn vdir(&self) -> &'static str {
        match self {
            Self::Owa => "/owa",
            Self::Ecp => "/ecp",
            Self::Ews => "/ews",
            Self::Mapi => "/mapi",
            Self::PowerShell => "/powershell",
            Self::Autodiscover => "/autodiscover",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.vdir())
    }
}

/// An `X-AnchorMailbox` value: `alice@contoso.com`, `SMTP:alice@contoso.com` or
/// `SID:S-1-5-21-...` (the forms Exchange's clients and backend cookies use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorHint {
    /// A mailbox's primary address or a user's logon name.
    Smtp(SmtpAddress),
    /// A user's SID.
    Sid(Sid),
}

impl fmt::Display for AnchorHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smtp(a) => write!(f, "SMTP:{a}"),
            Self::Sid(s) => write!(f, "SID:{s}"),
        }
    }
}

impl FromStr for AnchorHint {
    type Err = RequestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = s.trim();
        let bad = |reason: String| RequestError::BadAnchorMailbox {
            value: printable(value),
            reason,
        };
        if let Some((prefix, rest)) = value.split_once(':') {
            if prefix.eq_ignore_ascii_case("smtp") {
                return rest.parse().map(Self::Smtp).map_err(|e| bad(e.to_string()));
            }
            if prefix.eq_ignore_ascii_case("sid") {
                return rest.parse().map(Self::Sid).map_err(|e| bad(e.to_string()));
            }
            return Err(bad(format!(
                "unknown prefix {:?}; use an SMTP address, SMTP:<address> or SID:<sid>",
                printable(prefix)
            )));
        }
        value
            .parse()
            .map(Self::Smtp)
            .map_err(|e| bad(e.to_string()))
    }
}

/// Everything the routing rules read from one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorRequest {
    /// Which virtual directory it is for.
    pub protocol: Protocol,
    /// The `X-AnchorMailbox` header.
    pub anchor_mailbox: Option<AnchorHint>,
    /// Explicit logon: `/owa/shared@contoso.com/` or `/ecp/user@contoso.com/`.
    pub explicit_logon: Option<SmtpAddress>,
    /// MAPI over HTTP's `?MailboxId=<guid>@<domain>`.
    pub mailbox_id: Option<ExchangeGuid>,
    /// Remote PowerShell's `?ExchClientVer=<build>`: the client wants a server this new.
    pub exch_client_ver: Option<BuildNumber>,
    /// `X-BackEndCookie` values, unverified, at most [`MAX_BACKEND_COOKIES`].
    pub backend_cookies: Vec<String>,
}

impl AnchorRequest {
    /// Parses the hints of a request. Unknown paths are [`RequestError::NotAMailboxPath`]
    /// (404); malformed hints are 400s that say which hint and why.
    pub fn parse(uri: &Uri, headers: &HeaderMap) -> Result<Self, RequestError> {
        let path = uri.path();
        let protocol = Protocol::from_path(path).ok_or(RequestError::NotAMailboxPath)?;

        let mut anchors = headers.get_all(ANCHOR_MAILBOX).iter();
        let anchor_mailbox = match (anchors.next(), anchors.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => return Err(RequestError::RepeatedAnchorMailbox),
            (Some(v), None) => {
                let text = v.to_str().map_err(|_| RequestError::BadAnchorMailbox {
                    value: String::from("(non-ASCII)"),
                    reason: "the header is not ASCII".into(),
                })?;
                if text.len() > MAX_HINT_LEN {
                    return Err(RequestError::BadAnchorMailbox {
                        value: printable(&text[..32.min(text.len())]) + "...",
                        reason: format!("longer than {MAX_HINT_LEN} characters"),
                    });
                }
                Some(text.parse()?)
            }
        };

        let explicit_logon = match protocol {
            Protocol::Owa | Protocol::Ecp => explicit_logon(path)?,
            _ => None,
        };

        let mut mailbox_id = None;
        let mut exch_client_ver = None;
        for (key, value) in query_pairs(uri.query().unwrap_or("")) {
            if protocol == Protocol::Mapi && key.eq_ignore_ascii_case("MailboxId") {
                let guid = value.split('@').next().unwrap_or("");
                mailbox_id = Some(guid.parse().map_err(|_| RequestError::BadMailboxId {
                    value: printable(value),
                })?);
            } else if protocol == Protocol::PowerShell && key.eq_ignore_ascii_case("ExchClientVer")
            {
                exch_client_ver =
                    Some(value.parse().map_err(|e| RequestError::BadExchClientVer {
                        value: printable(value),
                        reason: e,
                    })?);
            }
        }

        Ok(Self {
            protocol,
            anchor_mailbox,
            explicit_logon,
            mailbox_id,
            exch_client_ver,
            backend_cookies: backend_cookies(headers),
        })
    }
}

impl AnchorRequest {
    /// Whether the request's route is decided by its `X-AnchorMailbox` header alone: then the
    /// protocol and the header's raw value, so that a route found for the same value before
    /// can be reused without parsing the request again.
    ///
    /// Precisely, `Some` when the path is a proxied protocol other than the management shell,
    /// there is exactly one `X-AnchorMailbox` header, no explicit logon can be in the URL
    /// (`/owa`, `/ecp`: the second path segment holds neither `@` nor `%`) and no `MailboxId`
    /// is in the query (`/mapi`). For such a request [`AnchorRequest::parse`] fails only on the
    /// header's value (so never for a value it accepted before), and otherwise yields that
    /// hint with no explicit logon and no mailbox id, which [`crate::anchor::route`] follows
    /// ahead of any cookie or identity.
    pub fn anchor_hint_only<'h>(
        uri: &Uri,
        headers: &'h HeaderMap,
    ) -> Option<(Protocol, &'h HeaderValue)> {
        let path = uri.path();
        let protocol = Protocol::from_path(path)?;
        let mut anchors = headers.get_all(ANCHOR_MAILBOX).iter();
        let (Some(value), None) = (anchors.next(), anchors.next()) else {
            return None;
        };
        let decided_by_hint = match protocol {
            Protocol::PowerShell => false,
            Protocol::Owa | Protocol::Ecp => path
                .trim_start_matches('/')
                .split('/')
                .nth(1)
                .is_none_or(|segment| !segment.contains(['@', '%'])),
            Protocol::Mapi => !query_pairs(uri.query().unwrap_or(""))
                .any(|(key, _)| key.eq_ignore_ascii_case("MailboxId")),
            Protocol::Ews | Protocol::Autodiscover => true,
        };
        decided_by_hint.then_some((protocol, value))
    }
}

/// A request whose hints cannot be read. Answered without contacting any backend.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The path is not one of the proxied virtual directories (404).
    #[error(
        "not a mailbox protocol path; herald proxies /owa, /ecp, /ews, /mapi, /powershell and /autodiscover"
    )]
    NotAMailboxPath,
    /// `X-AnchorMailbox` cannot be parsed (400).
    #[error("X-AnchorMailbox {value:?} is not usable: {reason}")]
    BadAnchorMailbox {
        /// The value, made printable.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// More than one `X-AnchorMailbox` header (400): which one wins would be a guess.
    #[error("more than one X-AnchorMailbox header")]
    RepeatedAnchorMailbox,
    /// The explicit-logon address in the URL is malformed (400).
    #[error("explicit logon address {value:?} in the URL is not an SMTP address: {reason}")]
    BadExplicitLogon {
        /// The path segment, made printable.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// MAPI's `MailboxId` is not `<guid>@<domain>` (400).
    #[error("MailboxId {value:?} is not <guid>@<domain>")]
    BadMailboxId {
        /// The value, made printable.
        value: String,
    },
    /// The shell's `ExchClientVer` is not a build number (400).
    #[error("ExchClientVer {value:?} is not a build number: {reason}")]
    BadExchClientVer {
        /// The value, made printable.
        value: String,
        /// What is wrong with it.
        reason: crate::build::BuildParseError,
    },
}

/// The request header clients set to name their anchor mailbox.
pub const ANCHOR_MAILBOX: &str = "x-anchormailbox";
/// The cookie name, as Exchange uses it.
pub const BACKEND_COOKIE: &str = "X-BackEndCookie";
/// Cookies of this name considered per request; more are ignored.
pub const MAX_BACKEND_COOKIES: usize = 4;
/// Longest `X-AnchorMailbox` accepted.
pub const MAX_HINT_LEN: usize = 320;

/// Query parameters considered; a longer query is not scanned further.
const MAX_QUERY_PAIRS: usize = 32;

/// `/owa/<address>/...`: the second segment is an explicit logon when it holds `@`
/// (percent-encoded or not); other segments (`/owa/auth/logon.aspx`) are not.
fn explicit_logon(path: &str) -> Result<Option<SmtpAddress>, RequestError> {
    let Some(segment) = path.trim_start_matches('/').split('/').nth(1) else {
        return Ok(None);
    };
    let decoded = percent_decode(segment);
    if !decoded.contains('@') {
        return Ok(None);
    }
    decoded.parse().map(Some).map_err(
        |e: crate::model::NameError| RequestError::BadExplicitLogon {
            value: printable(&decoded),
            reason: e.to_string(),
        },
    )
}

fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .take(MAX_QUERY_PAIRS)
        .filter_map(|pair| pair.split_once('='))
}

/// The `X-BackEndCookie` values among all `Cookie` headers.
fn backend_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.eq_ignore_ascii_case(BACKEND_COOKIE))
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .take(MAX_BACKEND_COOKIES)
        .collect()
}

/// Decodes `%XX` escapes of ASCII bytes; anything else is kept as it is (and then refused by
/// the address parser if it matters).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = segment.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
            && b.is_ascii()
        {
            out.push(char::from(b));
            i += 3;
            continue;
        }
        // Copy one whole UTF-8 character.
        let ch = segment[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// Makes untrusted text safe to echo in an error body and a log line.
fn printable(s: &str) -> String {
    s.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str, headers: &[(&str, &str)]) -> Result<AnchorRequest, RequestError> {
        let uri: Uri = uri.parse().expect("valid uri");
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        AnchorRequest::parse(&uri, &map)
    }

    #[test]
    fn protocols_are_recognised_case_insensitively() {
        assert_eq!(Protocol::from_path("/OWA/"), Some(Protocol::Owa));
        assert_eq!(
            Protocol::from_path("/EWS/Exchange.asmx"),
            Some(Protocol::Ews)
        );
        assert_eq!(
            Protocol::from_path("/PowerShell"),
            Some(Protocol::PowerShell)
        );
        assert_eq!(
            Protocol::from_path("/Autodiscover/Autodiscover.xml"),
            Some(Protocol::Autodiscover)
        );
        assert_eq!(Protocol::from_path("/mapi/emsmdb/"), Some(Protocol::Mapi));
        assert_eq!(Protocol::from_path("/ecp"), Some(Protocol::Ecp));
        assert_eq!(Protocol::from_path("/owax"), None);
        assert_eq!(Protocol::from_path("/"), None);
        assert_eq!(parse("/other", &[]), Err(RequestError::NotAMailboxPath));
    }

    #[test]
    fn anchor_mailbox_accepts_bare_smtp_and_sid_forms() {
        let smtp = "alice@contoso.com".parse().expect("valid");
        assert_eq!("Alice@Contoso.com".parse(), Ok(AnchorHint::Smtp(smtp)));
        let smtp2 = "alice@contoso.com".parse().expect("valid");
        assert_eq!(
            "SMTP:alice@contoso.com".parse(),
            Ok(AnchorHint::Smtp(smtp2))
        );
        let sid = "S-1-5-21-1-2-3-500".parse().expect("valid");
        assert_eq!("sid:S-1-5-21-1-2-3-500".parse(), Ok(AnchorHint::Sid(sid)));
        assert!(matches!(
            "PUID:123".parse::<AnchorHint>(),
            Err(RequestError::BadAnchorMailbox { .. })
        ));
        assert!(matches!(
            "not-an-address".parse::<AnchorHint>(),
            Err(RequestError::BadAnchorMailbox { .. })
        ));
    }

    #[test]
    fn anchor_mailbox_repeated_or_oversized_is_refused() {
        assert_eq!(
            parse(
                "/ews/exchange.asmx",
                &[
                    ("x-anchormailbox", "a@contoso.com"),
                    ("x-anchormailbox", "b@contoso.com")
                ]
            ),
            Err(RequestError::RepeatedAnchorMailbox)
        );
        let long = format!("{}@contoso.com", "a".repeat(400));
        assert!(matches!(
            parse("/ews/exchange.asmx", &[("x-anchormailbox", &long)]),
            Err(RequestError::BadAnchorMailbox { .. })
        ));
    }

    #[test]
    fn explicit_logon_is_read_from_owa_and_ecp_urls() {
        let r = parse("/owa/shared%40contoso.com/", &[]).expect("parses");
        assert_eq!(
            r.explicit_logon.map(|a| a.to_string()).as_deref(),
            Some("shared@contoso.com")
        );
        let r = parse("/ecp/bob@contoso.com/", &[]).expect("parses");
        assert!(r.explicit_logon.is_some());
        let r = parse("/owa/auth/logon.aspx", &[]).expect("parses");
        assert_eq!(r.explicit_logon, None);
        let r = parse("/ews/bob@contoso.com/", &[]).expect("parses");
        assert_eq!(
            r.explicit_logon, None,
            "EWS has no explicit logon in the URL"
        );
        assert!(matches!(
            parse("/owa/bad@@x/", &[]),
            Err(RequestError::BadExplicitLogon { .. })
        ));
    }

    #[test]
    fn mapi_mailbox_id_and_shell_client_version_are_parsed() {
        let r = parse(
            "/mapi/emsmdb/?MailboxId=bb558c35-97f1-4cb9-8ff7-d53741dc928c@contoso.com",
            &[],
        )
        .expect("parses");
        assert_eq!(
            r.mailbox_id.map(|g| g.to_string()).as_deref(),
            Some("bb558c35-97f1-4cb9-8ff7-d53741dc928c")
        );
        assert!(matches!(
            parse("/mapi/emsmdb/?MailboxId=nope@contoso.com", &[]),
            Err(RequestError::BadMailboxId { .. })
        ));
        let r = parse(
            "/powershell?serializationLevel=Full;ExchClientVer=15.1.225.42&x=1",
            &[],
        );
        assert!(r.is_ok(), "unknown parameters are ignored");
        let r = parse("/powershell?ExchClientVer=15.1.225.42", &[]).expect("parses");
        assert_eq!(r.exch_client_ver, Some(BuildNumber::new(15, 1, 225, 42)));
        assert!(matches!(
            parse("/powershell?ExchClientVer=fifteen", &[]),
            Err(RequestError::BadExchClientVer { .. })
        ));
    }

    #[test]
    fn anchor_hint_only_when_the_header_alone_decides() {
        let check = |uri: &str, headers: &[(&str, &str)]| {
            let parsed_uri: Uri = uri.parse().expect("valid uri");
            let mut map = HeaderMap::new();
            for (k, v) in headers {
                map.append(
                    http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                    v.parse().expect("value"),
                );
            }
            let quick = AnchorRequest::anchor_hint_only(&parsed_uri, &map)
                .map(|(p, v)| (p, v.to_str().expect("ascii").to_owned()));
            if let Some((protocol, value)) = &quick {
                // Whenever it answers, the full parse agrees: same protocol, the hint from
                // that header, nothing that outranks it.
                let full = parse(uri, headers).expect("parses");
                assert_eq!(full.protocol, *protocol);
                assert_eq!(full.anchor_mailbox, Some(value.parse().expect("hint")));
                assert_eq!(full.explicit_logon, None);
                assert_eq!(full.mailbox_id, None);
            }
            quick.map(|(p, _)| p)
        };
        let hint = [("x-anchormailbox", "bob@contoso.com")];
        assert_eq!(check("/ews/exchange.asmx", &hint), Some(Protocol::Ews));
        assert_eq!(
            check("/Autodiscover/Autodiscover.xml?x=1", &hint),
            Some(Protocol::Autodiscover)
        );
        assert_eq!(check("/owa/", &hint), Some(Protocol::Owa));
        assert_eq!(check("/owa/auth/logon.aspx", &hint), Some(Protocol::Owa));
        assert_eq!(check("/ecp", &hint), Some(Protocol::Ecp));
        assert_eq!(check("/owa/shared@contoso.com/", &hint), None);
        assert_eq!(check("/owa/shared%40contoso.com/", &hint), None);
        assert_eq!(check("/mapi/emsmdb/?foo=1", &hint), Some(Protocol::Mapi));
        assert_eq!(
            check(
                "/mapi/emsmdb/?mailboxid=bb558c35-97f1-4cb9-8ff7-d53741dc928c@contoso.com",
                &hint
            ),
            None
        );
        assert_eq!(check("/powershell", &hint), None);
        assert_eq!(check("/other", &hint), None);
        assert_eq!(check("/ews/exchange.asmx", &[]), None);
        assert_eq!(
            check(
                "/ews/exchange.asmx",
                &[
                    ("x-anchormailbox", "a@contoso.com"),
                    ("x-anchormailbox", "b@contoso.com")
                ]
            ),
            None
        );
    }

    #[test]
    fn backend_cookies_are_collected_from_cookie_headers() {
        let r = parse(
            "/owa/",
            &[
                ("cookie", "a=1; X-BackEndCookie=v1; b=2"),
                ("cookie", "x-backendcookie=\"v2\""),
            ],
        )
        .expect("parses");
        assert_eq!(r.backend_cookies, ["v1", "v2"]);
    }
}
