-- The data keys that seal embeddings and crops here (`--data-key-file`):
-- each one's id and check value (an HMAC of a fixed label under the key,
-- never the key). None: nothing was ever sealed. Two while `visage data-key
-- rotate` runs. Once one is listed, the service refuses to start without a
-- listed key.
CREATE TABLE data_keys (
    id           TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 16),   -- hex of 8 bytes
    check_value  BLOB NOT NULL CHECK (length(check_value) = 32),
    added_at     TEXT NOT NULL
) STRICT;
