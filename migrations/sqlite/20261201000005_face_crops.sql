-- With `--keep-crops`: each face's aligned crop (a PNG of the face and its
-- surroundings, 256x256; biometric data), so that `visage reembed --to`
-- can embed it with another model without the photo. Deleted with the face.
CREATE TABLE face_crops (
    face_id     TEXT PRIMARY KEY NOT NULL REFERENCES faces (id) ON DELETE CASCADE,
    image       BLOB NOT NULL,       -- PNG
    landmarks   TEXT NOT NULL,       -- JSON [[x, y] x 5], in the crop
    created_at  TEXT NOT NULL
) STRICT;

