//! `/api/v2/agents/{agentId}/webhooks`: an agent's webhook endpoints and their
//! delivery log (an agentbase extension; Chatbase configures its one webhook in
//! its dashboard).

use agentbase_api_types as api;
use agentbase_service::Principal;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use crate::AppState;
use crate::dto::webhooks::{deliveries_dto, new_webhook, to_dto, webhook_patch};
use crate::error::ApiError;
use crate::extract::{AppJson, OwnAgent, OwnWebhook, PageQuery};

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/webhooks", tag = "webhooks",
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::WebhooksResponse), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<api::WebhooksResponse>, ApiError> {
    let hooks = state
        .app
        .webhooks()
        .list(&p.workspace_id, &agent_id)
        .await?;
    Ok(Json(api::WebhooksResponse {
        data: hooks.into_iter().map(to_dto).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/webhooks", tag = "webhooks",
    request_body = api::CreateWebhookBody, params(("agentId" = String, Path)),
    responses((status = 201, body = api::Webhook), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 409, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    OwnAgent(agent_id): OwnAgent,
    AppJson(body): AppJson<api::CreateWebhookBody>,
) -> Result<(StatusCode, Json<api::Webhook>), ApiError> {
    let w = state
        .app
        .webhooks()
        .create(&p.workspace_id, &agent_id, new_webhook(body))
        .await?;
    Ok((StatusCode::CREATED, Json(to_dto(w))))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/webhooks/{webhookId}", tag = "webhooks",
    params(("agentId" = String, Path), ("webhookId" = String, Path)),
    responses((status = 200, body = api::Webhook), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, id)): Path<(String, String)>,
) -> Result<Json<api::Webhook>, ApiError> {
    let w = state
        .app
        .webhooks()
        .get(&p.workspace_id, &agent_id, &id)
        .await?;
    Ok(Json(to_dto(w)))
}

#[utoipa::path(patch, path = "/api/v2/agents/{agentId}/webhooks/{webhookId}", tag = "webhooks",
    request_body = api::UpdateWebhookBody,
    params(("agentId" = String, Path), ("webhookId" = String, Path)),
    responses((status = 200, body = api::Webhook), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    OwnWebhook { agent_id, id }: OwnWebhook,
    AppJson(body): AppJson<api::UpdateWebhookBody>,
) -> Result<Json<api::Webhook>, ApiError> {
    let (input, rotate_secret) = webhook_patch(body);
    let w = state
        .app
        .webhooks()
        .update(&p.workspace_id, &agent_id, &id, input, rotate_secret)
        .await?;
    Ok(Json(to_dto(w)))
}

#[utoipa::path(delete, path = "/api/v2/agents/{agentId}/webhooks/{webhookId}", tag = "webhooks",
    params(("agentId" = String, Path), ("webhookId" = String, Path)),
    responses((status = 200, body = api::SuccessResponse), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, id)): Path<(String, String)>,
) -> Result<Json<api::SuccessResponse>, ApiError> {
    state
        .app
        .webhooks()
        .delete(&p.workspace_id, &agent_id, &id)
        .await?;
    Ok(Json(api::SuccessResponse { success: true }))
}

/// The delivery log: newest deliveries first, each with every attempt.
#[utoipa::path(get, path = "/api/v2/agents/{agentId}/webhooks/{webhookId}/deliveries", tag = "webhooks",
    params(("agentId" = String, Path), ("webhookId" = String, Path),
           ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page"),
           ("limit" = Option<u32>, Query, description = "1 to 100, default 20")),
    responses((status = 200, body = api::WebhookDeliveriesResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, id)): Path<(String, String)>,
    page: PageQuery,
) -> Result<Json<api::WebhookDeliveriesResponse>, ApiError> {
    let result = state
        .app
        .webhooks()
        .deliveries(
            &p.workspace_id,
            &agent_id,
            &id,
            page.cursor.as_ref(),
            page.limit,
        )
        .await?;
    Ok(Json(deliveries_dto(result)))
}
