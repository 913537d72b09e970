//! OpenAI-compatible embeddings against a local `/embeddings` server: batching,
//! input order, normalisation, and the failures that must not pass as vectors.

use std::time::Duration;

use agentbase_core::model::{Embedder, ModelError};
use agentbase_providers::{EmbeddingModel, OpenAiCompatible, OpenAiConfig, OpenAiEmbedder};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

fn embedder(upstream: &Upstream, batch_size: usize) -> OpenAiEmbedder {
    OpenAiCompatible::new(OpenAiConfig {
        base_url: format!("{}/v1", upstream.url),
        api_key: Some("sk-test".into()),
        connect_timeout: Duration::from_secs(2),
        idle_timeout: PATIENCE,
        ..OpenAiConfig::default()
    })
    .expect("valid config")
    .embedder(EmbeddingModel {
        model: "text-embedding-3-small".into(),
        dimensions: 2,
        batch_size,
    })
}

/// Answers like OpenAI, but lists the vectors in reverse order (the `index` field
/// is what ties a vector to its input). Input "aN" gets the vector [3N, 4N].
fn reversed_embeddings(request: &Recorded) -> Reply {
    let inputs = request.body["input"]
        .as_array()
        .expect("input is a list")
        .clone();
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let n: f64 = input.as_str().expect("text")[1..].parse().expect("aN");
            json!({ "object": "embedding", "index": index, "embedding": [3.0 * n, 4.0 * n] })
        })
        .collect();
    data.reverse();
    let body = json!({
        "object": "list",
        "data": data,
        "model": "text-embedding-3-small",
        "usage": { "prompt_tokens": 8, "total_tokens": 8 },
    });
    json(200, &body.to_string())
}

#[tokio::test]
async fn embeddings_are_requested_in_batches_and_come_back_normalised_in_input_order() {
    let mut upstream = Upstream::start(reversed_embeddings).await;
    let texts: Vec<String> = ["a1", "a2", "a3"].map(String::from).into();
    let vectors = embedder(&upstream, 2)
        .embed(&texts)
        .await
        .expect("embeddings");
    assert_eq!(vectors, vec![vec![0.6, 0.8]; 3]);

    let first = upstream.next_request().await;
    assert_eq!(first.path, "/v1/embeddings");
    assert_eq!(first.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(
        first.body,
        json!({ "model": "text-embedding-3-small", "input": ["a1", "a2"] })
    );
    let second = upstream.next_request().await;
    assert_eq!(
        second.body,
        json!({ "model": "text-embedding-3-small", "input": ["a3"] })
    );
    assert!(upstream.no_more_requests());
}

#[tokio::test]
async fn vectors_listed_out_of_order_are_matched_to_their_inputs_by_index() {
    // The two vectors differ in direction, not only in length, so a swap shows.
    let upstream = Upstream::always(|| {
        json(
            200,
            r#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.0,2.0]},{"object":"embedding","index":0,"embedding":[5.0,0.0]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}"#,
        )
    })
    .await;
    let texts: Vec<String> = ["first", "second"].map(String::from).into();
    let vectors = embedder(&upstream, 16)
        .embed(&texts)
        .await
        .expect("embeddings");
    assert_eq!(vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
}

#[tokio::test]
async fn no_texts_means_no_request() {
    let mut upstream = Upstream::start(reversed_embeddings).await;
    let vectors = embedder(&upstream, 2)
        .embed(&[])
        .await
        .expect("nothing to embed");
    assert!(vectors.is_empty());
    assert!(upstream.no_more_requests());
}

#[tokio::test]
async fn a_vector_of_the_wrong_dimension_is_an_error_not_an_embedding() {
    let upstream = Upstream::always(|| {
        json(200, r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],"model":"m"}"#)
    })
    .await;
    let result = embedder(&upstream, 2).embed(&["a1".to_owned()]).await;
    assert!(
        matches!(result, Err(ModelError::Failed(ref m)) if m.contains("3 dimensions")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_embeddings_429_is_rate_limited_and_a_400_keeps_its_message() {
    let limited = Upstream::always(|| Reply::Json {
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: vec![("retry-after", "3".into())],
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(),
    })
    .await;
    let result = embedder(&limited, 2).embed(&["a1".to_owned()]).await;
    assert_eq!(
        result,
        Err(ModelError::RateLimited {
            retry_after_secs: Some(3)
        })
    );

    let refused = Upstream::always(|| {
        json(400, r#"{"error":{"message":"'$.input' is invalid.","type":"invalid_request_error","param":null,"code":null}}"#)
    })
    .await;
    let result = embedder(&refused, 2).embed(&["".to_owned()]).await;
    assert_eq!(
        result,
        Err(ModelError::Upstream {
            status: 400,
            message: "'$.input' is invalid.".into()
        })
    );
}

#[test]
fn the_embedder_reports_its_configured_dimensions() {
    let provider = OpenAiCompatible::new(OpenAiConfig::default()).expect("valid config");
    let embedder = provider.embedder(EmbeddingModel {
        model: "m".into(),
        dimensions: 1536,
        batch_size: 64,
    });
    assert_eq!(embedder.dimensions(), 1536);
}
