//! `/api/v2/agents/{agentId}/webhooks`: an agent's webhook endpoints and their
//! delivery log (an agentbase extension; Chatbase configures its one webhook in
//! its dashboard).

use agentbase_api_types as api;
use agentbase_core::webhook::{Webhook, WebhookInput};
use agentbase_core::{Cursor, time_fmt::iso8601};
use agentbase_service::Principal;
use agentbase_service::webhooks::DeliveryLog;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, PageQuery};

fn to_dto(w: Webhook) -> api::Webhook {
    api::Webhook {
        id: w.id,
        agent_id: w.agent_id,
        url: w.url,
        events: w.events,
        active: w.active,
        secret: w.secret,
        created_at: iso8601(w.created_at),
        updated_at: iso8601(w.updated_at),
    }
}

fn delivery_dto(l: DeliveryLog) -> api::WebhookDelivery {
    let d = l.delivery;
    let pending = d.state == agentbase_core::webhook::DeliveryState::Pending;
    api::WebhookDelivery {
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        next_attempt_at: pending.then(|| iso8601(d.next_attempt_at)),
        created_at: iso8601(d.created_at),
        finished_at: d.finished_at.map(iso8601),
        body: d.body,
        log: l
            .attempts
            .into_iter()
            .map(|a| api::WebhookAttempt {
                attempt: a.attempt,
                started_at: iso8601(a.started_at),
                duration_ms: a.duration_ms,
                status_code: a.status_code,
                error: a.error,
            })
            .collect(),
    }
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/webhooks", tag = "webhooks",
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::WebhooksResponse), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<api::WebhooksResponse>, ApiError> {
    let hooks = state.app.webhooks(&p.workspace_id, &agent_id).await?;
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
    Path(agent_id): Path<String>,
    body: Result<AppJson<api::CreateWebhookBody>, ApiError>,
) -> Result<(StatusCode, Json<api::Webhook>), ApiError> {
    // Another workspace's agent is missing whatever the body says.
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    let AppJson(body) = body?;
    let input = WebhookInput {
        url: Some(body.url),
        events: Some(body.events),
        active: body.active,
    };
    let w = state
        .app
        .create_webhook(&p.workspace_id, &agent_id, input)
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
    let w = state.app.webhook(&p.workspace_id, &agent_id, &id).await?;
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
    Path((agent_id, id)): Path<(String, String)>,
    body: Result<AppJson<api::UpdateWebhookBody>, ApiError>,
) -> Result<Json<api::Webhook>, ApiError> {
    state.app.webhook(&p.workspace_id, &agent_id, &id).await?;
    let AppJson(body) = body?;
    let input = WebhookInput {
        url: body.url,
        events: body.events,
        active: body.active,
    };
    let w = state
        .app
        .update_webhook(
            &p.workspace_id,
            &agent_id,
            &id,
            input,
            body.rotate_secret.unwrap_or(false),
        )
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
        .delete_webhook(&p.workspace_id, &agent_id, &id)
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
        .webhook_deliveries(
            &p.workspace_id,
            &agent_id,
            &id,
            page.cursor.as_ref(),
            page.limit,
        )
        .await?;
    let pagination = super::conversations::pagination(&result, |l| Cursor {
        t: l.delivery.created_at,
        id: l.delivery.id.clone(),
    });
    Ok(Json(api::WebhookDeliveriesResponse {
        data: result.items.into_iter().map(delivery_dto).collect(),
        pagination,
    }))
}
