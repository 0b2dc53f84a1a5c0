//! The client side of Digest: answering a challenge. herald uses it in tests of the registrar and
//! in black-box tests, and it documents by example what the server expects.

use crate::algorithm::{Algorithm, ha1};
use crate::credentials::{CredentialsError, DigestCredentials, NonceCount, Qop};
use crate::params;
use crate::verify::expected_response;

/// Computes the credentials a client sends in answer to one `WWW-Authenticate` /
/// `Proxy-Authenticate` value (RFC 7616 §3.4).
///
/// Uses `qop=auth` when the challenge offers it and no qop otherwise (RFC 2069 style); `cnonce`
/// and `nc` are the caller's so that tests are deterministic and can exercise replay.
pub fn answer_challenge(
    challenge: &str,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: NonceCount,
) -> Result<DigestCredentials, CredentialsError> {
    let (scheme, raw) = params::split(challenge.as_bytes())?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(CredentialsError::Syntax {
            offset: 0,
            expected: "a Digest challenge",
        });
    }
    let find = |name: &str| {
        raw.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.clone())
    };
    let realm = find("realm").ok_or(CredentialsError::MissingParam { param: "realm" })?;
    let nonce = find("nonce").ok_or(CredentialsError::MissingParam { param: "nonce" })?;
    let algorithm = find("algorithm")
        .map(|a| Algorithm::from_token(&a).ok_or(CredentialsError::UnsupportedAlgorithm(a)))
        .transpose()?;
    let offers_auth = find("qop").is_some_and(|qops| {
        qops.split(',')
            .any(|q| Qop::from_token(q.trim()) == Some(Qop::Auth))
    });
    let mut credentials = DigestCredentials {
        username: username.to_owned(),
        realm,
        nonce,
        uri: uri.to_owned(),
        response: String::new(),
        algorithm,
        cnonce: offers_auth.then(|| cnonce.to_owned()),
        opaque: find("opaque"),
        qop: offers_auth.then_some(Qop::Auth),
        nc: offers_auth.then_some(nc),
        userhash: None,
    };
    let algorithm = credentials.algorithm();
    if algorithm.is_session() && !offers_auth {
        return Err(CredentialsError::MissingParam { param: "qop" });
    }
    let stored = ha1(algorithm, username, &credentials.realm, password);
    credentials.response = expected_response(algorithm, &stored, &credentials, method);
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client half of the RFC 7616 §3.9.1 example, from the challenge as printed there.
    #[test]
    fn rfc7616_section_3_9_1_client_answers_md5_challenge() {
        let challenge = r#"Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm=MD5,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let c = answer_challenge(
            challenge,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            NonceCount(1),
        )
        .unwrap();
        assert_eq!(c.response, "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            c.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
    }

    #[test]
    fn no_qop_offered_means_rfc2069_answer() {
        let c = answer_challenge(
            r#"Digest realm="r", nonce="n""#,
            "u",
            "p",
            "REGISTER",
            "sip:r",
            "c",
            NonceCount(1),
        )
        .unwrap();
        assert_eq!((c.qop, c.nc, c.cnonce), (None, None, None));
        assert_eq!(
            answer_challenge("NTLM realm=\"r\"", "u", "p", "M", "U", "c", NonceCount(1)),
            Err(CredentialsError::Syntax {
                offset: 0,
                expected: "a Digest challenge"
            })
        );
    }
}
