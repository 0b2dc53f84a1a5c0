//! SERVICE requests (MS-SIP / MS-PRES): category publication, container membership,
//! subscriber acknowledgement and the roaming-contacts SOAP methods.

use std::time::Instant;

use herald_sip::Response;

use super::Engine;
use super::api::{AuthenticatedRequest, Reply};
use super::reply::{self, plain};
use super::state::{SubKind, Target, flag};
use crate::categories::fault::{FaultOperation, WrongDelta};
use crate::categories::members::{MemberAction, SetContainerMembers};
use crate::categories::publish::PublishRequest;
use crate::containers::Container;
use crate::xml;

/// What SERVICE bodies the engine takes (the `Accept` of a 415).
pub(crate) const SERVICE_ACCEPT: &str = "application/msrtc-category-publish+xml, application/msrtc-setcontainermembers+xml, application/msrtc-presence-setsubscriber+xml, application/SOAP+xml";

impl<F: Clone + Eq + std::hash::Hash + std::fmt::Debug> Engine<F> {
    /// Dispatches a SERVICE on its Content-Type. Every SERVICE acts on the sender's own data,
    /// so the Request-URI must be the sender.
    pub(super) fn service(&mut self, now: Instant, req: AuthenticatedRequest<F>) -> Reply {
        let r = &req.request;
        let target = match self.request_target(r) {
            Ok(a) => a,
            Err(reply) => return *reply,
        };
        if target != req.user {
            return reply::warn(r, 403, "Forbidden", "SERVICE acts on the sender's own data");
        }
        let media = match r.content_type() {
            Ok(Some(ct)) => format!("{}/{}", ct.ty(), ct.subtype()).to_ascii_lowercase(),
            Ok(None) => return reply::unsupported_media(r, SERVICE_ACCEPT),
            Err(_) => return reply::bad_header(r, "Content-Type"),
        };
        let limits = self.config.limits.clone();
        match media.as_str() {
            crate::categories::publish::CONTENT_TYPE => {
                match PublishRequest::parse(r.body(), &limits) {
                    Ok(body) => self.category_publish(now, &req, body),
                    Err(e) => reply::body_error(r, &e, SERVICE_ACCEPT),
                }
            }
            crate::categories::members::CONTENT_TYPE => {
                match SetContainerMembers::parse(r.body(), &limits) {
                    Ok(body) => self.set_container_members(now, &req, body),
                    Err(e) => reply::body_error(r, &e, SERVICE_ACCEPT),
                }
            }
            SET_SUBSCRIBERS => self.set_subscribers(now, &req),
            "application/soap+xml" => self.soap(now, &req),
            _ => reply::unsupported_media(r, SERVICE_ACCEPT),
        }
    }

