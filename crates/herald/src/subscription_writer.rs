//! Stores acknowledged subscription dialogs before the answers and notifications that depend
//! on them leave, with group commit, off the presence thread.
//!
//! The presence thread collects what one input made the engine decide into a [`Unit`]: the
//! reply to a request, the NOTIFY / BENOTIFY requests, and the changes to the stored dialogs
//! (see `herald_presence::engine::persist`). A unit without changes goes straight out, unless
//! units are still waiting here: then it queues behind them, so the wire order is always the
//! engine's (a 200 before its first NOTIFY, CSeqs in order). This thread takes every unit that
//! has queued, writes all their changes in one transaction (one log write for the batch), and
//! only then sends each unit's replies and requests in order. A 200 for a new subscription is
//! therefore never sent before its dialog is stored, while the presence thread goes on
//! deciding the next inputs during the write.
//!
//! If the store fails, a unit's new dialogs are answered 500 instead of 200 and the engine is
//! told to forget them; refreshes keep their 200 (the stored row keeps its older expiry, so the
//! worst a restart then does is end that dialog early, which the subscriber recovers from).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Weak};

use herald_directory::SubscriptionStore;
use herald_frontend::ReplyTo;
use herald_presence::engine::{Outbound, OutboundKind, SubscriptionChange};
use herald_sip::ResponseBuilder;

use crate::group_commit::next_batch;
use crate::presence_runtime::{Input, PresenceHandle};
use crate::sip_runtime::SipRuntime;
use crate::transport::Flow;

/// Units written in one transaction at most; a longer queue is written in several.
const MAX_BATCH: usize = 1024;

/// A reply held until its unit is stored.
pub(crate) struct HeldReply {
    pub(crate) shard: usize,
    pub(crate) reply_to: ReplyTo,
    pub(crate) response: ResponseBuilder,
    /// The engine set the To tag (a new dialog): its tag, and the 500 to send instead if the
    /// dialog cannot be stored.
    pub(crate) dialog: Option<(String, ResponseBuilder)>,
    pub(crate) tagged: bool,
}

/// What one input to the presence thread produced, in the order it must reach the wire.
#[derive(Default)]
pub(crate) struct Unit {
    pub(crate) changes: Vec<SubscriptionChange<String>>,
    pub(crate) replies: Vec<HeldReply>,
    pub(crate) outbound: Vec<Outbound<Flow>>,
}

impl Unit {
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.replies.is_empty() && self.outbound.is_empty()
    }
}

/// The presence thread's handle on the writer.
pub(crate) struct Writer {
    tx: Sender<Unit>,
    /// Units handed over and not yet sent out.
    in_flight: Arc<AtomicUsize>,
}

impl Writer {
    /// Sends `unit` out now if nothing needs storing and nothing is queued ahead of it;
    /// otherwise queues it for the writer thread.
    pub(crate) fn submit(&self, sip: &SipRuntime, unit: Unit) {
        if unit.changes.is_empty() && self.in_flight.load(Ordering::Acquire) == 0 {
            deliver(sip, unit, true);
            return;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.tx.send(unit) {
            // The writer is gone (shutting down): send without storing.
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            deliver(sip, e.0, true);
        }
    }
}

/// Starts the writer thread for pool member `server` ("" alone); it stops when the presence
/// thread drops its [`Writer`].
pub(crate) fn start(
    store: Arc<dyn SubscriptionStore>,
    server: String,
    sip: Weak<SipRuntime>,
    presence: PresenceHandle,
) -> std::io::Result<Writer> {
    let (tx, rx) = std::sync::mpsc::channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let counter = in_flight.clone();
    std::thread::Builder::new()
        .name("subscriptions".into())
        .spawn(move || run(store.as_ref(), &server, &sip, &presence, &rx, &counter))?;
    Ok(Writer { tx, in_flight })
}

fn run(
    store: &dyn SubscriptionStore,
    server: &str,
    sip: &Weak<SipRuntime>,
    presence: &PresenceHandle,
    rx: &Receiver<Unit>,
    in_flight: &AtomicUsize,
) {
    let commits = metrics::counter!("herald_subscription_commits_total");
    let failures = metrics::counter!("herald_subscription_commit_failures_total");
    while let Some(mut batch) = next_batch(rx, MAX_BATCH) {
        let changes: Vec<SubscriptionChange<String>> = batch
            .iter_mut()
            .flat_map(|u| std::mem::take(&mut u.changes))
            .collect();
        let stored = changes.is_empty()
            || {
                commits.increment(1);
                match store.save_subscriptions(server, &changes) {
                    Ok(()) => true,
                    Err(e) => {
                        failures.increment(1);
                        tracing::error!(error = %e, count = changes.len(), "subscriptions not stored; new ones answered 500");
                        false
                    }
                }
            };
        let Some(sip) = sip.upgrade() else { return };
        let count = batch.len();
        for unit in batch {
            if !stored {
                let forget: Vec<String> = unit
                    .replies
                    .iter()
                    .filter_map(|r| r.dialog.as_ref().map(|(tag, _)| tag.clone()))
                    .collect();
                if !forget.is_empty() {
                    presence.send(Input::Forget(forget));
                }
            }
            deliver(&sip, unit, stored);
        }
        in_flight.fetch_sub(count, Ordering::AcqRel);
    }
}

/// Sends a unit's replies, then its requests. `stored`: whether its changes were stored (if
/// not, new dialogs get their 500).
pub(crate) fn deliver(sip: &SipRuntime, unit: Unit, stored: bool) {
    for r in unit.replies {
        match r.dialog {
            Some((_, failed)) if !stored => sip.respond(r.shard, r.reply_to, failed, false),
            _ => sip.respond(r.shard, r.reply_to, r.response, r.tagged),
        }
    }
    for out in unit.outbound {
        let Outbound {
            flow,
            kind,
            request,
        } = out;
        match kind {
            OutboundKind::Notify(id) => sip.send_notify(flow, &request, id),
            OutboundKind::Benotify => sip.send_unanswered(flow, &request),
            _ => {}
        }
    }
}
