//! The chat turn and the conversation surface.
//!
//! A turn is prepared in the caller's task — every check that can refuse it (agent,
//! conversation, lease, credits, input) runs before anything is streamed, so
//! refusals are ordinary error responses — and then generated in a spawned task that
//! sends [`TurnEvent`]s through a channel. The task stores the assistant message,
//! its tool calls and its credit charge, then sends `Finish`.
//!
//! Defined outcomes:
//! - two turns on one conversation never interleave: a turn holds the
//!   conversation's lease (a row in the record, so it holds across nodes); a second
//!   turn meanwhile is refused with `ConversationBusy`;
//! - a client that goes away (the receiver is dropped) cancels generation; the
//!   partial answer, if any, is stored with finish reason `error` and no credits;
//! - a model failure mid-answer sends `Error`, stores the partial answer the same
//!   way, and still ends with `Finish`;
//! - a pending tool call is stored when the model completes it, before the client
//!   hears of it, so `tool-result` never races the stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agentbase_core::conversation::{
    Citation, Conversation, ConversationStatus, CreditEntry, Feedback, Message, MessageRole, Part,
    ToolCallRecord, ToolCallStatus,
};
use agentbase_core::model::{
    ChatMessage, ChatRequest, FinishReason, ModelError, ModelEvent, ModelStream, Role, ToolSpec,
};
use agentbase_core::time_fmt::month_start;
use agentbase_core::{
    Agent, Clock, Cursor, Error, Millis, Rejection, Resource, Result, conversation, ids, prompt,
};
use agentbase_store::{ConversationFilter, NewTurn, Page, Store, TurnLease};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::credits::Credits;
use crate::knowledge::{Knowledge, Retrieved};
use crate::models::{ModelEntry, Registry};
use crate::settings::Settings;
use crate::{Agents, Principal, contacts, helpdesk};

pub const SOURCE_API: &str = "API";
/// Turns sent through the embeddable widget (Chatbase's name for the source).
pub const SOURCE_WIDGET: &str = "Widget or Iframe";
const TITLE_CHARS: usize = 60;

/// The `channelInstructions` key of a conversation's source, if it has one.
pub fn channel_of(source: &str) -> Option<&'static str> {
    match source {
        SOURCE_API => Some("api"),
        SOURCE_WIDGET => Some("chat_widget"),
        _ => None,
    }
}

#[derive(Debug, Clone, Default)]
pub struct ChatInput {
    pub agent_id: String,
    pub message: Option<String>,
    pub conversation_id: Option<String>,
    pub user_id: Option<String>,
    pub source: String,
}

/// Messages of a conversation read for a prompt (the newest).
pub const PROMPT_HISTORY_MESSAGES: u32 = 200;

/// Most messages a v1 chat request may carry (its client-held history).
pub const V1_MAX_MESSAGES: usize = 1000;

/// Known before the first byte is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnMeta {
    pub message_id: String,
    pub user_message_id: String,
    pub conversation_id: String,
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    TextDelta(String),
    ToolInputStart {
        id: String,
        name: String,
    },
    ToolInputDelta {
        id: String,
        delta: String,
    },
    ToolInputAvailable {
        id: String,
        name: String,
        input: Value,
    },
    /// The knowledge the answer is given, before any text.
    Sources(Vec<Citation>),
    Error(String),
    /// Always last. `finish_reason` is `stop`, `tool-calls` or `error`.
    Finish {
        finish_reason: &'static str,
        credits: f64,
    },
}

pub struct Turn {
    pub meta: TurnMeta,
    pub events: mpsc::Receiver<TurnEvent>,
}

