//! A small SIP user agent over real sockets: UDP, TCP and TLS; requests written as text,
//! responses parsed with `herald_sip`, Digest answers computed with `herald_auth`.
//!
//! Every read has a timeout, so a server that does not answer fails the test instead of
//! hanging it.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_sip::{Frame, HeaderName, Limits, Message, Response, StreamDeframer};

/// How long to wait for the answer to a request before failing.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A unique token for tags, branches and Call-IDs.
pub(crate) fn token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}{n:x}", std::process::id(), t)
}

/// The transport a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub(crate) fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

enum Conn {
    Udp(UdpSocket),
    Stream {
        io: Box<dyn Stream>,
        deframer: Box<StreamDeframer>,
        /// The TCP socket under `io`, for shutting down its write side.
        tcp: TcpStream,
    },
}

/// One client socket or connection to the server.
pub(crate) struct SipClient {
    conn: Conn,
    pub(crate) transport: Transport,
    pub(crate) local: SocketAddr,
    pub(crate) server: SocketAddr,
}

impl SipClient {
    /// A UDP socket on the loopback address of the server's family.
    pub(crate) fn udp(server: SocketAddr) -> Self {
        let ip = if server.is_ipv6() {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        Self::udp_from(ip, server)
    }

    /// A UDP socket bound to `ip` (any 127.0.0.0/8 address works on Linux): the server sees a
    /// distinct source address, so per-address state (throttling) of one test cannot leak into
    /// another.
    pub(crate) fn udp_from(ip: IpAddr, server: SocketAddr) -> Self {
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0))
            .unwrap_or_else(|e| panic!("binding a UDP socket on {ip}: {e}"));
        sock.connect(server).expect("connecting the UDP socket");
        let local = sock.local_addr().expect("local address");
        Self {
            conn: Conn::Udp(sock),
            transport: Transport::Udp,
            local,
            server,
        }
    }

    /// A TCP connection.
    pub(crate) fn tcp(server: SocketAddr) -> Self {
        let stream = connect_tcp(server);
        let local = stream.local_addr().expect("local address");
        let tcp = stream.try_clone().expect("a second handle on the socket");
        Self {
            conn: Conn::Stream {
                io: Box::new(stream),
                deframer: Box::new(StreamDeframer::new(Limits::default())),
                tcp,
            },
            transport: Transport::Tcp,
            local,
            server,
        }
    }

    /// A TLS connection that trusts only `cert_pem` and checks the name `server_name`
    /// (`localhost` or an IP address the certificate lists).
    pub(crate) fn tls(server: SocketAddr, cert_pem: &Path, server_name: &str) -> Self {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(cert_pem)
            .unwrap_or_else(|e| panic!("reading {}: {e}", cert_pem.display()))
        {
            roots
                .add(cert.expect("a PEM certificate"))
                .expect("a usable trust anchor");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
            .expect("a valid server name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("a TLS client");
        let tcp = connect_tcp(server);
        let local = tcp.local_addr().expect("local address");
        let handle = tcp.try_clone().expect("a second handle on the socket");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Drive the handshake now, so a certificate problem fails here with a clear message.
        // The socket's short read timeout surfaces as WouldBlock: retry until the deadline.
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        while tls.conn.is_handshaking() {
            match tls.conn.complete_io(&mut tls.sock) {
                Ok(_) => {}
                Err(e) if is_timeout(&e) && Instant::now() < deadline => {}
                Err(e) => panic!("TLS handshake with {server} failed: {e}"),
            }
        }
        Self {
            conn: Conn::Stream {
                io: Box::new(tls),
                deframer: Box::new(StreamDeframer::new(Limits::default())),
                tcp: handle,
            },
            transport: Transport::Tls,
            local,
            server,
        }
    }

    /// `SIP/2.0/UDP 127.0.0.1:PORT;rport;branch=z9hG4bK...` for this client.
    pub(crate) fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {};rport;branch=z9hG4bK{}",
            self.transport.via_token(),
            host_port(self.local),
            token()
        )
    }

    /// `<sip:user@IP:PORT;transport=...>`: a Contact that reaches this client.
    pub(crate) fn contact(&self, user: &str) -> String {
        format!(
            "<sip:{user}@{};transport={}>",
            host_port(self.local),
            self.transport.via_token().to_ascii_lowercase()
        )
    }

    /// Writes raw bytes: one datagram, or bytes on the stream.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.conn {
            Conn::Udp(sock) => {
                let n = sock.send(bytes).expect("sending a datagram");
                assert_eq!(n, bytes.len(), "datagram truncated on send");
            }
            Conn::Stream { io, .. } => {
                io.write_all(bytes).expect("writing to the connection");
                io.flush().expect("flushing the connection");
            }
        }
    }

    /// The next datagram, or the next message framed from the stream; `None` after `timeout`.
    pub(crate) fn recv_raw(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        match &mut self.conn {
            Conn::Udp(sock) => {
                let mut buf = vec![0u8; 70_000];
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    sock.set_read_timeout(Some(left)).expect("read timeout");
                    match sock.recv(&mut buf) {
                        Ok(n) => return Some(buf[..n].to_vec()),
                        Err(e) if is_timeout(&e) => return None,
                        // ICMP port unreachable from an earlier send, for one.
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                        Err(e) => panic!("UDP receive failed: {e}"),
                    }
                }
            }
            Conn::Stream { io, deframer, .. } => loop {
                match deframer.next_frame() {
                    Ok(Some(Frame::Message(m))) => return Some(m.to_bytes().to_vec()),
                    Ok(Some(Frame::Invalid { bytes, error })) => {
                        panic!("the server sent an unparseable message ({error}): {bytes:?}")
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => panic!("the server's stream cannot be framed: {e}"),
                }
                let mut buf = [0u8; 16 * 1024];
                match read_with_deadline(io.as_mut(), &mut buf, deadline) {
                    ReadResult::Data(n) => deframer.feed(&buf[..n]),
                    ReadResult::Timeout => return None,
                    ReadResult::Closed => panic!("the server closed the connection"),
                }
            },
        }
    }

    /// Half-closes a stream: no more bytes from this side, reading goes on.
    pub(crate) fn shutdown_write(&mut self) {
        let Conn::Stream { tcp, .. } = &mut self.conn else {
            panic!("shutdown_write on a UDP client");
        };
        tcp.shutdown(std::net::Shutdown::Write)
            .expect("shutting down the write side");
    }

    /// Reads raw bytes from a stream as they come (for pongs and close detection).
    pub(crate) fn read_stream(&mut self, timeout: Duration) -> ReadResult<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let Conn::Stream { io, .. } = &mut self.conn else {
            panic!("read_stream on a UDP client");
        };
        let mut buf = [0u8; 16 * 1024];
        match read_with_deadline(io.as_mut(), &mut buf, deadline) {
            ReadResult::Data(n) => ReadResult::Data(buf[..n].to_vec()),
            ReadResult::Timeout => ReadResult::Timeout,
            ReadResult::Closed => ReadResult::Closed,
        }
    }

    /// Waits until the server closes the connection, discarding what it sends meanwhile.
    /// Returns how long that took, or `None` if it is still open after `timeout`.
    pub(crate) fn wait_closed(&mut self, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match self.read_stream(left) {
                ReadResult::Closed => return Some(start.elapsed()),
                ReadResult::Timeout => return None,
                ReadResult::Data(_) => {}
            }
        }
    }

    /// The next response, parsed; `None` after `timeout`. Panics on a message that does not
    /// parse as a response.
    pub(crate) fn recv_response(&mut self, timeout: Duration) -> Option<Response> {
        let raw = self.recv_raw(timeout)?;
        Some(parse_response(&raw))
    }

    /// Sends `request` (text with `\r\n` line ends) and returns the final response whose
    /// Call-ID and CSeq match it, skipping provisional and stray responses.
    #[track_caller]
    pub(crate) fn request(&mut self, request: &str) -> Response {
        self.try_request(request, ANSWER_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "no answer within {ANSWER_TIMEOUT:?} from {} to:\n{request}",
                    self.server
                )
            })
    }

    /// Like [`SipClient::request`], but `None` when nothing matching arrives within `timeout`.
    pub(crate) fn try_request(&mut self, request: &str, timeout: Duration) -> Option<Response> {
        let sent = Message::parse(
            Bytes::copy_from_slice(request.as_bytes()),
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("the test built an invalid request ({e}):\n{request}"));
        let call_id = sent.call_id().to_owned();
        let cseq = sent.cseq().clone();
        self.send_raw(request.as_bytes());
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self.recv_response(left)?;
            if r.call_id() == call_id && *r.cseq() == cseq && r.status() >= 200 {
                return Some(r);
            }
        }
    }
}

