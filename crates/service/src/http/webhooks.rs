//! `/v1/webhooks` (admin scope): where events go, their delivery attempts
//! and retries; `/v1/events/types`: what events there are.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::input::{Form, JsonBody, QueryParams};
use super::keys::LogPage;
use super::{ApiError, AppState, Caller, PathParams};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};

use crate::domain::{ALL_EVENTS, Delivery, EventKind, Webhook, WebhookChange, is_valid_id};
use crate::events::target::MAX_URL_CHARS;
use crate::service::error::Error;
use crate::service::webhooks::NewWebhook;

/// A path webhook id: anything not shaped like one of ours cannot exist.
fn webhook_id(id: &str) -> Result<&str, ApiError> {
    if is_valid_id(id) { Ok(id) } else { Err(Error::WebhookNotFound(id.chars().take(64).collect()).into()) }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where deliveries are POSTed: http or https, no user or password; by
    /// default not a loopback, link-local or private address.
    #[schema(
        min_length = 8,
        max_length = 2000,
        pattern = "^https?://[^/@:]+",
        example = "https://example.com/visage-events"
    )]
    url: String,
    /// Event types to receive (`GET /v1/events/types`), or `["*"]` for all.
    #[schema(schema_with = event_list, example = json!(["identify.identified", "identify.unknown"]))]
    events: Vec<String>,
    /// A Standard Webhooks secret (`whsec_` + base64 of 24 to 64 bytes);
    /// generated (and shown once, in this answer) when absent.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: Option<String>,
    /// Create it paused (default false).
    #[serde(default)]
    paused: bool,
}

impl Form for WebhookRequest {
    fn check(&self, _: &AppState) -> Result<(), ApiError> {
        if self.url.chars().count() > MAX_URL_CHARS {
            return Err(Error::param("url", format!("at most {MAX_URL_CHARS} characters")).into());
        }
        Ok(())
    }
}

/// A list of event types: each a known one, or `*`.
fn event_list() -> utoipa::openapi::schema::Array {
    let names: Vec<&str> = std::iter::once(ALL_EVENTS).chain(EventKind::ALL.iter().map(|k| k.name())).collect();
    let item = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names.clone()));
    ArrayBuilder::new()
        .items(item)
        .min_items(Some(1))
        .max_items(Some(names.len()))
        .description(Some("Event types (`*`: all)"))
        .build()
}

/// A new webhook and, when the service generated it, its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    webhook: Webhook,
    /// The signing secret, shown this once when the service generated it
    /// (absent when you gave one); never listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    webhooks: Vec<Webhook>,
}

