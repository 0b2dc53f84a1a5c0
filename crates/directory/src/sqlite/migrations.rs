//! Numbered schema migrations embedded in the binary, and the engine that applies them.
//!
//! To change the schema, add a file under `migrations/` and one line to [`MIGRATIONS`]; never
//! edit a migration that has shipped, since stores in the field already ran it.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{Context, now_ms};
use crate::Error;

/// One step of the schema, applied in its own transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The schema version the store has once this step is applied; versions count up from 1
    /// without gaps.
    pub(crate) version: u32,
    /// Recorded in `schema_version` so an admin can see what ran.
    pub(crate) name: &'static str,
    /// One or more SQL statements.
    pub(crate) sql: &'static str,
}

/// Embeds `migrations/<name>.sql` as migration `version`.
macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("migrations/", $name, ".sql")),
        }
    };
}

/// Every migration this binary knows, oldest first. Each names its file under `migrations/`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    // One line per schema change; append only.
    migration!(1, "0001_domains_users_credentials"),
    migration!(2, "0002_credentials_for_aor_usernames"),
    migration!(3, "0003_mailbox_anchoring"),
    migration!(4, "0004_presence"),
    migration!(5, "0005_registrations"),
    migration!(6, "0006_user_home"),
    migration!(7, "0007_subscriptions"),
];

/// The schema version of `conn`'s store: 0 for a store herald never prepared.
pub(crate) fn read_version(conn: &Connection) -> Result<u32, Error> {
    let has_table: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .ctx("reading the schema version")?;
    if has_table.is_none() {
        return Ok(0);
    }
    let version: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |row| row.get(0),
        )
        .ctx("reading the schema version")?;
    u32::try_from(version)
        .map_err(|_| Error::Corrupt(format!("schema version {version} is out of range")))
}

/// Applies every migration newer than the store, each in its own write transaction, and returns
/// the version the store had before.
///
/// Safe against another process migrating the same file at the same time: each step re-reads
/// the version under the write lock and skips what the other process already did.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<u32, Error> {
    let latest = latest_version(migrations);
    let before = read_version(conn)?;
    if before > latest {
        return Err(Error::SchemaTooNew {
            found: before,
            supported: latest,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > before) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("starting a migration")?;
        let current = read_version(&tx)?;
        if current >= migration.version {
            continue;
        }
        if current + 1 != migration.version {
            return Err(Error::Corrupt(format!(
                "schema version {current} cannot be followed by migration {}",
                migration.version
            )));
        }
        tx.execute_batch(CREATE_VERSION_TABLE)
            .ctx("creating the schema_version table")?;
        tx.execute_batch(migration.sql)
            .ctx("applying a schema migration")?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)",
            (migration.version, migration.name, now_ms()),
        )
        .ctx("recording a schema migration")?;
        tx.commit().ctx("committing a schema migration")?;
    }
    Ok(before)
}

/// The version a store has after every migration in `migrations` ran.
pub(crate) const fn latest_version(migrations: &[Migration]) -> u32 {
    match migrations {
        [.., last] => last.version,
        [] => 0,
    }
}

/// Created by the engine rather than by migration 1 so that every step, including the first,
/// records itself the same way.
const CREATE_VERSION_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS schema_version (
        version     INTEGER NOT NULL PRIMARY KEY,
        name        TEXT    NOT NULL,
        applied_at  INTEGER NOT NULL
    ) STRICT;
";

#[cfg(test)]
mod tests {
    use super::*;

    const fn step(version: u32, name: &'static str, sql: &'static str) -> Migration {
        Migration { version, name, sql }
    }

    #[test]
    fn versions_count_up_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                m.version as usize,
                i + 1,
                "migration {} is out of place",
                m.name
            );
        }
    }

    #[test]
    fn every_migration_applies_on_an_empty_store() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        assert_eq!(migrate(&mut conn, MIGRATIONS).unwrap(), 0);
        assert_eq!(read_version(&conn).unwrap(), latest_version(MIGRATIONS));
        let fk_problems: i64 = conn
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk_problems, 0);
    }

    #[test]
    fn upgrades_step_by_step_and_is_idempotent() {
        let v1 = [step(1, "one", "CREATE TABLE a (x INTEGER) STRICT;")];
        let v2 = [
            v1[0],
            step(
                2,
                "two",
                "ALTER TABLE a ADD COLUMN y TEXT; INSERT INTO a VALUES (1, 'y');",
            ),
        ];
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, &v1).unwrap(), 0);
        assert_eq!(read_version(&conn).unwrap(), 1);
        assert_eq!(migrate(&mut conn, &v2).unwrap(), 1);
        assert_eq!(migrate(&mut conn, &v2).unwrap(), 2);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "migration 2 ran exactly once");
        let names: Vec<String> = conn
            .prepare("SELECT name FROM schema_version ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(names, ["one", "two"]);
        assert!(matches!(
            migrate(&mut conn, &v1),
            Err(Error::SchemaTooNew {
                found: 2,
                supported: 1
            })
        ));
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let steps = [
            step(1, "one", "CREATE TABLE a (x INTEGER) STRICT;"),
            step(
                2,
                "broken",
                "CREATE TABLE b (x INTEGER); SELECT * FROM nowhere;",
            ),
        ];
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(matches!(
            migrate(&mut conn, &steps),
            Err(Error::Storage { .. })
        ));
        assert_eq!(read_version(&conn).unwrap(), 1);
        let b: Option<i64> = conn
            .query_row("SELECT 1 FROM sqlite_schema WHERE name = 'b'", [], |r| {
                r.get(0)
            })
            .optional()
            .unwrap();
        assert_eq!(b, None, "the failed step was rolled back whole");
    }
}
