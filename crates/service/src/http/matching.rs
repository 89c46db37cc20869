//! Image endpoints: enroll, verify, identify, compare, detect, embed. Each
//! reads its own input struct (multipart, raw body + query, or base64
//! JSON), which is also its documented request body.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::input::{ExternalId, Form, Image, Input, Metadata, Name, OneFace, within};
use super::persons::person_id;
use super::{ApiError, AppState, Caller, PathParams};
use crate::domain::is_valid_id;
use crate::domain::{FaceChoice, Scope, Threshold};
use crate::domain::{FaceRecord, Person};
use crate::service::error::Error;
use crate::service::outbox::RequestTags;
use crate::service::{Analysis, Comparison, EnrollTarget, Identification, ImageSize, Verification};
use crate::vision::EmbeddedFace;

/// A cosine similarity from 0 to 1, or a 400 naming `threshold`.
/// A request's `threshold`, checked: the one place a bare number becomes a
/// [`Threshold`].
fn threshold(t: Option<f32>) -> Result<Option<Threshold>, ApiError> {
    t.map(Threshold::new).transpose().map_err(|e| ApiError::param("threshold", e.to_string()))
}

/// `POST /v1/detect` and `/v1/embed`: a photo.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhotoForm {
    image: Image,
}

impl Form for PhotoForm {
    const IMAGES: &'static [&'static str] = &["image"];
}

/// `POST /v1/compare`: two photos.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareForm {
    image_a: Image,
    image_b: Image,
}

impl Form for CompareForm {
    const IMAGES: &'static [&'static str] = &["image_a", "image_b"];
}

/// `POST /v1/persons/{id}/faces`. With a raw image body, `face` comes in the query.
#[derive(Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EnrollFaceForm {
    #[param(ignore)]
    image: Image,
    /// `single` (default: exactly one face) or `largest`.
    face: Option<OneFace>,
}

impl Form for EnrollFaceForm {
    const IMAGES: &'static [&'static str] = &["image"];
}

/// `POST /v1/enroll`: a new person (`name`) or an existing one
/// (`person_id`). With a raw image body, the other fields come in the query.
#[derive(Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EnrollForm {
    #[param(ignore)]
    image: Image,
    /// The new person's name (when no `person_id`).
    name: Option<Name>,
    /// Add the face to this existing person instead.
    person_id: Option<String>,
    /// Kept with a new person.
    #[param(ignore)]
    metadata: Option<Metadata>,
    /// `single` (default: exactly one face) or `largest`.
    face: Option<OneFace>,
}

impl EnrollForm {
    /// Who the face is for: one of these is required (stated in the document).
    pub const TARGET: &'static [&'static str] = &["person_id", "name"];
}

impl Form for EnrollForm {
    const IMAGES: &'static [&'static str] = &["image"];
}

/// `POST /v1/verify`. With a raw image body, the other fields come in the query.
#[derive(Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyForm {
    #[param(ignore)]
    image: Image,
    /// The person to verify against.
    #[param(required = false)]
    person_id: String,
    /// Cosine similarity from 0 to 1 at or above which it is a match (default: the service's).
    #[schema(minimum = 0.0, maximum = 1.0)]
    #[param(minimum = 0.0, maximum = 1.0)]
    threshold: Option<f32>,
    /// `largest` (default) or `single`.
    face: Option<OneFace>,
}

impl Form for VerifyForm {
    const IMAGES: &'static [&'static str] = &["image"];
}

/// `POST /v1/identify`. With a raw image body, the other fields come in the query.
#[derive(Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IdentifyForm {
    #[param(ignore)]
    image: Image,
    /// Candidates per face, 1 to the service's `max_top_k` (default 5; at most 100 unless configured).
    #[schema(minimum = 1, maximum = 100)]
    #[param(minimum = 1, maximum = 100)]
    top_k: Option<u32>,
    /// Cosine similarity from 0 to 1 at or above which a person is named (default: the service's 1:N threshold).
    #[schema(minimum = 0.0, maximum = 1.0)]
    #[param(minimum = 0.0, maximum = 1.0)]
    threshold: Option<f32>,
    /// `unknown`: keep every face answered `unknown` or `ambiguous` as an
    /// unassigned face (`remembered_face_id`); needs `--remember-unknown`
    /// and a key with the `enroll` scope.
    #[param(inline)]
    remember: Option<Remember>,
    /// Your own id for this photo or sighting (e.g. a camera event's), 1 to
    /// 200 characters; carried into the `identify.*` events (not stored).
    #[param(inline)]
    external_id: Option<ExternalId>,
    /// Where the photo comes from (e.g. `front-door`), 1 to 200 characters;
    /// carried into the `identify.*` events (not stored).
    #[param(inline)]
    source: Option<ExternalId>,
}

