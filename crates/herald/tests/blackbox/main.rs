//! Black-box tests of `herald serve`: the built binary is started with a config in a temporary
//! folder (loopback listeners on port 0), and driven over real UDP, TCP and TLS sockets, its
//! admin HTTP listener, its command line, and SIPp.
//!
//! One binary with one module per concern, like hickory's and rustls' integration suites:
//!
//! - `rfc3261_registrar`: RFC 3261 §10 registrations, as a Lync client sees them.
//! - `rfc3261_uas`: RFC 3261 §8.2 request checks that come before authentication.
//! - `rfc8760_digest`: Digest authentication (RFC 8760, RFC 7616), throttling, RFC 3581 rport.
//! - `transports`: TCP framing and keep-alive (RFC 3261 §18.3, RFC 5626 §4.4.1), TLS, IPv6,
//!   connection limits, idle timeout, oversize and garbage datagrams.
//! - `rfc4475_torture`: every RFC 4475 message sent to the running server.
//! - `cli`: `herald user|domain|directory` and `serve`'s persistence and shutdown.
//! - `discovery`: the split-view DNS zone (dig), autodiscover (curl), `herald discover`'s
//!   fallbacks, `dns records` and `cert request`.
//! - `metrics`: the admin listener's `/metrics` and `/health`.
//! - `pool_homing`, `pools`: servers of one pool and of two pools on one store: the 301 to the
//!   home server (SIPp too), autodiscover's Redirect to the home pool, each pool's DNS names.
//! - `sipp`: the SIPp registration scenario in `tests/sipp/`.
//! - `presence`: PUBLISH, SUBSCRIBE / NOTIFY, BENOTIFY, the Lync SERVICE dialect, contact
//!   lists and persistence (issue 3), and third-party SIPp presence scenarios.
//! - `anchor`: mailbox anchoring with three `herald mailbox-server` backends: routing by
//!   database, failover, CLI switchover, management-shell anchoring, backend cookies, and
//!   `user clear-previous-mailbox`.
//!
//! Each module shares one server among its tests where state allows (see `support::shared`);
//! tests that need a particular configuration start their own. Every socket read has a timeout.

mod support;

mod anchor;
mod cli;
mod discovery;
mod metrics;
mod pool_homing;
mod pools;
mod presence;
mod registration_restart;
mod rfc3261_registrar;
mod rfc3261_uas;
mod rfc4475_torture;
mod rfc8760_digest;
mod sipp;
mod transports;
