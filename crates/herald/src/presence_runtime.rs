//! The presence service's thread: owns the [`Engine`], takes requests, registrar events and
//! NOTIFY outcomes from the SIP pipeline's shards, and sends what the engine decides.
//!
//! The engine is one state for the whole server (a presentity's watchers come from every
//! shard), so it runs on one OS thread of its own that the shards feed through a channel: no
//! lock around it, and the store writes it makes before a 200 (issue 3 point 7) never stall a
//! tokio worker. Ordering holds where it matters: one shard's inputs arrive in the order the
//! shard produced them, and a request's reply is handed back to its shard before any NOTIFY the
//! request caused is started, so the 200 precedes the first NOTIFY on the wire.
//!
//! What one input produces (replies, NOTIFY / BENOTIFY requests, changes to the stored
//! subscription dialogs) goes out as one unit through [`subscription_writer`]: at once when
//! nothing needs storing, else after the writer thread has committed it (with whatever else
//! queued meanwhile), so a subscription's 200 never precedes its stored row. At start-up the
//! dialogs a previous run stored come back through [`Input::Restore`].

use std::collections::HashSet;
use std::sync::Weak;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use herald_frontend::{FlowPath, ServiceRequest};
use herald_presence::Timestamp;
use herald_presence::categories::roaming::{ContactList, GroupId};
use herald_presence::engine::{
    AuthenticatedRequest, ContactError, EndpointKey, Engine, NotifyId, PresenceReport,
    RegistrarEvent, StoredSubscription, SubscriptionChange,
};
use herald_registrar::Aor;
use herald_sip::{Method, Response};
use tokio::sync::oneshot;

use crate::sip_runtime::SipRuntime;
use crate::subscription_writer::{self, HeldReply, Unit, Writer};
use crate::transport::Flow;

/// Inputs queued for the presence thread before requests are refused with 503: a burst of
/// several seconds at the rates the engine sustains.
const QUEUE: usize = 65_536;
const THREAD_NAME: &str = "presence";

/// What the presence thread is asked to do.
pub(crate) enum Input {
    /// A PUBLISH, SUBSCRIBE or SERVICE from shard `shard`.
    Request {
        shard: usize,
        request: Box<ServiceRequest<Flow>>,
    },
    /// A registration changed.
    Registrar(RegistrarEvent<Flow>),
    /// A NOTIFY's client transaction ended with `status` (408 for a timeout).
    Outcome { id: NotifyId, status: u16 },
    /// An admin query or change.
    Admin(AdminCommand),
    /// The subscription writer is attached: from now on dialog changes are stored.
    AttachWriter(Writer),
    /// Subscription dialogs a previous run stored, to restore (after the registrations).
    Restore(Vec<StoredSubscription<String>>),
    /// New dialogs the writer could not store (their SUBSCRIBE was answered 500): end them.
    Forget(Vec<String>),
}

/// Admin requests answered by the thread (the `herald presence` and `herald contact`
/// commands reach these through the admin listener).
pub(crate) enum AdminCommand {
    Report {
        user: Aor,
        reply: oneshot::Sender<Option<PresenceReport>>,
    },
    Contacts {
        user: Aor,
        reply: oneshot::Sender<Result<ContactList, String>>,
    },
    AddContact {
        user: Aor,
        contact: Aor,
        name: Option<String>,
        group: Option<GroupId>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    RemoveContact {
        user: Aor,
        contact: Aor,
        reply: oneshot::Sender<Result<bool, String>>,
    },
}

/// The shards' handle on the presence thread.
#[derive(Clone)]
pub(crate) struct PresenceHandle {
    tx: SyncSender<Input>,
}

impl PresenceHandle {
    /// Queues a request; `Err` gives it back when the thread is overloaded (answer 503).
    pub(crate) fn request(
        &self,
        shard: usize,
        request: Box<ServiceRequest<Flow>>,
    ) -> Result<(), Box<ServiceRequest<Flow>>> {
        match self.tx.try_send(Input::Request { shard, request }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Input::Request { request, .. })) => Err(request),
            Err(TrySendError::Disconnected(Input::Request { request, .. })) => Err(request),
            Err(_) => Ok(()),
        }
    }

    /// Queues an input that must not be lost (registrar events, NOTIFY outcomes): waits for
    /// room when the queue is full. Callers hold no shard lock, so the wait cannot deadlock;
    /// the presence thread itself (which reaches the shards to send) never waits on its own
    /// queue: what it cannot queue is dropped, and the engine's own NOTIFY bookkeeping
    /// times it out.
    pub(crate) fn send(&self, input: Input) {
        if std::thread::current().name() == Some(THREAD_NAME) {
            let _ = self.tx.try_send(input);
        } else {
            let _ = self.tx.send(input);
        }
    }

    /// Asks the thread something for the admin listener.
    pub(crate) async fn admin(&self, command: AdminCommand) -> bool {
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || tx.send(Input::Admin(command)).is_ok())
            .await
            .unwrap_or(false)
    }
}

