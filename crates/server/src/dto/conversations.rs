//! Conversations and messages on the wire, and the list envelope's pagination.

use std::collections::HashMap;

use agentbase_api_types as api;
use agentbase_core::conversation::{Conversation, Feedback, Message, MessageRole, Part};
use agentbase_core::helpdesk::Sender;
use agentbase_core::{Cursor, Millis};
use agentbase_service::Page;
use agentbase_service::chat::MessageThread;
use agentbase_service::conversation_search::Snippet;

pub(crate) fn secs(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}

pub(crate) fn conversation_dto(c: &Conversation) -> api::ConversationMetadata {
    api::ConversationMetadata {
        id: c.id.clone(),
        title: c.title.clone(),
        created_at: secs(c.created_at),
        updated_at: secs(c.updated_at),
        user_id: c.user_id.clone(),
        status: c.status.as_str().to_owned(),
        answered_by: Some(
            if c.status == agentbase_core::conversation::ConversationStatus::TakenOver {
                "human"
            } else {
                "ai"
            }
            .to_owned(),
        ),
    }
}

pub(crate) fn part_dto(p: Part) -> api::MessagePart {
    match p {
        Part::Text { text } => api::MessagePart::Text { text },
        Part::ToolCall {
            tool_call_id,
            tool_name,
            input,
        } => api::MessagePart::ToolCall {
            tool_call_id,
            tool_name,
            input,
        },
        Part::ToolResult {
            tool_call_id,
            tool_name,
            output,
        } => api::MessagePart::ToolResult {
            tool_call_id,
            tool_name,
            output,
        },
    }
}

pub(crate) fn metadata(
    score: Option<f64>,
    sources: Vec<agentbase_core::conversation::Citation>,
) -> api::MessageMetadata {
    api::MessageMetadata {
        score,
        sources: sources
            .into_iter()
            .map(|c| api::MessageSource {
                source_id: c.source_id,
                chunk_id: c.chunk_id,
                title: c.title,
                url: c.url,
                score: c.score,
            })
            .collect(),
        spam: false,
        answered_by: Some(api::AnsweredBy {
            kind: "ai".into(),
            id: None,
            name: None,
            email: None,
        }),
    }
}

pub(crate) fn message_dto(m: Message) -> api::ConversationMessage {
    let assistant = m.role == MessageRole::Assistant;
    api::ConversationMessage {
        id: m.id,
        role: m.role.as_str().to_owned(),
        parts: m.parts.into_iter().map(part_dto).collect(),
        created_at: secs(m.created_at),
        feedback: assistant.then(|| m.feedback.map(|f| f.as_str().to_owned())),
        metadata: if assistant {
            Some(metadata(m.score, m.sources))
        } else {
            m.spam.then(|| api::MessageMetadata {
                score: None,
                sources: Vec::new(),
                spam: true,
                answered_by: None,
            })
        },
    }
}

pub(crate) fn export_message(m: Message) -> api::ExportMessage {
    let assistant = m.role == MessageRole::Assistant;
    api::ExportMessage {
        id: m.id,
        role: m.role.as_str().to_owned(),
        parts: m
            .parts
            .into_iter()
            .map(|p| match p {
                Part::Text { text } => api::ExportPart::Text { text },
                Part::ToolCall {
                    tool_call_id,
                    tool_name,
                    ..
                } => api::ExportPart::ToolCall {
                    tool_call_id,
                    tool_name,
                },
                Part::ToolResult {
                    tool_call_id,
                    tool_name,
                    output,
                } => api::ExportPart::ToolResult {
                    tool_call_id,
                    tool_name,
                    output,
                },
            })
            .collect(),
        created_at: secs(m.created_at),
        feedback: assistant.then(|| m.feedback.map(|f| f.as_str().to_owned())),
        metadata: assistant.then(|| metadata(m.score, m.sources)),
    }
}

/// The list envelope's pagination: the cursor is the last item's key, and null
/// exactly when there is no next page.
pub(crate) fn pagination<T>(page: &Page<T>, key: impl Fn(&T) -> Cursor) -> api::Pagination {
    let cursor = next_cursor(page, key);
    api::Pagination {
        has_more: cursor.is_some(),
        cursor,
        total: page.total,
    }
}

