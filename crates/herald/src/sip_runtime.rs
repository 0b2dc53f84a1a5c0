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
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use herald_directory::Directory;
use herald_frontend::{Frontend, FrontendEvent, Lookup, Payload, Step, Transmit};
use herald_sip::{Message, Method};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::transport::{Flow, Handler, Inbound, Transports};
use crate::user_cache::UserCache;

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
        })
    }

    /// Connects the runtime to the started transports; messages are only sent after this.
    pub(crate) fn attach(&self, transports: Arc<Transports>) {
        let _ = self.transports.set(transports);
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
        let result = {
            let mut core = s.core.lock();
            let result = f(&mut core);
            while let Some(t) = core.poll_transmit() {
                out.push(t);
            }
            while let Some(event) = core.poll_event() {
                log_event(&event);
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
        result
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
        let about = match message.as_ref() {
            Message::Request(r) if matches!(r.method(), Method::Register) => r.to(),
            m => m.from(),
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        match about.uri().sip() {
            Some(uri) => {
                uri.user()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
                    .hash(&mut hasher);
                uri.host_str().to_ascii_lowercase().hash(&mut hasher);
            }
            None => about.uri().as_bytes().hash(&mut hasher),
        }
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

fn log_event(event: &FrontendEvent<Flow>) {
    use herald_frontend::RegistrarEvent as E;
    let FrontendEvent::Registrar(e) = event else {
        return;
    };
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
