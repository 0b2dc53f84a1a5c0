//! The NTLM header values of [MS-SIPAE] §2.2: `Authorization`/`Proxy-Authorization` from the
//! client, `WWW-Authenticate`/`Proxy-Authenticate` and `Authentication-Info` from the server.
//!
//! Values are written the way Lync servers write them, because SIPE reads them with substring
//! searches (`realm="`, `rand="`, `num="`) rather than a grammar: every value is quoted except
//! `version`, nothing needs escaping, and no `cnum` ever appears in server headers.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::session::MessageSignature;

/// NTLM credentials from `Authorization` or `Proxy-Authorization`.
///
/// Which parameters are present tells the step of the handshake: `gssapi-data` without
/// `opaque` asks for a challenge, `gssapi-data` with `opaque` carries the
/// AUTHENTICATE_MESSAGE, and `crand`/`cnum`/`response` sign the request once a security
/// association exists (SIPE also signs the final REGISTER when `version` > 3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NtlmCredentials {
    /// `qop`, always "auth" from SIPE.
    pub qop: Option<String>,
    /// `realm`, echoed from the challenge.
    pub realm: Option<String>,
    /// `targetname`, echoed from the challenge.
    pub targetname: Option<String>,
    /// `opaque`, echoed from the challenge that carried gssapi-data; names the SA.
    pub opaque: Option<String>,
    /// `version`, echoed when the server sent one above 2.
    pub version: Option<u32>,
    /// `gssapi-data`, base64-decoded; `Some(empty)` for `gssapi-data=""`.
    pub gssapi_data: Option<Vec<u8>>,
    /// `crand`: the client's salt for this message's signature (hex).
    pub crand: Option<String>,
    /// `cnum`: the client's message counter (decimal).
    pub cnum: Option<String>,
    /// `response`: the client's signature of this message.
    pub response: Option<MessageSignature>,
}

impl NtlmCredentials {
    /// Parses a header value, scheme included (`NTLM qop="auth", ...`).
    pub fn parse(value: &[u8]) -> Result<Self, HeaderError> {
        let (scheme, params) = split(value)?;
        expect_ntlm(scheme)?;
        Self::from_params(params.iter().map(|(n, v)| (*n, v.as_str())))
    }

    /// Builds credentials from parameters another parser already split (e.g. herald-auth's
    /// `Credentials::Other`), names compared case-insensitively, values unquoted.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, HeaderError> {
        let mut out = Self::default();
        let mut seen = Seen::default();
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            seen.check(&name)?;
            match name.as_str() {
                "qop" => out.qop = Some(value.to_owned()),
                "realm" => out.realm = Some(value.to_owned()),
                "targetname" => out.targetname = Some(value.to_owned()),
                "opaque" => out.opaque = Some(value.to_owned()),
                "version" => out.version = Some(parse_version(value)?),
                "gssapi-data" => out.gssapi_data = Some(decode_base64(value)?),
                "crand" => out.crand = Some(hex_token("crand", value)?),
                "cnum" => out.cnum = Some(decimal_token("cnum", value)?),
                "response" => {
                    out.response = Some(
                        value
                            .parse()
                            .map_err(|_| HeaderError::InvalidValue { param: "response" })?,
                    );
                }
                // Other schemes' parameters (Kerberos, TLS-DSK) or future ones: not ours.
                _ => {}
            }
        }
        Ok(out)
    }
}

impl fmt::Display for NtlmCredentials {
    /// SIPE's order: `qop, opaque, realm, targetname, gssapi-data, version, crand, cnum,
    /// response`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = ParamWriter::new(f)?;
        w.quoted("qop", self.qop.as_deref())?;
        w.quoted("opaque", self.opaque.as_deref())?;
        w.quoted("realm", self.realm.as_deref())?;
        w.quoted("targetname", self.targetname.as_deref())?;
        w.quoted(
            "gssapi-data",
            self.gssapi_data
                .as_ref()
                .map(|d| BASE64.encode(d))
                .as_deref(),
        )?;
        w.bare("version", self.version)?;
        w.quoted("crand", self.crand.as_deref())?;
        w.quoted("cnum", self.cnum.as_deref())?;
        w.quoted("response", self.response.map(|r| r.to_string()).as_deref())
    }
}

