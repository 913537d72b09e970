//! `agentbase crawl` (a Website Content Crawler run to a JSONL file, with a live
//! progress line) and `agentbase extract` (the cleaned content of one saved page).

use std::io::{BufWriter, IsTerminal, Read, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use agentbase_crawler::browser::{Chromium, ChromiumConfig};
use agentbase_crawler::{
    CancellationToken, CrawlInput, CrawlSpec, CrawlerSettings, CrawlerType, Event, ExtractOptions,
    HtmlTransformer, Progress, StartUrl, StartUrls, StopReason, UrlGlobs, crawl, extract,
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
    /// maxConcurrency: requests in flight at most (1 to 999).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=999))]
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
    pub crawler_type: Option<CrawlerType>,
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

/// The WCC input file, if given, with its start URLs replaced by the command's.
fn read_input(args: &CrawlArgs) -> anyhow::Result<Option<CrawlInput>> {
    let Some(path) = &args.input else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let value = serde_json::from_str::<serde_json::Value>(&text)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    if !value.is_object() {
        bail!("the WCC input must be a JSON object");
    }
    let mut input = CrawlInput::from_json(value)?;
    if !args.urls.is_empty() {
        input.start_urls = args.urls.iter().cloned().map(StartUrl::Url).collect();
    }
    Ok(Some(input))
}

/// The crawl the command asks for: the WCC input's when one is given, else its start
/// URLs with WCC's defaults; the flags override either.
fn build_spec(args: &CrawlArgs, input: Option<&CrawlInput>) -> anyhow::Result<CrawlSpec> {
    let mut spec = match input {
        Some(input) => CrawlSpec::try_from(input)?,
        None => CrawlSpec::new(StartUrls::parse(&args.urls)?),
    };
    let limits = &mut spec.limits;
    limits.max_pages = args.max_pages.unwrap_or(limits.max_pages);
    limits.max_results = args.max_results.unwrap_or(limits.max_results);
    limits.max_depth = args.max_depth.unwrap_or(limits.max_depth);
    if let Some(n) = args.concurrency.and_then(NonZeroU32::new) {
        limits.max_concurrency = n;
    }
    if !args.include.is_empty() {
        spec.scope.include_globs = UrlGlobs::parse("includeUrlGlobs", &args.include)?;
    }
    if !args.exclude.is_empty() {
        spec.scope.exclude_globs = UrlGlobs::parse("excludeUrlGlobs", &args.exclude)?;
    }
    spec.respect_robots_txt |= args.respect_robots;
    spec.use_sitemaps |= args.sitemaps;
    spec.use_llms_txt |= args.llms_txt;
    spec.crawler_type = args.crawler_type.unwrap_or(spec.crawler_type);
    Ok(spec)
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
    let input = read_input(&args)?;
    if let Some(input) = &input {
        for field in input.ignored_inputs() {
            eprintln!("note: input field {field} is not applied");
        }
        for field in input.unknown_inputs() {
            eprintln!("note: unknown input field {field} is ignored");
        }
    }
    let spec = build_spec(&args, input.as_ref())?;
    let (settings, browser) = crawl_settings(&args, &spec);
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
    let summary = crawl(&spec, &settings, cancel, |event| match event {
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
fn crawl_settings(args: &CrawlArgs, spec: &CrawlSpec) -> (CrawlerSettings, Option<Chromium>) {
    let browser = (spec.crawler_type.uses_browser() && args.browser.is_file()).then(|| {
        Chromium::new(ChromiumConfig {
            executable: args.browser.clone(),
            ..ChromiumConfig::default()
        })
    });
    if spec.crawler_type.uses_browser() && browser.is_none() {
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
fn open_output(out: &Path) -> anyhow::Result<Box<dyn Write + Send>> {
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: CrawlArgs,
    }

    fn args(argv: &[&str]) -> CrawlArgs {
        let argv = ["agentbase-crawl"]
            .iter()
            .chain(argv)
            .chain(&["--out", "-"]);
        Command::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn flags_build_the_spec_over_wccs_defaults() {
        let a = args(&[
            "https://a.test/docs/",
            "--max-depth",
            "2",
            "--concurrency",
            "3",
            "--exclude",
            "https://a.test/docs/private/**",
            "--crawler-type",
            "cheerio",
            "--sitemaps",
        ]);
        let spec = build_spec(&a, None).unwrap();
        assert_eq!(spec.start.urls()[0].as_str(), "https://a.test/docs/");
        assert_eq!(spec.limits.max_depth, 2);
        assert_eq!(spec.limits.max_concurrency.get(), 3);
        assert_eq!(spec.limits.max_pages, 9_999_999);
        assert!(
            spec.scope
                .exclude_globs
                .is_match("https://a.test/docs/private/x")
        );
        assert_eq!(spec.crawler_type, CrawlerType::Cheerio);
        assert!(spec.use_sitemaps && !spec.use_llms_txt);
        let e = build_spec(&args(&["https://a.test/", "--include", ""]), None).unwrap_err();
        assert!(e.to_string().starts_with("includeUrlGlobs: "), "{e}");
        assert!(build_spec(&args(&["ftp://a.test/"]), None).is_err());
        assert!(
            Command::try_parse_from(["c", "https://a.test/", "--concurrency", "0", "--out", "-"])
                .is_err()
        );
        assert!(
            Command::try_parse_from(["c", "https://a.test/", "--crawler-type", "x", "--out", "-"])
                .is_err()
        );
    }

    #[test]
    fn the_input_files_start_urls_give_way_to_the_commands() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            r#"{"startUrls": ["https://file.test/"], "maxCrawlDepth": 1, "saveScreenshots": true}"#,
        )
        .unwrap();
        let path = file.path().to_str().unwrap();
        let a = args(&["https://flag.test/", "--input", path, "--max-pages", "5"]);
        let input = read_input(&a).unwrap().unwrap();
        assert_eq!(input.ignored_inputs(), vec!["saveScreenshots"]);
        let spec = build_spec(&a, Some(&input)).unwrap();
        assert_eq!(spec.start.urls()[0].as_str(), "https://flag.test/");
        assert_eq!((spec.limits.max_depth, spec.limits.max_pages), (1, 5));
    }
}
