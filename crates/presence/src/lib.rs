//! Presence documents for herald: the Lync availability model, aggregation, and every body
//! format a presence server parses or renders.
//!
//! Pure: no I/O, no clock, no tokio. The presence engine feeds it bodies and instants and gets
//! back typed data, precise errors (→ 400/413/415) and rendered [`bytes::Bytes`] that it shares
//! across every watcher with the same view (DESIGN §4, "render once, send many").
//!
//! - [`availability`] — numbers, bands, activity tokens, state types, user statuses.
//! - [`aggregate`] — the aggregation of a user's states across endpoints.
//! - [`pidf`] — PIDF (RFC 3863) + RPID (RFC 4480) and the Lync ↔ PIDF mapping.
//! - [`categories`] — MS-PRES category publication, category notification, roaming self and
//!   contacts, batched category subscription, container membership, the WrongDelta fault.
//! - [`containers`] — access levels and who sees what.
//! - [`rlmi`] — RFC 4662 `multipart/related` resource-list notifications.
//! - [`watcherinfo`] — RFC 3858 watcher information.
//! - [`render`] — body formats, media types and the render-cache key.
//! - [`engine`] — the presence engine: publications, subscriptions, notifications, contact
//!   lists and privacy, as a sans-IO core the request pipeline drives.
//!
//! A SIMPLE client's PUBLISH, read in Lync terms and shown to a Lync watcher:
//!
//! ```
//! use herald_presence::availability::{Availability, StateType};
//! use herald_presence::categories::{self, CategoryInstance, CategoryName, CategoryValue, State};
//! use herald_presence::{Limits, pidf};
//!
//! let body = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf"
//!     xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
//!     xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:carol@example.test">
//!   <tuple id="t"><status><basic>open</basic></status></tuple>
//!   <dm:person id="p"><rpid:activities><rpid:busy/></rpid:activities></dm:person>
//! </presence>"#;
//! let published = pidf::Presence::parse(body, &Limits::default())?;
//! let summary = pidf::to_summary(&published);
//! assert_eq!(summary.availability, Availability::BUSY);
//!
//! let state = CategoryInstance {
//!     name: CategoryName::State,
//!     instance: categories::instance::AGGREGATE,
//!     publish_time: None,
//!     container: None,
//!     version: None,
//!     expire_type: None,
//!     value: CategoryValue::State(State::new(StateType::AggregateState, summary.availability)),
//! };
//! // Rendered once, shared by every watcher with this view.
//! let shared: bytes::Bytes = categories::render_categories("sip:carol@example.test", [&state]);
//! assert!(shared.starts_with(b"<categories "));
//! # Ok::<(), herald_presence::BodyError>(())
//! ```

#![warn(missing_docs)]

pub mod aggregate;
pub mod availability;
pub mod categories;
pub mod containers;
pub mod engine;
mod error;
mod fragment;
mod limits;
pub mod pidf;
pub mod render;
pub mod rlmi;
mod time;
pub mod watcherinfo;
pub(crate) mod xml;

pub use error::BodyError;
pub use fragment::XmlFragment;
pub use limits::Limits;
pub use time::Timestamp;
