//! `agentbase crawl` (a Website Content Crawler run to a JSONL file, with a live
//! progress line) and `agentbase extract` (the cleaned content of one saved page).

use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use agentbase_crawler::browser::{Chromium, ChromiumConfig};
use agentbase_crawler::{
    CancellationToken, CrawlInput, CrawlerSettings, Event, ExtractOptions, HtmlTransformer,
    Progress, StopReason, crawl, extract,
};
use anyhow::{Context, bail};

#[derive(clap::Args, Debug, Clone)]
pub struct CrawlArgs {
    /// Start URLs (each also scopes the crawl to its sub-pages unless --include is given).
    #[arg(required_unless_present = "input")]
    pub urls: Vec<String>,
    /// WCC input JSON file (Apify Website Content Crawler fields); flags override it.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// maxCrawlPages: pages fetched at most.
    #[arg(long)]
    pub max_pages: Option<u64>,
    /// maxResults: items written at most.
    #[arg(long)]
    pub max_results: Option<u64>,
    /// maxCrawlDepth: link hops from the start URLs (0 = start URLs only).
    #[arg(long)]
    pub max_depth: Option<u32>,
    /// includeUrlGlobs (repeatable); replaces the default start-URL scope.
    #[arg(long = "include", value_name = "GLOB")]
    pub include: Vec<String>,
    /// excludeUrlGlobs (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// maxConcurrency: requests in flight at most.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Requests in flight per host at most.
    #[arg(long, default_value_t = 8)]
    pub per_host_concurrency: usize,
    /// Minimum milliseconds between request starts on one host.
    #[arg(long, default_value_t = 0)]
    pub per_host_delay_ms: u64,
    /// respectRobotsTxtFile.
    #[arg(long)]
    pub respect_robots: bool,
    /// useSitemaps.
    #[arg(long)]
    pub sitemaps: bool,
    /// useLlmsTxt.
    #[arg(long)]
    pub llms_txt: bool,
    /// crawlerType: playwright:adaptive (default), playwright:chrome,
    /// playwright:firefox (both always render) or cheerio (never).
    #[arg(long)]
    pub crawler_type: Option<String>,
    /// The chromium that renders pages.
    #[arg(long, default_value = "/usr/bin/chromium")]
    pub browser: PathBuf,
    /// Stop the whole crawl after this many seconds.
    #[arg(long)]
    pub timeout_secs: Option<u64>,
    /// Allow private, loopback and link-local addresses (off: the SSRF guard refuses them).
    #[arg(long, env = "AGENTBASE__CRAWLER__ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: bool,
    /// Output file for the dataset items, one JSON object per line (`-` = stdout).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractFormat {
    Markdown,
    Text,
    Html,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformer {
    /// Main content (Readability-style).
    ReadableText,
    /// Main content when the page looks like an article, else the whole page.
    ReadableTextIfPossible,
    /// The whole page after the remove selector.
    None,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ExtractArgs {
    /// Saved HTML page (`-` = stdin).
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = ExtractFormat::Markdown)]
    pub format: ExtractFormat,
    /// The page's URL, to make relative links absolute.
    #[arg(long, default_value = "http://localhost/")]
    pub url: String,
    #[arg(long, value_enum, default_value_t = Transformer::ReadableText)]
    pub transformer: Transformer,
}

/// Prints the cleaned content of one saved page.
pub fn extract_command(args: ExtractArgs) -> anyhow::Result<()> {
    let bytes = if args.file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("failed to read stdin")?;
        b
    } else {
        std::fs::read(&args.file)
            .with_context(|| format!("failed to read {}", args.file.display()))?
    };
    let html = String::from_utf8_lossy(&bytes);
    let options = ExtractOptions {
        html_transformer: match args.transformer {
            Transformer::ReadableText => HtmlTransformer::ReadableText,
            Transformer::ReadableTextIfPossible => HtmlTransformer::ReadableTextIfPossible,
            Transformer::None => HtmlTransformer::None,
        },
        save_markdown: args.format == ExtractFormat::Markdown,
        save_html: args.format == ExtractFormat::Html,
        ..ExtractOptions::default()
    };
    let out = extract(&html, &args.url, &options);
    let body = match args.format {
        ExtractFormat::Markdown => out.markdown.unwrap_or_default(),
        ExtractFormat::Text => out.text,
        ExtractFormat::Html => out.html.unwrap_or_default(),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(body.as_bytes())?;
    stdout.write_all(b"\n")?;
    Ok(())
}

