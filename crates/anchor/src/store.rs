//! Persistence of the anchoring directory and of Active Manager's state.
//!
//! [`AnchorStore`] is what herald's directory crate implements (SQLite, PostgreSQL). It
//! stores rows and nothing more: the rules live in [`crate::model::Topology`], and
//! [`apply_change`] / [`clear_previous_mailbox`] check a change against the loaded topology
//! before writing it, so every store enforces the same rules. [`MemoryStore`] is the
//! in-memory implementation tests (and a throw-away demo) use.
//!
//! Calls are synchronous, like the rest of herald's directory: the runtime makes them from
//! `spawn_blocking` or a dedicated task.

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::active_manager::{ActiveCopy, AmEvent};
use crate::model::{
    AuditRecord, ClearConfirmation, ClearPreviousError, Dag, DagName, Database, DatabaseName,
    ExchangeGuid, Mailbox, ModelError, Server, ServerName, Topology, User, UserId,
};

/// The storage the anchoring core needs. Every method is one atomic operation.
pub trait AnchorStore: Send + Sync {
    /// Reads every row and rebuilds the validated directory. A store whose rows break a rule
    /// fails with [`StoreError::Invalid`] naming it.
    fn load_topology(&self) -> Result<Topology, StoreError>;

    /// Inserts or replaces a server row.
    fn put_server(&self, server: &Server) -> Result<(), StoreError>;
    /// Deletes a server row (no error if absent).
    fn delete_server(&self, name: &ServerName) -> Result<(), StoreError>;
    /// Inserts or replaces a DAG row with its members.
    fn put_dag(&self, dag: &Dag) -> Result<(), StoreError>;
    /// Deletes a DAG row (no error if absent).
    fn delete_dag(&self, name: &DagName) -> Result<(), StoreError>;
    /// Inserts or replaces a database row with its copies.
    fn put_database(&self, database: &Database) -> Result<(), StoreError>;
    /// Deletes a database row and its copies (no error if absent).
    fn delete_database(&self, name: &DatabaseName) -> Result<(), StoreError>;
    /// Inserts or replaces a user row, previous-mailbox info included.
    fn put_user(&self, user: &User) -> Result<(), StoreError>;
    /// Deletes a user row (no error if absent).
    fn delete_user(&self, id: &UserId) -> Result<(), StoreError>;
    /// Inserts or replaces a mailbox row.
    fn put_mailbox(&self, mailbox: &Mailbox) -> Result<(), StoreError>;
    /// Deletes a mailbox row and, in the same transaction, writes its owner's row (which now
    /// carries previous-mailbox info), so the old GUID is never lost between two writes.
    fn delete_mailbox(&self, guid: &ExchangeGuid, owner: Option<&User>) -> Result<(), StoreError>;

    /// Writes a user whose previous-mailbox info was cleared together with its audit record,
    /// in one transaction: an irreversible change is never stored without its trace.
    fn save_cleared_user(&self, user: &User, audit: &AuditRecord) -> Result<(), StoreError>;
    /// The audit log, oldest first.
    fn audit_log(&self) -> Result<Vec<AuditRecord>, StoreError>;

    /// The persisted active-copy map, for [`crate::active_manager::ActiveManager::restore`].
    fn load_active_copies(&self) -> Result<Vec<(DatabaseName, ActiveCopy)>, StoreError>;
    /// Appends an Active Manager event to the log and, when it carries a database state,
    /// updates the active-copy map, in one transaction.
    fn record_event(&self, event: &EventRecord) -> Result<(), StoreError>;
    /// The most recent `limit` events, oldest first (`herald database list`).
    fn recent_events(&self, limit: usize) -> Result<Vec<EventRecord>, StoreError>;
}

/// An Active Manager event in its stored form (wall-clock time, rendered text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// When it happened, by the wall clock the caller read.
    pub at: SystemTime,
    /// The database whose state changed, if one did.
    pub database: Option<DatabaseName>,
    /// Its new state, if one changed.
    pub active: Option<ActiveCopy>,
    /// What happened, for people.
    pub message: String,
}

