//! `Authorization` / `Proxy-Authorization` header values (RFC 3261 §22.4, §25.1; RFC 7616 §3.4;
//! RFC 8760 §2.7) parsed into typed credentials.

use std::fmt;
use std::str::FromStr;

use crate::algorithm::Algorithm;
use crate::params::{self, RawParam};

/// The credentials a request carried, sorted by scheme so the caller can route them: Digest is
/// handled here, other schemes (NTLM, Kerberos, TLS-DSK of MS-SIPAE) by their own acceptors.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// `Digest ...`.
    Digest(DigestCredentials),
    /// Any other scheme, kept as parameters so its acceptor need not re-parse the header.
    Other {
        /// The scheme as written by the client; compare it case-insensitively.
        scheme: String,
        /// Parameters in order, names lowercased, values unescaped.
        params: Vec<(String, String)>,
    },
}

impl Credentials {
    /// Parses a header value as received; the codec may hand over raw bytes since a quoted
    /// username may be UTF-8.
    pub fn parse(value: &[u8]) -> Result<Self, CredentialsError> {
        let (scheme, raw) = params::split(value)?;
        if scheme.eq_ignore_ascii_case("Digest") {
            DigestCredentials::from_params(raw).map(Credentials::Digest)
        } else {
            Ok(Credentials::Other {
                scheme: scheme.to_owned(),
                params: raw
                    .into_iter()
                    .map(|p| (p.name.to_ascii_lowercase(), p.value))
                    .collect(),
            })
        }
    }
}

impl FromStr for Credentials {
    type Err = CredentialsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

/// A Digest `digest-response`, with every parameter the verifier needs checked for presence.
///
/// Optional parameters stay `Option` so that formatting reproduces what the client sent; use
/// [`DigestCredentials::algorithm`] for the effective algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The user to look the stored HA1 up by.
    pub username: String,
    /// The protection space the client answered; the verifier checks it against its own.
    pub realm: String,
    /// Our nonce echoed back; empty when a client sends credentials before any challenge
    /// (RFC 8760 §2.7 allows that).
    pub nonce: String,
    /// `digest-uri`: the caller must check that it names the Request-URI (RFC 3261 §22.4).
    pub uri: String,
    /// `request-digest` as hex text; empty before a challenge.
    pub response: String,
    /// `algorithm`; absent means MD5 (RFC 7616 §3.3).
    pub algorithm: Option<Algorithm>,
    /// `cnonce`; present exactly when `qop` is.
    pub cnonce: Option<String>,
    /// `opaque`, which must come back as the challenge sent it.
    pub opaque: Option<String>,
    /// `message-qop`; absent only for RFC 2069-era clients.
    pub qop: Option<Qop>,
    /// `nonce-count`; present exactly when `qop` is.
    pub nc: Option<NonceCount>,
    /// `userhash` (RFC 7616 §3.4.4); herald never offers it, so `Some(true)` is refused.
    pub userhash: Option<bool>,
}

impl DigestCredentials {
    /// The effective algorithm, defaulting to MD5 when the client named none (RFC 7616 §3.3).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }

