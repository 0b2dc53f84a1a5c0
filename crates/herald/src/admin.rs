//! The admin listener: Prometheus `/metrics`, a liveness probe, and the live presence state
//! behind `herald presence show` and `herald contact ...`.
//!
//! It is a separate listener from the client-facing ones so that it can stay on loopback or a
//! management network. The presence routes answer plain text, the same the CLI prints.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::presence_runtime::{AdminCommand, PresenceHandle};

/// Installs the process-wide metrics recorder. Call once, before any metric is recorded.
pub(crate) fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")
}

/// Binds the admin listener; serving starts with [`serve`].
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ([http] admin)"))
}

/// Serves until the process shuts down.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    metrics: PrometheusHandle,
    presence: PresenceHandle,
) {
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
        .route("/health", get(|| async { "ok\n" }))
        .route("/presence/{user}", get(presence_show))
        .route(
            "/contacts/{user}",
            get(contacts_list)
                .post(contacts_add)
                .delete(contacts_remove),
        )
        .with_state(presence);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "admin listener failed");
    }
}

type Answer = (StatusCode, String);

fn bad_request(e: impl std::fmt::Display) -> Answer {
    (StatusCode::BAD_REQUEST, format!("{e}\n"))
}

fn unavailable() -> Answer {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the presence service is not running\n".to_owned(),
    )
}

/// `sip:alice@example.test`, `alice@example.test` → the engine's form.
fn aor(text: &str) -> Result<herald_registrar::Aor, Answer> {
    let bare = text.strip_prefix("sip:").unwrap_or(text);
    herald_registrar::Aor::parse(&bare.to_ascii_lowercase())
        .map_err(|e| bad_request(format!("{text}: {e}")))
}

/// Sends `command` built around a reply channel and waits for the answer.
async fn ask<T>(
    presence: &PresenceHandle,
    command: impl FnOnce(oneshot::Sender<T>) -> AdminCommand,
) -> Result<T, Answer> {
    let (tx, rx) = oneshot::channel();
    if !presence.admin(command(tx)).await {
        return Err(unavailable());
    }
    rx.await.map_err(|_| unavailable())
}

async fn presence_show(State(presence): State<PresenceHandle>, Path(user): Path<String>) -> Answer {
    let user = match aor(&user) {
        Ok(u) => u,
        Err(e) => return e,
    };
    match ask(&presence, |reply| AdminCommand::Report {
        user: user.clone(),
        reply,
    })
    .await
    {
        Ok(Some(report)) => (StatusCode::OK, crate::presence_cli::render_report(&report)),
        Ok(None) => (
            StatusCode::OK,
            format!(
                "sip:{}\n  availability: Offline (18500)\n  no endpoints, publications or watchers\n",
                user.as_str()
            ),
        ),
        Err(e) => e,
    }
}

async fn contacts_list(State(presence): State<PresenceHandle>, Path(user): Path<String>) -> Answer {
    let user = match aor(&user) {
        Ok(u) => u,
        Err(e) => return e,
    };
    match ask(&presence, |reply| AdminCommand::Contacts { user, reply }).await {
        Ok(Ok(list)) => (StatusCode::OK, crate::presence_cli::render_contacts(&list)),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Err(e) => e,
    }
}

/// The query of `POST /contacts/{user}` and `DELETE /contacts/{user}`.
#[derive(Debug, Deserialize)]
struct ContactQuery {
    contact: String,
    name: Option<String>,
    group: Option<u8>,
}

async fn contacts_add(
    State(presence): State<PresenceHandle>,
    Path(user): Path<String>,
    Query(q): Query<ContactQuery>,
) -> Answer {
    let (user, contact) = match (aor(&user), aor(&q.contact)) {
        (Ok(u), Ok(c)) => (u, c),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let group = match q.group {
        None => None,
        Some(g) => match herald_presence::categories::roaming::GroupId::new(g) {
            Some(g) => Some(g),
            None => return bad_request(format!("group {g}: groups are numbered 1 to 63")),
        },
    };
    match ask(&presence, |reply| AdminCommand::AddContact {
        user,
        contact,
        name: q.name,
        group,
        reply,
    })
    .await
    {
        Ok(Ok(())) => (StatusCode::OK, "added\n".to_owned()),
        Ok(Err(e)) => (StatusCode::CONFLICT, format!("{e}\n")),
        Err(e) => e,
    }
}

async fn contacts_remove(
    State(presence): State<PresenceHandle>,
    Path(user): Path<String>,
    Query(q): Query<ContactQuery>,
) -> Answer {
    let (user, contact) = match (aor(&user), aor(&q.contact)) {
        (Ok(u), Ok(c)) => (u, c),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    match ask(&presence, |reply| AdminCommand::RemoveContact {
        user,
        contact,
        reply,
    })
    .await
    {
        Ok(Ok(true)) => (StatusCode::OK, "removed\n".to_owned()),
        Ok(Ok(false)) => (StatusCode::NOT_FOUND, "no such contact\n".to_owned()),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Err(e) => e,
    }
}
