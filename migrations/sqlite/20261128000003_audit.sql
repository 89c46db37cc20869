-- Who changed what, when: enrollments, person changes and deletions, key
-- creation and revocation. Append-only: triggers refuse updates and deletes.
-- Written in the same transaction as the change it records.
CREATE TABLE audit (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,       -- RFC 3339, UTC
    actor    TEXT NOT NULL,       -- "key:<key id>", "anonymous" (service without keys) or "cli"
    action   TEXT NOT NULL,       -- create_person, enroll_face, update_person, delete_face, delete_person, create_key, revoke_key
    subject  TEXT NOT NULL        -- the person, face or key id
) STRICT;

CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
