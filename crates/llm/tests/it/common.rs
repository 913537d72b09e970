//! Where the tests find the weights, and the chat model the tests share.

use std::path::PathBuf;
use std::sync::OnceLock;

use agentbase_core::model::{ChatMessage, ChatModel, ChatRequest, ModelError, ModelEvent, Role};
use agentbase_llm::{LocalChatModel, LocalChatOptions, ModelPaths, fetch_default_models};
use futures_util::StreamExt;

/// `$AGENTBASE_MODELS_DIR`, else `/var/cache/agentbase-models` when writable, else a
/// dir under the system temp dir; fetched once per machine.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AGENTBASE_MODELS_DIR") {
        return dir.into();
    }
    let system = PathBuf::from("/var/cache/agentbase-models");
    let writable =
        std::fs::create_dir_all(&system).is_ok() && tempfile::tempfile_in(&system).is_ok();
    if writable {
        system
    } else {
        std::env::temp_dir().join("agentbase-models")
    }
}

pub fn model_paths() -> &'static ModelPaths {
    static PATHS: OnceLock<ModelPaths> = OnceLock::new();
    PATHS.get_or_init(|| fetch_default_models(&models_dir()).expect("fetching the default models"))
}

pub fn load_chat(options: LocalChatOptions) -> LocalChatModel {
    LocalChatModel::load(&model_paths().chat_gguf, options).expect("loading SmolLM2")
}

/// One model for the tests that only need answers; they queue behind each other.
pub fn shared_chat() -> &'static LocalChatModel {
    static MODEL: OnceLock<LocalChatModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        load_chat(LocalChatOptions {
            queue_len: 32,
            seed: Some(7),
            ..Default::default()
        })
    })
}

pub fn request(messages: Vec<ChatMessage>, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        upstream_model: "smollm2".to_owned(),
        messages,
        tools: Vec::new(),
        temperature: 0.0,
        max_tokens,
    }
}

pub fn user(text: &str) -> ChatMessage {
    ChatMessage::text(Role::User, text)
}

pub fn system(text: &str) -> ChatMessage {
    ChatMessage::text(Role::System, text)
}

/// Drains a stream into its events, failing on any error.
pub async fn collect(
    model: &dyn ChatModel,
    request: ChatRequest,
) -> Result<Vec<ModelEvent>, ModelError> {
    let mut stream = model.stream(request);
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event?);
    }
    Ok(events)
}

pub fn text_of(events: &[ModelEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}
