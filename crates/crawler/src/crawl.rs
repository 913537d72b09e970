//! The crawl engine: runs a [`CrawlSpec`] as a breadth-first frontier within its scope
//! (WCC's rules and the path rules), fetched with
//! global and per-host concurrency limits, per-host delay (robots Crawl-delay too),
//! retries with backoff on 429/5xx honouring Retry-After, manual redirects re-checked
//! by the SSRF guard, canonical dedupe, and items in WCC's dataset shape.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::browser::Renderer;
use crate::cookies::CookieJar;
use crate::extract::{ExtractOptions, Extracted, OpenGraphEntry};
use crate::input::CrawlerType;
use crate::net::{GuardedResolver, find_blocked, non_public_reason};
use crate::rendering::{BlockedRequest, CrawlMode, Rendering, RenderingMemory, html_page};
use crate::robots::Robots;
use crate::spec::{CrawlSpec, FetchOptions, RenderOptions};

/// Operator settings (not part of a crawl's spec).
#[derive(Debug, Clone)]
pub struct CrawlerSettings {
    /// Allow private, loopback, link-local and other non-public addresses.
    pub allow_private_networks: bool,
    pub user_agent: String,
    /// Bodies larger than this fail the page.
    pub max_page_bytes: usize,
    pub per_host_concurrency: usize,
    /// Minimum gap between request starts on one host (robots Crawl-delay may raise it).
    pub per_host_delay: Duration,
    /// First retry waits this long, doubling per attempt (unless Retry-After says more).
    pub retry_base_delay: Duration,
    /// Cap on any single retry wait, Retry-After included.
    pub max_retry_wait: Duration,
    pub max_redirects: usize,
    /// The whole crawl stops with [`StopReason::TimedOut`] after this long.
    pub overall_timeout: Option<Duration>,
    /// How often [`Event::Progress`] is emitted.
    pub progress_interval: Duration,
    /// Cap on robots Crawl-delay honoured.
    pub max_crawl_delay: Duration,
    /// Host names exempt from the SSRF guard even when private networks are refused
    /// (e.g. an intranet docs host). IP literals and redirect targets are still checked.
    pub private_host_allowlist: Vec<String>,
    /// Reads the text of non-HTML documents (PDFs); without one, their items carry
    /// no text (WCC's default). A document it cannot read is a failed page.
    pub documents: Option<DocumentReader>,
    /// Renders pages for the browser crawler types; without one, `playwright:adaptive`
    /// reads every page over HTTP and the always-render types are refused.
    pub renderer: Option<Arc<dyn Renderer>>,
    /// What adaptive crawls learnt per site, kept across the crawls that set
    /// `reuseStoredDetectionResults` (each other crawl starts afresh).
    pub rendering_memory: Option<Arc<RenderingMemory>>,
    /// URLs one crawl may know (queued or seen): links found past it are not
    /// followed, so a site of endless generated links cannot grow the crawl's memory.
    pub max_frontier: usize,
}

/// Every URL the crawl has queued or fetched, up to a cap.
struct Seen {
    urls: HashSet<String>,
    cap: usize,
    refused: usize,
}

impl Seen {
    fn new(cap: usize) -> Seen {
        Seen {
            urls: HashSet::new(),
            cap: cap.max(1),
            refused: 0,
        }
    }

    /// Whether `url` is new and was admitted (false when known or when full).
    fn insert(&mut self, url: String) -> bool {
        if self.urls.contains(&url) {
            return false;
        }
        if self.urls.len() >= self.cap {
            if self.refused == 0 {
                tracing::warn!(
                    cap = self.cap,
                    "crawl frontier is full; further links are not followed"
                );
            }
            self.refused += 1;
            return false;
        }
        self.urls.insert(url)
    }
}

/// `(content type, bytes) → text`, or why the document could not be read. The
/// reader decides where parsing happens (the service runs it in a worker process).
pub type ReadDocument = dyn Fn(String, Bytes) -> futures_util::future::BoxFuture<'static, Result<String, String>>
    + Send
    + Sync;

/// Reads documents the crawler does not parse itself.
#[derive(Clone)]
pub struct DocumentReader(pub Arc<ReadDocument>);

impl std::fmt::Debug for DocumentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocumentReader")
    }
}

pub const USER_AGENT: &str = concat!(
    "agentbase-crawler/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/agentbase)"
);

