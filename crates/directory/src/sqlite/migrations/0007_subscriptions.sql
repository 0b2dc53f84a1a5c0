-- Presence subscription dialogs acknowledged with a 2xx, so a restart does not silently end
-- them (issue 3; RFC 6665 §4.1.2.2: a subscription lasts until it expires or is ended). Written
-- by herald's subscription writer before the 200 is sent, one transaction per batch; deleted
-- when the dialog ends. Only dialogs reached over datagram flows are kept. The presence engine
-- (herald-presence's StoredSubscription) reads them back at start-up.
CREATE TABLE subscriptions (
    local_tag     TEXT    NOT NULL PRIMARY KEY,  -- the server's dialog tag
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,  -- the subscriber
    server        TEXT    NOT NULL,  -- the pool member whose socket the flow is ('' alone)
    package       TEXT    NOT NULL,  -- event package
    event_id      TEXT,              -- Event id parameter
    call_id       TEXT    NOT NULL,
    remote_tag    TEXT    NOT NULL,
    remote_target TEXT    NOT NULL,  -- the subscriber's Contact URI
    route         TEXT,              -- route set
    resource      TEXT,              -- user@domain of a single presence subscription
    list_uri      TEXT,              -- the list URI of a list subscription
    list          TEXT    NOT NULL,  -- a list subscription's resource URIs, one per line
    format        TEXT    NOT NULL,  -- body format ('pidf', 'categories:<hex>')
    flags         INTEGER NOT NULL,  -- negotiated extensions (engine bits)
    cseq          INTEGER NOT NULL,  -- CSeq reservation: above every CSeq sent in the dialog
    duration      INTEGER NOT NULL,  -- granted seconds
    expires_at    INTEGER NOT NULL,  -- Unix time, milliseconds
    flow          TEXT    NOT NULL   -- the path back to the subscriber, e.g. udp:0:192.0.2.7:5060
) STRICT;

CREATE INDEX subscriptions_by_expiry ON subscriptions (expires_at);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id);
