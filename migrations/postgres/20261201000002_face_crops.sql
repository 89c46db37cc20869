-- With `--keep-crops`: each face's aligned crop (a PNG of the face and its
-- surroundings, 256x256; biometric data), so that `visage reembed --to`
-- can embed it with another model without the photo. Deleted with the face.
CREATE TABLE face_crops (
    face_id     uuid PRIMARY KEY REFERENCES faces (id) ON DELETE CASCADE,
    image       bytea NOT NULL,      -- PNG
    landmarks   jsonb NOT NULL,      -- [[x, y] x 5], in the crop
    created_at  timestamptz NOT NULL
);