    fn from_params(raw: Vec<RawParam<'_>>) -> Result<Self, CredentialsError> {
        let mut slots = Slots::default();
        for RawParam { name, value } in raw {
            let Some(index) = KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) else {
                continue; // RFC 7616 §3.4: unknown parameters are ignored
            };
            let slot = &mut slots.0[index];
            if slot.is_some() {
                return Err(CredentialsError::DuplicateParam {
                    param: KNOWN[index],
                });
            }
            *slot = Some(value);
        }
        let [
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            cnonce,
            opaque,
            qop,
            nc,
            userhash,
        ] = slots.0;
        let algorithm = algorithm
            .map(|a| Algorithm::from_token(&a).ok_or(CredentialsError::UnsupportedAlgorithm(a)))
            .transpose()?;
        let qop = qop
            .map(|q| Qop::from_token(&q).ok_or(CredentialsError::UnsupportedQop(q)))
            .transpose()?;
        let nc = nc
            .map(|n| NonceCount::from_hex(&n).ok_or(CredentialsError::InvalidNonceCount))
            .transpose()?;
        let userhash = userhash
            .map(|u| match u.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(CredentialsError::InvalidUserhash),
            })
            .transpose()?;
        let credentials = DigestCredentials {
            username: username.ok_or(CredentialsError::MissingParam { param: "username" })?,
            realm: realm.ok_or(CredentialsError::MissingParam { param: "realm" })?,
            nonce: nonce.ok_or(CredentialsError::MissingParam { param: "nonce" })?,
            uri: uri.ok_or(CredentialsError::MissingParam { param: "uri" })?,
            response: response.ok_or(CredentialsError::MissingParam { param: "response" })?,
            algorithm,
            cnonce,
            opaque,
            qop,
            nc,
            userhash,
        };
        credentials.check_qop_params()?;
        Ok(credentials)
    }

    /// RFC 7616 §3.4: cnonce and nc accompany qop, and only qop; a `-sess` HA1 needs cnonce.
    fn check_qop_params(&self) -> Result<(), CredentialsError> {
        match (&self.qop, &self.cnonce, &self.nc) {
            (Some(_), None, _) => Err(CredentialsError::MissingParam { param: "cnonce" }),
            (Some(_), _, None) => Err(CredentialsError::MissingParam { param: "nc" }),
            (None, Some(_), _) | (None, _, Some(_)) => Err(CredentialsError::CnonceWithoutQop),
            (None, None, None) if self.algorithm().is_session() => {
                Err(CredentialsError::MissingParam { param: "cnonce" })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for DigestCredentials {
    /// Formats the header value canonically: quoted where RFC 3261 §25.1 quotes, tokens
    /// elsewhere, known parameters only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(256);
        out.push_str("Digest username=");
        params::push_quoted(&mut out, &self.username);
        out.push_str(", realm=");
        params::push_quoted(&mut out, &self.realm);
        out.push_str(", nonce=");
        params::push_quoted(&mut out, &self.nonce);
        out.push_str(", uri=");
        params::push_quoted(&mut out, &self.uri);
        out.push_str(", response=");
        params::push_quoted(&mut out, &self.response);
        if let Some(algorithm) = self.algorithm {
            out.push_str(", algorithm=");
            out.push_str(algorithm.as_str());
        }
        if let Some(cnonce) = &self.cnonce {
            out.push_str(", cnonce=");
            params::push_quoted(&mut out, cnonce);
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(", opaque=");
            params::push_quoted(&mut out, opaque);
        }
        if let Some(qop) = self.qop {
            out.push_str(", qop=");
            out.push_str(qop.as_str());
        }
        if let Some(nc) = self.nc {
            out.push_str(", nc=");
            out.push_str(&nc.to_string());
        }
        if let Some(userhash) = self.userhash {
            out.push_str(if userhash {
                ", userhash=true"
            } else {
                ", userhash=false"
            });
        }
        f.write_str(&out)
    }
}

/// `qop-value` (RFC 3261 §25.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Qop {
    /// `auth`: the only protection herald offers.
    Auth,
    /// `auth-int`: parsed so it can be refused precisely; SIP bodies are not integrity-checked.
    AuthInt,
}

impl Qop {
    /// Parses case-insensitively; `None` for extension values nobody implements.
    pub fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }

    /// The token, as it enters the response computation.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// `nonce-count` (`nc`): how many requests the client has sent with one nonce, the basis of
/// replay protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonceCount(pub u32);

impl NonceCount {
    /// Parses exactly eight lowercase hex digits (`8LHEX`): the client hashed the text it sent,
    /// so only the canonical spelling can be re-derived from the number.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 8
            || !text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        u32::from_str_radix(text, 16).ok().map(NonceCount)
    }
}

