//! SUBSCRIBE (RFC 6665, RFC 3856, RFC 4662, RFC 3857; Lync batched category subscriptions and
//! the roaming events of MS-SIP / MS-PRES).
//!
//! - Outside a dialog with `Expires` > 0: a persistent subscription. 200 OK (the dialog's To
//!   tag encodes the subscription's slot), then at once a NOTIFY with full state, or that state
//!   in the 200 itself when the subscriber offers `ms-piggyback-first-notify`.
//! - Outside a dialog with `Expires: 0`: a query or a poll. One NOTIFY (or piggybacked 200)
//!   with `Subscription-State: terminated;reason=timeout`; nothing is kept, nothing counts
//!   against quotas, and each user may send [`super::EngineConfig::poll_burst`] of them in a
//!   burst, then one per [`super::EngineConfig::poll_refill`] (503 with Retry-After beyond).
//! - Inside a dialog: refresh (new expiry, flow and Contact; full-state notification) or, with
//!   `Expires: 0`, unsubscribe (final NOTIFY `terminated;reason=timeout`). A dialog the engine
//!   does not know is 481.
//!
//! Which `presence` subscription it is: a body of type `application/msrtc-adrl-categorylist+xml`
//! makes a Lync batch (one dialog for many presentities, RLMI multipart notifications whose
//! parts are categories or PIDF); `Supported: eventlist` on a SUBSCRIBE to oneself without a
//! body makes an RFC 4662 list of one's contact list; anything else watches the Request-URI.
//! `vnd-microsoft-provisioning-v2` (and the OCS 2005 one-shot events) get a bare 200 with
//! `Expires: 0` and no notification: any provisioning notification makes SIPE start group chat
//! (sipe-client §3.3), and sign-in needs nothing from it.

use std::sync::Arc;
use std::time::Instant;

use herald_registrar::Aor;
use herald_sip::{HeaderName, Request, Response};

use super::Engine;
use super::api::{AuthenticatedRequest, Reply, Termination};
use super::notify::{Body, NotifyState};
use super::reply::{self, header, plain};
use super::state::{
    DialogParts, Entry, ListTarget, Rejection, Sub, SubId, SubKind, Target, UserId, flag,
};
use crate::categories::batch::{BatchActionKind, BatchSubscribe};
use crate::categories::roaming::RoamingList;
use crate::categories::{CategorySet, roaming};
use crate::containers::strip_sip;
use crate::render::BodyFormat;
use crate::{pidf, rlmi, watcherinfo};

/// Option tags the engine understands in Require / Proxy-Require.
const UNDERSTOOD: [&str; 6] = [
    "ms-benotify",
    "adhoclist",
    "categorylist",
    "eventlist",
    "ms-piggyback-first-notify",
    "com.microsoft.autoextend",
];

/// What the subscriber offered, intersected with what the engine is configured to do.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Offer {
    benotify: bool,
    piggyback: bool,
    autoextend: bool,
    eventlist: bool,
}

