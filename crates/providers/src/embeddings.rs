//! Embeddings from an OpenAI-compatible server (`POST /embeddings`): texts go up in
//! batches, vectors come back in input order, checked against the promised
//! dimensions and L2-normalised, since `Embedder` promises unit vectors and not
//! every server (vLLM with some models, older llama.cpp) returns them.

use agentbase_core::model::{EmbedFuture, Embedder, ModelError};
use serde_json::{Value, json};

use crate::http::{Http, bearer};
use crate::openai::OpenAiCompatible;

/// Which embedding model to use on the server, and what it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingModel {
    /// The server's model name (`text-embedding-3-small`, `nomic-embed-text`).
    pub model: String,
    /// The vector length the model produces; a different length is an error.
    pub dimensions: usize,
    /// Texts per request. OpenAI accepts up to 2048; local servers prefer fewer.
    pub batch_size: usize,
}

/// An [`Embedder`] sharing its provider's connection pool and credentials.
pub struct OpenAiEmbedder {
    http: Http,
    endpoint: String,
    api_key: Option<String>,
    model: EmbeddingModel,
}

impl OpenAiCompatible {
    pub fn embedder(&self, model: EmbeddingModel) -> OpenAiEmbedder {
        OpenAiEmbedder {
            http: self.http.clone(),
            endpoint: format!("{}/embeddings", self.base_url),
            api_key: self.api_key.clone(),
            model,
        }
    }
}

impl Embedder for OpenAiEmbedder {
    fn dimensions(&self) -> usize {
        self.model.dimensions
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(async move {
            let mut vectors = Vec::with_capacity(texts.len());
            for batch in texts.chunks(self.model.batch_size.max(1)) {
                let body = json!({ "model": self.model.model, "input": batch });
                let request = bearer(
                    self.http.client.post(&self.endpoint),
                    self.api_key.as_deref(),
                );
                let answer = self.http.json(request.json(&body)).await?;
                vectors.extend(self.vectors(&answer, batch.len())?);
            }
            Ok(vectors)
        })
    }
}

impl OpenAiEmbedder {
    fn vectors(&self, answer: &Value, expected: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let invalid = |what: String| ModelError::Failed(format!("upstream embeddings: {what}"));
        let data = answer["data"]
            .as_array()
            .ok_or_else(|| invalid("no `data` array".into()))?;
        if data.len() != expected {
            return Err(invalid(format!(
                "{} vectors for {expected} inputs",
                data.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, item) in data.iter().enumerate() {
            // `index` says which input a vector belongs to; order is not promised.
            let index = item["index"].as_u64().map_or(position, |i| i as usize);
            let slot = slots
                .get_mut(index)
                .ok_or_else(|| invalid(format!("index {index} out of range")))?;
            let vector = item["embedding"]
                .as_array()
                .ok_or_else(|| invalid(format!("vector {index} is not an array of floats")))?
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| invalid(format!("vector {index} is not an array of floats")))?;
            if vector.len() != self.model.dimensions {
                return Err(invalid(format!(
                    "vector of {} dimensions, configured for {}",
                    vector.len(),
                    self.model.dimensions
                )));
            }
            *slot = Some(normalize(vector));
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(index, slot)| {
                slot.ok_or_else(|| invalid(format!("no vector for input {index}")))
            })
            .collect()
    }
}

fn normalize(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}
