//! The OpenAPI schemas of webhooks, their delivery attempts, and the `data`
//! of every event type (listed as components: no operation returns them,
//! `GET /v1/events/types` names them), from mirror structs of the same
//! serde form.
#![allow(dead_code)]
use utoipa::ToSchema;

use super::{Schemas, register};
use crate::domain::{
    BBox, ClusterChanged, DeleteReason, Delivery, EventKind, FaceAdded, FaceDeleted, FaceIdentified, FaceMoved,
    FacePlace, MatchedPerson, Outcome, PersonChanged, PersonDeleted, PersonMerged, PersonRef, Webhook,
};

/// Where events go (never its secret).
#[derive(ToSchema)]
struct WebhookDoc {
    id: String,
    url: String,
    /// Event types it receives (`*`: all).
    events: Vec<String>,
    /// Paused: events keep their place and go out once resumed.
    paused: bool,
    created_at: String,
}
documented_as!(Webhook, WebhookDoc, "Webhook");

/// How an attempt ended for its event.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
enum OutcomeDoc {
    /// The receiver answered 2xx.
    Delivered,
    /// It will be tried again (backoff: at most 30 s apart in the first hour, then up to 15 min).
    Retrying,
    /// Given up (older than the retry time, 24 h by default), or a retry asked for that failed.
    Failed,
}
documented_as!(Outcome, OutcomeDoc, "DeliveryOutcome");

/// One attempt to deliver one event to one webhook.
#[derive(ToSchema)]
struct DeliveryDoc {
    id: String,
    webhook_id: String,
    /// The event's place in the outbox.
    event_seq: i64,
    /// 1 for the event's first attempt.
    attempt: u32,
    at: String,
    /// The receiver's HTTP status, when it answered.
    status: Option<u16>,
    /// Why the attempt failed (null when delivered).
    error: Option<String>,
    outcome: Outcome,
    /// How long the attempt took.
    millis: u64,
}
documented_as!(Delivery, DeliveryDoc, "Delivery");

#[derive(ToSchema)]
struct PersonRefDoc {
    id: String,
    name: String,
}
documented_as!(PersonRef, PersonRefDoc, "EventPerson");

/// `person.created`, `person.updated`.
#[derive(ToSchema)]
struct PersonChangedDoc {
    person: PersonRef,
    /// Who made the change: a key id, `admin` (open service) or `cli`.
    actor: String,
}
documented_as!(PersonChanged, PersonChangedDoc, "PersonChangedEvent");

/// `person.deleted`.
#[derive(ToSchema)]
struct PersonDeletedDoc {
    person: PersonRef,
    /// The faces deleted with the person.
    face_ids: Vec<String>,
    actor: String,
}
documented_as!(PersonDeleted, PersonDeletedDoc, "PersonDeletedEvent");

/// `person.merged`.
#[derive(ToSchema)]
struct PersonMergedDoc {
    /// The person who remains, with every face.
    into: PersonRef,
    /// The persons merged into it (now deleted).
    merged: Vec<PersonRef>,
    /// The faces that moved.
    face_ids: Vec<String>,
    actor: String,
}
documented_as!(PersonMerged, PersonMergedDoc, "PersonMergedEvent");

/// Where a face is: with a person, or unassigned in a cluster.
#[derive(ToSchema)]
struct FacePlaceDoc {
    person_id: Option<String>,
    cluster_id: Option<String>,
}
documented_as!(FacePlace, FacePlaceDoc, "FacePlace");

/// `face.added`.
#[derive(ToSchema)]
struct FaceAddedDoc {
    face_id: String,
    /// The person it was enrolled for (null when unassigned).
    person_id: Option<String>,
    /// The cluster it joined or started (null when enrolled).
    cluster_id: Option<String>,
    external_id: Option<String>,
    actor: String,
}
documented_as!(FaceAdded, FaceAddedDoc, "FaceAddedEvent");

/// `face.moved`.
#[derive(ToSchema)]
struct FaceMovedDoc {
    face_id: String,
    from: FacePlace,
    to: FacePlace,
    actor: String,
}
documented_as!(FaceMoved, FaceMovedDoc, "FaceMovedEvent");

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
enum DeleteReasonDoc {
    /// Asked for, by id.
    Request,
    /// Its person was deleted.
    PersonDeleted,
    /// An unassigned face past its retention (`--unassigned-ttl`).
    Retention,
}
documented_as!(DeleteReason, DeleteReasonDoc, "DeleteReason");

/// `face.deleted`.
#[derive(ToSchema)]
struct FaceDeletedDoc {
    face_id: String,
    person_id: Option<String>,
    cluster_id: Option<String>,
    reason: DeleteReason,
    actor: String,
}
documented_as!(FaceDeleted, FaceDeletedDoc, "FaceDeletedEvent");

/// `cluster.created` (size 1), `cluster.grew`.
#[derive(ToSchema)]
struct ClusterChangedDoc {
    cluster_id: String,
    /// Its unassigned faces now.
    size: i64,
    /// The face that arrived (null when another cluster merged into it).
    face_id: Option<String>,
    /// The cluster that merged into it (null when a face arrived).
    merged_cluster_id: Option<String>,
}
documented_as!(ClusterChanged, ClusterChangedDoc, "ClusterChangedEvent");

