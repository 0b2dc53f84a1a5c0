//! The admin listener: Prometheus `/metrics` and `/health`.
//!
//! A server of its own: the counters are per process, so other tests' traffic would blur the
//! exact values checked here.

use std::time::{Duration, Instant};

use crate::support::http::{get, sample};
use crate::support::sip::ReadResult;
use crate::support::{Account, Setup, SipClient, Ua, assert_status};

const DOMAIN: &str = "metrics.test";

/// After one registration and one failed sign-in, `/metrics` counts the REGISTER requests, the
/// binding, and the failure by reason.
#[test]
fn metrics_count_registers_bindings_and_auth_failures() {
    let s = Setup::new(DOMAIN)
        .tcp(&[])
        .tls(&[])
        .user("mona", "pw-mona")
        .start();
    let mut ua = Ua::new(
        SipClient::udp(s.udp()),
        Account::new("mona", "pw-mona", DOMAIN),
    );
    assert_status(&ua.register(&["<sip:mona@192.0.2.1>"], Some(300)), 200);
    // Gauges are published once a second.
    crate::support::settle();
    crate::support::settle();

    let (status, text) = get(s.admin(), "/metrics");
    assert_eq!(status, 200, "{text}");
    // 401 + 200: two REGISTER requests.
    assert_eq!(
        sample(&text, "herald_sip_requests_total{method=\"REGISTER\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(sample(&text, "herald_registrations"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "herald_registered_users"),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("herald_auth_failures_total{"),
        "a failure counted before any failed:\n{text}"
    );

    let r = ua.register_with_password(&["<sip:mona@192.0.2.2>"], Some(300), "wrong");
    assert_status(&r, 403);
    let (_, text) = get(s.admin(), "/metrics");
    assert_eq!(
        sample(
            &text,
            "herald_auth_failures_total{reason=\"wrong_password\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "herald_sip_requests_total{method=\"REGISTER\"}"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(sample(&text, "herald_registrations"), Some(1.0), "{text}");

    // Unregistering everything brings the gauges back to 0.
    assert_status(&ua.register(&["*"], Some(0)), 200);
    crate::support::settle();
    crate::support::settle();
    let (_, text) = get(s.admin(), "/metrics");
    assert_eq!(sample(&text, "herald_registrations"), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, "herald_registered_users"),
        Some(0.0),
        "{text}"
    );
}

/// `herald_connections` follows open TCP connections, and goes back down when they close.
#[test]
fn metrics_track_open_connections() {
    let s = Setup::new(DOMAIN).tls(&[]).start();
    let mut conns: Vec<SipClient> = (0..2).map(|_| SipClient::tcp(s.tcp())).collect();
    for c in &mut conns {
        // A ping round trip: the server has surely registered the connection.
        c.send_raw(b"\r\n\r\n");
        assert!(matches!(
            c.read_stream(Duration::from_secs(3)),
            ReadResult::Data(_)
        ));
    }
    let (_, text) = get(s.admin(), "/metrics");
    assert_eq!(sample(&text, "herald_connections"), Some(2.0), "{text}");
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, text) = get(s.admin(), "/metrics");
        if sample(&text, "herald_connections") == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connections still counted:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `/health` answers 200 `ok`.
#[test]
fn health_says_ok() {
    let s = Setup::new(DOMAIN).tcp(&[]).tls(&[]).start();
    let (status, body) = get(s.admin(), "/health");
    assert_eq!(status, 200);
    assert_eq!(body.trim(), "ok");
    let (status, _) = get(s.admin(), "/no-such-page");
    assert_eq!(status, 404);
}
