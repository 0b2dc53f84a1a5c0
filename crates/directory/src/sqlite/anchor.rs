//! The mailbox-anchoring directory on SQLite: [`AnchorStore`] for [`SqliteDirectory`].
//!
//! The anchoring directory's users are the directory's users: a mailbox's owner is a `users`
//! row, so `herald user add` creates someone who can own a mailbox, authenticate to the
//! anchoring proxy and open a management shell. [`AnchorStore::put_user`] therefore creates a
//! directory account (no credentials, enabled) for a user it does not find, in a domain the
//! directory serves, and [`AnchorStore::delete_user`] removes the account. Users whose address
//! is not a valid mailbox logon name (a SIP user part with `(`, say) are left out of the
//! anchoring directory rather than making it fail to load.
//!
//! Every method is one transaction (`BEGIN IMMEDIATE` for writes), so an admin command in
//! another process never sees half a change, and every write moves
//! [`crate::Directory::change_token`], which is how a running `herald serve` notices changes.
//!
//! Times are stored as Unix nanoseconds, so an audit record reads back exactly as written;
//! times before 1970 or after 2262 are refused.
//!
//! Differences from [`herald_anchor::store::MemoryStore`] that no caller can reach through
//! [`herald_anchor::store::apply_change`]: the schema refuses rows that break a rule outright
//! (a copy outside its DAG, a 17th member) instead of storing them for
//! [`AnchorStore::load_topology`] to report, and an event about a database or server that is no
//! longer in the directory is logged without updating the active-copy map. The event log keeps
//! the newest [`MAX_EVENTS`] events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald_anchor::active_manager::ActiveCopy;
use herald_anchor::model::{
    AuditAction, AuditRecord, Dag, DagName, Database, DatabaseCopy, DatabaseName, ExchangeGuid,
    Mailbox, MailboxType, PreviousMailbox, Server, ServerName, Topology, User, UserId,
};
use herald_anchor::store::{AnchorStore, EventRecord, StoreError};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Context, SqliteDirectory, now_ms};
use crate::{Aor, Domain, Error};

impl AnchorStore for SqliteDirectory {
    fn load_topology(&self) -> Result<Topology, StoreError> {
        let parts = self.read("loading the anchoring directory", load_parts)?;
        Ok(Topology::from_parts(
            parts.servers,
            parts.dags,
            parts.databases,
            parts.users,
            parts.mailboxes,
        )?)
    }

    fn put_server(&self, server: &Server) -> Result<(), StoreError> {
        self.write("storing a mailbox server", |tx| {
            tx.execute(
                "INSERT INTO anchor_servers (name, address, site, build) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (name) DO UPDATE SET address = excluded.address, \
                 site = excluded.site, build = excluded.build",
                params![
                    server.name.as_str(),
                    server.address.to_string(),
                    server.site.as_str(),
                    server.build.to_string()
                ],
            )
            .ctx("storing a mailbox server")?;
            Ok(())
        })?;
        Ok(())
    }

    fn delete_server(&self, name: &ServerName) -> Result<(), StoreError> {
        self.write("deleting a mailbox server", |tx| {
            tx.execute(
                "DELETE FROM anchor_servers WHERE name = ?1",
                [name.as_str()],
            )
            .ctx("deleting a mailbox server")?;
            Ok(())
        })?;
        Ok(())
    }

