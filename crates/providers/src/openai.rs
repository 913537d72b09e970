//! The OpenAI-compatible provider: Chat Completions streamed over SSE, as spoken by
//! OpenAI itself and by the local servers that copy it (Ollama, vLLM, llama.cpp
//! server). Servers differ in small ways (a missing tool-call `index`, `stop` where
//! OpenAI says `tool_calls`); the decoder accepts each, so one provider serves all.

use std::fmt;
use std::time::Duration;

use agentbase_core::model::{
    ChatMessage, ChatModel, ChatRequest, FinishReason, ModelError, ModelEvent, ModelStream, Role,
    ToolSpec, Usage,
};
use reqwest::RequestBuilder;
use serde_json::{Value, json};

use crate::http::{Decoder, Flow, Http, bearer, json_error_message};
use crate::sse::SseEvent;
use crate::tools::{OpenCalls, as_u32};
use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, normalize_base_url};

/// Where an OpenAI-compatible server is and how patient to be with it.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Up to and including the version segment: `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` (Ollama), `http://localhost:8000/v1` (vLLM).
    pub base_url: String,
    /// Sent as `Authorization: Bearer …`; local servers need none.
    pub api_key: Option<String>,
    /// Bound on establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Bound on any silence: waiting for headers, and between two body chunks.
    pub idle_timeout: Duration,
    /// What `ChatModel::context_window` reports, for history trimming.
    pub context_window: usize,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            // Local servers are the common case and their windows are small.
            context_window: 8192,
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("context_window", &self.context_window)
            .finish()
    }
}

/// A chat model (and, through [`OpenAiCompatible::embedder`], an embedder) on an
/// OpenAI-compatible server. Cheap to share: one connection pool per provider.
pub struct OpenAiCompatible {
    pub(crate) http: Http,
    pub(crate) base_url: String,
    pub(crate) api_key: Option<String>,
    context_window: usize,
}

impl OpenAiCompatible {
    pub fn new(config: OpenAiConfig) -> Result<Self, ModelError> {
        Ok(Self {
            http: Http::new(config.connect_timeout, config.idle_timeout)?,
            base_url: normalize_base_url(&config.base_url)?,
            api_key: config.api_key,
            context_window: config.context_window,
        })
    }

    fn post(&self, path: &str) -> RequestBuilder {
        bearer(
            self.http.client.post(format!("{}{path}", self.base_url)),
            self.api_key.as_deref(),
        )
    }
}

impl ChatModel for OpenAiCompatible {
    fn stream(&self, request: ChatRequest) -> ModelStream {
        let body = request_body(&request);
        self.http.stream(
            self.post("/chat/completions").json(&body),
            ChunkDecoder::default(),
        )
    }

    fn context_window(&self) -> usize {
        self.context_window
    }
}

fn request_body(request: &ChatRequest) -> Value {
    let mut body = json!({
        "model": request.upstream_model,
        "messages": request.messages.iter().map(message).collect::<Vec<_>>(),
        "temperature": request.temperature,
        // `max_tokens` rather than `max_completion_tokens`: every compatible server
        // reads it, and OpenAI still does for its chat models.
        "max_tokens": request.max_tokens,
        "stream": true,
        // Without this, a streamed answer carries no token counts at all.
        "stream_options": { "include_usage": true },
    });
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(tool).collect();
    }
    body
}

fn message(message: &ChatMessage) -> Value {
    match message.role {
        Role::System => json!({ "role": "system", "content": message.content }),
        Role::User => json!({ "role": "user", "content": message.content }),
        Role::Assistant if message.tool_calls.is_empty() => {
            json!({ "role": "assistant", "content": message.content })
        }
        Role::Assistant => {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": { "name": call.name, "arguments": call.arguments },
                    })
                })
                .collect();
            // OpenAI wants `null`, not "", for an assistant turn that only calls tools.
            let content = (!message.content.is_empty()).then_some(message.content.as_str());
            json!({ "role": "assistant", "content": content, "tool_calls": calls })
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.as_deref().unwrap_or_default(),
            "content": message.content,
        }),
    }
}

fn tool(tool: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    })
}

