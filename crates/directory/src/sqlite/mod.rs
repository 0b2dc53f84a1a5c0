//! The embedded [`Directory`] backend: one SQLite file in the data folder, so a fresh machine
//! needs no database server.
//!
//! Durability and sharing:
//! - WAL journal, so readers in other processes (a second pool member on the same machine) do
//!   not block the writer and vice versa.
//! - `synchronous=FULL`: a write is on disk before the call returns. Under WAL, `NORMAL` may lose
//!   the last acknowledged transactions on power loss, and a user the admin was told exists
//!   must exist after a reboot. Directory writes are rare; the fsync costs nothing that matters.
//! - Foreign keys on, for the credential cascade and the domain guard.
//! - A busy timeout, so a second process's write waits instead of failing at once.
//! - Writes take the write lock up front (`BEGIN IMMEDIATE`), because a read transaction that
//!   later upgrades can fail with `SQLITE_BUSY` without waiting when another process wrote.
//! - One connection behind a mutex: SQLite serialises writers anyway and reads are
//!   microseconds, so a pool would add code without adding throughput that matters here. The
//!   presence store ([`SqliteDirectory::presence_store`]) shares it.

mod anchor;
mod migrations;
mod presence;
mod registrations;
mod subscriptions;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use crate::{
    Aor, ChangeToken, Credential, CredentialAlgorithm, Directory, DisplayName, Domain, EntityKind,
    Error, NewUser, User, UserQuery, credential_order, normalized_credentials,
};
use migrations::{MIGRATIONS, latest_version, migrate, read_version};
pub use presence::SqlitePresenceStore;
pub use registrations::RegistrationDurability;

/// A [`Directory`] stored in one SQLite file.
#[derive(Debug)]
pub struct SqliteDirectory {
    /// Shared with the [`SqlitePresenceStore`]s made from this handle.
    conn: Arc<Mutex<Conn>>,
    /// Writes made through this handle: SQLite's `data_version` only counts other
    /// connections' commits, and [`Directory::change_token`] must see both.
    local_writes: std::sync::atomic::AtomicU64,
    /// Registrations wait for the disk ([`RegistrationDurability::Disk`]).
    registration_sync: std::sync::atomic::AtomicBool,
}

/// How [`SqliteDirectory::open_with`] treats a store whose schema is older than the binary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaUpgrade {
    /// Apply pending migrations while opening: right for a single server, where the binary and
    /// its store are upgraded together.
    #[default]
    Automatic,
    /// Fail with [`Error::SchemaOutdated`]: for pools and careful admins who upgrade the schema
    /// once, deliberately, with `herald directory prepare`.
    Refuse,
}

/// Options for opening a [`SqliteDirectory`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenOptions {
    /// What to do with an outdated schema.
    pub upgrade: SchemaUpgrade,
    /// How long a call waits for another process's write lock before failing with
    /// [`Error::Storage`].
    pub busy_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            upgrade: SchemaUpgrade::Automatic,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
        }
    }
}

impl OpenOptions {
    /// Sets [`OpenOptions::upgrade`].
    pub fn upgrade(mut self, upgrade: SchemaUpgrade) -> Self {
        self.upgrade = upgrade;
        self
    }

    /// Sets [`OpenOptions::busy_timeout`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
}

impl SqliteDirectory {
    /// The schema version this binary reads and writes.
    pub const SCHEMA_VERSION: u32 = latest_version(MIGRATIONS);

    /// Opens (creating if needed) the store at `path`, upgrading its schema if it is older than
    /// this binary.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// Opens the store at `path` with explicit options.
    ///
    /// A store newer than this binary fails with [`Error::SchemaTooNew`] before anything in the
    /// file is changed.
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Self, Error> {
        let conn = Connection::open(path).ctx("opening the directory file")?;
        Self::from_connection(conn, options)
    }

