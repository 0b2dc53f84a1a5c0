//! The presence engine's persistence on SQLite: [`PresenceStore`] for [`SqlitePresenceStore`],
//! and the contact-list commands (`herald contact add|list|remove`) on [`SqliteDirectory`].
//!
//! Presence data belongs to the directory's users (schema migration 4): a contact list, privacy
//! containers and static publications are rows keyed by `users.id`, removed with the user, and
//! the identity watchers see (`contactCard`) is the user's directory display name.
//!
//! - **Sharing.** [`SqliteDirectory::presence_store`] hands out a handle on the directory's own
//!   connection (WAL, `synchronous=FULL`, foreign keys on), which the engine owns as a
//!   `Box<dyn PresenceStore>`. Every call is one transaction; a write (`BEGIN IMMEDIATE`) is
//!   committed, and so on disk, before it returns `Ok`, and leaves nothing behind when it
//!   fails. The engine's writes do not move [`crate::Directory::change_token`]: a note or
//!   status change is not a directory change, and caches of users and of the anchoring
//!   directory key on that token. Writes by another process (`herald contact add` beside a
//!   running server) do move it there, as every commit on the file does.
//! - **Exactness.** What a save stores, the matching read returns equal: order of groups,
//!   contacts, a contact's groups, containers and members is kept in `position` columns, and
//!   static publications come back in the order they were last written (a replaced instance
//!   moves last, as in [`herald_presence::engine::MemoryStore`]).
//! - **Differences from `MemoryStore`.** Presence data exists only for directory users: reads
//!   for an unknown user answer "nothing" (no list, no containers, no publications, no
//!   identity) and writes fail. A contact list is refused (nothing changes) if it names the
//!   same group id or contact address (ASCII case ignored) twice, or puts a contact in a group
//!   it does not have; containers are refused if two share an id. The engine never builds
//!   such lists. [`PresenceStore::identity`] is `None` for a user without a display name (an
//!   empty card tells watchers nothing).

use std::collections::HashSet;
use std::error::Error as _;
use std::sync::{Arc, Mutex};

use herald_presence::categories::CategoryName;
use herald_presence::categories::roaming::{ContactEntry, ContactList, Group, GroupId};
use herald_presence::containers::{Container, ContainerId, Member};
use herald_presence::engine::{
    ContactError, Identity, PresenceStore, PublicationKey, StaticChange, StoreError,
    StoredPublication,
};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Conn, Context, SqliteDirectory, read_tx, write_tx};
use crate::{Aor, DisplayName, EntityKind, Error};

/// A [`PresenceStore`] on a [`SqliteDirectory`]'s database, sharing its connection. Clones
/// share it too, so the engine can own one while an admin view keeps another.
#[derive(Debug, Clone)]
pub struct SqlitePresenceStore {
    conn: Arc<Mutex<Conn>>,
}

impl SqliteDirectory {
    /// A presence store on this directory's database, for the presence engine
    /// (`Box::new(dir.presence_store())`). It shares this handle's connection, which stays
    /// open while any store made from it lives; see the module documentation for what it
    /// stores and how.
    pub fn presence_store(&self) -> SqlitePresenceStore {
        SqlitePresenceStore {
            conn: Arc::clone(&self.conn),
        }
    }

    /// `user`'s contact list as the presence engine serves it: the stored list, or the list a
    /// user starts with ([`ContactList::initial`]: the default group, no contacts) if it never
    /// had one.
    ///
    /// Fails with [`Error::NotFound`] for a user the directory does not have.
    pub fn contact_list(&self, user: &Aor) -> Result<ContactList, Error> {
        self.read("reading a contact list", |tx| {
            let id = directory_user(tx, user)?;
            Ok(load_contact_list(tx, id)?.unwrap_or_else(ContactList::initial))
        })
    }

