//! [`Index`]: one agent's immutable retrieval snapshot, written once by
//! [`Index::build`] and loaded by [`Index::open`] on any node.
//!
//! Snapshot layout (all inside the directory given to `build`):
//! - `tantivy/`: the BM25 index (see `lexical.rs`),
//! - `vectors.f32`: the embeddings, row-major little-endian `f32`, `docs × dim`,
//! - `docs.json`: document metadata and text, in the same order,
//! - `COMPLETE`: a small JSON manifest (format, counts, build options) written and
//!   synced last. `open` refuses a directory without it, or whose files disagree with
//!   it, so a build killed halfway is an error, never a half-loaded index.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::dense::Vectors;
use crate::fusion;
use crate::lang::{self, Lang};
use crate::lexical::{self, FieldWeights, Lexical, LexicalDoc};

/// Candidates taken from each ranking before fusion when [`Query::candidates`] is 0.
pub const DEFAULT_DEPTH: usize = 50;

/// Recommended "nothing relevant found" cut-off on [`Hit::relevance`] (the dense
/// cosine between the query and the chunk, all-MiniLM-L6-v2): when the best hit is
/// below it, or its [`Index::coverage`] is below [`MIN_COVERAGE`], the agent should
/// say it does not know rather than answer from context. The pair is chosen on the
/// dev halves of three corpora (bench/rag `eval --threshold`: answerable questions
/// against unanswerable and off-topic ones, bench/rag/RESULTS.md).
pub const MIN_RELEVANCE: f32 = 0.23;

/// The coverage half of the "nothing relevant found" floor: see [`MIN_RELEVANCE`].
pub const MIN_COVERAGE: f32 = 0.40;

/// A best hit at least this relevant needs no [`MIN_COVERAGE`]: a visitor's
/// paraphrase ("How long do refunds take to reach my card?" for "Refunds are paid
/// to the original card within five business days", cosine 0.82) shares few words
/// with the passage. The lowest value that turns away as many unanswerable dev
/// questions as the coverage floor alone (bench/rag `eval --threshold`).
pub const CONFIDENT_RELEVANCE: f32 = 0.60;

/// 2: per-language title/heading/body fields and `languages` in the manifest.
const FORMAT: u32 = 2;
const COMPLETE: &str = "COMPLETE";
const VECTORS: &str = "vectors.f32";
const DOCS: &str = "docs.json";
const TANTIVY: &str = "tantivy";

/// A chunk to index, as the caller has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Caller's id for the chunk (returned with hits; not interpreted).
    pub chunk_id: String,
    /// Caller's id for the source the chunk came from.
    pub source_id: String,
    /// The source's title (indexed with the heading for BM25).
    pub title: String,
    /// Where the source lives, for citations.
    pub url: Option<String>,
    /// The heading path as one string (e.g. `"Common Collections > Strings"`).
    pub heading: String,
    /// The chunk text (indexed for BM25 and returned with hits).
    pub text: String,
    /// The chunk's embedding, L2-normalised; every doc must have the same length.
    pub embedding: Vec<f32>,
}

/// A stored chunk: [`Doc`] without its embedding (that lives in the vector matrix,
/// see [`Index::embedding`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocMeta {
    /// See [`Doc::chunk_id`].
    pub chunk_id: String,
    /// See [`Doc::source_id`].
    pub source_id: String,
    /// See [`Doc::title`].
    pub title: String,
    /// See [`Doc::url`].
    pub url: Option<String>,
    /// See [`Doc::heading`].
    pub heading: String,
    /// See [`Doc::text`].
    pub text: String,
    /// The language the page was stemmed as (ISO 639-1), or `plain` when the
    /// snapshot does not stem.
    #[serde(default)]
    pub lang: String,
}

/// How the two rankings are combined in [`Mode::Hybrid`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion, `Σ 1/(k + rank)`; `k = 60` is the usual choice.
    Rrf { k: f32 },
    /// `weight_dense · dense' + (1 − weight_dense) · bm25'` over min-max normalised
    /// candidate scores.
    Normalized { weight_dense: f32 },
}

impl Default for Fusion {
    /// The fusion that ships: reciprocal rank fusion with `k = 20`, best on the
    /// mean of the three evaluation sets' dev halves together with
    /// [`DEFAULT_FIELDS`] and [`DEFAULT_PAGE_BONUS`] (bench/rag/RESULTS.md).
    fn default() -> Self {
        Fusion::Rrf { k: 20.0 }
    }
}

/// Which rankings a search uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// BM25 only; [`Query::embedding`] is optional (if given, hits get a dense score).
    Bm25,
    /// Dense cosine only; needs [`Query::embedding`].
    Dense,
    /// Both, fused; needs [`Query::embedding`].
    Hybrid(Fusion),
}

impl Default for Mode {
    fn default() -> Self {
        Mode::Hybrid(Fusion::default())
    }
}

/// A search request. Build with `Query { text, embedding, ..Query::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The user's text, as typed; any characters are fine.
    pub text: String,
    /// The query's embedding (same model and dimension as the documents),
    /// L2-normalised. Required by [`Mode::Dense`] and [`Mode::Hybrid`].
    pub embedding: Option<Vec<f32>>,
    /// How many hits to return at most. Default 5.
    pub limit: usize,
    /// Default: hybrid with [`Fusion::default`].
    pub mode: Mode,
    /// Candidates taken from each ranking before fusion; 0 means
    /// `max(DEFAULT_DEPTH, 4 × limit)`.
    pub candidates: usize,
    /// BM25 field weights and query function-word handling.
    pub fields: FieldWeights,
    /// Diversity by page: the results hold the best chunk of each page first, in
    /// page order, and only when the candidates run out of pages a page's 2nd,
    /// 3rd, ... chunk, up to `per_page` chunks of one page. 0 turns grouping off:
    /// plain chunk order.
    pub per_page: usize,
    /// Page score = best chunk score + `page_bonus` × the sum of the page's other
    /// candidate chunks' scores (a page that matches in several places ranks above
    /// one that matches once as well). Only with `per_page > 0`.
    pub page_bonus: f32,
}

/// The BM25 field weights that ship: chosen on the dev halves of the three
/// evaluation sets (bench/rag/RESULTS.md).
pub const DEFAULT_FIELDS: FieldWeights = FieldWeights {
    title: 0.5,
    heading: 0.5,
    drop_stopwords: true,
};

/// Chunks of one page in a result list by default (see [`Query::per_page`]).
pub const DEFAULT_PER_PAGE: usize = 3;