/// What identify keeps of the faces it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Remember {
    /// The faces it cannot name.
    Unknown,
}

impl Form for IdentifyForm {
    const IMAGES: &'static [&'static str] = &["image"];

    fn check(&self, state: &AppState) -> Result<(), ApiError> {
        let max = u32::try_from(state.service.config.max_top_k).unwrap_or(u32::MAX);
        within("top_k", self.top_k, 1..=max)
    }
}

/// Enroll one face for an existing person.
#[utoipa::path(
    post,
    path = "/persons/{id}/faces",
    operation_id = "enroll_face",
    tag = "enrollment",
    params(("id" = String, Path, description = "The person id"), EnrollFaceForm),
    request_body(content(
        (EnrollFaceForm = "multipart/form-data"),
        (EnrollFaceForm = "application/json"),
        (Image = "image/*"),
    )),
    responses((status = 201, description = "The enrolled face", body = FaceRecord)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("enroll"))),
)]
pub async fn enroll_face(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    Input(form): Input<EnrollFaceForm>,
) -> Result<Response, ApiError> {
    let id = person_id(&id)?;
    let choice = form.face.map_or(FaceChoice::Single, |f| f.0);
    let e = s.service.enroll(EnrollTarget::Existing(id), form.image.0, choice, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(e.face)).into_response())
}

/// The result of `POST /v1/enroll`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Enrolled {
    person_id: String,
    /// Whether this call created the person.
    created_person: bool,
    person: Person,
    face: FaceRecord,
}

/// Every face with its embedding.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Embedded {
    image: ImageSize,
    faces: Vec<EmbeddedFace>,
}

