//! The presence engine: publications, subscriptions, notifications, contact lists and privacy
//! for one Front End, as a sans-IO core (DESIGN §1): requests, registrar events, NOTIFY
//! outcomes and time go in; responses, NOTIFY/BENOTIFY requests and the next deadline come
//! out. It reads no clock, owns no socket and never blocks except in its [`PresenceStore`].
//!
//! # Contract with the pipeline
//!
//! ```text
//!  pipeline (herald-frontend)                          Engine<F>
//!  ─────────────────────────                           ─────────
//!  PUBLISH / SUBSCRIBE / SERVICE, authenticated  ──▶  handle_request(now, AuthenticatedRequest)
//!       send Reply.response in the server txn   ◀──  Reply { response, dialog_tag }
//!  registrar events                              ──▶  on_registrar_event(now, Event<F>)
//!  loop: poll_outbound()                         ◀──  Outbound { flow, kind, request }
//!       NOTIFY: client txn, Via added by you      ──▶  on_notify_response(now, id, status)
//!                                                 ──▶  on_notify_timeout(now, id)
//!       BENOTIFY: send once, no txn
//!  sleep until poll_timeout(), then              ──▶  handle_timeout(now)
//! ```
//!
//! - **Construct** with [`Engine::new`]`(config, Box<dyn PresenceStore>, now, wall)`. `F` is
//!   the runtime's flow handle (`Clone + Eq + Hash + Debug`), the same type the registrar uses.
//! - **Requests**: after parsing, RFC 3261 §8.2 validation and authentication, hand every
//!   PUBLISH, SUBSCRIBE and SERVICE to [`Engine::handle_request`] with the authenticated AOR
//!   ([`herald_registrar::Aor`]), the flow it came on and, if known, the endpoint
//!   ([`EndpointKey::from_request`] reads the Lync `epid` / `+sip.instance` / Contact). The
//!   engine authorises by that AOR (a user publishes only its own state, subscribes to its own
//!   roaming data only, SERVICE acts only on itself). Answer NOTIFY/BENOTIFY *to* the server
//!   with 405 yourself: the engine has none.
//! - **Responses**: [`Reply::response`] is a [`herald_sip::ResponseBuilder`] with every header
//!   the engine decided on; add `Server` and, unless [`Reply::dialog_tag`] is `Some`, a To tag
//!   of your own. When it is `Some` (a 2xx that created a subscription dialog) the To tag is
//!   already set and is the tag the engine's notifications carry in From: **do not replace
//!   it**. Send the reply before draining [`Engine::poll_outbound`] so the 200 precedes the
//!   first NOTIFY on the wire.
//! - **Persistence** happens inside the call: the engine calls the store synchronously before
//!   it changes its own state, and returns 500 (nothing changed) if the store fails. When
//!   `handle_request` returns a 200, the data is durable (issue 3 point 7). Static
//!   publications (manual status, note), containers and contact lists are persisted;
//!   endpoint, user and time publications are soft state.
//! - **Subscription dialogs** are persisted by the runtime, not inside the call: drain
//!   [`Engine::poll_subscription_change`] after each call and make those changes durable
//!   before sending that call's reply and outbound requests (group commit; see the `persist`
//!   module). At start, after the registrations, feed each stored dialog to
//!   [`Engine::restore_subscription`].
//! - **Outbound requests**: an [`Outbound`] names the subscription's flow (the flow of its last
//!   SUBSCRIBE; registrar refreshes move it to the endpoint's new flow), whether it is a NOTIFY
//!   ([`OutboundKind::Notify`] with a [`NotifyId`]) or a BENOTIFY, and the request bytes
//!   without Via: add yours with [`OutboundRequest::with_via`] (sent-by and a fresh branch),
//!   start a client transaction for a NOTIFY and report its final response with
//!   [`Engine::on_notify_response`], or its timeout / transport error with
//!   [`Engine::on_notify_timeout`]. A BENOTIFY is sent once and never answered. The
//!   Request-URI is the subscriber's Contact; over TCP/TLS send on the flow, over UDP you may
//!   resolve the Contact. Unreported NOTIFYs are forgotten (and treated as timed out) after
//!   [`EngineConfig::notify_timeout`].
//! - **Registrar events**: feed every [`herald_registrar::Event`] to
//!   [`Engine::on_registrar_event`]. An endpoint registering makes its user signed in
//!   (Available until it publishes); a refresh moves the user's subscriptions from the old
//!   flow to the new; an endpoint going removes its `endpoint` publications and ends, silently,
//!   the subscriptions held on its flow; the last one going (`AorOffline`) makes the user
//!   Offline, drops its endpoint/user/PIDF publications and ends all its subscriptions.
//! - **Time**: call [`Engine::handle_timeout`] at [`Engine::poll_timeout`] (one heap inside the
//!   core: subscription expiries, publication expiries, idle → away, NOTIFY bookkeeping).
//!
//! # What it serves
//!
//! - RFC 3903 PUBLISH of PIDF/RPID (`SIP-ETag`, `SIP-If-Match`, refresh, modify, remove; 412,
//!   489, 415, 400, 423) and Lync category publication by SERVICE (`state`, `note`,
//!   `contactCard`, `calendarData`, `device`, `userProperties`, any category; versions with
//!   409 `Client.BadCall.WrongDelta`; `expireType` endpoint / static / user / time).
//! - Aggregation across endpoints and publications ([`crate::aggregate`]; see the `derive`
//!   module for what counts as an input), into `aggregateState` per container.
//! - SUBSCRIBE `presence` (one presentity, a Lync batch with RLMI multipart notifications, an
//!   RFC 4662 list of one's contacts), `presence.winfo`, `vnd-microsoft-roaming-contacts`,
//!   `vnd-microsoft-roaming-self`, `vnd-microsoft-provisioning-v2`; persistent, query and poll;
//!   NOTIFY or BENOTIFY, piggybacked first notification, autoextend (see `subscribe`).
//! - Privacy by containers: each watcher's view is resolved once per subscription and again
//!   when the presentity changes its containers; Blocked sees Offline.
//! - Contact lists and groups through the roaming-contacts SOAP methods and
//!   [`Engine::add_contact`] / [`Engine::remove_contact`] / [`Engine::contact_list`].
//! - Limits answered as Lync does: 413 with `ms-diagnostics: 2012;reason="quotaExceeded..."`,
//!   and in list notifications per resource (`state="terminated" reason="quotaExceeded"
//!   statusCode="413" msDiagCode="2012"`).
//!
//! # Performance
//!
//! A presentity change renders each (view, format) once into a shared [`bytes::Bytes`];
//! watchers whose view did not change are skipped by comparing with the previous render.
//! Presentity → watchers and watcher → subscriptions are `u32` index lists, a dialog is found
//! from its To tag (which encodes the subscription slot), expiries live in one 16-byte-entry
//! heap, and a subscription costs one slab slot plus one string holding its dialog
//! identifiers. `benches/engine.rs` measured (shared 2-core machine, release): about 1.5 µs
//! per NOTIFY or BENOTIFY when one change fans out to 1000 watchers (3 µs for 20, where the
//! publication's own parsing dominates), about 3 µs per RLMI-wrapped notification of a batched
//! subscription; 233 heap bytes per held single subscription and 19 bytes per presentity of a
//! 50-contact batched subscription.

