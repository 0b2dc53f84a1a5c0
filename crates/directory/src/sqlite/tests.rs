use std::sync::{Arc, Barrier};
use std::thread;

use super::*;
use crate::testing::run_conformance;

mod conformance {
    crate::conformance_tests!(crate::SqliteDirectory::open_in_memory().expect("in-memory store"));
}

fn temp_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.sqlite3");
    (dir, path)
}

fn refuse() -> OpenOptions {
    OpenOptions::default().upgrade(SchemaUpgrade::Refuse)
}

fn raw_version(path: &Path) -> u32 {
    read_version(&Connection::open(path).unwrap()).unwrap()
}

#[test]
fn whole_suite_runs_on_one_file_store() {
    let (_tmp, path) = temp_store();
    let dir = SqliteDirectory::open(&path).unwrap();
    run_conformance(&dir);
    // Twice: the suite leaves the store as it found it.
    run_conformance(&dir);
    assert_eq!(dir.user_count().unwrap(), 0);
}

#[test]
fn works_behind_an_arc_dyn_directory() {
    let dir: Arc<dyn Directory> = Arc::new(SqliteDirectory::open_in_memory().unwrap());
    let worker = {
        let dir = Arc::clone(&dir);
        thread::spawn(move || dir.add_domain(&Domain::parse("arc.test").unwrap()))
    };
    worker.join().unwrap().unwrap();
    assert_eq!(
        dir.list_domains().unwrap(),
        [Domain::parse("arc.test").unwrap()]
    );
}

#[test]
fn opening_an_empty_file_migrates_it() {
    let (_tmp, path) = temp_store();
    let dir = SqliteDirectory::open(&path).unwrap();
    assert_eq!(
        dir.schema_version().unwrap(),
        SqliteDirectory::SCHEMA_VERSION
    );
    const { assert!(SqliteDirectory::SCHEMA_VERSION >= 1) };
    drop(dir);
    assert_eq!(raw_version(&path), SqliteDirectory::SCHEMA_VERSION);
}

#[test]
fn file_is_wal_with_full_sync_and_foreign_keys() {
    let (_tmp, path) = temp_store();
    let dir = SqliteDirectory::open(&path).unwrap();
    let conn = dir.lock();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    let busy: i64 = conn
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(fk, 1);
    assert_eq!(busy, 5000);
}

#[test]
fn reopening_a_file_keeps_its_data() {
    let (_tmp, path) = temp_store();
    let added = {
        let dir = SqliteDirectory::open(&path).unwrap();
        dir.add_domain(&Domain::parse("keep.test").unwrap())
            .unwrap();
        let mut new = NewUser::new(Aor::parse("Ivan@keep.test").unwrap());
        new.display_name = DisplayName::parse("Ivan").unwrap();
        new.credentials =
            vec![Credential::new(CredentialAlgorithm::Md5, "keep.test", &"f".repeat(32)).unwrap()];
        dir.add_user(&new).unwrap()
    };
    let dir = SqliteDirectory::open_with(&path, &refuse()).unwrap();
    let got = dir.get_user(&added.aor).unwrap().unwrap();
    assert_eq!(got, added);
    assert_eq!(
        dir.list_domains().unwrap(),
        [Domain::parse("keep.test").unwrap()]
    );
}

#[test]
fn refuse_mode_reports_an_outdated_schema_and_leaves_it() {
    let (_tmp, path) = temp_store();
    let err = SqliteDirectory::open_with(&path, &refuse()).unwrap_err();
    assert!(matches!(
        err,
        Error::SchemaOutdated { found: 0, required } if required == SqliteDirectory::SCHEMA_VERSION
    ));
    assert!(
        err.to_string().contains("herald directory prepare"),
        "{err}"
    );
    assert_eq!(raw_version(&path), 0, "refusing does not migrate");

    let prepared = SqliteDirectory::prepare(&path).unwrap();
    assert_eq!(
        prepared,
        Prepared {
            from: 0,
            to: SqliteDirectory::SCHEMA_VERSION
        }
    );
    let again = SqliteDirectory::prepare(&path).unwrap();
    assert_eq!(
        again.from,
        SqliteDirectory::SCHEMA_VERSION,
        "preparing twice is a no-op"
    );
    SqliteDirectory::open_with(&path, &refuse()).unwrap();
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let (_tmp, path) = temp_store();
    drop(SqliteDirectory::open(&path).unwrap());
    let future = SqliteDirectory::SCHEMA_VERSION + 7;
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        conn.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, 'future', 0)",
            [future],
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    for result in [
        SqliteDirectory::open(&path).map(|_| ()),
        SqliteDirectory::open_with(&path, &refuse()).map(|_| ()),
        SqliteDirectory::prepare(&path).map(|_| ()),
    ] {
        match result {
            Err(Error::SchemaTooNew { found, supported }) => {
                assert_eq!(found, future);
                assert_eq!(supported, SqliteDirectory::SCHEMA_VERSION);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file is byte-for-byte unchanged"
    );
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "not even switched to WAL");
}

