//! Retrieval benchmarks for `agentbase-search` over three documentation sites
//! installed from packages: the Rust docs (toolchain), the PostgreSQL 15 manual
//! (`postgresql-doc-15`) and the Python 3.11 docs (`python3.11-doc`).
//! `eval` (quality per corpus and split, lever sweeps, relevance floor),
//! `latency` (p50/p99 at 100k chunks, query embedding included, and RSS per 100k
//! chunks), `build` (the Rust Book from HTML to a loaded snapshot, split by stage),
//! `grounded` (answers of a running server's chat API, see grounded.rs).
//!
//! Embeddings are cached on disk per (model, text) (`corpus::EmbedCache`), so
//! tuning runs embed only chunks they have not seen.

#![forbid(unsafe_code)]

mod corpus;
mod eval;
mod grounded;
mod query_side;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agentbase_core::model::Embedder;
use agentbase_llm::LocalEmbedder;
use agentbase_search::{BuildOptions, ChunkOptions, Doc, Fusion, Index, Lang, Mode, Query};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::corpus::{Corpus, EmbedCache, Question};

#[derive(Parser)]
#[command(about = "Retrieval benchmarks for agentbase-search")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Quality per corpus: recall@5, MRR@10, nDCG@10 for the baselines and what ships.
    Eval(EvalArgs),
    /// Latency p50/p99 (query embedding included) and RSS at N synthetic chunks.
    Latency(LatencyArgs),
    /// Index build time for one book, split into extract/chunk/embed/index.
    Build(BuildArgs),
    /// Grounded answers through a running server's chat API.
    Grounded(grounded::GroundedArgs),
    /// Search latency through a running server's HTTP API (Rust Book agent).
    Http(grounded::HttpArgs),
    /// Opens a snapshot in this fresh process and prints the RSS it added (used by
    /// `latency`, so allocator leftovers from building do not blur the figure).
    Open {
        #[arg(long)]
        snap: PathBuf,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// all-MiniLM-L6-v2 directory.
    #[arg(long, default_value = "/var/cache/agentbase-models/all-minilm-l6-v2")]
    model: PathBuf,
    /// Where embeddings are cached.
    #[arg(long, default_value = "/var/cache/agentbase-bench-rag")]
    cache: PathBuf,
    #[arg(long, default_value_t = ChunkOptions::default().max_chars)]
    max_chars: usize,
    #[arg(long, default_value_t = ChunkOptions::default().overlap_chars)]
    overlap: usize,
    /// Embedder batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
}

impl Common {
    fn chunk(&self) -> ChunkOptions {
        ChunkOptions {
            max_chars: self.max_chars,
            overlap_chars: self.overlap,
        }
    }
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    common: Common,
    /// Corpora, comma-separated (rust, postgres, python).
    #[arg(long, default_value = "rust,postgres,python")]
    corpus: String,
    /// Question splits to score, comma-separated: dev, test, all.
    #[arg(long, default_value = "test")]
    split: String,
    /// Also run the lever sweep (always on the dev halves).
    #[arg(long)]
    sweep: bool,
    /// Also search combinations of the levers (chosen on the dev halves).
    #[arg(long)]
    grid: bool,
    /// Also try pseudo-relevance feedback on the query embedding and page-level dense
    /// lists (titles, chunk centroids) fused with the ranking (chosen on dev).
    #[arg(long)]
    feedback: bool,
    /// Also try the query-side levers: lexical pseudo-relevance feedback, routing
    /// questions that name code to a BM25-leaning method, and the per-question
    /// oracle over BM25, dense and the shipped method (chosen on dev).
    #[arg(long)]
    query: bool,
    /// Also print the relevance-floor calibration (dev answerable vs unanswerable).
    #[arg(long)]
    threshold: bool,
    /// Also score the chunks a chat turn would get for the grounded sets' answerable
    /// questions: how often the gold fact is among them, and in the quote, for
    /// several ways of spreading the five slots over pages (dev and test halves).
    #[arg(long)]
    facts: bool,
    /// Also write every question's 30 best chunks by the shipped method, with its
    /// split and gold pages, as JSON lines to this file (to score a re-ranker
    /// outside the bench).
    #[arg(long)]
    dump_candidates: Option<PathBuf>,
    /// Disable stemming in BM25.
    #[arg(long)]
    no_stem: bool,
    /// Stem every page as this language (code) instead of detecting it.
    #[arg(long)]
    language: Option<String>,
}

