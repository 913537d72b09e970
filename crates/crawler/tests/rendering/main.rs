//! Crawls rendered by Debian's chromium (`browser::Chromium`) against the loopback test
//! site in `site.rs`. Needs `/usr/bin/chromium` (scripts/services.sh installs it):
//! without it these tests skip with a note, or fail when
//! `AGENTBASE_TEST_REQUIRE_SERVICES=1`. A test binary of its own, so the browser's CPU
//! use does not disturb the timing tests of `tests/crawl.rs`.

mod site;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentbase_crawler::browser::{Chromium, ChromiumConfig, process_tree};
use agentbase_crawler::{
    CancellationToken, CrawlInput, CrawlMode, CrawlSpec, CrawlerSettings, DatasetItem, Event, crawl,
};
use site::Site;

/// Browser tests run one at a time: each starts its own chromium.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn chromium_or_skip() -> Option<Chromium> {
    let exe = Path::new("/usr/bin/chromium");
    if exe.is_file() {
        return Some(Chromium::new(ChromiumConfig {
            max_pages: 2,
            ..ChromiumConfig::default()
        }));
    }
    assert!(
        std::env::var("AGENTBASE_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
        "AGENTBASE_TEST_REQUIRE_SERVICES=1 but /usr/bin/chromium is missing"
    );
    eprintln!("skipped: /usr/bin/chromium is missing (scripts/services.sh installs it)");
    None
}

/// (thread name, nice value, scheduling policy) of every thread of `pid` and its
/// descendants.
fn thread_nices(pid: u32) -> Vec<(String, i32, i32)> {
    let mut out = Vec::new();
    for p in process_tree(pid) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            // Fields 19 (nice) and 41 (policy) are the 17th and 39th after the
            // parenthesised name.
            let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
            if let (Some(nice), Some(policy)) = (
                fields.get(16).and_then(|n| n.parse().ok()),
                fields.get(38).and_then(|n| n.parse().ok()),
            ) {
                out.push((stat[open + 1..close].to_owned(), nice, policy));
            }
        }
    }
    out
}

/// What a browser test starts with: its turn, a browser, the site and its address.
struct Env {
    _one: tokio::sync::MutexGuard<'static, ()>,
    browser: Chromium,
    site: Arc<Site>,
    port: u16,
    base: String,
}

async fn env() -> Option<Env> {
    let one = ONE_BROWSER.lock().await;
    let browser = chromium_or_skip()?;
    let site = Arc::new(Site::default());
    let port = site::serve(site.clone()).await;
    Some(Env {
        _one: one,
        browser,
        site,
        port,
        base: format!("http://127.0.0.1:{port}"),
    })
}

struct Run {
    items: Vec<DatasetItem>,
    failed: Vec<(String, String)>,
    rendered: u64,
}

impl Run {
    fn item(&self, path: &str) -> &DatasetItem {
        self.items
            .iter()
            .find(|i| url::Url::parse(&i.url).unwrap().path() == path)
            .unwrap_or_else(|| {
                panic!(
                    "no item for {path}: items {:?}, failed {:?}",
                    self.paths(),
                    self.failed
                )
            })
    }

    fn has(&self, path: &str) -> bool {
        self.items
            .iter()
            .any(|i| url::Url::parse(&i.url).unwrap().path() == path)
    }

    fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .items
            .iter()
            .map(|i| url::Url::parse(&i.url).unwrap().path().to_string())
            .collect();
        v.sort();
        v
    }
}

async fn run(input: serde_json::Value, settings: &CrawlerSettings) -> Run {
    let spec = CrawlSpec::try_from(&CrawlInput::from_json(input).unwrap()).unwrap();
    let mut items = Vec::new();
    let mut failed = Vec::new();
    let summary = crawl(&spec, settings, CancellationToken::new(), |e| match e {
        Event::Item(i) => items.push(*i),
        Event::Failed { url, error } => failed.push((url, error)),
        _ => {}
    })
    .await
    .unwrap();
    Run {
        items,
        failed,
        rendered: summary.progress.rendered,
    }
}

