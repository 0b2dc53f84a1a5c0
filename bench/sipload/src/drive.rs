//! The presence run: the phases of [`crate::scenario::presence`] in order against one server —
//! register, subscribe until every subscription is held, measure the server's memory, step the
//! publish rate up until loss or latency breaks, step the one-time query rate up the same way —
//! printing a line per phase for people and a `RESULT` line per figure for scripts
//! (`bench/presence.sh` runs it against Kamailio and herald and puts the two side by side).

use std::io;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::engine::{Phase, Runner, cpu};
use crate::ramp;
use crate::report::{Stats, per_second};
use crate::scenario::presence::{
    MODE_FETCH, MODE_HOLD, MODE_PUBLISH, MODE_REGISTER, MODE_SUBSCRIBE,
};

/// How long a server keeps the transactions of the registrations: Timer J plus a second.
const REGISTRATIONS_LINGER: Duration = Duration::from_secs(33);

/// What to run, and what counts as sustained.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Subscriptions to hold (W·C).
    pub subscriptions: u32,
    /// Users to register, when registering.
    pub users: u32,
    /// Presentities, for the seed publications.
    pub presentities: u32,
    /// Before subscribing, publish once per presentity at this rate, so that every initial
    /// NOTIFY carries a published state (the sign-in storm, scenario e).
    pub seed_rate: Option<f64>,
    /// Register every user first, at this rate.
    pub register_rate: Option<f64>,
    /// SUBSCRIBEs started per second while setting up.
    pub subscribe_rate: f64,
    /// Idle time after the last subscription before memory is read again.
    pub settle: Duration,
    /// A shell command printing the server's memory in bytes (the first number of its output,
    /// or of its `real_used` line).
    pub memory_command: Option<String>,
    /// The server's pid, for its CPU time (its descendants included).
    pub server_pid: Option<u32>,
    /// Publish rates to try, in order, until one is not sustained.
    pub publish_rates: Vec<f64>,
    /// Length of each publish step.
    pub publish_duration: Duration,
    /// One-time query rates to try, in order.
    pub fetch_rates: Vec<f64>,
    /// Length of each query step.
    pub fetch_duration: Duration,
    /// Hold the subscriptions this long after setting them up (scenario c), counting what
    /// arrives.
    pub hold: Duration,
    /// Pause between steps.
    pub gap: Duration,
    /// Pause after a failing step, for an overloaded server to recover.
    pub recover: Duration,
    /// What a step must achieve.
    pub criteria: Criteria,
}

/// A step is sustained when all of these hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Criteria {
    /// Failed or never started units below this fraction of those due.
    pub max_failure_ratio: f64,
    /// Completed units per second at least this fraction of the offered rate.
    pub min_rate_ratio: f64,
    /// Notifications received at least this fraction of those expected (publish steps).
    pub min_delivery: f64,
    /// publish → notify p99 at most this (publish steps).
    pub max_notify_p99: Duration,
    /// request → answer (one-time query: → its NOTIFY) p99 at most this.
    pub max_p99: Duration,
}

impl Default for Criteria {
    /// The Kamailio baseline's: no failed call, ≥ 95 % of the target rate, ≥ 99.9 % of the
    /// NOTIFYs, publish → notify p99 under 500 ms.
    fn default() -> Self {
        Criteria {
            max_failure_ratio: 0.001,
            min_rate_ratio: 0.95,
            min_delivery: 0.999,
            max_notify_p99: Duration::from_millis(500),
            max_p99: Duration::from_secs(1),
        }
    }
}

impl Criteria {
    /// Whether a publish step held.
    pub fn publish_sustained(&self, s: &Stats) -> bool {
        s.completed > 0
            && s.failure_ratio() < self.max_failure_ratio
            && s.completed_rate() >= self.min_rate_ratio * s.offered_rate
            && s.notify.delivery() >= self.min_delivery
            && (s.notify.expected == 0 || s.notify.latency.count() > 0)
            && s.notify.latency.quantile(0.99) <= micros(self.max_notify_p99)
    }

    /// Whether a one-time query (or registration) step held.
    pub fn unit_sustained(&self, s: &Stats) -> bool {
        s.completed > 0
            && s.failure_ratio() < self.max_failure_ratio
            && s.completed_rate() >= self.min_rate_ratio * s.offered_rate
            && s.unit_latency.quantile(0.99) <= micros(self.max_p99)
    }
}