/// Create a person (or use `person_id`) and enroll a face in one call.
#[utoipa::path(
    post,
    path = "/enroll",
    operation_id = "enroll",
    tag = "enrollment",
    params(EnrollForm),
    request_body(content(
        (EnrollForm = "multipart/form-data"),
        (EnrollForm = "application/json"),
        (Image = "image/*"),
    )),
    responses((status = 201, description = "Enrolled", body = Enrolled, example = json!({"person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "created_person": true, "person": {"id": "01a2224222ec71bdb9d7a84a1ee5db30", "name": "Barack Obama", "metadata": null, "created_at": "2026-11-28T13:04:49.388400547Z", "updated_at": "2026-11-28T13:04:49.388400547Z", "face_count": 1}, "face": {"id": "01a2224222ec71bdb9d7a84b8110f255", "person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}, "model": "sface-2021dec-int8bq@sha256:fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee", "created_at": "2026-11-28T13:04:49.388555378Z"}}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("enroll"))),
)]
pub async fn enroll(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Input(form): Input<EnrollForm>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let choice = form.face.map_or(FaceChoice::Single, |f| f.0);
    let image = form.image.0;
    // An empty `person_id` (an HTML form's blank input) is no person id.
    let e = match (form.person_id.as_deref().filter(|p| !p.is_empty()), &form.name) {
        (Some(pid), _) => s.service.enroll(EnrollTarget::Existing(person_id(pid)?), image, choice, &actor).await?,
        (None, Some(name)) => {
            let metadata = form.metadata.as_ref().map(|m| &m.0);
            s.service.enroll(EnrollTarget::New { name: &name.0, metadata }, image, choice, &actor).await?
        }
        (None, None) => return Err(Error::param("name", "give a name or a person_id").into()),
    };
    let body =
        Enrolled { person_id: e.person.id.clone(), created_person: e.created_person, person: e.person, face: e.face };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Is the largest face in the photo this person?
#[utoipa::path(
    post,
    path = "/verify",
    operation_id = "verify",
    tag = "matching",
    params(VerifyForm),
    request_body(content(
        (VerifyForm = "multipart/form-data"),
        (VerifyForm = "application/json"),
        (Image = "image/*"),
    )),
    responses((status = 200, description = "The decision", body = Verification, example = json!({"match": true, "similarity": 0.7425, "threshold": 0.363, "person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "best_face_id": "01a2224222ec71bdb9d7a84b8110f255", "compared_faces": 1, "decision": "highest cosine similarity over the person's enrolled faces, compared with the threshold", "face": {"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn verify(State(s): State<AppState>, Input(form): Input<VerifyForm>) -> Result<Response, ApiError> {
    let pid = form.person_id;
    if !is_valid_id(&pid) {
        return Err(Error::PersonNotFound(pid.chars().take(64).collect()).into());
    }
    let choice = form.face.map_or(FaceChoice::Largest, |f| f.0);
    Ok(Json(s.service.verify(&pid, form.image.0, choice, threshold(form.threshold)?).await?).into_response())
}

/// Who is each face in the photo?
#[utoipa::path(
    post,
    path = "/identify",
    operation_id = "identify",
    tag = "matching",
    params(IdentifyForm),
    request_body(content(
        (IdentifyForm = "multipart/form-data"),
        (IdentifyForm = "application/json"),
        (Image = "image/*"),
    )),
    responses((status = 200, description = "Every face with its match and candidates", body = Identification, example = json!({"threshold": 0.48, "gallery_size": 1, "faces": [{"face": {"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}, "match": {"person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "name": "Barack Obama", "similarity": 0.7865, "face_id": "01a2224222ec71bdb9d7a84b8110f255"}, "status": "identified", "candidates": [{"person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "name": "Barack Obama", "similarity": 0.7865, "face_id": "01a2224222ec71bdb9d7a84b8110f255"}]}]}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn identify(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Input(form): Input<IdentifyForm>,
) -> Result<Response, ApiError> {
    let top_k = form.top_k.map(|k| k as usize);
    let actor = caller.actor();
    let remember = match form.remember {
        Some(Remember::Unknown) => {
            if let Some(key) = caller.0.as_ref().filter(|k| !k.scope.allows(Scope::Enroll)) {
                return Err(ApiError::Forbidden(format!(
                    "key {} has scope {}: remember=unknown keeps faces, which needs enroll",
                    key.id,
                    key.scope.as_str()
                )));
            }
            Some(actor.as_str())
        }
        None => None,
    };
    let tags = RequestTags { external_id: form.external_id.map(|e| e.0), source: form.source.map(|e| e.0) };
    let answer = s.service.identify(form.image.0, top_k, threshold(form.threshold)?, remember, &tags).await?;
    Ok(Json(answer).into_response())
}

/// Do two photos show the same person?
#[utoipa::path(
    post,
    path = "/compare",
    operation_id = "compare",
    tag = "matching",
    request_body(content(
        (CompareForm = "multipart/form-data"),
        (CompareForm = "application/json"),
        (Image = "image/*"),
    )),
    responses((status = 200, description = "The decision", body = Comparison, example = json!({"match": true, "similarity": 0.7425, "threshold": 0.363, "face_a": {"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}, "face_b": {"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}, "model": "sface-2021dec-int8bq@sha256:fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn compare(State(s): State<AppState>, Input(form): Input<CompareForm>) -> Result<Response, ApiError> {
    Ok(Json(s.service.compare(form.image_a.0, form.image_b.0).await?).into_response())
}

/// Every face with box, landmarks, score and quality.
#[utoipa::path(
    post,
    path = "/detect",
    operation_id = "detect",
    tag = "matching",
    request_body(content(
        (PhotoForm = "multipart/form-data"),
        (PhotoForm = "application/json"),
        (Image = "image/*"),
    )),
    responses((status = 200, description = "Every face, largest first", body = Analysis, example = json!({"image": {"width": 960, "height": 720}, "faces": [{"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}]}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn detect(State(s): State<AppState>, Input(form): Input<PhotoForm>) -> Result<Response, ApiError> {
    Ok(Json(s.service.analyze(form.image.0, false).await?).into_response())
}

/// Every face with its embedding and model id.
#[utoipa::path(
    post,
    path = "/embed",
    operation_id = "embed",
    tag = "matching",
    request_body(content(
        (PhotoForm = "multipart/form-data"),
        (PhotoForm = "application/json"),
        (Image = "image/*"),
    )),
    responses((status = 200, description = "Every face with its embedding", body = Embedded)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn embed(State(s): State<AppState>, Input(form): Input<PhotoForm>) -> Result<Response, ApiError> {
    let a = s.service.analyze(form.image.0, true).await?;
    let faces: Vec<EmbeddedFace> = a.faces.into_iter().map(EmbeddedFace::from).collect();
    Ok(Json(Embedded { image: a.image, faces }).into_response())
}
