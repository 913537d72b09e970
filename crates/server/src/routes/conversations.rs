//! The conversation surface: lists, one conversation, its messages (backward
//! pages, each in chronological order), a user's conversations, pausing, feedback
//! and export.

use std::collections::BTreeMap;

use agentbase_api_types as api;
use agentbase_service::ConversationFilter;
use agentbase_service::Principal;
use agentbase_service::chat::valid_user_id;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::{Extension, Json};

use crate::AppState;
use crate::dto::conversations::{
    by_activity, by_created, conversation_with_messages, export_dto, feedback_of, list_dto,
    message_dto, message_list, search_dto,
};
use crate::error::ApiError;
use crate::extract::{
    AppJson, ListQuery, OwnConversation, PageQuery, QueryMap, dates, window_order,
};

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/conversations", tag = "conversations",
    params(("agentId" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query),
           ("startDate" = Option<String>, Query), ("endDate" = Option<String>, Query)),
    responses((status = 200, body = api::ListConversationsResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    CreatedList { page, filter }: CreatedList,
) -> Result<Json<api::ListConversationsResponse>, ApiError> {
    let (cursor, limit) = (page.cursor.as_ref(), page.limit);
    let result = (state.app.conversations())
        .conversations(&p, &agent_id, &filter, cursor, limit, false)
        .await?;
    Ok(Json(list_dto(result, by_created)))
}

/// A conversation list's page and creation window (`startDate`, `endDate`).
pub struct CreatedList {
    page: PageQuery,
    filter: ConversationFilter,
}

impl<S: Send + Sync> FromRequestParts<S> for CreatedList {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let list = ListQuery::<{ PageQuery::MAX_LIMIT }>::from_request_parts(parts, state).await?;
        let filter = ConversationFilter {
            created_from: list.created_from,
            created_to: list.created_to,
            ..Default::default()
        };
        Ok(CreatedList {
            page: list.page,
            filter,
        })
    }
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/users/{userId}/conversations", tag = "conversations",
    params(("agentId" = String, Path), ("userId" = String, Path), ("cursor" = Option<String>, Query),
           ("limit" = Option<u32>, Query)),
    responses((status = 200, body = api::ListConversationsResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn for_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, user_id)): Path<(String, String)>,
    page: PageQuery,
) -> Result<Json<api::ListConversationsResponse>, ApiError> {
    if !valid_user_id(&user_id) {
        let rule = "must be 1–128 characters of a-z, A-Z, 0-9, '.', '_' or '-'";
        return Err(ApiError::invalid_field("userId", rule));
    }
    let filter = ConversationFilter {
        user_id: Some(user_id),
        ..Default::default()
    };
    let (cursor, limit) = (page.cursor.as_ref(), page.limit);
    let result = (state.app.conversations())
        .conversations(&p, &agent_id, &filter, cursor, limit, true)
        .await?;
    Ok(Json(list_dto(result, by_activity)))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/conversations/{conversationId}", tag = "conversations",
    params(("agentId" = String, Path), ("conversationId" = String, Path), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = api::GetConversationResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
    page: PageQuery,
) -> Result<Json<api::GetConversationResponse>, ApiError> {
    let thread = state
        .app
        .conversations()
        .message_thread(&p, &agent_id, &conversation_id, None, page.limit)
        .await?;
    Ok(Json(conversation_with_messages(thread)))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/conversations/{conversationId}/messages", tag = "conversations",
    params(("agentId" = String, Path), ("conversationId" = String, Path), ("cursor" = Option<String>, Query),
           ("limit" = Option<u32>, Query)),
    responses((status = 200, body = api::ListMessagesResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn messages(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
    page: PageQuery,
) -> Result<Json<api::ListMessagesResponse>, ApiError> {
    let before = page.cursor.map(|c| c.t);
    let thread = state
        .app
        .conversations()
        .message_thread(&p, &agent_id, &conversation_id, before, page.limit)
        .await?;
    Ok(Json(message_list(thread)))
}

#[utoipa::path(patch, path = "/api/v2/agents/{agentId}/conversations/{conversationId}", tag = "conversations",
    request_body = api::UpdateConversationRequest,
    params(("agentId" = String, Path), ("conversationId" = String, Path)),
    responses((status = 200, body = api::UpdateConversationResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    OwnConversation(c): OwnConversation,
    AppJson(body): AppJson<api::UpdateConversationRequest>,
) -> Result<Json<api::UpdateConversationResponse>, ApiError> {
    let status = state
        .app
        .conversations()
        .set_paused(&p, &c.agent_id, &c.id, body.paused)
        .await?;
    Ok(Json(api::UpdateConversationResponse {
        data: api::ConversationStatus {
            id: c.id,
            status: status.as_str().to_owned(),
        },
    }))
}

#[utoipa::path(patch, path = "/api/v2/agents/{agentId}/conversations/{conversationId}/messages/{messageId}/feedback",
    tag = "conversations", request_body = api::UpdateFeedbackRequest,
    params(("agentId" = String, Path), ("conversationId" = String, Path), ("messageId" = String, Path)),
    responses((status = 200, body = api::MessageResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse), (status = 422, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn feedback(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    OwnConversation(c): OwnConversation,
    Path((_, _, message_id)): Path<(String, String, String)>,
    AppJson(body): AppJson<api::UpdateFeedbackRequest>,
) -> Result<Json<api::MessageResponse>, ApiError> {
    let m = state
        .app
        .conversations()
        .set_feedback(&p, &c.agent_id, &c.id, &message_id, feedback_of(body))
        .await?;
    Ok(Json(api::MessageResponse {
        data: message_dto(m),
    }))
}

#[utoipa::path(get, path = "/api/v2/agents/{agentId}/conversations/export", tag = "conversations",
    params(("agentId" = String, Path), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1 to 20"),
           ("startDate" = Option<String>, Query), ("endDate" = Option<String>, Query),
           ("conversationId" = Option<String>, Query), ("include" = Option<String>, Query, description = "summary or messages"),
           ("source" = Option<String>, Query, description = "comma-separated sources")),
    responses((status = 200, body = api::ExportConversationsResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    q: ExportQuery,
) -> Result<Json<api::ExportConversationsResponse>, ApiError> {
    let (cursor, limit) = (q.page.cursor.as_ref(), q.page.limit);
    let result = (state.app.conversations())
        .export(&p, &agent_id, &q.filter, cursor, limit, q.include_messages)
        .await?;
    Ok(Json(export_dto(result)))
}

/// The export's page, filter (dates, one conversation, sources) and whether
/// messages come along (`include=messages`, the default, or `summary`).
pub struct ExportQuery {
    page: PageQuery,
    filter: ConversationFilter,
    include_messages: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for ExportQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        let mut details = BTreeMap::new();
        let list = ListQuery::<20>::read(&q, &mut details);
        let include_messages = match q.get("include") {
            None | Some("messages") => true,
            Some("summary") => false,
            Some(_) => {
                details.insert("include".into(), "must be summary or messages".into());
                true
            }
        };
        let list = list.check(details)?;
        let filter = ConversationFilter {
            created_from: list.created_from,
            created_to: list.created_to,
            conversation_id: q.get("conversationId").map(str::to_owned),
            sources: list_param(&q, "source"),
            ..Default::default()
        };
        Ok(ExportQuery {
            page: list.page,
            filter,
            include_messages,
        })
    }
}

/// A comma-separated filter: `None` when absent, its trimmed values otherwise.
fn list_param(q: &QueryMap, key: &str) -> Option<Vec<String>> {
    q.get(key).map(|v| {
        v.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// Checks a filter's values against what it may hold.
fn enum_param(
    q: &QueryMap,
    key: &str,
    allowed: &[&str],
    details: &mut BTreeMap<String, String>,
) -> Option<Vec<String>> {
    let values = list_param(q, key)?;
    if let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str())) {
        details.insert(
            key.to_owned(),
            format!("`{bad}` is not one of {}", allowed.join(", ")),
        );
    }
    Some(values)
}

/// Search: free text and filters (AND between filters, OR within one), most
/// recently active first. Sentiment, topics, voice, escalation, actions and
/// procedures are not recorded by agentbase: `unspecified`/`false` match every
/// conversation, any other value none.
#[utoipa::path(get, path = "/api/v2/agents/{agentId}/conversations/search", tag = "conversations",
    params(("agentId" = String, Path), ("query" = Option<String>, Query), ("cursor" = Option<String>, Query),
           ("limit" = Option<u32>, Query, description = "1 to 25, default 25"),
           ("source" = Option<String>, Query), ("userId" = Option<String>, Query),
           ("activityState" = Option<String>, Query), ("feedback" = Option<String>, Query),
           ("sentiment" = Option<String>, Query), ("topic" = Option<String>, Query),
           ("escalated" = Option<String>, Query), ("actionType" = Option<String>, Query),
           ("tool" = Option<String>, Query), ("toolOutcome" = Option<String>, Query),
           ("procedure" = Option<String>, Query), ("procedureOutcome" = Option<String>, Query),
           ("hasVoice" = Option<String>, Query),
           ("startDate" = Option<String>, Query), ("endDate" = Option<String>, Query),
           ("updatedAfter" = Option<String>, Query), ("updatedBefore" = Option<String>, Query)),
    responses((status = 200, body = api::SearchConversationsResponse), (status = 400, body = api::ErrorResponse),
              (status = 404, body = api::ErrorResponse)),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(agent_id): Path<String>,
    SearchQuery { page, search }: SearchQuery,
) -> Result<Json<api::SearchConversationsResponse>, ApiError> {
    let (cursor, limit) = (page.cursor.as_ref(), page.limit);
    let found = (state.app.conversations())
        .search_conversations(&p, &agent_id, &search, cursor, limit)
        .await?;
    Ok(Json(search_dto(found)))
}

/// The search's page (25 by default and at most) and filters; every bad parameter
/// is reported at once.
pub struct SearchQuery {
    page: PageQuery,
    search: agentbase_service::ConversationSearch,
}

impl<S: Send + Sync> FromRequestParts<S> for SearchQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        search_query(&q)
    }
}

fn search_query(q: &QueryMap) -> Result<SearchQuery, ApiError> {
    let mut details = BTreeMap::new();
    let mut list = ListQuery::<25>::read(q, &mut details);
    if q.get("limit").is_none() {
        list.page.limit = 25;
    }
    let (updated_from, updated_to) = dates(q, ("updatedAfter", "updatedBefore"), &mut details);
    let statuses = enum_param(
        q,
        "activityState",
        &["ongoing", "ended", "taken_over", "paused"],
        &mut details,
    );
    let feedback = enum_param(q, "feedback", &["positive", "negative"], &mut details);
    let sentiment = enum_param(
        q,
        "sentiment",
        &["positive", "neutral", "negative", "unspecified"],
        &mut details,
    );
    let escalated = enum_param(q, "escalated", &["true"], &mut details);
    let has_voice = enum_param(q, "hasVoice", &["true", "false"], &mut details);
    let list = list.check(details)?;
    window_order(
        BTreeMap::new(),
        (updated_from, updated_to),
        "updatedAfter",
        "updatedBefore",
    )?;
    // Filters on what agentbase does not record: only "none of it" matches.
    let only = |v: &Option<Vec<String>>, fine: &str| {
        v.as_ref().is_some_and(|v| !v.iter().any(|x| x == fine))
    };
    let nothing = only(&sentiment, "unspecified")
        || only(&list_param(q, "topic"), "unspecified")
        || escalated.is_some()
        || only(&has_voice, "false")
        || list_param(q, "actionType").is_some()
        || list_param(q, "procedure").is_some()
        || list_param(q, "procedureOutcome").is_some();
    let search = agentbase_service::ConversationSearch {
        query: q.get("query").map(str::to_owned),
        sources: list_param(q, "source"),
        user_ids: list_param(q, "userId"),
        statuses,
        feedback,
        tools: list_param(q, "tool"),
        tool_statuses: list_param(q, "toolOutcome"),
        created_from: list.created_from,
        created_to: list.created_to,
        updated_from,
        updated_to,
        nothing,
    };
    Ok(SearchQuery {
        page: list.page,
        search,
    })
}