/// The page aggregation bonus that ships (see [`Query::page_bonus`]): chosen with
/// [`Fusion::default`] on the dev halves (bench/rag/RESULTS.md).
pub const DEFAULT_PAGE_BONUS: f32 = 0.05;

impl Default for Query {
    fn default() -> Self {
        Query {
            text: String::new(),
            embedding: None,
            limit: 5,
            mode: Mode::default(),
            candidates: 0,
            fields: DEFAULT_FIELDS,
            per_page: DEFAULT_PER_PAGE,
            page_bonus: DEFAULT_PAGE_BONUS,
        }
    }
}

/// One result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position of the chunk in the snapshot: [`Index::doc`]`(hit.doc)`.
    pub doc: usize,
    /// The chunk's page (same source and URL): [`Index::page`]`(hit.page)`.
    pub page: usize,
    /// The chunk's score: BM25 in [`Mode::Bm25`], cosine in [`Mode::Dense`], the
    /// fused score in [`Mode::Hybrid`] (only comparable within one result list).
    /// With grouping by page, hits are ordered by their page's score, so this is
    /// not necessarily decreasing.
    pub score: f32,
    /// The chunk's BM25 score, when it was among the BM25 candidates.
    pub bm25: Option<f32>,
    /// Cosine similarity between query and chunk embeddings, whenever the query has
    /// an embedding.
    pub dense: Option<f32>,
}

impl Hit {
    /// How confident retrieval is that this chunk is relevant, comparable across
    /// queries: the dense cosine (BM25 and fused scores are not). Compare with
    /// [`MIN_RELEVANCE`]; use it as the message's `metadata.score`. `None` without a
    /// query embedding.
    pub fn relevance(&self) -> Option<f32> {
        self.dense
    }
}

/// Options fixed at build time and recorded in the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOptions {
    /// Snowball stemming for BM25, in each page's language. Default on.
    pub stemming: bool,
    /// Stem every page as this language instead of detecting it per page.
    pub language: Option<Lang>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            stemming: true,
            language: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    docs: usize,
    dim: usize,
    /// Analyzer keys present (language codes, or `plain`), first is the most used.
    languages: Vec<String>,
}

/// One agent's retrieval snapshot: BM25 over title/heading/text plus dense vectors.
/// Immutable, `Send + Sync`; share it behind an `Arc`. Searches are blocking CPU
/// work (milliseconds at 100k chunks): run them off the async runtime. A hybrid
/// search runs BM25 on a scoped thread beside the dense scan, and past ~10k chunks
/// (384 dims) the dense scan itself is split over up to 4 scoped threads.
pub struct Index {
    dir: PathBuf,
    docs: Vec<DocMeta>,
    /// Chunk → page (chunks with the same source id and URL), and each page's
    /// first chunk.
    page_of: Vec<u32>,
    page_first: Vec<u32>,
    vectors: Vectors,
    lexical: Lexical,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dir", &self.dir)
            .field("docs", &self.docs.len())
            .field("dim", &self.vectors.dim())
            .finish()
    }
}

/// Chunk → page number, and each page's first chunk; a page is a distinct
/// (source id, URL) pair, numbered in order of first appearance.
fn pages_of<'a>(docs: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> (Vec<u32>, Vec<u32>) {
    let mut ids: HashMap<(&str, Option<&str>), u32> = HashMap::new();
    let mut page_of = Vec::new();
    let mut first = Vec::new();
    for (i, key) in docs.enumerate() {
        let next = first.len() as u32;
        let p = *ids.entry(key).or_insert_with(|| {
            first.push(i as u32);
            next
        });
        page_of.push(p);
    }
    (page_of, first)
}

fn sync_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let file = File::create(path).map_err(Error::io("create", path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(bytes).map_err(Error::io("write", path))?;
    let file = w
        .into_inner()
        .map_err(|e| Error::io("write", path)(e.into_error()))?;
    file.sync_all().map_err(Error::io("sync", path))
}

/// Checks that every embedding has the first one's dimension and finite values,
/// and that the docs fit the snapshot's 32-bit ordinals; returns the dimension.
fn check_docs(docs: &[Doc]) -> Result<usize, Error> {
    let dim = docs.first().map_or(0, |d| d.embedding.len());
    for (i, d) in docs.iter().enumerate() {
        if d.embedding.len() != dim {
            return Err(Error::BadInput(format!(
                "doc {i} ({}) has a {}-dimensional embedding, expected {dim}",
                d.chunk_id,
                d.embedding.len()
            )));
        }
        if d.embedding.iter().any(|x| !x.is_finite()) {
            return Err(Error::BadInput(format!(
                "doc {i} ({}) has a non-finite embedding value",
                d.chunk_id
            )));
        }
    }
    if docs.len() > u32::MAX as usize {
        return Err(Error::BadInput("more than 2^32 docs".to_owned()));
    }
    Ok(dim)
}

/// Each doc's lexical analyzer key: plain without stemming, the given language,
/// or the language detected from the first 20,000 bytes of its page's chunks (one
/// language per page).
fn analyzer_keys(docs: &[Doc], options: &BuildOptions) -> Vec<&'static str> {
    if !options.stemming {
        return vec![lexical::PLAIN; docs.len()];
    }
    if let Some(l) = options.language {
        return vec![l.code(); docs.len()];
    }
    let (page_of, _) = pages_of(
        docs.iter()
            .map(|d| (d.source_id.as_str(), d.url.as_deref())),
    );
    let mut text_of_page: HashMap<u32, String> = HashMap::new();
    for (d, &p) in docs.iter().zip(&page_of) {
        let t = text_of_page.entry(p).or_default();
        if t.len() < 20_000 {
            t.push_str(&d.text);
            t.push('\n');
        }
    }
    let lang_of_page: HashMap<u32, Lang> = text_of_page
        .into_iter()
        .map(|(p, t)| (p, lang::detect(&t)))
        .collect();
    page_of.iter().map(|p| lang_of_page[p].code()).collect()
}

/// The distinct keys, most frequent first (ties by name).
fn by_frequency(keys: &[&str]) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for k in keys {
        *counts.entry(*k).or_default() += 1;
    }
    let mut languages: Vec<(&str, usize)> = counts.into_iter().collect();
    languages.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    languages.into_iter().map(|(k, _)| k.to_owned()).collect()
}

impl Index {
    /// Writes a snapshot of `docs` into `dir` (created if missing; it must be empty)
    /// with [`BuildOptions::default`], then opens it. Blocking; the heavy part is
    /// tantivy indexing.
    pub fn build(dir: &Path, docs: Vec<Doc>) -> Result<Index, Error> {
        Index::build_with(dir, docs, &BuildOptions::default())
    }