/// `^[a-zA-Z0-9._-]{1,128}$`, the contract's user id.
pub fn valid_user_id(u: &str) -> bool {
    (1..=128).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Everything the generation task needs.
struct Generation {
    principal: Principal,
    agent: Agent,
    entry: ModelEntry,
    conversation: Conversation,
    lease: TurnLease,
    meta: TurnMeta,
    assistant_seq: i64,
    history: Vec<Message>,
    tools: Vec<ToolCallRecord>,
    title: Option<String>,
    overrides: Overrides,
    /// A new conversation not yet in the record (see [`Opening`]).
    opening: Option<Opening>,
}

/// A turn that holds its conversation: the agent, its model and the lease.
struct Leased {
    agent: Agent,
    entry: ModelEntry,
    conversation: Conversation,
    lease: TurnLease,
}

/// What a turn starts from once every check has passed and the user message is in
/// (or, with `opening`, is ready to go in with the answer).
struct Prepared {
    history: Vec<Message>,
    tools: Vec<ToolCallRecord>,
    user_message_id: String,
    opening: Option<Opening>,
}

/// The first turn of a new conversation whose caller acknowledges nothing before
/// the whole answer (a JSON response): the conversation and its user message are
/// written with the answer in one transaction instead of one before and one after
/// generation. Nobody else knows the conversation's id until then, so it needs no
/// lease in the record; should the turn register a tool call (whose row refers to
/// the conversation) it is written, leased, at that point.
struct Opening {
    conversation: Conversation,
    message: Message,
    lease_expires: Millis,
}

/// v1 chat sends its own history and may set the temperature.
#[derive(Debug, Clone, Default)]
struct Overrides {
    messages: Option<Vec<ChatMessage>>,
    temperature: Option<f64>,
}

/// `POST /api/v1/chat`: the client sends the whole history.
#[derive(Debug, Clone, Default)]
pub struct V1Input {
    pub agent_id: String,
    /// (`user` or `assistant`, content), oldest first; the last is the new message.
    pub messages: Vec<(String, String)>,
    pub temperature: Option<f64>,
    pub model: Option<String>,
    pub conversation_id: Option<String>,
}

/// Conversations and their turns: the chat turn (API, dashboard, widget and v1), tool
/// results, retries, and reading, pausing, rating and searching conversations.
pub struct Conversations {
    // The crate sees `store` and `agents` for this service's use cases in
    // `conversation_search.rs`.
    pub(crate) store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    /// An agent's `model` → the provider instance that answers and its price.
    models: Registry,
    knowledge: Arc<Knowledge>,
    pub(crate) agents: Arc<Agents>,
    credits: Arc<Credits>,
    /// A turn on a taken-over conversation, or one the model escalates, is the
    /// helpdesk's too.
    handoffs: Arc<helpdesk::Handoffs>,
    /// A widget visitor's contact fills the agent's instructions.
    contacts: Arc<contacts::Contacts>,
}

/// What [`Conversations`] is built from (the services it calls and the shared pieces).
pub(crate) struct Parts {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub models: Registry,
    pub knowledge: Arc<Knowledge>,
    pub agents: Arc<Agents>,
    pub credits: Arc<Credits>,
    pub handoffs: Arc<helpdesk::Handoffs>,
    pub contacts: Arc<contacts::Contacts>,
}

impl Conversations {
    pub(crate) fn new(p: Parts) -> Self {
        Conversations {
            store: p.store,
            clock: p.clock,
            settings: p.settings,
            models: p.models,
            knowledge: p.knowledge,
            agents: p.agents,
            credits: p.credits,
            handoffs: p.handoffs,
            contacts: p.contacts,
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Releases the lease when preparation fails, then passes the error on.
    async fn or_release<T>(&self, lease: &TurnLease, r: Result<T>) -> Result<T> {
        if r.is_err()
            && let Err(e) = self.store.release_turn(lease).await
        {
            tracing::warn!(error = %e, "could not release a turn lease");
        }
        r
    }

    fn model_for(&self, agent: &Agent) -> Result<ModelEntry> {
        self.models
            .get(&agent.model)
            .cloned()
            .ok_or_else(|| Error::Unavailable(format!("model `{}` is not configured", agent.model)))
    }

    /// The conversation of this agent, leased for one turn.
    async fn lease_conversation(
        &self,
        p: &Principal,
        agent: &Agent,
        id: &str,
        allow_taken_over: bool,
    ) -> Result<(Conversation, TurnLease)> {
        let conversation = self
            .store
            .conversation(&p.workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Conversation))?;
        if conversation.agent_id != agent.id {
            return Err(Error::Rejected(Rejection::ConversationMismatch));
        }
        // A new message to a taken-over conversation is kept for the person
        // answering it (see `helpdesk`); nothing else may run a turn there.
        if conversation.status == ConversationStatus::Ended
            || (conversation.status == ConversationStatus::TakenOver && !allow_taken_over)
        {
            return Err(Error::Rejected(Rejection::ConversationNotOngoing));
        }
        let lease_ms = (self.settings.chat.turn_lease_secs * 1000) as i64;
        let lease = self
            .store
            .acquire_turn(
                &conversation.id,
                &ids::alphanumeric(24),
                self.now(),
                lease_ms,
            )
            .await?
            .ok_or(Error::Rejected(Rejection::ConversationBusy))?;
        Ok((conversation, lease))
    }

    /// A new conversation, created already leased to the turn that makes it.
    async fn new_conversation(
        &self,
        p: &Principal,
        agent: &Agent,
        id: String,
        user_id: Option<String>,
        source: &str,
    ) -> Result<(Conversation, TurnLease)> {
        let (c, lease, expires) = self.unsaved_conversation(p, agent, id, user_id, source);
        self.store
            .insert_conversation(&c, Some((&lease.token, expires)))
            .await?;
        Ok((c, lease))
    }

    /// A new conversation and its lease (with its expiry), not yet in the record.
    fn unsaved_conversation(
        &self,
        p: &Principal,
        agent: &Agent,
        id: String,
        user_id: Option<String>,
        source: &str,
    ) -> (Conversation, TurnLease, Millis) {
        let now = self.now();
        let c = Conversation {
            id,
            workspace_id: p.workspace_id.clone(),
            agent_id: agent.id.clone(),
            user_id,
            title: None,
            status: ConversationStatus::Ongoing,
            source: source.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let lease_ms = (self.settings.chat.turn_lease_secs * 1000) as i64;
        let lease = TurnLease {
            conversation_id: c.id.clone(),
            token: ids::alphanumeric(24),
        };
        (c, lease, now + lease_ms)
    }

    /// The first turn of a new conversation: the conversation and its user message
    /// go to the record in one transaction, and there is no history to read.
    async fn start_conversation(
        &self,
        p: &Principal,
        agent: &Agent,
        input: &ChatInput,
        text: &str,
        at_once: bool,
    ) -> Result<(Conversation, TurnLease, Prepared)> {
        let (c, lease, expires) = self.unsaved_conversation(
            p,
            agent,
            ids::uuid_v4(),
            input.user_id.clone(),
            &input.source,
        );
        let m = Message {
            id: ids::message_id(),
            conversation_id: c.id.clone(),
            seq: 1,
            role: MessageRole::User,
            parts: vec![Part::Text {
                text: text.to_owned(),
            }],
            created_at: c.created_at,
            feedback: None,
            score: None,
            finish_reason: None,
            credits: 0.0,
            sources: Vec::new(),
            spam: false,
        };
        let opening = if at_once {
            Some(Opening {
                conversation: c.clone(),
                message: m.clone(),
                lease_expires: expires,
            })
        } else {
            self.store
                .insert_conversation_with_message(&c, Some((&lease.token, expires)), &m)
                .await?;
            None
        };
        let prepared = Prepared {
            user_message_id: m.id.clone(),
            history: vec![m],
            tools: Vec::new(),
            opening,
        };
        Ok((c, lease, prepared))
    }

    /// `POST /agents/{id}/chat`, streamed: the user message is in the record
    /// before the turn is returned.
    pub async fn chat(self: &Arc<Self>, p: &Principal, input: ChatInput) -> Result<Turn> {
        self.chat_turn(p, input, false).await
    }

    /// `POST /agents/{id}/chat` for a caller that acknowledges nothing before the
    /// whole answer (a JSON response): a new conversation goes to the record with
    /// its answer, in one transaction (see [`Opening`]).
    pub async fn chat_at_once(self: &Arc<Self>, p: &Principal, input: ChatInput) -> Result<Turn> {
        self.chat_turn(p, input, true).await
    }

    async fn chat_turn(
        self: &Arc<Self>,
        p: &Principal,
        input: ChatInput,
        at_once: bool,
    ) -> Result<Turn> {
        let mut invalid = agentbase_core::FieldErrors::new();
        let max_chars = self.settings.chat.max_message_chars;
        if input.message.as_deref().is_some_and(str::is_empty) {
            invalid.insert("message".into(), "must not be empty".into());
        } else if input
            .message
            .as_deref()
            .is_some_and(|m| m.chars().count() > max_chars)
        {
            invalid.insert(
                "message".into(),
                format!("must be at most {max_chars} characters"),
            );
        }
        if input.user_id.as_deref().is_some_and(|u| !valid_user_id(u)) {
            invalid.insert(
                "userId".into(),
                "must be 1–128 characters of a-z, A-Z, 0-9, '.', '_' or '-'".into(),
            );
        }
        if input.conversation_id.is_none() && input.message.is_none() {
            invalid.insert("message".into(), "Required".into());
        }
        if !invalid.is_empty() {
            return Err(Error::Invalid(invalid));
        }
        let agent = self.agents.get(&p.workspace_id, &input.agent_id).await?;
        let entry = self.model_for(&agent)?;
        // Spam detection covers what visitors and API clients send (not the
        // operator's playground); a spam message is stored but not answered.
        let spam = match (&input.message, agent.spam_check()) {
            (Some(text), Some(settings)) if channel_of(&input.source).is_some() => {
                self.is_spam(&entry, &p.workspace_id, settings, text).await
            }
            _ => false,
        };
        let (mut conversation, lease, prepared) = match (&input.conversation_id, &input.message) {
            (Some(id), _) => {
                let (conversation, lease) = self.lease_conversation(p, &agent, id, true).await?;
                let prepared = self
                    .prepare_chat(p, &agent, &entry, &conversation, &input, true)
                    .await;
                let prepared = self.or_release(&lease, prepared).await?;
                (conversation, lease, prepared)
            }
            (None, Some(text)) => {
                self.credits.check(p, &agent, entry.credits).await?;
                self.start_conversation(p, &agent, &input, text, at_once && !spam)
                    .await?
            }
            (None, None) => return Err(Error::invalid("message", "Required")),
        };
        if conversation.status == ConversationStatus::TakenOver
            && let Some(text) = &input.message
        {
            let kept = self
                .handoffs
                .handoff_user_message(&p.workspace_id, &conversation, text)
                .await;
            self.or_release(&lease, kept).await?;
        }
        if spam && conversation.status != ConversationStatus::TakenOver {
            let flagged = self
                .store
                .flag_spam(&conversation.id, &prepared.user_message_id)
                .await;
            self.or_release(&lease, flagged).await?;
            tracing::info!(agent = %agent.id, conversation = %conversation.id, "message flagged as spam; not answered");
            conversation.status = ConversationStatus::Paused;
        }
        let turn = Leased {
            agent,
            entry,
            conversation,
            lease,
        };
        self.start(p, turn, prepared, Overrides::default()).await
    }

    /// `POST /api/v1/chat`. The answer is stored in the conversation named by
    /// `conversationId` (created under that id when new) or in a new one.
    pub async fn chat_v1(self: &Arc<Self>, p: &Principal, input: V1Input) -> Result<Turn> {
        let mut invalid = check_v1_input(&input, self.settings.chat.max_message_chars);
        let agent = self.agents.get(&p.workspace_id, &input.agent_id).await?;
        let entry = match &input.model {
            Some(m) => match self.models.get(m) {
                Some(e) => e.clone(),
                None => {
                    invalid.insert(
                        "model".into(),
                        format!("unknown model `{m}`: not configured on this server"),
                    );
                    return Err(Error::Invalid(invalid));
                }
            },
            None => self.model_for(&agent)?,
        };
        if !invalid.is_empty() {
            return Err(Error::Invalid(invalid));
        }
        self.credits.check(p, &agent, entry.credits).await?;
        // A client-chosen id is the client's name for the conversation within its
        // workspace; the record's id is derived from both, so the same name in two
        // workspaces is two conversations and neither learns of the other.
        // (`Store::conversation` finds it by either name.)
        let existing = match &input.conversation_id {
            Some(id) => self.store.conversation(&p.workspace_id, id).await?,
            None => None,
        };
        let (conversation, lease) = match existing {
            Some(c) => self.lease_conversation(p, &agent, &c.id, false).await?,
            None => {
                let id = match &input.conversation_id {
                    Some(chosen) => conversation::v1_id(&p.workspace_id, chosen),
                    None => ids::uuid_v4(),
                };
                self.new_conversation(p, &agent, id, None, SOURCE_API)
                    .await?
            }
        };
        let last = input
            .messages
            .last()
            .map(|m| m.1.clone())
            .unwrap_or_default();
        let as_input = ChatInput {
            agent_id: agent.id.clone(),
            message: Some(last),
            ..Default::default()
        };
        let prepared = self
            .prepare_chat(p, &agent, &entry, &conversation, &as_input, false)
            .await;
        let prepared = self.or_release(&lease, prepared).await?;
        let messages = input
            .messages
            .iter()
            .map(|(role, content)| {
                ChatMessage::text(
                    if role == "assistant" {
                        Role::Assistant
                    } else {
                        Role::User
                    },
                    content.clone(),
                )
            })
            .collect();
        let overrides = Overrides {
            messages: Some(messages),
            temperature: input.temperature,
        };
        let turn = Leased {
            agent,
            entry,
            conversation,
            lease,
        };
        self.start(p, turn, prepared, overrides).await
    }

    /// Credits, the continuation rule and the user message.
    async fn prepare_chat(
        &self,
        p: &Principal,
        agent: &Agent,
        entry: &ModelEntry,
        conversation: &Conversation,
        input: &ChatInput,
        existing: bool,
    ) -> Result<Prepared> {
        if existing
            && !matches!(
                conversation.status,
                ConversationStatus::Paused | ConversationStatus::TakenOver
            )
        {
            self.credits.check(p, agent, entry.credits).await?;
        }
        // A long conversation's older messages cannot fit any model's window; reading
        // only the newest keeps a turn's cost bounded however long it grows.
        let mut history = self
            .store
            .recent_messages(&conversation.id, PROMPT_HISTORY_MESSAGES)
            .await?;
        let tools = self.store.tool_calls(&conversation.id).await?;
        let next_seq = history.last().map_or(1, |m| m.seq + 1);
        let user_message_id = match &input.message {
            Some(text) => {
                let m = Message {
                    id: ids::message_id(),
                    conversation_id: conversation.id.clone(),
                    seq: next_seq,
                    role: MessageRole::User,
                    parts: vec![Part::Text { text: text.clone() }],
                    created_at: self.now(),
                    feedback: None,
                    score: None,
                    finish_reason: None,
                    credits: 0.0,
                    sources: Vec::new(),
                    spam: false,
                };
                self.store.insert_message(&m).await?;
                let id = m.id.clone();
                history.push(m);
                id
            }
            None => {
                let continuing = history.last().is_some_and(|m| {
                    m.role == MessageRole::Assistant
                        && m.parts.iter().any(|p| matches!(p, Part::ToolCall { .. }))
                        && m.parts.iter().all(|p| match p {
                            Part::ToolCall { tool_call_id, .. } => tools.iter().any(|t| {
                                &t.id == tool_call_id && t.status == ToolCallStatus::Resolved
                            }),
                            _ => true,
                        })
                });
                if !continuing {
                    return Err(Error::invalid(
                        "message",
                        "Required unless continuing after every tool call of the last answer has a result",
                    ));
                }
                history
                    .iter()
                    .rev()
                    .find(|m| m.role == MessageRole::User)
                    .map(|m| m.id.clone())
                    .unwrap_or_default()
            }
        };
        Ok(Prepared {
            history,
            tools,
            user_message_id,
            opening: None,
        })
    }

    async fn start(
        self: &Arc<Self>,
        p: &Principal,
        turn: Leased,
        prepared: Prepared,
        overrides: Overrides,
    ) -> Result<Turn> {
        let Leased {
            agent,
            entry,
            conversation,
            lease,
        } = turn;
        let Prepared {
            history,
            tools,
            user_message_id,
            opening,
        } = prepared;
        let meta = TurnMeta {
            message_id: ids::message_id(),
            user_message_id,
            conversation_id: conversation.id.clone(),
            user_id: conversation.user_id.clone(),
        };
        let (tx, rx) = mpsc::channel(64);
        if matches!(
            conversation.status,
            ConversationStatus::Paused | ConversationStatus::TakenOver
        ) {
            // A paused or taken-over conversation records messages but the agent
            // does not answer (a person answers a taken-over one).
            self.store.release_turn(&lease).await?;
            let _ = tx
                .send(TurnEvent::Finish {
                    finish_reason: "stop",
                    credits: 0.0,
                })
                .await;
            return Ok(Turn { meta, events: rx });
        }
        let title = history
            .iter()
            .find(|m| m.role == MessageRole::User)
            .map(|m| m.text().chars().take(TITLE_CHARS).collect::<String>());
        let generation = Generation {
            principal: p.clone(),
            assistant_seq: history.last().map_or(1, |m| m.seq + 1),
            agent,
            entry,
            conversation,
            lease,
            meta: meta.clone(),
            history,
            tools,
            title,
            overrides,
            opening,
        };
        let this = self.clone();
        let keeper = AbortOnDrop(self.keep_lease(generation.lease.clone()));
        tokio::spawn(async move {
            this.generate(generation, tx).await;
            drop(keeper);
        });
        Ok(Turn { meta, events: rx })
    }

    /// Renews the turn's lease every third of `chat.turn_lease_secs` while the
    /// turn runs, so the lease can be short: a turn cut off by a crash frees its
    /// conversation within one lease, however long turns may take. Ends by itself
    /// once the lease is released (or lost), or when aborted.
    fn keep_lease(self: &Arc<Self>, lease: TurnLease) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let ttl_ms = (self.settings.chat.turn_lease_secs * 1000) as i64;
        let every = Duration::from_millis((ttl_ms as u64 / 3).max(200));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match this.store.renew_turn(&lease, this.now(), ttl_ms).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(conversation = %lease.conversation_id, error = %e, "turn lease not renewed")
                    }
                }
            }
        })
    }

    /// Retrieves knowledge for the turn's question (the last user message).
    /// `None` when the agent has no trained knowledge; retrieval failures are
    /// logged and the turn goes on without knowledge rather than failing.
    async fn knowledge_for(self: &Arc<Self>, g: &Generation) -> Option<Vec<Retrieved>> {
        if g.agent.kb_version == 0 {
            return None;
        }
        let question = match &g.overrides.messages {
            Some(m) => m
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.content.clone()),
            None => g
                .history
                .iter()
                .rev()
                .find(|m| m.role == MessageRole::User)
                .map(Message::text),
        }?;
        let k = &self.settings.knowledge;
        match self
            .knowledge
            .retrieve(&g.agent, &question, k.retrieval_limit, k.floor())
            .await
        {
            Ok(hits) => hits,
            Err(e) => {
                tracing::warn!(agent = %g.agent.id, error = %e, "retrieval failed; answering without knowledge");
                None
            }
        }
    }

    /// The model request: instructions with the knowledge, and the history trimmed
    /// to the model's window. Counting tokens runs the model's tokenizer over the
    /// whole history, so the trimming runs off the async runtime.
    async fn request_for(&self, g: &Generation, knowledge: Option<&[Retrieved]>) -> ChatRequest {
        let model = &g.entry.model;
        let max_tokens = self.settings.chat.max_tokens;
        let budget = model
            .context_window()
            .saturating_sub(max_tokens as usize)
            .max(64);
        // Small models may get the knowledge next to the question instead
        // (`knowledge.small_model_inline`, grounding.rs).
        let inline = knowledge.filter(|k| {
            !k.is_empty()
                && self.settings.knowledge.small_model_inline
                && crate::grounding::quoting(&g.agent, model.as_ref())
        });
        let mut instructions = g
            .agent
            .instructions_for(channel_of(&g.conversation.source))
            .to_owned();
        // A widget visitor's contact fills the instructions' placeholders (contacts.rs).
        if g.conversation.source == SOURCE_WIDGET {
            instructions = self
                .contacts
                .personal_instructions(
                    &g.principal.workspace_id,
                    &g.agent.id,
                    g.conversation.user_id.as_deref(),
                    &instructions,
                )
                .await;
        }
        let system = ChatMessage::text(
            Role::System,
            prompt::with_knowledge(
                &instructions,
                knowledge
                    .filter(|_| inline.is_none())
                    .map(knowledge_entries)
                    .as_deref(),
            ),
        );
        let mut history = match &g.overrides.messages {
            Some(m) => m.clone(),
            None => prompt::history(&g.history, &g.tools),
        };
        if let Some(k) = inline {
            crate::grounding::inline_knowledge(&mut history, &knowledge_entries(k));
        }
        let counter = model.clone();
        // Only a panic in a tokenizer makes this fail; the turn goes on without history.
        let messages = tokio::task::spawn_blocking(move || {
            prompt::fit(Some(system), history, budget, &|t: &str| {
                counter.count_tokens(t)
            })
        })
        .await
        .unwrap_or_default();
        ChatRequest {
            upstream_model: g.entry.upstream.clone(),
            messages,
            tools: g
                .agent
                .actions
                .iter()
                .map(|a| ToolSpec {
                    name: a.name.clone(),
                    description: a.description.clone(),
                    parameters: a.parameters.clone(),
                })
                .collect(),
            temperature: g.overrides.temperature.unwrap_or(g.agent.temp),
            max_tokens,
        }
    }

    async fn generate(self: Arc<Self>, mut g: Generation, tx: mpsc::Sender<TurnEvent>) {
        let knowledge = self.knowledge_for(&g).await;
        let (citations, score) = citations_of(knowledge.as_deref());
        if !citations.is_empty() {
            let _ = tx.send(TurnEvent::Sources(citations.clone())).await;
        }
        // The workspace's place on a shared model, held until the answer is done.
        let turn = g.entry.turn_for(&g.principal.workspace_id).await;
        let stream = crate::grounding::answer(
            &g.agent,
            g.entry.model.as_ref(),
            self.request_for(&g, knowledge.as_deref()).await,
            knowledge.as_deref(),
        );
        let outcome = self.drive(&mut g, stream, &tx).await;
        drop(turn);
        let escalation = outcome.escalation;
        // Only the client's own actions leave a turn waiting for tool results.
        let client_calls = outcome
            .parts
            .iter()
            .any(|p| matches!(p, Part::ToolCall { .. }));
        let (finish_reason, credits, error) = match outcome.end {
            End::Finished(FinishReason::ToolCalls) if client_calls => {
                ("tool-calls", g.entry.credits, None)
            }
            End::Finished(_) => ("stop", g.entry.credits, None),
            End::Failed(e) => ("error", 0.0, Some(e)),
            End::Cancelled => ("error", 0.0, None),
        };
        let mut error = error;
        let mut released = false;
        if !outcome.parts.is_empty() || finish_reason != "error" {
            let answer = Answer {
                parts: outcome.parts,
                finish_reason,
                credits,
                citations,
                score,
            };
            released = self.store_answer(&mut g, answer, &mut error).await;
        }
        if let Some(o) = g.opening.take() {
            // No answer to store: the conversation and its user message still are.
            released = true;
            if let Err(e) = self
                .store
                .insert_conversation_with_message(&o.conversation, None, &o.message)
                .await
            {
                tracing::error!(error = %e, conversation = %g.conversation.id, "could not store the user message");
            }
        }
        if !released && let Err(e) = self.store.release_turn(&g.lease).await {
            tracing::warn!(error = %e, "could not release a turn lease");
        }
        if let Some(reason) = escalation
            && error.is_none()
        {
            // The answer (with its notice) is in; the conversation becomes a ticket
            // and the AI is silent until an operator hands it back.
            if let Err(e) = self
                .handoffs
                .take_over(
                    &g.principal.workspace_id,
                    &g.conversation,
                    crate::helpdesk::Handoff::Model,
                    reason.as_deref(),
                )
                .await
            {
                tracing::warn!(error = %e, conversation = %g.conversation.id, "the model's escalation was not taken over");
                error = Some("The conversation could not be handed to a person".to_owned());
            }
        }
        if let Some(e) = error {
            let _ = tx.send(TurnEvent::Error(e)).await;
        }
        let _ = tx
            .send(TurnEvent::Finish {
                finish_reason,
                credits,
            })
            .await;
    }

    /// Stores the answer with its charge (and the conversation, when this turn
    /// opened it), releasing the turn's lease; whether it was released. When that
    /// fails, `error` says so and the opening conversation is left to store alone.
    async fn store_answer(
        &self,
        g: &mut Generation,
        a: Answer,
        error: &mut Option<String>,
    ) -> bool {
        let now = self.now();
        let message = Message {
            id: g.meta.message_id.clone(),
            conversation_id: g.conversation.id.clone(),
            seq: g.assistant_seq,
            role: MessageRole::Assistant,
            parts: a.parts,
            created_at: now,
            feedback: None,
            score: a.score,
            finish_reason: Some(a.finish_reason.to_owned()),
            credits: a.credits,
            sources: a.citations,
            spam: false,
        };
        let credit = (a.credits > 0.0).then(|| CreditEntry {
            id: ids::alphanumeric(20),
            workspace_id: g.principal.workspace_id.clone(),
            agent_id: g.agent.id.clone(),
            conversation_id: Some(g.conversation.id.clone()),
            message_id: Some(message.id.clone()),
            model: g.entry.name.clone(),
            credits: a.credits,
            created_at: now,
        });
        let opening = g.opening.take();
        // An opening conversation goes in unleased: nothing to release.
        let lease = opening.is_none().then(|| g.lease.clone());
        let mut turn = NewTurn {
            opening: opening.map(|o| (o.conversation, o.message)),
            message,
            credit,
            agent_id: g.agent.id.clone(),
            title: g.title.clone(),
            month_start: month_start(now),
            lease,
        };
        let stored = self.store.finish_turn(&turn).await;
        let released = stored.is_ok();
        match stored {
            // The agent's counter and last message time, and the workspace's
            // spend, changed as the record did.
            Ok(()) => {
                self.agents
                    .turn_committed(&g.agent.id, turn.month_start, a.credits, now);
                self.credits
                    .charged(&g.principal.workspace_id, turn.month_start, a.credits);
            }
            Err(e) => {
                self.agents.forget(&g.agent.id);
                self.credits.forget(&g.principal.workspace_id);
                tracing::error!(error = %e, conversation = %g.conversation.id, "could not store the answer");
                error.get_or_insert_with(|| "The answer could not be saved".to_owned());
                // The conversation and its user message are still tried alone.
                g.opening = turn.opening.take().map(|(conversation, message)| Opening {
                    conversation,
                    message,
                    lease_expires: 0,
                });
            }
        }
        released
    }

    /// Stores a client tool call the model made (and the conversation first, when
    /// this turn opened it), so its result can be posted back; false when that
    /// failed.
    async fn register_tool_call(
        &self,
        g: &mut Generation,
        id: &str,
        name: &str,
        input: &Value,
    ) -> bool {
        let now = self.now();
        let record = ToolCallRecord {
            id: id.to_owned(),
            conversation_id: g.conversation.id.clone(),
            message_id: g.meta.message_id.clone(),
            name: name.to_owned(),
            input: input.clone(),
            status: ToolCallStatus::Pending,
            output: None,
            created_at: now,
            expires_at: now + (self.settings.chat.tool_call_ttl_secs * 1000) as Millis,
        };
        if let Some(o) = g.opening.take()
            && let Err(e) = self
                .store
                .insert_conversation_with_message(
                    &o.conversation,
                    Some((&g.lease.token, o.lease_expires)),
                    &o.message,
                )
                .await
        {
            tracing::error!(error = %e, "could not store the conversation");
            return false;
        }
        if let Err(e) = self.store.insert_tool_call(&record).await {
            tracing::error!(error = %e, "could not register a tool call");
            return false;
        }
        true
    }

    /// Forwards model events to the client, collecting the answer's parts.
    async fn drive(
        &self,
        g: &mut Generation,
        mut stream: ModelStream,
        tx: &mpsc::Sender<TurnEvent>,
    ) -> Outcome {
        // Calls of the built-in escalation action: resolved here, never sent out.
        let escalates = g
            .agent
            .actions
            .iter()
            .any(|a| a.name == crate::helpdesk::ESCALATION_ACTION);
        let mut answer = Collected::new(escalates);
        let end = loop {
            let event = tokio::select! {
                biased;
                () = tx.closed() => break End::Cancelled,
                e = stream.next() => e,
            };
            let forward = match answer.take(event) {
                Step::Send(event) => event,
                Step::Skip => continue,
                Step::End(end) => break end,
                Step::Call { id, name, input } => {
                    if !self.register_tool_call(g, &id, &name, &input).await {
                        break End::Failed("The tool call could not be registered".into());
                    }
                    answer.parts.push(Part::ToolCall {
                        tool_call_id: id.clone(),
                        tool_name: name.clone(),
                        input: input.clone(),
                    });
                    TurnEvent::ToolInputAvailable { id, name, input }
                }
            };
            if tx.send(forward).await.is_err() {
                break End::Cancelled;
            }
        };
        drop(stream);
        if answer.escalation.is_some() && matches!(end, End::Finished(_)) {
            add_escalation_notice(&mut answer.text, tx).await;
        }
        answer.flush();
        Outcome {
            parts: answer.parts,
            end,
            escalation: answer.escalation,
        }
    }

    /// `POST …/conversations/{id}/retry`: truncates at the target and answers the
    /// user message at or before it again.
    pub async fn retry(
        self: &Arc<Self>,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<Turn> {
        if message_id.is_empty() {
            return Err(Error::invalid("messageId", "must not be empty"));
        }
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        let entry = self.model_for(&agent)?;
        let (conversation, lease) = self
            .lease_conversation(p, &agent, conversation_id, false)
            .await?;
        let prepared = async {
            let messages = self.store.messages(&conversation.id).await?;
            let target = messages
                .iter()
                .find(|m| m.id == message_id)
                .ok_or(Error::Rejected(Rejection::RetryMessageNotFound))?;
            let user = messages
                .iter()
                .rev()
                .find(|m| m.seq <= target.seq && m.role == MessageRole::User)
                .ok_or(Error::Rejected(Rejection::RetryNoUserMessage))?
                .clone();
            self.credits.check(p, &agent, entry.credits).await?;
            self.store
                .truncate_from(&conversation.id, user.seq + 1)
                .await?;
            let history: Vec<Message> =
                messages.into_iter().filter(|m| m.seq <= user.seq).collect();
            let tools = self.store.tool_calls(&conversation.id).await?;
            Ok(Prepared {
                history,
                tools,
                user_message_id: user.id,
                opening: None,
            })
        }
        .await;
        let prepared = self.or_release(&lease, prepared).await?;
        let turn = Leased {
            agent,
            entry,
            conversation,
            lease,
        };
        self.start(p, turn, prepared, Overrides::default()).await
    }

    /// A conversation of the agent; another agent's is "not found".
    pub async fn conversation_of(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
    ) -> Result<Conversation> {
        self.agents.get(&p.workspace_id, agent_id).await?;
        match self
            .store
            .conversation(&p.workspace_id, conversation_id)
            .await?
        {
            Some(c) if c.agent_id == agent_id => Ok(c),
            _ => Err(Error::NotFound(Resource::Conversation)),
        }
    }

    pub async fn submit_tool_result(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
        tool_call_id: &str,
        output: Value,
    ) -> Result<()> {
        let c = self.conversation_of(p, agent_id, conversation_id).await?;
        if self
            .store
            .resolve_tool_call(&c.id, tool_call_id, &output, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::ToolCall))
        }
    }

    /// v1 `get-conversations`: offset pages of an agent's conversations with their
    /// messages.
    pub async fn conversations_v1(
        &self,
        p: &Principal,
        agent_id: &str,
        filter: &ConversationFilter,
        page: u32,
        size: u32,
    ) -> Result<Vec<(Conversation, Vec<Message>)>> {
        self.agents.get(&p.workspace_id, agent_id).await?;
        let offset = i64::from(page.saturating_sub(1)) * i64::from(size);
        let list = self
            .store
            .conversations_by_offset(agent_id, filter, offset, size)
            .await?;
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let messages = self.store.messages(&c.id).await?;
            out.push((c, messages));
        }
        Ok(out)
    }

    pub async fn conversations(
        &self,
        p: &Principal,
        agent_id: &str,
        filter: &ConversationFilter,
        cursor: Option<&Cursor>,
        limit: u32,
        by_activity: bool,
    ) -> Result<Page<Conversation>> {
        self.agents.get(&p.workspace_id, agent_id).await?;
        self.store
            .conversations(agent_id, filter, cursor, limit, by_activity)
            .await
    }

    /// Messages with their tool results merged in after each call.
    pub async fn message_page(
        &self,
        conversation_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Page<Message>> {
        let mut page = self
            .store
            .message_page(conversation_id, before_seq, limit)
            .await?;
        let tools = self.store.tool_calls(conversation_id).await?;
        for m in &mut page.items {
            merge_results(m, &tools);
        }
        Ok(page)
    }

    pub async fn all_messages(&self, conversation_id: &str) -> Result<Vec<Message>> {
        let mut messages = self.store.messages(conversation_id).await?;
        let tools = self.store.tool_calls(conversation_id).await?;
        for m in &mut messages {
            merge_results(m, &tools);
        }
        Ok(messages)
    }

    pub async fn set_paused(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
        paused: bool,
    ) -> Result<ConversationStatus> {
        let c = self.conversation_of(p, agent_id, conversation_id).await?;
        let status = match (c.status, paused) {
            (ConversationStatus::Ended | ConversationStatus::TakenOver, _) => {
                return Err(Error::Rejected(Rejection::ConversationNotOngoing));
            }
            (_, true) => ConversationStatus::Paused,
            (_, false) => ConversationStatus::Ongoing,
        };
        self.store
            .set_conversation_status(&c.id, status, self.now())
            .await?;
        Ok(status)
    }

    pub async fn set_feedback(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
        message_id: &str,
        feedback: Option<Feedback>,
    ) -> Result<Message> {
        let c = self.conversation_of(p, agent_id, conversation_id).await?;
        let mut m = self
            .store
            .message(&c.id, message_id)
            .await?
            .ok_or(Error::NotFound(Resource::Message))?;
        if m.role != MessageRole::Assistant {
            return Err(Error::Rejected(Rejection::MessageNotAssistant));
        }
        self.store.set_feedback(&m.id, feedback).await?;
        m.feedback = feedback;
        let tools = self.store.tool_calls(&c.id).await?;
        merge_results(&mut m, &tools);
        Ok(m)
    }
}