fn settings(browser: &Chromium) -> CrawlerSettings {
    CrawlerSettings {
        allow_private_networks: true,
        retry_base_delay: Duration::from_millis(50),
        renderer: Some(Arc::new(browser.clone())),
        ..CrawlerSettings::default()
    }
}

#[tokio::test]
async fn adaptive_mode_renders_what_needs_it_and_cheerio_gets_the_raw_html() {
    let Some(Env {
        _one,
        browser,
        base,
        ..
    }) = env().await
    else {
        return;
    };
    let settings = settings(&browser);

    let adaptive = run(
        serde_json::json!({"startUrls": [format!("{base}/")], "dynamicContentWaitSecs": 5}),
        &settings,
    )
    .await;
    assert!(adaptive.failed.is_empty(), "{:?}", adaptive.failed);
    // The app's routes exist only as links its script writes.
    let home = adaptive.item("/spa/");
    assert!(home.text.contains("SPA-HOME-TEXT"), "{}", home.text);
    assert_eq!(home.crawl.mode, CrawlMode::Browser);
    assert_eq!(home.metadata.title.as_deref(), Some("Docs app home"));
    assert!(
        adaptive
            .item("/spa/route-a")
            .text
            .contains("ALPHA-ROUTE-TEXT")
    );
    assert!(
        adaptive
            .item("/spa/route-b")
            .text
            .contains("BRAVO-ROUTE-TEXT")
    );
    let accordion = adaptive.item("/accordion");
    assert!(
        accordion.text.contains("HIDDEN-DETAILS"),
        "{}",
        accordion.text
    );
    assert_eq!(accordion.crawl.mode, CrawlMode::Browser);
    let banner = adaptive.item("/banner");
    assert!(banner.text.contains("BANNER-PAGE-TEXT"));
    assert!(!banner.text.contains("We use cookies"), "{}", banner.text);
    assert!(adaptive.item("/framed").text.contains("FRAME-TEXT"));
    assert!(
        adaptive.has("/from-frame"),
        "a link inside the frame is followed"
    );
    assert!(adaptive.item("/members").text.contains("MEMBERS-ONLY"));
    // A static page of a kind already checked stays on HTTP.
    assert!(
        adaptive
            .items
            .iter()
            .any(|i| i.crawl.mode == CrawlMode::Http),
        "every page was rendered"
    );
    assert!(adaptive.rendered >= 4 && adaptive.rendered < adaptive.items.len() as u64);
    // Every browser thread stays at nice 10 or nicer, the compositor and IO threads
    // Chromium raises for itself when it may (as root) included, and under the
    // SCHED_IDLE policy (5).
    let pid = browser.browser_pid().expect("the browser is still up");
    let nices = thread_nices(pid);
    assert!(nices.len() > 5, "{nices:?}");
    assert!(nices.iter().all(|(_, n, _)| *n >= 10), "{nices:?}");
    assert!(nices.iter().all(|(_, _, p)| *p == 5), "{nices:?}");
    let json = serde_json::to_value(home).unwrap();
    assert_eq!(json["crawl"]["mode"], "browser");
    assert_eq!(json["crawl"]["httpStatusCode"], 200);

    let cheerio = run(
        serde_json::json!({"startUrls": [format!("{base}/")], "crawlerType": "cheerio"}),
        &settings,
    )
    .await;
    assert!(cheerio.failed.is_empty(), "{:?}", cheerio.failed);
    assert!(
        cheerio
            .items
            .iter()
            .all(|i| i.crawl.mode == CrawlMode::Http)
    );
    assert_eq!(cheerio.rendered, 0);
    assert!(!cheerio.item("/spa/").text.contains("SPA-HOME-TEXT"));
    assert!(!cheerio.has("/spa/route-a"), "{:?}", cheerio.paths());
    assert!(!cheerio.item("/accordion").text.contains("HIDDEN-DETAILS"));
    // expandIframes works without a browser too, and response cookies are kept.
    assert!(cheerio.item("/framed").text.contains("FRAME-TEXT"));
    assert!(cheerio.has("/from-frame"));
    assert!(cheerio.item("/members").text.contains("MEMBERS-ONLY"));
    let no_frames = run(
        serde_json::json!({"startUrls": [format!("{base}/framed")], "crawlerType": "cheerio", "expandIframes": false, "maxCrawlDepth": 0}),
        &settings,
    )
    .await;
    assert!(!no_frames.item("/framed").text.contains("FRAME-TEXT"));
    browser.shut_down().await;
}

