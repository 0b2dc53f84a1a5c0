//! A stand-in presence server for testing and calibrating the presence scenario without herald
//! or Kamailio: it answers REGISTER 200; SUBSCRIBE with 200 and a NOTIFY of the current state
//! (`terminated` for Expires: 0); PUBLISH with 200 and a fresh `SIP-ETag` (412 when
//! `SIP-If-Match` names another), then NOTIFYs every subscriber with the published body, as
//! Kamailio's presence module does with `force_active`. With a password it challenges as herald
//! does outside its trusted networks (401 for REGISTER, 407 for the rest) and checks the
//! credentials with herald's own [`DigestAuthenticator`]. No transaction layer, no
//! retransmission, one thread: its cost per NOTIFY is close to the floor of any server's, so the
//! generator's rate against it is the generator's own ceiling.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use herald_auth::{ChallengeKind, Credentials, DigestAuthenticator, DigestConfig, Outcome, ha1};
use socket2::{Domain, Protocol, Socket, Type};

use crate::sip::headers;

/// What the fake saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakePresenceStats {
    /// Datagrams received.
    pub received: u64,
    /// SUBSCRIBEs that created a subscription.
    pub subscriptions: u64,
    /// One-time queries (Expires: 0).
    pub fetches: u64,
    /// PUBLISHes accepted.
    pub publishes: u64,
    /// PUBLISHes refused 412.
    pub conditional_failures: u64,
    /// NOTIFYs sent.
    pub notifies: u64,
    /// 200s received (answers to NOTIFYs).
    pub answers: u64,
    /// REGISTERs answered.
    pub registrations: u64,
    /// Datagrams it could not use.
    pub malformed: u64,
    /// Requests challenged (401/407).
    pub challenged: u64,
    /// Credentials refused.
    pub refused: u64,
}

/// A running fake presence server; stops on [`FakePresence::stop`] or drop.
pub struct FakePresence {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<FakePresenceStats>>,
}

