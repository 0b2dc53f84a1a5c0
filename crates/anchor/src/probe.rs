//! The runtime around [`ActiveManager`]: a shared handle ([`Monitor`]) and the task that
//! health-probes mailbox servers over HTTP and feeds the results in ([`run_probes`]).
//!
//! This module owns the clock and the sockets; every decision stays in the Active Manager.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::{RwLock, RwLockWriteGuard};
use tokio::sync::{Notify, mpsc};

use crate::active_manager::{
    ActiveManager, AmEvent, ProbeError, ProbePoll, ProbeTarget, SwitchoverError,
};
use crate::model::{DatabaseName, ServerName, Topology};

/// How servers are probed (`[anchor] probe_path`, `probe_timeout_ms`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Path of the health endpoint on every mailbox server; a 2xx answer means healthy.
    pub path: String,
    /// How long a probe may take before it counts as failed.
    pub timeout: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_PROBE_PATH.to_owned(),
            timeout: Duration::from_millis(2_000),
        }
    }
}

/// The shared Active Manager: the proxy reads it on every request, the probe task and the
/// admin commands change it. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Monitor {
    inner: Arc<MonitorInner>,
}

#[derive(Debug)]
struct MonitorInner {
    am: RwLock<ActiveManager>,
    /// Counts write accesses to `am`: bumped under the write lock, so a value read under the
    /// read lock names exactly the state seen. Lets the proxy reuse routing decisions made
    /// at the current generation without taking the lock (see [`Monitor::generation`]).
    generation: AtomicU64,
    wake: Notify,
}

/// Exclusive access to the Active Manager that bumps the generation when released, so every
/// change invalidates the decisions cached against the previous one.
struct WriteGuard<'a> {
    am: RwLockWriteGuard<'a, ActiveManager>,
    generation: &'a AtomicU64,
}

impl std::ops::Deref for WriteGuard<'_> {
    type Target = ActiveManager;

    fn deref(&self) -> &ActiveManager {
        &self.am
    }
}

impl std::ops::DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut ActiveManager {
        &mut self.am
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Still under the write lock (fields drop after this): readers that see the new
        // generation also see the new state.
        self.generation.fetch_add(1, Ordering::Release);
    }
}

impl MonitorInner {
    fn write(&self) -> WriteGuard<'_> {
        WriteGuard {
            am: self.am.write(),
            generation: &self.generation,
        }
    }
}

impl Monitor {
    /// Wraps an Active Manager built with [`ActiveManager::new`] or [`ActiveManager::restore`].
    pub fn new(am: ActiveManager) -> Self {
        Self {
            inner: Arc::new(MonitorInner {
                am: RwLock::new(am),
                generation: AtomicU64::new(0),
                wake: Notify::new(),
            }),
        }
    }

    /// Runs `f` with shared access: routing decisions and listings. Keep `f` short; probes and
    /// switchovers wait for it.
    pub fn read<R>(&self, f: impl FnOnce(&ActiveManager) -> R) -> R {
        f(&self.inner.am.read())
    }

    /// Like [`Monitor::read`], also passing the [`Monitor::generation`] of the state `f` sees.
    pub fn read_with_generation<R>(&self, f: impl FnOnce(&ActiveManager, u64) -> R) -> R {
        let am = self.inner.am.read();
        f(&am, self.inner.generation.load(Ordering::Acquire))
    }

    /// A number that changes with every change to the Active Manager (health, placements,
    /// topology). A decision derived from the state at generation `g` (see
    /// [`Monitor::read_with_generation`]) is still valid while this returns `g`. One atomic
    /// load: no lock, nothing written to memory other threads read.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Planned switchover (`herald database move DB --to SERVER`). The resulting event reaches
    /// the probe task's event callback like every other change.
    pub fn move_database(
        &self,
        database: &DatabaseName,
        to: &ServerName,
    ) -> Result<(), SwitchoverError> {
        let result = self
            .inner
            .am
            .write()
            .move_database(Instant::now(), database, to);
        self.inner.wake.notify_one();
        result
    }

