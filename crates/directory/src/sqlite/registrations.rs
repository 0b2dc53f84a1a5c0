//! Acknowledged registrations on SQLite (schema migration 5), so a restart signs nobody out.
//!
//! The pipeline writes a user's whole set of persistable bindings after each REGISTER that
//! changed it and before its 200 OK leaves; many such writes are committed in one transaction
//! (group commit). These writes do not move [`crate::Directory::change_token`]: a registration
//! is not a directory change, and the user caches key on that token.
//!
//! How durable a commit is before the 200 OK goes is [`RegistrationDurability`]: by default
//! it survives the process (a crash, a kill, a restart) without waiting for the disk, which at
//! thousands of registrations a second on a busy disk is the difference between milliseconds
//! and a second per REGISTER; `Disk` also survives a power cut.

use rusqlite::{Transaction, params};

use super::{Context, SqliteDirectory, read_tx, write_tx};
use crate::{Aor, Error, RegistrationStore, StoredBinding, StoredRegistrations};

/// How durable a registration is when its 200 OK is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RegistrationDurability {
    /// Committed to the write-ahead log (SQLite `synchronous=NORMAL` in WAL mode): survives
    /// the process ending in any way; the last commits may be lost if the machine loses power.
    #[default]
    Process,
    /// Committed and synced to disk (`synchronous=FULL`): survives a power cut too.
    Disk,
}

impl SqliteDirectory {
    /// Sets how durable registrations are before they are acknowledged.
    pub fn set_registration_durability(&self, durability: RegistrationDurability) {
        self.registration_sync.store(
            durability == RegistrationDurability::Disk,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Deletes the rows of soft-state `table` (`registrations`, `subscriptions`: always a
    /// literal of this crate, never input) that expired by `now_ms`, before they are loaded at
    /// start, so they never come back. `what` names the step in errors.
    pub(super) fn drop_expired(
        &self,
        table: &'static str,
        what: &'static str,
        now_ms: i64,
    ) -> Result<(), Error> {
        write_tx(&self.conn, what, |tx| {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE expires_at <= ?1"))
                .and_then(|mut s| s.execute(params![now_ms]))
                .ctx(what)?;
            Ok(())
        })
    }

    /// Runs `f` in one write transaction committed at the registration durability: for the
    /// acknowledged soft state written in batches (registrations, subscription dialogs).
    pub(super) fn write_soft_state<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let full = self
            .registration_sync
            .load(std::sync::atomic::Ordering::Relaxed);
        // Directory writes sync every commit; a batch here only waits for the log, unless so
        // configured (see `Conn` for how the level is switched).
        let mut conn = if full {
            super::lock(&self.conn)
        } else {
            super::lock_relaxed(&self.conn)?
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx(what)?;
        let out = f(&tx)?;
        tx.commit().ctx(what)?;
        Ok(out)
    }
}

impl RegistrationStore for SqliteDirectory {
    fn save_registrations(&self, batch: &[(Aor, Vec<StoredBinding>)]) -> Result<(), Error> {
        self.write_soft_state("saving registrations", |tx| {
            for (aor, bindings) in batch {
                save_one(tx, aor, bindings)?;
            }
            Ok(())
        })
    }

    fn load_registrations(&self, now_ms: i64) -> Result<Vec<StoredRegistrations>, Error> {
        self.drop_expired("registrations", "dropping expired registrations", now_ms)?;
        read_tx(&self.conn, "loading registrations", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT u.user_part, u.domain, r.contact, r.params, r.instance, r.reg_id, r.q,
                            r.epid, r.call_id, r.cseq, r.expires_at, r.flow, r.source, r.user_agent,
                            u.home, r.server
                     FROM registrations r JOIN users u ON u.id = r.user_id
                     WHERE u.enabled = 1
                     ORDER BY r.user_id, r.position",
                )
                .ctx("loading registrations")?;
            let rows = stmt
                .query_map([], |r| {
                    let user: String = r.get(0)?;
                    let domain: String = r.get(1)?;
                    Ok((
                        format!("{user}@{domain}"),
                        r.get::<_, Option<String>>(14)?,
                        StoredBinding {
                            contact: r.get(2)?,
                            params: r.get(3)?,
                            instance: r.get(4)?,
                            reg_id: r.get(5)?,
                            q: r.get(6)?,
                            epid: r.get(7)?,
                            call_id: r.get(8)?,
                            cseq: r.get(9)?,
                            expires_at_ms: r.get(10)?,
                            flow: r.get(11)?,
                            source: r.get(12)?,
                            user_agent: r.get(13)?,
                            server: r.get(15)?,
                        },
                    ))
                })
                .ctx("loading registrations")?;
            let mut out: Vec<StoredRegistrations> = Vec::new();
            for row in rows {
                let (aor, home, binding) = row.ctx("reading a registration")?;
                let aor = Aor::parse(&aor)
                    .map_err(|e| Error::Corrupt(format!("registration of {aor}: {e}")))?;
                match out.last_mut() {
                    Some(last) if last.aor == aor => last.bindings.push(binding),
                    _ => out.push(StoredRegistrations {
                        aor,
                        home,
                        bindings: vec![binding],
                    }),
                }
            }
            Ok(out)
        })
    }
}

/// Replaces `aor`'s rows with `bindings`. A user removed meanwhile has nothing to keep.
fn save_one(tx: &Transaction<'_>, aor: &Aor, bindings: &[StoredBinding]) -> Result<(), Error> {
    let Some(user_id) = super::presence::user_row(tx, aor.domain().as_str(), &aor.user_key())?
    else {
        return Ok(());
    };
    tx.prepare_cached("DELETE FROM registrations WHERE user_id = ?1")
        .and_then(|mut s| s.execute(params![user_id]))
        .ctx("replacing registrations")?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO registrations (user_id, position, contact, params, instance, reg_id, q,
                 epid, call_id, cseq, expires_at, flow, source, user_agent, server)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .ctx("saving a registration")?;
    for (position, b) in bindings.iter().enumerate() {
        insert
            .execute(params![
                user_id,
                i64::try_from(position).unwrap_or(i64::MAX),
                b.contact,
                b.params,
                b.instance,
                b.reg_id,
                b.q,
                b.epid,
                b.call_id,
                b.cseq,
                b.expires_at_ms,
                b.flow,
                b.source,
                b.user_agent,
                b.server,
            ])
            .ctx("saving a registration")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Directory, Domain, NewUser};

    fn binding(contact: &str, expires_at_ms: i64) -> StoredBinding {
        StoredBinding {
            contact: contact.to_owned(),
            params: ";+sip.instance=\"<urn:uuid:1>\"".to_owned(),
            instance: Some("<urn:uuid:1>".to_owned()),
            reg_id: Some(1),
            q: Some(500),
            epid: Some("01010101".to_owned()),
            call_id: "c1".to_owned(),
            cseq: 7,
            expires_at_ms,
            flow: "udp:0:192.0.2.7:5060".to_owned(),
            source: "192.0.2.7:5060/udp".to_owned(),
            user_agent: Some("UCCAPI/15.0".to_owned()),
            server: String::new(),
        }
    }

    fn directory(path: &std::path::Path) -> SqliteDirectory {
        let dir = SqliteDirectory::open(path).expect("opens");
        let _ = dir.add_domain(&Domain::parse("example.test").expect("domain"));
        for u in ["alice", "bob"] {
            let aor = Aor::parse(&format!("{u}@example.test")).expect("aor");
            let _ = dir.add_user(&NewUser::new(aor));
        }
        dir
    }

    #[test]
    fn saved_bindings_come_back_after_reopening_and_expired_ones_do_not() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("d.sqlite");
        let alice = Aor::parse("alice@example.test").expect("aor");
        let bob = Aor::parse("bob@example.test").expect("aor");
        {
            let dir = directory(&path);
            let token = dir.change_token().expect("token");
            dir.save_registrations(&[
                (
                    alice.clone(),
                    vec![
                        binding("sip:a@192.0.2.7", 10_000),
                        binding("sip:a2@192.0.2.7", 20_000),
                    ],
                ),
                (bob, vec![binding("sip:b@192.0.2.8", 5_000)]),
            ])
            .expect("saved");
            assert_eq!(
                dir.change_token().expect("token"),
                token,
                "caches are not flushed"
            );
        }
        let dir = directory(&path);
        let loaded = dir.load_registrations(6_000).expect("loaded");
        assert_eq!(
            loaded,
            vec![StoredRegistrations {
                aor: alice,
                home: None,
                bindings: vec![
                    binding("sip:a@192.0.2.7", 10_000),
                    binding("sip:a2@192.0.2.7", 20_000)
                ],
            }]
        );
        // Expired rows are gone for good.
        assert_eq!(dir.load_registrations(0).expect("loaded").len(), 1);
    }