/// Runs the plan's phases on `runner` (a presence scenario), printing as it goes.
pub fn run(runner: &mut Runner, plan: &Plan) -> io::Result<()> {
    let memory = |name: &str| -> Option<u64> {
        let command = plan.memory_command.as_deref()?;
        let bytes = read_memory(command);
        if bytes.is_none() {
            println!("  memory ({name}): `{command}` printed no number");
        }
        bytes
    };
    if let Some(rate) = plan.register_rate {
        let duration = Duration::from_secs_f64((f64::from(plan.users) / rate).max(1.0));
        let s = phase(
            runner,
            plan,
            Phase {
                rate,
                duration,
                mode: MODE_REGISTER,
            },
        )?;
        println!(
            "register: {} of {} users in {:.1} s ({:.0}/s), failures {} ({}), challenges {}, p99 {} µs",
            s.stats.completed,
            plan.users,
            s.stats.wall.as_secs_f64(),
            per_second(s.stats.completed, s.stats.wall),
            s.stats.failures(),
            s.stats.status_breakdown(),
            s.stats.challenges,
            s.stats.auth_latency.quantile(0.99),
        );
        println!(
            "RESULT presence-register users={} completed={} rate={:.1} failures={} by_status={} \
             p50_us={} p99_us={}",
            plan.users,
            s.stats.completed,
            per_second(s.stats.completed, s.stats.wall),
            s.stats.failures(),
            s.stats.statuses_compact(),
            s.stats.auth_latency.quantile(0.5),
            s.stats.auth_latency.quantile(0.99),
        );
    }

    if let Some(rate) = plan.seed_rate {
        let duration = Duration::from_secs_f64((f64::from(plan.presentities) / rate).max(0.1));
        let s = phase(
            runner,
            plan,
            Phase {
                rate,
                duration,
                mode: MODE_PUBLISH,
            },
        )?;
        println!(
            "seed: {} of {} presentities published in {:.1} s, failures {} ({})",
            s.stats.completed,
            plan.presentities,
            s.stats.wall.as_secs_f64(),
            s.stats.failures(),
            s.stats.status_breakdown(),
        );
        println!(
            "RESULT presence-seed presentities={} completed={} failures={} by_status={}",
            plan.presentities,
            s.stats.completed,
            s.stats.failures(),
            s.stats.statuses_compact(),
        );
    }

    if plan.register_rate.is_some() && plan.memory_command.is_some() {
        // The server still holds the registrations' transactions (RFC 3261 Timer J: 64·T1 =
        // 32 s over UDP) and what they allocated; read now, the subscriptions would reuse that
        // memory and show too little per subscription.
        thread::sleep(REGISTRATIONS_LINGER);
    }
    let before = memory("before");
    let mut established: u64 = 0;
    // The first attempt alone: every subscription started at the offered rate, and the time
    // until the last has its initial NOTIFY (the sign-in storm's figure).
    let mut first: Option<(u64, Duration, u64)> = None;
    let mut total = Stats::new(plan.subscribe_rate, Duration::ZERO);
    let mut wall = Duration::ZERO;
    let mut server_cpu = Duration::ZERO;
    for _attempt in 0..3 {
        let missing = u64::from(plan.subscriptions).saturating_sub(established);
        if missing == 0 {
            break;
        }
        let duration = Duration::from_secs_f64((missing as f64 / plan.subscribe_rate).max(0.5));
        let s = phase(
            runner,
            plan,
            Phase {
                rate: plan.subscribe_rate,
                duration,
                mode: MODE_SUBSCRIBE,
            },
        )?;
        established = (established + s.stats.completed).saturating_sub(s.stats.notify.terminated);
        wall += s.stats.wall;
        server_cpu += s.server_cpu.unwrap_or_default();
        first.get_or_insert((established, s.stats.wall, s.stats.failures()));
        let progress = s.stats.completed;
        total.merge(&s.stats);
        if progress == 0 {
            break;
        }
    }
    total.duration = wall;
    total.wall = wall;
    println!(
        "subscribe: {} of {} subscriptions in {:.1} s ({:.0}/s offered {:.0}/s); SUBSCRIBE → 2xx \
         p50 {} µs p99 {} µs, → initial NOTIFY p99 {} µs; failures {} ({}), timeouts {}, \
         challenges {}, retransmissions {}, server CPU {}",
        established,
        plan.subscriptions,
        wall.as_secs_f64(),
        per_second(total.completed, wall),
        plan.subscribe_rate,
        total.auth_latency.quantile(0.5),
        total.auth_latency.quantile(0.99),
        total.unit_latency.quantile(0.99),
        total.failures(),
        total.status_breakdown(),
        total.timeouts,
        total.challenges,
        total.retransmissions,
        percent(server_cpu, wall),
    );
    println!(
        "RESULT presence-subscribe subs={} established={} rate={:.1} p50_us={} p99_us={} \
         notify_p99_us={} failures={} by_status={} retransmissions={} server_cpu={:.2} \
         first_established={} first_wall_s={:.2} first_failures={}",
        plan.subscriptions,
        established,
        per_second(total.completed, wall),
        total.auth_latency.quantile(0.5),
        total.auth_latency.quantile(0.99),
        total.unit_latency.quantile(0.99),
        total.failures(),
        total.statuses_compact(),
        total.retransmissions,
        cores(server_cpu, wall),
        first.map_or(0, |f| f.0),
        first.map_or(0.0, |f| f.1.as_secs_f64()),
        first.map_or(0, |f| f.2),
    );
    if plan.memory_command.is_some() {
        thread::sleep(plan.settle);
        let after = memory("after");
        if let (Some(b), Some(a)) = (before, after) {
            let per = if established > 0 {
                format!("{:.0}", (a as f64 - b as f64) / established as f64)
            } else {
                "-".to_owned()
            };
            println!(
                "memory: {:.1} MiB before, {:.1} MiB with {established} subscriptions held \
                 ({per} bytes per subscription)",
                b as f64 / 1048576.0,
                a as f64 / 1048576.0,
            );
            println!(
                "RESULT presence-memory subs={established} before={b} after={a} bytes_per_sub={per}"
            );
        }
    }
    if !plan.hold.is_zero() {
        let s = phase(
            runner,
            plan,
            Phase {
                rate: 0.0,
                duration: plan.hold,
                mode: MODE_HOLD,
            },
        )?;
        println!(
            "hold {:?}: {} NOTIFYs, {} BENOTIFYs, {} terminated, {} retransmitted",
            plan.hold,
            s.stats.notify.notifies,
            s.stats.notify.benotifies,
            s.stats.notify.terminated,
            s.stats.notify.retransmissions
        );
    }

    if !plan.publish_rates.is_empty() {
        publish_ladder(runner, plan)?;
    }
    if !plan.fetch_rates.is_empty() {
        fetch_ladder(runner, plan)?;
    }
    Ok(())
}

