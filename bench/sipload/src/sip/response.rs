//! The part of a SIP response the generator acts on: status, Call-ID, CSeq and the Digest
//! challenge it should answer.

use thiserror::Error;

use super::headers::{self, Field};

/// A response as far as matching and answering it needs, borrowing from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// The status code, 100..=699.
    pub status: u16,
    /// The Call-ID value, which names the simulated client.
    pub call_id: &'a [u8],
    /// The CSeq number, which names the client's transaction.
    pub cseq: u32,
    /// The CSeq method.
    pub method: &'a [u8],
    /// The challenge to answer: the first `Digest` one with `algorithm=SHA-256`, else the first
    /// `Digest` one, from `WWW-Authenticate` or `Proxy-Authenticate`.
    pub challenge: Option<Challenge<'a>>,
}

/// One Digest challenge value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// The whole header value, `Digest realm=...` (possibly folded: see [`headers::unfold`]).
    pub value: &'a [u8],
    /// `stale=true`: the nonce expired but the credentials were right (RFC 7616 §3.3).
    pub stale: bool,
}

/// Why a datagram is not a response the generator can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The start line is not `SIP/2.0 <code> <reason>` (a request, or garbage).
    #[error("not a SIP/2.0 status line")]
    NotResponse,
    /// The status code is not three digits in 100..=699.
    #[error("status code out of range")]
    BadStatus,
    /// A header the match needs is absent.
    #[error("no {0} header")]
    Missing(&'static str),
    /// A header the match needs appears twice, so the match would be a guess.
    #[error("more than one {0} header")]
    Duplicate(&'static str),
    /// CSeq is not `<number> <method>` with a number below 2^31 (RFC 3261 §8.1.1.5).
    #[error("malformed CSeq")]
    BadCSeq,
}

/// Parses the start line and the headers the generator needs; every other header is skipped.
pub fn parse(datagram: &[u8]) -> Result<Response<'_>, ResponseError> {
    let (start, fields) = headers::split(datagram);
    let status = status_code(start)?;
    let mut call_id = None;
    let mut cseq = None;
    let mut preferred: Option<Challenge<'_>> = None;
    let mut first: Option<Challenge<'_>> = None;
    for field in fields {
        if field.is("Call-ID", Some(b'i')) {
            set_once(&mut call_id, field.value, "Call-ID")?;
        } else if field.is("CSeq", None) {
            set_once(&mut cseq, parse_cseq(field.value)?, "CSeq")?;
        } else if preferred.is_none() && is_challenge_header(&field) {
            let Some(challenge) = digest_challenge(field.value) else {
                continue;
            };
            if algorithm_is(field.value, b"SHA-256") {
                preferred = Some(challenge);
            } else if first.is_none() {
                first = Some(challenge);
            }
        }
    }
    let call_id = call_id.ok_or(ResponseError::Missing("Call-ID"))?;
    if call_id.is_empty() {
        return Err(ResponseError::Missing("Call-ID"));
    }
    let (cseq, method) = cseq.ok_or(ResponseError::Missing("CSeq"))?;
    Ok(Response {
        status,
        call_id,
        cseq,
        method,
        challenge: preferred.or(first),
    })
}

/// The value of the auth-param `name` in a challenge or credentials value, without quotes
/// (escapes are left as sent); `None` when absent.
pub fn auth_param<'a>(value: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let params = value
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(&[][..], |sp| &value[sp..]);
    AuthParams { rest: params }
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

pub(crate) fn status_code(start: &[u8]) -> Result<u16, ResponseError> {
    let mut parts = start.splitn(3, |b| *b == b' ');
    let version = parts.next().unwrap_or_default();
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        return Err(ResponseError::NotResponse);
    }
    let code = parts.next().ok_or(ResponseError::BadStatus)?;
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::BadStatus);
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&status) {
        return Err(ResponseError::BadStatus);
    }
    Ok(status)
}

