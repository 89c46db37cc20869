//! `/v1/keys` (admin scope): create, list and revoke API keys. A key's
//! secret appears once, in the response that creates it. `/v1/audit`
//! (admin): the append-only log of changes.
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use utoipa::IntoParams;

use super::input::{Form, JsonBody, Name, QueryParams, within};
use super::{ApiError, AppState, Caller, PathParams};
use crate::domain::Scope;
use crate::domain::{ApiKey, AuditEntry};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// Who or what uses the key.
    name: Name,
    scope: Scope,
}

impl Form for NewKeyRequest {}

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
    let created = s.service.create_key(&req.name.0, req.scope, &caller.actor()).await?;
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
    let keys = s.service.list_keys().await?;
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
    s.service.revoke_key(&id, &caller.actor()).await?;
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A page of a log, newest first (the audit log, a webhook's attempts).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogPage {
    /// Entries, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(super) limit: Option<u32>,
    /// A `seq` to page back from.
    pub(super) before: Option<i64>,
}

impl Form for LogPage {
    fn check(&self, _: &AppState) -> Result<(), ApiError> {
        within("limit", self.limit, 1..=1000)
    }
}

/// `GET /v1/audit?limit=&before=`: newest first; `before` is a `seq` to page back from.
#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "audit_log",
    tag = "keys",
    params(LogPage),
    responses((status = 200, description = "Audit entries, newest first", body = AuditLog)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn audit(State(s): State<AppState>, QueryParams(page): QueryParams<LogPage>) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(100);
    let entries = s.service.audit_log(limit, page.before).await?;
    Ok(Json(AuditLog { entries }).into_response())
}