/// Create a webhook: signed deliveries of the events it lists, from now on.
#[utoipa::path(
    post,
    path = "/webhooks",
    operation_id = "create_webhook",
    tag = "events",
    request_body = WebhookRequest,
    responses((status = 201, description = "The webhook, with its secret when generated", body = CreatedWebhook)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<WebhookRequest>,
) -> Result<Response, ApiError> {
    let new = NewWebhook { url: req.url, events: req.events, secret: req.secret, paused: req.paused };
    let created = s.service.create_webhook(new, &caller.actor()).await?;
    tracing::info!(webhook = %created.webhook.id, "webhook created");
    let body = CreatedWebhook { webhook: created.webhook, secret: created.secret };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Every webhook, oldest first (never their secrets).
#[utoipa::path(
    get,
    path = "/webhooks",
    operation_id = "list_webhooks",
    tag = "events",
    responses((status = 200, description = "Every webhook", body = WebhookList)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn list(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(WebhookList { webhooks: s.service.list_webhooks().await? }).into_response())
}

/// One webhook.
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    operation_id = "get_webhook",
    tag = "events",
    params(("id" = String, Path, description = "The webhook id")),
    responses((status = 200, description = "The webhook", body = Webhook)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn show(State(s): State<AppState>, PathParams(id): PathParams<String>) -> Result<Response, ApiError> {
    Ok(Json(s.service.get_webhook(webhook_id(&id)?).await?).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    /// A new target (checked as at creation).
    #[schema(min_length = 8, max_length = 2000, pattern = "^https?://[^/@:]+")]
    url: Option<String>,
    /// New event types (replacing the list).
    #[schema(schema_with = event_list)]
    events: Option<Vec<String>>,
    /// true pauses deliveries (events keep their place and go out once
    /// resumed); false resumes them.
    paused: Option<bool>,
}

impl Form for WebhookPatch {
    fn check(&self, _: &AppState) -> Result<(), ApiError> {
        if self.url.as_ref().is_some_and(|u| u.chars().count() > MAX_URL_CHARS) {
            return Err(Error::param("url", format!("at most {MAX_URL_CHARS} characters")).into());
        }
        Ok(())
    }
}

/// Pause or resume a webhook, or change its target or events.
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    operation_id = "update_webhook",
    tag = "events",
    params(("id" = String, Path, description = "The webhook id")),
    request_body = WebhookPatch,
    responses((status = 200, description = "The webhook", body = Webhook)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(patch): JsonBody<WebhookPatch>,
) -> Result<Response, ApiError> {
    let change = WebhookChange { url: patch.url, events: patch.events, paused: patch.paused };
    Ok(Json(s.service.update_webhook(webhook_id(&id)?, change, &caller.actor()).await?).into_response())
}

/// Delete a webhook and the log of its attempts; nothing more is sent to it.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    operation_id = "delete_webhook",
    tag = "events",
    params(("id" = String, Path, description = "The webhook id")),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn remove(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    s.service.delete_webhook(webhook_id(&id)?, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One attempt with its place in the log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryEntry {
    /// Its place in the log (page back with `before`).
    seq: i64,
    #[serde(flatten)]
    delivery: Delivery,
}

/// Attempts, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryLog {
    deliveries: Vec<DeliveryEntry>,
}

/// A webhook's delivery attempts, newest first: when, the status its
/// receiver answered or why it could not, and what came of it.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    operation_id = "list_deliveries",
    tag = "events",
    params(("id" = String, Path, description = "The webhook id"), LogPage),
    responses((status = 200, description = "Attempts, newest first", body = DeliveryLog)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn deliveries(
    State(s): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(page): QueryParams<LogPage>,
) -> Result<Response, ApiError> {
    let found = s.service.webhook_deliveries(webhook_id(&id)?, page.limit.unwrap_or(100), page.before).await?;
    let deliveries = found.into_iter().map(|(seq, delivery)| DeliveryEntry { seq, delivery }).collect();
    Ok(Json(DeliveryLog { deliveries }).into_response())
}

/// Send an attempt's event again, now (signed anew); the new attempt. The
/// webhook's place in the outbox does not move.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/deliveries/{delivery_id}/retry",
    operation_id = "retry_delivery",
    tag = "events",
    params(
        ("id" = String, Path, description = "The webhook id"),
        ("delivery_id" = String, Path, description = "An attempt's id"),
    ),
    responses((status = 200, description = "The new attempt", body = Delivery)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn retry(
    State(s): State<AppState>,
    PathParams((id, delivery)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let id = webhook_id(&id)?;
    if !is_valid_id(&delivery) {
        let delivery = delivery.chars().take(64).collect();
        return Err(Error::DeliveryNotFound { webhook: id.to_string(), delivery }.into());
    }
    Ok(Json(s.service.retry_delivery(id, &delivery).await?).into_response())
}

/// One event type.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventType {
    /// The `type` of a delivery's body, and the MQTT topic's last part.
    #[serde(rename = "type")]
    kind: &'static str,
    description: &'static str,
    /// The OpenAPI schema of its `data`.
    schema: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventTypes {
    types: Vec<EventType>,
}

/// Every event type with what it reports and the schema of its `data`.
#[utoipa::path(
    get,
    path = "/events/types",
    operation_id = "event_types",
    tag = "events",
    responses((status = 200, description = "Every event type", body = EventTypes)),
    security(("bearer" = [])),
    extensions(("x-scope" = json!("admin"))),
)]
pub async fn types() -> Response {
    let types = EventKind::ALL
        .into_iter()
        .map(|k| EventType {
            kind: k.name(),
            description: k.description(),
            schema: format!("#/components/schemas/{}", super::schema::event_data_schema(k)),
        })
        .collect();
    Json(EventTypes { types }).into_response()
}
