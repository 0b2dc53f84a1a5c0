//! A stand-in registrar for testing and calibrating the generator without herald: it answers a
//! REGISTER without credentials with 401 and two challenges (SHA-256, then MD5, as herald does),
//! and one with credentials with 200 when herald's own [`DigestAuthenticator`] accepts them, so
//! a pass is a real Digest check. It keeps no bindings and has no transaction layer.
//!
//! Its own cost per request (a Digest verification, one recv and one send) is close to the floor
//! of what herald must do, so running the generator against it shows the generator's ceiling.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use herald_auth::{
    Algorithm, ChallengeKind, Credentials, DigestAuthenticator, DigestConfig, Outcome, ha1,
};

use crate::sip::headers;

/// How the fake registrar behaves.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Where to listen (port 0: any).
    pub listen: SocketAddr,
    /// The Digest realm, and the domain users register in.
    pub realm: String,
    /// Every user's password: any user name is known.
    pub password: String,
    /// Threads reading the one socket.
    pub threads: usize,
    /// Nonce lifetime; short ones make reused nonces go stale.
    pub nonce_lifetime: Duration,
    /// Drop every k-th request datagram unanswered (0: none), to exercise retransmission.
    pub drop_every: u64,
}

impl FakeConfig {
    /// Listening on `listen` for realm `realm`, one thread, herald's default nonce lifetime.
    pub fn new(listen: SocketAddr, realm: &str, password: &str) -> Self {
        FakeConfig {
            listen,
            realm: realm.to_owned(),
            password: password.to_owned(),
            threads: 1,
            nonce_lifetime: Duration::from_secs(300),
            drop_every: 0,
        }
    }
}

/// What the fake registrar saw, summed over its threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakeStats {
    /// Datagrams received.
    pub requests: u64,
    /// 401s to requests without credentials.
    pub challenged: u64,
    /// 200s: credentials verified.
    pub accepted: u64,
    /// 401s with `stale=true`.
    pub stale: u64,
    /// Credentials refused (wrong password, replayed nonce-count, foreign nonce, bad uri).
    pub refused: u64,
    /// Datagrams that are not a REGISTER it can answer.
    pub malformed: u64,
    /// Requests dropped on purpose.
    pub dropped: u64,
}

/// A running fake registrar; stops when [`FakeRegistrar::stop`] is called or it is dropped.
pub struct FakeRegistrar {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<FakeStats>>,
}

impl FakeRegistrar {
    /// Binds the socket and starts the threads.
    pub fn start(config: FakeConfig) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::for_address(config.listen),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        // Bursts from a paced generator must not overflow the default buffer while a thread
        // is descheduled; the kernel caps this at net.core.rmem_max.
        let _ = socket.set_recv_buffer_size(8 << 20);
        socket.bind(&config.listen.into())?;
        let socket = UdpSocket::from(socket);
        socket.set_read_timeout(Some(POLL_STOP))?;
        let local = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let secret: [u8; 32] = rand::random();
        let epoch = Instant::now();
        let mut threads = Vec::new();
        for i in 0..config.threads.max(1) {
            let socket = socket.try_clone()?;
            let stop = Arc::clone(&stop);
            let config = config.clone();
            threads.push(
                thread::Builder::new()
                    .name(format!("fake-registrar-{i}"))
                    .spawn(move || serve(socket, &config, secret, epoch, &stop))?,
            );
        }
        Ok(FakeRegistrar {
            local,
            stop,
            threads,
        })
    }

    /// The address it answers on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops the threads and sums what they saw.
    pub fn stop(mut self) -> FakeStats {
        self.stop_threads()
    }

    fn stop_threads(&mut self) -> FakeStats {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = FakeStats::default();
        for t in self.threads.drain(..) {
            if let Ok(s) = t.join() {
                total.requests += s.requests;
                total.challenged += s.challenged;
                total.accepted += s.accepted;
                total.stale += s.stale;
                total.refused += s.refused;
                total.malformed += s.malformed;
                total.dropped += s.dropped;
            }
        }
        total
    }
}

impl Drop for FakeRegistrar {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn serve(
    socket: UdpSocket,
    config: &FakeConfig,
    secret: [u8; 32],
    epoch: Instant,
    stop: &AtomicBool,
) -> FakeStats {
    let digest = DigestConfig {
        nonce_lifetime: config.nonce_lifetime,
        ..DigestConfig::default()
    };
    let mut registrar = Registrar {
        config,
        auth: DigestAuthenticator::new(digest, secret, epoch),
        ha1_sha256: HashMap::new(),
        stats: FakeStats::default(),
    };
    let mut buffer = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(2048);
    while !stop.load(Ordering::Relaxed) {
        // An error is the read timeout, to look at `stop`, or an ICMP error: go on.
        let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        registrar.stats.requests += 1;
        if config.drop_every > 0 && registrar.stats.requests.is_multiple_of(config.drop_every) {
            registrar.stats.dropped += 1;
            continue;
        }
        if registrar.answer(Instant::now(), &buffer[..n], &mut out) {
            let _ = socket.send_to(&out, peer);
        } else {
            registrar.stats.malformed += 1;
        }
    }
    registrar.stats
}

struct Registrar<'a> {
    config: &'a FakeConfig,
    auth: DigestAuthenticator,
    ha1_sha256: HashMap<String, String>,
    stats: FakeStats,
}