mod api;
mod config;
mod contacts;
mod derive;
mod notify;
mod persist;
mod publish;
mod registrar;
mod reply;
mod service;
pub(crate) mod state;
mod store;
mod subscribe;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use herald_registrar::Aor;
use herald_sip::Method;

pub use api::{
    AuthenticatedRequest, EndpointKey, NotifyId, Outbound, OutboundKind, OutboundRequest,
    PresenceReport, PublicationReport, Reply, Termination, WatcherReport,
};
pub use config::{ConfigError, EngineConfig, ExpiryBounds, MAX_CONTACTS_CEILING};
pub use contacts::ContactError;
pub use herald_registrar::Event as RegistrarEvent;
pub use persist::{CSEQ_RESERVATION, RestoreError, StoredSubscription, SubscriptionChange};
pub use store::{
    Identity, MemoryStore, PresenceStore, PublicationKey, StaticChange, StoreError,
    StoredPublication,
};

use crate::Timestamp;
use crate::categories::Categories;
use crate::categories::roaming::ContactList;
use crate::containers::{AccessLevel, Container, Relation, Watcher, access_level};
use state::{Published, Sub, SubId, TimerEntry, USER_TIMER, User, UserId};

/// The presence engine: a sans-IO core (DESIGN §1). See the module documentation for the
/// contract with the pipeline.
pub struct Engine<F> {
    config: EngineConfig,
    store: Box<dyn PresenceStore>,
    base: Instant,
    wall_base: Timestamp,
    users: Vec<Option<User<F>>>,
    user_gens: Vec<u32>,
    free_users: Vec<u32>,
    by_aor: HashMap<Aor, UserId>,
    release: Vec<UserId>,
    subs: Vec<Option<Sub<F>>>,
    sub_gens: Vec<u32>,
    free_subs: Vec<u32>,
    live_subs: usize,
    timers: BinaryHeap<TimerEntry>,
    pending: HashMap<NotifyId, SubId>,
    pending_queue: VecDeque<(Instant, NotifyId)>,
    outbound: VecDeque<Outbound<F>>,
    /// Changes to the stored subscription dialogs, for the runtime to write (`persist`).
    changes: VecDeque<SubscriptionChange<F>>,
    /// Restored dialogs by their local tag, which does not encode their slot.
    restored_tags: HashMap<Box<str>, SubId>,
    counter: u64,
}

