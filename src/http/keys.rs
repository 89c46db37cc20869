//! `/v1/keys` (admin scope): create, list and revoke API keys. A key's
//! secret appears once, in the response that creates it. `/v1/audit`
//! (admin): the append-only log of changes.
use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::persons::valid_name;
use super::{AppState, Caller, JsonBody, PathParams};
use crate::domain::Scope;
use crate::error::Error;
use crate::store::{ApiKey, AuditEntry};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// Who or what uses the key.
    name: String,
    scope: Scope,
}

/// A new key: its listing fields and, this once, the secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    info: ApiKey,
    /// The secret to send as `Authorization: Bearer <key>`; not stored, not shown again.
    key: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    keys: Vec<ApiKey>,
}

/// Audit entries, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditLog {
    entries: Vec<AuditEntry>,
}

/// Create an API key; the response's `key` is the only time the secret is shown.
#[utoipa::path(
    post,
    path = "/keys",
    operation_id = "create_key",
    tag = "keys",
    request_body = NewKeyRequest,
    responses((status = 201, description = "The new key", body = CreatedKey)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<NewKeyRequest>,
) -> Result<Response, ApiError> {
    let name = valid_name(&req.name)?;
    let created = s.service.store().create_key(name, req.scope, &caller.actor()).await?;
    tracing::info!(key_id = %created.key.id, scope = req.scope.as_str(), "API key created");
    let body = CreatedKey { info: created.key, key: created.secret.expose_secret().to_string() };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Every key (never secrets), revoked ones included.
#[utoipa::path(
    get,
    path = "/keys",
    operation_id = "list_keys",
    tag = "keys",
    responses((status = 200, description = "Every key", body = KeyList)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn list(State(s): State<AppState>) -> Result<Response, ApiError> {
    let keys = s.service.store().list_keys().await?;
    Ok(Json(KeyList { keys }).into_response())
}

/// Revoke a key, effective at once.
#[utoipa::path(
    delete,
    path = "/keys/{id}",
    operation_id = "revoke_key",
    tag = "keys",
    params(("id" = String, Path, description = "The key id")),
    responses((status = 204, description = "Revoked")),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn revoke(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    if !s.service.store().revoke_key(&id, &caller.actor()).await? {
        return Err(Error::KeyNotFound(id.chars().take(64).collect()).into());
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
#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "audit_log",
    tag = "keys",
    params(("limit" = Option<u32>, Query, description = "Entries, 1 to 1000 (default 100)"), ("before" = Option<i64>, Query, description = "A `seq` to page back from")),
    responses((status = 200, description = "Audit entries, newest first", body = AuditLog)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn audit(
    State(s): State<AppState>,
    query: Result<Query<AuditPage>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(page) = query.map_err(|e| Error::InvalidRequest(e.body_text()))?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::param("limit", "must be from 1 to 1000").into());
    }
    let entries = s.service.store().audit_log(limit, page.before).await?;
    Ok(Json(AuditLog { entries }).into_response())
}