/// The cursor of the page after `page` (its last item's key), when there is one.
pub(crate) fn next_cursor<T>(page: &Page<T>, key: impl Fn(&T) -> Cursor) -> Option<String> {
    page.items
        .last()
        .filter(|_| page.has_more)
        .map(|x| key(x).encode())
}

pub(crate) fn by_created(c: &Conversation) -> Cursor {
    Cursor {
        t: c.created_at,
        id: c.id.clone(),
    }
}

pub(crate) fn by_activity(c: &Conversation) -> Cursor {
    Cursor {
        t: c.updated_at,
        id: c.id.clone(),
    }
}

/// Marks the messages people wrote (the thread's `authors`) as theirs.
fn mark_authors(messages: &mut [api::ConversationMessage], authors: &HashMap<String, Sender>) {
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
    let cursor = (page.items.first()).filter(|_| page.has_more).map(|m| {
        Cursor {
            t: m.seq,
            id: m.id.clone(),
        }
        .encode()
    });
    api::Pagination {
        has_more: cursor.is_some(),
        cursor,
        total: page.total,
    }
}

/// A thread's messages on the wire, with their pagination.
fn thread_messages(
    thread: MessageThread,
) -> (Conversation, api::Pagination, Vec<api::ConversationMessage>) {
    let pagination = message_pagination(&thread.messages);
    let mut items: Vec<_> = (thread.messages.items.into_iter())
        .map(message_dto)
        .collect();
    mark_authors(&mut items, &thread.authors);
    (thread.conversation, pagination, items)
}

pub(crate) fn conversation_with_messages(thread: MessageThread) -> api::GetConversationResponse {
    let (c, pagination, messages) = thread_messages(thread);
    api::GetConversationResponse {
        pagination,
        data: api::ConversationWithMessages {
            conversation: conversation_dto(&c),
            messages,
        },
    }
}

pub(crate) fn message_list(thread: MessageThread) -> api::ListMessagesResponse {
    let (_, pagination, data) = thread_messages(thread);
    api::ListMessagesResponse { pagination, data }
}

pub(crate) fn feedback_of(body: api::UpdateFeedbackRequest) -> Option<Feedback> {
    body.feedback.map(|f| match f {
        api::FeedbackValue::Positive => Feedback::Positive,
        api::FeedbackValue::Negative => Feedback::Negative,
    })
}

pub(crate) fn export_dto(
    page: Page<(Conversation, Option<Vec<Message>>)>,
) -> api::ExportConversationsResponse {
    let pagination = pagination(&page, |(c, _)| by_created(c));
    let data = (page.items.into_iter())
        .map(|(c, messages)| api::ExportConversation {
            conversation: conversation_dto(&c),
            source: Some(c.source.clone()),
            messages: messages.map(|m| m.into_iter().map(export_message).collect()),
        })
        .collect();
    api::ExportConversationsResponse { pagination, data }
}

pub(crate) fn search_dto(
    (page, snippets): (Page<Conversation>, Vec<Option<Snippet>>),
) -> api::SearchConversationsResponse {
    let pagination = pagination(&page, by_activity);
    let data = (page.items.iter().zip(snippets))
        .map(|(c, snippet)| search_result(c, snippet))
        .collect();
    api::SearchConversationsResponse {
        data,
        pagination: api::SearchPagination {
            cursor: pagination.cursor,
            has_more: pagination.has_more,
        },
    }
}

fn search_result(c: &Conversation, snippet: Option<Snippet>) -> api::ConversationSearchResult {
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

/// A page of conversations, its cursor the last one's `key`.
pub(crate) fn list_dto(
    page: Page<Conversation>,
    key: fn(&Conversation) -> Cursor,
) -> api::ListConversationsResponse {
    api::ListConversationsResponse {
        pagination: pagination(&page, key),
        data: page.items.iter().map(conversation_dto).collect(),
    }
}
