//! The types that cross the boundary between the engine and the request pipeline.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use herald_registrar::Aor;
use herald_sip::{Method, Request, ResponseBuilder};

use crate::availability::{ActivityToken, Availability};

/// A request the pipeline has parsed, validated (RFC 3261 §8.2) and authenticated, for the
/// engine to decide on: PUBLISH, SUBSCRIBE or SERVICE.
#[derive(Clone, Debug)]
pub struct AuthenticatedRequest<F> {
    /// The request.
    pub request: Request,
    /// Who sent it, as authentication established (never taken from From).
    pub user: Aor,
    /// The flow it came on; notifications of a subscription it creates go back over it.
    pub flow: F,
    /// The endpoint it came from, when the pipeline can tell (see
    /// [`EndpointKey::from_request`]); publications with `expireType="endpoint"` die with it.
    pub endpoint: Option<EndpointKey>,
    /// Our Contact as the subscriber reaches us over `flow` (the listener's address and
    /// transport), for the 2xx and notifications of a dialog this request creates or
    /// refreshes; `None`: [`super::EngineConfig::contact`].
    pub contact: Option<Arc<str>>,
}

/// What identifies one signed-in endpoint of a user across its requests: the Lync `epid`, else
/// the `+sip.instance`, else the Contact URI. [`EndpointKey::of`] derives the same key from a
/// registrar event, so publications and registrations meet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointKey(Arc<str>);

impl EndpointKey {
    /// A key from its text.
    pub fn new(key: &str) -> Self {
        Self(Arc::from(key))
    }

    /// The key of a registered endpoint.
    pub fn of(endpoint: &herald_registrar::Endpoint) -> Self {
        Self(
            endpoint
                .epid
                .clone()
                .or_else(|| endpoint.instance.clone())
                .unwrap_or_else(|| endpoint.contact.clone()),
        )
    }

    /// The key of the endpoint that sent `request`: the From `epid` parameter (SIPE and Lync
    /// send it on every request), else the Contact's `+sip.instance`, else the Contact URI.
    /// `None` when the request carries none of them (a PUBLISH from a SIMPLE client usually has
    /// no Contact).
    pub fn from_request(request: &Request) -> Option<Self> {
        if let Some(Some(epid)) = request.from().param("epid") {
            return Some(Self::new(epid));
        }
        let contacts = request.contacts().ok()?;
        let first = contacts.contacts().first()?;
        if let Some(instance) = first.instance() {
            return Some(Self::new(&instance));
        }
        Some(Self::new(&String::from_utf8_lossy(first.uri().as_bytes())))
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The engine's answer to a request, for the pipeline to send through the request's server
/// transaction.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The response, with every header the engine decided on and the body.
    pub response: ResponseBuilder,
    /// For a 2xx that created a subscription dialog: the To tag already set on `response`,
    /// which the engine's notifications carry in From. The pipeline must not replace it (it may
    /// still add its own tag to every other response).
    pub dialog_tag: Option<String>,
}

impl Reply {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.response.status()
    }
}

/// Correlates a NOTIFY with the outcome of its client transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotifyId(pub(crate) u64);

impl NotifyId {
    /// The number, for logs and for runtimes that carry it through their transaction layer.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id whose number is `n` (from [`NotifyId::get`]). An id the engine did not issue is
    /// ignored when reported.
    pub const fn from_raw(n: u64) -> Self {
        Self(n)
    }
}

/// A request the engine originates.
#[derive(Clone, Debug)]
pub struct Outbound<F> {
    /// The flow of the subscription it belongs to (the flow its SUBSCRIBE came on).
    pub flow: F,
    /// NOTIFY (needs a client transaction, report its outcome) or BENOTIFY (send and forget).
    pub kind: OutboundKind,
    /// The message.
    pub request: OutboundRequest,
}

/// How an [`Outbound`] is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboundKind {
    /// A NOTIFY: send it through a client transaction and report the final response with
    /// [`super::Engine::on_notify_response`], or its timeout or transport failure with
    /// [`super::Engine::on_notify_timeout`].
    Notify(NotifyId),
    /// A BENOTIFY (MS-SIP §3.5): send it once, outside any transaction; the subscriber never
    /// answers and the engine ignores answers that come anyway.
    Benotify,
}

/// A server-originated request without its Via: everything else (Request-URI = the
/// subscriber's Contact, Max-Forwards, From with our tag, To with theirs, Call-ID, CSeq,
/// Route, Contact, Event, Subscription-State, Content-Type, Content-Length, body) is in place.
/// The pipeline adds the Via it owns (sent-by and a fresh branch for the client transaction).
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    bytes: Bytes,
    line_end: usize,
    method: Method,
    cseq: u32,
}

impl OutboundRequest {
    pub(crate) fn new(bytes: Bytes, method: Method, cseq: u32) -> Self {
        let line_end = memchr::memmem::find(&bytes, b"\r\n").map_or(0, |i| i + 2);
        Self {
            bytes,
            line_end,
            method,
            cseq,
        }
    }

    /// NOTIFY or BENOTIFY.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The CSeq number (strictly increasing per dialog).
    pub fn cseq(&self) -> u32 {
        self.cseq
    }

    /// The message without Via.
    pub fn without_via(&self) -> &Bytes {
        &self.bytes
    }

    /// The message with `Via: {via}` as its first header, e.g.
    /// `SIP/2.0/TLS pool.example.test:5061;branch=z9hG4bK...`.
    pub fn with_via(&self, via: &str) -> Bytes {
        let mut out = BytesMut::with_capacity(self.bytes.len() + via.len() + 7);
        out.put_slice(&self.bytes[..self.line_end]);
        out.put_slice(b"Via: ");
        out.put_slice(via.as_bytes());
        out.put_slice(b"\r\n");
        out.put_slice(&self.bytes[self.line_end..]);
        out.freeze()
    }
}

/// Why a subscription ended (RFC 6665 §4.2.2 reasons, as `Subscription-State: terminated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Termination {
    /// Expired, or the subscriber unsubscribed (RFC 6665 uses `timeout` for both).
    Timeout,
    /// The server ended it; the subscriber may subscribe again at once.
    Deactivated,
    /// Not authorised.
    Rejected,
    /// The resource does not exist (any more).
    NoResource,
}

impl Termination {
    /// The `reason` parameter.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Deactivated => "deactivated",
            Self::Rejected => "rejected",
            Self::NoResource => "noresource",
        }
    }
}

/// What `herald presence show URI` prints: the aggregated state, the publications and the
/// watchers of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceReport {
    /// `sip:user@domain`.
    pub uri: String,
    /// What colleagues see.
    pub availability: Availability,
    /// The activity shown with it.
    pub activity: Option<ActivityToken>,
    /// Registered endpoints (their keys).
    pub endpoints: Vec<String>,
    /// Published category instances and RFC 3903 publications.
    pub publications: Vec<PublicationReport>,
    /// Who watches.
    pub watchers: Vec<WatcherReport>,
}

/// One publication in a [`PresenceReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicationReport {
    /// `state/0x30001234@2`, `note/0@200`, or `pidf <etag>`.
    pub key: String,
    /// The endpoint that published it, if known.
    pub endpoint: Option<String>,
    /// `endpoint`, `static`, `user`, `time` or `pidf`.
    pub expiry: String,
    /// The availability it carries, for states.
    pub availability: Option<Availability>,
}

/// One watcher in a [`PresenceReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherReport {
    /// The watcher's `sip:` URI.
    pub uri: String,
    /// `presence`, `presence (list)`.
    pub kind: &'static str,
    /// Time until the subscription expires.
    pub expires_in: Duration,
}
