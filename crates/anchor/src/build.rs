//! Exchange build numbers, the releases they name, and the rule that decides whether
//! management-shell sessions are anchored.
//!
//! An organisation's behaviour depends on its oldest server: Exchange 2013 CU11 and 2016 CU1
//! moved Remote PowerShell onto mailbox anchoring, but only once *every* server runs such a
//! build ("EMS changes", Dec-2015 updates). A mixed organisation keeps the older
//! version-based routing, which is why [`ShellRouting::for_servers`] looks at all of them.
//!
//! The release table comes from Microsoft's `ExchangeBuildNumbers.csv`
//! (microsoft/Get-ExchangeBuildNumber), the source the fact brief cites in §5.
//!
//! Note on a documented conflict (brief §3.2): later material reports that 2013 CU12 and
//! 2016 RTM/CU1 reverted the final behaviour to version-based routing. herald implements the
//! rule as the December 2015 announcement states it and as issue 5 asks.

use std::fmt;
use std::str::FromStr;

/// An Exchange build such as `15.0.1156.6`, ordered the way Exchange releases are.
///
/// Kept as four numbers rather than a string so that `15.00.1497.002` (the CSV's padded
/// spelling) and `15.0.1497.2` are the same build, and comparisons are numeric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuildNumber {
    major: u16,
    minor: u16,
    build: u16,
    revision: u16,
}

impl BuildNumber {
    /// Exchange Server 2013 Cumulative Update 11: the first 2013 build that anchors
    /// management-shell sessions.
    pub const EXCHANGE_2013_CU11: BuildNumber = BuildNumber::new(15, 0, 1156, 6);
    /// Exchange Server 2016 Cumulative Update 1: the first 2016 build that anchors
    /// management-shell sessions (2016 RTM does not).
    pub const EXCHANGE_2016_CU1: BuildNumber = BuildNumber::new(15, 1, 396, 30);

    /// Builds a number from its parts; used for constants and tests.
    pub const fn new(major: u16, minor: u16, build: u16, revision: u16) -> Self {
        Self {
            major,
            minor,
            build,
            revision,
        }
    }

    /// The product line (`15.0` is Exchange 2013), which decides which cut-off applies.
    pub fn product(&self) -> Option<Product> {
        match (self.major, self.minor) {
            (8, _) => Some(Product::Exchange2007),
            (14, _) => Some(Product::Exchange2010),
            (15, 0) => Some(Product::Exchange2013),
            (15, 1) => Some(Product::Exchange2016),
            (15, 2) => Some(Product::Exchange2019),
            _ => None,
        }
    }

    /// The release name (`Exchange 2013 CU11`) when the build is one the table knows exactly;
    /// security updates and unknown builds have none and are shown as numbers.
    pub fn release_name(&self) -> Option<&'static str> {
        RELEASES
            .binary_search_by(|(b, _)| b.cmp(self))
            .ok()
            .map(|i| RELEASES[i].1)
    }

    /// How an administrator reads the build: `15.0.1156.6 (Exchange 2013 CU11)`, or just the
    /// number when it has no name.
    pub fn describe(&self) -> String {
        match self.release_name() {
            Some(name) => format!("{self} ({name})"),
            None => self.to_string(),
        }
    }

    /// Whether this server, on its own, has the anchored management-shell behaviour: at or
    /// above 2013 CU11 on the 2013 line, 2016 CU1 on the 2016 line; later product lines have it
    /// and earlier ones never do.
    pub fn anchors_management_shell(&self) -> bool {
        match (self.major, self.minor) {
            (15, 0) => *self >= Self::EXCHANGE_2013_CU11,
            (15, 1) => *self >= Self::EXCHANGE_2016_CU1,
            (major, minor) => (major, minor) > (15, 1),
        }
    }
}

impl fmt::Display for BuildNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.build, self.revision
        )
    }
}

impl FromStr for BuildNumber {
    type Err = BuildParseError;

    /// Accepts `major.minor.build[.revision]`, each part decimal (leading zeros allowed, as in
    /// `15.00.1497.002`); a missing revision is 0, as in the encoded versions of override
    /// cookies (`15.0.775`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > MAX_BUILD_LEN {
            return Err(BuildParseError::Length);
        }
        let mut parts = [0u16; 4];
        let mut count = 0;
        for piece in s.split('.') {
            if count == parts.len() {
                return Err(BuildParseError::TooManyParts);
            }
            if piece.is_empty() || !piece.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BuildParseError::NotANumber { part: count + 1 });
            }
            parts[count] = piece
                .parse()
                .map_err(|_| BuildParseError::OutOfRange { part: count + 1 })?;
            count += 1;
        }
        if count < 3 {
            return Err(BuildParseError::TooFewParts);
        }
        Ok(Self::new(parts[0], parts[1], parts[2], parts[3]))
    }
}

