//! SIP transports: UDP sockets, TCP and TLS connections (RFC 3261 §18).
//!
//! This module owns sockets and nothing else: it frames bytes into messages, hands each to the
//! [`Handler`] with the [`Flow`] it arrived on, and writes bytes back over a flow. Which bytes to
//! write is decided by the protocol cores. A flow is what RFC 5626 calls it: the path back to a
//! client behind NAT, so requests to a registered client use the connection its REGISTER used.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use herald_frontend::{FlowPath, Payload};
use herald_sip::{Frame, Limits, StreamDeframer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// The path a message came in on, and the one its answers and later requests go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Flow {
    /// A datagram path: our socket (by index) and the peer's address.
    Udp { socket: u16, peer: SocketAddr },
    /// A TCP or TLS connection, by its id; gone once the connection closes.
    Stream { conn: u64 },
}

impl FlowPath for Flow {
    fn datagram_to(&self, peer: SocketAddr) -> Option<Self> {
        match *self {
            Self::Udp { socket, .. } => Some(Self::Udp { socket, peer }),
            Self::Stream { .. } => None,
        }
    }

    fn is_reliable(&self) -> bool {
        matches!(self, Self::Stream { .. })
    }

    /// `udp:<socket index>:<peer>`: stable while the config lists the same UDP listeners.
    fn persistent(&self) -> Option<String> {
        match self {
            Self::Udp { socket, peer } => Some(format!("udp:{socket}:{peer}")),
            Self::Stream { .. } => None,
        }
    }

    fn from_persistent(text: &str) -> Option<Self> {
        let (socket, peer) = text.strip_prefix("udp:")?.split_once(':')?;
        Some(Self::Udp {
            socket: socket.parse().ok()?,
            peer: peer.parse().ok()?,
        })
    }
}

/// The transport protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    Udp,
    Tcp,
    Tls,
}

/// One framed SIP message as it arrived.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    pub(crate) flow: Flow,
    pub(crate) kind: TransportKind,
    pub(crate) peer: SocketAddr,
    pub(crate) payload: Payload,
}

/// What the transports call into: the server's request pipeline.
pub(crate) trait Handler: Send + Sync + 'static {
    /// A complete message arrived. Must not block: long work is spawned by the handler.
    fn on_message(self: &Arc<Self>, inbound: Inbound);
    /// A connection closed; bindings and subscriptions over it are no longer reachable.
    fn on_flow_closed(self: &Arc<Self>, flow: Flow);
}

/// Why a message could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The connection the flow named is closed.
    #[error("connection {0} is closed")]
    Closed(u64),
    /// The connection's write queue is full: the peer does not read.
    #[error("connection {0} is not reading; message dropped")]
    Backlogged(u64),
    /// The UDP socket index names no socket.
    #[error("no UDP socket {0}")]
    NoSocket(u16),
    #[error("UDP send failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Transport limits from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct TransportLimits {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) sip: Limits,
    /// The name put in the Via of our own requests when a listener is bound to a wildcard
    /// address, whose real address the peer's answer could not be sent to.
    pub(crate) host: String,
}

/// The set of open sockets and connections.
pub(crate) struct Transports {
    udp: Vec<Arc<UdpSocket>>,
    /// `SIP/2.0/UDP host:port` of each UDP socket, for the Via of our own requests.
    udp_via: Vec<String>,
    /// Our Contact on each UDP socket, for the dialogs subscribers make over it.
    udp_contact: Vec<Arc<str>>,
    conns: Mutex<HashMap<u64, Connection>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    next_conn: AtomicU64,
    limits: TransportLimits,
}

struct Connection {
    tx: mpsc::Sender<Bytes>,
    close: Arc<tokio::sync::Notify>,
    /// `SIP/2.0/TCP addr` or `SIP/2.0/TLS addr` with the connection's local address.
    via: String,
    /// Our Contact on the listener the connection came to (`transport=tcp` / `tls`).
    contact: Arc<str>,
}

/// Messages queued for one connection before it counts as not reading.
const WRITE_QUEUE: usize = 1024;
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection the peer half-closed stays writable for answers still in progress.
const HALF_CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Largest datagram we read; larger ones are truncated by the kernel and fail to parse.
const MAX_DATAGRAM: usize = 65_535;

/// The addresses each listener actually bound, for the log and for tests that bind port 0.
#[derive(Debug, Default, Clone)]
pub(crate) struct BoundAddrs {
    pub(crate) udp: Vec<SocketAddr>,
    pub(crate) tcp: Vec<SocketAddr>,
    pub(crate) tls: Vec<SocketAddr>,
}

/// Listeners bound but not yet serving, so `serve` can report addresses before traffic starts.
pub(crate) struct Listeners {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    tls: Vec<TcpListener>,
}

