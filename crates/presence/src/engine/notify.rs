//! Notifications: bodies for each kind of subscription, the NOTIFY/BENOTIFY request with its
//! dialog headers, the fan-out of a presentity change, and ending subscriptions.

use std::time::Instant;

use bytes::Bytes;
use herald_sip::{HeaderName, Method, RequestBuilder, Uri};

use super::Engine;
use super::api::{NotifyId, Outbound, OutboundKind, OutboundRequest, Termination};
use super::state::{Rejection, Sub, SubId, SubKind, Target, UserId, flag};
use crate::categories::CategorySet;
use crate::categories::roaming::{RoamingSelf, Subscriber};
use crate::containers::{AccessLevel, strip_sip};
use crate::render::{BodyFormat, Snapshot, render_view};
use crate::rlmi::{self, Instance, InstanceState, List, Part, Resource};
use crate::watcherinfo::{self, WatcherEvent, WatcherInfo, WatcherList, WatcherStatus};

/// A notification body: Content-Type and bytes.
pub(crate) type Body = (String, Bytes);

/// The Subscription-State a notification carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotifyState {
    Active,
    Terminated(Termination),
}

/// The dialog headers of a notification, borrowed from wherever they live (a subscription, or
/// the SUBSCRIBE of a one-shot query).
pub(crate) struct DialogHeaders<'a> {
    pub(crate) remote_target: &'a str,
    pub(crate) local_uri: &'a str,
    pub(crate) local_tag: &'a str,
    pub(crate) remote_uri: &'a str,
    pub(crate) remote_tag: &'a str,
    pub(crate) call_id: &'a str,
    pub(crate) route: Option<&'a str>,
    pub(crate) package: &'a str,
    pub(crate) event_id: Option<&'a str>,
    pub(crate) eventlist: bool,
}

impl<F: Clone + Eq + std::hash::Hash + std::fmt::Debug> Engine<F> {
    /// The body `view` at `format` of `presentity`, rendered once per version and shared.
    pub(super) fn render(
        &mut self,
        presentity: UserId,
        view: AccessLevel,
        format: BodyFormat,
    ) -> Bytes {
        if let Some(b) = self.user(presentity).cached_render(view, format) {
            return b.clone();
        }
        let user = self.user(presentity);
        let snapshot = Snapshot {
            uri: &user.uri,
            instances: &user.snapshot,
            contact: None,
            time: user.snapshot_time,
        };
        let body = render_view(&snapshot, view, format);
        self.user_mut(presentity)
            .renders
            .push(super::state::Render {
                view,
                format,
                body: body.clone(),
            });
        body
    }

    /// The full-state body of subscription `sid` (first notification, refresh, query).
    pub(super) fn full_body(&mut self, now: Instant, sid: SubId) -> Option<Body> {
        let (kind, watcher) = {
            let s = self.sub(sid)?;
            (s.kind, s.watcher)
        };
        match kind {
            SubKind::Presence => self.presence_body(sid, None),
            SubKind::RoamingContacts => {
                let list = self.contacts_of(watcher).ok()?;
                Some((
                    crate::categories::roaming::CONTACTS_CONTENT_TYPE.to_owned(),
                    list.render(),
                ))
            }
            SubKind::RoamingSelf => {
                let flags = self.sub(sid)?.flags;
                Some(self.roaming_self_body(
                    watcher,
                    flags & flag::RS_CATEGORIES != 0,
                    flags & flag::RS_CONTAINERS != 0,
                    flags & flag::RS_SUBSCRIBERS != 0,
                ))
            }
            SubKind::Winfo => Some(self.winfo_body(now, sid)),
        }
    }

