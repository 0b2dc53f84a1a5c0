//! Stores acknowledged registrations before their 200 OK leaves, with group commit.
//!
//! The shards hand every REGISTER that changed a user's bindings to one writer thread with the
//! answer held back. The thread takes whatever has queued up, writes it all in one transaction
//! (one disk sync for the whole batch), and only then lets each shard send its 200 OK; if the
//! store fails, each gets its 500 instead. A burst of thousands of registrations a second thus
//! costs a few syncs a second, and a 200 OK always means the binding survives a restart.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Weak};

use herald_directory::{Aor, RegistrationStore, StoredBinding};
use herald_frontend::{PersistRegistration, ReplyTo};
use herald_sip::ResponseBuilder;

use crate::group_commit::next_batch;
use crate::sip_runtime::SipRuntime;

/// Registrations written in one transaction at most; a larger queue is written in several.
const MAX_BATCH: usize = 4096;

/// How long the writer lets registrations gather after a batch before it takes the next one.
/// Waking the thread for every REGISTER cost more than writing it; under load a millisecond
/// gathers dozens into one transaction and one wake-up, at a millisecond of latency. An idle
/// writer blocks on the queue and starts at once on the first registration.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// A held REGISTER answer and the shard that holds its transaction.
pub(crate) struct Pending {
    pub(crate) shard: usize,
    pub(crate) registration: Box<PersistRegistration>,
}

/// Starts the writer thread; it stops when every sender is dropped.
pub(crate) fn start(
    store: Arc<dyn RegistrationStore>,
    sip: Weak<SipRuntime>,
) -> std::io::Result<Sender<Pending>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("registrations".into())
        .spawn(move || run(store.as_ref(), &sip, &rx))?;
    Ok(tx)
}

fn run(store: &dyn RegistrationStore, sip: &Weak<SipRuntime>, rx: &Receiver<Pending>) {
    let batches = metrics::counter!("herald_registration_commits_total");
    let failures = metrics::counter!("herald_registration_commit_failures_total");
    while let Some(batch) = next_batch(rx, MAX_BATCH) {
        // A user's later snapshot supersedes an earlier one of the same batch.
        let mut latest: HashMap<&Aor, &Vec<StoredBinding>> = HashMap::with_capacity(batch.len());
        let mut order: Vec<&Aor> = Vec::with_capacity(batch.len());
        for p in &batch {
            let r = &p.registration;
            if latest.insert(&r.aor, &r.bindings).is_none() {
                order.push(&r.aor);
            }
        }
        let rows: Vec<(Aor, Vec<StoredBinding>)> = order
            .into_iter()
            .filter_map(|aor| Some(((*aor).clone(), (*latest.get(aor)?).clone())))
            .collect();
        let saved = store.save_registrations(&rows);
        batches.increment(1);
        if let Err(e) = &saved {
            failures.increment(1);
            tracing::error!(error = %e, count = batch.len(), "registrations not stored; answering 500");
        }
        let Some(sip) = sip.upgrade() else { return };
        let mut by_shard: Vec<Vec<(ReplyTo, ResponseBuilder)>> = Vec::new();
        for p in batch {
            let PersistRegistration {
                reply_to,
                ok,
                failed,
                ..
            } = *p.registration;
            let answer = if saved.is_ok() { ok } else { failed };
            if by_shard.len() <= p.shard {
                by_shard.resize_with(p.shard + 1, Vec::new);
            }
            by_shard[p.shard].push((reply_to, answer));
        }
        for (shard, answers) in by_shard.into_iter().enumerate() {
            if !answers.is_empty() {
                sip.respond_all(shard, answers);
            }
        }
        drop(sip);
        std::thread::sleep(LINGER);
    }
}
