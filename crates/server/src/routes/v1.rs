//! The v1 API still used by older integrations: `POST /api/v1/chat` (full history
//! in, `{text}` or a plain-text stream out) and `GET /api/v1/get-conversations`.
//! Errors are `{"message", "code"}` (see `layers::v1_errors`).

use std::collections::BTreeMap;
use std::convert::Infallible;

use agentbase_api_types::v1;
use agentbase_core::time_fmt::iso8601;
use agentbase_service::chat::{TurnEvent, V1Input};
use agentbase_service::{ConversationFilter, Principal};
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;

use crate::AppState;
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
    let agent_id = body
        .chatbot_id
        .or(body.chat_id)
        .ok_or_else(|| ApiError::invalid_field("chatbotId", "Required"))?;
    let input = V1Input {
        agent_id,
        messages: (body.messages.into_iter())
            .map(|m| (m.role, m.content))
            .collect(),
        temperature: body.temperature,
        model: body.model,
        conversation_id: body.conversation_id,
    };
    let turn = state.app.conversations().chat_v1(&p, input).await?;
    if body.stream.unwrap_or(false) {
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
/// `size`, and the `startDate`/`endDate` window (`YYYY-MM-DD`, both days included).
struct V1Window {
    agent_id: String,
    page: u32,
    size: u32,
    from: Option<i64>,
    to: Option<i64>,
}

impl V1Window {
    /// Reads the query, adding each problem to `details`.
    fn read(q: &QueryMap, default_size: u32, details: &mut BTreeMap<String, String>) -> V1Window {
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
        let size = number("size", default_size, 100);
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
    q: QueryMap,
) -> Result<Json<v1::V1LeadsResponse>, ApiError> {
    let mut details = BTreeMap::new();
    let w = V1Window::read(&q, 10, &mut details);
    if !details.is_empty() {
        return Err(ApiError::invalid_body(details));
    }
    let leads = state
        .app
        .widget()
        .leads(&p.workspace_id, &w.agent_id, w.from, w.to, w.page, w.size)
        .await?;
    Ok(Json(v1::V1LeadsResponse {
        collected_customers: leads
            .into_iter()
            .map(|l| v1::V1Lead {
                id: l.id,
                name: l.name.unwrap_or_default(),
                email: l.email.unwrap_or_default(),
                phone: l.phone.unwrap_or_default(),
                created_at: iso8601(l.created_at),
                chatbot_id: l.agent_id,
                account_id: l.workspace_id,
                conversation_id: l.conversation_id,
            })
            .collect(),
    }))
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
    q: QueryMap,
) -> Result<Json<v1::V1ConversationsResponse>, ApiError> {
    let (w, filter) = conversations_query(&q)?;
    let list = (state.app)
        .conversations()
        .conversations_v1(&p, &w.agent_id, &filter, w.page, w.size)
        .await?;
    Ok(Json(v1::V1ConversationsResponse {
        data: list
            .into_iter()
            .map(|(c, messages)| v1_conversation(c, &messages))
            .collect(),
    }))
}

/// `get-conversations`' query: the chatbot and page, and the filter (dates, sources).
fn conversations_query(q: &QueryMap) -> Result<(V1Window, ConversationFilter), ApiError> {
    let mut details = BTreeMap::new();
    let w = V1Window::read(q, 20, &mut details);
    if !details.is_empty() {
        return Err(ApiError::invalid_body(details));
    }
    let sources =
        (q.get("filteredSources")).map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
    let filter = ConversationFilter {
        created_from: w.from,
        created_to: w.to,
        sources,
        ..Default::default()
    };
    Ok((w, filter))
}

fn v1_conversation(
    c: agentbase_core::conversation::Conversation,
    messages: &[agentbase_core::conversation::Message],
) -> v1::V1Conversation {
    v1::V1Conversation {
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
    }
}

/// Sources for v1's `sourceText` and `urlsToScrape`.
fn v1_sources(
    source_text: Option<String>,
    urls: Option<Vec<String>>,
) -> Vec<agentbase_core::knowledge::NewSource> {
    use agentbase_core::knowledge::{LinkOptions, LinkType, NewSource, SourceContent};
    let mut out = Vec::new();
    if let Some(text) = source_text.filter(|t| !t.trim().is_empty()) {
        out.push(NewSource {
            name: "sourceText".into(),
            content: SourceContent::Text { content: text },
        });
    }
    for url in urls.unwrap_or_default() {
        out.push(NewSource {
            name: url.clone(),
            content: SourceContent::Link {
                url,
                options: LinkOptions {
                    link_type: LinkType::Individual,
                    exclude_paths: Vec::new(),
                    include_only_paths: Vec::new(),
                    slow_scraping: false,
                },
            },
        });
    }
    out
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
    let mut chatbots = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .app
            .agents()
            .list(&p.workspace_id, cursor.as_ref(), 100)
            .await?;
        cursor = page.items.last().map(|a| agentbase_core::Cursor {
            t: a.created_at,
            id: a.id.clone(),
        });
        let more = page.has_more;
        chatbots.extend(page.items.into_iter().map(v1_chatbot));
        if !more {
            break;
        }
    }
    Ok(Json(v1::V1Chatbots { chatbots }))
}

fn v1_chatbot(a: agentbase_core::Agent) -> v1::V1Chatbot {
    v1::V1Chatbot {
        id: a.id,
        name: a.name,
        instructions: a.instructions,
        model: a.model,
        temp: a.temp,
        visibility: a.visibility.as_str().to_owned(),
        initial_messages: a.initial_messages,
        suggested_messages: a.suggested_messages,
        allowed_domains: a.allowed_domains,
        status: a.status.as_str().to_owned(),
        created_at: iso8601(a.created_at),
        last_trained_at: a.last_trained_at.map(iso8601),
        size: a.size,
    }
}

#[utoipa::path(delete, path = "/api/v1/delete-chatbot", tag = "v1",
    params(("chatbotId" = String, Query)),
    responses((status = 200, body = v1::V1Message200), (status = 400, body = v1::V1Error), (status = 404, body = v1::V1Error)),
    security(("bearer" = [])))]
