//! Webhooks: an agent's endpoints, the events they may ask for, the bodies sent
//! (Chatbase's `{eventType, chatbotId, payload}`) and their signature (hex
//! HMAC-SHA1 of the raw body, as Chatbase's `x-chatbase-signature`). No IO: the
//! outbox lives in `store`, delivery in `service`.

use hmac::{Hmac, Mac};
use serde_json::Value;

use crate::conversation::{Conversation, Message};
use crate::{FieldErrors, Millis, ids, time_fmt};

/// The events an endpoint may subscribe to. `leads.submit` is Chatbase's; the others
/// are agentbase's own.
pub const EVENTS: &[&str] = &[
    LEADS_SUBMIT,
    CONVERSATION_STARTED,
    MESSAGE_ANSWERED,
    "conversation.taken_over",
    "ticket.created",
    "ticket.updated",
    TRAINING_FINISHED,
];
pub const LEADS_SUBMIT: &str = "leads.submit";
pub const CONVERSATION_STARTED: &str = "conversation.started";
pub const MESSAGE_ANSWERED: &str = "message.answered";
pub const TRAINING_FINISHED: &str = "training.finished";

/// Endpoints one agent may have: every event is written once per endpoint.
pub const MAX_PER_AGENT: usize = 20;
pub const MAX_URL_LEN: usize = 2048;
/// The header carrying the signature, named as Chatbase names it.
pub const SIGNATURE_HEADER: &str = "x-chatbase-signature";
/// The event's id: the same on every attempt, so a receiver can drop repeats.
pub const EVENT_ID_HEADER: &str = "x-agentbase-event-id";

/// One endpoint of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub workspace_id: String,
    pub agent_id: String,
    pub url: String,
    /// Signs the deliveries; shown to the workspace so its receiver can check them.
    pub secret: String,
    pub events: Vec<String>,
    pub active: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A new endpoint, or the fields of an update (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
}

