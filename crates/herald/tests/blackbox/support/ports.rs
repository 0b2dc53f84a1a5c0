//! Fixed ports for servers that must come back on the ports they had (a restart) or share them
//! with another process (the members of a pool): picked free at test time, and a start that
//! loses the race for one of them is told apart from other failures.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::server::{Home, Server, Setup};

/// A port that is free for UDP and TCP on every address of `ips`, and not in `taken`.
///
/// The kernel picks it for UDP on the first address; the other binds only check it. Nothing
/// holds it afterwards, so a process may take it before the server binds it: see
/// [`start_when_free`].
pub(crate) fn free_port(ips: &[IpAddr], taken: &[u16]) -> u16 {
    let first = *ips.first().expect("at least one address");
    for _ in 0..200 {
        let probe = UdpSocket::bind(SocketAddr::new(first, 0)).expect("binding a UDP probe");
        let port = probe.local_addr().expect("probe address").port();
        if taken.contains(&port) {
            continue;
        }
        let free = ips.iter().all(|ip| {
            let addr = SocketAddr::new(*ip, port);
            let udp = *ip == first || UdpSocket::bind(addr).is_ok();
            udp && TcpListener::bind(addr).is_ok()
        });
        if free {
            return port;
        }
    }
    panic!("no port free for UDP and TCP on all of {ips:?}");
}

/// `n` distinct ports, each free for UDP and TCP on every address of `ips`.
pub(crate) fn free_ports(ips: &[IpAddr], n: usize) -> Vec<u16> {
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let p = free_port(ips, &ports);
        ports.push(p);
    }
    ports
}

/// Whether a failed start (the panic message of [`Server::start`], which carries the log) was
/// a listener that could not bind its port.
pub(crate) fn lost_a_port(message: &str) -> bool {
    message.contains("Address already in use") || message.contains("address already in use")
}

/// [`Server::start`] that returns the failure instead of panicking.
pub(crate) fn try_start(home: &Arc<Home>) -> Result<Server, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| Server::start(home.clone(), &[]))).map_err(
        |payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "herald serve did not start".to_owned())
        },
    )
}

/// Starts `serve` in `home` on the ports its config names, trying again for up to `patience`
/// while one of them is still held (by a process of another test that took it meanwhile, or
/// by the kernel just after the previous server died). Any other failure panics at once.
pub(crate) fn start_when_free(home: &Arc<Home>, patience: Duration) -> Server {
    let deadline = Instant::now() + patience;
    loop {
        match try_start(home) {
            Ok(s) => return s,
            Err(e) if lost_a_port(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// How long a restart test waits for its fixed ports to be free again.
pub(crate) const PORT_PATIENCE: Duration = Duration::from_secs(30);

/// A server for restart tests: SIP over UDP and TCP on one loopback port and the admin listener
/// on another, both fixed in the config, so that `serve` started again in the same home
/// ([`start_when_free`]) is found where clients left it. `setup` adds the users and settings.
/// Ports lost to another process before the first start are picked again.
pub(crate) fn start_on_fixed_ports(domain: &str, setup: impl Fn(Setup) -> Setup) -> Server {
    let lo = [IpAddr::from([127, 0, 0, 1])];
    let deadline = Instant::now() + PORT_PATIENCE;
    loop {
        let ports = free_ports(&lo, 2);
        let sip = format!("127.0.0.1:{}", ports[0]);
        let home = setup(Setup::new(domain).udp(&[&sip]).tcp(&[&sip]).tls(&[])).home();
        home.set_admin(&format!("127.0.0.1:{}", ports[1]));
        match try_start(&home) {
            Ok(s) => return s,
            Err(e) if lost_a_port(&e) && Instant::now() < deadline => {}
            Err(e) => panic!("{e}"),
        }
    }
}