    fn put_dag(&self, dag: &Dag) -> Result<(), StoreError> {
        self.write("storing a DAG", |tx| {
            tx.execute(
                "INSERT INTO anchor_dags (name) VALUES (?1) ON CONFLICT DO NOTHING",
                [dag.name.as_str()],
            )
            .ctx("storing a DAG")?;
            tx.execute(
                "DELETE FROM anchor_dag_members WHERE dag = ?1",
                [dag.name.as_str()],
            )
            .ctx("storing a DAG")?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO anchor_dag_members (dag, position, server) VALUES (?1, ?2, ?3)",
                )
                .ctx("storing DAG members")?;
            for (position, member) in dag.members.iter().enumerate() {
                insert
                    .execute(params![dag.name.as_str(), position as i64, member.as_str()])
                    .ctx("storing DAG members")?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn delete_dag(&self, name: &DagName) -> Result<(), StoreError> {
        self.write("deleting a DAG", |tx| {
            tx.execute("DELETE FROM anchor_dags WHERE name = ?1", [name.as_str()])
                .ctx("deleting a DAG")?;
            Ok(())
        })?;
        Ok(())
    }

    fn put_database(&self, database: &Database) -> Result<(), StoreError> {
        self.write("storing a database", |tx| {
            let dag = database.dag.as_ref().map(DagName::as_str);
            tx.execute(
                "INSERT INTO anchor_databases (name, dag) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET dag = excluded.dag",
                params![database.name.as_str(), dag],
            )
            .ctx("storing a database")?;
            tx.execute(
                "DELETE FROM anchor_database_copies WHERE database = ?1",
                [database.name.as_str()],
            )
            .ctx("storing database copies")?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO anchor_database_copies \
                     (database, server, activation_preference, copy_queue_length) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .ctx("storing database copies")?;
            for copy in &database.copies {
                let queue = copy
                    .copy_queue_length
                    .map(|q| i64::try_from(q).unwrap_or(i64::MAX));
                insert
                    .execute(params![
                        database.name.as_str(),
                        copy.server.as_str(),
                        i64::from(copy.activation_preference),
                        queue
                    ])
                    .ctx("storing database copies")?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn delete_database(&self, name: &DatabaseName) -> Result<(), StoreError> {
        self.write("deleting a database", |tx| {
            tx.execute(
                "DELETE FROM anchor_databases WHERE name = ?1",
                [name.as_str()],
            )
            .ctx("deleting a database")?;
            Ok(())
        })?;
        Ok(())
    }

    fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.write("storing a user's mailbox info", |tx| put_user(tx, user))?;
        Ok(())
    }

    fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        self.write("deleting a user", |tx| {
            let (user_key, domain) = split_user(id);
            tx.execute(
                "DELETE FROM users WHERE domain = ?1 AND user_key = ?2",
                params![domain, user_key],
            )
            .ctx("deleting a user")?;
            Ok(())
        })?;
        Ok(())
    }

    fn put_mailbox(&self, mailbox: &Mailbox) -> Result<(), StoreError> {
        self.write("storing a mailbox", |tx| {
            let owner = match &mailbox.owner {
                Some(id) => Some(user_row(tx, id)?.ok_or_else(|| unknown_user(id))?),
                None => None,
            };
            tx.execute(
                "INSERT INTO anchor_mailboxes (guid, primary_smtp, owner, kind, database) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (guid) DO UPDATE SET \
                 primary_smtp = excluded.primary_smtp, owner = excluded.owner, \
                 kind = excluded.kind, database = excluded.database",
                params![
                    mailbox.guid.to_string(),
                    mailbox.primary_smtp.as_str(),
                    owner,
                    mailbox.kind.as_str(),
                    mailbox.database.as_str()
                ],
            )
            .ctx("storing a mailbox")?;
            Ok(())
        })?;
        Ok(())
    }

    fn delete_mailbox(&self, guid: &ExchangeGuid, owner: Option<&User>) -> Result<(), StoreError> {
        self.write("removing a mailbox", |tx| {
            tx.execute(
                "DELETE FROM anchor_mailboxes WHERE guid = ?1",
                [guid.to_string()],
            )
            .ctx("removing a mailbox")?;
            match owner {
                Some(user) => put_user(tx, user),
                None => Ok(()),
            }
        })?;
        Ok(())
    }

    fn save_cleared_user(&self, user: &User, audit: &AuditRecord) -> Result<(), StoreError> {
        self.write("clearing previous mailbox info", |tx| {
            put_user(tx, user)?;
            tx.execute(
                "INSERT INTO anchor_audit (at_ns, actor, user_name, action, cleared_guid, \
                 cleared_database, cleared_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    to_ns(audit.at)?,
                    audit.actor,
                    audit.user.as_str(),
                    audit.action.as_str(),
                    audit.cleared.exchange_guid.to_string(),
                    audit.cleared.database.as_str(),
                    audit.cleared.recipient_type.as_str()
                ],
            )
            .ctx("writing the audit record")?;
            Ok(())
        })?;
        Ok(())
    }

    fn audit_log(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = self.read("reading the audit log", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT at_ns, actor, user_name, action, cleared_guid, cleared_database, \
                     cleared_type FROM anchor_audit ORDER BY id",
                )
                .ctx("reading the audit log")?;
            stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .ctx("reading the audit log")
        })?;
        rows.into_iter()
            .map(|(at, actor, user, action, guid, database, kind)| {
                if action != AuditAction::PermanentlyClearPreviousMailboxInfo.as_str() {
                    return Err(corrupt(format!("unknown audit action {action:?}")));
                }
                Ok(AuditRecord {
                    at: from_ns(at)?,
                    actor,
                    user: parse(&user, "audited user")?,
                    action: AuditAction::PermanentlyClearPreviousMailboxInfo,
                    cleared: PreviousMailbox {
                        exchange_guid: parse(&guid, "audited GUID")?,
                        database: parse(&database, "audited database")?,
                        recipient_type: parse(&kind, "audited recipient type")?,
                    },
                })
            })
            .collect()
    }

    fn load_active_copies(&self) -> Result<Vec<(DatabaseName, ActiveCopy)>, StoreError> {
        let rows = self.read("loading the active-copy map", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT database, server FROM anchor_active_copies ORDER BY database",
                )
                .ctx("loading the active-copy map")?;
            stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .ctx("loading the active-copy map")
        })?;
        rows.into_iter()
            .map(|(database, server)| {
                let copy = match server {
                    Some(s) => ActiveCopy::Mounted(parse(&s, "active server")?),
                    None => ActiveCopy::Dismounted,
                };
                Ok((parse(&database, "database name")?, copy))
            })
            .collect()
    }

