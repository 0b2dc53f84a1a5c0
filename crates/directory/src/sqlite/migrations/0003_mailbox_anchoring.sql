-- The mailbox-anchoring directory (Exchange's Client Access front door): mailbox servers, DAGs,
-- databases and their copies, mailboxes, users' previous-mailbox info, Active Manager's
-- active-copy map and event log, and the audit log. herald-anchor's model checks every rule
-- before a write; the constraints here are the backstop against hand edits and races.
-- Names are stored in the model's canonical (lower-case) form.

-- Mailbox servers.
CREATE TABLE anchor_servers (
    name     TEXT NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND name = lower(name)),
    address  TEXT NOT NULL UNIQUE CHECK (length(address) BETWEEN 3 AND 300),   -- host:port
    site     TEXT NOT NULL CHECK (length(site) BETWEEN 1 AND 64 AND site = lower(site)),
    build    TEXT NOT NULL CHECK (length(build) BETWEEN 5 AND 32)              -- 15.0.1156.6
) STRICT;

-- Database availability groups.
CREATE TABLE anchor_dags (
    name  TEXT NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND name = lower(name))
) STRICT;

-- DAG members: at most 16 per DAG (positions 0..15 keep the admin's order), one DAG per
-- server.
CREATE TABLE anchor_dag_members (
    dag       TEXT    NOT NULL REFERENCES anchor_dags (name) ON DELETE CASCADE,
    position  INTEGER NOT NULL CHECK (position BETWEEN 0 AND 15),
    server    TEXT    NOT NULL UNIQUE REFERENCES anchor_servers (name) ON DELETE RESTRICT,
    PRIMARY KEY (dag, position)
) STRICT, WITHOUT ROWID;

-- Mailbox databases; no DAG for a standalone database.
CREATE TABLE anchor_databases (
    name  TEXT NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND name = lower(name)),
    dag   TEXT REFERENCES anchor_dags (name) ON DELETE RESTRICT
) STRICT;

-- Database copies: one per server, distinct activation preferences (1 = most preferred), the
-- copy queue length when a replication monitor reported one.
CREATE TABLE anchor_database_copies (
    database               TEXT    NOT NULL REFERENCES anchor_databases (name) ON DELETE CASCADE,
    server                 TEXT    NOT NULL REFERENCES anchor_servers (name) ON DELETE RESTRICT,
    activation_preference  INTEGER NOT NULL CHECK (activation_preference BETWEEN 1 AND 4294967295),
    copy_queue_length      INTEGER CHECK (copy_queue_length IS NULL OR copy_queue_length >= 0),
    PRIMARY KEY (database, server),
    UNIQUE (database, activation_preference)
) STRICT, WITHOUT ROWID;
CREATE INDEX anchor_database_copies_by_server ON anchor_database_copies (server);

-- A database has at most 16 copies, and a copy of a DAG's database lives on a member.
CREATE TRIGGER anchor_database_copies_limit BEFORE INSERT ON anchor_database_copies
WHEN (SELECT COUNT(*) FROM anchor_database_copies WHERE database = NEW.database) >= 16
BEGIN
    SELECT RAISE(ABORT, 'a database has at most 16 copies');
END;
CREATE TRIGGER anchor_database_copies_in_dag BEFORE INSERT ON anchor_database_copies
WHEN (SELECT dag FROM anchor_databases WHERE name = NEW.database) IS NOT NULL
 AND NOT EXISTS (
     SELECT 1 FROM anchor_dag_members m JOIN anchor_databases d ON d.dag = m.dag
     WHERE d.name = NEW.database AND m.server = NEW.server)
BEGIN
    SELECT RAISE(ABORT, 'a database copy must be on a member of the database''s DAG');
END;

