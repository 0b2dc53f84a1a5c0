//! The engine's internal model: users (presentity and watcher sides), subscriptions, timers.
//!
//! Sizes matter here (DESIGN §4 "compact state"): a subscription is one slab slot of about a
//! hundred bytes plus its dialog identifiers in one heap string, referenced by `u32` indexes
//! from the watched presentity and from the watcher; documents are never copied per watcher.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use herald_registrar::{Aor, BindingId};

use super::api::EndpointKey;
use crate::Timestamp;
use crate::XmlFragment;
use crate::availability::{ActivityToken, Availability};
use crate::categories::CategoryInstance;
use crate::categories::roaming::ContactList;
use crate::containers::{AccessLevel, Container};
use crate::pidf::Summary;
use crate::render::BodyFormat;

/// Index of a user slot.
pub(crate) type UserId = u32;

/// A subscription slot and the generation that makes a stale reference detectable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SubId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// One user: the presentity others watch and the watcher holding subscriptions.
pub(crate) struct User<F> {
    pub(crate) aor: Aor,
    /// `sip:user@domain`, the URI every document and dialog header uses.
    pub(crate) uri: Arc<str>,
    pub(crate) generation: u32,
    // --- presentity side ---
    pub(crate) endpoints: Vec<EndpointEntry<F>>,
    pub(crate) published: Vec<Published>,
    pub(crate) pidf: Vec<PidfPublication>,
    /// Containers as stored (defaults for 100/200 are applied when resolving views).
    pub(crate) containers: Vec<Container>,
    pub(crate) identity: Option<XmlFragment>,
    /// Instances the server computes (aggregate states, identity card, PIDF note).
    pub(crate) derived: Vec<CategoryInstance>,
    /// Published plus derived instances: what renderers see.
    pub(crate) snapshot: Vec<CategoryInstance>,
    pub(crate) snapshot_time: Timestamp,
    /// When the user was last signed in (for `lastActive` while Offline).
    pub(crate) last_seen: Option<Timestamp>,
    pub(crate) availability: Availability,
    pub(crate) activity: Option<ActivityToken>,
    /// Bumped whenever the snapshot changes; part of the render key.
    pub(crate) version: u64,
    /// Bodies rendered at `version`, one per (view, format).
    pub(crate) renders: Vec<Render>,
    /// Subscriptions (single and list) watching this presentity.
    pub(crate) watchers: Vec<u32>,
    /// When aggregation can next change without input (idle timers, expiries).
    pub(crate) next_change: Option<Instant>,
    /// When (ms since the base instant) a timer is armed for, so recomputing does not pile up
    /// timers.
    pub(crate) scheduled: Option<u64>,
    // --- watcher side ---
    /// Subscriptions this user holds.
    pub(crate) own: Vec<u32>,
    /// Presentities watched through persistent subscriptions (quota).
    pub(crate) watched: u32,
    /// The contact list, once loaded.
    pub(crate) contacts: Option<ContactList>,
    /// Watchers the user has acknowledged (roaming-self `subscribers`).
    pub(crate) acknowledged: Vec<Box<str>>,
    pub(crate) poll: PollBucket,
}

impl<F> User<F> {
    pub(crate) fn new(aor: Aor, generation: u32, now_wall: Timestamp) -> Self {
        let uri: Arc<str> = Arc::from(format!("sip:{}", aor.as_str()));
        Self {
            aor,
            uri,
            generation,
            endpoints: Vec::new(),
            published: Vec::new(),
            pidf: Vec::new(),
            containers: Vec::new(),
            identity: None,
            derived: Vec::new(),
            snapshot: Vec::new(),
            snapshot_time: now_wall,
            last_seen: None,
            availability: Availability::OFFLINE,
            activity: None,
            version: 0,
            renders: Vec::new(),
            watchers: Vec::new(),
            next_change: None,
            scheduled: None,
            own: Vec::new(),
            watched: 0,
            contacts: None,
            acknowledged: Vec::new(),
            poll: PollBucket::default(),
        }
    }

    /// Whether nothing but persisted data refers to the user, so its slot can be freed (it is
    /// reloaded from the store when needed again).
    pub(crate) fn is_idle(&self) -> bool {
        self.endpoints.is_empty()
            && self.pidf.is_empty()
            && self.watchers.is_empty()
            && self.own.is_empty()
            && self.published.iter().all(|p| p.is_static())
    }