    fn record_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        let at = to_ns(event.at)?;
        let database = event.database.as_ref().map(DatabaseName::as_str);
        let (state, server) = match &event.active {
            Some(ActiveCopy::Mounted(s)) => (Some("mounted"), Some(s.as_str())),
            Some(ActiveCopy::Dismounted) => (Some("dismounted"), None),
            None => (None, None),
        };
        self.write("recording an Active Manager event", |tx| {
            tx.prepare_cached(
                "INSERT INTO anchor_events (at_ns, database, state, server, message) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![at, database, state, server, event.message]))
            .ctx("recording an Active Manager event")?;
            if let (Some(database), Some(_)) = (database, state) {
                // Only databases (and servers) still in the directory have a place in the map.
                tx.prepare_cached(
                    "INSERT INTO anchor_active_copies (database, server, updated_ns) \
                     SELECT ?1, ?2, ?3 WHERE EXISTS \
                     (SELECT 1 FROM anchor_databases WHERE name = ?1) \
                     AND (?2 IS NULL OR EXISTS (SELECT 1 FROM anchor_servers WHERE name = ?2)) \
                     ON CONFLICT (database) DO UPDATE SET server = excluded.server, \
                     updated_ns = excluded.updated_ns",
                )
                .and_then(|mut s| s.execute(params![database, server, at]))
                .ctx("updating the active-copy map")?;
            }
            tx.prepare_cached(
                "DELETE FROM anchor_events WHERE id <= (SELECT MAX(id) FROM anchor_events) - ?1",
            )
            .and_then(|mut s| s.execute([MAX_EVENTS]))
            .ctx("trimming the event log")?;
            Ok(())
        })?;
        Ok(())
    }

    fn recent_events(&self, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = self.read("reading the event log", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT at_ns, database, state, server, message FROM anchor_events \
                     ORDER BY id DESC LIMIT ?1",
                )
                .ctx("reading the event log")?;
            stmt.query_map([limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .ctx("reading the event log")
        })?;
        rows.reverse();
        rows.into_iter()
            .map(|(at, database, state, server, message)| {
                let active = match (state.as_deref(), server) {
                    (None, _) => None,
                    (Some("mounted"), Some(s)) => {
                        Some(ActiveCopy::Mounted(parse(&s, "event server")?))
                    }
                    (Some("dismounted"), None) => Some(ActiveCopy::Dismounted),
                    (Some(other), _) => {
                        return Err(corrupt(format!("event state {other:?} is not valid")));
                    }
                };
                Ok(EventRecord {
                    at: from_ns(at)?,
                    database: database.map(|d| parse(&d, "event database")).transpose()?,
                    active,
                    message,
                })
            })
            .collect()
    }
}

/// Events the log keeps; older ones are dropped as new ones arrive. At one failover a minute
/// that is more than two months of history.
const MAX_EVENTS: i64 = 100_000;

