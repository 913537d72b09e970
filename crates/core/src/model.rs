//! The model traits every provider implements (local candle models, OpenAI-compatible
//! and Anthropic servers, the scripted test model) and the events they stream. The
//! chat turn in `service` sees only these.

use std::future::Future;
use std::pin::Pin;

use futures_core::Stream;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, answering `tool_call_id`.
    Tool,
}

/// A tool the model may call: a Chatbase Custom Action.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// A complete tool call made by the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, exactly as the model produced them.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Calls made in this (assistant) message.
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this message answers.
    pub tool_call_id: Option<String>,
    /// For `Role::Tool`: the tool's name (Anthropic and some templates need it).
    pub tool_name: Option<String>,
}

impl ChatMessage {
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            tool_name: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The provider's own model name (`[models.X].upstream`).
    pub upstream_model: String,
    /// System first (if any), then the conversation in order.
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    /// 0–1, the agent's `temp`.
    pub temperature: f64,
    pub max_tokens: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    /// Hit `max_tokens`.
    Length,
    ToolCalls,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// What a model streams. Tool calls arrive as start → argument deltas → end, keyed
/// by `index` (several calls may be open in one turn).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    TextDelta(String),
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: usize,
        arguments: String,
    },
    ToolCallEnd {
        index: usize,
    },
    Finish {
        reason: FinishReason,
        usage: Usage,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The local compute queue is full; try again later (→ 503).
    #[error("model busy: {0}")]
    Overloaded(String),
    /// The upstream provider refused with 429.
    #[error("upstream rate limited")]
    RateLimited { retry_after_secs: Option<u64> },
    /// The upstream answered with an error status.
    #[error("upstream error {status}: {message}")]
    Upstream { status: u16, message: String },
    /// The connection broke or timed out mid-answer.
    #[error("upstream connection lost: {0}")]
    Disconnected(String),
    /// The request cannot be served by this model (bad config, missing weights).
    #[error("model unavailable: {0}")]
    Unavailable(String),
    #[error("model failed: {0}")]
    Failed(String),
}

pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, ModelError>> + Send>>;

/// A chat model. Dropping the stream cancels generation.
pub trait ChatModel: Send + Sync + 'static {
    fn stream(&self, request: ChatRequest) -> ModelStream;

    /// The context window in tokens, for history trimming.
    fn context_window(&self) -> usize {
        8192
    }

    /// Token count of `text` as this model sees it; providers that cannot count
    /// exactly estimate (≈ 4 characters per token).
    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(4)
    }

    /// How many weights the model has, when known (local models); agents decide
    /// from it whether answers need the small-model safeguards (quote fallback).
    fn parameters(&self) -> Option<u64> {
        None
    }
}

pub type EmbedFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, ModelError>> + Send + 'a>>;

/// A text embedder: one L2-normalised vector per input, in order.
pub trait Embedder: Send + Sync + 'static {
    fn dimensions(&self) -> usize;
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a>;
    /// The same for a query someone is waiting for (a search, a chat turn's
    /// retrieval): an embedder with one queue serves it before bulk work.
    fn embed_urgent<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        self.embed(texts)
    }
}