#[tokio::test]
async fn always_render_applies_the_browser_inputs() {
    let Some(Env {
        _one,
        browser,
        site,
        base,
        ..
    }) = env().await
    else {
        return;
    };
    let settings = settings(&browser);
    let one = |path: &str, extra: serde_json::Value| {
        let mut input = serde_json::json!({
            "startUrls": [format!("{base}{path}")],
            "crawlerType": "playwright:chrome",
            "maxCrawlDepth": 0,
            "maxRequestRetries": 0,
            "dynamicContentWaitSecs": 5,
        });
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        input
    };
    let kept = run(
        one(
            "/banner",
            // The whole page, not just the article: the banner sits outside it.
            serde_json::json!({"removeCookieWarnings": false, "htmlTransformer": "none"}),
        ),
        &settings,
    )
    .await;
    assert!(
        kept.item("/banner").text.contains("We use cookies"),
        "the banner is there to remove"
    );
    let removed = run(
        one("/banner", serde_json::json!({"htmlTransformer": "none"})),
        &settings,
    )
    .await;
    assert!(!removed.item("/banner").text.contains("We use cookies"));
    assert_eq!(removed.item("/banner").crawl.mode, CrawlMode::Browser);

    let unclicked = run(
        one(
            "/accordion",
            serde_json::json!({"clickElementsCssSelector": ""}),
        ),
        &settings,
    )
    .await;
    assert!(!unclicked.item("/accordion").text.contains("HIDDEN-DETAILS"));
    let clicked = run(
        one(
            "/accordion",
            serde_json::json!({"crawlerType": "playwright:firefox"}),
        ),
        &settings,
    )
    .await;
    assert!(clicked.item("/accordion").text.contains("HIDDEN-DETAILS"));

    let waited = run(
        one(
            "/spa/route-a",
            serde_json::json!({"waitForSelector": "main h1", "dynamicContentWaitSecs": 0}),
        ),
        &settings,
    )
    .await;
    assert!(
        waited
            .item("/spa/route-a")
            .text
            .contains("ALPHA-ROUTE-TEXT")
    );
    let missing = run(
        one(
            "/spa/route-a",
            serde_json::json!({"waitForSelector": "#never", "requestTimeoutSecs": 3}),
        ),
        &settings,
    )
    .await;
    assert!(missing.items.is_empty());
    assert!(
        missing.failed[0].1.contains("#never"),
        "{:?}",
        missing.failed
    );
    let soft = run(
        one(
            "/spa/route-b",
            serde_json::json!({"softWaitForSelector": "#never", "dynamicContentWaitSecs": 1}),
        ),
        &settings,
    )
    .await;
    assert!(soft.item("/spa/route-b").text.contains("BRAVO-ROUTE-TEXT"));

    // Scrolling loads lazy content; images load unless media is blocked.
    let unscrolled = run(
        one(
            "/lazy",
            serde_json::json!({"maxScrollHeightPixels": 0, "blockMedia": true}),
        ),
        &settings,
    )
    .await;
    assert!(!unscrolled.item("/lazy").text.contains("LAZY-TEXT"));
    assert_eq!(site.hits("/pixel.png"), 0, "blockMedia");
    let scrolled = run(one("/lazy", serde_json::json!({})), &settings).await;
    assert!(scrolled.item("/lazy").text.contains("LAZY-TEXT"));
    assert_eq!(site.hits("/pixel.png"), 1);

    // Cookies a response or a script sets are kept for the pages after it.
    let everywhere =
        serde_json::json!({"maxCrawlDepth": 1, "includeUrlGlobs": [format!("{base}/**")]});
    let login = run(one("/login", everywhere.clone()), &settings).await;
    assert!(login.has("/members"), "{:?}", login.failed);
    assert!(login.item("/members").text.contains("MEMBERS-ONLY"));
    let js_login = run(one("/js-login", everywhere), &settings).await;
    assert!(js_login.has("/js-members"), "{:?}", js_login.failed);
    assert!(
        js_login
            .item("/js-members")
            .text
            .contains("JS-MEMBERS-ONLY")
    );

    // The browser's contexts are reused by a crawl and bounded across crawls.
    let stats = browser.stats();
    assert_eq!(stats.launches, 1, "{stats:?}");
    assert!(stats.pages >= 12 && stats.peak_rss_bytes > 0, "{stats:?}");
    browser.shut_down().await;
}

