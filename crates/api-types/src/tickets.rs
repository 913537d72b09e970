//! Wire shapes of the v2 helpdesk operations (ticket statuses, teams, tickets and
//! their messages) as the official spec defines them, and agentbase's handoff
//! routes (take over, hand back, reply to a conversation).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{Pagination, not_null, nullable};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketStatus {
    pub id: String,
    /// `new`, `on_you`, `on_customer`, `on_hold`, `closed` or `cancelled`.
    pub category: String,
    pub external_label: String,
    pub internal_label: String,
    pub color: Option<String>,
    pub is_default: bool,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamListItem {
    pub id: String,
    pub name: String,
    pub is_default: bool,
    pub member_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketCustomer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub ticket_number: i64,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub status_category: String,
    pub status_id: String,
    pub assignee_id: Option<String>,
    pub customer: TicketCustomer,
    pub metadata: Value,
    pub channel: String,
    pub conversation_id: Option<String>,
    pub team_id: Option<String>,
    pub priority: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_message_at: Option<String>,
}

/// A ticket in a list: without `description` and `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketListItem {
    pub ticket_number: i64,
    pub subject: Option<String>,
    pub status_category: String,
    pub status_id: String,
    pub assignee_id: Option<String>,
    pub customer: TicketCustomer,
    pub channel: String,
    pub conversation_id: Option<String>,
    pub team_id: Option<String>,
    pub priority: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_message_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketPagination {
    pub cursor: Option<String>,
    pub has_more: bool,
    /// Only with `includeTotal=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListTicketsResponse {
    pub data: Vec<TicketListItem>,
    pub pagination: TicketPagination,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketSearchPagination {
    /// Always null: search is not paginated.
    pub cursor: Option<String>,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchTicketsResponse {
    pub data: Vec<TicketListItem>,
    pub pagination: TicketSearchPagination,
}

/// Who wrote a thread message (`customer`, `agent` or `system`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageSender {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// One item of a ticket's thread (the spec's `Message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketThreadMessage {
    pub id: String,
    /// `reply`, `note` or `event`.
    #[serde(rename = "type")]
    pub kind: String,
    pub sender: Option<MessageSender>,
    pub content: Option<String>,
    pub content_text: Option<String>,
    pub attachments: Vec<Value>,
    pub created_at: String,
    /// Events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListTicketMessagesResponse {
    pub data: Vec<TicketThreadMessage>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTicketMessage {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub sender: MessageSender,
    pub content: String,
    pub content_text: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketCustomerBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Required fields are checked together after parsing, so every missing or bad
/// one is named at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTicketBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<TicketCustomerBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_category: Option<String>,
    /// `null`: create unassigned.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub assignee_id: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTicketBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_category: Option<String>,
    /// `null` unassigns.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub assignee_id: Option<Option<String>>,
    /// Not nullable: unassign with `assigneeId: null`.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub assignee_email: Option<String>,
    /// `null` clears the team.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub team_id: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchTicketsBody {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTicketMessageBody {
    /// `reply` only.
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_email: Option<String>,
}

/// agentbase: a conversation taken over, with its ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TakeOverData {
    pub id: String,
    /// `taken_over`.
    pub status: String,
    pub ticket: Ticket,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TakeOverResponse {
    pub data: TakeOverData,
}
