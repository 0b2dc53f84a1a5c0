//! The tokio side of the SIP service: feeds the [`Frontend`] cores and writes what they return.
//!
//! The pipeline is sharded by user: a message goes to the core of the address it is about (the
//! To of a REGISTER, the From of anything else), so one user's registrations, transactions and
//! nonce counts live in one core and the shards never talk to each other. Each core sits
//! behind its own mutex held only for the (microseconds-long) calls into it; nothing awaits
//! while holding one. With one shard per worker thread the request path uses every core.
//! Directory lookups are answered from the [`UserCache`] or run on the blocking pool and
//! re-enter the same core when they finish. One timer task per core sleeps until its next
//! deadline.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use herald_directory::Directory;
use herald_frontend::{
    Frontend, FrontendEvent, Lookup, Payload, RegistrarEvent, ReplyTo, ServiceRequest, Step,
    Transmit,
};
use herald_presence::engine::{NotifyId, OutboundRequest};
use herald_sip::{HeaderName, Message, Method, Response, ResponseBuilder};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::presence_runtime::{Input, PresenceHandle};
use crate::registration_writer::Pending;
use crate::transport::{Flow, Handler, Inbound, Transports};
use crate::user_cache::UserCache;

/// Every branch of a request herald originates starts with this and the number of the shard
/// whose client transaction sent it, so its responses find their way back to that shard.
const BRANCH_PREFIX: &str = "z9hG4bKh";

/// One core and the wake-up of its timer task.
struct Shard {
    core: Mutex<Frontend<Flow>>,
    /// Wakes the timer task when an input may have moved the next deadline earlier.
    wake: Notify,
}

/// The SIP service's runtime state.
pub(crate) struct SipRuntime {
    shards: Vec<Shard>,
    limits: herald_sip::Limits,
    directory: Arc<dyn Directory>,
    users: Arc<UserCache>,
    cache_hits: metrics::Counter,
    cache_misses: metrics::Counter,
    transports: OnceLock<Arc<Transports>>,
    presence: OnceLock<PresenceHandle>,
    registrations: OnceLock<std::sync::mpsc::Sender<Pending>>,
    /// Spreads the NOTIFY client transactions over the shards.
    next_notify_shard: AtomicUsize,
}

impl SipRuntime {
    /// `cores` must share one Digest secret and epoch, so that any core verifies any nonce.
    pub(crate) fn new(
        cores: Vec<Frontend<Flow>>,
        limits: herald_sip::Limits,
        directory: Arc<dyn Directory>,
    ) -> Arc<Self> {
        Arc::new(Self {
            shards: cores
                .into_iter()
                .map(|core| Shard {
                    core: Mutex::new(core),
                    wake: Notify::new(),
                })
                .collect(),
            limits,
            users: UserCache::new(),
            cache_hits: metrics::counter!("herald_directory_lookups_total", "source" => "cache"),
            cache_misses: metrics::counter!("herald_directory_lookups_total", "source" => "store"),
            directory,
            transports: OnceLock::new(),
            presence: OnceLock::new(),
            registrations: OnceLock::new(),
            next_notify_shard: AtomicUsize::new(0),
        })
    }

    /// Connects the runtime to the started transports; messages are only sent after this.
    pub(crate) fn attach(&self, transports: Arc<Transports>) {
        let _ = self.transports.set(transports);
    }

    /// Connects the presence service; PUBLISH, SUBSCRIBE and SERVICE are answered 503 before.
    pub(crate) fn attach_presence(&self, presence: PresenceHandle) {
        let _ = self.presence.set(presence);
    }

    /// Connects the registration store's writer; REGISTERs that change bindings are answered
    /// once it has stored them.
    pub(crate) fn attach_registrations(&self, writer: std::sync::mpsc::Sender<Pending>) {
        let _ = self.registrations.set(writer);
    }

