//! When and how a page is rendered, per WCC's `crawlerType`: `cheerio` never,
//! `playwright:firefox`/`chrome` always, `playwright:adaptive` when it matters. Adaptive
//! mode reads every page over HTTP first, sorts it into a kind by cheap signs in the raw
//! HTML (an empty shell, things to click, a script mount point, a "turn on JavaScript"
//! notice), and renders the first page of each kind on each site to compare: if
//! rendering changed the text or the links by `clientSideMinChangePercentage`, pages of
//! that kind are rendered from then on; otherwise they stay on HTTP and are checked
//! again after `100 / renderingTypeDetectionPercentage` pages, the gap doubling while
//! the verdict holds, and while the time spent rendering to decide stays within
//! `renderingTypeDetectionPercentage` of the crawl's time. Also here: the
//! [`PageNetwork`] that serves a rendered page's requests through the crawler's own
//! client, and HTTP mode's `expandIframes`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap};
use scraper::Selector;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, OnceCell};
use url::Url;

use crate::browser::{
    BoxFuture, PageNetwork, PageOptions, PageRequest, PageResponse, RenderError, RenderJob,
    Renderer,
};
use crate::crawl::{CrawlerSettings, EarlyLinks, Response, Shared, decode, fetch_once, host_key};
use crate::extract::{Extracted, extract_page};
use crate::input::CrawlerType;
use crate::net::{find_blocked, non_public_reason};
use crate::spec::{CssSelector, FetchOptions, RenderOptions};

/// Iframes of one page fetched in HTTP mode.
const MAX_FRAMES_PER_PAGE: usize = 5;
/// Distinct iframe documents remembered per crawl (mdBook's `toc.html` is one).
const MAX_FRAMES_CACHED: usize = 512;
/// Scripts, styles and images a crawl keeps for its rendered pages.
const RESOURCE_CACHE_BYTES: usize = 64 << 20;
const RESOURCE_MAX_BYTES: usize = 8 << 20;
/// Sites an adaptive memory keeps.
const MAX_SITES: usize = 10_000;
/// Longest gap between two checks of a kind of page judged static.
const MAX_RECHECK_GAP: u32 = 1024;
/// Pages larger than this are not picked to check a verdict again.
const MAX_RECHECK_BYTES: usize = 512 << 10;

/// Kind bits saying the raw page may be an empty shell (see `page_kind`).
const SHELL_SIGNS: u8 = 1 | 4 | 8;
/// Less readable text than this, with scripts, looks like a shell.
const SHELL_TEXT_CHARS: usize = 80;

/// Which crawler produced an item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CrawlMode {
    /// The HTML as served (iframes possibly inlined).
    #[default]
    Http,
    /// The page rendered in the browser.
    Browser,
}

impl CrawlMode {
    pub fn is_http(&self) -> bool {
        *self == CrawlMode::Http
    }
}

/// A request of a rendered page that the SSRF guard refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedRequest {
    pub url: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default)]
struct Kind {
    /// Comparisons made (rendered and HTTP text side by side).
    checks: u32,
    /// The last comparison found that rendering changes the page.
    client: bool,
    /// A comparison is under way; pages of this kind wait for its verdict.
    pending: bool,
    /// Pages sent over HTTP since the last comparison, and how many may go before the next.
    since: u32,
    gap: u32,
}

/// What adaptive mode has learnt, per site and kind of page. One per crawl, or shared
/// by the crawls of a process that set `reuseStoredDetectionResults`.
#[derive(Debug, Default)]
pub struct RenderingMemory {
    sites: Mutex<HashMap<String, HashMap<u8, Kind>>>,
    changed: Notify,
}

enum Plan {
    Http,
    /// Render the page for its item: the first of its kind, or its kind needs it.
    Render(Why),
    /// Serve the page over HTTP and check its kind's verdict again in the background.
    Recheck,
    Wait,
}

/// Why a page is rendered and compared with its HTML as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// The first page of its kind on its site: its verdict decides the kind's.
    First,
    /// Its kind needs the browser (the comparison watches for the verdict to change).
    Needed,
    /// Its kind was judged static; checked again beside the crawl.
    Recheck,
}

