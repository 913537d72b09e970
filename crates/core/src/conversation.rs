//! Conversations, their messages and message parts, and pending tool calls. Parts
//! have the Chatbase part shape; that shape is also how the record stores them, so
//! `Part` carries serde derives (the store's encoding), the one exception to "domain
//! types are not Serialize".

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationStatus {
    Ongoing,
    Ended,
    TakenOver,
    Paused,
}

/// The record's id of the conversation a v1 client names `chosen` in
/// `workspace_id`. v1 clients choose conversation ids; deriving the record's id
/// from the workspace and the name keeps the same name in two workspaces two
/// conversations, and neither can learn that the other exists.
pub fn v1_id(workspace_id: &str, chosen: &str) -> String {
    let digest = crate::keys::sha256_hex(&format!("{workspace_id}\u{0}{chosen}"));
    format!("v1-{}", &digest[..32])
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Ongoing => "ongoing",
            ConversationStatus::Ended => "ended",
            ConversationStatus::TakenOver => "taken_over",
            ConversationStatus::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ongoing" => Some(Self::Ongoing),
            "ended" => Some(Self::Ended),
            "taken_over" => Some(Self::TakenOver),
            "paused" => Some(Self::Paused),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: String,
    pub workspace_id: String,
    pub agent_id: String,
    pub user_id: Option<String>,
    pub title: Option<String>,
    pub status: ConversationStatus,
    /// Chatbase source label: `API`, `Playground`, `Widget or Iframe`, …
    pub source: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRole {
    User,
    Assistant,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "assistant" => Some(Self::Assistant),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Part {
    Text {
        text: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolCall {
        tool_call_id: String,
        tool_name: String,
        input: Value,
    },
    #[serde(rename_all = "camelCase")]
    ToolResult {
        tool_call_id: String,
        tool_name: String,
        output: Value,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    Positive,
    Negative,
}

impl Feedback {
    pub fn as_str(self) -> &'static str {
        match self {
            Feedback::Positive => "positive",
            Feedback::Negative => "negative",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "positive" => Some(Self::Positive),
            "negative" => Some(Self::Negative),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    /// Position in the conversation, from 1, gap-free only until a retry truncates.
    pub seq: i64,
    pub role: MessageRole,
    pub parts: Vec<Part>,
    pub created_at: Millis,
    pub feedback: Option<Feedback>,
    /// Retrieval confidence (0–1) for assistant messages.
    pub score: Option<f64>,
    /// `stop`, `error` or `tool-calls` for assistant messages.
    pub finish_reason: Option<String>,
    pub credits: f64,
    /// The knowledge the answer was given (assistant messages), for citations.
    pub sources: Vec<Citation>,
    /// A user message the agent's spam check flagged (kept, not answered).
    pub spam: bool,
}

/// A chunk of the knowledge base an answer was given, as the message keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    pub source_id: String,
    pub chunk_id: String,
    /// The source's name or the page title.
    pub title: String,
    pub url: Option<String>,
    pub score: f64,
}

impl Message {
    /// The text parts joined, for prompts and v1 shapes.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallStatus {
    Pending,
    Resolved,
}

/// A tool call the model made, waiting for (or holding) the client's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRecord {
    pub id: String,
    pub conversation_id: String,
    pub message_id: String,
    pub name: String,
    pub input: Value,
    pub status: ToolCallStatus,
    pub output: Option<Value>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// One charge in the credit ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditEntry {
    pub id: String,
    pub workspace_id: String,
    pub agent_id: String,
    pub conversation_id: Option<String>,
    pub message_id: Option<String>,
    pub model: String,
    pub credits: f64,
    pub created_at: Millis,
}
