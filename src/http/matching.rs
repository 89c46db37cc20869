//! Image endpoints: enroll, verify, identify, compare, detect, embed.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use super::persons::{person_id, valid_metadata, valid_name};
use super::{AppState, Caller, ImageForm, PathParams};
use crate::error::Error;
use crate::service::{FaceChoice, ImageSize};
use crate::store::is_valid_id;
use crate::store::{FaceRecord, Person};
use crate::vision::EmbeddedFace;

/// `face=single|largest`, with the endpoint's default when absent.
fn face_choice(form: &ImageForm, default: FaceChoice) -> Result<FaceChoice, Error> {
    match form.text("face") {
        None | Some("") => Ok(default),
        Some("single") => Ok(FaceChoice::Single),
        Some("largest") => Ok(FaceChoice::Largest),
        Some(other) => Err(Error::param("face", format!("{other:?} is not one of: single, largest"))),
    }
}

fn threshold(form: &ImageForm) -> Result<Option<f32>, Error> {
    form.number::<f32>("threshold", |t| {
        if t.is_finite() && (0.0..=1.0).contains(t) {
            Ok(())
        } else {
            Err("must be a cosine similarity from 0 to 1".into())
        }
    })
}

/// `POST /v1/persons/{id}/faces`: enroll one face for an existing person.
pub async fn enroll_face(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    mut form: ImageForm,
) -> Result<Response, Error> {
    let id = person_id(&id)?;
    let choice = face_choice(&form, FaceChoice::Single)?;
    let image = form.image("image")?;
    let e = s.service.enroll(Some(id), None, image, choice, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(e.face)).into_response())
}

#[derive(Serialize)]
struct Enrolled<'a> {
    person_id: &'a str,
    created_person: bool,
    person: &'a Person,
    face: &'a FaceRecord,
}

#[derive(Serialize)]
struct Embedded {
    image: ImageSize,
    faces: Vec<EmbeddedFace>,
}

/// `POST /v1/enroll`: create a person (or use `person_id`) and enroll a face in one call.
pub async fn enroll(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    mut form: ImageForm,
) -> Result<Response, Error> {
    let actor = caller.actor();
    let choice = face_choice(&form, FaceChoice::Single)?;
    let image = form.image("image")?;
    let metadata = form.json.get("metadata").filter(|m| !m.is_null()).map(valid_metadata).transpose()?;
    let e = match form.text("person_id").filter(|p| !p.is_empty()) {
        Some(pid) => s.service.enroll(Some(person_id(pid)?), None, image, choice, &actor).await?,
        None => {
            let name =
                valid_name(form.text("name").ok_or_else(|| Error::param("name", "give a name or a person_id"))?)?;
            s.service.enroll(None, Some((name, metadata)), image, choice, &actor).await?
        }
    };
    let body = Enrolled { person_id: &e.person.id, created_person: e.created_person, person: &e.person, face: &e.face };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST /v1/verify`: is the largest face in the photo this person?
pub async fn verify(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, Error> {
    let pid = form.text("person_id").ok_or_else(|| Error::param("person_id", "required"))?.to_string();
    if !is_valid_id(&pid) {
        return Err(Error::PersonNotFound(pid.chars().take(64).collect()));
    }
    let threshold = threshold(&form)?;
    let choice = face_choice(&form, FaceChoice::Largest)?;
    let image = form.image("image")?;
    Ok(Json(s.service.verify(&pid, image, choice, threshold).await?).into_response())
}

/// `POST /v1/identify`: who is each face in the photo?
pub async fn identify(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, Error> {
    let max = s.service.config.max_top_k;
    let top_k = form.number::<i64>("top_k", |k| {
        if (1..=max as i64).contains(k) { Ok(()) } else { Err(format!("must be a whole number from 1 to {max}")) }
    })?;
    let threshold = threshold(&form)?;
    let image = form.image("image")?;
    Ok(Json(s.service.identify(image, top_k.map(|k| k as usize), threshold).await?).into_response())
}

/// `POST /v1/compare`: do two photos show the same person?
pub async fn compare(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, Error> {
    let a = form.image("image_a")?;
    let b = form.image("image_b")?;
    Ok(Json(s.service.compare(a, b).await?).into_response())
}

/// `POST /v1/detect`: every face with box, landmarks, score and quality.
pub async fn detect(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, Error> {
    let image = form.image("image")?;
    Ok(Json(s.service.analyze(image, false).await?).into_response())
}

/// `POST /v1/embed`: every face with its embedding and model id.
pub async fn embed(State(s): State<AppState>, mut form: ImageForm) -> Result<Response, Error> {
    let image = form.image("image")?;
    let a = s.service.analyze(image, true).await?;
    let faces: Vec<EmbeddedFace> = a.faces.into_iter().map(EmbeddedFace::from).collect();
    Ok(Json(Embedded { image: a.image, faces }).into_response())
}
