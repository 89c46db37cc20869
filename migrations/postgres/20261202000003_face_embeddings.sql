-- Embeddings of a face by other models than its own (`faces.model`), kept
-- beside it while a gallery moves to another embedder (`visage reembed
-- --to`): a service of either model finds every face, the switch swaps own
-- and beside in one transaction, and the previous model's embeddings stay
-- here (for a switch back) until pruned. Never the face's own model.
CREATE TABLE face_embeddings (
    face_id     uuid NOT NULL REFERENCES faces (id) ON DELETE CASCADE,
    model       text NOT NULL,
    embedding   bytea NOT NULL CHECK (octet_length(embedding) % 4 = 0),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (face_id, model)
);

CREATE INDEX face_embeddings_by_model ON face_embeddings (model);
