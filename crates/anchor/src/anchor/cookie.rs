//! The `X-BackEndCookie` herald issues: a signed record of a routing decision, so later
//! requests of the same user keep the mailbox (and shell session) they were anchored to even
//! when they no longer carry the hint that chose it.
//!
//! The lesson of CVE-2021-26855 (ProxyLogon) is that a client-supplied cookie must never name a
//! backend of the client's choosing. Three things make that impossible here:
//!
//! 1. The cookie carries an HMAC-SHA256 over its whole content with a server secret, so it
//!    cannot be forged or altered.
//! 2. The MAC also covers the authenticated user it was issued to, so a cookie copied to
//!    another user's session fails verification.
//! 3. Even a genuine cookie only names a *mailbox*; the backend is always recomputed from
//!    Active Manager (the server in the cookie is a cache for diagnostics). The one exception,
//!    a version-based management-shell session pinned to a server, is honoured only while that
//!    server is in the directory and healthy.
//!
//! Format (cookie-safe ASCII, at most [`MAX_COOKIE_LEN`] bytes):
//! `1~<m|s>~<guid|->~<server>~<expires-unix>~<user-tag>~<hex mac>`, where the user tag is the
//! first 4 bytes of SHA-256(user) so that "issued to someone else" can be told apart from
//! "tampered with" in diagnostics.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::model::{ExchangeGuid, ServerName};

/// The secret that signs and verifies backend cookies. Every herald front door of one
/// deployment must share it, or cookies issued by one are refused (harmlessly) by another.
#[derive(Clone)]
pub struct CookieKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

impl CookieKey {
    /// A key from at least [`MIN_SECRET_LEN`] bytes of secret (the `[anchor] cookie_secret`
    /// setting, or random bytes at start when cookies need not survive a restart).
    pub fn new(secret: &[u8]) -> Result<Self, CookieKeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(CookieKeyError::TooShort { len: secret.len() });
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| CookieKeyError::TooShort { len: secret.len() })?;
        Ok(Self { mac })
    }

    /// The cookie value recording `target` for `principal` (the authenticated user's canonical
    /// name) until `expires_unix`.
    pub fn issue(&self, principal: &str, target: &CookieTarget, expires_unix: u64) -> String {
        let (kind, guid, server) = match target {
            CookieTarget::Mailbox { guid, server } => ("m", guid.to_string(), server),
            CookieTarget::Server(server) => ("s", "-".to_owned(), server),
        };
        let body = format!(
            "{VERSION}~{kind}~{guid}~{server}~{expires_unix}~{}",
            user_tag(principal)
        );
        let tag = self.sign(&body, principal);
        format!("{body}~{}", hex::encode(tag))
    }

    /// Checks a cookie value presented with a request by `principal` at `now_unix`.
    pub fn verify(
        &self,
        value: &str,
        principal: &str,
        now_unix: u64,
    ) -> Result<CookieTarget, CookieError> {
        if value.is_empty() || value.len() > MAX_COOKIE_LEN {
            return Err(CookieError::Malformed);
        }
        let (body, mac_hex) = value.rsplit_once('~').ok_or(CookieError::Malformed)?;
        let fields: Vec<&str> = body.split('~').collect();
        let [version, kind, guid, server, expires, utag] = fields[..] else {
            return Err(CookieError::Malformed);
        };
        if version != VERSION {
            return Err(CookieError::Malformed);
        }
        let mac = hex::decode(mac_hex).map_err(|_| CookieError::Malformed)?;
        let mut check = self.mac.clone();
        check.update(body.as_bytes());
        check.update(&[0]);
        check.update(principal.as_bytes());
        if check.verify_slice(&mac).is_err() {
            return Err(if utag != user_tag(principal) {
                CookieError::OtherUser
            } else {
                CookieError::BadSignature
            });
        }
        // Authentic from here on: parse errors would be herald's own bug, but stay errors.
        let expires: u64 = expires.parse().map_err(|_| CookieError::Malformed)?;
        if expires <= now_unix {
            return Err(CookieError::Expired);
        }
        let server: ServerName = server.parse().map_err(|_| CookieError::Malformed)?;
        match kind {
            "m" => Ok(CookieTarget::Mailbox {
                guid: guid.parse().map_err(|_| CookieError::Malformed)?,
                server,
            }),
            "s" => Ok(CookieTarget::Server(server)),
            _ => Err(CookieError::Malformed),
        }
    }

    fn sign(&self, body: &str, principal: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        mac.update(&[0]);
        mac.update(principal.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// What a backend cookie records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieTarget {
    /// The request was anchored to this mailbox, then active on `server`.
    Mailbox {
        /// The anchor mailbox.
        guid: ExchangeGuid,
        /// The backend chosen at the time (a cache; never trusted for routing).
        server: ServerName,
    },
    /// A version-based management-shell session lives on this server.
    Server(ServerName),
}

/// Why a presented cookie was not used. In every case the request falls back to the directory
/// lookup, as if no cookie had been sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// Not a herald cookie (wrong shape, version, encoding or length).
    #[error("malformed backend cookie")]
    Malformed,
    /// The signature does not match: forged or altered.
    #[error("backend cookie signature does not verify (forged or altered)")]
    BadSignature,
    /// Genuine, but issued to a different user.
    #[error("backend cookie was issued to another user")]
    OtherUser,
    /// Genuine, but past its expiry.
    #[error("backend cookie has expired")]
    Expired,
    /// Genuine, but its mailbox or server is gone from the directory or unhealthy.
    #[error("backend cookie names a mailbox or server that can no longer serve")]
    Stale,
}