    /// A presence body: for one presentity its view; for a list the RLMI multipart with every
    /// resource (`changed == None`, full state) or only `changed` (partial state).
    pub(super) fn presence_body(&mut self, sid: SubId, changed: Option<UserId>) -> Option<Body> {
        let sub = self.sub(sid)?;
        let format = sub.format;
        match &sub.target {
            Target::One { presentity, view } => {
                let (p, v) = (*presentity, *view);
                let body = self.render(p, v, format);
                Some((format.content_type().to_owned(), body))
            }
            Target::List(list) => {
                let list_uri = list.uri.to_string();
                let entries: Vec<_> = list
                    .entries
                    .iter()
                    .copied()
                    .filter(|e| changed.is_none_or(|c| c == e.presentity))
                    .collect();
                let rejected: Vec<_> = if changed.is_none() {
                    list.rejected.clone()
                } else {
                    Vec::new()
                };
                let mut resources = Vec::with_capacity(entries.len() + rejected.len());
                let mut parts = Vec::with_capacity(entries.len());
                for e in entries {
                    let body = self.render(e.presentity, e.view, format);
                    let user = self.user(e.presentity);
                    let cid = user.aor.as_str().to_owned();
                    resources.push(Resource {
                        uri: user.uri.to_string(),
                        names: Vec::new(),
                        instances: vec![Instance::active(&format!("{:x}", e.presentity), &cid)],
                    });
                    parts.push(Part {
                        content_id: cid,
                        content_type: format.content_type().to_owned(),
                        body,
                    });
                }
                for (uri, why) in rejected {
                    let cid = strip_sip(&uri).to_owned();
                    let instance = match why {
                        Rejection::Quota => Instance::quota_exceeded("0", &cid),
                        Rejection::NoResource => Instance {
                            id: "0".to_owned(),
                            state: InstanceState::Terminated,
                            reason: Some("noresource".to_owned()),
                            cid: None,
                            status_code: Some(404),
                            ms_diag_code: None,
                            pool_fqdn: None,
                        },
                    };
                    resources.push(Resource {
                        uri: uri.to_string(),
                        names: Vec::new(),
                        instances: vec![instance],
                    });
                }
                let sub = self.sub_mut(sid)?;
                let version = sub.version;
                sub.version = sub.version.wrapping_add(1);
                let doc = List {
                    uri: list_uri,
                    version,
                    full_state: changed.is_none(),
                    cid: None,
                    names: Vec::new(),
                    resources,
                };
                let mb = rlmi::render_notification(
                    &doc,
                    "resourceList",
                    &parts,
                    &format!("herald-{:x}-{:x}", sid.index, sid.generation),
                );
                Some((mb.content_type, mb.body))
            }
            Target::Own => None,
        }
    }

    /// `<roamingData>` with the requested parts.
    pub(super) fn roaming_self_body(
        &mut self,
        uid: UserId,
        categories: bool,
        containers: bool,
        subscribers: bool,
    ) -> Body {
        let mut doc = RoamingSelf::default();
        if categories {
            let user = self.user(uid);
            doc.categories = Some(crate::categories::Categories {
                uri: user.uri.to_string(),
                instances: user.snapshot.clone(),
            });
        }
        if containers {
            doc.containers = Some(self.user(uid).containers.clone());
        }
        if subscribers {
            doc.subscribers = Some(self.subscribers_of(uid));
        }
        (
            crate::categories::roaming::SELF_CONTENT_TYPE.to_owned(),
            doc.render(),
        )
    }

    /// The distinct users holding persistent presence subscriptions to `uid` (not itself).
    pub(super) fn subscribers_of(&self, uid: UserId) -> Vec<Subscriber> {
        let user = self.user(uid);
        let mut out: Vec<Subscriber> = Vec::new();
        for &w in &user.watchers {
            let Some(sub) = self.subs[w as usize].as_ref() else {
                continue;
            };
            if sub.watcher == uid {
                continue;
            }
            let watcher = self.user(sub.watcher);
            let name = watcher.aor.as_str();
            if out.iter().any(|s| s.user == name) {
                continue;
            }
            out.push(Subscriber {
                user: name.to_owned(),
                display_name: None,
                acknowledged: user.acknowledged.iter().any(|a| &**a == name),
            });
        }
        out
    }

