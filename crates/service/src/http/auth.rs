//! Access control: `Authorization: Bearer <key>` checked against the key
//! store on every request of a scoped route. `/healthz` and `/readyz` are
//! outside it. As soon as one valid key exists every scoped request needs a
//! key; before that, requests pass only when the service is allowed to run
//! open (bound to loopback, or started with `--insecure-no-auth`).
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use super::ApiError;
use super::AppState;
use crate::domain::ApiKey;
use crate::domain::Scope;

/// Who made a request: the key (None when the service runs open).
#[derive(Debug, Clone)]
pub struct Caller(pub Option<ApiKey>);

impl Caller {
    /// The key id, for logs.
    pub fn key_id(&self) -> Option<&str> {
        self.0.as_ref().map(|k| k.id.as_str())
    }

    /// Who the audit log names: `key:<id>`, or `anonymous` without keys.
    pub fn actor(&self) -> String {
        self.key_id().map_or_else(|| "anonymous".to_string(), |id| format!("key:{id}"))
    }
}

/// The presented key, if any; a malformed header is an error, not "no key".
fn bearer(headers: &HeaderMap) -> Result<Option<SecretString>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    let (kind, key) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !kind.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
        return Err(ApiError::Unauthorized("expected `Authorization: Bearer <key>`".into()));
    }
    Ok(Some(SecretString::from(key.trim().to_string())))
}

async fn authorize(state: &AppState, headers: &HeaderMap, needed: Scope) -> Result<Caller, ApiError> {
    let service = &state.service;
    match bearer(headers)? {
        Some(presented) => {
            let key = service
                .authenticate(&presented)
                .await?
                .ok_or_else(|| ApiError::Unauthorized("invalid API key".into()))?;
            if !key.scope.allows(needed) {
                return Err(ApiError::Forbidden(format!(
                    "key {} has scope {}, this needs {}",
                    key.id,
                    key.scope.as_str(),
                    needed.as_str()
                )));
            }
            Ok(Caller(Some(key)))
        }
        None if state.open_without_keys && service.active_keys().await? == 0 => Ok(Caller(None)),
        None => Err(ApiError::Unauthorized("an API key is required: send `Authorization: Bearer <key>`".into())),
    }
}

async fn guard(state: AppState, mut req: Request, next: Next, needed: Scope) -> Response {
    match authorize(&state, req.headers(), needed).await {
        Ok(caller) => {
            if let Some(id) = caller.key_id() {
                tracing::Span::current().record("key_id", id);
            }
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Middleware: the request needs a key of at least this scope.
pub async fn require(State((s, needed)): State<(AppState, Scope)>, req: Request, next: Next) -> Response {
    guard(s, req, next, needed).await
}