    /// A private store that vanishes when dropped, for tests and throw-away servers.
    pub fn open_in_memory() -> Result<Self, Error> {
        let conn = Connection::open_in_memory().ctx("opening an in-memory directory")?;
        Self::from_connection(conn, &OpenOptions::default())
    }

    /// Brings the store at `path` to [`Self::SCHEMA_VERSION`] and reports the version it had,
    /// for `herald directory prepare`. Running it on an up-to-date store changes nothing.
    pub fn prepare(path: impl AsRef<Path>) -> Result<Prepared, Error> {
        let mut conn = Connection::open(path).ctx("opening the directory file")?;
        configure(&mut conn, DEFAULT_BUSY_TIMEOUT)?;
        let from = read_version(&conn)?;
        check_not_too_new(from)?;
        enable_wal(&conn, DEFAULT_BUSY_TIMEOUT)?;
        migrate(&mut conn, MIGRATIONS)?;
        Ok(Prepared {
            from,
            to: Self::SCHEMA_VERSION,
        })
    }

    /// The schema version the store has now; it can differ from [`Self::SCHEMA_VERSION`] only
    /// if another process changed the file after this handle opened it.
    pub fn schema_version(&self) -> Result<u32, Error> {
        read_version(&self.lock())
    }

    fn from_connection(mut conn: Connection, options: &OpenOptions) -> Result<Self, Error> {
        configure(&mut conn, options.busy_timeout)?;
        let found = read_version(&conn)?;
        check_not_too_new(found)?;
        if found < Self::SCHEMA_VERSION && options.upgrade == SchemaUpgrade::Refuse {
            return Err(Error::SchemaOutdated {
                found,
                required: Self::SCHEMA_VERSION,
            });
        }
        enable_wal(&conn, options.busy_timeout)?;
        migrate(&mut conn, MIGRATIONS)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(Conn {
                db: conn,
                relaxed: false,
            })),
            local_writes: std::sync::atomic::AtomicU64::new(0),
            registration_sync: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The connection (see [`lock`]).
    fn lock(&self) -> MutexGuard<'_, Conn> {
        lock(&self.conn)
    }

    fn write<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let out = write_tx(&self.conn, what, f)?;
        self.note_local_write();
        Ok(out)
    }

    /// Runs `f` in one read transaction so that a user and its credentials come from the same
    /// snapshot.
    fn read<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        read_tx(&self.conn, what, f)
    }
}

/// The one connection of a store, and whether it is at the registrations' relaxed
/// `synchronous` level.
///
/// Directory writes commit with `synchronous=FULL`; registration batches may commit with
/// `NORMAL` ([`RegistrationDurability::Process`]). Switching the level costs a statement each
/// way, which at thousands of registration batches a second was a third of their cost; so the
/// level is switched lazily: [`lock_relaxed`] leaves it relaxed after a batch, and [`lock`],
/// through which every other use goes, restores `FULL` first.
#[derive(Debug)]
pub(crate) struct Conn {
    db: Connection,
    relaxed: bool,
}

impl std::ops::Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.db
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.db
    }
}

/// The shared connection at `synchronous=FULL`. A panic in another thread while holding it
/// cannot leave it mid-write (the transaction guard rolls back while unwinding), so a poisoned
/// lock is still usable.
///
/// Restoring `FULL` after registration batches is an in-memory setting that SQLite does not
/// fail in practice; if it ever did, the connection stays marked relaxed and the next lock
/// tries again, and the failure is reported by the write that follows, which SQLite then
/// refuses too.
fn lock(conn: &Mutex<Conn>) -> MutexGuard<'_, Conn> {
    let mut guard = conn
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if guard.relaxed && guard.db.pragma_update(None, "synchronous", "FULL").is_ok() {
        guard.relaxed = false;
    }
    guard
}

/// The shared connection at `synchronous=NORMAL`, for registration batches.
fn lock_relaxed(conn: &Mutex<Conn>) -> Result<MutexGuard<'_, Conn>, Error> {
    let mut guard = conn
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !guard.relaxed {
        guard
            .db
            .pragma_update(None, "synchronous", "NORMAL")
            .ctx("relaxing synchronous for registrations")?;
        guard.relaxed = true;
    }
    Ok(guard)
}

