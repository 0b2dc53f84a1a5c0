//! Stateless nonces (RFC 7616 §3.3, §5.4): the nonce carries its own issue time and a MAC, so any
//! process holding the secret can tell a genuine, fresh nonce from a forged or stale one without
//! remembering what it issued.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::CryptoRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Issues and opens nonces under one server secret.
///
/// Times are kept as milliseconds since `epoch`, an [`Instant`] the caller fixes when it creates
/// the key; nonces therefore do not survive a restart (they open as [`NonceError::Forged`] and
/// the client is simply challenged again).
#[derive(Clone)]
pub(crate) struct NonceKey {
    secret: [u8; 32],
    epoch: Instant,
}

/// What an authentic nonce says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenedNonce {
    /// Identifies the nonce in the nonce-count table: issue time plus the random part.
    pub(crate) id: NonceId,
    pub(crate) issued: Instant,
}

/// The MAC-covered body of a nonce, compact enough to key the replay table with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NonceId(pub(crate) [u8; PAYLOAD_LEN]);

/// Why a nonce was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NonceError {
    /// Not one of ours: wrong shape, wrong MAC, another realm, or from before a restart.
    Forged,
    /// Ours, but older than the lifetime: re-challenge with `stale=true`.
    Expired,
}

impl NonceKey {
    pub(crate) fn new(secret: [u8; 32], epoch: Instant) -> Self {
        NonceKey { secret, epoch }
    }

    /// A fresh nonce for `realm`, in lowercase hex so it needs no escaping in a quoted-string.
    pub(crate) fn issue<R: CryptoRng + ?Sized>(
        &self,
        now: Instant,
        rng: &mut R,
        realm: &str,
    ) -> String {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[0] = VERSION;
        let ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        payload[1..9].copy_from_slice(&ms.to_be_bytes());
        rng.fill_bytes(&mut payload[9..]);
        let tag = self.tag(&payload, realm);
        let mut raw = [0u8; PAYLOAD_LEN + TAG_LEN];
        raw[..PAYLOAD_LEN].copy_from_slice(&payload);
        raw[PAYLOAD_LEN..].copy_from_slice(&tag);
        hex::encode(raw)
    }

    /// Checks authenticity first, then age, so a forged nonce never learns whether it would
    /// have been stale.
    pub(crate) fn open(
        &self,
        now: Instant,
        nonce: &str,
        realm: &str,
        lifetime: Duration,
    ) -> Result<OpenedNonce, NonceError> {
        let mut raw = [0u8; PAYLOAD_LEN + TAG_LEN];
        hex::decode_to_slice(nonce, &mut raw).map_err(|_| NonceError::Forged)?;
        let (payload, tag) = raw.split_at(PAYLOAD_LEN);
        let expected = self.tag(payload, realm);
        if !bool::from(expected.ct_eq(tag)) || payload[0] != VERSION {
            return Err(NonceError::Forged);
        }
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&payload[1..9]);
        let issued = self
            .epoch
            .checked_add(Duration::from_millis(u64::from_be_bytes(ms)))
            .filter(|issued| *issued <= now)
            .ok_or(NonceError::Forged)?;
        if now.duration_since(issued) >= lifetime {
            return Err(NonceError::Expired);
        }
        let mut id = [0u8; PAYLOAD_LEN];
        id.copy_from_slice(payload);
        Ok(OpenedNonce {
            id: NonceId(id),
            issued,
        })
    }

    /// An `opaque` bound to the secret and realm: stateless, and a mismatch shows the client
    /// mixed up challenges.
    pub(crate) fn opaque(&self, realm: &str) -> String {
        hex::encode(&self.mac(&[b"opaque", realm.as_bytes()])[..16])
    }

    /// A per-process HA1 stand-in of the right length for unknown users, unguessable so that
    /// nobody can authenticate as a user who does not exist.
    pub(crate) fn dummy_ha1(&self, hex_len: usize) -> String {
        let mut out = hex::encode(self.mac(&[b"dummy-ha1", b"1"]));
        out.push_str(&hex::encode(self.mac(&[b"dummy-ha1", b"2"])));
        out.truncate(hex_len);
        out
    }

    fn tag(&self, payload: &[u8], realm: &str) -> [u8; TAG_LEN] {
        let mac = self.mac(&[b"nonce", payload, realm.as_bytes()]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&mac[..TAG_LEN]);
        tag
    }

    /// HMAC-SHA-256 over length-prefixed parts, so part boundaries cannot be shifted.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey").finish_non_exhaustive()
    }
}

const VERSION: u8 = 1;
/// Version, 8 bytes of issue time, 16 random bytes.
const PAYLOAD_LEN: usize = 1 + 8 + 16;
/// HMAC-SHA-256 truncated to 128 bits: forging needs 2^128 work, and the nonce stays short.
const TAG_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const LIFETIME: Duration = Duration::from_secs(300);

    fn key(t0: Instant) -> NonceKey {
        NonceKey::new([7; 32], t0)
    }

    #[test]
    fn rfc7616_section_5_4_genuine_nonce_opens_until_it_expires() {
        let t0 = Instant::now();
        let k = key(t0);
        let mut rng = StdRng::seed_from_u64(1);
        let issued_at = t0 + Duration::from_secs(10);
        let nonce = k.issue(issued_at, &mut rng, "example.com");
        assert_eq!(nonce.len(), 2 * (PAYLOAD_LEN + TAG_LEN));
        let opened = k.open(issued_at + LIFETIME / 2, &nonce, "example.com", LIFETIME);
        assert_eq!(opened.map(|o| o.issued), Ok(issued_at));
        assert_eq!(
            k.open(issued_at + LIFETIME, &nonce, "example.com", LIFETIME),
            Err(NonceError::Expired)
        );
    }

    #[test]
    fn rfc7616_section_5_4_altered_or_foreign_nonce_is_forged() {
        let t0 = Instant::now();
        let k = key(t0);
        let mut rng = StdRng::seed_from_u64(2);
        let nonce = k.issue(t0, &mut rng, "example.com");
        // Moving the issue time forward to dodge expiry breaks the MAC.
        let mut altered = nonce.clone().into_bytes();
        altered[17] = if altered[17] == b'f' { b'e' } else { b'f' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(
            k.open(t0, &altered, "example.com", LIFETIME),
            Err(NonceError::Forged)
        );
        // Another realm, another secret, garbage, empty.
        assert_eq!(
            k.open(t0, &nonce, "other.com", LIFETIME),
            Err(NonceError::Forged)
        );
        let other = NonceKey::new([8; 32], t0);
        assert_eq!(
            other.open(t0, &nonce, "example.com", LIFETIME),
            Err(NonceError::Forged)
        );
        assert_eq!(
            k.open(t0, "zz", "example.com", LIFETIME),
            Err(NonceError::Forged)
        );
        assert_eq!(
            k.open(t0, "", "example.com", LIFETIME),
            Err(NonceError::Forged)
        );
    }

    #[test]
    fn nonces_are_unique() {
        let t0 = Instant::now();
        let k = key(t0);
        let mut rng = StdRng::seed_from_u64(3);
        assert_ne!(k.issue(t0, &mut rng, "r"), k.issue(t0, &mut rng, "r"));
    }

    #[test]
    fn dummy_ha1_has_the_requested_length() {
        let k = key(Instant::now());
        assert_eq!(k.dummy_ha1(32).len(), 32);
        assert_eq!(k.dummy_ha1(64).len(), 64);
    }
}