    /// RFC 3858 watcher information for a winfo subscription: full state each time.
    fn winfo_body(&mut self, now: Instant, sid: SubId) -> Body {
        let now_secs = self.secs(now);
        let Some(owner) = self.sub(sid).map(|s| s.watcher) else {
            return (watcherinfo::CONTENT_TYPE.to_owned(), Bytes::new());
        };
        let user = self.user(owner);
        let mut watchers = Vec::new();
        for &w in &user.watchers {
            let Some(s) = self.subs[w as usize].as_ref() else {
                continue;
            };
            watchers.push(watcherinfo::Watcher {
                uri: self.user(s.watcher).uri.to_string(),
                id: self.local_tag(self.sid_of(w)),
                status: WatcherStatus::Active,
                event: WatcherEvent::Subscribe,
                display_name: None,
                expiration: Some(u64::from(s.expires_at.saturating_sub(now_secs))),
                duration_subscribed: None,
            });
        }
        let resource = user.uri.to_string();
        let version = self.sub_mut(sid).map_or(0, |s| {
            let v = s.version;
            s.version = v.wrapping_add(1);
            v
        });
        let doc = WatcherInfo {
            version,
            full: true,
            lists: vec![WatcherList {
                resource,
                package: "presence".to_owned(),
                watchers,
            }],
        };
        (watcherinfo::CONTENT_TYPE.to_owned(), doc.render())
    }

    /// Queues a notification on `sid`.
    pub(super) fn notify(
        &mut self,
        now: Instant,
        sid: SubId,
        state: NotifyState,
        body: Option<Body>,
    ) {
        let now_secs = self.secs(now);
        let autoextend = self.sub(sid).is_some_and(|s| s.has(flag::AUTOEXTEND));
        if autoextend && state == NotifyState::Active {
            if let Some(s) = self.sub_mut(sid) {
                s.expires_at = now_secs.saturating_add(s.duration);
            }
            self.schedule_sub_expiry(sid);
        }
        let local_tag = self.local_tag(sid);
        let Some(sub) = self.sub(sid) else {
            return;
        };
        let watcher = self.user(sub.watcher);
        let parts = sub.dialog();
        let local_uri = match (parts.local_uri, &sub.target) {
            (Some(written), _) => written.into(),
            (None, Target::One { presentity, .. }) => self.user(*presentity).uri.clone(),
            (None, _) => watcher.uri.clone(),
        };
        let cseq = sub.cseq.wrapping_add(1);
        let headers = DialogHeaders {
            remote_target: parts.remote_target,
            local_uri: &local_uri,
            local_tag: &local_tag,
            remote_uri: parts.remote_uri.unwrap_or(watcher.uri.as_ref()),
            remote_tag: parts.remote_tag,
            call_id: parts.call_id,
            route: parts.route,
            package: sub.kind.package(),
            event_id: parts.event_id,
            eventlist: matches!(sub.target, Target::List(_)),
        };
        let expires = sub.expires_at.saturating_sub(now_secs);
        let benotify = sub.has(flag::BENOTIFY);
        let flow = sub.flow.clone();
        let contact = sub.contact.clone();
        let Some(request) = build_notify(
            contact.as_deref().unwrap_or(&self.config.contact),
            &headers,
            cseq,
            benotify,
            state,
            expires,
            body,
        ) else {
            return;
        };
        if let Some(s) = self.sub_mut(sid) {
            s.cseq = cseq;
        }
        if matches!(state, NotifyState::Active) {
            self.cseq_used(now, sid, cseq);
        }
        self.push_outbound(now, flow, benotify, request, Some(sid));
    }

    /// Queues a built request.
    pub(super) fn push_outbound(
        &mut self,
        now: Instant,
        flow: F,
        benotify: bool,
        request: OutboundRequest,
        sid: Option<SubId>,
    ) {
        let kind = if benotify {
            OutboundKind::Benotify
        } else {
            self.counter += 1;
            let id = NotifyId(self.counter);
            if let Some(sid) = sid {
                self.pending.insert(id, sid);
                self.pending_queue
                    .push_back((now + self.config.notify_timeout, id));
            }
            OutboundKind::Notify(id)
        };
        self.outbound.push_back(Outbound {
            flow,
            kind,
            request,
        });
    }