enum End {
    Finished(FinishReason),
    Failed(String),
    Cancelled,
}

/// What the drive loop does with one model event.
enum Step {
    Send(TurnEvent),
    Skip,
    /// A tool call closed: register it, then send it.
    Call {
        id: String,
        name: String,
        input: Value,
    },
    End(End),
}

/// The answer as the model's events build it: text runs and tool calls in order.
struct Collected {
    parts: Vec<Part>,
    text: String,
    /// Tool calls being streamed: index → (id, name, arguments so far).
    open: HashMap<usize, (String, String, String)>,
    /// Whether the agent has the built-in escalation action.
    escalates: bool,
    /// Escalation calls being streamed: index → arguments so far.
    builtin: HashMap<usize, String>,
    escalation: Option<Option<String>>,
}

impl Collected {
    fn new(escalates: bool) -> Self {
        Collected {
            parts: Vec::new(),
            text: String::new(),
            open: HashMap::new(),
            escalates,
            builtin: HashMap::new(),
            escalation: None,
        }
    }

    /// Ends the text run so far as a part.
    fn flush(&mut self) {
        if !self.text.is_empty() {
            self.parts.push(Part::Text {
                text: std::mem::take(&mut self.text),
            });
        }
    }

    /// Takes the next event of the model's stream (`None` when it ended).
    fn take(&mut self, event: Option<Result<ModelEvent, ModelError>>) -> Step {
        let event = match event {
            None => {
                return Step::End(End::Failed(
                    "The model stopped without finishing its answer".into(),
                ));
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "model failed mid-answer");
                return Step::End(End::Failed(e.to_string()));
            }
            Some(Ok(event)) => event,
        };
        match event {
            ModelEvent::Finish { reason, .. } => Step::End(End::Finished(reason)),
            ModelEvent::TextDelta(d) => {
                self.text.push_str(&d);
                Step::Send(TurnEvent::TextDelta(d))
            }
            ModelEvent::ToolCallStart { name, index, .. }
                if self.escalates && name == crate::helpdesk::ESCALATION_ACTION =>
            {
                self.builtin.insert(index, String::new());
                Step::Skip
            }
            ModelEvent::ToolCallDelta { index, arguments } if self.builtin.contains_key(&index) => {
                if let Some(args) = self.builtin.get_mut(&index) {
                    args.push_str(&arguments);
                }
                Step::Skip
            }
            ModelEvent::ToolCallEnd { index } if self.builtin.contains_key(&index) => {
                let args = self.builtin.remove(&index).unwrap_or_default();
                self.escalation
                    .get_or_insert_with(|| escalation_reason(&args));
                Step::Skip
            }
            ModelEvent::ToolCallStart { index, id, name } => {
                self.flush();
                self.open
                    .insert(index, (id.clone(), name.clone(), String::new()));
                Step::Send(TurnEvent::ToolInputStart { id, name })
            }
            ModelEvent::ToolCallDelta { index, arguments } => match self.open.get_mut(&index) {
                Some((id, _, args)) => {
                    args.push_str(&arguments);
                    Step::Send(TurnEvent::ToolInputDelta {
                        id: id.clone(),
                        delta: arguments,
                    })
                }
                None => Step::Skip,
            },
            ModelEvent::ToolCallEnd { index } => {
                let Some((id, name, args)) = self.open.remove(&index) else {
                    return Step::Skip;
                };
                let input: Value = if args.trim().is_empty() {
                    Value::Object(Default::default())
                } else {
                    serde_json::from_str(&args).unwrap_or(Value::String(args))
                };
                Step::Call { id, name, input }
            }
        }
    }
}

