-- Registrations acknowledged with a 200 OK, so a restart does not sign anyone out (RFC 3261
-- §10.3: a binding lasts until it expires or is removed). Only bindings reached over datagram
-- flows are kept: a TCP or TLS binding dies with its connection.
CREATE TABLE registrations (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,         -- registration order within the user
    contact       TEXT    NOT NULL,         -- Contact URI as registered
    params        TEXT    NOT NULL,         -- Contact header parameters echoed in the 200 OK
    instance      TEXT,                     -- +sip.instance
    reg_id        INTEGER,                  -- RFC 5626 reg-id
    q             INTEGER,                  -- q in thousandths
    epid          TEXT,                     -- Lync endpoint id
    call_id       TEXT    NOT NULL,
    cseq          INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,         -- Unix time, milliseconds
    flow          TEXT    NOT NULL,         -- the path back to the client, e.g. udp:0:192.0.2.7:5060
    server        TEXT    NOT NULL,         -- the pool member whose socket the flow is ('' alone)
    source        TEXT    NOT NULL,         -- where the REGISTER came from, for admin views
    user_agent    TEXT,
    PRIMARY KEY (user_id, position)
) STRICT;

CREATE INDEX registrations_by_expiry ON registrations (expires_at);