#[tokio::test]
async fn the_ssrf_guard_blocks_and_reports_what_a_page_requests() {
    let Some(Env {
        _one,
        browser,
        site,
        port,
        ..
    }) = env().await
    else {
        return;
    };
    let internal = Arc::new(Site::default());
    *site.forbidden_port.lock().unwrap() = site::serve(internal.clone()).await;
    // The site itself is reached by an allow-listed name; what its script asks for is
    // an IP literal on loopback and the cloud metadata address.
    let guarded = CrawlerSettings {
        allow_private_networks: false,
        private_host_allowlist: vec!["localhost".into()],
        ..settings(&browser)
    };
    for crawler_type in ["playwright:chrome", "playwright:adaptive"] {
        let r = run(
            serde_json::json!({"startUrls": [format!("http://localhost:{port}/ssrf")], "crawlerType": crawler_type, "maxCrawlDepth": 0, "dynamicContentWaitSecs": 3}),
            &guarded,
        )
        .await;
        let item = r.item("/ssrf");
        assert!(item.text.contains("PROBE-TEXT"));
        assert_eq!(item.crawl.mode, CrawlMode::Browser, "{crawler_type}");
        let blocked: Vec<(&str, &str)> = item
            .crawl
            .blocked_requests
            .iter()
            .map(|b| (b.url.as_str(), b.reason.as_str()))
            .collect();
        let other = *site.forbidden_port.lock().unwrap();
        for (url, reason) in [
            (
                format!("http://127.0.0.1:{other}/internal"),
                "loopback address",
            ),
            (
                "http://169.254.169.254/latest/meta-data/".to_string(),
                "link-local address",
            ),
            (format!("http://[::1]:{other}/pixel"), "loopback address"),
        ] {
            assert!(
                blocked.contains(&(url.as_str(), reason)),
                "{url} not reported: {blocked:?}"
            );
        }
        let json = serde_json::to_value(item).unwrap();
        assert!(
            json["crawl"]["blockedRequests"][0]["reason"].is_string(),
            "{json}"
        );
    }
    assert!(
        internal.hits.lock().unwrap().is_empty(),
        "a blocked request got through"
    );
    browser.shut_down().await;
}