    /// [`Index::build`] with explicit options.
    pub fn build_with(dir: &Path, docs: Vec<Doc>, options: &BuildOptions) -> Result<Index, Error> {
        let dim = check_docs(&docs)?;
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        if std::fs::read_dir(dir)
            .map_err(Error::io("list", dir))?
            .next()
            .is_some()
        {
            return Err(Error::BadInput(format!(
                "snapshot directory {} is not empty",
                dir.display()
            )));
        }
        let doc_keys = analyzer_keys(&docs, options);
        let languages = by_frequency(&doc_keys);

        let tantivy_dir = dir.join(TANTIVY);
        std::fs::create_dir(&tantivy_dir).map_err(Error::io("create", &tantivy_dir))?;
        lexical::build(
            &tantivy_dir,
            &languages,
            docs.iter()
                .zip(&doc_keys)
                .enumerate()
                .map(|(i, (d, key))| LexicalDoc {
                    ord: i as u64,
                    key,
                    title: &d.title,
                    head: &d.heading,
                    body: &d.text,
                }),
        )?;

        let mut vector_bytes = Vec::with_capacity(docs.len() * dim * 4);
        for d in &docs {
            for x in &d.embedding {
                vector_bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        sync_file(&dir.join(VECTORS), &vector_bytes)?;
        drop(vector_bytes);

        let metas: Vec<DocMeta> = docs
            .into_iter()
            .zip(doc_keys)
            .map(|(d, key)| DocMeta {
                chunk_id: d.chunk_id,
                source_id: d.source_id,
                title: d.title,
                url: d.url,
                heading: d.heading,
                text: d.text,
                lang: key.to_owned(),
            })
            .collect();
        let json = serde_json::to_vec(&metas)
            .map_err(|e| Error::BadInput(format!("docs do not serialise: {e}")))?;
        sync_file(&dir.join(DOCS), &json)?;

        let manifest = Manifest {
            format: FORMAT,
            docs: metas.len(),
            dim,
            languages,
        };
        let manifest = serde_json::to_vec(&manifest).expect("manifest serialises");
        sync_file(&dir.join(COMPLETE), &manifest)?;
        if let Ok(d) = File::open(dir) {
            // Makes the marker's directory entry durable; not all filesystems allow it.
            let _ = d.sync_all();
        }
        Index::open(dir)
    }

    /// Loads a snapshot written by [`Index::build`]. A directory without the
    /// `COMPLETE` marker, or whose files disagree with it, is [`Error::Corrupt`].
    /// Blocking: reads the vectors and metadata into memory and mmaps tantivy.
    pub fn open(dir: &Path) -> Result<Index, Error> {
        let manifest_path = dir.join(COMPLETE);
        let manifest = match std::fs::read(&manifest_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corrupt(
                    dir,
                    "no COMPLETE marker (unfinished build?)",
                ));
            }
            Err(e) => return Err(Error::io("read", &manifest_path)(e)),
        };
        let manifest: Manifest = serde_json::from_slice(&manifest)
            .map_err(|e| Error::corrupt(dir, format!("bad COMPLETE manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(Error::corrupt(
                dir,
                format!(
                    "snapshot format {} (this build reads {FORMAT})",
                    manifest.format
                ),
            ));
        }

        let vectors_path = dir.join(VECTORS);
        let bytes = std::fs::read(&vectors_path).map_err(Error::io("read", &vectors_path))?;
        let expected = manifest
            .docs
            .checked_mul(manifest.dim)
            .and_then(|n| n.checked_mul(4));
        if expected != Some(bytes.len()) {
            return Err(Error::corrupt(
                dir,
                format!(
                    "{VECTORS} holds {} bytes, manifest says {} × {} floats",
                    bytes.len(),
                    manifest.docs,
                    manifest.dim
                ),
            ));
        }
        let data: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        drop(bytes);

        let docs_path = dir.join(DOCS);
        let json = std::fs::read(&docs_path).map_err(Error::io("read", &docs_path))?;
        let docs: Vec<DocMeta> = serde_json::from_slice(&json)
            .map_err(|e| Error::corrupt(dir, format!("bad {DOCS}: {e}")))?;
        if docs.len() != manifest.docs {
            return Err(Error::corrupt(
                dir,
                format!(
                    "{DOCS} holds {} docs, manifest says {}",
                    docs.len(),
                    manifest.docs
                ),
            ));
        }

        let lexical = Lexical::open(&dir.join(TANTIVY), &manifest.languages)?;
        if lexical.num_docs() != manifest.docs as u64 {
            return Err(Error::corrupt(
                dir,
                format!(
                    "tantivy holds {} docs, manifest says {}",
                    lexical.num_docs(),
                    manifest.docs
                ),
            ));
        }
        let (page_of, page_first) = pages_of(
            docs.iter()
                .map(|d| (d.source_id.as_str(), d.url.as_deref())),
        );
        Ok(Index {
            dir: dir.to_path_buf(),
            docs,
            page_of,
            page_first,
            vectors: Vectors::new(manifest.dim, data),
            lexical,
        })
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the snapshot holds no chunks.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Embedding dimension (0 for an empty snapshot).
    pub fn dim(&self) -> usize {
        self.vectors.dim()
    }

    /// The directory the snapshot lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The chunk at `i` (as in [`Hit::doc`]).
    pub fn doc(&self, i: usize) -> Option<&DocMeta> {
        self.docs.get(i)
    }

    /// Number of pages (distinct source id + URL).
    pub fn pages(&self) -> usize {
        self.page_first.len()
    }

    /// The first chunk of page `p` (as in [`Hit::page`]): its source id, URL and
    /// title are the page's.
    pub fn page(&self, p: usize) -> Option<&DocMeta> {
        self.page_first
            .get(p)
            .and_then(|&i| self.docs.get(i as usize))
    }

    /// The analyzer keys (language codes, or `plain`) the BM25 index holds, most
    /// used first.
    pub fn languages(&self) -> Vec<String> {
        self.lexical.keys().map(str::to_owned).collect()
    }

    /// All chunks, in snapshot order.
    pub fn docs(&self) -> &[DocMeta] {
        &self.docs
    }

    /// The stored embedding of chunk `i`.
    pub fn embedding(&self, i: usize) -> Option<&[f32]> {
        self.vectors.row(i)
    }

    /// Approximate RAM held: vectors, metadata and text on the heap, plus the size of
    /// the tantivy files (memory-mapped, so an upper bound on what is resident).
    pub fn memory_bytes(&self) -> usize {
        let meta: usize = self
            .docs
            .iter()
            .map(|d| {
                std::mem::size_of::<DocMeta>()
                    + d.chunk_id.capacity()
                    + d.source_id.capacity()
                    + d.title.capacity()
                    + d.url.as_ref().map_or(0, String::capacity)
                    + d.heading.capacity()
                    + d.text.capacity()
            })
            .sum();
        self.vectors.bytes() + meta + self.lexical.disk_bytes() as usize
    }

    /// How much of `query` chunk `doc` covers: the IDF-weighted share of the
    /// query's terms found in its title, heading path and text (0–1). A second,
    /// lexical confidence beside [`Hit::relevance`]: an answerable question's best
    /// chunk usually holds its rare words, a question about something the knowledge
    /// never names does not.
    ///
    /// A message of several sentences counts by its best-covered question (a
    /// sentence ending in `?`), or its best-covered sentence when it asks none (see
    /// [`questions_of`]): a visitor's "Hi, I bought a mower last week." names words
    /// no knowledge holds and must not turn the question after it away.
    pub fn coverage(&self, query: &str, doc: usize) -> f32 {
        let Some(d) = self.docs.get(doc) else {
            return 0.0;
        };
        let text = format!("{}\n{}\n{}", d.title, d.heading, d.text);
        self.lexical.coverage(&questions_of(query), &d.lang, &text)
    }

    /// The analyzed BM25 terms of `text` (lower-cased, stemmed if the snapshot
    /// stems); what [`Mode::Bm25`] searches for. Useful for debugging.
    pub fn query_terms(&self, text: &str) -> Vec<String> {
        self.lexical.terms(text)
    }

    /// Runs `query`. Errors only on bad input (missing or mismatched embedding) or an
    /// internal tantivy failure; any query text is accepted.
    pub fn search(&self, query: &Query) -> Result<Vec<Hit>, Error> {
        let embedding = self.checked_embedding(query)?;
        if query.limit == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        // Grouping by page needs candidates from more pages than the limit.
        let depth = if query.candidates == 0 {
            DEFAULT_DEPTH.max(query.limit * 4)
        } else {
            query.candidates.max(query.limit)
        };
        let depth = if query.per_page == 0 && query.candidates == 0 && query.mode == Mode::Bm25 {
            query.limit
        } else {
            depth
        };
        let dense_of = |i: u32| embedding.map(|q| self.vectors.score(i as usize, q));

        // Every candidate chunk, best first: (doc, score, bm25, dense).
        let ranked: Vec<Candidate> = match query.mode {
            Mode::Bm25 => self
                .lexical
                .search(&query.text, depth, query.fields)?
                .into_iter()
                .map(|(i, s)| (i, s, Some(s), dense_of(i)))
                .collect(),
            Mode::Dense => {
                let q = embedding.expect("checked above");
                self.vectors
                    .top(q, depth)
                    .into_iter()
                    .map(|(i, s)| (i, s, None, Some(s)))
                    .collect()
            }
            Mode::Hybrid(fusion) => {
                let q = embedding.expect("checked above");
                self.hybrid(query, q, depth, fusion)?
            }
        };
        let hit = |&(i, s, bm25, dense): &Candidate| Hit {
            doc: i as usize,
            page: self.page_of[i as usize] as usize,
            score: s,
            bm25,
            dense,
        };
        if query.per_page == 0 {
            return Ok(ranked.iter().take(query.limit).map(hit).collect());
        }
        Ok(by_page(
            &ranked.iter().map(hit).collect::<Vec<_>>(),
            query.limit,
            query.per_page,
            query.page_bonus,
        ))
    }

    /// The query's embedding, checked against the index, and the query's other
    /// settings; `None` when it has none (or the index is empty).
    fn checked_embedding<'q>(&self, query: &'q Query) -> Result<Option<&'q [f32]>, Error> {
        let embedding = match &query.embedding {
            Some(e) => {
                if self.is_empty() {
                    None
                } else if e.len() != self.dim() {
                    return Err(Error::BadInput(format!(
                        "query embedding has {} dimensions, the index {}",
                        e.len(),
                        self.dim()
                    )));
                } else if e.iter().any(|x| !x.is_finite()) {
                    return Err(Error::BadInput(
                        "query embedding has a non-finite value".to_owned(),
                    ));
                } else {
                    Some(e.as_slice())
                }
            }
            None => None,
        };
        if matches!(query.mode, Mode::Dense | Mode::Hybrid(_)) && query.embedding.is_none() {
            return Err(Error::BadInput(
                "dense and hybrid search need a query embedding".to_owned(),
            ));
        }
        if let Mode::Hybrid(Fusion::Rrf { k }) = query.mode
            && !(k.is_finite() && k >= 0.0)
        {
            return Err(Error::BadInput("RRF k must be finite and ≥ 0".to_owned()));
        }
        if let Mode::Hybrid(Fusion::Normalized { weight_dense }) = query.mode
            && !(0.0..=1.0).contains(&weight_dense)
        {
            return Err(Error::BadInput("weight_dense must be in [0, 1]".to_owned()));
        }
        if !query.fields.valid() {
            return Err(Error::BadInput(
                "field weights must be finite and ≥ 0".to_owned(),
            ));
        }
        if !(query.page_bonus.is_finite() && query.page_bonus >= 0.0) {
            return Err(Error::BadInput(
                "page_bonus must be finite and ≥ 0".to_owned(),
            ));
        }
        Ok(embedding)
    }

    /// Hybrid candidates: BM25 and the dense scan side by side, fused, each with
    /// both scores.
    fn hybrid(
        &self,
        query: &Query,
        q: &[f32],
        depth: usize,
        fusion: Fusion,
    ) -> Result<Vec<Candidate>, Error> {
        let lexical = || self.lexical.search(&query.text, depth, query.fields);
        let (dense_top, bm25) = if self.vectors.is_large() {
            // The dense scan and the BM25 search are independent; at 100k chunks
            // both take milliseconds, so run them side by side.
            std::thread::scope(|s| {
                let lex = s.spawn(lexical);
                let dense_top = self.vectors.top(q, depth);
                let bm25 = lex
                    .join()
                    .unwrap_or_else(|_| Err(lexical::internal("BM25 search panicked")));
                (dense_top, bm25)
            })
        } else {
            // A small index answers both in well under a millisecond: a thread
            // would cost more than it saves, and threads started and joined on
            // every query delay the server's request threads (`llm`'s pool says
            // by how much).
            (self.vectors.top(q, depth), lexical())
        };
        let bm25 = bm25?;
        let fused = match fusion {
            Fusion::Rrf { k } => fusion::rrf(&[&bm25, &dense_top], k),
            Fusion::Normalized { weight_dense } => {
                fusion::normalized(&bm25, &dense_top, weight_dense)
            }
        };
        let bm25_of: HashMap<u32, f32> = bm25.iter().copied().collect();
        let mut dense_of: HashMap<u32, f32> = dense_top.iter().copied().collect();
        for &(i, _) in &bm25 {
            dense_of
                .entry(i)
                .or_insert_with(|| self.vectors.score(i as usize, q));
        }
        let mut ranked: Vec<Candidate> = fused
            .into_iter()
            .map(|(i, s)| (i, s, bm25_of.get(&i).copied(), Some(dense_of[&i])))
            .collect();
        ranked.sort_unstable_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| b.3.unwrap_or(0.0).total_cmp(&a.3.unwrap_or(0.0)))
                .then(a.0.cmp(&b.0))
        });
        Ok(ranked)
    }
}