impl Listeners {
    /// Binds every configured address, so a port conflict fails the start with a clear message.
    pub(crate) async fn bind(
        udp: &[SocketAddr],
        tcp: &[SocketAddr],
        tls: &[SocketAddr],
    ) -> anyhow::Result<(Self, BoundAddrs)> {
        let mut me = Self {
            udp: Vec::new(),
            tcp: Vec::new(),
            tls: Vec::new(),
        };
        let mut bound = BoundAddrs::default();
        for addr in udp {
            if let Some(sock) = bind_udp_socket(*addr)? {
                bound.udp.push(sock.local_addr()?);
                me.udp.push(sock);
            }
        }
        for (list, out, addrs) in [
            (tcp, &mut me.tcp, &mut bound.tcp),
            (tls, &mut me.tls, &mut bound.tls),
        ] {
            for addr in list {
                if let Some(l) = bind_tcp_listener(*addr)? {
                    addrs.push(l.local_addr()?);
                    out.push(l);
                }
            }
        }
        Ok((me, bound))
    }

    /// Starts the receive loops; returns the handle used to send.
    pub(crate) fn start<H: Handler>(
        self,
        limits: TransportLimits,
        tls: Option<TlsAcceptor>,
        handler: Arc<H>,
    ) -> anyhow::Result<Arc<Transports>> {
        if !self.tls.is_empty() && tls.is_none() {
            anyhow::bail!("TLS listeners need a certificate");
        }
        let udp: Vec<Arc<UdpSocket>> = self.udp.into_iter().map(Arc::new).collect();
        let udp_via = udp
            .iter()
            .map(|s| {
                let local = s.local_addr()?;
                Ok(via_value(TransportKind::Udp, local, &limits.host))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let udp_contact = udp
            .iter()
            .map(|s| {
                let local = s.local_addr()?;
                Ok(contact_value(TransportKind::Udp, local, &limits.host))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let transports = Arc::new(Transports {
            udp: udp.clone(),
            udp_via,
            udp_contact,
            conns: Mutex::new(HashMap::new()),
            per_ip: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            limits,
        });
        // Several receive loops per socket, one per worker thread, so a burst of datagrams is
        // parsed and answered on every core.
        let loops = std::thread::available_parallelism().map_or(1, usize::from);
        for (index, sock) in udp.into_iter().enumerate() {
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            for _ in 0..loops {
                tokio::spawn(udp_loop(index, sock.clone(), handler.clone()));
            }
        }
        for listener in self.tcp {
            tokio::spawn(accept_loop(
                listener,
                None,
                transports.clone(),
                handler.clone(),
            ));
        }
        for listener in self.tls {
            tokio::spawn(accept_loop(
                listener,
                tls.clone(),
                transports.clone(),
                handler.clone(),
            ));
        }
        Ok(transports)
    }
}

impl Transports {
    /// The Via value (without parameters other than `branch` and `rport`) for a request of
    /// ours sent over `flow`: where the peer must send its answer.
    pub(crate) fn via(&self, flow: Flow, branch: &str) -> String {
        let sent = match flow {
            Flow::Udp { socket, .. } => self.udp_via.get(usize::from(socket)).cloned(),
            Flow::Stream { conn } => self.conns.lock().get(&conn).map(|c| c.via.clone()),
        };
        let sent = sent.unwrap_or_else(|| format!("SIP/2.0/UDP {}", self.limits.host));
        format!("{sent};branch={branch};rport")
    }

    /// Our Contact as reached over `flow`: the address and transport of the listener the flow
    /// came to (RFC 3261 §12.1.1: the Contact of a dialog must reach us; a TCP or TLS
    /// subscriber must not be pointed at the UDP listener). `None` for a closed connection.
    pub(crate) fn contact(&self, flow: Flow) -> Option<Arc<str>> {
        match flow {
            Flow::Udp { socket, .. } => self.udp_contact.get(usize::from(socket)).cloned(),
            Flow::Stream { conn } => self.conns.lock().get(&conn).map(|c| c.contact.clone()),
        }
    }

    /// Writes one message over a flow. Never blocks: a stream whose queue is full loses the
    /// message (the transaction layer retransmits or times out) rather than stalling the server.
    pub(crate) fn send(&self, flow: Flow, bytes: Bytes) -> Result<(), SendError> {
        match flow {
            Flow::Udp { socket, peer } => {
                let sock = self
                    .udp
                    .get(usize::from(socket))
                    .ok_or(SendError::NoSocket(socket))?;
                match sock.try_send_to(&bytes, peer) {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let sock = sock.clone();
                        tokio::spawn(async move {
                            if let Err(e) = sock.send_to(&bytes, peer).await {
                                tracing::debug!(%peer, error = %e, "UDP send failed");
                            }
                        });
                        Ok(())
                    }
                    Err(e) => Err(SendError::Io(e)),
                }
            }
            Flow::Stream { conn } => {
                let conns = self.conns.lock();
                let c = conns.get(&conn).ok_or(SendError::Closed(conn))?;
                c.tx.try_send(bytes).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => SendError::Backlogged(conn),
                    mpsc::error::TrySendError::Closed(_) => SendError::Closed(conn),
                })
            }
        }
    }

    /// Closes a connection after what is queued for it has been written (a stream that lost
    /// framing, for one). Datagram flows have nothing to close.
    pub(crate) fn close(&self, flow: Flow) {
        if let Flow::Stream { conn } = flow
            && let Some(c) = self.conns.lock().get(&conn)
        {
            c.close.notify_one();
        }
    }

    fn admit(&self, peer: SocketAddr) -> bool {
        let mut per_ip = self.per_ip.lock();
        let n = per_ip.entry(peer.ip()).or_insert(0);
        if *n >= self.limits.max_connections_per_ip {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, peer: SocketAddr) {
        let mut per_ip = self.per_ip.lock();
        if let Some(n) = per_ip.get_mut(&peer.ip()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&peer.ip());
            }
        }
    }
}

