//! The helpdesk: ticket statuses, teams, tickets and their message threads, as the
//! official v2 helpdesk operations describe them, and the human handoff that turns
//! a conversation into a ticket. Validation reports every bad field at once. No IO.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::webhook::OutboxEvent;
use crate::{FieldErrors, Millis, time_fmt};

/// Status categories, in the order statuses are listed.
pub const CATEGORIES: &[&str] = &[
    "new",
    "on_you",
    "on_customer",
    "on_hold",
    "closed",
    "cancelled",
];
pub const PRIORITIES: &[&str] = &["none", "low", "normal", "high", "urgent"];
pub const CHANNELS: &[&str] = &[
    "helpdesk",
    "iframe",
    "email",
    "whatsapp",
    "api",
    "messenger",
    "instagram",
    "center_stage",
    "phone",
    "instagram_comment",
    "facebook_comment",
];
pub const MESSAGE_TYPES: &[&str] = &["reply", "note", "event"];

pub const TICKET_TAKEN_OVER: &str = "conversation.taken_over";
pub const TICKET_CREATED: &str = "ticket.created";
pub const TICKET_UPDATED: &str = "ticket.updated";

/// The statuses every agent starts with: one default per category (external
/// label, internal label, colour).
pub const DEFAULT_STATUSES: &[(&str, &str, &str, &str)] = &[
    ("new", "Received", "New", "#2563EB"),
    ("on_you", "In progress", "Open", "#F59E0B"),
    (
        "on_customer",
        "Awaiting your reply",
        "Waiting on customer",
        "#8B5CF6",
    ),
    ("on_hold", "On hold", "On hold", "#6B7280"),
    ("closed", "Resolved", "Closed", "#16A34A"),
    ("cancelled", "Cancelled", "Cancelled", "#DC2626"),
];
/// The team every agent starts with.
pub const DEFAULT_TEAM: &str = "Support";

pub const SUBJECT_MAX: usize = 500;
pub const DESCRIPTION_MAX: usize = 10_000;
pub const NAME_MAX: usize = 255;
pub const CONTENT_MAX: usize = 10_000;
pub const SEARCH_QUERY_MAX: usize = 512;

/// A ticket status of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketStatus {
    pub id: String,
    pub agent_id: String,
    pub category: String,
    pub external_label: String,
    pub internal_label: String,
    pub color: Option<String>,
    pub is_default: bool,
    pub position: i64,
}

/// A helpdesk team of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: String,
    pub agent_id: String,
    pub name: String,
    pub is_default: bool,
    /// Filled in when team members exist (another part of issue 16).
    pub member_count: i64,
    pub created_at: Millis,
}

/// The ticket's customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: String,
    pub workspace_id: String,
    pub agent_id: String,
    /// Per agent, from 1.
    pub number: i64,
    pub conversation_id: Option<String>,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub status_id: String,
    pub status_category: String,
    /// The workspace member assigned: both filled, from the member's record.
    pub assignee_id: Option<String>,
    pub assignee_email: Option<String>,
    pub team_id: Option<String>,
    pub priority: String,
    pub channel: String,
    pub customer: Customer,
    pub metadata: Value,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_message_at: Option<Millis>,
}