/// A `WWW-Authenticate`/`Proxy-Authenticate: NTLM ...` value.
///
/// The first one (no `gssapi-data`) invites the client to start; the second carries the
/// CHALLENGE_MESSAGE and the `opaque` that names the coming security association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtlmChallenge {
    /// `realm`: any non-empty text; SIPE refuses to sign with an empty one.
    pub realm: String,
    /// `targetname`: for NTLM any text, conventionally the front end's FQDN.
    pub targetname: String,
    /// `version`: 4 makes SIPE use the long signature format and sign the final REGISTER.
    pub version: Option<u32>,
    /// `opaque`: names the security association being set up.
    pub opaque: Option<String>,
    /// `gssapi-data`: the CHALLENGE_MESSAGE, base64-encoded on output.
    pub gssapi_data: Option<Vec<u8>>,
}

impl NtlmChallenge {
    /// Parses a header value, scheme included (for clients and tests).
    pub fn parse(value: &[u8]) -> Result<Self, HeaderError> {
        let (scheme, params) = split(value)?;
        expect_ntlm(scheme)?;
        let mut seen = Seen::default();
        let (mut realm, mut targetname, mut version, mut opaque, mut gssapi_data) =
            (None, None, None, None, None);
        for (name, value) in &params {
            let name = name.to_ascii_lowercase();
            seen.check(&name)?;
            match name.as_str() {
                "realm" => realm = Some(value.clone()),
                "targetname" => targetname = Some(value.clone()),
                "version" => version = Some(parse_version(value)?),
                "opaque" => opaque = Some(value.clone()),
                "gssapi-data" => gssapi_data = Some(decode_base64(value)?),
                _ => {}
            }
        }
        Ok(Self {
            realm: realm.ok_or(HeaderError::MissingParam { param: "realm" })?,
            targetname: targetname.ok_or(HeaderError::MissingParam {
                param: "targetname",
            })?,
            version,
            opaque,
            gssapi_data,
        })
    }
}

impl fmt::Display for NtlmChallenge {
    /// Lync's order: `opaque, gssapi-data, targetname, realm, version`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = ParamWriter::new(f)?;
        w.quoted("opaque", self.opaque.as_deref())?;
        w.quoted(
            "gssapi-data",
            self.gssapi_data
                .as_ref()
                .map(|d| BASE64.encode(d))
                .as_deref(),
        )?;
        w.quoted("targetname", Some(&self.targetname))?;
        w.quoted("realm", Some(&self.realm))?;
        w.bare("version", self.version)
    }
}

/// An `Authentication-Info: NTLM ...` value: the server's signature of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationInfo {
    /// `rspauth`: the signature.
    pub rspauth: MessageSignature,
    /// `srand`: the server's salt for this message (8 hex digits).
    pub srand: String,
    /// `snum`: the server's message counter.
    pub snum: String,
    /// `opaque`: the security association.
    pub opaque: Option<String>,
    /// `qop`: "auth".
    pub qop: Option<String>,
    /// `targetname`: signed as part of the message.
    pub targetname: String,
    /// `realm`: signed as part of the message.
    pub realm: String,
}

impl AuthenticationInfo {
    /// Parses a header value, scheme included (for clients and tests).
    pub fn parse(value: &[u8]) -> Result<Self, HeaderError> {
        let (scheme, params) = split(value)?;
        expect_ntlm(scheme)?;
        let mut seen = Seen::default();
        let (mut rspauth, mut srand, mut snum, mut opaque, mut qop, mut targetname, mut realm) =
            (None, None, None, None, None, None, None);
        for (name, value) in &params {
            let name = name.to_ascii_lowercase();
            seen.check(&name)?;
            match name.as_str() {
                "rspauth" => {
                    rspauth = Some(
                        value
                            .parse()
                            .map_err(|_| HeaderError::InvalidValue { param: "rspauth" })?,
                    );
                }
                "srand" => srand = Some(hex_token("srand", value)?),
                "snum" => snum = Some(decimal_token("snum", value)?),
                "opaque" => opaque = Some(value.clone()),
                "qop" => qop = Some(value.clone()),
                "targetname" => targetname = Some(value.clone()),
                "realm" => realm = Some(value.clone()),
                _ => {}
            }
        }
        let missing = |param| HeaderError::MissingParam { param };
        Ok(Self {
            rspauth: rspauth.ok_or(missing("rspauth"))?,
            srand: srand.ok_or(missing("srand"))?,
            snum: snum.ok_or(missing("snum"))?,
            opaque,
            qop,
            targetname: targetname.ok_or(missing("targetname"))?,
            realm: realm.ok_or(missing("realm"))?,
        })
    }
}

