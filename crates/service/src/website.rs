//! Website sources fetched with the built-in crawler: a link source's options
//! become a `CrawlSpec` (`individual`: the page alone; `crawl`: the site under the
//! URL; `sitemap`: the URLs the sitemap lists) in `playwright:adaptive` mode (pages
//! rendered when they need it, with the renderer given), and its pages come back as
//! Markdown documents. `includeOnlyPaths` / `excludePaths` are regular expressions
//! on the URL's path and query, as on chatbase.co; they are the crawl's `PathRules`,
//! so a page they refuse is never fetched (the start URL is, for its links, but
//! yields no page).

use std::sync::Arc;
use std::time::Duration;

use agentbase_core::knowledge::{Document, LinkOptions, LinkType};
use agentbase_crawler::browser::Renderer;
use agentbase_crawler::{
    CancellationToken, CrawlSpec, CrawlerSettings, CrawlerType, DocumentReader, Event, Limits,
    PathRules, StartUrls, crawl,
};

use crate::extractor::Extractor;
use crate::knowledge::{FetchFuture, SiteFetcher};
use crate::settings::CrawlerConfig;

/// Fetches link sources with `agentbase-crawler`.
pub struct CrawlFetcher {
    config: CrawlerConfig,
    extractor: Extractor,
    renderer: Option<Arc<dyn Renderer>>,
}

/// The crawler's reader for PDFs it finds: the upload path's extraction, under the
/// extractor's limits (a worker process in the server).
pub fn document_reader(extractor: Extractor) -> DocumentReader {
    DocumentReader(Arc::new(
        move |content_type: String, bytes: bytes::Bytes| {
            let extractor = extractor.clone();
            Box::pin(async move {
                extractor
                    .extract("document.pdf", Some(&content_type), bytes.to_vec())
                    .await
                    .map(|doc| doc.markdown)
                    .map_err(|e| e.to_string())
            })
        },
    ))
}

impl CrawlFetcher {
    pub fn new(config: CrawlerConfig, extractor: Extractor) -> Self {
        Self {
            config,
            extractor,
            renderer: None,
        }
    }

    /// Renders the pages that need it with `renderer`.
    pub fn with_renderer(mut self, renderer: Arc<dyn Renderer>) -> Self {
        self.renderer = Some(renderer);
        self
    }

    fn settings(&self, slow: bool) -> CrawlerSettings {
        CrawlerSettings {
            allow_private_networks: self.config.allow_private_networks,
            per_host_concurrency: if slow { 1 } else { 4 },
            per_host_delay: if slow {
                Duration::from_millis(1000)
            } else {
                Duration::ZERO
            },
            overall_timeout: Some(Duration::from_secs(self.config.timeout_secs)),
            // PDFs linked from the site are read like uploaded ones.
            documents: Some(document_reader(self.extractor.clone())),
            max_frontier: self.config.max_frontier,
            renderer: self.renderer.clone(),
            ..CrawlerSettings::default()
        }
    }
}

/// The crawl of a link source: its URL, how deep its link type goes, its path rules.
fn spec(url: &str, options: &LinkOptions, config: &CrawlerConfig) -> Result<CrawlSpec, String> {
    let paths = PathRules::new(&options.include_only_paths, &options.exclude_paths)
        .map_err(|e| e.to_string())?;
    let start = StartUrls::parse([url]).map_err(|e| e.to_string())?;
    let max_depth = match options.link_type {
        LinkType::Individual => 0,
        LinkType::Crawl => config.max_depth,
        // The sitemap's URLs are crawled at depth 1.
        LinkType::Sitemap => 1,
    };
    let mut spec = CrawlSpec::new(start);
    spec.scope.paths = paths;
    spec.limits = Limits {
        max_depth,
        max_pages: config.max_pages,
        ..Limits::default()
    };
    // The node's cap on one crawl's concurrent requests holds for link sources as
    // for runs (WCC's default is 200).
    spec.limits.cap_concurrency(config.max_concurrency);
    spec.respect_robots_txt = true;
    spec.crawler_type = CrawlerType::Adaptive;
    Ok(spec)
}

