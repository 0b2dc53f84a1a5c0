//! Retransmission timing of a non-INVITE client transaction over UDP (RFC 3261 §17.1.2.2):
//! Timer E starts at T1 and doubles up to T2 (T2 at once after a provisional response), Timer F
//! ends the transaction. A benchmark may turn retransmission off and shorten Timer F, so that a
//! lost request is a timeout after a fixed time rather than a latency outlier.

use std::time::{Duration, Instant};

/// Timer values; the defaults are RFC 3261's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1, the first retransmission interval (RTT estimate): 500 ms.
    pub t1: Duration,
    /// T2, the longest retransmission interval for non-INVITE requests: 4 s.
    pub t2: Duration,
    /// Timer F, after which the transaction times out: 64·T1 = 32 s.
    pub timeout: Duration,
    /// Whether to retransmit at all (Timer E); without it only Timer F runs.
    pub retransmit: bool,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            timeout: Duration::from_secs(32),
            retransmit: true,
        }
    }
}

/// The timing state of one outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTransaction {
    /// When the request was first sent: latency is measured from here.
    pub first_sent: Instant,
    interval: Duration,
    deadline: Instant,
}

/// What to do when a transaction's timer fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fire {
    /// Send the request again and set the timer for this instant.
    Retransmit(Instant),
    /// Timer F: the transaction failed.
    TimedOut,
}

impl ClientTransaction {
    /// A transaction whose request is sent at `now`, and when its timer first fires.
    pub fn start(now: Instant, config: &TimerConfig) -> (Self, Instant) {
        let deadline = now + config.timeout;
        let txn = ClientTransaction {
            first_sent: now,
            interval: config.t1,
            deadline,
        };
        (txn, txn.next_fire(now, config))
    }

    /// A provisional response arrived: retransmit at T2 from now on (RFC 3261 §17.1.2.2).
    pub fn proceeding(&mut self, config: &TimerConfig) {
        self.interval = config.t2;
    }

    /// The timer fired at `now`.
    pub fn fire(&mut self, now: Instant, config: &TimerConfig) -> Fire {
        if now >= self.deadline || !config.retransmit {
            return Fire::TimedOut;
        }
        self.interval = (self.interval * 2).min(config.t2);
        Fire::Retransmit(self.next_fire(now, config))
    }

    /// One interval from now if retransmitting (the interval for the *next* fire was already
    /// doubled), and never past Timer F.
    fn next_fire(&self, now: Instant, config: &TimerConfig) -> Instant {
        if config.retransmit {
            (now + self.interval.min(config.t2)).min(self.deadline)
        } else {
            self.deadline
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rfc3261_section_17_1_2_2_timer_e_doubles_up_to_t2_then_timer_f() {
        let config = TimerConfig::default();
        let t0 = Instant::now();
        let (mut txn, mut at) = ClientTransaction::start(t0, &config);
        let mut fires = Vec::new();
        while let Fire::Retransmit(next) = txn.fire(at, &config) {
            fires.push((at - t0).as_millis());
            at = next;
        }
        assert_eq!(at - t0, ms(32_000));
        assert_eq!(
            fires,
            [
                500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
            ]
        );
    }

    #[test]
    fn rfc3261_section_17_1_2_2_provisional_moves_to_t2() {
        let config = TimerConfig::default();
        let t0 = Instant::now();
        let (mut txn, first) = ClientTransaction::start(t0, &config);
        txn.proceeding(&config);
        assert_eq!(txn.fire(first, &config), Fire::Retransmit(first + ms(4000)));
    }

    #[test]
    fn without_retransmission_only_the_timeout_fires() {
        let config = TimerConfig {
            retransmit: false,
            timeout: ms(1000),
            ..TimerConfig::default()
        };
        let t0 = Instant::now();
        let (mut txn, at) = ClientTransaction::start(t0, &config);
        assert_eq!(at, t0 + ms(1000));
        assert_eq!(txn.fire(at, &config), Fire::TimedOut);
    }
}
