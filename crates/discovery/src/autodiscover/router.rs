//! The axum adapter: HTTP request → [`AdRequest`] → [`Autodiscover::respond`] → HTTP response.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::{AdRequest, Autodiscover};

/// Which listener a router serves; decides the scheme of generated links and the
/// HTTP-to-HTTPS redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `[http] web`.
    Http,
    /// `[http] web_tls`.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The autodiscover routes for one listener.
///
/// The client's address decides the internal or external answer, so serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()` (or insert a
/// `ConnectInfo<SocketAddr>` extension per connection in a TLS accept loop); without it every
/// client is treated as outside. Paths are registered in Lync's casing and in lower case.
pub fn router(service: Arc<Autodiscover>, scheme: Scheme) -> Router {
    let mut router = Router::new().route("/", any(handle));
    for path in PATHS {
        router = router.route(path, any(handle));
        let lower = path.to_ascii_lowercase();
        if lower != *path {
            router = router.route(&lower, any(handle));
        }
    }
    router.with_state((service, scheme))
}

async fn handle(
    State((service, scheme)): State<(Arc<Autodiscover>, Scheme)>,
    request: Request,
) -> Response {
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let header_text = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let host = header_text(header::HOST).or_else(|| request.uri().authority().map(|a| a.as_str()));
    let facts = AdRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.uri().query(),
        accept: header_text(header::ACCEPT),
        host,
        source,
        scheme,
    };
    let answer = service.respond(&facts);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Body::from(answer.body)).into_response();
    let headers = response.headers_mut();
    if let Some(ct) = answer.content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (name, value) in answer.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

const PATHS: &[&str] = &[
    "/Autodiscover/AutodiscoverService.svc/root",
    "/Autodiscover/AutodiscoverService.svc/root/",
    "/Autodiscover/AutodiscoverService.svc/root/user",
    "/Autodiscover/AutodiscoverService.svc/root/oauth/user",
    "/Autodiscover/AutodiscoverService.svc/root/domain",
];
