//! Pooled HTTP/1.1 keep-alive connections to mailbox servers, for the proxy.
//!
//! One [`Slot`] per backend address holds that backend's idle connections (hyper's
//! `client::conn::http1` senders, each connection driven by its own task). A request takes the
//! most recently used idle connection (or opens one), and hands it back when the response body
//! has been read to its end, which is when an HTTP/1.1 connection can carry the next request.
//! Compared with hyper-util's general-purpose pooled client this does per request no pool-key
//! hashing (the proxy's routes hold their slot), no boxed response future and no task spawned
//! to wait for the connection to become idle again.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;

use crate::model::ServerAddress;
use crate::proxy::ForwardBody;

/// How connections to backends are opened and kept.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolSettings {
    /// Time allowed to connect, shared among the backend's addresses.
    pub connect_timeout: Duration,
    /// Idle connections kept per backend.
    pub max_idle: usize,
    /// An idle connection older than this is closed rather than reused.
    pub idle_timeout: Duration,
}

/// The slots of every backend seen, by address.
pub(crate) struct Pool {
    settings: PoolSettings,
    slots: Mutex<HashMap<ServerAddress, Arc<Slot>>>,
}

impl Pool {
    pub(crate) fn new(settings: PoolSettings) -> Self {
        Self {
            settings,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The slot of the backend at `address`, made on first use.
    pub(crate) fn slot(&self, address: &ServerAddress) -> Arc<Slot> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(address) {
            return slot.clone();
        }
        let slot = Arc::new(Slot {
            address: address.clone(),
            settings: self.settings,
            idle: Mutex::new(Vec::new()),
        });
        slots.insert(address.clone(), slot.clone());
        slot
    }
}

/// One backend's idle connections, most recently used last.
pub(crate) struct Slot {
    address: ServerAddress,
    settings: PoolSettings,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    sender: SendRequest<ForwardBody>,
    since: Instant,
}

impl Slot {
    /// Sends `request` (origin-form URI, `Host` set) over an idle connection or a new one. A
    /// request that a reused connection closed under before it was sent is sent again over a
    /// new connection, as hyper-util's client does.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut request: Request<ForwardBody>,
    ) -> Result<Response<BackendBody>, ForwardError> {
        loop {
            let (mut sender, reused) = match self.checkout() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let mut body = BackendBody {
                        body,
                        conn: Some((sender, self.clone())),
                    };
                    if body.body.is_end_stream() {
                        body.release();
                    }
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        tracing::trace!(backend = %self.address, "pooled connection closed; sending again on a new one");
                        request = unsent;
                    }
                    _ => return Err(ForwardError::Exchange(e.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection that can take a request now.
    fn checkout(&self) -> Option<SendRequest<ForwardBody>> {
        let now = Instant::now();
        let mut idle = self.idle.lock();
        while let Some(entry) = idle.pop() {
            if now.saturating_duration_since(entry.since) > self.settings.idle_timeout {
                // The newest is too old, so are all the others.
                idle.clear();
                return None;
            }
            if entry.sender.is_ready() {
                return Some(entry.sender);
            }
            // Closed by the backend meanwhile: drop it.
        }
        None
    }

    /// Takes back a connection whose exchange is over.
    fn checkin(self: &Arc<Self>, mut sender: SendRequest<ForwardBody>) {
        if sender.is_ready() {
            self.keep(sender);
        } else if !sender.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // The connection task has not yet seen the end of the exchange; wait for it off
            // the request path.
            let slot = self.clone();
            runtime.spawn(async move {
                if sender.ready().await.is_ok() {
                    slot.keep(sender);
                }
            });
        }
    }

    fn keep(&self, sender: SendRequest<ForwardBody>) {
        let now = Instant::now();
        let mut idle = self.idle.lock();
        // Connections at the bottom are the least recently used: close those gone stale.
        let stale = idle
            .iter()
            .take_while(|e| now.saturating_duration_since(e.since) > self.settings.idle_timeout)
            .count();
        if stale > 0 {
            idle.drain(..stale);
        }
        if idle.len() < self.settings.max_idle {
            idle.push(Idle { sender, since: now });
        }
    }

    /// Opens a connection: every address of the backend in turn, the connect timeout shared
    /// among them, Nagle off.
    async fn connect(&self) -> Result<SendRequest<ForwardBody>, ForwardError> {
        let host = self.address.host();
        let port = self.address.port();
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(ForwardError::Connect)?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(ForwardError::Connect(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} has no address"),
            )));
        }
        let per_address = self.settings.connect_timeout / addrs.len().max(1) as u32;
        let mut last_error = None;
        let mut connected = None;
        for addr in addrs {
            match tokio::time::timeout(per_address, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    connected = Some(stream);
                    break;
                }
                Ok(Err(e)) => last_error = Some(e),
                Err(_) => {
                    last_error = Some(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection to {addr} within {per_address:?}"),
                    ));
                }
            }
        }
        let Some(stream) = connected else {
            return Err(ForwardError::Connect(last_error.unwrap_or_else(|| {
                std::io::Error::other("no address could be connected to")
            })));
        };
        // Best effort: a socket that refuses it still works, only with Nagle's delays.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(ForwardError::Exchange)?;
        let backend = self.address.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%backend, error = %e, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Why a request could not be forwarded.
