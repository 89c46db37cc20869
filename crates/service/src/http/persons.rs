//! `/v1/persons`: create, list, show, update, delete; delete one face.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::input::{Form, JsonBody, Metadata, Name, QueryParams, within};
use super::{ApiError, AppState, Caller, PathParams};
use crate::domain::is_valid_id;
use crate::domain::{FaceRecord, Person};
use crate::service::error::Error;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 1000;

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
    name: Name,
    metadata: Option<Metadata>,
}

impl Form for NewPerson {}

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
    let metadata = body.metadata.as_ref().map(|m| &m.0);
    let person = s.service.create_person(&body.name.0, metadata, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(person)).into_response())
}

/// A page of persons.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9a-f]{32})?$")]
    cursor: Option<String>,
}

impl Form for Page {
    fn check(&self, _: &AppState) -> Result<(), ApiError> {
        check_page(self.limit, self.cursor.as_deref())
    }
}

/// A page's size and cursor (an id) within their ranges.
pub fn check_page(limit: Option<u32>, cursor: Option<&str>) -> Result<(), ApiError> {
    within("limit", limit, 1..=MAX_PAGE)?;
    if cursor.is_some_and(|c| !c.is_empty() && !is_valid_id(c)) {
        return Err(Error::param("cursor", "not a cursor returned by this service").into());
    }
    Ok(())
}

/// The size (default [`DEFAULT_PAGE`]) and the cursor (none when empty) a page is read with.
pub fn page_of(limit: Option<u32>, cursor: Option<&str>) -> (u32, Option<&str>) {
    (limit.unwrap_or(DEFAULT_PAGE), cursor.filter(|c| !c.is_empty()))
}

/// The cursor of the page after `items`: the last id, when the page is full.
pub fn next_cursor<T>(items: &[T], limit: u32, id: impl Fn(&T) -> &str) -> Option<String> {
    if items.len() == limit as usize { items.last().map(|i| id(i).to_string()) } else { None }
}

/// Persons in creation order, a page at a time.
#[utoipa::path(
    get,
    path = "/persons",
    operation_id = "list_persons",
    tag = "persons",
    params(Page),
    responses((status = 200, description = "A page of persons", body = PersonPage)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn list(State(s): State<AppState>, QueryParams(page): QueryParams<Page>) -> Result<Response, ApiError> {
    let (limit, cursor) = page_of(page.limit, page.cursor.as_deref());
    let persons = s.service.list_persons(limit, cursor).await?;
    let next_cursor = next_cursor(&persons, limit, |p| &p.id);
    Ok(Json(PersonPage { persons, next_cursor }).into_response())
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
    name: Option<Name>,
    /// Absent: unchanged; null: cleared; an object: replaced.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<Option<Metadata>>,
}

impl Form for PersonPatch {}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
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
    let name = patch.name.as_ref().map(|n| n.0.as_str());
    let metadata = patch.metadata.as_ref().map(|m| m.as_ref().map(|m| &m.0));
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
