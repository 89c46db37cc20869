//! The store's interface: every operation the service, the admin commands
//! and the benchmarks perform on the database, one method each. SQLite
//! (`sqlite/`) is the implementation today; another database implements the
//! same trait and nothing above the store changes.
//!
//! Every change is made in one transaction together with its audit record
//! (`actor` says who made it). Ids are the domain's (`domain::new_id`);
//! timestamps are RFC 3339 strings ([`super::now`]).
use std::collections::HashMap;
use std::path::Path;

use futures_util::stream::BoxStream;

use super::{
    ApiKey, AssignTo, AuditEntry, Change, ChangePos, Crop, DataKeyRecord, Delivery, FaceExport, FaceRecord, ModelCount,
    NewEvent, NewFace, Owner, Person, Regroup, SealedColumn, StoreResult, StoredEmbedding, StoredEvent, StoredValue,
    Switched, UnassignedEmbedding, Webhook, WebhookChange, WebhookPlace,
};

#[async_trait::async_trait]
pub trait Database: Send + Sync {
    /// Is the database answering?
    async fn ping(&self) -> StoreResult<()>;
    /// Closes the connections; later calls fail.
    async fn close(&self);
    /// A consistent copy of the whole database written to `dest`, a new
    /// file, while writers continue (or an error saying what to use instead).
    async fn backup(&self, dest: &Path) -> StoreResult<()>;
    /// "ok", or the database's own list of problems.
    async fn integrity_check(&self) -> StoreResult<String>;

