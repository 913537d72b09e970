//! The crawl engine against a local axum site on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentbase_crawler::{
    CancellationToken, CrawlInput, CrawlSpec, CrawlSummary, CrawlerSettings, DatasetItem, Event,
    Limits, PathRules, StartUrls, StopReason, crawl,
};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Default)]
struct Site {
    hits: Mutex<HashMap<String, Vec<Instant>>>,
    echo: Mutex<Option<HeaderMap>>,
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<html lang=\"en\"><head><title>{title}</title></head><body><nav><a href=\"/site/\">Home</a></nav><article><h2>{title}</h2><p>{body} This paragraph is long enough to count as readable article text, with commas, words, and more words to pass thresholds.</p><p>Copyright 2026 Example Docs, all rights reserved.</p></article></body></html>"
    )
}

fn html(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], s).into_response()
}

async fn handler(State(site): State<Arc<Site>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let n = {
        let mut hits = site.hits.lock().unwrap();
        let v = hits.entry(path.clone()).or_default();
        v.push(Instant::now());
        v.len()
    };
    match path.as_str() {
        "/robots.txt" => "User-agent: *\nDisallow: /site/private\nCrawl-delay: 0.3\nSitemap: /sitemap-extra.xml\n".into_response(),
        "/sitemap.xml" => ([(header::CONTENT_TYPE, "application/xml")], "<?xml version=\"1.0\"?><urlset><url><loc>http://HOST/site/from-sitemap</loc></url><url><loc>http://HOST/elsewhere/x</loc></url></urlset>".replace("HOST", req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(""))).into_response(),
        "/llms.txt" => "# Site\n\n- [From llms](/site/from-llms): a page\n".into_response(),
        "/site/" => html(page("Index", "<a href=\"/site/a\">A</a> <a href=\"/site/b\">B</a> <a href=\"/other/x\">Other</a> <a href=\"/site/a#part\">A again</a> <a href=\"/site/private\">P</a> <a href=\"https://example.invalid/\">Ext</a>")),
        "/site/a" => html(page("Page A", "<a href=\"/site/c\">C</a>").replace("<head>", "<head><link rel=\"canonical\" href=\"/site/a\">")),
        "/site/b" => html(page("Page B", "Same as A.").replace("<head>", "<head><link rel=\"canonical\" href=\"/site/a\">")),
        "/site/c" => html(page("Page C", "<a href=\"/site/d\">D</a>")),
        "/site/d" => html(page("Page D", "Deep.")),
        "/site/private" => html(page("Private", "Secret.")),
        "/site/from-sitemap" => html(page("From sitemap", "Listed.")),
        "/site/from-llms" => html(page("From llms", "Listed.")),
        "/site/flaky" => {
            if n == 1 {
                (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "busy").into_response()
            } else {
                html(page("Flaky", "Recovered."))
            }
        }
        "/site/always-500" => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        "/site/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            html(page("Slow", "Late."))
        }
        "/site/big" => html(format!("<html><body><p>{}</p></body></html>", "x".repeat(300_000))),
        "/site/redirect" => (StatusCode::FOUND, [(header::LOCATION, "/site/moved")]).into_response(),
        "/site/moved" => html(page("Moved", "Arrived.")),
        "/site/to-other-host" => {
            // The same server under another name: a different host to the crawler.
            let port = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).and_then(|h| h.rsplit(':').next()).unwrap_or("80").to_string();
            (StatusCode::FOUND, [(header::LOCATION, format!("http://localhost:{port}/site/echo"))]).into_response()
        }
        "/site/to-echo" => (StatusCode::FOUND, [(header::LOCATION, "/site/echo")]).into_response(),
        "/site/to-loopback" => {
            let port = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).and_then(|h| h.rsplit(':').next()).unwrap_or("80").to_string();
            (StatusCode::FOUND, [(header::LOCATION, format!("http://127.0.0.1:{port}/site/a"))]).into_response()
        }
        "/site/doc.pdf" => ([(header::CONTENT_TYPE, "application/pdf")], b"%PDF-1.4\n%fake\n".to_vec()).into_response(),
        "/site/echo" => {
            *site.echo.lock().unwrap() = Some(req.headers().clone());
            html(page("Echo", "Headers noted."))
        }
        p if p.starts_with("/endless/") => {
            // Ten new links per page, forever: a generated site.
            let links: String = (0..10).map(|i| format!("<a href=\"{p}/{i}\">{i}</a> ")).collect();
            html(page("Endless", &links))
        }
        _ => (StatusCode::NOT_FOUND, "no").into_response(),
    }
}