pub async fn delete_chatbot(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: QueryMap,
) -> Result<Json<v1::V1Message200>, ApiError> {
    let id = q
        .get("chatbotId")
        .ok_or_else(|| ApiError::invalid_field("chatbotId", "Required"))?;
    state
        .app
        .knowledge()
        .delete_agent(&p.workspace_id, id)
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
    let (chatbot_id, patch) = settings_patch(body)?;
    state
        .app
        .agents()
        .update(&p.workspace_id, &chatbot_id, patch)
        .await?;
    Ok(Json(v1::V1Message200 {
        message: "Your changes are saved.".into(),
    }))
}

/// The agent patch a v1 settings body asks for, with the chatbot it names.
fn settings_patch(
    body: v1::V1UpdateChatbotSettings,
) -> Result<(String, agentbase_core::AgentPatch), ApiError> {
    use agentbase_core::{AgentPatch, Visibility, agent::IpRateLimitsPatch};
    let visibility = match body.visibility.as_deref() {
        None => None,
        Some("public") => Some(Visibility::Public),
        Some("private") => Some(Visibility::Private),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "visibility",
                "must be public or private",
            ));
        }
    };
    let ip = (body.ip_limit.is_some()
        || body.ip_limit_timeframe.is_some()
        || body.ip_limit_message.is_some())
    .then(|| {
        Some(IpRateLimitsPatch {
            limit: body.ip_limit,
            timeframe_secs: body.ip_limit_timeframe,
            message: body.ip_limit_message.clone(),
        })
    });
    let lead_form = body
        .collect_customer_information
        .as_ref()
        .map(|v| {
            agentbase_core::lead::LeadForm::from_json(v, "collectCustomerInformation")
                .map(|f| f.to_json())
                .map_err(ApiError::invalid_body)
        })
        .transpose()?;
    let patch = AgentPatch {
        name: body.name,
        instructions: body.instructions,
        model: body.model,
        temp: body.temp,
        visibility,
        allowed_domains: body.domains.map(Some),
        suggested_messages: body.suggested_messages.map(|m| Some(serde_json::json!(m))),
        initial_messages: body.initial_messages,
        ip_rate_limits: ip,
        lead_form: lead_form.map(Some),
        ..Default::default()
    };
    Ok((body.chatbot_id, patch))
}
