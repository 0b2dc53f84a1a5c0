//! SIP message codec (RFC 3261 §7, §18.3, §19, §20, §25) for herald.
//!
//! A message is parsed once into a [`Message`] over one shared [`bytes::Bytes`] buffer: the
//! start line, every header as `(name, raw value span)`, and the body. The headers a server
//! needs for every message — Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length — are
//! always decoded so malformed ones give a deterministic 400; everything else (Contact, Expires,
//! Event, Authorization, ...) is decoded on demand. An untouched message serialises to exactly
//! the bytes it was parsed from, which is what a proxy or a registrar storing traffic needs.
//!
//! Like the rest of herald's protocol cores this crate does no I/O and reads no clock: the
//! runtime feeds it datagrams ([`Message::parse`]) or stream reads ([`StreamDeframer`]) and asks
//! [`ParseError::disposition`] what to do with failures.
//!
//! ```
//! use bytes::Bytes;
//! use herald_sip::{HeaderName, Limits, Message, Response};
//!
//! let raw = Bytes::from_static(
//!     b"REGISTER sip:example.test SIP/2.0\r\n\
//!       Via: SIP/2.0/TCP 127.0.0.1:34404;branch=z9hG4bK1\r\n\
//!       From: <sip:alice@example.test>;tag=6398738154\r\n\
//!       To: <sip:alice@example.test>\r\n\
//!       Call-ID: 1@127.0.0.1\r\n\
//!       CSeq: 1 REGISTER\r\n\
//!       Content-Length: 0\r\n\r\n",
//! );
//! let Message::Request(req) = Message::parse(raw.clone(), &Limits::default())? else {
//!     unreachable!()
//! };
//! assert_eq!(req.to_bytes(), raw);
//! assert_eq!(req.to().uri().aor().as_deref(), Some("alice@example.test"));
//! let ok = Response::for_request(&req, 200, "OK")
//!     .to_tag("x1")
//!     .header(HeaderName::Expires, "3600")
//!     .build()?;
//! assert_eq!(ok.to().tag(), Some("x1"));
//! # Ok::<(), herald_sip::ParseError>(())
//! ```

#![warn(missing_docs)]

mod builder;
mod deframer;
mod error;
mod header_name;
mod limits;
mod message;
mod method;
mod name_addr;
mod parse;
mod scan;
mod triage;
mod typed;
mod uri;
mod via;

pub use builder::{RequestBuilder, ResponseBuilder};
pub use deframer::{Frame, KEEPALIVE_PONG, StreamDeframer};
pub use error::ParseError;
pub use header_name::{AsHeaderName, HeaderName, OtherName};
pub use limits::Limits;
pub use message::{HeaderField, Message, Request, Response};
pub use method::{Method, MethodToken};
pub use name_addr::{Contact, ContactList, NameAddr};
pub use triage::{Disposition, Rejection, Transport};
pub use typed::{AuthHeader, CSeq, Event, MediaType, SubscriptionState};
pub use uri::{DomainName, Host, SipUri, TelUri, Uri};
pub use via::{Via, ViaTransport};
