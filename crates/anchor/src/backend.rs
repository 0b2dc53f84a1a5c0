//! A demo mailbox server (`herald mailbox-server --name N --build B --listen ADDR`): enough of
//! a backend to see anchoring work and to test failover end to end.
//!
//! - `GET /_herald/health` answers `200 up` or `503 down`.
//! - `POST /_herald/health` with body `down` or `up` switches that state, to fail a server on
//!   demand; a down server answers every other request with 503, like a mailbox server whose
//!   databases went away.
//! - Anything else answers JSON naming the server, its build and the mailbox the front door
//!   anchored the request to (from the `X-Herald-Mailbox*` headers herald adds), and how many
//!   body bytes arrived, so streaming can be checked too.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::build::BuildNumber;
use crate::model::ServerName;
use crate::probe::DEFAULT_PROBE_PATH;

/// Request header carrying the anchor mailbox's primary address to the backend.
pub const MAILBOX_HEADER: &str = "x-herald-mailbox";
/// Request header carrying the anchor mailbox's ExchangeGuid to the backend.
pub const MAILBOX_GUID_HEADER: &str = "x-herald-mailbox-guid";
/// Request header carrying the anchor mailbox's database to the backend.
pub const DATABASE_HEADER: &str = "x-herald-database";

/// Serves the demo mailbox server on `listener` until the task is dropped. Accept errors
/// (such as running out of file descriptors) are logged and retried, not fatal.
pub async fn run_backend(
    name: ServerName,
    build: BuildNumber,
    listener: TcpListener,
) -> std::io::Result<()> {
    let state = Arc::new(BackendState {
        name,
        build,
        healthy: AtomicBool::new(true),
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "mailbox server: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "mailbox server: connection ended with an error");
            }
        });
    }
}

struct BackendState {
    name: ServerName,
    build: BuildNumber,
    healthy: AtomicBool,
}

async fn handle(state: &BackendState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() == DEFAULT_PROBE_PATH {
        return health(state, req).await;
    }
    if !state.healthy.load(Ordering::Relaxed) {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("mailbox server {} is down", state.name),
        );
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mailbox = header(MAILBOX_HEADER);
    let guid = header(MAILBOX_GUID_HEADER);
    let database = header(DATABASE_HEADER);
    let anchor = header("x-anchormailbox");
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    // Count body bytes frame by frame so large uploads are streamed, not buffered.
    let mut body = req.into_body();
    let mut body_bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(data) = f.data_ref() {
                    body_bytes += data.len() as u64;
                }
            }
            Err(_) => return text(StatusCode::BAD_REQUEST, "request body failed".into()),
        }
    }
    let json = serde_json::json!({
        "server": state.name.as_str(),
        "build": state.build.to_string(),
        "mailbox": mailbox,
        "mailbox_guid": guid,
        "database": database,
        "anchor_mailbox": anchor,
        "method": method,
        "path": path,
        "body_bytes": body_bytes,
    });
    let mut response = Response::new(Full::new(Bytes::from(json.to_string())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn health(state: &BackendState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match *req.method() {
        Method::GET | Method::HEAD => {
            if state.healthy.load(Ordering::Relaxed) {
                text(StatusCode::OK, "up".into())
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "down".into())
            }
        }
        Method::POST => {
            let body = match Limited::new(req.into_body(), 16).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return text(StatusCode::BAD_REQUEST, "say up or down".into()),
            };
            match body.trim_ascii() {
                b"up" => state.healthy.store(true, Ordering::Relaxed),
                b"down" => state.healthy.store(false, Ordering::Relaxed),
                _ => return text(StatusCode::BAD_REQUEST, "say up or down".into()),
            }
            let now = if state.healthy.load(Ordering::Relaxed) {
                "up"
            } else {
                "down"
            };
            tracing::info!(server = %state.name, state = now, "mailbox server health switched");
            text(StatusCode::OK, now.into())
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET or POST".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
