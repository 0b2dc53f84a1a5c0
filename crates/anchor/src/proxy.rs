//! The anchoring reverse proxy: for each request, find the route ([`crate::anchor::route`]),
//! forward it with streamed bodies over pooled connections, and add Exchange's diagnostic
//! headers (brief §3.3).
//!
//! Failover transparency: when the chosen backend refuses the connection or answers 503 (its
//! database just moved), the proxy asks Active Manager again and retries once, so a client
//! sees no error across a failover except for non-idempotent requests already in flight.
//! Precisely: idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried after a
//! connection failure, any other transport error, or a 503; other methods only after a
//! connection failure (the request never left). A retry needs the body again, so bodies of at
//! most `retry_body_limit` bytes with a declared length are buffered; larger or chunked bodies
//! stream straight through and are not retried.

use std::convert::Infallible;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::active_manager::ProbeError;
use crate::anchor::cookie::CookieKey;
use crate::anchor::{AnchorRequest, BACKEND_COOKIE, Decision, Protocol, RouteContext, route};
use crate::backend::{DATABASE_HEADER, MAILBOX_GUID_HEADER, MAILBOX_HEADER};
use crate::build::ShellRouting;
use crate::model::UserId;
use crate::probe::Monitor;

/// Proxy settings (`[anchor]` in herald's config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// This front door's name, sent as `X-FEServer`.
    pub frontend_name: String,
    /// How long an issued backend cookie is honoured (`cookie_ttl_s`).
    pub cookie_ttl: Duration,
    /// Mark cookies `Secure` (when the listener is HTTPS).
    pub cookie_secure: bool,
    /// Time allowed to connect to a backend before it counts as a connection failure.
    pub connect_timeout: Duration,
    /// Largest request body buffered so the request can be retried (`retry_body_limit`).
    pub retry_body_limit: usize,
    /// Idle pooled connections kept per backend.
    pub pool_idle_per_backend: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            frontend_name: "herald".to_owned(),
            cookie_ttl: Duration::from_secs(30 * 24 * 3600),
            cookie_secure: false,
            connect_timeout: Duration::from_secs(2),
            retry_body_limit: 64 * 1024,
            pool_idle_per_backend: 64,
        }
    }
}

/// Who sent a request, as far as the front door can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// No credentials: routed by hints only, never by cookie.
    Anonymous,
    /// Verified credentials of this user.
    User(UserId),
    /// Credentials that do not verify: answered 401 without contacting a backend.
    Rejected,
}

/// Establishes the authenticated user of a request. herald's binary implements it over its
/// user directory; the proxy forwards the credentials to the backend unchanged either way.
pub trait Authenticator: Send + Sync + 'static {
    /// Looks at the request head only; must not block (no directory round trips).
    fn authenticate(&self, parts: &http::request::Parts) -> Authentication;
}

/// Treats every request as anonymous: routing uses hints only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAuthentication;

impl Authenticator for NoAuthentication {
    fn authenticate(&self, _parts: &http::request::Parts) -> Authentication {
        Authentication::Anonymous
    }
}

/// HTTP Basic authentication checked by a caller-supplied function of (user, password).
pub struct BasicAuthenticator<F> {
    check: F,
}

impl<F> BasicAuthenticator<F>
where
    F: Fn(&UserId, &str) -> bool + Send + Sync + 'static,
{
    /// Uses `check` to verify a user's password.
    pub fn new(check: F) -> Self {
        Self { check }
    }
}

impl<F> Authenticator for BasicAuthenticator<F>
where
    F: Fn(&UserId, &str) -> bool + Send + Sync + 'static,
{
    fn authenticate(&self, parts: &http::request::Parts) -> Authentication {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Authentication::Anonymous;
        };
        let Some(encoded) = value.to_str().ok().and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        }) else {
            // Another scheme (NTLM, Negotiate): not ours to judge; the backend will.
            return Authentication::Anonymous;
        };
        let Some(decoded) = base64_decode(encoded.trim()) else {
            return Authentication::Rejected;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return Authentication::Rejected;
        };
        let Some((user, password)) = text.split_once(':') else {
            return Authentication::Rejected;
        };
        match user.parse::<UserId>() {
            Ok(id) if (self.check)(&id, password) => Authentication::User(id),
            _ => Authentication::Rejected,
        }
    }
}