struct Outcome {
    parts: Vec<Part>,
    end: End,
    /// The model called the built-in escalation action, with this reason.
    escalation: Option<Option<String>>,
}

/// The `reason` argument of an escalation call, if it gave one.
fn escalation_reason(args: &str) -> Option<String> {
    let v: Value = serde_json::from_str(args).ok()?;
    let reason = v.get("reason")?.as_str()?.trim();
    (!reason.is_empty()).then(|| reason.chars().take(500).collect())
}

/// Inserts each resolved call's `tool-result` part right after its `tool-call`.
pub fn merge_results(m: &mut Message, tools: &[ToolCallRecord]) {
    let mut merged = Vec::with_capacity(m.parts.len());
    for part in m.parts.drain(..) {
        let result = match &part {
            Part::ToolCall {
                tool_call_id,
                tool_name,
                ..
            } => tools
                .iter()
                .find(|t| &t.id == tool_call_id && t.status == ToolCallStatus::Resolved)
                .map(|t| Part::ToolResult {
                    tool_call_id: tool_call_id.clone(),
                    tool_name: tool_name.clone(),
                    output: t.output.clone().unwrap_or(Value::Null),
                }),
            _ => None,
        };
        merged.push(part);
        merged.extend(result);
    }
    m.parts = merged;
}

