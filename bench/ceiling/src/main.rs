//! The HTTP ceiling for the API benchmark: a bare axum handler that returns a
//! fixed JSON body (the same bytes agentbase returns for the agent) with no auth,
//! no database and no middleware. `agentbase-bench-ceiling ADDR BODY_FILE`.

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18091".into());
    let body: &'static [u8] = match args.next() {
        Some(path) => {
            Vec::leak(std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}")))
        }
        None => b"{}",
    };
    let app = Router::new().route(
        "/api/v2/agents/{agentId}",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("ceiling listening on http://{addr}");
    axum::serve(listener, app).await.expect("serve");
}
