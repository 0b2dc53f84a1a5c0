//! What the directory stores for a password: the hashes this pipeline verifies against.

use herald_auth::{Algorithm, ha1};
use herald_directory::{Aor, Credential, CredentialAlgorithm, Error};

/// One Digest HA1 per algorithm and per username form — `alice` and `alice@domain`, since
/// clients differ in which they send and HA1 covers the spelling — and the NT hash NTLM
/// verifies against; never the password itself. The pipeline picks the row matching the
/// credentials a client presents.
pub fn password_credentials(
    aor: &Aor,
    realm: &str,
    password: &str,
) -> Result<Vec<Credential>, Error> {
    let user = aor.user().to_owned();
    let full = format!("{user}@{}", aor.domain().as_str());
    [
        (CredentialAlgorithm::Sha256, Algorithm::Sha256, &user),
        (CredentialAlgorithm::Md5, Algorithm::Md5, &user),
        (CredentialAlgorithm::Sha256Aor, Algorithm::Sha256, &full),
        (CredentialAlgorithm::Md5Aor, Algorithm::Md5, &full),
    ]
    .into_iter()
    .map(|(stored, digest, username)| {
        Credential::new(stored, realm, &ha1(digest, username, realm, password))
    })
    .chain(std::iter::once(Credential::new(
        CredentialAlgorithm::Nt,
        "",
        &herald_ntlm::NtHash::from_password(password).to_string(),
    )))
    .collect()
}

/// The stored row that verifies credentials of `algorithm` for `username` as the client
/// spelled it.
pub(crate) fn stored_algorithm(
    algorithm: Algorithm,
    username: &str,
) -> Option<CredentialAlgorithm> {
    let aor_form = username.contains('@');
    Some(match (algorithm.base(), aor_form) {
        (Algorithm::Md5, false) => CredentialAlgorithm::Md5,
        (Algorithm::Sha256, false) => CredentialAlgorithm::Sha256,
        (Algorithm::Md5, true) => CredentialAlgorithm::Md5Aor,
        (Algorithm::Sha256, true) => CredentialAlgorithm::Sha256Aor,
        _ => return None,
    })
}
