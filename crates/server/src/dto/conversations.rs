//! Conversations and messages on the wire, and the list envelope's pagination.

use agentbase_api_types as api;
use agentbase_core::conversation::{Conversation, Message, MessageRole, Part};
use agentbase_core::{Cursor, Millis};
use agentbase_service::Page;

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
