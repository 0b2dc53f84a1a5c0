//! The admin listener: Prometheus `/metrics` and a liveness probe.
//!
//! It is a separate listener from the client-facing ones so that it can stay on loopback or a
//! management network.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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
pub(crate) async fn serve(listener: tokio::net::TcpListener, metrics: PrometheusHandle) {
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
        .route("/health", get(|| async { "ok\n" }));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "admin listener failed");
    }
}
