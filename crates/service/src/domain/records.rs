//! What the store holds, independent of the database that holds it: persons,
//! faces (with and without their embeddings), keys and audit entries.
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{BBox, Detection, Point, Quality, Scope, new_id};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub name: String,
    /// Free-form JSON object given by the client (at most 16 KiB).
    pub metadata: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
    /// Enrolled faces.
    pub face_count: i64,
}

impl Person {
    /// A new person: a fresh id, created now, no faces yet.
    pub fn new(name: &str, metadata: Option<&serde_json::Value>) -> Self {
        let at = now();
        Self {
            id: new_id(),
            name: name.to_string(),
            metadata: metadata.cloned(),
            created_at: at.clone(),
            updated_at: at,
            face_count: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceRecord {
    pub id: String,
    /// The person the face is enrolled for; None while it is unassigned.
    pub person_id: Option<String>,
    /// The client's own id for the face, when it gave one (at most 200 characters).
    pub external_id: Option<String>,
    /// The group of unassigned faces it belongs to; None once it has a person.
    pub cluster_id: Option<String>,
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub landmarks: [Point; 5],
    pub score: f32,
    pub quality: Quality,
    /// The embedder that produced the stored embedding.
    pub model: String,
    pub created_at: String,
}

/// A face to enroll: its detection, quality and embedding.
pub struct NewFace<'a> {
    pub detection: &'a Detection,
    pub quality: Quality,
    pub embedding: &'a [f32],
    pub model: &'a str,
    /// SHA-256 (hex) of the photo, when known.
    pub source_sha256: Option<&'a str>,
    /// The aligned crop to keep (`--keep-crops`), if any.
    pub crop: Option<&'a Crop>,
    /// The client's own id for the face.
    pub external_id: Option<&'a str>,
}

/// A face's kept crop (`--keep-crops`): a PNG of the face and its
/// surroundings in the frame of `vision::align::kept_crop`, and where its
/// landmarks fall in it. Biometric data, deleted with the face.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    pub png: Vec<u8>,
    pub landmarks: [Point; 5],
}

impl NewFace<'_> {
    /// The record this face becomes for `person_id`: a fresh id, created now.
    pub fn record(&self, person_id: &str) -> FaceRecord {
        self.record_in(Owner::Person(person_id))
    }

    /// The record this face becomes, with a person or in a cluster.
    pub fn record_in(&self, owner: Owner<'_>) -> FaceRecord {
        let d = self.detection;
        let (person_id, cluster_id) = owner.columns();
        FaceRecord {
            id: new_id(),
            person_id,
            external_id: self.external_id.map(str::to_string),
            cluster_id,
            bbox: d.bbox,
            landmarks: d.landmarks,
            score: d.score,
            quality: self.quality,
            model: self.model.to_string(),
            created_at: now(),
        }
    }
}

/// Where a stored face belongs: to a person, or (unassigned) to a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Person(&'a str),
    Cluster(&'a str),
}

impl Owner<'_> {
    /// The face's `person_id` and `cluster_id` columns.
    pub fn columns(self) -> (Option<String>, Option<String>) {
        match self {
            Owner::Person(p) => (Some(p.to_string()), None),
            Owner::Cluster(c) => (None, Some(c.to_string())),
        }
    }
}

/// A change to the clusters of unassigned faces besides placing new ones,
/// written in order with them (and followed in that order by every replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regroup {
    /// Every unassigned face of cluster `from` goes to cluster `into`.
    Merge { from: String, into: String },
    /// One unassigned face goes to cluster `to` (it no longer fit its own).
    Move { face: String, to: String },
}

/// Whom a cluster's faces are given to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AssignTo<'a> {
    /// A new person, created in the same transaction.
    New(&'a Person),
    /// A person who exists (by id).
    Existing(&'a str),
}

/// An unassigned face's embedding, as the clusters hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnassignedEmbedding {
    pub face_id: String,
    pub cluster_id: String,
    pub external_id: Option<String>,
    pub model: String,
    pub values: Vec<f32>,
}

/// One stored embedding, as loaded into the in-memory gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEmbedding {
    pub face_id: String,
    pub person_id: String,
    pub model: String,
    pub values: Vec<f32>,
}

/// How many faces carry embeddings of one model: as their own
/// (`faces.model`) or kept beside it (`visage reembed --to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCount {
    pub model: String,
    pub own: u64,
    pub beside: u64,
}

/// What a switch of the faces' own model did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Switched {
    /// Faces whose own embedding is now the target model's (their previous
    /// one kept beside).
    pub switched: u64,
    /// Faces with no embedding of the target model: left on their model
    /// (with `force`), or the reason nothing was switched.
    pub lacking: u64,
    /// False when faces lacked the model and `force` was not given: then
    /// nothing changed.
    pub done: bool,
}

/// A stored face with its embedding and the hash of the photo it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceExport {
    #[serde(flatten)]
    pub face: FaceRecord,
    pub source_sha256: Option<String>,
    pub embedding: Vec<f32>,
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A newly created key: the only time the full key exists outside the client.
pub struct NewKey {
    pub key: ApiKey,
    pub secret: SecretString,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
}

/// The current time, RFC 3339 in UTC, to the microsecond: how every
/// timestamp is stored (PostgreSQL keeps microseconds, so a timestamp reads
/// back as it was written in either database).
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let micros = t.nanosecond() / 1000 * 1000;
    t.replace_nanosecond(micros)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// A position in the change log (the audit log read in commit-safe order):
/// every change before it has been seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangePos {
    /// The writing transaction's id (0 where the database commits in `seq` order).
    pub txid: i64,
    pub seq: i64,
}

/// One change: an audit record, as a replica follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub pos: ChangePos,
    pub action: String,
    pub subject: String,
}

/// A data key as a database lists it: its id and check value, never the key.
#[derive(Debug, Clone, PartialEq)]
pub struct DataKeyRecord {
    pub id: String,
    pub check_value: Vec<u8>,
    pub added_at: String,
}

/// Where sealed values live: the columns `visage data-key rotate` reseals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `faces.embedding`, bound to the face and its own model.
    FaceEmbedding,
    /// `face_embeddings.embedding`, bound to the face and that model.
    BesideEmbedding,
    /// `face_crops.image`, bound to the face.
    Crop,
}

impl SealedColumn {
    pub const ALL: [Self; 3] = [Self::FaceEmbedding, Self::BesideEmbedding, Self::Crop];
}

/// One stored value, as it is in its column, with the row it is bound to
/// (`model` is empty for a crop).
#[derive(Debug, Clone)]
pub struct StoredValue {
    pub column: SealedColumn,
    pub face_id: String,
    pub model: String,
    pub stored: Vec<u8>,
}
