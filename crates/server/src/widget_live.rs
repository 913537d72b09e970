//! The widget's side of the human handoff: the visitor's "talk to a person"
//! button (`POST /widget/v1/agents/{agentId}/handoff`) and the live feed of its
//! conversation (`GET /widget/v1/agents/{agentId}/live`), a long poll that
//! answers as soon as a message past `after` exists (an operator's reply, or the
//! AI's after a hand-back) or after `wait` seconds with none. A long poll rather
//! than SSE: one request per message, through any proxy, with the same admission
//! (public agent, allowed origin) as the other widget routes.

use std::time::Duration;

use agentbase_service::helpdesk::LIVE_WAIT;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::dto::widget::{Data, HandedOff, LiveFeed};
use crate::error::ApiError;
use crate::extract::QueryMap;
use crate::widget::{Admitted, VisitorPost, answer, identity_of, with_cors};

/// The visitor's request for a person: whose conversation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandoffBody {
    visitor_id: String,
    conversation_id: String,
    /// A verified visitor's identity, as on chat messages: their conversations
    /// carry their user id, not the anonymous visitor's.
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_hash: Option<String>,
}

/// `POST /widget/v1/agents/{agentId}/handoff`: the visitor asks for a person; the
/// conversation becomes a ticket and the AI stops answering it.
pub async fn handoff(State(state): State<AppState>, post: VisitorPost<HandoffBody>) -> Response {
    let VisitorPost {
        agent,
        origin,
        body,
    } = post;
    let handed = async {
        let identity = identity_of(body.user_id, body.user_hash, None)?;
        let t = (state.app.helpdesk())
            .visitor_handoff(
                &agent,
                &body.visitor_id,
                identity.as_ref(),
                &body.conversation_id,
            )
            .await?;
        let data = HandedOff {
            conversation_id: body.conversation_id,
            status: "taken_over",
            ticket_number: t.number,
        };
        Ok(axum::Json(Data { data }).into_response())
    };
    answer(origin.as_ref(), handed.await)
}

/// A live poll's query: `after` (a message position, default 0) and `wait`
/// (seconds, 0 to 20).
#[derive(Debug, Clone, Copy)]
pub struct LiveQuery {
    pub after: i64,
    pub wait: Duration,
}

impl<S: Send + Sync> FromRequestParts<S> for LiveQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let (after, wait) = live_params(&q)?;
        Ok(LiveQuery { after, wait })
    }
}

/// The widget's live poll's query: [`LiveQuery`], and whose conversation
/// (`visitorId`, `conversationId`, both required; a verified visitor's `userId`
/// and `userHash`, as on chat messages).
#[derive(Debug, Clone)]
pub struct VisitorLiveQuery {
    pub live: LiveQuery,
    pub visitor: String,
    pub conversation: String,
    pub identity: Option<agentbase_service::contacts::Identity>,
}

impl<S: Send + Sync> FromRequestParts<S> for VisitorLiveQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let live = LiveQuery::from_request_parts(parts, state).await?;
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let (Some(visitor), Some(conversation)) = (q.get("visitorId"), q.get("conversationId"))
        else {
            let both = "visitorId and conversationId are required";
            return Err(ApiError::invalid_field("conversationId", both));
        };
        let (visitor, conversation) = (visitor.to_owned(), conversation.to_owned());
        let owned = |k: &str| q.get(k).map(str::to_owned);
        let identity = identity_of(owned("userId"), owned("userHash"), None)?;
        Ok(VisitorLiveQuery {
            live,
            visitor,
            conversation,
            identity,
        })
    }
}

/// `after` (a message position, default 0) and `wait` (seconds, 0 to 20).
fn live_params(q: &QueryMap) -> Result<(i64, Duration), ApiError> {
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
/// the visitor's conversation's messages past position N, and its status. A bad
/// query is answered only to an admitted page (with CORS).
pub async fn live(
    State(state): State<AppState>,
    Admitted { agent: w, origin }: Admitted,
    q: Result<VisitorLiveQuery, ApiError>,
) -> Response {
    let answer = async {
        let q = q?;
        let (after, wait) = (q.live.after, q.live.wait);
        let read = (state.app.helpdesk()).widget_messages_after(
            &w,
            &q.visitor,
            q.identity.as_ref(),
            &q.conversation,
            after,
            wait,
        );
        let (messages, status) = read.await?;
        let data = LiveFeed::of(&messages, status);
        Ok::<_, ApiError>(axum::Json(Data { data }))
    };
    with_cors(answer.await.into_response(), origin.as_ref())
}
