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
    /// Each invalid field and what is wrong with it (validation errors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issues: Option<Vec<V1Issue>>,
}

/// One problem of a v1 validation error, as Chatbase's contacts API words it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Issue {
    pub field: String,
    pub message: String,
}

/// `POST /api/v1/create-chatbot`. `urlsToScrape` is the older docs' field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1CreateChatbot {
    pub chatbot_name: String,
    #[serde(default)]
    pub source_text: Option<String>,
    #[serde(default)]
    pub urls_to_scrape: Option<Vec<String>>,
}

/// `POST /api/v1/update-chatbot-data`: replaces the chatbot's data and retrains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1UpdateChatbotData {
    pub chatbot_id: String,
    #[serde(default)]
    pub chatbot_name: Option<String>,
    #[serde(default)]
    pub source_text: Option<String>,
    #[serde(default)]
    pub urls_to_scrape: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1ChatbotId {
    pub chatbot_id: String,
}

/// `POST /api/v1/update-chatbot-settings`. Styles and lead collection are accepted
/// and not kept (agentbase has no hosted widget styling through v1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1UpdateChatbotSettings {
    pub chatbot_id: String,
    pub name: Option<String>,
    pub instructions: Option<String>,
    pub initial_messages: Option<Vec<String>>,
    pub suggested_messages: Option<Vec<String>>,
    pub visibility: Option<String>,
    pub domains: Option<Vec<String>>,
    pub ip_limit: Option<u32>,
    pub ip_limit_timeframe: Option<u32>,
    pub ip_limit_message: Option<String>,
    pub model: Option<String>,
    pub temp: Option<f64>,
    #[serde(default)]
    pub styles: Option<serde_json::Value>,
    #[serde(default)]
    pub collect_customer_information: Option<serde_json::Value>,
    #[serde(default)]
    pub only_allow_on_added_domains: Option<bool>,
}

/// One chatbot in `GET /api/v1/get-chatbots` (snake_case, as v1 clients read it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Chatbot {
    pub id: String,
    pub name: String,
    pub instructions: String,
    pub model: String,
    pub temp: f64,
    pub visibility: String,
    pub initial_messages: Vec<String>,
    pub suggested_messages: Option<serde_json::Value>,
    pub allowed_domains: Option<Vec<String>>,
    pub status: String,
    pub created_at: String,
    pub last_trained_at: Option<String>,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Chatbots {
    pub chatbots: Vec<V1Chatbot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Message200 {
    pub message: String,
}

/// `GET /api/v1/get-leads`: `{"collectedCustomers": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1LeadsResponse {
    pub collected_customers: Vec<V1Lead>,
}

/// One lead as v1 lists it: every field a string (empty when not given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Lead {
    pub id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    /// ISO 8601.
    pub created_at: String,
    pub chatbot_id: String,
    pub account_id: String,
    /// The conversation the lead was given in (an agentbase addition).
    #[serde(rename = "conversationId")]
    pub conversation_id: Option<String>,
}
