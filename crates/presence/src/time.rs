//! Wall-clock instants as they appear in presence documents.

use std::fmt;

use crate::BodyError;

/// A UTC instant with millisecond precision, as carried by PIDF `<timestamp>`, RPID
/// `last-input`/`from`/`until`, and MS-PRES `publishTime`/`lastActive`.
///
/// This crate never reads a clock: the engine stamps publications with a `Timestamp` it took
/// from its runtime, and uses `std::time::Instant` for everything that only measures
/// intervals. Parsing accepts RFC 3339 with any offset, and also the zone-less
/// `2012-07-12T13:58:54.237` Lync servers emit (read as UTC); rendering is always RFC 3339 in
/// UTC with a `Z`, which every consumer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `millis` milliseconds after 1970-01-01T00:00:00Z.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time (offset optional, fractional seconds truncated to ms).
    pub fn parse(s: &str) -> Result<Self, BodyError> {
        parse_rfc3339(s.trim()).ok_or_else(|| BodyError::invalid("timestamp", s))
    }

    /// Years 0000..=9999 render in four digits; the parser accepts exactly that range.
    pub const MIN: Self = Self(-62_167_219_200_000);
    /// The last millisecond of 9999-12-31.
    pub const MAX: Self = Self(253_402_300_799_999);
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0.clamp(Self::MIN.0, Self::MAX.0);
        let days = t.div_euclid(86_400_000);
        let ms_of_day = t.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        let ms = ms_of_day % 1000;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                ms = ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        for _ in digits..3 {
            ms *= 10;
        }
    }
    let offset_min = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 60 + om;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_min * 60;
    Some(Timestamp(secs * 1000 + ms))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3863_section_4_1_7_timestamp_parses() {
        let t = Timestamp::parse("2001-10-27T16:49:29Z").expect("valid");
        assert_eq!(t.unix_millis(), 1_004_201_369_000);
        assert_eq!(t.to_string(), "2001-10-27T16:49:29Z");
    }

    #[test]
    fn offsets_and_fractions_normalise_to_utc() {
        let t = Timestamp::parse("2004-10-21T13:20:00.000-05:00").expect("valid");
        assert_eq!(t.to_string(), "2004-10-21T18:20:00Z");
        let lync = Timestamp::parse("2012-07-12T13:58:54.237").expect("valid");
        assert_eq!(lync.to_string(), "2012-07-12T13:58:54.237Z");
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2001-13-01T00:00:00Z",
            "2001-02-30T00:00:00Z",
            "2001-01-01T00:00:00+5",
            "x",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn extremes_round_trip() {
        for t in [
            Timestamp::MIN,
            Timestamp::MAX,
            Timestamp::from_unix_millis(0),
        ] {
            assert_eq!(Timestamp::parse(&t.to_string()).expect("renders valid"), t);
        }
    }
}
