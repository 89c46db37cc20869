-- Faces without a person ("unassigned": kept from `POST /v1/faces`, or
-- remembered by identify): `person_id` may be NULL, and such a face belongs
-- to a cluster (`cluster_id`, the group of unassigned faces that show one
-- person; NULL once the face has a person). `external_id` is the client's own
-- id for the face. SQLite cannot drop a NOT NULL: the table is rebuilt
-- (SQLite's documented procedure). Migrations run on a connection with
-- foreign keys off, so dropping the old table does not cascade to face_crops
-- and face_embeddings; the keys are checked after (src/store/sqlite/mod.rs).
CREATE TABLE faces_new (
    id             TEXT PRIMARY KEY NOT NULL,
    person_id      TEXT REFERENCES persons (id) ON DELETE CASCADE,   -- NULL: unassigned
    embedding      BLOB NOT NULL,       -- little-endian f32 values
    model          TEXT NOT NULL,       -- "<model id>@sha256:<file hash>"
    box_x          REAL NOT NULL,
    box_y          REAL NOT NULL,
    box_width      REAL NOT NULL,
    box_height     REAL NOT NULL,
    landmarks      TEXT NOT NULL,       -- JSON [[x, y] x 5]
    score          REAL NOT NULL,       -- detection score
    quality        TEXT NOT NULL,       -- JSON object
    created_at     TEXT NOT NULL,
    source_sha256  TEXT,
    external_id    TEXT CHECK (external_id IS NULL OR length(external_id) BETWEEN 1 AND 200),
    cluster_id     TEXT,
    CHECK ((person_id IS NULL) = (cluster_id IS NOT NULL))
) STRICT;
INSERT INTO faces_new (id, person_id, embedding, model, box_x, box_y, box_width, box_height, landmarks, score,
                       quality, created_at, source_sha256)
    SELECT id, person_id, embedding, model, box_x, box_y, box_width, box_height, landmarks, score, quality,
           created_at, source_sha256 FROM faces;
DROP TABLE faces;
ALTER TABLE faces_new RENAME TO faces;
CREATE INDEX faces_by_person ON faces (person_id);
CREATE INDEX faces_by_source ON faces (source_sha256);
CREATE INDEX faces_by_cluster ON faces (cluster_id) WHERE cluster_id IS NOT NULL;
CREATE INDEX faces_unassigned_by_age ON faces (created_at) WHERE person_id IS NULL;
CREATE INDEX faces_by_external_id ON faces (external_id) WHERE external_id IS NOT NULL;
