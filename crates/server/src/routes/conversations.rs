//! The conversation surface: lists, one conversation, its messages (backward
//! pages, each in chronological order), a user's conversations, pausing, feedback
//! and export.

use std::collections::BTreeMap;

use agentbase_api_types as api;
use agentbase_core::Cursor;
use agentbase_core::conversation::{Conversation, Feedback, Message};
use agentbase_service::Principal;
use agentbase_service::chat::valid_user_id;
use agentbase_service::{ConversationFilter, Page};
use axum::extract::{Path, State};
use axum::{Extension, Json};

use crate::AppState;
use crate::dto::conversations::{
    by_created, conversation_dto, export_message, message_dto, pagination, secs,
};
use crate::error::ApiError;
use crate::extract::{AppJson, ListQuery, PageQuery, QueryMap, dates, window_order};

/// Marks the messages people wrote (see `App::message_authors`) as theirs.
pub fn mark_authors(
    messages: &mut [api::ConversationMessage],
    authors: &std::collections::HashMap<String, agentbase_core::helpdesk::Sender>,
) {
    for m in messages {
        if let (Some(a), Some(meta)) = (authors.get(&m.id), m.metadata.as_mut()) {
            meta.answered_by = Some(api::AnsweredBy {
                kind: "human".into(),
                id: a.id.clone(),
                name: a.name.clone(),
                email: a.email.clone(),
            });
        }
    }
}

