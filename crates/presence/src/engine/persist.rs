//! Persistent subscription dialogs across restarts (issue 3: "nothing that was acknowledged is
//! lost on restart").
//!
//! The engine does not write subscriptions itself: they change far more often than contact
//! lists, and a synchronous write per SUBSCRIBE would put a disk sync on the presence thread's
//! path. Instead every change to a persistent dialog (created, refreshed, moved to another
//! flow, its CSeq reservation used up, ended) is queued as a [`SubscriptionChange`] that the
//! runtime drains with [`Engine::poll_subscription_change`] after each call, right along with
//! [`Engine::poll_outbound`]. The runtime must make the changes durable before it sends the
//! replies and requests that the same call produced (group commit: one transaction for all
//! that queued meanwhile), so a 200 for a new subscription is never on the wire before its
//! row is in the store, and a NOTIFY never carries a CSeq above the stored reservation.
//!
//! **CSeq across a restart.** Storing the CSeq of every NOTIFY would cost a write per
//! notification; instead a row stores a *reservation*, the next multiple of
//! [`CSEQ_RESERVATION`] above the dialog's CSeq. Only when a notification reaches that
//! multiple is the row written again (that notification then waits for the write like any
//! other). A restored dialog continues from its reservation, so its CSeq keeps increasing
//! (RFC 3261 §12.2.1.1) whatever was sent between the last write and the stop.
//!
//! **Not stored.** One-time queries and polls (no dialog); dialogs whose flow the runtime
//! cannot rebuild after a restart (TCP and TLS connections die with the process: the runtime
//! drops those rows). A `com.microsoft.autoextend` dialog's row keeps the expiry of its last
//! SUBSCRIBE (or flow move, or CSeq reservation), not each notification's re-arming, so a
//! restart may end it earlier than autoextend would have; its subscriber then re-subscribes.
//!
//! **Restore.** [`Engine::restore_subscription`] takes each stored row at start-up, after the
//! registrar has restored the registrations: a dialog comes back only if its subscriber is
//! signed in again (some endpoint was restored) and it has not expired. Its To tag is the one
//! the subscriber holds, kept as it was (tags of this run encode slots; restored ones are
//! looked up by value). It is then sent a NOTIFY with full current state, which RFC 6665
//! §4.2.2 allows at any time, so a watcher that missed changes during the restart catches up.

use std::sync::Arc;
use std::time::Instant;

use herald_registrar::Aor;

use super::Engine;
use super::notify::NotifyState;
use super::state::{DialogParts, Sub, SubId, SubKind, Target};
use super::store::StoreError;
use crate::categories::CategorySet;
use crate::render::BodyFormat;

/// A dialog's row is rewritten once every this many notifications (see the module
/// documentation): the bound on CSeq numbers a restart skips, and the rate of CSeq writes.
pub const CSEQ_RESERVATION: u32 = 1000;

/// A persistent subscription dialog as the store keeps it: what the engine needs to continue
/// the dialog after a restart. `F` is the flow: the engine's flow type when the engine emits
/// it, the runtime's stored description of it in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSubscription<F> {
    /// The engine's tag in the dialog (the To tag of the 200, the From tag of NOTIFYs): the
    /// row's key.
    pub local_tag: String,
    /// The subscriber.
    pub watcher: Aor,
    /// The event package (`presence`, `presence.winfo`, `vnd-microsoft-roaming-*`).
    pub package: String,
    /// The Event header's `id` parameter.
    pub event_id: Option<String>,
    /// The dialog's Call-ID.
    pub call_id: String,
    /// The subscriber's tag.
    pub remote_tag: String,
    /// The subscriber's Contact URI, where notifications are addressed.
    pub remote_target: String,
    /// The route set (Record-Route values, comma-separated), if any.
    pub route: Option<String>,
    /// The watched presentity of a single `presence` subscription.
    pub resource: Option<Aor>,
    /// The list URI of a list subscription (Lync batch or RFC 4662).
    pub list_uri: Option<String>,
    /// The resources of a list subscription, watched and rejected, as the subscriber named
    /// them; re-resolved (access, quotas) at restore.
    pub list: Vec<String>,
    /// The body format: `pidf` or `categories:<hex set>`.
    pub format: String,
    /// Negotiated behaviour: BENOTIFY, autoextend, Lync batch, roaming-self parts (engine
    /// bits, only read back by the engine).
    pub flags: u8,
    /// The CSeq reservation: above every CSeq the dialog has sent (see the module docs).
    pub cseq: u32,
    /// The granted duration in seconds.
    pub duration: u32,
    /// When the subscription expires, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The flow notifications go out on.
    pub flow: F,
}