/// Everything the proxy needs, shared by all connections. Cloning is cheap.
#[derive(Clone)]
pub struct ProxyState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    monitor: Monitor,
    cookie_key: CookieKey,
    authenticator: Arc<dyn Authenticator>,
    client: Client<HttpConnector, ForwardBody>,
    frontend_header: HeaderValue,
    anonymous_spread: AtomicU64,
}

impl ProxyState {
    /// Builds the shared state; must be called inside a tokio runtime (the pooled client
    /// spawns its connection tasks there).
    pub fn new(
        config: ProxyConfig,
        monitor: Monitor,
        cookie_key: CookieKey,
        authenticator: Arc<dyn Authenticator>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_idle_per_backend)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let frontend_header = HeaderValue::from_str(&config.frontend_name)
            .unwrap_or_else(|_| HeaderValue::from_static("herald"));
        Self {
            inner: Arc::new(Inner {
                config,
                monitor,
                cookie_key,
                authenticator,
                client,
                frontend_header,
                anonymous_spread: AtomicU64::new(0),
            }),
        }
    }

    /// The Active Manager handle the proxy routes with.
    pub fn monitor(&self) -> &Monitor {
        &self.inner.monitor
    }
}

/// Body of the proxy's responses: the backend's, streamed, or the proxy's own error text.
pub type ResponseBody = Either<Incoming, Full<Bytes>>;

/// The proxy as a hyper (and tower) service, for callers that run their own listener (TLS,
/// axum fallback).
pub fn service(state: ProxyState) -> ProxyService {
    ProxyService { state, peer: None }
}

/// Accepts HTTP/1.1 connections on `listener` and proxies them until the task is dropped.
/// Accept errors (such as running out of file descriptors) are logged and retried.
pub async fn serve(listener: TcpListener, state: ProxyState) -> std::io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "anchoring proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = ProxyService {
            state: state.clone(),
            peer: Some(peer),
        };
        tokio::spawn(async move {
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "anchoring proxy: connection ended with an error");
            }
        });
    }
}

/// The proxy service; see [`service`].
#[derive(Clone)]
pub struct ProxyService {
    state: ProxyState,
    peer: Option<SocketAddr>,
}

impl ProxyService {
    /// The same service, noting the client's address for `X-Forwarded-For`.
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }
}

impl<B> hyper::service::Service<Request<B>> for ProxyService
where
    B: IntoForwardBody,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        let state = self.state.clone();
        let peer = self.peer;
        Box::pin(async move { Ok(handle(&state, peer, req.map(B::into_forward)).await) })
    }
}

/// Request bodies the proxy can forward: hyper's own, or an already-buffered one (tests,
/// callers that read the body first).
pub trait IntoForwardBody: Send + 'static {
    /// Converts into the body type sent to backends.
    fn into_forward(self) -> ForwardBody;
}

impl IntoForwardBody for Incoming {
    fn into_forward(self) -> ForwardBody {
        Either::Right(self)
    }
}

impl IntoForwardBody for Full<Bytes> {
    fn into_forward(self) -> ForwardBody {
        Either::Left(self)
    }
}

/// Body of forwarded requests: buffered (replayable) or streamed.
pub type ForwardBody = Either<Full<Bytes>, Incoming>;

