//! Acknowledged presence subscription dialogs on SQLite (schema migration 7), so a restart
//! does not end them silently.
//!
//! herald's subscription writer applies the presence engine's changes (a dialog created,
//! refreshed, moved, its CSeq reservation renewed, ended) in batches, one transaction each,
//! before the replies and notifications that depend on them are sent (group commit). Like
//! registrations, these writes do not move [`crate::Directory::change_token`], and they are as
//! durable as [`crate::RegistrationDurability`] says.

use herald_presence::engine::{StoredSubscription, SubscriptionChange};
use rusqlite::{Transaction, params};

use super::{Context, SqliteDirectory, read_tx};
use crate::{Error, SubscriptionStore};

impl SubscriptionStore for SqliteDirectory {
    fn save_subscriptions(
        &self,
        server: &str,
        changes: &[SubscriptionChange<String>],
    ) -> Result<(), Error> {
        self.write_soft_state("saving subscriptions", |tx| {
            for change in changes {
                match change {
                    SubscriptionChange::Put(row) => put(tx, server, row)?,
                    SubscriptionChange::Delete(tag) => {
                        tx.prepare_cached("DELETE FROM subscriptions WHERE local_tag = ?1")
                            .and_then(|mut s| s.execute(params![tag]))
                            .ctx("deleting a subscription")?;
                    }
                }
            }
            Ok(())
        })
    }

    fn load_subscriptions(
        &self,
        server: &str,
        now_ms: i64,
    ) -> Result<Vec<StoredSubscription<String>>, Error> {
        self.drop_expired("subscriptions", "dropping expired subscriptions", now_ms)?;
        read_tx(&self.conn, "loading subscriptions", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT s.local_tag, u.user_part, u.domain, s.package, s.event_id, s.call_id,
                            s.remote_tag, s.remote_target, s.route, s.resource, s.list_uri,
                            s.list, s.format, s.flags, s.cseq, s.duration, s.expires_at, s.flow
                     FROM subscriptions s JOIN users u ON u.id = s.user_id
                     WHERE u.enabled = 1 AND s.server = ?1
                     ORDER BY s.expires_at",
                )
                .ctx("loading subscriptions")?;
            let rows = stmt
                .query_map(params![server], |r| {
                    let user: String = r.get(1)?;
                    let domain: String = r.get(2)?;
                    let list: String = r.get(11)?;
                    Ok(StoredSubscription {
                        local_tag: r.get(0)?,
                        watcher: aor(1, &format!("{user}@{domain}"))?,
                        package: r.get(3)?,
                        event_id: r.get(4)?,
                        call_id: r.get(5)?,
                        remote_tag: r.get(6)?,
                        remote_target: r.get(7)?,
                        route: r.get(8)?,
                        resource: r
                            .get::<_, Option<String>>(9)?
                            .map(|a| aor(9, &a))
                            .transpose()?,
                        list_uri: r.get(10)?,
                        list: list
                            .lines()
                            .filter(|l| !l.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        format: r.get(12)?,
                        flags: r.get(13)?,
                        cseq: r.get(14)?,
                        duration: r.get(15)?,
                        expires_at_ms: r.get(16)?,
                        flow: r.get(17)?,
                    })
                })
                .ctx("loading subscriptions")?;
            rows.map(|row| row.ctx("reading a subscription")).collect()
        })
    }
}

