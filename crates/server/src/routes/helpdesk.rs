//! The v2 helpdesk operations (`/api/v2/agents/{agentId}/helpdesk/…`: ticket
//! statuses, teams, tickets, ticket messages) and agentbase's handoff routes on a
//! conversation (`take-over`, `hand-back`).

use std::collections::BTreeMap;

use agentbase_api_types as api;
use agentbase_core::helpdesk::{
    self, CATEGORIES, CHANNELS, MESSAGE_TYPES, PRIORITIES, TicketFilter, TicketSort,
};
use agentbase_core::time_fmt::parse_date_bound;
use agentbase_service::Principal;
use agentbase_service::helpdesk::ThreadQuery;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Extension, Json};

use crate::AppState;
use crate::dto::helpdesk::{
    created_message_dto, new_ticket, status_dto, team_dto, thread_page_dto, ticket_dto,
    ticket_list_dto, ticket_patch, ticket_search_dto,
};
use crate::error::ApiError;
use crate::extract::{AppJson, OwnAgent, QueryMap, TicketRef};

/// A comma-separated list whose every item is one of `allowed`.
fn list_param(
    q: &QueryMap,
    key: &str,
    allowed: &[&str],
    details: &mut BTreeMap<String, String>,
) -> Vec<String> {
    let Some(v) = q.get(key) else {
        return Vec::new();
    };
    let items: Vec<String> = v.split(',').map(|s| s.trim().to_owned()).collect();
    if items.iter().any(|i| !allowed.contains(&i.as_str())) {
        details.insert(
            key.into(),
            format!("must be a comma-separated list of {}", allowed.join(", ")),
        );
    }
    items
}

/// `"none"` (`Some(None)`) or a UUID.
fn none_or_uuid(
    q: &QueryMap,
    key: &str,
    details: &mut BTreeMap<String, String>,
) -> Option<Option<String>> {
    match q.get(key)? {
        "none" => Some(None),
        v if helpdesk::is_uuid(v) => Some(Some(v.to_owned())),
        _ => {
            details.insert(key.into(), "must be \"none\" or a UUID".into());
            None
        }
    }
}

fn limit_param(
    q: &QueryMap,
    max: u32,
    default: u32,
    details: &mut BTreeMap<String, String>,
) -> u32 {
    match q.get("limit") {
        None => default,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                details.insert(
                    "limit".into(),
                    format!("must be an integer from 1 to {max}"),
                );
                default
            }
        },
    }
}