impl RenderingMemory {
    /// What to do with a page of `kind` on `site`. A recheck is due after `gap` pages
    /// of the kind, and only made when `may_recheck` (the crawl's time budget for
    /// deciding has room).
    fn plan(
        &self,
        site: &str,
        kind: u8,
        first_gap: u32,
        html_bytes: usize,
        may_recheck: bool,
    ) -> Plan {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        if sites.len() >= MAX_SITES && !sites.contains_key(site) {
            sites.clear();
        }
        let k = sites
            .entry(site.to_string())
            .or_default()
            .entry(kind)
            .or_default();
        if k.checks == 0 {
            if k.pending {
                // An empty shell waits for the verdict; a page with text of its own goes
                // on over HTTP meanwhile.
                return if kind & SHELL_SIGNS != 0 {
                    Plan::Wait
                } else {
                    Plan::Http
                };
            }
            k.pending = true;
            k.gap = first_gap;
            return Plan::Render(Why::First);
        }
        if k.client {
            return Plan::Render(Why::Needed);
        }
        k.since += 1;
        // A huge page (a book's print-all page) is a costly sample; the next one is
        // checked instead. So is any page while the budget is spent.
        if k.since >= k.gap && !k.pending && html_bytes <= MAX_RECHECK_BYTES && may_recheck {
            k.since = 0;
            k.pending = true;
            Plan::Recheck
        } else {
            Plan::Http
        }
    }

    fn record(&self, site: &str, kind: u8, changed: bool, first_gap: u32) {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let k = sites
            .entry(site.to_string())
            .or_default()
            .entry(kind)
            .or_default();
        k.checks += 1;
        k.pending = false;
        k.gap = if changed != k.client || k.checks == 1 {
            first_gap
        } else {
            (k.gap.saturating_mul(2)).min(MAX_RECHECK_GAP)
        };
        k.client = changed;
        drop(sites);
        self.changed.notify_waiters();
    }

    /// A render that was to decide failed: the next page of the kind tries again.
    fn abandon(&self, site: &str, kind: u8) {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = sites.get_mut(site).and_then(|s| s.get_mut(&kind)) {
            k.pending = false;
        }
        drop(sites);
        self.changed.notify_waiters();
    }

    /// Whether pages of `kind` on `site` are rendered (for tests and reports).
    pub fn renders(&self, site: &str, kind: u8) -> Option<bool> {
        let sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        sites
            .get(site)
            .and_then(|s| s.get(&kind))
            .filter(|k| k.checks > 0)
            .map(|k| k.client)
    }
}

/// A cached response: status, headers, body.
type Cached = (u16, Vec<(String, String)>, Bytes);
/// An iframe document fetched once per crawl (`None`: not HTML, or it failed).
type FrameDocument = Arc<OnceCell<Option<Arc<String>>>>;

/// Bounded cache of a crawl's scripts, styles and images for its rendered pages.
#[derive(Default)]
struct Resources {
    map: HashMap<String, Cached>,
    bytes: usize,
}

impl Resources {
    fn get(&self, key: &str) -> Option<PageResponse> {
        let (status, headers, body) = self.map.get(key)?;
        Some(PageResponse::Response {
            status: *status,
            headers: headers.clone(),
            body: body.clone(),
        })
    }

    /// Keeps a response while it and the cache stay under their byte bounds.
    fn offer(&mut self, key: String, response: Cached) {
        let len = response.2.len();
        if len <= RESOURCE_MAX_BYTES
            && self.bytes + len <= RESOURCE_CACHE_BYTES
            && !self.map.contains_key(&key)
        {
            self.bytes += len;
            self.map.insert(key, response);
        }
    }
}