impl<F: Clone + Eq + std::hash::Hash + std::fmt::Debug> Engine<F> {
    pub(super) fn subscribe(&mut self, now: Instant, req: AuthenticatedRequest<F>) -> Reply {
        let r = &req.request;
        let (package, event_id) = match r.event() {
            Ok(Some(e)) => (e.package().to_ascii_lowercase(), e.id().map(str::to_owned)),
            Ok(None) => return reply::warn(r, 400, "Bad Request", "SUBSCRIBE without Event"),
            Err(_) => return reply::bad_header(r, "Event"),
        };
        let kind = match package.as_str() {
            "presence" => SubKind::Presence,
            "presence.winfo" => SubKind::Winfo,
            "vnd-microsoft-roaming-contacts" => SubKind::RoamingContacts,
            "vnd-microsoft-roaming-self" => SubKind::RoamingSelf,
            "vnd-microsoft-provisioning-v2"
            | "vnd-microsoft-provisioning"
            | "vnd-microsoft-roaming-acl"
            | "presence.wpending" => {
                return plain(Response::for_request(r, 200, "OK").header(HeaderName::Expires, "0"));
            }
            _ => return reply::bad_event(r),
        };
        let unknown: Vec<&str> = r
            .require()
            .chain(r.proxy_require())
            .filter(|t| !UNDERSTOOD.iter().any(|u| u.eq_ignore_ascii_case(t)))
            .collect();
        if !unknown.is_empty() {
            return plain(
                Response::for_request(r, 420, "Bad Extension")
                    .header(HeaderName::Unsupported, unknown.join(", ")),
            );
        }
        if r.from().tag().is_none() {
            return reply::warn(r, 400, "Bad Request", "From without a tag");
        }
        let Ok(requested) = r.expires() else {
            return reply::bad_header(r, "Expires");
        };
        let offer = self.offer(r);
        if let Some(tag) = r.to().tag() {
            let tag = tag.to_owned();
            return self.resubscribe(now, &req, kind, event_id.as_deref(), &tag, requested, offer);
        }
        let granted = match self.config.subscription_expiry.grant(requested) {
            Ok(g) => g,
            Err(min) => return reply::interval_too_brief(r, min),
        };
        let watcher = match self.ensure_user(now, &req.user) {
            Ok(u) => u,
            Err(e) => return reply::store_failed(r, &e),
        };
        if granted == 0 && !self.take_poll(now, watcher) {
            let secs = self.config.poll_refill.as_secs().max(1);
            return plain(
                Response::for_request(r, 503, "Service Unavailable")
                    .header(HeaderName::RetryAfter, secs.to_string())
                    .header(
                        header("ms-diagnostics"),
                        reply::ms_diag(reply::QUOTA_DIAG, "poll rate exceeded"),
                    ),
            );
        }
        let prepared = match kind {
            SubKind::Presence => self.prepare_presence(now, &req, watcher, granted, offer),
            _ => self.prepare_own(&req, kind, watcher),
        };
        let (target, format, mut flags) = match prepared {
            Ok(p) => p,
            Err(reply) => return *reply,
        };
        if offer.benotify {
            flags |= flag::BENOTIFY;
        }
        if offer.autoextend {
            flags |= flag::AUTOEXTEND;
        }
        let now_secs = self.secs(now);
        let remote_target = contact_of(r);
        let route = route_set(r);
        let canonical_local = match &target {
            Target::One { presentity, .. } => self.user(*presentity).uri.clone(),
            _ => self.user(watcher).uri.clone(),
        };
        let local_uri = addressed_uri(r.to().uri(), &canonical_local);
        let remote_uri = addressed_uri(r.from().uri(), &self.user(watcher).uri);
        let sub = Sub {
            watcher,
            kind,
            flags,
            format,
            target,
            cseq: 0,
            expires_at: now_secs.saturating_add(granted),
            duration: granted,
            version: 0,
            dialog: DialogParts {
                call_id: r.call_id(),
                remote_tag: r.from().tag().unwrap_or_default(),
                event_id: event_id.as_deref(),
                route: route.as_deref(),
                remote_target: &remote_target,
                local_uri: local_uri.as_deref(),
                remote_uri: remote_uri.as_deref(),
                local_tag: None,
            }
            .join(),
            flow: req.flow.clone(),
            contact: req.contact.clone(),
        };
        let sid = self.insert_sub(sub);
        if granted == 0 {
            // A query: one notification, then the slot is freed without touching any index.
            let body = self.full_body(now, sid);
            let reply = self.subscribed_reply(now, r, sid, 0, offer, body.clone());
            if !offer.piggyback {
                self.notify(
                    now,
                    sid,
                    NotifyState::Terminated(Termination::Timeout),
                    body,
                );
            }
            self.free_query(sid);
            return reply;
        }
        self.attach(now, sid);
        let body = self.full_body(now, sid);
        let reply = self.subscribed_reply(now, r, sid, granted, offer, body.clone());
        if !offer.piggyback {
            self.notify(now, sid, NotifyState::Active, body);
        }
        self.persist_sub(now, sid);
        reply
    }

    /// What the subscriber offers and the engine agrees to.
    fn offer(&self, r: &Request) -> Offer {
        let has = |tag: &str| {
            r.supported().any(|t| t.eq_ignore_ascii_case(tag))
                || r.require().any(|t| t.eq_ignore_ascii_case(tag))
        };
        Offer {
            benotify: self.config.benotify && has("ms-benotify"),
            piggyback: self.config.piggyback && has("ms-piggyback-first-notify"),
            autoextend: self.config.autoextend && has("com.microsoft.autoextend"),
            eventlist: has("eventlist"),
        }
    }

