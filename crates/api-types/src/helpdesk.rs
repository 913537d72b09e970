//! Wire shapes of the support-desk extensions: an agent's webhook endpoints and
//! their delivery log.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Pagination;

/// One webhook endpoint of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub agent_id: String,
    pub url: String,
    /// Event names: `leads.submit`, `conversation.started`, `message.answered`,
    /// `conversation.taken_over`, `ticket.created`, `ticket.updated`,
    /// `training.finished`.
    pub events: Vec<String>,
    pub active: bool,
    /// Signs every delivery: `x-chatbase-signature` is the hex HMAC-SHA1 of the
    /// raw body with this secret.
    pub secret: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhooksResponse {
    pub data: Vec<Webhook>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookBody {
    /// An http(s) URL; private, loopback and link-local targets are refused.
    pub url: String,
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhookBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// `true` issues a new signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_secret: Option<bool>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttempt {
    pub attempt: i64,
    pub started_at: String,
    pub duration_ms: i64,
    /// The endpoint's answer; null when none came (refused, timed out, failed).
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

/// One event on its way to the endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: String,
    /// The same on every attempt (header `x-agentbase-event-id`).
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The exact body sent.
    pub body: String,
    pub log: Vec<WebhookAttempt>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveriesResponse {
    pub data: Vec<WebhookDelivery>,
    pub pagination: Pagination,
}