    pub(crate) fn cached_render(&self, view: AccessLevel, format: BodyFormat) -> Option<&Bytes> {
        self.renders
            .iter()
            .find(|r| r.view == view && r.format == format)
            .map(|r| &r.body)
    }
}

/// One rendered body.
pub(crate) struct Render {
    pub(crate) view: AccessLevel,
    pub(crate) format: BodyFormat,
    pub(crate) body: Bytes,
}

/// A registered endpoint.
pub(crate) struct EndpointEntry<F> {
    pub(crate) binding: BindingId,
    pub(crate) key: EndpointKey,
    pub(crate) flow: F,
}

/// A category instance a client published.
#[derive(Clone, Debug)]
pub(crate) struct Published {
    /// With container, version, expiry type and server publish time.
    pub(crate) instance: CategoryInstance,
    pub(crate) endpoint: Option<EndpointKey>,
    pub(crate) expires_at: Option<Instant>,
    pub(crate) published_at: Instant,
}

impl Published {
    pub(crate) fn is_static(&self) -> bool {
        self.instance.expire_type == Some(crate::categories::ExpireType::Static)
    }
}

/// An RFC 3903 publication.
#[derive(Clone, Debug)]
pub(crate) struct PidfPublication {
    pub(crate) etag: Box<str>,
    pub(crate) expires_at: Instant,
    pub(crate) endpoint: Option<EndpointKey>,
    pub(crate) summary: Summary,
    /// The document's tuples say `closed` (one at least, none `open`): a SIMPLE user who
    /// set itself offline while signed in, Lync's Appear Offline. A document without a basic
    /// status also reads as Offline but says nothing, and is not this.
    pub(crate) closed: bool,
    pub(crate) published_at: Instant,
}

/// A per-user token bucket for polls.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PollBucket {
    pub(crate) used: u32,
    pub(crate) since: Option<Instant>,
}

/// What a subscription is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubKind {
    /// `presence`: one presentity or a list.
    Presence,
    /// `vnd-microsoft-roaming-contacts`.
    RoamingContacts,
    /// `vnd-microsoft-roaming-self`.
    RoamingSelf,
    /// `presence.winfo`.
    Winfo,
}

impl SubKind {
    pub(crate) const fn package(self) -> &'static str {
        match self {
            Self::Presence => "presence",
            Self::RoamingContacts => "vnd-microsoft-roaming-contacts",
            Self::RoamingSelf => "vnd-microsoft-roaming-self",
            Self::Winfo => "presence.winfo",
        }
    }
}

/// Subscription flags.
pub(crate) mod flag {
    /// Notify with BENOTIFY.
    pub(crate) const BENOTIFY: u8 = 1;
    /// Every notification re-arms the expiry.
    pub(crate) const AUTOEXTEND: u8 = 2;
    /// A Lync batched (adhoc list) subscription; otherwise an RFC 4662 list.
    pub(crate) const LYNC_BATCH: u8 = 4;
    /// Roaming self: categories wanted.
    pub(crate) const RS_CATEGORIES: u8 = 8;
    /// Roaming self: containers wanted.
    pub(crate) const RS_CONTAINERS: u8 = 16;
    /// Roaming self: subscribers wanted.
    pub(crate) const RS_SUBSCRIBERS: u8 = 32;
}

/// A subscription.
pub(crate) struct Sub<F> {
    pub(crate) watcher: UserId,
    pub(crate) kind: SubKind,
    pub(crate) flags: u8,
    pub(crate) format: BodyFormat,
    pub(crate) target: Target,
    /// CSeq of the last request we sent in the dialog.
    pub(crate) cseq: u32,
    /// Seconds since the engine's base instant.
    pub(crate) expires_at: u32,
    /// The granted duration (re-armed by autoextend).
    pub(crate) duration: u32,
    /// Next RLMI / watcherinfo version.
    pub(crate) version: u32,
    /// `call-id \n remote-tag \n event-id \n route-set \n remote-target \n local-uri \n
    /// remote-uri \n local-tag`: one allocation for every string the dialog needs (the URIs
    /// empty unless the subscriber wrote others than the canonical ones, see
    /// [`DialogParts::local_uri`]; the local tag only for a dialog restored from the store, as
    /// this run's tags encode the slot instead).
    pub(crate) dialog: Box<str>,
    pub(crate) flow: F,
    /// Our Contact on the transport of the last SUBSCRIBE, when it is not the configured one.
    pub(crate) contact: Option<Arc<str>>,
}