fn order_param(q: &QueryMap, default_asc: bool, details: &mut BTreeMap<String, String>) -> bool {
    match q.get("order") {
        None => default_asc,
        Some("asc") => true,
        Some("desc") => false,
        Some(_) => {
            details.insert("order".into(), "must be asc or desc".into());
            default_asc
        }
    }
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/helpdesk/ticket-statuses", tag = "helpdesk",
    params(("agentId" = String, Path)),
    responses((status = 200, body = Vec<api::TicketStatus>), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn statuses(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<Vec<api::TicketStatus>>, ApiError> {
    let list = state
        .app
        .helpdesk()
        .ticket_statuses(&p.workspace_id, &agent_id)
        .await?;
    Ok(Json(list.into_iter().map(status_dto).collect()))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/helpdesk/teams", tag = "helpdesk",
    params(("agentId" = String, Path)),
    responses((status = 200, body = Vec<api::TeamListItem>), (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn teams(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<Vec<api::TeamListItem>>, ApiError> {
    let list = state
        .app
        .helpdesk()
        .helpdesk_teams(&p.workspace_id, &agent_id)
        .await?;
    Ok(Json(list.into_iter().map(team_dto).collect()))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/helpdesk/tickets", tag = "helpdesk",
    request_body = api::CreateTicketBody, params(("agentId" = String, Path)),
    responses((status = 201, body = api::Ticket), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 422, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    OwnAgent(agent_id): OwnAgent,
    AppJson(b): AppJson<api::CreateTicketBody>,
) -> Result<(StatusCode, Json<api::Ticket>), ApiError> {
    let t = state
        .app
        .helpdesk()
        .create_ticket(&p.workspace_id, &agent_id, new_ticket(b))
        .await?;
    Ok((StatusCode::CREATED, Json(ticket_dto(t))))
}

/// The ticket list's query: filters, sort and order, whether to count the total,
/// the cursor and the page size; every bad parameter is reported at once.
pub struct TicketListQuery {
    filter: TicketFilter,
    include_total: bool,
    cursor: Option<String>,
    limit: u32,
}

impl<S: Send + Sync> FromRequestParts<S> for TicketListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let mut d = BTreeMap::new();
        let mut f = TicketFilter {
            statuses: list_param(&q, "status", CATEGORIES, &mut d),
            channels: list_param(&q, "channel", CHANNELS, &mut d),
            priorities: list_param(&q, "priority", PRIORITIES, &mut d),
            assignee_id: none_or_uuid(&q, "assigneeId", &mut d),
            team_id: none_or_uuid(&q, "teamId", &mut d),
            ascending: order_param(&q, false, &mut d),
            ..TicketFilter::default()
        };
        (f.created_after, f.created_before) = created_window(&q, &mut d);
        if let Some(s) = q.get("sortBy") {
            match TicketSort::parse(s) {
                Some(s) => f.sort = s,
                None => {
                    d.insert(
                        "sortBy".into(),
                        "must be createdAt, updatedAt or lastMessageAt".into(),
                    );
                }
            }
        }
        let include_total = match q.get("includeTotal") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                d.insert("includeTotal".into(), "must be true or false".into());
                false
            }
        };
        let limit = limit_param(&q, 100, 20, &mut d);
        if !d.is_empty() {
            return Err(ApiError::invalid_body(d));
        }
        Ok(TicketListQuery {
            filter: f,
            include_total,
            cursor: q.get("cursor").map(str::to_owned),
            limit,
        })
    }
}

/// `createdAfter` and `createdBefore`, each an ISO 8601 date-time.
fn created_window(q: &QueryMap, d: &mut BTreeMap<String, String>) -> (Option<i64>, Option<i64>) {
    let mut bound = |key: &str, end: bool| {
        let v = q.get(key)?;
        let parsed = parse_date_bound(v, end);
        if parsed.is_none() {
            d.insert(key.into(), "must be an ISO 8601 date-time".into());
        }
        parsed
    };
    (bound("createdAfter", false), bound("createdBefore", true))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/helpdesk/tickets", tag = "helpdesk",
    params(("agentId" = String, Path),
           ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
           ("status" = Option<String>, Query, description = "comma-separated status categories"),
           ("channel" = Option<String>, Query), ("assigneeId" = Option<String>, Query, description = "\"none\" or a UUID"),
           ("teamId" = Option<String>, Query, description = "\"none\" or a UUID"),
           ("priority" = Option<String>, Query), ("createdAfter" = Option<String>, Query),
           ("createdBefore" = Option<String>, Query),
           ("sortBy" = Option<String>, Query, description = "createdAt, updatedAt (default) or lastMessageAt"),
           ("order" = Option<String>, Query, description = "asc or desc (default)"),
           ("includeTotal" = Option<String>, Query, description = "\"true\" adds pagination.total")),
    responses((status = 200, body = api::ListTicketsResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    OwnAgent(agent_id): OwnAgent,
    q: TicketListQuery,
) -> Result<Json<api::ListTicketsResponse>, ApiError> {
    let page = state
        .app
        .helpdesk()
        .tickets(
            &p.workspace_id,
            &agent_id,
            &q.filter,
            q.cursor.as_deref(),
            q.limit,
        )
        .await?;
    Ok(Json(ticket_list_dto(page, &q.filter, q.include_total)))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/helpdesk/tickets/search", tag = "helpdesk",
    request_body = api::SearchTicketsBody, params(("agentId" = String, Path)),
    responses((status = 200, body = api::SearchTicketsResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    OwnAgent(agent_id): OwnAgent,
    AppJson(b): AppJson<api::SearchTicketsBody>,
) -> Result<Json<api::SearchTicketsResponse>, ApiError> {
    check_ticket_search(&b)?;
    let limit = b.limit.unwrap_or(20) as usize;
    let found = (state.app.helpdesk())
        .search_tickets(&p.workspace_id, &agent_id, &b.query, limit)
        .await?;
    Ok(Json(ticket_search_dto(found)))
}

/// A ticket search wants 1 to `SEARCH_QUERY_MAX` characters and at most 50 results.
fn check_ticket_search(b: &api::SearchTicketsBody) -> Result<(), ApiError> {
    let mut d = BTreeMap::new();
    let n = b.query.chars().count();
    if b.query.trim().is_empty() || n > helpdesk::SEARCH_QUERY_MAX {
        d.insert(
            "query".into(),
            format!("must be 1 to {} characters", helpdesk::SEARCH_QUERY_MAX),
        );
    }
    if b.limit.is_some_and(|l| !(1..=50).contains(&l)) {
        d.insert("limit".into(), "must be an integer from 1 to 50".into());
    }
    if d.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_body(d))
    }
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/helpdesk/tickets/{ticketNumber}", tag = "helpdesk",
    params(("agentId" = String, Path), ("ticketNumber" = i64, Path)),
    responses((status = 200, body = api::Ticket), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    t: TicketRef,
) -> Result<Json<api::Ticket>, ApiError> {
    let t = state
        .app
        .helpdesk()
        .ticket(&p.workspace_id, &t.agent_id, t.number)
        .await?;
    Ok(Json(ticket_dto(t)))
}

#[utoipa::path(patch, path = "/api/v2/agents/{agentId}/helpdesk/tickets/{ticketNumber}", tag = "helpdesk",
    request_body = api::UpdateTicketBody,
    params(("agentId" = String, Path), ("ticketNumber" = i64, Path)),
    responses((status = 200, body = api::Ticket), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 422, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    t: TicketRef,
    AppJson(b): AppJson<api::UpdateTicketBody>,
) -> Result<Json<api::Ticket>, ApiError> {
    let t = state
        .app
        .helpdesk()
        .update_ticket(&p.workspace_id, &t.agent_id, t.number, ticket_patch(b))
        .await?;
    Ok(Json(ticket_dto(t)))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/helpdesk/tickets/{ticketNumber}/messages", tag = "helpdesk",
    params(("agentId" = String, Path), ("ticketNumber" = i64, Path),
           ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
           ("types" = Option<String>, Query, description = "comma-separated reply, note, event; default reply,note"),
           ("order" = Option<String>, Query, description = "asc (default) or desc")),
    responses((status = 200, body = api::ListTicketMessagesResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn messages(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    t: TicketRef,
    ThreadParams(query): ThreadParams,
) -> Result<Json<api::ListTicketMessagesResponse>, ApiError> {
    let page = state
        .app
        .helpdesk()
        .ticket_messages(&p.workspace_id, &t.agent_id, t.number, &query)
        .await?;
    Ok(Json(thread_page_dto(page, query.ascending)))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/helpdesk/tickets/{ticketNumber}/messages", tag = "helpdesk",
    request_body = api::CreateTicketMessageBody,
    params(("agentId" = String, Path), ("ticketNumber" = i64, Path)),
    responses((status = 201, body = api::CreatedTicketMessage), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 409, body = api::ErrorResponse),
              (status = 422, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn reply(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    t: TicketRef,
    AppJson(b): AppJson<api::CreateTicketMessageBody>,
) -> Result<(StatusCode, Json<api::CreatedTicketMessage>), ApiError> {
    let author = (b.author_id.as_deref(), b.author_email.as_deref());
    let problems = helpdesk::reply_problems(&b.kind, &b.content, author.0, author.1);
    if !problems.is_empty() {
        return Err(ApiError::invalid_body(problems));
    }
    let (agent_id, n) = (&t.agent_id, t.number);
    let reply =
        (state.app.helpdesk()).member_reply(&p.workspace_id, agent_id, n, &b.content, author);
    let m = reply.await?;
    Ok((StatusCode::CREATED, Json(created_message_dto(m))))
}

/// A thread listing's query: message types (replies and notes by default), order
/// (oldest first by default), cursor and page size.
pub struct ThreadParams(ThreadQuery);

impl<S: Send + Sync> FromRequestParts<S> for ThreadParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let mut d = BTreeMap::new();
        let mut kinds = list_param(&q, "types", MESSAGE_TYPES, &mut d);
        if kinds.is_empty() {
            kinds = vec!["reply".into(), "note".into()];
        }
        let ascending = order_param(&q, true, &mut d);
        let limit = limit_param(&q, 100, 20, &mut d);
        if !d.is_empty() {
            return Err(ApiError::invalid_body(d));
        }
        Ok(ThreadParams(ThreadQuery {
            kinds,
            cursor: q.get("cursor").map(str::to_owned),
            ascending,
            limit,
        }))
    }
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/conversations/{conversationId}/take-over", tag = "helpdesk",
    params(("agentId" = String, Path), ("conversationId" = String, Path)),
    responses((status = 200, body = api::TakeOverResponse), (status = 404, body = api::ErrorResponse),
              (status = 409, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn take_over(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
) -> Result<Json<api::TakeOverResponse>, ApiError> {
    let t = state
        .app
        .helpdesk()
        .take_over_conversation(&p, &agent_id, &conversation_id)
        .await?;
    Ok(Json(api::TakeOverResponse {
        data: api::TakeOverData {
            id: t.conversation_id.clone().unwrap_or(conversation_id),
            status: "taken_over".into(),
            ticket: ticket_dto(t),
        },
    }))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/conversations/{conversationId}/hand-back", tag = "helpdesk",
    params(("agentId" = String, Path), ("conversationId" = String, Path)),
    responses((status = 200, body = api::UpdateConversationResponse), (status = 404, body = api::ErrorResponse),
              (status = 409, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn hand_back(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
) -> Result<Json<api::UpdateConversationResponse>, ApiError> {
    let c = state
        .app
        .helpdesk()
        .hand_back_status(&p, &agent_id, &conversation_id)
        .await?;
    Ok(Json(api::UpdateConversationResponse {
        data: api::ConversationStatus {
            id: c.id,
            status: c.status.as_str().to_owned(),
        },
    }))
}