impl<F: Clone + Eq + Hash + Debug> Engine<F> {
    /// An engine with no state. `now` and `wall` are the same moment read from the runtime's
    /// monotonic and wall clocks: the engine measures intervals with `Instant`s and stamps
    /// documents (`publishTime`, `lastActive`, PIDF timestamps) with `wall + (now' - now)`.
    ///
    /// # Errors
    /// The configuration is inconsistent ([`EngineConfig::validate`]).
    pub fn new(
        config: EngineConfig,
        store: Box<dyn PresenceStore>,
        now: Instant,
        wall: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            store,
            base: now,
            wall_base: wall,
            users: Vec::new(),
            user_gens: Vec::new(),
            free_users: Vec::new(),
            by_aor: HashMap::new(),
            release: Vec::new(),
            subs: Vec::new(),
            sub_gens: Vec::new(),
            free_subs: Vec::new(),
            live_subs: 0,
            timers: BinaryHeap::new(),
            pending: HashMap::new(),
            pending_queue: VecDeque::new(),
            outbound: VecDeque::new(),
            changes: VecDeque::new(),
            restored_tags: HashMap::new(),
            counter: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Re-anchors the wall clock (after the runtime noticed a clock step).
    pub fn set_wall_clock(&mut self, now: Instant, wall: Timestamp) {
        let offset =
            i64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(i64::MAX);
        self.wall_base = Timestamp::from_unix_millis(wall.unix_millis().saturating_sub(offset));
    }

    /// Decides on a PUBLISH, SUBSCRIBE or SERVICE and returns the response. Any store write
    /// the request needs has happened when this returns. Send the reply first, then drain
    /// [`Engine::poll_outbound`]: a subscription's first NOTIFY is queued here.
    pub fn handle_request(&mut self, now: Instant, request: AuthenticatedRequest<F>) -> Reply {
        let reply = match request.request.method() {
            Method::Publish => self.publish(now, request),
            Method::Subscribe => self.subscribe(now, request),
            Method::Service => self.service(now, request),
            _ => reply::method_not_allowed(&request.request),
        };
        self.release_idle();
        reply
    }

    /// Takes a registrar event: endpoints coming (the user is signed in), refreshing (their
    /// flow may have changed) and going (their `endpoint` publications and the subscriptions
    /// on their flow end; the last one going makes the user Offline and ends all its
    /// subscriptions).
    pub fn on_registrar_event(&mut self, now: Instant, event: RegistrarEvent<F>) {
        self.registrar_event(now, event);
        self.release_idle();
    }

    /// The final response to a NOTIFY. 2xx keeps the subscription; 481 and other failures
    /// that mean the subscriber is gone end it without a further NOTIFY (RFC 6665 §4.2.2).
    pub fn on_notify_response(&mut self, now: Instant, id: NotifyId, status: u16) {
        let Some(sid) = self.pending.remove(&id) else {
            return;
        };
        self.trim_pending_queue();
        if (200..300).contains(&status) || matches!(status, 100..=199 | 401 | 407 | 491 | 503) {
            return;
        }
        self.end_sub(now, sid, None);
        self.release_idle();
    }

    /// A NOTIFY's client transaction timed out or its transport failed: the subscription ends
    /// (RFC 6665 §4.2.2).
    pub fn on_notify_timeout(&mut self, now: Instant, id: NotifyId) {
        if let Some(sid) = self.pending.remove(&id) {
            self.trim_pending_queue();
            self.end_sub(now, sid, None);
            self.release_idle();
        }
    }

    /// Runs what is due at `now`: expiring subscriptions (final NOTIFY with
    /// `reason=timeout`), expiring publications, idle → away transitions.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now_ms = self.ms_floor(now);
        while let Some(Reverse((at, slot, generation))) = self.timers.peek().copied() {
            if at > now_ms {
                break;
            }
            self.timers.pop();
            if slot & USER_TIMER == 0 {
                let sid = SubId {
                    index: slot,
                    generation,
                };
                if self
                    .sub(sid)
                    .is_some_and(|s| u64::from(s.expires_at) * 1000 == at)
                {
                    self.end_sub(now, sid, Some(Termination::Timeout));
                }
            } else {
                let index = slot & !USER_TIMER;
                if self.user_gens.get(index as usize) == Some(&generation)
                    && self.users.get(index as usize).is_some_and(Option::is_some)
                {
                    let u = self.user_mut(index);
                    if u.scheduled == Some(at) {
                        u.scheduled = None;
                    }
                    self.refresh_user(now, index);
                }
            }
        }
        while let Some(&(at, id)) = self.pending_queue.front() {
            if at > now {
                break;
            }
            self.pending_queue.pop_front();
            if let Some(sid) = self.pending.remove(&id) {
                self.end_sub(now, sid, None);
            }
        }
        self.compact_timers();
        self.release_idle();
    }

