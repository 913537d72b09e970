//! The v1 API still used by older integrations: `POST /api/v1/chat` (full history
//! in, `{text}` or a plain-text stream out) and `GET /api/v1/get-conversations`.
//! Errors are `{"message", "code"}` (see `layers::v1_errors`).

use std::collections::BTreeMap;
use std::convert::Infallible;

use agentbase_api_types::v1;
use agentbase_core::time_fmt::{iso8601, parse_date_bound};
use agentbase_service::chat::{TurnEvent, V1Input};
use agentbase_service::{ConversationFilter, Principal};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, QueryMap};

#[utoipa::path(post, path = "/api/v1/chat", tag = "v1", request_body = v1::V1ChatRequest,
    responses((status = 200, description = "`{text}`, or `text/plain` chunks when `stream` is true", body = v1::V1ChatResponse),
              (status = 400, body = v1::V1Error), (status = 404, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn chat(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    AppJson(body): AppJson<v1::V1ChatRequest>,
) -> Result<Response, ApiError> {
    let agent_id = body
        .chatbot_id
        .or(body.chat_id)
        .ok_or_else(|| ApiError::invalid_field("chatbotId", "Required"))?;
    let turn = state
        .app
        .chat_v1(
            &p,
            V1Input {
                agent_id,
                messages: body
                    .messages
                    .into_iter()
                    .map(|m| (m.role, m.content))
                    .collect(),
                temperature: body.temperature,
                model: body.model,
                conversation_id: body.conversation_id,
            },
        )
        .await?;
    let mut events = turn.events;
    if body.stream.unwrap_or(false) {
        let stream = async_stream(events);
        let mut r = Body::from_stream(stream).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(r);
    }
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
        _ => Ok(Json(v1::V1ChatResponse { text }).into_response()),
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

#[utoipa::path(get, path = "/api/v1/get-conversations", tag = "v1",
    params(("chatbotId" = String, Query), ("startDate" = Option<String>, Query), ("endDate" = Option<String>, Query),
           ("filteredSources" = Option<String>, Query), ("page" = Option<u32>, Query), ("size" = Option<u32>, Query)),
    responses((status = 200, body = v1::V1ConversationsResponse), (status = 400, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn get_conversations(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: QueryMap,
) -> Result<Json<v1::V1ConversationsResponse>, ApiError> {
    let mut details = BTreeMap::new();
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
    let size = number("size", 20, 100);
    let mut date = |key: &str, end: bool| {
        let text = q.get(key)?;
        let v = parse_date_bound(text, end);
        if v.is_none() {
            details.insert(key.to_owned(), "must be YYYY-MM-DD".to_owned());
        }
        v
    };
    let (from, to) = (date("startDate", false), date("endDate", true));
    if !details.is_empty() {
        return Err(ApiError::invalid_body(details));
    }
    let filter = ConversationFilter {
        created_from: from,
        created_to: to,
        sources: q
            .get("filteredSources")
            .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect()),
        ..Default::default()
    };
    let agent_id = agent_id.unwrap_or_default();
    let list = state
        .app
        .conversations_v1(&p, &agent_id, &filter, page, size)
        .await?;
    Ok(Json(v1::V1ConversationsResponse {
        data: list
            .into_iter()
            .map(|(c, messages)| v1::V1Conversation {
                id: c.id,
                created_at: iso8601(c.created_at),
                messages: messages
                    .iter()
                    .map(|m| v1::V1Message {
                        role: m.role.as_str().to_owned(),
                        content: m.text(),
                    })
                    .collect(),
                chatbot_id: c.agent_id,
                customer: c.user_id,
                source: c.source,
            })
            .collect(),
    }))
}