async fn serve() -> (String, Arc<Site>) {
    let site = Arc::new(Site::default());
    let app = axum::Router::new()
        .fallback(handler)
        .with_state(site.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), site)
}

fn settings() -> CrawlerSettings {
    CrawlerSettings {
        allow_private_networks: true,
        retry_base_delay: Duration::from_millis(50),
        max_page_bytes: 100_000,
        ..CrawlerSettings::default()
    }
}

struct Run {
    items: Vec<DatasetItem>,
    failed: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
    summary: CrawlSummary,
    /// What the WCC input held that is not applied.
    ignored_inputs: Vec<&'static str>,
}

/// A crawl of WCC input, converted at the edge as the service converts it.
async fn run(
    input: serde_json::Value,
    settings: CrawlerSettings,
    cancel: CancellationToken,
) -> Run {
    let input = CrawlInput::from_json(input).unwrap();
    let spec = CrawlSpec::try_from(&input).unwrap();
    let mut r = run_spec(&spec, settings, cancel).await;
    r.ignored_inputs = input.ignored_inputs();
    r
}

async fn run_spec(spec: &CrawlSpec, settings: CrawlerSettings, cancel: CancellationToken) -> Run {
    let mut items = Vec::new();
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    let summary = crawl(spec, &settings, cancel, |e| match e {
        Event::Item(i) => items.push(*i),
        Event::Failed { url, error } => failed.push((url, error)),
        Event::Skipped { url, reason } => skipped.push((url, reason)),
        Event::Progress(_) => {}
    })
    .await
    .unwrap();
    Run {
        items,
        failed,
        skipped,
        summary,
        ignored_inputs: Vec::new(),
    }
}

