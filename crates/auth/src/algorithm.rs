//! Digest hash algorithms (RFC 7616 §3.4.1, §6.1; RFC 8760 §2.1) and the HA1 that the directory
//! stores in place of a password.

use std::fmt;

use md5::Md5;
use sha2::{Sha256, Sha512_256};

/// A Digest `algorithm` value that herald can compute.
///
/// The `-sess` variants fold the nonce and cnonce into HA1, so a stored HA1 serves both a base
/// algorithm and its session variant: look the stored value up by [`Algorithm::base`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5`: obsolete, kept because most deployed SIP clients only know it (RFC 8760 §3).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`: the algorithm RFC 8760 tells SIP servers to prefer.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (RFC 7616 §6.1), SHA-512 truncated to 256 bits.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm, most preferred first: the order in which challenges are offered
    /// (RFC 8760 §2.3: "starting with the most preferred algorithm at the top").
    pub const PREFERENCE: [Algorithm; 6] = [
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Md5,
        Algorithm::Md5Sess,
    ];

    /// Parses the token case-insensitively, since clients disagree on case; `None` for an
    /// algorithm herald cannot compute, which the caller must answer with a fresh challenge.
    pub fn from_token(token: &str) -> Option<Self> {
        Self::PREFERENCE
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(token))
    }

    /// The canonical token, as sent in challenges.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// The algorithm whose stored HA1 this one uses: the directory keeps one HA1 per hash
    /// function, and the `-sess` variants derive theirs from it per nonce.
    pub fn base(self) -> Self {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => Algorithm::Sha512_256,
        }
    }

    /// Whether HA1 is re-derived per nonce and cnonce (RFC 7616 §3.4.2).
    pub fn is_session(self) -> bool {
        self != self.base()
    }

    /// Length of a digest in lowercase hex, which is also the length of a valid `response`.
    pub fn hex_len(self) -> usize {
        match self.base() {
            Algorithm::Md5 => 32,
            _ => 64,
        }
    }

    /// H(data) in lowercase hex (RFC 8760 §2.2).
    pub(crate) fn hex_digest(self, parts: &[&[u8]]) -> String {
        match self.base() {
            Algorithm::Md5 => hex::encode(digest_parts::<Md5>(parts)),
            Algorithm::Sha256 => hex::encode(digest_parts::<Sha256>(parts)),
            _ => hex::encode(digest_parts::<Sha512_256>(parts)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Computes the HA1 to store for a user, so the directory never keeps a plain-text password.
///
/// HA1 = H(username ":" realm ":" password) in lowercase hex (RFC 7616 §3.4.2). A `-sess`
/// algorithm yields the same value as its [`Algorithm::base`], because its per-nonce part is
/// derived at verification time. Changing the realm invalidates every stored HA1.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hex_digest(&[
        username.as_bytes(),
        b":",
        realm.as_bytes(),
        b":",
        password.as_bytes(),
    ])
}

fn digest_parts<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = D::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7616_section_3_9_1_ha1_md5_and_sha256() {
        assert_eq!(
            ha1(
                Algorithm::Md5,
                "Mufasa",
                "http-auth@example.org",
                "Circle of Life"
            ),
            "3d78807defe7de2157e2b0b6573a855f"
        );
        assert_eq!(
            ha1(
                Algorithm::Sha256,
                "Mufasa",
                "http-auth@example.org",
                "Circle of Life"
            ),
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }

    #[test]
    fn sess_variants_store_the_base_ha1() {
        assert_eq!(
            ha1(Algorithm::Sha256Sess, "u", "r", "p"),
            ha1(Algorithm::Sha256, "u", "r", "p")
        );
        assert_eq!(Algorithm::Md5Sess.base(), Algorithm::Md5);
        assert!(Algorithm::Md5Sess.is_session());
        assert!(!Algorithm::Sha256.is_session());
    }

    #[test]
    fn rfc8760_section_2_7_algorithm_tokens_round_trip() {
        for alg in Algorithm::PREFERENCE {
            assert_eq!(Algorithm::from_token(alg.as_str()), Some(alg));
            assert_eq!(alg.hex_digest(&[b"x"]).len(), alg.hex_len());
        }
        assert_eq!(Algorithm::from_token("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_token("SHA-1"), None);
    }
}
