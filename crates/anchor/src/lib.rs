//! Exchange-style mailbox anchoring for herald's Client Access front door.
//!
//! Every mailbox request is proxied to the one server holding the active copy of that
//! mailbox's database, whichever front door it reached (brief §3). The crate is split so
//! that every decision is plain, clock-free Rust and the I/O around it is thin:
//!
//! - [`model`]: servers, DAGs, databases and copies, mailboxes, users and their
//!   previous-mailbox info, with the consistency rules.
//! - [`build`]: Exchange build numbers and the rule for anchored management-shell sessions.
//! - [`active_manager`]: the sans-IO authority on where each database is active (health from
//!   probes, failover, switchover, an event log to persist).
//! - [`anchor`]: which mailbox a request anchors to and which server serves it, including the
//!   signed `X-BackEndCookie`.
//! - [`store`]: the [`store::AnchorStore`] trait the directory implements, and an in-memory
//!   store for tests.
//! - [`probe`], [`proxy`], [`backend`]: the tokio/hyper runtime pieces: the health-probe
//!   driver, the reverse proxy (with its pool of keep-alive connections to the mailbox
//!   servers), and a demo mailbox server.
//! - `testing` (feature `testing`): the conformance suite every [`store::AnchorStore`] runs.
//!
//! # Wiring (what `herald serve` does)
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::{Instant, SystemTime};
//! use herald_anchor::{active_manager::*, anchor::cookie::CookieKey, probe::*, proxy::*, store::*};
//!
//! # async fn wire(store: Arc<dyn AnchorStore>, secret: [u8; 32]) -> Result<(), Box<dyn std::error::Error>> {
//! let topology = Arc::new(store.load_topology()?);
//! let am = ActiveManager::restore(
//!     topology,
//!     ActiveManagerConfig::default(),
//!     store.load_active_copies()?,
//!     Instant::now(),
//! );
//! let monitor = Monitor::new(am);
//! let events_store = store.clone();
//! tokio::spawn(run_probes(monitor.clone(), ProbeConfig::default(), move |event| {
//!     let record = EventRecord::from_event(&event, SystemTime::now());
//!     if let Err(e) = events_store.record_event(&record) {
//!         tracing::error!(error = %e, "could not persist an Active Manager event");
//!     }
//! }));
//! let state = ProxyState::new(
//!     ProxyConfig::default(),
//!     monitor,
//!     CookieKey::new(&secret)?,
//!     Arc::new(NoAuthentication),
//! );
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! serve(listener, state).await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod active_manager;
pub mod anchor;
pub mod backend;
pub mod build;
pub mod model;
mod pool;
pub mod probe;
pub mod proxy;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