    /// Target, format and flags of a `presence` subscription.
    fn prepare_presence(
        &mut self,
        now: Instant,
        req: &AuthenticatedRequest<F>,
        watcher: UserId,
        granted: u32,
        offer: Offer,
    ) -> Result<(Target, BodyFormat, u8), Box<Reply>> {
        let r = &req.request;
        let accept = Accept::of(r);
        let batch_body = match r.content_type() {
            Ok(Some(ct)) if !r.body().is_empty() => {
                if ct.is("application", "msrtc-adrl-categorylist+xml") {
                    Some(
                        BatchSubscribe::parse(r.body(), &self.config.limits).map_err(|e| {
                            reply::body_error(r, &e, crate::categories::batch::CONTENT_TYPE)
                        })?,
                    )
                } else {
                    return Err(reply::unsupported_media(
                        r,
                        crate::categories::batch::CONTENT_TYPE,
                    )
                    .into());
                }
            }
            Ok(_) => None,
            Err(_) => return Err(reply::bad_header(r, "Content-Type").into()),
        };
        let persistent = granted > 0;
        if let Some(batch) = batch_body {
            let format = accept
                .list_part_format(true, category_set(&batch))
                .ok_or_else(|| not_acceptable(r, true))?;
            let uris: Vec<String> = batch
                .actions
                .iter()
                .filter(|a| a.kind == BatchActionKind::Subscribe)
                .flat_map(|a| a.resources.iter().map(|res| res.uri.clone()))
                .collect();
            let list_uri: Arc<str> = Arc::from(format!("sip:{}", req.user.as_str()));
            let list = self.build_list(now, watcher, list_uri, &uris, persistent);
            return Ok((Target::List(Box::new(list)), format, flag::LYNC_BATCH));
        }
        let target = self.request_target(r)?;
        if target == req.user && offer.eventlist {
            let format = accept
                .list_part_format(false, CategorySet::lync_default())
                .ok_or_else(|| not_acceptable(r, true))?;
            let uris: Vec<String> = self
                .contacts_of(watcher)
                .map_err(|e| reply::store_failed(r, &e))?
                .contacts
                .iter()
                .filter(|c| c.subscribed)
                .map(|c| c.uri.clone())
                .collect();
            let list_uri: Arc<str> = self.user(watcher).uri.clone();
            let list = self.build_list(now, watcher, list_uri, &uris, persistent);
            return Ok((Target::List(Box::new(list)), format, 0));
        }
        let format = accept
            .single_format()
            .ok_or_else(|| not_acceptable(r, false))?;
        // RFC 3856 §6.5 / RFC 6665 §4.2.1.2: no such presentity in our own domain.
        if !self
            .presentity_exists(&target)
            .map_err(|e| reply::store_failed(r, &e))?
        {
            return Err(reply::simple(r, 404, "Not Found").into());
        }
        let presentity = self
            .ensure_user(now, &target)
            .map_err(|e| reply::store_failed(r, &e))?;
        if persistent {
            if self.user(watcher).watched >= self.config.max_subscriptions_per_user {
                return Err(reply::quota_exceeded(r, "subscription limit of the watcher").into());
            }
            if self.user(presentity).watchers.len()
                >= self.config.max_watchers_per_presentity as usize
            {
                return Err(reply::quota_exceeded(r, "maximum followers reached").into());
            }
        }
        let view = self.view_for(presentity, watcher);
        Ok((Target::One { presentity, view }, format, 0))
    }

    /// The entries of a list subscription: local presentities within quota are watched, the
    /// rest are reported per resource (Lync's `quotaExceeded` shape, or `noresource`).
    pub(super) fn build_list(
        &mut self,
        now: Instant,
        watcher: UserId,
        uri: Arc<str>,
        uris: &[String],
        persistent: bool,
    ) -> ListTarget {
        let mut list = ListTarget {
            uri,
            entries: Vec::new(),
            rejected: Vec::new(),
        };
        let mut budget = self
            .config
            .max_subscriptions_per_user
            .saturating_sub(self.user(watcher).watched);
        for raw in uris.iter().take(self.config.limits.max_parts) {
            let known = |e: &mut Self, a: &Aor| e.presentity_exists(a).unwrap_or(false);
            let aor = self.local_aor(&strip_sip(raw).to_ascii_lowercase());
            let Some(aor) = aor.filter(|a| known(self, a)) else {
                if !list.rejected.iter().any(|(u, _)| **u == **raw) {
                    list.rejected
                        .push((raw.as_str().into(), Rejection::NoResource));
                }
                continue;
            };
            let Ok(p) = self.ensure_user(now, &aor) else {
                list.rejected
                    .push((raw.as_str().into(), Rejection::NoResource));
                continue;
            };
            if list.entries.iter().any(|e| e.presentity == p) {
                continue;
            }
            let full =
                self.user(p).watchers.len() >= self.config.max_watchers_per_presentity as usize;
            if persistent && (budget == 0 || full) {
                let uri: Box<str> = self.user(p).uri.as_ref().into();
                list.rejected.push((uri, Rejection::Quota));
                continue;
            }
            budget = budget.saturating_sub(1);
            let view = self.view_for(p, watcher);
            list.entries.push(Entry {
                presentity: p,
                view,
            });
        }
        list
    }