    /// Tells every watcher of `uid` what changed, rendering once per (view, format) and
    /// skipping watchers whose view did not change.
    pub(super) fn fan_out(
        &mut self,
        now: Instant,
        uid: UserId,
        previous: &[(AccessLevel, BodyFormat, Bytes)],
    ) {
        let watchers = std::mem::take(&mut self.user_mut(uid).watchers);
        // Whether each (view, format) changed, decided once rather than per watcher.
        let mut changed: Vec<(AccessLevel, BodyFormat, Option<Bytes>)> = Vec::new();
        for &w in &watchers {
            let sid = self.sid_of(w);
            let Some(sub) = self.sub(sid) else { continue };
            let format = sub.format;
            let is_list = matches!(sub.target, Target::List(_));
            let view = match &sub.target {
                Target::One { view, .. } => *view,
                Target::List(l) => match l.entries.iter().find(|e| e.presentity == uid) {
                    Some(e) => e.view,
                    None => continue,
                },
                Target::Own => continue,
            };
            let body = match changed.iter().find(|(v, f, _)| *v == view && *f == format) {
                Some((_, _, body)) => body.clone(),
                None => {
                    let body = self.render(uid, view, format);
                    let same = previous
                        .iter()
                        .any(|(v, f, b)| *v == view && *f == format && *b == body);
                    let body = (!same).then_some(body);
                    changed.push((view, format, body.clone()));
                    body
                }
            };
            let Some(body) = body else { continue };
            let body = if is_list {
                self.presence_body(sid, Some(uid))
            } else {
                Some((format.content_type().to_owned(), body))
            };
            self.notify(now, sid, NotifyState::Active, body);
        }
        let user = self.user_mut(uid);
        let mut watchers = watchers;
        watchers.append(&mut user.watchers);
        user.watchers = watchers;
        // The owner's roaming-self subscriptions follow its own categories.
        let wants_self = self.user(uid).own.iter().any(|&i| {
            self.subs[i as usize]
                .as_ref()
                .is_some_and(|s| s.kind == SubKind::RoamingSelf && s.has(flag::RS_CATEGORIES))
        });
        if !wants_self {
            return;
        }
        let owner_format = BodyFormat::Categories(CategorySet::ALL);
        let own_body = self.render(uid, AccessLevel::Owner, owner_format);
        let unchanged = previous
            .iter()
            .any(|(v, f, b)| *v == AccessLevel::Owner && *f == owner_format && *b == own_body);
        if !unchanged {
            self.notify_own(
                now,
                uid,
                SubKind::RoamingSelf,
                flag::RS_CATEGORIES,
                |e, uid| e.roaming_self_body(uid, true, false, false),
            );
        }
    }

    /// Notifies `uid`'s own subscriptions of `kind` (having `needed` flags, if any) with the
    /// body `make` builds once.
    pub(super) fn notify_own(
        &mut self,
        now: Instant,
        uid: UserId,
        kind: SubKind,
        needed: u8,
        make: impl FnOnce(&mut Self, UserId) -> Body,
    ) {
        let targets: Vec<SubId> = self
            .user(uid)
            .own
            .iter()
            .map(|&i| self.sid_of(i))
            .filter(|&sid| {
                self.sub(sid)
                    .is_some_and(|s| s.kind == kind && (needed == 0 || s.flags & needed != 0))
            })
            .collect();
        if targets.is_empty() {
            return;
        }
        let body = make(self, uid);
        for sid in targets {
            self.notify(now, sid, NotifyState::Active, Some(body.clone()));
        }
    }

    /// The watchers of `uid` changed: its winfo subscriptions hear about it, and, when `added`
    /// is a user newly watching it whom it has not acknowledged, its roaming-self
    /// `subscribers` too (SIPE prompts for every unacknowledged subscriber it is told about,
    /// so departures and known watchers are not re-announced).
    pub(super) fn watchers_changed(&mut self, now: Instant, uid: UserId, added: Option<UserId>) {
        let winfo: Vec<SubId> = self
            .user(uid)
            .own
            .iter()
            .map(|&i| self.sid_of(i))
            .filter(|&sid| self.sub(sid).is_some_and(|s| s.kind == SubKind::Winfo))
            .collect();
        for sid in winfo {
            let body = self.winfo_body(now, sid);
            self.notify(now, sid, NotifyState::Active, Some(body));
        }
        let Some(w) = added.filter(|&w| w != uid) else {
            return;
        };
        let name = self.user(w).aor.as_str().to_owned();
        let user = self.user(uid);
        let acknowledged = user.acknowledged.iter().any(|a| **a == *name);
        let subs_by_w = user
            .watchers
            .iter()
            .filter(|&&i| {
                self.subs[i as usize]
                    .as_ref()
                    .is_some_and(|s| s.watcher == w)
            })
            .count();
        if acknowledged || subs_by_w > 1 {
            return;
        }
        self.notify_own(
            now,
            uid,
            SubKind::RoamingSelf,
            flag::RS_SUBSCRIBERS,
            |e, uid| e.roaming_self_body(uid, false, false, true),
        );
    }