pub(crate) fn parse_cseq(value: &[u8]) -> Result<(u32, &[u8]), ResponseError> {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return Err(ResponseError::BadCSeq);
    }
    let number = value[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let method = headers::trim(&value[digits..]);
    let separated = value.get(digits).is_some_and(|b| *b == b' ' || *b == b'\t');
    if number >= 1 << 31 || method.is_empty() || !separated {
        return Err(ResponseError::BadCSeq);
    }
    let number = u32::try_from(number).map_err(|_| ResponseError::BadCSeq)?;
    Ok((number, method))
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), ResponseError> {
    if slot.is_some() {
        return Err(ResponseError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

pub(crate) fn is_challenge_header(field: &Field<'_>) -> bool {
    field.is("WWW-Authenticate", None) || field.is("Proxy-Authenticate", None)
}

pub(crate) fn digest_challenge(value: &[u8]) -> Option<Challenge<'_>> {
    let scheme_len = value
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(value.len());
    if !value[..scheme_len].eq_ignore_ascii_case(b"Digest") {
        return None;
    }
    let stale = auth_param(value, "stale").is_some_and(|s| s.eq_ignore_ascii_case(b"true"));
    Some(Challenge { value, stale })
}

pub(crate) fn algorithm_is(value: &[u8], algorithm: &[u8]) -> bool {
    auth_param(value, "algorithm").is_some_and(|a| a.eq_ignore_ascii_case(algorithm))
}

/// `name=value` pairs separated by commas; values may be quoted strings with `\` escapes.
struct AuthParams<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for AuthParams<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let skip = self
                .rest
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b','))?;
            self.rest = &self.rest[skip..];
            let name_end = self
                .rest
                .iter()
                .position(|b| *b == b'=' || *b == b',')
                .unwrap_or(self.rest.len());
            let name = headers::trim(&self.rest[..name_end]);
            if self.rest.get(name_end) != Some(&b'=') {
                // A bare token (no value): skip it.
                self.rest = &self.rest[name_end..];
                continue;
            }
            let after = &self.rest[name_end + 1..];
            let ws = after
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(after.len());
            let after = &after[ws..];
            if after.first() == Some(&b'"') {
                let body = &after[1..];
                let mut i = 0;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(body.len());
                self.rest = body.get(end + 1..).unwrap_or_default();
                return Some((name, &body[..end]));
            }
            let end = after.iter().position(|b| *b == b',').unwrap_or(after.len());
            self.rest = &after[end..];
            return Some((name, headers::trim(&after[..end])));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A 401 as herald sends it: SHA-256 first, then MD5 (RFC 8760 §2.3).
    const CHALLENGE_401: &[u8] = b"SIP/2.0 401 Unauthorized\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport=5070\r\n\
        From: <sip:load7@herald.test>;tag=a\r\n\
        To: <sip:load7@herald.test>;tag=b\r\n\
        Call-ID: 1f-7@127.0.0.1\r\n\
        CSeq: 3 REGISTER\r\n\
        WWW-Authenticate: Digest realm=\"herald.test\", nonce=\"n1\", opaque=\"o\", algorithm=SHA-256, qop=\"auth\"\r\n\
        WWW-Authenticate: Digest realm=\"herald.test\", nonce=\"n1\", opaque=\"o\", algorithm=MD5, qop=\"auth\"\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn rfc8760_section_2_3_picks_the_sha256_challenge() {
        let r = parse(CHALLENGE_401).unwrap();
        assert_eq!(
            (r.status, r.call_id, r.cseq),
            (401, &b"1f-7@127.0.0.1"[..], 3)
        );
        assert_eq!(r.method, b"REGISTER");
        let c = r.challenge.unwrap();
        assert!(c.value.ends_with(b"algorithm=SHA-256, qop=\"auth\""));
        assert!(!c.stale);
    }

    #[test]
    fn rfc8760_section_2_4_sha256_is_preferred_whatever_the_order() {
        let swapped = b"SIP/2.0 401 Unauthorized\r\ni: x\r\nCSeq: 1 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"r\", nonce=\"m\", algorithm=MD5\r\n\
            WWW-Authenticate: Basic realm=\"r\"\r\n\
            www-authenticate: Digest realm=\"r\", nonce=\"s\", algorithm=sha-256, stale=TRUE\r\n\r\n";
        let c = parse(swapped).unwrap().challenge.unwrap();
        assert_eq!(auth_param(c.value, "nonce"), Some(&b"s"[..]));
        assert!(c.stale);
        let md5_only = b"SIP/2.0 401 U\r\ni: x\r\nCSeq: 1 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"r\", nonce=\"m\"\r\n\r\n";
        let c = parse(md5_only).unwrap().challenge.unwrap();
        assert_eq!(auth_param(c.value, "nonce"), Some(&b"m"[..]));
    }

    #[test]
    fn rfc7616_section_3_3_auth_params_quoted_and_tokens() {
        let v = br#"Digest realm="a\"b,c", nonce = "n" ,algorithm=SHA-256,stale=true, flag"#;
        assert_eq!(auth_param(v, "realm"), Some(&br#"a\"b,c"#[..]));
        assert_eq!(auth_param(v, "NONCE"), Some(&b"n"[..]));
        assert_eq!(auth_param(v, "algorithm"), Some(&b"SHA-256"[..]));
        assert_eq!(auth_param(v, "stale"), Some(&b"true"[..]));
        assert_eq!(auth_param(v, "flag"), None);
        assert_eq!(
            auth_param(b"Digest realm=\"unterminated", "realm"),
            Some(&b"unterminated"[..])
        );
        assert_eq!(auth_param(b"Digest", "realm"), None);
    }

    #[test]
    fn rfc3261_section_8_1_1_5_cseq_shapes() {
        let ok = |cseq: &str| {
            let msg = format!("SIP/2.0 200 OK\r\nCall-ID: c\r\nCSeq: {cseq}\r\n\r\n");
            parse(msg.as_bytes()).map(|r| (r.cseq, r.method.to_vec()))
        };
        assert_eq!(
            ok("2147483647 REGISTER"),
            Ok((2_147_483_647, b"REGISTER".to_vec()))
        );
        assert_eq!(ok("2147483648 REGISTER"), Err(ResponseError::BadCSeq));
        assert_eq!(ok("12"), Err(ResponseError::BadCSeq));
        assert_eq!(ok("12REGISTER"), Err(ResponseError::BadCSeq));
        assert_eq!(ok("-1 REGISTER"), Err(ResponseError::BadCSeq));
        assert_eq!(
            ok("99999999999999999999 REGISTER"),
            Err(ResponseError::BadCSeq)
        );
    }

    #[test]
    fn rfc3261_section_7_2_status_lines() {
        let status = |line: &str| {
            parse(format!("{line}\r\ni: c\r\nCSeq: 1 X\r\n\r\n").as_bytes()).map(|r| r.status)
        };
        assert_eq!(status("SIP/2.0 200 OK"), Ok(200));
        assert_eq!(status("sip/2.0 100 Trying"), Ok(100));
        assert_eq!(status("SIP/2.0 200"), Ok(200));
        assert_eq!(status("SIP/2.0 099 Low"), Err(ResponseError::BadStatus));
        assert_eq!(status("SIP/2.0 700 High"), Err(ResponseError::BadStatus));
        assert_eq!(status("SIP/2.0 2000 Long"), Err(ResponseError::BadStatus));
        assert_eq!(status("SIP/2.0"), Err(ResponseError::BadStatus));
        assert_eq!(
            status("REGISTER sip:x SIP/2.0"),
            Err(ResponseError::NotResponse)
        );
    }

    #[test]
    fn missing_and_duplicate_match_headers_are_errors() {
        assert_eq!(
            parse(b"SIP/2.0 200 OK\r\nCSeq: 1 R\r\n\r\n"),
            Err(ResponseError::Missing("Call-ID"))
        );
        assert_eq!(
            parse(b"SIP/2.0 200 OK\r\ni:\r\nCSeq: 1 R\r\n\r\n"),
            Err(ResponseError::Missing("Call-ID"))
        );
        assert_eq!(
            parse(b"SIP/2.0 200 OK\r\ni: a\r\n\r\n"),
            Err(ResponseError::Missing("CSeq"))
        );
        assert_eq!(
            parse(b"SIP/2.0 200 OK\r\ni: a\r\nCall-ID: b\r\nCSeq: 1 R\r\n\r\n"),
            Err(ResponseError::Duplicate("Call-ID"))
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
            let _ = auth_param(&bytes, "nonce");
        }

        #[test]
        fn never_panics_on_mutated_challenges(
            cut in 0..CHALLENGE_401.len(),
            flips in proptest::collection::vec((0..CHALLENGE_401.len(), any::<u8>()), 0..8),
        ) {
            let mut bytes = CHALLENGE_401[..cut].to_vec();
            for (at, byte) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            if let Ok(r) = parse(&bytes) {
                prop_assert!((100..=699).contains(&r.status));
                prop_assert!(!r.call_id.is_empty());
            }
        }
    }
}