impl EventRecord {
    /// Converts an event; `at` is the wall-clock time matching the event's `Instant`.
    pub fn from_event(event: &AmEvent, at: SystemTime) -> Self {
        let (database, active) = match event.active_copy() {
            Some((d, a)) => (Some(d.clone()), Some(a)),
            None => (None, None),
        };
        Self {
            at,
            database,
            active,
            message: event.to_string(),
        }
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stored rows break a directory rule (hand edits, a partial import).
    #[error("the stored anchoring directory is inconsistent: {0}")]
    Invalid(#[from] ModelError),
    /// The backend failed (I/O, SQL, connection).
    #[error("anchoring store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One administrative change to the directory (the CLI's `add`/`remove` commands).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Change {
    /// `herald server add`.
    AddServer(Server),
    /// `herald server remove`.
    RemoveServer(ServerName),
    /// `herald dag add`.
    AddDag(Dag),
    /// `herald dag remove`.
    RemoveDag(DagName),
    /// `herald database add`.
    AddDatabase(Database),
    /// `herald database remove`.
    RemoveDatabase(DatabaseName),
    /// Adds a user to the anchoring directory.
    AddUser(User),
    /// Removes a user.
    RemoveUser(UserId),
    /// `herald mailbox add`.
    AddMailbox(Mailbox),
    /// `herald mailbox remove`.
    RemoveMailbox(ExchangeGuid),
}

/// Why an administrative change was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The change breaks a directory rule; nothing was written.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Clearing previous-mailbox info was refused; nothing was written.
    #[error(transparent)]
    Clear(#[from] ClearPreviousError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `change` against the stored directory and writes it, returning the new topology to
/// hand to [`crate::active_manager::ActiveManager::update_topology`] and the proxy.
///
/// Two admins changing the directory at the same instant can race between the load and the
/// write; the store's own constraints (unique keys) are the backstop.
pub fn apply_change(store: &dyn AnchorStore, change: Change) -> Result<Topology, AdminError> {
    let mut topology = store.load_topology()?;
    match change {
        Change::AddServer(s) => {
            topology.add_server(s.clone())?;
            store.put_server(&s)?;
        }
        Change::RemoveServer(n) => {
            topology.remove_server(&n)?;
            store.delete_server(&n)?;
        }
        Change::AddDag(d) => {
            topology.add_dag(d.clone())?;
            store.put_dag(&d)?;
        }
        Change::RemoveDag(n) => {
            topology.remove_dag(&n)?;
            store.delete_dag(&n)?;
        }
        Change::AddDatabase(d) => {
            let name = d.name.clone();
            topology.add_database(d)?;
            if let Some(stored) = topology.database(&name) {
                store.put_database(stored)?;
            }
        }
        Change::RemoveDatabase(n) => {
            topology.remove_database(&n)?;
            store.delete_database(&n)?;
        }
        Change::AddUser(u) => {
            topology.add_user(u.clone())?;
            store.put_user(&u)?;
        }
        Change::RemoveUser(id) => {
            topology.remove_user(&id)?;
            store.delete_user(&id)?;
        }
        Change::AddMailbox(m) => {
            topology.add_mailbox(m.clone())?;
            store.put_mailbox(&m)?;
        }
        Change::RemoveMailbox(guid) => {
            let removed = topology.remove_mailbox(&guid)?;
            let owner = removed.owner.as_ref().and_then(|o| topology.user(o));
            store.delete_mailbox(&guid, owner)?;
        }
    }
    Ok(topology)
}

/// `herald user clear-previous-mailbox USER --confirm`: clears the info and stores it with its
/// audit record. Without a matching confirmation nothing is written.
pub fn clear_previous_mailbox(
    store: &dyn AnchorStore,
    user: &UserId,
    confirmation: Option<&ClearConfirmation>,
    actor: &str,
    at: SystemTime,
) -> Result<AuditRecord, AdminError> {
    let mut topology = store.load_topology()?;
    let audit = topology.clear_previous_mailbox(user, confirmation, actor, at)?;
    let cleared = topology
        .user(user)
        .ok_or_else(|| ClearPreviousError::UnknownUser { user: user.clone() })?;
    store.save_cleared_user(cleared, &audit)?;
    Ok(audit)
}

/// An [`AnchorStore`] in memory: for tests and for a demo that needs no database. Nothing
/// survives the process, but [`MemoryStore`] can be shared (`Arc`) to simulate a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    rows: Mutex<Rows>,
}

#[derive(Debug, Default)]
struct Rows {
    servers: BTreeMap<ServerName, Server>,
    dags: BTreeMap<DagName, Dag>,
    databases: BTreeMap<DatabaseName, Database>,
    users: BTreeMap<UserId, User>,
    mailboxes: BTreeMap<ExchangeGuid, Mailbox>,
    audit: Vec<AuditRecord>,
    active: BTreeMap<DatabaseName, ActiveCopy>,
    events: VecDeque<EventRecord>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AnchorStore for MemoryStore {
    fn load_topology(&self) -> Result<Topology, StoreError> {
        let rows = self.rows.lock();
        Ok(Topology::from_parts(
            rows.servers.values().cloned(),
            rows.dags.values().cloned(),
            rows.databases.values().cloned(),
            rows.users.values().cloned(),
            rows.mailboxes.values().cloned(),
        )?)
    }

    fn put_server(&self, server: &Server) -> Result<(), StoreError> {
        self.rows
            .lock()
            .servers
            .insert(server.name.clone(), server.clone());
        Ok(())
    }

    fn delete_server(&self, name: &ServerName) -> Result<(), StoreError> {
        self.rows.lock().servers.remove(name);
        Ok(())
    }

    fn put_dag(&self, dag: &Dag) -> Result<(), StoreError> {
        self.rows.lock().dags.insert(dag.name.clone(), dag.clone());
        Ok(())
    }

    fn delete_dag(&self, name: &DagName) -> Result<(), StoreError> {
        self.rows.lock().dags.remove(name);
        Ok(())
    }

    fn put_database(&self, database: &Database) -> Result<(), StoreError> {
        self.rows
            .lock()
            .databases
            .insert(database.name.clone(), database.clone());
        Ok(())
    }

    fn delete_database(&self, name: &DatabaseName) -> Result<(), StoreError> {
        let mut rows = self.rows.lock();
        rows.databases.remove(name);
        rows.active.remove(name);
        Ok(())
    }

    fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.rows.lock().users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        self.rows.lock().users.remove(id);
        Ok(())
    }

    fn put_mailbox(&self, mailbox: &Mailbox) -> Result<(), StoreError> {
        self.rows
            .lock()
            .mailboxes
            .insert(mailbox.guid, mailbox.clone());
        Ok(())
    }

    fn delete_mailbox(&self, guid: &ExchangeGuid, owner: Option<&User>) -> Result<(), StoreError> {
        let mut rows = self.rows.lock();
        rows.mailboxes.remove(guid);
        if let Some(owner) = owner {
            rows.users.insert(owner.id.clone(), owner.clone());
        }
        Ok(())
    }

    fn save_cleared_user(&self, user: &User, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut rows = self.rows.lock();
        rows.users.insert(user.id.clone(), user.clone());
        rows.audit.push(audit.clone());
        Ok(())
    }

    fn audit_log(&self) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self.rows.lock().audit.clone())
    }