    /// Whether `aor` (in a served domain) is someone whose presence can be watched: a user the
    /// engine holds already, or one the store knows.
    fn presentity_exists(&mut self, aor: &Aor) -> Result<bool, super::StoreError> {
        if self.by_aor.contains_key(aor) {
            return Ok(true);
        }
        self.store.user_exists(aor)
    }

    /// Target, format and flags of a subscription to one's own data.
    fn prepare_own(
        &mut self,
        req: &AuthenticatedRequest<F>,
        kind: SubKind,
        _watcher: UserId,
    ) -> Result<(Target, BodyFormat, u8), Box<Reply>> {
        let r = &req.request;
        let target = self.request_target(r)?;
        if target != req.user {
            return Err(
                reply::warn(r, 403, "Forbidden", "this event is only for one's own data").into(),
            );
        }
        let accept = Accept::of(r);
        let flags = match kind {
            SubKind::Winfo => {
                if !accept.allows(watcherinfo::CONTENT_TYPE) {
                    return Err(plain(
                        Response::for_request(r, 406, "Not Acceptable")
                            .header(HeaderName::Accept, watcherinfo::CONTENT_TYPE),
                    )
                    .into());
                }
                0
            }
            SubKind::RoamingSelf => {
                let list = if r.body().is_empty() {
                    RoamingList {
                        categories: true,
                        containers: true,
                        subscribers: true,
                    }
                } else {
                    RoamingList::parse(r.body(), &self.config.limits)
                        .map_err(|e| reply::body_error(r, &e, roaming::SELF_CONTENT_TYPE))?
                };
                (if list.categories {
                    flag::RS_CATEGORIES
                } else {
                    0
                }) | (if list.containers {
                    flag::RS_CONTAINERS
                } else {
                    0
                }) | (if list.subscribers {
                    flag::RS_SUBSCRIBERS
                } else {
                    0
                })
            }
            _ => 0,
        };
        Ok((Target::Own, BodyFormat::Pidf, flags))
    }

    /// An in-dialog SUBSCRIBE: refresh or unsubscribe.
    #[allow(clippy::too_many_arguments)]
    fn resubscribe(
        &mut self,
        now: Instant,
        req: &AuthenticatedRequest<F>,
        kind: SubKind,
        event_id: Option<&str>,
        tag: &str,
        requested: Option<u32>,
        offer: Offer,
    ) -> Reply {
        let r = &req.request;
        let Some(sid) = self
            .find_by_tag(tag)
            .filter(|&sid| self.dialog_matches(sid, req, kind, event_id))
        else {
            return reply::simple(r, 481, "Subscription Does Not Exist");
        };
        if requested == Some(0) {
            let reply = plain(Response::for_request(r, 200, "OK").header(HeaderName::Expires, "0"));
            self.end_sub(now, sid, Some(Termination::Timeout));
            return reply;
        }
        let granted = match self.config.subscription_expiry.grant(requested) {
            Ok(g) => g,
            Err(min) => return reply::interval_too_brief(r, min),
        };
        let now_secs = self.secs(now);
        let contact = contact_of(r);
        // A Lync batch refresh carries the whole list again: re-resolve it.
        let new_list = if kind == SubKind::Presence
            && !r.body().is_empty()
            && self.sub(sid).is_some_and(|s| s.has(flag::LYNC_BATCH))
        {
            match BatchSubscribe::parse(r.body(), &self.config.limits) {
                Ok(batch) => Some(batch),
                Err(e) => return reply::body_error(r, &e, crate::categories::batch::CONTENT_TYPE),
            }
        } else {
            None
        };
        if let Some(batch) = new_list {
            let watcher = self.sub(sid).map_or(0, |s| s.watcher);
            let uris: Vec<String> = batch
                .actions
                .iter()
                .filter(|a| a.kind == BatchActionKind::Subscribe)
                .flat_map(|a| a.resources.iter().map(|res| res.uri.clone()))
                .collect();
            self.detach_list(now, sid);
            let list_uri: Arc<str> = self.user(watcher).uri.clone();
            let list = self.build_list(now, watcher, list_uri, &uris, true);
            if let Some(s) = self.sub_mut(sid) {
                s.target = Target::List(Box::new(list));
            }
            self.attach_list(now, sid, true);
        }
        if let Some(s) = self.sub_mut(sid) {
            s.expires_at = now_secs.saturating_add(granted);
            s.duration = granted;
            s.flow = req.flow.clone();
            s.contact.clone_from(&req.contact);
            let d = s.dialog();
            if d.remote_target != contact {
                s.dialog = DialogParts {
                    remote_target: &contact,
                    ..d
                }
                .join();
            }
        }
        self.schedule_sub_expiry(sid);
        let body = self.full_body(now, sid);
        let reply = self.refreshed_reply(r, sid, granted, offer, body.clone());
        if !offer.piggyback {
            self.notify(now, sid, NotifyState::Active, body);
        }
        self.persist_sub(now, sid);
        reply
    }