impl fmt::Display for NonceCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Why a credentials header value was refused. Any of these is answered with 400 or a fresh
/// challenge; none reveals anything about the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The value is longer than herald reads.
    #[error("credentials are {len} bytes, more than {max}")]
    TooLong {
        /// Length received.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The value does not start with an auth-scheme token.
    #[error("credentials have no scheme")]
    MissingScheme,
    /// The grammar broke at `offset`.
    #[error("malformed credentials at byte {offset}: expected {expected}")]
    Syntax {
        /// Byte offset into the header value.
        offset: usize,
        /// What the grammar wanted there.
        expected: &'static str,
    },
    /// More parameters than any scheme uses.
    #[error("more than {max} parameters")]
    TooManyParams {
        /// Limit.
        max: usize,
    },
    /// One parameter value is longer than herald reads.
    #[error("parameter {param} is longer than {max} bytes")]
    ValueTooLong {
        /// Lowercased parameter name.
        param: String,
        /// Limit.
        max: usize,
    },
    /// A quoted value holds a control character, which could split a header if echoed.
    #[error("parameter {param} contains a control character")]
    ControlCharacter {
        /// Lowercased parameter name.
        param: String,
    },
    /// A quoted value is not UTF-8.
    #[error("parameter {param} is not UTF-8")]
    NotUtf8 {
        /// Lowercased parameter name.
        param: String,
    },
    /// A Digest parameter appears twice, so which one the client meant is ambiguous.
    #[error("parameter {param} appears more than once")]
    DuplicateParam {
        /// Canonical parameter name.
        param: &'static str,
    },
    /// A Digest parameter the response computation needs is absent.
    #[error("parameter {param} is missing")]
    MissingParam {
        /// Canonical parameter name.
        param: &'static str,
    },
    /// `algorithm` names a hash herald cannot compute: answer with a fresh challenge.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// `qop` is neither `auth` nor `auth-int`.
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
    /// `nc` is not eight lowercase hex digits.
    #[error("nc is not 8 lowercase hex digits")]
    InvalidNonceCount,
    /// `userhash` is neither `true` nor `false`.
    #[error("userhash is neither true nor false")]
    InvalidUserhash,
    /// `cnonce` or `nc` without `qop`, which RFC 7616 §3.4 forbids.
    #[error("cnonce or nc sent without qop")]
    CnonceWithoutQop,
}

/// Digest parameters herald reads, in the order of [`Slots`] and of the destructuring above.
const KNOWN: [&str; 11] = [
    "username",
    "realm",
    "nonce",
    "uri",
    "response",
    "algorithm",
    "cnonce",
    "opaque",
    "qop",
    "nc",
    "userhash",
];