#[derive(Debug)]
pub(crate) enum ForwardError {
    /// No connection to the backend could be made: the request never left.
    Connect(std::io::Error),
    /// The exchange over an open connection failed.
    Exchange(hyper::Error),
}

impl ForwardError {
    /// A connection failure: the backend is likely down, and the request was not sent.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(_) => f.write_str("cannot connect"),
            Self::Exchange(_) => f.write_str("the exchange with the backend failed"),
        }
    }
}

impl std::error::Error for ForwardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) => Some(e),
            Self::Exchange(e) => Some(e),
        }
    }
}

/// A backend's response body, streamed as it arrives. Its connection goes back to the pool
/// once the body has been read to its end; a body dropped before that closes the connection.
pub struct BackendBody {
    body: Incoming,
    conn: Option<(SendRequest<ForwardBody>, Arc<Slot>)>,
}

impl BackendBody {
    fn release(&mut self) {
        if let Some((sender, slot)) = self.conn.take() {
            slot.checkin(sender);
        }
    }
}

impl fmt::Debug for BackendBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendBody")
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl Body for BackendBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.body.is_end_stream() => this.release(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.conn = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Either, Full};
    use hyper::service::service_fn;
    use tokio::net::TcpListener;

    use super::*;

    /// A backend answering `hello` that counts the connections it accepted; with `keep_alive`
    /// off it closes each connection after one response.
    async fn backend(keep_alive: bool) -> (ServerAddress, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = service_fn(|_req: Request<Incoming>| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"hello"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (address.parse().expect("address"), accepted)
    }

    fn pool() -> Pool {
        Pool::new(PoolSettings {
            connect_timeout: Duration::from_secs(2),
            max_idle: 8,
            idle_timeout: Duration::from_secs(90),
        })
    }

    async fn get(slot: &Arc<Slot>) -> String {
        let request = Request::builder()
            .uri("/ews/exchange.asmx")
            .header(http::header::HOST, "backend")
            .body(Either::Left(Full::new(Bytes::new())))
            .expect("request");
        let response = slot.send(request).await.expect("answer");
        let body = response.into_body().collect().await.expect("body");
        String::from_utf8(body.to_bytes().to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_was_read() {
        let (address, accepted) = backend(true).await;
        let pool = pool();
        let slot = pool.slot(&address);
        for _ in 0..5 {
            assert_eq!(get(&slot).await, "hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert!(
            Arc::ptr_eq(&slot, &pool.slot(&address)),
            "one slot per backend"
        );
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_is_not_reused() {
        let (address, accepted) = backend(false).await;
        let slot = pool().slot(&address);
        for _ in 0..3 {
            assert_eq!(get(&slot).await, "hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_closes_its_connection() {
        let (address, accepted) = backend(true).await;
        let slot = pool().slot(&address);
        let request = Request::builder()
            .uri("/")
            .header(http::header::HOST, "backend")
            .body(Either::Left(Full::new(Bytes::new())))
            .expect("request");
        let response = slot.send(request).await.expect("answer");
        let body = response.into_body();
        if !body.is_end_stream() {
            drop(body);
            assert_eq!(get(&slot).await, "hello");
            assert_eq!(accepted.load(Ordering::SeqCst), 2);
        }
    }

    #[tokio::test]
    async fn refused_connections_are_connect_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address: ServerAddress = listener
            .local_addr()
            .expect("addr")
            .to_string()
            .parse()
            .expect("address");
        drop(listener);
        let slot = pool().slot(&address);
        let request = Request::builder()
            .uri("/")
            .body(Either::Left(Full::new(Bytes::new())))
            .expect("request");
        let error = slot.send(request).await.expect_err("nobody listens");
        assert!(error.is_connect(), "{error:?}");
    }
}