    /// Whether `sid` is the subscription `req` refers to: same Call-ID, same remote tag, same
    /// event package and id, same (authenticated) subscriber.
    fn dialog_matches(
        &self,
        sid: SubId,
        req: &AuthenticatedRequest<F>,
        kind: SubKind,
        event_id: Option<&str>,
    ) -> bool {
        let Some(s) = self.sub(sid) else { return false };
        let d = s.dialog();
        s.kind == kind
            && d.call_id == req.request.call_id()
            && Some(d.remote_tag) == req.request.from().tag()
            && d.event_id == event_id
            && self.user(s.watcher).aor == req.user
    }

    /// Puts a new subscription into the indexes and arms its expiry.
    pub(super) fn attach(&mut self, now: Instant, sid: SubId) {
        let Some(s) = self.sub(sid) else { return };
        let watcher = s.watcher;
        let resources = s.resources();
        let one = match &s.target {
            Target::One { presentity, .. } => Some(*presentity),
            _ => None,
        };
        let w = self.user_mut(watcher);
        w.own.push(sid.index);
        w.watched = w.watched.saturating_add(resources);
        if let Some(p) = one {
            self.user_mut(p).watchers.push(sid.index);
            self.watchers_changed(now, p, Some(watcher));
        }
        self.attach_list(now, sid, false);
        self.schedule_sub_expiry(sid);
    }

    /// Adds a list subscription to its presentities' watchers (and, for a refreshed list, its
    /// entries to the watcher's quota).
    fn attach_list(&mut self, now: Instant, sid: SubId, count: bool) {
        let entries: Vec<UserId> = match self.sub(sid).map(|s| &s.target) {
            Some(Target::List(l)) => l.entries.iter().map(|e| e.presentity).collect(),
            _ => return,
        };
        if count && let Some(w) = self.sub(sid).map(|s| s.watcher) {
            let u = self.user_mut(w);
            u.watched = u
                .watched
                .saturating_add(u32::try_from(entries.len()).unwrap_or(u32::MAX));
        }
        let watcher = self.sub(sid).map(|s| s.watcher);
        for p in entries {
            self.user_mut(p).watchers.push(sid.index);
            self.watchers_changed(now, p, watcher);
        }
    }

    fn detach_list(&mut self, now: Instant, sid: SubId) {
        let (watcher, entries): (UserId, Vec<UserId>) = match self.sub(sid) {
            Some(s) => match &s.target {
                Target::List(l) => (s.watcher, l.entries.iter().map(|e| e.presentity).collect()),
                _ => return,
            },
            None => return,
        };
        let n = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let w = self.user_mut(watcher);
        w.watched = w.watched.saturating_sub(n);
        for p in entries {
            let u = self.user_mut(p);
            if let Some(pos) = u.watchers.iter().position(|&i| i == sid.index) {
                u.watchers.swap_remove(pos);
            }
            self.release.push(p);
            self.watchers_changed(now, p, None);
        }
    }