/// Runs `f` in one write transaction, taking the write lock up front; committed (and, with
/// `synchronous=FULL`, on disk) when this returns `Ok`, rolled back otherwise.
fn write_tx<T>(
    conn: &Mutex<Conn>,
    what: &'static str,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut conn = lock(conn);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx(what)?;
    let out = f(&tx)?;
    tx.commit().ctx(what)?;
    Ok(out)
}

/// Runs `f` in one read transaction (one snapshot).
fn read_tx<T>(
    conn: &Mutex<Conn>,
    what: &'static str,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut conn = lock(conn);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .ctx(what)?;
    let out = f(&tx)?;
    tx.finish().ctx(what)?;
    Ok(out)
}

impl Directory for SqliteDirectory {
    fn add_domain(&self, domain: &Domain) -> Result<(), Error> {
        let inserted = self
            .lock()
            .prepare_cached(
                "INSERT INTO domains (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![domain.as_str(), now_ms()]))
            .ctx("adding a domain")?;
        self.note_local_write();
        if inserted == 0 {
            return Err(Error::AlreadyExists {
                kind: EntityKind::Domain,
                key: domain.to_string(),
            });
        }
        Ok(())
    }

    fn list_domains(&self) -> Result<Vec<Domain>, Error> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT name FROM domains ORDER BY name")
            .ctx("listing domains")?;
        let names = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .ctx("listing domains")?;
        names
            .iter()
            .map(|n| Domain::parse(n).map_err(corrupt))
            .collect()
    }

