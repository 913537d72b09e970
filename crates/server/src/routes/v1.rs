//! The v1 API still used by older integrations: `POST /api/v1/chat` (full history
//! in, `{text}` or a plain-text stream out) and `GET /api/v1/get-conversations`.
//! Errors are `{"message", "code"}` (see `layers::v1_errors`).

use std::collections::BTreeMap;
use std::convert::Infallible;

use agentbase_api_types::v1;
use agentbase_service::chat::TurnEvent;
use agentbase_service::{ConversationFilter, Principal};
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;

use crate::AppState;
use crate::dto::v1::{
    conversations_dto, leads_dto, settings_patch, v1_chatbot, v1_input, v1_sources,
};
use crate::error::ApiError;
use crate::extract::{AppJson, QueryMap, date_window};

#[utoipa::path(post, path = "/api/v1/chat", tag = "v1", request_body = v1::V1ChatRequest,
    responses((status = 200, description = "`{text}`, or `text/plain` chunks when `stream` is true", body = v1::V1ChatResponse),
              (status = 400, body = v1::V1Error), (status = 404, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn chat(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    AppJson(body): AppJson<v1::V1ChatRequest>,
) -> Result<Response, ApiError> {
    let stream = body.stream.unwrap_or(false);
    let input = v1_input(body)?;
    let turn = state.app.conversations().chat_v1(&p, input).await?;
    if stream {
        let plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
        return Ok((plain, Body::from_stream(async_stream(turn.events))).into_response());
    }
    Ok(Json(v1::V1ChatResponse {
        text: whole_answer(turn.events).await?,
    })
    .into_response())
}

/// The answer's whole text; an error before any text is a 502.
async fn whole_answer(
    mut events: tokio::sync::mpsc::Receiver<TurnEvent>,
) -> Result<String, ApiError> {
    let mut text = String::new();
    let mut error = None;
    while let Some(e) = events.recv().await {
        match e {
            TurnEvent::TextDelta(d) => text.push_str(&d),
            TurnEvent::Error(m) => error = Some(m),
            TurnEvent::Finish { .. } => break,
            _ => {}
        }
    }
    match error {
        Some(m) if text.is_empty() => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            agentbase_api_types::codes::CHAT_STREAMING_ERROR,
            m,
        )),
        _ => Ok(text),
    }
}

/// The answer's text as it is generated, nothing else.
fn async_stream(
    events: tokio::sync::mpsc::Receiver<TurnEvent>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send {
    futures_util::stream::unfold(events, |mut events| async move {
        loop {
            match events.recv().await? {
                TurnEvent::TextDelta(d) => return Some((Ok(Bytes::from(d)), events)),
                TurnEvent::Finish { .. } => return None,
                _ => continue,
            }
        }
    })
}

/// The query every v1 list takes: `chatbotId` (required), `page` (from 1),
/// `size` (`SIZE` by default), and the `startDate`/`endDate` window
/// (`YYYY-MM-DD`, both days included).
pub struct V1Window<const SIZE: u32> {
    agent_id: String,
    page: u32,
    size: u32,
    from: Option<i64>,
    to: Option<i64>,
}

impl<const SIZE: u32> V1Window<SIZE> {
    /// Reads the query, adding each problem to `details`.
    fn read(q: &QueryMap, details: &mut BTreeMap<String, String>) -> Self {
        let agent_id = q.get("chatbotId").map(str::to_owned);
        if agent_id.is_none() {
            details.insert("chatbotId".to_owned(), "Required".to_owned());
        }
        let mut number = |key: &str, default: u32, max: u32| match q.get(key) {
            None => default,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    details.insert(
                        key.to_owned(),
                        format!("must be an integer from 1 to {max}"),
                    );
                    default
                }
            },
        };
        let page = number("page", 1, u32::MAX);
        let size = number("size", SIZE, 100);
        let (from, to) = date_window(q, details);
        V1Window {
            agent_id: agent_id.unwrap_or_default(),
            page,
            size,
            from,
            to,
        }
    }
}

impl<S: Send + Sync, const SIZE: u32> FromRequestParts<S> for V1Window<SIZE> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let mut details = BTreeMap::new();
        let w = Self::read(&q, &mut details);
        if !details.is_empty() {
            return Err(ApiError::invalid_body(details));
        }
        Ok(w)
    }
}

