//! Crawls with agentbase-crawler and prints one JSON line of figures.
//! `crawl-bench OUT.jsonl MAX_PAGES CONCURRENCY START_URL...`

use std::io::Write;
use std::time::Instant;

use agentbase_crawler::{CancellationToken, CrawlInput, CrawlerSettings, Event, crawl};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: crawl-bench OUT.jsonl MAX_PAGES CONCURRENCY START_URL...");
        std::process::exit(2);
    }
    let (Ok(max_pages), Ok(concurrency)) = (args[2].parse::<u64>(), args[3].parse::<u32>()) else {
        eprintln!("MAX_PAGES and CONCURRENCY must be numbers");
        std::process::exit(2);
    };
    let input = match CrawlInput::from_json(serde_json::json!({
        "startUrls": &args[4..],
        "maxCrawlPages": max_pages,
        "maxConcurrency": concurrency,
        "maxRequestRetries": 0,
    })) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let settings = CrawlerSettings {
        allow_private_networks: true,
        per_host_concurrency: concurrency as usize,
        ..CrawlerSettings::default()
    };
    let mut out = match std::fs::File::create(&args[1]) {
        Ok(f) => std::io::BufWriter::new(f),
        Err(e) => {
            eprintln!("cannot create {}: {e}", args[1]);
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let (mut items, mut failed, mut text_bytes) = (0u64, 0u64, 0usize);
    let result = crawl(&input, &settings, CancellationToken::new(), |e| match e {
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
    let _ = out.flush();
    match result {
        Ok(summary) => println!(
            "{}",
            serde_json::json!({
                "crawler": "agentbase",
                "pages": summary.progress.done,
                "items": items,
                "failed": failed,
                "text_bytes": text_bytes,
                "seconds": secs,
                "pages_per_sec": summary.progress.done as f64 / secs,
            })
        ),
        Err(e) => {
            eprintln!("crawl failed: {e}");
            std::process::exit(1);
        }
    }
}