    /// Re-creates the bindings a previous run stored, each in the shard its user belongs to.
    /// Users homed on another member of the pool are left to it. Returns how many users'
    /// bindings were restored.
    pub(crate) fn restore(&self, stored: &[herald_directory::StoredRegistrations]) -> usize {
        let mut restored = 0;
        for user in stored {
            let aor = &user.aor;
            let shard = self.shard_for(aor.user(), aor.domain().as_str());
            self.with_core(shard, |core| {
                if core.is_home(aor, user.home.as_deref()) {
                    restored += 1;
                    for b in &user.bindings {
                        core.restore(Instant::now(), aor, b);
                    }
                }
            });
        }
        restored
    }

    /// Our Contact as reached over `flow` (see [`Transports::contact`]).
    pub(crate) fn contact_for(&self, flow: Flow) -> Option<Arc<str>> {
        self.transports.get()?.contact(flow)
    }

    /// Sends the presence service's answer to a request that shard `shard` handed over.
    pub(crate) fn respond(
        &self,
        shard: usize,
        reply_to: ReplyTo,
        response: ResponseBuilder,
        dialog_tag_set: bool,
    ) {
        self.with_core(shard, |core| {
            core.respond(Instant::now(), reply_to, response, dialog_tag_set);
        });
    }

    /// Sends several held answers of one shard under one lock of its core.
    pub(crate) fn respond_all(
        &self,
        shard: usize,
        answers: impl IntoIterator<Item = (ReplyTo, ResponseBuilder)>,
    ) {
        self.with_core(shard, |core| {
            let now = Instant::now();
            for (reply_to, response) in answers {
                core.respond(now, reply_to, response, false);
            }
        });
    }

    /// Starts a NOTIFY's client transaction on some shard; its outcome is reported to the
    /// presence service as `id`.
    pub(crate) fn send_notify(&self, flow: Flow, request: &OutboundRequest, id: NotifyId) {
        let Some(transports) = self.transports.get() else {
            return;
        };
        let shard = self.next_notify_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let branch = format!("{BRANCH_PREFIX}{shard}x{:016x}", rand::random::<u64>());
        let bytes = request.with_via(&transports.via(flow, &branch));
        let started = self.with_core(shard, |core| {
            core.send_request(
                Instant::now(),
                flow,
                &branch,
                request.method(),
                bytes,
                id.get(),
            )
        });
        if let Err(e) = started {
            tracing::debug!(error = %e, "NOTIFY not sent");
            if let Some(p) = self.presence.get() {
                p.send(Input::Outcome { id, status: 503 });
            }
        }
    }

    /// Sends a request nobody answers (BENOTIFY, MS-SIP §3.5) once, outside any transaction,
    /// through a core so it is signed for clients with an NTLM security association.
    pub(crate) fn send_unanswered(&self, flow: Flow, request: &OutboundRequest) {
        let Some(transports) = self.transports.get() else {
            return;
        };
        let shard = self.next_notify_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let branch = format!("{BRANCH_PREFIX}x{:016x}", rand::random::<u64>());
        let bytes = request.with_via(&transports.via(flow, &branch));
        self.with_core(shard, |core| core.send_unanswered(flow, bytes));
    }

    /// Starts the background tasks: a timer per core, the gauges, the directory cache.
    pub(crate) fn spawn_tasks(self: &Arc<Self>) {
        for shard in 0..self.shards.len() {
            tokio::spawn(self.clone().run_timers(shard));
        }
        tokio::spawn(self.clone().run_gauges());
        tokio::spawn(self.users.clone().watch(self.directory.clone()));
    }

