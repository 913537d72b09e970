//! The deprecated v1 API shapes that existing integrations still send (contract §6).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Message {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// `POST /api/v1/chat`. `chatId` is accepted as an alias of `chatbotId` (the
/// official streaming sample sends it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1ChatRequest {
    pub messages: Vec<V1Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chatbot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// Defaults to false; when true the answer streams as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1ChatResponse {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Conversation {
    pub id: String,
    /// ISO 8601.
    pub created_at: String,
    pub messages: Vec<V1Message>,
    pub chatbot_id: String,
    pub customer: Option<String>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1ConversationsResponse {
    pub data: Vec<V1Conversation>,
}

/// v1 errors: `{"message"}` as v1 clients read it, with the v2 code beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Error {
    pub message: String,
    pub code: String,
}
