-- Events and the webhooks they go to. `events` is the outbox: an event is
-- written in the transaction of the change it reports (an identify's events
-- before its answer is sent), and each webhook keeps its place in it: every
-- event up to `after_seq` has been dealt with (delivered, given up on, or
-- not of a type it wants). As in the change log (the audit table), a
-- sequence value is taken before its transaction commits, so events are
-- read in (txid, seq) order and only from transactions older than any still
-- running: no event ever appears before a place already passed. Deliveries
-- go out in that order per webhook.
CREATE TABLE events (
    seq   bigserial PRIMARY KEY,
    txid  bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id    text NOT NULL UNIQUE,           -- a delivery's webhook-id
    type  text NOT NULL,                  -- e.g. person.created
    at    timestamptz NOT NULL,
    data  jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object')
);

CREATE TABLE webhooks (
    id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    url         text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2000),
    events      jsonb NOT NULL CHECK (jsonb_typeof(events) = 'array'),
    secret      text NOT NULL,            -- whsec_...: never listed, never logged
    paused      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    after_txid  bigint NOT NULL,          -- the outbox up to (after_txid, after_seq)
    after_seq   bigint NOT NULL,          --   is dealt with
    failures    integer NOT NULL DEFAULT 0,  -- failed attempts of the event after it
    next_at     timestamptz,              -- when that event is tried again (NULL: at once)
    lease_owner text,                     -- the process delivering to it, until lease_until
    lease_until timestamptz
);

-- Every attempt: what the receiver answered, or why it could not.
CREATE TABLE deliveries (
    seq         bigserial PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    webhook_id  text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq   bigint NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    attempt     integer NOT NULL CHECK (attempt >= 1),
    at          timestamptz NOT NULL,
    status      integer,                  -- the receiver's HTTP status, when it answered
    error       text,                     -- NULL when delivered
    outcome     text NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    millis      bigint NOT NULL
);

CREATE INDEX events_by_position ON events (txid, seq);

CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq);
