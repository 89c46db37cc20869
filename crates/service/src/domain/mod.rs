//! The small vocabulary every layer shares: ids, person names, boxes and
//! landmarks, face quality, key scopes, the cosine similarity of unit
//! embeddings that every decision compares with a (checked) threshold, and the records
//! the store keeps and returns (persons, faces, keys, webhooks, audit entries). It imports
//! nothing from the rest of the crate, so the vision pipeline, the gallery,
//! the store, the service and the edges (HTTP, CLI) can all speak it without
//! importing each other.
pub mod event;
pub mod face;
pub mod geometry;
pub mod id;
pub mod name;
pub mod records;
pub mod scope;
pub mod similarity;
pub mod threshold;
pub mod webhook;

pub use event::{
    ClusterChanged, DeleteReason, EventKind, FaceAdded, FaceDeleted, FaceIdentified, FaceMoved, FacePlace,
    MatchedPerson, PersonChanged, PersonDeleted, PersonMerged, PersonRef,
};
pub use face::{Detection, FaceChoice, Quality};
pub use geometry::{BBox, Point};
pub use id::{id_bits, id_from_bits, is_valid_id, new_id};
pub use name::{MAX_NAME_CHARS, NameError, valid_name};
pub use records::{
    ApiKey, AssignTo, AuditEntry, Change, ChangePos, Crop, FaceExport, FaceRecord, ModelCount, NewFace, NewKey, Owner,
    Person, Regroup, StoredEmbedding, Switched, UnassignedEmbedding, now,
};
pub use scope::Scope;
pub use threshold::{NotAThreshold, Threshold};
pub use webhook::{ALL_EVENTS, Delivery, NewEvent, Outcome, StoredEvent, Webhook, WebhookChange, WebhookPlace};
