//! Browser rendering for the crawler. [`Renderer`] is what the crawl engine asks to
//! render a page; [`Chromium`] implements it by driving Debian's `chromium` over the
//! DevTools protocol ([`cdp`]). The browser has no network of its own: every request a
//! page makes is paused by request interception and handed to a [`PageNetwork`] the
//! crawler supplies, which runs it through the crawler's HTTP client (SSRF guard,
//! cookie jar, header rules, size cap) and answers with the response or a refusal.

mod cdp;
mod chromium;
mod tab;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub use crate::cookies::BrowserCookie;
pub use chromium::{BrowserStats, Chromium, ChromiumConfig, process_tree};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a rendered page does before its HTML is taken (WCC's browser inputs).
#[derive(Debug, Clone, PartialEq)]
pub struct PageOptions {
    /// Cap on waiting for the network to go idle after load (`dynamicContentWaitSecs`).
    pub dynamic_wait: Duration,
    /// The page fails unless this appears (`waitForSelector`).
    pub wait_for_selector: Option<String>,
    /// Waited for, without failing (`softWaitForSelector`).
    pub soft_wait_for_selector: Option<String>,
    /// Clicked before extraction (`clickElementsCssSelector`).
    pub click_selector: Option<String>,
    /// `maxScrollHeightPixels` (0: no scrolling).
    pub max_scroll_pixels: u64,
    pub remove_cookie_warnings: bool,
    /// Same-origin iframes are inlined where they stand (`expandIframes`).
    pub expand_iframes: bool,
    /// Images, video and audio are refused (`blockMedia`).
    pub block_media: bool,
    /// The rendered HTML may not be larger than this.
    pub max_html_bytes: usize,
}

impl Default for PageOptions {
    fn default() -> Self {
        Self {
            dynamic_wait: Duration::from_secs(10),
            wait_for_selector: None,
            soft_wait_for_selector: None,
            click_selector: Some("[aria-expanded=\"false\"]".to_string()),
            max_scroll_pixels: 5000,
            remove_cookie_warnings: true,
            expand_iframes: true,
            block_media: false,
            max_html_bytes: 10 * 1024 * 1024,
        }
    }
}

/// One request a page makes, as the browser was about to send it.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub url: Url,
    pub method: String,
    /// The browser's headers (its `Cookie` header included).
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// DevTools' resource type: `Document`, `Script`, `XHR`, `Fetch`, `Image`, …
    pub resource_type: String,
    /// Whether this is a navigation of the page itself (not of an iframe).
    pub main_frame_document: bool,
}

/// How the crawler answered a page's request.
#[derive(Debug, Clone)]
pub enum PageResponse {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: bytes::Bytes,
    },
    /// Refused (the SSRF guard, a limit): the page sees a failed request.
    Blocked(String),
    /// Could not be fetched (network error, timeout, too large).
    Failed(String),
}

/// Serves the requests of one page being rendered.
pub trait PageNetwork: Send + Sync {
    fn fetch(&self, request: PageRequest) -> BoxFuture<'static, PageResponse>;
}

/// A page to render.
pub struct RenderJob {
    /// The crawl asking: its pages share browser contexts, no other crawl's do.
    pub session: u64,
    pub url: Url,
    pub options: Arc<PageOptions>,
    pub network: Arc<dyn PageNetwork>,
    /// The whole render (load, waits, clicks, scrolling, extraction) ends by then.
    pub timeout: Duration,
    /// Cookies the browser context should hold before the page loads.
    pub cookies: Vec<BrowserCookie>,
    pub user_agent: String,
}

/// A rendered page.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The document's HTML after scripts ran, with the browser inputs applied.
    pub html: String,
    /// `location.href` at the end (history-API routes may have changed it).
    pub url: String,
    /// The cookies the context ended with, for the crawl's jar.
    pub cookies: Vec<BrowserCookie>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// No browser can be used (not installed, failed to start).
    #[error("no browser: {0}")]
    Unavailable(String),
    /// The page itself failed (time limit, memory limit, a missing `waitForSelector`);
    /// worth a retry like any failed request.
    #[error("{0}")]
    Page(String),
}

/// Renders pages in a browser. The crawl engine calls it; [`Chromium`] implements it.
pub trait Renderer: Send + Sync + std::fmt::Debug {
    fn render(&self, job: RenderJob) -> BoxFuture<'_, Result<Rendered, RenderError>>;

    /// The crawl `session` is over: whatever the renderer keeps for it can go.
    fn end_session(&self, _session: u64) {}
}
