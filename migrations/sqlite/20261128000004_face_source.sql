-- The SHA-256 of the photo each face was enrolled from (never the photo):
-- `visage enroll-dir` skips photos already enrolled, and `visage reembed`
-- finds the photos again when a new embedder needs them.
ALTER TABLE faces ADD COLUMN source_sha256 TEXT;
CREATE INDEX faces_by_source ON faces (source_sha256);
