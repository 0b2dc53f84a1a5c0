//! Throttling of failed authentication attempts, per user and per source address, so that
//! online password guessing is slow whichever of the two an attacker varies.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Policy for [`Throttle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures tolerated before attempts are refused (each within `window` of the last).
    pub max_failures: u32,
    /// How long failures are remembered: a key with no failure for this long after its last
    /// failure or back-off starts over.
    pub window: Duration,
    /// Back-off after the `max_failures`-th failure; each further failure doubles it.
    pub initial_backoff: Duration,
    /// Ceiling of the back-off, so a locked-out legitimate user gets back in eventually.
    pub max_backoff: Duration,
    /// Most keys tracked per table (users, addresses); beyond it the key closest to being
    /// forgotten is evicted, so a flood of addresses cannot exhaust memory.
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures: 5,
            window: Duration::from_secs(300),
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            max_keys: 65_536,
        }
    }
}

/// Whether to look at an attempt's credentials at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Verify the credentials.
    Allowed,
    /// Refuse without verifying (e.g. 403 or 503 with Retry-After); trying again earlier than
    /// `retry_after` is refused too.
    Refused {
        /// Time until the longer of the user's and the address's back-off ends.
        retry_after: Duration,
    },
}

/// Failure counts with exponential back-off, keyed separately by user and source address.
///
/// Sans-IO: every call takes `now`. Memory is bounded by [`ThrottleConfig::max_keys`] per table;
/// entries also leave once forgotten, lazily on each record or via
/// [`Throttle::handle_timeout`].
///
/// A user key lets anyone who knows a username delay that user's logins; the back-off ceiling
/// bounds that, and the address key catches one source spraying many users.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    users: Table<String>,
    addresses: Table<IpAddr>,
}

impl Throttle {
    /// A throttle with no history.
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle {
            users: Table::new(config.max_keys),
            addresses: Table::new(config.max_keys),
            config,
        }
    }

    /// Asks before verifying, so a refused attempt costs no hashing and reveals nothing.
    pub fn check(&self, now: Instant, user: &str, ip: IpAddr) -> Decision {
        let user_wait = self.users.remaining(now, &user_key(user));
        let ip_wait = self.addresses.remaining(now, &ip);
        match user_wait.max(ip_wait) {
            Some(retry_after) => Decision::Refused { retry_after },
            None => Decision::Allowed,
        }
    }

    /// Counts a wrong password (or unknown user) against both keys.
    pub fn record_failure(&mut self, now: Instant, user: &str, ip: IpAddr) {
        self.users.fail(now, user_key(user), &self.config);
        self.addresses.fail(now, ip, &self.config);
    }

    /// Clears the user's history; the address keeps its own, so one valid account does not
    /// launder guesses against others from the same source.
    pub fn record_success(&mut self, now: Instant, user: &str, ip: IpAddr) {
        let _ = ip;
        self.users.remove(&user_key(user));
        self.users.prune(now);
    }

    /// When the next entry can be forgotten.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.users.poll_timeout(), self.addresses.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets entries whose history no longer matters.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.users.prune(now);
        self.addresses.prune(now);
    }

    /// How many users and addresses are tracked, for metrics.
    pub fn tracked(&self) -> (usize, usize) {
        (self.users.entries.len(), self.addresses.entries.len())
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    blocked_until: Option<Instant>,
    forget_at: Instant,
}

/// One key space, with an index by forget time for pruning and eviction.
#[derive(Debug)]
struct Table<K> {
    cap: usize,
    entries: HashMap<K, Entry>,
    by_forget: BTreeSet<(Instant, K)>,
}

impl<K: Hash + Ord + Clone> Table<K> {
    fn new(cap: usize) -> Self {
        Table {
            cap: cap.max(1),
            entries: HashMap::new(),
            by_forget: BTreeSet::new(),
        }
    }

    fn remaining(&self, now: Instant, key: &K) -> Option<Duration> {
        let until = self.entries.get(key)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    fn fail(&mut self, now: Instant, key: K, config: &ThrottleConfig) {
        self.prune(now);
        let fresh = Entry {
            failures: 0,
            blocked_until: None,
            forget_at: now,
        };
        let mut entry = match self.entries.get(&key) {
            Some(entry) => {
                self.by_forget.remove(&(entry.forget_at, key.clone()));
                *entry
            }
            None => {
                if self.entries.len() >= self.cap
                    && let Some((_, evicted)) = self.by_forget.pop_first()
                {
                    self.entries.remove(&evicted);
                }
                fresh
            }
        };
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= config.max_failures.max(1) {
            let doublings = entry.failures - config.max_failures.max(1);
            let backoff = config
                .initial_backoff
                .checked_mul(2u32.saturating_pow(doublings))
                .unwrap_or(config.max_backoff)
                .min(config.max_backoff);
            entry.blocked_until = Some(now + backoff);
        }
        entry.forget_at = entry.blocked_until.unwrap_or(now).max(now) + config.window;
        self.by_forget.insert((entry.forget_at, key.clone()));
        self.entries.insert(key, entry);
    }

    fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_forget.remove(&(entry.forget_at, key.clone()));
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.by_forget.first().map(|(at, _)| *at)
    }

    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.by_forget.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.by_forget.pop_first() {
                self.entries.remove(&key);
            }
        }
    }
}

