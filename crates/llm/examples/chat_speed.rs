//! Local chat speed for bench/llm: a RAG-style prompt of about `TARGET` tokens built
//! from the benchmark's chunks, streamed with the default options the server uses.
//! Prints one JSON line (time to first token, prefill and decode tokens/s, peak RSS)
//! and writes the prompt's token ids to PROMPT_OUT so llama.cpp gets the same tokens.
//!
//! `cargo run --release -p agentbase-llm --example chat_speed -- CHUNKS.jsonl PROMPT_OUT.json [TARGET] [MAX_TOKENS] [GGUF]`

use std::path::PathBuf;
use std::time::Instant;

use agentbase_core::model::{ChatMessage, ChatModel, ChatRequest, ModelEvent, Role};
use agentbase_llm::{LocalChatModel, LocalChatOptions};
use futures_util::StreamExt;

const USAGE: &str =
    "usage: chat_speed CHUNKS.jsonl PROMPT_OUT.json [TARGET_TOKENS] [MAX_TOKENS] [GGUF]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let chunks_path = args.next().ok_or(USAGE)?;
    let prompt_out = args.next().ok_or(USAGE)?;
    let target: usize = args.next().map_or(Ok(1500), |v| v.parse())?;
    let max_tokens: u32 = args.next().map_or(Ok(128), |v| v.parse())?;
    let gguf = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from("/var/cache/agentbase-models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    let chunks: Vec<String> = std::fs::read_to_string(&chunks_path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    let started = Instant::now();
    let chat = LocalChatModel::load(&gguf, LocalChatOptions::default())?;
    let load_secs = started.elapsed().as_secs_f64();

    // Grow the context chunk by chunk until the rendered prompt reaches the target.
    let question = "Using only the context, explain how ownership and borrowing work in Rust.";
    let request = |context: &str| ChatRequest {
        upstream_model: "local".to_owned(),
        messages: vec![
            ChatMessage::text(
                Role::System,
                format!(
                    "You are a helpful assistant. Answer from the context below.\n\nContext:\n{context}"
                ),
            ),
            ChatMessage::text(Role::User, question),
        ],
        tools: Vec::new(),
        temperature: 0.0,
        max_tokens,
    };
    let mut context = String::new();
    let mut tokens = chat.prompt_tokens(&request(&context))?;
    for chunk in &chunks {
        if tokens.len() >= target {
            break;
        }
        context.push_str(chunk);
        context.push_str("\n\n");
        tokens = chat.prompt_tokens(&request(&context))?;
    }
    std::fs::write(
        &prompt_out,
        serde_json::to_string(&serde_json::json!({ "tokens": tokens }))?,
    )?;

    // Warm-up on a short prompt.
    let mut warm = request("Rust is a programming language.");
    warm.max_tokens = 4;
    let mut stream = chat.stream(warm);
    while let Some(event) = stream.next().await {
        event?;
    }

    let started = Instant::now();
    let mut first = None;
    let mut completion = 0;
    let mut stream = chat.stream(request(&context));
    while let Some(event) = stream.next().await {
        match event? {
            ModelEvent::TextDelta(_) if first.is_none() => first = Some(Instant::now()),
            ModelEvent::Finish { usage, .. } => completion = usage.completion_tokens,
            _ => {}
        }
    }
    let end = Instant::now();
    let first = first.ok_or("the model produced no text")?;
    let ttft = (first - started).as_secs_f64();
    let decode_secs = (end - first).as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "side": "agentbase",
            "load_secs": load_secs,
            "prompt_tokens": tokens.len(),
            "completion_tokens": completion,
            "ttft_secs": ttft,
            "prefill_tok_s": tokens.len() as f64 / ttft,
            "decode_tok_s": f64::from(completion.saturating_sub(1)) / decode_secs.max(1e-9),
            "peak_rss_mb": peak_rss_mb(),
        })
    );
    Ok(())
}

/// VmHWM from /proc/self/status, in MB (None off Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