/// The next connection on `listener`. Accept errors (out of file descriptors and the like) are
/// logged and retried after a short pause instead of spinning.
pub(crate) async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(v) => return v,
            Err(e) => {
                let local = listener.local_addr().ok();
                tracing::warn!(?local, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// `SIP/2.0/<proto> <addr>`, with `host` standing in for a wildcard address.
fn via_value(kind: TransportKind, local: SocketAddr, host: &str) -> String {
    let proto = match kind {
        TransportKind::Udp => "UDP",
        TransportKind::Tcp => "TCP",
        TransportKind::Tls => "TLS",
    };
    if local.ip().is_unspecified() {
        format!("SIP/2.0/{proto} {host}:{}", local.port())
    } else {
        format!("SIP/2.0/{proto} {local}")
    }
}

/// `<sip:addr;transport=udp|tcp|tls>`, with `host` standing in for a wildcard address.
fn contact_value(kind: TransportKind, local: SocketAddr, host: &str) -> Arc<str> {
    let proto = match kind {
        TransportKind::Udp => "udp",
        TransportKind::Tcp => "tcp",
        TransportKind::Tls => "tls",
    };
    let at = if local.ip().is_unspecified() {
        format!("{host}:{}", local.port())
    } else {
        local.to_string()
    };
    Arc::from(format!("<sip:{at};transport={proto}>"))
}

/// Binds a UDP socket; `None` for an IPv6 wildcard on a host without IPv6.
pub(crate) fn bind_udp_socket(addr: SocketAddr) -> anyhow::Result<Option<UdpSocket>> {
    skip_missing_ipv6(addr, bind_udp(addr))
}

/// Binds a TCP listener; `None` for an IPv6 wildcard on a host without IPv6.
pub(crate) fn bind_tcp_listener(addr: SocketAddr) -> anyhow::Result<Option<TcpListener>> {
    skip_missing_ipv6(addr, bind_tcp(addr))
}

fn skip_missing_ipv6<T>(addr: SocketAddr, result: std::io::Result<T>) -> anyhow::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        // The default listeners include [::]; a host without IPv6 still starts on IPv4.
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() && ipv6_unavailable(&e) => {
            tracing::warn!(%addr, error = %e, "IPv6 is not available here; listening on IPv4 only");
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on {addr}")),
    }
}

fn ipv6_unavailable(e: &std::io::Error) -> bool {
    // EAFNOSUPPORT (97) and EADDRNOTAVAIL (99) on Linux.
    matches!(e.raw_os_error(), Some(97 | 99))
}

fn new_socket(addr: SocketAddr, ty: socket2::Type) -> std::io::Result<socket2::Socket> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, ty, None)?;
    if addr.is_ipv6() {
        // Separate IPv4 and IPv6 listeners on one port need the IPv6 one to stay IPv6-only.
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let sock = new_socket(addr, socket2::Type::DGRAM)?;
    // Bursts of registrations and notifications arrive faster than one loop drains them.
    let _ = sock.set_recv_buffer_size(8 << 20);
    let _ = sock.set_send_buffer_size(8 << 20);
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = new_socket(addr, socket2::Type::STREAM)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

async fn udp_loop<H: Handler>(index: u16, sock: Arc<UdpSocket>, handler: Arc<H>) {
    let Ok(local) = sock.local_addr() else { return };
    // Each datagram is copied out at its own size: a message can outlive its neighbours by a
    // transaction's lifetime (32 s), and slices of one shared receive buffer would keep whole
    // buffers alive and make every refill a fresh large allocation.
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                let bytes = Bytes::copy_from_slice(&buf[..n]);
                handler.on_message(Inbound {
                    flow: Flow::Udp {
                        socket: index,
                        peer,
                    },
                    kind: TransportKind::Udp,
                    peer,
                    payload: Payload::Datagram(bytes),
                });
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here on Linux; they are not fatal.
                tracing::debug!(%local, error = %e, "UDP receive error");
            }
        }
    }
}