    /// Drops answered NOTIFYs from the front of the timeout queue (answers mostly come in
    /// order, so the queue stays as long as the NOTIFYs in flight).
    fn trim_pending_queue(&mut self) {
        while let Some(&(_, id)) = self.pending_queue.front() {
            if self.pending.contains_key(&id) {
                break;
            }
            self.pending_queue.pop_front();
        }
    }

    /// When [`Engine::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let heap = self
            .timers
            .peek()
            .map(|Reverse((at, _, _))| self.base + Duration::from_millis(*at));
        let pending = self.pending_queue.front().map(|(at, _)| *at);
        match (heap, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next request to send (NOTIFY or BENOTIFY), oldest first.
    pub fn poll_outbound(&mut self) -> Option<Outbound<F>> {
        self.outbound.pop_front()
    }

    /// Ends every subscription with `reason=deactivated` (RFC 6665 §4.2.2: the subscriber may
    /// re-subscribe at once), e.g. before a planned restart, so clients move on cleanly.
    pub fn shutdown(&mut self, now: Instant) {
        for index in 0..self.subs.len() {
            if self.subs[index].is_some() {
                let sid = SubId {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    generation: self.sub_gens[index],
                };
                self.end_sub(now, sid, Some(Termination::Deactivated));
            }
        }
        self.release_idle();
    }

    /// Live persistent subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.live_subs
    }

    /// Users the engine holds state for.
    pub fn user_count(&self) -> usize {
        self.by_aor.len()
    }

    /// What `herald presence show` prints for `user`; `None` if the engine holds nothing for it.
    pub fn report(&self, now: Instant, user: &Aor) -> Option<PresenceReport> {
        let uid = *self.by_aor.get(user)?;
        Some(self.build_report(now, uid))
    }

    /// The user's contact list (loaded from the store if needed), for `herald contact list`.
    ///
    /// # Errors
    /// The store could not be read.
    pub fn contact_list(&mut self, now: Instant, user: &Aor) -> Result<ContactList, StoreError> {
        let uid = self.ensure_user(now, user)?;
        let list = self.contacts_of(uid)?.clone();
        self.release_idle();
        Ok(list)
    }

    /// Replaces `user`'s directory identity after a directory change (the store's
    /// [`PresenceStore::identity`] must answer the same from now on, since the engine reloads
    /// it whenever it forgets an idle user). Watchers see the new contact card at once.
    ///
    /// # Errors
    /// The store could not be read.
    pub fn set_identity(
        &mut self,
        now: Instant,
        user: &Aor,
        identity: Option<&Identity>,
    ) -> Result<(), StoreError> {
        let uid = self.ensure_user(now, user)?;
        self.user_mut(uid).identity = identity.map(derive::identity_card);
        self.refresh_user(now, uid);
        self.release_idle();
        Ok(())
    }

