//! The primitives NTLM is built from ([MS-NLMP] §6): MD4, MD5, HMAC-MD5, RC4, and the NT hash
//! the directory stores.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

/// MD4 of the UTF-16LE password ([MS-NLMP] §3.3.1 NTOWFv1): what the directory stores instead
/// of the password.
///
/// Everything the acceptor computes (NTOWFv2, the session keys) needs only this value, so a
/// server that stores it never has to keep a plain-text password. It is still a password
/// equivalent for NTLM: protect it like one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NtHash(pub [u8; 16]);

impl NtHash {
    /// The NT hash of `password`.
    pub fn from_password(password: &str) -> Self {
        let mut md4 = Md4::new();
        for unit in password.encode_utf16() {
            md4.update(unit.to_le_bytes());
        }
        Self(md4.finalize().into())
    }

    /// The raw 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for NtHash {
    /// Redacted: the hash is a password equivalent and must not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NtHash(..)")
    }
}

/// Lower-case hex, the storage form.
impl fmt::Display for NtHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for NtHash {
    type Err = InvalidNtHash;

    /// 32 hex digits, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).map_err(|_| InvalidNtHash)?;
        Ok(Self(out))
    }
}

/// A stored NT hash that is not 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an NT hash is 32 hex digits")]
pub struct InvalidNtHash;

/// A Windows FILETIME: 100 ns ticks since 1601-01-01 UTC, the clock of NTLM timestamps.
///
/// The core never reads a clock; the caller converts its own `SystemTime` with
/// [`FileTime::from_system_time`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileTime(pub u64);

impl FileTime {
    /// Converts a wall-clock time; times before 1601 or past year 60056 saturate.
    pub fn from_system_time(time: SystemTime) -> Self {
        let ticks = match time.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => EPOCH_DIFF_TICKS.saturating_add(ticks_of(after)),
            Err(before) => EPOCH_DIFF_TICKS.saturating_sub(ticks_of(before.duration())),
        };
        Self(ticks)
    }

    /// The wall-clock time, for comparing a client's timestamp with the caller's clock.
    pub fn to_system_time(self) -> SystemTime {
        let since_unix = i128::from(self.0) - i128::from(EPOCH_DIFF_TICKS);
        let nanos = since_unix.unsigned_abs().saturating_mul(100);
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        // The remainder of a division by 10^9 always fits.
        let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
        let span = Duration::new(secs, sub);
        if since_unix >= 0 {
            SystemTime::UNIX_EPOCH
                .checked_add(span)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        } else {
            SystemTime::UNIX_EPOCH
                .checked_sub(span)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }
}

fn ticks_of(d: Duration) -> u64 {
    u64::try_from(d.as_nanos() / 100).unwrap_or(u64::MAX)
}

/// 1601-01-01 to 1970-01-01 in 100 ns ticks.
const EPOCH_DIFF_TICKS: u64 = 116_444_736_000_000_000;

pub(crate) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
    }
    md5.finalize().into()
}

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Md5> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// RC4 ([MS-NLMP] §6 RC4K/RC4): implemented here because NTLM keys it with 5-, 7- and 16-byte
/// keys and re-keys it per message in connectionless mode, which a fixed-size-key cipher API
/// makes awkward.
pub(crate) struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// Key schedule; `key` must not be empty (every NTLM key is at least 5 bytes).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut s = [0u8; 256];
        for (i, b) in s.iter_mut().enumerate() {
            *b = i as u8;
        }
        if !key.is_empty() {
            let mut j: u8 = 0;
            for i in 0..256 {
                j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
                s.swap(i, usize::from(j));
            }
        }
        Self { s, i: 0, j: 0 }
    }

    pub(crate) fn apply(&mut self, data: &mut [u8]) {
        for byte in data {
            self.i = self.i.wrapping_add(1);
            self.j = self.j.wrapping_add(self.s[usize::from(self.i)]);
            self.s.swap(usize::from(self.i), usize::from(self.j));
            let k = self.s[usize::from(
                self.s[usize::from(self.i)].wrapping_add(self.s[usize::from(self.j)]),
            )];
            *byte ^= k;
        }
    }
}

