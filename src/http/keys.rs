//! `/v1/keys` (admin scope): create, list and revoke API keys. A key's
//! secret appears once, in the response that creates it. `/v1/audit`
//! (admin): the append-only log of changes.
use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::persons::valid_name;
use super::{AppState, Caller, JsonBody, PathParams};
use crate::error::Error;
use crate::store::Scope;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    name: String,
    scope: Scope,
}

pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<NewKeyRequest>,
) -> Result<Response, Error> {
    let name = valid_name(&req.name)?;
    let created = s.service.store().create_key(name, req.scope, &caller.actor()).await?;
    tracing::info!(key_id = %created.key.id, scope = req.scope.as_str(), "API key created");
    let mut body = serde_json::to_value(&created.key).map_err(|e| Error::Internal(e.into()))?;
    body["key"] = json!(created.secret.expose_secret());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list(State(s): State<AppState>) -> Result<Response, Error> {
    let keys = s.service.store().list_keys().await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

pub async fn revoke(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> Result<Response, Error> {
    if !s.service.store().revoke_key(&id, &caller.actor()).await? {
        return Err(Error::KeyNotFound(id.chars().take(64).collect()));
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct AuditPage {
    limit: Option<u32>,
    before: Option<i64>,
}

/// `GET /v1/audit?limit=&before=`: newest first; `before` is a `seq` to page back from.
pub async fn audit(
    State(s): State<AppState>,
    query: Result<Query<AuditPage>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Error> {
    let Query(page) = query.map_err(|e| Error::InvalidRequest(e.body_text()))?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::param("limit", "must be from 1 to 1000"));
    }
    let entries = s.service.store().audit_log(limit, page.before).await?;
    Ok(Json(json!({ "entries": entries })).into_response())
}