impl<F> StoredSubscription<F> {
    /// The same row with its flow converted; `None` when `f` cannot convert it (a flow that
    /// will not exist after a restart, such as a TCP connection).
    pub fn map_flow<G>(self, f: impl FnOnce(&F) -> Option<G>) -> Option<StoredSubscription<G>> {
        let flow = f(&self.flow)?;
        Some(StoredSubscription {
            local_tag: self.local_tag,
            watcher: self.watcher,
            package: self.package,
            event_id: self.event_id,
            call_id: self.call_id,
            remote_tag: self.remote_tag,
            remote_target: self.remote_target,
            route: self.route,
            resource: self.resource,
            list_uri: self.list_uri,
            list: self.list,
            format: self.format,
            flags: self.flags,
            cseq: self.cseq,
            duration: self.duration,
            expires_at_ms: self.expires_at_ms,
            flow,
        })
    }
}

/// A change to the stored subscription dialogs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionChange<F> {
    /// Insert or replace the row with this local tag.
    Put(Box<StoredSubscription<F>>),
    /// Remove the row with this local tag (no error if absent).
    Delete(String),
}

/// Why a stored subscription was not restored (the runtime deletes its row).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// Its expiry passed while the server was down.
    #[error("expired")]
    Expired,
    /// Its subscriber has no restored registration: nobody to notify.
    #[error("the subscriber is not signed in")]
    NotSignedIn,
    /// An event package or format this engine does not know (a row from another version).
    #[error("unknown event package or format")]
    Unknown,
    /// A dialog with the same tag is live already.
    #[error("duplicate dialog")]
    Duplicate,
    /// The presence store failed while loading the users.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stored form of a body format.
pub(crate) fn format_text(format: BodyFormat) -> String {
    match format {
        BodyFormat::Pidf => "pidf".to_owned(),
        BodyFormat::Categories(set) => format!("categories:{:x}", set.bits()),
    }
}

fn parse_format(text: &str) -> Option<BodyFormat> {
    if text == "pidf" {
        return Some(BodyFormat::Pidf);
    }
    let bits = u32::from_str_radix(text.strip_prefix("categories:")?, 16).ok()?;
    Some(BodyFormat::Categories(CategorySet::from_bits(bits)))
}

fn kind_of(package: &str) -> Option<SubKind> {
    [
        SubKind::Presence,
        SubKind::Winfo,
        SubKind::RoamingContacts,
        SubKind::RoamingSelf,
    ]
    .into_iter()
    .find(|k| k.package() == package)
}

/// The reservation to store for a dialog whose last CSeq is `cseq`.
fn reservation(cseq: u32) -> u32 {
    (cseq / CSEQ_RESERVATION)
        .saturating_add(1)
        .saturating_mul(CSEQ_RESERVATION)
}

impl<F: Clone + Eq + std::hash::Hash + std::fmt::Debug> Engine<F> {
    /// The next change to the stored subscription dialogs, oldest first. Make the changes
    /// durable before sending what the same call queued in [`Engine::poll_outbound`] and
    /// before sending its reply (see the `persist` module documentation).
    pub fn poll_subscription_change(&mut self) -> Option<SubscriptionChange<F>> {
        self.changes.pop_front()
    }

    /// Re-creates a subscription dialog a previous run stored, and queues a NOTIFY with full
    /// current state on it (and a [`SubscriptionChange::Put`] renewing its CSeq reservation).
    /// Call after the registrations were restored and their events fed in.
    ///
    /// # Errors
    /// The row is not restored (see [`RestoreError`]); the caller should delete it.
    pub fn restore_subscription(
        &mut self,
        now: Instant,
        stored: StoredSubscription<F>,
    ) -> Result<(), RestoreError> {
        let result = self.restore_one(now, stored);
        self.release_idle();
        result
    }

    fn restore_one(&mut self, now: Instant, s: StoredSubscription<F>) -> Result<(), RestoreError> {
        let kind = kind_of(&s.package).ok_or(RestoreError::Unknown)?;
        let format = parse_format(&s.format).ok_or(RestoreError::Unknown)?;
        let left_ms = s.expires_at_ms.saturating_sub(self.wall(now).unix_millis());
        let left = u32::try_from(left_ms / 1000).unwrap_or(u32::MAX);
        if left_ms < 1000 {
            return Err(RestoreError::Expired);
        }
        if self.find_by_tag(&s.local_tag).is_some() {
            return Err(RestoreError::Duplicate);
        }
        let watcher = self.ensure_user(now, &s.watcher)?;
        if self.user(watcher).endpoints.is_empty() {
            self.release.push(watcher);
            return Err(RestoreError::NotSignedIn);
        }
        let target = match (kind, &s.list_uri, &s.resource) {
            (SubKind::Presence, Some(uri), _) => Target::List(Box::new(self.build_list(
                now,
                watcher,
                Arc::from(uri.as_str()),
                &s.list,
                true,
            ))),
            (SubKind::Presence, None, Some(resource)) => {
                let presentity = self.ensure_user(now, resource)?;
                let view = self.view_for(presentity, watcher);
                Target::One { presentity, view }
            }
            (SubKind::Presence, None, None) => return Err(RestoreError::Unknown),
            _ => Target::Own,
        };
        let sub = Sub {
            watcher,
            kind,
            flags: s.flags,
            format,
            target,
            cseq: s.cseq,
            expires_at: self.secs(now).saturating_add(left),
            duration: s.duration,
            version: s.cseq,
            // The URIs the subscriber wrote, if not the canonical ones, are not stored: a
            // restored dialog's NOTIFYs carry the canonical From and To (the tags, which
            // identify the dialog, are kept).
            dialog: DialogParts {
                call_id: &s.call_id,
                remote_tag: &s.remote_tag,
                event_id: s.event_id.as_deref(),
                route: s.route.as_deref(),
                remote_target: &s.remote_target,
                local_uri: None,
                remote_uri: None,
                local_tag: Some(&s.local_tag),
            }
            .join(),
            flow: s.flow,
            contact: None,
        };
        let sid = self.insert_sub(sub);
        self.restored_tags.insert(s.local_tag.into_boxed_str(), sid);
        self.attach(now, sid);
        // The reservation the row holds is this run's starting CSeq: reserve the next block
        // before the first NOTIFY (which waits for the write) uses it.
        self.persist_sub(now, sid);
        let body = self.full_body(now, sid);
        self.notify(now, sid, NotifyState::Active, body);
        Ok(())
    }