    /// `setContainerMembers`: versions checked per container (409 WrongDelta naming the stale
    /// ones by 1-based position), the new membership persisted, then every watcher's view
    /// recomputed; watchers whose view changed get the new view at once (a newly Blocked
    /// watcher sees Offline).
    fn set_container_members(
        &mut self,
        now: Instant,
        req: &AuthenticatedRequest<F>,
        body: SetContainerMembers,
    ) -> Reply {
        let r = &req.request;
        let uid = match self.ensure_user(now, &req.user) {
            Ok(u) => u,
            Err(e) => return reply::store_failed(r, &e),
        };
        let mut containers = self.user(uid).containers.clone();
        let mut faults = Vec::new();
        for (i, update) in body.containers.iter().enumerate() {
            let cur = containers
                .iter()
                .find(|c| c.id == update.id)
                .map_or(0, |c| c.version);
            if update.version != cur {
                faults.push(FaultOperation {
                    index: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    version: Some(update.version),
                    cur_version: cur,
                });
            }
        }
        if !faults.is_empty() {
            return plain(Response::for_request(r, 409, "Conflict").body(
                crate::categories::fault::CONTENT_TYPE,
                WrongDelta { operations: faults }.render(),
            ));
        }
        for update in &body.containers {
            let pos = match containers.iter().position(|c| c.id == update.id) {
                Some(p) => p,
                None => {
                    containers.push(Container {
                        id: update.id,
                        version: 0,
                        members: Vec::new(),
                    });
                    containers.len() - 1
                }
            };
            let c = &mut containers[pos];
            for change in &update.changes {
                match change.action {
                    MemberAction::Add => {
                        if !c.members.contains(&change.member) {
                            if c.members.len() >= MAX_MEMBERS {
                                return reply::quota_exceeded(r, "too many container members");
                            }
                            c.members.push(change.member.clone());
                        }
                    }
                    MemberAction::Remove => c.members.retain(|m| *m != change.member),
                }
            }
            c.version = c.version.wrapping_add(1);
        }
        if let Err(e) = self.store.save_containers(&req.user, &containers) {
            return reply::store_failed(r, &e);
        }
        self.user_mut(uid).containers = containers;
        self.views_changed(now, uid);
        self.notify_own(
            now,
            uid,
            SubKind::RoamingSelf,
            flag::RS_CONTAINERS,
            |e, uid| e.roaming_self_body(uid, false, true, false),
        );
        reply::simple(r, 200, "OK")
    }

    /// Re-resolves the view of every watcher of `uid` and notifies those whose view changed.
    pub(super) fn views_changed(&mut self, now: Instant, uid: super::state::UserId) {
        let watchers = self.user(uid).watchers.clone();
        for w in watchers {
            let sid = self.sid_of(w);
            let Some(watcher) = self.sub(sid).map(|s| s.watcher) else {
                continue;
            };
            let view = self.view_for(uid, watcher);
            let Some(sub) = self.sub_mut(sid) else {
                continue;
            };
            let changed = match &mut sub.target {
                Target::One { view: v, .. } => std::mem::replace(v, view) != view,
                Target::List(l) => l
                    .entries
                    .iter_mut()
                    .find(|e| e.presentity == uid)
                    .is_some_and(|e| std::mem::replace(&mut e.view, view) != view),
                Target::Own => false,
            };
            if changed {
                let is_list = matches!(self.sub(sid).map(|s| &s.target), Some(Target::List(_)));
                let body = self.presence_body(sid, is_list.then_some(uid));
                self.notify(now, sid, super::notify::NotifyState::Active, body);
            }
        }
    }

    /// `setSubscribers`: the owner acknowledges watchers (roaming-self `subscribers`).
    fn set_subscribers(&mut self, now: Instant, req: &AuthenticatedRequest<F>) -> Reply {
        let r = &req.request;
        let doc = match xml::parse(r.body(), &self.config.limits) {
            Ok(d) => d,
            Err(e) => return reply::body_error(r, &e, SERVICE_ACCEPT),
        };
        let uid = match self.ensure_user(now, &req.user) {
            Ok(u) => u,
            Err(e) => return reply::store_failed(r, &e),
        };
        let mut users: Vec<Box<str>> = Vec::new();
        for s in doc.root.elements().filter(|e| &*e.local == "subscriber") {
            if let Some(u) = s.attr("user") {
                let acked = s.attr("acknowledged").is_none_or(|a| a.trim() == "true");
                if acked {
                    users.push(crate::containers::strip_sip(u).to_ascii_lowercase().into());
                }
            }
        }
        let user = self.user_mut(uid);
        for u in users {
            if !user.acknowledged.contains(&u) && user.acknowledged.len() < MAX_MEMBERS {
                user.acknowledged.push(u);
            }
        }
        reply::simple(r, 200, "OK")
    }
}

/// `application/msrtc-presence-setsubscriber+xml`.
const SET_SUBSCRIBERS: &str = "application/msrtc-presence-setsubscriber+xml";

/// Most members one container (or acknowledged-subscriber list) may hold.
const MAX_MEMBERS: usize = 1000;