/// What a raw stream read returned.
#[derive(Debug)]
pub(crate) enum ReadResult<T = usize> {
    Data(T),
    Timeout,
    Closed,
}

fn read_with_deadline(io: &mut dyn Stream, buf: &mut [u8], deadline: Instant) -> ReadResult {
    // The socket's read timeout is set at connect time to a short poll interval; loop here
    // until the deadline.
    loop {
        match io.read(buf) {
            Ok(0) => return ReadResult::Closed,
            Ok(n) => return ReadResult::Data(n),
            Err(e) if is_timeout(&e) => {
                if Instant::now() >= deadline {
                    return ReadResult::Timeout;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                        | ErrorKind::UnexpectedEof
                ) =>
            {
                return ReadResult::Closed;
            }
            Err(e) => panic!("reading from the connection failed: {e}"),
        }
    }
}

/// Poll interval of stream reads; a read returns at least this often so deadlines hold.
const STREAM_POLL: Duration = Duration::from_millis(50);

fn connect_tcp(server: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&server, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to {server}: {e}"));
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
        .set_read_timeout(Some(STREAM_POLL))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    stream
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// `127.0.0.1:5060` or `[::1]:5060`.
pub(crate) fn host_port(addr: SocketAddr) -> String {
    addr.to_string()
}

/// Parses bytes the server sent as a response; panics with the bytes if they are not one.
#[track_caller]
pub(crate) fn parse_response(raw: &[u8]) -> Response {
    match Message::parse(Bytes::copy_from_slice(raw), &Limits::default()) {
        Ok(Message::Response(r)) => r,
        Ok(Message::Request(_)) => panic!(
            "expected a response, got a request:\n{}",
            String::from_utf8_lossy(raw)
        ),
        Err(e) => panic!(
            "the server sent an unparseable message ({e}):\n{}",
            String::from_utf8_lossy(raw)
        ),
    }
}

/// The whole response as text, for assertion messages.
pub(crate) fn show(r: &Response) -> String {
    String::from_utf8_lossy(&r.to_bytes()).into_owned()
}

/// Every field named `name`, as text.
pub(crate) fn headers(r: &Response, name: &str) -> Vec<String> {
    r.headers_named(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// The header names of a response in order, lower-cased.
pub(crate) fn header_names(r: &Response) -> Vec<String> {
    r.headers()
        .map(|h| String::from_utf8_lossy(h.raw_name()).to_ascii_lowercase())
        .collect()
}

/// A SIP request written as text. The Via, tags and Call-ID are generated unless set.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    method: String,
    uri: String,
    via: Option<String>,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    max_forwards: Option<u32>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    /// `METHOD uri` from and to `aor` (a `sip:` URI).
    pub(crate) fn new(method: &str, uri: &str, aor: &str) -> Self {
        Self {
            method: method.to_owned(),
            uri: uri.to_owned(),
            via: None,
            from: format!("<{aor}>;tag={}", token()),
            to: format!("<{aor}>"),
            call_id: format!("{}@blackbox.test", token()),
            cseq: 1,
            max_forwards: Some(70),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub(crate) fn via(mut self, via: &str) -> Self {
        self.via = Some(via.to_owned());
        self
    }

    pub(crate) fn call_id(mut self, call_id: &str) -> Self {
        self.call_id = call_id.to_owned();
        self
    }

    pub(crate) fn cseq(mut self, cseq: u32) -> Self {
        self.cseq = cseq;
        self
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn max_forwards(mut self, value: Option<u32>) -> Self {
        self.max_forwards = value;
        self
    }

    pub(crate) fn to(mut self, to: &str) -> Self {
        self.to = to.to_owned();
        self
    }

    /// The whole From value (`<sip:a@b>;tag=x`).
    pub(crate) fn from(mut self, from: &str) -> Self {
        self.from = from.to_owned();
        self
    }

    pub(crate) fn method(&self) -> &str {
        &self.method
    }

    pub(crate) fn uri(&self) -> &str {
        &self.uri
    }

    pub(crate) fn seq(&self) -> u32 {
        self.cseq
    }

    pub(crate) fn call_id_value(&self) -> &str {
        &self.call_id
    }

    pub(crate) fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    /// The text for sending from `client` (its Via unless one was set).
    pub(crate) fn text(&self, client: &SipClient) -> String {
        let via = self.via.clone().unwrap_or_else(|| client.via());
        let mut t = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        t.push_str(&format!("Via: {via}\r\n"));
        if let Some(mf) = self.max_forwards {
            t.push_str(&format!("Max-Forwards: {mf}\r\n"));
        }
        t.push_str(&format!("From: {}\r\n", self.from));
        t.push_str(&format!("To: {}\r\n", self.to));
        t.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        t.push_str(&format!("CSeq: {} {}\r\n", self.cseq, self.method));
        for (name, value) in &self.headers {
            t.push_str(&format!("{name}: {value}\r\n"));
        }
        t.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        t.push_str(&self.body);
        t
    }

    /// Sends it from `client` and returns the final response.
    #[track_caller]
    pub(crate) fn send(&self, client: &mut SipClient) -> Response {
        let text = self.text(client);
        client.request(&text)
    }
}

/// A user's sign-in data.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) domain: String,
}

impl Account {
    pub(crate) fn new(user: &str, password: &str, domain: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            domain: domain.to_owned(),
        }
    }

    /// `sip:user@domain`.
    pub(crate) fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// `sip:domain`: the registrar's Request-URI.
    pub(crate) fn registrar_uri(&self) -> String {
        format!("sip:{}", self.domain)
    }
}

/// Picks the challenge a client answers: the first one, or the first with `algorithm`.
#[track_caller]
pub(crate) fn pick_challenge(r: &Response, header: &str, algorithm: Option<&str>) -> String {
    let all = headers(r, header);
    assert!(!all.is_empty(), "no {header} in:\n{}", show(r));
    match algorithm {
        None => all[0].clone(),
        Some(a) => all
            .iter()
            .find(|c| {
                c.split(',').any(|p| {
                    let p = p.trim().trim_start_matches("Digest").trim();
                    p.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("algorithm")
                            && v.trim().trim_matches('"').eq_ignore_ascii_case(a)
                    })
                })
            })
            .unwrap_or_else(|| panic!("no {a} challenge among {all:?}"))
            .clone(),
    }
}

/// The Authorization value answering `challenge`.
pub(crate) fn answer(
    challenge: &str,
    account: &Account,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    herald_auth::answer_challenge(
        challenge,
        &account.user,
        password,
        method,
        uri,
        &token(),
        herald_auth::NonceCount(nc),
    )
    .unwrap_or_else(|e| panic!("cannot answer {challenge:?}: {e}"))
    .to_string()
}

/// A registering user agent: one Call-ID, CSeq counting up, Digest answered on 401.
pub(crate) struct Ua {
    pub(crate) client: SipClient,
    pub(crate) account: Account,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    /// The algorithm to answer with; the server's first challenge when `None`.
    pub(crate) algorithm: Option<&'static str>,
    /// The last 401 answered, for tests that look at it.
    pub(crate) last_challenge: Option<Response>,
}

impl Ua {
    pub(crate) fn new(client: SipClient, account: Account) -> Self {
        Self {
            client,
            account,
            call_id: format!("{}@blackbox.test", token()),
            cseq: 0,
            algorithm: None,
            last_challenge: None,
        }
    }

    /// A REGISTER of this UA's AOR with the next CSeq (without credentials).
    pub(crate) fn register_request(&mut self, contacts: &[&str], expires: Option<u32>) -> Req {
        self.cseq += 1;
        let mut req = Req::new(
            "REGISTER",
            &self.account.registrar_uri(),
            &self.account.aor(),
        )
        .call_id(&self.call_id)
        .cseq(self.cseq);
        for c in contacts {
            req = req.header("Contact", c);
        }
        if let Some(e) = expires {
            req = req.header("Expires", &e.to_string());
        }
        req
    }

    /// RFC 3261 §10.2 with §22: REGISTER, 401, REGISTER with Authorization; returns the final
    /// answer to the second request (or the first, when it was not a 401).
    #[track_caller]
    pub(crate) fn register(&mut self, contacts: &[&str], expires: Option<u32>) -> Response {
        let password = self.account.password.clone();
        self.register_with_password(contacts, expires, &password)
    }

    #[track_caller]
    pub(crate) fn register_with_password(
        &mut self,
        contacts: &[&str],
        expires: Option<u32>,
        password: &str,
    ) -> Response {
        let first = self
            .register_request(contacts, expires)
            .send(&mut self.client);
        if first.status() != 401 {
            return first;
        }
        let challenge = pick_challenge(&first, "WWW-Authenticate", self.algorithm);
        self.last_challenge = Some(first);
        let auth = answer(
            &challenge,
            &self.account,
            password,
            "REGISTER",
            &self.account.registrar_uri(),
            1,
        );
        self.register_request(contacts, expires)
            .header("Authorization", &auth)
            .send(&mut self.client)
    }
}

/// `register_with_digest`: one REGISTER of `contact` for `expires` seconds over `client`,
/// through the 401 challenge; returns the final response.
#[track_caller]
pub(crate) fn register_with_digest(
    client: SipClient,
    account: &Account,
    contact: &str,
    expires: u32,
) -> (Response, Ua) {
    let mut ua = Ua::new(client, account.clone());
    let r = ua.register(&[contact], Some(expires));
    (r, ua)
}

/// Asserts the status of a response, showing it whole on failure.
#[track_caller]
pub(crate) fn assert_status(r: &Response, status: u16) {
    assert_eq!(r.status(), status, "unexpected response:\n{}", show(r));
}

/// The `expires` parameter of each Contact of a response, by Contact URI.
pub(crate) fn contact_expiries(r: &Response) -> Vec<(String, Option<u32>)> {
    match r.contacts() {
        Ok(list) => list
            .contacts()
            .iter()
            .map(|c| (c.uri().to_string(), c.expires()))
            .collect(),
        Err(e) => panic!("malformed Contact in the response ({e}):\n{}", show(r)),
    }
}

/// The header value as text (first field), or `None`.
pub(crate) fn header(r: &Response, name: HeaderName) -> Option<String> {
    r.header(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