/// Why a build number was refused; each says which part is at fault so the CLI can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildParseError {
    /// Empty, or longer than any real build number (23 characters).
    #[error("a build number is 1 to {MAX_BUILD_LEN} characters, like 15.0.1156.6")]
    Length,
    /// Fewer than three dotted parts.
    #[error("a build number has three or four dotted parts, like 15.0.1156.6")]
    TooFewParts,
    /// More than four dotted parts.
    #[error("a build number has at most four dotted parts, like 15.0.1156.6")]
    TooManyParts,
    /// A part is empty or holds something other than decimal digits.
    #[error("part {part} of the build number is not a decimal number")]
    NotANumber {
        /// 1-based position of the offending part.
        part: usize,
    },
    /// A part does not fit in 16 bits (no Exchange build part does).
    #[error("part {part} of the build number is larger than 65535")]
    OutOfRange {
        /// 1-based position of the offending part.
        part: usize,
    },
}

/// The Exchange product lines herald can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Product {
    /// Version 8.
    Exchange2007,
    /// Version 14.
    Exchange2010,
    /// Version 15.0.
    Exchange2013,
    /// Version 15.1.
    Exchange2016,
    /// Version 15.2.
    Exchange2019,
}

/// How the front door routes management-shell (`/powershell`) sessions for the whole
/// organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellRouting {
    /// Every server is at or above 2013 CU11 / 2016 CU1: a session follows the admin's
    /// mailbox, or the arbitration mailbox for an admin without one.
    Anchored,
    /// At least one server predates the change: the session goes to the local or any available
    /// server (version-based routing), so the cmdlets an admin sees depend on that server.
    VersionBased {
        /// The oldest build that holds the organisation back, for the diagnostic header.
        oldest: BuildNumber,
    },
}

impl ShellRouting {
    /// Applies the "every server" rule to the organisation's builds. An organisation without
    /// servers is anchored vacuously; it has nowhere to route either way.
    pub fn for_servers<'a>(builds: impl IntoIterator<Item = &'a BuildNumber>) -> Self {
        let oldest_behind = builds
            .into_iter()
            .filter(|b| !b.anchors_management_shell())
            .min();
        match oldest_behind {
            Some(oldest) => Self::VersionBased { oldest: *oldest },
            None => Self::Anchored,
        }
    }
}

/// Longer than `65535.65535.65535.65535` (23 characters) cannot be a build number.
const MAX_BUILD_LEN: usize = 23;

