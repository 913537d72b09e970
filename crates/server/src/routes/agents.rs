//! `/api/v2/agents`: list, create, get, update, delete. Agent management returns
//! bare objects, as the contract does (only lists use the list envelope).

use agentbase_api_types as api;
use agentbase_core::{AgentPatch, Cursor, NewAgent, Visibility, agent::IpRateLimitsPatch};
use agentbase_service::Principal;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use crate::AppState;
use crate::dto::agents::{actions_dto, created_dto, to_dto};
use crate::error::ApiError;
use crate::extract::{AppJson, PageQuery};

fn visibility(v: api::Visibility) -> Visibility {
    match v {
        api::Visibility::Public => Visibility::Public,
        api::Visibility::Private => Visibility::Private,
    }
}

#[utoipa::path(get, path = "/api/v2/agents", tag = "agents",
    params(("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page"),
           ("limit" = Option<u32>, Query, description = "1 to 100, default 20")),
    responses((status = 200, body = api::ListAgentsResponse), (status = 400, body = api::ErrorResponse),
              (status = 401, body = api::ErrorResponse), (status = 429, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    page: PageQuery,
) -> Result<Json<api::ListAgentsResponse>, ApiError> {
    let result = state
        .app
        .agents()
        .list(&p.workspace_id, page.cursor.as_ref(), page.limit)
        .await?;
    let pagination = crate::dto::conversations::pagination(&result, |a| Cursor {
        t: a.created_at,
        id: a.id.clone(),
    });
    let data = result
        .items
        .into_iter()
        .map(|a| {
            let used = state.app.credits().agent_used(&a);
            to_dto(a, used)
        })
        .collect();
    Ok(Json(api::ListAgentsResponse { data, pagination }))
}

#[utoipa::path(post, path = "/api/v2/agents", tag = "agents", request_body = api::CreateAgentBody,
    responses((status = 201, body = api::AgentCreated), (status = 400, body = api::ErrorResponse),
              (status = 401, body = api::ErrorResponse), (status = 429, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    AppJson(body): AppJson<api::CreateAgentBody>,
) -> Result<(StatusCode, Json<api::AgentCreated>), ApiError> {
    let created = state
        .app
        .knowledge()
        .create_agent_from(
            &p,
            NewAgent {
                name: body.name,
                instructions: body.instructions,
                model: body.model,
                temp: body.temp,
                visibility: body.visibility.map(visibility),
            },
            body.url,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created_dto(created))))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}", tag = "agents",
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::Agent), (status = 404, body = api::ErrorResponse),
              (status = 401, body = api::ErrorResponse), (status = 429, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<api::Agent>, ApiError> {
    let agent = state.app.agents().get(&p.workspace_id, &agent_id).await?;
    let used = state.app.credits().agent_used(&agent);
    Ok(Json(to_dto(agent, used)))
}

#[utoipa::path(put, path = "/api/v2/agents/{agentId}", tag = "agents", request_body = api::UpdateAgentBody,
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::SuccessResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 401, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    body: Result<AppJson<api::UpdateAgentBody>, ApiError>,
) -> Result<Json<api::SuccessResponse>, ApiError> {
    // A foreign or missing agent answers 404 whatever the body: existence is
    // checked before the body is judged.
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    let AppJson(b) = body?;
    let patch = agent_patch(b);
    state
        .app
        .agents()
        .update(&p.workspace_id, &agent_id, patch)
        .await?;
    Ok(Json(api::SuccessResponse { success: true }))
}

/// The patch an update body asks for (the lead form is v1's and auto-retrain has
/// its own route).
fn agent_patch(b: api::UpdateAgentBody) -> AgentPatch {
    AgentPatch {
        name: b.name,
        instructions: b.instructions,
        model: b.model,
        temp: b.temp,
        visibility: b.visibility.map(visibility),
        allowed_domains: b.allowed_domains,
        suggested_messages: b.suggested_messages,
        initial_messages: b.initial_messages,
        credit_limit: b.credit_limit,
        ip_rate_limits: b.ip_rate_limits.map(|o| {
            o.map(|ip| IpRateLimitsPatch {
                limit: ip.limit,
                timeframe_secs: ip.timeframe,
                message: ip.message,
            })
        }),
        auto_retrain: None,
        channel_instructions: b.channel_instructions,
        notifications: b.notifications_settings,
        spam: b.spam_settings,
        voice: b.voice_settings,
        blocked_countries: b.blocked_countries,
        // Set through v1's `collectCustomerInformation`.
        lead_form: None,
        quote_fallback: b.quote_fallback,
    }
}

/// Updates the widget's styles: `chat` and `centerStage` are merged key by key.
#[utoipa::path(put, path = "/api/v2/agents/{agentId}/styles", tag = "agents", request_body = api::UpdateStylesBody,
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::SuccessResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 401, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn update_styles(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    body: Result<AppJson<api::UpdateStylesBody>, ApiError>,
) -> Result<Json<api::SuccessResponse>, ApiError> {
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    let AppJson(b) = body?;
    state
        .app
        .agents()
        .update_styles(&p.workspace_id, &agent_id, b.styles)
        .await?;
    Ok(Json(api::SuccessResponse { success: true }))
}

/// Copies the agent's settings and knowledge (not its conversations) into a new
/// agent, which trains at once.
#[utoipa::path(post, path = "/api/v2/agents/{agentId}/clone", tag = "agents",
    params(("agentId" = String, Path)),
    responses((status = 201, body = api::AgentCreated), (status = 404, body = api::ErrorResponse),
              (status = 401, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn clone(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<(StatusCode, Json<api::AgentCreated>), ApiError> {
    let created = state.app.knowledge().clone_agent(&p, &agent_id).await?;
    Ok((StatusCode::CREATED, Json(created_dto(created))))
}

#[utoipa::path(delete, path = "/api/v2/agents/{agentId}", tag = "agents",
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::SuccessResponse), (status = 404, body = api::ErrorResponse),
              (status = 401, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<api::SuccessResponse>, ApiError> {
    let knowledge = state.app.knowledge();
    knowledge.delete_agent(&p.workspace_id, &agent_id).await?;
    Ok(Json(api::SuccessResponse { success: true }))
}

/// The agent's client actions (an agentbase extension).
#[utoipa::path(get, path = "/api/v2/agents/{agentId}/actions", tag = "agents",
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::ActionsResponse), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn get_actions(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<api::ActionsResponse>, ApiError> {
    Ok(Json(actions_dto(
        state
            .app
            .agents()
            .get(&p.workspace_id, &agent_id)
            .await?
            .actions,
    )))
}

/// Replaces the agent's client actions; they are offered to its model as tools.
#[utoipa::path(put, path = "/api/v2/agents/{agentId}/actions", tag = "agents", request_body = api::ActionsBody,
    params(("agentId" = String, Path)),
    responses((status = 200, body = api::ActionsResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn put_actions(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    body: Result<AppJson<api::ActionsBody>, ApiError>,
) -> Result<Json<api::ActionsResponse>, ApiError> {
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    let AppJson(body) = body?;
    let actions = body
        .actions
        .into_iter()
        .map(|a| agentbase_core::Action {
            name: a.name,
            description: a.description,
            parameters: a.parameters,
        })
        .collect();
    let agent = state
        .app
        .agents()
        .set_actions(&p.workspace_id, &agent_id, actions)
        .await?;
    Ok(Json(actions_dto(agent.actions)))
}
