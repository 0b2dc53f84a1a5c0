//! Nonce-count replay protection (RFC 7616 §3.4, §5.4): the highest `nc` seen per nonce, for as
//! long as the nonce lives, in bounded memory.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::nonce::NonceId;

/// Highest nonce-count per live nonce.
///
/// Entries leave when their nonce expires. When the table is full the oldest nonce is evicted
/// and a watermark remembers its issue time: any untracked nonce issued at or before the
/// watermark is then answered as stale, so eviction costs a re-challenge, never a replay.
#[derive(Debug)]
pub(crate) struct NonceCounts {
    lifetime: Duration,
    cap: usize,
    highest: HashMap<NonceId, u32>,
    by_issue: BTreeSet<(Instant, NonceId)>,
    evicted_through: Option<Instant>,
}

/// What a nonce-count says about the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    /// Higher than any seen: recorded.
    Fresh,
    /// Not higher than one already accepted.
    Replay,
    /// The nonce's history was evicted; only a new nonce can be trusted.
    Forgotten,
}

impl NonceCounts {
    pub(crate) fn new(lifetime: Duration, cap: usize) -> Self {
        NonceCounts {
            lifetime,
            cap: cap.max(1),
            highest: HashMap::new(),
            by_issue: BTreeSet::new(),
            evicted_through: None,
        }
    }

    /// Records `nc` for an authentic, unexpired nonce whose response already verified: only
    /// then, or an attacker could burn counts with garbage responses.
    pub(crate) fn check(&mut self, now: Instant, id: NonceId, issued: Instant, nc: u32) -> Count {
        self.handle_timeout(now);
        if let Some(highest) = self.highest.get_mut(&id) {
            if nc > *highest {
                *highest = nc;
                return Count::Fresh;
            }
            return Count::Replay;
        }
        if nc == 0 {
            return Count::Replay;
        }
        if self.evicted_through.is_some_and(|mark| issued <= mark) {
            return Count::Forgotten;
        }
        if self.highest.len() >= self.cap {
            match self.by_issue.first().copied() {
                Some((oldest, oldest_id)) if oldest < issued => {
                    self.by_issue.remove(&(oldest, oldest_id));
                    self.highest.remove(&oldest_id);
                    self.raise_watermark(oldest);
                }
                _ => {
                    self.raise_watermark(issued);
                    return Count::Forgotten;
                }
            }
        }
        self.highest.insert(id, nc);
        self.by_issue.insert((issued, id));
        Count::Fresh
    }

    /// When the oldest tracked nonce expires.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let (issued, _) = self.by_issue.first()?;
        issued.checked_add(self.lifetime)
    }

    /// Forgets expired nonces; their counts no longer matter since they open as stale.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(issued, id)) = self.by_issue.first() {
            if !self.is_expired(now, issued) {
                break;
            }
            self.by_issue.pop_first();
            self.highest.remove(&id);
        }
        if self
            .evicted_through
            .is_some_and(|mark| self.is_expired(now, mark))
        {
            self.evicted_through = None;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.highest.len()
    }

    fn is_expired(&self, now: Instant, issued: Instant) -> bool {
        now.saturating_duration_since(issued) >= self.lifetime
    }

    fn raise_watermark(&mut self, issued: Instant) {
        self.evicted_through = Some(self.evicted_through.map_or(issued, |m| m.max(issued)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_secs(300);

    fn id(n: u8) -> NonceId {
        NonceId([n; 25])
    }

    #[test]
    fn rfc7616_section_3_4_repeated_or_lower_nc_is_replay() {
        let t0 = Instant::now();
        let mut counts = NonceCounts::new(LIFETIME, 10);
        assert_eq!(counts.check(t0, id(1), t0, 1), Count::Fresh);
        assert_eq!(counts.check(t0, id(1), t0, 1), Count::Replay);
        assert_eq!(counts.check(t0, id(1), t0, 3), Count::Fresh);
        assert_eq!(counts.check(t0, id(1), t0, 2), Count::Replay);
        assert_eq!(counts.check(t0, id(2), t0, 0), Count::Replay);
    }

    #[test]
    fn entries_leave_when_their_nonce_expires() {
        let t0 = Instant::now();
        let mut counts = NonceCounts::new(LIFETIME, 10);
        counts.check(t0, id(1), t0, 1);
        let t1 = t0 + Duration::from_secs(100);
        counts.check(t1, id(2), t1, 1);
        assert_eq!(counts.poll_timeout(), Some(t0 + LIFETIME));
        counts.handle_timeout(t0 + LIFETIME);
        assert_eq!(counts.len(), 1);
        assert_eq!(counts.poll_timeout(), Some(t1 + LIFETIME));
        counts.handle_timeout(t1 + LIFETIME);
        assert_eq!(counts.len(), 0);
        assert_eq!(counts.poll_timeout(), None);
    }

    #[test]
    fn full_table_evicts_oldest_and_forgets_rather_than_allows_replay() {
        let t0 = Instant::now();
        let mut counts = NonceCounts::new(LIFETIME, 2);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(counts.check(at(3), id(1), at(1), 1), Count::Fresh);
        assert_eq!(counts.check(at(3), id(2), at(2), 1), Count::Fresh);
        assert_eq!(counts.check(at(3), id(3), at(3), 1), Count::Fresh);
        assert_eq!(counts.len(), 2);
        // id(1) was evicted: it cannot start over at nc=2.
        assert_eq!(counts.check(at(4), id(1), at(1), 2), Count::Forgotten);
        // A nonce older than everything tracked is not admitted into a full table.
        assert_eq!(counts.check(at(4), id(9), at(0), 1), Count::Forgotten);
        assert_eq!(counts.check(at(4), id(2), at(2), 2), Count::Fresh);
        // Once everything up to the watermark has expired, the watermark goes too.
        counts.handle_timeout(at(2) + LIFETIME);
        assert_eq!(counts.evicted_through, None);
    }
}
