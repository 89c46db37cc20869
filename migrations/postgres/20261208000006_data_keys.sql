-- The data keys that seal embeddings and crops here (`--data-key-file`):
-- each one's id and check value (an HMAC of a fixed label under the key,
-- never the key). None: nothing was ever sealed. Two while `visage data-key
-- rotate` runs. Once one is listed, no replica starts without a listed key.
CREATE TABLE data_keys (
    id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    check_value  bytea NOT NULL CHECK (length(check_value) = 32),
    added_at     timestamptz NOT NULL
);
