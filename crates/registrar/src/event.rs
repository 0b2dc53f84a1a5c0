//! What the registrar tells the rest of the server (presence, routing, metrics).

use std::sync::Arc;

use crate::aor::Aor;
use crate::binding::{Binding, BindingId};

/// A change in who is reachable, drained with [`crate::Registrar::poll_event`].
///
/// Per AOR, counting `EndpointRegistered` up and `EndpointRemoved` down gives the number of
/// bindings at every point of the stream, and it reaches zero only right before
/// [`Event::AorOffline`]: one REGISTER's additions are queued before its removals, and a
/// replacement's new endpoint before the old one's removal. [`Event::AorOnline`] comes right before
/// the first `EndpointRegistered` of an AOR that had none.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<F> {
    /// The AOR had no binding and now has one: the user signed in somewhere.
    AorOnline {
        /// The user.
        aor: Aor,
    },
    /// A new endpoint registered (or re-registered under a new Call-ID; the old binding's
    /// [`RemovalReason::Replaced`] follows).
    EndpointRegistered {
        /// The user.
        aor: Aor,
        /// The endpoint.
        endpoint: Endpoint,
        /// Where requests to it go.
        flow: F,
    },
    /// An endpoint refreshed its registration (same Call-ID, higher CSeq). The flow is the one
    /// the refresh came on, which may differ from before if the client reconnected.
    EndpointRefreshed {
        /// The user.
        aor: Aor,
        /// The endpoint.
        endpoint: Endpoint,
        /// Where requests to it go from now on.
        flow: F,
        /// Whether the flow, the Contact URI or the EPID changed. A plain refresh (the common
        /// case: a client re-registering before expiry) changes nothing those who route or key
        /// state by endpoint need to know, so they may skip it.
        moved: bool,
    },
    /// An endpoint's binding is gone; state scoped to it (Lync `expireType="endpoint"`
    /// publications, its subscriptions) should go too.
    EndpointRemoved {
        /// The user.
        aor: Aor,
        /// The endpoint.
        endpoint: Endpoint,
        /// The flow it was reachable on.
        flow: F,
        /// Why it went away.
        reason: RemovalReason,
    },
    /// The AOR's last binding went away: the user is offline everywhere.
    AorOffline {
        /// The user.
        aor: Aor,
    },
}

/// Identifies the endpoint an event is about, with what presence keys endpoint state by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The binding (stable across refreshes).
    pub binding: BindingId,
    /// The Contact URI.
    pub contact: Arc<str>,
    /// The `+sip.instance`, if any.
    pub instance: Option<Arc<str>>,
    /// The Lync `epid`, if any.
    pub epid: Option<Arc<str>>,
}

impl Endpoint {
    pub(crate) fn of<F>(b: &Binding<F>) -> Self {
        Self {
            binding: b.id,
            contact: b.uri.clone(),
            instance: match &b.key {
                crate::binding::Key::Instance { instance, .. } => Some(instance.clone()),
                crate::binding::Key::Contact(_) => None,
            },
            epid: b.epid.clone(),
        }
    }
}

/// Why a binding was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalReason {
    /// The client removed it: `expires=0`, `Expires: 0`, or `Contact: *` (sign-out).
    Unregistered,
    /// It was not refreshed in time.
    Expired,
    /// The same endpoint (same instance, or same Contact URI) registered again under a new
    /// Call-ID. RFC 3261 §10.2.4 has a UA keep its Call-ID for a whole boot cycle, so a new
    /// Call-ID means the client restarted: the old session's state is stale, though the user
    /// never went offline.
    Replaced,
    /// The runtime reported the binding's connection closed ([`crate::Registrar::flow_closed`]).
    /// RFC 5626 makes such a binding unusable until the client re-registers, and SIPE (TCP/TLS
    /// only) cannot be reached any other way, so the binding is removed rather than kept as a
    /// dead route; a client that reconnects re-registers at once.
    FlowFailed,
}
