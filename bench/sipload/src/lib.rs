//! sipload: a load generator for herald's SIP front end.
//!
//! SIPp runs one thread and tops out well below what herald is meant to sustain on two cores, so
//! herald measures itself with this: many simulated clients spread over a few OS threads, each
//! thread with its own non-blocking UDP sockets, open-loop pacing, RFC 3261 retransmission timers
//! and a latency histogram. Scenarios are modules of [`scenario`]; the engine in [`engine`] knows
//! nothing about what they send.
//!
//! [`fake::FakeRegistrar`] is a stand-in registrar that checks Digest with herald's own
//! authenticator, and [`fake_presence::FakePresence`] a stand-in presence server (SUBSCRIBE,
//! PUBLISH with ETags, NOTIFY fan-out): the generator's tests use them, and they show the
//! generator's own ceiling.

pub mod drive;
pub mod engine;
pub mod fake;
pub mod fake_presence;
pub mod histogram;
pub mod ramp;
pub mod report;
pub mod scenario;
pub mod sip;

use std::io;

use engine::{LoadConfig, Runner};
use scenario::presence::{PresenceConfig, PresenceScenario};
use scenario::register::{RegisterConfig, RegisterScenario};

/// Starts worker threads running the register scenario; drive them with
/// [`Runner::run_phase`] or [`ramp::ramp`], then [`Runner::stop`].
pub fn register_runner(load: &LoadConfig, register: RegisterConfig) -> io::Result<Runner> {
    Runner::start(load, move |context| {
        RegisterScenario::new(register.clone(), context)
    })
}

/// Starts worker threads running the presence scenario; drive them with [`drive::run`] or
/// [`Runner::run_phase`] with the scenario's modes, then [`Runner::stop`].
pub fn presence_runner(load: &LoadConfig, presence: PresenceConfig) -> io::Result<Runner> {
    Runner::start(load, move |context| {
        PresenceScenario::new(presence.clone(), context)
    })
}
