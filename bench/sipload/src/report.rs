//! What a phase measured, merged over threads, and the two ways it is printed: a table for
//! people and one `RESULT` line for scripts.

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::histogram::Histogram;

/// Counters and latencies of one phase, for one thread or merged over all.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// The rate the phase offered, per second (all threads).
    pub offered_rate: f64,
    /// How long new work was started for; rates divide by this.
    pub duration: Duration,
    /// Units of work (registrations) started.
    pub started: u64,
    /// Units of work due by the schedule that could not start: every client busy, or the cap
    /// on outstanding transactions reached. The server is not keeping up.
    pub not_started: u64,
    /// Units that succeeded: 2xx to a request that carried credentials.
    pub completed: u64,
    /// 401/407 answering a request without credentials: the expected first step.
    pub challenges: u64,
    /// 401/407 answering credentials on a reused or stale nonce, answered once more.
    pub rechallenges: u64,
    /// Final responses that ended a unit without success, indexed by status − 100. A 2xx to a
    /// request without credentials is counted here under its status: the server did not ask.
    pub failed_status: Vec<u64>,
    /// Units whose transaction reached Timer F.
    pub timeouts: u64,
    /// Units still outstanding when the phase's drain time ran out.
    pub unfinished: u64,
    /// Challenges the client could not answer (no usable Digest challenge in the 401).
    pub bad_challenges: u64,
    /// 1xx responses.
    pub provisional: u64,
    /// Datagrams sent (first transmissions and retransmissions).
    pub sent: u64,
    /// Of them, retransmissions.
    pub retransmissions: u64,
    /// Datagrams that could not be sent (full socket buffer, ICMP error); Timer E covers them.
    pub send_errors: u64,
    /// Datagrams received.
    pub received: u64,
    /// Responses that match no outstanding transaction: late, duplicated, or of another run.
    pub stray: u64,
    /// Datagrams that are not a SIP response the generator can match.
    pub malformed: u64,
    /// CPU time the generator process used during the phase (drain included), when known.
    pub cpu: Option<Duration>,
    /// Wall time of the phase, drain included.
    pub wall: Duration,
    /// Authenticated request (first transmission) → its 2xx, microseconds.
    pub auth_latency: Histogram,
    /// Whole unit, first request → final 2xx (challenge round trip included), microseconds.
    pub unit_latency: Histogram,
    /// Presence: what the server's NOTIFYs and BENOTIFYs amounted to.
    pub notify: NotifyStats,
    /// How late the generator started its units: start instant − due instant, microseconds.
    /// A large p99 means the generator itself was descheduled or overloaded, so the server's
    /// latencies of that phase are partly the generator's.
    pub start_lag: Histogram,
}

/// Requests the server sent to the watchers during a phase (presence scenario), beyond the
/// initial NOTIFY of each subscription and the NOTIFY of each one-time query, which complete
/// those units.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NotifyStats {
    /// NOTIFYs received on established subscriptions (retransmissions not counted), each
    /// answered 200.
    pub notifies: u64,
    /// BENOTIFYs (best-effort NOTIFY, not answered) received.
    pub benotifies: u64,
    /// NOTIFYs (and PUBLISHes' fan-out) the phase's successful PUBLISHes should cause: for each
    /// 2xx to a PUBLISH, the presentity's number of subscriptions.
    pub expected: u64,
    /// NOTIFYs received again (CSeq not above the highest seen on the subscription): the
    /// server retransmitted, so an answer was lost or late.
    pub retransmissions: u64,
    /// Notifications whose body carried this run's marker for a publication the subscription
    /// had not yet seen: their publish → notify latency is exact.
    pub marked: u64,
    /// Notifications without the marker, timed from their presentity's last PUBLISH.
    pub inferred: u64,
    /// Notifications for a publication the subscription had already seen (or none).
    pub extra: u64,
    /// Requests for no subscription of this run, answered 481.
    pub unknown: u64,
    /// Subscriptions the server ended (`Subscription-State: terminated`).
    pub terminated: u64,
    /// PUBLISH sent → NOTIFY (or BENOTIFY) received, microseconds.
    pub latency: Histogram,
}

impl NotifyStats {
    /// NOTIFYs plus BENOTIFYs.
    pub fn received(&self) -> u64 {
        self.notifies + self.benotifies
    }

    /// Received notifications over expected ones (1.0 when none were expected).
    pub fn delivery(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.received() as f64 / self.expected as f64
        }
    }

    fn merge(&mut self, o: &NotifyStats) {
        self.notifies += o.notifies;
        self.benotifies += o.benotifies;
        self.expected += o.expected;
        self.retransmissions += o.retransmissions;
        self.marked += o.marked;
        self.inferred += o.inferred;
        self.extra += o.extra;
        self.unknown += o.unknown;
        self.terminated += o.terminated;
        self.latency.merge(&o.latency);
    }
}

