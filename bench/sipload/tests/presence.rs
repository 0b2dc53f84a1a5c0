//! The presence scenario end to end against the in-process stand-in presence server: set-up,
//! ETag-chained publications fanned out to every watcher, one-time queries, registrations, and
//! the same with Digest challenges (checked with herald-auth).

use std::net::SocketAddr;
use std::time::Duration;

use sipload::engine::transaction::TimerConfig;
use sipload::engine::{LoadConfig, Phase, Runner};
use sipload::fake_presence::FakePresence;
use sipload::report::Stats;
use sipload::scenario::presence::{
    MODE_FETCH, MODE_HOLD, MODE_PUBLISH, MODE_REGISTER, MODE_SUBSCRIBE, PresenceConfig,
};

const DOMAIN: &str = "example.com";

fn load(server: SocketAddr, threads: usize) -> LoadConfig {
    LoadConfig {
        server,
        clients: 0,
        threads,
        sockets_per_thread: 2,
        local_port: 0,
        max_outstanding: usize::MAX / 2,
        socket_buffer: 4 << 20,
        timers: TimerConfig::default(),
        drain: Duration::from_secs(3),
    }
}

fn phase(mode: u32, rate: f64, millis: u64) -> Phase {
    Phase {
        rate,
        duration: Duration::from_millis(millis),
        mode,
    }
}

fn runner(server: SocketAddr, threads: usize, config: PresenceConfig) -> Runner {
    sipload::presence_runner(&load(server, threads), config).expect("sockets open")
}

fn listen() -> SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

/// 20 presentities, 50 watchers × 4 contacts: 200 subscriptions, 10 per presentity.
fn config() -> PresenceConfig {
    PresenceConfig::new(DOMAIN, 20, 50, 4, rand::random()).expect("a valid shape")
}

#[test]
fn subscriptions_publications_and_queries() {
    let fake = FakePresence::start(listen(), DOMAIN, None).unwrap();
    let mut r = runner(fake.local_addr(), 2, config());
    let sub = r.run_phase(phase(MODE_SUBSCRIBE, 1000.0, 200)).unwrap();
    assert_eq!((sub.completed, sub.failures()), (200, 0), "{sub:?}");
    assert_eq!(sub.unit_latency.count(), 200);
    // More starts than idle subscriptions: the rest could not start.
    let again = r.run_phase(phase(MODE_SUBSCRIBE, 100.0, 100)).unwrap();
    assert_eq!((again.completed, again.not_started), (0, 10));

    let publish = r.run_phase(phase(MODE_PUBLISH, 100.0, 1000)).unwrap();
    let n = &publish.notify;
    assert_eq!(
        (publish.completed, publish.failures()),
        (100, 0),
        "{publish:?}"
    );
    // Every presentity has 10 watchers; every PUBLISH after the first of a chain carries
    // SIP-If-Match (the fake answers 412 to a wrong one).
    assert_eq!(n.expected, 1000);
    assert_eq!((n.notifies, n.marked, n.unknown), (1000, 1000, 0), "{n:?}");
    assert_eq!(n.latency.count(), 1000);
    assert!(n.latency.quantile(0.99) < 1_000_000);
    assert!((n.delivery() - 1.0).abs() < 1e-9);

    let fetch = r.run_phase(phase(MODE_FETCH, 200.0, 500)).unwrap();
    assert_eq!((fetch.completed, fetch.failures()), (100, 0), "{fetch:?}");
    assert_eq!(fetch.unit_latency.count(), 100);

    let hold = r.run_phase(phase(MODE_HOLD, 0.0, 100)).unwrap();
    assert_eq!((hold.started, hold.notify.notifies), (0, 0));

    let register = r.run_phase(phase(MODE_REGISTER, 1000.0, 100)).unwrap();
    assert_eq!((register.completed, register.failures()), (70, 0));
    r.stop();
    let seen = fake.stop();
    assert_eq!(seen.subscriptions, 200);
    assert_eq!((seen.publishes, seen.conditional_failures), (100, 0));
    assert_eq!(seen.fetches, 100);
    // Every NOTIFY answered: 200 initial, 1000 fan-out, 100 queries.
    assert_eq!(seen.notifies, 1300);
    assert_eq!(seen.answers, 1300);
    assert_eq!(seen.registrations, 70);
}