/// Message pages go backward: the cursor is the oldest message of the page.
fn message_pagination(page: &Page<Message>) -> api::Pagination {
    let cursor = if page.has_more {
        page.items.first().map(|m| {
            Cursor {
                t: m.seq,
                id: m.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    api::Pagination {
        has_more: cursor.is_some(),
        cursor,
        total: page.total,
    }
}

fn by_activity(c: &Conversation) -> Cursor {
    Cursor {
        t: c.updated_at,
        id: c.id.clone(),
    }
}

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
    list: ListQuery,
) -> Result<Json<api::ListConversationsResponse>, ApiError> {
    let (page, filter) = (
        list.page,
        ConversationFilter {
            created_from: list.created_from,
            created_to: list.created_to,
            ..Default::default()
        },
    );
    let result = state
        .app
        .conversations()
        .conversations(
            &p,
            &agent_id,
            &filter,
            page.cursor.as_ref(),
            page.limit,
            false,
        )
        .await?;
    Ok(Json(api::ListConversationsResponse {
        pagination: pagination(&result, by_created),
        data: result.items.iter().map(conversation_dto).collect(),
    }))
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
    let found = (state.app)
        .conversations()
        .conversations(&p, &agent_id, &filter, cursor, limit, true);
    let result = found.await?;
    Ok(Json(api::ListConversationsResponse {
        pagination: pagination(&result, by_activity),
        data: result.items.iter().map(conversation_dto).collect(),
    }))
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
    let c = state
        .app
        .conversations()
        .conversation_of(&p, &agent_id, &conversation_id)
        .await?;
    let messages = state
        .app
        .conversations()
        .message_page(&c.id, None, page.limit)
        .await?;
    let authors = state.app.helpdesk().message_authors(&c.id).await?;
    let pagination = message_pagination(&messages);
    let mut items: Vec<_> = messages.items.into_iter().map(message_dto).collect();
    mark_authors(&mut items, &authors);
    Ok(Json(api::GetConversationResponse {
        pagination,
        data: api::ConversationWithMessages {
            conversation: conversation_dto(&c),
            messages: items,
        },
    }))
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
    let c = state
        .app
        .conversations()
        .conversation_of(&p, &agent_id, &conversation_id)
        .await?;
    let result = state
        .app
        .conversations()
        .message_page(&c.id, page.cursor.map(|c| c.t), page.limit)
        .await?;
    let authors = state.app.helpdesk().message_authors(&c.id).await?;
    let pagination = message_pagination(&result);
    let mut data: Vec<_> = result.items.into_iter().map(message_dto).collect();
    mark_authors(&mut data, &authors);
    Ok(Json(api::ListMessagesResponse { pagination, data }))
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
    Path((agent_id, conversation_id)): Path<(String, String)>,
    body: Result<AppJson<api::UpdateConversationRequest>, ApiError>,
) -> Result<Json<api::UpdateConversationResponse>, ApiError> {
    state
        .app
        .conversations()
        .conversation_of(&p, &agent_id, &conversation_id)
        .await?;
    let AppJson(body) = body?;
    let status = state
        .app
        .conversations()
        .set_paused(&p, &agent_id, &conversation_id, body.paused)
        .await?;
    Ok(Json(api::UpdateConversationResponse {
        data: api::ConversationStatus {
            id: conversation_id,
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
    Path((agent_id, conversation_id, message_id)): Path<(String, String, String)>,
    body: Result<AppJson<api::UpdateFeedbackRequest>, ApiError>,
) -> Result<Json<api::MessageResponse>, ApiError> {
    state
        .app
        .conversations()
        .conversation_of(&p, &agent_id, &conversation_id)
        .await?;
    let AppJson(body) = body?;
    let feedback = body.feedback.map(|f| match f {
        api::FeedbackValue::Positive => Feedback::Positive,
        api::FeedbackValue::Negative => Feedback::Negative,
    });
    let m = state
        .app
        .conversations()
        .set_feedback(&p, &agent_id, &conversation_id, &message_id, feedback)
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
    q: QueryMap,
) -> Result<Json<api::ExportConversationsResponse>, ApiError> {
    let (page, filter, include_messages) = export_query(&q)?;
    let (cursor, limit) = (page.cursor.as_ref(), page.limit);
    let result = (state.app)
        .conversations()
        .conversations(&p, &agent_id, &filter, cursor, limit, false)
        .await?;
    let mut data = Vec::with_capacity(result.items.len());
    for c in &result.items {
        let messages = match include_messages {
            true => Some(state.app.conversations().all_messages(&c.id).await?),
            false => None,
        };
        data.push(api::ExportConversation {
            conversation: conversation_dto(c),
            source: Some(c.source.clone()),
            messages: messages.map(|m| m.into_iter().map(export_message).collect()),
        });
    }
    Ok(Json(api::ExportConversationsResponse {
        pagination: pagination(&result, by_created),
        data,
    }))
}

/// The export's page, filter (dates, one conversation, sources) and whether
/// messages come along (`include=messages`, the default, or `summary`).
fn export_query(q: &QueryMap) -> Result<(PageQuery, ConversationFilter, bool), ApiError> {
    let mut details = BTreeMap::new();
    let list = ListQuery::<20>::read(q, &mut details);
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
        sources: q.get("source").map(|s| {
            s.split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        }),
        ..Default::default()
    };
    Ok((list.page, filter, include_messages))
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
    q: QueryMap,
) -> Result<Json<api::SearchConversationsResponse>, ApiError> {
    let (page, search) = search_query(&q)?;
    let (result, snippets) = state
        .app
        .conversations()
        .search_conversations(&p, &agent_id, &search, page.cursor.as_ref(), page.limit)
        .await?;
    let pagination = pagination(&result, by_activity);
    let data = result
        .items
        .iter()
        .zip(snippets)
        .map(|(c, snippet)| search_result(c, snippet))
        .collect();
    Ok(Json(api::SearchConversationsResponse {
        data,
        pagination: api::SearchPagination {
            cursor: pagination.cursor,
            has_more: pagination.has_more,
        },
    }))
}

/// The search's page (25 by default and at most) and filters; every bad parameter
/// is reported at once.
fn search_query(
    q: &QueryMap,
) -> Result<(PageQuery, agentbase_service::ConversationSearch), ApiError> {
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
    Ok((list.page, search))
}

fn search_result(
    c: &Conversation,
    snippet: Option<agentbase_service::conversation_search::Snippet>,
) -> api::ConversationSearchResult {
    api::ConversationSearchResult {
        id: c.id.clone(),
        title: c.title.clone(),
        created_at: secs(c.created_at),
        updated_at: secs(c.updated_at),
        user_id: c.user_id.clone(),
        source: Some(c.source.clone()),
        embed_origin: None,
        status: c.status.as_str().to_owned(),
        snippet: snippet.map(|s| api::SearchSnippet {
            speaker: s.speaker.to_owned(),
            highlights: s
                .highlights
                .into_iter()
                .map(|(value, is_hit)| api::SnippetHighlight { value, is_hit })
                .collect(),
        }),
    }
}
