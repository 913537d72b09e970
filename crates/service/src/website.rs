//! Website sources fetched with the built-in crawler: a link source's options
//! become a WCC crawl (`individual`: the page alone; `crawl`: the site under the
//! URL; `sitemap`: the URLs the sitemap lists) in `playwright:adaptive` mode (pages
//! rendered when they need it, with the renderer given), and its pages come back as
//! Markdown documents. `includeOnlyPaths` / `excludePaths` are regular expressions
//! on the URL path, as on chatbase.co.

use std::sync::Arc;
use std::time::Duration;

use agentbase_core::knowledge::{Document, LinkOptions, LinkType};
use agentbase_crawler::browser::Renderer;
use agentbase_crawler::{
    CancellationToken, CrawlInput, CrawlerSettings, DocumentReader, Event, crawl,
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

fn compile(patterns: &[String], field: &str) -> Result<Vec<regex::Regex>, String> {
    patterns
        .iter()
        .map(|p| {
            regex::Regex::new(p)
                .map_err(|e| format!("{field}: `{p}` is not a valid regular expression: {e}"))
        })
        .collect()
}

fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

impl SiteFetcher for CrawlFetcher {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
        options: &'a LinkOptions,
        progress: &'a (dyn Fn(usize, usize) + Send + Sync),
    ) -> FetchFuture<'a> {
        Box::pin(async move {
            let include = compile(&options.include_only_paths, "includeOnlyPaths")?;
            let exclude = compile(&options.exclude_paths, "excludePaths")?;
            let depth = match options.link_type {
                LinkType::Individual => 0,
                LinkType::Crawl => self.config.max_depth,
                // The sitemap's URLs are crawled at depth 1.
                LinkType::Sitemap => 1,
            };
            let input = CrawlInput::from_json(serde_json::json!({
                "startUrls": [{"url": url}],
                "maxCrawlDepth": depth,
                "maxCrawlPages": self.config.max_pages,
                "respectRobotsTxtFile": true,
                "crawlerType": "playwright:adaptive",
            }))
            .map_err(|e| e.to_string())?;
            let mut pages = Vec::new();
            let summary = crawl(
                &input,
                &self.settings(options.slow_scraping),
                CancellationToken::new(),
                |event| match event {
                    Event::Item(item) => {
                        let path = path_of(&item.url);
                        let wanted = (include.is_empty()
                            || include.iter().any(|r| r.is_match(path)))
                            && !exclude.iter().any(|r| r.is_match(path));
                        let markdown = item.markdown.clone().unwrap_or_else(|| item.text.clone());
                        if wanted && !markdown.trim().is_empty() {
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

    #[test]
    fn paths_are_matched_without_the_host() {
        assert_eq!(
            path_of("https://docs.example.com/guide/intro?x=1"),
            "/guide/intro?x=1"
        );
        assert_eq!(path_of("https://docs.example.com"), "/");
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = compile(&["(".into()], "excludePaths").unwrap_err();
        assert!(e.starts_with("excludePaths: `(`"), "{e}");
    }
}