    // ---- time ----

    fn secs(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.base).as_secs()).unwrap_or(u32::MAX)
    }

    /// Milliseconds since the base instant, rounded down (what is due at `now`).
    fn ms_floor(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// Milliseconds since the base instant, rounded up (a timer never fires early).
    fn ms_ceil(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.base);
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if d.subsec_nanos().is_multiple_of(1_000_000) {
            ms
        } else {
            ms.saturating_add(1)
        }
    }

    fn wall(&self, now: Instant) -> Timestamp {
        let ms =
            i64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(i64::MAX);
        Timestamp::from_unix_millis(self.wall_base.unix_millis().saturating_add(ms))
    }

    // ---- users ----

    fn user(&self, uid: UserId) -> &User<F> {
        self.users[uid as usize]
            .as_ref()
            .expect("user ids held by the engine refer to live users")
    }

    fn user_mut(&mut self, uid: UserId) -> &mut User<F> {
        self.users[uid as usize]
            .as_mut()
            .expect("user ids held by the engine refer to live users")
    }

    /// The user's slot, creating it (and loading its persisted data) if needed.
    fn ensure_user(&mut self, now: Instant, aor: &Aor) -> Result<UserId, StoreError> {
        if let Some(&uid) = self.by_aor.get(aor) {
            return Ok(uid);
        }
        let containers = self.store.containers(aor)?;
        let statics = self.store.static_publications(aor)?;
        let identity = self.store.identity(aor)?;
        let index = match self.free_users.pop() {
            Some(i) => i,
            None => {
                self.users.push(None);
                self.user_gens.push(0);
                u32::try_from(self.users.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let generation = self.user_gens[index as usize];
        let wall = self.wall(now);
        let mut user = User::new(aor.clone(), generation, wall);
        user.containers = containers;
        user.identity = identity.as_ref().map(derive::identity_card);
        for stored in statics {
            let Ok(doc) = Categories::parse(stored.document.as_bytes(), &self.config.limits) else {
                continue;
            };
            for instance in doc.instances {
                user.published.push(Published {
                    instance,
                    endpoint: None,
                    expires_at: None,
                    published_at: now,
                });
            }
        }
        self.users[index as usize] = Some(user);
        self.by_aor.insert(aor.clone(), index);
        self.rebuild(now, index);
        self.schedule_user(index);
        self.release.push(index);
        Ok(index)
    }

    /// Frees the slots of users nothing refers to any more.
    fn release_idle(&mut self) {
        while let Some(uid) = self.release.pop() {
            let idle = self.users[uid as usize]
                .as_ref()
                .is_some_and(|u| u.is_idle());
            if !idle {
                continue;
            }
            if let Some(user) = self.users[uid as usize].take() {
                self.by_aor.remove(&user.aor);
                self.user_gens[uid as usize] = self.user_gens[uid as usize].wrapping_add(1);
                self.free_users.push(uid);
            }
        }
    }

    /// The access level `watcher` has to `presentity`.
    fn view_for(&self, presentity: UserId, watcher: UserId) -> AccessLevel {
        let p = self.user(presentity);
        let w = self.user(watcher);
        let domain = w.aor.as_str().rsplit_once('@').map_or("", |(_, d)| d);
        let relation = if self.config.is_local(domain) {
            Relation::SameEnterprise
        } else {
            Relation::Federated
        };
        let effective = effective_containers(&p.containers);
        access_level(
            &effective,
            &p.uri,
            &Watcher {
                uri: &w.uri,
                relation,
            },
        )
    }

    // ---- subscriptions ----

    fn sub(&self, sid: SubId) -> Option<&Sub<F>> {
        if self.sub_gens.get(sid.index as usize) != Some(&sid.generation) {
            return None;
        }
        self.subs.get(sid.index as usize)?.as_ref()
    }

    fn sub_mut(&mut self, sid: SubId) -> Option<&mut Sub<F>> {
        if self.sub_gens.get(sid.index as usize) != Some(&sid.generation) {
            return None;
        }
        self.subs.get_mut(sid.index as usize)?.as_mut()
    }

    fn sid_of(&self, index: u32) -> SubId {
        SubId {
            index,
            generation: self.sub_gens[index as usize],
        }
    }

    fn insert_sub(&mut self, sub: Sub<F>) -> SubId {
        let index = match self.free_subs.pop() {
            Some(i) => i,
            None => {
                self.subs.push(None);
                self.sub_gens.push(0);
                u32::try_from(self.subs.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.subs[index as usize] = Some(sub);
        self.live_subs += 1;
        self.sid_of(index)
    }

    fn schedule_sub_expiry(&mut self, sid: SubId) {
        if let Some(at) = self.sub(sid).map(|s| s.expires_at) {
            self.timers
                .push(Reverse((u64::from(at) * 1000, sid.index, sid.generation)));
        }
    }

    fn schedule_user(&mut self, uid: UserId) {
        let Some(at) = self.user(uid).next_change else {
            return;
        };
        let at = self.ms_ceil(at);
        let u = self.user_mut(uid);
        if u.scheduled.is_some_and(|s| s <= at) {
            return;
        }
        u.scheduled = Some(at);
        let generation = u.generation;
        self.timers
            .push(Reverse((at, uid | USER_TIMER, generation)));
    }

    /// Recomputes `uid` and tells its watchers if what they see changed.
    fn refresh_user(&mut self, now: Instant, uid: UserId) {
        let previous: Vec<_> = self
            .user(uid)
            .renders
            .iter()
            .map(|r| (r.view, r.format, r.body.clone()))
            .collect();
        if self.rebuild(now, uid) {
            self.fan_out(now, uid, &previous);
        }
        self.schedule_user(uid);
    }

    /// Drops stale timer entries once they outnumber live ones (refreshes and autoextend
    /// leave the old entry behind).
    fn compact_timers(&mut self) {
        if self.timers.len() <= 2 * (self.live_subs + self.by_aor.len()) + 1024 {
            return;
        }
        let entries = std::mem::take(&mut self.timers).into_vec();
        let mut seen_users = HashSet::new();
        let kept: Vec<TimerEntry> = entries
            .into_iter()
            .filter(|&Reverse((at, slot, generation))| {
                if slot & USER_TIMER == 0 {
                    self.sub(SubId {
                        index: slot,
                        generation,
                    })
                    .is_some_and(|s| u64::from(s.expires_at) * 1000 == at)
                } else {
                    let index = slot & !USER_TIMER;
                    self.user_gens.get(index as usize) == Some(&generation)
                        && self.users[index as usize].is_some()
                        && seen_users.insert(index)
                }
            })
            .collect();
        self.timers = BinaryHeap::from(kept);
    }

    /// The To tag of a persistent subscription's dialog. A dialog restored from the store keeps
    /// the tag its subscriber knows; others get [`Engine::tag_of_slot`].
    fn local_tag(&self, sid: SubId) -> String {
        if let Some(tag) = self.sub(sid).and_then(|s| s.dialog().local_tag) {
            return tag.to_owned();
        }
        self.tag_of_slot(sid)
    }

    /// The tag this run gives the dialog in slot `sid`: its slot and generation, mixed with
    /// the seed, so an in-dialog request finds its subscription without a dialog index.
    fn tag_of_slot(&self, sid: SubId) -> String {
        let raw = (u64::from(sid.index) << 32) | u64::from(sid.generation);
        format!("{:016x}", raw ^ self.config.seed)
    }

    fn decode_tag(&self, tag: &str) -> Option<SubId> {
        if tag.len() != 16 {
            return None;
        }
        let raw = u64::from_str_radix(tag, 16).ok()? ^ self.config.seed;
        Some(SubId {
            index: u32::try_from(raw >> 32).ok()?,
            generation: u32::try_from(raw & 0xffff_ffff).ok()?,
        })
    }

    /// A fresh value for entity tags and one-shot dialog tags: a bijection of a counter, so
    /// never repeated, and not a plain count.
    fn next_token(&mut self) -> u64 {
        self.counter += 1;
        self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.config.seed.rotate_left(17)
    }
}

/// The containers that decide access: the stored ones, plus Lync's defaults (colleagues in
/// Company, federated users in External) for those of the two the user never stored, so a
/// user who never set containers (a SIMPLE client) is still visible to colleagues.
fn effective_containers(stored: &[Container]) -> Vec<Container> {
    let mut out = stored.to_vec();
    for d in Container::defaults() {
        if !stored.iter().any(|c| c.id == d.id) {
            out.push(d);
        }
    }
    out
}
