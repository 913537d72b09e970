//! Agents: list and create, settings, the playground, and conversations.

use agentbase_core::agent::{ESCALATION_ACTION, IpRateLimitsPatch};
use agentbase_core::conversation::{Message, MessageRole, Part};
use agentbase_core::{Agent, AgentPatch, Cursor, NewAgent, Visibility};
use agentbase_service::ConversationFilter;
use agentbase_service::chat::ChatInput;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Form, Posted, Session};
use super::html::{self, esc, url_value, when};
use super::workspaces::notice;
use super::{Problem, agent_page, back, lines, nav, redirect, render_template, workspace};
use crate::AppState;
use crate::dto::conversations::{by_created, next_cursor};
use crate::error::ApiError;
use crate::extract::{ListQuery, PageQuery, QueryMap};

/// The conversation source the playground records (a Chatbase source label).
pub const SOURCE_PLAYGROUND: &str = "Playground";

fn agent_base(ws: &str, agent: &str) -> String {
    format!("/dashboard/w/{}/agents/{}", esc(ws), esc(agent))
}

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Path(ws): Path<String>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let w = workspace(&state, &ws).await?;
    let cursor = q.get("cursor").and_then(Cursor::decode);
    let page = state.app.agents().list(&ws, cursor.as_ref(), 50).await?;
    let agents: Vec<_> = page
        .items
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "name": a.name,
                "visibility": a.visibility.as_str(),
                "status": a.status.as_str(),
            })
        })
        .collect();
    let next = next_cursor(&page, |a| Cursor {
        t: a.created_at,
        id: a.id.clone(),
    });
    let page = json!({ "ws": ws, "agents": agents, "next": next });
    let nav = nav(&w, None, "agents");
    render_template(&s, "Agents", &nav, &notice(&q), "agents.html", page)
}

pub async fn create(State(state): State<AppState>, Path(ws): Path<String>, p: Posted) -> Response {
    let new = NewAgent {
        name: p.form.get("name").unwrap_or("").to_owned(),
        instructions: p.form.get("instructions").map(str::to_owned),
        ..Default::default()
    };
    match state.app.agents().create(&ws, new).await {
        Ok(a) => redirect(&format!(
            "/dashboard/w/{ws}/agents/{}?ok={}",
            a.id,
            url_value("Agent created. Add sources to give it knowledge.")
        )),
        Err(e) => back(&format!("/dashboard/w/{ws}/agents"), Err(e.into())),
    }
}

fn suggested_lines(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    i.get("text")
                        .or_else(|| i.get("name"))
                        .and_then(Value::as_str)
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The embed snippet for a site.
pub fn embed_snippet(state: &AppState, headers: &HeaderMap, agent_id: &str) -> String {
    let origin = if state.app.settings().server.public_url.is_empty() {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    } else {
        state
            .app
            .settings()
            .server
            .public_url
            .trim_end_matches('/')
            .to_owned()
    };
    format!("<script src=\"{origin}/widget.js\" data-agent-id=\"{agent_id}\" defer></script>")
}

pub async fn settings(
    State(state): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Path((ws, agent_id)): Path<(String, String)>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let page = settings_context(&state, &headers, &a);
    let nav = nav(&w, Some(&a), "settings");
    render_template(&s, &a.name, &nav, &notice(&q), "settings.html", page)
}

/// What the settings template shows of an agent.
fn settings_context(state: &AppState, headers: &HeaderMap, a: &Agent) -> Value {
    let models: Vec<[&str; 2]> = (state.app.settings().models.keys())
        .map(|m| [m.as_str(); 2])
        .collect();
    json!({
        "agent": {
            "id": a.id,
            "name": a.name,
            "instructions": a.instructions,
            "temp": a.temp,
            "allowed_domains": a.allowed_domains.clone().unwrap_or_default().join("\n"),
            "initial_messages": a.initial_messages.join("\n"),
            "suggested_messages": suggested_lines(a.suggested_messages.as_ref()),
            "credit_limit": a.credit_limit.map(|c| c.to_string()).unwrap_or_default(),
            "ip_limit": a.ip_rate_limits.limit,
            "ip_timeframe": a.ip_rate_limits.timeframe_secs,
            "ip_message": a.ip_rate_limits.message,
            "escalation": a.actions.iter().any(|x| x.name == ESCALATION_ACTION),
        },
        "embed": embed_snippet(state, headers, &a.id),
        "models": models,
        "model": a.model,
        "visibilities": [["private", "Private (API only)"], ["public", "Public (widget)"]],
        "visibility": a.visibility.as_str(),
        "used": format!("{:.2}", state.app.credits().agent_used(a)),
    })
}

fn number<T: std::str::FromStr>(form: &Form, key: &str, label: &str) -> Result<Option<T>, Problem> {
    form.get(key)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| Problem::bad(format!("{label} must be a number.")))
        })
        .transpose()
}

