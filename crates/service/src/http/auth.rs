//! Access control: `Authorization: Bearer <key>` checked against the key
//! store on every request of a scoped route. `/healthz` and `/readyz` are
//! outside it. As soon as one valid key exists every scoped request needs a
//! key; before that, requests pass only when the service is allowed to run
//! open (bound to loopback, or started with `--insecure-no-auth`). The
//! abuse limits apply here ([`super::limits`]): a barred address presents no
//! key, a wrong key spends one of its failures, a valid key spends one of
//! its requests, and so does a request without one while the service runs open.
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use std::net::IpAddr;

use super::limits::Limited;
use super::{ApiError, AppState, Peer};
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

/// The 429 of a limit.
fn limited(l: Limited, who: &str) -> ApiError {
    let secs = l.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let message = match l.what {
        "auth_failures" => format!("too many failed authentications from {who}; retry after {secs} s"),
        "key" => format!("key {who} is over its scope's rate limit; retry after {secs} s"),
        _ => format!("{who} is over the rate limit for requests without a key; retry after {secs} s"),
    };
    ApiError::RateLimited(message, secs)
}

async fn authorize(state: &AppState, headers: &HeaderMap, needed: Scope, client: IpAddr) -> Result<Caller, ApiError> {
    let (service, limits) = (&state.service, &state.limits);
    match bearer(headers)? {
        Some(presented) => {
            limits.may_present_key(client).map_err(|l| limited(l, &client.to_string()))?;
            let Some(key) = service.authenticate(&presented).await? else {
                limits.failed(client).map_err(|l| limited(l, &client.to_string()))?;
                return Err(ApiError::Unauthorized("invalid API key".into()));
            };
            limits.admit_key(&key.id, key.scope).map_err(|l| limited(l, &key.id))?;
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
        None if state.open_without_keys && service.active_keys().await? == 0 => {
            limits.admit_anonymous(client).map_err(|l| limited(l, &client.to_string()))?;
            Ok(Caller(None))
        }
        None => Err(ApiError::Unauthorized("an API key is required: send `Authorization: Bearer <key>`".into())),
    }
}

async fn guard(state: AppState, mut req: Request, next: Next, needed: Scope) -> Response {
    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    let client = state.limits.client(peer, req.headers());
    match authorize(&state, req.headers(), needed, client).await {
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