impl SiteFetcher for CrawlFetcher {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
        options: &'a LinkOptions,
        progress: &'a (dyn Fn(usize, usize) + Send + Sync),
    ) -> FetchFuture<'a> {
        Box::pin(async move {
            let spec = spec(url, options, &self.config)?;
            let mut pages = Vec::new();
            let summary = crawl(
                &spec,
                &self.settings(options.slow_scraping),
                CancellationToken::new(),
                |event| match event {
                    Event::Item(item) => {
                        let markdown = item.markdown.clone().unwrap_or_else(|| item.text.clone());
                        if !markdown.trim().is_empty() {
                            pages.push(Document {
                                title: item
                                    .metadata
                                    .title
                                    .clone()
                                    .filter(|t| !t.is_empty())
                                    .unwrap_or_else(|| item.url.clone()),
                                url: Some(item.url.clone()),
                                markdown,
                            });
                        }
                    }
                    // Pages being fetched are still to do.
                    Event::Progress(p) => {
                        progress(p.done as usize, (p.queued + p.in_flight) as usize)
                    }
                    _ => {}
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            tracing::info!(url, pages = pages.len(), stop = ?summary.stop_reason, "website fetched");
            Ok(pages)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(link_type: LinkType, include: &[&str], exclude: &[&str]) -> LinkOptions {
        LinkOptions {
            link_type,
            include_only_paths: include.iter().map(|s| s.to_string()).collect(),
            exclude_paths: exclude.iter().map(|s| s.to_string()).collect(),
            slow_scraping: false,
        }
    }

    #[test]
    fn bad_patterns_are_named() {
        let config = CrawlerConfig::default();
        let o = options(LinkType::Crawl, &[], &["("]);
        let e = spec("https://docs.example.com/", &o, &config).unwrap_err();
        assert!(e.starts_with("excludePaths: `(`"), "{e}");
        let o = options(LinkType::Crawl, &["(", "ok"], &[]);
        let e = spec("https://docs.example.com/", &o, &config).unwrap_err();
        assert!(e.starts_with("includeOnlyPaths: `(`"), "{e}");
    }

    #[test]
    fn link_types_set_the_depth_and_paths_are_matched_without_the_host() {
        let config = CrawlerConfig::default();
        let o = options(LinkType::Individual, &["^/guide/"], &["intro"]);
        let s = spec("https://docs.example.com/guide/", &o, &config).unwrap();
        assert_eq!(s.limits.max_depth, 0);
        assert_eq!(s.limits.max_pages, config.max_pages);
        assert!(s.respect_robots_txt);
        let url = |u| agentbase_crawler::Url::parse(u).unwrap();
        assert!(
            s.scope
                .paths
                .check(&url("https://docs.example.com/guide/a?x=1"))
                .is_ok()
        );
        assert!(
            s.scope
                .paths
                .check(&url("https://docs.example.com/guide/intro"))
                .is_err()
        );
        assert!(
            s.scope
                .paths
                .check(&url("https://guide.example.com/"))
                .is_err()
        );
        let o = options(LinkType::Sitemap, &[], &[]);
        let s = spec("https://docs.example.com/sitemap.xml", &o, &config).unwrap();
        assert_eq!(s.limits.max_depth, 1);
    }

    #[test]
    fn the_nodes_concurrency_cap_bounds_link_sources() {
        let o = options(LinkType::Crawl, &[], &[]);
        let config = CrawlerConfig {
            max_concurrency: 3,
            ..CrawlerConfig::default()
        };
        let s = spec("https://docs.example.com/", &o, &config).unwrap();
        assert_eq!(s.limits.max_concurrency.get(), 3);
        // 0 leaves WCC's default.
        let config = CrawlerConfig {
            max_concurrency: 0,
            ..CrawlerConfig::default()
        };
        let s = spec("https://docs.example.com/", &o, &config).unwrap();
        assert_eq!(s.limits.max_concurrency, Limits::default().max_concurrency);
    }
}
