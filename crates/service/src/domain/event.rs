//! The events visage tells webhooks and MQTT about: their kinds, by name,
//! and what each one's `data` holds (never a photo nor an embedding).
use serde::Serialize;

use super::{BBox, FaceRecord, NewEvent, Regroup, new_id, now};

/// One kind of event; its name is the `type` of a delivery's body and the
/// MQTT topic's last part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    IdentifyIdentified,
    IdentifyUnknown,
    IdentifyAmbiguous,
    PersonCreated,
    PersonUpdated,
    PersonDeleted,
    PersonMerged,
    FaceAdded,
    FaceMoved,
    FaceDeleted,
    ClusterCreated,
    ClusterGrew,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::IdentifyIdentified,
        EventKind::IdentifyUnknown,
        EventKind::IdentifyAmbiguous,
        EventKind::PersonCreated,
        EventKind::PersonUpdated,
        EventKind::PersonDeleted,
        EventKind::PersonMerged,
        EventKind::FaceAdded,
        EventKind::FaceMoved,
        EventKind::FaceDeleted,
        EventKind::ClusterCreated,
        EventKind::ClusterGrew,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::IdentifyIdentified => "identify.identified",
            EventKind::IdentifyUnknown => "identify.unknown",
            EventKind::IdentifyAmbiguous => "identify.ambiguous",
            EventKind::PersonCreated => "person.created",
            EventKind::PersonUpdated => "person.updated",
            EventKind::PersonDeleted => "person.deleted",
            EventKind::PersonMerged => "person.merged",
            EventKind::FaceAdded => "face.added",
            EventKind::FaceMoved => "face.moved",
            EventKind::FaceDeleted => "face.deleted",
            EventKind::ClusterCreated => "cluster.created",
            EventKind::ClusterGrew => "cluster.grew",
        }
    }

    /// What it reports, for `GET /v1/events/types` and the README.
    pub fn description(self) -> &'static str {
        match self {
            EventKind::IdentifyIdentified => "a face of an identify request was identified as an enrolled person",
            EventKind::IdentifyUnknown => "a face of an identify request matched no enrolled person",
            EventKind::IdentifyAmbiguous => "a face of an identify request matched two persons too closely to choose",
            EventKind::PersonCreated => "a person was created (enrolled, imported, or named from a cluster)",
            EventKind::PersonUpdated => "a person's name or metadata changed",
            EventKind::PersonDeleted => "a person and their faces were deleted",
            EventKind::PersonMerged => "persons were merged into one; the others were deleted",
            EventKind::FaceAdded => "a face was stored (for a person, or unassigned)",
            EventKind::FaceMoved => "a face went to another person, or was assigned or unassigned",
            EventKind::FaceDeleted => "a face was deleted (by a request, with its person, or by retention)",
            EventKind::ClusterCreated => "an unassigned face started a cluster",
            EventKind::ClusterGrew => "an unassigned face joined a cluster",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl NewEvent {
    /// An event of `kind` happening now, with a new id.
    pub fn of<T: Serialize>(kind: EventKind, data: &T) -> NewEvent {
        NewEvent {
            id: new_id(),
            kind: kind.name().to_string(),
            at: now(),
            data: serde_json::to_value(data).unwrap_or_else(|_| serde_json::json!({})),
        }
    }
}

/// The events the store writes beside the changes they report.
impl NewEvent {
    pub fn person_created(id: &str, name: &str, actor: &str) -> NewEvent {
        let person = PersonRef { id: id.into(), name: name.into() };
        NewEvent::of(EventKind::PersonCreated, &PersonChanged { person, actor: actor.into() })
    }

    pub fn person_updated(id: &str, name: &str, actor: &str) -> NewEvent {
        let person = PersonRef { id: id.into(), name: name.into() };
        NewEvent::of(EventKind::PersonUpdated, &PersonChanged { person, actor: actor.into() })
    }

    pub fn person_deleted(id: &str, name: &str, face_ids: Vec<String>, actor: &str) -> NewEvent {
        let person = PersonRef { id: id.into(), name: name.into() };
        NewEvent::of(EventKind::PersonDeleted, &PersonDeleted { person, face_ids, actor: actor.into() })
    }

    /// A person's deletion: each face's `face.deleted`, then `person.deleted`.
    pub fn person_gone(id: &str, name: &str, face_ids: Vec<String>, actor: &str) -> Vec<NewEvent> {
        let mut events: Vec<NewEvent> = face_ids
            .iter()
            .map(|f| NewEvent::face_deleted(f, FacePlace::person(id), DeleteReason::PersonDeleted, actor))
            .collect();
        events.push(NewEvent::person_deleted(id, name, face_ids, actor));
        events
    }

    pub fn persons_merged(
        into: &str,
        name: &str,
        merged: Vec<PersonRef>,
        face_ids: &[String],
        actor: &str,
    ) -> NewEvent {
        let data = PersonMerged {
            into: PersonRef { id: into.into(), name: name.into() },
            merged,
            face_ids: face_ids.to_vec(),
            actor: actor.into(),
        };
        NewEvent::of(EventKind::PersonMerged, &data)
    }

    /// A step of regrouping unassigned faces: a merge grows a cluster; a
    /// face moved (from `before`) leaves one and arrives in another.
    pub fn regrouped(step: &Regroup, before: Option<FacePlace>, size: i64, actor: &str) -> Vec<NewEvent> {
        match step {
            Regroup::Merge { from, into } => vec![NewEvent::cluster_changed(into, size, None, Some(from))],
            Regroup::Move { face, to } => {
                let from = before.unwrap_or(FacePlace { person_id: None, cluster_id: None });
                vec![
                    NewEvent::face_moved(face, from, FacePlace::cluster(to), actor),
                    NewEvent::cluster_changed(to, size, Some(face), None),
                ]
            }
        }
    }

    pub fn face_added(face: &FaceRecord, actor: &str) -> NewEvent {
        let place = FacePlace { person_id: face.person_id.clone(), cluster_id: face.cluster_id.clone() };
        let data =
            FaceAdded { face_id: face.id.clone(), place, external_id: face.external_id.clone(), actor: actor.into() };
        NewEvent::of(EventKind::FaceAdded, &data)
    }

    pub fn face_moved(face_id: &str, from: FacePlace, to: FacePlace, actor: &str) -> NewEvent {
        NewEvent::of(EventKind::FaceMoved, &FaceMoved { face_id: face_id.into(), from, to, actor: actor.into() })
    }

    pub fn face_deleted(face_id: &str, place: FacePlace, reason: DeleteReason, actor: &str) -> NewEvent {
        NewEvent::of(
            EventKind::FaceDeleted,
            &FaceDeleted { face_id: face_id.into(), place, reason, actor: actor.into() },
        )
    }

    /// `cluster.created` when `size` is 1, else `cluster.grew`.
    pub fn cluster_changed(cluster_id: &str, size: i64, face_id: Option<&str>, merged: Option<&str>) -> NewEvent {
        let kind = if size <= 1 { EventKind::ClusterCreated } else { EventKind::ClusterGrew };
        let data = ClusterChanged {
            cluster_id: cluster_id.into(),
            size,
            face_id: face_id.map(Into::into),
            merged_cluster_id: merged.map(Into::into),
        };
        NewEvent::of(kind, &data)
    }
}

impl FacePlace {
    pub fn person(id: &str) -> FacePlace {
        FacePlace { person_id: Some(id.into()), cluster_id: None }
    }

    pub fn cluster(id: &str) -> FacePlace {
        FacePlace { person_id: None, cluster_id: Some(id.into()) }
    }
}

/// A person as events name them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonRef {
    pub id: String,
    pub name: String,
}

