//! `POST /agents/{agentId}/chat` and `…/conversations/{conversationId}/retry`:
//! streaming (UI Message Stream v1, the default) or one JSON answer.

use agentbase_api_types as api;
use agentbase_service::Principal;
use agentbase_service::chat::{ChatInput, SOURCE_API, Turn};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;

use crate::AppState;
use crate::dto::chat::collect;
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::sse;

/// One event of a streamed answer, for the OpenAPI document (OpenAPI 3.1 reads a
/// `text/event-stream` schema as the schema of each event): `data` is one UI
/// Message Stream chunk as JSON, or `[DONE]` at the end.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct StreamEvent {
    /// A JSON chunk (`{"type":"text-delta",…}`) or `[DONE]`.
    data: String,
    /// Absent (a plain `message` event).
    event: Option<String>,
}

async fn answer(turn: Turn, stream: bool) -> Response {
    if stream {
        sse::response(turn)
    } else {
        Json(collect(turn).await).into_response()
    }
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/chat", tag = "chat", request_body = api::ChatRequest,
    params(("agentId" = String, Path)),
    responses((status = 200, description = "`text/event-stream` (UI Message Stream v1) when `stream` is true (the default), else JSON",
               content((api::ChatResponse = "application/json"), (StreamEvent = "text/event-stream"))),
              (status = 400, body = api::ErrorResponse), (status = 402, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 409, body = api::ErrorResponse),
              (status = 429, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn chat(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    AppJson(body): AppJson<api::ChatRequest>,
) -> Result<Response, ApiError> {
    let stream = body.stream.unwrap_or(true);
    let input = ChatInput {
        agent_id,
        message: body.message,
        conversation_id: body.conversation_id,
        user_id: body.user_id,
        source: SOURCE_API.into(),
    };
    let turn = state
        .app
        .conversations()
        .api_turn(&p, input, stream)
        .await?;
    Ok(answer(turn, stream).await)
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/conversations/{conversationId}/retry", tag = "chat",
    request_body = api::RetryRequest,
    params(("agentId" = String, Path), ("conversationId" = String, Path)),
    responses((status = 200, description = "As for chat: `text/event-stream` when `stream` is true (the default), else JSON",
               content((api::ChatResponse = "application/json"), (StreamEvent = "text/event-stream"))),
              (status = 400, body = api::ErrorResponse), (status = 402, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
    AppJson(body): AppJson<api::RetryRequest>,
) -> Result<Response, ApiError> {
    let turn = state
        .app
        .conversations()
        .retry(&p, &agent_id, &conversation_id, &body.message_id)
        .await?;
    Ok(answer(turn, body.stream.unwrap_or(true)).await)
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/conversations/{conversationId}/tool-result", tag = "chat",
    request_body = api::SubmitToolResultRequest,
    params(("agentId" = String, Path), ("conversationId" = String, Path)),
    responses((status = 200, body = api::SuccessData), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn tool_result(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
    AppJson(body): AppJson<api::SubmitToolResultRequest>,
) -> Result<Json<api::SuccessData>, ApiError> {
    if body.tool_call_id.is_empty() {
        return Err(ApiError::invalid_field("toolCallId", "must not be empty"));
    }
    state
        .app
        .conversations()
        .submit_tool_result(
            &p,
            &agent_id,
            &conversation_id,
            &body.tool_call_id,
            body.output.unwrap_or(Value::Null),
        )
        .await?;
    Ok(Json(api::SuccessData {
        data: api::SuccessResponse { success: true },
    }))
}