impl Stats {
    /// Empty counters for a phase offering `offered_rate` for `duration`.
    pub fn new(offered_rate: f64, duration: Duration) -> Self {
        Stats {
            offered_rate,
            duration,
            started: 0,
            not_started: 0,
            completed: 0,
            challenges: 0,
            rechallenges: 0,
            failed_status: vec![0; 600],
            timeouts: 0,
            unfinished: 0,
            bad_challenges: 0,
            provisional: 0,
            sent: 0,
            retransmissions: 0,
            send_errors: 0,
            received: 0,
            stray: 0,
            malformed: 0,
            cpu: None,
            wall: Duration::ZERO,
            auth_latency: Histogram::new(),
            unit_latency: Histogram::new(),
            notify: NotifyStats::default(),
            start_lag: Histogram::new(),
        }
    }

    /// Counts a final response that ended a unit without success.
    pub fn fail_status(&mut self, status: u16) {
        if let Some(slot) = self
            .failed_status
            .get_mut(usize::from(status).wrapping_sub(100))
        {
            *slot += 1;
        }
    }

    /// Adds another thread's counts (rate and duration are the phase's, kept from `self`).
    pub fn merge(&mut self, o: &Stats) {
        self.started += o.started;
        self.not_started += o.not_started;
        self.completed += o.completed;
        self.challenges += o.challenges;
        self.rechallenges += o.rechallenges;
        for (mine, theirs) in self.failed_status.iter_mut().zip(&o.failed_status) {
            *mine += theirs;
        }
        self.timeouts += o.timeouts;
        self.unfinished += o.unfinished;
        self.bad_challenges += o.bad_challenges;
        self.provisional += o.provisional;
        self.sent += o.sent;
        self.retransmissions += o.retransmissions;
        self.send_errors += o.send_errors;
        self.received += o.received;
        self.stray += o.stray;
        self.malformed += o.malformed;
        self.auth_latency.merge(&o.auth_latency);
        self.unit_latency.merge(&o.unit_latency);
        self.notify.merge(&o.notify);
        self.start_lag.merge(&o.start_lag);
    }

    /// Units that failed: a final non-success status, a timeout, an unanswerable challenge, or
    /// no answer by the end of the drain.
    pub fn failures(&self) -> u64 {
        self.failed_status.iter().sum::<u64>()
            + self.timeouts
            + self.unfinished
            + self.bad_challenges
    }

    /// Completed units per second of the phase.
    pub fn completed_rate(&self) -> f64 {
        per_second(self.completed, self.duration)
    }

    /// Failed or never started units as a fraction of the units the schedule asked for.
    pub fn failure_ratio(&self) -> f64 {
        let asked = self.started + self.not_started;
        if asked == 0 {
            return 0.0;
        }
        (self.failures() + self.not_started) as f64 / asked as f64
    }

    /// Whether the phase counts as sustained: failure ratio below `max_failure_ratio` and
    /// p99 of the authenticated request at most `max_p99`, with at least one completion.
    pub fn sustained(&self, max_failure_ratio: f64, max_p99: Duration) -> bool {
        self.completed > 0
            && self.failure_ratio() < max_failure_ratio
            && self.auth_latency.quantile(0.99) <= max_p99.as_micros() as u64
    }

    /// The generator's CPU use over the phase as a fraction of one core (1.0 = a whole core).
    pub fn generator_cpu(&self) -> Option<f64> {
        let wall = self.wall.as_secs_f64();
        self.cpu
            .filter(|_| wall > 0.0)
            .map(|cpu| cpu.as_secs_f64() / wall)
    }

    /// Failure counts by status, as `401×3, 503×1`; `none` when there are none.
    pub fn status_breakdown(&self) -> String {
        self.statuses(", ", "×")
    }

    /// Failure counts by status for a `RESULT` line, as `401x3,503x1`; `none` when there are
    /// none.
    pub fn statuses_compact(&self) -> String {
        self.statuses(",", "x")
    }

    fn statuses(&self, separator: &str, times: &str) -> String {
        let mut out = String::new();
        for (i, n) in self
            .failed_status
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
        {
            if !out.is_empty() {
                out.push_str(separator);
            }
            let _ = write!(out, "{}{times}{n}", i + 100);
        }
        if out.is_empty() {
            out.push_str("none");
        }
        out
    }

