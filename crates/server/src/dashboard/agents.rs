//! Agents: list and create, settings, the playground, and conversations.

use agentbase_core::agent::{ESCALATION_ACTION, IpRateLimitsPatch};
use agentbase_core::conversation::{Conversation, Message, MessageRole, Part};
use agentbase_core::{Agent, AgentPatch, Cursor, NewAgent, Visibility};
use agentbase_service::ConversationFilter;
use agentbase_service::chat::ChatInput;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::auth::{Form, Posted, Session};
use super::html::{self, Notice, esc, url_value, when};
use super::page::{AgentPage, WsPage};
use super::{Problem, Ws, back, lines, redirect};
use crate::AppState;
use crate::dto::conversations::{by_created, next_cursor};
use crate::error::ApiError;
use crate::extract::{ListQuery, PageQuery, QueryMap};

/// The conversation source the playground records (a Chatbase source label).
pub const SOURCE_PLAYGROUND: &str = "Playground";

fn agent_base(ws: &str, agent: &str) -> String {
    format!("/dashboard/w/{}/agents/{}", esc(ws), esc(agent))
}

/// Agents on a page of the list.
const PAGE_AGENTS: u32 = 50;

pub async fn list(
    State(state): State<AppState>,
    page: WsPage,
    CursorQuery(cursor): CursorQuery,
    notice: Notice,
) -> Result<Response, Problem> {
    let list = (state.app.agents())
        .list(page.ws(), cursor.as_ref(), PAGE_AGENTS)
        .await?;
    let context = AgentsContext::of(page.ws(), &list);
    page.render("Agents", "agents", &notice, "agents.html", context)
}

/// A list page's `cursor` (an unreadable one is the first page).
pub struct CursorQuery(Option<Cursor>);

impl<S: Send + Sync> FromRequestParts<S> for CursorQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let q = QueryMap::from_request_parts(parts, state).await?;
        Ok(CursorQuery(q.get("cursor").and_then(Cursor::decode)))
    }
}

/// What the agents template shows.
#[derive(Serialize)]
struct AgentsContext<'a> {
    agents: Vec<AgentRow<'a>>,
    next: Option<String>,
    ws: &'a str,
}

#[derive(Serialize)]
struct AgentRow<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    visibility: &'static str,
}

impl<'a> AgentsContext<'a> {
    fn of(ws: &'a str, list: &'a agentbase_service::Page<Agent>) -> Self {
        let agents = (list.items.iter())
            .map(|a| AgentRow {
                id: &a.id,
                name: &a.name,
                status: a.status.as_str(),
                visibility: a.visibility.as_str(),
            })
            .collect();
        let next = next_cursor(list, |a| Cursor {
            t: a.created_at,
            id: a.id.clone(),
        });
        AgentsContext { agents, next, ws }
    }
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
    page: AgentPage,
    headers: HeaderMap,
    notice: Notice,
) -> Result<Response, Problem> {
    let used = state.app.credits().agent_used(&page.agent);
    let context = settings_context(&state, &headers, &page.agent, used);
    page.render(
        &page.agent.name,
        "settings",
        &notice,
        "settings.html",
        context,
    )
}

/// What the settings template shows of an agent (`used`: its credits this month).
fn settings_context<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    a: &'a Agent,
    used: f64,
) -> SettingsContext<'a> {
    SettingsContext {
        agent: AgentSettings {
            id: &a.id,
            name: &a.name,
            instructions: &a.instructions,
            temp: a.temp,
            allowed_domains: a.allowed_domains.clone().unwrap_or_default().join("\n"),
            initial_messages: a.initial_messages.join("\n"),
            suggested_messages: suggested_lines(a.suggested_messages.as_ref()),
            credit_limit: a.credit_limit.map(|c| c.to_string()).unwrap_or_default(),
            ip_limit: a.ip_rate_limits.limit,
            ip_timeframe: a.ip_rate_limits.timeframe_secs,
            ip_message: &a.ip_rate_limits.message,
            escalation: a.actions.iter().any(|x| x.name == ESCALATION_ACTION),
        },
        embed: embed_snippet(state, headers, &a.id),
        models: (state.app.settings().models.keys())
            .map(|m| [m.as_str(); 2])
            .collect(),
        model: &a.model,
        visibilities: [
            ["private", "Private (API only)"],
            ["public", "Public (widget)"],
        ],
        visibility: a.visibility.as_str(),
        used: format!("{used:.2}"),
    }
}