/// The engine's form of a stored `user@domain` (column `column`).
fn aor(column: usize, text: &str) -> rusqlite::Result<herald_registrar::Aor> {
    herald_registrar::Aor::parse(&text.to_ascii_lowercase()).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Inserts or replaces one row. A subscriber removed meanwhile has nothing to keep.
fn put(tx: &Transaction<'_>, server: &str, s: &StoredSubscription<String>) -> Result<(), Error> {
    let Some((user_key, domain)) = s.watcher.as_str().rsplit_once('@') else {
        return Ok(());
    };
    let Some(user_id) = super::presence::user_row(tx, domain, user_key)? else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO subscriptions (local_tag, user_id, server, package, event_id,
             call_id, remote_tag, remote_target, route, resource, list_uri, list, format, flags,
             cseq, duration, expires_at, flow)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            s.local_tag,
            user_id,
            server,
            s.package,
            s.event_id,
            s.call_id,
            s.remote_tag,
            s.remote_target,
            s.route,
            s.resource.as_ref().map(herald_registrar::Aor::as_str),
            s.list_uri,
            s.list.join("\n"),
            s.format,
            s.flags,
            s.cseq,
            s.duration,
            s.expires_at_ms,
            s.flow,
        ])
    })
    .ctx("saving a subscription")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Aor, Directory, Domain, NewUser};

    fn engine_aor(s: &str) -> herald_registrar::Aor {
        herald_registrar::Aor::parse(s).expect("aor")
    }

    fn row(tag: &str, watcher: &str, expires_at_ms: i64) -> StoredSubscription<String> {
        StoredSubscription {
            local_tag: tag.to_owned(),
            watcher: engine_aor(watcher),
            package: "presence".to_owned(),
            event_id: None,
            call_id: format!("call-{tag}"),
            remote_tag: "rt".to_owned(),
            remote_target: "sip:w@192.0.2.7:5060".to_owned(),
            route: Some("<sip:proxy.example.test;lr>".to_owned()),
            resource: Some(engine_aor("bob@example.test")),
            list_uri: None,
            list: Vec::new(),
            format: "pidf".to_owned(),
            flags: 1,
            cseq: 1000,
            duration: 3600,
            expires_at_ms,
            flow: "udp:0:192.0.2.7:5060".to_owned(),
        }
    }

    fn directory(path: &std::path::Path) -> SqliteDirectory {
        let dir = SqliteDirectory::open(path).expect("opens");
        let _ = dir.add_domain(&Domain::parse("example.test").expect("domain"));
        for u in ["alice", "bob", "carol"] {
            let aor = Aor::parse(&format!("{u}@example.test")).expect("aor");
            let _ = dir.add_user(&NewUser::new(aor));
        }
        dir
    }

    #[test]
    fn saved_dialogs_come_back_after_reopening_replaced_deleted_and_expired_ones_do_not() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("d.sqlite");
        let list = StoredSubscription {
            resource: None,
            list_uri: Some("sip:carol@example.test".to_owned()),
            list: vec![
                "sip:alice@example.test".to_owned(),
                "sip:nobody@elsewhere.example".to_owned(),
            ],
            format: "categories:1f".to_owned(),
            event_id: Some("7".to_owned()),
            route: None,
            ..row("t-list", "carol@example.test", 30_000)
        };
        {
            let dir = directory(&path);
            let token = dir.change_token().expect("token");
            dir.save_subscriptions(
                "",
                &[
                    SubscriptionChange::Put(Box::new(row("t-a", "alice@example.test", 10_000))),
                    SubscriptionChange::Put(Box::new(row("t-gone", "alice@example.test", 10_000))),
                    SubscriptionChange::Put(Box::new(row("t-brief", "bob@example.test", 5_000))),
                    SubscriptionChange::Put(Box::new(list.clone())),
                ],
            )
            .expect("saved");
            dir.save_subscriptions(
                "",
                &[
                    // A refresh replaces the row by its tag.
                    SubscriptionChange::Put(Box::new(StoredSubscription {
                        cseq: 2000,
                        ..row("t-a", "alice@example.test", 20_000)
                    })),
                    SubscriptionChange::Delete("t-gone".to_owned()),
                    SubscriptionChange::Delete("never-stored".to_owned()),
                ],
            )
            .expect("saved");
            assert_eq!(dir.change_token().expect("token"), token, "no cache flush");
        }
        let dir = directory(&path);
        let loaded = dir.load_subscriptions("", 6_000).expect("loaded");
        assert_eq!(
            loaded,
            vec![
                StoredSubscription {
                    cseq: 2000,
                    ..row("t-a", "alice@example.test", 20_000)
                },
                list,
            ]
        );
        // The expired row was deleted, not just skipped.
        assert_eq!(dir.load_subscriptions("", 0).expect("loaded").len(), 2);
        // Another pool member's rows are its own.
        assert!(
            dir.load_subscriptions("fe2.example.test", 0)
                .expect("loaded")
                .is_empty()
        );
    }

    #[test]
    fn removing_the_subscriber_removes_its_dialogs_and_unknown_subscribers_are_skipped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = directory(&tmp.path().join("d.sqlite"));
        let alice = Aor::parse("alice@example.test").expect("aor");
        dir.save_subscriptions(
            "",
            &[
                SubscriptionChange::Put(Box::new(row("t1", "alice@example.test", 10_000))),
                SubscriptionChange::Put(Box::new(row("t2", "stranger@example.test", 10_000))),
            ],
        )
        .expect("saved");
        let loaded = dir.load_subscriptions("", 0).expect("loaded");
        assert_eq!(loaded.len(), 1, "{loaded:?}");
        dir.remove_user(&alice).expect("removed");
        assert!(dir.load_subscriptions("", 0).expect("loaded").is_empty());
    }
}