impl FakePresence {
    /// Binds `listen` (port 0: any) for `domain` and starts answering; with `password`, every
    /// request must carry Digest credentials for it.
    pub fn start(listen: SocketAddr, domain: &str, password: Option<&str>) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::for_address(listen),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        let _ = socket.set_recv_buffer_size(8 << 20);
        let _ = socket.set_send_buffer_size(8 << 20);
        socket.bind(&listen.into())?;
        let socket = UdpSocket::from(socket);
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let local = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let domain = domain.to_owned();
        let password = password.map(str::to_owned);
        let thread = thread::Builder::new()
            .name("fake-presence".into())
            .spawn(move || serve(&socket, local, &domain, password.as_deref(), &flag))?;
        Ok(FakePresence {
            local,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it answers.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops it and returns what it saw.
    pub fn stop(mut self) -> FakePresenceStats {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> FakePresenceStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for FakePresence {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

struct Watcher {
    peer: SocketAddr,
    target: Vec<u8>,
    call_id: Vec<u8>,
    /// The watcher's From value (with its tag): the NOTIFY's To.
    from: Vec<u8>,
    tag: u64,
    cseq: u32,
}

#[derive(Default)]
struct Presentity {
    etag: u64,
    body: Vec<u8>,
    watchers: Vec<Watcher>,
}

struct Server<'a> {
    socket: &'a UdpSocket,
    local: SocketAddr,
    domain: &'a str,
    password: Option<&'a str>,
    auth: DigestAuthenticator,
    presentities: HashMap<Vec<u8>, Presentity>,
    next_tag: u64,
    next_etag: u64,
    out: Vec<u8>,
    stats: FakePresenceStats,
}

fn serve(
    socket: &UdpSocket,
    local: SocketAddr,
    domain: &str,
    password: Option<&str>,
    stop: &AtomicBool,
) -> FakePresenceStats {
    let mut server = Server {
        socket,
        local,
        domain,
        password,
        auth: DigestAuthenticator::new(DigestConfig::default(), rand::random(), Instant::now()),
        presentities: HashMap::new(),
        next_tag: 1,
        next_etag: 1,
        out: Vec::with_capacity(2048),
        stats: FakePresenceStats::default(),
    };
    let mut buffer = vec![0u8; 65_535];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        server.stats.received += 1;
        if !server.handle(&buffer[..n], peer) {
            server.stats.malformed += 1;
        }
    }
    server.stats
}

/// The headers of a request the fake answers.
#[derive(Default)]
struct Req<'a> {
    method: &'a [u8],
    user: &'a [u8],
    vias: Vec<&'a [u8]>,
    from: &'a [u8],
    to: &'a [u8],
    call_id: &'a [u8],
    cseq: &'a [u8],
    contact: &'a [u8],
    expires: Option<u32>,
    if_match: Option<&'a [u8]>,
    credentials: Option<&'a [u8]>,
    body: &'a [u8],
}

impl Server<'_> {
    fn handle(&mut self, datagram: &[u8], peer: SocketAddr) -> bool {
        if datagram.starts_with(b"SIP/2.0 ") {
            self.stats.answers += 1;
            return true;
        }
        let Some(req) = parse(datagram) else {
            return false;
        };
        if self.password.is_some() && !self.authorized(&req, peer) {
            return true;
        }
        match req.method {
            b"REGISTER" => {
                self.stats.registrations += 1;
                self.respond(&req, peer, 200, "OK", None, 0);
            }
            b"SUBSCRIBE" => self.subscribe(&req, peer),
            b"PUBLISH" => self.publish(&req, peer),
            _ => self.respond(&req, peer, 405, "Method Not Allowed", None, 0),
        }
        true
    }

    /// Checks the request's credentials, answering a challenge when they are missing or wrong.
    fn authorized(&mut self, req: &Req<'_>, peer: SocketAddr) -> bool {
        let now = Instant::now();
        let register = req.method == b"REGISTER";
        let (kind, status, reason) = if register {
            (ChallengeKind::Www, 401, "Unauthorized")
        } else {
            (ChallengeKind::Proxy, 407, "Proxy Authentication Required")
        };
        let mut stale = false;
        if let Some(value) = req.credentials {
            if let Ok(Credentials::Digest(c)) = Credentials::parse(value) {
                let password = self.password.unwrap_or_default();
                let stored = ha1(c.algorithm().base(), &c.username, self.domain, password);
                let method = std::str::from_utf8(req.method).unwrap_or_default();
                match self
                    .auth
                    .verify(now, &c, method, self.domain, Some(&stored))
                {
                    Outcome::Ok => return true,
                    Outcome::Stale => stale = true,
                    _ => self.stats.refused += 1,
                }
            } else {
                self.stats.refused += 1;
            }
        }
        self.stats.challenged += 1;
        let challenge = self
            .auth
            .challenge(now, &mut rand::rng(), kind, self.domain, stale);
        let header = if register {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let mut extra = Vec::new();
        for value in &challenge.values {
            let _ = write!(extra, "{header}: {value}\r\n");
        }
        self.respond_with(req, peer, status, reason, None, 0, &extra);
        false
    }

    fn subscribe(&mut self, req: &Req<'_>, peer: SocketAddr) {
        let tag = self.next_tag;
        self.next_tag += 1;
        let expires = req.expires.unwrap_or(3600);
        self.respond(req, peer, 200, "OK", None, tag);
        let target = angle(req.contact).to_vec();
        let watcher = Watcher {
            peer,
            target,
            call_id: req.call_id.to_vec(),
            from: req.from.to_vec(),
            tag,
            cseq: 0,
        };
        let presentity = self.presentities.entry(req.user.to_vec()).or_default();
        let body = std::mem::take(&mut presentity.body);
        if expires == 0 {
            self.stats.fetches += 1;
            let mut w = watcher;
            self.notify(&mut w, req.user, &body, true);
        } else {
            self.stats.subscriptions += 1;
            let mut w = watcher;
            self.notify(&mut w, req.user, &body, false);
            if let Some(p) = self.presentities.get_mut(req.user) {
                p.watchers.push(w);
            }
        }
        if let Some(p) = self.presentities.get_mut(req.user) {
            p.body = body;
        }
    }

    fn publish(&mut self, req: &Req<'_>, peer: SocketAddr) {
        let presentity = self.presentities.entry(req.user.to_vec()).or_default();
        if let Some(m) = req.if_match
            && std::str::from_utf8(m).ok().and_then(|m| m.parse().ok()) != Some(presentity.etag)
        {
            self.stats.conditional_failures += 1;
            self.respond(req, peer, 412, "Conditional Request Failed", None, 0);
            return;
        }
        let etag = self.next_etag;
        self.next_etag += 1;
        presentity.etag = etag;
        if !req.body.is_empty() {
            presentity.body.clear();
            presentity.body.extend_from_slice(req.body);
        }
        self.stats.publishes += 1;
        self.respond(req, peer, 200, "OK", Some(etag), 0);
        let Some(mut p) = self.presentities.remove(req.user) else {
            return;
        };
        for w in &mut p.watchers {
            self.notify(w, req.user, &p.body, false);
        }
        self.presentities.insert(req.user.to_vec(), p);
    }

    fn notify(&mut self, w: &mut Watcher, user: &[u8], body: &[u8], terminated: bool) {
        w.cseq += 1;
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(b"NOTIFY ");
        out.extend_from_slice(&w.target);
        let _ = write!(
            out,
            " SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKfake{}.{}\r\nMax-Forwards: 70\r\nFrom: <sip:",
            self.local, w.tag, w.cseq
        );
        out.extend_from_slice(user);
        let _ = write!(out, "@{}>;tag=fake{}\r\nTo: ", self.domain, w.tag);
        out.extend_from_slice(&w.from);
        out.extend_from_slice(b"\r\nCall-ID: ");
        out.extend_from_slice(&w.call_id);
        let _ = write!(
            out,
            "\r\nCSeq: {} NOTIFY\r\nContact: <sip:presence@{}>\r\nEvent: presence\r\n\
             Subscription-State: {}\r\n",
            w.cseq,
            self.local,
            if terminated {
                "terminated;reason=timeout"
            } else {
                "active;expires=3600"
            }
        );
        if !body.is_empty() {
            out.extend_from_slice(b"Content-Type: application/pidf+xml\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
        self.stats.notifies += 1;
        let _ = self.socket.send_to(out, w.peer);
    }

    fn respond(
        &mut self,
        req: &Req<'_>,
        peer: SocketAddr,
        status: u16,
        reason: &str,
        etag: Option<u64>,
        tag: u64,
    ) {
        self.respond_with(req, peer, status, reason, etag, tag, &[]);
    }

    #[allow(clippy::too_many_arguments)]
    fn respond_with(
        &mut self,
        req: &Req<'_>,
        peer: SocketAddr,
        status: u16,
        reason: &str,
        etag: Option<u64>,
        tag: u64,
        extra: &[u8],
    ) {
        let out = &mut self.out;
        out.clear();
        let _ = write!(out, "SIP/2.0 {status} {reason}\r\n");
        for via in &req.vias {
            out.extend_from_slice(b"Via: ");
            out.extend_from_slice(via);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"From: ");
        out.extend_from_slice(req.from);
        out.extend_from_slice(b"\r\nTo: ");
        out.extend_from_slice(req.to);
        let _ = write!(out, ";tag=fake{tag}\r\nCall-ID: ");
        out.extend_from_slice(req.call_id);
        out.extend_from_slice(b"\r\nCSeq: ");
        out.extend_from_slice(req.cseq);
        out.extend_from_slice(b"\r\n");
        if let Some(etag) = etag {
            let _ = write!(out, "SIP-ETag: {etag}\r\nExpires: 3600\r\n");
        }
        out.extend_from_slice(extra);
        if req.method == b"SUBSCRIBE" && status < 300 {
            let _ = write!(
                out,
                "Contact: <sip:presence@{}>\r\nExpires: {}\r\n",
                self.local,
                req.expires.unwrap_or(3600)
            );
        }
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        let _ = self.socket.send_to(out, peer);
    }
}

fn parse(datagram: &[u8]) -> Option<Req<'_>> {
    let (start, fields) = headers::split(datagram);
    let mut parts = start.split(|b| *b == b' ');
    let method = parts.next()?;
    let uri = parts.next()?;
    let user = uri.strip_prefix(b"sip:").unwrap_or(uri);
    let user = &user[..memchr::memchr(b'@', user).unwrap_or(user.len())];
    let mut req = Req {
        method,
        user,
        ..Req::default()
    };
    let mut content_length = None;
    for f in fields {
        if f.is("Via", Some(b'v')) {
            req.vias.push(f.value);
        } else if f.is("From", Some(b'f')) {
            req.from = f.value;
        } else if f.is("To", Some(b't')) {
            req.to = f.value;
        } else if f.is("Call-ID", Some(b'i')) {
            req.call_id = f.value;
        } else if f.is("CSeq", None) {
            req.cseq = f.value;
        } else if f.is("Contact", Some(b'm')) {
            req.contact = f.value;
        } else if f.is("Expires", None) {
            req.expires = std::str::from_utf8(f.value).ok()?.parse().ok();
        } else if f.is("SIP-If-Match", None) {
            req.if_match = Some(f.value);
        } else if f.is("Authorization", None) || f.is("Proxy-Authorization", None) {
            req.credentials = Some(f.value);
        } else if f.is("Content-Length", Some(b'l')) {
            content_length = std::str::from_utf8(f.value).ok()?.parse::<usize>().ok();
        }
    }
    if let Some(end) = memchr::memmem::find(datagram, b"\r\n\r\n") {
        let body = &datagram[end + 4..];
        req.body = &body[..content_length.unwrap_or(body.len()).min(body.len())];
    }
    let complete = !req.vias.is_empty() && !req.call_id.is_empty() && !req.cseq.is_empty();
    complete.then_some(req)
}

/// The URI inside `<...>`, or the whole value.
fn angle(value: &[u8]) -> &[u8] {
    match (memchr::memchr(b'<', value), memchr::memchr(b'>', value)) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value,
    }
}
