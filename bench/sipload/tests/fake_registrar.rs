//! The generator end to end against the in-process fake registrar, which verifies every
//! Digest response with herald-auth's `DigestAuthenticator`.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use sipload::engine::transaction::TimerConfig;
use sipload::engine::{LoadConfig, Phase};
use sipload::fake::{FakeConfig, FakeRegistrar};
use sipload::report::Stats;
use sipload::scenario::register::RegisterConfig;

const DOMAIN: &str = "herald.test";
const PASSWORD: &str = "s3cret";

fn load(server: SocketAddr, clients: u32, threads: usize) -> LoadConfig {
    LoadConfig {
        server,
        clients,
        threads,
        sockets_per_thread: 2,
        local_port: 0,
        max_outstanding: clients as usize,
        socket_buffer: 1 << 20,
        timers: TimerConfig::default(),
        drain: Duration::from_secs(2),
    }
}

fn register(password: &str, reuse_nonce: bool) -> RegisterConfig {
    RegisterConfig {
        domain: DOMAIN.to_owned(),
        user_format: "load{n}".to_owned(),
        password: password.to_owned(),
        expires: 600,
        reuse_nonce,
        run: rand::random(),
    }
}

fn fake() -> FakeConfig {
    let listen = "127.0.0.1:0".parse().expect("a socket address");
    FakeConfig::new(listen, DOMAIN, PASSWORD)
}

fn run(load: &LoadConfig, register: RegisterConfig, phases: &[Phase]) -> Vec<Stats> {
    let mut runner = sipload::register_runner(load, register).expect("sockets open");
    let stats = phases
        .iter()
        .map(|p| runner.run_phase(*p).expect("workers run"))
        .collect();
    runner.stop();
    stats
}

fn phase(rate: f64, millis: u64) -> Phase {
    Phase::new(rate, Duration::from_millis(millis))
}

#[test]
fn every_registration_is_challenged_then_accepted() {
    let fake = FakeRegistrar::start(fake()).unwrap();
    let stats = run(
        // Far below what even a loaded machine sustains, with many clients per in-flight
        // registration, so no registration is left unstarted for want of a free client.
        &load(fake.local_addr(), 200, 2),
        register(PASSWORD, false),
        &[phase(250.0, 1000)],
    );
    let seen = fake.stop();
    let s = &stats[0];
    assert_eq!(s.started, 250, "{s:?}");
    assert_eq!(
        (s.completed, s.challenges, s.failures(), s.not_started),
        (250, 250, 0, 0)
    );
    // A loaded machine may delay an answer past T1: the retransmission's answer is then stray,
    // and the fake (which has no transaction layer) refuses a retransmitted nonce-count.
    assert_eq!(s.sent, 500 + s.retransmissions);
    assert_eq!((s.received, s.malformed), (500 + s.stray, 0));
    assert_eq!(s.auth_latency.count(), 250);
    assert!(s.auth_latency.quantile(0.99) < 1_000_000);
    assert!(s.sustained(0.001, Duration::from_secs(1)));
    assert_eq!(seen.accepted, 250);
    assert!(seen.challenged - 250 + seen.refused <= s.retransmissions);
    let line = s.result_line("register");
    assert!(line.starts_with("RESULT register rate=250.0 "), "{line}");
}

#[test]
fn reused_nonces_are_challenged_once_per_client_and_across_phases() {
    let fake = FakeRegistrar::start(fake()).unwrap();
    let stats = run(
        &load(fake.local_addr(), 20, 1),
        register(PASSWORD, true),
        // Rates a loaded machine sustains: every registration starts on time.
        &[phase(100.0, 500), phase(200.0, 500)],
    );
    let seen = fake.stop();
    // On a machine loaded by other work a registration can come due while its client is still
    // busy; it is then counted as not started, never lost or challenged.
    assert_eq!(stats[0].completed + stats[0].not_started, 50);
    assert_eq!(stats[0].challenges, 20);
    // The second phase keeps Call-IDs, CSeqs and nonces: no challenge at all.
    assert_eq!(stats[1].completed + stats[1].not_started, 100);
    assert_eq!(stats[1].challenges, 0);
    assert!(
        stats
            .iter()
            .all(|s| s.failures() == 0 && s.rechallenges == 0)
    );
    assert_eq!(seen.accepted, stats[0].completed + stats[1].completed);
    let retransmissions: u64 = stats.iter().map(|s| s.retransmissions).sum();
    assert!(seen.challenged - 20 + seen.refused <= retransmissions);
}

#[test]
fn stale_nonces_are_answered_with_the_new_challenge() {
    let fake = FakeRegistrar::start(FakeConfig {
        nonce_lifetime: Duration::from_millis(200),
        ..fake()
    })
    .unwrap();
    let stats = run(
        &load(fake.local_addr(), 5, 1),
        register(PASSWORD, true),
        &[phase(50.0, 1000)],
    );
    let seen = fake.stop();
    let s = &stats[0];
    assert_eq!((s.completed, s.failures()), (50, 0), "{s:?}");
    assert!(
        s.rechallenges > 0 && s.rechallenges == seen.stale,
        "{s:?} {seen:?}"
    );
}

#[test]
fn a_wrong_password_is_a_failure_not_a_completion() {
    let fake = FakeRegistrar::start(fake()).unwrap();
    let stats = run(
        &load(fake.local_addr(), 10, 1),
        register("wrong", false),
        &[phase(100.0, 300)],
    );
    let seen = fake.stop();
    let s = &stats[0];
    assert_eq!((s.started, s.completed, s.failures()), (30, 0, 30));
    assert_eq!(s.status_breakdown(), "401×30");
    assert_eq!((seen.accepted, seen.refused), (0, 30));
    assert!(!s.sustained(0.001, Duration::from_secs(1)));
}

#[test]
fn lost_requests_are_retransmitted_per_timer_e() {
    let fake = FakeRegistrar::start(FakeConfig {
        drop_every: 7,
        ..fake()
    })
    .unwrap();
    let mut config = load(fake.local_addr(), 10, 1);
    config.timers.t1 = Duration::from_millis(20);
    let stats = run(&config, register(PASSWORD, false), &[phase(100.0, 500)]);
    let seen = fake.stop();
    let s = &stats[0];
    assert_eq!((s.completed, s.failures()), (50, 0), "{s:?}");
    assert!(
        s.retransmissions >= seen.dropped && seen.dropped > 0,
        "{s:?} {seen:?}"
    );
    assert!(s.unit_latency.max() >= 20_000);
}

#[test]
fn a_silent_server_gives_timeouts_and_a_blocked_schedule() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = load(silent.local_addr().unwrap(), 5, 1);
    config.timers = TimerConfig {
        retransmit: false,
        timeout: Duration::from_millis(100),
        ..TimerConfig::default()
    };
    config.drain = Duration::from_millis(50);
    let stats = run(&config, register(PASSWORD, false), &[phase(100.0, 500)]);
    let s = &stats[0];
    assert_eq!(s.completed, 0);
    // Five clients, each busy for 100 ms per attempt: about 5 × 500 / 100 = 25 start, and the
    // rest of the 50 due could not.
    assert!(s.timeouts >= 5 && s.not_started >= 5, "{s:?}");
    assert_eq!(s.started + s.not_started, 50);
    assert_eq!(s.started, s.timeouts + s.unfinished);
    assert_eq!(s.retransmissions, 0);
}
