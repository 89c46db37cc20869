-- Persons and their enrolled faces. Photos are never stored: only the
-- embedding (little-endian f32), the model that made it, and where the face was.
CREATE TABLE persons (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    metadata    TEXT,                -- JSON object or NULL
    created_at  TEXT NOT NULL,       -- RFC 3339, UTC
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE faces (
    id          TEXT PRIMARY KEY NOT NULL,
    person_id   TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    embedding   BLOB NOT NULL,       -- little-endian f32 values
    model       TEXT NOT NULL,       -- "<model id>@sha256:<file hash>"
    box_x       REAL NOT NULL,
    box_y       REAL NOT NULL,
    box_width   REAL NOT NULL,
    box_height  REAL NOT NULL,
    landmarks   TEXT NOT NULL,       -- JSON [[x, y] x 5]
    score       REAL NOT NULL,       -- detection score
    quality     TEXT NOT NULL,       -- JSON object
    created_at  TEXT NOT NULL
) STRICT;

CREATE INDEX faces_by_person ON faces (person_id);
