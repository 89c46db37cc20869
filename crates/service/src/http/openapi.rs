//! The OpenAPI 3.1 document. Paths and schemas come from the handlers'
//! `#[utoipa::path]` annotations, collected by the same `OpenApiRouter` that
//! builds the routes (so a route cannot exist without its operation); the
//! error responses of every operation are added here from one table, with an
//! example of each error code. Served at `/openapi.json`, browsable at `/docs`.
use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use super::error::{ErrorBody, ErrorDetail};
use super::{ApiError, status};
use crate::service::error::Code::{self, *};

/// The document's fixed parts; paths are added by the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "visage",
        description = "Self-hosted face recognition: enroll a person from one photo, then verify (1:1) or \
identify (1:N) new photos. Faces are detected with YuNet, aligned, embedded with SFace on the unit \
hypersphere, and compared by cosine similarity against a threshold.\n\n\
Images can be sent three ways: a `multipart/form-data` upload (field `image`, or `image_a` and \
`image_b`), a raw `image/*` body with the other parameters in the query string, or a JSON object \
with base64 strings (a `data:` URL prefix is fine).\n\n\
Every error is `{\"error\": {\"code\", \"message\"}}` with a stable code (an `invalid_parameter` also \
names the field at fault in `param`); unknown fields are refused; unknown routes answer 404 `not_found`, a known \
route with the wrong method 405 `method_not_allowed`.\n\n\
Authentication: `Authorization: Bearer <key>` with a key of the scope the operation names \
(`match` < `enroll` < `admin`). A service bound to loopback with no keys created runs open.",
        license(name = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "matching", description = "Detect, embed, compare, verify (1:1) and identify (1:N)"),
        (name = "enrollment", description = "Enroll persons and faces (scope `enroll`)"),
        (name = "persons", description = "Manage enrolled persons (scope `admin`)"),
        (name = "faces", description = "Faces nobody has named yet: keep them (scope `enroll`), review their clusters, name, move, merge and find similar faces (scope `admin`)"),
        (name = "keys", description = "API keys and the audit log (scope `admin`)"),
        (name = "events", description = "Webhooks: signed deliveries (Standard Webhooks) of what happens, with their attempts and retries (scope `admin`)"),
        (name = "gallery", description = "Calibration and health of the enrolled gallery (scope `admin`)"),
        (name = "service", description = "Health, readiness, information, metrics, documentation"),
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some("An API key from `visage keys create` or `POST /v1/keys`".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

const AUTH: &[Code] = &[Unauthorized, Forbidden, RateLimited];
const IMAGE_INPUT: &[Code] = &[
    InvalidRequest,
    MissingImage,
    InvalidJson,
    InvalidBase64,
    UnsupportedMediaType,
    BodyTooLarge,
    RequestTimeout,
    InvalidImage,
    ImageTooLarge,
    Overloaded,
    Unavailable,
];
const JSON_INPUT: &[Code] = &[InvalidJson, UnsupportedMediaType, BodyTooLarge, InvalidParameter];

/// The error codes each operation can answer, beyond `internal_error`.
fn errors_of(operation_id: &str) -> Vec<Code> {
    let extra: &[&[Code]] = match operation_id {
        "detect" | "embed" => &[AUTH, IMAGE_INPUT],
        "compare" => &[AUTH, IMAGE_INPUT, &[NoFace]],
        "verify" => &[AUTH, IMAGE_INPUT, &[InvalidParameter, PersonNotFound, NoEnrolledFaces, NoFace, MultipleFaces]],
        "identify" => &[AUTH, IMAGE_INPUT, &[InvalidParameter, RememberDisabled, DatabaseUnavailable]],
        "keep_faces" => {
            &[AUTH, IMAGE_INPUT, &[InvalidParameter, PersonNotFound, NoFace, MultipleFaces, DatabaseUnavailable]]
        }
        "list_unassigned_faces" | "list_clusters" => &[AUTH, &[InvalidRequest, InvalidParameter]],
        "get_face" => &[AUTH, &[InvalidRequest, FaceNotFound]],
        "delete_stored_face" => &[AUTH, &[InvalidRequest, FaceNotFound, DatabaseUnavailable]],
        "get_face_crop" => &[AUTH, &[InvalidRequest, FaceNotFound, CropNotFound]],
        "move_face" => &[AUTH, JSON_INPUT, &[InvalidRequest, FaceNotFound, PersonNotFound, DatabaseUnavailable]],
        "assign_cluster" => {
            &[AUTH, JSON_INPUT, &[InvalidRequest, ClusterNotFound, PersonNotFound, DatabaseUnavailable]]
        }
        "merge_persons" => &[AUTH, JSON_INPUT, &[InvalidRequest, PersonNotFound, DatabaseUnavailable]],
        "search_faces" => &[AUTH, IMAGE_INPUT, &[InvalidParameter, FaceNotFound, ModelMismatch, NoFace]],
        "enroll" | "enroll_face" => &[
            AUTH,
            IMAGE_INPUT,
            &[InvalidParameter, PersonNotFound, NoFace, MultipleFaces, FaceTooSmall, FaceTooBlurry],
        ],
        "create_person" | "create_key" => &[AUTH, JSON_INPUT],
        "update_person" => &[AUTH, JSON_INPUT, &[PersonNotFound]],
        "list_persons" | "audit_log" => &[AUTH, &[InvalidRequest, InvalidParameter]],
        "get_person" | "delete_person" => &[AUTH, &[InvalidRequest, PersonNotFound]],
        "delete_face" => &[AUTH, &[InvalidRequest, PersonNotFound, FaceNotFound]],
        "revoke_key" => &[AUTH, &[InvalidRequest, KeyNotFound]],
        "create_webhook" => &[AUTH, JSON_INPUT, &[DatabaseUnavailable]],
        "update_webhook" => &[AUTH, JSON_INPUT, &[WebhookNotFound, DatabaseUnavailable]],
        "get_webhook" => &[AUTH, &[InvalidRequest, WebhookNotFound]],
        "delete_webhook" => &[AUTH, &[InvalidRequest, WebhookNotFound, DatabaseUnavailable]],
        "list_deliveries" => &[AUTH, &[InvalidRequest, InvalidParameter, WebhookNotFound]],
        "retry_delivery" => {
            &[AUTH, &[InvalidRequest, WebhookNotFound, DeliveryNotFound, EventGone, DatabaseUnavailable]]
        }
        "list_webhooks" | "event_types" => &[AUTH],
        "list_keys" | "info" | "calibration" | "gallery_health" | "gallery_models" => &[AUTH],
        "model_changes" => &[AUTH, &[InvalidRequest, InvalidParameter, ModelNotFound]],
        "switch_model" => &[AUTH, JSON_INPUT, &[ModelNotFound, ModelIncomplete]],
        "prune_embeddings" => &[AUTH, JSON_INPUT, &[ModelInUse]],
        "metrics" => &[AUTH, &[Unavailable]],
        "readyz" => &[&[Unavailable]],
        _ => &[],
    };
    let mut codes: Vec<Code> = extra.iter().flat_map(|c| c.iter().copied()).collect();
    if !extra.is_empty() {
        codes.push(Internal);
    }
    codes
}

/// Adds each operation's error responses: one per status, with an example
/// per code, and the headers those statuses carry.
fn add_error_responses(openapi: &mut OpenApi) {
    let samples: BTreeMap<Code, ApiError> = ApiError::samples().into_iter().map(|e| (e.code(), e)).collect();
    for item in openapi.paths.paths.values_mut() {
        let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
        for op in ops.into_iter().flatten() {
            add_errors(op, &samples);
        }
    }
}

fn add_errors(op: &mut Operation, samples: &BTreeMap<Code, ApiError>) {
    let id = op.operation_id.clone().unwrap_or_default();
    let mut by_status: BTreeMap<u16, Vec<&ApiError>> = BTreeMap::new();
    for code in errors_of(&id) {
        if let Some(e) = samples.get(&code) {
            by_status.entry(status(e).as_u16()).or_default().push(e);
        }
    }
    for (code, errors) in by_status {
        let names: Vec<String> = errors.iter().map(|e| format!("`{}`", e.code())).collect();
        let examples = errors.iter().map(|e| {
            let value = serde_json::to_value(e.body()).ok();
            (e.code().name(), ExampleBuilder::new().value(value).build())
        });
        let content = ContentBuilder::new()
            .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
            .examples_from_iter(examples)
            .build();
        let mut response = ResponseBuilder::new()
            .description(format!("Error: {}", names.join(", ")))
            .content("application/json", content);
        if code == 401 {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .description(Some("`Bearer`"))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            );
        }
        if code == 429 || code == 503 {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .description(Some("Seconds to wait before retrying"))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                    .build(),
            );
        }
        op.responses.responses.insert(code.to_string(), RefOr::T(response.build()));
    }
}

/// The whole document: the router's paths plus the error responses.
pub fn document(mut openapi: OpenApi) -> OpenApi {
    add_error_responses(&mut openapi);
    super::schema::encodings_of_image_inputs(&mut openapi);
    super::schema::require_one_of(&mut openapi, "EnrollForm", super::matching::EnrollForm::TARGET);
    let (alternatives, fields) = super::clusters::SearchForm::QUERY;
    super::schema::require_exactly_one_of(&mut openapi, "SearchForm", alternatives, fields);
    let (alternatives, fields) = super::clusters::AssignBody::TARGET;
    super::schema::require_exactly_one_of(&mut openapi, "AssignBody", alternatives, fields);
    let components = openapi.components.get_or_insert_with(Default::default);
    for (name, schema) in super::schema::event_schemas() {
        components.schemas.entry(name).or_insert(schema);
    }
    openapi
}

/// The OpenAPI document (this service's API, as JSON).
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi_text()).into_response()
}