/// The diagnostic and routing headers the proxy sets.
pub mod headers {
    /// The front door's name.
    pub const FE_SERVER: &str = "x-feserver";
    /// The backend's name.
    pub const BE_SERVER: &str = "x-beserver";
    /// The backend's address as chosen.
    pub const CALCULATED_BE_TARGET: &str = "x-calculatedbetarget";
    /// The backend's name, as Exchange reports it here.
    pub const DIAG_INFO: &str = "x-diaginfo";
    /// Which hint decided the route.
    pub const ANCHOR_REASON: &str = "x-herald-anchor";
    /// For `/powershell`: the backend's build and release.
    pub const BACKEND_BUILD: &str = "x-herald-backendbuild";
    /// For `/powershell`: anchored or version-based, and why.
    pub const SHELL_ROUTING: &str = "x-herald-shellrouting";
    /// Why a presented backend cookie was not used.
    pub const COOKIE_REFUSED: &str = "x-herald-cookierefused";
    /// Present when the request was retried after a failover.
    pub const RETRIED: &str = "x-herald-retried";
}

async fn handle(
    state: &ProxyState,
    peer: Option<SocketAddr>,
    req: Request<ForwardBody>,
) -> Response<ResponseBody> {
    let inner = &state.inner;
    let (mut parts, body) = req.into_parts();

    let anchor_request = match AnchorRequest::parse(&parts.uri, &parts.headers) {
        Ok(r) => r,
        Err(e) => {
            let status = match e {
                crate::anchor::RequestError::NotAMailboxPath => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            return error_response(inner, status, &e.to_string());
        }
    };
    let user = match inner.authenticator.authenticate(&parts) {
        Authentication::User(u) => Some(u),
        Authentication::Anonymous => None,
        Authentication::Rejected => {
            let mut r = error_response(
                inner,
                StatusCode::UNAUTHORIZED,
                "the credentials do not verify",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"herald\""),
            );
            return r;
        }
    };
    let spread = match &user {
        Some(u) => {
            let mut h = DefaultHasher::new();
            u.hash(&mut h);
            h.finish()
        }
        None => inner.anonymous_spread.fetch_add(1, Ordering::Relaxed),
    };
    let decide = || -> Result<Routed, crate::anchor::RouteError> {
        let now_unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        inner.monitor.read(|am| {
            let ctx = RouteContext {
                active_manager: am,
                cookie_key: &inner.cookie_key,
                now_unix,
                spread,
            };
            let decision = route(&anchor_request, user.as_ref(), &ctx)?;
            let address = decision
                .route
                .mailbox
                .and_then(|g| am.topology().mailbox(&g))
                .map(|m| m.primary_smtp.to_string());
            Ok(Routed {
                decision,
                mailbox_address: address,
                now_unix,
            })
        })
    };
    let first = match decide() {
        Ok(r) => r,
        Err(e) => return error_response(inner, e.status(), &e.to_string()),
    };

    prepare_forward_headers(&mut parts.headers, peer);
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    );
    let (replayable, streaming) = match buffer_if_small(body, inner.config.retry_body_limit).await {
        Ok(b) => b,
        Err(msg) => return error_response(inner, StatusCode::BAD_REQUEST, &msg),
    };

    let head = RequestHead {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
    };
    let body = match (&replayable, streaming) {
        (Some(bytes), _) => Either::Left(Full::new(bytes.clone())),
        (None, Some(incoming)) => Either::Right(incoming),
        (None, None) => Either::Left(Full::new(Bytes::new())),
    };
    let outcome = forward(inner, &head, &first, body).await;

    let retry_reason = match &outcome {
        Ok(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE && idempotent => {
            Some("backend answered 503")
        }
        Ok(_) => None,
        Err(e) if e.is_connect() => {
            inner.monitor.report_failure(
                &first.decision.route.backend.name,
                ProbeError::Connect(e.to_string()),
            );
            Some("connection to backend failed")
        }
        Err(_) if idempotent => Some("backend connection broke"),
        Err(_) => None,
    };
    let (outcome, routed, retried) = match (retry_reason, replayable) {
        (Some(why), Some(bytes)) => {
            tracing::info!(
                backend = %first.decision.route.backend.name,
                reason = why,
                "retrying once after asking Active Manager again"
            );
            match decide() {
                Ok(second) => {
                    let again =
                        forward(inner, &head, &second, Either::Left(Full::new(bytes))).await;
                    if let Err(e) = &again
                        && e.is_connect()
                    {
                        inner.monitor.report_failure(
                            &second.decision.route.backend.name,
                            ProbeError::Connect(e.to_string()),
                        );
                    }
                    (again, second, true)
                }
                Err(e) => return error_response(inner, e.status(), &e.to_string()),
            }
        }
        _ => (outcome, first, false),
    };

    let mut response = match outcome {
        Ok(resp) => resp.map(Either::Left),
        Err(e) => {
            let backend = &routed.decision.route.backend;
            let status = if e.is_connect() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_GATEWAY
            };
            error_response(
                inner,
                status,
                &format!(
                    "mailbox server {} ({}) could not serve the request: {}",
                    backend.name,
                    backend.address,
                    error_chain(&e)
                ),
            )
        }
    };
    strip_hop_by_hop(response.headers_mut());
    decorate(
        inner,
        &mut response,
        &routed,
        anchor_request.protocol,
        user.as_ref(),
        retried,
    );
    response
}