#[tokio::test]
async fn cookies_and_custom_headers_stay_on_their_origin_across_redirects() {
    let _one = ONE_BROWSER.lock().await;
    let site = Arc::new(Site::default());
    let port = site::serve(site.clone()).await;
    let base = format!("http://127.0.0.1:{port}");
    let input = |start: &str, crawler_type: &str| {
        serde_json::json!({
            "startUrls": [format!("{base}{start}")],
            "crawlerType": crawler_type,
            "maxCrawlDepth": 0,
            "dynamicContentWaitSecs": 3,
            "customHttpHeaders": {"X-Secret": "hunter2"},
            "initialCookies": [{"name": "token", "value": "t0k"}],
        })
    };
    let leaked = |path: &str| {
        let h = site
            .echo(path)
            .unwrap_or_else(|| panic!("{path} was not requested"));
        h.contains_key("x-secret")
            || h.get("cookie")
                .is_some_and(|c| c.to_str().unwrap().contains("token"))
    };
    // HTTP: the same origin gets both; a redirect to another host gets neither.
    let plain = CrawlerSettings {
        allow_private_networks: true,
        ..CrawlerSettings::default()
    };
    run(input("/echo-direct", "cheerio"), &plain).await;
    let h = site.echo("/echo-direct").unwrap();
    assert_eq!(h["x-secret"], "hunter2");
    assert_eq!(h["cookie"], "token=t0k");
    run(input("/to-other-host", "cheerio"), &plain).await;
    assert!(
        !leaked("/echo-redirected"),
        "HTTP mode leaked across a redirect"
    );
    // Browser: the page's requests to its own origin carry them, to another host not,
    // directly or by redirect.
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let r = run(
        input("/cross-host", "playwright:chrome"),
        &settings(&browser),
    )
    .await;
    assert_eq!(r.items.len(), 1, "{:?}", r.failed);
    let same = site.echo("/echo-same").expect("same-origin request made");
    assert_eq!(same["x-secret"], "hunter2");
    assert!(same["cookie"].to_str().unwrap().contains("token=t0k"));
    assert!(!leaked("/echo-xhr"), "browser mode leaked to another host");
    assert!(
        !leaked("/echo-redirected"),
        "browser mode leaked across a redirect"
    );
    // A page reached by a redirect to another host got no custom headers over HTTP;
    // its script calling back to the origin asked for gets none either.
    let r = run(input("/away", "playwright:chrome"), &settings(&browser)).await;
    assert_eq!(r.items.len(), 1, "{:?}", r.failed);
    let back = site
        .echo("/echo-back")
        .expect("the redirected page's request");
    assert!(!back.contains_key("x-secret"), "{back:?}");
    browser.shut_down().await;
}