fn publish_ladder(runner: &mut Runner, plan: &Plan) -> io::Result<()> {
    println!(
        "publish steps of {:?}: sustained = failures + not started < {:.1} %, ≥ {:.0} % of the \
         offered rate, ≥ {:.1} % of the expected notifications, publish → notify p99 ≤ {:?}",
        plan.publish_duration,
        100.0 * plan.criteria.max_failure_ratio,
        100.0 * plan.criteria.min_rate_ratio,
        100.0 * plan.criteria.min_delivery,
        plan.criteria.max_notify_p99,
    );
    println!(
        "  {:>8} {:>9} {:>10} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>6} {:>8}  ok",
        "offered",
        "PUBLISH/s",
        "NOTIFY/s",
        "delivery",
        "p50 µs",
        "p99 µs",
        "max µs",
        "pub p99",
        "failures",
        "not st.",
        "retrans",
        "srv",
        "gen",
        "lag p99"
    );
    let mut best: Option<StepResult> = None;
    let mut failed = false;
    for &rate in &plan.publish_rates {
        let s = phase(
            runner,
            plan,
            Phase {
                rate,
                duration: plan.publish_duration,
                mode: MODE_PUBLISH,
            },
        )?;
        let ok = plan.criteria.publish_sustained(&s.stats);
        let st = &s.stats;
        let n = &st.notify;
        println!(
            "  {:>8.0} {:>9.1} {:>10.1} {:>8.2}% {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>6} {:>8}  {}",
            rate,
            st.completed_rate(),
            per_second(n.received(), st.duration),
            100.0 * n.delivery(),
            n.latency.quantile(0.5),
            n.latency.quantile(0.99),
            n.latency.max(),
            st.auth_latency.quantile(0.99),
            st.failures(),
            st.not_started,
            st.retransmissions + n.retransmissions,
            percent(s.server_cpu.unwrap_or_default(), st.wall),
            st.generator_cpu()
                .map_or("-".into(), |c| format!("{:.0}%", 100.0 * c)),
            st.start_lag.quantile(0.99),
            if ok { "yes" } else { "no" }
        );
        println!(
            "RESULT presence-publish offered={rate:.0} rate={:.1} notify_rate={:.1} notifies={} \
             benotifies={} expected={} delivery={:.5} lat_p50_us={} lat_p99_us={} lat_max_us={} \
             marked={} inferred={} extra={} pub_p50_us={} pub_p99_us={} failures={} by_status={} \
             not_started={} retransmissions={} notify_retransmissions={} terminated={} unknown={} \
             server_cpu={:.2} gen_cpu={:.2} lag_p99_us={} sustained={}",
            st.completed_rate(),
            per_second(n.received(), st.duration),
            n.notifies,
            n.benotifies,
            n.expected,
            n.delivery(),
            n.latency.quantile(0.5),
            n.latency.quantile(0.99),
            n.latency.max(),
            n.marked,
            n.inferred,
            n.extra,
            st.auth_latency.quantile(0.5),
            st.auth_latency.quantile(0.99),
            st.failures(),
            st.statuses_compact(),
            st.not_started,
            st.retransmissions,
            n.retransmissions,
            n.terminated,
            n.unknown,
            cores(s.server_cpu.unwrap_or_default(), st.wall),
            st.generator_cpu().unwrap_or(f64::NAN),
            st.start_lag.quantile(0.99),
            if ok { "yes" } else { "no" },
        );
        if !ok {
            failed = true;
            break;
        }
        best = Some(StepResult {
            offered: rate,
            rate: st.completed_rate(),
            notify_rate: per_second(n.received(), st.duration),
            p50: n.latency.quantile(0.5),
            p99: n.latency.quantile(0.99),
            max: n.latency.max(),
        });
        thread::sleep(plan.gap);
    }
    match best {
        Some(b) => {
            println!(
                "  highest sustained publish step: {:.0}/s → {:.0} PUBLISH/s, {:.0} NOTIFY/s, \
                 publish → notify p50 {} µs p99 {} µs",
                b.offered, b.rate, b.notify_rate, b.p50, b.p99
            );
            println!(
                "RESULT presence-publish-max sustained={:.0} rate={:.1} notify_rate={:.1} \
                 lat_p50_us={} lat_p99_us={} lat_max_us={}",
                b.offered, b.rate, b.notify_rate, b.p50, b.p99, b.max
            );
        }
        None => {
            println!("  no publish step sustained");
            println!("RESULT presence-publish-max sustained=0 rate=0 notify_rate=0");
        }
    }
    if failed {
        thread::sleep(plan.recover);
    }
    Ok(())
}