    /// Publishes the gauges once a second (not per message: they read shared state).
    async fn run_gauges(self: Arc<Self>) {
        let users = metrics::gauge!("herald_registered_users");
        let bindings = metrics::gauge!("herald_registrations");
        let transactions = metrics::gauge!("herald_transactions");
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let (mut u, mut b, mut t) = (0, 0, 0);
            for shard in &self.shards {
                let core = shard.core.lock();
                let r = core.registrar();
                u += r.aor_count();
                b += r.binding_count();
                t += core.transaction_count();
            }
            users.set(u as f64);
            bindings.set(b as f64);
            transactions.set(t as f64);
        }
    }

    /// Runs one core's timers for the life of the process.
    async fn run_timers(self: Arc<Self>, shard: usize) {
        let Some(s) = self.shards.get(shard) else {
            return;
        };
        loop {
            let deadline = s.core.lock().poll_timeout();
            match deadline {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {
                            self.with_core(shard, |core| core.handle_timeout(Instant::now()));
                        }
                        () = s.wake.notified() => {}
                    }
                }
                None => s.wake.notified().await,
            }
        }
    }

    /// Calls into one core, then writes out everything it queued, outside the lock.
    fn with_core<R>(&self, shard: usize, f: impl FnOnce(&mut Frontend<Flow>) -> R) -> R {
        let s = &self.shards[shard];
        let mut out: Vec<Transmit<Flow>> = Vec::new();
        let mut events: Vec<FrontendEvent<Flow>> = Vec::new();
        let result = {
            let mut core = s.core.lock();
            let result = f(&mut core);
            while let Some(t) = core.poll_transmit() {
                out.push(t);
            }
            while let Some(event) = core.poll_event() {
                events.push(event);
            }
            result
        };
        if let Some(transports) = self.transports.get() {
            for t in out {
                if let Err(e) = transports.send(t.flow, t.bytes) {
                    tracing::debug!(flow = ?t.flow, error = %e, "send failed");
                }
            }
        }
        s.wake.notify_one();
        for event in events {
            self.on_event(shard, event);
        }
        result
    }

    /// Passes what a core reported on to the presence service (outside the core's lock).
    fn on_event(&self, shard: usize, event: FrontendEvent<Flow>) {
        let presence = self.presence.get();
        match event {
            FrontendEvent::Registrar(e) => {
                log_event(&e);
                // Most REGISTERs are refreshes that change nothing presence keeps; skipping them
                // spares the presence thread a wake-up per REGISTER.
                if matches!(e, RegistrarEvent::EndpointRefreshed { moved: false, .. }) {
                    return;
                }
                if let Some(p) = presence {
                    p.send(Input::Registrar(e));
                }
            }
            FrontendEvent::Service(request) => {
                let refused = match presence {
                    Some(p) => p.request(shard, request).err(),
                    None => Some(request),
                };
                if let Some(refused) = refused {
                    let ServiceRequest {
                        reply_to, request, ..
                    } = *refused;
                    let r = Response::for_request(&request, 503, "Service Unavailable")
                        .header(HeaderName::RetryAfter, "5");
                    self.respond(shard, reply_to, r, false);
                }
            }
            FrontendEvent::Persist(registration) => {
                let pending = Pending {
                    shard,
                    registration,
                };
                let refused = match self.registrations.get() {
                    Some(writer) => writer.send(pending).err().map(|e| e.0),
                    None => Some(pending),
                };
                if let Some(p) = refused {
                    let r = *p.registration;
                    self.respond(shard, r.reply_to, r.failed, false);
                }
            }
            FrontendEvent::RequestOutcome { token, status } => {
                if let Some(p) = presence {
                    p.send(Input::Outcome {
                        id: NotifyId::from_raw(token),
                        status,
                    });
                }
            }
            _ => {}
        }
    }

    fn lookup(self: &Arc<Self>, shard: usize, lookup: Lookup<Flow>) {
        if let Some(user) = self.users.get(lookup.user()) {
            self.cache_hits.increment(1);
            self.with_core(shard, |core| {
                core.complete_lookup(Instant::now(), lookup, Ok::<_, String>(user));
            });
            return;
        }
        self.cache_misses.increment(1);
        let me = self.clone();
        tokio::spawn(async move {
            let directory = me.directory.clone();
            let aor = lookup.user().clone();
            let token = me.users.token();
            let read = aor.clone();
            let result = tokio::task::spawn_blocking(move || directory.get_user(&read))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            if let Ok(user) = &result {
                me.users.put(aor, user.clone(), token);
            }
            me.with_core(shard, |core| {
                core.complete_lookup(Instant::now(), lookup, result)
            });
        });
    }

    /// The core a message belongs to: by the address it is about, so every message of one
    /// user (and every retransmission) reaches the same core. Unparseable input goes to the
    /// first core, which only answers it statelessly.
    fn shard_of(&self, payload: &Payload) -> usize {
        let n = self.shards.len();
        if n == 1 {
            return 0;
        }
        let Payload::Parsed(message) = payload else {
            return 0;
        };
        if let Message::Response(r) = message.as_ref() {
            // Responses to our own requests go to the shard whose transaction sent them.
            return r
                .top_via()
                .branch()
                .and_then(|b| b.strip_prefix(BRANCH_PREFIX))
                .and_then(|rest| rest.split_once('x'))
                .and_then(|(shard, _)| shard.parse::<usize>().ok())
                .filter(|s| *s < n)
                .unwrap_or(0);
        }
        let about = match message.as_ref() {
            Message::Request(r) if matches!(r.method(), Method::Register) => r.to(),
            m => m.from(),
        };
        match about.uri().sip() {
            Some(uri) => self.shard_for(uri.user().unwrap_or_default(), uri.host_str()),
            None => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                about.uri().as_bytes().hash(&mut hasher);
                usize::try_from(hasher.finish() % n as u64).unwrap_or(0)
            }
        }
    }

    /// The shard of the user `user@host` (both compared without case).
    fn shard_for(&self, user: &str, host: &str) -> usize {
        let n = self.shards.len();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        user.to_ascii_lowercase().hash(&mut hasher);
        host.to_ascii_lowercase().hash(&mut hasher);
        usize::try_from(hasher.finish() % n as u64).unwrap_or(0)
    }
}