#[derive(Args)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    /// Synthetic index size.
    #[arg(long, default_value_t = 100_000)]
    chunks: usize,
    /// Queries measured (cycling through the question set).
    #[arg(long, default_value_t = 500)]
    queries: usize,
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    common: Common,
    /// Book directory under the Rust docs root.
    #[arg(long, default_value = "book")]
    book: String,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Eval(a) => rt.block_on(eval(a)),
        Command::Latency(a) => rt.block_on(latency(a)),
        Command::Build(a) => rt.block_on(build(a)),
        Command::Grounded(a) => rt.block_on(grounded::run(a)),
        Command::Http(a) => rt.block_on(grounded::http(a)),
        Command::Open { snap } => {
            let before = rss_bytes();
            let index = Index::open(&snap)?;
            // Touch every tantivy page a query can touch and the vectors once.
            for word in ["string", "vector", "trait", "cargo", "lifetime"] {
                index.search(&Query {
                    text: word.to_owned(),
                    embedding: index.embedding(0).map(<[f32]>::to_vec),
                    ..Query::default()
                })?;
            }
            let after = rss_bytes();
            println!("{} {} {}", before, after, index.memory_bytes());
            Ok(())
        }
    }
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn eval(args: EvalArgs) -> Result<()> {
    let build = BuildOptions {
        stemming: !args.no_stem,
        language: match &args.language {
            Some(code) => Some(Lang::from_code(code).context("unknown language code")?),
            None => None,
        },
    };
    let o = eval::LoadOptions {
        model: &args.common.model,
        cache: &args.common.cache,
        chunk: args.common.chunk(),
        build,
    };
    let mut loaded = Vec::new();
    for name in args.corpus.split(',') {
        loaded.push(eval::load(name.trim(), &o).await?);
    }
    for split in args.split.split(',') {
        eval::report(&loaded, split.trim())?;
    }
    // Levers are compared on the dev halves only, whatever split is reported.
    if args.sweep {
        eval::sweep(&loaded, "dev")?;
    }
    if args.grid {
        eval::grid(&loaded)?;
    }
    if args.feedback {
        eval::feedback(&loaded)?;
    }
    if args.query {
        query_side::query_side(&loaded)?;
    }
    if args.threshold {
        eval::threshold(&loaded, &o).await?;
    }
    if args.facts {
        eval::facts(&loaded, &o).await?;
    }
    if let Some(path) = &args.dump_candidates {
        eval::dump_candidates(&loaded, path)?;
    }
    Ok(())
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Tiny deterministic PRNG (xorshift) for the synthetic copies' noise.
struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

async fn latency(args: LatencyArgs) -> Result<()> {
    let common = &args.common;
    let corpus = Corpus::named("rust")?;
    let questions: Vec<Question> = corpus::read_jsonl(&corpus.questions)?;
    let paths = corpus.page_paths(&questions)?;
    let pages = corpus.load_pages(&paths)?;
    let prepared = corpus::prepare(&pages, &common.chunk());
    let embedder = corpus::load_embedder(&common.model, common.batch).await?;
    let mut cache = EmbedCache::open(&common.cache, &common.model, embedder.dimensions())?;
    let (vectors, _) = cache.embed(&embedder, &prepared.texts).await?;
    let base = corpus::docs_for(&corpus, &pages, &prepared, vectors);
    if base.is_empty() {
        bail!("empty corpus");
    }
    let docs = synthetic_copies(base, args.chunks);
    let tmp = tempfile::tempdir()?;
    let snap = tmp.path().join("snap");
    let t = Instant::now();
    let built = Index::build(&snap, docs)?;
    let build_s = t.elapsed().as_secs_f64();
    drop(built);

    let before = rss_bytes();
    let t = Instant::now();
    let index = Index::open(&snap)?;
    let open_s = t.elapsed().as_secs_f64();
    let q_texts: Vec<String> = questions.iter().map(|q| q.question.clone()).collect();
    // Warm-up: fault in the tantivy pages and the embedder.
    for q in q_texts.iter().take(20) {
        let e = embedder.embed(std::slice::from_ref(q)).await?;
        index.search(&Query {
            text: q.clone(),
            embedding: e.into_iter().next(),
            ..Query::default()
        })?;
    }
    let after = rss_bytes();
    print_fresh_open(&snap, index.len())?;

    println!(
        "\n{} chunks (dim {}): build {:.1}s, open {:.2}s, RSS +{:.0} MiB after open and warm-up, memory_bytes() {:.0} MiB\n",
        index.len(),
        index.dim(),
        build_s,
        open_s,
        after.saturating_sub(before) as f64 / (1 << 20) as f64,
        index.memory_bytes() as f64 / (1 << 20) as f64
    );
    time_modes(&embedder, &index, &q_texts, args.queries).await?;
    // The worst a visitor's text can ask of BM25: eight questions pasted into one
    // message, past the 64 distinct terms the lexical query keeps.
    let pasted: Vec<String> = q_texts.chunks(8).map(|c| c.join(" ")).collect();
    let terms: Vec<usize> = pasted.iter().map(|t| index.query_terms(t).len()).collect();
    println!(
        "\neight questions in one message ({} texts, {}-{} BM25 terms each):\n",
        pasted.len(),
        terms.iter().min().unwrap_or(&0),
        terms.iter().max().unwrap_or(&0)
    );
    time_modes(&embedder, &index, &pasted, args.queries / 5).await
}

/// `chunks` docs from `base`, repeated: copy k of a chunk keeps its text plus a
/// distinct marker word (so BM25 postings grow as with real data), and its embedding
/// plus uniform noise of ±0.05 per dimension, re-normalised (cosine ≈ 0.95 to the
/// original).
fn synthetic_copies(base: Vec<Doc>, chunks: usize) -> Vec<Doc> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut docs = Vec::with_capacity(chunks);
    for i in 0..chunks {
        let b = &base[i % base.len()];
        let copy = i / base.len();
        let mut d = b.clone();
        d.chunk_id = format!("c{i}");
        if copy > 0 {
            d.text = format!("{} copy{copy}", d.text);
            for x in &mut d.embedding {
                *x += 0.05 * rng.next_f32();
            }
            let norm = d.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
            d.embedding.iter_mut().for_each(|x| *x /= norm);
        }
        docs.push(d);
    }
    docs
}