#[test]
fn two_handles_on_one_file_see_each_others_writes() {
    let (_tmp, path) = temp_store();
    let a = SqliteDirectory::open(&path).unwrap();
    let b = SqliteDirectory::open(&path).unwrap();
    a.add_domain(&Domain::parse("shared.test").unwrap())
        .unwrap();
    assert!(matches!(
        b.add_domain(&Domain::parse("shared.test").unwrap()),
        Err(Error::AlreadyExists { .. })
    ));
    b.add_user(&NewUser::new(Aor::parse("judy@shared.test").unwrap()))
        .unwrap();
    assert!(
        a.get_user(&Aor::parse("judy@shared.test").unwrap())
            .unwrap()
            .is_some()
    );
}

#[test]
fn concurrent_writers_on_one_file_lose_nothing() {
    const PER_WRITER: usize = 40;
    let (_tmp, path) = temp_store();
    SqliteDirectory::open(&path)
        .unwrap()
        .add_domain(&Domain::parse("race.test").unwrap())
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|tag| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let dir = SqliteDirectory::open(&path).unwrap();
                barrier.wait();
                for i in 0..PER_WRITER {
                    let aor = Aor::parse(&format!("{tag}{i}@race.test")).unwrap();
                    let mut new = NewUser::new(aor.clone());
                    new.credentials = vec![
                        Credential::new(CredentialAlgorithm::Md5, "race.test", &"1".repeat(32))
                            .unwrap(),
                    ];
                    dir.add_user(&new).unwrap();
                    // Contend on the same row too: both writers race to set one display name.
                    let shared = Aor::parse("a0@race.test").unwrap();
                    match dir.set_display_name(&shared, &DisplayName::parse(tag).unwrap()) {
                        Ok(()) | Err(Error::NotFound { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let dir = SqliteDirectory::open(&path).unwrap();
    assert_eq!(dir.user_count().unwrap(), 2 * PER_WRITER as u64);
    let all = dir
        .list_users(&UserQuery::first(UserQuery::MAX_PAGE))
        .unwrap();
    assert!(all.iter().all(|u| u.credentials.len() == 1));
}

#[test]
fn concurrent_first_opens_migrate_once() {
    let (_tmp, path) = temp_store();
    let barrier = Arc::new(Barrier::new(3));
    let openers: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                SqliteDirectory::open(&path).map(|d| d.schema_version())
            })
        })
        .collect();
    for o in openers {
        assert_eq!(
            o.join().unwrap().unwrap().unwrap(),
            SqliteDirectory::SCHEMA_VERSION
        );
    }
    let conn = Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, i64::from(SqliteDirectory::SCHEMA_VERSION));
}

#[test]
fn invalid_input_is_refused_before_the_store() {
    let dir = SqliteDirectory::open_in_memory().unwrap();
    assert!(matches!(
        Aor::parse("not a uri"),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        Domain::parse("bad_domain"),
        Err(Error::InvalidInput { .. })
    ));
    let result = dir.add_user(&NewUser::new(Aor::parse("kim@unknown.test").unwrap()));
    assert!(matches!(
        result,
        Err(Error::NotFound {
            kind: EntityKind::Domain,
            ..
        })
    ));
    assert_eq!(dir.user_count().unwrap(), 0);
}

#[test]
fn hand_edited_rows_are_reported_as_corrupt() {
    let dir = SqliteDirectory::open_in_memory().unwrap();
    dir.add_domain(&Domain::parse("corrupt.test").unwrap())
        .unwrap();
    let aor = Aor::parse("leo@corrupt.test").unwrap();
    dir.add_user(&NewUser::new(aor.clone())).unwrap();
    dir.lock()
        .execute("UPDATE users SET display_name = 'a' || char(10) || 'b'", [])
        .unwrap();
    assert!(matches!(dir.get_user(&aor), Err(Error::Corrupt(_))));
}

