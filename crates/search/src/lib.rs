//! Retrieval for one agent, with no IO beyond its own snapshot directory: Markdown-aware
//! chunking ([`chunk`]), and an immutable [`Index`] that holds a tantivy BM25 index and
//! a brute-force dense vector matrix side by side and fuses their rankings.
//!
//! Embeddings are computed by the caller (this crate never loads a model) and passed in
//! L2-normalised, so a dot product is a cosine similarity. The dimension is whatever the
//! first document has; every document and query must match it.

pub mod chunk;
mod dense;
mod fusion;
mod index;
mod lang;
mod lexical;

pub use chunk::{Chunk, ChunkOptions, chunk_markdown, chunk_plain, embedding_text};
pub use index::{
    BuildOptions, CONFIDENT_RELEVANCE, DEFAULT_DEPTH, DEFAULT_FIELDS, DEFAULT_PAGE_BONUS,
    DEFAULT_PER_PAGE, Doc, DocMeta, Fusion, Hit, Index, MIN_COVERAGE, MIN_RELEVANCE, Mode, Query,
    questions_of,
};
pub use lang::{Lang, detect as detect_language};
pub use lexical::FieldWeights;

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller passed something unusable (dimension mismatch, non-finite embedding,
    /// a dense search without a query embedding, a non-empty build directory, ...).
    #[error("bad input: {0}")]
    BadInput(String),
    /// A snapshot directory that is missing its `COMPLETE` marker (a build that did
    /// not finish) or whose files disagree with it.
    #[error("snapshot {path} is incomplete or corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Reading or writing a snapshot file failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// tantivy failed while building or searching.
    #[error("lexical index: {0}")]
    Lexical(#[from] tantivy::TantivyError),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
