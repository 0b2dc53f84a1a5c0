//! The thin tokio adapter: datagrams and RFC 7766 TCP streams in, [`ZoneSet::answer`] out.
//!
//! Nothing here decides what to answer. Each UDP socket is served by one task per CPU sharing
//! the socket, each with its own buffers and random number generator, so the hot path neither
//! allocates nor locks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Outcome, Transport, ZoneSet};

/// Serves `zones` on every given socket until the returned future is dropped (abort the task to
/// stop). The caller binds the sockets, so it can log their addresses and tests can bind port 0.
pub async fn serve_dns(zones: Arc<ZoneSet>, udp: Vec<UdpSocket>, tcp: Vec<TcpListener>) {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_UDP_WORKERS);
    let mut tasks = JoinSet::new();
    for socket in udp {
        let socket = Arc::new(socket);
        for _ in 0..workers {
            tasks.spawn(udp_worker(zones.clone(), socket.clone()));
        }
    }
    let connections = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    for listener in tcp {
        tasks.spawn(tcp_acceptor(zones.clone(), listener, connections.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

async fn udp_worker(zones: Arc<ZoneSet>, socket: Arc<UdpSocket>) {
    let mut rng = SmallRng::from_os_rng();
    let mut buf = vec![0u8; MAX_UDP_QUERY];
    let mut out = Vec::with_capacity(usize::from(super::EDNS_PAYLOAD));
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                tracing::debug!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        let query = &buf[..len];
        if let Outcome::Answered { .. } =
            zones.answer(query, peer.ip(), Transport::Udp, &mut rng, &mut out)
            && let Err(e) = socket.send_to(&out, peer).await
        {
            tracing::debug!(%peer, error = %e, "DNS UDP send failed");
        }
    }
}

async fn tcp_acceptor(zones: Arc<ZoneSet>, listener: TcpListener, limit: Arc<Semaphore>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "DNS TCP accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "DNS TCP connection refused: too many open");
            continue;
        };
        let zones = zones.clone();
        tokio::spawn(async move {
            if let Err(e) = tcp_connection(&zones, stream, peer).await {
                tracing::debug!(%peer, error = %e, "DNS TCP connection closed");
            }
            drop(permit);
        });
    }
}

/// RFC 1035 §4.2.2 framing: a two-byte length before each message. Several queries may follow
/// each other on one connection (RFC 7766 §6.2.1); it is closed after an idle period (§6.2.3).
async fn tcp_connection(
    zones: &ZoneSet,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut rng = SmallRng::from_os_rng();
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    let mut out = Vec::with_capacity(1024);
    let mut framed = Vec::with_capacity(1026);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => {
                r?;
            }
        }
        let len = usize::from(u16::from_be_bytes(len));
        let query = &mut buf[..len];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(query))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "query body"))??;
        match zones.answer(query, peer.ip(), Transport::Tcp, &mut rng, &mut out) {
            Outcome::Answered { .. } => {
                // Answers are bounded to 65535 bytes by the answerer's TCP limit.
                framed.clear();
                framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
                framed.extend_from_slice(&out);
                stream.write_all(&framed).await?;
            }
            Outcome::Dropped => return Ok(()),
        }
    }
}

/// Queries are small; anything beyond this is not a query we could answer.
const MAX_UDP_QUERY: usize = 4096;
const MAX_UDP_WORKERS: usize = 16;
/// Concurrent TCP clients; more are closed at once.
const MAX_TCP_CONNECTIONS: usize = 512;
/// RFC 7766 §6.2.3 recommends a few seconds.
const TCP_IDLE: Duration = Duration::from_secs(10);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