#[test]
fn unknown_algorithms_are_refused_by_the_schema() {
    let dir = SqliteDirectory::open_in_memory().unwrap();
    dir.add_domain(&Domain::parse("algo.test").unwrap())
        .unwrap();
    dir.add_user(&NewUser::new(Aor::parse("mia@algo.test").unwrap()))
        .unwrap();
    let inserted = dir.lock().execute(
        "INSERT INTO credentials (user_id, algorithm, realm, hash) \
         SELECT id, 'SHA-512', '', 'x' FROM users",
        [],
    );
    assert!(inserted.is_err(), "adding an algorithm needs a migration");
}

#[test]
fn a_poisoned_handle_still_serves() {
    let dir = Arc::new(SqliteDirectory::open_in_memory().unwrap());
    let poisoner = Arc::clone(&dir);
    let _ = thread::spawn(move || {
        let _guard = poisoner.lock();
        panic!("poison the mutex");
    })
    .join();
    assert!(dir.conn.is_poisoned());
    dir.add_domain(&Domain::parse("poison.test").unwrap())
        .unwrap();
}

#[test]
fn listing_pages_use_the_index() {
    let dir = SqliteDirectory::open_in_memory().unwrap();
    let conn = dir.lock();
    assert!(LIST_ALL_SQL.contains(USER_COLUMNS) && LIST_DOMAIN_SQL.contains(USER_COLUMNS));
    for (sql, bound) in [
        (LIST_ALL_SQL, "(domain,user_key)>"),
        (LIST_DOMAIN_SQL, "(domain=? AND user_key>?)"),
    ] {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(
            plan.starts_with("SEARCH users USING"),
            "a search, not a scan: {plan}"
        );
        assert!(plan.contains(bound), "bounded by the cursor: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort step: {plan}");
    }
}

/// A store written by a version-1 herald keeps its users and hashes across the upgrade that
/// rebuilds the credentials table (migration 2), and takes the new algorithms afterwards.
#[test]
fn version_one_store_upgrades_with_its_credentials() {
    let (_tmp, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0].sql).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             applied_at INTEGER NOT NULL) STRICT;
             INSERT INTO schema_version VALUES (1, '0001_domains_users_credentials', 0);
             INSERT INTO domains (name, created_at) VALUES ('old.test', 0);
             INSERT INTO users (domain, user_part, user_key, display_name, enabled, created_at, \
             updated_at) VALUES ('old.test', 'Ann', 'ann', 'Ann', 1, 0, 0);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO credentials (user_id, algorithm, realm, hash) VALUES (1, 'MD5', 'old.test', ?1)",
            ["0123456789abcdef0123456789abcdef"],
        )
        .unwrap();
    }
    assert_eq!(raw_version(&path), 1);
    let dir = SqliteDirectory::open(&path).unwrap();
    assert_eq!(
        dir.schema_version().unwrap(),
        SqliteDirectory::SCHEMA_VERSION
    );
    let aor = Aor::parse("ann@old.test").unwrap();
    let user = dir.get_user(&aor).unwrap().unwrap();
    assert_eq!(user.credentials.len(), 1);
    assert_eq!(
        user.credentials[0].hash(),
        "0123456789abcdef0123456789abcdef"
    );
    let aor_hash =
        Credential::new(CredentialAlgorithm::Md5Aor, "old.test", &"a".repeat(32)).unwrap();
    dir.set_credentials(&aor, &[user.credentials[0].clone(), aor_hash])
        .unwrap();
    assert_eq!(dir.get_user(&aor).unwrap().unwrap().credentials.len(), 2);
}

/// A write through another handle (another process in production) changes this handle's
/// token, which is what lets a server's cache see an admin command's change.
#[test]
fn change_token_sees_other_handles_writes() {
    let (_tmp, path) = temp_store();
    let server = SqliteDirectory::open(&path).unwrap();
    let admin = SqliteDirectory::open(&path).unwrap();
    let before = server.change_token().unwrap();
    admin
        .add_domain(&Domain::parse("other.test").unwrap())
        .unwrap();
    assert_ne!(before, server.change_token().unwrap());
}
