//! The widget's side of the human handoff: the visitor's "talk to a person"
//! button (`POST /widget/v1/agents/{agentId}/handoff`) and the live feed of its
//! conversation (`GET /widget/v1/agents/{agentId}/live`), a long poll that
//! answers as soon as a message past `after` exists (an operator's reply, or the
//! AI's after a hand-back) or after `wait` seconds with none. A long poll rather
//! than SSE: one request per message, through any proxy, with the same admission
//! (public agent, allowed origin) as the other widget routes.

use std::time::Duration;

use agentbase_core::conversation::MessageRole;
use agentbase_service::helpdesk::{LIVE_WAIT, LiveMessage};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::QueryMap;
use crate::widget::{admit, peer_of, visitor_post, with_cors};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HandoffBody {
    visitor_id: String,
    conversation_id: String,
}

/// `POST /widget/v1/agents/{agentId}/handoff`: the visitor asks for a person; the
/// conversation becomes a ticket and the AI stops answering it.
pub async fn handoff(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    req: Request,
) -> Response {
    let state = &state;
    visitor_post(state, &agent_id, req, |w, body: HandoffBody| async move {
        let t = state
            .app
            .helpdesk()
            .visitor_handoff(&w, &body.visitor_id, &body.conversation_id)
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        let data = json!({"data": {
            "conversationId": body.conversation_id,
            "status": "taken_over",
            "ticketNumber": t.number,
        }});
        Ok(axum::Json(data).into_response())
    })
    .await
}

/// A live message as the widget and the dashboard read it.
pub fn live_json(m: &LiveMessage) -> Value {
    let answered_by = match (&m.author, m.message.role) {
        (Some(a), _) => json!({"type": "human", "name": a.name, "email": a.email}),
        (None, MessageRole::Assistant) => json!({"type": "ai"}),
        (None, MessageRole::User) => Value::Null,
    };
    json!({
        "id": m.message.id,
        "seq": m.message.seq,
        "role": m.message.role.as_str(),
        "text": m.message.text(),
        "createdAt": m.message.created_at.div_euclid(1000),
        "answeredBy": answered_by,
    })
}

/// `after` (a message position, default 0) and `wait` (seconds, 0 to 20).
pub fn live_params(q: &QueryMap) -> Result<(i64, Duration), ApiError> {
    let after = match q.get("after") {
        None => 0,
        Some(a) => a
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::invalid_field("after", "must be a whole number"))?,
    };
    let wait = match q.get("wait") {
        None => LIVE_WAIT,
        Some(w) => w
            .parse::<u64>()
            .ok()
            .filter(|s| Duration::from_secs(*s) <= LIVE_WAIT)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "wait",
                    format!("must be 0 to {} seconds", LIVE_WAIT.as_secs()),
                )
            })?,
    };
    Ok((after, wait))
}

/// `GET /widget/v1/agents/{agentId}/live?visitorId=…&conversationId=…&after=N`:
/// the visitor's conversation's messages past position N, and its status.
pub async fn live(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    parts: axum::http::request::Parts,
) -> Response {
    let headers = &parts.headers;
    let (w, origin) = match admit(&state, &agent_id, headers, peer_of(&parts.extensions)).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let q = QueryMap(crate::extract::form_pairs(parts.uri.query().unwrap_or("")));
    let answer = async {
        let (after, wait) = live_params(&q)?;
        let (Some(visitor), Some(conversation)) = (q.get("visitorId"), q.get("conversationId"))
        else {
            let both = "visitorId and conversationId are required";
            return Err(ApiError::invalid_field("conversationId", both));
        };
        let read =
            (state.app)
                .helpdesk()
                .widget_messages_after(&w, visitor, conversation, after, wait);
        let (messages, status) = read.await?;
        Ok::<_, ApiError>(axum::Json(json!({"data": {
            "status": status.as_str(),
            "messages": messages.iter().map(live_json).collect::<Vec<_>>(),
        }})))
    };
    with_cors(answer.await.into_response(), origin.as_ref())
}
