//! The Anthropic provider: the Messages API streamed over SSE. Its conversation
//! shape differs from Chat Completions (system prompt at the top level, tool calls
//! and results as content blocks, strictly alternating roles), so the mapping from
//! `ChatMessage`s lives here, next to the event decoder.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use agentbase_core::model::{
    ChatMessage, ChatModel, ChatRequest, FinishReason, ModelError, ModelEvent, ModelStream, Role,
    Usage,
};
use serde_json::{Map, Value, json};

use crate::http::{Decoder, Flow, Http};
use crate::sse::SseEvent;
use crate::tools::{OpenCalls, as_u32};
use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, normalize_base_url};

/// The API version this mapping is written against.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Where the Messages API is and how patient to be with it.
#[derive(Clone)]
pub struct AnthropicConfig {
    /// Without the version segment: `https://api.anthropic.com` (requests go to
    /// `{base_url}/v1/messages`, as in Anthropic's SDKs).
    pub base_url: String,
    /// Sent as `x-api-key`. `None` only makes sense behind a gateway that adds it.
    pub api_key: Option<String>,
    /// Bound on establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Bound on any silence: waiting for headers, and between two body chunks.
    /// Anthropic pings every few seconds, so a long silence is a dead connection.
    pub idle_timeout: Duration,
    /// What `ChatModel::context_window` reports, for history trimming.
    pub context_window: usize,
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.anthropic.com".into(),
            api_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            context_window: 200_000,
        }
    }
}

impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("context_window", &self.context_window)
            .finish()
    }
}

/// A chat model on Anthropic's Messages API. Cheap to share: one connection pool.
pub struct Anthropic {
    http: Http,
    endpoint: String,
    api_key: Option<String>,
    context_window: usize,
}

impl Anthropic {
    pub fn new(config: AnthropicConfig) -> Result<Self, ModelError> {
        Ok(Self {
            http: Http::new(config.connect_timeout, config.idle_timeout)?,
            endpoint: format!("{}/v1/messages", normalize_base_url(&config.base_url)?),
            api_key: config.api_key,
            context_window: config.context_window,
        })
    }
}

impl ChatModel for Anthropic {
    fn stream(&self, request: ChatRequest) -> ModelStream {
        let body = request_body(&request);
        let mut http = self
            .http
            .client
            .post(&self.endpoint)
            .header("anthropic-version", ANTHROPIC_VERSION);
        if let Some(key) = &self.api_key {
            http = http.header("x-api-key", key);
        }
        self.http.stream(http.json(&body), EventDecoder::default())
    }

    fn context_window(&self) -> usize {
        self.context_window
    }
}

fn request_body(request: &ChatRequest) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System && !m.content.is_empty())
        .map(|m| m.content.as_str())
        .collect();
    let mut body = json!({
        "model": request.upstream_model,
        "max_tokens": request.max_tokens,
        "messages": messages(&request.messages),
        "temperature": request.temperature,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = system.join("\n\n").into();
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
    }
    body
}

/// The conversation as Anthropic wants it: system messages lifted out, tool
/// results as `tool_result` blocks of a user turn, and consecutive same-role
/// messages merged, because every result of a turn's parallel calls must sit in the
/// one user message that follows it.
fn messages(messages: &[ChatMessage]) -> Vec<Value> {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System => continue,
            Role::User => ("user", text_block(&message.content)),
            Role::Assistant => {
                let mut blocks = text_block(&message.content);
                blocks.extend(message.tool_calls.iter().map(|call| {
                    json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": tool_input(&call.arguments),
                    })
                }));
                ("assistant", blocks)
            }
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
                    "content": message.content,
                })],
            ),
        };
        // Anthropic rejects empty text blocks and empty messages.
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    turns
        .into_iter()
        .map(|(role, mut blocks)| {
            // A lone text block is sent as a plain string, the form Anthropic's own
            // examples use and every gateway in front of it understands.
            let content = match blocks.as_mut_slice() {
                [block] if block["type"] == "text" => block["text"].take(),
                _ => blocks.into(),
            };
            json!({ "role": role, "content": content })
        })
        .collect()
}

fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() {
        return Vec::new();
    }
    vec![json!({ "type": "text", "text": text })]
}