/// Why a cookie key could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieKeyError {
    /// Too little secret material to resist guessing.
    #[error("the cookie secret is {len} bytes; at least {MIN_SECRET_LEN} are needed")]
    TooShort {
        /// Bytes given.
        len: usize,
    },
}

/// Bytes of secret needed for a [`CookieKey`].
pub const MIN_SECRET_LEN: usize = 32;
/// Longest cookie value examined; anything longer is refused unread.
pub const MAX_COOKIE_LEN: usize = 256;

/// Format version, so a later layout can coexist during an upgrade.
const VERSION: &str = "1";

fn user_tag(principal: &str) -> String {
    let digest = Sha256::digest(principal.as_bytes());
    hex::encode(&digest[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn key() -> CookieKey {
        CookieKey::new(&[7u8; 32]).expect("32 bytes")
    }

    fn target() -> CookieTarget {
        CookieTarget::Mailbox {
            guid: ExchangeGuid::from_u128(0x1234),
            server: "ex1".parse().expect("valid"),
        }
    }

    #[test]
    fn cookie_round_trips_for_its_user() {
        let value = key().issue("alice@contoso.com", &target(), NOW + 60);
        assert!(value.len() <= MAX_COOKIE_LEN);
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        );
        assert_eq!(key().verify(&value, "alice@contoso.com", NOW), Ok(target()));
        let pinned = CookieTarget::Server("ex2".parse().expect("valid"));
        let value = key().issue("alice@contoso.com", &pinned, NOW + 60);
        assert_eq!(key().verify(&value, "alice@contoso.com", NOW), Ok(pinned));
    }

    #[test]
    fn cookie_forged_with_another_key_is_refused() {
        let forged = CookieKey::new(&[8u8; 32]).expect("32 bytes").issue(
            "alice@contoso.com",
            &target(),
            NOW + 60,
        );
        assert_eq!(
            key().verify(&forged, "alice@contoso.com", NOW),
            Err(CookieError::BadSignature)
        );
    }

    #[test]
    fn cookie_altered_to_name_another_server_is_refused() {
        let value = key().issue("alice@contoso.com", &target(), NOW + 60);
        let altered = value.replace("~ex1~", "~ex3~");
        assert_ne!(altered, value);
        assert_eq!(
            key().verify(&altered, "alice@contoso.com", NOW),
            Err(CookieError::BadSignature)
        );
        let longer = value.replace(&format!("~{}~", NOW + 60), &format!("~{}~", NOW + 9999));
        assert_eq!(
            key().verify(&longer, "alice@contoso.com", NOW),
            Err(CookieError::BadSignature)
        );
    }

    #[test]
    fn cookie_expired_is_refused() {
        let value = key().issue("alice@contoso.com", &target(), NOW);
        assert_eq!(
            key().verify(&value, "alice@contoso.com", NOW),
            Err(CookieError::Expired)
        );
        assert!(key().verify(&value, "alice@contoso.com", NOW - 1).is_ok());
    }

    #[test]
    fn cookie_replayed_by_another_user_is_refused() {
        let value = key().issue("alice@contoso.com", &target(), NOW + 60);
        assert_eq!(
            key().verify(&value, "mallory@contoso.com", NOW),
            Err(CookieError::OtherUser)
        );
        assert_eq!(key().verify(&value, "", NOW), Err(CookieError::OtherUser));
    }

    #[test]
    fn cookie_garbage_is_malformed() {
        for v in [
            "",
            "ex1",
            "1~m~x~ex1~1~2~zz",
            "2~m~00000000-0000-0000-0000-000000000000~ex1~1~ab~00",
            &"a".repeat(MAX_COOKIE_LEN + 1),
        ] {
            assert_eq!(
                key().verify(v, "alice@contoso.com", NOW),
                Err(CookieError::Malformed)
            );
        }
    }

    #[test]
    fn cookie_key_needs_32_bytes() {
        assert_eq!(
            CookieKey::new(&[0u8; 16]).err(),
            Some(CookieKeyError::TooShort { len: 16 })
        );
    }
}