    fn load_active_copies(&self) -> Result<Vec<(DatabaseName, ActiveCopy)>, StoreError> {
        Ok(self
            .rows
            .lock()
            .active
            .iter()
            .map(|(d, a)| (d.clone(), a.clone()))
            .collect())
    }

    fn record_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        let mut rows = self.rows.lock();
        if let (Some(d), Some(a)) = (&event.database, &event.active) {
            rows.active.insert(d.clone(), a.clone());
        }
        if rows.events.len() >= MEMORY_EVENT_LOG {
            rows.events.pop_front();
        }
        rows.events.push_back(event.clone());
        Ok(())
    }

    fn recent_events(&self, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self.rows.lock();
        let skip = rows.events.len().saturating_sub(limit);
        Ok(rows.events.iter().skip(skip).cloned().collect())
    }
}

/// Events [`MemoryStore`] keeps.
const MEMORY_EVENT_LOG: usize = 10_000;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::active_manager::{ActiveManager, ActiveManagerConfig};
    use crate::model::MailboxType;
    use crate::model::tests::{copy, server};

    mod conformance {
        crate::anchor_store_conformance_tests!(crate::store::MemoryStore::new());
    }

    fn seeded() -> MemoryStore {
        let store = MemoryStore::new();
        for (i, n) in ["ex1", "ex2"].iter().enumerate() {
            apply_change(
                &store,
                Change::AddServer(server(n, 4441 + i as u16, "15.0.1156.6")),
            )
            .expect("adds");
        }
        apply_change(
            &store,
            Change::AddDag(Dag {
                name: "dag1".parse().expect("valid"),
                members: vec!["ex1".parse().expect("valid"), "ex2".parse().expect("valid")],
            }),
        )
        .expect("adds");
        apply_change(
            &store,
            Change::AddDatabase(Database {
                name: "db1".parse().expect("valid"),
                dag: Some("dag1".parse().expect("valid")),
                copies: vec![copy("ex2", 2), copy("ex1", 1)],
            }),
        )
        .expect("adds");
        store
    }

    #[test]
    fn apply_change_validates_before_writing() {
        let store = seeded();
        let err = apply_change(
            &store,
            Change::AddDatabase(Database {
                name: "db2".parse().expect("valid"),
                dag: Some("dag1".parse().expect("valid")),
                copies: vec![copy("ex1", 1), copy("ex2", 1)],
            }),
        );
        assert!(matches!(
            err,
            Err(AdminError::Model(ModelError::DuplicatePreference { .. }))
        ));
        let t = store.load_topology().expect("loads");
        assert!(
            t.database(&"db2".parse().expect("valid")).is_none(),
            "nothing written"
        );
        let db1 = t
            .database(&"db1".parse().expect("valid"))
            .expect("db1 stored");
        assert_eq!(
            db1.copies[0].server.as_str(),
            "ex1",
            "stored sorted by preference"
        );
    }

    #[test]
    fn clear_previous_mailbox_stores_the_audit_with_the_change() {
        let store = seeded();
        let alice: UserId = "alice@contoso.com".parse().expect("valid");
        apply_change(
            &store,
            Change::AddUser(User {
                id: alice.clone(),
                sid: None,
                previous_mailbox: None,
            }),
        )
        .expect("adds");
        let guid = ExchangeGuid::from_u128(42);
        apply_change(
            &store,
            Change::AddMailbox(Mailbox {
                guid,
                primary_smtp: "alice@contoso.com".parse().expect("valid"),
                owner: Some(alice.clone()),
                kind: MailboxType::User,
                database: "db1".parse().expect("valid"),
            }),
        )
        .expect("adds");
        apply_change(&store, Change::RemoveMailbox(guid)).expect("removes");
        let t = store.load_topology().expect("loads");
        assert!(t.user(&alice).is_some_and(|u| u.previous_mailbox.is_some()));

        let refused = clear_previous_mailbox(&store, &alice, None, "cli", SystemTime::UNIX_EPOCH);
        assert!(matches!(
            refused,
            Err(AdminError::Clear(
                ClearPreviousError::ConfirmationRequired { .. }
            ))
        ));
        assert!(store.audit_log().expect("reads").is_empty());

        let confirm = ClearConfirmation::permanently_clear(&alice);
        let audit = clear_previous_mailbox(
            &store,
            &alice,
            Some(&confirm),
            "cli",
            SystemTime::UNIX_EPOCH,
        )
        .expect("clears");
        assert_eq!(audit.cleared.exchange_guid, guid);
        assert_eq!(store.audit_log().expect("reads"), vec![audit]);
        let t = store.load_topology().expect("loads");
        assert!(t.user(&alice).is_some_and(|u| u.previous_mailbox.is_none()));
    }

    #[test]
    fn active_copy_map_survives_a_restart_through_the_store() {
        let store = Arc::new(seeded());
        let topology = Arc::new(store.load_topology().expect("loads"));
        let now = Instant::now();
        let mut am = ActiveManager::new(topology.clone(), ActiveManagerConfig::default(), now);
        am.move_database(
            now,
            &"db1".parse().expect("valid"),
            &"ex2".parse().expect("valid"),
        )
        .expect("moves");
        while let Some(e) = am.poll_event() {
            store
                .record_event(&EventRecord::from_event(&e, SystemTime::UNIX_EPOCH))
                .expect("records");
        }
        let restarted = ActiveManager::restore(
            topology,
            ActiveManagerConfig::default(),
            store.load_active_copies().expect("loads"),
            now,
        );
        let db1 = "db1".parse().expect("valid");
        assert_eq!(
            restarted
                .active_server(&db1)
                .map(|s| s.name.to_string())
                .ok()
                .as_deref(),
            Some("ex2")
        );
        let log = store.recent_events(10).expect("reads");
        assert_eq!(log.len(), 2);
        assert!(
            log[1].message.contains("switchover from ex1"),
            "{}",
            log[1].message
        );
    }
}
