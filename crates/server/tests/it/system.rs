use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use reqwest::Method;

use crate::{official_spec, outcome, spawn};

#[tokio::test]
async fn health_needs_no_key_and_matches_the_contract() {
    let t = spawn().await;
    let r = reqwest::get(t.url("/api/v2/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    let now_secs = agentbase_core::Clock::now_ms(&t.clock) / 1000;
    assert_eq!(body["timestamp"].as_i64(), Some(now_secs));
}

#[tokio::test]
async fn every_response_carries_a_request_id_even_unknown_routes() {
    let t = spawn().await;
    let http = reqwest::Client::new();
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/api/v2/nope"),
        (Method::POST, "/api/v2/health"),
        (Method::GET, "/api/v2/agents"),
    ] {
        let r = http
            .request(method.clone(), t.url(path))
            .send()
            .await
            .unwrap();
        let id = r
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(
            id.as_deref().is_some_and(|s| s.starts_with("req_")),
            "{method} {path}"
        );
        let (status, code, _) = outcome(r).await;
        let expected = match path {
            "/api/v2/health" => (405, "METHOD_NOT_ALLOWED"),
            "/api/v2/agents" => (401, "AUTH_MISSING_API_KEY"),
            _ => (404, "RESOURCE_NOT_FOUND"),
        };
        assert_eq!(
            (status, code.as_deref()),
            (expected.0, Some(expected.1)),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_well_formed_incoming_request_id_is_echoed_and_a_bad_one_replaced() {
    let t = spawn().await;
    let http = reqwest::Client::new();
    let r = http
        .get(t.url("/api/v2/health"))
        .header("x-request-id", "trace-123.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-123.abc");
    let r = http
        .get(t.url("/api/v2/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn errors_carry_the_request_id_into_the_client_error() {
    let t = spawn().await;
    let err = t.client.get_agent("missing").await.unwrap_err();
    match err {
        agentbase_client::Error::Api(e) => {
            assert_eq!(e.code, "AGENT_NOT_FOUND");
            assert!(e.request_id.is_some_and(|id| id.starts_with("req_")));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_covers_every_route() {
    let t = spawn().await;
    let doc: serde_json::Value = reqwest::get(t.url("/api/v2/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v2/health", &["get"][..]),
        ("/api/v2/agents", &["get", "post"][..]),
        ("/api/v2/agents/{agentId}", &["get", "put", "delete"][..]),
        ("/api/v2/agents/{agentId}/sources", &["get", "post"][..]),
        (
            "/api/v2/agents/{agentId}/sources/{sourceId}",
            &["get", "put", "delete"][..],
        ),
        ("/api/v2/agents/{agentId}/sources/summary", &["get"][..]),
        ("/api/v2/agents/{agentId}/auto-retrain", &["put"][..]),
        ("/api/v2/agents/{agentId}/train", &["post"][..]),
        ("/api/v2/agents/{agentId}/search", &["post"][..]),
        ("/api/v2/agents/{agentId}/training-jobs", &["get"][..]),
        ("/api/v1/update-chatbot-data", &["post"][..]),
        ("/v2/actors/{actorId}/runs", &["post"][..]),
        ("/v2/actor-runs/{runId}/log", &["get"][..]),
        (
            "/v2/key-value-stores/{storeId}/records/{key}",
            &["get", "put"][..],
        ),
        ("/api/v2/agents/{agentId}/styles", &["put"][..]),
        ("/api/v2/agents/{agentId}/clone", &["post"][..]),
        (
            "/api/v2/agents/{agentId}/conversations/search",
            &["get"][..],
        ),
        ("/v2/actor-runs/{runId}", &["get"][..]),
        ("/v2/actor-runs/{runId}/abort", &["post"][..]),
        ("/v2/datasets/{datasetId}/items", &["get"][..]),
    ] {
        for m in methods {
            assert!(
                paths[path][m]["responses"].is_object(),
                "{m} {path} documented"
            );
        }
    }
    // The documented Agent schema carries every field the official one requires.
    let official = official_spec();
    let ours = &doc["components"]["schemas"]["Agent"]["properties"];
    for field in official["components"]["schemas"]["Agent"]["required"]
        .as_array()
        .unwrap()
    {
        assert!(
            ours.get(field.as_str().unwrap()).is_some(),
            "Agent.{field} documented"
        );
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let t = spawn().await;
    t.client.health().await.unwrap();
    let _ = t.client.get_agent("missing").await;
    let text = reqwest::get(t.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"agentbase_http_requests_total{route="/api/v2/health",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v2/agents/{agentId}",method="GET",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains(
        "agentbase_http_request_duration_seconds_bucket{route=\"/api/v2/health\",le=\"+Inf\"} 1"
    ));

    // A method of the sender's own making (any token, no key needed) is counted as
    // `other`: however many kinds are sent, the series do not grow.
    let client = reqwest::Client::new();
    for i in 0..20 {
        let method =
            reqwest::Method::from_bytes(format!("BOGUS{i}{}", "X".repeat(2000)).as_bytes())
                .unwrap();
        let status = client
            .request(method, t.url("/api/v2/health"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 405);
    }
    let text = reqwest::get(t.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("BOGUS"), "{}", &text[..text.len().min(2000)]);
    assert!(
        text.contains(
            r#"agentbase_http_requests_total{route="/api/v2/health",method="other",status="405"} 20"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let t = spawn().await;
    // The handler says when it has started: the shutdown begins with the request
    // in flight, however slowly a loaded machine gets it there.
    let started = Arc::new(tokio::sync::Notify::new());
    let in_handler = started.clone();
    let router = agentbase_server::router(t.app.clone()).merge(Router::new().route(
        "/slow",
        get(move || {
            in_handler.notify_one();
            async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "done"
            }
        }),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(agentbase_server::serve_router(
        listener,
        router,
        agentbase_server::ConnectionLimits {
            grace: Duration::from_secs(5),
            ..Default::default()
        },
        async move {
            let _ = rx.await;
        },
    ));
    let request = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    tokio::time::timeout(Duration::from_secs(30), started.notified())
        .await
        .expect("the request reaches its handler");
    tx.send(()).unwrap();
    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("http://{addr}/api/v2/health"))
            .await
            .is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_that_outlive_the_deadline() {
    let t = spawn().await;
    let router = agentbase_server::router(t.app.clone()).merge(Router::new().route(
        "/stuck",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(agentbase_server::serve_router(
        listener,
        router,
        agentbase_server::ConnectionLimits {
            grace: Duration::from_millis(200),
            ..Default::default()
        },
        async move {
            let _ = rx.await;
        },
    ));
    let _request = tokio::spawn(reqwest::get(format!("http://{addr}/stuck")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(()).unwrap();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("deadline enforced")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// One client address holds at most `max_per_client` connections: its next one is
/// closed as it arrives, while another client is served, and a closed connection
/// gives its place back.
#[tokio::test]
async fn one_client_cannot_take_every_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = spawn().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(agentbase_server::serve_router(
        listener,
        agentbase_server::router(t.app.clone()),
        agentbase_server::ConnectionLimits {
            max_per_client: 3,
            ..Default::default()
        },
        async move {
            let _ = rx.await;
        },
    ));
    let from = |source: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    };
    // A health check on a connection: the status line, or "" when it was closed.
    let health = |mut c: tokio::net::TcpStream| async move {
        let head = "GET /api/v2/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        let _ = c.write_all(head.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(from("127.0.0.1").await);
    }
    // Give the accept loop time to count them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        health(from("127.0.0.1").await).await,
        "",
        "a fourth is closed"
    );
    assert_eq!(
        health(from("127.0.0.2").await).await,
        "HTTP/1.1 200 OK",
        "another client is served"
    );
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(health(from("127.0.0.1").await).await, "HTTP/1.1 200 OK");
}