#[test]
fn digest_challenges_are_answered_and_nonces_reused() {
    let fake = FakePresence::start(listen(), DOMAIN, Some("s3cret")).unwrap();
    let mut config = config();
    config.password = Some("s3cret".into());
    let mut r = runner(fake.local_addr(), 1, config);
    let register = r.run_phase(phase(MODE_REGISTER, 1000.0, 70)).unwrap();
    assert_eq!(
        (register.completed, register.failures()),
        (70, 0),
        "{register:?}"
    );
    assert_eq!(register.challenges, 70);
    let sub = r.run_phase(phase(MODE_SUBSCRIBE, 400.0, 500)).unwrap();
    assert_eq!((sub.completed, sub.failures()), (200, 0), "{sub:?}");
    // A challenge per watcher; its later subscriptions reuse the nonce (nc + 1), unless they
    // started before the first challenge came back.
    assert!((50..200).contains(&sub.challenges), "{sub:?}");
    let publish = r.run_phase(phase(MODE_PUBLISH, 100.0, 400)).unwrap();
    assert_eq!(
        (publish.completed, publish.failures()),
        (40, 0),
        "{publish:?}"
    );
    assert_eq!(publish.challenges, 20);
    assert_eq!(publish.notify.notifies, 400);
    r.stop();
    let seen = fake.stop();
    assert_eq!(seen.refused, 0);
}

#[test]
fn a_wrong_password_fails_every_unit() {
    let fake = FakePresence::start(listen(), DOMAIN, Some("s3cret")).unwrap();
    let mut config = config();
    config.password = Some("wrong".into());
    let mut r = runner(fake.local_addr(), 1, config);
    let sub = r.run_phase(phase(MODE_SUBSCRIBE, 1000.0, 20)).unwrap();
    assert_eq!((sub.completed, sub.failures()), (0, 20), "{sub:?}");
    assert_eq!(sub.status_breakdown(), "407×20");
    r.stop();
    drop(fake);
}

#[test]
fn no_password_makes_a_challenge_a_failure() {
    let fake = FakePresence::start(listen(), DOMAIN, Some("s3cret")).unwrap();
    let mut r = runner(fake.local_addr(), 1, config());
    let s: Stats = r.run_phase(phase(MODE_PUBLISH, 100.0, 100)).unwrap();
    assert_eq!(
        (s.completed, s.challenges, s.bad_challenges),
        (0, 10, 10),
        "{s:?}"
    );
    r.stop();
    drop(fake);
}

#[test]
fn the_driver_runs_every_phase() {
    use sipload::drive::{self, Criteria, Plan};
    let fake = FakePresence::start(listen(), DOMAIN, Some("s3cret")).unwrap();
    let mut config = config();
    config.password = Some("s3cret".into());
    let plan = Plan {
        subscriptions: config.subscriptions(),
        users: config.users(),
        presentities: config.presentities,
        register_rate: Some(1000.0),
        seed_rate: Some(200.0),
        subscribe_rate: 1000.0,
        settle: Duration::ZERO,
        memory_command: Some("echo 1000".into()),
        server_pid: Some(std::process::id()),
        publish_rates: vec![50.0, 100.0],
        publish_duration: Duration::from_millis(400),
        fetch_rates: vec![100.0],
        fetch_duration: Duration::from_millis(300),
        hold: Duration::from_millis(50),
        gap: Duration::ZERO,
        recover: Duration::ZERO,
        criteria: Criteria::default(),
    };
    let mut r = runner(fake.local_addr(), 2, config);
    drive::run(&mut r, &plan).unwrap();
    r.stop();
    let seen = fake.stop();
    assert_eq!(seen.registrations, 70);
    assert_eq!(seen.subscriptions, 200);
    // Seed (20), then 20 + 40 in the two steps.
    assert_eq!(seen.publishes, 80);
    assert_eq!(seen.fetches, 30);
    assert_eq!(seen.refused, 0);
}
