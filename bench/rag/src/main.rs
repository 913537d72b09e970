//! Retrieval benchmarks for `agentbase-search` over the Rust documentation installed
//! with the toolchain: `eval` (quality per mode and fusion, threshold calibration),
//! `latency` (p50/p99 at 100k chunks, query embedding included, and RSS per 100k
//! chunks), `build` (the Rust Book from HTML to a loaded snapshot, split by stage).
//!
//! HTML → Markdown goes through `agentbase_crawler::extract` with WCC-style options
//! (keep `main`, no readability pass), as a user would configure a docs crawl.
//! Embeddings of the corpus are cached on disk (keyed by the embedded text's hash) so
//! tuning runs do not re-embed.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentbase_core::model::Embedder;
use agentbase_crawler::{ExtractOptions, HtmlTransformer, extract};
use agentbase_llm::{LocalEmbedder, LocalEmbedderOptions};
use agentbase_search::{
    Chunk, ChunkOptions, Doc, Fusion, Index, MIN_RELEVANCE, Mode, Query, chunk_markdown,
    embedding_text,
};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use sha2::{Digest, Sha256};

#[derive(Parser)]
#[command(about = "Retrieval benchmarks for agentbase-search over the Rust docs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Quality: recall@5, MRR@10, nDCG@10 per mode and fusion; threshold calibration.
    Eval(EvalArgs),
    /// Latency p50/p99 (query embedding included) and RSS at N synthetic chunks.
    Latency(LatencyArgs),
    /// Index build time for one book, split into extract/chunk/embed/index.
    Build(BuildArgs),
    /// Opens a snapshot in this fresh process and prints the RSS it added (used by
    /// `latency`, so allocator leftovers from building do not blur the figure).
    Open {
        #[arg(long)]
        snap: PathBuf,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Root of the HTML docs (default: `$(rustc --print sysroot)/share/doc/rust/html`).
    #[arg(long)]
    docs: Option<PathBuf>,
    /// all-MiniLM-L6-v2 directory.
    #[arg(long, default_value = "/var/cache/agentbase-models/all-minilm-l6-v2")]
    model: PathBuf,
    /// Where corpus embeddings are cached.
    #[arg(long, default_value = "/var/cache/agentbase-bench-rag")]
    cache: PathBuf,
    #[arg(long, default_value_t = ChunkOptions::default().max_chars)]
    max_chars: usize,
    #[arg(long, default_value_t = ChunkOptions::default().overlap_chars)]
    overlap: usize,
    /// Embed the chunk text alone instead of title + heading path + text.
    #[arg(long)]
    text_only: bool,
    /// Embedder batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value = "bench/rag/questions.jsonl")]
    questions: PathBuf,
    /// Disable English stemming in BM25.
    #[arg(long)]
    no_stem: bool,
    /// Weight of title/heading matches in BM25 (0 = body only).
    #[arg(long, default_value_t = agentbase_search::BuildOptions::default().heading_boost)]
    heading_boost: f32,
}

#[derive(Args)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value = "bench/rag/questions.jsonl")]
    questions: PathBuf,
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
    /// Book directory under the docs root.
    #[arg(long, default_value = "book")]
    book: String,
}

#[derive(serde::Deserialize)]
struct Question {
    id: String,
    question: String,
    relevant: Vec<String>,
    #[serde(default)]
    offtopic: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Eval(a) => rt.block_on(eval(a)),
        Command::Latency(a) => rt.block_on(latency(a)),
        Command::Build(a) => rt.block_on(build(a)),
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

fn docs_root(common: &Common) -> Result<PathBuf> {
    if let Some(d) = &common.docs {
        return Ok(d.clone());
    }
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("failed to run rustc --print sysroot")?;
    let sysroot = String::from_utf8(out.stdout)?.trim().to_owned();
    Ok(Path::new(&sysroot).join("share/doc/rust/html"))
}

/// A page of the corpus, as extracted.
struct Page {
    /// Path relative to the docs root, as in `relevant`.
    path: String,
    title: String,
    markdown: String,
}

/// mdBook renders every page once more into `print.html` (and keeps redirect stubs
/// for old editions); those would duplicate the corpus, so they are skipped.
fn skip(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    matches!(
        name,
        "print.html" | "toc.html" | "404.html" | "SUMMARY.html"
    ) || rel.starts_with("book/2018-edition/")
        || rel.starts_with("book/first-edition/")
        || rel.starts_with("book/second-edition/")
        || !rel.ends_with(".html")
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(root)?
                .to_string_lossy()
                .replace('\\', "/");
            if !skip(&rel) {
                out.push(rel);
            }
        }
    }
    Ok(())
}