    /// The machine-readable summary: `RESULT <scenario> rate=.. p50_us=.. p99_us=.. failures=..`
    /// followed by further `key=value` fields.
    pub fn result_line(&self, scenario: &str) -> String {
        format!(
            "RESULT {scenario} rate={:.1} p50_us={} p99_us={} failures={} offered={:.0} \
             max_us={} timeouts={} not_started={} unfinished={} by_status={} retransmissions={} \
             stray={} gen_cpu={:.2}",
            self.completed_rate(),
            self.auth_latency.quantile(0.5),
            self.auth_latency.quantile(0.99),
            self.failures(),
            self.offered_rate,
            self.auth_latency.max(),
            self.timeouts,
            self.not_started,
            self.unfinished,
            self.statuses(",", "x"),
            self.retransmissions,
            self.stray,
            self.generator_cpu().unwrap_or(f64::NAN),
        )
    }
}

/// The result table of one phase.
pub struct Table<'a> {
    /// What ran: scenario and the settings a reader needs to interpret the numbers.
    pub title: &'a str,
    /// The merged counts.
    pub stats: &'a Stats,
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.stats;
        let secs = s.duration.as_secs_f64();
        let row = |f: &mut fmt::Formatter<'_>, label: &str, value: String| {
            writeln!(f, "  {label:<34} {value}")
        };
        writeln!(f, "{}", self.title)?;
        row(
            f,
            "offered rate",
            format!("{:.0}/s for {secs:.1} s", s.offered_rate),
        )?;
        row(
            f,
            "started / not started (no free client)",
            format!(
                "{} ({:.1}/s) / {}",
                s.started,
                per_second(s.started, s.duration),
                s.not_started
            ),
        )?;
        row(
            f,
            "completed authenticated REGISTER",
            format!("{} = {:.1}/s", s.completed, s.completed_rate()),
        )?;
        row(
            f,
            "401 challenges / re-challenges",
            format!("{} / {}", s.challenges, s.rechallenges),
        )?;
        row(
            f,
            "failures",
            format!(
                "{} ({:.3} % of due): by status {}; timeouts {}; unfinished {}; bad challenges {}",
                s.failures(),
                100.0 * s.failure_ratio(),
                s.status_breakdown(),
                s.timeouts,
                s.unfinished,
                s.bad_challenges
            ),
        )?;
        row(f, "latency auth REGISTER → 200", latency(&s.auth_latency))?;
        row(f, "latency whole registration", latency(&s.unit_latency))?;
        if let Some(cpu) = s.generator_cpu() {
            row(
                f,
                "generator CPU",
                format!(
                    "{:.0} % of one core over {:.1} s",
                    100.0 * cpu,
                    s.wall.as_secs_f64()
                ),
            )?;
        }
        row(
            f,
            "datagrams sent / received",
            format!(
                "{} / {} (retransmitted {}, send errors {}, 1xx {}, stray {}, malformed {})",
                s.sent,
                s.received,
                s.retransmissions,
                s.send_errors,
                s.provisional,
                s.stray,
                s.malformed
            ),
        )
    }
}

/// `p50 .. µs  p99 .. µs  max .. µs  (n)`.
fn latency(h: &Histogram) -> String {
    format!(
        "p50 {} µs  p99 {} µs  max {} µs  (n={})",
        h.quantile(0.5),
        h.quantile(0.99),
        h.max(),
        h.count()
    )
}

/// `count` over `duration`, per second (0 for an empty duration).
pub fn per_second(count: u64, duration: Duration) -> f64 {
    let secs = duration.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_failures_and_result_line() {
        let mut a = Stats::new(1000.0, Duration::from_secs(2));
        let mut b = Stats::new(1000.0, Duration::from_secs(2));
        a.started = 1000;
        a.completed = 998;
        a.fail_status(503);
        a.auth_latency.record(100);
        b.started = 1000;
        b.completed = 999;
        b.timeouts = 1;
        b.not_started = 2;
        b.fail_status(50); // out of range: ignored, never a panic
        b.auth_latency.record(300);
        a.merge(&b);
        assert_eq!((a.completed, a.failures(), a.not_started), (1997, 2, 2));
        assert_eq!(a.status_breakdown(), "503×1");
        assert!((a.failure_ratio() - 4.0 / 2002.0).abs() < 1e-12);
        assert_eq!(
            a.result_line("register"),
            "RESULT register rate=998.5 p50_us=100 p99_us=300 failures=2 offered=1000 max_us=300 \
             timeouts=1 not_started=2 unfinished=0 by_status=503x1 retransmissions=0 stray=0 \
             gen_cpu=NaN"
        );
        assert!(!a.sustained(0.001, Duration::from_millis(50)));
        assert!(a.sustained(0.01, Duration::from_millis(50)));
        assert!(!a.sustained(0.01, Duration::from_micros(200)));
        let table = Table {
            title: "t",
            stats: &a,
        }
        .to_string();
        assert!(table.contains("1997 = 998.5/s"), "{table}");
    }
}