#[derive(Default)]
struct Slots([Option<String>; 11]);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn digest(value: &str) -> Result<DigestCredentials, CredentialsError> {
        match value.parse::<Credentials>()? {
            Credentials::Digest(d) => Ok(d),
            other => panic!("not digest: {other:?}"),
        }
    }

    #[test]
    fn rfc7616_section_3_9_1_sha256_authorization_parses() {
        let c = digest(
            r#"Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.algorithm, Some(Algorithm::Sha256));
        assert_eq!(c.nc, Some(NonceCount(1)));
        assert_eq!(c.qop, Some(Qop::Auth));
        assert_eq!(
            c.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
    }

    #[test]
    fn rfc3261_section_22_4_sip_authorization_parses_with_default_md5() {
        let c = digest(
            r#"digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(c.algorithm, None);
        assert_eq!(c.algorithm(), Algorithm::Md5);
        assert_eq!(c.uri, "sip:bob@biloxi.com");
    }

    #[test]
    fn rfc8760_section_2_7_empty_response_before_challenge_parses() {
        let c = digest(r#"Digest username="bob", realm="r", nonce="", uri="sip:r", response="""#)
            .unwrap();
        assert!(c.nonce.is_empty() && c.response.is_empty());
    }

    #[test]
    fn quoted_tokens_and_unknown_params_are_accepted() {
        let c = digest(
            r#"Digest username="u", realm="r", nonce="n", uri="sip:r", response="00", qop="auth", algorithm="sha-256", cnonce="c", nc=0000000a, foo="x", bar=y"#,
        )
        .unwrap();
        assert_eq!(c.qop, Some(Qop::Auth));
        assert_eq!(c.algorithm, Some(Algorithm::Sha256));
        assert_eq!(c.nc, Some(NonceCount(10)));
    }

    #[test]
    fn precise_errors() {
        let base = r#"Digest username="u", realm="r", nonce="n", uri="sip:r", response="00""#;
        assert_eq!(
            digest(&format!("{base}, realm=\"x\"")),
            Err(CredentialsError::DuplicateParam { param: "realm" })
        );
        assert_eq!(
            digest(r#"Digest username="u", realm="r", nonce="n", response="00""#),
            Err(CredentialsError::MissingParam { param: "uri" })
        );
        assert_eq!(
            digest(&format!("{base}, algorithm=SHA-1")),
            Err(CredentialsError::UnsupportedAlgorithm("SHA-1".into()))
        );
        assert_eq!(
            digest(&format!("{base}, qop=auth, cnonce=\"c\"")),
            Err(CredentialsError::MissingParam { param: "nc" })
        );
        assert_eq!(
            digest(&format!("{base}, qop=auth, nc=00000001")),
            Err(CredentialsError::MissingParam { param: "cnonce" })
        );
        assert_eq!(
            digest(&format!("{base}, nc=00000001")),
            Err(CredentialsError::CnonceWithoutQop)
        );
        assert_eq!(
            digest(&format!("{base}, qop=auth, cnonce=\"c\", nc=0000001")),
            Err(CredentialsError::InvalidNonceCount)
        );
        assert_eq!(
            digest(&format!("{base}, qop=auth, cnonce=\"c\", nc=0000000A")),
            Err(CredentialsError::InvalidNonceCount)
        );
        assert_eq!(
            digest(&format!("{base}, algorithm=MD5-sess")),
            Err(CredentialsError::MissingParam { param: "cnonce" })
        );
        assert!(matches!(
            digest(&format!("{base}, opaque=\"unterminated")),
            Err(CredentialsError::Syntax { .. })
        ));
        assert!(matches!(
            digest("Digest username=\"a\nb\""),
            Err(CredentialsError::ControlCharacter { .. })
        ));
        let long = "x".repeat(params::MAX_VALUE_LEN + 1);
        assert_eq!(
            digest(&format!("Digest username=\"{long}\"")),
            Err(CredentialsError::ValueTooLong {
                param: "username".into(),
                max: params::MAX_VALUE_LEN
            })
        );
        let many = (0..40).map(|i| format!("p{i}=1")).collect::<Vec<_>>();
        assert_eq!(
            digest(&format!("Digest {}", many.join(", "))),
            Err(CredentialsError::TooManyParams {
                max: params::MAX_PARAMS
            })
        );
        let huge = "y".repeat(params::MAX_HEADER_LEN);
        assert!(matches!(
            digest(&format!("Digest a={huge}")),
            Err(CredentialsError::TooLong { .. })
        ));
        assert_eq!(
            "".parse::<Credentials>(),
            Err(CredentialsError::MissingScheme)
        );
    }

    #[test]
    fn other_schemes_are_routed_with_their_params() {
        let c: Credentials =
            r#"NTLM qop="auth", realm="SIP Communications Service", targetname="fe.contoso.com", gssapi-data="TlRMTVNTUAABAAAAt4II4gAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==""#
                .parse()
                .unwrap();
        let Credentials::Other { scheme, params } = c else {
            panic!("expected other scheme");
        };
        assert_eq!(scheme, "NTLM");
        assert_eq!(params.len(), 4);
        assert_eq!(
            params[1],
            ("realm".into(), "SIP Communications Service".into())
        );
    }

    fn text() -> impl Strategy<Value = String> {
        "[ -~]{0,40}"
    }

    prop_compose! {
        fn credentials()(
            username in text(), realm in text(), nonce in text(), uri in text(),
            response in "[0-9a-f]{0,64}",
            algorithm in proptest::option::of(proptest::sample::select(Algorithm::PREFERENCE.to_vec())),
            opaque in proptest::option::of(text()),
            with_qop in any::<bool>(),
            cnonce in text(),
            nc in any::<u32>(),
            userhash in proptest::option::of(any::<bool>()),
        ) -> DigestCredentials {
            let with_qop = with_qop || algorithm.is_some_and(Algorithm::is_session);
            DigestCredentials {
                username, realm, nonce, uri, response, algorithm, opaque, userhash,
                cnonce: with_qop.then_some(cnonce),
                qop: with_qop.then_some(Qop::Auth),
                nc: with_qop.then_some(NonceCount(nc)),
            }
        }
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Credentials::parse(&bytes);
        }

        #[test]
        fn parser_never_panics_on_digest_like_input(s in r#"Digest( [a-z]{1,9}=("[^"]{0,20}"|[a-z0-9-]{1,9}),?){0,12}"#) {
            let _ = s.parse::<Credentials>();
        }

        #[test]
        fn format_parse_round_trips(c in credentials()) {
            let text = c.to_string();
            let parsed = digest(&text).unwrap();
            prop_assert_eq!(&parsed, &c);
            prop_assert_eq!(parsed.to_string(), text);
        }
    }
}
