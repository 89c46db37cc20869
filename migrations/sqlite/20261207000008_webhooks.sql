-- Events and the webhooks they go to. `events` is the outbox: an event is
-- written in the transaction of the change it reports (an identify's events
-- before its answer is sent), and each webhook keeps its place in it: every
-- event up to `after_seq` has been dealt with (delivered, given up on, or
-- not of a type it wants). Deliveries go out in `seq` order per webhook.
CREATE TABLE events (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    id    TEXT NOT NULL UNIQUE,           -- a delivery's webhook-id
    type  TEXT NOT NULL,                  -- e.g. person.created
    at    TEXT NOT NULL,                  -- RFC 3339, UTC
    data  TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'object')
) STRICT;

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY NOT NULL,
    url         TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    events      TEXT NOT NULL CHECK (json_valid(events) AND json_type(events) = 'array'),
    secret      TEXT NOT NULL,            -- whsec_...: never listed, never logged
    paused      INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    created_at  TEXT NOT NULL,
    after_seq   INTEGER NOT NULL,         -- the outbox up to here is dealt with
    failures    INTEGER NOT NULL DEFAULT 0,  -- failed attempts of the event after it
    next_at     TEXT,                     -- when that event is tried again (NULL: at once)
    lease_owner TEXT,                     -- the process delivering to it, until lease_until
    lease_until TEXT
) STRICT;

-- Every attempt: what the receiver answered, or why it could not.
CREATE TABLE deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq   INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    at          TEXT NOT NULL,
    status      INTEGER,                  -- the receiver's HTTP status, when it answered
    error       TEXT,                     -- NULL when delivered
    outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    millis      INTEGER NOT NULL
) STRICT;

CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq);
