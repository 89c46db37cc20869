-- The PostgreSQL store: the same tables as SQLite's, in native types.
-- Photos are never stored: only the embedding (little-endian f32 values),
-- the model that made it, and where the face was.
CREATE TABLE persons (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    metadata    jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX persons_by_name ON persons (name, created_at, id);

CREATE TABLE faces (
    id             uuid PRIMARY KEY,
    person_id      uuid NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    embedding      bytea NOT NULL CHECK (octet_length(embedding) % 4 = 0),
    model          text NOT NULL,        -- "<model id>@sha256:<file hash>"
    box_x          real NOT NULL,
    box_y          real NOT NULL,
    box_width      real NOT NULL,
    box_height     real NOT NULL,
    landmarks      jsonb NOT NULL,       -- [[x, y] x 5]
    score          real NOT NULL,        -- detection score
    quality        jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    source_sha256  text CHECK (source_sha256 ~ '^[0-9a-f]*$')  -- the photo's hash, never the photo
);

CREATE INDEX faces_by_person ON faces (person_id, source_sha256);

-- API keys. Only the SHA-256 of each key's secret part is stored.
CREATE TABLE api_keys (
    id             text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),  -- public part, safe to log
    name           text NOT NULL,
    scope          text NOT NULL CHECK (scope IN ('admin', 'enroll', 'match')),
    secret_sha256  bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
    created_at     timestamptz NOT NULL,
    revoked_at     timestamptz            -- NULL while the key is valid
);

-- Who changed what, when, written in the same transaction as the change.
-- It is also the change log replicas follow: `txid` is the writing
-- transaction's id, and a reader takes only rows of transactions older than
-- every transaction still running (see src/store/postgres/changes.rs), so
-- that no change is skipped when transactions commit out of `seq` order.
CREATE TABLE audit (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid     bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    at       timestamptz NOT NULL,
    actor    text NOT NULL,   -- "key:<key id>", "anonymous", "cli" or "bulk"
    action   text NOT NULL,   -- create_person, enroll_face, update_person, delete_face, ...
    subject  text NOT NULL    -- the person, face or key id
);

CREATE INDEX audit_by_position ON audit (txid, seq);

-- Append-only, enforced by the database: no update, delete or truncate.
CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;

CREATE TRIGGER audit_no_update_or_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();

CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();

-- Wakes the replicas: the notification is delivered when the transaction
-- commits (and never when it rolls back).
CREATE FUNCTION audit_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('visage_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_notifies AFTER INSERT ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_notify();