/// `GET /api/v1/get-leads`: the leads the agent's lead form collected, newest first.
#[utoipa::path(get, path = "/api/v1/get-leads", tag = "v1",
    params(("chatbotId" = String, Query), ("startDate" = Option<String>, Query), ("endDate" = Option<String>, Query),
           ("page" = Option<String>, Query), ("size" = Option<String>, Query)),
    responses((status = 200, body = v1::V1LeadsResponse), (status = 400, body = v1::V1Error),
              (status = 404, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn get_leads(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    w: V1Window<10>,
) -> Result<Json<v1::V1LeadsResponse>, ApiError> {
    let leads = state
        .app
        .widget()
        .leads(&p.workspace_id, &w.agent_id, w.from, w.to, w.page, w.size)
        .await?;
    Ok(Json(leads_dto(leads)))
}

#[utoipa::path(get, path = "/api/v1/get-conversations", tag = "v1",
    params(("chatbotId" = String, Query), ("startDate" = Option<String>, Query), ("endDate" = Option<String>, Query),
           ("filteredSources" = Option<String>, Query), ("page" = Option<u32>, Query), ("size" = Option<u32>, Query)),
    responses((status = 200, body = v1::V1ConversationsResponse), (status = 400, body = v1::V1Error),
              (status = 404, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn get_conversations(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    V1ConversationsQuery { window: w, filter }: V1ConversationsQuery,
) -> Result<Json<v1::V1ConversationsResponse>, ApiError> {
    let list = (state.app)
        .conversations()
        .conversations_v1(&p, &w.agent_id, &filter, w.page, w.size)
        .await?;
    Ok(Json(conversations_dto(list)))
}

/// `get-conversations`' query: the chatbot and page, and the filter (dates, sources).
pub struct V1ConversationsQuery {
    window: V1Window<20>,
    filter: ConversationFilter,
}

impl<S: Send + Sync> FromRequestParts<S> for V1ConversationsQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let window = V1Window::<20>::from_request_parts(parts, state).await?;
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let sources =
            (q.get("filteredSources")).map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
        let filter = ConversationFilter {
            created_from: window.from,
            created_to: window.to,
            sources,
            ..Default::default()
        };
        Ok(V1ConversationsQuery { window, filter })
    }
}

fn check_chatbot_name(name: &str) -> Result<(), ApiError> {
    if name.trim().chars().count() < 3 {
        return Err(ApiError::invalid_field(
            "chatbotName",
            "must be at least 3 characters",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/create-chatbot", tag = "v1", request_body = v1::V1CreateChatbot,
    responses((status = 200, body = v1::V1ChatbotId), (status = 400, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn create_chatbot(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    AppJson(body): AppJson<v1::V1CreateChatbot>,
) -> Result<Json<v1::V1ChatbotId>, ApiError> {
    check_chatbot_name(&body.chatbot_name)?;
    let sources = v1_sources(body.source_text, body.urls_to_scrape);
    let new = agentbase_core::NewAgent {
        name: body.chatbot_name.trim().to_owned(),
        ..Default::default()
    };
    let agent = state
        .app
        .knowledge()
        .create_agent_with(&p, new, sources)
        .await?;
    Ok(Json(v1::V1ChatbotId {
        chatbot_id: agent.id,
    }))
}

#[utoipa::path(post, path = "/api/v1/update-chatbot-data", tag = "v1", request_body = v1::V1UpdateChatbotData,
    responses((status = 200, body = v1::V1ChatbotId), (status = 400, body = v1::V1Error), (status = 404, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn update_chatbot_data(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    AppJson(body): AppJson<v1::V1UpdateChatbotData>,
) -> Result<Json<v1::V1ChatbotId>, ApiError> {
    if let Some(name) = &body.chatbot_name {
        check_chatbot_name(name)?;
    }
    let sources = v1_sources(body.source_text, body.urls_to_scrape);
    let name = body.chatbot_name.map(|n| n.trim().to_owned());
    (state.app.knowledge())
        .replace_agent_data(&p, &body.chatbot_id, name, sources)
        .await?;
    Ok(Json(v1::V1ChatbotId {
        chatbot_id: body.chatbot_id,
    }))
}

#[utoipa::path(get, path = "/api/v1/get-chatbots", tag = "v1",
    responses((status = 200, body = v1::V1Chatbots)),
    security(("bearer" = [])))]
pub async fn get_chatbots(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<v1::V1Chatbots>, ApiError> {
    let agents = state.app.agents().all(&p.workspace_id).await?;
    Ok(Json(v1::V1Chatbots {
        chatbots: agents.into_iter().map(v1_chatbot).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/delete-chatbot", tag = "v1",
    params(("chatbotId" = String, Query)),
    responses((status = 200, body = v1::V1Message200), (status = 400, body = v1::V1Error), (status = 404, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn delete_chatbot(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ChatbotId(id): ChatbotId,
) -> Result<Json<v1::V1Message200>, ApiError> {
    state
        .app
        .knowledge()
        .delete_agent(&p.workspace_id, &id)
        .await?;
    Ok(Json(v1::V1Message200 {
        message: "Deleted successfully".into(),
    }))
}

#[utoipa::path(post, path = "/api/v1/update-chatbot-settings", tag = "v1", request_body = v1::V1UpdateChatbotSettings,
    responses((status = 200, body = v1::V1Message200), (status = 400, body = v1::V1Error), (status = 404, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn update_chatbot_settings(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    AppJson(body): AppJson<v1::V1UpdateChatbotSettings>,
) -> Result<Json<v1::V1Message200>, ApiError> {
    let update = settings_patch(body)?;
    let agents = state.app.agents();
    agents
        .update(&p.workspace_id, &update.chatbot_id, update.patch)
        .await?;
    if let Some(styles) = update.styles {
        agents
            .update_styles(&p.workspace_id, &update.chatbot_id, styles)
            .await?;
    }
    Ok(Json(v1::V1Message200 {
        message: "Your changes are saved.".into(),
    }))
}

/// The required `chatbotId` query parameter.
pub struct ChatbotId(String);

impl<S: Send + Sync> FromRequestParts<S> for ChatbotId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let id = q.get("chatbotId").map(str::to_owned);
        id.map(ChatbotId)
            .ok_or_else(|| ApiError::invalid_field("chatbotId", "Required"))
    }
}