impl fmt::Display for AuthenticationInfo {
    /// Lync's order: `rspauth, srand, snum, opaque, qop, targetname, realm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = ParamWriter::new(f)?;
        w.quoted("rspauth", Some(&self.rspauth.to_string()))?;
        w.quoted("srand", Some(&self.srand))?;
        w.quoted("snum", Some(&self.snum))?;
        w.quoted("opaque", self.opaque.as_deref())?;
        w.quoted("qop", self.qop.as_deref())?;
        w.quoted("targetname", Some(&self.targetname))?;
        w.quoted("realm", Some(&self.realm))
    }
}

/// Why a header value is not a usable NTLM credential or challenge; answer 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Longer than any real value.
    #[error("header value of {len} bytes exceeds {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not `scheme param=value, ...`.
    #[error("syntax error at byte {offset}: expected {expected}")]
    Syntax {
        /// Where parsing stopped.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// Another scheme (Digest, Kerberos, TLS-DSK): route it elsewhere.
    #[error("scheme {scheme:?} is not NTLM")]
    NotNtlm {
        /// The scheme as written.
        scheme: String,
    },
    /// A parameter given twice, which would make the signed values ambiguous.
    #[error("parameter {param} repeated")]
    Duplicate {
        /// Its lower-cased name.
        param: String,
    },
    /// A value of the wrong form (`version` not a number, `crand` not hex, ...).
    #[error("parameter {param} has an invalid value")]
    InvalidValue {
        /// Which parameter.
        param: &'static str,
    },
    /// A required parameter is absent.
    #[error("parameter {param} missing")]
    MissingParam {
        /// Which parameter.
        param: &'static str,
    },
    /// `gssapi-data` is not base64.
    #[error("gssapi-data is not base64")]
    InvalidBase64,
}

fn expect_ntlm(scheme: &str) -> Result<(), HeaderError> {
    if scheme.eq_ignore_ascii_case("NTLM") {
        Ok(())
    } else {
        Err(HeaderError::NotNtlm {
            scheme: scheme.to_owned(),
        })
    }
}

fn parse_version(value: &str) -> Result<u32, HeaderError> {
    if value.is_empty() || value.len() > 9 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::InvalidValue { param: "version" });
    }
    value
        .parse()
        .map_err(|_| HeaderError::InvalidValue { param: "version" })
}

fn decode_base64(value: &str) -> Result<Vec<u8>, HeaderError> {
    BASE64.decode(value).map_err(|_| HeaderError::InvalidBase64)
}

/// `crand`/`srand`: the value is copied into the signed buffer between `<` and `>`, so only
/// hex digits are accepted; anything else could shift text between signed fields.
fn hex_token(param: &'static str, value: &str) -> Result<String, HeaderError> {
    if value.is_empty() || value.len() > 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HeaderError::InvalidValue { param });
    }
    Ok(value.to_owned())
}

/// `cnum`/`snum`: decimal, for the same reason as [`hex_token`].
fn decimal_token(param: &'static str, value: &str) -> Result<String, HeaderError> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::InvalidValue { param });
    }
    Ok(value.to_owned())
}

/// Tracks parameter names so a repeated one is refused.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn check(&mut self, name: &str) -> Result<(), HeaderError> {
        if self.0.iter().any(|n| n == name) {
            return Err(HeaderError::Duplicate {
                param: name.to_owned(),
            });
        }
        self.0.push(name.to_owned());
        Ok(())
    }
}

/// Writes `SCHEME p1="v1", p2=v2`, skipping absent parameters.
struct ParamWriter<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl<'a, 'b> ParamWriter<'a, 'b> {
    fn new(f: &'a mut fmt::Formatter<'b>) -> Result<Self, fmt::Error> {
        f.write_str("NTLM")?;
        Ok(Self { f, first: true })
    }

    fn sep(&mut self) -> fmt::Result {
        let s = if self.first { " " } else { ", " };
        self.first = false;
        self.f.write_str(s)
    }