/// Who wrote a ticket message (or answered in a conversation): `customer`,
/// `agent` (a person of the workspace) or `system`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sender {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl Sender {
    pub fn customer(c: &Customer) -> Sender {
        Sender {
            kind: "customer".into(),
            id: Some(c.id.clone()),
            name: c.name.clone(),
            email: c.email.clone(),
        }
    }

    /// A person of the workspace (`authorId`/`authorEmail` as given).
    pub fn agent(id: Option<String>, email: Option<String>, name: Option<String>) -> Sender {
        Sender {
            kind: "agent".into(),
            id,
            name,
            email: email.map(|e| e.to_lowercase()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TicketMessage {
    pub id: String,
    pub ticket_id: String,
    pub seq: i64,
    /// `reply`, `note` or `event`.
    pub kind: String,
    pub sender: Option<Sender>,
    /// Rendered HTML; `None` on events.
    pub content: Option<String>,
    /// The text as written; `None` on events.
    pub content_text: Option<String>,
    /// Events only: `{eventType, statusFrom, statusTo, doneBy, …}`.
    pub metadata: Option<Value>,
    pub created_at: Millis,
}

/// A new ticket from the API (`createTicket`).
#[derive(Debug, Clone, Default)]
pub struct NewTicketInput {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    pub status_id: Option<String>,
    pub status_category: Option<String>,
    /// `Some(None)`: create unassigned.
    pub assignee_id: Option<Option<String>>,
    pub assignee_email: Option<String>,
    pub team_id: Option<String>,
    pub priority: Option<String>,
}

/// `updateTicket`'s fields (`None`: unchanged; `Some(None)`: cleared).
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    pub status_id: Option<String>,
    pub status_category: Option<String>,
    pub assignee_id: Option<Option<String>>,
    pub assignee_email: Option<String>,
    pub team_id: Option<Option<String>>,
    pub priority: Option<String>,
}

/// `listTickets`' filters and order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub statuses: Vec<String>,
    pub channels: Vec<String>,
    pub priorities: Vec<String>,
    /// `Some(None)`: unassigned only.
    pub assignee_id: Option<Option<String>>,
    /// `Some(None)`: without a team only.
    pub team_id: Option<Option<String>>,
    pub created_after: Option<Millis>,
    pub created_before: Option<Millis>,
    pub sort: TicketSort,
    pub ascending: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketSort {
    CreatedAt,
    #[default]
    UpdatedAt,
    LastMessageAt,
}

impl TicketSort {
    pub fn parse(s: &str) -> Option<TicketSort> {
        match s {
            "createdAt" => Some(TicketSort::CreatedAt),
            "updatedAt" => Some(TicketSort::UpdatedAt),
            "lastMessageAt" => Some(TicketSort::LastMessageAt),
            _ => None,
        }
    }

    /// The sort key of a ticket (`lastMessageAt` falls back to `createdAt`).
    pub fn key(self, t: &Ticket) -> Millis {
        match self {
            TicketSort::CreatedAt => t.created_at,
            TicketSort::UpdatedAt => t.updated_at,
            TicketSort::LastMessageAt => t.last_message_at.unwrap_or(t.created_at),
        }
    }
}

/// A list cursor: the position and the order it was issued for, so a cursor used
/// with another order is refused rather than misread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketCursor {
    pub s: TicketSort,
    pub asc: bool,
    pub t: Millis,
    pub id: String,
}

impl TicketCursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> Option<TicketCursor> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// A platform id: the spec's `format: uuid`.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no
/// spaces, at most 254 characters.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn check_len(e: &mut FieldErrors, field: &str, v: &Option<String>, max: usize, required: bool) {
    match v {
        None if required => {
            e.insert(field.into(), "Required".into());
        }
        Some(s) if s.trim().is_empty() => {
            e.insert(field.into(), "must not be empty".into());
        }
        Some(s) if chars(s) > max => {
            e.insert(field.into(), format!("must be at most {max} characters"));
        }
        _ => {}
    }
}

fn check_enum(e: &mut FieldErrors, field: &str, v: Option<&str>, allowed: &[&str]) {
    if let Some(v) = v
        && !allowed.contains(&v)
    {
        e.insert(
            field.into(),
            format!("must be one of {}", allowed.join(", ")),
        );
    }
}

fn check_uuid(e: &mut FieldErrors, field: &str, v: Option<&str>) {
    if let Some(v) = v
        && !is_uuid(v)
    {
        e.insert(field.into(), "must be a UUID".into());
    }
}

fn check_email(e: &mut FieldErrors, field: &str, v: Option<&str>) {
    if let Some(v) = v
        && !is_email(v)
    {
        e.insert(field.into(), "must be an email address".into());
    }
}