/// RC4K(key, data): one-shot encryption with a fresh key schedule.
pub(crate) fn rc4k<const N: usize>(key: &[u8], mut data: [u8; N]) -> [u8; N] {
    Rc4::new(key).apply(&mut data);
    data
}

/// NTOWFv2 ([MS-NLMP] §3.3.2): HMAC_MD5(NT hash, UNICODE(Uppercase(User) + UserDom)).
pub(crate) fn ntowfv2(nt_hash: &NtHash, upper_user: &str, domain: &str) -> [u8; 16] {
    let mut text = Vec::with_capacity(2 * (upper_user.len() + domain.len()));
    for unit in upper_user.encode_utf16().chain(domain.encode_utf16()) {
        text.extend_from_slice(&unit.to_le_bytes());
    }
    hmac_md5(&nt_hash.0, &[&text])
}

/// The spellings of Uppercase(User) a client may have used.
///
/// Windows upper-cases code point by code point (RtlUpcaseUnicodeString); SIPE upper-cases
/// ASCII only (`g_ascii_toupper`). They differ only for non-ASCII names, where both are tried.
pub(crate) fn upper_user_candidates(user: &str) -> Vec<String> {
    let ascii = user.to_ascii_uppercase();
    let simple: String = user
        .chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                // A one-to-many mapping (ß → SS) is not a simple case mapping: keep the char.
                _ => c,
            }
        })
        .collect();
    if simple == ascii {
        vec![ascii]
    } else {
        vec![simple, ascii]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_nlmp_section_4_2_2_1_2_ntowfv1() {
        assert_eq!(
            NtHash::from_password("Password").to_string(),
            "a4f49c406510bdcab6824ee7c30fd852"
        );
    }

    #[test]
    fn ms_nlmp_section_4_2_4_1_1_ntowfv2() {
        let key = ntowfv2(&NtHash::from_password("Password"), "USER", "Domain");
        assert_eq!(hex::encode(key), "0c868a403bfd7a93a3001ef22ef02e3f");
    }

    #[test]
    fn rfc1320_md4_and_rfc2202_hmac_md5() {
        let mut md4 = Md4::new();
        md4.update(b"message digest");
        assert_eq!(
            hex::encode(md4.finalize()),
            "d9130a8164549fe818874806e1c7014b"
        );
        assert_eq!(
            hex::encode(hmac_md5(&[0x0b; 16], &[b"Hi There"])),
            "9294727a3638bb1c13f48ef8158bfc9d"
        );
    }

    #[test]
    fn rc4_rfc6229_first_bytes() {
        // RFC 6229, key 0x0102030405 (40 bits), keystream offset 0.
        let out = rc4k(&[1, 2, 3, 4, 5], [0u8; 16]);
        assert_eq!(hex::encode(out), "b2396305f03dc027ccc3524a0a1118a8");
    }

    #[test]
    fn nt_hash_text_round_trip_and_redacted_debug() {
        let hash = NtHash::from_password("Pa$$word");
        assert_eq!(hash.to_string().parse::<NtHash>(), Ok(hash));
        assert_eq!(hash.to_string().to_uppercase().parse::<NtHash>(), Ok(hash));
        assert_eq!("zz".parse::<NtHash>(), Err(InvalidNtHash));
        assert_eq!(format!("{hash:?}"), "NtHash(..)");
    }

    #[test]
    fn filetime_round_trips_the_unix_epoch() {
        let t = FileTime::from_system_time(SystemTime::UNIX_EPOCH);
        assert_eq!(t, FileTime(EPOCH_DIFF_TICKS));
        assert_eq!(t.to_system_time(), SystemTime::UNIX_EPOCH);
        // The SIPE capture's timestamp: Mon Mar 01 2010 10:08:08 UTC (0x01CAB927179A5159).
        let captured = FileTime(0x01CA_B927_179A_5159).to_system_time();
        let secs = captured
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(secs, 1_267_438_088);
    }

    #[test]
    fn upper_user_tries_both_spellings_only_when_they_differ() {
        assert_eq!(upper_user_candidates("alice"), vec!["ALICE".to_owned()]);
        assert_eq!(
            upper_user_candidates("jörg"),
            vec!["JÖRG".to_owned(), "JöRG".to_owned()]
        );
        assert_eq!(upper_user_candidates("ß"), vec!["ß".to_owned()]);
    }
}
