//! `/v1/faces`: faces kept from a photo (unassigned, or for a person), listed,
//! shown, moved, deleted, and their kept crops.
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::input::{ExternalId, Form, Image, Input, JsonBody, KeepFace, QueryParams};
use super::persons::{check_page, next_cursor, page_of, person_id};
use super::{ApiError, AppState, Caller, PathParams};
use crate::domain::{FaceChoice, FaceRecord, is_valid_id};
use crate::service::error::Error;
use crate::service::{KeepFor, KeptFaces};

/// A path face id: anything not shaped like one of ours cannot exist.
pub fn face_id(id: &str) -> Result<&str, ApiError> {
    if is_valid_id(id) { Ok(id) } else { Err(Error::FaceNotFound(id.chars().take(64).collect()).into()) }
}

#[derive(Deserialize, utoipa::ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeepForm {
    #[param(ignore)]
    image: Image,
    /// Which faces to keep: `all` (the default without a person), `largest`,
    /// `central`, or `single` (the default with a `person_id`).
    #[param(inline)]
    face: Option<KeepFace>,
    /// The client's own id for the faces kept (returned wherever they appear).
    #[param(inline)]
    external_id: Option<ExternalId>,
    /// Enroll the faces for this person instead of keeping them unassigned.
    #[param(pattern = "^[0-9a-f]{32}$")]
    #[schema(pattern = "^[0-9a-f]{32}$")]
    person_id: Option<String>,
}

impl Form for KeepForm {
    const IMAGES: &'static [&'static str] = &["image"];
}

/// Keep the faces of a photo: unassigned (each joins or starts a cluster), or enrolled for a person.
#[utoipa::path(
    post,
    path = "/faces",
    operation_id = "keep_faces",
    tag = "faces",
    params(KeepForm),
    request_body(content(
        (KeepForm = "multipart/form-data"),
        (KeepForm = "application/json"),
        (Image = "image/*"),
    )),
    responses((status = 201, description = "The faces kept and those refused", body = KeptFaces)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("enroll"))),
)]
pub async fn keep(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Input(form): Input<KeepForm>,
) -> Result<Response, ApiError> {
    let person = form.person_id.as_deref().filter(|p| !p.is_empty()).map(person_id).transpose()?;
    let to = person.map_or(KeepFor::Nobody, KeepFor::Person);
    let default = if person.is_some() { FaceChoice::Single } else { FaceChoice::All };
    let choice = form.face.map_or(default, |f| f.0);
    let external = form.external_id.as_ref().map(|e| e.0.as_str());
    let kept: KeptFaces = s.service.keep_faces(form.image.0, choice, external, to, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(kept)).into_response())
}

/// A page of unassigned faces.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FacePageQuery {
    /// Only unassigned faces are listed here (a person's faces are in `GET /v1/persons/{id}`): true, the default.
    #[param(inline, value_type = Option<OnlyTrue>)]
    unassigned: Option<bool>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9a-f]{32})?$")]
    cursor: Option<String>,
}

impl Form for FacePageQuery {
    fn check(&self, _: &AppState) -> Result<(), ApiError> {
        if self.unassigned == Some(false) {
            return Err(Error::param(
                "unassigned",
                "only unassigned faces are listed here; a person's faces are in GET /v1/persons/{id}",
            )
            .into());
        }
        check_page(self.limit, self.cursor.as_deref())
    }
}

/// One page of faces.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FacePage {
    faces: Vec<FaceRecord>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// Unassigned faces in arrival order, a page at a time.
#[utoipa::path(
    get,
    path = "/faces",
    operation_id = "list_unassigned_faces",
    tag = "faces",
    params(FacePageQuery),
    responses((status = 200, description = "A page of unassigned faces", body = FacePage)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn list(State(s): State<AppState>, QueryParams(q): QueryParams<FacePageQuery>) -> Result<Response, ApiError> {
    let (limit, cursor) = page_of(q.limit, q.cursor.as_deref());
    let faces = s.service.list_unassigned(limit, cursor).await?;
    let next_cursor = next_cursor(&faces, limit, |f| &f.id);
    Ok(Json(FacePage { faces, next_cursor }).into_response())
}

/// A stored face, enrolled or unassigned (never its embedding).
#[utoipa::path(
    get,
    path = "/faces/{id}",
    operation_id = "get_face",
    tag = "faces",
    params(("id" = String, Path, description = "The face id")),
    responses((status = 200, description = "The face", body = FaceRecord)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn show(State(s): State<AppState>, PathParams(id): PathParams<String>) -> Result<Response, ApiError> {
    Ok(Json(s.service.get_face(face_id(&id)?).await?).into_response())
}

/// Delete a face, enrolled or unassigned, leaving no recoverable copy where the database allows.
#[utoipa::path(
    delete,
    path = "/faces/{id}",
    operation_id = "delete_stored_face",
    tag = "faces",
    params(("id" = String, Path, description = "The face id")),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn remove(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    s.service.delete_any_face(face_id(&id)?, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FacePatch {
    /// The person the face moves to; null takes it from its person (it
    /// joins the cluster of unassigned faces it is most similar to).
    #[schema(pattern = "^[0-9a-f]{32}$")]
    person_id: Option<String>,
}

impl Form for FacePatch {}

/// Move a face to a person, or unassign it.
#[utoipa::path(
    patch,
    path = "/faces/{id}",
    operation_id = "move_face",
    tag = "faces",
    params(("id" = String, Path, description = "The face id")),
    request_body = FacePatch,
    responses((status = 200, description = "The face where it now belongs", body = FaceRecord)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<FacePatch>,
) -> Result<Response, ApiError> {
    let id = face_id(&id)?;
    let person = body.person_id.as_deref().map(person_id).transpose()?;
    Ok(Json(s.service.move_face(id, person, &caller.actor()).await?).into_response())
}

/// The face's kept crop (PNG, 256x256: the face and its surroundings), when the service keeps crops (`--keep-crops`).
#[utoipa::path(
    get,
    path = "/faces/{id}/crop",
    operation_id = "get_face_crop",
    tag = "faces",
    params(("id" = String, Path, description = "The face id")),
    responses((status = 200, description = "The crop", content_type = "image/png", body = Vec<u8>)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn crop(State(s): State<AppState>, PathParams(id): PathParams<String>) -> Result<Response, ApiError> {
    let id = face_id(&id)?;
    let crop = s.service.face_crop(id).await?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=3600")], crop.png)
        .into_response())
}

/// A flag that can only be true (documents `unassigned`).
pub struct OnlyTrue;

impl utoipa::PartialSchema for OnlyTrue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Boolean)
            .enum_values(Some([true]))
            .into()
    }
}

impl utoipa::ToSchema for OnlyTrue {}
