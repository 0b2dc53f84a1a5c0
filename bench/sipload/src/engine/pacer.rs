//! Open-loop pacing: the k-th unit of work is due at `start + k / rate`, whatever happened to the
//! earlier ones, so a slow server meets the offered load instead of slowing the generator down
//! (no coordinated omission). Work that is due but cannot start is counted by the caller, not
//! postponed.

use std::time::{Duration, Instant};

/// Schedule of `rate · duration` starts spread evenly over `duration`.
#[derive(Clone, Debug)]
pub struct Pacer {
    start: Instant,
    rate: f64,
    total: u64,
    issued: u64,
}

impl Pacer {
    /// `rate` per second from `start` for `duration`.
    pub fn new(start: Instant, rate: f64, duration: Duration) -> Self {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        Pacer {
            start,
            rate,
            total: (rate * duration.as_secs_f64()).round() as u64,
            issued: 0,
        }
    }

    /// How many starts are due at `now` and not yet handed out; they count as handed out.
    pub fn due(&mut self, now: Instant) -> u64 {
        let Some(elapsed) = now.checked_duration_since(self.start) else {
            return 0;
        };
        let planned = ((elapsed.as_secs_f64() * self.rate) as u64 + 1).min(self.total);
        let due = planned.saturating_sub(self.issued);
        self.issued += due;
        due
    }

    /// When the next start is due; `None` once all are handed out.
    pub fn next_at(&self) -> Option<Instant> {
        if self.issued >= self.total {
            return None;
        }
        Some(self.start + Duration::from_secs_f64(self.issued as f64 / self.rate))
    }

    /// Starts planned and not yet handed out.
    pub fn remaining(&self) -> u64 {
        self.total - self.issued
    }

    /// Starts planned in all.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_spread_evenly_and_total_is_bounded() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 1000.0, Duration::from_millis(10));
        assert_eq!(p.total(), 10);
        assert_eq!(p.due(t0), 1);
        assert_eq!(p.next_at(), Some(t0 + Duration::from_millis(1)));
        assert_eq!(p.due(t0 + Duration::from_micros(500)), 0);
        assert_eq!(p.due(t0 + Duration::from_micros(4500)), 4);
        // Late: the backlog is handed out at once, never more than the total.
        assert_eq!(p.due(t0 + Duration::from_secs(5)), 5);
        assert_eq!(p.next_at(), None);
        assert_eq!(p.due(t0 + Duration::from_secs(6)), 0);
    }

    #[test]
    fn nothing_before_the_start_and_zero_rate_is_idle() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0 + Duration::from_secs(1), 10.0, Duration::from_secs(1));
        assert_eq!(p.due(t0), 0);
        let mut idle = Pacer::new(t0, 0.0, Duration::from_secs(1));
        assert_eq!((idle.due(t0), idle.next_at()), (0, None));
        let mut nan = Pacer::new(t0, f64::NAN, Duration::from_secs(1));
        assert_eq!(nan.due(t0), 0);
    }
}