/// Bounds a user key taken from the network; truncation only merges very long names.
fn user_key(user: &str) -> String {
    let mut end = user.len().min(MAX_USER_KEY);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_owned()
}

const MAX_USER_KEY: usize = 256;

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn backoff_starts_after_max_failures_and_doubles_to_the_cap() {
        let t0 = Instant::now();
        let mut th = Throttle::new(ThrottleConfig::default());
        for _ in 0..4 {
            th.record_failure(t0, "alice", IP);
            assert_eq!(th.check(t0, "alice", IP), Decision::Allowed);
        }
        th.record_failure(t0, "alice", IP);
        assert_eq!(
            th.check(t0, "alice", IP),
            Decision::Refused {
                retry_after: secs(5)
            }
        );
        assert_eq!(
            th.check(t0 + secs(4), "alice", IP),
            Decision::Refused {
                retry_after: secs(1)
            }
        );
        let mut now = t0 + secs(5);
        assert_eq!(th.check(now, "alice", IP), Decision::Allowed);
        for expected in [10, 20, 40, 80, 160, 300, 300] {
            th.record_failure(now, "alice", IP);
            assert_eq!(
                th.check(now, "alice", IP),
                Decision::Refused {
                    retry_after: secs(expected)
                }
            );
            now += secs(expected);
        }
    }

    #[test]
    fn user_and_address_are_throttled_separately() {
        let t0 = Instant::now();
        let mut th = Throttle::new(ThrottleConfig::default());
        // One address guessing many users is caught by the address key.
        for i in 0..5 {
            th.record_failure(t0, &format!("user{i}"), IP);
        }
        assert!(matches!(
            th.check(t0, "newuser", IP),
            Decision::Refused { .. }
        ));
        assert_eq!(th.check(t0, "newuser", OTHER_IP), Decision::Allowed);
        // Many addresses guessing one user are caught by the user key.
        let mut th = Throttle::new(ThrottleConfig::default());
        for i in 0..5 {
            th.record_failure(t0, "bob", IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)));
        }
        assert!(matches!(
            th.check(t0, "bob", OTHER_IP),
            Decision::Refused { .. }
        ));
        assert_eq!(th.check(t0, "carol", OTHER_IP), Decision::Allowed);
    }

    #[test]
    fn success_resets_the_user_but_not_the_address() {
        let t0 = Instant::now();
        let mut th = Throttle::new(ThrottleConfig::default());
        for _ in 0..4 {
            th.record_failure(t0, "alice", IP);
        }
        th.record_success(t0, "alice", IP);
        th.record_failure(t0, "alice", OTHER_IP);
        assert_eq!(th.check(t0, "alice", OTHER_IP), Decision::Allowed);
        th.record_failure(t0, "mallory", IP);
        assert!(matches!(
            th.check(t0, "anyone", IP),
            Decision::Refused { .. }
        ));
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut th = Throttle::new(ThrottleConfig::default());
        for _ in 0..4 {
            th.record_failure(t0, "alice", IP);
        }
        assert_eq!(th.poll_timeout(), Some(t0 + secs(300)));
        th.handle_timeout(t0 + secs(300));
        assert_eq!(th.tracked(), (0, 0));
        th.record_failure(t0 + secs(300), "alice", IP);
        assert_eq!(th.check(t0 + secs(300), "alice", IP), Decision::Allowed);
    }

    #[test]
    fn memory_is_bounded_by_evicting_the_oldest() {
        let t0 = Instant::now();
        let mut th = Throttle::new(ThrottleConfig {
            max_keys: 3,
            ..ThrottleConfig::default()
        });
        for i in 0..10u8 {
            th.record_failure(
                t0 + secs(u64::from(i)),
                &format!("u{i}"),
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)),
            );
        }
        assert_eq!(th.tracked(), (3, 3));
        // A blocked key outlives idle ones under eviction pressure.
        let mut th = Throttle::new(ThrottleConfig {
            max_keys: 3,
            ..ThrottleConfig::default()
        });
        for _ in 0..5 {
            th.record_failure(t0, "victim-of-guessing", IP);
        }
        for i in 0..10u8 {
            th.record_failure(t0, &format!("u{i}"), OTHER_IP);
        }
        let fresh_ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
        assert!(matches!(
            th.check(t0, "victim-of-guessing", fresh_ip),
            Decision::Refused { .. }
        ));
    }

    #[test]
    fn long_user_names_are_bounded() {
        assert_eq!(user_key(&"é".repeat(200)).len(), 256);
    }
}
