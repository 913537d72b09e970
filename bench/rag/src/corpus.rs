//! The three evaluation corpora (the Rust docs from the toolchain, the PostgreSQL 15
//! manual from `postgresql-doc-15`, the Python 3.11 docs from `python3.11-doc`),
//! their question sets, HTML → Markdown → chunks, and the embedding cache.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use agentbase_core::model::Embedder;
use agentbase_crawler::{ExtractOptions, HtmlTransformer, extract};
use agentbase_llm::{LocalEmbedder, LocalEmbedderOptions};
use agentbase_search::{Chunk, ChunkOptions, Doc, chunk_markdown, embedding_text};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// One corpus: where its pages are, which of them are indexed, how they are
/// extracted, and its question set.
#[derive(Clone)]
pub struct Corpus {
    pub name: &'static str,
    pub root: PathBuf,
    /// Pages are cited as `url_base + path`.
    pub url_base: &'static str,
    pub questions: PathBuf,
    pub grounded: PathBuf,
    extract: ExtractOptions,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Rust,
    Postgres,
    Python,
}

pub fn rust_docs() -> Result<PathBuf> {
    if let Ok(d) = std::env::var("RUST_DOCS") {
        return Ok(PathBuf::from(d));
    }
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("failed to run rustc --print sysroot")?;
    let sysroot = String::from_utf8(out.stdout)?.trim().to_owned();
    Ok(Path::new(&sysroot).join("share/doc/rust/html"))
}

impl Corpus {
    pub fn named(name: &str) -> Result<Corpus> {
        let sets = Path::new("bench/rag/sets");
        Ok(match name {
            "rust" => Corpus {
                name: "rust",
                root: rust_docs()?,
                url_base: "http://127.0.0.1/rust/",
                questions: PathBuf::from("bench/rag/questions.jsonl"),
                grounded: sets.join("grounded-rust.jsonl"),
                // As before: a user crawling mdBook output keeps `main`.
                extract: ExtractOptions {
                    keep_elements_css_selector: "main".to_owned(),
                    html_transformer: HtmlTransformer::None,
                    ..ExtractOptions::default()
                },
                kind: Kind::Rust,
            },
            // The other two are extracted with the crawler's defaults, as a link
            // source with no options would be.
            "postgres" => Corpus {
                name: "postgres",
                root: PathBuf::from("/usr/share/doc/postgresql-doc-15/html"),
                url_base: "http://127.0.0.1/postgres/",
                questions: sets.join("postgres.jsonl"),
                grounded: sets.join("grounded-postgres.jsonl"),
                extract: ExtractOptions::default(),
                kind: Kind::Postgres,
            },
            "python" => Corpus {
                name: "python",
                root: PathBuf::from("/usr/share/doc/python3.11/html"),
                url_base: "http://127.0.0.1/python/",
                questions: sets.join("python.jsonl"),
                grounded: sets.join("grounded-python.jsonl"),
                extract: ExtractOptions::default(),
                kind: Kind::Python,
            },
            other => anyhow::bail!("unknown corpus {other} (rust, postgres, python)"),
        })
    }