-- What the anchoring directory keeps per user (users.id): the SID clients may name them by,
-- and previous-mailbox info (all three fields or none). The previous database is plain text:
-- it may no longer exist.
CREATE TABLE anchor_users (
    user_id            INTEGER NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sid                TEXT UNIQUE CHECK (sid IS NULL OR (sid GLOB 'S-*' AND length(sid) <= 184)),
    previous_guid      TEXT CHECK (previous_guid IS NULL OR length(previous_guid) = 36),
    previous_database  TEXT CHECK (previous_database IS NULL OR length(previous_database) <= 64),
    previous_type      TEXT CHECK (previous_type IS NULL OR previous_type IN
                           ('UserMailbox', 'SharedMailbox', 'ArbitrationMailbox', 'MailUser')),
    CHECK ((previous_guid IS NULL) = (previous_database IS NULL)
       AND (previous_guid IS NULL) = (previous_type IS NULL))
) STRICT;

-- Mailboxes: a user mailbox has an owner (who owns at most one), an arbitration mailbox none.
CREATE TABLE anchor_mailboxes (
    guid          TEXT    NOT NULL PRIMARY KEY CHECK (length(guid) = 36 AND guid = lower(guid)),
    primary_smtp  TEXT    NOT NULL UNIQUE
                  CHECK (length(primary_smtp) <= 254 AND primary_smtp = lower(primary_smtp)
                         AND instr(primary_smtp, '@') > 1),
    owner         INTEGER REFERENCES users (id) ON DELETE RESTRICT,
    kind          TEXT    NOT NULL CHECK (kind IN ('user', 'arbitration', 'shared')),
    database      TEXT    NOT NULL REFERENCES anchor_databases (name) ON DELETE RESTRICT,
    CHECK (kind <> 'user' OR owner IS NOT NULL),
    CHECK (kind <> 'arbitration' OR owner IS NULL)
) STRICT;
CREATE UNIQUE INDEX anchor_mailboxes_one_per_owner ON anchor_mailboxes (owner) WHERE kind = 'user';
CREATE INDEX anchor_mailboxes_by_database ON anchor_mailboxes (database);
CREATE INDEX anchor_mailboxes_by_owner ON anchor_mailboxes (owner);

-- Active Manager's active-copy map: where each database is mounted (server NULL: dismounted).
CREATE TABLE anchor_active_copies (
    database    TEXT    NOT NULL PRIMARY KEY REFERENCES anchor_databases (name) ON DELETE CASCADE,
    server      TEXT    REFERENCES anchor_servers (name) ON DELETE CASCADE,
    updated_ns  INTEGER NOT NULL CHECK (updated_ns >= 0)                  -- Unix nanoseconds
) STRICT;

-- Active Manager's event log, in append order. Names are plain text: history outlives the
-- objects it mentions.
CREATE TABLE anchor_events (
    id        INTEGER NOT NULL PRIMARY KEY,
    at_ns     INTEGER NOT NULL CHECK (at_ns >= 0),                        -- Unix nanoseconds
    database  TEXT,
    state     TEXT CHECK (state IS NULL OR state IN ('mounted', 'dismounted')),
    server    TEXT,
    message   TEXT NOT NULL,
    CHECK (state IS NULL OR database IS NOT NULL),
    CHECK ((state IS 'mounted') = (server IS NOT NULL))
) STRICT;

-- The audit log of irreversible changes (Set-User -PermanentlyClearPreviousMailboxInfo). The
-- user is kept as text so the trace outlives the account; rows are never changed or deleted.
CREATE TABLE anchor_audit (
    id                INTEGER NOT NULL PRIMARY KEY,
    at_ns             INTEGER NOT NULL CHECK (at_ns >= 0),                -- Unix nanoseconds
    actor             TEXT    NOT NULL CHECK (length(actor) BETWEEN 1 AND 512),
    user_name         TEXT    NOT NULL CHECK (length(user_name) BETWEEN 3 AND 254),
    action            TEXT    NOT NULL CHECK (action IN ('PermanentlyClearPreviousMailboxInfo')),
    cleared_guid      TEXT    NOT NULL CHECK (length(cleared_guid) = 36),
    cleared_database  TEXT    NOT NULL CHECK (length(cleared_database) BETWEEN 1 AND 64),
    cleared_type      TEXT    NOT NULL CHECK (cleared_type IN
                          ('UserMailbox', 'SharedMailbox', 'ArbitrationMailbox', 'MailUser'))
) STRICT;
CREATE TRIGGER anchor_audit_no_update BEFORE UPDATE ON anchor_audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER anchor_audit_no_delete BEFORE DELETE ON anchor_audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