impl Default for CrawlerSettings {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            user_agent: USER_AGENT.to_string(),
            max_page_bytes: 10 * 1024 * 1024,
            per_host_concurrency: 8,
            per_host_delay: Duration::ZERO,
            retry_base_delay: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(60),
            max_redirects: 10,
            overall_timeout: None,
            progress_interval: Duration::from_secs(1),
            max_crawl_delay: Duration::from_secs(30),
            private_host_allowlist: Vec::new(),
            documents: None,
            renderer: None,
            rendering_memory: None,
            max_frontier: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectHop {
    pub url: String,
    pub status_code: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrawlInfo {
    pub loaded_url: String,
    /// RFC 3339, UTC.
    pub loaded_time: String,
    pub referrer_url: Option<String>,
    pub depth: u32,
    pub http_status_code: u16,
    /// Redirects followed to reach `loaded_url` (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<RedirectHop>,
    /// `http` (the HTML as served) or `browser` (rendered).
    #[serde(default)]
    pub mode: CrawlMode,
    /// Requests the rendered page made that the SSRF guard refused (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_requests: Vec<BlockedRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemMetadata {
    pub canonical_url: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub keywords: Option<String>,
    pub language_code: Option<String>,
    pub json_ld: Vec<serde_json::Value>,
    pub open_graph: Vec<OpenGraphEntry>,
    pub headers: BTreeMap<String, String>,
    /// Set for non-HTML documents (PDF, Markdown, plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// One dataset item in WCC's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetItem {
    pub url: String,
    pub crawl: CrawlInfo,
    pub metadata: ItemMetadata,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    pub html: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Pages fetched (successfully or not).
    pub done: u64,
    /// URLs waiting in the frontier.
    pub queued: u64,
    pub in_flight: u64,
    pub failed: u64,
    pub items: u64,
    pub skipped: u64,
    /// Pages whose item came from the browser.
    pub rendered: u64,
    pub elapsed_secs: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Item(Box<DatasetItem>),
    Progress(Progress),
    Failed { url: String, error: String },
    Skipped { url: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StopReason {
    /// The frontier ran dry.
    Finished,
    MaxCrawlPages,
    MaxResults,
    Aborted,
    TimedOut,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrawlSummary {
    pub stop_reason: StopReason,
    pub progress: Progress,
}

#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("crawlerType {0} renders every page, and no browser is configured")]
    NoBrowser(&'static str),
}

struct Request {
    url: Url,
    depth: u32,
    referrer: Option<String>,
}

/// The frontier: one FIFO per host, visited round robin.
#[derive(Default)]
struct Frontier {
    hosts: HashMap<String, VecDeque<Request>>,
    order: VecDeque<String>,
    len: usize,
}

impl Frontier {
    fn push_back(&mut self, r: Request) {
        let host = host_key(&r.url);
        let q = self.hosts.entry(host.clone()).or_default();
        if q.is_empty() {
            self.order.push_back(host);
        }
        q.push_back(r);
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next request of the first host (in rotation) below `limit` requests in flight.
    fn pop_ready(&mut self, busy: &HashMap<String, usize>, limit: usize) -> Option<Request> {
        for _ in 0..self.order.len() {
            let host = self.order.pop_front()?;
            if busy.get(&host).copied().unwrap_or(0) >= limit {
                self.order.push_back(host);
                continue;
            }
            let Some(q) = self.hosts.get_mut(&host) else {
                continue;
            };
            let r = q.pop_front();
            if q.is_empty() {
                self.hosts.remove(&host);
            } else {
                self.order.push_back(host);
            }
            if let Some(r) = r {
                self.len -= 1;
                return Some(r);
            }
        }
        None
    }
}

struct HostState {
    slots: Semaphore,
    next_start: tokio::sync::Mutex<Instant>,
    robots: OnceCell<Option<Robots>>,
}

pub(crate) struct Shared {
    pub client: reqwest::Client,
    pub settings: CrawlerSettings,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
    pub extract: ExtractOptions,
    retries: u32,
    respect_robots: bool,
    /// The initial cookies and every cookie responses set, for the rest of the crawl.
    pub jar: CookieJar,
    /// The custom headers: sent to the origin a request was made for, never after a
    /// redirect to another one.
    custom_headers: HeaderMap,
    pub rendering: Rendering,
}

impl Shared {
    /// `req` with the run's custom headers when `url` is on `trusted`, the origin
    /// the crawl asked for; a request anywhere else (after a redirect, or from a
    /// page's scripts) goes without them.
    pub(crate) fn with_custom_headers(
        &self,
        mut req: reqwest::RequestBuilder,
        url: &Url,
        trusted: &url::Origin,
    ) -> reqwest::RequestBuilder {
        if url.origin() == *trusted {
            for (k, v) in &self.custom_headers {
                req = req.header(k, v);
            }
        }
        req
    }
}

enum Body {
    Html(Box<Extracted>),
    /// A sitemap given as a start URL (or reached by a link): its URLs join the crawl.
    Sitemap(Vec<String>),
    Text {
        text: String,
        content_type: String,
    },
    Document {
        content_type: String,
        /// What the settings' [`DocumentReader`] read from it.
        text: Option<String>,
    },
}

struct Page {
    loaded: Loaded,
    body: Body,
}

/// How a page was loaded: what its item's `crawl` section and headers say.
struct Loaded {
    final_url: Url,
    status: u16,
    headers: BTreeMap<String, String>,
    redirects: Vec<RedirectHop>,
    mode: CrawlMode,
    blocked: Vec<BlockedRequest>,
}

/// A page's links sent to the crawl loop before its fetch task ends (adaptive mode,
/// while the page is compared in the browser).
pub(crate) struct EarlyLinks {
    /// The URL the crawl asked for (how the loop knows the page's depth).
    pub requested: String,
    /// Where the page was loaded from, the links' referrer.
    pub referrer: String,
    pub links: Vec<String>,
}

enum Outcome {
    Page(Box<Page>),
    Failed(String),
    Skipped(String),
}

pub(crate) fn host_key(u: &Url) -> String {
    format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""))
        + &u.port().map(|p| format!(":{p}")).unwrap_or_default()
}

/// Normalises a URL for dedupe: no fragment (unless kept), no empty query.
pub fn normalize_url(u: &Url, keep_fragment: bool) -> Url {
    let mut u = u.clone();
    if !keep_fragment {
        u.set_fragment(None);
    }
    if u.query() == Some("") {
        u.set_query(None);
    }
    u
}

/// Runs `spec`, sending events to `sink`, until the frontier is empty, a limit is hit,
/// `cancel` fires or the overall timeout passes.
pub async fn crawl(
    spec: &CrawlSpec,
    settings: &CrawlerSettings,
    cancel: CancellationToken,
    mut sink: impl FnMut(Event) + Send,
) -> Result<CrawlSummary, CrawlError> {
    let started = Instant::now();
    // Links of pages still in the browser, sent ahead (see `EarlyLinks`).
    let (early_tx, mut early_rx) = tokio::sync::mpsc::unbounded_channel::<EarlyLinks>();
    let shared = Arc::new(Shared::new(spec, settings, early_tx)?);
    let _end_session = EndSession(shared.clone());
    let deadline = settings.overall_timeout.map(|t| started + t);
    let mut state = CrawlState::new(spec, settings.max_frontier);
    state.seed();
    if spec.use_sitemaps || spec.use_llms_txt {
        let discovered = tokio::select! {
            d = discover(&shared, spec, settings.max_frontier) => d,
            _ = cancel.cancelled() => Vec::new(),
        };
        state.follow(discovered, 0, None);
    }
    let mut fetches = Fetches::new(spec, settings);
    let mut tick = tokio::time::interval(settings.progress_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop_reason = loop {
        if cancel.is_cancelled() {
            break StopReason::Aborted;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break StopReason::TimedOut;
        }
        fetches.dispatch(&shared, &mut state);
        if fetches.tasks.is_empty() {
            break state.stop_reason(fetches.dispatched);
        }
        let sleep_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            joined = fetches.tasks.join_next_with_id() => {
                let Some(joined) = joined else { continue };
                if let Some((req, outcome)) = fetches.finished(joined, &mut state.progress) {
                    state.on_outcome(req, outcome, &mut sink);
                }
            }
            Some(early) = early_rx.recv() => {
                // The page's own links, from its HTML as served, join the crawl now
                // rather than after the browser is done with it.
                if let Some(&depth) = fetches.in_flight_depth.get(&early.requested) {
                    let urls = early.links.iter().filter_map(|l| Url::parse(l).ok());
                    state.follow(urls, depth, Some(&early.referrer));
                }
            }
            _ = cancel.cancelled() => {}
            _ = sleep_deadline => {}
            _ = tick.tick() => {
                state.progress.elapsed_secs = started.elapsed().as_secs_f64();
                sink(Event::Progress(state.progress));
            }
        }
    };
    fetches.tasks.abort_all();
    while fetches.tasks.join_next().await.is_some() {}
    let mut progress = state.progress;
    progress.queued = state.queue.len() as u64;
    progress.in_flight = 0;
    progress.elapsed_secs = started.elapsed().as_secs_f64();
    sink(Event::Progress(progress));
    Ok(CrawlSummary {
        stop_reason,
        progress,
    })
}

impl Shared {
    /// What every page fetch of one crawl shares: the client, the hosts' state, the
    /// cookie jar, the custom headers and the renderer.
    fn new(
        spec: &CrawlSpec,
        settings: &CrawlerSettings,
        early_links: tokio::sync::mpsc::UnboundedSender<EarlyLinks>,
    ) -> Result<Shared, CrawlError> {
        let client = build_client(&spec.fetch, settings)?;
        if spec.crawler_type.always_renders() && settings.renderer.is_none() {
            return Err(CrawlError::NoBrowser(match spec.crawler_type {
                CrawlerType::Chrome => "playwright:chrome",
                _ => "playwright:firefox",
            }));
        }
        Ok(Shared {
            client,
            settings: settings.clone(),
            hosts: Mutex::new(HashMap::new()),
            extract: spec.extract.clone(),
            retries: spec.fetch.max_retries,
            respect_robots: spec.respect_robots_txt,
            jar: CookieJar::with_initial(&spec.fetch.cookies, spec.start.urls()),
            custom_headers: spec.fetch.headers.map().clone(),
            rendering: Rendering::new(
                spec.crawler_type,
                &spec.render,
                spec.expand_iframes,
                &spec.fetch,
                settings,
                early_links,
            ),
        })
    }
}

/// Ends the browser contexts a crawl used when it ends, however it ends.
struct EndSession(Arc<Shared>);

impl Drop for EndSession {
    fn drop(&mut self) {
        let rendering = &self.0.rendering;
        rendering
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .abort_all();
        if let Some(r) = &rendering.renderer {
            r.end_session(rendering.session);
        }
    }
}

/// The page fetches in flight, and the slots they take (global and per host).
struct Fetches {
    tasks: JoinSet<(Request, Outcome)>,
    hosts: HashMap<tokio::task::Id, String>,
    busy: HashMap<String, usize>,
    /// Requested URL → depth, for links sent ahead by pages being rendered.
    in_flight_depth: HashMap<String, u32>,
    dispatched: u64,
    per_host: usize,
    max_concurrency: usize,
    max_pages: u64,
}

impl Fetches {
    fn new(spec: &CrawlSpec, settings: &CrawlerSettings) -> Fetches {
        Fetches {
            tasks: JoinSet::new(),
            hosts: HashMap::new(),
            busy: HashMap::new(),
            in_flight_depth: HashMap::new(),
            dispatched: 0,
            per_host: settings.per_host_concurrency.max(1),
            max_concurrency: spec.limits.max_concurrency.get() as usize,
            max_pages: spec.limits.max_pages,
        }
    }

    /// Starts fetches from the frontier while slots are free and the limits allow,
    /// then updates the progress's queue counts.
    fn dispatch(&mut self, shared: &Arc<Shared>, state: &mut CrawlState<'_>) {
        while self.tasks.len() < self.max_concurrency
            && self.dispatched < self.max_pages
            && state.progress.items < state.spec.limits.max_results
        {
            // Round robin over hosts with a free slot, so one busy or slow host neither
            // takes every global slot nor starves the others.
            let Some(req) = state.queue.pop_ready(&self.busy, self.per_host) else {
                break;
            };
            self.dispatched += 1;
            let host = host_key(&req.url);
            *self.busy.entry(host.clone()).or_insert(0) += 1;
            let shared = shared.clone();
            self.in_flight_depth.insert(req.url.to_string(), req.depth);
            let handle = self.tasks.spawn(async move {
                let outcome = fetch_page(&shared, &req.url).await;
                (req, outcome)
            });
            self.hosts.insert(handle.id(), host);
        }
        state.progress.queued = state.queue.len() as u64;
        state.progress.in_flight = self.tasks.len() as u64;
    }

    /// Frees the slot of a fetch that ended; its request and outcome, unless the task
    /// itself failed (counted as a failed page).
    fn finished(
        &mut self,
        joined: Result<(tokio::task::Id, (Request, Outcome)), tokio::task::JoinError>,
        progress: &mut Progress,
    ) -> Option<(Request, Outcome)> {
        progress.done += 1;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        if let Some(host) = self.hosts.remove(&id)
            && let Some(n) = self.busy.get_mut(&host)
        {
            *n = n.saturating_sub(1);
        }
        match joined {
            Ok((_, r)) => {
                self.in_flight_depth.remove(r.0.url.as_str());
                Some(r)
            }
            Err(e) => {
                progress.failed += 1;
                tracing::warn!(error = %e, "crawl task ended abnormally");
                None
            }
        }
    }
}

/// What one crawl knows: the frontier, every URL seen, the canonical pages emitted,
/// and its counts.
struct CrawlState<'a> {
    spec: &'a CrawlSpec,
    progress: Progress,
    seen: Seen,
    queue: Frontier,
    /// Canonical URLs of the pages emitted.
    canonicals: HashSet<String>,
    /// Every page URL fetched.
    fetched: HashSet<String>,
    /// Line hashes counted for `aggressivePrune`.
    line_counts: HashMap<u64, u32>,
}

impl<'a> CrawlState<'a> {
    fn new(spec: &'a CrawlSpec, max_frontier: usize) -> Self {
        CrawlState {
            spec,
            progress: Progress::default(),
            seen: Seen::new(max_frontier),
            queue: Frontier::default(),
            canonicals: HashSet::new(),
            fetched: HashSet::new(),
            line_counts: HashMap::new(),
        }
    }

    fn normalize(&self, u: &Url) -> Url {
        normalize_url(u, self.spec.keep_url_fragments)
    }

    /// Queues `url` unless it was seen (or the frontier is full).
    fn push_new(&mut self, url: Url, depth: u32, referrer: Option<String>) {
        if self.seen.insert(url.to_string()) {
            self.queue.push_back(Request {
                url,
                depth,
                referrer,
            });
        }
    }

    /// The start URLs, at depth 0 whatever the scope says.
    fn seed(&mut self) {
        let spec = self.spec;
        for u in spec.start.urls() {
            let n = self.normalize(u);
            self.push_new(n, 0, None);
        }
    }

    /// Links found at `from_depth` join the crawl one level deeper, when that depth
    /// is allowed and the spec's scope admits them (globs, start URLs, path rules).
    fn follow(
        &mut self,
        urls: impl IntoIterator<Item = Url>,
        from_depth: u32,
        referrer: Option<&str>,
    ) {
        if from_depth >= self.spec.limits.max_depth {
            return;
        }
        for u in urls {
            let n = self.normalize(&u);
            if self.spec.follows(&n) {
                self.push_new(n, from_depth + 1, referrer.map(str::to_owned));
            }
        }
    }

    /// Why the crawl ends once nothing is in flight.
    fn stop_reason(&self, dispatched: u64) -> StopReason {
        if self.progress.items >= self.spec.limits.max_results {
            StopReason::MaxResults
        } else if dispatched >= self.spec.limits.max_pages && !self.queue.is_empty() {
            StopReason::MaxCrawlPages
        } else {
            StopReason::Finished
        }
    }

    fn skip(&mut self, req: &Request, reason: String, sink: &mut impl FnMut(Event)) {
        self.progress.skipped += 1;
        sink(Event::Skipped {
            url: req.url.to_string(),
            reason,
        });
    }

    fn on_outcome(&mut self, req: Request, outcome: Outcome, sink: &mut impl FnMut(Event)) {
        match outcome {
            Outcome::Failed(error) => {
                self.progress.failed += 1;
                sink(Event::Failed {
                    url: req.url.to_string(),
                    error,
                });
            }
            Outcome::Skipped(reason) => self.skip(&req, reason, sink),
            Outcome::Page(page) => self.on_page(req, *page, sink),
        }
    }

    /// A fetched page: its item (unless it duplicates one, is a sitemap, or is a start
    /// URL the path rules refuse) and its links.
    fn on_page(&mut self, req: Request, page: Page, sink: &mut impl FnMut(Event)) {
        let Page { loaded, body } = page;
        let final_norm = self.normalize(&loaded.final_url);
        self.seen.insert(final_norm.to_string());
        let referrer = loaded.final_url.to_string();
        let links = self.links_of(&body, &loaded.final_url);
        let no_item = match &body {
            // Sitemap URLs are pages at the sitemap's depth + 1; the sitemap itself is
            // not an item.
            Body::Sitemap(urls) => Some(format!("sitemap with {} URLs", urls.len())),
            // Links are checked before they are queued, so this is a start URL: it is
            // fetched for its links, and yields no item.
            _ => self
                .spec
                .scope
                .paths
                .check(&req.url)
                .err()
                .map(str::to_owned),
        };
        if let Some(reason) = no_item {
            self.skip(&req, reason, sink);
            self.follow(links, req.depth, Some(&referrer));
            return;
        }
        match self.item_of(&req, loaded, body) {
            Ok(item) => {
                self.follow(links, req.depth, Some(&referrer));
                self.emit(item, sink);
            }
            // A canonical duplicate: its links are the canonical page's.
            Err(reason) => self.skip(&req, reason, sink),
        }
    }

    /// The links of a page that join the crawl (when in scope).
    fn links_of(&self, body: &Body, base: &Url) -> Vec<Url> {
        let links = match body {
            Body::Html(ex) => ex.links.clone(),
            Body::Sitemap(urls) => urls.clone(),
            Body::Text { text, content_type }
                if content_type.contains("markdown") || self.spec.use_llms_txt =>
            {
                text_links(text, base)
            }
            Body::Text { .. } | Body::Document { .. } => Vec::new(),
        };
        links.iter().filter_map(|l| Url::parse(l).ok()).collect()
    }

    /// The item of a page, or why it is skipped (a canonical duplicate).
    fn item_of(
        &mut self,
        req: &Request,
        loaded: Loaded,
        body: Body,
    ) -> Result<DatasetItem, String> {
        match body {
            Body::Html(ex) => {
                let ex = *ex;
                self.claim_canonical(req, &loaded.final_url, ex.metadata.canonical_url.as_deref())?;
                if !loaded.mode.is_http() {
                    self.progress.rendered += 1;
                }
                Ok(html_item(req, loaded, ex))
            }
            Body::Text { text, content_type } => {
                let markdown = self.spec.extract.save_markdown.then(|| text.clone());
                Ok(document_item(req, loaded, content_type, text, markdown))
            }
            Body::Document { content_type, text } => Ok(document_item(
                req,
                loaded,
                content_type,
                text.unwrap_or_default(),
                None,
            )),
            // Not an item (`on_page` skips sitemaps before asking).
            Body::Sitemap(urls) => Err(format!("sitemap with {} URLs", urls.len())),
        }
    }

    /// Emits an item, pruned when asked, while `max_results` allows.
    fn emit(&mut self, mut item: DatasetItem, sink: &mut impl FnMut(Event)) {
        if self.spec.aggressive_prune {
            prune(&mut item, &mut self.line_counts);
        }
        if self.progress.items < self.spec.limits.max_results {
            self.progress.items += 1;
            sink(Event::Item(Box::new(item)));
        }
    }

    /// Canonical dedupe: Ok when the page at `loaded` is new and now emitted; the
    /// reason to skip it when its canonical page was emitted already, or is crawled
    /// instead (queued here, so the dataset holds the canonical page whatever order
    /// they arrive in).
    fn claim_canonical(
        &mut self,
        req: &Request,
        loaded: &Url,
        canonical: Option<&str>,
    ) -> Result<(), String> {
        let canonical = canonical
            .and_then(|c| Url::parse(c).ok())
            .map(|c| normalize_url(&c, false).to_string());
        let own = normalize_url(loaded, false).to_string();
        self.fetched.insert(own.clone());
        if self.spec.ignore_canonical_url {
            return Ok(());
        }
        let target = canonical.unwrap_or_else(|| own.clone());
        if self.canonicals.contains(&target) || self.canonicals.contains(&own) {
            return Err(format!("duplicate of canonical URL {target}"));
        }
        if target != own
            && !self.fetched.contains(&target)
            && let Ok(cu) = Url::parse(&target)
            && self.spec.follows(&cu)
        {
            self.push_new(cu, req.depth, req.referrer.clone());
            return Err(format!("canonical URL {target} is crawled instead"));
        }
        self.canonicals.insert(target);
        self.canonicals.insert(own);
        Ok(())
    }
}

/// The `crawl` section of `req`'s item, and the response headers.
fn crawl_info(req: &Request, loaded: Loaded) -> (CrawlInfo, BTreeMap<String, String>) {
    let info = CrawlInfo {
        loaded_url: loaded.final_url.to_string(),
        loaded_time: now_rfc3339(),
        referrer_url: req.referrer.clone(),
        depth: req.depth,
        http_status_code: loaded.status,
        redirects: loaded.redirects,
        mode: loaded.mode,
        blocked_requests: loaded.blocked,
    };
    (info, loaded.headers)
}

/// The item of an HTML page.
fn html_item(req: &Request, loaded: Loaded, ex: Extracted) -> DatasetItem {
    let (crawl, headers) = crawl_info(req, loaded);
    DatasetItem {
        url: req.url.to_string(),
        crawl,
        metadata: ItemMetadata {
            canonical_url: ex.metadata.canonical_url,
            title: ex.metadata.title,
            description: ex.metadata.description,
            author: ex.metadata.author,
            keywords: ex.metadata.keywords,
            language_code: ex.metadata.language_code,
            json_ld: ex.metadata.json_ld,
            open_graph: ex.metadata.open_graph,
            headers,
            content_type: None,
        },
        text: ex.text,
        markdown: ex.markdown,
        html: ex.html,
    }
}

/// The item of a document that is not HTML (text, Markdown, PDF).
fn document_item(
    req: &Request,
    loaded: Loaded,
    content_type: String,
    text: String,
    markdown: Option<String>,
) -> DatasetItem {
    let (crawl, headers) = crawl_info(req, loaded);
    DatasetItem {
        url: req.url.to_string(),
        crawl,
        metadata: ItemMetadata {
            canonical_url: None,
            title: None,
            description: None,
            author: None,
            keywords: None,
            language_code: None,
            json_ld: Vec::new(),
            open_graph: Vec::new(),
            headers,
            content_type: Some(content_type),
        },
        text,
        markdown,
        html: None,
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Drops lines already seen on two earlier pages (menus, footers, cookie notes).
fn prune(item: &mut DatasetItem, counts: &mut HashMap<u64, u32>) {
    use std::hash::{Hash, Hasher};
    let hash = |l: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        l.trim().hash(&mut h);
        h.finish()
    };
    let filter = |s: &str, counts: &HashMap<u64, u32>| {
        s.lines()
            .filter(|l| l.trim().is_empty() || counts.get(&hash(l)).copied().unwrap_or(0) < 2)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let text = filter(&item.text, counts);
    let markdown = item.markdown.as_deref().map(|m| filter(m, counts));
    let mut page_lines: HashSet<u64> = HashSet::new();
    for l in item
        .text
        .lines()
        .chain(item.markdown.as_deref().unwrap_or("").lines())
    {
        if !l.trim().is_empty() {
            page_lines.insert(hash(l));
        }
    }
    for h in page_lines {
        *counts.entry(h).or_insert(0) += 1;
    }
    item.text = text;
    item.markdown = markdown;
}

/// Links in Markdown or plain text (`[x](url)` and bare URLs), resolved against `base`.
fn text_links(text: &str, base: &Url) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let end = after.find([')', ' ', '\n']).unwrap_or(after.len());
        if let Ok(u) = base.join(after[..end].trim()) {
            out.push(u.to_string());
        }
        rest = &after[end..];
    }
    for word in text.split_whitespace() {
        if word.starts_with("http://") || word.starts_with("https://") {
            let w = word.trim_end_matches(['.', ',', ')', '>', ']']);
            if let Ok(u) = Url::parse(w) {
                out.push(u.to_string());
            }
        }
    }
    out.retain(|u| u.starts_with("http://") || u.starts_with("https://"));
    out
}

fn build_client(
    fetch: &FetchOptions,
    settings: &CrawlerSettings,
) -> Result<reqwest::Client, CrawlError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static(
            "text/html,application/xhtml+xml,application/xml;q=0.9,text/plain;q=0.8,*/*;q=0.5",
        ),
    );
    let mut b = reqwest::Client::builder()
        .user_agent(settings.user_agent.clone())
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(fetch.timeout)
        .connect_timeout(fetch.timeout.min(Duration::from_secs(30)))
        .pool_max_idle_per_host(settings.per_host_concurrency.max(1))
        .danger_accept_invalid_certs(fetch.ignore_https_errors);
    if !settings.allow_private_networks {
        b = b.dns_resolver(Arc::new(GuardedResolver {
            allowlist: settings
                .private_host_allowlist
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }));
    }
    b.build().map_err(|e| CrawlError::Client(e.to_string()))
}

fn host_state(shared: &Shared, u: &Url) -> Arc<HostState> {
    let key = host_key(u);
    let mut hosts = shared.hosts.lock().unwrap_or_else(|p| p.into_inner());
    hosts
        .entry(key)
        .or_insert_with(|| {
            Arc::new(HostState {
                slots: Semaphore::new(shared.settings.per_host_concurrency.max(1)),
                next_start: tokio::sync::Mutex::new(Instant::now()),
                robots: OnceCell::new(),
            })
        })
        .clone()
}

/// Refuses IP-literal hosts outside the guard (names are checked by the resolver).
fn check_literal(shared: &Shared, u: &Url) -> Result<(), String> {
    check_literal_with(&shared.settings, u)
}

fn check_literal_with(settings: &CrawlerSettings, u: &Url) -> Result<(), String> {
    if settings.allow_private_networks {
        return Ok(());
    }
    let ip = match u.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match non_public_reason(ip) {
        Some(reason) => Err(format!(
            "refused to connect to {ip}: {reason} (set crawler.allow_private_networks to allow)"
        )),
        None => Ok(()),
    }
}

pub(crate) struct Response {
    pub final_url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub redirects: Vec<RedirectHop>,
    pub body: Vec<u8>,
}

impl Response {
    /// The Content-Type header, lower-cased ("" when absent).
    pub fn content_type(&self) -> String {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    }
}

pub(crate) enum FetchError {
    /// Worth retrying (network error, timeout, 429/5xx).
    Transient(String, Option<Duration>),
    Fatal(String),
}

/// One GET with manual redirects (each hop re-checked) and a capped body. The
/// run's custom headers go only to the origin first asked (scheme, host and port):
/// a redirect to another host does not carry them (credentials meant for one
/// site must not leak to wherever it points). The jar holds domain-less initial
/// cookies as host-only cookies of the start hosts, so the same rule holds for them.
pub(crate) async fn fetch_once(shared: &Shared, url: &Url) -> Result<Response, FetchError> {
    let mut current = url.clone();
    let mut redirects = Vec::new();
    let asked = url.origin();
    loop {
        check_literal(shared, &current).map_err(FetchError::Fatal)?;
        // Custom headers (credentials, often) go only to the origin asked for; a
        // redirect elsewhere, or down to plain HTTP, does not carry them.
        let mut req =
            shared.with_custom_headers(shared.client.get(current.clone()), &current, &asked);
        if let Some(c) = shared.jar.header_for(&current) {
            req = req.header(header::COOKIE, c);
        }
        let resp = req.send().await.map_err(|e| {
            if let Some(b) = find_blocked(&e) {
                FetchError::Fatal(b.to_string())
            } else if e.is_timeout() {
                FetchError::Transient(format!("request timed out: {current}"), None)
            } else {
                FetchError::Transient(format!("request failed: {}", error_chain(&e)), None)
            }
        })?;
        for v in resp.headers().get_all(header::SET_COOKIE) {
            if let Ok(v) = v.to_str() {
                shared.jar.set_from_header(&current, v);
            }
        }
        let status = resp.status();
        if status.is_redirection()
            && let Some(loc) = resp.headers().get(header::LOCATION)
        {
            let loc = loc.to_str().unwrap_or("");
            let next = current
                .join(loc)
                .map_err(|_| FetchError::Fatal(format!("bad redirect Location {loc:?}")))?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(FetchError::Fatal(format!(
                    "redirect to non-http URL {next}"
                )));
            }
            redirects.push(RedirectHop {
                url: current.to_string(),
                status_code: status.as_u16(),
            });
            if redirects.len() > shared.settings.max_redirects {
                return Err(FetchError::Fatal(format!(
                    "more than {} redirects",
                    shared.settings.max_redirects
                )));
            }
            current = next;
            continue;
        }
        if status.as_u16() == 429 || status.is_server_error() {
            let wait = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Err(FetchError::Transient(
                format!("HTTP {}", status.as_u16()),
                wait,
            ));
        }
        let max = shared.settings.max_page_bytes;
        if resp.content_length().is_some_and(|l| l as usize > max) {
            return Err(FetchError::Fatal(format!("page larger than {max} bytes")));
        }
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                if e.is_timeout() {
                    FetchError::Transient(format!("request timed out: {current}"), None)
                } else {
                    FetchError::Transient(format!("body read failed: {}", error_chain(&e)), None)
                }
            })?;
            if body.len() + chunk.len() > max {
                return Err(FetchError::Fatal(format!("page larger than {max} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Response {
            final_url: current,
            status: status.as_u16(),
            headers,
            redirects,
            body,
        });
    }
}

