//! The widget's answers on the wire (its config, a created lead, a handoff, the
//! live feed), and the live feed and training progress the dashboard's scripts
//! poll. The widget's JavaScript and the browser tests read these shapes; fields
//! are declared in the order the JSON has them.

use agentbase_core::Agent;
use agentbase_core::conversation::ConversationStatus;
use agentbase_core::conversation::MessageRole;
use agentbase_core::knowledge::{Source, TrainingJob};
use agentbase_service::helpdesk::LiveMessage;
use serde::Serialize;
use serde_json::Value;

/// `{"data": …}`: the envelope of the widget's answers.
#[derive(Debug, Serialize)]
pub struct Data<T> {
    pub data: T,
}

/// `GET /widget/v1/agents/{agentId}/config`: what the panel shows before any turn.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WidgetConfig {
    pub id: String,
    pub initial_messages: Vec<String>,
    /// The lead form, when the agent collects leads.
    pub lead_form: Option<Value>,
    pub name: String,
    pub styles: Option<Value>,
    pub suggested_messages: Option<Value>,
}

impl WidgetConfig {
    pub fn of(agent: &Agent) -> Self {
        WidgetConfig {
            id: agent.id.clone(),
            initial_messages: agent.initial_messages.clone(),
            lead_form: agentbase_core::lead::form_of(agent.lead_form.as_ref())
                .filter(|f| f.asks_anything())
                .map(|f| f.to_json()),
            name: agent.name.clone(),
            styles: agent.styles.clone(),
            suggested_messages: agent.suggested_messages.clone(),
        }
    }
}

/// A created lead: its id.
#[derive(Debug, Serialize)]
pub struct CreatedLead {
    pub id: String,
}

/// A conversation the visitor handed to a person.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandedOff {
    pub conversation_id: String,
    pub status: &'static str,
    pub ticket_number: i64,
}

/// The live feed's answer: the messages past the one asked for, and the
/// conversation's status.
#[derive(Debug, Serialize)]
pub struct LiveFeed {
    pub messages: Vec<LiveMessageDto>,
    pub status: &'static str,
}

impl LiveFeed {
    pub fn of(messages: &[LiveMessage], status: ConversationStatus) -> Self {
        LiveFeed {
            messages: messages.iter().map(LiveMessageDto::of).collect(),
            status: status.as_str(),
        }
    }
}

/// A live message as the widget and the dashboard read it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveMessageDto {
    pub answered_by: Option<AnsweredBy>,
    pub created_at: i64,
    pub id: String,
    pub role: &'static str,
    pub seq: i64,
    pub text: String,
}

/// Who answered: a person (an operator's reply) or the AI.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AnsweredBy {
    Human {
        email: Option<String>,
        name: Option<String>,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    Ai {
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

impl LiveMessageDto {
    pub fn of(m: &LiveMessage) -> Self {
        let answered_by = match (&m.author, m.message.role) {
            (Some(a), _) => Some(AnsweredBy::Human {
                email: a.email.clone(),
                name: a.name.clone(),
                kind: "human",
            }),
            (None, MessageRole::Assistant) => Some(AnsweredBy::Ai { kind: "ai" }),
            (None, MessageRole::User) => None,
        };
        LiveMessageDto {
            answered_by,
            created_at: m.message.created_at.div_euclid(1000),
            id: m.message.id.clone(),
            role: m.message.role.as_str(),
            seq: m.message.seq,
            text: m.message.text(),
        }
    }
}

/// The dashboard's live training progress: the agent's status, each source's
/// status and the unfinished jobs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingProgress {
    pub agent_status: &'static str,
    pub jobs: Vec<JobProgress>,
    pub sources: Vec<SourceProgress>,
}

#[derive(Debug, Serialize)]
pub struct SourceProgress {
    pub error: Option<String>,
    pub id: String,
    pub pages: i64,
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    pub done: i64,
    pub source_id: String,
    pub stage: String,
    pub status: &'static str,
    pub total: i64,
}

impl TrainingProgress {
    pub fn of(agent: &Agent, sources: &[Source], jobs: &[TrainingJob]) -> Self {
        TrainingProgress {
            agent_status: agent.status.as_str(),
            jobs: (jobs.iter())
                .map(|j| JobProgress {
                    done: j.done,
                    source_id: j.source_id.clone(),
                    stage: j.stage.clone(),
                    status: j.status.as_str(),
                    total: j.total,
                })
                .collect(),
            sources: (sources.iter())
                .map(|s| SourceProgress {
                    error: s.error.clone(),
                    id: s.id.clone(),
                    pages: s.pages,
                    status: s.status.as_str(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use agentbase_core::conversation::{Message, Part};
    use agentbase_core::helpdesk::Sender;
    use serde_json::json;

    use super::*;

    fn message(seq: i64, role: MessageRole) -> Message {
        Message {
            id: format!("m{seq}"),
            conversation_id: "c".into(),
            seq,
            role,
            parts: vec![Part::Text {
                text: format!("text {seq}"),
            }],
            created_at: 1_700_000_000_999,
            feedback: None,
            score: None,
            finish_reason: None,
            credits: 0.0,
            sources: Vec::new(),
            spam: false,
        }
    }

    #[test]
    fn the_live_feed_is_written_as_the_widget_reads_it() {
        let author = Sender::agent(None, Some("op@example.com".into()), None);
        let messages = [
            LiveMessage {
                message: message(1, MessageRole::User),
                author: None,
            },
            LiveMessage {
                message: message(2, MessageRole::Assistant),
                author: None,
            },
            LiveMessage {
                message: message(3, MessageRole::Assistant),
                author: Some(author),
            },
        ];
        let feed = Data {
            data: LiveFeed::of(&messages, ConversationStatus::TakenOver),
        };
        let at = 1_700_000_000;
        let expected = json!({"data": {
            "status": "taken_over",
            "messages": [
                {"id": "m1", "seq": 1, "role": "user", "text": "text 1", "createdAt": at, "answeredBy": null},
                {"id": "m2", "seq": 2, "role": "assistant", "text": "text 2", "createdAt": at,
                 "answeredBy": {"type": "ai"}},
                {"id": "m3", "seq": 3, "role": "assistant", "text": "text 3", "createdAt": at,
                 "answeredBy": {"type": "human", "name": null, "email": "op@example.com"}},
            ],
        }});
        // Byte for byte: the same keys in the same order as before.
        assert_eq!(
            serde_json::to_string(&feed).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }
}
