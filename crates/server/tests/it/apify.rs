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

async fn crawler_app() -> TestApp {
    spawn_with(|s| {
        s.crawler.allow_private_networks = true;
        s.rate_limit.requests = 1_000_000;
    })
    .await
}

/// A request authenticated Apify's way, with `?token=`.
fn apify(t: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    let sep = if path.contains('?') { '&' } else { '?' };
    reqwest::Client::new().request(method, t.url(&format!("{path}{sep}token={}", t.key)))
}

/// Starts a run with `input`; the run object Apify answers (`{"data": …}`).
async fn start_run(t: &TestApp, input: Value) -> Value {
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
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("url,crawl/"), "{header}");
    assert!(header.contains("crawl/loadedUrl") && header.contains("crawl/httpStatusCode"));
    assert_eq!(csv.lines().count(), 4);

    // Bearer works too; a bad format is refused.
    let r = t
        .raw(
            Method::GET,
            &format!("/v2/datasets/{dataset}/items?format=xml"),
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
    let t = crawler_app().await;
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
    let (status, code, _) = outcome(
        start(json!({"startUrls": [format!("http://{site}/docs/")]}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("CRAWL_RUNS_LIMIT_REACHED"))
    );
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
}