/// Starts the presence thread around `engine`. It stops when every handle is dropped.
pub(crate) fn start(
    engine: Engine<Flow>,
    sip: Weak<SipRuntime>,
) -> std::io::Result<PresenceHandle> {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let tokio = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            // Sends may spawn a tokio task (a UDP socket that would block), so the thread runs
            // inside the runtime's context.
            let _guard = tokio.enter();
            PresenceThread {
                engine,
                sip,
                writer: None,
                stored: HashSet::new(),
            }
            .run(&rx);
        })?;
    Ok(PresenceHandle { tx })
}

struct PresenceThread {
    engine: Engine<Flow>,
    sip: Weak<SipRuntime>,
    /// Where dialog changes go to be stored before what depends on them is sent; `None` until
    /// attached (and in runs without a store): everything is sent at once.
    writer: Option<Writer>,
    /// Local tags of the dialogs with a stored row, so that ending a dialog that never had one
    /// (a TCP or TLS subscriber's) costs no write.
    stored: HashSet<String>,
}

impl PresenceThread {
    fn run(mut self, rx: &Receiver<Input>) {
        let gauge = metrics::gauge!("herald_presence_subscriptions");
        let users = metrics::gauge!("herald_presence_users");
        loop {
            let input = match self.engine.poll_timeout() {
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(input) => Some(input),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(input) => Some(input),
                    Err(_) => break,
                },
            };
            let Some(sip) = self.sip.upgrade() else { break };
            let now = Instant::now();
            let mut unit = Unit::default();
            if let Some(input) = input {
                self.handle(now, &sip, input, &mut unit);
            }
            if self.engine.poll_timeout().is_some_and(|at| at <= now) {
                self.engine.handle_timeout(now);
            }
            while let Some(out) = self.engine.poll_outbound() {
                unit.outbound.push(out);
            }
            self.collect_changes(&mut unit);
            if !unit.is_empty() {
                match &self.writer {
                    Some(w) => w.submit(&sip, unit),
                    None => subscription_writer::deliver(&sip, unit, true),
                }
            }
            gauge.set(self.engine.subscription_count() as f64);
            users.set(self.engine.user_count() as f64);
        }
        tracing::debug!("presence thread stopped");
    }

    fn handle(&mut self, now: Instant, sip: &SipRuntime, input: Input, unit: &mut Unit) {
        match input {
            Input::Request { shard, request } => {
                let ServiceRequest {
                    reply_to,
                    request,
                    user,
                    flow,
                } = *request;
                let endpoint = EndpointKey::from_request(&request);
                let contact = sip.contact_for(flow);
                // What a new dialog gets instead of its 200 if it cannot be stored.
                let failed = (self.writer.is_some()
                    && request.method() == &Method::Subscribe
                    && request.to().tag().is_none())
                .then(|| Response::for_request(&request, 500, "Server Internal Error"));
                let reply = self.engine.handle_request(
                    now,
                    AuthenticatedRequest {
                        request,
                        user,
                        flow,
                        endpoint,
                        contact,
                    },
                );
                let tagged = reply.dialog_tag.is_some();
                unit.replies.push(HeldReply {
                    shard,
                    reply_to,
                    response: reply.response,
                    dialog: reply.dialog_tag.zip(failed),
                    tagged,
                });
            }
            Input::AttachWriter(writer) => self.writer = Some(writer),
            Input::Restore(rows) => self.restore(now, rows, unit),
            Input::Forget(tags) => {
                for tag in tags {
                    self.engine.forget_subscription(now, &tag);
                }
            }
            Input::Registrar(event) => self.engine.on_registrar_event(now, event),
            Input::Outcome { id, status } => {
                if status == 408 || status == 503 {
                    self.engine.on_notify_timeout(now, id);
                } else {
                    self.engine.on_notify_response(now, id, status);
                }
            }
            Input::Admin(command) => self.admin(now, command),
        }
    }

    /// Restores the dialogs a previous run stored; rows that cannot be restored (expired,
    /// subscriber not signed in again, flow gone) are deleted.
    fn restore(&mut self, now: Instant, rows: Vec<StoredSubscription<String>>, unit: &mut Unit) {
        let (mut restored, mut dropped) = (0usize, 0usize);
        for row in rows {
            let tag = row.local_tag.clone();
            let result = match row.map_flow(|f| Flow::from_persistent(f)) {
                Some(row) => self
                    .engine
                    .restore_subscription(now, row)
                    .map_err(|e| e.to_string()),
                None => Err("flow cannot be rebuilt".to_owned()),
            };
            match result {
                Ok(()) => {
                    restored += 1;
                    self.stored.insert(tag);
                }
                Err(e) => {
                    dropped += 1;
                    tracing::debug!(%tag, reason = %e, "stored subscription not restored");
                    unit.changes.push(SubscriptionChange::Delete(tag));
                }
            }
        }
        tracing::info!(restored, dropped, "restored stored subscriptions");
    }

    /// Moves the engine's dialog changes into `unit` in stored form: rows whose flow will not
    /// survive a restart are not stored (and removed if they were), deletions of rows never
    /// stored are skipped.
    fn collect_changes(&mut self, unit: &mut Unit) {
        while let Some(change) = self.engine.poll_subscription_change() {
            match change {
                SubscriptionChange::Put(row) => {
                    let tag = row.local_tag.clone();
                    match row.map_flow(FlowPath::persistent) {
                        Some(row) => {
                            self.stored.insert(tag);
                            unit.changes.push(SubscriptionChange::Put(Box::new(row)));
                        }
                        None => {
                            if self.stored.remove(&tag) {
                                unit.changes.push(SubscriptionChange::Delete(tag));
                            }
                        }
                    }
                }
                SubscriptionChange::Delete(tag) => {
                    if self.stored.remove(&tag) {
                        unit.changes.push(SubscriptionChange::Delete(tag));
                    }
                }
            }
        }
    }

    fn admin(&mut self, now: Instant, command: AdminCommand) {
        match command {
            AdminCommand::Report { user, reply } => {
                let _ = reply.send(self.engine.report(now, &user));
            }
            AdminCommand::Contacts { user, reply } => {
                let list = self
                    .engine
                    .contact_list(now, &user)
                    .map_err(|e| e.to_string());
                let _ = reply.send(list);
            }
            AdminCommand::AddContact {
                user,
                contact,
                name,
                group,
                reply,
            } => {
                let r = self
                    .engine
                    .add_contact(now, &user, &contact, name.as_deref(), group)
                    .map_err(|e: ContactError| e.to_string());
                let _ = reply.send(r);
            }
            AdminCommand::RemoveContact {
                user,
                contact,
                reply,
            } => {
                let r = self
                    .engine
                    .remove_contact(now, &user, &contact)
                    .map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
        }
    }
}

/// The wall clock as the engine stamps documents with it.
pub(crate) fn wall_clock() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    Timestamp::from_unix_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}
