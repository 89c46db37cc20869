//! `/v1/gallery/models` (admin scope): moving the gallery to another
//! embedder. Embeddings by another model are made by `visage reembed --to`
//! (the service holds one model); here the gallery's models are listed, the
//! answers another model would change are reported, and the faces' own
//! model is switched (and back) or the embeddings kept beside pruned.
use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::input::{Form, JsonBody, QueryParams};
use super::{ApiError, AppState, Caller};
use crate::domain::Switched;
use crate::service::{GalleryModels, ModelChanges};

/// Which models the faces have embeddings of: their own, and kept beside
/// (`visage reembed --to`); how many faces this service cannot compare.
#[utoipa::path(get, path = "/gallery/models", operation_id = "gallery_models", tag = "gallery",
    responses((status = 200, description = "The gallery's models", body = GalleryModels)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))))]
pub async fn models(State(s): State<AppState>) -> Result<Json<GalleryModels>, ApiError> {
    Ok(Json(s.service.gallery_models().await?))
}

/// The two models a change report compares.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// An embedder's name (`sface`) or a model id; default: the model most
    /// faces own, other than `to`.
    from: Option<String>,
    /// Default: this service's model.
    to: Option<String>,
}

impl Form for ChangesQuery {}

/// What identify would answer differently on the gallery's own faces with
/// `to` than with `from`: each face the probe, the other faces the gallery,
/// each model with its own 1:N threshold and margin; counts by kind and the
/// first 100 changed answers with ids.
#[utoipa::path(get, path = "/gallery/models/changes", operation_id = "model_changes", tag = "gallery",
    params(ChangesQuery),
    responses((status = 200, description = "The answers that would change", body = ModelChanges)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))))]
pub async fn changes(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<ChangesQuery>,
) -> Result<Json<ModelChanges>, ApiError> {
    Ok(Json(s.service.model_changes(q.from.as_deref(), q.to.as_deref()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    /// An embedder's name (`sface`) or a model id.
    model: String,
    /// Switch even though some faces lack the model (they stay on theirs).
    #[serde(default)]
    force: bool,
}

impl Form for SwitchRequest {}

/// Makes `model` every face's own embedding in one transaction, the
/// previous one kept beside: switching back undoes it until pruned. Refused
/// (409 `model_incomplete`) while faces have no embedding by it, unless
/// `force`.
#[utoipa::path(post, path = "/gallery/models/switch", operation_id = "switch_model", tag = "gallery",
    request_body = SwitchRequest,
    responses((status = 200, description = "What was switched", body = Switched)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))))]
pub async fn switch(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<SwitchRequest>,
) -> Result<Json<Switched>, ApiError> {
    let done = s.service.switch_model(&req.model, req.force, &caller.actor()).await?;
    tracing::info!(model = %req.model, switched = done.switched, lacking = done.lacking, "faces' own model switched");
    Ok(Json(done))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// Only this model's (an embedder's name or a model id); default: all.
    model: Option<String>,
}

impl Form for PruneRequest {}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Pruned {
    /// Embeddings deleted.
    deleted: u64,
}

/// Deletes the embeddings kept beside the faces' own (after a switch, once
/// the old model will not be needed again). Refused (409 `model_in_use`)
/// when this service compares faces by them.
#[utoipa::path(post, path = "/gallery/models/prune", operation_id = "prune_embeddings", tag = "gallery",
    request_body = PruneRequest,
    responses((status = 200, description = "How many were deleted", body = Pruned)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))))]
pub async fn prune(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<PruneRequest>,
) -> Result<Json<Pruned>, ApiError> {
    let deleted = s.service.prune_embeddings(req.model.as_deref(), &caller.actor()).await?;
    tracing::info!(model = ?req.model, deleted, "embeddings kept beside pruned");
    Ok(Json(Pruned { deleted }))
}
