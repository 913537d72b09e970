//! Embedding throughput of `LocalEmbedder` for bench/llm: embeds the chunks of a JSON
//! lines file (one string per line) and prints one JSON line with chunks/s and peak RSS.
//!
//! `cargo run --release -p agentbase-llm --example embed_speed -- CHUNKS.jsonl [BATCH] [MODEL_DIR]`
//!
//! Threads: the encoder uses every core `std::thread::available_parallelism` reports;
//! pin it with `taskset` to compare at a fixed core count.

use std::path::PathBuf;
use std::time::Instant;

use agentbase_core::model::Embedder;
use agentbase_llm::{LocalEmbedder, LocalEmbedderOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let chunks_path = args
        .next()
        .ok_or("usage: embed_speed CHUNKS.jsonl [BATCH] [MODEL_DIR]")?;
    let batch_size: usize = args.next().map_or(Ok(16), |b| b.parse())?;
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/agentbase-models/all-minilm-l6-v2"));
    let chunks: Vec<String> = std::fs::read_to_string(&chunks_path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    if chunks.is_empty() {
        return Err(format!("{chunks_path} holds no chunks").into());
    }

    let started = Instant::now();
    let embedder = LocalEmbedder::load(
        &dir,
        LocalEmbedderOptions {
            batch_size,
            ..Default::default()
        },
    )?;
    let load_secs = started.elapsed().as_secs_f64();
    // Warm-up on the first batch, as the Python side does.
    embedder
        .embed(&chunks[..batch_size.min(chunks.len())])
        .await?;
    let started = Instant::now();
    let vectors = embedder.embed(&chunks).await?;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(vectors.len(), chunks.len());
    println!(
        "{}",
        serde_json::json!({
            "side": "agentbase",
            "chunks": chunks.len(),
            "batch_size": batch_size,
            "load_secs": load_secs,
            "secs": secs,
            "chunks_per_s": chunks.len() as f64 / secs,
            "peak_rss_mb": peak_rss_mb(),
            "kernel_report": agentbase_llm::cpu::kernels().map(|k| k.to_string()).ok(),
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