async fn accept_loop<H: Handler>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    transports: Arc<Transports>,
    handler: Arc<H>,
) {
    loop {
        let (stream, peer) = accept(&listener).await;
        if !transports.admit(peer) {
            tracing::warn!(%peer, limit = transports.limits.max_connections_per_ip,
                "connection refused: too many connections from this address");
            metrics::counter!("herald_connections_refused_total").increment(1);
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let transports = transports.clone();
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    serve_stream(
                        stream,
                        TransportKind::Tcp,
                        local,
                        peer,
                        &transports,
                        &handler,
                    )
                    .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            serve_stream(s, TransportKind::Tls, local, peer, &transports, &handler)
                                .await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            transports.release(peer);
        });
    }
}

async fn serve_stream<S, H>(
    stream: S,
    kind: TransportKind,
    local: SocketAddr,
    peer: SocketAddr,
    transports: &Arc<Transports>,
    handler: &Arc<H>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    H: Handler,
{
    let conn = transports.next_conn.fetch_add(1, Ordering::Relaxed);
    let flow = Flow::Stream { conn };
    let via = via_value(kind, local, &transports.limits.host);
    let contact = contact_value(kind, local, &transports.limits.host);
    let (tx, rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let close = Arc::new(tokio::sync::Notify::new());
    transports.conns.lock().insert(
        conn,
        Connection {
            tx: tx.clone(),
            close: close.clone(),
            via,
            contact,
        },
    );
    metrics::gauge!("herald_connections").increment(1.0);
    tracing::debug!(conn, %peer, ?kind, "connection opened");

    let (mut reader, writer) = tokio::io::split(stream);
    let writer_task = tokio::spawn(write_loop(writer, rx));
    let idle = transports.limits.idle_timeout;
    let mut deframer = StreamDeframer::new(transports.limits.sip.clone());
    let mut buf = BytesMut::with_capacity(16 * 1024);
    'read: loop {
        buf.clear();
        buf.reserve(16 * 1024);
        let n = tokio::select! {
            read = tokio::time::timeout(idle, reader.read_buf(&mut buf)) => match read {
                Err(_) => {
                    tracing::debug!(conn, %peer, "closing idle connection");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::debug!(conn, %peer, error = %e, "read failed");
                    break;
                }
                Ok(Ok(0)) => {
                    // The peer half-closed: answers to what it sent may still be on their way
                    // (a directory lookup), so keep the write side open for a moment.
                    tokio::select! {
                        () = tokio::time::sleep(HALF_CLOSE_LINGER) => {}
                        () = close.notified() => {}
                    }
                    break;
                }
                Ok(Ok(n)) => n,
            },
            () = close.notified() => break,
        };
        deframer.feed(&buf[..n]);
        loop {
            let payload = match deframer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Message(m))) => Payload::Parsed(m),
                Ok(Some(Frame::Invalid { bytes, error })) => Payload::Invalid { bytes, error },
                Ok(Some(Frame::Ping)) => {
                    // RFC 5626 §4.4.1: a double-CRLF ping is answered by a single-CRLF pong.
                    let _ = tx.try_send(Bytes::from_static(b"\r\n"));
                    continue;
                }
                Ok(Some(_)) => continue,
                Err(error) => {
                    tracing::info!(conn, %peer, %error, "closing connection: the stream cannot be framed");
                    metrics::counter!("herald_sip_parse_errors_total").increment(1);
                    break 'read;
                }
            };
            handler.on_message(Inbound {
                flow,
                kind,
                peer,
                payload,
            });
        }
    }
    transports.conns.lock().remove(&conn);
    drop(tx);
    // Let queued answers (such as a 400 for the last message) drain before the socket closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
    metrics::gauge!("herald_connections").decrement(1.0);
    tracing::debug!(conn, %peer, "connection closed");
    handler.on_flow_closed(flow);
}

async fn write_loop<W: AsyncRead + AsyncWrite + Unpin>(
    mut writer: tokio::io::WriteHalf<W>,
    mut rx: mpsc::Receiver<Bytes>,
) {
    while let Some(bytes) = rx.recv().await {
        if writer.write_all(&bytes).await.is_err() {
            break;
        }
        // Coalesce whatever else is queued before flushing (TLS records, Nagle is off).
        while let Ok(more) = rx.try_recv() {
            if writer.write_all(&more).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
}
