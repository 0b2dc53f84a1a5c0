//! SIP transactions (RFC 3261 §17, with RFC 6026's Accepted states), without I/O.
//!
//! A transaction is what makes SIP work over a lossy network: the client side retransmits a
//! request until a response comes or 64*T1 passes; the server side recognises retransmitted
//! requests, answers them from the last response it sent, and retransmits a non-2xx final
//! response to INVITE until the ACK comes. This crate holds those state machines and nothing
//! else. It reads no clock, owns no socket and does not parse SIP: the runtime passes the
//! current time, the transaction key it decoded from the message, and the serialized bytes;
//! the layer answers with verdicts, datagrams to send and the next instant it needs to run.
//!
//! # Driving it
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use herald_transaction::{Config, MethodKind, ServerKey, ServerVerdict, TransactionLayer};
//!
//! let mut layer = TransactionLayer::<&str>::new(Config::default());
//! let now = Instant::now();
//! // A REGISTER arrived from 192.0.2.1 over UDP; the codec gave us its top Via and method.
//! let key = ServerKey::new("z9hG4bK776", "192.0.2.1:5060", MethodKind::from_name("REGISTER"))?;
//! if let ServerVerdict::New(id) = layer.on_request(now, key, "192.0.2.1:5060", false)? {
//!     // The TU handles the request and answers.
//!     layer.send_response(now, id, 200, Bytes::from_static(b"SIP/2.0 200 OK\r\n..."))?;
//! }
//! while let Some(transmit) = layer.poll_transmit() {
//!     // socket.send_to(&transmit.payload, transmit.destination)
//!     # let _ = transmit;
//! }
//! while let Some(event) = layer.poll_event() {
//!     // tell the TU
//!     # let _ = event;
//! }
//! // Sleep until `layer.poll_timeout()` or the next datagram, then `handle_timeout(now)`.
//! assert!(layer.poll_timeout().is_some()); // Timer J keeps the 200 for retransmissions.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Scope
//!
//! * Requests from RFC 2543 clients (no `z9hG4bK` branch) can be keyed with
//!   [`ServerKey::legacy`]; a caller may instead pass them to the TU without a transaction, in
//!   which case they get no retransmission absorption.
//! * The TU sends `100 Trying` for INVITE, the 2xx retransmissions of §13.3.1.4 and the ACK for
//!   2xx: none of them belong to a transaction.
//! * Timer C (proxy) belongs to the proxy core; it ends a transaction with
//!   [`TransactionLayer::abort`].

#![warn(missing_docs)]

mod client;
mod key;
mod layer;
mod server;
mod timers;

pub use client::{ClientState, ClientVerdict};
pub use key::{ClientKey, KeyError, LegacyKeyParts, MAGIC_COOKIE, MethodKind, ServerKey};
pub use layer::{
    ClientId, Config, Error, Event, MAX_BOUND, ServerId, TransactionId, TransactionLayer, Transmit,
};
pub use server::{ServerState, ServerVerdict};
pub use timers::{Timer, Timers};

#[cfg(test)]
mod tests;