/// A response's body, refused past `max` bytes (by its length header or as it
/// arrives).
async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Bytes, String> {
    if resp.content_length().is_some_and(|l| l as usize > max) {
        return Err(format!("larger than {max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// A crawl's rendering state.
pub(crate) struct Rendering {
    pub kind: CrawlerType,
    pub renderer: Option<Arc<dyn Renderer>>,
    pub page: Arc<PageOptions>,
    /// Identifies this crawl to the renderer (its pages share browser contexts).
    pub session: u64,
    pub expand_iframes: bool,
    pub memory: Arc<RenderingMemory>,
    /// `clientSideMinChangePercentage` as a fraction.
    min_change: f64,
    /// Pages of a static kind between the first two checks.
    first_gap: u32,
    click_probe: Option<Selector>,
    timeout: Duration,
    retries: u32,
    frames: Mutex<HashMap<String, FrameDocument>>,
    resources: Mutex<Resources>,
    /// To the crawl loop: the raw links of a page about to be compared in the browser.
    early: tokio::sync::mpsc::UnboundedSender<EarlyLinks>,
    /// Re-checks running beside the crawl; aborted when it ends.
    pub background: Mutex<tokio::task::JoinSet<()>>,
    /// When the crawl started, the time its renders to decide took (first pages of a
    /// kind and rechecks), and the share of the crawl's time they may take before
    /// rechecks wait (`renderingTypeDetectionPercentage`).
    started: Instant,
    deciding: Mutex<Duration>,
    deciding_share: f64,
}

impl Rendering {
    /// The rendering state of a crawl by `kind` (`jsdom` runs as `cheerio`); the
    /// renderer and the shared memory come from `settings`.
    pub fn new(
        kind: CrawlerType,
        options: &RenderOptions,
        expand_iframes: bool,
        fetch: &FetchOptions,
        settings: &CrawlerSettings,
        early: tokio::sync::mpsc::UnboundedSender<EarlyLinks>,
    ) -> Rendering {
        static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let kind = match kind {
            CrawlerType::Jsdom => CrawlerType::Cheerio,
            k => k,
        };
        let text = |s: &Option<CssSelector>| s.as_ref().map(|s| s.as_str().to_string());
        Rendering {
            kind,
            renderer: settings.renderer.clone().filter(|_| kind.uses_browser()),
            page: Arc::new(PageOptions {
                dynamic_wait: options.dynamic_content_wait,
                wait_for_selector: text(&options.wait_for_selector),
                soft_wait_for_selector: text(&options.soft_wait_for_selector),
                click_selector: text(&options.click_elements),
                max_scroll_pixels: options.max_scroll_height_pixels,
                remove_cookie_warnings: options.remove_cookie_warnings,
                expand_iframes,
                block_media: options.block_media,
                max_html_bytes: settings.max_page_bytes,
            }),
            session: SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            expand_iframes,
            memory: match &settings.rendering_memory {
                Some(m) if options.reuse_stored_detection_results => m.clone(),
                _ => Arc::new(RenderingMemory::default()),
            },
            min_change: f64::from(options.client_side_min_change.get()) / 100.0,
            first_gap: (100 / options.rendering_type_detection.get()).max(1),
            deciding_share: f64::from(options.rendering_type_detection.get()) / 100.0,
            click_probe: options
                .click_elements
                .as_ref()
                .map(|s| s.selector().clone()),
            timeout: fetch.timeout,
            retries: fetch.max_retries,
            frames: Mutex::new(HashMap::new()),
            resources: Mutex::new(Resources::default()),
            early,
            background: Mutex::new(tokio::task::JoinSet::new()),
            started: Instant::now(),
            deciding: Mutex::new(Duration::ZERO),
        }
    }

    /// Whether a recheck may start: rendering to decide has so far taken no more
    /// than its share of the crawl's time. On a crawl that waits on the network
    /// this never binds; on a fast one (a local site, where every CPU-second of
    /// the browser is taken from the crawl) it spaces rechecks by time.
    fn may_recheck(&self) -> bool {
        let spent = *self.deciding.lock().unwrap_or_else(|p| p.into_inner());
        spent.as_secs_f64() <= self.deciding_share * self.started.elapsed().as_secs_f64()
    }

    fn spent_deciding(&self, took: Duration) {
        *self.deciding.lock().unwrap_or_else(|p| p.into_inner()) += took;
    }
}

/// One HTML page, extracted from the HTML as served or as rendered.
pub(crate) struct HtmlPage {
    pub extracted: Extracted,
    pub mode: CrawlMode,
    pub blocked: Vec<BlockedRequest>,
}

/// Extracts an HTML page, rendering it when the crawler type says so.
pub(crate) async fn html_page(
    shared: &Arc<Shared>,
    requested: &Url,
    resp: &Response,
    html: String,
) -> Result<HtmlPage, String> {
    let r = &shared.rendering;
    if r.kind.always_renders() {
        return render_with_retries(shared, requested, resp).await;
    }
    let adaptive = r.kind == CrawlerType::Adaptive && r.renderer.is_some();
    let html_bytes = html.len();
    let (raw, kind) = extract_as_served(shared, resp, html, adaptive).await?;
    let http = |extracted| HtmlPage {
        extracted,
        mode: CrawlMode::Http,
        blocked: Vec::new(),
    };
    if !adaptive {
        return Ok(http(raw));
    }
    let site = host_key(&resp.final_url);
    loop {
        let notified = r.memory.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match r
            .memory
            .plan(&site, kind, r.first_gap, html_bytes, r.may_recheck())
        {
            Plan::Http => return Ok(http(raw)),
            Plan::Recheck => {
                // The verdict so far says HTTP is enough: this page's item comes from
                // HTTP now, and the check runs beside the crawl, delaying nothing.
                recheck_beside(shared, requested, resp, raw.clone(), site, kind);
                return Ok(http(raw));
            }
            Plan::Wait => {
                // Another page of this kind is being compared; its verdict decides.
                if tokio::time::timeout(r.timeout, notified).await.is_err() {
                    return Ok(http(raw));
                }
            }
            Plan::Render(why) => {
                // A page with text of its own has its links too: they need not wait
                // for the browser.
                if kind & SHELL_SIGNS == 0 {
                    let _ = r.early.send(EarlyLinks {
                        requested: requested.to_string(),
                        referrer: resp.final_url.to_string(),
                        links: raw.links.clone(),
                    });
                }
                let doc = MainDocument::from(resp);
                return Ok(
                    match render_and_record(shared, requested, doc, &raw, &site, kind, why).await {
                        Some(page) => page,
                        None => http(raw),
                    },
                );
            }
        }
    }
}

/// `playwright:*` crawler types: every page is rendered, a failed render retried.
async fn render_with_retries(
    shared: &Arc<Shared>,
    requested: &Url,
    resp: &Response,
) -> Result<HtmlPage, String> {
    let mut attempt = 0;
    loop {
        match render(shared, requested, MainDocument::from(resp)).await {
            Ok(page) => return Ok(page),
            Err(RenderError::Page(e)) if attempt < shared.rendering.retries => {
                tracing::debug!(url = %resp.final_url, error = %e, "render failed; retrying");
                attempt += 1;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The page extracted from the HTML as served (its iframes inlined when asked), off
/// the runtime, with its kind when the adaptive crawler needs it (0 otherwise).
async fn extract_as_served(
    shared: &Arc<Shared>,
    resp: &Response,
    html: String,
    with_kind: bool,
) -> Result<(Extracted, u8), String> {
    let r = &shared.rendering;
    let frames = if r.expand_iframes {
        fetch_frames(shared, &html, &resp.final_url).await
    } else {
        Vec::new()
    };
    let options = shared.extract.clone();
    let probe = r.click_probe.clone();
    let page_url = resp.final_url.to_string();
    crate::background::spawn(move || {
        let (raw, clickables) = extract_page(&html, &page_url, &options, &frames, probe.as_ref());
        let kind = if with_kind {
            page_kind(&html, &raw, clickables)
        } else {
            0
        };
        (raw, kind)
    })
    .await
    .map_err(|e| format!("extraction failed: {e}"))
}

/// Renders the page beside the crawl and records whether rendering added enough
/// to matter, so later pages of its kind follow the verdict.
fn recheck_beside(
    shared: &Arc<Shared>,
    requested: &Url,
    resp: &Response,
    raw: Extracted,
    site: String,
    kind: u8,
) {
    let (shared2, requested, doc) = (shared.clone(), requested.clone(), MainDocument::from(resp));
    let mut background = shared
        .rendering
        .background
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    while background.try_join_next().is_some() {}
    background.spawn(async move {
        let _ = render_and_record(&shared2, &requested, doc, &raw, &site, kind, Why::Recheck).await;
    });
}

/// Renders the page, compares it with `raw` (the page as served) and records the
/// verdict for the site and kind; `None` when rendering failed. A recheck runs
/// beside the crawl, whose item came from HTTP already, so its failure is only
/// logged at debug level. The time of renders made to decide counts against the
/// crawl's budget for deciding.
async fn render_and_record(
    shared: &Arc<Shared>,
    requested: &Url,
    doc: MainDocument,
    raw: &Extracted,
    site: &str,
    kind: u8,
    why: Why,
) -> Option<HtmlPage> {
    let r = &shared.rendering;
    let url = doc.url.clone();
    let started = Instant::now();
    let rendered = render(shared, requested, doc).await;
    if why != Why::Needed {
        r.spent_deciding(started.elapsed());
    }
    match rendered {
        Ok(page) => {
            let change = change(raw, &page.extracted, &url);
            let client = change.matters(r.min_change);
            tracing::debug!(url = %url, kind, ?change, client, "rendering compared");
            r.memory.record(site, kind, client, r.first_gap);
            Some(page)
        }
        Err(e) => {
            r.memory.abandon(site, kind);
            if why == Why::Recheck {
                tracing::debug!(url = %url, error = %e, "rendering to check again failed");
            } else {
                tracing::warn!(url = %url, error = %e, "rendering failed; using the HTML as served");
            }
            None
        }
    }
}

/// The kind of a page, by what its raw HTML shows (bit flags).
fn page_kind(html: &str, raw: &Extracted, clickables: usize) -> u8 {
    let mut kind = 0;
    let scripts = count_ci(html, "<script");
    // A page with a sentence or two of its own is not a shell (a section's index page).
    if raw.text.trim().chars().count() < SHELL_TEXT_CHARS && scripts > 0 {
        kind |= 1; // an empty shell that scripts fill
    }
    if clickables > 0 {
        kind |= 2; // things a browser would click open
    }
    if [
        "id=\"root\"",
        "id=\"app\"",
        "id=\"__next\"",
        "id=\"__nuxt\"",
        "id=\"___gatsby\"",
        "id='root'",
        "id='app'",
    ]
    .iter()
    .any(|m| html.contains(m))
    {
        kind |= 4; // a single-page app's mount point
    }
    if let Some(i) = find_ci(html, "<noscript") {
        let end = (i + 600).min(html.len());
        let end = (end..=html.len())
            .find(|e| html.is_char_boundary(*e))
            .unwrap_or(html.len());
        if find_ci(&html[i..end], "javascript").is_some() {
            kind |= 8; // "this site needs JavaScript"
        }
    }
    kind
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

fn count_ci(hay: &str, needle: &str) -> usize {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() || h.len() < n.len() {
        return 0;
    }
    (0..=h.len() - n.len())
        .filter(|&i| h[i] == b'<' && h[i..i + n.len()].eq_ignore_ascii_case(n))
        .count()
}

/// What rendering added to a page. Only additions count: a rendered page that shows
/// less (a code editor that draws only the visible lines, a banner removed) does not
/// need the browser.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Change {
    /// Words the rendered text has beyond the raw one (counted with repeats).
    added_words: i64,
    /// `added_words` as a share of the rendered text's words.
    text_share: f64,
    /// Same-site links only the rendered page has.
    new_links: usize,
    /// `new_links` as a share of the rendered page's same-site links.
    link_share: f64,
}

/// Below these, a change is noise (a short page's keyboard help, a language menu).
const MIN_WORDS_ADDED: i64 = 20;
const MIN_NEW_LINKS: usize = 3;

impl Change {
    /// Whether the page needs rendering: its text or its links grow by `min_change`.
    fn matters(&self, min_change: f64) -> bool {
        (self.text_share >= min_change && self.added_words >= MIN_WORDS_ADDED)
            || (self.link_share >= min_change && self.new_links >= MIN_NEW_LINKS)
    }
}

/// Measures the words and same-site links rendering added to the raw page. Words are
/// runs of letters and digits, so punctuation that scripts rearrange (code highlighted
/// into spans, lines joined) is not mistaken for new text.
fn change(raw: &Extracted, rendered: &Extracted, page: &Url) -> Change {
    let words = |t: &str| -> HashMap<String, i64> {
        let mut m = HashMap::new();
        for w in t
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            *m.entry(w.to_lowercase()).or_insert(0) += 1;
        }
        m
    };
    let (a, b) = (words(&raw.text), words(&rendered.text));
    let nb: i64 = b.values().sum();
    let added: i64 = b
        .iter()
        .map(|(w, cb)| (cb - a.get(w).copied().unwrap_or(0)).max(0))
        .sum();
    let origin = page.origin();
    let same_site = |links: &[String]| -> HashSet<String> {
        links
            .iter()
            .filter_map(|l| Url::parse(l).ok())
            .filter(|u| u.origin() == origin)
            .map(|mut u| {
                u.set_fragment(None);
                u.to_string()
            })
            .collect()
    };
    let (la, lb) = (same_site(&raw.links), same_site(&rendered.links));
    let new_links = lb.difference(&la).count();
    Change {
        added_words: added,
        text_share: added as f64 / nb.max(1) as f64,
        new_links,
        link_share: new_links as f64 / lb.len().max(1) as f64,
    }
}

/// Renders the page the crawler fetched (its document is served from `resp`).
async fn render(
    shared: &Arc<Shared>,
    requested: &Url,
    doc: MainDocument,
) -> Result<HtmlPage, RenderError> {
    let r = &shared.rendering;
    let Some(renderer) = r.renderer.clone() else {
        return Err(RenderError::Unavailable(
            "no browser is configured for this crawler".to_string(),
        ));
    };
    let page_url = doc.url.clone();
    // A page the crawl reached by a redirect to another origin got no custom headers
    // over HTTP, so its requests get none either, not even back to the origin asked.
    let trusted = if page_url.origin() == requested.origin() {
        requested.origin()
    } else {
        url::Origin::new_opaque()
    };
    let net = Arc::new(PageNet {
        shared: shared.clone(),
        trusted,
        main: Mutex::new(Some(doc)),
        blocked: Mutex::new(Vec::new()),
    });
    let rendered = renderer
        .render(RenderJob {
            session: r.session,
            url: page_url.clone(),
            options: r.page.clone(),
            network: Arc::new(NetHandle(net.clone())),
            timeout: r.timeout,
            cookies: shared.jar.to_browser(),
            user_agent: shared.settings.user_agent.clone(),
        })
        .await?;
    shared.jar.merge_from_browser(&rendered.cookies);
    // A history-API route may have moved the page; links resolve against where it is.
    let base = Url::parse(&rendered.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .unwrap_or(page_url)
        .to_string();
    let options = shared.extract.clone();
    let html = rendered.html;
    let (extracted, _) =
        crate::background::spawn(move || extract_page(&html, &base, &options, &[], None))
            .await
            .map_err(|e| RenderError::Page(format!("extraction failed: {e}")))?;
    let blocked = std::mem::take(&mut *net.blocked.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(HtmlPage {
        extracted,
        mode: CrawlMode::Browser,
        blocked,
    })
}

struct MainDocument {
    url: Url,
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl From<&Response> for MainDocument {
    fn from(r: &Response) -> Self {
        MainDocument {
            url: r.final_url.clone(),
            status: r.status,
            headers: response_headers(&r.headers),
            body: Bytes::copy_from_slice(&r.body),
        }
    }
}

/// Response headers for the browser: the body it gets is already decoded.
fn response_headers(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-encoding"
                    | "content-length"
                    | "transfer-encoding"
                    | "connection"
                    | "keep-alive"
            )
        })
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Serves one rendered page's requests through the crawler's client.
struct PageNet {
    shared: Arc<Shared>,
    /// The origin the crawl asked for, when the page is on it: only its requests carry
    /// `customHttpHeaders` (an opaque origin, matching nothing, after a redirect away).
    trusted: url::Origin,
    /// The document the crawler already fetched, served to the page's first navigation.
    main: Mutex<Option<MainDocument>>,
    blocked: Mutex<Vec<BlockedRequest>>,
}

struct NetHandle(Arc<PageNet>);

impl PageNetwork for NetHandle {
    fn fetch(&self, request: PageRequest) -> BoxFuture<'static, PageResponse> {
        let net = self.0.clone();
        Box::pin(async move { net.fetch(request).await })
    }
}

/// Request headers the crawler's client sets itself (or that only make sense per hop).
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "accept-encoding",
    "user-agent",
    "cookie",
];

impl PageNet {
    fn block(&self, url: &Url, reason: &str) -> PageResponse {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() < 100 {
            blocked.push(BlockedRequest {
                url: url.to_string(),
                reason: reason.to_string(),
            });
        }
        PageResponse::Blocked(reason.to_string())
    }

    fn resources(&self) -> std::sync::MutexGuard<'_, Resources> {
        self.shared
            .rendering
            .resources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The page's request through the crawler's client: the browser's headers less
    /// the per-hop ones, the run's custom headers (on the trusted origin only) and
    /// the cookies. A method reqwest cannot send fails the request.
    fn request(&self, req: PageRequest) -> Result<reqwest::RequestBuilder, PageResponse> {
        let Ok(method) = reqwest::Method::from_bytes(req.method.as_bytes()) else {
            return Err(PageResponse::Failed(format!("bad method {}", req.method)));
        };
        let mut r = self.shared.client.request(method, req.url.clone());
        let mut browser_cookie = None;
        for (k, v) in &req.headers {
            let lower = k.to_ascii_lowercase();
            if lower == "cookie" {
                browser_cookie = Some(v.clone());
            }
            if !DROPPED_REQUEST_HEADERS.contains(&lower.as_str()) {
                r = r.header(k.as_str(), v.as_str());
            }
        }
        r = self.shared.with_custom_headers(r, &req.url, &self.trusted);
        // The browser's own jar was filled from the crawl's, and also holds what the
        // page's scripts set.
        if let Some(c) = browser_cookie.or_else(|| self.shared.jar.header_for(&req.url)) {
            r = r.header(header::COOKIE, c);
        }
        if let Some(body) = req.body {
            r = r.body(body);
        }
        Ok(r)
    }

    async fn fetch(&self, req: PageRequest) -> PageResponse {
        if req.main_frame_document && req.method == "GET" {
            let mut main = self.main.lock().unwrap_or_else(|p| p.into_inner());
            if main
                .as_ref()
                .is_some_and(|m| same_resource(&m.url, &req.url))
                && let Some(m) = main.take()
            {
                return PageResponse::Response {
                    status: m.status,
                    headers: m.headers,
                    body: m.body,
                };
            }
        }
        let settings = &self.shared.settings;
        if !settings.allow_private_networks {
            let ip = match req.url.host() {
                Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(reason) = ip.and_then(non_public_reason) {
                return self.block(&req.url, reason);
            }
        }
        let cacheable = req.method == "GET"
            && matches!(
                req.resource_type.as_str(),
                "Script" | "Stylesheet" | "Image"
            );
        let key = req.url.to_string();
        if cacheable && let Some(hit) = self.resources().get(&key) {
            return hit;
        }
        let req_url = req.url.clone();
        let r = match self.request(req) {
            Ok(r) => r,
            Err(failed) => return failed,
        };
        let resp = match r.send().await {
            Ok(resp) => resp,
            Err(e) => {
                return match find_blocked(&e) {
                    Some(b) => self.block(&req_url, b.reason),
                    None => PageResponse::Failed(e.to_string()),
                };
            }
        };
        for v in resp.headers().get_all(header::SET_COOKIE) {
            if let Ok(v) = v.to_str() {
                self.shared.jar.set_from_header(&req_url, v);
            }
        }
        let status = resp.status().as_u16();
        let headers = response_headers(resp.headers());
        let no_store = resp
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("no-store"));
        let body = match read_capped(resp, settings.max_page_bytes).await {
            Ok(body) => body,
            Err(failed) => return PageResponse::Failed(failed),
        };
        if cacheable && status == 200 && !no_store {
            self.resources()
                .offer(key, (status, headers.clone(), body.clone()));
        }
        PageResponse::Response {
            status,
            headers,
            body,
        }
    }
}

fn same_resource(a: &Url, b: &Url) -> bool {
    let strip = |u: &Url| {
        let mut u = u.clone();
        u.set_fragment(None);
        u
    };
    strip(a) == strip(b)
}

/// The same-origin `<iframe src>`s of a page (those in `<noscript>` too), resolved
/// against its `<base href>` or address. A string scan: the page is parsed once, later.
fn iframe_sources(html: &str, page: &Url) -> Vec<Url> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let lower = tag.to_ascii_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find(name) {
            let at = from + i;
            from = at + name.len();
            let before = lower[..at].chars().last();
            if !before.is_some_and(|c| c.is_whitespace()) {
                continue;
            }
            let rest = tag[at + name.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('=') else {
                continue;
            };
            let rest = rest.trim_start();
            let value = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
                _ => rest
                    .split(|c: char| c.is_whitespace() || c == '>')
                    .next()
                    .unwrap_or(""),
            };
            return Some(value.replace("&amp;", "&"));
        }
        None
    };
    let tags = |name: &str| -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(i) = find_ci(rest, name) {
            let tag = &rest[i..];
            let end = tag.find('>').unwrap_or(tag.len());
            out.push(&tag[..end]);
            rest = &tag[end..];
            if out.len() >= 50 {
                break;
            }
        }
        out
    };
    let base = tags("<base ")
        .first()
        .and_then(|t| attr(t, "href"))
        .and_then(|h| page.join(h.trim()).ok())
        .unwrap_or_else(|| page.clone());
    let mut out: Vec<Url> = Vec::new();
    for tag in tags("<iframe") {
        if let Some(src) = attr(tag, "src")
            && let Ok(u) = base.join(src.trim())
            && u.origin() == page.origin()
            && !out.contains(&u)
        {
            out.push(u);
            if out.len() >= MAX_FRAMES_PER_PAGE {
                break;
            }
        }
    }
    out
}

/// The HTML of a page's same-origin iframes, fetched once per crawl each.
async fn fetch_frames(shared: &Arc<Shared>, html: &str, page: &Url) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for u in iframe_sources(html, page) {
        let key = u.to_string();
        let cell = {
            let mut frames = shared
                .rendering
                .frames
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if frames.len() >= MAX_FRAMES_CACHED && !frames.contains_key(&key) {
                None
            } else {
                Some(frames.entry(key.clone()).or_default().clone())
            }
        };
        let load = || async {
            let r = fetch_once(shared, &u).await.ok()?;
            let ct = r.content_type();
            let html_like = ct.is_empty() || ct.contains("html");
            ((200..300).contains(&r.status) && html_like).then(|| Arc::new(decode(&r.body, &ct)))
        };
        let doc = match cell {
            Some(cell) => cell.get_or_init(load).await.clone(),
            None => load().await,
        };
        if let Some(doc) = doc {
            out.push((key, doc.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, links: &[&str]) -> Extracted {
        Extracted {
            text: text.to_string(),
            links: links.iter().map(|l| l.to_string()).collect(),
            ..Extracted::default()
        }
    }

    #[test]
    fn a_site_is_checked_once_per_kind_then_rechecked_ever_less_often() {
        let m = RenderingMemory::default();
        assert!(matches!(
            m.plan("s", 2, 10, 1000, true),
            Plan::Render(Why::First)
        ));
        assert!(
            matches!(m.plan("s", 2, 10, 1000, true), Plan::Http),
            "pages with text go on over HTTP meanwhile"
        );
        assert!(matches!(
            m.plan("s", 1, 10, 1000, true),
            Plan::Render(Why::First)
        ));
        assert!(
            matches!(m.plan("s", 1, 10, 1000, true), Plan::Wait),
            "shells wait for the verdict"
        );
        assert!(
            matches!(m.plan("s", 0, 10, 1000, true), Plan::Render(Why::First)),
            "another kind is its own"
        );
        m.record("s", 2, false, 10);
        m.record("s", 0, true, 10);
        assert_eq!(m.renders("s", 2), Some(false));
        assert!(matches!(
            m.plan("s", 0, 10, 1000, true),
            Plan::Render(Why::Needed)
        ));
        let mut renders = Vec::new();
        for page in 1..=200 {
            if let Plan::Recheck = m.plan("s", 2, 10, 1000, true) {
                renders.push(page);
                m.record("s", 2, false, 10);
            }
        }
        assert_eq!(
            renders,
            vec![10, 30, 70, 150],
            "the gap doubles while the verdict holds"
        );
        m.record("s", 2, true, 10);
        assert!(
            matches!(m.plan("s", 2, 10, 1000, true), Plan::Render(Why::Needed)),
            "a changed verdict renders"
        );
        assert_eq!(m.renders("other", 2), None);
    }

    #[test]
    fn a_due_recheck_waits_while_the_budget_for_deciding_is_spent() {
        let m = RenderingMemory::default();
        assert!(matches!(
            m.plan("s", 0, 10, 1000, true),
            Plan::Render(Why::First)
        ));
        m.record("s", 0, false, 10);
        for _ in 1..10 {
            assert!(matches!(m.plan("s", 0, 10, 1000, true), Plan::Http));
        }
        for _ in 0..50 {
            assert!(
                matches!(m.plan("s", 0, 10, 1000, false), Plan::Http),
                "no recheck without budget"
            );
        }
        assert!(
            matches!(m.plan("s", 0, 10, 1000, true), Plan::Recheck),
            "the recheck is made on the first page once the budget allows"
        );
    }

    #[test]
    fn what_rendering_adds_is_measured_in_words_and_same_site_links() {
        let page = Url::parse("https://a.test/x").unwrap();
        let text = "word ".repeat(100);
        let raw = ex(&text, &["https://a.test/b"]);
        let same = ex(&text, &["https://a.test/b", "https://other.test/"]);
        assert!(!change(&raw, &same, &page).matters(0.15));
        let more = ex(
            &format!("{text} {}", "new ".repeat(30)),
            &["https://a.test/b"],
        );
        let c = change(&raw, &more, &page);
        assert_eq!((c.added_words, c.new_links), (30, 0));
        assert!(c.matters(0.15));
        let linked = ex(
            &text,
            &[
                "https://a.test/b",
                "https://a.test/c",
                "https://a.test/d",
                "https://a.test/e",
            ],
        );
        assert!(change(&raw, &linked, &page).matters(0.15));
        // A short page gaining a few words, or a menu of two links, is noise.
        let short = ex("one two three", &[]);
        let longer = ex(
            "one two three four five six",
            &["https://a.test/en", "https://a.test/de"],
        );
        let c = change(&short, &longer, &page);
        assert!(c.text_share >= 0.15 && c.link_share >= 0.15);
        assert!(!c.matters(0.15));
        // Losing text, or code whose lines a script joined, adds nothing.
        let code = ex(
            "use std::mem;\n// Borrows a slice.\nfn analyze(slice: &[i32]) {}",
            &[],
        );
        let mangled = ex("use std::mem;fn analyze(slice: &[i32]) {}", &[]);
        assert_eq!(change(&code, &mangled, &page).added_words, 0);
        assert!(!change(&more, &raw, &page).matters(0.15));
    }

    #[test]
    fn page_kinds_come_from_the_raw_html() {
        let shell = "<html><body><div id=\"root\"></div><script src=app.js></script><noscript>You need to enable JavaScript to run this app.</noscript></body></html>";
        assert_eq!(page_kind(shell, &ex("", &[]), 0), 1 | 4 | 8);
        let article = format!(
            "<html><body><p>{}</p><button aria-expanded=\"false\">More</button></body></html>",
            "words ".repeat(100)
        );
        assert_eq!(page_kind(&article, &ex(&"words ".repeat(100), &[]), 1), 2);
    }

    #[test]
    fn same_origin_iframes_are_found_in_noscript_too() {
        let page = Url::parse("http://a.test/book/ch1.html").unwrap();
        let html = r#"<noscript><IFRAME class="x" src="toc.html"></iframe></noscript>
            <iframe data-src="no.html" src='/frames/a.html?x=1&amp;y=2'></iframe>
            <iframe src="https://www.youtube.com/embed/x"></iframe><iframe srcdoc="<p>x</p>"></iframe>"#;
        let found: Vec<String> = iframe_sources(html, &page)
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            found,
            [
                "http://a.test/book/toc.html",
                "http://a.test/frames/a.html?x=1&y=2"
            ]
        );
    }
}
