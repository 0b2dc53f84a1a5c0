//! sipload: a load generator for herald's SIP front end.
//!
//! SIPp runs one thread and tops out well below what herald is meant to sustain on two cores, so
//! herald measures itself with this: many simulated clients spread over a few OS threads, each
//! thread with its own non-blocking UDP sockets, open-loop pacing, RFC 3261 retransmission timers
//! and a latency histogram. Scenarios are modules of [`scenario`]; the engine in [`engine`] knows
//! nothing about what they send.
//!
//! [`fake::FakeRegistrar`] is a stand-in registrar that checks Digest with herald's own
//! authenticator: the generator's tests use it, and it shows the generator's own ceiling.

pub mod engine;
pub mod fake;
pub mod histogram;
pub mod ramp;
pub mod report;
pub mod scenario;
pub mod sip;

use std::io;

use engine::{LoadConfig, Runner};
use scenario::register::{RegisterConfig, RegisterScenario};

/// Starts worker threads running the register scenario; drive them with
/// [`Runner::run_phase`] or [`ramp::ramp`], then [`Runner::stop`].
pub fn register_runner(load: &LoadConfig, register: RegisterConfig) -> io::Result<Runner> {
    Runner::start(load, move |context| {
        RegisterScenario::new(register.clone(), context)
    })
}
