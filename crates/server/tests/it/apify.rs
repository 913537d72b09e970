//! The Apify-compatible crawler endpoints against a real website on loopback (the
//! crawler's SSRF guard is opened for loopback with `crawler.allow_private_networks`,
//! as an operator would for an intranet site).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Path;
use axum::response::Html;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{TestApp, outcome, spawn_with};

fn page(title: &str, body: &str, links: &[&str]) -> String {
    let links: String = links
        .iter()
        .map(|l| format!("<li><a href=\"{l}\">{l}</a></li>"))
        .collect();
    format!(
        "<html><head><title>{title}</title><meta name=\"description\" content=\"About {title}\"></head>\
         <body><nav><ul>{links}</ul></nav><main><h1>{title}</h1><p>{body}</p>\
         <h2>Details</h2><ul><li>first point about {title}</li><li>second point</li></ul></main></body></html>"
    )
}

/// A small docs site: /docs/ links to /docs/a and /docs/b; /slow/{n} pages take 2 s
/// each and link onwards forever.
async fn site() -> SocketAddr {
    let app = axum::Router::new()
        .route(
            "/docs/",
            axum::routing::get(|| async {
                Html(page(
                    "Docs home",
                    "Welcome to the documentation of the espresso machine, with guides for every part of it.",
                    &["/docs/a", "/docs/b", "/elsewhere"],
                ))
            }),
        )
        .route(
            "/docs/a",
            axum::routing::get(|| async {
                Html(page(
                    "Descaling",
                    "Descale the boiler every two months with citric acid dissolved in warm water.",
                    &["/docs/"],
                ))
            }),
        )
        .route(
            "/docs/b",
            axum::routing::get(|| async {
                Html(page(
                    "Grinding",
                    "Grind the beans fine enough that a double shot takes about twenty-five seconds.",
                    &["/docs/a"],
                ))
            }),
        )
        .route(
            "/slow/{n}",
            axum::routing::get(|Path(n): Path<u32>| async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let next = format!("/slow/{}", n + 1);
                Html(page(&format!("Slow {n}"), "A page that takes its time to arrive.", &[&next]))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub(crate) async fn crawler_app() -> TestApp {
    spawn_with(|s| {
        s.crawler.allow_private_networks = true;
        s.rate_limit.requests = 1_000_000;
    })
    .await
}

/// A request authenticated Apify's way, with `?token=`.
pub(crate) fn apify(t: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    let sep = if path.contains('?') { '&' } else { '?' };
    reqwest::Client::new().request(method, t.url(&format!("{path}{sep}token={}", t.key)))
}

/// Starts a run with `input`; the run object Apify answers (`{"data": …}`).
pub(crate) async fn start_run(t: &TestApp, input: Value) -> Value {
    let r = apify(t, Method::POST, "/v2/acts/website-content-crawler/runs")
        .json(&input)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_run_crawls_the_site_and_its_dataset_reads_like_apifys() {
    let t = crawler_app().await;
    let site = site().await;
    let r = apify(
        &t,
        Method::POST,
        "/v2/acts/apify~website-content-crawler/runs",
    )
    .json(&json!({
        "startUrls": [{"url": format!("http://{site}/docs/")}],
        "maxCrawlDepth": 3,
        "maxCrawlPages": 10,
        "outputFormats": ["markdown"],
        "crawlerType": "playwright:adaptive",
    }))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let run: Value = r.json().await.unwrap();
    let id = run["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v2/actor-runs/{id}"));
    assert!(matches!(
        run["data"]["status"].as_str(),
        Some("READY" | "RUNNING")
    ));
    // Unknown inputs are reported, not dropped silently, and so is a missing browser.
    let message = run["data"]["statusMessage"].as_str().unwrap();
    assert!(
        message.contains("outputFormats") && message.contains("No browser"),
        "{message}"
    );
    // A crawler type that always renders cannot run without one.
    let r = apify(
        &t,
        Method::POST,
        "/v2/acts/apify~website-content-crawler/runs",
    )
    .json(&json!({
        "startUrls": [{"url": format!("http://{site}/docs/")}],
        "crawlerType": "playwright:firefox",
    }))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body.to_string().contains("no browser"), "{body}");

    let r = apify(
        &t,
        Method::GET,
        &format!("/v2/actor-runs/{id}?waitForFinish=60"),
    )
    .send()
    .await
    .unwrap();
    let run: Value = r.json().await.unwrap();
    assert_eq!(run["data"]["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["data"]["stats"]["itemCount"], 3);
    let dataset = run["data"]["defaultDatasetId"].as_str().unwrap().to_owned();

    // JSON, through the run and through the dataset id alike.
    let r = apify(
        &t,
        Method::GET,
        &format!("/v2/actor-runs/{id}/dataset/items?format=json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.headers()["x-apify-pagination-total"], "3");
    assert_eq!(r.headers()["x-apify-pagination-count"], "3");
    let items: Vec<Value> = r.json().await.unwrap();
    let urls: Vec<&str> = items.iter().map(|i| i["url"].as_str().unwrap()).collect();
    assert_eq!(urls.len(), 3);
    assert!(
        urls.iter().all(|u| u.contains("/docs/")),
        "scoped to /docs/: {urls:?}"
    );
    let descaling = items
        .iter()
        .find(|i| i["metadata"]["title"] == "Descaling")
        .unwrap();
    assert_eq!(descaling["crawl"]["httpStatusCode"], 200);
    assert_eq!(descaling["crawl"]["depth"], 1);
    assert_eq!(descaling["metadata"]["description"], "About Descaling");
    let markdown = descaling["markdown"].as_str().unwrap();
    assert!(markdown.contains("## Details"), "{markdown}");
    assert!(
        descaling["markdown"]
            .as_str()
            .unwrap()
            .contains("- first point about Descaling")
    );
    assert!(descaling["text"].as_str().unwrap().contains("citric acid"));
    assert!(
        !descaling["text"].as_str().unwrap().contains("/docs/b"),
        "nav removed"
    );

    let r = apify(
        &t,
        Method::GET,
        &format!("/v2/datasets/{dataset}/items?offset=1&limit=1&fields=url,crawl&desc=1"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.headers()["x-apify-pagination-offset"], "1");
    assert_eq!(r.headers()["x-apify-pagination-limit"], "1");
    let page: Vec<Value> = r.json().await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].as_object().unwrap().len(), 2);
    assert_eq!(
        page[0]["url"], items[1]["url"],
        "desc from the end, offset 1"
    );

    let r = apify(
        &t,
        Method::GET,
        &format!("/v2/datasets/{dataset}/items?format=jsonl&omit=html,text"),
    )
    .send()
    .await
    .unwrap();
    let body = r.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|l| l.get("text").is_none() && l.get("url").is_some())
    );

    let r = apify(
        &t,
        Method::GET,
        &format!("/v2/datasets/{dataset}/items?format=csv&fields=url,crawl"),
    )
    .send()
    .await
    .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    // Apify writes CSV with a byte order mark unless `bom=0`.
    let csv = csv.strip_prefix('\u{feff}').expect("a byte order mark");
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("url,crawl/"), "{header}");
    assert!(header.contains("crawl/loadedUrl") && header.contains("crawl/httpStatusCode"));
    assert_eq!(csv.lines().count(), 4);

    // Bearer works too; a bad format is refused.
    let r = t
        .raw(
            Method::GET,
            &format!("/v2/datasets/{dataset}/items?format=yaml"),
        )
        .send()
        .await
        .unwrap();
    let (status, code, _) = outcome(r).await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY"))
    );
}

#[tokio::test]
async fn runs_can_be_aborted_and_bad_requests_get_clear_errors() {
    let t = crawler_app().await;
    let site = site().await;
    let run = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/slow/0")], "maxCrawlDepth": 100}),
    )
    .await;
    let id = run["data"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = apify(&t, Method::POST, &format!("/v2/actor-runs/{id}/abort"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let run: Value = r.json().await.unwrap();
    assert!(
        matches!(run["data"]["status"].as_str(), Some("ABORTING" | "ABORTED")),
        "{run}"
    );
    let r = apify(
        &t,
        Method::GET,
        &format!("/v2/actor-runs/{id}?waitForFinish=30"),
    )
    .send()
    .await
    .unwrap();
    let run: Value = r.json().await.unwrap();
    assert_eq!(run["data"]["status"], "ABORTED", "{run}");
    assert!(run["data"]["finishedAt"].is_string());

    // Each kind of bad request.
    let start = |actor: &str, body: Value| {
        apify(&t, Method::POST, &format!("/v2/acts/{actor}/runs"))
            .json(&body)
            .send()
    };
    let (s, c, _) = outcome(
        start("apify~rag-web-browser", json!({"startUrls": []}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, c.as_deref()), (404, Some("RESOURCE_NOT_FOUND")));
    let (s, c, b) = outcome(
        start("website-content-crawler", json!({"maxCrawlDepth": -1}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, c.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY")),
        "{b}"
    );
    let (s, c, _) = outcome(
        start("website-content-crawler", json!([1, 2]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, c.as_deref()), (400, Some("VALIDATION_INVALID_BODY")));
    let r = reqwest::Client::new()
        .post(t.url("/v2/acts/website-content-crawler/runs?token=agb_nope_nope"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.1.as_deref(), Some("AUTH_INVALID_API_KEY"));
    let r = apify(&t, Method::GET, "/v2/actor-runs/nosuchrun")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 404);

    // Another workspace cannot see the run.
    let (_, other) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let r = reqwest::Client::new()
        .get(t.url(&format!("/v2/actor-runs/{id}?token={other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 404);
}

/// A key-value record comes back with the type its writer gave it, as Apify serves
/// it, but from the dashboard's origin: a browser that opens one gets an inert,
/// sandboxed document. Bodies over the limit get the envelope like everywhere else.
#[tokio::test]
async fn records_are_served_inert_and_bodies_over_the_limit_get_the_envelope() {
    let t = crawler_app().await;
    let site = site().await;
    let run = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/docs/a")], "maxCrawlDepth": 0}),
    )
    .await;
    let store = run["data"]["defaultKeyValueStoreId"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = format!("/v2/key-value-stores/{store}/records/page");
    let script = "<script>document.title = document.cookie</script>";
    let r = apify(&t, Method::PUT, &record)
        .header("content-type", "text/html")
        .body(script)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = apify(&t, Method::GET, &record).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html");
    let csp = header("content-security-policy");
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(r.text().await.unwrap(), script);

    // Over the body limit: the envelope, with Apify's `type`.
    let big = "a".repeat(3 * 1024 * 1024);
    let r = apify(&t, Method::PUT, &record)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, code, body) = outcome(r).await;
    assert_eq!(
        (status, code.as_deref()),
        (413, Some("VALIDATION_BODY_TOO_LARGE")),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "validation-body-too-large", "{body}");
    let r = apify(&t, Method::POST, "/v2/acts/website-content-crawler/runs")
        .header("content-type", "application/json")
        .body(format!(
            "{{\"startUrls\": [\"http://{site}/docs/\"], \"x\": \"{big}\"}}"
        ))
        .send()
        .await
        .unwrap();
    let (status, code, _) = outcome(r).await;
    assert_eq!(
        (status, code.as_deref()),
        (413, Some("VALIDATION_BODY_TOO_LARGE"))
    );
}

#[tokio::test]
async fn loopback_is_refused_unless_the_operator_allows_private_networks() {
    let t = spawn_with(|_| {}).await;
    let site = site().await;
    let r = apify(
        &t,
        Method::POST,
        "/v2/acts/website-content-crawler/runs?waitForFinish=30",
    )
    .json(&json!({"startUrls": [{"url": format!("http://{site}/docs/")}]}))
    .send()
    .await
    .unwrap();
    let run: Value = r.json().await.unwrap();
    let id = run["data"]["id"].as_str().unwrap();
    let run: Value = apify(
        &t,
        Method::GET,
        &format!("/v2/actor-runs/{id}?waitForFinish=30"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(
        run["data"]["status"].as_str().unwrap() != "RUNNING",
        "{run}"
    );
    assert_eq!(run["data"]["stats"]["itemCount"], 0, "{run}");
}

#[tokio::test]
async fn a_run_left_behind_by_a_stopped_node_fails_cleanly_instead_of_hanging() {
    use agentbase_core::Clock;
    use agentbase_core::crawl_run::{CrawlRun, RunStatus};
    use agentbase_core::run_webhook::RunWebhook;
    let (port, got) = crate::webhooks::receiver(|_| 200).await;
    let t = spawn_with(crate::webhooks::loopback_allowed).await;
    let now = t.clock.now_ms();
    let run = CrawlRun {
        id: "orphanrun".into(),
        workspace_id: t.workspace_id.clone(),
        actor_id: "website-content-crawler".into(),
        status: RunStatus::Running,
        status_message: None,
        input: json!({"startUrls": ["https://example.com"]}),
        dataset_id: "orphandataset".into(),
        timeout_secs: 3600,
        pages_done: 3,
        pages_failed: 0,
        items: 3,
        started_at: now - 60_000,
        finished_at: None,
        kv_store_id: "orphankvstore".into(),
        // Its webhook is told of the failure by the node that finds it.
        webhooks: vec![RunWebhook {
            event_types: vec!["ACTOR.RUN.FAILED".into()],
            request_url: format!("http://127.0.0.1:{port}/hook"),
            payload_template: None,
            headers_template: None,
            idempotency_key: None,
            do_not_retry: false,
            should_interpolate_strings: false,
        }],
        dataset_deleted_at: None,
        kv_store_deleted_at: None,
    };
    // Its node stopped renewing the lease a while ago (crashed or restarted).
    t.app
        .record()
        .insert_run(&run, "dead-node", now - 1, 10)
        .await
        .unwrap();
    let run: Value = apify(&t, Method::GET, "/v2/actor-runs/orphanrun?waitForFinish=10")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["data"]["status"], "FAILED", "{run}");
    assert!(
        run["data"]["statusMessage"]
            .as_str()
            .unwrap()
            .contains("stopped")
    );
    crate::webhooks::wait_for("the orphan's webhook", || !got.lock().unwrap().is_empty()).await;
    let told = got.lock().unwrap()[0].json();
    assert_eq!(told["eventType"], "ACTOR.RUN.FAILED");
    assert_eq!(told["resource"]["id"], "orphanrun");
    assert_eq!(told["resource"]["status"], "FAILED", "{told}");
}

#[tokio::test]
async fn runs_are_bounded_by_the_plan_and_the_workspace_runs_a_few_at_once() {
    let t = spawn_with(|s| {
        s.crawler.allow_private_networks = true;
        s.rate_limit.requests = 1_000_000;
        s.crawler.runs_per_workspace = 1;
        s.crawler.run_max_pages.standard = 2;
        s.crawler.max_concurrency = 3;
    })
    .await;
    let site = site().await;
    let start = |input: Value| {
        apify(
            &t,
            Method::POST,
            "/v2/acts/apify~website-content-crawler/runs",
        )
        .json(&input)
        .send()
    };
    // A run of the never-ending slow pages holds the workspace's one slot.
    let r = start(json!({"startUrls": [format!("http://{site}/slow/0")], "maxConcurrency": 500}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let slow: Value = r.json().await.unwrap();
    let slow = slow["data"]["id"].as_str().unwrap().to_owned();
    let (status, code, body) = outcome(
        start(json!({"startUrls": [format!("http://{site}/docs/")]}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("CRAWL_RUNS_LIMIT_REACHED"))
    );
    // The type Apify's clients retry a start on (`wait_for_resources`).
    assert_eq!(body["error"]["type"], "concurrent-runs-limit-exceeded");
    // Another workspace is not affected by this one's runs.
    let (_, other_key) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let r = reqwest::Client::new()
        .post(t.url(&format!(
            "/v2/acts/apify~website-content-crawler/runs?token={other_key}"
        )))
        .json(&json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlPages": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Once the slow run ends, the slot is free; the plan caps the pages a run
    // may crawl whatever the input asks, and says so.
    apify(&t, Method::POST, &format!("/v2/actor-runs/{slow}/abort"))
        .send()
        .await
        .unwrap();
    let mut admitted = None;
    for _ in 0..100 {
        let r = start(json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlPages": 1000, "maxCrawlDepth": 5}))
            .await
            .unwrap();
        if r.status() == 201 {
            admitted = Some(r.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = admitted.expect("a run is admitted once the slow one is aborted");
    let message = run["data"]["statusMessage"].as_str().unwrap_or_default();
    assert!(message.contains("maxCrawlPages lowered to 2"), "{message}");
    let id = run["data"]["id"].as_str().unwrap();
    let done: Value = apify(
        &t,
        Method::GET,
        &format!("/v2/actor-runs/{id}?waitForFinish=60"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(done["data"]["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["data"]["stats"]["itemCount"], 2, "{done}");
}

/// A followed log (`stream=1`) is a request held open and a store read every
/// 250 ms until its run ends: a workspace follows at most ten at once, the
/// eleventh gets 429 in the envelope (Apify's clients retry it), and a closed one
/// makes room.
#[tokio::test]
async fn a_workspace_follows_a_bounded_number_of_logs_at_once() {
    let t = crawler_app().await;
    let site = site().await;
    let run = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/slow/0")], "maxCrawlDepth": 100}),
    )
    .await;
    let id = run["data"]["id"].as_str().unwrap().to_owned();
    let follow = || apify(&t, Method::GET, &format!("/v2/logs/{id}?stream=1")).send();
    let mut open = Vec::new();
    for _ in 0..agentbase_service::crawl_runs::FOLLOWERS_PER_WORKSPACE {
        let r = follow().await.unwrap();
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    let r = follow().await.unwrap();
    assert_eq!(r.status(), 429);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "rate-limit-too-many-requests", "{e}");
    // Not following is not bounded.
    let r = apify(&t, Method::GET, &format!("/v2/logs/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(open.pop());
    // The server notices the closed stream at its next poll.
    let mut again = follow().await.unwrap();
    for _ in 0..20 {
        if again.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        again = follow().await.unwrap();
    }
    assert_eq!(again.status(), 200, "a closed stream made room");
    let r = apify(&t, Method::POST, &format!("/v2/actor-runs/{id}/abort"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A workspace's key-value records are bounded by its plan
/// (`crawler.kv_storage_limits`): a write past it gets 422 in the envelope, a
/// replaced record counts once, and deleting records (Apify's `DELETE`) makes room.
#[tokio::test]
async fn key_value_storage_is_bounded_per_workspace_and_deleting_makes_room() {
    let t = spawn_with(|s| {
        s.crawler.allow_private_networks = true;
        s.crawler.kv_storage_limits.standard = 10_000;
    })
    .await;
    let site = site().await;
    let run = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlDepth": 0}),
    )
    .await;
    let store = run["data"]["defaultKeyValueStoreId"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = |key: &str| format!("/v2/key-value-stores/{store}/records/{key}");
    let put = |key: String, bytes: usize| {
        apify(&t, Method::PUT, &record(&key))
            .header("content-type", "text/plain")
            .body("x".repeat(bytes))
            .send()
    };
    for key in ["a", "b", "c"] {
        assert_eq!(put(key.into(), 3_000).await.unwrap().status(), 201);
    }
    // Replacing a record counts its new size only.
    assert_eq!(put("c".into(), 3_000).await.unwrap().status(), 201);
    let r = put("d".into(), 3_000).await.unwrap();
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "storage-limit-exceeded", "{e}");
    let r = apify(&t, Method::DELETE, &record("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(put("d".into(), 3_000).await.unwrap().status(), 201);
    let r = apify(&t, Method::GET, &record("a")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = apify(&t, Method::DELETE, &record("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "record-not-found", "{e}");
    // Writes in parallel do not all pass the same check: room for three, three fit.
    for key in ["b", "c", "d"] {
        let r = apify(&t, Method::DELETE, &record(key))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let writes = (0..8).map(|n| put(format!("p{n}"), 3_000));
    let statuses: Vec<u16> = futures_util::future::join_all(writes)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    // A run's input is its INPUT record: one that does not fit is not started.
    let big = json!({"startUrls": [format!("http://{site}/docs/")], "note": "x".repeat(2_000)});
    let r = apify(
        &t,
        Method::POST,
        "/v2/acts/apify~website-content-crawler/runs",
    )
    .json(&big)
    .send()
    .await
    .unwrap();
    let (s, code, body) = outcome(r).await;
    assert_eq!(
        (s, code.as_deref()),
        (422, Some("STORAGE_LIMIT_EXCEEDED")),
        "{body}"
    );
}

/// A GET with Apify's token; the status and the body as JSON (`Null` when it is
/// not JSON).
pub(crate) async fn get_json(t: &TestApp, path: &str) -> (u16, Value) {
    let r = apify(t, Method::GET, path).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The ids of a run list's items, in order.
fn ids(page: &Value) -> Vec<&str> {
    page["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// What Apify's clients call `actor.runs().list()`, `runs().list()` and
/// `actor.last_run(status=…)` with its storages: the workspace's runs, oldest
/// first or newest first, by status; `last` under the actor names the newest.
#[tokio::test]
async fn runs_are_listed_and_the_last_one_is_reachable_under_the_actor() {
    let t = crawler_app().await;
    let site = site().await;
    let actor = "/v2/acts/apify~website-content-crawler";
    let (s, empty) = get_json(&t, &format!("{actor}/runs")).await;
    assert_eq!((s, &empty["data"]["total"]), (200, &json!(0)), "{empty}");
    let r = apify(&t, Method::GET, &format!("{actor}/runs/last"))
        .send()
        .await
        .unwrap();
    let (s, _, body) = outcome(r).await;
    assert_eq!(
        (s, &body["error"]["type"]),
        (404, &json!("record-not-found"))
    );

    let done = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlPages": 1}),
    )
    .await;
    let done = done["data"]["id"].as_str().unwrap().to_owned();
    let (_, finished) = get_json(&t, &format!("/v2/actor-runs/{done}?waitForFinish=60")).await;
    assert_eq!(finished["data"]["status"], "SUCCEEDED", "{finished}");
    // The test's clock is manual: the second run starts a second later.
    t.clock.advance_ms(1_000);
    let slow = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/slow/0")], "maxCrawlDepth": 100}),
    )
    .await;
    let slow = slow["data"]["id"].as_str().unwrap().to_owned();

    // Both lists, both orders, pages and a status filter; no inputs in lists.
    let (_, all) = get_json(&t, "/v2/actor-runs").await;
    assert_eq!(ids(&all), [done.as_str(), slow.as_str()], "{all}");
    assert_eq!(all["data"]["total"], 2);
    assert_eq!(all["data"]["count"], 2);
    assert!(all["data"]["items"][0].get("input").is_none(), "{all}");
    assert_eq!(
        all["data"]["items"][0]["defaultDatasetId"],
        finished["data"]["defaultDatasetId"]
    );
    let (_, newest) = get_json(&t, &format!("{actor}/runs?desc=1")).await;
    assert_eq!(ids(&newest), [slow.as_str(), done.as_str()]);
    let (_, second) = get_json(&t, &format!("{actor}/runs?offset=1&limit=1")).await;
    assert_eq!(ids(&second), [slow.as_str()]);
    assert_eq!(
        (&second["data"]["offset"], &second["data"]["limit"]),
        (&json!(1), &json!(1))
    );
    let (_, succeeded) = get_json(
        &t,
        "/v2/actors/website-content-crawler/runs?status=SUCCEEDED",
    )
    .await;
    assert_eq!(ids(&succeeded), [done.as_str()]);
    assert_eq!(succeeded["data"]["total"], 1);
    let slow_start = all["data"]["items"][1]["startedAt"].as_str().unwrap();
    let (_, since) = get_json(
        &t,
        &format!("/v2/actor-runs?startedAfter={slow_start}&limit=0"),
    )
    .await;
    assert_eq!(
        ids(&since),
        [slow.as_str()],
        "startedAfter is inclusive: {since}"
    );
    assert_eq!(since["data"]["limit"], 1000, "limit 0 asks for the default");
    let (_, before) = get_json(&t, "/v2/actor-runs?startedBefore=2000-01-01").await;
    assert_eq!(before["data"]["total"], 0, "{before}");

    // `last`, by status, and the storages of the run it names.
    let (_, last) = get_json(&t, &format!("{actor}/runs/last")).await;
    assert_eq!(last["data"]["id"], slow.as_str(), "{last}");
    let (_, last) = get_json(&t, &format!("{actor}/runs/last?status=SUCCEEDED")).await;
    assert_eq!(last["data"]["id"], done.as_str(), "{last}");
    let (_, by_id) = get_json(&t, &format!("/v2/actors/aYG0l9s7dbB7j3gbS/runs/{done}")).await;
    assert_eq!(by_id["data"], last["data"]);
    // A run named by its id ignores `last`'s filter.
    let (s, ignored) = get_json(&t, &format!("/v2/actor-runs/{done}?status=DONE")).await;
    assert_eq!(
        (s, &ignored["data"]["id"]),
        (200, &json!(done)),
        "{ignored}"
    );
    let (s, items) = get_json(
        &t,
        &format!("{actor}/runs/last/dataset/items?status=SUCCEEDED"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["url"], format!("http://{site}/docs/"));
    let (_, dataset) = get_json(&t, &format!("{actor}/runs/last/dataset?status=SUCCEEDED")).await;
    assert_eq!(dataset["data"]["id"], last["data"]["defaultDatasetId"]);
    let (_, input) = get_json(
        &t,
        &format!("{actor}/runs/last/key-value-store/records/INPUT?status=SUCCEEDED"),
    )
    .await;
    assert_eq!(input["maxCrawlPages"], 1, "{input}");
    let (_, keys) = get_json(&t, &format!("/v2/actor-runs/{done}/key-value-store/keys")).await;
    assert_eq!(keys["data"]["items"][0]["key"], "INPUT", "{keys}");
    let log = apify(
        &t,
        Method::GET,
        &format!("{actor}/runs/last/log?status=SUCCEEDED"),
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        log.contains(&format!("run {done}")) && log.contains("SUCCEEDED"),
        "{log}"
    );

    // Bad requests, each with its error; another actor names nothing.
    for (path, status) in [
        (format!("{actor}/runs/last?status=DONE"), 400),
        (format!("{actor}/runs?limit=-1"), 400),
        (format!("{actor}/runs?offset=x"), 400),
        (format!("{actor}/runs?startedAfter=yesterday"), 400),
        (format!("{actor}/runs/last?startedBefore=2024-13-01"), 400),
        ("/v2/actor-runs?status=SUCCEEDED,".to_owned(), 400),
        ("/v2/acts/apify~rag-web-browser/runs/last".to_owned(), 404),
        ("/v2/acts/apify~rag-web-browser/runs".to_owned(), 404),
        (format!("/v2/acts/apify~rag-web-browser/runs/{done}"), 404),
        (
            format!("{actor}/runs/last/key-value-store/records/OUTPUT"),
            404,
        ),
    ] {
        let r = apify(&t, Method::GET, &path).send().await.unwrap();
        let (s, code, body) = outcome(r).await;
        assert_eq!(s, status, "{path}: {body}");
        assert!(
            code.is_some() && body["error"]["type"].is_string(),
            "{path}: {body}"
        );
    }

    // The last run is aborted through its `last` path.
    let r = apify(&t, Method::POST, &format!("{actor}/runs/last/abort"))
        .send()
        .await
        .unwrap();
    let aborted: Value = r.json().await.unwrap();
    assert_eq!(aborted["data"]["id"], slow.as_str());
    let (_, ended) = get_json(&t, &format!("{actor}/runs/last?waitForFinish=30")).await;
    assert_eq!(ended["data"]["status"], "ABORTED", "{ended}");

    // Another workspace has no runs, and no last one; each key is its own user.
    let (_, me) = get_json(&t, "/v2/users/me").await;
    assert_eq!(me["data"]["id"], t.workspace_id.as_str(), "{me}");
    assert!(me["data"]["username"].is_string() && me["data"]["plan"]["id"].is_string());
    let (_, other) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let r = reqwest::Client::new()
        .get(t.url(&format!("/v2/users/me?token={other}")))
        .send()
        .await
        .unwrap();
    let them: Value = r.json().await.unwrap();
    assert!(
        them["data"]["id"].is_string() && them["data"]["id"] != me["data"]["id"],
        "{them}"
    );
    let r = reqwest::Client::new()
        .get(t.url(&format!("/v2/actor-runs?token={other}")))
        .send()
        .await
        .unwrap();
    let theirs: Value = r.json().await.unwrap();
    assert_eq!(theirs["data"]["total"], 0, "{theirs}");
    let r = reqwest::Client::new()
        .get(t.url(&format!("{actor}/runs/last?token={other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Apify's synchronous endpoints: the run's items (shaped by the dataset's
/// query parameters) or its `OUTPUT` record, answered with 201 once it ends; a
/// run that fails gets 400 `run-failed`, one still going when the wait is over
/// 408 `run-timeout-exceeded`, and it goes on.
#[tokio::test]
async fn synchronous_runs_answer_with_items_or_apifys_errors() {
    let t = crawler_app().await;
    let site = site().await;
    let docs = json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlDepth": 3});
    let sync = |path: &str, body: &Value| {
        apify(
            &t,
            Method::POST,
            &format!("/v2/acts/apify~website-content-crawler/{path}"),
        )
        .json(body)
        .send()
    };
    let r = sync(
        "run-sync-get-dataset-items?maxItems=2&fields=url,text",
        &docs,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-apify-pagination-total"], "2");
    let text = r.text().await.unwrap();
    let items: Value = serde_json::from_str(&text).unwrap();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 2, "maxItems bounds the run: {text}");
    for item in items {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "only the fields asked for: {item}");
    }
    // In the order `fields` gives them, as Apify writes them.
    assert!(text.starts_with(r#"[{"url":"#), "{text}");
    assert_eq!(text.matches(r#"},{"url":"#).count(), 1, "{text}");
    let r = sync(
        "run-sync-get-dataset-items?format=csv&maxItems=1&fields=url,crawl&bom=0&delimiter=%3B&skipHeaderRow=1&attachment=1",
        &docs,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"dataset_"),
        "{disposition}"
    );
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with(&format!("http://{site}/docs/;0;200;")),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1, "no header row: {csv}");

    // run-sync answers with the OUTPUT record, which the crawler does not write,
    // or the one `outputRecordKey` names.
    let r = sync("run-sync?maxItems=1", &docs).await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.text().await.unwrap(), "");
    let r = sync("run-sync?maxItems=1&outputRecordKey=INPUT", &docs)
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let input: Value = r.json().await.unwrap();
    assert_eq!(input, docs);

    // A run that times out failed; bad starts get the run's usual errors.
    let slow = json!({"startUrls": [format!("http://{site}/slow/0")], "maxCrawlDepth": 100});
    let (s, code, body) = outcome(
        sync("run-sync-get-dataset-items?timeout=1", &slow)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_deref()), (400, Some("RUN_FAILED")), "{body}");
    assert_eq!(body["error"]["type"], "run-failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TIMED-OUT"),
        "{body}"
    );
    let (s, code, _) = outcome(sync("run-sync?maxItems=0", &docs).await.unwrap()).await;
    assert_eq!((s, code.as_deref()), (400, Some("VALIDATION_INVALID_BODY")));
    let (s, code, _) = outcome(
        sync("run-sync-get-dataset-items?format=yaml", &docs)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_deref()), (400, Some("VALIDATION_INVALID_BODY")));
    let r = apify(
        &t,
        Method::GET,
        "/v2/acts/apify~website-content-crawler/run-sync-get-dataset-items",
    )
    .send()
    .await
    .unwrap();
    let (s, code, body) = outcome(r).await;
    assert_eq!(
        (s, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY")),
        "no input, no startUrls: {body}"
    );
    let r = apify(&t, Method::POST, "/v2/acts/apify~rag-web-browser/run-sync")
        .json(&docs)
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 404);

    // A run longer than the wait: 408, and it goes on.
    let t = spawn_with(|s| {
        s.crawler.allow_private_networks = true;
        s.crawler.sync_wait_secs = 1;
    })
    .await;
    let r = apify(
        &t,
        Method::POST,
        "/v2/acts/apify~website-content-crawler/run-sync-get-dataset-items",
    )
    .json(&slow)
    .send()
    .await
    .unwrap();
    let (s, code, body) = outcome(r).await;
    assert_eq!(
        (s, code.as_deref()),
        (408, Some("RUN_TIMEOUT_EXCEEDED")),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "run-timeout-exceeded");
    let (_, last) = get_json(&t, "/v2/acts/apify~website-content-crawler/runs/last").await;
    assert_eq!(last["data"]["status"], "RUNNING", "{last}");
}

/// `webhooks` as Apify's clients send it: base64 of the JSON array.
fn webhooks_param(hooks: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hooks.to_string())
}

/// Apify's ad-hoc webhooks: each is told of the events it asked for, with Apify's
/// default payload or its own template, headers from its template, through the
/// outbox (a failing one with `doNotRetry` is tried once); bad ones are refused
/// at the start with the field that is wrong.
#[tokio::test]
async fn ad_hoc_webhooks_hear_of_the_runs_start_and_end() {
    use crate::webhooks::{loopback_allowed, receiver, wait_for};
    let (plain, plain_got) = receiver(|_| 200).await;
    let (custom, custom_got) = receiver(|_| 200).await;
    let (failing, failing_got) = receiver(|_| 500).await;
    let (never, never_got) = receiver(|_| 200).await;
    let t = spawn_with(loopback_allowed).await;
    let site = site().await;
    let hooks = json!([
        {"eventTypes": ["ACTOR.RUN.CREATED", "ACTOR.RUN.SUCCEEDED"],
         "requestUrl": format!("http://127.0.0.1:{plain}/hook"),
         "headersTemplate": "{\"X-Run\": {{resource.id}}}"},
        {"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": format!("http://127.0.0.1:{custom}/hook"),
         "payloadTemplate": "{\"ds\": {{resource.defaultDatasetId}}, \"msg\": \"run {{resource.id}} done\"}",
         "shouldInterpolateStrings": true},
        {"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": format!("http://127.0.0.1:{failing}/hook"),
         "doNotRetry": true},
        {"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": format!("http://127.0.0.1:{failing}/hook")},
        {"eventTypes": ["ACTOR.RUN.FAILED", "ACTOR.RUN.ABORTED"], "requestUrl": format!("http://127.0.0.1:{never}/hook")},
        // A template that repeats the resource past the payload bound is not sent.
        {"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": format!("http://127.0.0.1:{never}/hook"),
         "payloadTemplate": format!("[{}null]", "{{resource}},".repeat(1_200))},
    ]);
    let path = format!(
        "/v2/acts/apify~website-content-crawler/runs?waitForFinish=60&webhooks={}",
        webhooks_param(&hooks)
    );
    let r = apify(&t, Method::POST, &path)
        .json(&json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlPages": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let run: Value = r.json().await.unwrap();
    let run = &run["data"];
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let id = run["id"].as_str().unwrap();
    wait_for("the plain webhook's two events", || {
        plain_got.lock().unwrap().len() >= 2
    })
    .await;
    wait_for("the custom webhook", || {
        !custom_got.lock().unwrap().is_empty()
    })
    .await;
    wait_for("the failing webhooks' attempts", || {
        failing_got.lock().unwrap().len() >= 2
    })
    .await;

    let got = plain_got.lock().unwrap().clone();
    let events: Vec<Value> = got.iter().map(|r| r.json()["eventType"].clone()).collect();
    assert_eq!(events, ["ACTOR.RUN.CREATED", "ACTOR.RUN.SUCCEEDED"]);
    let ended = got[1].json();
    assert_eq!(ended["userId"], run["userId"]);
    assert_eq!(ended["eventData"]["actorRunId"], id);
    assert_eq!(ended["eventData"]["actorId"], "aYG0l9s7dbB7j3gbS");
    assert_eq!(ended["resource"]["status"], "SUCCEEDED", "{ended}");
    assert_eq!(
        ended["resource"]["defaultDatasetId"],
        run["defaultDatasetId"]
    );
    assert_eq!(ended["resource"]["stats"]["itemCount"], 2, "{ended}");
    assert!(
        ended["resource"].get("input").is_none(),
        "no input in the resource"
    );
    assert_eq!(got[0].json()["resource"]["status"], "READY");
    for r in &got {
        assert_eq!(r.header("x-run"), id, "the headers template");
        assert_eq!(r.header("content-type"), "application/json");
        assert!(r.header("x-apify-webhook-dispatch-id").starts_with(id));
    }
    let custom_body = custom_got.lock().unwrap()[0].json();
    assert_eq!(
        custom_body,
        json!({"ds": run["defaultDatasetId"], "msg": format!("run {id} done")})
    );

    // Past the retry wait, the failing one that may be retried is sent again; the
    // one with doNotRetry is not. The one for other events is never called.
    t.clock.advance_ms(3_600_000);
    wait_for("the retry", || failing_got.lock().unwrap().len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tries = |webhook: &str| {
        let got = failing_got.lock().unwrap();
        got.iter()
            .filter(|r| r.header("x-apify-webhook") == webhook)
            .count()
    };
    assert_eq!(
        (tries(&format!("{id}.2")), tries(&format!("{id}.3"))),
        (1, 2)
    );
    assert!(never_got.lock().unwrap().is_empty());
    let deliveries = t.app.record().run_deliveries(id).await.unwrap();
    assert!(
        deliveries.contains(&("ACTOR.RUN.SUCCEEDED".to_owned(), "failed".to_owned(), 0)),
        "the oversized payload failed unsent: {deliveries:?}"
    );

    // An aborted run tells those that asked for it.
    let slow_hooks = json!([{"eventTypes": ["ACTOR.RUN.ABORTED"], "requestUrl": format!("http://127.0.0.1:{never}/hook")}]);
    let path = format!(
        "/v2/acts/apify~website-content-crawler/runs?webhooks={}",
        webhooks_param(&slow_hooks)
    );
    let slow: Value = apify(&t, Method::POST, &path)
        .json(&json!({"startUrls": [format!("http://{site}/slow/0")], "maxCrawlDepth": 100}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slow = slow["data"]["id"].as_str().unwrap().to_owned();
    apify(&t, Method::POST, &format!("/v2/actor-runs/{slow}/abort"))
        .send()
        .await
        .unwrap();
    wait_for("the abort's webhook", || {
        !never_got.lock().unwrap().is_empty()
    })
    .await;
    let aborted = never_got.lock().unwrap()[0].json();
    assert_eq!(aborted["eventType"], "ACTOR.RUN.ABORTED");
    assert_eq!(aborted["resource"]["id"], slow.as_str());
    assert_eq!(aborted["resource"]["status"], "ABORTED");

    // Bad webhooks: 400 naming the field, and no run starts.
    let start = |param: String| {
        apify(
            &t,
            Method::POST,
            &format!("/v2/acts/apify~website-content-crawler/runs?webhooks={param}"),
        )
        .json(&json!({"startUrls": [format!("http://{site}/docs/")]}))
        .send()
    };
    let (_, before) = get_json(&t, "/v2/actor-runs").await;
    for (param, field) in [
        ("bm90IGpzb24".to_owned(), "webhooks"),
        (webhooks_param(&json!({"eventTypes": []})), "webhooks"),
        (
            webhooks_param(
                &json!([{"eventTypes": ["ACTOR.RUN.DONE"], "requestUrl": "https://example.com/"}]),
            ),
            "webhooks[0].eventTypes",
        ),
        (
            webhooks_param(
                &json!([{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "file:///etc/passwd"}]),
            ),
            "webhooks[0].requestUrl",
        ),
        (
            webhooks_param(
                &json!([{"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://example.com/", "payloadTemplate": "{{resource"}]),
            ),
            "webhooks[0].payloadTemplate",
        ),
    ] {
        let (s, code, body) = outcome(start(param).await.unwrap()).await;
        assert_eq!(
            (s, code.as_deref()),
            (400, Some("VALIDATION_INVALID_BODY")),
            "{body}"
        );
        assert!(
            body["error"]["details"].get(field).is_some(),
            "{field}: {body}"
        );
    }
    let (_, after) = get_json(&t, "/v2/actor-runs").await;
    assert_eq!(before["data"]["total"], after["data"]["total"]);
}

/// A run webhook to a private address is refused at the start when the
/// operator does not allow private networks (the SSRF guard's literal check).
#[tokio::test]
async fn a_run_webhook_to_a_private_address_is_refused() {
    let t = spawn_with(|s| s.rate_limit.requests = 1_000_000).await;
    let hooks = json!([{"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "http://169.254.169.254/latest/meta-data/"}]);
    let r = apify(
        &t,
        Method::POST,
        &format!(
            "/v2/acts/apify~website-content-crawler/runs?webhooks={}",
            webhooks_param(&hooks)
        ),
    )
    .json(&json!({"startUrls": ["https://example.com/"]}))
    .send()
    .await
    .unwrap();
    let (s, code, body) = outcome(r).await;
    assert_eq!(
        (s, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY")),
        "{body}"
    );
    assert!(
        body["error"]["details"]
            .get("webhooks[0].requestUrl")
            .is_some(),
        "{body}"
    );
}

/// Run datasets are bounded per workspace by plan: no run starts once they are at
/// the limit (422), a run that would write past it stops and fails saying why, and
/// deleting ended runs makes room (a run still going cannot be deleted).
#[tokio::test]
async fn dataset_storage_is_bounded_per_workspace_and_deleting_runs_makes_room() {
    let t = spawn_with(|s| {
        s.crawler.allow_private_networks = true;
        s.rate_limit.requests = 1_000_000;
        s.crawler.dataset_storage_limits.standard = 10_000_000;
        s.crawler.dataset_storage_limits.pro = 1_500;
    })
    .await;
    let site = site().await;
    let docs = json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlDepth": 3});
    let first = start_run(&t, docs.clone()).await;
    let first = first["data"]["id"].as_str().unwrap().to_owned();
    let (_, done) = get_json(&t, &format!("/v2/actor-runs/{first}?waitForFinish=60")).await;
    assert_eq!(
        (&done["data"]["status"], &done["data"]["stats"]["itemCount"]),
        (&json!("SUCCEEDED"), &json!(3)),
        "{done}"
    );

    // On a plan whose limit the datasets already pass, no run starts.
    let accounts = t.app.accounts();
    accounts
        .set_plan(&t.workspace_id, agentbase_core::Plan::Pro)
        .await
        .unwrap();
    let start = || {
        apify(
            &t,
            Method::POST,
            "/v2/acts/apify~website-content-crawler/runs",
        )
        .json(&docs)
        .send()
    };
    let (s, code, body) = outcome(start().await.unwrap()).await;
    assert_eq!(
        (s, code.as_deref()),
        (422, Some("STORAGE_LIMIT_EXCEEDED")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DELETE /v2/actor-runs"),
        "{body}"
    );

    // A run still going cannot be deleted; an ended one goes with its storages.
    accounts
        .set_plan(&t.workspace_id, agentbase_core::Plan::Standard)
        .await
        .unwrap();
    let slow = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/slow/0")], "maxCrawlDepth": 100}),
    )
    .await;
    let slow = slow["data"]["id"].as_str().unwrap().to_owned();
    let r = apify(&t, Method::DELETE, &format!("/v2/actor-runs/{slow}"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 409);
    apify(&t, Method::POST, &format!("/v2/actor-runs/{slow}/abort"))
        .send()
        .await
        .unwrap();
    let (_, ended) = get_json(&t, &format!("/v2/actor-runs/{slow}?waitForFinish=30")).await;
    assert_eq!(ended["data"]["status"], "ABORTED");
    for id in [&first, &slow] {
        let r = apify(&t, Method::DELETE, &format!("/v2/actor-runs/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let dataset = done["data"]["defaultDatasetId"].as_str().unwrap();
    for path in [
        format!("/v2/actor-runs/{first}"),
        format!("/v2/datasets/{dataset}/items"),
        format!("/v2/actor-runs/{first}/log"),
        format!("/v2/actor-runs/{first}/key-value-store/records/INPUT"),
    ] {
        let r = apify(&t, Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path} is gone");
    }
    let r = apify(&t, Method::DELETE, &format!("/v2/actor-runs/{first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 404);

    // With room again, a run starts; one that would write past the limit stops
    // and fails, saying why.
    accounts
        .set_plan(&t.workspace_id, agentbase_core::Plan::Pro)
        .await
        .unwrap();
    let bounded = start_run(&t, docs).await;
    let bounded = bounded["data"]["id"].as_str().unwrap().to_owned();
    let (_, failed) = get_json(&t, &format!("/v2/actor-runs/{bounded}?waitForFinish=60")).await;
    let run = &failed["data"];
    assert_eq!(run["status"], "FAILED", "{failed}");
    assert!(
        run["statusMessage"]
            .as_str()
            .unwrap()
            .contains("limit of 1500 bytes"),
        "{failed}"
    );
    assert!(run["stats"]["itemCount"].as_i64().unwrap() < 3, "{failed}");
    let (_, items) = get_json(&t, &format!("/v2/actor-runs/{bounded}/dataset/items")).await;
    let written: usize = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.to_string().len())
        .sum();
    assert!(written <= 1_500, "{written} bytes kept");
}

/// A request waiting on a run (`waitForFinish`) is held open and polls the store:
/// a workspace holds at most 32 at once, the next gets 429 (which Apify's clients
/// retry), and the places come back as the waits end.
#[tokio::test]
async fn a_workspace_waits_on_a_bounded_number_of_runs_at_once() {
    let t = crawler_app().await;
    let site = site().await;
    let slow = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/slow/0")], "maxCrawlDepth": 100}),
    )
    .await;
    let slow = slow["data"]["id"].as_str().unwrap().to_owned();
    let wait = format!("/v2/actor-runs/{slow}?waitForFinish=3");
    let held: Vec<_> = (0..agentbase_service::crawl_runs::WAITERS_PER_WORKSPACE)
        .map(|_| tokio::spawn(apify(&t, Method::GET, &wait).send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, code, body) = outcome(apify(&t, Method::GET, &wait).send().await.unwrap()).await;
    assert_eq!(
        (s, code.as_deref()),
        (429, Some("RATE_LIMIT_TOO_MANY_REQUESTS")),
        "{body}"
    );
    // Without a wait, the run is answered as ever; a synchronous run, which would
    // wait, is not started.
    let (s, _) = get_json(&t, &format!("/v2/actor-runs/{slow}")).await;
    assert_eq!(s, 200);
    let r = apify(
        &t,
        Method::POST,
        "/v2/acts/apify~website-content-crawler/run-sync",
    )
    .json(&json!({"startUrls": [format!("http://{site}/docs/")]}))
    .send()
    .await
    .unwrap();
    assert_eq!(outcome(r).await.0, 429);
    let (_, runs) = get_json(&t, "/v2/actor-runs").await;
    assert_eq!(runs["data"]["total"], 1, "no run started: {runs}");
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), 200);
    }
    let (s, _) = get_json(&t, &wait).await;
    assert_eq!(s, 200, "the places came back");
}

/// Apify's `dataset.delete()` and `key_value_store.delete()`: the storage reads
/// as gone while its run stays (a running run's dataset is 409); and ended runs
/// expire with their storages after `crawler.run_retention_days`.
#[tokio::test]
async fn storages_are_deleted_alone_and_ended_runs_expire() {
    let t = spawn_with(|s| {
        s.crawler.allow_private_networks = true;
        s.rate_limit.requests = 1_000_000;
        s.crawler.run_retention_days.standard = 2;
    })
    .await;
    let site = site().await;
    let docs = json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlDepth": 3});
    let first = start_run(&t, docs).await;
    let first = first["data"]["id"].as_str().unwrap().to_owned();
    let (_, done) = get_json(&t, &format!("/v2/actor-runs/{first}?waitForFinish=60")).await;
    assert_eq!(done["data"]["status"], "SUCCEEDED", "{done}");
    let dataset = done["data"]["defaultDatasetId"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = done["data"]["defaultKeyValueStoreId"]
        .as_str()
        .unwrap()
        .to_owned();

    // A run still going keeps its dataset; its key-value store may go.
    // (Lists are by start, and the test's clock stands still.)
    t.clock.advance_ms(1_000);
    let slow = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/slow/0")], "maxCrawlDepth": 100}),
    )
    .await;
    let slow_dataset = slow["data"]["defaultDatasetId"]
        .as_str()
        .unwrap()
        .to_owned();
    let slow = slow["data"]["id"].as_str().unwrap().to_owned();
    let (status, _, body) =
        send(&t, Method::DELETE, format!("/v2/actor-runs/{slow}/dataset")).await;
    assert_eq!(status, 409, "{body}");
    let (status, ..) = send(
        &t,
        Method::DELETE,
        format!("/v2/actor-runs/{slow}/key-value-store"),
    )
    .await;
    assert_eq!(status, 204);
    send(&t, Method::POST, format!("/v2/actor-runs/{slow}/abort")).await;
    let (_, ended) = get_json(&t, &format!("/v2/actor-runs/{slow}?waitForFinish=30")).await;
    assert_eq!(ended["data"]["status"], "ABORTED");

    // Apify lists named storages unless asked for unnamed ones, as a run's are.
    let listed = |path: &'static str| {
        let t = &t;
        async move {
            let (_, page) = get_json(t, path).await;
            let items = page["data"]["items"].as_array().unwrap().clone();
            (items.iter())
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(listed("/v2/datasets").await.is_empty());
    assert_eq!(
        listed("/v2/datasets?unnamed=1").await,
        [dataset.clone(), slow_dataset.clone()]
    );
    assert_eq!(
        listed("/v2/key-value-stores?unnamed=1&desc=1").await,
        std::slice::from_ref(&store),
        "the slow run's went"
    );

    // The dataset goes alone: gone by either name, the run and its log stay.
    let (status, ..) = send(&t, Method::DELETE, format!("/v2/datasets/{dataset}")).await;
    assert_eq!(status, 204);
    for path in [
        format!("/v2/datasets/{dataset}"),
        format!("/v2/datasets/{dataset}/items"),
        format!("/v2/actor-runs/{first}/dataset"),
        format!("/v2/actor-runs/{first}/dataset/items?format=csv"),
    ] {
        let (status, code, _) = send(&t, Method::GET, path.clone()).await;
        assert_eq!(
            (status, code.as_deref()),
            (404, Some("RESOURCE_NOT_FOUND")),
            "{path}"
        );
    }
    let (status, ..) = send(&t, Method::DELETE, format!("/v2/datasets/{dataset}")).await;
    assert_eq!(status, 404, "deleted already");
    let (status, run) = get_json(&t, &format!("/v2/actor-runs/{first}")).await;
    assert_eq!(
        (status, &run["data"]["defaultDatasetId"]),
        (200, &json!(dataset))
    );
    let r = apify(&t, Method::GET, &format!("/v2/actor-runs/{first}/log"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    assert_eq!(listed("/v2/datasets?unnamed=1").await, [slow_dataset]);

    // So does the key-value store, with its INPUT record; writes to it are 404.
    let (status, ..) = send(&t, Method::DELETE, format!("/v2/key-value-stores/{store}")).await;
    assert_eq!(status, 204);
    for path in [
        format!("/v2/key-value-stores/{store}"),
        format!("/v2/key-value-stores/{store}/keys"),
        format!("/v2/key-value-stores/{store}/records/INPUT"),
        format!("/v2/actor-runs/{first}/key-value-store"),
        format!("/v2/actor-runs/{first}/key-value-store/records/INPUT"),
    ] {
        let (status, ..) = send(&t, Method::GET, path.clone()).await;
        assert_eq!(status, 404, "{path}");
    }
    let put = apify(
        &t,
        Method::PUT,
        &format!("/v2/key-value-stores/{store}/records/X"),
    )
    .body("{}")
    .send()
    .await
    .unwrap();
    assert_eq!(outcome(put).await.0, 404);

    // Retention: nothing has ended two days ago yet; past that, both runs go with
    // what is left of their storages.
    assert_eq!(t.app.apply_retention().await.unwrap().runs, 0);
    t.clock.advance_ms(2 * 86_400_000 + 1_000);
    assert_eq!(t.app.apply_retention().await.unwrap().runs, 2);
    for id in [&first, &slow] {
        let (status, _) = get_json(&t, &format!("/v2/actor-runs/{id}")).await;
        assert_eq!(status, 404, "{id} expired");
    }
    let (_, list) = get_json(&t, "/v2/actor-runs").await;
    assert_eq!(list["data"]["total"], 0, "{list}");
}

/// A request of the Apify API and its outcome (status, error code, body).
async fn send(t: &TestApp, method: Method, path: String) -> (u16, Option<String>, Value) {
    outcome(apify(t, method, &path).send().await.unwrap()).await
}

/// Apify's persistent webhooks (`client.webhooks().create(…)`): told of every run
/// of the crawler, or of one run, through the same outbox; their dispatches are
/// listed with the ad-hoc ones'; `test` sends at once; bad definitions get 400
/// naming the field.
#[tokio::test]
async fn persistent_webhooks_hear_of_every_run_and_list_their_dispatches() {
    use crate::webhooks::{loopback_allowed, receiver, wait_for};
    let (every, every_got) = receiver(|_| 200).await;
    let (one, one_got) = receiver(|_| 200).await;
    let t = spawn_with(loopback_allowed).await;
    let site = site().await;
    let create = |body: Value| apify(&t, Method::POST, "/v2/webhooks").json(&body).send();
    let (status, _, created) = outcome(
        create(json!({
            "eventTypes": ["ACTOR.RUN.SUCCEEDED"],
            "condition": {"actorId": "aYG0l9s7dbB7j3gbS"},
            "requestUrl": format!("http://127.0.0.1:{every}/hook"),
            "payloadTemplate": "{\"run\": {{resource.id}}, \"items\": {{resource.stats.itemCount}}}",
            "description": "every run",
            "idempotencyKey": "every-run",
        }))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let hook = &created["data"];
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            &hook["condition"],
            &hook["doNotRetry"],
            &hook["description"]
        ),
        (
            &json!({"actorId": "aYG0l9s7dbB7j3gbS"}),
            &json!(false),
            &json!("every run")
        )
    );
    // The same idempotency key answers with the same webhook.
    let again = create(
        json!({"eventTypes": ["ACTOR.RUN.FAILED"], "condition": {"actorId": "apify/website-content-crawler"},
        "requestUrl": "https://example.com/", "idempotencyKey": "every-run"}),
    );
    let (status, _, again) = outcome(again.await.unwrap()).await;
    assert_eq!((status, &again["data"]["id"]), (201, &json!(hook_id)));

    // Two runs: the actor's webhook hears of both; one run's webhook only of it.
    let docs = json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlPages": 2});
    let first = start_run(&t, docs.clone()).await;
    let first = first["data"]["id"].as_str().unwrap().to_owned();
    let only = json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "condition": {"actorRunId": first},
        "requestUrl": format!("http://127.0.0.1:{one}/hook"), "isAdHoc": true});
    assert_eq!(outcome(create(only).await.unwrap()).await.0, 201);
    get_json(&t, &format!("/v2/actor-runs/{first}?waitForFinish=60")).await;
    // Dispatches are listed by when they were made (the test's clock stands still).
    t.clock.advance_ms(1_000);
    let second = start_run(&t, docs).await;
    let second = second["data"]["id"].as_str().unwrap().to_owned();
    get_json(&t, &format!("/v2/actor-runs/{second}?waitForFinish=60")).await;
    wait_for("both runs' dispatches", || {
        every_got.lock().unwrap().len() >= 2
    })
    .await;
    wait_for("the run's own", || !one_got.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = every_got.lock().unwrap().clone();
    let runs: Vec<Value> = got.iter().map(|r| r.json()["run"].clone()).collect();
    assert_eq!(runs, [json!(first), json!(second)]);
    assert_eq!(got[0].json()["items"], 2);
    assert_eq!(got[0].header("x-apify-webhook"), hook_id);
    assert_eq!(one_got.lock().unwrap().len(), 1, "only the run it names");

    // Dispatches: the webhook's, and the workspace's; each by id.
    let (_, listed) = get_json(&t, &format!("/v2/webhooks/{hook_id}/dispatches")).await;
    let items = listed["data"]["items"].as_array().unwrap();
    assert_eq!(listed["data"]["total"], 2, "{listed}");
    assert_eq!(
        (
            &items[0]["status"],
            &items[0]["eventType"],
            &items[0]["webhookId"]
        ),
        (
            &json!("SUCCEEDED"),
            &json!("ACTOR.RUN.SUCCEEDED"),
            &json!(hook_id)
        )
    );
    assert_eq!(items[0]["eventData"]["actorRunId"], json!(first));
    assert_eq!(items[0]["calls"][0]["responseStatus"], 200);
    let (_, all) = get_json(&t, "/v2/webhook-dispatches?desc=1&limit=2").await;
    assert_eq!(
        (&all["data"]["total"], &all["data"]["count"]),
        (&json!(3), &json!(2)),
        "{all}"
    );
    let dispatch_id = items[1]["id"].as_str().unwrap();
    let (status, one_dispatch) =
        get_json(&t, &format!("/v2/webhook-dispatches/{dispatch_id}")).await;
    assert_eq!(
        (status, &one_dispatch["data"]["eventData"]["actorRunId"]),
        (200, &json!(second))
    );

    // Lists, update, test, delete.
    let (_, list) = get_json(&t, "/v2/webhooks").await;
    assert_eq!(list["data"]["total"], 2);
    let (_, of_actor) = get_json(&t, "/v2/acts/apify~website-content-crawler/webhooks").await;
    assert_eq!(
        of_actor["data"]["items"][0]["id"],
        json!(hook_id),
        "{of_actor}"
    );
    assert_eq!(
        of_actor["data"]["total"], 1,
        "the run's own is not the actor's"
    );
    let put = apify(&t, Method::PUT, &format!("/v2/webhooks/{hook_id}"))
        .json(
            // An empty condition (Apify's Python client sends one) keeps it.
            &json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED", "ACTOR.RUN.FAILED"], "doNotRetry": true,
                "condition": {}}),
        )
        .send()
        .await
        .unwrap();
    let (status, _, updated) = outcome(put).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["eventTypes"].as_array().unwrap().len(), 2);
    assert_eq!(updated["data"]["description"], "every run", "kept");
    let test = apify(&t, Method::POST, &format!("/v2/webhooks/{hook_id}/test"));
    let (status, _, tested) = outcome(test.send().await.unwrap()).await;
    assert_eq!(
        (status, &tested["data"]["status"]),
        (201, &json!("SUCCEEDED")),
        "{tested}"
    );
    assert_eq!(tested["data"]["eventType"], "TEST");
    assert_eq!(every_got.lock().unwrap().len(), 3, "the test was sent");
    let r = apify(&t, Method::DELETE, &format!("/v2/webhooks/{hook_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, _) = get_json(&t, &format!("/v2/webhooks/{hook_id}")).await;
    assert_eq!(status, 404);

    // Bad definitions: 400 naming the field.
    for (body, field) in [
        (
            json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "https://example.com/"}),
            "condition",
        ),
        (
            json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "https://example.com/",
            "condition": {"actorTaskId": "t1"}}),
            "condition.actorTaskId",
        ),
        (
            json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "https://example.com/",
            "condition": {"actorId": "someone~else"}}),
            "condition.actorId",
        ),
        (
            json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "https://example.com/",
            "condition": {"actorRunId": "nope"}}),
            "condition.actorRunId",
        ),
        (
            json!({"eventTypes": ["BUILD"], "requestUrl": "https://example.com/",
            "condition": {"actorId": "aYG0l9s7dbB7j3gbS"}}),
            "eventTypes",
        ),
        (
            json!({"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "gopher://x",
            "condition": {"actorId": "aYG0l9s7dbB7j3gbS"}, "doNotRetry": "yes"}),
            "doNotRetry",
        ),
        (
            json!({"eventTypes": ["ACTOR.RUN.FAILED"], "requestUrl": "https://example.com/",
            "condition": {"actorId": "aYG0l9s7dbB7j3gbS"}, "description": "d".repeat(1_001)}),
            "description",
        ),
    ] {
        let (s, code, body) = outcome(create(body).await.unwrap()).await;
        assert_eq!(
            (s, code.as_deref()),
            (400, Some("VALIDATION_INVALID_BODY")),
            "{body}"
        );
        assert!(
            body["error"]["details"].get(field).is_some(),
            "{field}: {body}"
        );
    }
    let (s, _, _) = outcome(
        apify(&t, Method::POST, "/v2/webhooks")
            .body("[1]")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
}

/// A dataset read holds its page in memory until its client has read it: a
/// workspace has at most 8 reads in flight, the next gets 429, and a place comes
/// back when its client goes.
#[tokio::test]
async fn a_workspace_reads_a_bounded_number_of_datasets_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = crawler_app().await;
    let site = site().await;
    let run = start_run(
        &t,
        json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlPages": 1}),
    )
    .await;
    let id = run["data"]["id"].as_str().unwrap().to_owned();
    let (_, done) = get_json(&t, &format!("/v2/actor-runs/{id}?waitForFinish=60")).await;
    let dataset = done["data"]["defaultDatasetId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Ten items of 1.5 MB: a page (under the 16 MB a read returns) more than
    // loopback's socket buffers take at once.
    let big = json!({"url": "x", "text": "x".repeat(1_500_000)}).to_string();
    t.app
        .record()
        .append_items(&dataset, 1, &vec![big; 10])
        .await
        .unwrap();

    // Eight clients ask for the items and stop reading after the first bytes.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut c = tokio::net::TcpStream::connect(t.addr).await.unwrap();
        let request = format!(
            "GET /v2/datasets/{dataset}/items?token={} HTTP/1.1\r\nHost: x\r\n\r\n",
            t.key
        );
        c.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        c.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        slow.push(c);
    }
    let read = || {
        apify(
            &t,
            Method::GET,
            &format!("/v2/datasets/{dataset}/items?limit=1"),
        )
        .send()
    };
    let (status, code, body) = outcome(read().await.unwrap()).await;
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("RATE_LIMIT_TOO_MANY_REQUESTS")),
        "{body}"
    );
    // A log read whole (it holds up to the run's storage) counts among the reads.
    let log = apify(&t, Method::GET, &format!("/v2/actor-runs/{id}/log"));
    let (status, code, _) = outcome(log.send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("RATE_LIMIT_TOO_MANY_REQUESTS"))
    );
    // Another workspace's requests go on meanwhile: the bound is per workspace.
    let (_, other_key) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let other = reqwest::Client::new()
        .get(t.url("/v2/actor-runs"))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    // A client that goes gives its place back.
    drop(slow.pop());
    let mut status = 0;
    for _ in 0..50 {
        status = read().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "a place came back");
}

/// `POST /v2/webhooks/{id}/test` holds the request and an outgoing one until the
/// target answers: a workspace has at most 2 going, the next gets 429.
#[tokio::test]
async fn a_workspace_tests_a_bounded_number_of_webhooks_at_once() {
    use crate::webhooks::loopback_allowed;
    // A target that takes connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            held.push(c);
        }
    });
    let t = spawn_with(|s| {
        loopback_allowed(s);
        s.webhooks.timeout_secs = 2;
    })
    .await;
    let created = apify(&t, Method::POST, "/v2/webhooks")
        .json(&json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "condition": {"actorId": "aYG0l9s7dbB7j3gbS"},
            "requestUrl": format!("http://127.0.0.1:{port}/hook")}))
        .send()
        .await
        .unwrap();
    let (status, _, created) = outcome(created).await;
    assert_eq!(status, 201, "{created}");
    let test_path = format!(
        "/v2/webhooks/{}/test",
        created["data"]["id"].as_str().unwrap()
    );
    let going: Vec<_> = (0..2)
        .map(|_| tokio::spawn(apify(&t, Method::POST, &test_path).send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, code, body) =
        outcome(apify(&t, Method::POST, &test_path).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("RATE_LIMIT_TOO_MANY_REQUESTS")),
        "{body}"
    );
    for test in going {
        let (status, _, body) = outcome(test.await.unwrap().unwrap()).await;
        assert_eq!(
            (status, &body["data"]["status"]),
            (201, &json!("FAILED")),
            "{body}"
        );
    }
    let again = apify(&t, Method::POST, &test_path).send().await.unwrap();
    assert_eq!(again.status(), 201, "the places came back");
}

/// A workspace has at most `webhooks.max_pending_per_workspace` run deliveries
/// waiting: past it, an event's deliveries are recorded failed, unsent.
#[tokio::test]
async fn a_workspace_has_a_bounded_number_of_deliveries_waiting() {
    let t = spawn_with(|s| {
        crate::webhooks::loopback_allowed(s);
        // No delivery pass runs during the test: what is written stays pending.
        s.webhooks.poll_interval_ms = 3_600_000;
        s.webhooks.max_pending_per_workspace = 2;
    })
    .await;
    let site = site().await;
    let hook = |n: u16| json!({"eventTypes": ["ACTOR.RUN.CREATED"], "requestUrl": format!("http://127.0.0.1:{n}/hook")});
    let path = format!(
        "/v2/acts/apify~website-content-crawler/runs?webhooks={}",
        webhooks_param(&json!([hook(9), hook(10), hook(11)]))
    );
    let run: Value = apify(&t, Method::POST, &path)
        .json(&json!({"startUrls": [format!("http://{site}/docs/")], "maxCrawlPages": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = run["data"]["id"].as_str().unwrap();
    let mut states: Vec<String> = (t.app.record().run_deliveries(id).await.unwrap())
        .into_iter()
        .map(|(_, state, _)| state)
        .collect();
    states.sort();
    assert_eq!(states, ["failed", "pending", "pending"]);
    let (_, dispatches) = get_json(&t, "/v2/webhook-dispatches").await;
    let failed: Vec<&Value> = (dispatches["data"]["items"].as_array().unwrap().iter())
        .filter(|d| d["status"] == "FAILED")
        .collect();
    assert!(
        failed[0]["calls"][0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("2 webhook deliveries waiting"),
        "{dispatches}"
    );
}
