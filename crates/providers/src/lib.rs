//! Hosted model providers behind `agentbase_core::model`: any OpenAI-compatible
//! server (OpenAI, Ollama, vLLM, llama.cpp server) for chat and embeddings, and
//! Anthropic's Messages API for chat. Each speaks its provider's streaming wire
//! format and maps every failure onto `ModelError`, so the chat turn sees neither
//! HTTP nor JSON, and never waits on a silent upstream longer than the idle timeout.

#![forbid(unsafe_code)]

mod anthropic;
mod embeddings;
mod http;
mod openai;
mod sse;
#[cfg(test)]
mod sse_props;
mod tools;

use std::time::Duration;

use agentbase_core::model::ModelError;

pub use anthropic::{ANTHROPIC_VERSION, Anthropic, AnthropicConfig};
pub use embeddings::{EmbeddingModel, OpenAiEmbedder};
pub use openai::{OpenAiCompatible, OpenAiConfig};

/// Long enough for a TLS handshake across an ocean, short enough that a wrong
/// host fails a request instead of stalling it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest silence tolerated, before the headers and between chunks. A
/// streaming answer sends something every few hundred milliseconds (Anthropic also
/// pings), but a large prompt on a busy server can take a while to first token.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Checks a configured base URL and drops a trailing slash, so paths can be
/// appended as `{base}/chat/completions` without doubling it.
fn normalize_base_url(base_url: &str) -> Result<String, ModelError> {
    let url = reqwest::Url::parse(base_url).map_err(|e| {
        ModelError::Unavailable(format!("invalid provider base URL {base_url:?}: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ModelError::Unavailable(format!(
            "provider base URL {base_url:?} is not http or https"
        )));
    }
    Ok(base_url.trim_end_matches('/').to_owned())
}
