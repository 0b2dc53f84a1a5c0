//! The tokio side of the SIP service: feeds the [`Frontend`] core and writes what it returns.
//!
//! The core sits behind one mutex held only for the (microseconds-long) calls into it; nothing
//! awaits while holding it. Directory lookups run on the blocking pool and re-enter the core
//! when they finish. One timer task sleeps until the core's next deadline.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use herald_directory::Directory;
use herald_frontend::{Frontend, FrontendEvent, Lookup, Step, Transmit};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::transport::{Flow, Handler, Inbound, Transports};
use crate::user_cache::UserCache;

/// The SIP service's runtime state.
pub(crate) struct SipRuntime {
    core: Mutex<Frontend<Flow>>,
    limits: herald_sip::Limits,
    directory: Arc<dyn Directory>,
    users: Arc<UserCache>,
    transports: OnceLock<Arc<Transports>>,
    /// Wakes the timer task when an input may have moved the next deadline earlier.
    wake: Notify,
}

impl SipRuntime {
    pub(crate) fn new(
        core: Frontend<Flow>,
        limits: herald_sip::Limits,
        directory: Arc<dyn Directory>,
    ) -> Arc<Self> {
        Arc::new(Self {
            core: Mutex::new(core),
            limits,
            users: UserCache::new(),
            directory,
            transports: OnceLock::new(),
            wake: Notify::new(),
        })
    }

    /// Connects the runtime to the started transports; messages are only sent after this.
    pub(crate) fn attach(&self, transports: Arc<Transports>) {
        let _ = self.transports.set(transports);
    }

    /// Keeps the directory cache in step with the store; run for the life of the process.
    pub(crate) async fn run_cache(self: Arc<Self>) {
        self.users.clone().watch(self.directory.clone()).await;
    }

    /// Runs the core's timers for the life of the process.
    pub(crate) async fn run_timers(self: Arc<Self>) {
        loop {
            let deadline = self.core.lock().poll_timeout();
            match deadline {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {
                            self.with_core(|core| core.handle_timeout(Instant::now()));
                        }
                        () = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// Calls into the core, then writes out everything it queued, outside the lock.
    fn with_core<R>(&self, f: impl FnOnce(&mut Frontend<Flow>) -> R) -> R {
        let mut out: Vec<Transmit<Flow>> = Vec::new();
        let result = {
            let mut core = self.core.lock();
            let result = f(&mut core);
            while let Some(t) = core.poll_transmit() {
                out.push(t);
            }
            while let Some(event) = core.poll_event() {
                log_event(&event);
            }
            let registrar = core.registrar();
            metrics::gauge!("herald_registered_users").set(registrar.aor_count() as f64);
            metrics::gauge!("herald_registrations").set(registrar.binding_count() as f64);
            metrics::gauge!("herald_transactions").set(core.transaction_count() as f64);
            result
        };
        if let Some(transports) = self.transports.get() {
            for t in out {
                if let Err(e) = transports.send(t.flow, t.bytes) {
                    tracing::debug!(flow = ?t.flow, error = %e, "send failed");
                }
            }
        }
        self.wake.notify_one();
        result
    }

    fn lookup(self: &Arc<Self>, lookup: Lookup<Flow>) {
        if let Some(user) = self.users.get(lookup.user()) {
            metrics::counter!("herald_directory_lookups_total", "source" => "cache").increment(1);
            self.with_core(|core| {
                core.complete_lookup(Instant::now(), lookup, Ok::<_, String>(user));
            });
            return;
        }
        metrics::counter!("herald_directory_lookups_total", "source" => "store").increment(1);
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
            me.with_core(|core| core.complete_lookup(Instant::now(), lookup, result));
        });
    }
}

impl Handler for SipRuntime {
    fn on_message(self: &Arc<Self>, inbound: Inbound) {
        let transport = match inbound.kind {
            crate::transport::TransportKind::Udp => herald_sip::Transport::Datagram,
            _ => herald_sip::Transport::Stream,
        };
        let inbound = herald_frontend::Inbound {
            flow: inbound.flow,
            transport,
            peer: inbound.peer,
            // Parsing needs no shared state: done before the lock is taken.
            payload: inbound.payload.parse_datagram(&self.limits),
        };
        let step = self.with_core(|core| core.handle_inbound(Instant::now(), inbound));
        match step {
            Step::Done => {}
            Step::Lookup(lookup) => self.lookup(*lookup),
            Step::Close(flow) => {
                if let Some(t) = self.transports.get() {
                    t.close(flow);
                }
            }
        }
    }

    fn on_flow_closed(self: &Arc<Self>, flow: Flow) {
        self.with_core(|core| core.flow_closed(Instant::now(), &flow));
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