fn fetch_ladder(runner: &mut Runner, plan: &Plan) -> io::Result<()> {
    println!(
        "one-time query steps of {:?} (SUBSCRIBE Expires: 0 → 2xx + NOTIFY): sustained = \
         failures + not started < {:.1} %, ≥ {:.0} % of the offered rate, SUBSCRIBE → NOTIFY p99 ≤ {:?}",
        plan.fetch_duration,
        100.0 * plan.criteria.max_failure_ratio,
        100.0 * plan.criteria.min_rate_ratio,
        plan.criteria.max_p99,
    );
    println!(
        "  {:>8} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>6} {:>6}  ok",
        "offered",
        "queries/s",
        "p50 µs",
        "p99 µs",
        "max µs",
        "failures",
        "not st.",
        "retrans",
        "srv",
        "gen"
    );
    let mut best: Option<(f64, f64, u64, u64)> = None;
    let cpu_before = std::cell::Cell::new(None);
    let server_cpu = || plan.server_pid.and_then(cpu::tree_time);
    let result = ramp::ramp_with(
        runner,
        plan.fetch_rates.iter().copied(),
        |rate| {
            cpu_before.set(server_cpu());
            Phase {
                rate,
                duration: plan.fetch_duration,
                mode: MODE_FETCH,
            }
        },
        |s| plan.criteria.unit_sustained(s),
        |st, ok| {
            let srv = server_cpu()
                .zip(cpu_before.get())
                .map(|(a, b)| a.saturating_sub(b))
                .unwrap_or_default();
            println!(
                "  {:>8.0} {:>10.1} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>6} {:>6}  {}",
                st.offered_rate,
                st.completed_rate(),
                st.unit_latency.quantile(0.5),
                st.unit_latency.quantile(0.99),
                st.unit_latency.max(),
                st.failures(),
                st.not_started,
                st.retransmissions,
                percent(srv, st.wall),
                st.generator_cpu()
                    .map_or("-".into(), |c| format!("{:.0}%", 100.0 * c)),
                if ok { "yes" } else { "no" }
            );
            println!(
                "RESULT presence-fetch offered={:.0} rate={:.1} p50_us={} p99_us={} max_us={} \
                 answer_p99_us={} failures={} by_status={} not_started={} retransmissions={} \
                 server_cpu={:.2} gen_cpu={:.2} sustained={}",
                st.offered_rate,
                st.completed_rate(),
                st.unit_latency.quantile(0.5),
                st.unit_latency.quantile(0.99),
                st.unit_latency.max(),
                st.auth_latency.quantile(0.99),
                st.failures(),
                st.statuses_compact(),
                st.not_started,
                st.retransmissions,
                cores(srv, st.wall),
                st.generator_cpu().unwrap_or(f64::NAN),
                if ok { "yes" } else { "no" },
            );
            if ok {
                best = Some((
                    st.offered_rate,
                    st.completed_rate(),
                    st.unit_latency.quantile(0.5),
                    st.unit_latency.quantile(0.99),
                ));
            }
            thread::sleep(plan.gap);
        },
    )?;
    match (result, best) {
        (Some(_), Some((offered, rate, p50, p99))) => {
            println!(
                "  highest sustained query step: {offered:.0}/s → {rate:.0}/s, p50 {p50} µs p99 {p99} µs"
            );
            println!(
                "RESULT presence-fetch-max sustained={offered:.0} rate={rate:.1} p50_us={p50} p99_us={p99}"
            );
        }
        _ => {
            println!("  no query step sustained");
            println!("RESULT presence-fetch-max sustained=0 rate=0");
        }
    }
    Ok(())
}