    /// Ends, without a NOTIFY, the dialog whose local tag is `local_tag`: the runtime could
    /// not store it, so its SUBSCRIBE was answered 500 instead of the 200. Returns whether
    /// such a dialog was live.
    pub fn forget_subscription(&mut self, now: Instant, local_tag: &str) -> bool {
        let Some(sid) = self.find_by_tag(local_tag) else {
            return false;
        };
        self.end_sub(now, sid, None);
        self.release_idle();
        true
    }

    /// The live subscription whose local tag is `tag`: a restored one by value, one of this
    /// run by the slot its tag encodes.
    pub(super) fn find_by_tag(&self, tag: &str) -> Option<SubId> {
        if let Some(&sid) = self.restored_tags.get(tag) {
            return self.sub(sid).is_some().then_some(sid);
        }
        self.decode_tag(tag).filter(|&sid| {
            self.sub(sid)
                .is_some_and(|s| s.dialog().local_tag.is_none())
        })
    }

    /// Queues the current row of persistent subscription `sid`.
    pub(super) fn persist_sub(&mut self, now: Instant, sid: SubId) {
        if !self.config.persist_subscriptions {
            return;
        }
        let local_tag = self.local_tag(sid);
        let now_secs = self.secs(now);
        let wall = self.wall(now).unix_millis();
        let Some(s) = self.sub(sid) else { return };
        let d = s.dialog();
        let (resource, list_uri, list) = match &s.target {
            Target::One { presentity, .. } => {
                (Some(self.user(*presentity).aor.clone()), None, vec![])
            }
            Target::List(l) => (
                None,
                Some(l.uri.to_string()),
                l.entries
                    .iter()
                    .map(|e| self.user(e.presentity).uri.to_string())
                    .chain(l.rejected.iter().map(|(u, _)| u.to_string()))
                    .collect(),
            ),
            Target::Own => (None, None, vec![]),
        };
        let left_ms = i64::from(s.expires_at.saturating_sub(now_secs)) * 1000;
        let row = StoredSubscription {
            local_tag,
            watcher: self.user(s.watcher).aor.clone(),
            package: s.kind.package().to_owned(),
            event_id: d.event_id.map(str::to_owned),
            call_id: d.call_id.to_owned(),
            remote_tag: d.remote_tag.to_owned(),
            remote_target: d.remote_target.to_owned(),
            route: d.route.map(str::to_owned),
            resource,
            list_uri,
            list,
            format: format_text(s.format),
            flags: s.flags,
            cseq: reservation(s.cseq),
            duration: s.duration,
            expires_at_ms: wall.saturating_add(left_ms),
            flow: s.flow.clone(),
        };
        self.changes
            .push_back(SubscriptionChange::Put(Box::new(row)));
    }

    /// Called with each CSeq a dialog sends: when it reaches the stored reservation, the row
    /// is written again with the next one.
    pub(super) fn cseq_used(&mut self, now: Instant, sid: SubId, cseq: u32) {
        if cseq.is_multiple_of(CSEQ_RESERVATION) {
            self.persist_sub(now, sid);
        }
    }

    /// Queues the deletion of ended subscription `sub`'s row (when it had one: the runtime
    /// skips rows it never stored) and forgets its restored tag.
    pub(super) fn unpersist(&mut self, sid: SubId, sub: &Sub<F>) {
        let tag = match sub.dialog().local_tag {
            Some(t) => {
                self.restored_tags.remove(t);
                t.to_owned()
            }
            None => self.tag_of_slot(sid),
        };
        if !self.config.persist_subscriptions {
            return;
        }
        self.changes.push_back(SubscriptionChange::Delete(tag));
    }
}
