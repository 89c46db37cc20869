-- API keys. Only the SHA-256 of each key's secret part is stored: a key is
-- shown once, when created, and cannot be recovered from the database.
CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY NOT NULL,   -- public part (16 hex digits), safe to log
    name           TEXT NOT NULL,
    scope          TEXT NOT NULL CHECK (scope IN ('admin', 'enroll', 'match')),
    secret_sha256  BLOB NOT NULL,
    created_at     TEXT NOT NULL,               -- RFC 3339, UTC
    revoked_at     TEXT                         -- NULL while the key is valid
) STRICT;