/// `person.created`, `person.updated`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonChanged {
    pub person: PersonRef,
    /// Who made the change (a key id, `admin` or `cli`).
    pub actor: String,
}

/// `person.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonDeleted {
    pub person: PersonRef,
    /// The faces deleted with the person.
    pub face_ids: Vec<String>,
    pub actor: String,
}

/// `person.merged`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonMerged {
    /// The person who remains, with every face.
    pub into: PersonRef,
    /// The persons merged into it (now deleted).
    pub merged: Vec<PersonRef>,
    /// The faces that moved.
    pub face_ids: Vec<String>,
    pub actor: String,
}

/// Where a face is: with a person, or unassigned in a cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacePlace {
    pub person_id: Option<String>,
    pub cluster_id: Option<String>,
}

/// `face.added`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceAdded {
    pub face_id: String,
    #[serde(flatten)]
    pub place: FacePlace,
    pub external_id: Option<String>,
    pub actor: String,
}

/// `face.moved`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceMoved {
    pub face_id: String,
    pub from: FacePlace,
    pub to: FacePlace,
    pub actor: String,
}

/// Why a face was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteReason {
    /// Asked for, by id.
    Request,
    /// Its person was deleted.
    PersonDeleted,
    /// An unassigned face past its retention.
    Retention,
}

/// `face.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceDeleted {
    pub face_id: String,
    #[serde(flatten)]
    pub place: FacePlace,
    pub reason: DeleteReason,
    pub actor: String,
}

/// `cluster.created`, `cluster.grew`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterChanged {
    pub cluster_id: String,
    /// Its faces now.
    pub size: i64,
    /// The face that arrived (null when another cluster merged into it).
    pub face_id: Option<String>,
    /// The cluster that merged into it (null when a face arrived).
    pub merged_cluster_id: Option<String>,
}

/// A person an identified face was compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchedPerson {
    pub person_id: String,
    pub name: String,
    pub similarity: f32,
}

/// `identify.identified`, `identify.unknown`, `identify.ambiguous`: one
/// face of an identify request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceIdentified {
    /// Where the face is in the photo.
    #[serde(rename = "box")]
    pub bbox: BBox,
    /// The person named (identified), else null.
    #[serde(rename = "match")]
    pub matched: Option<MatchedPerson>,
    /// The best candidates (two or more when ambiguous; the best one, if
    /// any, when unknown).
    pub candidates: Vec<MatchedPerson>,
    /// The unassigned face it was kept as (`remember=unknown`).
    pub remembered_face_id: Option<String>,
    /// The request's own tags, as given.
    pub external_id: Option<String>,
    pub source: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.name()), Some(k));
            assert!(!k.description().is_empty());
        }
        assert_eq!(EventKind::parse("person.exploded"), None);
    }
}