fn extract_options() -> ExtractOptions {
    ExtractOptions {
        keep_elements_css_selector: "main".to_owned(),
        html_transformer: HtmlTransformer::None,
        ..ExtractOptions::default()
    }
}

fn load_pages(root: &Path, paths: &[String]) -> Result<Vec<Page>> {
    let options = extract_options();
    let mut pages = Vec::with_capacity(paths.len());
    for rel in paths {
        let html = std::fs::read_to_string(root.join(rel))
            .with_context(|| format!("failed to read {rel}"))?;
        let url = format!("https://doc.rust-lang.org/{rel}");
        let e = extract(&html, &url, &options);
        let markdown = e.markdown.unwrap_or(e.text);
        if markdown.trim().is_empty() {
            continue;
        }
        pages.push(Page {
            path: rel.clone(),
            title: e.title.unwrap_or_default(),
            markdown,
        });
    }
    Ok(pages)
}

/// The books the question set draws on, whole, plus any other page it names.
fn corpus_paths(root: &Path, questions: &[Question]) -> Result<Vec<String>> {
    let mut paths = Vec::new();
    for book in ["book", "rust-by-example", "reference", "cargo"] {
        walk(root, &root.join(book), &mut paths)?;
    }
    let have: HashSet<String> = paths.iter().cloned().collect();
    for q in questions {
        for r in &q.relevant {
            if !have.contains(r) && root.join(r).is_file() && !paths.contains(r) {
                paths.push(r.clone());
            }
        }
    }
    paths.sort();
    Ok(paths)
}

struct Prepared {
    /// (page index, chunk) in corpus order.
    chunks: Vec<(usize, Chunk)>,
    texts: Vec<String>,
}

fn prepare(pages: &[Page], common: &Common) -> Prepared {
    let options = ChunkOptions {
        max_chars: common.max_chars,
        overlap_chars: common.overlap,
    };
    let mut chunks = Vec::new();
    let mut texts = Vec::new();
    for (p, page) in pages.iter().enumerate() {
        for c in chunk_markdown(&page.markdown, &options) {
            texts.push(if common.text_only {
                c.text.clone()
            } else {
                embedding_text(&page.title, &c)
            });
            chunks.push((p, c));
        }
    }
    Prepared { chunks, texts }
}

async fn load_embedder(common: &Common) -> Result<LocalEmbedder> {
    let dir = common.model.clone();
    let batch = common.batch;
    tokio::task::spawn_blocking(move || {
        LocalEmbedder::load(
            &dir,
            LocalEmbedderOptions {
                batch_size: batch,
                ..Default::default()
            },
        )
    })
    .await?
    .context("failed to load the embedder")
}

async fn embed_all(embedder: &LocalEmbedder, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for part in texts.chunks(1024) {
        out.extend(embedder.embed(part).await.context("embedding failed")?);
    }
    Ok(out)
}