impl<F> Sub<F> {
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    pub(crate) fn dialog(&self) -> DialogParts<'_> {
        DialogParts::split(&self.dialog)
    }

    /// How many presentities this subscription counts against the watcher's quota.
    pub(crate) fn resources(&self) -> u32 {
        match &self.target {
            Target::One { .. } => 1,
            Target::List(l) => u32::try_from(l.entries.len()).unwrap_or(u32::MAX),
            Target::Own => 0,
        }
    }
}

/// The pieces of a dialog identifier string.
pub(crate) struct DialogParts<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) remote_tag: &'a str,
    pub(crate) event_id: Option<&'a str>,
    pub(crate) route: Option<&'a str>,
    /// The subscriber's Contact URI, where notifications are addressed.
    pub(crate) remote_target: &'a str,
    /// The SUBSCRIBE's To URI when it is not the presentity's (or, for the subscriber's own
    /// data and lists, the subscriber's) canonical URI: a user written at one of our aliases,
    /// `sip:bob@192.0.2.1`. RFC 3261 §12.1.1 makes it the dialog's local URI, the From of
    /// every NOTIFY (§12.2.1.1). `None`: the canonical URI.
    pub(crate) local_uri: Option<&'a str>,
    /// The same for the SUBSCRIBE's From URI, the To of every NOTIFY.
    pub(crate) remote_uri: Option<&'a str>,
    /// The local tag of a restored dialog.
    pub(crate) local_tag: Option<&'a str>,
}

impl<'a> DialogParts<'a> {
    pub(crate) fn join(&self) -> Box<str> {
        [
            self.call_id,
            self.remote_tag,
            self.event_id.unwrap_or(""),
            self.route.unwrap_or(""),
            self.remote_target,
            self.local_uri.unwrap_or(""),
            self.remote_uri.unwrap_or(""),
            self.local_tag.unwrap_or(""),
        ]
        .join("\n")
        .into_boxed_str()
    }

    fn split(s: &'a str) -> Self {
        let mut it = s.split('\n');
        let call_id = it.next().unwrap_or("");
        let remote_tag = it.next().unwrap_or("");
        let event_id = it.next().filter(|e| !e.is_empty());
        let route = it.next().filter(|r| !r.is_empty());
        let remote_target = it.next().unwrap_or("");
        let local_uri = it.next().filter(|u| !u.is_empty());
        let remote_uri = it.next().filter(|u| !u.is_empty());
        let local_tag = it.next().filter(|t| !t.is_empty());
        Self {
            call_id,
            remote_tag,
            event_id,
            route,
            remote_target,
            local_uri,
            remote_uri,
            local_tag,
        }
    }
}

/// What a subscription watches.
pub(crate) enum Target {
    /// One presentity, seen at `view`.
    One {
        presentity: UserId,
        view: AccessLevel,
    },
    /// A list of presentities (Lync batch or RFC 4662).
    List(Box<ListTarget>),
    /// The subscriber's own data (roaming contacts, roaming self, watcher info).
    Own,
}

/// The resources of a list subscription.
pub(crate) struct ListTarget {
    /// The list's URI in RLMI.
    pub(crate) uri: Arc<str>,
    /// Watched presentities.
    pub(crate) entries: Vec<Entry>,
    /// Resources not watched, with why.
    pub(crate) rejected: Vec<(Box<str>, Rejection)>,
}

/// One watched presentity of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) presentity: UserId,
    pub(crate) view: AccessLevel,
}

/// Why a list resource is not watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Over the watcher's or the presentity's quota (Lync `quotaExceeded`, 413, 2012).
    Quota,
    /// Not a presentity of this server.
    NoResource,
}

/// A timer-heap entry: `(milliseconds since the engine's base instant, slot, generation)`,
/// 16 bytes. Subscription expiries use the subscription's slot; user timers (aggregation and
/// publication changes) set [`USER_TIMER`] in the slot. Stale entries are skipped when they
/// fire: a subscription's only if its `expires_at` still matches, a user's only if the slot's
/// generation does.
pub(crate) type TimerEntry = Reverse<(u64, u32, u32)>;

/// Marks a user timer in a [`TimerEntry`] slot.
pub(crate) const USER_TIMER: u32 = 1 << 31;
