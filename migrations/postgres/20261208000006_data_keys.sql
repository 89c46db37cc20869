-- The data keys that seal embeddings and crops here (`--data-key-file`):
-- each one's id and check value (an HMAC of a fixed label under the key,
-- never the key). None: nothing was ever sealed. Two while `visage data-key
-- rotate` runs. Once one is listed, no replica starts without a listed key.
CREATE TABLE data_keys (
    id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    check_value  bytea NOT NULL CHECK (length(check_value) = 32),
    added_at     timestamptz NOT NULL
);

-- A sealed embedding is 51 bytes longer than its f32s (never a multiple of
-- 4): the checks accept the clear form or the sealed one.
ALTER TABLE faces DROP CONSTRAINT faces_embedding_check;
ALTER TABLE faces ADD CONSTRAINT faces_embedding_check CHECK (
    octet_length(embedding) % 4 = 0
    OR (octet_length(embedding) % 4 = 3 AND substring(embedding from 1 for 3) = '\xf55601'::bytea));
ALTER TABLE face_embeddings DROP CONSTRAINT face_embeddings_embedding_check;
ALTER TABLE face_embeddings ADD CONSTRAINT face_embeddings_embedding_check CHECK (
    octet_length(embedding) % 4 = 0
    OR (octet_length(embedding) % 4 = 3 AND substring(embedding from 1 for 3) = '\xf55601'::bytea));