/// Embeddings for `texts`, from the cache when every text hashes the same.
async fn embed_cached(
    embedder: &LocalEmbedder,
    texts: &[String],
    cache: &Path,
) -> Result<(Vec<Vec<f32>>, bool)> {
    let mut h = Sha256::new();
    for t in texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    let key: String = h
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = cache.join(format!("emb-{key}.f32"));
    let dim = embedder.dimensions();
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() == texts.len() * dim * 4
    {
        let flat: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        return Ok((flat.chunks(dim).map(<[f32]>::to_vec).collect(), true));
    }
    let vectors = embed_all(embedder, texts).await?;
    std::fs::create_dir_all(cache)?;
    let mut bytes = Vec::with_capacity(texts.len() * dim * 4);
    for v in &vectors {
        for x in v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    std::fs::write(&path, bytes)?;
    Ok((vectors, false))
}

fn docs_for(pages: &[Page], prepared: &Prepared, vectors: Vec<Vec<f32>>) -> Vec<Doc> {
    prepared
        .chunks
        .iter()
        .zip(vectors)
        .enumerate()
        .map(|(i, ((p, c), embedding))| Doc {
            chunk_id: format!("c{i}"),
            source_id: pages[*p].path.clone(),
            title: pages[*p].title.clone(),
            url: Some(format!("https://doc.rust-lang.org/{}", pages[*p].path)),
            heading: c.heading_path.join(" > "),
            text: c.text.clone(),
            embedding,
        })
        .collect()
}

fn read_questions(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad question line {l}")))
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Metrics {
    recall5: f64,
    mrr10: f64,
    ndcg10: f64,
}

/// Page-level metrics for one ranking: hits are mapped to their page and pages
/// de-duplicated (first occurrence wins) before scoring.
fn score(ranked_pages: &[&str], relevant: &HashSet<&str>) -> Metrics {
    let mut seen = HashSet::new();
    let pages: Vec<&str> = ranked_pages
        .iter()
        .copied()
        .filter(|p| seen.insert(*p))
        .take(10)
        .collect();
    let found5 = pages
        .iter()
        .take(5)
        .filter(|p| relevant.contains(*p))
        .count();
    let mrr10 = pages
        .iter()
        .position(|p| relevant.contains(p))
        .map_or(0.0, |r| 1.0 / (r as f64 + 1.0));
    let dcg: f64 = pages
        .iter()
        .enumerate()
        .filter(|(_, p)| relevant.contains(*p))
        .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10))
        .map(|i| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    Metrics {
        recall5: found5 as f64 / relevant.len() as f64,
        mrr10,
        ndcg10: if ideal > 0.0 { dcg / ideal } else { 0.0 },
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn eval(args: EvalArgs) -> Result<()> {
    let common = &args.common;
    let root = docs_root(common)?;
    let questions = read_questions(&args.questions)?;
    let t = Instant::now();
    let paths = corpus_paths(&root, &questions)?;
    let pages = load_pages(&root, &paths)?;
    let extract_s = t.elapsed().as_secs_f64();
    let prepared = prepare(&pages, common);
    let n_chunks = prepared.chunks.len();
    eprintln!(
        "corpus: {} pages, {} chunks (max_chars {}, overlap {}, embedded: {}), extract {:.1}s",
        pages.len(),
        n_chunks,
        common.max_chars,
        common.overlap,
        if common.text_only {
            "text"
        } else {
            "title+headings+text"
        },
        extract_s
    );
    let known: HashSet<&str> = pages.iter().map(|p| p.path.as_str()).collect();
    for q in &questions {
        for r in &q.relevant {
            if !known.contains(r.as_str()) {
                eprintln!("warning: {} names {r}, not in the corpus", q.id);
            }
        }
    }

    let embedder = load_embedder(common).await?;
    let t = Instant::now();
    let (vectors, cached) = embed_cached(&embedder, &prepared.texts, &common.cache).await?;
    eprintln!(
        "corpus embeddings: {:.1}s{}",
        t.elapsed().as_secs_f64(),
        if cached { " (cache)" } else { "" }
    );
    let docs = docs_for(&pages, &prepared, vectors);
    let tmp = tempfile::tempdir()?;
    let t = Instant::now();
    let index = Index::build_with(
        &tmp.path().join("snap"),
        docs,
        &agentbase_search::BuildOptions {
            stemming: !args.no_stem,
            heading_boost: args.heading_boost,
        },
    )?;
    eprintln!("index build: {:.1}s", t.elapsed().as_secs_f64());

    let q_texts: Vec<String> = questions.iter().map(|q| q.question.clone()).collect();
    let q_vecs = embed_all(&embedder, &q_texts).await?;

    let mut modes: Vec<(String, Mode)> =
        vec![("bm25".into(), Mode::Bm25), ("dense".into(), Mode::Dense)];
    for k in [5.0, 10.0, 20.0, 30.0, 60.0, 100.0] {
        modes.push((format!("rrf k={k}"), Mode::Hybrid(Fusion::Rrf { k })));
    }
    for w in [0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.7] {
        modes.push((
            format!("normalized w_dense={w}"),
            Mode::Hybrid(Fusion::Normalized { weight_dense: w }),
        ));
    }
    let answerable: Vec<usize> = (0..questions.len())
        .filter(|&i| !questions[i].offtopic && !questions[i].relevant.is_empty())
        .collect();
    println!(
        "\nquestions: {} answerable, {} off-topic; corpus {} pages, {} chunks (max_chars {}, overlap {}, embedded {}, stem {}, heading_boost {})\n",
        answerable.len(),
        questions.len() - answerable.len(),
        pages.len(),
        n_chunks,
        common.max_chars,
        common.overlap,
        if common.text_only {
            "text"
        } else {
            "title+headings+text"
        },
        !args.no_stem,
        args.heading_boost,
    );
    println!("| mode | recall@5 | MRR@10 | nDCG@10 |");
    println!("| --- | ---: | ---: | ---: |");
    let mut results: Vec<(String, Metrics)> = Vec::new();
    for (name, mode) in &modes {
        let mut sum = Metrics::default();
        for &qi in &answerable {
            let q = &questions[qi];
            let hits = index.search(&Query {
                text: q.question.clone(),
                embedding: Some(q_vecs[qi].clone()),
                limit: 60,
                mode: *mode,
                candidates: 0,
            })?;
            let pages_ranked: Vec<&str> = hits
                .iter()
                .map(|h| index.doc(h.doc).map_or("", |d| d.source_id.as_str()))
                .collect();
            let relevant: HashSet<&str> = q.relevant.iter().map(String::as_str).collect();
            let m = score(&pages_ranked, &relevant);
            sum.recall5 += m.recall5;
            sum.mrr10 += m.mrr10;
            sum.ndcg10 += m.ndcg10;
        }
        let n = answerable.len() as f64;
        let m = Metrics {
            recall5: sum.recall5 / n * 100.0,
            mrr10: sum.mrr10 / n * 100.0,
            ndcg10: sum.ndcg10 / n * 100.0,
        };
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            m.recall5, m.mrr10, m.ndcg10
        );
        results.push((name.clone(), m));
    }
    let best_single = results[..2]
        .iter()
        .map(|r| r.1.ndcg10)
        .fold(f64::MIN, f64::max);
    let best_hybrid = results[2..]
        .iter()
        .max_by(|a, b| a.1.ndcg10.total_cmp(&b.1.ndcg10))
        .expect("hybrid modes");
    println!(
        "\nbest hybrid: {} at nDCG@10 {:.1}, {:+.1} points over the better single ranking ({:.1})",
        best_hybrid.0,
        best_hybrid.1.ndcg10,
        best_hybrid.1.ndcg10 - best_single,
        best_single
    );

    // Threshold calibration on the best hit's dense cosine.
    let mut on = Vec::new();
    let mut off = Vec::new();
    for (qi, q) in questions.iter().enumerate() {
        let hits = index.search(&Query {
            text: q.question.clone(),
            embedding: Some(q_vecs[qi].clone()),
            limit: 1,
            mode: Mode::Dense,
            candidates: 0,
        })?;
        let top = hits.first().and_then(|h| h.relevance()).unwrap_or(0.0) as f64;
        if q.offtopic || q.relevant.is_empty() {
            off.push(top);
        } else {
            on.push(top);
        }
    }
    on.sort_by(f64::total_cmp);
    off.sort_by(f64::total_cmp);
    println!("\nbest-hit dense cosine (relevance):");
    println!("| set | n | min | p10 | p50 | p90 | max |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, v) in [("answerable", &on), ("off-topic", &off)] {
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            v.len(),
            v.first().copied().unwrap_or(f64::NAN),
            percentile(v, 0.1),
            percentile(v, 0.5),
            percentile(v, 0.9),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    let mut best = (0.0, 0usize);
    for step in 0..=100 {
        let t = step as f64 / 100.0;
        let correct =
            on.iter().filter(|&&x| x >= t).count() + off.iter().filter(|&&x| x < t).count();
        if correct > best.1 {
            best = (t, correct);
        }
    }
    let at = |t: f64| {
        (
            on.iter().filter(|&&x| x >= t).count(),
            off.iter().filter(|&&x| x < t).count(),
        )
    };
    let (a, o) = at(MIN_RELEVANCE as f64);
    println!(
        "\nMIN_RELEVANCE = {MIN_RELEVANCE}: keeps {a}/{} answerable, rejects {o}/{} off-topic",
        on.len(),
        off.len()
    );
    let (a, o) = at(best.0);
    println!(
        "most accurate cut-off on this set: {:.2} (keeps {a}/{}, rejects {o}/{})",
        best.0,
        on.len(),
        off.len()
    );
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
    let root = docs_root(common)?;
    let questions = read_questions(&args.questions)?;
    let paths = corpus_paths(&root, &questions)?;
    let pages = load_pages(&root, &paths)?;
    let prepared = prepare(&pages, common);
    let embedder = load_embedder(common).await?;
    let (vectors, _) = embed_cached(&embedder, &prepared.texts, &common.cache).await?;
    let base = docs_for(&pages, &prepared, vectors);
    if base.is_empty() {
        bail!("empty corpus");
    }
    // Synthetic copies: copy k of a chunk keeps its text plus a distinct marker word
    // (so BM25 postings grow as with real data), and its embedding plus uniform noise
    // of ±0.05 per dimension, re-normalised (cosine ≈ 0.95 to the original).
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut docs = Vec::with_capacity(args.chunks);
    for i in 0..args.chunks {
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
    drop(base);
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
    let fresh = std::process::Command::new(std::env::current_exe()?)
        .arg("open")
        .arg("--snap")
        .arg(&snap)
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
            index.len()
        );
    }

    let modes: Vec<(&str, Mode)> = vec![
        ("hybrid (default)", Mode::default()),
        ("hybrid rrf k=60", Mode::Hybrid(Fusion::Rrf { k: 60.0 })),
        ("bm25", Mode::Bm25),
        ("dense", Mode::Dense),
    ];
    println!(
        "\n{} chunks (dim {}): build {:.1}s, open {:.2}s, RSS +{:.0} MiB after open and warm-up, memory_bytes() {:.0} MiB\n",
        index.len(),
        index.dim(),
        build_s,
        open_s,
        after.saturating_sub(before) as f64 / (1 << 20) as f64,
        index.memory_bytes() as f64 / (1 << 20) as f64
    );
    println!(
        "| mode | embed p50 ms | search p50 ms | search p99 ms | total p50 ms | total p99 ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, mode) in modes {
        let mut embed_ms = Vec::new();
        let mut search_ms = Vec::new();
        let mut total_ms = Vec::new();
        for i in 0..args.queries {
            let text = &q_texts[i % q_texts.len()];
            let t0 = Instant::now();
            let e = embedder.embed(std::slice::from_ref(text)).await?;
            let t1 = Instant::now();
            let hits = index.search(&Query {
                text: text.clone(),
                embedding: e.into_iter().next(),
                limit: 5,
                mode,
                candidates: 0,
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
    let root = docs_root(common)?;
    let t0 = Instant::now();
    let mut paths = Vec::new();
    walk(&root, &root.join(&args.book), &mut paths)?;
    paths.sort();
    let pages = load_pages(&root, &paths)?;
    let t1 = Instant::now();
    let prepared = prepare(&pages, common);
    let t2 = Instant::now();
    let embedder = load_embedder(common).await?;
    let t3 = Instant::now();
    // Never from the cache: this measures embedding.
    let vectors = embed_all(&embedder, &prepared.texts).await?;
    let t4 = Instant::now();
    let docs = docs_for(&pages, &prepared, vectors);
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