    fn remove_domain(&self, domain: &Domain) -> Result<(), Error> {
        self.write("removing a domain", |tx| {
            let users: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM users WHERE domain = ?1",
                    [domain.as_str()],
                    |r| r.get(0),
                )
                .ctx("removing a domain")?;
            if users > 0 {
                return Err(Error::DomainInUse {
                    domain: domain.to_string(),
                    users: users.unsigned_abs(),
                });
            }
            let deleted = tx
                .execute("DELETE FROM domains WHERE name = ?1", [domain.as_str()])
                .ctx("removing a domain")?;
            if deleted == 0 {
                return Err(not_found_domain(domain));
            }
            Ok(())
        })
    }

    fn add_user(&self, user: &NewUser) -> Result<User, Error> {
        let credentials = normalized_credentials(&user.credentials)?;
        let now = now_ms();
        self.write("adding a user", |tx| {
            insert_user(tx, user, &credentials, now)
        })?;
        Ok(User {
            aor: user.aor.clone(),
            display_name: user.display_name.clone(),
            enabled: user.enabled,
            created_at: ms_to_time(now)?,
            updated_at: ms_to_time(now)?,
            credentials,
            home: user.home.clone(),
        })
    }

    fn add_users(&self, users: &[NewUser]) -> Result<usize, Error> {
        let prepared = users
            .iter()
            .map(|u| Ok((u, normalized_credentials(&u.credentials)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let now = now_ms();
        self.write("adding users", |tx| {
            for (user, credentials) in &prepared {
                insert_user(tx, user, credentials, now)?;
            }
            Ok(())
        })?;
        Ok(prepared.len())
    }

    fn get_user(&self, aor: &Aor) -> Result<Option<User>, Error> {
        self.read("looking up a user", |tx| {
            let row = tx
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE domain = ?1 AND user_key = ?2"
                ))
                .and_then(|mut s| {
                    s.query_row(
                        params![aor.domain().as_str(), aor.user_key()],
                        UserRow::read,
                    )
                    .optional()
                })
                .ctx("looking up a user")?;
            row.map(|row| row.into_user(tx)).transpose()
        })
    }

    fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, Error> {
        // Both shapes are range searches of the (domain, user_key) index that stop at the limit,
        // so a deep page costs what the first one does. An empty string sorts before every key.
        let cursor = query.cursor().map(|a| (a.domain().as_str(), a.user_key()));
        let (sql, first, after) = match (query.domain(), cursor) {
            (None, None) => (LIST_ALL_SQL, String::new(), String::new()),
            (None, Some((domain, key))) => (LIST_ALL_SQL, domain.to_owned(), key),
            (Some(domain), cursor) => {
                let after = match cursor {
                    None => String::new(),
                    Some((d, _)) if d < domain.as_str() => String::new(),
                    Some((d, key)) if d == domain.as_str() => key,
                    Some(_) => return Ok(Vec::new()),
                };
                (LIST_DOMAIN_SQL, domain.to_string(), after)
            }
        };
        let limit = i64::try_from(query.limit()).unwrap_or(i64::MAX);
        self.read("listing users", |tx| {
            let rows = tx
                .prepare_cached(sql)
                .and_then(|mut s| {
                    s.query_map(params![first, after, limit], UserRow::read)?
                        .collect::<Result<Vec<_>, _>>()
                })
                .ctx("listing users")?;
            rows.into_iter().map(|row| row.into_user(tx)).collect()
        })
    }

    fn set_display_name(&self, aor: &Aor, display_name: &DisplayName) -> Result<(), Error> {
        self.update_user(aor, "display_name", display_name.as_str())
    }

    fn set_enabled(&self, aor: &Aor, enabled: bool) -> Result<(), Error> {
        self.update_user(aor, "enabled", enabled)
    }

    fn set_home(&self, aor: &Aor, home: Option<&str>) -> Result<(), Error> {
        self.update_user(aor, "home", home)
    }

    fn set_credentials(&self, aor: &Aor, credentials: &[Credential]) -> Result<(), Error> {
        let credentials = normalized_credentials(credentials)?;
        let now = now_ms();
        self.write("replacing credentials", |tx| {
            let id: i64 = tx
                .query_row(
                    "UPDATE users SET updated_at = max(created_at, ?3) \
                     WHERE domain = ?1 AND user_key = ?2 RETURNING id",
                    params![aor.domain().as_str(), aor.user_key(), now],
                    |r| r.get(0),
                )
                .optional()
                .ctx("replacing credentials")?
                .ok_or_else(|| not_found_user(aor))?;
            tx.execute("DELETE FROM credentials WHERE user_id = ?1", [id])
                .ctx("replacing credentials")?;
            insert_credentials(tx, id, &credentials)
        })
    }

    fn remove_user(&self, aor: &Aor) -> Result<(), Error> {
        self.write("removing a user", |tx| {
            // A mailbox's owner cannot go (the schema refuses it too); say which mailbox.
            let owned: Option<String> = tx
                .query_row(
                    "SELECT m.primary_smtp FROM anchor_mailboxes m JOIN users u ON u.id = m.owner \
                     WHERE u.domain = ?1 AND u.user_key = ?2 ORDER BY m.primary_smtp LIMIT 1",
                    params![aor.domain().as_str(), aor.user_key()],
                    |r| r.get(0),
                )
                .optional()
                .ctx("removing a user")?;
            if let Some(mailbox) = owned {
                return Err(Error::UserOwnsMailbox {
                    user: aor.to_string(),
                    mailbox,
                });
            }
            let deleted = tx
                .execute(
                    "DELETE FROM users WHERE domain = ?1 AND user_key = ?2",
                    params![aor.domain().as_str(), aor.user_key()],
                )
                .ctx("removing a user")?;
            if deleted == 0 {
                return Err(not_found_user(aor));
            }
            Ok(())
        })
    }

    fn user_count(&self) -> Result<u64, Error> {
        let count: i64 = self
            .lock()
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .ctx("counting users")?;
        Ok(count.unsigned_abs())
    }

    fn change_token(&self) -> Result<ChangeToken, Error> {
        let version: i64 = self
            .lock()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .ctx("reading the data version")?;
        let local = self.local_writes.load(std::sync::atomic::Ordering::Acquire);
        Ok(ChangeToken::new(version.unsigned_abs(), local))
    }
}