/// `tool_use.input` must be an object; arguments the model left empty or broken
/// (cut off by `max_tokens`) are sent as `{}` rather than failing the conversation
/// on every later turn.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(input @ Value::Object(_)) => input,
        _ => {
            if !arguments.trim().is_empty() {
                tracing::warn!(
                    arguments_len = arguments.len(),
                    "tool call arguments are not a JSON object; sent as {{}}"
                );
            }
            Value::Object(Map::new())
        }
    }
}

/// Messages API events → model events. Block indices count text blocks too, so
/// tool-use blocks get their own dense indices.
#[derive(Default)]
struct EventDecoder {
    calls: OpenCalls,
    /// Tool index by content-block index.
    tool_blocks: HashMap<u64, usize>,
    finish: Option<FinishReason>,
    usage: Usage,
}

impl Decoder for EventDecoder {
    const TERMINATOR: &'static str = "message_stop";

    fn event(&mut self, event: SseEvent, out: &mut Vec<ModelEvent>) -> Result<Flow, ModelError> {
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| ModelError::Failed(format!("upstream sent an invalid event: {e}")))?;
        let kind = data["type"].as_str().unwrap_or(event.event.as_str());
        match kind {
            "message_start" => {
                let usage = &data["message"]["usage"];
                self.usage.prompt_tokens = prompt_tokens(usage);
                self.usage.completion_tokens = as_u32(usage.get("output_tokens"));
            }
            "content_block_start" => {
                let block = &data["content_block"];
                match block["type"].as_str() {
                    Some("text") => {
                        if let Some(text) = block["text"].as_str().filter(|t| !t.is_empty()) {
                            out.push(ModelEvent::TextDelta(text.to_owned()));
                        }
                    }
                    Some("tool_use") => {
                        let index = self.calls.open();
                        self.tool_blocks.insert(block_index(&data), index);
                        self.calls.update(
                            index,
                            block["id"].as_str(),
                            block["name"].as_str(),
                            "",
                            out,
                        );
                    }
                    // Thinking, and tools Anthropic runs itself (`server_tool_use`),
                    // are not part of the answer or the client's actions.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        if let Some(text) = delta["text"].as_str().filter(|t| !t.is_empty()) {
                            out.push(ModelEvent::TextDelta(text.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(&index) = self.tool_blocks.get(&block_index(&data)) {
                            let fragment = delta["partial_json"].as_str().unwrap_or_default();
                            self.calls.update(index, None, None, fragment, out);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(&index) = self.tool_blocks.get(&block_index(&data)) {
                    self.calls.end(index, out)?;
                }
            }
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.finish = Some(match reason {
                        "tool_use" => FinishReason::ToolCalls,
                        "max_tokens" => FinishReason::Length,
                        // end_turn, stop_sequence, refusal, pause_turn.
                        _ => FinishReason::Stop,
                    });
                }
                // These counts are cumulative for the whole message.
                let usage = &data["usage"];
                if usage.get("output_tokens").is_some() {
                    self.usage.completion_tokens = as_u32(usage.get("output_tokens"));
                }
                if usage.get("input_tokens").is_some_and(|n| !n.is_null()) {
                    self.usage.prompt_tokens = prompt_tokens(usage);
                }
            }
            "message_stop" => {
                self.calls.end_all(out)?;
                let reason = self.finish.unwrap_or(FinishReason::Stop);
                out.push(ModelEvent::Finish {
                    reason,
                    usage: self.usage,
                });
                return Ok(Flow::Done);
            }
            "error" => return Err(stream_error(&data["error"])),
            // `ping`, and event types added after this was written: Anthropic's
            // versioning policy says clients must ignore those.
            _ => {}
        }
        Ok(Flow::Continue)
    }
}

fn block_index(data: &Value) -> u64 {
    data["index"].as_u64().unwrap_or_default()
}

/// Cached prompt tokens are reported apart from `input_tokens`, but they are part
/// of the prompt all the same.
fn prompt_tokens(usage: &Value) -> u32 {
    [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ]
    .into_iter()
    .map(|field| as_u32(usage.get(field)))
    .fold(0, u32::saturating_add)
}

/// An `error` event mid-stream; it carries a type but no status, so the status is
/// the one Anthropic documents for that type.
fn stream_error(error: &Value) -> ModelError {
    let kind = error["type"].as_str().unwrap_or_default();
    let message = error["message"].as_str().unwrap_or(kind).to_owned();
    let status = match kind {
        "rate_limit_error" => {
            return ModelError::RateLimited {
                retry_after_secs: None,
            };
        }
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    };
    ModelError::Upstream { status, message }
}
