//! herald-registrar: the SIP registrar core (RFC 3261 §10.3 steps 6–8), without I/O.
//!
//! The runtime parses and authenticates a REGISTER (steps 1–5: domain, Require, authentication,
//! authorization, To → canonical AOR) and hands the result to [`Registrar::register`] as a typed
//! [`RegisterRequest`]. The registrar decides, stores the bindings, and tells the runtime what to
//! answer ([`RegisterOk::response_parts`] or a [`RegisterError`] with its status code). It never
//! reads a clock: every entry point takes `now`, and expiry is driven by
//! [`Registrar::poll_timeout`] / [`Registrar::handle_timeout`] from one heap inside the core.
//!
//! The rest of the server learns about endpoints coming and going through [`Registrar::poll_event`]
//! (presence needs [`Event::AorOffline`] to publish a user as offline), and routes requests to a
//! user's endpoints through [`Registrar::bindings`] / [`Registrar::lookup_flow`], which hand back
//! the runtime's own flow handle `F` so a request can go back over the client's connection
//! (RFC 5626 style; SIPE only speaks TCP/TLS and cannot be reached any other way).
//!
//! Choices made here, with their reasons, are documented on the items they affect:
//! [`RegistrarConfig`] (defaults and limits), [`RegisterError`] (status codes),
//! [`RemovalReason`] (what replaces and flow failures mean), [`contact_key`] (URI comparison),
//! and the [`response`] constants (what SIPE needs in the 200 OK).

mod aor;
mod binding;
mod error;
mod event;
mod registrar;
mod request;
pub mod response;

pub use aor::Aor;
pub use binding::{Binding, BindingId, contact_key};
pub use error::{ConfigError, InvalidAor, RegisterError};
pub use event::{Endpoint, Event, RemovalReason};
pub use registrar::{BindingView, RegisterOk, Registrar, RegistrarConfig, Target};
pub use request::{Contact, ContactBinding, RegisterRequest};
pub use response::ResponseParts;