impl SqliteDirectory {
    fn note_local_write(&self) {
        self.local_writes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Sets one column of a user and its `updated_at` in a single statement (atomic without an
    /// explicit transaction). `column` is always a literal from this file, never input.
    fn update_user(
        &self,
        aor: &Aor,
        column: &'static str,
        value: impl rusqlite::ToSql,
    ) -> Result<(), Error> {
        let updated = self
            .lock()
            .execute(
                &format!(
                    "UPDATE users SET {column} = ?3, updated_at = max(created_at, ?4) \
                     WHERE domain = ?1 AND user_key = ?2"
                ),
                params![aor.domain().as_str(), aor.user_key(), value, now_ms()],
            )
            .ctx("updating a user")?;
        self.note_local_write();
        if updated == 0 {
            return Err(not_found_user(aor));
        }
        Ok(())
    }
}

/// What [`SqliteDirectory::prepare`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Prepared {
    /// The schema version the store had (0 for a new store).
    pub from: u32,
    /// The schema version it has now.
    pub to: u32,
}

/// Adds what the directory was doing to a rusqlite error.
pub(crate) trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, Error>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, what: &'static str) -> Result<T, Error> {
        self.map_err(|e| Error::storage(what, e))
    }
}

/// A `users` row before its credentials are read.
struct UserRow {
    id: i64,
    domain: String,
    user_part: String,
    display_name: String,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
    home: Option<String>,
}

impl UserRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            domain: row.get(1)?,
            user_part: row.get(2)?,
            display_name: row.get(3)?,
            enabled: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
            home: row.get(7)?,
        })
    }

    fn into_user(self, tx: &Transaction<'_>) -> Result<User, Error> {
        let domain = Domain::parse(&self.domain).map_err(corrupt)?;
        let aor = Aor::new(&self.user_part, domain).map_err(corrupt)?;
        let raw = tx
            .prepare_cached("SELECT algorithm, realm, hash FROM credentials WHERE user_id = ?1")
            .and_then(|mut s| {
                s.query_map([self.id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .ctx("reading credentials")?;
        let mut credentials = raw
            .iter()
            .map(|(algorithm, realm, hash)| {
                Credential::new(CredentialAlgorithm::parse(algorithm)?, realm, hash)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        credentials.sort_by(credential_order);
        Ok(User {
            aor,
            display_name: DisplayName::parse(&self.display_name).map_err(corrupt)?,
            enabled: self.enabled,
            created_at: ms_to_time(self.created_at)?,
            updated_at: ms_to_time(self.updated_at)?,
            credentials,
            home: self.home,
        })
    }
}

fn configure(conn: &mut Connection, busy_timeout: Duration) -> Result<(), Error> {
    conn.busy_timeout(busy_timeout)
        .ctx("setting the busy timeout")?;
    conn.pragma_update(None, "foreign_keys", true)
        .ctx("enabling foreign keys")?;
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx("setting synchronous=FULL")?;
    Ok(())
}

/// Switches the file to WAL. Persistent in the file, so it runs only after the version check:
/// a store from a newer herald is never written. In-memory stores stay in `memory` mode.
///
/// The switch needs an exclusive lock, and SQLite answers `SQLITE_BUSY` at once (without its
/// busy handler) when another process is reading the file in rollback mode, as happens when two
/// pool members open a fresh store together; so it is retried here until `timeout`.
fn enable_wal(conn: &Connection, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    let mode = loop {
        let current: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ctx("reading the journal mode")?;
        if current.eq_ignore_ascii_case("wal") || current.eq_ignore_ascii_case("memory") {
            return Ok(());
        }
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(WAL_RETRY_PAUSE);
            }
            result => break result.ctx("enabling WAL")?,
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::storage(
            "enabling WAL",
            std::io::Error::other(format!("the file stayed in journal mode {mode:?}")),
        ));
    }
    Ok(())
}

fn check_not_too_new(found: u32) -> Result<(), Error> {
    if found > SqliteDirectory::SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SqliteDirectory::SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn domain_exists(tx: &Transaction<'_>, domain: &Domain) -> Result<bool, Error> {
    tx.query_row(
        "SELECT 1 FROM domains WHERE name = ?1",
        [domain.as_str()],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .ctx("checking a domain")
}

/// Inserts one user and its credentials inside the caller's write transaction.
fn insert_user(
    tx: &Transaction<'_>,
    user: &NewUser,
    credentials: &[Credential],
    now: i64,
) -> Result<(), Error> {
    let aor = &user.aor;
    if !domain_exists(tx, aor.domain())? {
        return Err(not_found_domain(aor.domain()));
    }
    let inserted = tx
        .prepare_cached(
            "INSERT INTO users (domain, user_part, user_key, display_name, enabled, \
             created_at, updated_at, home) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) \
             ON CONFLICT (domain, user_key) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                aor.domain().as_str(),
                aor.user(),
                aor.user_key(),
                user.display_name.as_str(),
                user.enabled,
                now,
                user.home,
            ])
        })
        .ctx("adding a user")?;
    if inserted == 0 {
        return Err(Error::AlreadyExists {
            kind: EntityKind::User,
            key: aor.to_string(),
        });
    }
    insert_credentials(tx, tx.last_insert_rowid(), credentials)
}

fn insert_credentials(
    tx: &Transaction<'_>,
    user_id: i64,
    creds: &[Credential],
) -> Result<(), Error> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO credentials (user_id, algorithm, realm, hash) VALUES (?1, ?2, ?3, ?4)",
        )
        .ctx("storing credentials")?;
    for c in creds {
        stmt.execute(params![
            user_id,
            c.algorithm().as_str(),
            c.realm(),
            c.hash()
        ])
        .ctx("storing credentials")?;
    }
    Ok(())
}

