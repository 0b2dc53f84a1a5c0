-- Digest hashes for clients that send the whole sign-in address (user@domain) as the username:
-- HA1 covers the username's spelling, so those need hashes of their own ('MD5-AOR',
-- 'SHA-256-AOR'). SQLite cannot alter a CHECK constraint, so the table is rebuilt.
CREATE TABLE credentials_v2 (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    algorithm  TEXT    NOT NULL
               CHECK (algorithm IN ('MD5', 'SHA-256', 'MD5-AOR', 'SHA-256-AOR', 'NT')),
    realm      TEXT    NOT NULL,
    hash       TEXT    NOT NULL,            -- lower-case hex
    PRIMARY KEY (user_id, algorithm, realm)
) STRICT, WITHOUT ROWID;
INSERT INTO credentials_v2 (user_id, algorithm, realm, hash)
    SELECT user_id, algorithm, realm, hash FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_v2 RENAME TO credentials;
