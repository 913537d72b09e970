//! The v2 helpdesk operations (`/api/v2/agents/{agentId}/helpdesk/…`: ticket
//! statuses, teams, tickets, ticket messages) and agentbase's handoff routes on a
//! conversation (`take-over`, `hand-back`).

use std::collections::BTreeMap;

use agentbase_api_types as api;
use agentbase_core::helpdesk::{
    self, CATEGORIES, CHANNELS, MESSAGE_TYPES, NewTicketInput, PRIORITIES, TicketFilter,
    TicketPatch, TicketSort,
};
use agentbase_core::time_fmt::parse_date_bound;
use agentbase_service::Principal;
use agentbase_service::helpdesk::{Helpdesk, ThreadQuery};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use crate::AppState;
use crate::dto::helpdesk::{created_message_dto, list_item_dto, thread_dto, ticket_dto};
use crate::error::ApiError;
use crate::extract::{AppJson, QueryMap};

/// The path's ticket number: an integer from 1 to 2^31 − 1. The agent is
/// checked first, so another workspace's agent is "not found" whatever the number.
async fn ticket_number(
    state: &AppState,
    p: &Principal,
    agent_id: &str,
    raw: &str,
) -> Result<i64, ApiError> {
    state.app.agents().get(&p.workspace_id, agent_id).await?;
    match raw.parse::<i64>() {
        Ok(n) if (1..=2_147_483_647).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_field(
            "ticketNumber",
            "must be an integer from 1 to 2147483647",
        )),
    }
}

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
    Ok(Json(
        list.into_iter()
            .map(|s| api::TicketStatus {
                id: s.id,
                category: s.category,
                external_label: s.external_label,
                internal_label: s.internal_label,
                color: s.color,
                is_default: s.is_default,
                position: s.position,
            })
            .collect(),
    ))
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
    Ok(Json(
        list.into_iter()
            .map(|t| api::TeamListItem {
                id: t.id,
                name: t.name,
                is_default: t.is_default,
                member_count: t.member_count,
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/helpdesk/tickets", tag = "helpdesk",
    request_body = api::CreateTicketBody, params(("agentId" = String, Path)),
    responses((status = 201, body = api::Ticket), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 422, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    body: Result<AppJson<api::CreateTicketBody>, ApiError>,
) -> Result<(StatusCode, Json<api::Ticket>), ApiError> {
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    let AppJson(b) = body?;
    let customer = b.customer.unwrap_or_default();
    let input = NewTicketInput {
        subject: b.subject,
        description: b.description,
        customer_email: customer.email,
        customer_name: customer.name,
        status_id: b.status_id,
        status_category: b.status_category,
        assignee_id: b.assignee_id,
        assignee_email: b.assignee_email,
        team_id: b.team_id,
        priority: b.priority,
    };
    let t = state
        .app
        .helpdesk()
        .create_ticket(&p.workspace_id, &agent_id, input)
        .await?;
    Ok((StatusCode::CREATED, Json(ticket_dto(t))))
}

/// The ticket list's query: filters, sort and order, whether to count the total,
/// and the page size; every bad parameter is reported at once.
struct TicketListQuery {
    filter: TicketFilter,
    include_total: bool,
    limit: u32,
}

impl TicketListQuery {
    fn read(q: &QueryMap) -> Result<Self, ApiError> {
        let mut d = BTreeMap::new();
        let mut f = TicketFilter {
            statuses: list_param(q, "status", CATEGORIES, &mut d),
            channels: list_param(q, "channel", CHANNELS, &mut d),
            priorities: list_param(q, "priority", PRIORITIES, &mut d),
            assignee_id: none_or_uuid(q, "assigneeId", &mut d),
            team_id: none_or_uuid(q, "teamId", &mut d),
            ascending: order_param(q, false, &mut d),
            ..TicketFilter::default()
        };
        for (key, slot) in [
            ("createdAfter", &mut f.created_after),
            ("createdBefore", &mut f.created_before),
        ] {
            if let Some(v) = q.get(key) {
                match parse_date_bound(v, key == "createdBefore") {
                    Some(t) => *slot = Some(t),
                    None => {
                        d.insert(key.into(), "must be an ISO 8601 date-time".into());
                    }
                }
            }
        }
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
        let limit = limit_param(q, 100, 20, &mut d);
        if !d.is_empty() {
            return Err(ApiError::invalid_body(d));
        }
        Ok(TicketListQuery {
            filter: f,
            include_total,
            limit,
        })
    }
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
    Path(agent_id): Path<String>,
    q: QueryMap,
) -> Result<Json<api::ListTicketsResponse>, ApiError> {
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    let TicketListQuery {
        filter: f,
        include_total,
        limit,
    } = TicketListQuery::read(&q)?;
    let page = state
        .app
        .helpdesk()
        .tickets(&p.workspace_id, &agent_id, &f, q.get("cursor"), limit)
        .await?;
    let cursor = if page.has_more {
        page.items.last().map(|t| Helpdesk::ticket_cursor(&f, t))
    } else {
        None
    };
    Ok(Json(api::ListTicketsResponse {
        pagination: api::TicketPagination {
            has_more: cursor.is_some(),
            cursor,
            total: include_total.then_some(page.total),
        },
        data: page.items.into_iter().map(list_item_dto).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v2/agents/{agentId}/helpdesk/tickets/search", tag = "helpdesk",
    request_body = api::SearchTicketsBody, params(("agentId" = String, Path)),
    responses((status = 200, body = api::SearchTicketsResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    body: Result<AppJson<api::SearchTicketsBody>, ApiError>,
) -> Result<Json<api::SearchTicketsResponse>, ApiError> {
    state.app.agents().get(&p.workspace_id, &agent_id).await?;
    let AppJson(b) = body?;
    check_ticket_search(&b)?;
    let (found, has_more) = state
        .app
        .helpdesk()
        .search_tickets(
            &p.workspace_id,
            &agent_id,
            &b.query,
            b.limit.unwrap_or(20) as usize,
        )
        .await?;
    Ok(Json(api::SearchTicketsResponse {
        data: found.into_iter().map(list_item_dto).collect(),
        pagination: api::TicketSearchPagination {
            cursor: None,
            has_more,
        },
    }))
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
    Path((agent_id, number)): Path<(String, String)>,
) -> Result<Json<api::Ticket>, ApiError> {
    let n = ticket_number(&state, &p, &agent_id, &number).await?;
    let t = state
        .app
        .helpdesk()
        .ticket(&p.workspace_id, &agent_id, n)
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
    Path((agent_id, number)): Path<(String, String)>,
    body: Result<AppJson<api::UpdateTicketBody>, ApiError>,
) -> Result<Json<api::Ticket>, ApiError> {
    let n = ticket_number(&state, &p, &agent_id, &number).await?;
    let AppJson(b) = body?;
    let patch = TicketPatch {
        status_id: b.status_id,
        status_category: b.status_category,
        assignee_id: b.assignee_id,
        assignee_email: b.assignee_email,
        team_id: b.team_id,
        priority: b.priority,
    };
    let t = state
        .app
        .helpdesk()
        .update_ticket(&p.workspace_id, &agent_id, n, patch)
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
    Path((agent_id, number)): Path<(String, String)>,
    q: QueryMap,
) -> Result<Json<api::ListTicketMessagesResponse>, ApiError> {
    let n = ticket_number(&state, &p, &agent_id, &number).await?;
    let query = thread_query(&q)?;
    let ascending = query.ascending;
    let page = state
        .app
        .helpdesk()
        .ticket_messages(&p.workspace_id, &agent_id, n, &query)
        .await?;
    let cursor = if page.has_more {
        page.items
            .last()
            .map(|m| Helpdesk::ticket_message_cursor(m, ascending))
    } else {
        None
    };
    Ok(Json(api::ListTicketMessagesResponse {
        pagination: api::Pagination {
            has_more: cursor.is_some(),
            cursor,
            total: page.total,
        },
        data: page.items.into_iter().map(thread_dto).collect(),
    }))
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
    Path((agent_id, number)): Path<(String, String)>,
    body: Result<AppJson<api::CreateTicketMessageBody>, ApiError>,
) -> Result<(StatusCode, Json<api::CreatedTicketMessage>), ApiError> {
    let n = ticket_number(&state, &p, &agent_id, &number).await?;
    let AppJson(b) = body?;
    let author = (b.author_id.as_deref(), b.author_email.as_deref());
    let problems = helpdesk::reply_problems(&b.kind, &b.content, author.0, author.1);
    if !problems.is_empty() {
        return Err(ApiError::invalid_body(problems));
    }
    let reply =
        (state.app)
            .helpdesk()
            .member_reply(&p.workspace_id, &agent_id, n, &b.content, author);
    let m = reply.await?;
    Ok((StatusCode::CREATED, Json(created_message_dto(m))))
}

/// A thread listing's query: message types (replies and notes by default), order
/// (oldest first by default), cursor and page size.
fn thread_query(q: &QueryMap) -> Result<ThreadQuery, ApiError> {
    let mut d = BTreeMap::new();
    let mut kinds = list_param(q, "types", MESSAGE_TYPES, &mut d);
    if kinds.is_empty() {
        kinds = vec!["reply".into(), "note".into()];
    }
    let ascending = order_param(q, true, &mut d);
    let limit = limit_param(q, 100, 20, &mut d);
    if !d.is_empty() {
        return Err(ApiError::invalid_body(d));
    }
    Ok(ThreadQuery {
        kinds,
        cursor: q.get("cursor").map(str::to_owned),
        ascending,
        limit,
    })
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
    state
        .app
        .helpdesk()
        .hand_back(&p, &agent_id, &conversation_id)
        .await?;
    let c = state
        .app
        .conversations()
        .conversation_of(&p, &agent_id, &conversation_id)
        .await?;
    Ok(Json(api::UpdateConversationResponse {
        data: api::ConversationStatus {
            id: c.id,
            status: c.status.as_str().to_owned(),
        },
    }))
}