/// The rows of the anchoring directory, parsed but not yet checked against the model's rules.
struct Parts {
    servers: Vec<Server>,
    dags: Vec<Dag>,
    databases: Vec<Database>,
    users: Vec<User>,
    mailboxes: Vec<Mailbox>,
}

fn load_parts(tx: &Transaction<'_>) -> Result<Parts, Error> {
    const WHAT: &str = "loading the anchoring directory";
    let servers = tx
        .prepare_cached("SELECT name, address, site, build FROM anchor_servers ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .ctx(WHAT)?
        .into_iter()
        .map(|(name, address, site, build)| {
            Ok(Server {
                name: parse_text(&name, "server name")?,
                address: parse_text(&address, "server address")?,
                site: parse_text(&site, "site name")?,
                build: parse_text(&build, "build number")?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;

    let mut dags: Vec<Dag> = Vec::new();
    let members = tx
        .prepare_cached(
            "SELECT d.name, m.server FROM anchor_dags d \
             LEFT JOIN anchor_dag_members m ON m.dag = d.name ORDER BY d.name, m.position",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .ctx(WHAT)?;
    for (dag, member) in members {
        let name: DagName = parse_text(&dag, "DAG name")?;
        if dags.last().is_none_or(|d| d.name != name) {
            dags.push(Dag {
                name,
                members: Vec::new(),
            });
        }
        if let (Some(d), Some(m)) = (dags.last_mut(), member) {
            d.members.push(parse_text(&m, "DAG member")?);
        }
    }

    let mut databases: Vec<Database> = Vec::new();
    let copies = tx
        .prepare_cached(
            "SELECT d.name, d.dag, c.server, c.activation_preference, c.copy_queue_length \
             FROM anchor_databases d LEFT JOIN anchor_database_copies c ON c.database = d.name \
             ORDER BY d.name, c.activation_preference",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .ctx(WHAT)?;
    for (name, dag, server, preference, queue) in copies {
        let name: DatabaseName = parse_text(&name, "database name")?;
        if databases.last().is_none_or(|d| d.name != name) {
            databases.push(Database {
                name,
                dag: dag.map(|d| parse_text(&d, "DAG name")).transpose()?,
                copies: Vec::new(),
            });
        }
        if let (Some(d), Some(server), Some(preference)) =
            (databases.last_mut(), server, preference)
        {
            d.copies.push(DatabaseCopy {
                server: parse_text(&server, "copy server")?,
                activation_preference: u32::try_from(preference)
                    .map_err(|_| Error::Corrupt(format!("preference {preference} out of range")))?,
                copy_queue_length: queue
                    .map(|q| {
                        u64::try_from(q).map_err(|_| {
                            Error::Corrupt(format!("copy queue length {q} out of range"))
                        })
                    })
                    .transpose()?,
            });
        }
    }

    let users = tx
        .prepare_cached(
            "SELECT u.user_key, u.domain, a.sid, a.previous_guid, a.previous_database, \
             a.previous_type FROM users u LEFT JOIN anchor_users a ON a.user_id = u.id \
             ORDER BY u.domain, u.user_key",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .ctx(WHAT)?;
    let mut parsed_users = Vec::with_capacity(users.len());
    for (user_key, domain, sid, guid, database, kind) in users {
        // A SIP user part a mailbox logon name cannot spell is not an anchoring user.
        let Ok(id) = format!("{user_key}@{domain}").parse::<UserId>() else {
            continue;
        };
        let previous_mailbox = match (guid, database, kind) {
            (Some(g), Some(d), Some(k)) => Some(PreviousMailbox {
                exchange_guid: parse_text(&g, "previous mailbox GUID")?,
                database: parse_text(&d, "previous database")?,
                recipient_type: parse_text(&k, "previous recipient type")?,
            }),
            _ => None,
        };
        parsed_users.push(User {
            id,
            sid: sid.map(|s| parse_text(&s, "SID")).transpose()?,
            previous_mailbox,
        });
    }

    let mailboxes = tx
        .prepare_cached(
            "SELECT m.guid, m.primary_smtp, u.user_key, u.domain, m.kind, m.database \
             FROM anchor_mailboxes m LEFT JOIN users u ON u.id = m.owner ORDER BY m.guid",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .ctx(WHAT)?
        .into_iter()
        .map(|(guid, smtp, owner_key, owner_domain, kind, database)| {
            let owner = match (owner_key, owner_domain) {
                (Some(k), Some(d)) => Some(parse_text(&format!("{k}@{d}"), "mailbox owner")?),
                _ => None,
            };
            Ok(Mailbox {
                guid: parse_text(&guid, "mailbox GUID")?,
                primary_smtp: parse_text(&smtp, "primary SMTP address")?,
                owner,
                kind: parse_text::<MailboxType>(&kind, "mailbox type")?,
                database: parse_text(&database, "mailbox database")?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;

    Ok(Parts {
        servers,
        dags,
        databases,
        users: parsed_users,
        mailboxes,
    })
}

/// Writes a user's anchoring fields, creating the directory account if there is none.
fn put_user(tx: &Transaction<'_>, user: &User) -> Result<(), Error> {
    let id = match user_row(tx, &user.id)? {
        Some(id) => id,
        None => create_account(tx, &user.id)?,
    };
    let previous = user.previous_mailbox.as_ref();
    tx.prepare_cached(
        "INSERT INTO anchor_users (user_id, sid, previous_guid, previous_database, previous_type) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id) DO UPDATE SET sid = excluded.sid, \
         previous_guid = excluded.previous_guid, previous_database = excluded.previous_database, \
         previous_type = excluded.previous_type",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            user.sid.as_ref().map(|s| s.as_str()),
            previous.map(|p| p.exchange_guid.to_string()),
            previous.map(|p| p.database.as_str()),
            previous.map(|p| p.recipient_type.as_str()),
        ])
    })
    .ctx("storing a user's mailbox info")?;
    Ok(())
}

/// A directory account for an anchoring user the directory does not have yet: enabled, no
/// display name, no credentials (it cannot authenticate until given a password).
fn create_account(tx: &Transaction<'_>, id: &UserId) -> Result<i64, Error> {
    let (user_key, domain) = split_user(id);
    let domain = Domain::parse(domain)?;
    let aor = Aor::new(user_key, domain)?;
    if !super::domain_exists(tx, aor.domain())? {
        return Err(Error::NotFound {
            kind: crate::EntityKind::Domain,
            key: aor.domain().to_string(),
        });
    }
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO users (domain, user_part, user_key, display_name, enabled, created_at, \
         updated_at) VALUES (?1, ?2, ?3, '', 1, ?4, ?4) RETURNING id",
    )
    .and_then(|mut s| {
        s.query_row(
            params![aor.domain().as_str(), aor.user(), aor.user_key(), now],
            |r| r.get(0),
        )
    })
    .ctx("creating a directory account for a mailbox user")
}

/// The `users.id` of an anchoring user, if the directory has them.
fn user_row(tx: &Transaction<'_>, id: &UserId) -> Result<Option<i64>, Error> {
    let (user_key, domain) = split_user(id);
    tx.prepare_cached("SELECT id FROM users WHERE domain = ?1 AND user_key = ?2")
        .and_then(|mut s| {
            s.query_row(params![domain, user_key], |r| r.get(0))
                .optional()
        })
        .ctx("looking up a mailbox user")
}

/// A logon name's (user key, domain): both are lower case already, as the directory keys them.
fn split_user(id: &UserId) -> (&str, &str) {
    id.as_str().rsplit_once('@').unwrap_or((id.as_str(), ""))
}

fn unknown_user(id: &UserId) -> Error {
    Error::NotFound {
        kind: crate::EntityKind::User,
        key: id.to_string(),
    }
}

fn parse_text<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| Error::Corrupt(format!("{what} {text:?}: {e}")))
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    parse_text(text, what).map_err(StoreError::from)
}

fn corrupt(message: String) -> StoreError {
    StoreError::from(Error::Corrupt(message))
}

fn to_ns(at: SystemTime) -> Result<i64, Error> {
    at.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| Error::invalid("time", "before 1970 or after 2262"))
}

fn from_ns(ns: i64) -> Result<SystemTime, StoreError> {
    u64::try_from(ns)
        .ok()
        .and_then(|ns| UNIX_EPOCH.checked_add(Duration::from_nanos(ns)))
        .ok_or_else(|| corrupt(format!("timestamp {ns} is out of range")))
}

/// Lets `?` turn a directory error into the anchoring store's.
impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

#[cfg(test)]
mod tests;
