//! agentbase-crawler: a self-hosted, browser-less Website Content Crawler.
//!
//! [`extract::extract`] turns one HTML page into readable text, Markdown and metadata;
//! the crawl engine walks a site within WCC's scope rules and yields dataset items in
//! WCC's shape. The crate never touches the store: callers receive events and decide.

mod dom;
pub mod extract;
pub mod metric;
mod readability;
mod render;

pub use extract::{
    DEFAULT_REMOVE_ELEMENTS_CSS_SELECTOR, ExtractOptions, Extracted, HtmlTransformer,
    OpenGraphEntry, PageMetadata, SelectorError, extract,
};