/// The headers of a REGISTER the answer echoes or checks.
#[derive(Default)]
struct Request<'a> {
    uri: &'a [u8],
    vias: Vec<&'a [u8]>,
    from: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    call_id: Option<&'a [u8]>,
    cseq: Option<&'a [u8]>,
    contact: Option<&'a [u8]>,
    authorization: Option<&'a [u8]>,
}

impl Registrar<'_> {
    /// Writes the answer to `request` into `out`; `false` when it is not a REGISTER to answer.
    fn answer(&mut self, now: Instant, request: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(req) = parse_register(request) else {
            return false;
        };
        let realm = self.config.realm.as_str();
        let (status, challenge) = match req.authorization {
            None => {
                self.stats.challenged += 1;
                (401, Some(false))
            }
            Some(value) => match self.verify(now, &req, value) {
                Outcome::Ok => {
                    self.stats.accepted += 1;
                    (200, None)
                }
                Outcome::Stale => {
                    self.stats.stale += 1;
                    (401, Some(true))
                }
                _ => {
                    self.stats.refused += 1;
                    (401, Some(false))
                }
            },
        };
        out.clear();
        let reason: &[u8] = if status == 200 {
            b"OK"
        } else {
            b"Unauthorized"
        };
        push_line(
            out,
            &[b"SIP/2.0 ", status.to_string().as_bytes(), b" ", reason],
        );
        for via in &req.vias {
            push_line(out, &[b"Via: ", via]);
        }
        let to = req.to.unwrap_or_default();
        let tag: &[u8] = if contains(to, b";tag=") {
            b""
        } else {
            b";tag=fake"
        };
        push_line(out, &[b"From: ", req.from.unwrap_or_default()]);
        push_line(out, &[b"To: ", to, tag]);
        push_line(out, &[b"Call-ID: ", req.call_id.unwrap_or_default()]);
        push_line(out, &[b"CSeq: ", req.cseq.unwrap_or_default()]);
        if let Some(stale) = challenge {
            let mut rng = rand::rng();
            let c = self
                .auth
                .challenge(now, &mut rng, ChallengeKind::Www, realm, stale);
            for value in &c.values {
                push_line(out, &[b"WWW-Authenticate: ", value.as_bytes()]);
            }
        } else if let Some(contact) = req.contact {
            push_line(out, &[b"Contact: ", contact]);
        }
        out.extend_from_slice(b"Server: sipload-fake\r\nContent-Length: 0\r\n\r\n");
        true
    }

    fn verify(&mut self, now: Instant, req: &Request<'_>, value: &[u8]) -> Outcome {
        let Ok(Credentials::Digest(credentials)) = Credentials::parse(value) else {
            return Outcome::BadNonce;
        };
        if credentials.uri.as_bytes() != req.uri {
            return Outcome::WrongPassword;
        }
        let realm = self.config.realm.as_str();
        let algorithm = credentials.algorithm().base();
        let password = self.config.password.as_str();
        if algorithm != Algorithm::Sha256 {
            let stored = ha1(algorithm, &credentials.username, realm, password);
            return self
                .auth
                .verify(now, &credentials, "REGISTER", realm, Some(&stored));
        }
        if !self.ha1_sha256.contains_key(&credentials.username) {
            let stored = ha1(algorithm, &credentials.username, realm, password);
            self.ha1_sha256.insert(credentials.username.clone(), stored);
        }
        let stored = self
            .ha1_sha256
            .get(&credentials.username)
            .map(String::as_str);
        self.auth
            .verify(now, &credentials, "REGISTER", realm, stored)
    }
}

fn parse_register(request: &[u8]) -> Option<Request<'_>> {
    let (start, fields) = headers::split(request);
    let mut parts = start.split(|b| *b == b' ');
    if parts.next()? != b"REGISTER" {
        return None;
    }
    let mut req = Request {
        uri: parts.next()?,
        ..Request::default()
    };
    for f in fields {
        if f.is("Via", Some(b'v')) {
            req.vias.push(f.value);
        } else if f.is("From", Some(b'f')) {
            req.from = Some(f.value);
        } else if f.is("To", Some(b't')) {
            req.to = Some(f.value);
        } else if f.is("Call-ID", Some(b'i')) {
            req.call_id = Some(f.value);
        } else if f.is("CSeq", None) {
            req.cseq = Some(f.value);
        } else if f.is("Contact", Some(b'm')) {
            req.contact = Some(f.value);
        } else if f.is("Authorization", None) {
            req.authorization = Some(f.value);
        }
    }
    let complete = !req.vias.is_empty()
        && req.from.is_some()
        && req.to.is_some()
        && req.call_id.is_some()
        && req.cseq.is_some();
    complete.then_some(req)
}

fn push_line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// How often the threads look at the stop flag while idle.
const POLL_STOP: Duration = Duration::from_millis(50);