#[tokio::test]
async fn a_page_over_its_time_or_memory_limit_fails_and_a_leaking_browser_is_restarted() {
    let _one = ONE_BROWSER.lock().await;
    if chromium_or_skip().is_none() {
        return;
    }
    let site = Arc::new(Site::default());
    let port = site::serve(site.clone()).await;
    let base = format!("http://127.0.0.1:{port}");
    // A budget every browser is over: it is replaced between pages.
    let browser = Chromium::new(ChromiumConfig {
        max_pages: 1,
        page_memory_mb: 64,
        max_memory_mb: 1,
        ..ChromiumConfig::default()
    });
    let settings = settings(&browser);
    // The pages over a limit get 4 s; the pages that must succeed get 30, since the
    // browser is relaunched before each and a launch on a loaded CI machine can take
    // longer than 4 s.
    let one = |path: &str| {
        let timeout = if path == "/spin" || path == "/hog" {
            4
        } else {
            30
        };
        serde_json::json!({
            "startUrls": [format!("{base}{path}")],
            "crawlerType": "playwright:chrome",
            "maxCrawlDepth": 0,
            "maxRequestRetries": 0,
            "requestTimeoutSecs": timeout,
            "dynamicContentWaitSecs": 1,
        })
    };
    // The page spins forever: it ends by its 4 s limit ("timed out"), not by the
    // test's bound, which only turns a hang into a failure (a browser launch on a
    // loaded CI machine can take a while, so no tighter wall-clock check here).
    let spin = tokio::time::timeout(Duration::from_secs(90), run(one("/spin"), &settings))
        .await
        .expect("a spinning page ends by its time limit");
    assert!(spin.items.is_empty());
    assert!(spin.failed[0].1.contains("timed out"), "{:?}", spin.failed);
    let hog = run(one("/hog"), &settings).await;
    assert!(hog.items.is_empty());
    assert!(
        hog.failed[0].1.contains("crashed") || hog.failed[0].1.contains("timed out"),
        "{:?}",
        hog.failed
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let fine = run(one("/banner"), &settings).await;
    assert!(
        fine.item("/banner").text.contains("BANNER-PAGE-TEXT"),
        "{:?}",
        fine.failed
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = run(one("/framed"), &settings).await;
    assert!(
        again.item("/framed").text.contains("FRAME-TEXT"),
        "{:?}",
        again.failed
    );
    let stats = browser.stats();
    assert!(stats.restarts >= 1 && stats.launches >= 2, "{stats:?}");
    assert_eq!(stats.failed_pages, 2, "{stats:?}");
    browser.shut_down().await;
}

/// The `--user-data-dir` of the browser process `pid`.
/// A crawl dropped mid-render (aborted, or past its run's timeout) gives its page
/// slot back: the next crawl renders on the same browser. The slot used to be
/// counted until the process ended, and with every slot gone every crawl's
/// rendering waited forever.
#[tokio::test]
async fn a_crawl_dropped_mid_render_gives_its_page_back() {
    let Some(env) = env().await else { return };
    let browser = Chromium::new(ChromiumConfig {
        max_pages: 1,
        ..ChromiumConfig::default()
    });
    let settings = settings(&browser);
    browser.start().await.unwrap();
    let one = |path: &str| {
        serde_json::json!({
            "startUrls": [format!("{}{path}", env.base)],
            "crawlerType": "playwright:chrome",
            "maxCrawlDepth": 0,
            "maxRequestRetries": 0,
            "requestTimeoutSecs": 120,
            "dynamicContentWaitSecs": 1,
        })
    };
    for _ in 0..2 {
        // The page spins far longer than this: the crawl is dropped while it renders.
        let dropped = tokio::time::timeout(Duration::from_secs(3), run(one("/spin"), &settings));
        assert!(
            dropped.await.is_err(),
            "the spinning page was still rendering"
        );
    }
    let fine = tokio::time::timeout(Duration::from_secs(90), run(one("/banner"), &settings))
        .await
        .expect("the next crawl got a page");
    assert!(
        fine.item("/banner").text.contains("BANNER-PAGE-TEXT"),
        "{:?}",
        fine.failed
    );
    browser.shut_down().await;
}

fn profile_of(pid: u32) -> std::path::PathBuf {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    cmdline
        .split(|&b| b == 0)
        .filter_map(|arg| std::str::from_utf8(arg).ok())
        .find_map(|arg| arg.strip_prefix("--user-data-dir="))
        .map(std::path::PathBuf::from)
        .expect("the browser runs with --user-data-dir")
}

#[tokio::test]
async fn profiles_left_by_dead_processes_are_swept_and_ours_goes_with_the_browser() {
    let _one = ONE_BROWSER.lock().await;
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    // What a killed server leaves: a profile whose lock file nobody holds, an hour old.
    let stale = std::env::temp_dir().join(format!(
        "agentbase-chromium-test-left-behind-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(stale.join("Default")).unwrap();
    let lock = stale.join(".agentbase-lock");
    std::fs::File::create(&lock)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    browser.start().await.expect("the browser starts");
    assert!(!stale.exists(), "the launch sweeps {}", stale.display());
    let pid = browser.browser_pid().expect("the browser is up");
    let ours = profile_of(pid);
    assert!(ours.join(".agentbase-lock").is_file(), "{}", ours.display());
    // Another launch's sweep keeps a profile in use, however old.
    std::fs::File::open(ours.join(".agentbase-lock"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let second = chromium_or_skip().unwrap();
    second.start().await.expect("a second browser starts");
    assert!(ours.join(".agentbase-lock").is_file(), "swept while in use");
    let other = profile_of(second.browser_pid().unwrap());
    assert_ne!(ours, other);

    browser.shut_down().await;
    second.shut_down().await;
    // Deleted in the background once each browser is gone: after the last page's
    // close, which may take its whole 5 s timeout on a loaded machine.
    for _ in 0..400 {
        if !ours.exists() && !other.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !ours.exists() && !other.exists(),
        "{} {}",
        ours.display(),
        other.display()
    );
}