    /// Adopts a changed directory (after `herald server|dag|database|mailbox add|remove`).
    pub fn update_topology(&self, topology: Arc<Topology>) {
        self.inner.write().update_topology(topology, Instant::now());
        self.inner.wake.notify_one();
    }

    /// Counts a failure the proxy saw connecting to `server` like a failed probe, so a dead
    /// server is noticed by the traffic that hits it as well as by the next probe.
    pub fn report_failure(&self, server: &ServerName, error: ProbeError) {
        self.inner
            .write()
            .on_probe(Instant::now(), server, Err(error));
        self.inner.wake.notify_one();
    }

    /// Runs `f` with exclusive access, for anything the other methods do not cover (reporting
    /// copy queue lengths, tests). Events it causes are picked up by the probe task.
    pub fn write<R>(&self, f: impl FnOnce(&mut ActiveManager) -> R) -> R {
        let result = f(&mut self.inner.write());
        self.inner.wake.notify_one();
        result
    }
}

/// Probes every server per the Active Manager's schedule, feeds results in, and hands every
/// event to `on_event` (log it and persist it with
/// [`crate::store::AnchorStore::record_event`]). Runs until the task is dropped.
pub async fn run_probes(
    monitor: Monitor,
    config: ProbeConfig,
    mut on_event: impl FnMut(AmEvent) + Send + 'static,
) {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.timeout));
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build(connector);
    let (results_tx, mut results) = mpsc::unbounded_channel::<(ServerName, ProbeResult)>();
    let config = Arc::new(config);

    loop {
        let (next, events) = {
            let mut am = monitor.inner.write();
            let now = Instant::now();
            let next = loop {
                match am.poll_probe(now) {
                    ProbePoll::Probe(target) => {
                        let tx = results_tx.clone();
                        let client = client.clone();
                        let config = config.clone();
                        tokio::spawn(async move {
                            let result = probe(&client, &config, &target).await;
                            // The receiver lives as long as this loop; a send error means
                            // the loop is gone and the result is moot.
                            let _ = tx.send((target.server, result));
                        });
                    }
                    ProbePoll::Wait(at) => break Some(at),
                    ProbePoll::Idle => break None,
                }
            };
            let events: Vec<AmEvent> = std::iter::from_fn(|| am.poll_event()).collect();
            (next, events)
        };
        // Outside the lock: persisting may be slow, and the proxy must keep routing meanwhile.
        for event in events {
            tracing::info!(%event, "active manager");
            on_event(event);
        }

        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some((server, result)) = results.recv() => {
                monitor.inner.write().on_probe(Instant::now(), &server, result);
            }
            () = sleep => {}
            () = monitor.inner.wake.notified() => {}
        }
    }
}

type ProbeResult = Result<(), ProbeError>;

/// One HTTP GET of the health path.
async fn probe(
    client: &Client<HttpConnector, Empty<Bytes>>,
    config: &ProbeConfig,
    target: &ProbeTarget,
) -> ProbeResult {
    let uri = format!("http://{}{}", target.address, config.path);
    let request = http::Request::get(uri)
        .header(http::header::USER_AGENT, "herald-active-manager")
        .body(Empty::new())
        .map_err(|e| ProbeError::Connect(format!("bad probe request: {e}")))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            ProbeError::Connect(
                std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string()),
            )
        })?;
        let status = response.status();
        // Read the (small) body so the connection can be reused for the next probe.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(ProbeError::Status(status.as_u16()))
        }
    };
    tokio::time::timeout(config.timeout, exchange)
        .await
        .unwrap_or(Err(ProbeError::Timeout))
}

/// The health endpoint of herald's demo mailbox server.
pub const DEFAULT_PROBE_PATH: &str = "/_herald/health";