/// One GET outside a crawl (an Apify dataset export named by URL, say) with the
/// crawl's protections: the SSRF guard after DNS and on every redirect hop, and the
/// body capped at `settings.max_page_bytes`. Returns the final status and body.
pub async fn fetch_url(url: &str, settings: &CrawlerSettings) -> Result<(u16, Vec<u8>), String> {
    let u = Url::parse(url.trim()).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    let fetch = FetchOptions::default();
    let shared = Shared {
        client: build_client(&fetch, settings).map_err(|e| e.to_string())?,
        settings: settings.clone(),
        hosts: Mutex::new(HashMap::new()),
        extract: ExtractOptions::default(),
        retries: 0,
        respect_robots: false,
        jar: CookieJar::default(),
        custom_headers: HeaderMap::new(),
        // No renderer (`cheerio`): this is one plain GET.
        rendering: Rendering::new(
            CrawlerType::Cheerio,
            &RenderOptions::default(),
            true,
            &fetch,
            settings,
            tokio::sync::mpsc::unbounded_channel().0,
        ),
    };
    match fetch_once(&shared, &u).await {
        Ok(r) => Ok((r.status, r.body)),
        Err(FetchError::Fatal(e) | FetchError::Transient(e, _)) => Err(e),
    }
}

/// Whether `url` is an http(s) URL the SSRF guard lets through before any DNS
/// lookup (its host, when an IP literal, is public unless
/// `allow_private_networks`); the reason when not. Names are judged when resolved.
pub fn check_target(url: &str, allow_private_networks: bool) -> Result<(), String> {
    let u = Url::parse(url.trim()).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("is not an http(s) URL".into());
    }
    let settings = CrawlerSettings {
        allow_private_networks,
        ..CrawlerSettings::default()
    };
    check_literal_with(&settings, &u)
}

