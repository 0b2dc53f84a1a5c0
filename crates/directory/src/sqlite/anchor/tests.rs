use std::time::SystemTime;

use herald_anchor::model::{MailboxType, ModelError};
use herald_anchor::store::{Change, apply_change};
use rusqlite::Connection;

use super::*;
use crate::sqlite::migrations::MIGRATIONS;
use crate::{CredentialAlgorithm, Directory, NewUser};

/// A fresh in-memory store serving contoso.com, as the conformance suite expects.
fn fresh() -> SqliteDirectory {
    let dir = SqliteDirectory::open_in_memory().expect("in-memory store");
    dir.add_domain(&Domain::parse("contoso.com").expect("valid"))
        .expect("adds the domain");
    dir
}

mod conformance {
    herald_anchor::anchor_store_conformance_tests!(super::fresh());
}

fn name<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("valid")
}

/// ex1..ex3 in dag1 and db1 with three copies, through the model.
fn seeded(dir: &SqliteDirectory) {
    for (i, n) in ["ex1", "ex2", "ex3"].iter().enumerate() {
        apply_change(
            dir,
            Change::AddServer(Server {
                name: name(n),
                address: name(&format!("127.0.0.1:{}", 4441 + i)),
                site: herald_anchor::model::SiteName::default_site(),
                build: name("15.0.1156.6"),
            }),
        )
        .expect("adds");
    }
    apply_change(
        dir,
        Change::AddDag(Dag {
            name: name("dag1"),
            members: vec![name("ex1"), name("ex2"), name("ex3")],
        }),
    )
    .expect("adds");
    apply_change(
        dir,
        Change::AddDatabase(Database {
            name: name("db1"),
            dag: Some(name("dag1")),
            copies: ["ex1", "ex2", "ex3"]
                .iter()
                .zip(1..)
                .map(|(s, p)| DatabaseCopy {
                    server: name(s),
                    activation_preference: p,
                    copy_queue_length: None,
                })
                .collect(),
        }),
    )
    .expect("adds");
}

fn backend_message(e: &StoreError) -> String {
    match e {
        StoreError::Backend(inner) => inner.to_string(),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// Migration 3 runs on a store written by a version-2 herald: its users and their hashes
/// survive, and they can own mailboxes straight away.
#[test]
fn version_two_store_upgrades_with_its_users() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("directory.db");
    {
        let conn = Connection::open(&path).expect("opens");
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, \
             applied_at INTEGER NOT NULL) STRICT;",
        )
        .expect("creates");
        for m in &MIGRATIONS[..2] {
            conn.execute_batch(m.sql).expect("applies");
            conn.execute(
                "INSERT INTO schema_version VALUES (?1, ?2, 0)",
                params![m.version, m.name],
            )
            .expect("records");
        }
        conn.execute_batch(
            "INSERT INTO domains (name, created_at) VALUES ('contoso.com', 0);
             INSERT INTO users (domain, user_part, user_key, display_name, enabled, created_at, \
             updated_at) VALUES ('contoso.com', 'Alice', 'alice', 'Alice', 1, 0, 0),
                                ('contoso.com', 'bob', 'bob', '', 0, 0, 0);
             INSERT INTO credentials (user_id, algorithm, realm, hash) VALUES
                 (1, 'SHA-256', 'contoso.com', '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'),
                 (1, 'MD5-AOR', 'contoso.com', '0123456789abcdef0123456789abcdef');",
        )
        .expect("seeds");
    }
    let dir = SqliteDirectory::open(&path).expect("opens and migrates");
    assert_eq!(
        dir.schema_version().expect("reads"),
        SqliteDirectory::SCHEMA_VERSION
    );

    let alice = dir
        .get_user(&Aor::parse("alice@contoso.com").expect("valid"))
        .expect("reads")
        .expect("alice survived");
    assert_eq!(alice.aor.user(), "Alice");
    assert_eq!(alice.display_name.as_str(), "Alice");
    assert_eq!(alice.credentials.len(), 2);
    assert_eq!(
        alice.credentials[0].algorithm(),
        CredentialAlgorithm::Sha256
    );
    assert!(
        !dir.get_user(&Aor::parse("bob@contoso.com").expect("valid"))
            .expect("reads")
            .expect("bob survived")
            .enabled
    );

    // Every directory user is an anchoring user, and can own a mailbox at once.
    let t = dir.load_topology().expect("loads");
    assert_eq!(t.users().count(), 2);
    seeded(&dir);
    let guid = ExchangeGuid::from_u128(1);
    apply_change(
        &dir,
        Change::AddMailbox(Mailbox {
            guid,
            primary_smtp: name("alice@contoso.com"),
            owner: Some(name("alice@contoso.com")),
            kind: MailboxType::User,
            database: name("db1"),
        }),
    )
    .expect("adds");
    let t = dir.load_topology().expect("loads");
    assert_eq!(
        t.own_mailbox(&name("alice@contoso.com")).map(|m| m.guid),
        Some(guid)
    );
    let fk: i64 = dir
        .lock()
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("checks");
    assert_eq!(fk, 0);
}

