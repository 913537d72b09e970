//! Wire shapes of the Chatbase v2 API as agentbase serves it, and the error codes.
//! Plain serde structs with OpenAPI schemas; conversion from domain types happens in
//! the server, by hand.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub mod apify;
pub mod chat;
pub mod codes;
pub mod contacts;
pub mod helpdesk;
pub mod sources;
pub mod tickets;
pub mod v1;

pub use chat::*;
pub use helpdesk::*;
pub use sources::*;
pub use tickets::*;

/// `{"error": {"code", "message", "details"?}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// Field → problem, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
}

/// Keyset pagination: `cursor` is null exactly when `hasMore` is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub cursor: Option<String>,
    pub has_more: bool,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// Unix seconds.
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SuccessResponse {
    pub success: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IpRateLimits {
    /// Messages per timeframe (1–200).
    pub limit: u32,
    /// Seconds (1–3600).
    pub timeframe: u32,
    pub message: String,
}

/// The official `Agent` object. The JSON-shaped settings (channel instructions,
/// notifications, spam, voice, styles) are the contract's shapes, stored as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub instructions: String,
    #[schema(value_type = Option<Object>)]
    pub channel_instructions: Option<Value>,
    pub model: String,
    pub auto_retrain: bool,
    pub temp: f64,
    /// `public` or `private`.
    pub visibility: String,
    pub allowed_domains: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub suggested_messages: Option<Value>,
    pub initial_messages: Vec<String>,
    pub credit_limit: Option<i64>,
    pub credits_used: i64,
    #[schema(value_type = Option<Object>)]
    pub notifications_settings: Option<Value>,
    pub ip_rate_limits: IpRateLimits,
    #[schema(value_type = Option<Object>)]
    pub spam_settings: Option<Value>,
    pub blocked_countries: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub voice_settings: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub styles: Option<Value>,
    /// ISO-8601.
    pub created_at: String,
    pub last_message_at: Option<String>,
    pub last_trained_at: Option<String>,
    /// agentbase extension: quote the best passage with its citation when the
    /// answer does not use it (and answer "I don't know" without the model when
    /// nothing relevant is found); null = automatic, on for models under 1B
    /// parameters.
    #[serde(default)]
    pub quote_fallback: Option<bool>,
    /// `untrained`, `training`, `failed` or `trained`.
    pub status: String,
    /// Bytes of training data.
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListAgentsResponse {
    pub data: Vec<Agent>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCreated {
    pub id: String,
    /// Follow-up steps that failed (`ADD_SOURCE`, `TRAIN_AGENT`); absent when all
    /// succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_steps: Option<Vec<String>>,
}

/// `PUT /agents/{agentId}/styles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStylesBody {
    /// `{chat?, centerStage?}`; each part is merged key by key (`null` clears a key).
    #[schema(value_type = Object)]
    pub styles: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAgentBody {
    pub name: String,
    /// A website the agent answers about: added as a link source and trained at once.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub instructions: Option<String>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub model: Option<String>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub temp: Option<f64>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub visibility: Option<Visibility>,
}

/// An optional field that may be absent but not `null` (the contract's type has no
/// null): `null` is refused rather than read as "absent".
fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Like [`nullable`], but the field must be present.
fn nullable_required<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// `Option<Option<T>>` where `Some(None)` serialises as `null` and `None` is
/// skipped (with `skip_serializing_if`).
mod present_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpRateLimitsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A partial update; `null` clears the nullable fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAgentBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_domains: Option<Option<Vec<String>>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<Object>>)]
    pub suggested_messages: Option<Option<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_messages: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>)]
    pub credit_limit: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<IpRateLimitsPatch>)]
    pub ip_rate_limits: Option<Option<IpRateLimitsPatch>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub channel_instructions: Option<Option<Value>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub notifications_settings: Option<Option<Value>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub spam_settings: Option<Option<Value>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub voice_settings: Option<Option<Value>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub blocked_countries: Option<Option<Vec<String>>>,
    /// agentbase extension; `null` returns it to automatic.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<bool>)]
    pub quote_fallback: Option<Option<bool>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_null_are_told_apart() {
        let b: UpdateAgentBody = serde_json::from_str(r#"{"creditLimit": null}"#).unwrap();
        assert_eq!(b.credit_limit, Some(None));
        assert_eq!(b.allowed_domains, None);
        let b: UpdateAgentBody = serde_json::from_str(r#"{"creditLimit": 5}"#).unwrap();
        assert_eq!(b.credit_limit, Some(Some(5)));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<CreateAgentBody>(r#"{"name":"x","colour":"red"}"#).is_err());
    }
}

/// A client action (Chatbase Custom Action) — an agentbase extension of the API:
/// Chatbase manages actions in its dashboard only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema (`"type": "object"`) of the arguments.
    #[schema(value_type = Object)]
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionsBody {
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionsResponse {
    pub data: Vec<Action>,
}