    /// Adds `contact` to `user`'s contact list, subscribed, in `group` (the default group, 1,
    /// when `None`), or, if it is there already, moves it to that group alone and renames it
    /// when `name` is given; as the presence engine's `add_contact` does, in one transaction.
    /// The list starts as [`ContactList::initial`] if the user has none, and the default group
    /// is created if the list lacks it. The list's `deltaNum` goes up by one. Returns the list
    /// as saved.
    ///
    /// `max_contacts` is the engine's limit (`EngineConfig::max_contacts`). A running engine
    /// that holds the user's list in memory sees the change once it reloads the user.
    ///
    /// Fails with [`Error::NotFound`] for an unknown user or a group the list does not have,
    /// [`Error::ContactListFull`] when the list already holds `max_contacts` contacts, and
    /// [`Error::InvalidInput`] for a name with control characters or over 256 characters.
    pub fn add_contact(
        &self,
        user: &Aor,
        contact: &Aor,
        name: Option<&str>,
        group: Option<GroupId>,
        max_contacts: usize,
    ) -> Result<ContactList, Error> {
        let name = name.map(DisplayName::parse).transpose()?;
        let uri = contact_uri(contact);
        let group = group.unwrap_or(GroupId::DEFAULT);
        self.write("adding a contact", |tx| {
            let id = directory_user(tx, user)?;
            let mut list = load_contact_list(tx, id)?.unwrap_or_else(ContactList::initial);
            if group == GroupId::DEFAULT {
                list.ensure_default_group();
            }
            list.add_contact(
                &uri,
                name.as_ref().map(DisplayName::as_str),
                group,
                max_contacts,
            )
            .map_err(|e| contact_error(user, e, max_contacts))?;
            list.bump_delta();
            store_contact_list(tx, id, &list)?;
            Ok(list)
        })
    }

    /// Removes `contact` from `user`'s contact list (its `deltaNum` goes up by one); returns
    /// whether it was there. Nothing is written when it was not.
    ///
    /// Fails with [`Error::NotFound`] for an unknown user.
    pub fn remove_contact(&self, user: &Aor, contact: &Aor) -> Result<bool, Error> {
        let uri = contact_uri(contact);
        self.write("removing a contact", |tx| {
            let id = directory_user(tx, user)?;
            let Some(mut list) = load_contact_list(tx, id)? else {
                return Ok(false);
            };
            if !list.remove_contact(&uri) {
                return Ok(false);
            }
            list.bump_delta();
            store_contact_list(tx, id, &list)?;
            Ok(true)
        })
    }
}