/// A routing decision plus what the headers need from the same directory snapshot.
struct Routed {
    decision: Decision,
    mailbox_address: Option<String>,
    now_unix: u64,
}

struct RequestHead {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

async fn forward(
    inner: &Inner,
    head: &RequestHead,
    routed: &Routed,
    body: ForwardBody,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let route = &routed.decision.route;
    let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("http://{}{}", route.backend.address, path)
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/"));
    let mut request = Request::new(body);
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = head.headers.clone();
    let h = request.headers_mut();
    if let Some(guid) = route.mailbox
        && let Ok(v) = HeaderValue::from_str(&guid.to_string())
    {
        h.insert(MAILBOX_GUID_HEADER, v);
    }
    if let Some(address) = &routed.mailbox_address
        && let Ok(v) = HeaderValue::from_str(address)
    {
        h.insert(MAILBOX_HEADER, v);
    }
    if let Some(db) = &route.database
        && let Ok(v) = HeaderValue::from_str(db.as_str())
    {
        h.insert(DATABASE_HEADER, v);
    }
    inner.client.request(request).await
}

/// Buffers a body that is small and of declared size so it can be sent twice; otherwise hands
/// the stream back untouched.
async fn buffer_if_small(
    body: ForwardBody,
    limit: usize,
) -> Result<(Option<Bytes>, Option<Incoming>), String> {
    match body {
        Either::Left(full) => {
            let bytes = full
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Ok((Some(bytes), None))
        }
        Either::Right(incoming) => {
            if incoming.is_end_stream() {
                return Ok((Some(Bytes::new()), None));
            }
            let hint = incoming.size_hint();
            match hint.upper() {
                Some(n) if n <= limit as u64 && hint.lower() == n => {
                    let collected = incoming
                        .collect()
                        .await
                        .map_err(|e| format!("the request body could not be read: {e}"))?;
                    Ok((Some(collected.to_bytes()), None))
                }
                _ => Ok((None, Some(incoming))),
            }
        }
    }
}

/// Removes hop-by-hop headers and headers only herald may set, and notes the client address.
fn prepare_forward_headers(headers: &mut HeaderMap, peer: Option<SocketAddr>) {
    strip_hop_by_hop(headers);
    let own: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-herald-"))
        .cloned()
        .collect();
    for k in own {
        headers.remove(k);
    }
    if let Some(peer) = peer {
        let ip = peer.ip().to_string();
        let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert("x-forwarded-for", v);
        }
    }
}

