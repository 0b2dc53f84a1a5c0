//! What the engine persists, behind a synchronous, object-safe trait.
//!
//! The engine calls the store inside [`super::Engine::handle_request`], *before* it changes its
//! own state and before it returns the 200 OK, so a publication or contact change that was
//! answered 200 survives a restart (issue 3 point 7). A store error turns the request into a
//! 500 and changes nothing. Reads happen when a user is first needed (containers, static
//! publications, identity) or when a contact list is first used, and are cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use herald_registrar::Aor;

use crate::categories::CategoryName;
use crate::categories::roaming::ContactList;
use crate::containers::{Container, ContainerId};

/// Persistence for presence. The lead implements it on SQLite; [`MemoryStore`] serves tests and
/// store-less runs. Each method is one atomic operation.
pub trait PresenceStore: Send {
    /// The user's contact list, `None` if it never had one.
    ///
    /// # Errors
    /// The store could not be read.
    fn contact_list(&mut self, user: &Aor) -> Result<Option<ContactList>, StoreError>;

    /// Replaces the user's contact list.
    ///
    /// # Errors
    /// The store could not be written; nothing changed.
    fn save_contact_list(&mut self, user: &Aor, list: &ContactList) -> Result<(), StoreError>;

    /// The user's containers (empty if it never set any).
    ///
    /// # Errors
    /// The store could not be read.
    fn containers(&mut self, user: &Aor) -> Result<Vec<Container>, StoreError>;

    /// Replaces the user's containers.
    ///
    /// # Errors
    /// The store could not be written; nothing changed.
    fn save_containers(&mut self, user: &Aor, containers: &[Container]) -> Result<(), StoreError>;

    /// The user's static publications (`expireType="static"`: manual status, note, ...).
    ///
    /// # Errors
    /// The store could not be read.
    fn static_publications(&mut self, user: &Aor) -> Result<Vec<StoredPublication>, StoreError>;

    /// Applies `changes` to the user's static publications in one transaction.
    ///
    /// # Errors
    /// The store could not be written; nothing changed.
    fn write_static_publications(
        &mut self,
        user: &Aor,
        changes: &[StaticChange],
    ) -> Result<(), StoreError>;

    /// The user's directory identity (shown as the `contactCard` every watcher sees).
    ///
    /// # Errors
    /// The store could not be read.
    fn identity(&mut self, user: &Aor) -> Result<Option<Identity>, StoreError>;

    /// Whether `user` (in a served domain) is a user of the directory: a SUBSCRIBE to anyone
    /// else's presence is 404, a list resource naming them `noresource` (RFC 3856 §6.5, RFC
    /// 4662 §5.2). Stores that do not know assume every address is a user.
    ///
    /// # Errors
    /// The store could not be read.
    fn user_exists(&mut self, user: &Aor) -> Result<bool, StoreError> {
        let _ = user;
        Ok(true)
    }
}

/// A store failure. The engine answers the request that needed the store with 500.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("presence store: {0}")]
pub struct StoreError(pub String);

/// Identifies a category instance: name, instance id and container.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicationKey {
    /// The category.
    pub category: CategoryName,
    /// The instance id.
    pub instance: u32,
    /// The container.
    pub container: ContainerId,
}

/// One persisted category instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPublication {
    /// What it is.
    pub key: PublicationKey,
    /// Its current version.
    pub version: u32,
    /// The instance as an `application/msrtc-event-categories+xml` document holding just it
    /// (with container, version and expiry type), which the engine reads back on load.
    pub document: String,
}

/// One change to static publications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StaticChange {
    /// Insert or replace.
    Put(StoredPublication),
    /// Remove (no error if absent).
    Delete(PublicationKey),
}

/// A user's directory identity, shown to watchers as a `contactCard` (SIPE takes the buddy's
/// display name from it, sipe-client §3.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Office.
    pub office: Option<String>,
}

/// An in-memory [`PresenceStore`]. Clones share the same data, so a test (or the admin view)
/// can keep one while the engine owns another.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    users: HashMap<Aor, MemoryUser>,
    /// When set, the only users that exist (see [`MemoryStore::set_directory`]).
    directory: Option<Vec<Aor>>,
    failing: bool,
    writes: u64,
}

