//! Digest challenges (RFC 3261 §22.1, §22.3; RFC 7616 §3.3; RFC 8760 §2.3).

use crate::algorithm::Algorithm;
use crate::params;

/// Whether the server answers as the user agent's registrar/UAS (401) or as a proxy (407):
/// the two use different status codes and header names but the same challenge syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// 401 with `WWW-Authenticate`; the client answers in `Authorization`.
    Www,
    /// 407 with `Proxy-Authenticate`; the client answers in `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// herald registers as a registrar (RFC 3261 §10.3 answers REGISTER with 401) and
    /// authenticates everything else as the proxy in front of its users (407).
    pub fn for_method(method: &str) -> Self {
        if method.eq_ignore_ascii_case("REGISTER") {
            ChallengeKind::Www
        } else {
            ChallengeKind::Proxy
        }
    }

    /// The response status code that carries the challenge.
    pub fn status(self) -> u16 {
        match self {
            ChallengeKind::Www => 401,
            ChallengeKind::Proxy => 407,
        }
    }

    /// The header that carries each challenge value.
    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// The request header whose credentials answer this kind of challenge.
    pub fn credentials_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// A challenge ready to put into a response: one header value per offered algorithm, most
/// preferred first; RFC 8760 §2.3 requires that the header order be kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Which status and header to use.
    pub kind: ChallengeKind,
    /// Header values, each beginning `Digest `, in the order to emit them.
    pub values: Vec<String>,
}

impl Challenge {
    /// The response status code (401 or 407).
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The header name to emit each value under.
    pub fn header_name(&self) -> &'static str {
        self.kind.challenge_header()
    }
}

/// One `Digest` challenge value. `qop="auth"` always: auth-int is not offered, and RFC 2069
/// clients ignore the parameter.
pub(crate) fn format_value(
    realm: &str,
    nonce: &str,
    opaque: &str,
    algorithm: Algorithm,
    stale: bool,
) -> String {
    let mut out = String::with_capacity(160 + realm.len());
    out.push_str("Digest realm=");
    params::push_quoted(&mut out, realm);
    out.push_str(", nonce=");
    params::push_quoted(&mut out, nonce);
    out.push_str(", opaque=");
    params::push_quoted(&mut out, opaque);
    out.push_str(", algorithm=");
    out.push_str(algorithm.as_str());
    out.push_str(", qop=\"auth\"");
    if stale {
        out.push_str(", stale=true");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_section_22_1_register_is_challenged_with_401_others_with_407() {
        let www = ChallengeKind::for_method("REGISTER");
        assert_eq!(
            (
                www.status(),
                www.challenge_header(),
                www.credentials_header()
            ),
            (401, "WWW-Authenticate", "Authorization")
        );
        let proxy = ChallengeKind::for_method("INVITE");
        assert_eq!(
            (
                proxy.status(),
                proxy.challenge_header(),
                proxy.credentials_header()
            ),
            (407, "Proxy-Authenticate", "Proxy-Authorization")
        );
    }

    #[test]
    fn rfc7616_section_3_3_challenge_value_shape() {
        assert_eq!(
            format_value("a\"b", "n", "o", Algorithm::Sha256, true),
            r#"Digest realm="a\"b", nonce="n", opaque="o", algorithm=SHA-256, qop="auth", stale=true"#
        );
        assert!(!format_value("r", "n", "o", Algorithm::Md5, false).contains("stale"));
    }
}