/// A candidate chunk: (doc, score, BM25 score, dense score).
type Candidate = (u32, f32, Option<f32>, Option<f32>);

/// Groups `ranked` (best first) by page: pages ordered by best chunk score plus
/// `bonus` × the sum of their other chunks' scores; the result takes each page's
/// best chunk in page order, then each page's second, ... up to `per_page`.
fn by_page(ranked: &[Hit], limit: usize, per_page: usize, bonus: f32) -> Vec<Hit> {
    let mut order: Vec<usize> = Vec::new();
    let mut chunks: HashMap<usize, Vec<Hit>> = HashMap::new();
    for h in ranked {
        let list = chunks.entry(h.page).or_default();
        if list.is_empty() {
            order.push(h.page);
        }
        list.push(*h);
    }
    let page_score = |p: &usize| {
        let list = &chunks[p];
        list[0].score + bonus * list[1..].iter().map(|h| h.score.max(0.0)).sum::<f32>()
    };
    if bonus > 0.0 {
        // Stable: equal page scores keep their best chunk's order.
        order.sort_by(|a, b| page_score(b).total_cmp(&page_score(a)));
    }
    let mut out = Vec::with_capacity(limit);
    for round in 0..per_page {
        for p in &order {
            if out.len() == limit {
                return out;
            }
            if let Some(h) = chunks[p].get(round) {
                out.push(*h);
            }
        }
    }
    out
}

