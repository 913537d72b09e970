//! The v1 contacts API's shapes (`/api/v1/chatbots/{chatbotId}/contacts` and
//! `…/custom-attributes`): snake_case fields, `{"message": "Success", "data": …}`,
//! Unix seconds for times; and agentbase's identity-verification secret (v2).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A contact as Chatbase returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1Contact {
    pub id: String,
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phonenumber: Option<String>,
    /// `[{label, stripe_id?, stripe_email?}]`.
    #[schema(value_type = Vec<Object>)]
    pub stripe_accounts: Vec<Value>,
    /// Attribute name → value (text, number, boolean, or an ISO 8601 date string).
    #[schema(value_type = Object)]
    pub custom_attributes: Map<String, Value>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1ContactsPages {
    pub page: u32,
    pub per_page: u32,
    pub total_pages: i64,
}

/// `GET …/contacts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1ContactsResponse {
    pub message: String,
    pub data: Vec<V1Contact>,
    pub total: i64,
    pub pages: V1ContactsPages,
}

/// `POST …/contacts`: the contacts made (or updated, by `external_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1ContactsCreated {
    pub message: String,
    pub data: Vec<V1Contact>,
}

/// One contact: get, update, and delete (the deleted contact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1ContactResponse {
    pub message: String,
    pub data: V1Contact,
}

/// `POST …/contacts`: 1–1000 contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1CreateContacts {
    /// `{external_id, name?, email?, phonenumber?, stripe_accounts?, custom_attributes?}`.
    #[schema(value_type = Vec<Object>)]
    pub users: Vec<Value>,
}

/// `PATCH …/contacts/{contactId}`: the fields to change, wrapped in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1UpdateContact {
    #[schema(value_type = Object)]
    pub data: Value,
}

/// One attribute of the agent's contact schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1CustomAttribute {
    pub name: String,
    pub label: String,
    /// `text`, `number`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1CustomAttributesResponse {
    pub message: String,
    pub data: Vec<V1CustomAttribute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1CustomAttributeResponse {
    pub message: String,
    pub data: V1CustomAttribute,
}

/// `POST …/custom-attributes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1CreateCustomAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
}

/// `PUT …/custom-attributes/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct V1UpdateCustomAttribute {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
}

/// The agent's identity-verification secret: `user_hash` is the hex
/// HMAC-SHA256 of the user id under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySecret {
    pub secret: String,
    /// ISO 8601.
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IdentitySecretResponse {
    pub data: IdentitySecret,
}