/// What the settings template shows.
#[derive(Serialize)]
struct SettingsContext<'a> {
    agent: AgentSettings<'a>,
    embed: String,
    models: Vec<[&'a str; 2]>,
    model: &'a str,
    visibilities: [[&'static str; 2]; 2],
    visibility: &'static str,
    used: String,
}

/// An agent's settings as the form shows them (lists a line per entry).
#[derive(Serialize)]
struct AgentSettings<'a> {
    id: &'a str,
    name: &'a str,
    instructions: &'a str,
    temp: f64,
    allowed_domains: String,
    initial_messages: String,
    suggested_messages: String,
    credit_limit: String,
    ip_limit: u32,
    ip_timeframe: u32,
    ip_message: &'a str,
    escalation: bool,
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
        // The form shows the escalation switch only when the action can be toggled.
        let shown = p.form.get("escalationShown").is_some();
        let escalation = shown.then(|| p.form.get("escalation").is_some());
        (state.app.agents())
            .update_with_escalation(&ws, &agent_id, patch, escalation)
            .await?;
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

pub async fn playground(page: AgentPage, notice: Notice) -> Result<Response, Problem> {
    let context = PlaygroundContext {
        name: &page.agent.name,
    };
    page.render(
        "Playground",
        "playground",
        &notice,
        "playground.html",
        context,
    )
}

/// What the playground template shows.
#[derive(Serialize)]
struct PlaygroundContext<'a> {
    name: &'a str,
}

/// Streams a playground turn: the API's UI Message Stream, for the page's script.
pub async fn playground_chat(
    State(state): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Path((_, agent_id)): Path<(String, String)>,
    w: Result<Ws, Problem>,
    body: Bytes,
) -> Response {
    use agentbase_api_types::codes::{AUTH_CSRF_TOKEN_INVALID, RESOURCE_NOT_FOUND};
    let api = |code: &'static str| move |p: Problem| ApiError::new(p.status, code, p.message);
    let result = async {
        s.check_csrf(&headers, None)
            .map_err(api(AUTH_CSRF_TOKEN_INVALID))?;
        let w = w.map_err(api(RESOURCE_NOT_FOUND))?;
        let input = playground_input(agent_id, &body)?;
        let turn = state.app.conversations().chat(&w.principal, input).await?;
        Ok::<_, ApiError>(crate::sse::response(turn))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A playground turn's input: the API's chat body, recorded as a playground turn.
fn playground_input(agent_id: String, body: &[u8]) -> Result<ChatInput, ApiError> {
    let req: agentbase_api_types::ChatRequest = crate::extract::parse_json(body)?;
    Ok(ChatInput {
        agent_id,
        message: req.message,
        conversation_id: req.conversation_id,
        user_id: None,
        source: SOURCE_PLAYGROUND.into(),
    })
}

pub async fn conversations(
    State(state): State<AppState>,
    page: AgentPage,
    q: Result<ConversationsQuery, Problem>,
    notice: Notice,
) -> Result<Response, Problem> {
    let q = q?;
    let (cursor, limit) = (q.page.cursor.as_ref(), q.page.limit);
    let list = (state.app.conversations())
        .conversations(
            &page.w.principal,
            &page.agent.id,
            &q.filter,
            cursor,
            limit,
            false,
        )
        .await?;
    let context = ConversationsContext::of(&q, &list);
    let template = "conversations.html";
    page.render("Conversations", "conversations", &notice, template, context)
}

/// The conversations page's query: a page and a filter (dates, user).
pub struct ConversationsQuery {
    page: PageQuery,
    filter: ConversationFilter,
    q: QueryMap,
}

impl<S: Send + Sync> FromRequestParts<S> for ConversationsQuery {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let mut details = std::collections::BTreeMap::new();
        let list = ListQuery::<{ PageQuery::MAX_LIMIT }>::read(&q, &mut details);
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
        Ok(ConversationsQuery { page, filter, q })
    }
}

/// What the conversations template shows.
#[derive(Serialize)]
struct ConversationsContext<'a> {
    conversations: Vec<ConversationRow>,
    filter: ConversationsFilterShown<'a>,
    older: Option<String>,
    total: i64,
}

/// The filter as the page's form shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConversationsFilterShown<'a> {
    end_date: &'a str,
    start_date: &'a str,
    user_id: &'a str,
}