    /// Pages that are not content: whole-book copies, redirect stubs, indexes,
    /// search pages. A site crawl would fetch them; they are left out of the
    /// index as an operator would exclude them, and no question names them.
    fn skip(&self, rel: &str) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if !rel.ends_with(".html") {
            return true;
        }
        match self.kind {
            Kind::Rust => {
                matches!(
                    name,
                    "print.html" | "toc.html" | "404.html" | "SUMMARY.html"
                ) || rel.starts_with("book/2018-edition/")
                    || rel.starts_with("book/first-edition/")
                    || rel.starts_with("book/second-edition/")
                    || ["es/", "ja/", "ko/", "zh/"]
                        .iter()
                        .any(|l| rel.starts_with(&format!("rust-by-example/{l}")))
            }
            Kind::Postgres => false,
            Kind::Python => {
                name.starts_with("genindex")
                    || matches!(name, "search.html" | "py-modindex.html" | "contents.html")
                    || rel.starts_with('_')
            }
        }
    }

    pub fn page_paths(&self, questions: &[Question]) -> Result<Vec<String>> {
        let mut paths = Vec::new();
        let dirs: Vec<PathBuf> = match self.kind {
            Kind::Rust => ["book", "rust-by-example", "reference", "cargo"]
                .iter()
                .map(|d| self.root.join(d))
                .collect(),
            _ => vec![self.root.clone()],
        };
        for d in dirs {
            walk(&self.root, &d, &mut paths)?;
        }
        paths.retain(|p| !self.skip(p));
        let have: HashSet<String> = paths.iter().cloned().collect();
        for q in questions {
            for r in &q.relevant {
                if !have.contains(r) && self.root.join(r).is_file() && !paths.contains(r) {
                    paths.push(r.clone());
                }
            }
        }
        paths.sort();
        Ok(paths)
    }

    pub fn load_pages(&self, paths: &[String]) -> Result<Vec<Page>> {
        let mut pages = Vec::with_capacity(paths.len());
        for rel in paths {
            let html = std::fs::read(self.root.join(rel))
                .with_context(|| format!("failed to read {rel}"))?;
            let html = String::from_utf8_lossy(&html);
            let url = format!("{}{rel}", self.url_base);
            let e = extract(&html, &url, &self.extract);
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
            out.push(
                path.strip_prefix(root)?
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
    Ok(())
}

/// A page of the corpus, as extracted.
pub struct Page {
    /// Path relative to the docs root, as in `relevant`.
    pub path: String,
    pub title: String,
    pub markdown: String,
}

#[derive(serde::Deserialize, Clone)]
pub struct Question {
    pub id: String,
    pub question: String,
    #[serde(default)]
    pub relevant: Vec<String>,
    #[serde(default)]
    pub offtopic: bool,
    #[serde(default)]
    pub split: Option<String>,
}

pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad line {l}")))
        .collect()
}

/// The chunks of a corpus, in page order, with the text each is embedded as.
pub struct Prepared {
    /// (page index, chunk).
    pub chunks: Vec<(usize, Chunk)>,
    pub texts: Vec<String>,
}

pub fn prepare(pages: &[Page], options: &ChunkOptions) -> Prepared {
    let mut chunks = Vec::new();
    let mut texts = Vec::new();
    for (p, page) in pages.iter().enumerate() {
        for c in chunk_markdown(&page.markdown, options) {
            if c.text.trim().is_empty() {
                continue;
            }
            texts.push(embedding_text(&page.title, &c));
            chunks.push((p, c));
        }
    }
    Prepared { chunks, texts }
}

pub fn docs_for(
    corpus: &Corpus,
    pages: &[Page],
    prepared: &Prepared,
    vectors: Vec<Vec<f32>>,
) -> Vec<Doc> {
    prepared
        .chunks
        .iter()
        .zip(vectors)
        .enumerate()
        .map(|(i, ((p, c), embedding))| Doc {
            chunk_id: format!("c{i}"),
            source_id: pages[*p].path.clone(),
            title: pages[*p].title.clone(),
            url: Some(format!("{}{}", corpus.url_base, pages[*p].path)),
            heading: c.heading_path.join(" > "),
            text: c.text.clone(),
            embedding,
        })
        .collect()
}

pub async fn load_embedder(dir: &Path, batch: usize) -> Result<LocalEmbedder> {
    let dir = dir.to_path_buf();
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

/// Embeddings keyed by (model, text): one append-only file per model of
/// `[16-byte key][dim × f32]` records, so a re-chunked or edited corpus re-embeds
/// only the chunks whose text changed, and a run killed halfway keeps what it did.
pub struct EmbedCache {
    path: PathBuf,
    dim: usize,
    map: HashMap<[u8; 16], Vec<f32>>,
}

fn key(text: &str) -> [u8; 16] {
    let h = Sha256::digest(text.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h[..16]);
    k
}

impl EmbedCache {
    /// The model is identified by its weights' size and its tokenizer's hash.
    pub fn open(cache_dir: &Path, model_dir: &Path, dim: usize) -> Result<EmbedCache> {
        let mut h = Sha256::new();
        h.update(std::fs::read(model_dir.join("tokenizer.json")).unwrap_or_default());
        h.update(
            std::fs::metadata(model_dir.join("model.safetensors"))
                .map(|m| m.len())
                .unwrap_or(0)
                .to_le_bytes(),
        );
        // AGENTBASE_BENCH_CACHE_ID names the cache instead, for vectors made outside
        // the bench (see `embed`).
        let model: String = std::env::var("AGENTBASE_BENCH_CACHE_ID").unwrap_or_else(|_| {
            h.finalize()[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        });
        std::fs::create_dir_all(cache_dir)?;
        let path = cache_dir.join(format!("embeddings-{model}.bin"));
        let mut map = HashMap::new();
        let rec = 16 + dim * 4;
        if let Ok(bytes) = std::fs::read(&path) {
            // A run killed mid-append leaves a torn record; cut it so the next
            // append starts on a record boundary.
            if bytes.len() % rec != 0 {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len((bytes.len() - bytes.len() % rec) as u64)?;
            }
            for r in bytes.chunks_exact(rec) {
                let mut k = [0u8; 16];
                k.copy_from_slice(&r[..16]);
                let v = r[16..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                map.insert(k, v);
            }
        }
        Ok(EmbedCache { path, dim, map })
    }

    /// Embeds what is missing (appending it to the cache), then returns every
    /// text's vector; the bool is whether everything came from the cache.
    pub async fn embed(
        &mut self,
        embedder: &LocalEmbedder,
        texts: &[String],
    ) -> Result<(Vec<Vec<f32>>, bool)> {
        let mut missing: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for t in texts {
            let k = key(t);
            if !self.map.contains_key(&k) && seen.insert(k) {
                missing.push(t.clone());
            }
        }
        let all_cached = missing.is_empty();
        if !missing.is_empty() {
            eprintln!("embedding {} texts not in the cache", missing.len());
        }
        // For an embedder outside the bench: the texts it must embed, as JSON lines
        // of `key` (hex) and `text`, and zero vectors for them in this run (whose
        // figures mean nothing); the outside embedder appends its vectors to this
        // cache's file as records of the 16 key bytes and `dim` little-endian f32.
        if let (false, Ok(dump)) = (all_cached, std::env::var("AGENTBASE_BENCH_DUMP_MISSING")) {
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&dump)?;
            for t in &missing {
                let k: String = key(t).iter().map(|b| format!("{b:02x}")).collect();
                writeln!(out, "{}", serde_json::json!({"key": k, "text": t}))?;
            }
            eprintln!(
                "{} texts written to {dump}: append their vectors to {}",
                missing.len(),
                self.path.display()
            );
            let zero = vec![0.0; self.dim];
            let vectors = texts
                .iter()
                .map(|t| self.map.get(&key(t)).unwrap_or(&zero).clone())
                .collect();
            return Ok((vectors, false));
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        for (n, part) in missing.chunks(512).enumerate() {
            let vectors = embedder.embed(part).await.context("embedding failed")?;
            let mut bytes = Vec::with_capacity(part.len() * (16 + self.dim * 4));
            for (t, v) in part.iter().zip(vectors) {
                let k = key(t);
                bytes.extend_from_slice(&k);
                for x in &v {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
                self.map.insert(k, v);
            }
            file.write_all(&bytes)?;
            if missing.len() > 2048 {
                eprintln!(
                    "  {} / {}",
                    ((n + 1) * 512).min(missing.len()),
                    missing.len()
                );
            }
        }
        Ok((
            texts.iter().map(|t| self.map[&key(t)].clone()).collect(),
            all_cached,
        ))
    }
}
