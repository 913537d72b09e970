//! `/api/v2/agents`: list, create, get, update, delete. Agent management returns
//! bare objects, as the contract does (only lists use the list envelope).

use agentbase_api_types as api;
use agentbase_service::Principal;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use crate::AppState;
use crate::dto::agents::{
    actions_dto, actions_of, agent_patch, created_dto, list_dto, new_agent, to_dto,
};
use crate::error::ApiError;
use crate::extract::{AppJson, OwnAgent, PageQuery};

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
        .list_with_usage(&p.workspace_id, page.cursor.as_ref(), page.limit)
        .await?;
    Ok(Json(list_dto(result)))
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
    let (new, url) = new_agent(body);
    let created = state
        .app
        .knowledge()
        .create_agent_from(&p, new, url)
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
    let agents = state.app.agents();
    let (agent, used) = agents.get_with_usage(&p.workspace_id, &agent_id).await?;
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
    OwnAgent(agent_id): OwnAgent,
    AppJson(b): AppJson<api::UpdateAgentBody>,
) -> Result<Json<api::SuccessResponse>, ApiError> {
    let patch = agent_patch(b);
    state
        .app
        .agents()
        .update(&p.workspace_id, &agent_id, patch)
        .await?;
    Ok(Json(api::SuccessResponse { success: true }))
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
    OwnAgent(agent_id): OwnAgent,
    AppJson(b): AppJson<api::UpdateStylesBody>,
) -> Result<Json<api::SuccessResponse>, ApiError> {
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
    OwnAgent(agent_id): OwnAgent,
    AppJson(body): AppJson<api::ActionsBody>,
) -> Result<Json<api::ActionsResponse>, ApiError> {
    let actions = actions_of(body);
    let agent = state
        .app
        .agents()
        .set_actions(&p.workspace_id, &agent_id, actions)
        .await?;
    Ok(Json(actions_dto(agent.actions)))
}