impl<'a> ConversationsContext<'a> {
    fn of(q: &'a ConversationsQuery, list: &agentbase_service::Page<Conversation>) -> Self {
        let shown = |k| q.q.get(k).unwrap_or("");
        ConversationsContext {
            conversations: list.items.iter().map(ConversationRow::of).collect(),
            filter: ConversationsFilterShown {
                end_date: shown("endDate"),
                start_date: shown("startDate"),
                user_id: shown("userId"),
            },
            older: next_cursor(list, by_created).map(|cursor| filtered_query(&cursor, &q.q)),
            total: list.total,
        }
    }
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
#[derive(Serialize)]
struct MessageContext<'a> {
    id: &'a str,
    role: &'static str,
    at: String,
    parts: Vec<PartContext<'a>>,
    sources: Vec<SourceContext<'a>>,
    assistant: bool,
    feedback: &'static str,
    credits: String,
    finish: Option<&'a str>,
}

/// A message's part: text, a tool call or a tool result (`json`: its input or
/// output, pretty-printed).
#[derive(Serialize)]
struct PartContext<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<String>,
}

/// A source an answer cites; one whose URL is not http(s) is shown, never linked.
#[derive(Serialize)]
struct SourceContext<'a> {
    title: &'a str,
    href: Option<&'a str>,
    url: Option<&'a str>,
    score: String,
}

impl<'a> PartContext<'a> {
    fn of(part: &'a Part) -> Self {
        let pretty = |v: &Value| Some(serde_json::to_string_pretty(v).unwrap_or_default());
        let (kind, text, tool, json) = match part {
            Part::Text { text } => ("text", Some(text.as_str()), None, None),
            Part::ToolCall {
                tool_name, input, ..
            } => ("call", None, Some(tool_name.as_str()), pretty(input)),
            Part::ToolResult {
                tool_name, output, ..
            } => ("result", None, Some(tool_name.as_str()), pretty(output)),
        };
        PartContext {
            kind,
            text,
            tool,
            json,
        }
    }
}

impl<'a> MessageContext<'a> {
    fn of(m: &'a Message) -> Self {
        let sources = (m.sources.iter())
            .map(|c| SourceContext {
                title: &c.title,
                href: c.url.as_deref().and_then(html::safe_href),
                url: c.url.as_deref(),
                score: format!("{:.2}", c.score),
            })
            .collect();
        MessageContext {
            id: &m.id,
            role: match m.role {
                MessageRole::User => "user",
                MessageRole::Assistant => "assistant",
            },
            at: when(m.created_at),
            parts: m.parts.iter().map(PartContext::of).collect(),
            sources,
            assistant: m.role == MessageRole::Assistant,
            feedback: m.feedback.map_or("none", |f| f.as_str()),
            credits: m.credits.to_string(),
            finish: m.finish_reason.as_deref(),
        }
    }
}

pub async fn thread(
    State(state): State<AppState>,
    page: AgentPage,
    Path((_, _, conversation_id)): Path<(String, String, String)>,
    notice: Notice,
) -> Result<Response, Problem> {
    let (c, messages) = (state.app.conversations())
        .thread(&page.w.principal, &page.agent.id, &conversation_id)
        .await?;
    let url = format!(
        "{}/conversations/{}",
        agent_base(page.ws(), &page.agent.id),
        url_value(&c.id)
    );
    let context = thread_context(&c, &messages, url);
    page.render(
        "Conversation",
        "conversations",
        &notice,
        "conversation.html",
        context,
    )
}

/// What the conversation template shows: the conversation (`url`: its page) and
/// its messages.
#[derive(Serialize)]
struct ThreadContext<'a> {
    conversation: ConversationContext<'a>,
    after: i64,
    messages: Vec<MessageContext<'a>>,
}

#[derive(Serialize)]
struct ConversationContext<'a> {
    id: &'a str,
    user: &'a str,
    source: &'a str,
    status: &'static str,
    started: String,
    url: String,
}

fn thread_context<'a>(
    c: &'a Conversation,
    messages: &'a [Message],
    url: String,
) -> ThreadContext<'a> {
    ThreadContext {
        conversation: ConversationContext {
            id: &c.id,
            user: c.user_id.as_deref().unwrap_or("—"),
            source: &c.source,
            status: c.status.as_str(),
            started: when(c.created_at),
            url,
        },
        after: messages.last().map_or(0, |m| m.seq),
        messages: messages.iter().map(MessageContext::of).collect(),
    }
}