impl WebhookInput {
    /// Every problem, by field. `creating` makes `url` and `events` required.
    pub fn problems(&self, creating: bool) -> FieldErrors {
        let mut e = FieldErrors::new();
        match &self.url {
            None if creating => {
                e.insert("url".into(), "is required".into());
            }
            None => {}
            Some(u) => {
                if let Err(m) = check_url(u) {
                    e.insert("url".into(), m);
                }
            }
        }
        match &self.events {
            None if creating => {
                e.insert("events".into(), "is required".into());
            }
            None => {}
            Some(list) if list.is_empty() => {
                e.insert("events".into(), "must name at least one event".into());
            }
            Some(list) => {
                if let Some(bad) = list.iter().find(|x| !EVENTS.contains(&x.as_str())) {
                    e.insert(
                        "events".into(),
                        format!(
                            "unknown event {:?}; one of {}",
                            truncate(bad, 64),
                            EVENTS.join(", ")
                        ),
                    );
                }
            }
        }
        e
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An http(s) URL with a host, of bounded length, without credentials.
fn check_url(u: &str) -> Result<(), String> {
    if u.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let rest = if let Some(r) = u.strip_prefix("https://") {
        r
    } else if let Some(r) = u.strip_prefix("http://") {
        r
    } else {
        return Err("must be an http:// or https:// URL".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err("must name a host".into());
    }
    if authority.contains('@') {
        return Err("must not carry credentials".into());
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(())
}

/// A fresh signing secret.
pub fn new_secret() -> String {
    format!("whsec_{}", ids::alphanumeric(32))
}

/// Hex HMAC-SHA1 of `body` keyed by `secret`: Chatbase's `x-chatbase-signature`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// An event for an agent's endpoints, with the exact body they will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: String,
    /// The endpoints are this agent's (their rows name the workspace).
    pub agent_id: String,
    pub event_type: &'static str,
    pub body: String,
}

impl OutboxEvent {
    /// The body in Chatbase's shape, keys in its order: `eventType`, `chatbotId`,
    /// `payload`.
    pub fn new(agent_id: &str, event_type: &'static str, payload: Value) -> OutboxEvent {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            event_type: &'a str,
            chatbot_id: &'a str,
            payload: Value,
        }
        let body = serde_json::to_string(&Body {
            event_type,
            chatbot_id: agent_id,
            payload,
        })
        .unwrap_or_default();
        OutboxEvent {
            id: ids::alphanumeric(24),
            agent_id: agent_id.to_owned(),
            event_type,
            body,
        }
    }

    pub fn conversation_started(c: &Conversation) -> OutboxEvent {
        OutboxEvent::new(
            &c.agent_id,
            CONVERSATION_STARTED,
            serde_json::json!({
                "conversationId": c.id,
                "source": c.source,
                "userId": c.user_id,
                "createdAt": time_fmt::iso8601(c.created_at),
            }),
        )
    }

    pub fn message_answered(agent_id: &str, m: &Message) -> OutboxEvent {
        OutboxEvent::new(
            agent_id,
            MESSAGE_ANSWERED,
            serde_json::json!({
                "conversationId": m.conversation_id,
                "messageId": m.id,
                "text": m.text(),
                "finishReason": m.finish_reason,
                "createdAt": time_fmt::iso8601(m.created_at),
            }),
        )
    }

    /// Chatbase's `leads.submit`: every payload field a string.
    pub fn leads_submit(lead: &crate::lead::Lead) -> OutboxEvent {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        OutboxEvent::new(
            &lead.agent_id,
            LEADS_SUBMIT,
            serde_json::json!({
                "conversationId": text(&lead.conversation_id),
                "customerEmail": text(&lead.email),
                "customerName": text(&lead.name),
                "customerPhone": text(&lead.phone),
            }),
        )
    }

    pub fn training_finished(
        agent_id: &str,
        source_id: &str,
        status: &str,
        at: Millis,
    ) -> OutboxEvent {
        OutboxEvent::new(
            agent_id,
            TRAINING_FINISHED,
            serde_json::json!({
                "sourceId": source_id,
                "status": status,
                "finishedAt": time_fmt::iso8601(at),
            }),
        )
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet accepted by the endpoint; attempted again at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: attempts used up, or the target was refused by the SSRF guard.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub agent_id: String,
    pub event_type: String,
    pub body: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
}

/// One attempt at a delivery, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: i64,
    pub started_at: Millis,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

/// How long to wait before attempt `attempts + 1`, after `attempts` failures:
/// `base` doubling each time, at most `max`.
pub fn backoff_ms(attempts: i64, base_ms: i64, max_ms: i64) -> i64 {
    let shift = (attempts - 1).clamp(0, 30) as u32;
    base_ms.saturating_mul(1i64 << shift).min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hex_hmac_sha1_of_the_raw_body() {
        // RFC 2202 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn the_body_keeps_chatbases_key_order() {
        let e = OutboxEvent::new("bot", LEADS_SUBMIT, serde_json::json!({"a": "b"}));
        assert_eq!(
            e.body,
            r#"{"eventType":"leads.submit","chatbotId":"bot","payload":{"a":"b"}}"#
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff_ms(1, 1000, 60_000), 1000);
        assert_eq!(backoff_ms(2, 1000, 60_000), 2000);
        assert_eq!(backoff_ms(4, 1000, 60_000), 8000);
        assert_eq!(backoff_ms(40, 1000, 60_000), 60_000);
    }

    #[test]
    fn inputs_are_checked_field_by_field() {
        let bad = WebhookInput {
            url: Some("ftp://x".into()),
            events: Some(vec!["nope".into()]),
            active: None,
        };
        let p = bad.problems(true);
        assert!(p.contains_key("url") && p.contains_key("events"), "{p:?}");
        assert!(WebhookInput::default().problems(false).is_empty());
        assert_eq!(WebhookInput::default().problems(true).len(), 2);
        for u in [
            "http://",
            "https://u:p@h/",
            "http://h/ x",
            "javascript:alert(1)",
        ] {
            assert!(check_url(u).is_err(), "{u}");
        }
        assert!(check_url("https://hooks.example.com/in?x=1").is_ok());
    }
}