impl Handler for SipRuntime {
    fn on_message(self: &Arc<Self>, inbound: Inbound) {
        let transport = match inbound.kind {
            crate::transport::TransportKind::Udp => herald_sip::Transport::Datagram,
            _ => herald_sip::Transport::Stream,
        };
        // Parsing needs no shared state: done before any lock is taken.
        let payload = inbound.payload.parse_datagram(&self.limits);
        let shard = self.shard_of(&payload);
        let inbound = herald_frontend::Inbound {
            flow: inbound.flow,
            transport,
            peer: inbound.peer,
            payload,
        };
        let step = self.with_core(shard, |core| core.handle_inbound(Instant::now(), inbound));
        match step {
            Step::Done => {}
            Step::Lookup(lookup) => self.lookup(shard, *lookup),
            Step::Close(flow) => {
                if let Some(t) = self.transports.get() {
                    t.close(flow);
                }
            }
        }
    }

    fn on_flow_closed(self: &Arc<Self>, flow: Flow) {
        for shard in 0..self.shards.len() {
            self.with_core(shard, |core| core.flow_closed(Instant::now(), &flow));
        }
    }
}

fn log_event(e: &RegistrarEvent<Flow>) {
    use RegistrarEvent as E;
    match e {
        E::EndpointRegistered { aor, endpoint, .. } => {
            metrics::counter!("herald_registrations_total").increment(1);
            tracing::info!(user = %aor.as_str(), contact = %endpoint.contact, "registered");
        }
        E::EndpointRemoved {
            aor,
            endpoint,
            reason,
            ..
        } => {
            tracing::info!(user = %aor.as_str(), contact = %endpoint.contact, ?reason, "unregistered");
        }
        E::AorOffline { aor } => tracing::debug!(user = %aor.as_str(), "offline"),
        _ => {}
    }
}