/// The fields create and update share: a status by id or category (not both), an
/// assignee by id (`Some(None)`: none) or email (not both).
fn check_routing(
    e: &mut FieldErrors,
    (status_id, category): (Option<&str>, Option<&str>),
    (assignee_id, assignee_email): (&Option<Option<String>>, Option<&str>),
) {
    check_uuid(e, "statusId", status_id);
    check_enum(e, "statusCategory", category, CATEGORIES);
    if status_id.is_some() && category.is_some() {
        e.insert(
            "statusCategory".into(),
            "send at most one of statusId and statusCategory".into(),
        );
    }
    check_uuid(
        e,
        "assigneeId",
        assignee_id.as_ref().and_then(|a| a.as_deref()),
    );
    check_email(e, "assigneeEmail", assignee_email);
    if assignee_id.is_some() && assignee_email.is_some() {
        e.insert(
            "assigneeEmail".into(),
            "send at most one of assigneeId and assigneeEmail".into(),
        );
    }
}

impl NewTicketInput {
    pub fn problems(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_len(&mut e, "subject", &self.subject, SUBJECT_MAX, true);
        check_len(
            &mut e,
            "description",
            &self.description,
            DESCRIPTION_MAX,
            true,
        );
        match &self.customer_email {
            None => {
                e.insert("customer.email".into(), "Required".into());
            }
            Some(m) => check_email(&mut e, "customer.email", Some(m)),
        }
        if self
            .customer_name
            .as_deref()
            .is_some_and(|n| chars(n) > NAME_MAX)
        {
            e.insert(
                "customer.name".into(),
                format!("must be at most {NAME_MAX} characters"),
            );
        }
        check_routing(
            &mut e,
            (self.status_id.as_deref(), self.status_category.as_deref()),
            (&self.assignee_id, self.assignee_email.as_deref()),
        );
        check_uuid(&mut e, "teamId", self.team_id.as_deref());
        check_enum(&mut e, "priority", self.priority.as_deref(), PRIORITIES);
        e
    }
}

impl TicketPatch {
    pub fn problems(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_routing(
            &mut e,
            (self.status_id.as_deref(), self.status_category.as_deref()),
            (&self.assignee_id, self.assignee_email.as_deref()),
        );
        check_uuid(&mut e, "teamId", self.team_id.clone().flatten().as_deref());
        check_enum(&mut e, "priority", self.priority.as_deref(), PRIORITIES);
        e
    }
}

/// A reply's author and text (`createTicketMessage`), checked together.
pub fn reply_problems(
    kind: &str,
    content: &str,
    author_id: Option<&str>,
    author_email: Option<&str>,
) -> FieldErrors {
    let mut e = FieldErrors::new();
    if kind != "reply" {
        e.insert("type".into(), "must be reply".into());
    }
    let trimmed = content.trim();
    if trimmed.is_empty() {
        e.insert("content".into(), "must not be empty".into());
    } else if chars(trimmed) > CONTENT_MAX {
        e.insert(
            "content".into(),
            format!("must be at most {CONTENT_MAX} characters"),
        );
    }
    check_uuid(&mut e, "authorId", author_id);
    check_email(&mut e, "authorEmail", author_email);
    match (author_id, author_email) {
        (None, None) => {
            e.insert(
                "authorId".into(),
                "send exactly one of authorId and authorEmail".into(),
            );
        }
        (Some(_), Some(_)) => {
            e.insert(
                "authorEmail".into(),
                "send exactly one of authorId and authorEmail".into(),
            );
        }
        _ => {}
    }
    e
}

/// Markdown as the thread shows it: HTML escaped (raw inline HTML is not carried
/// over), paragraphs on blank lines, single newlines kept as line breaks. `None`
/// when nothing visible is left (the spec's "not renderable").
pub fn render_content(text: &str) -> Option<String> {
    let stripped = strip_tags(text.trim());
    if stripped.trim().is_empty() {
        return None;
    }
    let paragraphs: Vec<String> = stripped
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lines: Vec<String> = p.lines().map(escape).collect();
            format!("<p>{}</p>", lines.join("<br>"))
        })
        .collect();
    Some(paragraphs.join(""))
}