    fn quoted(&mut self, name: &str, value: Option<&str>) -> fmt::Result {
        let Some(value) = value else { return Ok(()) };
        self.sep()?;
        write!(self.f, "{name}=\"")?;
        for ch in value.chars() {
            // Control characters could split the header line; the parser never yields them
            // and `SipaeParams` refuses them, so dropping is only a last line of defence.
            if ch.is_control() {
                continue;
            }
            if ch == '"' || ch == '\\' {
                self.f.write_str("\\")?;
            }
            write!(self.f, "{ch}")?;
        }
        self.f.write_str("\"")
    }

    fn bare(&mut self, name: &str, value: Option<u32>) -> fmt::Result {
        let Some(value) = value else { return Ok(()) };
        self.sep()?;
        write!(self.f, "{name}={value}")
    }
}

/// A header value split into its scheme and unquoted `(name, value)` parameters.
type Split<'a> = (&'a str, Vec<(&'a str, String)>);

/// Splits `scheme param=value, ...` into the scheme and unquoted `(name, value)` pairs.
fn split(input: &[u8]) -> Result<Split<'_>, HeaderError> {
    if input.len() > MAX_HEADER_LEN {
        return Err(HeaderError::TooLong {
            len: input.len(),
            max: MAX_HEADER_LEN,
        });
    }
    let mut c = Cursor { input, pos: 0 };
    c.skip_ws();
    let scheme = c.token();
    if scheme.is_empty() {
        return Err(c.syntax("an authentication scheme"));
    }
    let mut params = Vec::new();
    c.skip_ws();
    while !c.at_end() {
        if params.len() == MAX_PARAMS {
            return Err(c.syntax("at most 32 parameters"));
        }
        let name = c.token();
        if name.is_empty() {
            return Err(c.syntax("a parameter name"));
        }
        c.skip_ws();
        if !c.eat(b'=') {
            return Err(c.syntax("'='"));
        }
        c.skip_ws();
        let value = if c.eat(b'"') {
            c.quoted()?
        } else {
            let v = c.bare();
            if v.is_empty() {
                return Err(c.syntax("a value"));
            }
            v.to_owned()
        };
        params.push((name, value));
        c.skip_ws();
        if c.at_end() {
            break;
        }
        if !c.eat(b',') {
            return Err(c.syntax("',' or the end of the value"));
        }
        c.skip_ws();
    }
    Ok((scheme, params))
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        // Callers only accept ASCII bytes, so the slice is valid UTF-8.
        std::str::from_utf8(&self.input[start..self.pos]).unwrap_or_default()
    }

    /// RFC 3261 §25.1 token.
    fn token(&mut self) -> &'a str {
        self.take_while(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
    }

    /// An unquoted value such as `version=4`.
    fn bare(&mut self) -> &'a str {
        self.take_while(|b| b.is_ascii_graphic() && b != b',' && b != b'"')
    }

    /// The rest of a quoted-string after its opening quote, unescaped.
    fn quoted(&mut self) -> Result<String, HeaderError> {
        let mut bytes = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.syntax("a closing '\"'"));
            };
            self.pos += 1;
            let b = match b {
                b'"' => break,
                b'\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err(self.syntax("a character after '\\'"));
                    };
                    self.pos += 1;
                    escaped
                }
                other => other,
            };
            if (b < 0x20 && b != b'\t') || b == 0x7f {
                return Err(self.syntax("no control characters in a quoted-string"));
            }
            bytes.push(b);
        }
        String::from_utf8(bytes).map_err(|_| self.syntax("UTF-8 in a quoted-string"))
    }

    fn syntax(&self, expected: &'static str) -> HeaderError {
        HeaderError::Syntax {
            offset: self.pos,
            expected,
        }
    }
}

