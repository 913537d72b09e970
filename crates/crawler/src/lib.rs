//! agentbase-crawler: a self-hosted Website Content Crawler.
//!
//! [`extract::extract`] turns one HTML page into readable text, Markdown and metadata;
//! [`crawl()`] runs a [`CrawlSpec`] (a typed, checked crawl: WCC's input converts to one
//! with `CrawlSpec::try_from(&CrawlInput)`), walking a site within its scope and
//! yielding dataset items in WCC's shape, over HTTP or, per the crawler type, rendered
//! by a [`browser::Renderer`] ([`browser::Chromium`] drives Debian's chromium). The
//! crate never touches the store: callers receive events and decide.

#![forbid(unsafe_code)]

pub mod background;
pub mod browser;
mod cookies;
mod crawl;
mod dom;
pub mod extract;
pub mod glob;
pub mod input;
pub mod metric;
pub mod nesting;
pub mod net;
mod readability;
mod render;
mod rendering;
pub mod robots;
pub mod scratch;
pub mod spec;

pub use crawl::{
    CrawlError, CrawlInfo, CrawlSummary, CrawlerSettings, DatasetItem, DocumentReader, Event,
    ItemMetadata, PostError, Progress, ReadDocument, RedirectHop, StopReason, USER_AGENT,
    check_target, crawl, fetch_url, normalize_url, post_guarded,
};
pub use extract::{
    DEFAULT_REMOVE_ELEMENTS_CSS_SELECTOR, ExtractOptions, Extracted, HtmlTransformer,
    OpenGraphEntry, PageMetadata, SelectorError, extract, extract_with_frames,
};
pub use input::{
    BROWSER_ONLY_INPUTS, Cookie, CrawlInput, CrawlerType, GlobInput, InputError, StartUrl,
    UNSUPPORTED_INPUTS,
};
pub use rendering::{BlockedRequest, CrawlMode, RenderingMemory};
pub use spec::{
    CrawlSpec, CssSelector, CustomHeaders, FetchOptions, InitialCookie, Limits, PathRules, Percent,
    RenderOptions, Scope, StartUrls, UrlGlobs,
};
pub use tokio_util::sync::CancellationToken;
/// The URL type of the spec's start URLs and path rules.
pub use url::Url;