/// The parts of a message that [`Index::coverage`] scores: its questions (the
/// sentences ending in `?`) when it asks any, else its sentences, cut both where
/// a capital follows a stop and wherever white space does (see `sentences`):
/// "Hi! I bought a mower. How much are blades?" is scored by its last sentence,
/// and so is its lower-case spelling; "the `dbg!` macro", whose `!` is code, by
/// the whole question and by "macro …?"; `os.path.join`, `3.11` and "makes .
/// match" are never cut.
///
/// At most `MAX_PARTS` (16) parts, the last ones, where a visitor's question usually is.
pub fn questions_of(message: &str) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    let parts: Vec<&str> = (sentences(message, true).into_iter())
        .chain(sentences(message, false))
        .filter(|s| seen.insert(*s))
        .collect();
    let mut chosen: Vec<&str> = parts.iter().copied().filter(|s| s.ends_with('?')).collect();
    if chosen.is_empty() {
        chosen = parts;
    }
    chosen.split_off(chosen.len().saturating_sub(MAX_PARTS))
}

/// The parts of a message [`questions_of`] keeps: a pasted essay of thousands of
/// sentences costs the coverage floor no more than a few questions.
const MAX_PARTS: usize = 16;

/// `message` cut at line breaks and at each `.`, `?` or `!` that follows a
/// non-space and comes before white space or the end; with `strict`, only where
/// a capital, a digit, or an opening bracket or quote comes after the space.
fn sentences(message: &str, strict: bool) -> Vec<&str> {
    fn push<'a>(sentences: &mut Vec<&'a str>, s: &'a str) {
        let s = s.trim();
        if !s.is_empty() {
            sentences.push(s);
        }
    }
    let mut sentences = Vec::new();
    let (mut start, mut prev) = (0, ' ');
    for (i, c) in message.char_indices() {
        let end = i + c.len_utf8();
        let stop = matches!(c, '.' | '?' | '!') && !prev.is_whitespace();
        if c == '\n' || (stop && starts_sentence(&message[end..], strict)) {
            push(&mut sentences, &message[start..end]);
            start = end;
        }
        prev = c;
    }
    push(&mut sentences, &message[start..]);
    sentences
}

