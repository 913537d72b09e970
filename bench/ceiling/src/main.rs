//! The HTTP ceiling for the benchmarks: bare axum handlers that return fixed bytes
//! (the same bytes agentbase returns) with no auth, no database and no middleware.
//!
//! `agentbase-bench-ceiling ADDR AGENT_JSON [CHAT_SSE CHAT_JSON]`
//! - `GET /api/v2/agents/{agentId}` answers AGENT_JSON (the API benchmark);
//! - `POST /api/v2/agents/{agentId}/chat` answers CHAT_JSON when the request body
//!   says `"stream":false`, else CHAT_SSE as `text/event-stream` (the chat
//!   benchmark's ceiling). The SSE bytes go out as one body, not frame by frame: the
//!   cheapest a server could possibly answer, which is what a ceiling is for.

#![forbid(unsafe_code)]

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::{get, post};

fn read(path: Option<String>, default: &'static [u8]) -> &'static [u8] {
    match path {
        Some(path) => {
            Vec::leak(std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}")))
        }
        None => default,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18091".into());
    let agent = read(args.next(), b"{}");
    let sse = read(args.next(), b"data: [DONE]\n\n");
    let chat_json = read(args.next(), b"{}");
    let app = Router::new()
        .route(
            "/api/v2/agents/{agentId}",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], agent) }),
        )
        .route(
            "/api/v2/agents/{agentId}/chat",
            post(move |body: Bytes| async move {
                let compact: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                if compact.windows(14).any(|w| w == b"\"stream\":false") {
                    ([(header::CONTENT_TYPE, "application/json")], chat_json)
                } else {
                    ([(header::CONTENT_TYPE, "text/event-stream")], sse)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("ceiling listening on http://{addr}");
    axum::serve(listener, app).await.expect("serve");
}