fn paths(items: &[DatasetItem]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .map(|i| url::Url::parse(&i.url).unwrap().path().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn crawl_stays_in_scope_respects_depth_and_skips_canonical_duplicates() {
    let (base, site) = serve().await;
    let r = run(
        serde_json::json!({"startUrls": [{"url": format!("{base}/site/")}], "maxCrawlDepth": 2, "crawlerType": "cheerio", "saveScreenshots": true, "blockMedia": true}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        paths(&r.items),
        vec!["/site/", "/site/a", "/site/c", "/site/private"]
    );
    assert!(
        r.skipped
            .iter()
            .any(|(u, why)| u.ends_with("/site/b") && why.contains("canonical")),
        "{:?}",
        r.skipped
    );
    assert!(
        site.hits.lock().unwrap().get("/other/x").is_none(),
        "out of scope link fetched"
    );
    assert!(
        site.hits.lock().unwrap().get("/site/d").is_none(),
        "depth 3 fetched"
    );
    assert_eq!(
        site.hits.lock().unwrap()["/site/a"].len(),
        1,
        "fragment URL fetched twice"
    );
    let c = r.items.iter().find(|i| i.url.ends_with("/site/c")).unwrap();
    assert_eq!(c.crawl.depth, 2);
    assert_eq!(
        c.crawl.referrer_url.as_deref(),
        Some(format!("{base}/site/a").as_str())
    );
    assert_eq!(c.crawl.http_status_code, 200);
    assert!(c.text.contains("long enough to count"), "{}", c.text);
    assert!(!c.text.contains("Home"), "nav leaked: {}", c.text);
    assert!(c.markdown.as_deref().unwrap().contains("[D](http://"));
    let json = serde_json::to_value(c).unwrap();
    for key in ["url", "crawl", "metadata", "text", "markdown", "html"] {
        assert!(json.get(key).is_some(), "item lacks {key}: {json}");
    }
    assert_eq!(json["metadata"]["languageCode"], "en");
    assert_eq!(json["metadata"]["title"], "Page C");
    assert!(
        json["metadata"]["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(json["crawl"]["loadedTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.summary.stop_reason, StopReason::Finished);
    assert_eq!(r.ignored_inputs, vec!["saveScreenshots", "blockMedia"]);
    assert_eq!(json["crawl"]["mode"], "http");
    // The duplicate fetched first still yields the canonical page, not itself.
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/b")], "maxCrawlDepth": 0, "includeUrlGlobs": [format!("{base}/site/**")]}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(paths(&r.items), vec!["/site/a"]);
    assert!(
        r.skipped
            .iter()
            .any(|(u, why)| u.ends_with("/site/b") && why.contains("crawled instead"))
    );
}

#[tokio::test]
async fn include_and_exclude_globs_replace_the_default_scope() {
    let (base, site) = serve().await;
    let r = run(
        serde_json::json!({
            "startUrls": [format!("{base}/site/")],
            "includeUrlGlobs": [{"glob": format!("{base}/{{site,other}}/*")}],
            "excludeUrlGlobs": [format!("{base}/site/[bc]")],
            "maxCrawlDepth": 1,
        }),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(paths(&r.items), vec!["/site/", "/site/a", "/site/private"]);
    assert_eq!(
        site.hits.lock().unwrap()["/other/x"].len(),
        1,
        "included glob not followed"
    );
    assert!(site.hits.lock().unwrap().get("/site/b").is_none());
}

#[tokio::test]
async fn max_crawl_pages_and_max_results_stop_the_crawl() {
    let (base, _site) = serve().await;
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/")], "maxCrawlPages": 2, "maxConcurrency": 1}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.summary.progress.done, 2);
    assert_eq!(r.summary.stop_reason, StopReason::MaxCrawlPages);
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/")], "maxResults": 1}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.summary.stop_reason, StopReason::MaxResults);
}

#[tokio::test]
async fn robots_txt_disallow_and_crawl_delay_are_honoured() {
    let (base, site) = serve().await;
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/")], "maxCrawlDepth": 1, "respectRobotsTxtFile": true, "maxConcurrency": 10}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert!(
        r.skipped
            .iter()
            .any(|(u, why)| u.ends_with("/site/private") && why.contains("robots"))
    );
    assert!(site.hits.lock().unwrap().get("/site/private").is_none());
    let hits = site.hits.lock().unwrap();
    let mut starts: Vec<Instant> = ["/site/", "/site/a", "/site/b"]
        .iter()
        .map(|p| hits[*p][0])
        .collect();
    starts.sort();
    for w in starts.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(280),
            "crawl-delay not kept: {:?}",
            w[1] - w[0]
        );
    }
}

/// A hostile site's sitemaps: an index listing ten sitemaps of 1,000 URLs each,
/// every one of them five times over. Discovery keeps no more URLs than the frontier
/// takes and fetches each sitemap once: it used to fetch up to fifty and keep every
/// URL of all of them in memory before any limit applied.
#[tokio::test]
async fn sitemap_discovery_stops_at_the_frontier_and_fetches_each_sitemap_once() {
    let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let hits = counted.clone();
        async move {
            let path = req.uri().path().to_owned();
            *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
            let host = req.headers()[header::HOST].to_str().unwrap().to_owned();
            let xml =
                |body: String| ([(header::CONTENT_TYPE, "application/xml")], body).into_response();
            if path == "/robots.txt" {
                format!("Sitemap: http://{host}/index.xml\n").into_response()
            } else if path == "/index.xml" {
                let entries: String = (0..50)
                    .map(|i| format!("<sitemap><loc>http://{host}/sm/{}</loc></sitemap>", i % 10))
                    .collect();
                xml(format!("<sitemapindex>{entries}</sitemapindex>"))
            } else if let Some(n) = path.strip_prefix("/sm/") {
                let urls: String = (0..1000)
                    .map(|i| format!("<url><loc>http://{host}/p/{n}-{i}</loc></url>"))
                    .collect();
                xml(format!("<urlset>{urls}</urlset>"))
            } else {
                html(page("Page", "A page of the site."))
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let r = run(
        serde_json::json!({"startUrls": [format!("http://{addr}/")], "useSitemaps": true,
                           "maxCrawlPages": 3, "maxCrawlDepth": 1}),
        CrawlerSettings {
            max_frontier: 1_500,
            ..settings()
        },
        CancellationToken::new(),
    )
    .await;
    assert!(!r.items.is_empty());
    let hits = hits.lock().unwrap();
    let sitemaps: Vec<(&String, &usize)> =
        hits.iter().filter(|(p, _)| p.starts_with("/sm/")).collect();
    // Two sitemaps fill a frontier of 1,500; none is fetched twice.
    assert_eq!(sitemaps.len(), 2, "{sitemaps:?}");
    assert!(sitemaps.iter().all(|(_, n)| **n == 1), "{sitemaps:?}");
}

#[tokio::test]
async fn sitemaps_and_llms_txt_add_pages_at_depth_one_within_scope() {
    let (base, site) = serve().await;
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/d")], "useSitemaps": true, "useLlmsTxt": true, "maxCrawlDepth": 1}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    // Scope of /site/d is /site/d/**: sitemap and llms pages lie outside unless globbed.
    assert_eq!(paths(&r.items), vec!["/site/d"]);
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/d")], "useSitemaps": true, "useLlmsTxt": true, "maxCrawlDepth": 1, "includeUrlGlobs": [format!("{base}/site/**")]}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    // `/site/` comes from the page's own Home link.
    assert_eq!(
        paths(&r.items),
        vec!["/site/", "/site/d", "/site/from-llms", "/site/from-sitemap"]
    );
    let s = r
        .items
        .iter()
        .find(|i| i.url.ends_with("from-sitemap"))
        .unwrap();
    assert_eq!(s.crawl.depth, 1);
    assert!(site.hits.lock().unwrap().get("/elsewhere/x").is_none());
    // A sitemap as the start URL: its pages are crawled at depth 1, it is no item.
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/sitemap.xml")], "maxCrawlDepth": 1}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(paths(&r.items), vec!["/site/from-sitemap"]);
    assert!(
        r.failed
            .iter()
            .any(|(u, e)| u.ends_with("/elsewhere/x") && e == "HTTP 404"),
        "{:?}",
        r.failed
    );
    assert_eq!(r.items[0].crawl.depth, 1);
    assert!(
        r.skipped
            .iter()
            .any(|(u, why)| u.ends_with("/sitemap.xml") && why.contains("sitemap with 2 URLs")),
        "{:?}",
        r.skipped
    );
}

#[tokio::test]
async fn transient_errors_are_retried_honouring_retry_after() {
    let (base, site) = serve().await;
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/flaky"), format!("{base}/site/always-500")], "maxRequestRetries": 2}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(paths(&r.items), vec!["/site/flaky"]);
    let hits = site.hits.lock().unwrap();
    let flaky = &hits["/site/flaky"];
    assert_eq!(flaky.len(), 2);
    assert!(
        flaky[1] - flaky[0] >= Duration::from_millis(950),
        "Retry-After ignored"
    );
    assert_eq!(hits["/site/always-500"].len(), 3, "1 try + 2 retries");
    assert!(
        r.failed
            .iter()
            .any(|(u, e)| u.ends_with("always-500") && e.contains("HTTP 500")),
        "{:?}",
        r.failed
    );
}

#[tokio::test]
async fn timeouts_size_cap_redirects_and_pdf_documents() {
    let (base, _site) = serve().await;
    let r = run(
        serde_json::json!({
            "startUrls": [format!("{base}/site/slow"), format!("{base}/site/big"), format!("{base}/site/redirect"), format!("{base}/site/doc.pdf")],
            "requestTimeoutSecs": 1, "maxRequestRetries": 0, "maxCrawlDepth": 0
        }),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert!(
        r.failed
            .iter()
            .any(|(u, e)| u.ends_with("/slow") && e.contains("timed out")),
        "{:?}",
        r.failed
    );
    assert!(
        r.failed
            .iter()
            .any(|(u, e)| u.ends_with("/big") && e.contains("larger than")),
        "{:?}",
        r.failed
    );
    let moved = r
        .items
        .iter()
        .find(|i| i.url.ends_with("/site/redirect"))
        .unwrap();
    assert_eq!(moved.crawl.loaded_url, format!("{base}/site/moved"));
    assert_eq!(moved.crawl.redirects.len(), 1);
    assert_eq!(moved.crawl.redirects[0].status_code, 302);
    let pdf = r.items.iter().find(|i| i.url.ends_with(".pdf")).unwrap();
    assert_eq!(
        pdf.metadata.content_type.as_deref(),
        Some("application/pdf")
    );
}

#[tokio::test]
async fn custom_headers_and_initial_cookies_are_sent_with_an_honest_user_agent() {
    let (base, site) = serve().await;
    let r = run(
        serde_json::json!({
            "startUrls": [format!("{base}/site/echo")],
            "customHttpHeaders": {"X-Test": "yes"},
            "initialCookies": [{"name": "session", "value": "abc", "domain": "127.0.0.1"}, {"name": "other", "value": "no", "domain": "example.com"}]
        }),
        settings(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.items.len(), 1);
    let h = site.echo.lock().unwrap().clone().unwrap();
    assert_eq!(h["x-test"], "yes");
    assert_eq!(h["cookie"], "session=abc");
    assert!(
        h["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("agentbase-crawler/")
    );
}

#[tokio::test]
async fn custom_headers_and_host_cookies_do_not_follow_a_redirect_to_another_host() {
    let (base, site) = serve().await;
    let input = |start: &str| {
        serde_json::json!({
            "startUrls": [format!("{base}{start}")],
            "customHttpHeaders": {"Authorization": "Bearer site-secret"},
            "initialCookies": [
                {"name": "hostonly", "value": "h"},
                {"name": "scoped", "value": "s", "domain": "127.0.0.1"},
                {"name": "local", "value": "l", "domain": "localhost"}
            ],
            "maxCrawlDepth": 0
        })
    };
    // A redirect on the same host keeps them.
    run(input("/site/to-echo"), settings(), CancellationToken::new()).await;
    let h = site
        .echo
        .lock()
        .unwrap()
        .take()
        .expect("the echo page was fetched");
    assert_eq!(h["authorization"], "Bearer site-secret");
    assert_eq!(h["cookie"], "hostonly=h; scoped=s");
    // A redirect to another host drops the header and the domain-less cookie; a
    // cookie set for that host's own domain still goes.
    run(
        input("/site/to-other-host"),
        settings(),
        CancellationToken::new(),
    )
    .await;
    let h = site
        .echo
        .lock()
        .unwrap()
        .take()
        .expect("the echo page was fetched");
    assert!(h.get("authorization").is_none(), "{h:?}");
    assert_eq!(h["cookie"], "local=l");
}

#[tokio::test]
async fn abort_stops_a_running_crawl_promptly() {
    let (base, _site) = serve().await;
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let t = Instant::now();
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/slow")], "requestTimeoutSecs": 30}),
        settings(),
        cancel,
    )
    .await;
    assert_eq!(r.summary.stop_reason, StopReason::Aborted);
    assert!(t.elapsed() < Duration::from_secs(3));
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/slow")], "requestTimeoutSecs": 30}),
        CrawlerSettings {
            overall_timeout: Some(Duration::from_millis(300)),
            ..settings()
        },
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.summary.stop_reason, StopReason::TimedOut);
}

#[tokio::test]
async fn loopback_is_refused_without_allow_private_networks_even_via_redirect() {
    let (base, site) = serve().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let guarded = CrawlerSettings {
        allow_private_networks: false,
        ..settings()
    };
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/a"), format!("http://localhost:{port}/site/a"), format!("http://[::ffff:127.0.0.1]:{port}/site/a")], "maxRequestRetries": 0}),
        guarded.clone(),
        CancellationToken::new(),
    )
    .await;
    assert!(r.items.is_empty());
    assert_eq!(r.failed.len(), 3, "{:?}", r.failed);
    assert!(
        r.failed.iter().all(|(_, e)| e.contains("refused")),
        "{:?}",
        r.failed
    );
    assert!(
        site.hits.lock().unwrap().is_empty(),
        "a guarded request reached the server"
    );
    // An allow-listed name gets through, but its redirect to a loopback literal does not.
    let r = run(
        serde_json::json!({"startUrls": [format!("http://localhost:{port}/site/to-loopback")], "maxRequestRetries": 0}),
        CrawlerSettings {
            private_host_allowlist: vec!["localhost".into()],
            ..guarded
        },
        CancellationToken::new(),
    )
    .await;
    assert!(r.items.is_empty());
    assert!(
        r.failed[0].1.contains("refused to connect to 127.0.0.1"),
        "{:?}",
        r.failed
    );
    assert_eq!(site.hits.lock().unwrap()["/site/to-loopback"].len(), 1);
    assert!(site.hits.lock().unwrap().get("/site/a").is_none());
}

#[tokio::test]
async fn aggressive_prune_drops_lines_repeated_across_pages() {
    let (base, _site) = serve().await;
    let input = |prune: bool| serde_json::json!({"startUrls": [format!("{base}/site/")], "maxCrawlDepth": 1, "maxConcurrency": 1, "aggressivePrune": prune});
    let plain = run(input(false), settings(), CancellationToken::new()).await;
    assert!(plain.items.len() >= 3);
    assert!(
        plain
            .items
            .iter()
            .all(|i| i.text.contains("Copyright 2026 Example Docs"))
    );
    let pruned = run(input(true), settings(), CancellationToken::new()).await;
    assert_eq!(pruned.items.len(), plain.items.len());
    assert!(pruned.items[0].text.contains("Copyright 2026 Example Docs"));
    assert!(pruned.items[1].text.contains("Copyright 2026 Example Docs"));
    for item in &pruned.items[2..] {
        assert!(!item.text.contains("Copyright 2026"), "{}", item.text);
        assert!(!item.markdown.as_deref().unwrap().contains("Copyright 2026"));
        assert!(
            item.text.contains("long enough to count"),
            "unique content pruned: {}",
            item.text
        );
    }
}

#[tokio::test]
async fn keep_url_fragments_and_ignore_canonical_url_change_dedupe() {
    let (base, site) = serve().await;
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/")], "maxCrawlDepth": 1, "keepUrlFragments": true, "ignoreCanonicalUrl": true}),
        settings(),
        CancellationToken::new(),
    )
    .await;
    let urls: Vec<&str> = r.items.iter().map(|i| i.url.as_str()).collect();
    assert!(
        urls.contains(&format!("{base}/site/a#part").as_str()),
        "{urls:?}"
    );
    assert!(
        urls.contains(&format!("{base}/site/b").as_str()),
        "{urls:?}"
    );
    assert_eq!(site.hits.lock().unwrap()["/site/a"].len(), 2);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
}

#[tokio::test]
async fn the_frontier_is_capped_so_an_endless_site_cannot_grow_the_crawl() {
    let (base, _site) = serve().await;
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/endless/")], "maxCrawlDepth": 50}),
        CrawlerSettings {
            max_frontier: 25,
            ..settings()
        },
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.summary.stop_reason, StopReason::Finished);
    assert!(
        (20..=25).contains(&r.items.len()),
        "{} pages for a frontier of 25",
        r.items.len()
    );
}

#[tokio::test]
async fn a_document_the_reader_refuses_is_a_failed_page_with_its_reason() {
    let (base, _site) = serve().await;
    let refuse: std::sync::Arc<agentbase_crawler::ReadDocument> = std::sync::Arc::new(|_, _| {
        Box::pin(async { Err("its objects are nested too deep".to_owned()) })
    });
    let r = run(
        serde_json::json!({"startUrls": [format!("{base}/site/doc.pdf")], "maxCrawlDepth": 0}),
        CrawlerSettings {
            documents: Some(agentbase_crawler::DocumentReader(refuse)),
            ..settings()
        },
        CancellationToken::new(),
    )
    .await;
    assert!(r.items.is_empty());
    assert!(
        r.failed
            .iter()
            .any(|(u, e)| u.ends_with("doc.pdf") && e.contains("nested too deep")),
        "{:?}",
        r.failed
    );
}

/// A crawl of `start` on the test site with a link source's path rules.
fn with_paths(base: &str, start: &str, include_only: &[&str], exclude: &[&str]) -> CrawlSpec {
    let mut spec = CrawlSpec::new(StartUrls::parse([format!("{base}{start}")]).unwrap());
    spec.scope.paths = PathRules::new(include_only, exclude).unwrap();
    spec.limits = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    spec
}

#[tokio::test]
async fn a_page_the_exclude_rules_match_is_never_requested() {
    let (base, site) = serve().await;
    let spec = with_paths(&base, "/site/", &[], &["^/site/[ac]$"]);
    let r = run_spec(&spec, settings(), CancellationToken::new()).await;
    // /site/a is excluded, so /site/c (linked from it alone) is never found; /site/b
    // names /site/a canonical, which is out of scope now, so /site/b is its own item.
    assert_eq!(paths(&r.items), vec!["/site/", "/site/b", "/site/private"]);
    let hits = site.hits.lock().unwrap();
    assert!(
        hits.get("/site/a").is_none(),
        "an excluded page was fetched"
    );
    assert!(hits.get("/site/c").is_none());
    assert_eq!(r.summary.progress.done, 3, "excluded pages are not counted");
}

#[tokio::test]
async fn excluded_pages_do_not_use_up_max_pages() {
    let (base, site) = serve().await;
    let mut spec = with_paths(&base, "/site/", &[], &["^/site/a$"]);
    spec.limits.max_pages = 2;
    spec.limits.max_concurrency = std::num::NonZeroU32::MIN;
    let r = run_spec(&spec, settings(), CancellationToken::new()).await;
    // The index links /site/a first: the second page fetched is the next one.
    assert_eq!(paths(&r.items), vec!["/site/", "/site/b"]);
    assert_eq!(r.summary.stop_reason, StopReason::MaxCrawlPages);
    assert!(site.hits.lock().unwrap().get("/site/a").is_none());
}

#[tokio::test]
async fn include_only_rules_limit_what_is_fetched_but_the_start_url_is_read_for_its_links() {
    let (base, site) = serve().await;
    let spec = with_paths(&base, "/site/", &["^/site/[ac]$"], &[]);
    let r = run_spec(&spec, settings(), CancellationToken::new()).await;
    // The start URL does not match: fetched for its links, it is no item.
    assert_eq!(paths(&r.items), vec!["/site/a", "/site/c"]);
    assert!(
        r.skipped
            .iter()
            .any(|(u, why)| u.ends_with("/site/") && why == "not matched by includeOnlyPaths"),
        "{:?}",
        r.skipped
    );
    let hits = site.hits.lock().unwrap();
    for path in ["/site/b", "/site/private", "/site/d"] {
        assert!(hits.get(path).is_none(), "{path} was fetched");
    }
    assert_eq!(hits["/site/"].len(), 1);
}
