-- Domains the server is authoritative for. Names are stored lower-case by the application.
CREATE TABLE domains (
    name        TEXT    NOT NULL PRIMARY KEY,
    created_at  INTEGER NOT NULL            -- Unix time, milliseconds
) STRICT;

-- Users, keyed by (domain, user_key); user_part keeps the spelling the user was created with.
CREATE TABLE users (
    id            INTEGER NOT NULL PRIMARY KEY,
    domain        TEXT    NOT NULL REFERENCES domains (name) ON DELETE RESTRICT,
    user_part     TEXT    NOT NULL,
    user_key      TEXT    NOT NULL,         -- ASCII lower-case of user_part
    display_name  TEXT    NOT NULL,         -- '' when none
    enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at    INTEGER NOT NULL,         -- Unix time, milliseconds
    updated_at    INTEGER NOT NULL,         -- Unix time, milliseconds
    UNIQUE (domain, user_key)
) STRICT;

-- Password-derived hashes; never a password. A new algorithm is a new migration.
CREATE TABLE credentials (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    algorithm  TEXT    NOT NULL CHECK (algorithm IN ('MD5', 'SHA-256', 'NT')),
    realm      TEXT    NOT NULL,
    hash       TEXT    NOT NULL,            -- lower-case hex
    PRIMARY KEY (user_id, algorithm, realm)
) STRICT, WITHOUT ROWID;
