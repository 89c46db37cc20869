//! The events visage tells webhooks and MQTT about, by name.

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