fn not_found_domain(domain: &Domain) -> Error {
    Error::NotFound {
        kind: EntityKind::Domain,
        key: domain.to_string(),
    }
}

fn not_found_user(aor: &Aor) -> Error {
    Error::NotFound {
        kind: EntityKind::User,
        key: aor.to_string(),
    }
}

fn corrupt(e: Error) -> Error {
    Error::Corrupt(e.to_string())
}

/// Wall-clock time as stored: Unix milliseconds. A clock before 1970 stores 0.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms_to_time(ms: i64) -> Result<SystemTime, Error> {
    u64::try_from(ms)
        .ok()
        .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
        .ok_or_else(|| Error::Corrupt(format!("timestamp {ms} is out of range")))
}

/// All users after the cursor `(?1, ?2)`, at most `?3`.
const LIST_ALL_SQL: &str = concat!(
    "SELECT id, domain, user_part, display_name, enabled, created_at, updated_at, home FROM users ",
    "WHERE (domain, user_key) > (?1, ?2) ORDER BY domain, user_key LIMIT ?3"
);
/// Users of domain `?1` whose key is after `?2`, at most `?3`.
const LIST_DOMAIN_SQL: &str = concat!(
    "SELECT id, domain, user_part, display_name, enabled, created_at, updated_at, home FROM users ",
    "WHERE domain = ?1 AND user_key > ?2 ORDER BY user_key LIMIT ?3"
);
/// The columns [`UserRow::read`] expects, in order.
const USER_COLUMNS: &str =
    "id, domain, user_part, display_name, enabled, created_at, updated_at, home";
/// Long enough to ride out another process's migration or a burst of admin writes; short
/// enough that a wedged lock shows up as an error rather than a hung request.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Between attempts to switch a contended fresh file to WAL.
const WAL_RETRY_PAUSE: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests;