/// RFC 9110 §7.6.1: the fixed hop-by-hop headers plus any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Adds the diagnostic headers and the backend cookie.
fn decorate(
    inner: &Inner,
    response: &mut Response<ResponseBody>,
    routed: &Routed,
    protocol: Protocol,
    user: Option<&UserId>,
    retried: bool,
) {
    let route = &routed.decision.route;
    let h = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(headers::BE_SERVER, route.backend.name.to_string());
    set(
        headers::CALCULATED_BE_TARGET,
        route.backend.address.to_string(),
    );
    set(headers::DIAG_INFO, route.backend.name.to_string());
    set(headers::ANCHOR_REASON, route.reason.to_string());
    if protocol == Protocol::PowerShell {
        set(headers::BACKEND_BUILD, route.backend.build.describe());
        if let Some(routing) = routed.decision.shell_routing {
            set(
                headers::SHELL_ROUTING,
                match routing {
                    ShellRouting::Anchored => "anchored".to_owned(),
                    ShellRouting::VersionBased { oldest } => {
                        format!("version-based (oldest server {})", oldest.describe())
                    }
                },
            );
        }
    }
    if let Some(refused) = routed.decision.refused_cookie {
        set(headers::COOKIE_REFUSED, refused.to_string());
    }
    if retried {
        set(headers::RETRIED, "1".to_owned());
    }
    h.insert(headers::FE_SERVER, inner.frontend_header.clone());
    if let (Some(user), Some(target)) = (user, route.cookie_target()) {
        let ttl = inner.config.cookie_ttl.as_secs();
        let value = inner
            .cookie_key
            .issue(user.as_str(), &target, routed.now_unix + ttl);
        let secure = if inner.config.cookie_secure {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{BACKEND_COOKIE}={value}; Path={}; Max-Age={ttl}; HttpOnly{secure}",
            protocol.vdir()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
}

fn error_response(inner: &Inner, status: StatusCode, message: &str) -> Response<ResponseBody> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(format!(
        "{message}\n"
    )))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(headers::FE_SERVER, inner.frontend_header.clone());
    r
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Standard base64 (RFC 4648 §4) for Basic credentials, bounded.
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    if input.len() > MAX_BASIC_LEN || !input.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    for chunk in input.as_bytes().chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

impl tower_service::Service<Request<Incoming>> for ProxyService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        hyper::service::Service::call(&*self, req)
    }
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Longest Basic credential accepted (a 254-character name and a long password).
const MAX_BASIC_LEN: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_basic_credentials() {
        assert_eq!(
            base64_decode("YWxpY2VAY29udG9zby5jb206c2VjcmV0").as_deref(),
            Some(&b"alice@contoso.com:secret"[..])
        );
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YW*="), None);
        assert_eq!(base64_decode("YWJ"), None);
    }

    #[test]
    fn hop_by_hop_headers_and_connection_tokens_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-anchormailbox", HeaderValue::from_static("a@contoso.com"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-anchormailbox"));
    }

    #[test]
    fn clients_cannot_set_herald_headers_for_the_backend() {
        let mut h = HeaderMap::new();
        h.insert(MAILBOX_GUID_HEADER, HeaderValue::from_static("forged"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        prepare_forward_headers(&mut h, Some("192.0.2.7:5000".parse().expect("addr")));
        assert!(!h.contains_key(MAILBOX_GUID_HEADER));
        assert_eq!(
            h.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
            Some("10.0.0.1, 192.0.2.7")
        );
    }

    #[test]
    fn basic_authenticator_accepts_rejects_and_ignores_other_schemes() {
        let auth = BasicAuthenticator::new(|u: &UserId, p: &str| {
            u.as_str() == "alice@contoso.com" && p == "secret"
        });
        let parts = |v: Option<&str>| {
            let mut b = Request::builder().uri("/owa/");
            if let Some(v) = v {
                b = b.header(header::AUTHORIZATION, v);
            }
            b.body(()).expect("request").into_parts().0
        };
        assert_eq!(
            auth.authenticate(&parts(Some("Basic YWxpY2VAY29udG9zby5jb206c2VjcmV0"))),
            Authentication::User("alice@contoso.com".parse().expect("valid"))
        );
        assert_eq!(
            auth.authenticate(&parts(Some("Basic YWxpY2VAY29udG9zby5jb206d3Jvbmc="))),
            Authentication::Rejected
        );
        assert_eq!(
            auth.authenticate(&parts(Some("NTLM TlRMTVNTUAAB"))),
            Authentication::Anonymous
        );
        assert_eq!(auth.authenticate(&parts(None)), Authentication::Anonymous);
    }
}
