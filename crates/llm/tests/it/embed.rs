//! LocalEmbedder with the real all-MiniLM-L6-v2 weights against reference vectors
//! made once with sentence-transformers (`tests/fixtures/make_reference.py`).

use std::sync::OnceLock;
use std::time::Instant;

use agentbase_core::model::Embedder;
use agentbase_llm::cpu::{self, Level};
use agentbase_llm::{EmbedBackend, LocalEmbedder, LocalEmbedderOptions};
use serde::Deserialize;

use crate::common::model_paths;

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/minilm_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn load(backend: EmbedBackend, kernels: Option<Level>) -> LocalEmbedder {
    LocalEmbedder::load(
        &model_paths().embedding_dir,
        LocalEmbedderOptions {
            backend,
            kernels,
            ..Default::default()
        },
    )
    .expect("loading MiniLM")
}

/// The default choice (our encoder on the best kernels here in optimized builds).
fn embedder() -> &'static LocalEmbedder {
    static MODEL: OnceLock<LocalEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| load(EmbedBackend::Auto, None))
}

/// Every encoder, each checked on its own: candle's, and ours on every kernel set
/// this CPU can run (scalar everywhere, AVX2 and AVX-512 where the CPU has them).
fn every_backend() -> Vec<(&'static str, &'static LocalEmbedder)> {
    static CANDLE: OnceLock<LocalEmbedder> = OnceLock::new();
    static OURS: [OnceLock<LocalEmbedder>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let mut all = vec![(
        "candle",
        CANDLE.get_or_init(|| load(EmbedBackend::Candle, None)),
    )];
    for (i, level) in Level::ALL.into_iter().enumerate() {
        if cpu::available().contains(&level) {
            let model = OURS[i].get_or_init(|| load(EmbedBackend::Fast, Some(level)));
            all.push((level.name(), model));
        }
    }
    all
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_match_sentence_transformers_reference_vectors() {
    let reference = reference();
    for (backend, model) in every_backend() {
        assert_eq!(model.dimensions(), 384);
        let vectors = model.embed(&reference.sentences).await.unwrap();
        assert_eq!(vectors.len(), reference.sentences.len());
        let mut lowest = f32::MAX;
        for ((sentence, ours), theirs) in reference
            .sentences
            .iter()
            .zip(&vectors)
            .zip(&reference.vectors)
        {
            assert_eq!(ours.len(), 384);
            let norm = ours.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(
                (norm - 1.0).abs() < 1e-4,
                "{backend}: norm {norm} for {sentence:?}"
            );
            let cos = cosine(ours, theirs);
            assert!(cos >= 0.999, "{backend}: cosine {cos} for {sentence:?}");
            lowest = lowest.min(cos);
        }
        eprintln!("{backend}: lowest cosine against sentence-transformers: {lowest}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batching_gives_the_same_vectors_as_one_by_one() {
    let sentences = reference().sentences;
    for (backend, model) in every_backend() {
        let batched = model.embed(&sentences).await.unwrap();
        for (sentence, together) in sentences.iter().zip(&batched) {
            let alone = model.embed(std::slice::from_ref(sentence)).await.unwrap();
            let cos = cosine(&alone[0], together);
            assert!(cos > 0.99999, "{backend}: cosine {cos} for {sentence:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_input_gives_no_vectors() {
    assert!(embedder().embed(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_ingest_sized_chunks_gives_distinct_unit_vectors() {
    // 64 chunks of ~250 tokens, the shape of ingest; prints chunks/s for the record.
    let chunk = "Agents answer from their own knowledge base and cite their sources. ".repeat(20);
    let chunks: Vec<String> = (0..64).map(|i| format!("{i} {chunk}")).collect();
    let model = embedder();
    let started = Instant::now();
    let vectors = model.embed(&chunks).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "embedded {} chunks of ~250 tokens in {secs:.2}s: {:.1} chunks/s",
        vectors.len(),
        vectors.len() as f64 / secs
    );
    assert_eq!(vectors.len(), 64);
    for v in &vectors {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
    // The pass takes a batch in groups of texts: the last one, alone, is the same.
    let alone = model.embed(&chunks[63..]).await.unwrap();
    let cos = cosine(&alone[0], &vectors[63]);
    assert!(cos > 0.99999, "{cos}");
    // Same text prefix, different numbers: similar but not identical vectors.
    let cos = cosine(&vectors[0], &vectors[1]);
    assert!(cos > 0.9 && cos < 1.0, "{cos}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_does_not_wait_for_a_training_batch() {
    // A training batch of several groups of texts is under way when a query
    // arrives: the query is answered between two groups, before the batch ends,
    // and with the vector it gets alone.
    let chunk = "Agents answer from their own knowledge base and cite their sources. ".repeat(20);
    let chunks: Vec<String> = (0..96).map(|i| format!("{i} {chunk}")).collect();
    let query = vec!["how do agents cite their sources".to_owned()];
    let model = embedder();
    let alone = model.embed_urgent(&query).await.unwrap();
    let bulk = async {
        let v = model.embed(&chunks).await.unwrap();
        (Instant::now(), v.len())
    };
    let urgent = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let v = model.embed_urgent(&query).await.unwrap();
        (Instant::now(), v)
    };
    let ((bulk_done, n), (query_done, v)) = tokio::join!(bulk, urgent);
    assert_eq!(n, 96);
    assert!(
        query_done < bulk_done,
        "the query waited for the whole batch ({:?} after it)",
        query_done - bulk_done
    );
    let cos = cosine(&v[0], &alone[0]);
    assert!(cos > 0.99999, "{cos}");
}
