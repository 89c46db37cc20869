//! The OpenAPI schemas of the answers about faces without a person:
//! what `POST /v1/faces` kept and refused, clusters, namings, merges and
//! similar faces, derived from mirror structs of the same serde form.
#![allow(dead_code)]
use utoipa::ToSchema;

use crate::domain::{BBox, FaceRecord};
use crate::service::error::Code;
use crate::service::{
    Assigned, ClusterInfo, ClusterPage, FaceRef, KeptFaces, Merged, NearestPerson, RefusedFace, SimilarFace,
};

#[derive(ToSchema)]
struct KeptFacesDoc {
    /// The faces stored, each with its id (and `cluster_id` when unassigned).
    faces: Vec<FaceRecord>,
    /// Faces of the photo below the enrollment gates: nothing of them is kept.
    refused: Vec<RefusedFace>,
}
documented_as!(KeptFaces, KeptFacesDoc, "KeptFaces");

#[derive(ToSchema)]
struct RefusedFaceDoc {
    #[schema(rename = "box")]
    bbox: BBox,
    /// `face_too_small` or `face_too_blurry`.
    #[schema(value_type = String, example = "face_too_small")]
    reason: Code,
    message: String,
}
documented_as!(RefusedFace, RefusedFaceDoc, "RefusedFace");

#[derive(ToSchema)]
struct FaceRefDoc {
    id: String,
    /// The client's own id for the face, when it gave one.
    external_id: Option<String>,
}
documented_as!(FaceRef, FaceRefDoc, "FaceRef");

#[derive(ToSchema)]
struct NearestPersonDoc {
    id: String,
    name: String,
    /// Cosine similarity of the cluster's mean to the person's closest enrolled face.
    similarity: f32,
}
documented_as!(NearestPerson, NearestPersonDoc, "NearestPerson");

#[derive(ToSchema)]
struct ClusterInfoDoc {
    id: String,
    size: usize,
    /// Every face of the cluster, in arrival order.
    faces: Vec<FaceRef>,
    /// The face most similar to the cluster's mean.
    representative: FaceRef,
    /// Average cosine similarity between two of its faces (1 for one face).
    cohesion: f32,
    /// The enrolled person closest to the cluster, when at or above the 1:N
    /// threshold ("maybe this is X"); null otherwise.
    nearest_person: Option<NearestPerson>,
}
documented_as!(ClusterInfo, ClusterInfoDoc, "Cluster");

#[derive(ToSchema)]
struct ClusterPageDoc {
    /// Largest first.
    clusters: Vec<ClusterInfo>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}
documented_as!(ClusterPage, ClusterPageDoc, "ClusterPage");

#[derive(ToSchema)]
struct AssignedDoc {
    /// The person the faces now belong to.
    person_id: String,
    /// Whether the person was created by this call.
    created_person: bool,
    /// The faces moved: those in the cluster when it was named (it may have
    /// changed since it was listed).
    faces: Vec<String>,
}
documented_as!(Assigned, AssignedDoc, "Assigned");

#[derive(ToSchema)]
struct MergedDoc {
    /// The person kept.
    person_id: String,
    faces_moved: Vec<String>,
    persons_deleted: Vec<String>,
}
documented_as!(Merged, MergedDoc, "Merged");

#[derive(ToSchema)]
struct SimilarFaceDoc {
    face_id: String,
    /// Cosine similarity to the query.
    similarity: f32,
    /// Null for an unassigned face.
    person_id: Option<String>,
    external_id: Option<String>,
}
documented_as!(SimilarFace, SimilarFaceDoc, "SimilarFace");

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;

    #[test]
    fn the_schemas_name_exactly_the_serialised_fields() {
        let f = FaceRef { id: "f".into(), external_id: Some("e".into()) };
        let near = NearestPerson { id: "p".into(), name: "n".into(), similarity: 0.6 };
        let cluster = ClusterInfo {
            id: "c".into(),
            size: 1,
            faces: vec![f.clone()],
            representative: f.clone(),
            cohesion: 1.0,
            nearest_person: Some(near.clone()),
        };
        let page = ClusterPage { clusters: vec![cluster.clone()], next_cursor: None };
        let bbox = BBox { x: 1.0, y: 2.0, width: 3.0, height: 4.0 };
        let refused = RefusedFace { bbox, reason: Code::FaceTooSmall, message: "m".into() };
        let kept = KeptFaces { faces: vec![], refused: vec![refused.clone()] };
        let assigned = Assigned { person_id: "p".into(), created_person: true, faces: vec!["f".into()] };
        let merged = Merged { person_id: "p".into(), faces_moved: vec![], persons_deleted: vec![] };
        let similar = SimilarFace { face_id: "f".into(), similarity: 0.5, person_id: None, external_id: None };
        for (name, (documented, serialised)) in [
            ("FaceRef", fields(&f)),
            ("NearestPerson", fields(&near)),
            ("Cluster", fields(&cluster)),
            ("ClusterPage", fields(&page)),
            ("RefusedFace", fields(&refused)),
            ("KeptFaces", fields(&kept)),
            ("Assigned", fields(&assigned)),
            ("Merged", fields(&merged)),
            ("SimilarFace", fields(&similar)),
        ] {
            assert_eq!(documented, serialised, "{name}");
        }
    }
}