/// Known releases, sorted by build so [`BuildNumber::release_name`] can binary-search.
/// Exchange 2013 CU4 shipped as "Service Pack 1".
const RELEASES: &[(BuildNumber, &str)] = &[
    (BuildNumber::new(8, 3, 445, 0), "Exchange 2007 SP3 RU18"),
    (BuildNumber::new(14, 3, 279, 2), "Exchange 2010 SP3 RU12"),
    (BuildNumber::new(15, 0, 516, 32), "Exchange 2013 RTM"),
    (BuildNumber::new(15, 0, 620, 29), "Exchange 2013 CU1"),
    (BuildNumber::new(15, 0, 712, 24), "Exchange 2013 CU2"),
    (BuildNumber::new(15, 0, 775, 38), "Exchange 2013 CU3"),
    (BuildNumber::new(15, 0, 847, 32), "Exchange 2013 SP1 (CU4)"),
    (BuildNumber::new(15, 0, 913, 22), "Exchange 2013 CU5"),
    (BuildNumber::new(15, 0, 995, 29), "Exchange 2013 CU6"),
    (BuildNumber::new(15, 0, 1044, 25), "Exchange 2013 CU7"),
    (BuildNumber::new(15, 0, 1076, 9), "Exchange 2013 CU8"),
    (BuildNumber::new(15, 0, 1104, 5), "Exchange 2013 CU9"),
    (BuildNumber::new(15, 0, 1130, 7), "Exchange 2013 CU10"),
    (BuildNumber::new(15, 0, 1156, 6), "Exchange 2013 CU11"),
    (BuildNumber::new(15, 0, 1178, 4), "Exchange 2013 CU12"),
    (BuildNumber::new(15, 0, 1210, 3), "Exchange 2013 CU13"),
    (BuildNumber::new(15, 0, 1236, 3), "Exchange 2013 CU14"),
    (BuildNumber::new(15, 0, 1263, 5), "Exchange 2013 CU15"),
    (BuildNumber::new(15, 0, 1293, 2), "Exchange 2013 CU16"),
    (BuildNumber::new(15, 0, 1320, 4), "Exchange 2013 CU17"),
    (BuildNumber::new(15, 0, 1347, 2), "Exchange 2013 CU18"),
    (BuildNumber::new(15, 0, 1365, 1), "Exchange 2013 CU19"),
    (BuildNumber::new(15, 0, 1367, 3), "Exchange 2013 CU20"),
    (BuildNumber::new(15, 0, 1395, 4), "Exchange 2013 CU21"),
    (BuildNumber::new(15, 0, 1473, 3), "Exchange 2013 CU22"),
    (BuildNumber::new(15, 0, 1497, 2), "Exchange 2013 CU23"),
    (BuildNumber::new(15, 1, 225, 16), "Exchange 2016 Preview"),
    (BuildNumber::new(15, 1, 225, 42), "Exchange 2016 RTM"),
    (BuildNumber::new(15, 1, 396, 30), "Exchange 2016 CU1"),
    (BuildNumber::new(15, 1, 466, 34), "Exchange 2016 CU2"),
    (BuildNumber::new(15, 1, 544, 27), "Exchange 2016 CU3"),
    (BuildNumber::new(15, 1, 669, 32), "Exchange 2016 CU4"),
    (BuildNumber::new(15, 1, 845, 34), "Exchange 2016 CU5"),
    (BuildNumber::new(15, 1, 1034, 26), "Exchange 2016 CU6"),
    (BuildNumber::new(15, 1, 1261, 35), "Exchange 2016 CU7"),
    (BuildNumber::new(15, 1, 1415, 2), "Exchange 2016 CU8"),
    (BuildNumber::new(15, 1, 1466, 3), "Exchange 2016 CU9"),
    (BuildNumber::new(15, 1, 1531, 3), "Exchange 2016 CU10"),
    (BuildNumber::new(15, 1, 1591, 10), "Exchange 2016 CU11"),
    (BuildNumber::new(15, 1, 1713, 5), "Exchange 2016 CU12"),
    (BuildNumber::new(15, 1, 1779, 2), "Exchange 2016 CU13"),
    (BuildNumber::new(15, 1, 1847, 3), "Exchange 2016 CU14"),
    (BuildNumber::new(15, 1, 1913, 5), "Exchange 2016 CU15"),
    (BuildNumber::new(15, 1, 1979, 3), "Exchange 2016 CU16"),
    (BuildNumber::new(15, 1, 2044, 4), "Exchange 2016 CU17"),
    (BuildNumber::new(15, 1, 2106, 2), "Exchange 2016 CU18"),
    (BuildNumber::new(15, 1, 2176, 2), "Exchange 2016 CU19"),
    (BuildNumber::new(15, 1, 2242, 4), "Exchange 2016 CU20"),
    (BuildNumber::new(15, 1, 2308, 8), "Exchange 2016 CU21"),
    (BuildNumber::new(15, 1, 2375, 7), "Exchange 2016 CU22"),
    (BuildNumber::new(15, 1, 2507, 6), "Exchange 2016 CU23"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> BuildNumber {
        s.parse().expect("test build number parses")
    }

    #[test]
    fn parses_padded_and_three_part_builds() {
        assert_eq!(b("15.00.1497.002"), b("15.0.1497.2"));
        assert_eq!(b("15.0.775"), BuildNumber::new(15, 0, 775, 0));
        assert_eq!(b("15.0.1156.6").to_string(), "15.0.1156.6");
    }

    #[test]
    fn refuses_malformed_builds_precisely() {
        assert_eq!("".parse::<BuildNumber>(), Err(BuildParseError::Length));
        assert_eq!(
            "15.0".parse::<BuildNumber>(),
            Err(BuildParseError::TooFewParts)
        );
        assert_eq!(
            "1.2.3.4.5".parse::<BuildNumber>(),
            Err(BuildParseError::TooManyParts)
        );
        assert_eq!(
            "15.x.1.1".parse::<BuildNumber>(),
            Err(BuildParseError::NotANumber { part: 2 })
        );
        assert_eq!(
            "15..1.1".parse::<BuildNumber>(),
            Err(BuildParseError::NotANumber { part: 2 })
        );
        assert_eq!(
            "15.0.70000.1".parse::<BuildNumber>(),
            Err(BuildParseError::OutOfRange { part: 3 })
        );
        assert_eq!(
            "+15.0.1.1".parse::<BuildNumber>(),
            Err(BuildParseError::NotANumber { part: 1 })
        );
    }

    #[test]
    fn builds_order_numerically_not_lexically() {
        assert!(b("15.0.1156.6") > b("15.0.995.29"));
        assert!(b("15.0.1156.6") < b("15.0.1156.10"));
        assert!(b("15.1.225.42") > b("15.0.1497.2"));
        assert!(b("14.3.279.2") < b("15.0.516.32"));
    }

    #[test]
    fn release_table_is_sorted_for_binary_search() {
        assert!(RELEASES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn names_known_cumulative_updates() {
        assert_eq!(b("15.0.1156.6").release_name(), Some("Exchange 2013 CU11"));
        assert_eq!(b("15.1.396.30").release_name(), Some("Exchange 2016 CU1"));
        assert_eq!(b("15.0.620.29").release_name(), Some("Exchange 2013 CU1"));
        assert_eq!(b("15.0.1497.2").release_name(), Some("Exchange 2013 CU23"));
        assert_eq!(b("15.1.225.42").release_name(), Some("Exchange 2016 RTM"));
        assert_eq!(b("15.1.1531.3").release_name(), Some("Exchange 2016 CU10"));
        assert_eq!(
            b("15.0.1156.6").describe(),
            "15.0.1156.6 (Exchange 2013 CU11)"
        );
    }

    #[test]
    fn unknown_builds_render_as_numbers() {
        assert_eq!(b("15.0.1497.12").release_name(), None);
        assert_eq!(b("15.0.1497.12").describe(), "15.0.1497.12");
    }

    #[test]
    fn every_2013_cu_and_2016_cu_through_cu10_is_named() {
        for cu in 1..=23 {
            let want = if cu == 4 {
                "Exchange 2013 SP1 (CU4)".to_owned()
            } else {
                format!("Exchange 2013 CU{cu}")
            };
            assert!(RELEASES.iter().any(|(_, n)| *n == want), "{want} missing");
        }
        for cu in 1..=10 {
            let want = format!("Exchange 2016 CU{cu}");
            assert!(RELEASES.iter().any(|(_, n)| *n == want), "{want} missing");
        }
    }

    #[test]
    fn products_follow_major_and_minor() {
        assert_eq!(b("15.0.1156.6").product(), Some(Product::Exchange2013));
        assert_eq!(b("15.1.396.30").product(), Some(Product::Exchange2016));
        assert_eq!(b("14.3.279.2").product(), Some(Product::Exchange2010));
        assert_eq!(b("99.0.1.1").product(), None);
    }

    #[test]
    fn shell_anchoring_starts_at_2013_cu11_and_2016_cu1() {
        assert!(!b("15.0.1130.7").anchors_management_shell(), "2013 CU10");
        assert!(b("15.0.1156.6").anchors_management_shell(), "2013 CU11");
        assert!(b("15.0.1178.4").anchors_management_shell(), "2013 CU12");
        assert!(!b("15.1.225.42").anchors_management_shell(), "2016 RTM");
        assert!(b("15.1.396.30").anchors_management_shell(), "2016 CU1");
        assert!(b("15.2.221.12").anchors_management_shell(), "2019 RTM");
        assert!(!b("14.3.279.2").anchors_management_shell(), "2010 SP3 RU12");
    }

    #[test]
    fn shell_routing_is_anchored_only_when_every_server_is_new_enough() {
        let new = [b("15.0.1156.6"), b("15.1.396.30")];
        assert_eq!(ShellRouting::for_servers(&new), ShellRouting::Anchored);

        let mixed = [b("15.0.1156.6"), b("15.1.225.42"), b("15.0.1130.7")];
        assert_eq!(
            ShellRouting::for_servers(&mixed),
            ShellRouting::VersionBased {
                oldest: b("15.0.1130.7")
            }
        );
    }
}
