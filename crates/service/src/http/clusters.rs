//! `/v1/clusters` (groups of unassigned faces, and naming them),
//! `/v1/persons/{id}/merge`, and `/v1/search` (stored faces similar to one).
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;

use super::faces::face_id;
use super::input::{Form, Image, Input, JsonBody, Metadata, Name, QueryParams, within};
use super::persons::person_id;
use super::{ApiError, AppState, Caller, PathParams};
use crate::domain::is_valid_id;
use crate::service::error::Error;
use crate::service::{Among, Assigned, ClusterCursor, ClusterPage, Merged, NameAs, SimilarFace};

/// Clusters per page, at most.
pub const MAX_CLUSTER_PAGE: u32 = 500;
const DEFAULT_CLUSTER_PAGE: u32 = 50;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterQuery {
    /// Smallest cluster listed, 1 to 1000000 (default 2).
    #[param(minimum = 1, maximum = 1000000)]
    min_size: Option<u32>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9]{1,10}\\.[0-9a-f]{32})?$")]
    cursor: Option<String>,
}

impl Form for ClusterQuery {
    fn check(&self, _: &AppState) -> Result<(), ApiError> {
        within("min_size", self.min_size, 1..=1_000_000)?;
        within("limit", self.limit, 1..=MAX_CLUSTER_PAGE)?;
        if self.cursor.as_deref().is_some_and(|c| !c.is_empty() && ClusterCursor::decode(c).is_none()) {
            return Err(Error::param("cursor", "not a cursor returned by this service").into());
        }
        Ok(())
    }
}

/// Groups of unassigned faces that each show one person, largest first, a page at a time.
#[utoipa::path(
    get,
    path = "/clusters",
    operation_id = "list_clusters",
    tag = "faces",
    params(ClusterQuery),
    responses((status = 200, description = "A page of clusters", body = ClusterPage)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn list(State(s): State<AppState>, QueryParams(q): QueryParams<ClusterQuery>) -> Result<Response, ApiError> {
    let cursor = q.cursor.as_deref().filter(|c| !c.is_empty()).and_then(ClusterCursor::decode);
    let min = q.min_size.unwrap_or(2) as usize;
    let limit = q.limit.unwrap_or(DEFAULT_CLUSTER_PAGE) as usize;
    Ok(Json(s.service.list_clusters(min, limit, cursor.as_ref()).await?).into_response())
}

/// A new person (`name`, optional `metadata`) or an existing one (`person_id`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    name: Option<Name>,
    /// For a new person (ignored with `person_id`).
    metadata: Option<Metadata>,
    #[schema(pattern = "^[0-9a-f]{32}$")]
    person_id: Option<String>,
}

