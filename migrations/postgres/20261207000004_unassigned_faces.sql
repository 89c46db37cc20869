-- Faces without a person ("unassigned": kept from `POST /v1/faces`, or
-- remembered by identify): `person_id` may be NULL, and such a face belongs
-- to a cluster (`cluster_id`, the group of unassigned faces that show one
-- person; NULL once the face has a person). `external_id` is the client's own
-- id for the face.
ALTER TABLE faces ALTER COLUMN person_id DROP NOT NULL;
ALTER TABLE faces ADD COLUMN external_id text
    CHECK (external_id IS NULL OR char_length(external_id) BETWEEN 1 AND 200);
ALTER TABLE faces ADD COLUMN cluster_id uuid;
ALTER TABLE faces ADD CONSTRAINT faces_person_or_cluster CHECK ((person_id IS NULL) = (cluster_id IS NOT NULL));
CREATE INDEX faces_by_cluster ON faces (cluster_id) WHERE cluster_id IS NOT NULL;
CREATE INDEX faces_unassigned_by_age ON faces (created_at) WHERE person_id IS NULL;
CREATE INDEX faces_by_external_id ON faces (external_id) WHERE external_id IS NOT NULL;