impl SqlitePresenceStore {
    fn read<T>(
        &self,
        what: &'static str,
        user: &herald_registrar::Aor,
        f: impl FnOnce(&Transaction<'_>, Option<i64>) -> Result<T, Error>,
    ) -> Result<T, StoreError> {
        read_tx(&self.conn, what, |tx| {
            let id = presence_user(tx, user)?;
            f(tx, id)
        })
        .map_err(|e| store_error(what, user, &e))
    }

    fn write(
        &self,
        what: &'static str,
        user: &herald_registrar::Aor,
        f: impl FnOnce(&Transaction<'_>, i64) -> Result<(), Error>,
    ) -> Result<(), StoreError> {
        write_tx(&self.conn, what, |tx| {
            let id = presence_user(tx, user)?.ok_or_else(|| Error::NotFound {
                kind: EntityKind::User,
                key: user.to_string(),
            })?;
            f(tx, id)
        })
        .map_err(|e| store_error(what, user, &e))
    }
}

impl PresenceStore for SqlitePresenceStore {
    fn contact_list(
        &mut self,
        user: &herald_registrar::Aor,
    ) -> Result<Option<ContactList>, StoreError> {
        self.read("reading the contact list", user, |tx, id| match id {
            Some(id) => load_contact_list(tx, id),
            None => Ok(None),
        })
    }

    fn save_contact_list(
        &mut self,
        user: &herald_registrar::Aor,
        list: &ContactList,
    ) -> Result<(), StoreError> {
        self.write("saving the contact list", user, |tx, id| {
            store_contact_list(tx, id, list)
        })
    }

    fn containers(&mut self, user: &herald_registrar::Aor) -> Result<Vec<Container>, StoreError> {
        self.read("reading the containers", user, |tx, id| match id {
            Some(id) => load_containers(tx, id),
            None => Ok(Vec::new()),
        })
    }

    fn save_containers(
        &mut self,
        user: &herald_registrar::Aor,
        containers: &[Container],
    ) -> Result<(), StoreError> {
        self.write("saving the containers", user, |tx, id| {
            store_containers(tx, id, containers)
        })
    }

    fn static_publications(
        &mut self,
        user: &herald_registrar::Aor,
    ) -> Result<Vec<StoredPublication>, StoreError> {
        self.read("reading the static publications", user, |tx, id| match id {
            Some(id) => load_static_publications(tx, id),
            None => Ok(Vec::new()),
        })
    }

    fn write_static_publications(
        &mut self,
        user: &herald_registrar::Aor,
        changes: &[StaticChange],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.write("writing the static publications", user, |tx, id| {
            apply_static_changes(tx, id, changes)
        })
    }

    fn user_exists(&mut self, user: &herald_registrar::Aor) -> Result<bool, StoreError> {
        self.read("looking up a user", user, |_, id| Ok(id.is_some()))
    }

    fn identity(&mut self, user: &herald_registrar::Aor) -> Result<Option<Identity>, StoreError> {
        self.read("reading the identity", user, |tx, id| {
            let Some(id) = id else {
                return Ok(None);
            };
            let name: String = tx
                .prepare_cached("SELECT display_name FROM users WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)))
                .ctx("reading a user's display name")?;
            Ok((!name.is_empty()).then(|| Identity {
                display_name: Some(name),
                ..Identity::default()
            }))
        })
    }
}

// ---- users ----

/// The `users.id` of a presence user. Its AOR is lower case already, as the directory keys
/// users (`domain`, `user_key`).
fn presence_user(tx: &Transaction<'_>, user: &herald_registrar::Aor) -> Result<Option<i64>, Error> {
    let Some((user_key, domain)) = user.as_str().rsplit_once('@') else {
        return Ok(None);
    };
    user_row(tx, domain, user_key)
}

/// The `users.id` of a directory user, or [`Error::NotFound`].
fn directory_user(tx: &Transaction<'_>, user: &Aor) -> Result<i64, Error> {
    user_row(tx, user.domain().as_str(), &user.user_key())?.ok_or_else(|| Error::NotFound {
        kind: EntityKind::User,
        key: user.to_string(),
    })
}

pub(super) fn user_row(
    tx: &Transaction<'_>,
    domain: &str,
    user_key: &str,
) -> Result<Option<i64>, Error> {
    tx.prepare_cached("SELECT id FROM users WHERE domain = ?1 AND user_key = ?2")
        .and_then(|mut s| {
            s.query_row(params![domain, user_key], |r| r.get(0))
                .optional()
        })
        .ctx("looking up a user")
}

/// A contact's address as the engine writes it: `sip:` and the lower-cased AOR.
fn contact_uri(contact: &Aor) -> String {
    format!("sip:{}@{}", contact.user_key(), contact.domain())
}

fn contact_error(user: &Aor, e: ContactError, max: usize) -> Error {
    match e {
        ContactError::Limit => Error::ContactListFull {
            user: user.to_string(),
            max,
        },
        ContactError::Group(id) => Error::NotFound {
            kind: EntityKind::ContactGroup,
            key: format!("{id} of {user}"),
        },
        other => Error::invalid("contact", other.to_string()),
    }
}

// ---- contact lists ----

fn load_contact_list(tx: &Transaction<'_>, user: i64) -> Result<Option<ContactList>, Error> {
    const WHAT: &str = "reading a contact list";
    let delta: Option<i64> = tx
        .prepare_cached("SELECT delta_num FROM presence_contact_lists WHERE user_id = ?1")
        .and_then(|mut s| s.query_row([user], |r| r.get(0)).optional())
        .ctx(WHAT)?;
    let Some(delta) = delta else {
        return Ok(None);
    };
    let groups = tx
        .prepare_cached(
            "SELECT group_id, name, external_uri FROM presence_contact_groups \
             WHERE user_id = ?1 ORDER BY position",
        )
        .and_then(|mut s| {
            s.query_map([user], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .ctx(WHAT)?
        .into_iter()
        .map(|(id, name, external)| {
            Ok(Group {
                id: group_id(id)?,
                name,
                external,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;

    let rows = tx
        .prepare_cached(
            "SELECT c.id, c.uri, c.display_name, c.subscribed, c.external_uri, m.group_id \
             FROM presence_contacts c \
             LEFT JOIN presence_contact_memberships m ON m.contact_id = c.id \
             WHERE c.user_id = ?1 ORDER BY c.position, m.position",
        )
        .and_then(|mut s| {
            s.query_map([user], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .ctx(WHAT)?;
    let mut contacts: Vec<ContactEntry> = Vec::new();
    let mut last_id = None;
    for (id, uri, name, subscribed, external, group) in rows {
        if last_id != Some(id) {
            last_id = Some(id);
            contacts.push(ContactEntry {
                uri,
                name,
                groups: Vec::new(),
                subscribed,
                external,
            });
        }
        if let (Some(c), Some(g)) = (contacts.last_mut(), group) {
            c.groups.push(group_id(g)?);
        }
    }
    Ok(Some(ContactList {
        delta_num: u32_column(delta, "contact list deltaNum")?,
        groups,
        contacts,
    }))
}

/// Replaces the user's contact list (inside the caller's write transaction).
fn store_contact_list(tx: &Transaction<'_>, user: i64, list: &ContactList) -> Result<(), Error> {
    const WHAT: &str = "saving a contact list";
    check_contact_list(list)?;
    // The groups, contacts and memberships go with the list row.
    tx.prepare_cached("DELETE FROM presence_contact_lists WHERE user_id = ?1")
        .and_then(|mut s| s.execute([user]))
        .ctx(WHAT)?;
    tx.prepare_cached("INSERT INTO presence_contact_lists (user_id, delta_num) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![user, list.delta_num]))
        .ctx(WHAT)?;
    let mut insert_group = tx
        .prepare_cached(
            "INSERT INTO presence_contact_groups (user_id, group_id, position, name, \
             external_uri) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .ctx(WHAT)?;
    for (position, g) in list.groups.iter().enumerate() {
        insert_group
            .execute(params![
                user,
                g.id.value(),
                position_of(position),
                g.name,
                g.external
            ])
            .ctx("saving a contact group")?;
    }
    let mut insert_contact = tx
        .prepare_cached(
            "INSERT INTO presence_contacts (user_id, position, uri, display_name, subscribed, \
             external_uri) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .ctx(WHAT)?;
    let mut insert_membership = tx
        .prepare_cached(
            "INSERT INTO presence_contact_memberships (contact_id, position, user_id, group_id) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .ctx(WHAT)?;
    for (position, c) in list.contacts.iter().enumerate() {
        let contact: i64 = insert_contact
            .query_row(
                params![
                    user,
                    position_of(position),
                    c.uri,
                    c.name,
                    c.subscribed,
                    c.external
                ],
                |r| r.get(0),
            )
            .ctx("saving a contact")?;
        for (position, g) in c.groups.iter().enumerate() {
            insert_membership
                .execute(params![contact, position_of(position), user, g.value()])
                .ctx("saving a contact's groups")?;
        }
    }
    Ok(())
}

/// The rules the schema enforces, checked first so the error names the offending entry.
fn check_contact_list(list: &ContactList) -> Result<(), Error> {
    let mut groups = HashSet::new();
    for g in &list.groups {
        if !groups.insert(g.id) {
            return Err(Error::invalid(
                "contact list",
                format!("group {} appears twice", g.id.value()),
            ));
        }
    }
    let mut uris = HashSet::new();
    for c in &list.contacts {
        if !uris.insert(c.uri.to_ascii_lowercase()) {
            return Err(Error::invalid(
                "contact list",
                format!("contact {} appears twice", c.uri),
            ));
        }
        if let Some(g) = c.groups.iter().find(|g| !groups.contains(*g)) {
            return Err(Error::invalid(
                "contact list",
                format!(
                    "contact {} is in group {}, which the list does not have",
                    c.uri,
                    g.value()
                ),
            ));
        }
    }
    Ok(())
}

fn group_id(value: i64) -> Result<GroupId, Error> {
    u8::try_from(value)
        .ok()
        .and_then(GroupId::new)
        .ok_or_else(|| Error::Corrupt(format!("contact group id {value} is not in 1..=63")))
}

// ---- containers ----

fn load_containers(tx: &Transaction<'_>, user: i64) -> Result<Vec<Container>, Error> {
    let rows = tx
        .prepare_cached(
            "SELECT c.container_id, c.version, m.kind, m.value FROM presence_containers c \
             LEFT JOIN presence_container_members m \
             ON m.user_id = c.user_id AND m.container_id = c.container_id \
             WHERE c.user_id = ?1 ORDER BY c.position, m.position",
        )
        .and_then(|mut s| {
            s.query_map([user], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .ctx("reading containers")?;
    let mut containers: Vec<Container> = Vec::new();
    for (id, version, kind, value) in rows {
        let id = container_id(id)?;
        if containers.last().is_none_or(|c| c.id != id) {
            containers.push(Container {
                id,
                version: u32_column(version, "container version")?,
                members: Vec::new(),
            });
        }
        if let (Some(c), Some(kind)) = (containers.last_mut(), kind) {
            c.members.push(member(&kind, value)?);
        }
    }
    Ok(containers)
}

fn store_containers(
    tx: &Transaction<'_>,
    user: i64,
    containers: &[Container],
) -> Result<(), Error> {
    const WHAT: &str = "saving containers";
    let mut ids = HashSet::new();
    if let Some(c) = containers.iter().find(|c| !ids.insert(c.id)) {
        return Err(Error::invalid(
            "containers",
            format!("container {} appears twice", c.id),
        ));
    }
    // The members go with their containers.
    tx.prepare_cached("DELETE FROM presence_containers WHERE user_id = ?1")
        .and_then(|mut s| s.execute([user]))
        .ctx(WHAT)?;
    let mut insert_container = tx
        .prepare_cached(
            "INSERT INTO presence_containers (user_id, container_id, position, version) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .ctx(WHAT)?;
    let mut insert_member = tx
        .prepare_cached(
            "INSERT INTO presence_container_members (user_id, container_id, position, kind, \
             value) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .ctx(WHAT)?;
    for (position, c) in containers.iter().enumerate() {
        insert_container
            .execute(params![
                user,
                c.id.value(),
                position_of(position),
                c.version
            ])
            .ctx("saving a container")?;
        for (position, m) in c.members.iter().enumerate() {
            insert_member
                .execute(params![
                    user,
                    c.id.value(),
                    position_of(position),
                    m.kind(),
                    m.value()
                ])
                .ctx("saving a container member")?;
        }
    }
    Ok(())
}

/// A member exactly as stored (not through [`Member::parse`], which would normalise the
/// value).
fn member(kind: &str, value: Option<String>) -> Result<Member, Error> {
    let need = |value: Option<String>| {
        value.ok_or_else(|| Error::Corrupt(format!("container member of type {kind} has no value")))
    };
    Ok(match kind {
        "user" => Member::User(need(value)?),
        "domain" => Member::Domain(need(value)?),
        "sameEnterprise" => Member::SameEnterprise,
        "federated" => Member::Federated,
        "publicCloud" => Member::PublicCloud,
        "everyone" => Member::Everyone,
        other => {
            return Err(Error::Corrupt(format!(
                "container member type {other:?} is unknown"
            )));
        }
    })
}

fn container_id(value: i64) -> Result<ContainerId, Error> {
    u16::try_from(value)
        .ok()
        .and_then(ContainerId::new)
        .ok_or_else(|| Error::Corrupt(format!("container id {value} is not in 0..=32767")))
}

// ---- static publications ----

fn load_static_publications(
    tx: &Transaction<'_>,
    user: i64,
) -> Result<Vec<StoredPublication>, Error> {
    tx.prepare_cached(
        "SELECT category, instance, container, version, document \
         FROM presence_static_publications WHERE user_id = ?1 ORDER BY id",
    )
    .and_then(|mut s| {
        s.query_map([user], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()
    })
    .ctx("reading static publications")?
    .into_iter()
    .map(|(category, instance, container, version, document)| {
        Ok(StoredPublication {
            key: PublicationKey {
                category: CategoryName::parse(&category).map_err(|e| {
                    Error::Corrupt(format!("publication category {category:?}: {e}"))
                })?,
                instance: u32_column(instance, "publication instance")?,
                container: container_id(container)?,
            },
            version: u32_column(version, "publication version")?,
            document,
        })
    })
    .collect()
}

fn apply_static_changes(
    tx: &Transaction<'_>,
    user: i64,
    changes: &[StaticChange],
) -> Result<(), Error> {
    let mut delete = tx
        .prepare_cached(
            "DELETE FROM presence_static_publications \
             WHERE user_id = ?1 AND category = ?2 AND instance = ?3 AND container = ?4",
        )
        .ctx("removing a static publication")?;
    // A new row's id is above every other row's, so a replaced instance moves last.
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO presence_static_publications \
             (user_id, category, instance, container, version, document) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .ctx("storing a static publication")?;
    for change in changes {
        let key = match change {
            StaticChange::Put(p) => &p.key,
            StaticChange::Delete(k) => k,
        };
        delete
            .execute(params![
                user,
                key.category.as_str(),
                key.instance,
                key.container.value()
            ])
            .ctx("removing a static publication")?;
        if let StaticChange::Put(p) = change {
            insert
                .execute(params![
                    user,
                    key.category.as_str(),
                    key.instance,
                    key.container.value(),
                    p.version,
                    p.document
                ])
                .ctx("storing a static publication")?;
        }
    }
    Ok(())
}

// ---- conversions ----

fn u32_column(value: i64, what: &str) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("{what} {value} is out of range")))
}

/// A position column's value; lists are far shorter than `i64::MAX`.
fn position_of(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

/// A directory error as the presence engine's, with what was being done for whom and the whole
/// cause chain (the engine logs it and answers 500).
fn store_error(what: &str, user: &herald_registrar::Aor, e: &Error) -> StoreError {
    let mut message = format!("{what} of {user}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    StoreError(message)
}

#[cfg(test)]
mod tests;
