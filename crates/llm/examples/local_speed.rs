//! Measures the local models on this machine: prefill and decode tokens/s of the chat
//! model for a short and a RAG-sized prompt, and embedding chunks/s. Used for the
//! figures in BENCHMARKS.md; run with
//! `cargo run --release -p agentbase-llm --example local_speed [models_dir]`.

use std::path::PathBuf;
use std::time::Instant;

use agentbase_core::model::{ChatMessage, ChatModel, ChatRequest, Embedder, ModelEvent, Role};
use agentbase_llm::{
    LocalChatModel, LocalChatOptions, LocalEmbedder, LocalEmbedderOptions, fetch_default_models,
};
use futures_util::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/agentbase-models"));
    let paths = fetch_default_models(&dir)?;

    let started = Instant::now();
    // `local_speed DIR raw` keeps the GGUF's own quantization (no Q8_0 conversion).
    let requantize = std::env::args().nth(2).as_deref() != Some("raw");
    let chat = LocalChatModel::load(
        &paths.chat_gguf,
        LocalChatOptions {
            requantize,
            ..Default::default()
        },
    )?;
    println!(
        "chat model loaded in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let passage = "The Rust Programming Language book explains ownership, borrowing and lifetimes. \
                   Cargo builds packages and fetches dependencies from crates.io. ";
    for (label, context_repeats) in [("cold", 1), ("short", 1), ("rag", 60)] {
        let system = format!(
            "You are a helpful assistant. Answer from the context.\n\nContext:\n{}",
            passage.repeat(context_repeats)
        );
        let request = ChatRequest {
            upstream_model: "local".to_owned(),
            messages: vec![
                ChatMessage::text(Role::System, system),
                ChatMessage::text(
                    Role::User,
                    "Write a detailed explanation of what Cargo does.",
                ),
            ],
            tools: Vec::new(),
            temperature: 0.0,
            max_tokens: 64,
        };
        let prompt_tokens = chat.prompt_tokens(&request)?.len();
        let started = Instant::now();
        let mut first = None;
        let mut stream = chat.stream(request);
        let mut completion = 0;
        while let Some(event) = stream.next().await {
            match event? {
                ModelEvent::TextDelta(_) if first.is_none() => first = Some(Instant::now()),
                ModelEvent::Finish { usage, .. } => completion = usage.completion_tokens,
                _ => {}
            }
        }
        let end = Instant::now();
        let first = first.unwrap_or(end);
        let ttft = (first - started).as_secs_f64();
        let decode = (end - first).as_secs_f64();
        println!(
            "{label}: {prompt_tokens} prompt tokens, time to first token {ttft:.3}s (prefill ≈ {:.0} tok/s), \
             {completion} tokens decoded at {:.1} tok/s",
            prompt_tokens as f64 / ttft,
            completion.saturating_sub(1) as f64 / decode.max(1e-9)
        );
    }

    let chunk = "Agents answer from their own knowledge base and cite their sources. ".repeat(20);
    let chunks: Vec<String> = (0..64).map(|i| format!("{i} {chunk}")).collect();
    for batch_size in [16] {
        let embedder = LocalEmbedder::load(
            &paths.embedding_dir,
            LocalEmbedderOptions {
                batch_size,
                ..Default::default()
            },
        )?;
        embedder.embed(&chunks[..4]).await?;
        let started = Instant::now();
        embedder.embed(&chunks).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "embeddings (batch {batch_size}): 64 chunks of ~250 tokens in {secs:.2}s = {:.1} chunks/s",
            64.0 / secs
        );
    }
    Ok(())
}
