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

use std::collections::HashMap;
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
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;

use crate::active_manager::ProbeError;
use crate::anchor::cookie::{CookieError, CookieKey};
use crate::anchor::{
    ANCHOR_MAILBOX, AnchorRequest, BACKEND_COOKIE, Protocol, Route, RouteContext, RouteError, route,
};
use crate::backend::{DATABASE_HEADER, MAILBOX_GUID_HEADER, MAILBOX_HEADER};
use crate::build::ShellRouting;
use crate::model::{Topology, UserId};
use crate::pool::{ForwardError, Pool, PoolSettings, Slot};
use crate::probe::Monitor;

pub use crate::pool::BackendBody;

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
    /// How long an idle pooled connection may wait for its next request before it is closed
    /// rather than reused (keep it below the backends' own keep-alive timeout).
    pub pool_idle_timeout: Duration,
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
            pool_idle_timeout: Duration::from_secs(90),
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
    pool: Pool,
    routes: Mutex<RouteCache>,
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
        let pool = Pool::new(PoolSettings {
            connect_timeout: config.connect_timeout,
            max_idle: config.pool_idle_per_backend,
            idle_timeout: config.pool_idle_timeout,
        });
        let frontend_header = HeaderValue::from_str(&config.frontend_name)
            .unwrap_or_else(|_| HeaderValue::from_static("herald"));
        Self {
            inner: Arc::new(Inner {
                config,
                monitor,
                cookie_key,
                authenticator,
                pool,
                routes: Mutex::new(RouteCache::default()),
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
pub type ResponseBody = Either<BackendBody, Full<Bytes>>;

/// The proxy as a hyper (and tower) service, for callers that run their own listener (TLS,
/// axum fallback).
pub fn service(state: ProxyState) -> ProxyService {
    ProxyService { state, peer: None }
}

/// The client's address as `X-Forwarded-For` carries it, made once per connection.
#[derive(Clone, Debug)]
struct Peer {
    ip: HeaderValue,
}

impl Peer {
    fn new(addr: SocketAddr) -> Option<Self> {
        HeaderValue::from_maybe_shared(Bytes::from(addr.ip().to_string()))
            .ok()
            .map(|ip| Self { ip })
    }
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
        // Best effort: a socket that refuses it still works, only with Nagle's delays.
        let _ = stream.set_nodelay(true);
        let service = service(state.clone()).with_peer(peer);
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
    peer: Option<Peer>,
}

impl ProxyService {
    /// The same service, noting the client's address for `X-Forwarded-For`.
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = Peer::new(peer);
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
        let peer = self.peer.as_ref().map(|p| p.ip.clone());
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
    peer: Option<HeaderValue>,
    req: Request<ForwardBody>,
) -> Response<ResponseBody> {
    let inner = &state.inner;
    let (mut parts, body) = req.into_parts();

    // A request routed by its X-AnchorMailbox header alone, with a value routed before at the
    // current Active Manager generation, takes that route without being parsed again.
    let cached =
        AnchorRequest::anchor_hint_only(&parts.uri, &parts.headers).and_then(|(protocol, hint)| {
            let generation = inner.monitor.generation();
            let target = inner
                .routes
                .lock()
                .get(&CacheKey::Hint(hint.as_bytes()), generation)?;
            Some((protocol, Parsed::Hint(hint.clone(), target)))
        });
    let (protocol, parsed) = match cached {
        Some(found) => found,
        None => match AnchorRequest::parse(&parts.uri, &parts.headers) {
            Ok(r) => (r.protocol, Parsed::Full(r)),
            Err(e) => return request_error(inner, &e),
        },
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
    let first = match &parsed {
        Parsed::Hint(_, target) => Routed::cached(target.clone()),
        Parsed::Full(request) => {
            let key = CacheKey::of(request, &parts.headers, user.as_ref());
            match decide(inner, request, user.as_ref(), key) {
                Ok(r) => r,
                Err(e) => return error_response(inner, e.status(), &e.to_string()),
            }
        }
    };

    prepare_forward_headers(&mut parts.headers, peer.as_ref());
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    );
    let (replayable, streaming) = match buffer_if_small(body, inner.config.retry_body_limit).await {
        Ok(b) => b,
        Err(msg) => return error_response(inner, StatusCode::BAD_REQUEST, &msg),
    };

    let method = parts.method;
    let uri = origin_form(parts.uri);
    // Deciding again for a retry, straight from Active Manager. A request routed from the
    // cache is parsed now: its path and its X-AnchorMailbox are all the routing rules read.
    let decide_again = || -> Result<Routed, Box<Response<ResponseBody>>> {
        let reparsed;
        let request = match &parsed {
            Parsed::Full(request) => request,
            Parsed::Hint(hint, _) => {
                let mut only = HeaderMap::new();
                only.insert(ANCHOR_MAILBOX_HEADER, hint.clone());
                reparsed = AnchorRequest::parse(&uri, &only)
                    .map_err(|e| Box::new(request_error(inner, &e)))?;
                &reparsed
            }
        };
        decide(inner, request, user.as_ref(), None)
            .map_err(|e| Box::new(error_response(inner, e.status(), &e.to_string())))
    };
    let mut headers = Some(parts.headers);
    // The request goes out at most twice; only a request that may be retried needs its head
    // kept for the second time.
    let mut head_for = |last: bool| -> HeaderMap {
        match (last, &mut headers) {
            (true, h) => h.take().unwrap_or_default(),
            (false, Some(h)) => h.clone(),
            (false, None) => HeaderMap::new(),
        }
    };
    let body = match (&replayable, streaming) {
        (Some(bytes), _) => Either::Left(Full::new(bytes.clone())),
        (None, Some(incoming)) => Either::Right(incoming),
        (None, None) => Either::Left(Full::new(Bytes::new())),
    };
    let first_headers = head_for(replayable.is_none());
    let outcome = forward(&method, &uri, first_headers, &first, body).await;

    let retry_reason = match &outcome {
        Ok(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE && idempotent => {
            Some("backend answered 503")
        }
        Ok(_) => None,
        Err(e) if e.is_connect() => {
            inner.monitor.report_failure(
                &first.target.route.backend.name,
                ProbeError::Connect(error_chain(e)),
            );
            Some("connection to backend failed")
        }
        Err(_) if idempotent => Some("backend connection broke"),
        Err(_) => None,
    };
    let (outcome, routed, retried) = match (retry_reason, replayable) {
        (Some(why), Some(bytes)) => {
            tracing::info!(
                backend = %first.target.route.backend.name,
                reason = why,
                "retrying once after asking Active Manager again"
            );
            let second = match decide_again() {
                Ok(second) => second,
                Err(response) => return *response,
            };
            let again = forward(
                &method,
                &uri,
                head_for(true),
                &second,
                Either::Left(Full::new(bytes)),
            )
            .await;
            if let Err(e) = &again
                && e.is_connect()
            {
                inner.monitor.report_failure(
                    &second.target.route.backend.name,
                    ProbeError::Connect(error_chain(e)),
                );
            }
            (again, second, true)
        }
        _ => (outcome, first, false),
    };

    let mut response = match outcome {
        Ok(resp) => resp.map(Either::Left),
        Err(e) => {
            let backend = &routed.target.route.backend;
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
        protocol,
        user.as_ref(),
        retried,
    );
    response
}

/// What routing read from a request: everything, or (for a route taken from the cache) just
/// the X-AnchorMailbox value that decided it, with that route.
enum Parsed {
    Full(AnchorRequest),
    Hint(HeaderValue, Arc<Target>),
}

/// 404 for paths the front door does not proxy, 400 for unreadable hints.
fn request_error(inner: &Inner, e: &crate::anchor::RequestError) -> Response<ResponseBody> {
    let status = match e {
        crate::anchor::RequestError::NotAMailboxPath => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    error_response(inner, status, &e.to_string())
}

/// Decides where a request goes by [`route`] under Active Manager's read lock, and caches the
/// route under `key` (see [`CacheKey`]) when the request is one whose route depends on the
/// directory and Active Manager only.
fn decide(
    inner: &Inner,
    request: &AnchorRequest,
    user: Option<&UserId>,
    key: Option<CacheKey<'_>>,
) -> Result<Routed, RouteError> {
    if let Some(key) = key
        && let Some(target) = inner.routes.lock().get(&key, inner.monitor.generation())
    {
        return Ok(Routed::cached(target));
    }
    // The clock matters to cookies only: checking presented ones, issuing one to a user.
    let now_unix = (user.is_some() || !request.backend_cookies.is_empty()).then(unix_now);
    let spread = match user {
        Some(u) => {
            let mut h = DefaultHasher::new();
            u.hash(&mut h);
            h.finish()
        }
        None => inner.anonymous_spread.fetch_add(1, Ordering::Relaxed),
    };
    let (routed, generation) = inner.monitor.read_with_generation(|am, generation| {
        let ctx = RouteContext {
            active_manager: am,
            cookie_key: &inner.cookie_key,
            now_unix: now_unix.unwrap_or(0),
            spread,
        };
        let decision = route(request, user, &ctx)?;
        let target = Target::new(&inner.pool, decision.route, am.topology());
        Ok::<_, RouteError>((
            Routed {
                target: Arc::new(target),
                refused_cookie: decision.refused_cookie,
                shell_routing: decision.shell_routing,
                now_unix,
            },
            generation,
        ))
    })?;
    if let Some(key) = key {
        inner
            .routes
            .lock()
            .insert(&key, generation, routed.target.clone());
    }
    Ok(routed)
}

/// A routing decision, with what the headers need from the same directory snapshot.
struct Routed {
    target: Arc<Target>,
    refused_cookie: Option<CookieError>,
    shell_routing: Option<ShellRouting>,
    /// The clock reading the decision used, when it needed one.
    now_unix: Option<u64>,
}

impl Routed {
    /// A route from the cache: mailbox routes only, no cookie judged, no shell session.
    fn cached(target: Arc<Target>) -> Self {
        Self {
            target,
            refused_cookie: None,
            shell_routing: None,
            now_unix: None,
        }
    }
}

/// Where a route leads, with the header values it adds made once: shared by every request
/// that the route cache sends the same way.
struct Target {
    route: Route,
    slot: Arc<Slot>,
    /// `Host` for requests that came without one: the backend's authority.
    host: Option<HeaderValue>,
    be_server: Option<HeaderValue>,
    be_target: Option<HeaderValue>,
    reason: Option<HeaderValue>,
    mailbox_guid: Option<HeaderValue>,
    mailbox_address: Option<HeaderValue>,
    database: Option<HeaderValue>,
}

impl Target {
    fn new(pool: &Pool, route: Route, topology: &Topology) -> Self {
        let value = |text: &str| HeaderValue::from_str(text).ok();
        let address = &route.backend.address;
        let host = if address.port() == 80 {
            if address.host().contains(':') {
                value(&format!("[{}]", address.host()))
            } else {
                value(address.host())
            }
        } else {
            value(&address.to_string())
        };
        let mailbox_address = route
            .mailbox
            .and_then(|g| topology.mailbox(&g))
            .and_then(|m| value(m.primary_smtp.as_str()));
        Self {
            slot: pool.slot(address),
            host,
            be_server: value(route.backend.name.as_str()),
            be_target: value(&address.to_string()),
            reason: value(&route.reason.to_string()),
            mailbox_guid: route.mailbox.and_then(|g| value(&g.to_string())),
            mailbox_address,
            database: route.database.as_ref().and_then(|d| value(d.as_str())),
            route,
        }
    }
}

/// Requests whose route depends on nothing but the directory and Active Manager, by what
/// decides it: an `X-AnchorMailbox` hint (when no explicit logon or `MailboxId` outranks it),
/// as the header's raw value, or the authenticated user's own mailbox (when the request
/// carries no hint and no cookie). Management-shell requests depend on builds and sessions
/// and are never cached.
#[derive(Clone, Copy)]
enum CacheKey<'a> {
    Hint(&'a [u8]),
    User(&'a UserId),
}

impl<'a> CacheKey<'a> {
    fn of(
        request: &AnchorRequest,
        headers: &'a HeaderMap,
        user: Option<&'a UserId>,
    ) -> Option<Self> {
        if request.protocol == Protocol::PowerShell
            || request.explicit_logon.is_some()
            || request.mailbox_id.is_some()
        {
            return None;
        }
        if request.anchor_mailbox.is_some() {
            // The parse accepted exactly one X-AnchorMailbox header: the hint is its value.
            return headers
                .get(ANCHOR_MAILBOX_HEADER)
                .map(|v| Self::Hint(v.as_bytes()));
        }
        match user {
            Some(user) if request.backend_cookies.is_empty() => Some(Self::User(user)),
            _ => None,
        }
    }
}

/// Routes decided at one Active Manager generation. Every change to Active Manager (a probe
/// result, a failover, a switchover, a new topology) moves the generation on, and the first
/// request after it empties the cache, so a cached route is never older than the state it was
/// derived from. One per proxy state, so per worker thread: its lock is not contended.
#[derive(Default)]
struct RouteCache {
    generation: u64,
    by_hint: HashMap<Bytes, Arc<Target>>,
    by_user: HashMap<UserId, Arc<Target>>,
}

impl RouteCache {
    /// Entries kept per kind before the cache starts over.
    const MAX_ENTRIES: usize = 16 * 1024;

    fn get(&self, key: &CacheKey<'_>, generation: u64) -> Option<Arc<Target>> {
        if generation != self.generation {
            return None;
        }
        match key {
            CacheKey::Hint(h) => self.by_hint.get(*h).cloned(),
            CacheKey::User(u) => self.by_user.get(*u).cloned(),
        }
    }

    fn insert(&mut self, key: &CacheKey<'_>, generation: u64, target: Arc<Target>) {
        if generation < self.generation {
            return;
        }
        if generation > self.generation {
            self.by_hint.clear();
            self.by_user.clear();
            self.generation = generation;
        }
        match key {
            CacheKey::Hint(h) => {
                if self.by_hint.len() >= Self::MAX_ENTRIES {
                    self.by_hint.clear();
                }
                self.by_hint.insert(Bytes::copy_from_slice(h), target);
            }
            CacheKey::User(u) => {
                if self.by_user.len() >= Self::MAX_ENTRIES {
                    self.by_user.clear();
                }
                self.by_user.insert((*u).clone(), target);
            }
        }
    }
}

/// The request target as a backend wants it: origin-form (`/path?query`), as hyper-util's
/// client sent it.
fn origin_form(uri: Uri) -> Uri {
    if uri.scheme().is_none() && uri.authority().is_none() && uri.path().starts_with('/') {
        return uri;
    }
    match uri.path_and_query() {
        Some(path) if path.as_str() != "/" && path.as_str().starts_with('/') => {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(path.clone());
            Uri::from_parts(parts).unwrap_or_default()
        }
        _ => Uri::default(),
    }
}

async fn forward(
    method: &Method,
    uri: &Uri,
    headers: HeaderMap,
    routed: &Routed,
    body: ForwardBody,
) -> Result<Response<BackendBody>, ForwardError> {
    let target = &routed.target;
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers;
    let h = request.headers_mut();
    h.reserve(4);
    if let Some(v) = &target.mailbox_guid {
        h.insert(MAILBOX_GUID, v.clone());
    }
    if let Some(v) = &target.mailbox_address {
        h.insert(MAILBOX, v.clone());
    }
    if let Some(v) = &target.database {
        h.insert(DATABASE, v.clone());
    }
    if !h.contains_key(header::HOST)
        && let Some(host) = &target.host
    {
        h.insert(header::HOST, host.clone());
    }
    target.slot.send(request).await
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

/// Removes hop-by-hop headers and headers only herald may set, and notes the client address
/// (`peer`: its IP as a header value).
fn prepare_forward_headers(headers: &mut HeaderMap, peer: Option<&HeaderValue>) {
    // One pass over the names; most requests carry nothing to remove.
    let mut own = false;
    let mut hop = false;
    for name in headers.keys() {
        let name = name.as_str();
        own |= name.starts_with("x-herald-");
        hop |= is_hop_by_hop(name);
    }
    if hop {
        strip_hop_by_hop(headers);
    }
    if own {
        let own: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-herald-"))
            .cloned()
            .collect();
        for k in own {
            headers.remove(k);
        }
    }
    if let Some(ip) = peer {
        let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(prior) => {
                let mut joined = String::with_capacity(prior.len() + 2 + ip.len());
                joined.push_str(prior);
                joined.push_str(", ");
                joined.push_str(ip.to_str().unwrap_or_default());
                HeaderValue::from_maybe_shared(Bytes::from(joined)).ok()
            }
            None => Some(ip.clone()),
        };
        if let Some(v) = value {
            headers.insert(X_FORWARDED_FOR, v);
        }
    }
}

/// RFC 9110 §7.6.1: the fixed hop-by-hop headers plus any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Without any of the fixed ones there is no `Connection` header either: nothing to do.
    if !headers.keys().any(|k| is_hop_by_hop(k.as_str())) {
        return;
    }
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

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
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
    let target = &routed.target;
    let route = &target.route;
    let h = response.headers_mut();
    h.reserve(6);
    let mut set_value = |name: HeaderName, value: &Option<HeaderValue>| {
        if let Some(v) = value {
            h.insert(name, v.clone());
        }
    };
    set_value(BE_SERVER, &target.be_server);
    set_value(CALCULATED_BE_TARGET, &target.be_target);
    set_value(DIAG_INFO, &target.be_server);
    set_value(ANCHOR_REASON, &target.reason);
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    if protocol == Protocol::PowerShell {
        set(headers::BACKEND_BUILD, route.backend.build.describe());
        if let Some(routing) = routed.shell_routing {
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
    if let Some(refused) = routed.refused_cookie {
        set(headers::COOKIE_REFUSED, refused.to_string());
    }
    if retried {
        h.insert(RETRIED, HeaderValue::from_static("1"));
    }
    h.insert(FE_SERVER, inner.frontend_header.clone());
    if let Some(user) = user
        && let Some(target) = route.cookie_target()
    {
        let ttl = inner.config.cookie_ttl.as_secs();
        let now_unix = routed.now_unix.unwrap_or_else(unix_now);
        let value = inner
            .cookie_key
            .issue(user.as_str(), &target, now_unix + ttl);
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
    h.insert(FE_SERVER, inner.frontend_header.clone());
    r
}

/// Wall-clock seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

const ANCHOR_MAILBOX_HEADER: HeaderName = HeaderName::from_static(ANCHOR_MAILBOX);
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const MAILBOX_GUID: HeaderName = HeaderName::from_static(MAILBOX_GUID_HEADER);
const MAILBOX: HeaderName = HeaderName::from_static(MAILBOX_HEADER);
const DATABASE: HeaderName = HeaderName::from_static(DATABASE_HEADER);
const FE_SERVER: HeaderName = HeaderName::from_static(headers::FE_SERVER);
const BE_SERVER: HeaderName = HeaderName::from_static(headers::BE_SERVER);
const CALCULATED_BE_TARGET: HeaderName = HeaderName::from_static(headers::CALCULATED_BE_TARGET);
const DIAG_INFO: HeaderName = HeaderName::from_static(headers::DIAG_INFO);
const ANCHOR_REASON: HeaderName = HeaderName::from_static(headers::ANCHOR_REASON);
const RETRIED: HeaderName = HeaderName::from_static(headers::RETRIED);

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
        let peer = Peer::new("192.0.2.7:5000".parse().expect("addr")).expect("peer");
        prepare_forward_headers(&mut h, Some(&peer.ip));
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