fn knowledge_entries(hits: &[Retrieved]) -> Vec<prompt::KnowledgeEntry<'_>> {
    hits.iter()
        .map(|h| prompt::KnowledgeEntry {
            source_id: &h.source_id,
            title: &h.title,
            url: h.url.as_deref(),
            heading: &h.heading,
            text: &h.text,
        })
        .collect()
}

/// Aborts its task when dropped, also when the owner unwinds.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The field errors of a v1 chat request (the model is checked by the caller).
fn check_v1_input(input: &V1Input, max_chars: usize) -> agentbase_core::FieldErrors {
    let mut invalid = agentbase_core::FieldErrors::new();
    match input.messages.last() {
        None => {
            invalid.insert("messages".into(), "must not be empty".into());
        }
        Some((role, content)) if role != "user" || content.is_empty() => {
            invalid.insert(
                "messages".into(),
                "the last message must be a non-empty user message".into(),
            );
        }
        _ => {}
    }
    for (i, (role, content)) in input.messages.iter().enumerate() {
        if role != "user" && role != "assistant" {
            invalid.insert(
                format!("messages[{i}].role"),
                "must be user or assistant".into(),
            );
        }
        if content.chars().count() > max_chars {
            invalid.insert(
                format!("messages[{i}].content"),
                format!("must be at most {max_chars} characters"),
            );
        }
    }
    // The history a v1 client sends is tokenized for every answer: bound it.
    if input.messages.len() > V1_MAX_MESSAGES {
        invalid.insert(
            "messages".into(),
            format!("at most {V1_MAX_MESSAGES} messages"),
        );
    }
    if input.temperature.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        invalid.insert("temperature".into(), "must be between 0 and 1".into());
    }
    if input
        .conversation_id
        .as_deref()
        .is_some_and(|c| c.is_empty() || c.len() > 128)
    {
        invalid.insert("conversationId".into(), "must be 1–128 characters".into());
    }
    invalid
}