impl AssignBody {
    /// A new person by name (with metadata, if any), or an existing one by id.
    pub const TARGET: (&'static [&'static [&'static str]], &'static [&'static str]) =
        (&[&["name"], &["person_id"]], &["name", "person_id"]);
}

impl Form for AssignBody {
    fn check(&self, _: &AppState) -> Result<(), ApiError> {
        match (&self.name, &self.person_id) {
            (Some(_), Some(_)) => Err(Error::param("person_id", "give a name or a person_id, not both").into()),
            (None, None) => Err(Error::param("name", "give a name (a new person) or a person_id").into()),
            _ => Ok(()),
        }
    }
}

/// Name a cluster: every face still in it joins the person, in one transaction.
#[utoipa::path(
    post,
    path = "/clusters/{id}/assign",
    operation_id = "assign_cluster",
    tag = "faces",
    params(("id" = String, Path, description = "The cluster id")),
    request_body = AssignBody,
    responses((status = 200, description = "The person and the faces moved", body = Assigned)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn assign(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Response, ApiError> {
    if !is_valid_id(&id) {
        return Err(Error::ClusterNotFound(id.chars().take(64).collect()).into());
    }
    let to = match (&body.name, &body.person_id) {
        (Some(name), _) => NameAs::New { name: &name.0, metadata: body.metadata.as_ref().map(|m| &m.0) },
        (None, Some(p)) => NameAs::Existing(person_id(p)?),
        (None, None) => return Err(Error::param("name", "give a name or a person_id").into()),
    };
    let assigned: Assigned = s.service.assign_cluster(&id, to, &caller.actor()).await?;
    Ok(Json(assigned).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The persons whose faces move to this one; they are then deleted (1 to 100 ids).
    #[schema(min_items = 1, max_items = 100, inline, value_type = Vec<PersonIdDoc>)]
    from: Vec<String>,
}

impl Form for MergeBody {
    fn check(&self, _: &AppState) -> Result<(), ApiError> {
        if self.from.is_empty() || self.from.len() > 100 {
            return Err(Error::param("from", "give 1 to 100 person ids").into());
        }
        if let Some(bad) = self.from.iter().find(|p| !is_valid_id(p)) {
            let shown: String = bad.chars().take(64).collect();
            return Err(Error::param("from", format!("{shown:?} is not a person id (32 hex digits)")).into());
        }
        Ok(())
    }
}

/// Merge persons into this one: their faces move here and they are deleted, in one transaction.
#[utoipa::path(
    post,
    path = "/persons/{id}/merge",
    operation_id = "merge_persons",
    tag = "persons",
    params(("id" = String, Path, description = "The person kept")),
    request_body = MergeBody,
    responses((status = 200, description = "What moved and who was deleted", body = Merged)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn merge(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<MergeBody>,
) -> Result<Response, ApiError> {
    let into = person_id(&id)?;
    let mut from: Vec<&str> = body.from.iter().map(String::as_str).collect();
    from.sort_unstable();
    from.dedup();
    Ok(Json(s.service.merge_persons(into, &from, &caller.actor()).await?).into_response())
}

/// A person id (documents `from`'s items).
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^[0-9a-f]{32}$")]
#[allow(dead_code)]
struct PersonIdDoc(String);

/// What to search with: a stored face, an embedding with its model, or a photo (its largest face).
#[derive(Deserialize, utoipa::ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchForm {
    #[param(ignore)]
    #[serde(default)]
    #[schema(value_type = Image, required = false)]
    image: Option<Image>,
    #[schema(pattern = "^[0-9a-f]{32}$")]
    #[param(pattern = "^[0-9a-f]{32}$")]
    face_id: Option<String>,
    /// A unit embedding by `model` (as `/v1/embed` returns it).
    #[param(ignore)]
    embedding: Option<Vec<f32>>,
    /// The embedding's model: the gallery's (`/v1/info`).
    model: Option<String>,
    /// Faces returned, 1 to the service's `max_top_k` (default 10).
    #[schema(minimum = 1, maximum = 100)]
    #[param(minimum = 1, maximum = 100)]
    top_k: Option<u32>,
    /// true: unassigned faces only; false: enrolled faces only; absent: both.
    unassigned: Option<bool>,
}

impl SearchForm {
    /// A photo, a stored face, or an embedding with its model.
    pub const QUERY: (&'static [&'static [&'static str]], &'static [&'static str]) =
        (&[&["image"], &["face_id"], &["embedding", "model"]], &["image", "face_id", "embedding", "model"]);
}

impl Form for SearchForm {
    const IMAGES: &'static [&'static str] = &["image"];
    const IMAGES_OPTIONAL: bool = true;

    fn check(&self, state: &AppState) -> Result<(), ApiError> {
        let max = u32::try_from(state.service.config.max_top_k).unwrap_or(u32::MAX);
        within("top_k", self.top_k, 1..=max)?;
        let given = [self.image.is_some(), self.face_id.is_some(), self.embedding.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(Error::param("face_id", "give exactly one of image, face_id, or embedding (with model)").into());
        }
        if self.embedding.is_some() != self.model.is_some() {
            return Err(Error::param("model", "an embedding needs its model, and a model an embedding").into());
        }
        Ok(())
    }
}

/// The stored faces most similar to a face, enrolled or unassigned.
#[utoipa::path(
    post,
    path = "/search",
    operation_id = "search_faces",
    tag = "faces",
    request_body(content((SearchForm = "application/json"))),
    responses((status = 200, description = "The most similar faces, best first", body = SimilarFaces)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn search(State(s): State<AppState>, Input(form): Input<SearchForm>) -> Result<Response, ApiError> {
    let top_k = form.top_k.map_or(10, |k| k as usize);
    let among = match form.unassigned {
        None => Among::All,
        Some(true) => Among::Unassigned,
        Some(false) => Among::Enrolled,
    };
    let query = match (form.image, form.face_id, form.embedding, form.model) {
        (Some(image), ..) => s.service.probe_embedding(image.0).await?,
        (_, Some(id), ..) => s.service.face_embedding(face_id(&id)?).await?,
        (_, _, Some(values), Some(model)) => s.service.checked_embedding(values, &model)?,
        _ => return Err(Error::param("face_id", "give exactly one of image, face_id, or embedding").into()),
    };
    let results = s.service.similar_faces(&query, top_k, among).await?;
    Ok(Json(SimilarFaces { results }).into_response())
}

/// The most similar faces, best first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SimilarFaces {
    results: Vec<SimilarFace>,
}