/// Drops `<…>` runs that look like tags (raw inline HTML is stripped, as the
/// spec says); a lone `<` stays text.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let tagish = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        match (tagish, after.find('>')) {
            (true, Some(j)) => rest = &after[j + 1..],
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A customer's id: stable per agent and address (or visitor), so the same person
/// is one customer across tickets.
pub fn customer_id(agent_id: &str, key: &str) -> String {
    let digest = crate::keys::sha256_hex(&format!("{agent_id}\u{0}{}", key.to_lowercase()));
    format!("cus_{}", &digest[..24])
}

/// The ticket channel of a conversation source.
pub fn channel_of_source(source: &str) -> &'static str {
    match source {
        "Widget or Iframe" => "iframe",
        "API" => "api",
        "WhatsApp" => "whatsapp",
        "Messenger" => "messenger",
        "Instagram" => "instagram",
        "Email" => "email",
        _ => "helpdesk",
    }
}

/// The payload the ticket events carry.
fn ticket_payload(t: &Ticket) -> Value {
    serde_json::json!({
        "ticketNumber": t.number,
        "conversationId": t.conversation_id,
        "subject": t.subject,
        "statusCategory": t.status_category,
        "statusId": t.status_id,
        "assigneeId": t.assignee_id,
        "assigneeEmail": t.assignee_email,
        "teamId": t.team_id,
        "priority": t.priority,
        "channel": t.channel,
        "updatedAt": time_fmt::iso8601(t.updated_at),
    })
}

pub fn ticket_created(t: &Ticket) -> OutboxEvent {
    OutboxEvent::new(&t.agent_id, TICKET_CREATED, ticket_payload(t))
}

pub fn ticket_updated(t: &Ticket) -> OutboxEvent {
    OutboxEvent::new(&t.agent_id, TICKET_UPDATED, ticket_payload(t))
}

/// `how`: `operator`, `visitor` or `model`.
pub fn taken_over(t: &Ticket, conversation_id: &str, how: &str, at: Millis) -> OutboxEvent {
    OutboxEvent::new(
        &t.agent_id,
        TICKET_TAKEN_OVER,
        serde_json::json!({
            "conversationId": conversation_id,
            "ticketNumber": t.number,
            "requestedBy": how,
            "takenOverAt": time_fmt::iso8601(at),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_emails_are_checked_for_shape() {
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
        assert!(is_email("Ann@Example.com"));
        for bad in ["", "a", "a@b", "@b.c", "a@b.c d", "a@@b.c", "a@.b"] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn content_is_escaped_and_tags_are_stripped() {
        assert_eq!(
            render_content("Hi <b>there</b>\nline 2\n\n5 < 6 & x").as_deref(),
            Some("<p>Hi there<br>line 2</p><p>5 &lt; 6 &amp; x</p>")
        );
        assert_eq!(render_content("<img src=x onerror=alert(1)>"), None);
        assert_eq!(render_content("   "), None);
    }

    #[test]
    fn a_new_ticket_reports_every_bad_field() {
        let p = NewTicketInput {
            subject: Some(String::new()),
            description: None,
            customer_email: Some("nope".into()),
            status_id: Some("x".into()),
            status_category: Some("open".into()),
            priority: Some("p1".into()),
            ..NewTicketInput::default()
        }
        .problems();
        for f in [
            "subject",
            "description",
            "customer.email",
            "statusId",
            "statusCategory",
            "priority",
        ] {
            assert!(p.contains_key(f), "{f}: {p:?}");
        }
    }

    #[test]
    fn cursors_remember_their_order() {
        let c = TicketCursor {
            s: TicketSort::LastMessageAt,
            asc: true,
            t: 5,
            id: "x".into(),
        };
        assert_eq!(TicketCursor::decode(&c.encode()), Some(c));
        assert_eq!(TicketCursor::decode("garbage!"), None);
    }
}