/// The visitor is told, in the answer itself, that a person takes over.
async fn add_escalation_notice(text: &mut String, tx: &mpsc::Sender<TurnEvent>) {
    if !text.is_empty() && !text.ends_with(char::is_whitespace) {
        text.push_str("\n\n");
    }
    text.push_str(crate::helpdesk::ESCALATION_NOTICE);
    let delta = if text.len() == crate::helpdesk::ESCALATION_NOTICE.len() {
        crate::helpdesk::ESCALATION_NOTICE.to_owned()
    } else {
        format!("\n\n{}", crate::helpdesk::ESCALATION_NOTICE)
    };
    let _ = tx.send(TurnEvent::TextDelta(delta)).await;
}

/// What the answer cites, and its confidence: how relevant the best knowledge was
/// (0 when nothing relevant was found; `None` for agents without knowledge).
fn citations_of(knowledge: Option<&[Retrieved]>) -> (Vec<Citation>, Option<f64>) {
    let citations = knowledge
        .iter()
        .copied()
        .flatten()
        .map(|r| Citation {
            source_id: r.source_id.clone(),
            chunk_id: r.chunk_id.clone(),
            title: r.title.clone(),
            url: r.url.clone(),
            score: f64::from(r.relevance),
        })
        .collect();
    let score = knowledge.map(|hits| {
        hits.iter()
            .map(|h| f64::from(h.relevance))
            .fold(0.0, f64::max)
    });
    (citations, score)
}

