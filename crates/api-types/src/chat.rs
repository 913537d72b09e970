//! Chat, conversation and stream shapes (contract §2–§5).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::Pagination;

/// `POST /agents/{agentId}/chat`. Unknown fields are ignored, as upstream does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryRequest {
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum MessagePart {
    Text {
        text: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolCall {
        tool_call_id: String,
        tool_name: String,
        #[schema(value_type = Object)]
        input: Value,
    },
    #[serde(rename_all = "camelCase")]
    ToolResult {
        tool_call_id: String,
        tool_name: String,
        #[schema(value_type = Object)]
        output: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub credits: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMetadata {
    pub user_message_id: String,
    pub conversation_id: String,
    pub user_id: Option<String>,
    /// `stop`, `error` or `tool-calls`.
    pub finish_reason: String,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    pub id: String,
    /// Always `assistant`.
    pub role: String,
    pub parts: Vec<MessagePart>,
    pub metadata: ChatMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatResponse {
    pub data: ChatMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationMetadata {
    pub id: String,
    pub title: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last activity.
    pub updated_at: i64,
    pub user_id: Option<String>,
    /// `ongoing`, `ended`, `taken_over` or `paused`.
    pub status: String,
    /// agentbase extension: who answers the conversation now, `ai` or `human`
    /// (taken over by a person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageMetadata {
    /// Retrieval confidence, 0–1.
    pub score: Option<f64>,
    /// agentbase extension: the knowledge the answer was given (citations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<MessageSource>,
    /// agentbase extension: a user message the agent's spam check flagged (kept,
    /// never answered).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spam: bool,
    /// agentbase extension (assistant messages): who wrote the answer.
    #[serde(
        rename = "answeredBy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub answered_by: Option<AnsweredBy>,
}

/// Who wrote an assistant message: the AI, or a person of the workspace (an
/// operator's reply while the conversation was taken over).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnsweredBy {
    /// `ai` or `human`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A cited chunk of the knowledge base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageSource {
    pub source_id: String,
    pub chunk_id: String,
    pub title: String,
    pub url: Option<String>,
    /// Relevance of the chunk to the question, 0–1.
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationMessage {
    pub id: String,
    /// `user` or `assistant`.
    pub role: String,
    pub parts: Vec<MessagePart>,
    /// Unix seconds.
    pub created_at: i64,
    /// Present (possibly null) on assistant messages only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::present_null"
    )]
    #[schema(value_type = Option<String>)]
    pub feedback: Option<Option<String>>,
    /// Present on assistant messages only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MessageMetadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListConversationsResponse {
    pub data: Vec<ConversationMetadata>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationWithMessages {
    #[serde(flatten)]
    pub conversation: ConversationMetadata,
    pub messages: Vec<ConversationMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GetConversationResponse {
    pub data: ConversationWithMessages,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListMessagesResponse {
    pub data: Vec<ConversationMessage>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversationRequest {
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationStatus {
    pub id: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateConversationResponse {
    pub data: ConversationStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackValue {
    Positive,
    Negative,
}

/// `feedback` is required; `null` clears it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFeedbackRequest {
    #[serde(deserialize_with = "crate::nullable_required")]
    #[schema(value_type = Option<FeedbackValue>)]
    pub feedback: Option<FeedbackValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageResponse {
    pub data: ConversationMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitToolResultRequest {
    pub tool_call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SuccessData {
    pub data: crate::SuccessResponse,
}

/// Export parts: tool calls without their input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ExportPart {
    Text {
        text: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolCall {
        tool_call_id: String,
        tool_name: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolResult {
        tool_call_id: String,
        tool_name: String,
        #[schema(value_type = Object)]
        output: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportMessage {
    pub id: String,
    pub role: String,
    pub parts: Vec<ExportPart>,
    pub created_at: i64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::present_null"
    )]
    #[schema(value_type = Option<String>)]
    pub feedback: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MessageMetadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportConversation {
    #[serde(flatten)]
    pub conversation: ConversationMetadata,
    pub source: Option<String>,
    /// Absent with `include=summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ExportMessage>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportConversationsResponse {
    pub data: Vec<ExportConversation>,
    pub pagination: Pagination,
}

/// The Chatbase metadata carried by `message-metadata` and `finish` chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamMetadata {
    pub message_id: String,
    pub user_message_id: String,
    pub conversation_id: String,
    pub user_id: Option<String>,
    pub finish_reason: String,
    pub usage: Usage,
}

/// One chunk of the AI SDK UI Message Stream protocol (v1) as agentbase emits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum UiChunk {
    #[serde(rename_all = "camelCase")]
    Start {
        message_id: String,
    },
    StartStep,
    TextStart {
        id: String,
    },
    TextDelta {
        id: String,
        delta: String,
    },
    TextEnd {
        id: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputStart {
        tool_call_id: String,
        tool_name: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputDelta {
        tool_call_id: String,
        input_text_delta: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputAvailable {
        tool_call_id: String,
        tool_name: String,
        input: Value,
    },
    #[serde(rename_all = "camelCase")]
    SourceUrl {
        source_id: String,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    SourceDocument {
        source_id: String,
        media_type: String,
        title: String,
    },
    FinishStep,
    #[serde(rename_all = "camelCase")]
    MessageMetadata {
        message_metadata: StreamMetadata,
    },
    #[serde(rename_all = "camelCase")]
    Finish {
        finish_reason: String,
        message_metadata: StreamMetadata,
    },
    #[serde(rename_all = "camelCase")]
    Error {
        error_text: String,
    },
}

/// One highlighted piece of a search snippet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnippetHighlight {
    pub value: String,
    pub is_hit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchSnippet {
    /// `user` or `assistant`.
    pub speaker: String,
    pub highlights: Vec<SnippetHighlight>,
}

/// A conversation found by `GET /agents/{agentId}/conversations/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSearchResult {
    pub id: String,
    pub title: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub user_id: Option<String>,
    pub source: Option<String>,
    pub embed_origin: Option<String>,
    /// `ongoing`, `ended`, `taken_over` or `paused`.
    pub status: String,
    /// Null without a query, or when only the title matched.
    pub snippet: Option<SearchSnippet>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchPagination {
    pub cursor: Option<String>,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchConversationsResponse {
    pub data: Vec<ConversationSearchResult>,
    pub pagination: SearchPagination,
}