/// The tables are STRICT and carry their rules.
#[test]
fn schema_refuses_what_the_model_refuses() {
    let dir = fresh();
    seeded(&dir);
    let conn = dir.lock();
    // A 17th DAG member.
    conn.execute(
        "INSERT INTO anchor_servers VALUES ('ex17', '127.0.0.1:9', 'default-first-site-name', '15.0.1156.6')",
        [],
    )
    .expect("adds a server");
    assert!(
        conn.execute(
            "INSERT INTO anchor_dag_members VALUES ('dag1', 16, 'ex17')",
            []
        )
        .is_err()
    );
    // A copy outside the database's DAG.
    let err = conn
        .execute(
            "INSERT INTO anchor_database_copies VALUES ('db1', 'ex17', 9, NULL)",
            [],
        )
        .expect_err("refused");
    assert!(err.to_string().contains("DAG"), "{err}");
    // Two copies with one preference.
    assert!(
        conn.execute(
            "DELETE FROM anchor_database_copies WHERE server = 'ex3'",
            []
        )
        .is_ok()
    );
    assert!(
        conn.execute(
            "INSERT INTO anchor_database_copies VALUES ('db1', 'ex3', 1, NULL)",
            []
        )
        .is_err()
    );
    // A user mailbox without an owner, a mailbox type that does not exist, a wrong type.
    for bad in [
        "INSERT INTO anchor_mailboxes VALUES ('00000000-0000-4000-8000-000000000001', 'a@contoso.com', NULL, 'user', 'db1')",
        "INSERT INTO anchor_mailboxes VALUES ('00000000-0000-4000-8000-000000000001', 'a@contoso.com', NULL, 'room', 'db1')",
        "INSERT INTO anchor_mailboxes VALUES ('00000000-0000-4000-8000-000000000001', 'a@contoso.com', NULL, 'shared', 'nodb')",
        "INSERT INTO anchor_servers VALUES ('EX9', '127.0.0.1:19', 'default-first-site-name', '15.0.1156.6')",
        "INSERT INTO anchor_database_copies VALUES ('db1', 'ex3', 'one', NULL)",
    ] {
        assert!(conn.execute(bad, []).is_err(), "accepted: {bad}");
    }
    // The audit log is append-only.
    conn.execute(
        "INSERT INTO anchor_audit (at_ns, actor, user_name, action, cleared_guid, cleared_database, \
         cleared_type) VALUES (0, 'cli', 'a@contoso.com', 'PermanentlyClearPreviousMailboxInfo', \
         '00000000-0000-4000-8000-000000000001', 'db1', 'UserMailbox')",
        [],
    )
    .expect("appends");
    let err = conn
        .execute("DELETE FROM anchor_audit", [])
        .expect_err("refused");
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(
        conn.execute("UPDATE anchor_audit SET actor = 'x'", [])
            .is_err()
    );
}