/// The RSS of a fresh process (the `open` subcommand) before and after opening the
/// snapshot and searching.
fn print_fresh_open(snap: &std::path::Path, chunks: usize) -> Result<()> {
    let fresh = std::process::Command::new(std::env::current_exe()?)
        .arg("open")
        .arg("--snap")
        .arg(snap)
        .output()
        .context("failed to run the open subcommand")?;
    let fresh = String::from_utf8(fresh.stdout)?;
    let fresh: Vec<u64> = fresh
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if let [b, a, _] = fresh[..] {
        println!(
            "\nfresh process: RSS {:.0} MiB before open, {:.0} MiB after open and 5 searches: +{:.0} MiB for {} chunks",
            b as f64 / (1 << 20) as f64,
            a as f64 / (1 << 20) as f64,
            a.saturating_sub(b) as f64 / (1 << 20) as f64,
            chunks
        );
    }
    Ok(())
}

/// Per retrieval mode, the embed, search and total latency of `queries` searches.
async fn time_modes(
    embedder: &LocalEmbedder,
    index: &Index,
    q_texts: &[String],
    queries: usize,
) -> Result<()> {
    let modes: Vec<(&str, Mode)> = vec![
        ("hybrid (default)", Mode::default()),
        ("hybrid rrf k=60", Mode::Hybrid(Fusion::Rrf { k: 60.0 })),
        ("bm25", Mode::Bm25),
        ("dense", Mode::Dense),
    ];
    println!(
        "| mode | embed p50 ms | search p50 ms | search p99 ms | total p50 ms | total p99 ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, mode) in modes {
        let mut embed_ms = Vec::new();
        let mut search_ms = Vec::new();
        let mut total_ms = Vec::new();
        for i in 0..queries {
            let text = &q_texts[i % q_texts.len()];
            let t0 = Instant::now();
            let e = embedder.embed(std::slice::from_ref(text)).await?;
            let t1 = Instant::now();
            let hits = index.search(&Query {
                text: text.clone(),
                embedding: e.into_iter().next(),
                limit: 5,
                mode,
                ..Query::default()
            })?;
            let t2 = Instant::now();
            std::hint::black_box(hits);
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            embed_ms.push(ms(t1 - t0));
            search_ms.push(ms(t2 - t1));
            total_ms.push(ms(t2 - t0));
        }
        for v in [&mut embed_ms, &mut search_ms, &mut total_ms] {
            v.sort_by(f64::total_cmp);
        }
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(&embed_ms, 0.5),
            percentile(&search_ms, 0.5),
            percentile(&search_ms, 0.99),
            percentile(&total_ms, 0.5),
            percentile(&total_ms, 0.99)
        );
    }
    Ok(())
}

