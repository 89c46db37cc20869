//! `/v1/keys` (admin scope): create, list and revoke API keys. A key's
//! secret appears once, in the response that creates it.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::persons::valid_name;
use super::{AppState, JsonBody};
use crate::error::Error;
use crate::store::Scope;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    name: String,
    scope: Scope,
}

pub async fn create(State(s): State<AppState>, JsonBody(req): JsonBody<NewKeyRequest>) -> Result<Response, Error> {
    let name = valid_name(&req.name)?;
    let created = s.service.store().create_key(name, req.scope).await?;
    tracing::info!(key_id = %created.key.id, scope = req.scope.as_str(), "API key created");
    let mut body = serde_json::to_value(&created.key).map_err(|e| Error::Internal(e.into()))?;
    body["key"] = json!(created.secret.expose_secret());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list(State(s): State<AppState>) -> Result<Response, Error> {
    let keys = s.service.store().list_keys().await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

pub async fn revoke(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, Error> {
    if !s.service.store().revoke_key(&id).await? {
        return Err(Error::KeyNotFound(id.chars().take(64).collect()));
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