fn patch_from(form: &Form) -> Result<AgentPatch, Problem> {
    let visibility = match form.get("visibility") {
        Some(v) => Some(
            Visibility::parse(v).ok_or_else(|| Problem::bad("Visibility is public or private."))?,
        ),
        None => None,
    };
    let domains = lines(form.raw("allowedDomains"));
    let suggested: Vec<Value> = lines(form.raw("suggestedMessages"))
        .into_iter()
        .enumerate()
        .map(|(i, text)| json!({"type": "single", "text": text, "order": i}))
        .collect();
    // A field on the form is set to what it holds, blank included (so a blank
    // name is refused rather than silently kept).
    let present = |key: &str| {
        form.0
            .iter()
            .any(|(k, _)| k == key)
            .then(|| form.raw(key).trim().to_owned())
    };
    Ok(AgentPatch {
        name: present("name"),
        instructions: present("instructions"),
        model: form.get("model").map(str::to_owned),
        temp: number::<f64>(form, "temp", "Temperature")?,
        visibility,
        allowed_domains: Some((!domains.is_empty()).then_some(domains)),
        suggested_messages: Some((!suggested.is_empty()).then_some(Value::Array(suggested))),
        initial_messages: Some(lines(form.raw("initialMessages"))),
        credit_limit: Some(number::<i64>(form, "creditLimit", "The credit limit")?),
        ip_rate_limits: Some(Some(IpRateLimitsPatch {
            limit: number::<u32>(form, "ipLimit", "The limit")?,
            timeframe_secs: number::<u32>(form, "ipTimeframe", "The timeframe")?,
            message: form.get("ipMessage").map(str::to_owned),
        })),
        ..AgentPatch::default()
    })
}

pub async fn update(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let result = async {
        let patch = patch_from(&p.form)?;
        let agents = state.app.agents();
        agents.update(&ws, &agent_id, patch).await?;
        // The form shows the escalation switch only when the action can be toggled.
        if p.form.get("escalationShown").is_some() {
            let on = p.form.get("escalation").is_some();
            agents.set_escalation(&ws, &agent_id, on).await?;
        }
        Ok("Settings saved.".to_owned())
    }
    .await;
    back(&format!("/dashboard/w/{ws}/agents/{agent_id}"), result)
}

pub async fn delete(
    State(state): State<AppState>,
    Path((ws, agent_id)): Path<(String, String)>,
    _p: Posted,
) -> Response {
    match state.app.knowledge().delete_agent(&ws, &agent_id).await {
        Ok(()) => back(
            &format!("/dashboard/w/{ws}/agents"),
            Ok("Agent deleted.".into()),
        ),
        Err(e) => back(
            &format!("/dashboard/w/{ws}/agents/{agent_id}"),
            Err(e.into()),
        ),
    }
}

pub async fn playground(
    State(state): State<AppState>,
    s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let nav = nav(&w, Some(&a), "playground");
    let page = json!({ "name": a.name });
    render_template(&s, "Playground", &nav, &notice(&q), "playground.html", page)
}