/// Why a [`post_guarded`] got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// The SSRF guard refused the target, or the URL cannot be used: another
    /// attempt would be refused the same way.
    Refused(String),
    /// No answer (connection failure, timeout): worth another attempt.
    Failed(String),
}

/// One POST outside a crawl (a webhook delivery) behind the crawl's SSRF guard:
/// IP literals checked, names resolved by the guarded resolver and the connection
/// pinned to the checked address. Redirects are not followed: a 3xx is the answer.
/// Returns the status; the response body is not read.
pub async fn post_guarded(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
    settings: &CrawlerSettings,
) -> Result<u16, PostError> {
    let u = Url::parse(url.trim())
        .map_err(|e| PostError::Refused(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(PostError::Refused(format!("{url:?} is not an http(s) URL")));
    }
    check_literal_with(settings, &u).map_err(PostError::Refused)?;
    let fetch = FetchOptions {
        timeout: Duration::from_secs(timeout.as_secs().max(1)),
        ..FetchOptions::default()
    };
    let client = build_client(&fetch, settings).map_err(|e| PostError::Failed(e.to_string()))?;
    let mut req = client
        .post(u.clone())
        .header(header::ACCEPT, "*/*")
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    match req.body(body).send().await {
        Ok(resp) => Ok(resp.status().as_u16()),
        Err(e) => Err(if let Some(b) = find_blocked(&e) {
            PostError::Refused(b.to_string())
        } else if e.is_timeout() {
            PostError::Failed(format!("request timed out: {u}"))
        } else {
            PostError::Failed(format!("request failed: {}", error_chain(&e)))
        }),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs_f64(delta.as_seconds_f64().max(0.0)))
}

/// Fetch with retries on transient failures, honouring Retry-After.
async fn fetch_retrying(shared: &Shared, url: &Url) -> Result<Response, String> {
    let mut attempt = 0u32;
    loop {
        match fetch_once(shared, url).await {
            Ok(r) => return Ok(r),
            Err(FetchError::Fatal(e)) => return Err(e),
            Err(FetchError::Transient(e, retry_after)) => {
                if attempt >= shared.retries {
                    return Err(if attempt > 0 {
                        format!("{e} (after {} retries)", attempt)
                    } else {
                        e
                    });
                }
                let backoff = shared
                    .settings
                    .retry_base_delay
                    .saturating_mul(1u32 << attempt.min(16));
                let wait = retry_after
                    .unwrap_or(backoff)
                    .min(shared.settings.max_retry_wait);
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

async fn robots_for(shared: &Shared, host: &HostState, u: &Url) -> Option<Robots> {
    host.robots
        .get_or_init(|| async {
            let mut robots_url = u.clone();
            robots_url.set_path("/robots.txt");
            robots_url.set_query(None);
            robots_url.set_fragment(None);
            match fetch_once(shared, &robots_url).await {
                Ok(r) if (200..300).contains(&r.status) => {
                    Some(Robots::parse(&String::from_utf8_lossy(&r.body)))
                }
                _ => None,
            }
        })
        .await
        .clone()
}

/// The gap between requests to `url`'s host (robots.txt's `Crawl-delay` can raise
/// it), or why the page is not fetched (robots.txt disallows it).
async fn robots_delay(shared: &Shared, host: &HostState, url: &Url) -> Result<Duration, Outcome> {
    let mut delay = shared.settings.per_host_delay;
    if !shared.respect_robots {
        return Ok(delay);
    }
    check_literal(shared, url).map_err(Outcome::Failed)?;
    if let Some(robots) = robots_for(shared, host, url).await {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        if !robots.allowed(&path) {
            return Err(Outcome::Skipped("disallowed by robots.txt".to_string()));
        }
        if let Some(d) = robots.crawl_delay {
            delay = delay.max(Duration::from_secs_f64(d).min(shared.settings.max_crawl_delay));
        }
    }
    Ok(delay)
}

/// The response headers an item keeps (all but `Set-Cookie`).
fn item_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(k, _)| *k != header::SET_COOKIE)
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A PDF's item body: its text when the settings have a [`DocumentReader`] (none
/// otherwise, as WCC); an error when the reader fails on it.
async fn read_pdf(shared: &Shared, body: &[u8]) -> Result<Body, String> {
    let content_type = "application/pdf".to_string();
    let text = match &shared.settings.documents {
        Some(DocumentReader(read)) => Some(
            read(content_type.clone(), Bytes::copy_from_slice(body))
                .await
                .map_err(|e| format!("the document could not be read: {e}"))?,
        ),
        None => None,
    };
    Ok(Body::Document { content_type, text })
}

async fn fetch_page(shared: &Arc<Shared>, url: &Url) -> Outcome {
    let host = host_state(shared, url);
    let delay = match robots_delay(shared, &host, url).await {
        Ok(delay) => delay,
        Err(refused) => return refused,
    };
    let Ok(_permit) = host.slots.acquire().await else {
        return Outcome::Failed("host limiter closed".to_string());
    };
    if !delay.is_zero() {
        let start = {
            let mut next = host.next_start.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + delay;
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }
    let resp = match fetch_retrying(shared, url).await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e),
    };
    if !(200..300).contains(&resp.status) {
        return Outcome::Failed(format!("HTTP {}", resp.status));
    }
    let content_type = resp.content_type();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let headers = item_headers(&resp.headers);
    let path = resp.final_url.path().to_ascii_lowercase();
    let looks_html = mime.is_empty() && (resp.body.starts_with(b"<") || path.ends_with(".html"));
    let (mut mode, mut blocked) = (CrawlMode::Http, Vec::new());
    let body = if mime == "text/html" || mime == "application/xhtml+xml" || looks_html {
        let html = decode(&resp.body, &content_type);
        match html_page(shared, url, &resp, html).await {
            Ok(page) => {
                (mode, blocked) = (page.mode, page.blocked);
                Body::Html(Box::new(page.extracted))
            }
            Err(e) => return Outcome::Failed(e),
        }
    } else if (mime.ends_with("/xml") || path.ends_with(".xml"))
        && (resp.body.windows(7).any(|w| w == b"<urlset")
            || resp.body.windows(13).any(|w| w == b"<sitemapindex"))
    {
        Body::Sitemap(xml_locs(&decode(&resp.body, &content_type)))
    } else if mime == "application/pdf" || path.ends_with(".pdf") {
        match read_pdf(shared, &resp.body).await {
            Ok(body) => body,
            Err(e) => return Outcome::Failed(e),
        }
    } else if mime == "text/plain"
        || mime == "text/markdown"
        || mime == "text/x-markdown"
        || path.ends_with(".md")
        || path.ends_with(".txt")
    {
        let markdown = path.ends_with(".md") || mime.contains("markdown");
        Body::Text {
            text: decode(&resp.body, &content_type),
            content_type: if markdown {
                "text/markdown".to_string()
            } else {
                "text/plain".to_string()
            },
        }
    } else {
        return Outcome::Skipped(format!("unsupported content type {mime:?}"));
    };
    Outcome::Page(Box::new(Page {
        loaded: Loaded {
            final_url: resp.final_url,
            status: resp.status,
            headers,
            redirects: resp.redirects,
            mode,
            blocked,
        },
        body,
    }))
}

/// Decodes a body: charset from the Content-Type header, else from a `<meta>` in the
/// first 2 KiB, else UTF-8 when valid, else windows-1252 (what browsers assume).
pub(crate) fn decode(body: &[u8], content_type: &str) -> String {
    let label = charset_param(content_type).or_else(|| {
        let head = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
        let i = head.find("charset=")?;
        let rest = head[i + 8..].trim_start_matches(['"', '\'']);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        Some(rest[..end].to_string())
    });
    if let Some(enc) = label.and_then(|l| encoding_rs::Encoding::for_label(l.trim().as_bytes())) {
        let (text, _, _) = enc.decode(body);
        return text.into_owned();
    }
    match std::str::from_utf8(body) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(body).0.into_owned(),
    }
}

fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Sitemap and llms.txt discovery for the start URLs' origins.
async fn discover(shared: &Shared, spec: &CrawlSpec, limit: usize) -> Vec<Url> {
    let mut out = Vec::new();
    let mut origins: Vec<Url> = Vec::new();
    for u in spec.start.urls() {
        let mut o = u.clone();
        o.set_path("/");
        o.set_query(None);
        o.set_fragment(None);
        if !origins.contains(&o) {
            origins.push(o);
        }
    }
    for origin in origins {
        if spec.use_sitemaps {
            let mut sitemaps: Vec<Url> = Vec::new();
            if let Ok(u) = origin.join("/sitemap.xml") {
                sitemaps.push(u);
            }
            if let Ok(r) = fetch_once(
                shared,
                &origin.join("/robots.txt").unwrap_or(origin.clone()),
            )
            .await
                && r.status == 200
            {
                for s in Robots::parse(&String::from_utf8_lossy(&r.body)).sitemaps {
                    if let Ok(u) = Url::parse(&s)
                        && !sitemaps.contains(&u)
                    {
                        sitemaps.push(u);
                    }
                }
            }
            // At most `MAX_SITEMAPS` fetched, each once, and no more URLs kept than
            // the frontier takes: a hostile site's sitemap index of fifty 10 MB
            // sitemaps held millions of URLs in memory before any limit applied.
            let mut fetched = std::collections::HashSet::new();
            while let Some(sm) = sitemaps.pop() {
                if out.len() >= limit || fetched.len() >= MAX_SITEMAPS {
                    break;
                }
                if !fetched.insert(sm.clone()) {
                    continue;
                }
                let Ok(r) = fetch_once(shared, &sm).await else {
                    continue;
                };
                if r.status != 200 {
                    continue;
                }
                let body = String::from_utf8_lossy(&r.body);
                let is_index = body.contains("<sitemapindex");
                for loc in xml_locs(&body) {
                    let Ok(u) = Url::parse(&loc) else {
                        continue;
                    };
                    if is_index {
                        if sitemaps.len() < MAX_SITEMAPS && !fetched.contains(&u) {
                            sitemaps.push(u);
                        }
                    } else if out.len() < limit {
                        out.push(u);
                    } else {
                        break;
                    }
                }
            }
        }
        if spec.use_llms_txt
            && let Ok(u) = origin.join("/llms.txt")
            && let Ok(r) = fetch_once(shared, &u).await
            && r.status == 200
        {
            for l in text_links(&String::from_utf8_lossy(&r.body), &u) {
                if out.len() >= limit {
                    break;
                }
                if let Ok(u) = Url::parse(&l) {
                    out.push(u);
                }
            }
        }
    }
    out
}

/// Sitemaps fetched at most per origin by [`discover`] (an index's children count).
const MAX_SITEMAPS: usize = 50;

fn xml_locs(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<loc>") {
        let after = &rest[i + 5..];
        let Some(end) = after.find("</loc>") else {
            break;
        };
        let raw = after[..end].trim();
        let raw = raw
            .trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'");
        out.push(raw);
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_rotates_hosts_and_skips_busy_ones() {
        let mut f = Frontier::default();
        for u in [
            "http://a.test/1",
            "http://a.test/2",
            "http://b.test/1",
            "http://a.test/3",
        ] {
            f.push_back(Request {
                url: Url::parse(u).unwrap(),
                depth: 0,
                referrer: None,
            });
        }
        let mut busy = HashMap::new();
        let order: Vec<String> = std::iter::from_fn(|| f.pop_ready(&busy, 1))
            .map(|r| r.url.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "http://a.test/1",
                "http://b.test/1",
                "http://a.test/2",
                "http://a.test/3"
            ]
        );
        assert!(f.is_empty());
        f.push_back(Request {
            url: Url::parse("http://a.test/4").unwrap(),
            depth: 0,
            referrer: None,
        });
        busy.insert("http://a.test".to_string(), 1);
        assert!(f.pop_ready(&busy, 1).is_none(), "a busy host waits");
        assert_eq!(f.len(), 1);
        busy.clear();
        assert!(f.pop_ready(&busy, 1).is_some());
    }

    #[test]
    fn the_crawl_future_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let spec = CrawlSpec::new(crate::spec::StartUrls::parse(["https://a.test/"]).unwrap());
        let settings = CrawlerSettings::default();
        let fut = crawl(&spec, &settings, CancellationToken::new(), |_| {});
        assert_send(&fut);
    }

    #[test]
    fn bodies_are_decoded_by_header_meta_or_fallback() {
        assert_eq!(decode(b"caf\xe9", "text/html; charset=ISO-8859-1"), "café");
        assert_eq!(
            decode(b"<meta charset=\"windows-1252\">caf\xe9", "text/html"),
            "<meta charset=\"windows-1252\">café"
        );
        assert_eq!(decode("café".as_bytes(), "text/html"), "café");
        assert_eq!(decode(b"caf\xe9", ""), "café");
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn sitemap_locs_and_markdown_links_are_found() {
        let xml = "<urlset><url><loc> https://a.test/x?a=1&amp;b=2 </loc></url><url><loc>https://a.test/y</loc></url></urlset>";
        assert_eq!(
            xml_locs(xml),
            vec!["https://a.test/x?a=1&b=2", "https://a.test/y"]
        );
        let base = Url::parse("https://a.test/llms.txt").unwrap();
        let links = text_links(
            "# T\n- [Guide](/docs/guide.md): intro\nsee https://a.test/z.\n",
            &base,
        );
        assert_eq!(
            links,
            vec!["https://a.test/docs/guide.md", "https://a.test/z"]
        );
    }
}