#[derive(ToSchema)]
struct MatchedPersonDoc {
    person_id: String,
    name: String,
    /// Cosine similarity of the face to the person's closest enrolled face.
    similarity: f32,
}
documented_as!(MatchedPerson, MatchedPersonDoc, "MatchedPerson");

/// `identify.identified`, `identify.unknown`, `identify.ambiguous`: one
/// face of an identify request (never the photo nor an embedding).
#[derive(ToSchema)]
struct FaceIdentifiedDoc {
    /// Where the face is in the photo.
    #[schema(rename = "box")]
    bbox: BBox,
    /// The person named (identified), else null.
    #[schema(rename = "match")]
    matched: Option<MatchedPerson>,
    /// The best candidate (unknown: below the threshold), or those too close
    /// to choose between (ambiguous).
    candidates: Vec<MatchedPerson>,
    /// The unassigned face it was kept as (`remember=unknown`).
    remembered_face_id: Option<String>,
    /// The request's `external_id`, when given.
    external_id: Option<String>,
    /// The request's `source`, when given.
    source: Option<String>,
}
documented_as!(FaceIdentified, FaceIdentifiedDoc, "IdentifyEvent");

/// The name of the component schema of an event type's `data`.
pub fn event_data_schema(kind: EventKind) -> std::borrow::Cow<'static, str> {
    match kind {
        EventKind::IdentifyIdentified | EventKind::IdentifyUnknown | EventKind::IdentifyAmbiguous => {
            FaceIdentified::name()
        }
        EventKind::PersonCreated | EventKind::PersonUpdated => PersonChanged::name(),
        EventKind::PersonDeleted => PersonDeleted::name(),
        EventKind::PersonMerged => PersonMerged::name(),
        EventKind::FaceAdded => FaceAdded::name(),
        EventKind::FaceMoved => FaceMoved::name(),
        EventKind::FaceDeleted => FaceDeleted::name(),
        EventKind::ClusterCreated | EventKind::ClusterGrew => ClusterChanged::name(),
    }
}

/// Every event `data` schema and what they refer to.
pub fn event_schemas() -> Schemas {
    let mut all = Schemas::new();
    register::<FaceIdentified>(&mut all);
    register::<PersonChanged>(&mut all);
    register::<PersonDeleted>(&mut all);
    register::<PersonMerged>(&mut all);
    register::<FaceAdded>(&mut all);
    register::<FaceMoved>(&mut all);
    register::<FaceDeleted>(&mut all);
    register::<ClusterChanged>(&mut all);
    all
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;

    #[test]
    fn the_event_schemas_name_exactly_the_serialised_fields() {
        let person = PersonRef { id: "p".into(), name: "n".into() };
        let place = FacePlace { person_id: Some("p".into()), cluster_id: None };
        let matched = MatchedPerson { person_id: "p".into(), name: "n".into(), similarity: 0.8 };
        let bbox = BBox { x: 1.0, y: 2.0, width: 3.0, height: 4.0 };
        let hook = Webhook {
            id: "w".into(),
            url: "https://example.com".into(),
            events: vec!["*".into()],
            paused: false,
            created_at: "t".into(),
        };
        let delivery = Delivery {
            id: "d".into(),
            webhook_id: "w".into(),
            event_seq: 1,
            attempt: 1,
            at: "t".into(),
            status: Some(204),
            error: None,
            outcome: Outcome::Delivered,
            millis: 3,
        };
        for (name, (documented, serialised)) in [
            ("Webhook", fields(&hook)),
            ("Delivery", fields(&delivery)),
            ("PersonChanged", fields(&PersonChanged { person: person.clone(), actor: "a".into() })),
            ("PersonDeleted", fields(&PersonDeleted { person: person.clone(), face_ids: vec![], actor: "a".into() })),
            (
                "PersonMerged",
                fields(&PersonMerged {
                    into: person.clone(),
                    merged: vec![person.clone()],
                    face_ids: vec![],
                    actor: "a".into(),
                }),
            ),
            (
                "FaceAdded",
                fields(&FaceAdded { face_id: "f".into(), place: place.clone(), external_id: None, actor: "a".into() }),
            ),
            (
                "FaceMoved",
                fields(&FaceMoved { face_id: "f".into(), from: place.clone(), to: place.clone(), actor: "a".into() }),
            ),
            (
                "FaceDeleted",
                fields(&FaceDeleted {
                    face_id: "f".into(),
                    place: place.clone(),
                    reason: DeleteReason::Request,
                    actor: "a".into(),
                }),
            ),
            (
                "ClusterChanged",
                fields(&ClusterChanged { cluster_id: "c".into(), size: 2, face_id: None, merged_cluster_id: None }),
            ),
            (
                "FaceIdentified",
                fields(&FaceIdentified {
                    bbox,
                    matched: Some(matched.clone()),
                    candidates: vec![matched],
                    remembered_face_id: None,
                    external_id: None,
                    source: None,
                }),
            ),
        ] {
            assert_eq!(documented, serialised, "{name}");
        }
        for k in EventKind::ALL {
            let name = event_data_schema(k);
            assert!(event_schemas().iter().any(|(n, _)| *n == name), "{name} is not registered");
        }
    }
}
