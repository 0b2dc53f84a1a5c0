//! Timer values (RFC 3261 Table 4, RFC 6026 §8) and names.

use std::time::Duration;

/// The base timer values every §17 timer derives from.
///
/// The defaults are the RFC's. Lower T1 only on networks whose round-trip time is known to be
/// small (§17.1.1.1); every timeout (B, F, H, J, L, M = 64*T1) scales with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip time estimate; the first retransmission interval. Default 500 ms.
    pub t1: Duration,
    /// Cap on the retransmission interval of non-INVITE requests and INVITE responses.
    /// Default 4 s.
    pub t2: Duration,
    /// How long a message may remain in the network; how long a completed transaction lingers
    /// on an unreliable transport to absorb retransmissions (Timers I and K). Default 5 s.
    pub t4: Duration,
    /// Timer D on an unreliable transport: how long an INVITE client transaction keeps
    /// answering retransmitted non-2xx final responses with its ACK. The RFC asks for more than
    /// 32 s; default 32 s.
    pub timer_d: Duration,
}

impl Timers {
    /// 64*T1: Timers B, F, H, J (unreliable), L and M.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: zero on a reliable transport, where responses are not retransmitted.
    pub fn d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_d
        }
    }

    /// Timers I and K: T4 on an unreliable transport, zero on a reliable one.
    pub fn t4_unless_reliable(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: 64*T1 on an unreliable transport, zero on a reliable one.
    pub fn j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timeout()
        }
    }

    /// The interval before retransmission number `sent + 1` when `sent` retransmissions have
    /// already gone out: T1 doubling each time, capped at `cap` (T2 for Timers E and G; none
    /// for Timer A, which doubles without bound until Timer B ends it).
    pub(crate) fn backoff(&self, sent: u8, cap: Option<Duration>) -> Duration {
        let doubled = self
            .t1
            .saturating_mul(1u32.checked_shl(u32::from(sent)).unwrap_or(u32::MAX));
        match cap {
            Some(cap) => doubled.min(cap),
            None => doubled,
        }
    }
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

/// The RFC's name for a transaction timer, reported with `Event::TimedOut` so the TU can tell
/// "no response" (B, F) from "no ACK" (H).
///
/// Timer C (the proxy's INVITE timeout, §16.6) is not here: it belongs to the proxy core, which
/// can end a transaction with `TransactionLayer::abort`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// INVITE request retransmission (client, unreliable transport only).
    A,
    /// INVITE client timeout while Calling: the TU treats it as a 408.
    B,
    /// INVITE client linger in Completed, re-sending the ACK for retransmitted final responses.
    D,
    /// Non-INVITE request retransmission (client, unreliable transport only).
    E,
    /// Non-INVITE client timeout: the TU treats it as a 408.
    F,
    /// INVITE non-2xx final response retransmission (server, unreliable transport only).
    G,
    /// INVITE server wait for the ACK; firing means the ACK never came.
    H,
    /// INVITE server linger in Confirmed, absorbing ACK retransmissions.
    I,
    /// Non-INVITE server linger in Completed, answering request retransmissions.
    J,
    /// Non-INVITE client linger in Completed, absorbing response retransmissions.
    K,
    /// RFC 6026 INVITE server linger in Accepted after a 2xx.
    L,
    /// RFC 6026 INVITE client linger in Accepted, passing 2xx retransmissions to the TU.
    M,
}