async fn build(args: BuildArgs) -> Result<()> {
    let common = &args.common;
    let corpus = Corpus::named("rust")?;
    let t0 = Instant::now();
    let questions: Vec<Question> = Vec::new();
    let mut paths = corpus.page_paths(&questions)?;
    paths.retain(|p| p.starts_with(&format!("{}/", args.book)));
    let pages = corpus.load_pages(&paths)?;
    let t1 = Instant::now();
    let prepared = corpus::prepare(&pages, &common.chunk());
    let t2 = Instant::now();
    let embedder = corpus::load_embedder(&common.model, common.batch).await?;
    let t3 = Instant::now();
    // Never from the cache: this measures embedding.
    let mut vectors = Vec::with_capacity(prepared.texts.len());
    for part in prepared.texts.chunks(1024) {
        vectors.extend(embedder.embed(part).await.context("embedding failed")?);
    }
    let t4 = Instant::now();
    let docs = corpus::docs_for(&corpus, &pages, &prepared, vectors);
    let tmp = tempfile::tempdir()?;
    let index = Index::build(&tmp.path().join("snap"), docs)?;
    let t5 = Instant::now();
    let s = |a: Instant, b: Instant| (b - a).as_secs_f64();
    let chars: usize = prepared.texts.iter().map(|t| t.chars().count()).sum();
    println!(
        "\n{}: {} pages, {} chunks, {:.1} M chars embedded (max_chars {}, overlap {}, batch {})\n",
        args.book,
        pages.len(),
        index.len(),
        chars as f64 / 1e6,
        common.max_chars,
        common.overlap,
        common.batch
    );
    println!("| stage | seconds |");
    println!("| --- | ---: |");
    println!("| extract (HTML → Markdown) | {:.2} |", s(t0, t1));
    println!("| chunk | {:.2} |", s(t1, t2));
    println!("| load embedder | {:.2} |", s(t2, t3));
    println!(
        "| embed | {:.2} ({:.0} chunks/s) |",
        s(t3, t4),
        index.len() as f64 / s(t3, t4)
    );
    println!(
        "| index (tantivy + vectors + metadata, written and reopened) | {:.2} |",
        s(t4, t5)
    );
    println!("| **total** | **{:.2}** |", s(t0, t5));
    std::io::stdout().flush()?;
    Ok(())
}
