//! Crawls with agentbase-crawler and prints one JSON line of figures.
//! `crawl-bench OUT.jsonl MAX_PAGES CONCURRENCY START_URL...`
//!
//! Environment: `CRAWL_INPUT` (a JSON object merged into the WCC input, e.g.
//! `{"crawlerType":"playwright:adaptive"}`; default `{"crawlerType":"cheerio"}`),
//! `CRAWL_LABEL` (the `crawler` field printed), `CRAWL_BROWSER` (a chromium to render
//! with; started before the clock runs, as a server keeps it running, and its start-up
//! time printed apart), `CRAWL_BROWSER_PAGES` (pages rendered at once, default 4) and
//! `RUST_LOG` (log to stderr, e.g. `agentbase_crawler=debug`).
//!
//! Pages are extracted on a background runtime whose threads run at nice 10 under
//! `SCHED_IDLE`, as the `agentbase` binary runs them (crates/cli/src/main.rs), so the
//! crawl shares the CPU with Chromium (also at nice 10, `SCHED_IDLE`) as it does in
//! the server. Without it, extraction at normal priority would starve the browser for
//! the whole crawl, and adaptive mode's comparison renders would only start once the
//! HTTP side was done.

#![deny(unsafe_code)] // `background_priority` allows one block.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use agentbase_crawler::browser::{Chromium, ChromiumConfig, Renderer};
use agentbase_crawler::{CancellationToken, CrawlInput, CrawlSpec, CrawlerSettings, Event, crawl};

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("{msg}");
    std::process::exit(2);
}

/// The one-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse().ok()))
        .unwrap_or(0.0)
}

/// The crawl the arguments and `CRAWL_INPUT` ask for (WCC input, converted as the
/// Apify-compatible API converts it), and the concurrency asked for.
fn spec(args: &[String]) -> (CrawlSpec, u32) {
    if args.len() < 5 {
        fail("usage: crawl-bench OUT.jsonl MAX_PAGES CONCURRENCY START_URL...");
    }
    let (Ok(max_pages), Ok(concurrency)) = (args[2].parse::<u64>(), args[3].parse::<u32>()) else {
        fail("MAX_PAGES and CONCURRENCY must be numbers");
    };
    let mut input = serde_json::json!({
        "startUrls": &args[4..],
        "maxCrawlPages": max_pages,
        "maxConcurrency": concurrency,
        "maxRequestRetries": 0,
        "crawlerType": "cheerio",
    });
    if let Ok(extra) = std::env::var("CRAWL_INPUT") {
        let extra: serde_json::Value =
            serde_json::from_str(&extra).unwrap_or_else(|e| fail(format!("CRAWL_INPUT: {e}")));
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            input[k] = v;
        }
    }
    let spec = CrawlInput::from_json(input)
        .and_then(|input| CrawlSpec::try_from(&input))
        .unwrap_or_else(|e| fail(e));
    (spec, concurrency)
}

/// Moves the calling thread to `SCHED_IDLE` at nice 10, as the server's background
/// threads (`agentbase_llm::sched::lower_thread_priority`).
fn background_priority() {
    #[allow(unsafe_code)]
    // SAFETY: `param` is a valid sched_param that lives across the call; pid 0 names
    // the calling thread, and setpriority takes plain integers.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let background =
        agentbase_crawler::background::start(background_priority).unwrap_or_else(|e| fail(e));
    runtime.block_on(bench());
    background.shutdown_background();
}

async fn bench() {
    // RUST_LOG=agentbase_crawler=debug shows each adaptive comparison.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let (spec, concurrency) = spec(&args);
    let label = std::env::var("CRAWL_LABEL").unwrap_or_else(|_| "agentbase".to_string());
    let browser = std::env::var("CRAWL_BROWSER").ok().map(|exe| {
        Chromium::new(ChromiumConfig {
            executable: exe.into(),
            max_pages: std::env::var("CRAWL_BROWSER_PAGES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(4),
            ..ChromiumConfig::default()
        })
    });
    let mut launch_secs = 0.0;
    if let Some(b) = &browser {
        let t = Instant::now();
        b.start().await.unwrap_or_else(|e| fail(e));
        launch_secs = t.elapsed().as_secs_f64();
    }
    let settings = CrawlerSettings {
        allow_private_networks: true,
        per_host_concurrency: concurrency as usize,
        renderer: browser.clone().map(|b| Arc::new(b) as Arc<dyn Renderer>),
        ..CrawlerSettings::default()
    };
    let mut out = match std::fs::File::create(&args[1]) {
        Ok(f) => std::io::BufWriter::new(f),
        Err(e) => fail(format!("cannot create {}: {e}", args[1])),
    };
    let load_before = load_average();
    let started = Instant::now();
    let (mut items, mut failed, mut text_bytes) = (0u64, 0u64, 0usize);
    let result = crawl(&spec, &settings, CancellationToken::new(), |e| match e {
        Event::Item(item) => {
            items += 1;
            text_bytes += item.text.len();
            let _ = writeln!(out, "{}", serde_json::to_string(&item).unwrap_or_default());
        }
        Event::Failed { .. } => failed += 1,
        _ => {}
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    let load_after = load_average();
    let _ = out.flush();
    let stats = browser.as_ref().map(|b| b.stats()).unwrap_or_default();
    if let Some(b) = &browser {
        b.shut_down().await;
    }
    match result {
        Ok(summary) => println!(
            "{}",
            serde_json::json!({
                "crawler": label,
                "pages": summary.progress.done,
                "items": items,
                "rendered": summary.progress.rendered,
                "failed": failed,
                "text_bytes": text_bytes,
                "seconds": secs,
                "pages_per_sec": summary.progress.done as f64 / secs,
                "browser_launch_secs": launch_secs,
                "browser_launches": stats.launches,
                "browser_pages": stats.pages,
                "browser_peak_rss_mb": stats.peak_rss_bytes as f64 / 1048576.0,
                "browser_peak_pss_mb": stats.peak_pss_bytes as f64 / 1048576.0,
                "load_before": load_before,
                "load_after": load_after,
            })
        ),
        Err(e) => fail(format!("crawl failed: {e}")),
    }
}