    // Persons.
    async fn create_person(&self, person: &Person, actor: &str) -> StoreResult<()>;
    async fn get_person(&self, id: &str) -> StoreResult<Option<Person>>;
    /// The oldest person with exactly this name.
    async fn find_person_by_name(&self, name: &str) -> StoreResult<Option<Person>>;
    /// Persons in id (creation) order, after `cursor` when given.
    async fn list_persons(&self, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<Person>>;
    /// Names of the given persons (absent ids are left out).
    async fn person_names(&self, ids: &[&str]) -> StoreResult<HashMap<String, String>>;
    /// Changes the name and/or the metadata (`Some(None)` clears it); None when absent.
    async fn update_person(
        &self,
        id: &str,
        name: Option<&str>,
        metadata: Option<Option<&serde_json::Value>>,
        actor: &str,
    ) -> StoreResult<Option<Person>>;
    /// Deletes the person and every face, leaving no recoverable copy of
    /// them where the database allows; false when absent.
    async fn delete_person(&self, id: &str, actor: &str) -> StoreResult<bool>;

    // Faces.
    /// Enrolls a face for an existing person (`PersonNotFound` when absent).
    async fn add_face(&self, person_id: &str, face: &NewFace<'_>, actor: &str) -> StoreResult<FaceRecord>;
    /// Creates a person and enrolls their first face atomically.
    async fn create_person_with_face(
        &self,
        person: &Person,
        face: &NewFace<'_>,
        actor: &str,
    ) -> StoreResult<FaceRecord>;
    async fn list_faces(&self, person_id: &str) -> StoreResult<Vec<FaceRecord>>;
    /// Deletes one face of a person, as `delete_person` does; false when absent.
    async fn delete_face(&self, person_id: &str, face_id: &str, actor: &str) -> StoreResult<bool>;
    /// Every face's embedding, row by row (the gallery's load: a million
    /// embeddings are never all held twice): its embedding by `model`, own
    /// or kept beside, else its own embedding (of another model).
    fn embeddings(&self, model: &str) -> BoxStream<'_, StoreResult<StoredEmbedding>>;
    /// Every face record (no embeddings), row by row, by person (the
    /// gallery health check).
    fn face_records(&self) -> BoxStream<'_, StoreResult<FaceRecord>>;
    /// The face's kept crop, when it has one (`--keep-crops`).
    async fn face_crop(&self, face_id: &str) -> StoreResult<Option<Crop>>;
    /// Whether this person already has a face from the photo with this hash.
    async fn has_face_from(&self, person_id: &str, source_sha256: &str) -> StoreResult<bool>;
    /// Faces with no embedding of `model` (neither own nor kept beside),
    /// with their photo hashes.
    async fn faces_lacking(&self, model: &str) -> StoreResult<Vec<(FaceRecord, Option<String>)>>;
    /// Creates one person per embedding, each with one face, in batched
    /// transactions (bulk imports and benchmarks). Returns the person ids.
    async fn bulk_enroll(&self, items: &[(String, Vec<f32>)], model: &str) -> StoreResult<Vec<String>>;

    // Faces without a person ("unassigned"), each in a cluster.
    /// Any stored face, assigned or not.
    async fn get_face(&self, face_id: &str) -> StoreResult<Option<FaceRecord>>;
    /// Stores faces without a person, each in the cluster given beside it,
    /// then makes the `regroups` in order (clusters merged, faces moved
    /// between clusters), in one transaction.
    async fn keep_faces(
        &self,
        faces: &[(NewFace<'_>, String)],
        regroups: &[Regroup],
        actor: &str,
    ) -> StoreResult<Vec<FaceRecord>>;
    /// Whether any stored face carries this external id (resumed imports).
    async fn has_external_id(&self, external_id: &str) -> StoreResult<bool>;
    /// Unassigned faces in id (creation) order, after `cursor` when given.
    async fn list_unassigned(&self, limit: u32, cursor: Option<&str>) -> StoreResult<Vec<FaceRecord>>;
    /// Deletes any face, as `delete_person` does; false when absent.
    async fn delete_face_by_id(&self, face_id: &str, actor: &str) -> StoreResult<bool>;
    /// Gives a face to a person, or takes it from its person into a cluster
    /// (`PersonNotFound` when the person is absent); None when the face is.
    async fn move_face(&self, face_id: &str, to: Owner<'_>, actor: &str) -> StoreResult<Option<FaceRecord>>;
    /// Every face still in the cluster joins the person (created first when
    /// `New`), in one transaction; the ids of the faces moved. None moved:
    /// nothing is written (not even the new person).
    async fn assign_cluster(&self, cluster_id: &str, to: AssignTo<'_>, actor: &str) -> StoreResult<Vec<String>>;
    /// Moves every face of the persons `from` to `into` and deletes them, in
    /// one transaction (`PersonNotFound` names the first absent one); the
    /// ids of the faces moved.
    async fn merge_persons(&self, into: &str, from: &[&str], actor: &str) -> StoreResult<Vec<String>>;
    /// Deletes the unassigned faces created before `before` (RFC 3339); their ids.
    async fn purge_unassigned(&self, before: &str, actor: &str) -> StoreResult<Vec<String>>;
    /// Every unassigned face's embedding, row by row, preferring `model`'s as
    /// [`Database::embeddings`] does.
    fn unassigned_embeddings(&self, model: &str) -> BoxStream<'_, StoreResult<UnassignedEmbedding>>;
    /// The embeddings of those of these faces that are unassigned.
    async fn unassigned_of(&self, face_ids: &[&str], model: &str) -> StoreResult<Vec<UnassignedEmbedding>>;

    // Moving to another embedder: embeddings kept beside the faces' own.
    /// Keeps `embedding` as the face's embedding by `model` beside its own
    /// (replacing an earlier one). False when the face is absent or its own
    /// embedding is already of `model`.
    async fn put_embedding(&self, face_id: &str, model: &str, embedding: &[f32], actor: &str) -> StoreResult<bool>;
    /// Makes `model` the own model of every face with an embedding of it
    /// kept beside, the previous own embedding kept beside in its place (so
    /// a switch back undoes it), in one transaction. Refused (`done` false,
    /// nothing changed) when faces lack `model`, unless `force`.
    async fn switch_model(&self, model: &str, force: bool, actor: &str) -> StoreResult<Switched>;
    /// Deletes the embeddings kept beside the faces' own (of `model`, or
    /// all), leaving no recoverable copy where the database allows.
    async fn prune_embeddings(&self, model: Option<&str>, actor: &str) -> StoreResult<u64>;
    /// How many enrolled faces (not the unassigned ones) have embeddings of
    /// each model, own and beside.
    async fn model_counts(&self) -> StoreResult<Vec<ModelCount>>;

    // Export and import.
    /// A person's faces with their embeddings.
    async fn export_faces(&self, person_id: &str) -> StoreResult<Vec<FaceExport>>;
    /// Stores an exported person with their faces, ids kept, in one
    /// transaction. False (and nothing written) when the person id exists.
    async fn import_person(&self, person: &Person, faces: &[FaceExport], actor: &str) -> StoreResult<bool>;

    // Data keys: encryption at rest (`crate::sealing`).
    /// The data keys listed for this database (ids and check values).
    async fn data_keys(&self) -> StoreResult<Vec<DataKeyRecord>>;
    /// Lists a key (nothing when it is listed already).
    async fn add_data_key(&self, id: &str, check_value: &[u8], actor: &str) -> StoreResult<()>;
    /// Unlists every key but `keep`; how many.
    async fn retire_data_keys(&self, keep: &str, actor: &str) -> StoreResult<u64>;
    /// Up to `limit` values of `column` that do not start with `prefix` (so
    /// are not sealed by that key), after the row `after` (face id, model),
    /// in row order.
    async fn values_not_sealed_by(
        &self,
        column: SealedColumn,
        prefix: &[u8],
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> StoreResult<Vec<StoredValue>>;
    /// Rewrites values as they were read, in one transaction, leaving no
    /// copy of the earlier ones where the database allows; a value changed
    /// meanwhile is left as it is. How many were rewritten.
    async fn replace_values(&self, values: &[(StoredValue, Vec<u8>)]) -> StoreResult<u64>;

    // Keys (their format and hashing are the store's, in `keys.rs`).
    async fn insert_key(&self, key: &ApiKey, secret_sha256: &[u8; 32], actor: &str) -> StoreResult<()>;
    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key; false when there is no such valid key.
    async fn revoke_key(&self, id: &str, actor: &str) -> StoreResult<bool>;
    /// How many keys are valid (not revoked).
    async fn active_keys(&self) -> StoreResult<i64>;
    /// A valid (not revoked) key with the SHA-256 of its secret.
    async fn valid_key(&self, id: &str) -> StoreResult<Option<(ApiKey, Vec<u8>)>>;

    /// Every valid key with the SHA-256 of its secret (a replica's key ring).
    async fn valid_keys(&self) -> StoreResult<Vec<(ApiKey, Vec<u8>)>>;

    // Webhooks: where events go.
    /// Stores a webhook with its signing secret; it receives the events
    /// written from now on.
    async fn create_webhook(&self, w: &Webhook, secret: &str, actor: &str) -> StoreResult<()>;
    /// Every webhook, oldest first (by id: ids grow with time; never their secrets).
    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>>;
    async fn get_webhook(&self, id: &str) -> StoreResult<Option<Webhook>>;
    /// Applies a change; the webhook as it is now, None when absent.
    async fn update_webhook(&self, id: &str, change: &WebhookChange, actor: &str) -> StoreResult<Option<Webhook>>;
    /// False when absent.
    async fn delete_webhook(&self, id: &str, actor: &str) -> StoreResult<bool>;
    /// A webhook's signing secret (`whsec_...`), to sign with.
    async fn webhook_secret(&self, id: &str) -> StoreResult<Option<String>>;

    // The outbox of events and the deliveries of them.
    /// Writes events in one transaction; their places in the outbox.
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<Vec<i64>>;
    /// Events after `after`, in order, at most `limit`: only those before
    /// which no event can still appear (as [`Database::changes_after`]).
    async fn events_after(&self, after: ChangePos, limit: u32) -> StoreResult<Vec<StoredEvent>>;
    /// Where a webhook is in the outbox; None when there is no such webhook.
    async fn webhook_place(&self, webhook_id: &str) -> StoreResult<Option<WebhookPlace>>;
    /// Moves a webhook past events it does not want (never backwards).
    async fn skip_events(&self, webhook_id: &str, to: ChangePos) -> StoreResult<()>;
    /// Records an attempt of the event at `event` and moves the webhook on
    /// (delivered or failed: past the event; retrying: to try again at
    /// `next_at`), together; false (nothing written) when the webhook is
    /// gone or already past the event.
    async fn record_delivery(&self, d: &Delivery, event: ChangePos, next_at: Option<&str>) -> StoreResult<bool>;
    /// A webhook's attempts, newest first, before `before` (a sequence
    /// number) when given; each with its sequence number.
    async fn deliveries(&self, webhook_id: &str, limit: u32, before: Option<i64>) -> StoreResult<Vec<(i64, Delivery)>>;
    /// One attempt of a webhook.
    async fn get_delivery(&self, webhook_id: &str, id: &str) -> StoreResult<Option<Delivery>>;
    /// Logs an attempt made out of turn (a retry asked for); the webhook's place stays.
    async fn log_delivery(&self, d: &Delivery) -> StoreResult<()>;
    /// The event with this sequence number, while it is kept.
    async fn event(&self, seq: i64) -> StoreResult<Option<StoredEvent>>;
    /// Takes or keeps the right to deliver to a webhook until `until` (one
    /// process at a time, among replicas); false while another holds it.
    async fn lease_webhook(&self, id: &str, owner: &str, now: &str, until: &str) -> StoreResult<bool>;
    /// Each webhook's events still to deliver (after its place, of types it
    /// wants), by webhook id.
    async fn pending_events(&self) -> StoreResult<Vec<(String, i64)>>;
    /// Deletes the events written before `before` that every webhook has
    /// passed, with their attempts; how many.
    async fn prune_events(&self, before: &str) -> StoreResult<u64>;

    // Following changes made by other processes (replicas).
    /// Whether several processes may write this database at once (replicas
    /// of the service): then each follows the change log.
    fn shared(&self) -> bool;
    /// Where to start following: every change before this position is
    /// visible to any read made after this call (so a gallery loaded next
    /// holds it). Take it before loading.
    async fn change_horizon(&self) -> StoreResult<ChangePos>;
    /// Committed changes after `after`, in order, at most `limit`. A change
    /// is returned only once no change before it can still commit: after
    /// reading up to a position, nothing ever appears before it.
    async fn changes_after(&self, after: ChangePos, limit: u32) -> StoreResult<Vec<Change>>;
    /// A stream with an item each time changes may have been committed by
    /// any process; it ends (or errs) when the connection is lost, and
    /// notifications may then have been missed. None when the database does
    /// not notify (SQLite: one process owns it).
    async fn change_signals(&self) -> StoreResult<Option<BoxStream<'static, StoreResult<()>>>>;
    /// The embeddings of these faces and of every face of these persons,
    /// one a face, preferring `model`'s as [`Database::embeddings`] does.
    async fn embeddings_of(
        &self,
        face_ids: &[&str],
        person_ids: &[&str],
        model: &str,
    ) -> StoreResult<Vec<StoredEmbedding>>;

    /// The latest `limit` audit entries, newest first, before sequence
    /// number `before` when given.
    async fn audit_log(&self, limit: u32, before: Option<i64>) -> StoreResult<Vec<AuditEntry>>;
}
