//! Image endpoints: enroll, verify, identify, compare, detect, embed.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use super::ApiError;
use super::persons::{person_id, valid_metadata, valid_name};
use super::{AppState, Caller, ImageForm, PathParams};
use crate::domain::is_valid_id;
use crate::error::Error;
use crate::service::{Analysis, Comparison, EnrollTarget, FaceChoice, Identification, ImageSize, Verification};
use crate::store::{FaceRecord, Person};
use crate::vision::EmbeddedFace;

/// `face=single|largest`, with the endpoint's default when absent.
fn face_choice(form: &ImageForm, default: FaceChoice) -> Result<FaceChoice, ApiError> {
    match form.text("face") {
        None | Some("") => Ok(default),
        Some("single") => Ok(FaceChoice::Single),
        Some("largest") => Ok(FaceChoice::Largest),
        Some(other) => Err(Error::param("face", format!("{other:?} is not one of: single, largest")).into()),
    }
}

fn threshold(form: &ImageForm) -> Result<Option<f32>, ApiError> {
    form.number::<f32>("threshold", |t| {
        if t.is_finite() && (0.0..=1.0).contains(t) {
            Ok(())
        } else {
            Err("must be a cosine similarity from 0 to 1".into())
        }
    })
}

/// Enroll one face for an existing person.
#[utoipa::path(
    post,
    path = "/persons/{id}/faces",
    operation_id = "enroll_face",
    tag = "enrollment",
    params(("id" = String, Path, description = "The person id"), ("face" = Option<super::openapi::FaceParam>, Query, description = "With a raw image body: which face to use")),
    request_body(content(
        (super::openapi::EnrollFaceForm = "multipart/form-data"),
        (super::openapi::EnrollFaceForm = "application/json"),
        (super::openapi::ImageFile = "image/*"),
    )),
    responses((status = 201, description = "The enrolled face", body = FaceRecord)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("enroll"))),
)]
pub async fn enroll_face(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    mut form: ImageForm,
) -> Result<Response, ApiError> {
    let id = person_id(&id)?;
    let choice = face_choice(&form, FaceChoice::Single)?;
    let image = form.image("image")?;
    let e = s.service.enroll(EnrollTarget::Existing(id), image, choice, &caller.actor()).await?;
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
    params(("name" = Option<String>, Query, description = "With a raw image body: the new person's name"), ("person_id" = Option<String>, Query, description = "With a raw image body: an existing person"), ("face" = Option<super::openapi::FaceParam>, Query, description = "With a raw image body: which face to use")),
    request_body(content(
        (super::openapi::EnrollForm = "multipart/form-data"),
        (super::openapi::EnrollForm = "application/json"),
        (super::openapi::ImageFile = "image/*"),
    )),
    responses((status = 201, description = "Enrolled", body = Enrolled, example = json!({"person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "created_person": true, "person": {"id": "01a2224222ec71bdb9d7a84a1ee5db30", "name": "Barack Obama", "metadata": null, "created_at": "2026-11-28T13:04:49.388400547Z", "updated_at": "2026-11-28T13:04:49.388400547Z", "face_count": 1}, "face": {"id": "01a2224222ec71bdb9d7a84b8110f255", "person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}, "model": "sface-2021dec-int8bq@sha256:fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee", "created_at": "2026-11-28T13:04:49.388555378Z"}}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("enroll"))),
)]
pub async fn enroll(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    mut form: ImageForm,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let choice = face_choice(&form, FaceChoice::Single)?;
    let image = form.image("image")?;
    let metadata = form.json.get("metadata").filter(|m| !m.is_null()).map(valid_metadata).transpose()?;
    let e = match form.text("person_id").filter(|p| !p.is_empty()) {
        Some(pid) => s.service.enroll(EnrollTarget::Existing(person_id(pid)?), image, choice, &actor).await?,
        None => {
            let name =
                valid_name(form.text("name").ok_or_else(|| Error::param("name", "give a name or a person_id"))?)?;
            s.service.enroll(EnrollTarget::New { name, metadata }, image, choice, &actor).await?
        }
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
    params(("person_id" = Option<String>, Query, description = "With a raw image body: the person to verify against"), ("threshold" = Option<f32>, Query, description = "With a raw image body: the decision threshold (0 to 1)"), ("face" = Option<super::openapi::FaceParam>, Query, description = "With a raw image body: which face to use")),
    request_body(content(
        (super::openapi::VerifyForm = "multipart/form-data"),
        (super::openapi::VerifyForm = "application/json"),
        (super::openapi::ImageFile = "image/*"),
    )),
    responses((status = 200, description = "The decision", body = Verification, example = json!({"match": true, "similarity": 0.7425, "threshold": 0.363, "person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "best_face_id": "01a2224222ec71bdb9d7a84b8110f255", "compared_faces": 1, "decision": "highest cosine similarity over the person's enrolled faces, compared with the threshold", "face": {"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn verify(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, ApiError> {
    let pid = form.text("person_id").ok_or_else(|| Error::param("person_id", "required"))?.to_string();
    if !is_valid_id(&pid) {
        return Err(Error::PersonNotFound(pid.chars().take(64).collect()).into());
    }
    let threshold = threshold(&form)?;
    let choice = face_choice(&form, FaceChoice::Largest)?;
    let image = form.image("image")?;
    Ok(Json(s.service.verify(&pid, image, choice, threshold).await?).into_response())
}

/// Who is each face in the photo?
#[utoipa::path(
    post,
    path = "/identify",
    operation_id = "identify",
    tag = "matching",
    params(("top_k" = Option<u32>, Query, description = "With a raw image body: candidates per face"), ("threshold" = Option<f32>, Query, description = "With a raw image body: the decision threshold (0 to 1)")),
    request_body(content(
        (super::openapi::IdentifyForm = "multipart/form-data"),
        (super::openapi::IdentifyForm = "application/json"),
        (super::openapi::ImageFile = "image/*"),
    )),
    responses((status = 200, description = "Every face with its match and candidates", body = Identification, example = json!({"threshold": 0.48, "gallery_size": 1, "faces": [{"face": {"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}, "match": {"person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "name": "Barack Obama", "similarity": 0.7865, "face_id": "01a2224222ec71bdb9d7a84b8110f255"}, "status": "identified", "candidates": [{"person_id": "01a2224222ec71bdb9d7a84a1ee5db30", "name": "Barack Obama", "similarity": 0.7865, "face_id": "01a2224222ec71bdb9d7a84b8110f255"}]}]}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn identify(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, ApiError> {
    let max = s.service.config.max_top_k;
    let top_k = form.number::<i64>("top_k", |k| {
        if (1..=max as i64).contains(k) { Ok(()) } else { Err(format!("must be a whole number from 1 to {max}")) }
    })?;
    let threshold = threshold(&form)?;
    let image = form.image("image")?;
    Ok(Json(s.service.identify(image, top_k.map(|k| k as usize), threshold).await?).into_response())
}

/// Do two photos show the same person?
#[utoipa::path(
    post,
    path = "/compare",
    operation_id = "compare",
    tag = "matching",
    request_body(content(
        (super::openapi::CompareForm = "multipart/form-data"),
        (super::openapi::CompareForm = "application/json"),
        (super::openapi::ImageFile = "image/*"),
    )),
    responses((status = 200, description = "The decision", body = Comparison, example = json!({"match": true, "similarity": 0.7425, "threshold": 0.363, "face_a": {"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}, "face_b": {"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}, "model": "sface-2021dec-int8bq@sha256:fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn compare(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, ApiError> {
    let a = form.image("image_a")?;
    let b = form.image("image_b")?;
    Ok(Json(s.service.compare(a, b).await?).into_response())
}

/// Every face with box, landmarks, score and quality.
#[utoipa::path(
    post,
    path = "/detect",
    operation_id = "detect",
    tag = "matching",
    request_body(content(
        (super::openapi::ImageForm = "multipart/form-data"),
        (super::openapi::ImageForm = "application/json"),
        (super::openapi::ImageFile = "image/*"),
    )),
    responses((status = 200, description = "Every face, largest first", body = Analysis, example = json!({"image": {"width": 960, "height": 720}, "faces": [{"box": {"x": 370.8, "y": 90.12, "width": 239.0, "height": 328.8}, "landmarks": [[439.1, 214.58], [553.99, 213.96], [495.14, 268.07], [440.54, 318.41], [546.59, 320.3]], "score": 0.9465, "quality": {"face_size": 239.0, "eye_distance": 114.88, "sharpness": 1882.7}}]}))),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn detect(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, ApiError> {
    let image = form.image("image")?;
    Ok(Json(s.service.analyze(image, false).await?).into_response())
}

/// Every face with its embedding and model id.
#[utoipa::path(
    post,
    path = "/embed",
    operation_id = "embed",
    tag = "matching",
    request_body(content(
        (super::openapi::ImageForm = "multipart/form-data"),
        (super::openapi::ImageForm = "application/json"),
        (super::openapi::ImageFile = "image/*"),
    )),
    responses((status = 200, description = "Every face with its embedding", body = Embedded)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("match"))),
)]
pub async fn embed(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, ApiError> {
    let image = form.image("image")?;
    let a = s.service.analyze(image, true).await?;
    let faces: Vec<EmbeddedFace> = a.faces.into_iter().map(EmbeddedFace::from).collect();
    Ok(Json(Embedded { image: a.image, faces }).into_response())
}