/// An answer as the model finished it, to be stored.
struct Answer {
    parts: Vec<Part>,
    finish_reason: &'static str,
    credits: f64,
    citations: Vec<Citation>,
    score: Option<f64>,
}

/// A conversation with one page of its messages and who wrote the ones people
/// wrote (message id → sender).
pub struct MessageThread {
    pub conversation: Conversation,
    pub messages: Page<Message>,
    pub authors: HashMap<String, agentbase_core::helpdesk::Sender>,
}

/// Use cases of the public API that join several steps above.
impl Conversations {
    /// The API's chat turn: streamed ([`Conversations::chat`]) or, for a JSON answer,
    /// which acknowledges nothing before it is complete, [`Conversations::chat_at_once`]
    /// (its turn may write a new conversation together with the answer).
    pub async fn api_turn(
        self: &Arc<Self>,
        p: &Principal,
        input: ChatInput,
        stream: bool,
    ) -> Result<Turn> {
        if stream {
            self.chat(p, input).await
        } else {
            self.chat_at_once(p, input).await
        }
    }

    /// The caller's conversation, the page of its messages before `before_seq`
    /// (the newest when `None`), and their authors.
    pub async fn message_thread(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<MessageThread> {
        let conversation = self.conversation_of(p, agent_id, conversation_id).await?;
        let messages = self
            .message_page(&conversation.id, before_seq, limit)
            .await?;
        let authors = self.store.message_authors(&conversation.id).await?;
        Ok(MessageThread {
            conversation,
            messages,
            authors: authors.into_iter().collect(),
        })
    }

    /// A page of the agent's conversations (oldest first), each with all its
    /// messages when `with_messages`.
    pub async fn export(
        &self,
        p: &Principal,
        agent_id: &str,
        filter: &ConversationFilter,
        cursor: Option<&Cursor>,
        limit: u32,
        with_messages: bool,
    ) -> Result<Page<(Conversation, Option<Vec<Message>>)>> {
        let page = (self.conversations(p, agent_id, filter, cursor, limit, false)).await?;
        if !with_messages {
            let items = page.items.into_iter().map(|c| (c, None)).collect();
            return Ok(Page {
                items,
                has_more: page.has_more,
                total: page.total,
            });
        }
        // The page's messages and tool calls in two queries, not two per conversation.
        let ids: Vec<String> = page.items.iter().map(|c| c.id.clone()).collect();
        let mut messages = self.store.messages_of(&ids).await?;
        // Tool call ids come from the model: only unique within a conversation.
        let mut tools: std::collections::HashMap<String, Vec<ToolCallRecord>> = Default::default();
        for t in self.store.tool_calls_of(&ids).await? {
            tools.entry(t.conversation_id.clone()).or_default().push(t);
        }
        for m in &mut messages {
            merge_results(m, tools.get(&m.conversation_id).map_or(&[], Vec::as_slice));
        }
        let mut messages = messages.into_iter().peekable();
        let mut items = Vec::with_capacity(page.items.len());
        for c in page.items {
            let mut own = Vec::new();
            while let Some(m) = messages.next_if(|m| m.conversation_id == c.id) {
                own.push(m);
            }
            items.push((c, Some(own)));
        }
        Ok(Page {
            items,
            has_more: page.has_more,
            total: page.total,
        })
    }
}

impl Conversations {
    /// A conversation of the agent and all its messages (tool results merged in):
    /// what the dashboard's conversation page shows.
    pub async fn thread(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
    ) -> Result<(Conversation, Vec<Message>)> {
        let c = self.conversation_of(p, agent_id, conversation_id).await?;
        let messages = self.all_messages(&c.id).await?;
        Ok((c, messages))
    }
}