    /// Frees a query's slot (it was never put into any index).
    fn free_query(&mut self, sid: SubId) {
        if let Some(sub) = self.subs[sid.index as usize].take() {
            self.sub_gens[sid.index as usize] = sid.generation.wrapping_add(1);
            self.free_subs.push(sid.index);
            self.live_subs -= 1;
            if let Target::List(l) = &sub.target {
                for e in &l.entries {
                    self.release.push(e.presentity);
                }
            }
            if let Target::One { presentity, .. } = sub.target {
                self.release.push(presentity);
            }
        }
    }

    /// The 200 to a new subscription or query.
    fn subscribed_reply(
        &mut self,
        _now: Instant,
        r: &Request,
        sid: SubId,
        granted: u32,
        offer: Offer,
        body: Option<Body>,
    ) -> Reply {
        let tag = self.local_tag(sid);
        let accepted = self.config.legacy_202 && granted > 0 && !offer.piggyback;
        let status = if accepted {
            (202, "Accepted")
        } else {
            (200, "OK")
        };
        let response = self
            .ok_headers(r, status, sid, granted, offer, body)
            .to_tag(&tag);
        Reply {
            response,
            dialog_tag: Some(tag),
        }
    }

    fn refreshed_reply(
        &mut self,
        r: &Request,
        sid: SubId,
        granted: u32,
        offer: Offer,
        body: Option<Body>,
    ) -> Reply {
        plain(self.ok_headers(r, (200, "OK"), sid, granted, offer, body))
    }

    /// Expires, Contact, Event, the negotiated extensions and, when piggybacking, the first
    /// notification's body with `ms-piggyback-cseq` (MS-SIP §3.4).
    fn ok_headers(
        &mut self,
        r: &Request,
        (code, reason): (u16, &str),
        sid: SubId,
        granted: u32,
        offer: Offer,
        body: Option<Body>,
    ) -> herald_sip::ResponseBuilder {
        let (package, event_id, list, flags, contact) = match self.sub(sid) {
            Some(s) => (
                s.kind.package(),
                s.dialog().event_id.map(str::to_owned),
                matches!(s.target, Target::List(_)),
                s.flags,
                s.contact.clone(),
            ),
            None => ("presence", None, false, 0, None),
        };
        let event = match event_id {
            Some(id) => format!("{package};id={id}"),
            None => package.to_owned(),
        };
        let mut resp = Response::for_request(r, code, reason)
            .header(HeaderName::Expires, granted.to_string())
            .header(
                HeaderName::Contact,
                contact.as_deref().unwrap_or(&self.config.contact),
            )
            .header(HeaderName::Event, event);
        if flags & flag::BENOTIFY != 0 {
            resp = resp.header(HeaderName::Supported, "ms-benotify");
        }
        if flags & flag::AUTOEXTEND != 0 {
            resp = resp.header(HeaderName::Supported, "com.microsoft.autoextend");
        }
        if list {
            resp = resp.header(HeaderName::Require, "eventlist");
        }
        if offer.piggyback
            && let Some((ct, bytes)) = body
        {
            let cseq = self.sub_mut(sid).map_or(1, |s| {
                s.cseq = s.cseq.wrapping_add(1);
                s.cseq
            });
            let state = if granted == 0 {
                "terminated;reason=timeout".to_owned()
            } else {
                format!("active;expires={granted}")
            };
            resp = resp
                .header(HeaderName::Supported, "ms-piggyback-first-notify")
                .header(header("ms-piggyback-cseq"), cseq.to_string())
                .header(HeaderName::SubscriptionState, state)
                .body(&ct, bytes);
        }
        resp
    }

    /// Takes one poll from `uid`'s bucket; `false` when it is empty.
    fn take_poll(&mut self, now: Instant, uid: UserId) -> bool {
        let refill = self.config.poll_refill;
        let burst = self.config.poll_burst;
        let b = &mut self.user_mut(uid).poll;
        match b.since {
            None => b.since = Some(now),
            Some(since) => {
                let elapsed = now.saturating_duration_since(since);
                let tokens = u32::try_from(elapsed.as_nanos() / refill.as_nanos().max(1))
                    .unwrap_or(u32::MAX);
                b.used = b.used.saturating_sub(tokens);
                b.since = Some(if b.used == 0 {
                    now
                } else {
                    since + refill * tokens
                });
            }
        }
        if b.used >= burst {
            return false;
        }
        b.used += 1;
        true
    }
}