struct StepResult {
    offered: f64,
    rate: f64,
    notify_rate: f64,
    p50: u64,
    p99: u64,
    max: u64,
}

struct PhaseResult {
    stats: Stats,
    server_cpu: Option<Duration>,
}

fn phase(runner: &mut Runner, plan: &Plan, phase: Phase) -> io::Result<PhaseResult> {
    let before = plan.server_pid.and_then(cpu::tree_time);
    let stats = runner.run_phase(phase)?;
    let after = plan.server_pid.and_then(cpu::tree_time);
    Ok(PhaseResult {
        stats,
        server_cpu: after.zip(before).map(|(a, b)| a.saturating_sub(b)),
    })
}

/// Runs `command` with `sh -c` and reads a byte count from its output: the number after
/// `real_used` (kamcmd core.shmmem), else the first number.
pub fn read_memory(command: &str) -> Option<u64> {
    let out = Command::new("sh").arg("-c").arg(command).output().ok()?;
    parse_memory(&String::from_utf8_lossy(&out.stdout))
}

fn parse_memory(text: &str) -> Option<u64> {
    let number = |s: &str| {
        s.split(|c: char| !c.is_ascii_digit())
            .find(|t| !t.is_empty())
            .and_then(|t| t.parse().ok())
    };
    text.lines()
        .find(|l| l.contains("real_used"))
        .and_then(|l| number(l.split_once("real_used")?.1))
        .or_else(|| number(text))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn cores(cpu: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        f64::NAN
    } else {
        cpu.as_secs_f64() / wall.as_secs_f64()
    }
}

fn percent(cpu: Duration, wall: Duration) -> String {
    let c = cores(cpu, wall);
    if c.is_finite() && !cpu.is_zero() {
        format!("{:.0}%", 100.0 * c)
    } else {
        "-".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_figures_from_kamcmd_or_a_bare_number() {
        let kamcmd =
            "{\n\ttotal: 2147483648\n\tfree: 2000000000\n\tused: 100\n\treal_used: 31457280\n}";
        assert_eq!(parse_memory(kamcmd), Some(31_457_280));
        assert_eq!(parse_memory("123456\n"), Some(123_456));
        assert_eq!(parse_memory("VmRSS: 2048 kB"), Some(2048));
        assert_eq!(parse_memory("none"), None);
    }

    #[test]
    fn publish_steps_are_judged_on_delivery_and_latency() {
        let c = Criteria::default();
        let mut s = Stats::new(100.0, Duration::from_secs(1));
        s.started = 100;
        s.completed = 100;
        s.notify.expected = 2000;
        s.notify.notifies = 2000;
        s.notify.latency.record(10_000);
        assert!(c.publish_sustained(&s));
        s.notify.notifies = 1990;
        assert!(!c.publish_sustained(&s));
        s.notify.notifies = 2000;
        s.notify.latency.record(900_000);
        s.notify.latency.record(900_000);
        assert!(!c.publish_sustained(&s));
    }
}