/// Chat Completions chunks → model events. The finish reason arrives one chunk
/// before the usage (with `include_usage`), so `Finish` waits for `[DONE]`.
#[derive(Default)]
struct ChunkDecoder {
    calls: OpenCalls,
    /// The upstream `index` of each call, by our index; `None` where a server
    /// sent none (Ollama before 0.6) and calls are told apart by `id`.
    upstream_index: Vec<Option<u64>>,
    finish: Option<FinishReason>,
    usage: Usage,
}

impl Decoder for ChunkDecoder {
    const TERMINATOR: &'static str = "data: [DONE]";

    fn event(&mut self, event: SseEvent, out: &mut Vec<ModelEvent>) -> Result<Flow, ModelError> {
        if event.data.trim() == "[DONE]" {
            self.calls.end_all(out)?;
            let reason = match self.finish {
                Some(FinishReason::Length) => FinishReason::Length,
                // OpenAI itself says `stop` when `tool_choice` forced the call, and
                // so do some compatible servers always: a turn with calls is a
                // tool-call turn, whatever the label.
                _ if self.calls.any() => FinishReason::ToolCalls,
                Some(reason) => reason,
                None => FinishReason::Stop,
            };
            out.push(ModelEvent::Finish {
                reason,
                usage: self.usage,
            });
            return Ok(Flow::Done);
        }
        let chunk: Value = serde_json::from_str(&event.data)
            .map_err(|e| ModelError::Failed(format!("upstream sent an invalid chunk: {e}")))?;
        if !chunk["error"].is_null() || chunk["object"] == "error" {
            return Err(stream_error(&chunk));
        }
        if let Some(usage) = chunk["usage"].as_object() {
            self.usage = Usage {
                prompt_tokens: as_u32(usage.get("prompt_tokens")),
                completion_tokens: as_u32(usage.get("completion_tokens")),
            };
        }
        // With n = 1 there is one choice; the usage-only last chunk has none.
        let Some(choice) = chunk["choices"].as_array().and_then(|c| c.first()) else {
            return Ok(Flow::Continue);
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            out.push(ModelEvent::TextDelta(text.to_owned()));
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for call in calls {
                self.tool_call_delta(call, out);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish = Some(match reason {
                "length" => FinishReason::Length,
                "tool_calls" | "function_call" => FinishReason::ToolCalls,
                // `stop`, `content_filter`, and whatever a server invents.
                _ => FinishReason::Stop,
            });
            // No argument fragment follows a finish reason, so the calls are
            // complete now; ending them here lets the caller act before `[DONE]`.
            self.calls.end_all(out)?;
        }
        Ok(Flow::Continue)
    }
}

impl ChunkDecoder {
    fn tool_call_delta(&mut self, call: &Value, out: &mut Vec<ModelEvent>) {
        let id = call["id"].as_str().filter(|id| !id.is_empty());
        let index = match call["index"].as_u64() {
            Some(upstream) => self
                .upstream_index
                .iter()
                .position(|i| *i == Some(upstream)),
            None => match id {
                Some(id) => self.calls.position_of_id(id),
                // A fragment without index or id continues the latest call.
                None => self.upstream_index.len().checked_sub(1),
            },
        };
        let index = index.unwrap_or_else(|| {
            self.upstream_index.push(call["index"].as_u64());
            self.calls.open()
        });
        let function = &call["function"];
        self.calls.update(
            index,
            id,
            function["name"].as_str(),
            function["arguments"].as_str().unwrap_or_default(),
            out,
        );
    }
}

/// An error chunk in an otherwise successful stream: OpenAI and current vLLM nest
/// it as `{"error": {…}}`, older vLLM sends it flat with `"object": "error"`; vLLM
/// puts an HTTP status in `code`.
fn stream_error(chunk: &Value) -> ModelError {
    let error = if chunk["error"].is_object() {
        &chunk["error"]
    } else {
        chunk
    };
    let message = json_error_message(chunk).unwrap_or_else(|| error.to_string());
    let status = error["code"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (400..600).contains(code))
        .unwrap_or(500);
    if status == 429 {
        return ModelError::RateLimited {
            retry_after_secs: None,
        };
    }
    ModelError::Upstream { status, message }
}