fn build_input(args: &CrawlArgs) -> anyhow::Result<CrawlInput> {
    let mut value = match &args.input {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?
        }
        None => serde_json::json!({}),
    };
    let Some(obj) = value.as_object_mut() else {
        bail!("the WCC input must be a JSON object");
    };
    if !args.urls.is_empty() {
        obj.insert("startUrls".into(), serde_json::json!(args.urls));
    }
    let mut set = |k: &str, v: serde_json::Value| {
        obj.insert(k.to_string(), v);
    };
    if let Some(n) = args.max_pages {
        set("maxCrawlPages", n.into());
    }
    if let Some(n) = args.max_results {
        set("maxResults", n.into());
    }
    if let Some(n) = args.max_depth {
        set("maxCrawlDepth", n.into());
    }
    if !args.include.is_empty() {
        set("includeUrlGlobs", serde_json::json!(args.include));
    }
    if !args.exclude.is_empty() {
        set("excludeUrlGlobs", serde_json::json!(args.exclude));
    }
    if let Some(n) = args.concurrency {
        set("maxConcurrency", n.into());
    }
    if args.respect_robots {
        set("respectRobotsTxtFile", true.into());
    }
    if args.sitemaps {
        set("useSitemaps", true.into());
    }
    if args.llms_txt {
        set("useLlmsTxt", true.into());
    }
    if let Some(t) = &args.crawler_type {
        set("crawlerType", t.clone().into());
    }
    let input = CrawlInput::from_json(value)?;
    input.validate()?;
    Ok(input)
}

fn progress_line(p: &Progress) -> String {
    let rate = if p.elapsed_secs > 0.0 {
        p.done as f64 / p.elapsed_secs
    } else {
        0.0
    };
    format!(
        "\r{} done, {} queued, {} in flight, {} items, {} errors, {} skipped, {:.1} pages/s   ",
        p.done, p.queued, p.in_flight, p.items, p.failed, p.skipped, rate
    )
}

/// Runs a crawl and writes its items as JSONL.
pub async fn crawl_command(args: CrawlArgs) -> anyhow::Result<()> {
    let input = build_input(&args)?;
    for field in input.ignored_inputs() {
        eprintln!("note: input field {field} is not applied");
    }
    for field in input.unknown_inputs() {
        eprintln!("note: unknown input field {field} is ignored");
    }
    let (settings, browser) = crawl_settings(&args, &input);
    let writer = open_output(&args.out)?;
    let mut writer = BufWriter::new(writer);
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let show = !args.quiet;
    let tty = std::io::stderr().is_terminal();
    let mut write_error: Option<std::io::Error> = None;
    let cancel_on_error = cancel.clone();
    let summary = crawl(&input, &settings, cancel, |event| match event {
        Event::Item(item) => {
            if write_error.is_some() {
                return;
            }
            let line = serde_json::to_string(&item).unwrap_or_default();
            if let Err(e) = writeln!(writer, "{line}") {
                write_error = Some(e);
                cancel_on_error.cancel();
            }
        }
        Event::Progress(p) => {
            if show {
                let line = progress_line(&p);
                if tty {
                    eprint!("{line}");
                } else {
                    eprintln!("{}", line.trim());
                }
            }
        }
        Event::Failed { url, error } => {
            if show {
                eprintln!("\rfailed: {url}: {error}");
            }
        }
        Event::Skipped { .. } => {}
    })
    .await?;
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("failed to write {}", args.out.display()));
    }
    writer
        .flush()
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    if show {
        eprintln!();
    }
    if let Some(b) = &browser {
        b.shut_down().await;
    }
    eprintln!("{}", summary_line(&summary));
    if summary.stop_reason == StopReason::Aborted {
        bail!("crawl aborted");
    }
    Ok(())
}

/// The crawler's settings from the command's flags, and the browser they start (when
/// the crawler type renders and the executable exists).
fn crawl_settings(args: &CrawlArgs, input: &CrawlInput) -> (CrawlerSettings, Option<Chromium>) {
    let browser = (input.crawler_type.uses_browser() && args.browser.is_file()).then(|| {
        Chromium::new(ChromiumConfig {
            executable: args.browser.clone(),
            ..ChromiumConfig::default()
        })
    });
    if input.crawler_type.uses_browser() && browser.is_none() {
        eprintln!(
            "note: {} not found; pages are read over HTTP",
            args.browser.display()
        );
    }
    let settings = CrawlerSettings {
        allow_private_networks: args.allow_private_networks,
        per_host_concurrency: args.per_host_concurrency.max(1),
        per_host_delay: Duration::from_millis(args.per_host_delay_ms),
        overall_timeout: args.timeout_secs.map(Duration::from_secs),
        renderer: browser
            .clone()
            .map(|b| Arc::new(b) as Arc<dyn agentbase_crawler::browser::Renderer>),
        ..CrawlerSettings::default()
    };
    (settings, browser)
}

/// Where items go: standard output for `-`, else a new file.
fn open_output(out: &std::path::Path) -> anyhow::Result<Box<dyn Write + Send>> {
    Ok(if out.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(out)
                .with_context(|| format!("failed to create {}", out.display()))?,
        )
    })
}

/// The last line: why the crawl stopped and its counts.
fn summary_line(summary: &agentbase_crawler::CrawlSummary) -> String {
    let p = &summary.progress;
    format!(
        "{}: {} items ({} rendered), {} pages, {} errors, {} skipped in {:.1}s",
        match summary.stop_reason {
            StopReason::Finished => "finished",
            StopReason::MaxCrawlPages => "stopped at maxCrawlPages",
            StopReason::MaxResults => "stopped at maxResults",
            StopReason::Aborted => "aborted",
            StopReason::TimedOut => "timed out",
        },
        p.items,
        p.rendered,
        p.done,
        p.failed,
        p.skipped,
        p.elapsed_secs
    )
}