/// Streams a playground turn: the API's UI Message Stream, for the page's script.
pub async fn playground_chat(
    State(state): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Path((ws, agent_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    use agentbase_api_types::codes::{AUTH_CSRF_TOKEN_INVALID, RESOURCE_NOT_FOUND};
    let api = |code: &'static str| move |p: Problem| ApiError::new(p.status, code, p.message);
    let result = async {
        s.check_csrf(&headers, None)
            .map_err(api(AUTH_CSRF_TOKEN_INVALID))?;
        let w = (workspace(&state, &ws).await).map_err(api(RESOURCE_NOT_FOUND))?;
        let req: agentbase_api_types::ChatRequest = crate::extract::parse_json(&body)?;
        let input = ChatInput {
            agent_id,
            message: req.message,
            conversation_id: req.conversation_id,
            user_id: None,
            source: SOURCE_PLAYGROUND.into(),
        };
        let turn = state.app.conversations().chat(&w.principal, input).await?;
        Ok::<_, ApiError>(crate::sse::response(turn))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

pub async fn conversations(
    State(state): State<AppState>,
    s: Session,
    Path((ws, agent_id)): Path<(String, String)>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let (page, filter) = conversation_filter(&q)?;
    let (cursor, limit) = (page.cursor.as_ref(), page.limit);
    let found = (state.app).conversations().conversations(
        &w.principal,
        &a.id,
        &filter,
        cursor,
        limit,
        false,
    );
    let list = found.await?;
    let conversations: Vec<_> = list.items.iter().map(ConversationRow::of).collect();
    let older = next_cursor(&list, by_created).map(|cursor| filtered_query(&cursor, &q));
    let shown = |k| q.get(k).unwrap_or("");
    let page = json!({
        "filter": {"startDate": shown("startDate"), "endDate": shown("endDate"), "userId": shown("userId")},
        "total": list.total,
        "conversations": conversations,
        "older": older,
    });
    let (nav, notice) = (nav(&w, Some(&a), "conversations"), notice(&q));
    let template = "conversations.html";
    render_template(&s, "Conversations", &nav, &notice, template, page)
}

/// The conversations page's query: a page and a filter (dates, user).
fn conversation_filter(q: &QueryMap) -> Result<(PageQuery, ConversationFilter), Problem> {
    let mut details = std::collections::BTreeMap::new();
    let list = ListQuery::<{ PageQuery::MAX_LIMIT }>::read(q, &mut details);
    let ListQuery {
        page,
        created_from,
        created_to,
    } = list.check(details).map_err(Problem::from)?;
    let filter = ConversationFilter {
        created_from,
        created_to,
        user_id: q.get("userId").map(str::to_owned),
        ..Default::default()
    };
    Ok((page, filter))
}

/// The query of the next page: its cursor, and the filter kept.
fn filtered_query(cursor: &str, q: &QueryMap) -> String {
    let mut query = format!("cursor={}", url_value(cursor));
    for k in ["startDate", "endDate", "userId"] {
        if let Some(v) = q.get(k) {
            query.push_str(&format!("&{k}={}", url_value(v)));
        }
    }
    query
}

/// One row of the conversations table.
#[derive(serde::Serialize)]
struct ConversationRow {
    id: String,
    title: String,
    user: String,
    source: String,
    status: &'static str,
    started: String,
    updated: String,
}

impl ConversationRow {
    fn of(c: &agentbase_core::conversation::Conversation) -> Self {
        ConversationRow {
            id: c.id.clone(),
            title: c.title.clone().unwrap_or_else(|| c.id.clone()),
            user: c.user_id.clone().unwrap_or_else(|| "—".into()),
            source: c.source.clone(),
            status: c.status.as_str(),
            started: when(c.created_at),
            updated: when(c.updated_at),
        }
    }
}

/// A message as the conversation template shows it.
fn message_context(m: &Message) -> Value {
    let role = match m.role {
        MessageRole::User => "user",
        MessageRole::Assistant => "assistant",
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let parts: Vec<Value> = (m.parts.iter())
        .map(|part| match part {
            Part::Text { text } => json!({"kind": "text", "text": text}),
            Part::ToolCall {
                tool_name, input, ..
            } => json!({"kind": "call", "tool": tool_name, "json": pretty(input)}),
            Part::ToolResult {
                tool_name, output, ..
            } => json!({"kind": "result", "tool": tool_name, "json": pretty(output)}),
        })
        .collect();
    // A source whose URL is not http(s) is shown, never linked.
    let sources: Vec<Value> = (m.sources.iter())
        .map(|c| {
            json!({
                "title": c.title,
                "href": c.url.as_deref().and_then(html::safe_href),
                "url": c.url,
                "score": format!("{:.2}", c.score),
            })
        })
        .collect();
    json!({
        "id": m.id,
        "role": role,
        "at": when(m.created_at),
        "parts": parts,
        "sources": sources,
        "assistant": m.role == MessageRole::Assistant,
        "feedback": m.feedback.map_or("none", |f| f.as_str()),
        "credits": m.credits.to_string(),
        "finish": m.finish_reason,
    })
}

pub async fn thread(
    State(state): State<AppState>,
    s: Session,
    Path((ws, agent_id, conversation_id)): Path<(String, String, String)>,
    q: QueryMap,
) -> Result<Response, Problem> {
    let (w, a) = agent_page(&state, &ws, &agent_id).await?;
    let c = state
        .app
        .conversations()
        .conversation_of(&w.principal, &a.id, &conversation_id)
        .await?;
    let messages = state.app.conversations().all_messages(&c.id).await?;
    let page = json!({
        "conversation": {
            "id": c.id,
            "user": c.user_id.as_deref().unwrap_or("—"),
            "source": c.source,
            "status": c.status.as_str(),
            "started": when(c.created_at),
            "url": format!("{}/conversations/{}", agent_base(&ws, &a.id), url_value(&c.id)),
        },
        "after": messages.last().map_or(0, |m| m.seq),
        "messages": messages.iter().map(message_context).collect::<Vec<_>>(),
    });
    let (nav, notice) = (nav(&w, Some(&a), "conversations"), notice(&q));
    render_template(&s, "Conversation", &nav, &notice, "conversation.html", page)
}
