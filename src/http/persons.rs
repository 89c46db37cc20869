//! `/v1/persons`: create, list, show, update, delete; delete one face.
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ApiError;
use super::{AppState, Caller, JsonBody, PathParams};
use crate::domain::is_valid_id;
use crate::error::Error;
use crate::store::{FaceRecord, Person};

/// Largest metadata object accepted, serialised, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 1000;

/// A person's name as the API accepts it (`domain::valid_name`), refused
/// as an invalid `name` parameter.
pub fn valid_name(name: &str) -> Result<&str, ApiError> {
    crate::domain::valid_name(name).map_err(|e| ApiError::param("name", e.to_string()))
}

/// Metadata must be a JSON object of bounded size.
pub fn valid_metadata(v: &Value) -> Result<&Value, ApiError> {
    if !v.is_object() {
        return Err(Error::param("metadata", "must be a JSON object").into());
    }
    if v.to_string().len() > MAX_METADATA_BYTES {
        return Err(Error::param("metadata", format!("larger than {MAX_METADATA_BYTES} bytes")).into());
    }
    Ok(v)
}

/// A path id: anything not shaped like one of ours cannot exist.
pub fn person_id(id: &str) -> Result<&str, ApiError> {
    if is_valid_id(id) { Ok(id) } else { Err(Error::PersonNotFound(id.chars().take(64).collect()).into()) }
}

/// One page of persons.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PersonPage {
    persons: Vec<Person>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A person and their faces.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PersonWithFaces {
    #[serde(flatten)]
    person: Person,
    faces: Vec<FaceRecord>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    /// 1 to 256 characters, no control characters.
    name: String,
    /// A JSON object of at most 16 KiB.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// Create a person without a face (enroll faces with `POST /v1/persons/{id}/faces`).
#[utoipa::path(
    post,
    path = "/persons",
    operation_id = "create_person",
    tag = "persons",
    request_body = NewPerson,
    responses((status = 201, description = "The person", body = Person)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("enroll"))),
)]
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<NewPerson>,
) -> Result<Response, ApiError> {
    let name = valid_name(&body.name)?;
    let metadata = body.metadata.as_ref().filter(|m| !m.is_null()).map(valid_metadata).transpose()?;
    let person = s.service.create_person(name, metadata, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(person)).into_response())
}

#[derive(Deserialize)]
pub struct Page {
    limit: Option<String>,
    cursor: Option<String>,
}

/// Persons in creation order, a page at a time.
#[utoipa::path(
    get,
    path = "/persons",
    operation_id = "list_persons",
    tag = "persons",
    params(("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 50)"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of persons", body = PersonPage)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn list(
    State(s): State<AppState>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(page) = query.map_err(|e| Error::InvalidRequest(e.body_text()))?;
    let limit = match page.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(l) => match l.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(Error::param("limit", format!("must be a whole number from 1 to {MAX_PAGE}")).into()),
        },
    };
    let cursor = page.cursor.as_deref().filter(|c| !c.is_empty());
    if let Some(c) = cursor
        && !is_valid_id(c)
    {
        return Err(Error::param("cursor", "not a cursor returned by this service").into());
    }
    let persons = s.service.list_persons(limit, cursor).await?;
    let next = if persons.len() == limit as usize { persons.last().map(|p| p.id.clone()) } else { None };
    Ok(Json(PersonPage { persons, next_cursor: next }).into_response())
}

/// A person with their enrolled faces (never embeddings).
#[utoipa::path(
    get,
    path = "/persons/{id}",
    operation_id = "get_person",
    tag = "persons",
    params(("id" = String, Path, description = "The person id")),
    responses((status = 200, description = "The person and their faces", body = PersonWithFaces)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn show(State(s): State<AppState>, PathParams(id): PathParams<String>) -> Result<Response, ApiError> {
    let id = person_id(&id)?;
    let person = s.service.get_person(id).await?;
    let faces = s.service.person_faces(id).await?;
    Ok(Json(PersonWithFaces { person, faces }).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonPatch {
    /// The new name (absent: unchanged).
    #[serde(default)]
    name: Option<String>,
    /// Absent: unchanged; null: cleared; object: replaced.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Option<Value>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
        Ok(Some(Option::deserialize(d)?))
    }
}

/// Rename a person or replace their metadata (`null` clears it).
#[utoipa::path(
    patch,
    path = "/persons/{id}",
    operation_id = "update_person",
    tag = "persons",
    params(("id" = String, Path, description = "The person id")),
    request_body = PersonPatch,
    responses((status = 200, description = "The person", body = Person)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(patch): JsonBody<PersonPatch>,
) -> Result<Response, ApiError> {
    let id = person_id(&id)?;
    let name = patch.name.as_deref().map(valid_name).transpose()?;
    let metadata = match &patch.metadata {
        None => None,
        Some(None) => Some(None),
        Some(Some(v)) => Some(Some(valid_metadata(v)?)),
    };
    Ok(Json(s.service.update_person(id, name, metadata, &caller.actor()).await?).into_response())
}

/// Delete a person and every face; the gallery forgets them at once.
#[utoipa::path(
    delete,
    path = "/persons/{id}",
    operation_id = "delete_person",
    tag = "persons",
    params(("id" = String, Path, description = "The person id")),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn remove(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    s.service.delete_person(person_id(&id)?, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete one enrolled face.
#[utoipa::path(
    delete,
    path = "/persons/{id}/faces/{face_id}",
    operation_id = "delete_face",
    tag = "persons",
    params(("id" = String, Path, description = "The person id"), ("face_id" = String, Path, description = "The face id")),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn remove_face(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams((id, face_id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = person_id(&id)?;
    if !is_valid_id(&face_id) {
        return Err(Error::FaceNotFound(face_id.chars().take(64).collect()).into());
    }
    s.service.delete_face(id, &face_id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