    #[test]
    fn a_save_replaces_the_users_set_and_an_empty_set_removes_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = directory(&tmp.path().join("d.sqlite"));
        let alice = Aor::parse("alice@example.test").expect("aor");
        dir.save_registrations(&[(alice.clone(), vec![binding("sip:a@x", 10_000)])])
            .expect("saved");
        dir.save_registrations(&[(alice.clone(), vec![binding("sip:b@x", 10_000)])])
            .expect("saved");
        assert_eq!(
            dir.load_registrations(0).expect("loaded"),
            vec![StoredRegistrations {
                aor: alice.clone(),
                home: None,
                bindings: vec![binding("sip:b@x", 10_000)],
            }]
        );
        dir.save_registrations(&[(alice, vec![])]).expect("saved");
        assert!(dir.load_registrations(0).expect("loaded").is_empty());
    }

    #[test]
    fn removing_the_user_removes_its_registrations() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = directory(&tmp.path().join("d.sqlite"));
        let alice = Aor::parse("alice@example.test").expect("aor");
        dir.save_registrations(&[(alice.clone(), vec![binding("sip:a@x", 10_000)])])
            .expect("saved");
        dir.remove_user(&alice).expect("removed");
        assert!(dir.load_registrations(0).expect("loaded").is_empty());
        // Saving for a user that no longer exists keeps nothing and is not an error.
        dir.save_registrations(&[(alice, vec![binding("sip:a@x", 10_000)])])
            .expect("saved");
        assert!(dir.load_registrations(0).expect("loaded").is_empty());
    }
}