/// Longest header value accepted: a base64 AUTHENTICATE_MESSAGE of
/// [`MAX_MESSAGE_LEN`](crate::authenticate::MAX_MESSAGE_LEN) plus the other parameters.
pub const MAX_HEADER_LEN: usize = 24 * 1024;
const MAX_PARAMS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sipe_first_register() {
        let c = NtlmCredentials::parse(
            br#"NTLM qop="auth", realm="SIP Communications Service", targetname="fe01.example.test", gssapi-data="", version=4"#,
        )
        .unwrap();
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.realm.as_deref(), Some("SIP Communications Service"));
        assert_eq!(c.targetname.as_deref(), Some("fe01.example.test"));
        assert_eq!(c.gssapi_data, Some(vec![]));
        assert_eq!(c.version, Some(4));
        assert_eq!(c.opaque, None);
        assert_eq!(c.response, None);
    }

    #[test]
    fn parses_a_signed_request() {
        let c = NtlmCredentials::parse(
            br#"NTLM qop="auth", opaque="4C40C5B3", realm="SIP Communications Service", targetname="fe01.example.test", crand="741394f7", cnum="1", response="01000000B06B241C8EA0E26564000000""#,
        )
        .unwrap();
        assert_eq!(c.crand.as_deref(), Some("741394f7"));
        assert_eq!(c.cnum.as_deref(), Some("1"));
        assert_eq!(
            c.response.map(|r| r.to_string()).as_deref(),
            Some("01000000B06B241C8EA0E26564000000")
        );
        // Printing gives a value that parses back to the same credentials.
        assert_eq!(NtlmCredentials::parse(c.to_string().as_bytes()), Ok(c));
    }

    #[test]
    fn precise_errors() {
        assert_eq!(
            NtlmCredentials::parse(b"Digest realm=\"x\""),
            Err(HeaderError::NotNtlm {
                scheme: "Digest".into()
            })
        );
        assert_eq!(
            NtlmCredentials::parse(b"NTLM realm=\"a\", realm=\"b\""),
            Err(HeaderError::Duplicate {
                param: "realm".into()
            })
        );
        assert_eq!(
            NtlmCredentials::parse(b"NTLM crand=\"12><34\""),
            Err(HeaderError::InvalidValue { param: "crand" })
        );
        assert_eq!(
            NtlmCredentials::parse(b"NTLM cnum=\"-1\""),
            Err(HeaderError::InvalidValue { param: "cnum" })
        );
        assert_eq!(
            NtlmCredentials::parse(b"NTLM version=x"),
            Err(HeaderError::InvalidValue { param: "version" })
        );
        assert_eq!(
            NtlmCredentials::parse(b"NTLM gssapi-data=\"!!\""),
            Err(HeaderError::InvalidBase64)
        );
        assert_eq!(
            NtlmCredentials::parse(b"NTLM realm=\"open"),
            Err(HeaderError::Syntax {
                offset: 16,
                expected: "a closing '\"'"
            })
        );
        assert!(matches!(
            NtlmCredentials::parse(&vec![b'a'; MAX_HEADER_LEN + 1]),
            Err(HeaderError::TooLong { .. })
        ));
    }

    #[test]
    fn challenge_values_in_lync_form() {
        let first = NtlmChallenge {
            realm: "SIP Communications Service".into(),
            targetname: "fe01.example.test".into(),
            version: Some(4),
            opaque: None,
            gssapi_data: None,
        };
        assert_eq!(
            first.to_string(),
            r#"NTLM targetname="fe01.example.test", realm="SIP Communications Service", version=4"#
        );
        let second = NtlmChallenge {
            opaque: Some("4C40C5B3".into()),
            gssapi_data: Some(b"NTLMSSP\0".to_vec()),
            ..first
        };
        assert_eq!(
            second.to_string(),
            r#"NTLM opaque="4C40C5B3", gssapi-data="TlRMTVNTUAA=", targetname="fe01.example.test", realm="SIP Communications Service", version=4"#
        );
        assert_eq!(
            NtlmChallenge::parse(second.to_string().as_bytes()),
            Ok(second)
        );
    }

    #[test]
    fn authentication_info_in_lync_form() {
        let value = r#"NTLM rspauth="01000000E615438A917661BE64000000", srand="9616454F", snum="1", opaque="2BDBAC9D", qop="auth", targetname="cosmo-ocs-r2.cosmo.local", realm="SIP Communications Service""#;
        let info = AuthenticationInfo::parse(value.as_bytes()).unwrap();
        assert_eq!(info.srand, "9616454F");
        assert_eq!(info.to_string(), value);
        // SIPE finds the number with a substring search for `num="`: there must be exactly one.
        assert_eq!(value.matches("num=\"").count(), 1);
    }
}