/// Whether `rest`, what follows a full stop, starts a new sentence: nothing, or
/// white space and then (`strict`) a capital, a digit, or an opening bracket or
/// quote.
fn starts_sentence(rest: &str, strict: bool) -> bool {
    let after = rest.trim_start();
    if after.len() == rest.len() {
        return rest.is_empty();
    }
    !strict
        || after.chars().next().is_none_or(|n| {
            n.is_uppercase() || n.is_ascii_digit() || matches!(n, '[' | '(' | '"' | '\'' | '`')
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Unit vector with weight on the given axes: docs about the same topic point the
    /// same way.
    fn unit(dim: usize, axes: &[usize]) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        for &a in axes {
            v[a] = 1.0;
        }
        let norm = (axes.len() as f32).sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }

    fn doc(id: &str, heading: &str, text: &str, axes: &[usize]) -> Doc {
        Doc {
            chunk_id: id.to_owned(),
            source_id: format!("src-{id}"),
            title: "Test Book".to_owned(),
            url: Some(format!("https://example.com/{id}")),
            heading: heading.to_owned(),
            text: text.to_owned(),
            embedding: unit(8, axes),
        }
    }

    fn corpus() -> Vec<Doc> {
        vec![
            doc(
                "strings",
                "Strings",
                "A String is a growable UTF-8 encoded buffer of text.",
                &[0],
            ),
            doc(
                "vectors",
                "Vectors",
                "Vec<T> stores values of one type next to each other.",
                &[1],
            ),
            doc(
                "maps",
                "Hash Maps",
                "HashMap<K, V> maps keys to values with a hashing function.",
                &[2],
            ),
            doc(
                "errors",
                "Errors",
                "Recoverable errors use Result; panic! is for bugs.",
                &[3],
            ),
            doc(
                "traits",
                "Traits",
                "Traits define shared behaviour, like interfaces.",
                &[4],
            ),
        ]
    }

    fn built() -> (tempfile::TempDir, Index) {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::build(&tmp.path().join("snap"), corpus()).unwrap();
        (tmp, index)
    }

    fn ids(index: &Index, hits: &[Hit]) -> Vec<String> {
        hits.iter()
            .map(|h| index.doc(h.doc).unwrap().chunk_id.clone())
            .collect()
    }

    #[test]
    fn a_message_is_scored_by_its_questions_or_else_its_sentences() {
        assert_eq!(questions_of("What is a Vec?"), ["What is a Vec?"]);
        assert_eq!(
            questions_of("  default maintenance_work_mem "),
            ["default maintenance_work_mem"]
        );
        assert_eq!(questions_of(""), Vec::<&str>::new());
        // Dots inside names and numbers do not end a sentence.
        assert_eq!(
            questions_of("What does os.path.join do in 3.11?"),
            ["What does os.path.join do in 3.11?"]
        );
        assert_eq!(
            questions_of("Hi! I bought a mower. How much are blades? And the warranty? Thanks."),
            ["How much are blades?", "And the warranty?"]
        );
        assert_eq!(
            questions_of("Hello there.\nI need the warranty terms\n"),
            ["Hello there.", "I need the warranty terms"]
        );
        assert_eq!(
            questions_of("How long is the warranty? [[reply:One year.]]"),
            ["How long is the warranty?"]
        );
        // Punctuation that is code, or followed by more of the same sentence: the
        // whole question is scored too (lower case after the stop), or alone.
        for whole in [
            "Which re flag makes . match newlines too?",
            "What is the type ! called?",
        ] {
            assert_eq!(questions_of(whole), [whole]);
        }
        assert_eq!(
            questions_of("How do I use the dbg! macro to inspect a value?"),
            [
                "How do I use the dbg! macro to inspect a value?",
                "macro to inspect a value?"
            ]
        );
        assert_eq!(
            questions_of("Can I implement Display for Vec<T>? orphan rule"),
            ["Can I implement Display for Vec<T>?"]
        );
        assert_eq!(
            questions_of("How do I quote a string, e.g. a function body?"),
            [
                "How do I quote a string, e.g. a function body?",
                "a function body?"
            ]
        );
        // A message of thousands of sentences: the last few are scored.
        let essay: String = (0..4000).map(|i| format!("Line {i} is here? ")).collect();
        let parts = questions_of(&essay);
        assert_eq!(parts.len(), MAX_PARTS);
        assert_eq!(parts.last(), Some(&"Line 3999 is here?"));
        // A visitor who writes in lower case.
        assert_eq!(
            questions_of("hi! i bought a mower. how much are blades?"),
            [
                "hi! i bought a mower. how much are blades?",
                "how much are blades?"
            ]
        );
    }

    #[test]
    fn coverage_counts_the_best_question_not_the_greeting_around_it() {
        let (_tmp, index) = built();
        let maps = (0..index.len())
            .find(|&i| index.doc(i).unwrap().chunk_id == "maps")
            .unwrap();
        let question = "How does a HashMap hash its keys?";
        let alone = index.coverage(question, maps);
        assert!(alone > 0.9, "{alone}");
        // Words the knowledge never names, around the question, do not count...
        let chatty = format!("Hi! Greetings from Zanzibar, first time writing. {question} Cheers!");
        assert_eq!(index.coverage(&chatty, maps), alone);
        // ...as they do when they are part of it.
        let whole = chatty.replace(['?', '!', '.'], " ");
        assert!(index.coverage(&whole, maps) < 0.6 * alone);
        // A question about something the knowledge does not name stays uncovered,
        // whatever the sentence beside it holds.
        let off = index.coverage("I use HashMap keys. How do quasars form?", maps);
        assert!(off < 0.3, "{off}");
        assert_eq!(index.coverage("", maps), 0.0);
        assert_eq!(index.coverage(question, index.len()), 0.0);
    }

    #[test]
    fn a_small_knowledge_covers_a_plain_question_about_it() {
        let tmp = tempfile::tempdir().unwrap();
        let warranty = doc(
            "warranty",
            "Warranty",
            "Every mower has a warranty of 17 months. Replacement blades cost 12 euros.",
            &[0],
        );
        let index = Index::build(&tmp.path().join("snap"), vec![warranty]).unwrap();
        // "long" is in no chunk of a one-chunk knowledge, but it is no rarer than
        // "warranty" for that.
        let plain = index.coverage("How long is the mower warranty?", 0);
        assert!(plain >= 0.6, "{plain}");
        let off = index.coverage("What is the boiling point of liquid nitrogen?", 0);
        assert_eq!(off, 0.0);
    }

    #[test]
    fn index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Index>();
    }

    #[test]
    fn build_then_open_gives_the_same_answers() {
        let (tmp, built) = built();
        let opened = Index::open(&tmp.path().join("snap")).unwrap();
        assert_eq!(opened.len(), 5);
        assert_eq!(opened.dim(), 8);
        assert_eq!(opened.docs(), built.docs());
        assert_eq!(opened.embedding(2), built.embedding(2));
        assert!(opened.memory_bytes() > 5 * 8 * 4);
        let q = Query {
            text: "hash map keys".to_owned(),
            embedding: Some(unit(8, &[2])),
            ..Query::default()
        };
        assert_eq!(opened.search(&q).unwrap(), built.search(&q).unwrap());
    }

    #[test]
    fn bm25_finds_stemmed_terms_and_scores_headings() {
        let (_tmp, index) = built();
        let hits = index
            .search(&Query {
                text: "growable strings".to_owned(),
                mode: Mode::Bm25,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(ids(&index, &hits)[0], "strings");
        assert!(hits[0].bm25.unwrap() > 0.0);
        assert_eq!(hits[0].dense, None);
        // "errors" matches the heading "Errors" and the text's "errors" via stemming.
        let hits = index
            .search(&Query {
                text: "error".to_owned(),
                mode: Mode::Bm25,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(ids(&index, &hits), vec!["errors"]);
    }

    #[test]
    fn bm25_ties_come_back_in_snapshot_order_for_every_build() {
        // Sixty chunks that BM25 cannot tell apart, among others it ranks lower.
        let mut docs: Vec<Doc> = (0..60)
            .map(|i| {
                doc(
                    &format!("same-{i:02}"),
                    "Runtime",
                    "the tokio runtime",
                    &[0],
                )
            })
            .collect();
        docs.extend(corpus());
        docs.rotate_left(3);
        let want: Vec<String> = (3..60)
            .chain(0..3)
            .take(7)
            .map(|i| format!("same-{i:02}"))
            .collect();
        for _ in 0..3 {
            let tmp = tempfile::tempdir().unwrap();
            let index = Index::build(&tmp.path().join("snap"), docs.clone()).unwrap();
            let hits = index
                .search(&Query {
                    text: "tokio runtime".to_owned(),
                    mode: Mode::Bm25,
                    limit: 7,
                    ..Query::default()
                })
                .unwrap();
            assert_eq!(ids(&index, &hits), want);
        }
    }

    #[test]
    fn dense_ranks_by_cosine() {
        let (_tmp, index) = built();
        let hits = index
            .search(&Query {
                text: String::new(),
                embedding: Some(unit(8, &[1, 4])),
                mode: Mode::Dense,
                limit: 3,
                ..Query::default()
            })
            .unwrap();
        let got = ids(&index, &hits);
        assert_eq!(got.len(), 3);
        assert!(
            got[..2].contains(&"vectors".to_owned()) && got[..2].contains(&"traits".to_owned())
        );
        assert!((hits[0].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-5);
        assert_eq!(hits[0].relevance(), Some(hits[0].score));
    }

    #[test]
    fn hybrid_prefers_a_doc_both_rankings_agree_on() {
        let (_tmp, index) = built();
        // BM25 ranks maps (keys + values) over vectors (values); dense ranks traits
        // over vectors. Vectors, second in both, wins the fusion.
        let mut embedding = vec![0.0; 8];
        embedding[4] = 0.8;
        embedding[1] = 0.6;
        let bm25_only = index
            .search(&Query {
                text: "keys values".to_owned(),
                mode: Mode::Bm25,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(ids(&index, &bm25_only)[..2], ["maps", "vectors"]);
        for fusion in [
            Fusion::Rrf { k: 60.0 },
            Fusion::Normalized { weight_dense: 0.5 },
        ] {
            let hits = index
                .search(&Query {
                    text: "keys values".to_owned(),
                    embedding: Some(embedding.clone()),
                    mode: Mode::Hybrid(fusion),
                    ..Query::default()
                })
                .unwrap();
            assert_eq!(ids(&index, &hits)[0], "vectors", "{fusion:?}");
            assert!(hits[0].bm25.is_some() && hits[0].dense.is_some());
            assert!((hits[0].dense.unwrap() - 0.6).abs() < 1e-5);
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }

    #[test]
    fn any_query_text_is_accepted() {
        let (_tmp, index) = built();
        for text in [
            "\"unclosed quote",
            "title:strings AND (",
            "-",
            "+++ ::: ))) [[ ~2 ^3",
            "",
            "   ",
            "😀 emoji only",
            "NOT OR AND",
            "a*b?c",
            "{ } \\ / !",
        ] {
            let q = Query {
                text: text.to_owned(),
                mode: Mode::Bm25,
                ..Query::default()
            };
            index.search(&q).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let q = Query {
                text: text.to_owned(),
                embedding: Some(unit(8, &[0])),
                ..Query::default()
            };
            assert!(!index.search(&q).unwrap().is_empty(), "{text:?}");
        }
        assert_eq!(
            index.query_terms("Strings: \"growable\" (UTF-8)"),
            vec!["string", "growabl", "utf", "8"]
        );
    }

    #[test]
    fn bad_queries_are_errors_not_panics() {
        let (_tmp, index) = built();
        let dense_without_embedding = Query {
            text: "x".to_owned(),
            mode: Mode::Dense,
            ..Query::default()
        };
        assert!(matches!(
            index.search(&dense_without_embedding),
            Err(Error::BadInput(_))
        ));
        let wrong_dim = Query {
            embedding: Some(vec![1.0; 3]),
            ..Query::default()
        };
        assert!(matches!(index.search(&wrong_dim), Err(Error::BadInput(_))));
        let nan = Query {
            embedding: Some(vec![f32::NAN; 8]),
            ..Query::default()
        };
        assert!(matches!(index.search(&nan), Err(Error::BadInput(_))));
        let weight = Query {
            embedding: Some(unit(8, &[0])),
            mode: Mode::Hybrid(Fusion::Normalized { weight_dense: 2.0 }),
            ..Query::default()
        };
        assert!(matches!(index.search(&weight), Err(Error::BadInput(_))));
        let zero = Query {
            embedding: Some(unit(8, &[0])),
            limit: 0,
            ..Query::default()
        };
        assert!(index.search(&zero).unwrap().is_empty());
    }

    #[test]
    fn bad_docs_and_non_empty_dirs_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut docs = corpus();
        docs[3].embedding.pop();
        assert!(matches!(
            Index::build(&tmp.path().join("a"), docs),
            Err(Error::BadInput(_))
        ));
        let mut docs = corpus();
        docs[0].embedding[0] = f32::INFINITY;
        assert!(matches!(
            Index::build(&tmp.path().join("b"), docs),
            Err(Error::BadInput(_))
        ));
        std::fs::create_dir(tmp.path().join("c")).unwrap();
        std::fs::write(tmp.path().join("c/stray"), b"x").unwrap();
        assert!(matches!(
            Index::build(&tmp.path().join("c"), corpus()),
            Err(Error::BadInput(_))
        ));
    }

    #[test]
    fn an_empty_snapshot_builds_opens_and_finds_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::build(&tmp.path().join("empty"), Vec::new()).unwrap();
        assert!(index.is_empty());
        let index = Index::open(&tmp.path().join("empty")).unwrap();
        let q = Query {
            text: "anything".to_owned(),
            embedding: Some(vec![1.0; 384]),
            ..Query::default()
        };
        assert!(index.search(&q).unwrap().is_empty());
    }

    #[test]
    fn torn_snapshots_are_errors_not_panics() {
        let (tmp, _index) = built();
        let good = tmp.path().join("snap");
        let copy = |name: &str| -> PathBuf {
            let dst = tmp.path().join(name);
            copy_dir(&good, &dst);
            dst
        };

        assert!(matches!(
            Index::open(&tmp.path().join("missing")),
            Err(Error::Corrupt { .. })
        ));

        let no_marker = copy("no_marker");
        std::fs::remove_file(no_marker.join(COMPLETE)).unwrap();
        assert!(matches!(
            Index::open(&no_marker),
            Err(Error::Corrupt { .. })
        ));

        let garbage_marker = copy("garbage_marker");
        std::fs::write(garbage_marker.join(COMPLETE), b"{\"format\":").unwrap();
        assert!(matches!(
            Index::open(&garbage_marker),
            Err(Error::Corrupt { .. })
        ));

        let short_vectors = copy("short_vectors");
        let v = std::fs::read(short_vectors.join(VECTORS)).unwrap();
        std::fs::write(short_vectors.join(VECTORS), &v[..v.len() - 3]).unwrap();
        assert!(matches!(
            Index::open(&short_vectors),
            Err(Error::Corrupt { .. })
        ));

        let no_vectors = copy("no_vectors");
        std::fs::remove_file(no_vectors.join(VECTORS)).unwrap();
        assert!(matches!(Index::open(&no_vectors), Err(Error::Io { .. })));

        let bad_docs = copy("bad_docs");
        std::fs::write(bad_docs.join(DOCS), b"[{\"chunk_id\":").unwrap();
        assert!(matches!(Index::open(&bad_docs), Err(Error::Corrupt { .. })));

        let no_tantivy = copy("no_tantivy");
        std::fs::remove_dir_all(no_tantivy.join(TANTIVY)).unwrap();
        std::fs::create_dir(no_tantivy.join(TANTIVY)).unwrap();
        assert!(matches!(
            Index::open(&no_tantivy),
            Err(Error::Corrupt { .. })
        ));

        let torn_tantivy = copy("torn_tantivy");
        for entry in std::fs::read_dir(torn_tantivy.join(TANTIVY)).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() != "meta.json" {
                std::fs::write(&path, b"").unwrap();
            }
        }
        assert!(Index::open(&torn_tantivy).is_err());
    }

    #[test]
    fn results_hold_every_page_before_a_second_chunk_of_one() {
        let tmp = tempfile::tempdir().unwrap();
        let mut docs = Vec::new();
        // Page "long" has four chunks that all match better than page "other".
        for i in 0..4 {
            let mut d = doc(
                &format!("long{i}"),
                "Tides",
                "tides tides tides of the moon",
                &[0],
            );
            d.source_id = "src-long".into();
            d.url = Some("https://example.com/long".into());
            docs.push(d);
        }
        docs.push(doc("other", "Moon", "the moon pulls the tides", &[0, 1]));
        docs.push(doc("third", "Sea", "sea level and tides", &[0, 2]));
        let index = Index::build(&tmp.path().join("snap"), docs).unwrap();
        assert_eq!(index.pages(), 3);
        let q = |per_page, limit| Query {
            text: "tides".to_owned(),
            embedding: Some(unit(8, &[0])),
            limit,
            per_page,
            ..Query::default()
        };
        let grouped = index.search(&q(3, 4)).unwrap();
        let pages: Vec<usize> = grouped.iter().map(|h| h.page).collect();
        assert_eq!(
            &pages[..3].iter().collect::<HashSet<_>>().len(),
            &3,
            "{pages:?}"
        );
        assert_eq!(
            pages[3], pages[0],
            "the 4th slot goes to the best page again"
        );
        // A page never takes more than per_page slots, even with room left.
        let capped = index.search(&q(2, 10)).unwrap();
        assert_eq!(capped.iter().filter(|h| h.page == pages[0]).count(), 2);
        assert_eq!(capped.len(), 4);
        // per_page 0: plain chunk order, four chunks of the long page first.
        let plain = index.search(&q(0, 4)).unwrap();
        assert!(plain.iter().all(|h| h.page == plain[0].page), "{plain:?}");
        assert_eq!(index.page(pages[0]).unwrap().source_id, "src-long");
    }

    #[test]
    fn each_page_is_stemmed_in_its_own_language() {
        let tmp = tempfile::tempdir().unwrap();
        let de = |id: &str, text: &str, axes: &[usize]| {
            let mut d = doc(id, "", text, axes);
            d.title = "Handbuch".into();
            d
        };
        let docs = vec![
            de(
                "haus",
                "Die Häuser der Stadt sind alt, und in den Kellern wird es nicht trocken. \
                 Wenn es regnet, ist das Wasser in allen Kellern.",
                &[0],
            ),
            de(
                "garten",
                "Der Garten ist groß, und es gibt auch einen Weg zu den Teichen mit Fischen, \
                 die im Winter nicht gefüttert werden.",
                &[1],
            ),
            de(
                "ville",
                "Les maisons de la ville sont anciennes et les toits ne sont pas souvent \
                 réparés par la commune.",
                &[3],
            ),
            doc(
                "houses",
                "Houses",
                "The houses of the town are old, and the roofs are not often repaired.",
                &[2],
            ),
        ];
        let index = Index::build(&tmp.path().join("snap"), docs).unwrap();
        let langs: Vec<&str> = index.docs().iter().map(|d| d.lang.as_str()).collect();
        assert_eq!(langs, ["de", "de", "fr", "en"]);
        assert_eq!(index.languages(), ["de", "en", "fr"]);
        let bm25 = |text: &str| {
            let hits = index
                .search(&Query {
                    text: text.to_owned(),
                    mode: Mode::Bm25,
                    ..Query::default()
                })
                .unwrap();
            ids(&index, &hits)
        };
        // Inflections meet at their language's stem (Kellern/Keller, Teichen/Teich,
        // anciennes/ancien); an English stemmer leaves them apart.
        assert_eq!(bm25("Keller"), ["haus"]);
        assert_eq!(bm25("Teich"), ["garten"]);
        assert_eq!(bm25("ancien"), ["ville"]);
        assert_eq!(bm25("house"), ["houses"]);
        // Forced to English, the German page no longer matches its lemma.
        let tmp2 = tempfile::tempdir().unwrap();
        let forced = Index::build_with(
            &tmp2.path().join("snap"),
            index
                .docs()
                .iter()
                .enumerate()
                .map(|(i, d)| Doc {
                    chunk_id: d.chunk_id.clone(),
                    source_id: d.source_id.clone(),
                    title: d.title.clone(),
                    url: d.url.clone(),
                    heading: d.heading.clone(),
                    text: d.text.clone(),
                    embedding: index.embedding(i).unwrap().to_vec(),
                })
                .collect(),
            &BuildOptions {
                language: Some(Lang::English),
                ..BuildOptions::default()
            },
        )
        .unwrap();
        for word in ["Keller", "Teich", "ancien"] {
            let hits = forced
                .search(&Query {
                    text: word.to_owned(),
                    mode: Mode::Bm25,
                    ..Query::default()
                })
                .unwrap();
            assert!(hits.is_empty(), "{word}");
        }
    }

    #[test]
    fn query_function_words_are_dropped_unless_nothing_else_is_left() {
        let (_tmp, index) = built();
        assert_eq!(
            index.query_terms("How do I use the strings?"),
            ["use", "string"]
        );
        assert_eq!(index.query_terms("what is it"), ["what", "is", "it"]);
    }

    fn copy_dir(src: &Path, dst: &Path) {
        std::fs::create_dir_all(dst).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            let to = dst.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &to);
            } else {
                std::fs::copy(entry.path(), to).unwrap();
            }
        }
    }
}
