-- Presence data that must survive a restart (issue 3 point 7): each directory user's contact
-- list, privacy containers and static category publications (manual state, note). Written by
-- the presence engine (herald-presence's PresenceStore) before it answers 200, and by
-- `herald contact add|remove`. Removing a user removes its presence data (ON DELETE CASCADE).
-- A user's contact list and containers are rewritten whole on each change; `position` columns
-- keep the order the client sees, counting from 0.

-- A user's contact list: present once it was first changed. delta_num is the list's
-- roaming-contacts deltaNum (one more per change).
CREATE TABLE presence_contact_lists (
    user_id    INTEGER NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    delta_num  INTEGER NOT NULL CHECK (delta_num BETWEEN 0 AND 4294967295)
) STRICT;

-- The groups of a contact list; group 1 is the default group (named '~', "Other Contacts").
CREATE TABLE presence_contact_groups (
    user_id       INTEGER NOT NULL
                  REFERENCES presence_contact_lists (user_id) ON DELETE CASCADE,
    group_id      INTEGER NOT NULL CHECK (group_id BETWEEN 1 AND 63),
    position      INTEGER NOT NULL CHECK (position >= 0),
    name          TEXT    NOT NULL,
    external_uri  TEXT    NOT NULL,         -- the client's opaque externalURI data; '' if none
    PRIMARY KEY (user_id, group_id),
    UNIQUE (user_id, position)
) STRICT, WITHOUT ROWID;

-- The contacts of a contact list, one per address (ASCII case ignored, as Lync compares them).
CREATE TABLE presence_contacts (
    id            INTEGER NOT NULL PRIMARY KEY,
    user_id       INTEGER NOT NULL
                  REFERENCES presence_contact_lists (user_id) ON DELETE CASCADE,
    position      INTEGER NOT NULL CHECK (position >= 0),
    uri           TEXT    NOT NULL,         -- with its scheme: 'sip:bob@example.com'
    display_name  TEXT    NOT NULL,         -- '' if none
    subscribed    INTEGER NOT NULL CHECK (subscribed IN (0, 1)),
    external_uri  TEXT    NOT NULL,         -- the client's opaque externalURI data; '' if none
    UNIQUE (user_id, position),
    UNIQUE (user_id, uri COLLATE NOCASE),
    UNIQUE (id, user_id)                    -- the key presence_contact_memberships refers to
) STRICT;

-- Which groups each contact is in (at least one), in the contact's order.
CREATE TABLE presence_contact_memberships (
    contact_id  INTEGER NOT NULL,
    position    INTEGER NOT NULL CHECK (position >= 0),
    user_id     INTEGER NOT NULL,
    group_id    INTEGER NOT NULL,
    PRIMARY KEY (contact_id, position),
    FOREIGN KEY (contact_id, user_id) REFERENCES presence_contacts (id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (user_id, group_id)
        REFERENCES presence_contact_groups (user_id, group_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX presence_contact_memberships_by_group
    ON presence_contact_memberships (user_id, group_id);

-- A user's privacy containers (access levels): 100 External, 200 Company, 300 Team,
-- 400 Personal, 32000 Blocked, and any other id a client manages. version counts membership
-- changes (setContainerMembers).
CREATE TABLE presence_containers (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    container_id  INTEGER NOT NULL CHECK (container_id BETWEEN 0 AND 32767),
    position      INTEGER NOT NULL CHECK (position >= 0),
    version       INTEGER NOT NULL CHECK (version BETWEEN 0 AND 4294967295),
    PRIMARY KEY (user_id, container_id),
    UNIQUE (user_id, position)
) STRICT, WITHOUT ROWID;

-- Who is in each container: one user (value: the address without 'sip:'), every user of a
-- domain (value: the domain), or a whole class of watchers (value NULL).
CREATE TABLE presence_container_members (
    user_id       INTEGER NOT NULL,
    container_id  INTEGER NOT NULL,
    position      INTEGER NOT NULL CHECK (position >= 0),
    kind          TEXT    NOT NULL CHECK (kind IN
                      ('user', 'domain', 'sameEnterprise', 'federated', 'publicCloud', 'everyone')),
    value         TEXT,
    PRIMARY KEY (user_id, container_id, position),
    FOREIGN KEY (user_id, container_id)
        REFERENCES presence_containers (user_id, container_id) ON DELETE CASCADE,
    CHECK ((value IS NOT NULL) = (kind IN ('user', 'domain')))
) STRICT, WITHOUT ROWID;

-- A user's static category publications (expireType="static"), one per (category, instance,
-- container). document is the instance as an application/msrtc-event-categories+xml document,
-- which the engine parses back when it loads the user. id grows with each write, so ordering by
-- it gives the order the instances were last written in.
CREATE TABLE presence_static_publications (
    id          INTEGER NOT NULL PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category    TEXT    NOT NULL CHECK (length(category) BETWEEN 1 AND 64),   -- 'state', 'note'
    instance    INTEGER NOT NULL CHECK (instance BETWEEN 0 AND 4294967295),
    container   INTEGER NOT NULL CHECK (container BETWEEN 0 AND 32767),
    version     INTEGER NOT NULL CHECK (version BETWEEN 0 AND 4294967295),
    document    TEXT    NOT NULL,
    UNIQUE (user_id, category, instance, container)
) STRICT;
