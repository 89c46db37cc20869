-- With `--keep-crops`: each face's aligned crop (a PNG of the face and its
-- surroundings, 256x256; biometric data), so that `visage reembed --to`
-- can embed it with another model without the photo. Deleted with the face.
CREATE TABLE face_crops (
    face_id     uuid PRIMARY KEY REFERENCES faces (id) ON DELETE CASCADE,
    image       bytea NOT NULL,      -- PNG
    landmarks   jsonb NOT NULL,      -- [[x, y] x 5], in the crop
    created_at  timestamptz NOT NULL
);

-- Embeddings by other models beside each face's own (faces.embedding): a
-- re-embedding computed side by side before a switch, or the previous
-- model's kept after one (for a rollback) until pruned. Deleted with the face.
CREATE TABLE face_embeddings (
    face_id     uuid NOT NULL REFERENCES faces (id) ON DELETE CASCADE,
    model       text NOT NULL,
    embedding   bytea NOT NULL CHECK (octet_length(embedding) % 4 = 0),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (face_id, model)
);
