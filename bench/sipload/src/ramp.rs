//! Step mode: raise the offered rate step by step and find the highest one the server sustains.

use std::io;
use std::time::Duration;

use crate::engine::{Phase, Runner};
use crate::report::Stats;

/// What a step must achieve to count as sustained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Criteria {
    /// Largest fraction of due units that may fail or not start (0.001 = 0.1 %).
    pub max_failure_ratio: f64,
    /// Largest p99 of the authenticated request's latency.
    pub max_p99: Duration,
}

/// The rates to try: `from`, `from + step`, ... up to `to` inclusive.
pub fn steps(from: f64, step: f64, to: f64) -> impl Iterator<Item = f64> {
    let count = if step > 0.0 && to >= from {
        ((to - from) / step + 1e-9).floor() as usize + 1
    } else {
        1
    };
    (0..count).map(move |i| from + step * i as f64)
}

/// Runs one phase per rate until a step is not sustained (or the rates run out), calling
/// `each` with every step's stats; returns the highest sustained rate, if any.
pub fn ramp(
    runner: &mut Runner,
    rates: impl IntoIterator<Item = f64>,
    duration: Duration,
    criteria: Criteria,
    each: impl FnMut(&Stats, bool),
) -> io::Result<Option<f64>> {
    ramp_with(
        runner,
        rates,
        |rate| Phase::new(rate, duration),
        |stats| stats.sustained(criteria.max_failure_ratio, criteria.max_p99),
        each,
    )
}

/// [`ramp`] with the phase of each rate built by `phase` and judged by `sustained`.
pub fn ramp_with(
    runner: &mut Runner,
    rates: impl IntoIterator<Item = f64>,
    phase: impl Fn(f64) -> Phase,
    sustained: impl Fn(&Stats) -> bool,
    mut each: impl FnMut(&Stats, bool),
) -> io::Result<Option<f64>> {
    let mut best = None;
    for rate in rates {
        let stats = runner.run_phase(phase(rate))?;
        let ok = sustained(&stats);
        each(&stats, ok);
        if !ok {
            break;
        }
        best = Some(rate);
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_include_both_ends() {
        let v: Vec<f64> = steps(5000.0, 5000.0, 30000.0).collect();
        assert_eq!(v, [5000.0, 10000.0, 15000.0, 20000.0, 25000.0, 30000.0]);
        assert_eq!(steps(100.0, 0.0, 50.0).collect::<Vec<_>>(), [100.0]);
        assert_eq!(steps(1.0, 2.0, 4.0).collect::<Vec<_>>(), [1.0, 3.0]);
    }
}