/// `uri` as written, when it names another address than `canonical` (`sip:user@domain`):
/// a user written at one of our aliases keeps the form the subscriber gave it in the dialog.
fn addressed_uri(uri: &herald_sip::Uri, canonical: &str) -> Option<String> {
    let same = uri.aor().is_some_and(|a| {
        canonical
            .strip_prefix("sip:")
            .unwrap_or(canonical)
            .eq_ignore_ascii_case(&a)
    });
    (!same).then(|| String::from_utf8_lossy(uri.as_bytes()).into_owned())
}

/// The subscriber's Contact URI (the dialog's remote target); the From URI when it sent none.
fn contact_of(r: &Request) -> String {
    r.contacts()
        .ok()
        .and_then(|c| {
            c.contacts()
                .first()
                .map(|c| String::from_utf8_lossy(c.uri().as_bytes()).into_owned())
        })
        .unwrap_or_else(|| String::from_utf8_lossy(r.from().uri().as_bytes()).into_owned())
}

/// The route set a UAS keeps: the Record-Route values in order (RFC 3261 §12.1.1).
fn route_set(r: &Request) -> Option<String> {
    let values: Vec<String> = r
        .headers_named(HeaderName::RecordRoute)
        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn category_set(batch: &BatchSubscribe) -> CategorySet {
    let set: CategorySet = batch
        .actions
        .iter()
        .flat_map(|a| a.categories.iter().cloned())
        .collect();
    if set == CategorySet::EMPTY {
        CategorySet::lync_default()
    } else {
        set
    }
}

fn not_acceptable(r: &Request, list: bool) -> Reply {
    let accept = if list {
        "multipart/related, application/rlmi+xml, application/msrtc-event-categories+xml, application/pidf+xml"
    } else {
        "application/pidf+xml, application/msrtc-event-categories+xml"
    };
    plain(Response::for_request(r, 406, "Not Acceptable").header(HeaderName::Accept, accept))
}

/// The media types of the Accept header(s), lower case, in order; `None` when absent.
struct Accept(Option<Vec<String>>);

impl Accept {
    fn of(r: &Request) -> Self {
        let mut any = false;
        let mut types = Vec::new();
        for v in r.headers_named(HeaderName::Accept) {
            any = true;
            for item in String::from_utf8_lossy(v).split(',') {
                let media = item
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if !media.is_empty() {
                    types.push(media);
                }
            }
        }
        Self(any.then_some(types))
    }

    fn allows(&self, media: &str) -> bool {
        match &self.0 {
            None => true,
            Some(t) => t
                .iter()
                .any(|m| m == media || m == "*/*" || m == "application/*"),
        }
    }

    fn position(&self, media: &str) -> Option<usize> {
        self.0.as_ref()?.iter().position(|m| m == media)
    }

    /// RFC 3856 §6.7: PIDF unless the subscriber prefers Lync categories.
    fn single_format(&self) -> Option<BodyFormat> {
        let Some(types) = &self.0 else {
            return Some(BodyFormat::Pidf);
        };
        for m in types {
            match m.as_str() {
                pidf::CONTENT_TYPE | "*/*" | "application/*" => return Some(BodyFormat::Pidf),
                crate::categories::CONTENT_TYPE => {
                    return Some(BodyFormat::Categories(CategorySet::lync_default()));
                }
                _ => {}
            }
        }
        None
    }

    /// The part format of a list notification: categories for a Lync batch unless only PIDF
    /// is acceptable; for an RFC 4662 list whichever of the two comes first. The multipart
    /// container itself must be acceptable when an Accept is given.
    fn list_part_format(&self, lync: bool, set: CategorySet) -> Option<BodyFormat> {
        if self.0.is_some()
            && !(self.allows("multipart/related") && self.allows(rlmi::CONTENT_TYPE))
        {
            return None;
        }
        let cats = self.position(crate::categories::CONTENT_TYPE);
        let pidf = self.position(pidf::CONTENT_TYPE);
        let categories = BodyFormat::Categories(set);
        Some(match (cats, pidf) {
            (Some(c), Some(p)) if lync || c < p => categories,
            (Some(_), None) => categories,
            (None, Some(_)) => BodyFormat::Pidf,
            _ if lync => categories,
            _ => BodyFormat::Pidf,
        })
    }
}