#[derive(Debug, Default)]
struct MemoryUser {
    contacts: Option<ContactList>,
    containers: Vec<Container>,
    statics: Vec<StoredPublication>,
    identity: Option<Identity>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a user's identity (what the directory would hold).
    pub fn set_identity(&self, user: &Aor, identity: Identity) {
        self.with(|m| m.users.entry(user.clone()).or_default().identity = Some(identity));
    }

    /// Makes `users` the only users that exist ([`PresenceStore::user_exists`]); by default
    /// every address does.
    pub fn set_directory(&self, users: &[Aor]) {
        self.with(|m| m.directory = Some(users.to_vec()));
    }

    /// Makes every later call fail (to test that failures change nothing) or succeed again.
    pub fn set_failing(&self, failing: bool) {
        self.with(|m| m.failing = failing);
    }

    /// How many successful writes the store has taken.
    pub fn writes(&self) -> u64 {
        self.with(|m| m.writes)
    }

    /// The stored static publications of `user` (for tests and admin views).
    pub fn statics(&self, user: &Aor) -> Vec<StoredPublication> {
        self.with(|m| {
            m.users
                .get(user)
                .map(|u| u.statics.clone())
                .unwrap_or_default()
        })
    }

    /// The stored containers of `user`.
    pub fn stored_containers(&self, user: &Aor) -> Vec<Container> {
        self.with(|m| {
            m.users
                .get(user)
                .map(|u| u.containers.clone())
                .unwrap_or_default()
        })
    }

    /// The stored contact list of `user`.
    pub fn stored_contact_list(&self, user: &Aor) -> Option<ContactList> {
        self.with(|m| m.users.get(user).and_then(|u| u.contacts.clone()))
    }

    fn with<R>(&self, f: impl FnOnce(&mut MemoryInner) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    fn op<R>(&self, f: impl FnOnce(&mut MemoryInner) -> R) -> Result<R, StoreError> {
        self.with(|m| {
            if m.failing {
                Err(StoreError("memory store set to fail".to_owned()))
            } else {
                Ok(f(m))
            }
        })
    }

    fn write<R>(&self, f: impl FnOnce(&mut MemoryInner) -> R) -> Result<R, StoreError> {
        self.op(|m| {
            m.writes += 1;
            f(m)
        })
    }
}

impl PresenceStore for MemoryStore {
    fn contact_list(&mut self, user: &Aor) -> Result<Option<ContactList>, StoreError> {
        self.op(|m| m.users.get(user).and_then(|u| u.contacts.clone()))
    }

    fn save_contact_list(&mut self, user: &Aor, list: &ContactList) -> Result<(), StoreError> {
        self.write(|m| m.users.entry(user.clone()).or_default().contacts = Some(list.clone()))
    }

    fn containers(&mut self, user: &Aor) -> Result<Vec<Container>, StoreError> {
        self.op(|m| {
            m.users
                .get(user)
                .map(|u| u.containers.clone())
                .unwrap_or_default()
        })
    }

    fn save_containers(&mut self, user: &Aor, containers: &[Container]) -> Result<(), StoreError> {
        self.write(|m| m.users.entry(user.clone()).or_default().containers = containers.to_vec())
    }

    fn static_publications(&mut self, user: &Aor) -> Result<Vec<StoredPublication>, StoreError> {
        self.op(|m| {
            m.users
                .get(user)
                .map(|u| u.statics.clone())
                .unwrap_or_default()
        })
    }

    fn write_static_publications(
        &mut self,
        user: &Aor,
        changes: &[StaticChange],
    ) -> Result<(), StoreError> {
        self.write(|m| {
            let statics = &mut m.users.entry(user.clone()).or_default().statics;
            for c in changes {
                match c {
                    StaticChange::Put(p) => {
                        statics.retain(|s| s.key != p.key);
                        statics.push(p.clone());
                    }
                    StaticChange::Delete(k) => statics.retain(|s| s.key != *k),
                }
            }
        })
    }

    fn identity(&mut self, user: &Aor) -> Result<Option<Identity>, StoreError> {
        self.op(|m| m.users.get(user).and_then(|u| u.identity.clone()))
    }

    fn user_exists(&mut self, user: &Aor) -> Result<bool, StoreError> {
        self.op(|m| m.directory.as_ref().is_none_or(|d| d.contains(user)))
    }
}