/// Rows the schema lets through but the model does not are reported by name at load, not
/// served.
#[test]
fn hand_edited_rows_fail_the_load_with_the_rule_they_break() {
    let dir = fresh();
    seeded(&dir);
    dir.lock()
        .execute_batch(
            "INSERT INTO anchor_servers VALUES ('lone', '127.0.0.1:9', 'default-first-site-name', '15.0.1156.6');
             INSERT INTO anchor_servers VALUES ('lone2', '127.0.0.1:10', 'default-first-site-name', '15.0.1156.6');
             INSERT INTO anchor_databases VALUES ('db9', NULL);
             INSERT INTO anchor_database_copies VALUES ('db9', 'lone', 1, NULL), ('db9', 'lone2', 2, NULL);",
        )
        .expect("hand edit");
    assert!(matches!(
        dir.load_topology(),
        Err(StoreError::Invalid(ModelError::StandaloneWithCopies { .. }))
    ));

    let dir = fresh();
    dir.lock()
        .execute(
            "INSERT INTO anchor_servers VALUES ('ex1', '127.0.0.1:9', 'default-first-site-name', 'fifteen')",
            [],
        )
        .expect("hand edit");
    let err = dir.load_topology().expect_err("refused");
    assert!(backend_message(&err).contains("build number"), "{err}");
}

/// `herald user remove` of a mailbox owner is refused with the mailbox's name.
#[test]
fn removing_a_mailbox_owner_is_refused() {
    let dir = fresh();
    seeded(&dir);
    let aor = Aor::parse("alice@contoso.com").expect("valid");
    dir.add_user(&NewUser::new(aor.clone())).expect("adds");
    apply_change(
        &dir,
        Change::AddMailbox(Mailbox {
            guid: ExchangeGuid::from_u128(5),
            primary_smtp: name("alice@contoso.com"),
            owner: Some(name("alice@contoso.com")),
            kind: MailboxType::User,
            database: name("db1"),
        }),
    )
    .expect("adds");
    let before = dir.change_token().expect("token");
    assert!(matches!(
        dir.remove_user(&aor),
        Err(Error::UserOwnsMailbox { ref mailbox, .. }) if mailbox == "alice@contoso.com"
    ));
    assert!(dir.get_user(&aor).expect("reads").is_some());
    apply_change(&dir, Change::RemoveMailbox(ExchangeGuid::from_u128(5))).expect("removes");
    dir.remove_user(&aor).expect("removes now");
    assert_ne!(before, dir.change_token().expect("token"));
}

/// Storing a user the directory lacks needs a served domain; the error names it.
#[test]
fn a_mailbox_user_in_an_unserved_domain_is_refused() {
    let dir = fresh();
    let err = dir
        .put_user(&User {
            id: name("carol@fabrikam.com"),
            sid: None,
            previous_mailbox: None,
        })
        .expect_err("refused");
    assert!(backend_message(&err).contains("fabrikam.com"), "{err}");
}

/// An event about a database that left the directory is logged but not mapped.
#[test]
fn events_about_unknown_databases_are_logged_only() {
    let dir = fresh();
    seeded(&dir);
    let event = EventRecord {
        at: SystemTime::now(),
        database: Some(name("gone")),
        active: Some(ActiveCopy::Mounted(name("ex1"))),
        message: "database gone mounted on ex1".to_owned(),
    };
    dir.record_event(&event).expect("records");
    assert!(dir.load_active_copies().expect("loads").is_empty());
    assert_eq!(dir.recent_events(5).expect("reads"), [event]);
}

/// What one process writes (an admin's switchover) another sees, and its token moves.
#[test]
fn another_handle_sees_anchoring_writes_and_its_token_moves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("directory.db");
    let server = SqliteDirectory::open(&path).expect("opens");
    let admin = SqliteDirectory::open(&path).expect("opens");
    admin
        .add_domain(&Domain::parse("contoso.com").expect("valid"))
        .expect("adds");
    seeded(&admin);
    let before = server.change_token().expect("token");
    admin
        .record_event(&EventRecord {
            at: SystemTime::now(),
            database: Some(name("db1")),
            active: Some(ActiveCopy::Mounted(name("ex2"))),
            message: "switchover requested".to_owned(),
        })
        .expect("records");
    assert_ne!(before, server.change_token().expect("token"));
    assert_eq!(
        server.load_active_copies().expect("loads"),
        [(name("db1"), ActiveCopy::Mounted(name("ex2")))]
    );
    assert_eq!(
        server.load_topology().expect("loads").databases().count(),
        1
    );
}
