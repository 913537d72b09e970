//! Apify's webhooks API: persistent webhooks (`/v2/webhooks`, and an actor's at
//! `/v2/acts/{actorId}/webhooks`) told of the crawler's runs, and the dispatches
//! of every run webhook (`/v2/webhook-dispatches`), as Apify's clients call them
//! (`client.webhooks().create(…)`, `client.webhook(id).dispatches().list()`, …).

use agentbase_service::Principal;
use agentbase_service::crawl_runs::known_actor;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::AppState;
use crate::dto::apify::{dispatch_dto, webhook_dto};
use crate::error::ApiError;
use crate::extract::{RawBody, parse_json_object};
use crate::routes::apify::{PageQuery, data};

#[utoipa::path(get, path = "/v2/webhooks", tag = "apify",
    description = "Apify-compatible: the workspace's persistent webhooks, oldest first (`desc` for newest first).",
    params(("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "at most 1,000 (the default)"),
           ("desc" = Option<String>, Query)),
    responses((status = 200, description = "`{\"data\": {total, offset, limit, desc, count, items}}`"),
              (status = 400, body = agentbase_api_types::ErrorResponse)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: PageQuery,
) -> Result<Response, ApiError> {
    let runs = state.app.crawl_runs();
    let (hooks, total) = runs
        .webhooks(&p, false, (q.offset, q.limit), q.desc)
        .await?;
    Ok(q.page(hooks.iter().map(webhook_dto).collect(), total))
}

/// `GET /v2/acts/{actorId}/webhooks`: the webhooks told of every run of the actor.
#[utoipa::path(get, path = "/v2/actors/{actorId}/webhooks", tag = "apify",
    description = "Apify-compatible (also /v2/acts/...): the workspace's webhooks told of every run of the crawler (not those of one run).",
    params(("actorId" = String, Path), ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query),
           ("desc" = Option<String>, Query)),
    responses((status = 200, description = "`{\"data\": {total, offset, limit, desc, count, items}}`"),
              (status = 400, body = agentbase_api_types::ErrorResponse), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn actor_webhooks(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(actor_id): Path<String>,
    q: PageQuery,
) -> Result<Response, ApiError> {
    known_actor(&actor_id)?;
    let runs = state.app.crawl_runs();
    let (hooks, total) = runs.webhooks(&p, true, (q.offset, q.limit), q.desc).await?;
    Ok(q.page(hooks.iter().map(webhook_dto).collect(), total))
}

#[utoipa::path(post, path = "/v2/webhooks", tag = "apify",
    description = "Apify-compatible: creates a persistent webhook told of the crawler's runs (`condition.actorId`) or of one run (`condition.actorRunId`): `eventTypes` (`ACTOR.RUN.*`), `requestUrl`, `payloadTemplate`, `headersTemplate`, `shouldInterpolateStrings`, `doNotRetry`, `description`, `idempotencyKey` (an existing webhook with it is answered as it is), `isAdHoc`, `ignoreSslErrors` (accepted; TLS is always checked). At most 20 per workspace.",
    request_body = Object,
    responses((status = 201, description = "`{\"data\": Webhook}`"), (status = 400, body = agentbase_api_types::ErrorResponse),
              (status = 409, body = agentbase_api_types::ErrorResponse)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let body: Value = parse_json_object(&body)?;
    let w = state.app.crawl_runs().create_webhook(&p, &body).await?;
    Ok((StatusCode::CREATED, data(webhook_dto(&w))).into_response())
}

#[utoipa::path(get, path = "/v2/webhooks/{webhookId}", tag = "apify",
    description = "Apify-compatible: a persistent webhook.",
    params(("webhookId" = String, Path)),
    responses((status = 200, description = "`{\"data\": Webhook}`"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let w = state.app.crawl_runs().webhook(&p, &id).await?;
    Ok(data(webhook_dto(&w)))
}

#[utoipa::path(put, path = "/v2/webhooks/{webhookId}", tag = "apify",
    description = "Apify-compatible: the fields given replace the webhook's; the whole is checked as a new one is.",
    params(("webhookId" = String, Path)), request_body = Object,
    responses((status = 200, description = "`{\"data\": Webhook}`"), (status = 400, body = agentbase_api_types::ErrorResponse),
              (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let body: Value = parse_json_object(&body)?;
    let w = state
        .app
        .crawl_runs()
        .update_webhook(&p, &id, &body)
        .await?;
    Ok(data(webhook_dto(&w)))
}

#[utoipa::path(delete, path = "/v2/webhooks/{webhookId}", tag = "apify",
    description = "Apify-compatible: deletes the webhook (dispatches already made are still sent).",
    params(("webhookId" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.app.crawl_runs().delete_webhook(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/v2/webhooks/{webhookId}/test", tag = "apify",
    description = "Apify-compatible: sends the webhook a `TEST` event once, now, and answers with how it went as a dispatch (not kept, never retried). A workspace has at most 2 tests going (429 past them).",
    params(("webhookId" = String, Path)),
    responses((status = 201, description = "`{\"data\": WebhookDispatch}`"), (status = 404, body = agentbase_api_types::ErrorResponse),
              (status = 429, body = agentbase_api_types::ErrorResponse)))]
pub async fn test(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let w = state.app.crawl_runs().webhook(&p, &id).await?;
    let sent = state.app.webhooks().test_apify_webhook(&w).await?;
    Ok((StatusCode::CREATED, data(dispatch_dto(&sent))).into_response())
}

#[utoipa::path(get, path = "/v2/webhooks/{webhookId}/dispatches", tag = "apify",
    description = "Apify-compatible: the webhook's dispatches, oldest first (`desc` for newest first).",
    params(("webhookId" = String, Path), ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query),
           ("desc" = Option<String>, Query)),
    responses((status = 200, description = "`{\"data\": {total, offset, limit, desc, count, items}}`"),
              (status = 400, body = agentbase_api_types::ErrorResponse), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn webhook_dispatches(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    q: PageQuery,
) -> Result<Response, ApiError> {
    let runs = state.app.crawl_runs();
    let page = (q.offset, q.limit);
    let (items, total) = runs.dispatches(&p, Some(&id), page, q.desc).await?;
    Ok(q.page(items.iter().map(dispatch_dto).collect(), total))
}

#[utoipa::path(get, path = "/v2/webhook-dispatches", tag = "apify",
    description = "Apify-compatible: every dispatch of the workspace's run webhooks, persistent and ad-hoc.",
    params(("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query), ("desc" = Option<String>, Query)),
    responses((status = 200, description = "`{\"data\": {total, offset, limit, desc, count, items}}`"),
              (status = 400, body = agentbase_api_types::ErrorResponse)))]
pub async fn dispatches(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: PageQuery,
) -> Result<Response, ApiError> {
    let runs = state.app.crawl_runs();
    let page = (q.offset, q.limit);
    let (items, total) = runs.dispatches(&p, None, page, q.desc).await?;
    Ok(q.page(items.iter().map(dispatch_dto).collect(), total))
}

#[utoipa::path(get, path = "/v2/webhook-dispatches/{dispatchId}", tag = "apify",
    description = "Apify-compatible: a dispatch.",
    params(("dispatchId" = String, Path)),
    responses((status = 200, description = "`{\"data\": WebhookDispatch}`"), (status = 404, body = agentbase_api_types::ErrorResponse)))]
pub async fn dispatch(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let d = state.app.crawl_runs().dispatch(&p, &id).await?;
    Ok(data(dispatch_dto(&d)))
}