    /// Ends subscription `sid`: with a final NOTIFY carrying `reason` (and, for presence, the
    /// current state), or silently when `reason` is `None` (the subscriber is gone).
    pub(super) fn end_sub(&mut self, now: Instant, sid: SubId, reason: Option<Termination>) {
        if self.sub(sid).is_none() {
            return;
        }
        if let Some(reason) = reason {
            let body = if matches!(reason, Termination::Timeout | Termination::Deactivated) {
                self.full_body(now, sid)
            } else {
                None
            };
            self.notify(now, sid, NotifyState::Terminated(reason), body);
        }
        let Some(sub) = self.subs[sid.index as usize].take() else {
            return;
        };
        self.sub_gens[sid.index as usize] = sid.generation.wrapping_add(1);
        self.free_subs.push(sid.index);
        self.live_subs -= 1;
        self.unpersist(sid, &sub);
        self.detach(now, sid.index, &sub);
    }

    /// Removes a freed subscription from the indexes that refer to it.
    fn detach(&mut self, now: Instant, index: u32, sub: &Sub<F>) {
        let watched = sub.resources();
        let w = self.user_mut(sub.watcher);
        if let Some(pos) = w.own.iter().position(|&i| i == index) {
            w.own.swap_remove(pos);
        }
        w.watched = w.watched.saturating_sub(watched);
        self.release.push(sub.watcher);
        let presentities: Vec<UserId> = match &sub.target {
            Target::One { presentity, .. } => vec![*presentity],
            Target::List(l) => l.entries.iter().map(|e| e.presentity).collect(),
            Target::Own => Vec::new(),
        };
        for p in presentities {
            let u = self.user_mut(p);
            if let Some(pos) = u.watchers.iter().position(|&i| i == index) {
                u.watchers.swap_remove(pos);
            }
            self.release.push(p);
            self.watchers_changed(now, p, None);
        }
    }
}

/// Builds a NOTIFY or BENOTIFY without Via. `None` only if a stored dialog value could not be
/// written into a header (it was read from one, so this does not happen).
pub(crate) fn build_notify(
    contact: &str,
    h: &DialogHeaders<'_>,
    cseq: u32,
    benotify: bool,
    state: NotifyState,
    expires: u32,
    body: Option<Body>,
) -> Option<OutboundRequest> {
    let method = if benotify {
        Method::Benotify
    } else {
        Method::Notify
    };
    let target = Uri::parse_str(h.remote_target).ok()?;
    let event = match h.event_id {
        Some(id) => format!("{};id={id}", h.package),
        None => h.package.to_owned(),
    };
    let state_value = match state {
        NotifyState::Active => format!("active;expires={expires}"),
        NotifyState::Terminated(r) => format!("terminated;reason={}", r.as_str()),
    };
    let mut b = RequestBuilder::new(method.clone(), &target)
        .header(HeaderName::MaxForwards, "70")
        .header(
            HeaderName::From,
            format!("<{}>;tag={}", h.local_uri, h.local_tag),
        )
        .header(
            HeaderName::To,
            format!("<{}>;tag={}", h.remote_uri, h.remote_tag),
        )
        .header(HeaderName::CallId, h.call_id)
        .header(HeaderName::CSeq, format!("{cseq} {}", method.as_str()));
    if let Some(route) = h.route {
        b = b.header(HeaderName::Route, route);
    }
    b = b
        .header(HeaderName::Contact, contact)
        .header(HeaderName::Event, event)
        .header(HeaderName::SubscriptionState, state_value);
    if h.eventlist {
        b = b.header(HeaderName::Require, "eventlist");
    }
    if let Some((ct, bytes)) = body {
        b = b.body(&ct, bytes);
    }
    Some(OutboundRequest::new(b.to_bytes(), method, cseq))
}
