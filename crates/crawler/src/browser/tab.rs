//! One render on one browser page: the page's events are pumped while the steps run
//! (every paused request answered through the crawler's [`PageNetwork`], child frames
//! and workers attached and intercepted too), then load, network idle, the selector
//! waits, cookie banners, clicks, scrolling, iframes, and the HTML taken.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::cdp::{CdpError, Connection, Event};
use super::{
    BrowserCookie, PageNetwork, PageOptions, PageRequest, PageResponse, RenderError, RenderJob,
    Rendered,
};

/// Navigations of the page itself before its load event (JS redirects); later ones
/// are refused so clicks cannot take the page away.
const MAX_NAVIGATIONS: usize = 5;
/// Requests of one page fetched at once (what a browser allows per host).
const FETCHES_PER_PAGE: usize = 6;
/// Requests one page may make; later ones fail.
const MAX_REQUESTS_PER_PAGE: usize = 1000;
/// How long after clicks or scrolling the network may stay busy.
const SETTLE_AFTER_ACTIONS: Duration = Duration::from_secs(3);
/// How long handlers get after clicks or scrolling to start what they load.
const ACTION_GRACE: Duration = Duration::from_millis(60);
/// The network counts as idle after this long without a request in flight.
const NETWORK_QUIET: Duration = Duration::from_millis(250);
/// The in-page steps (clicks, scrolling, banners, iframes, the snapshot).
const PAGE_JS: &str = include_str!("page.js");

/// What the event pump knows about the page, for the steps that wait on it.
struct PageState {
    inflight: AtomicUsize,
    requests: AtomicUsize,
    navigations: AtomicUsize,
    last_activity: Mutex<Instant>,
    loaded: AtomicBool,
    crashed: AtomicBool,
    /// The page's own frame (its id is the target's).
    main_frame: String,
}

impl PageState {
    fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn quiet_for(&self) -> Duration {
        self.last_activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

/// Handles a page's events while a render runs: answers paused requests through the
/// crawler's network, attaches child targets, notes load and crashes.
async fn pump(
    conn: Arc<Connection>,
    main_session: String,
    mut events: mpsc::UnboundedReceiver<Event>,
    tx: mpsc::UnboundedSender<Event>,
    state: Arc<PageState>,
    network: Arc<dyn PageNetwork>,
    block_media: bool,
) {
    let limiter = Arc::new(tokio::sync::Semaphore::new(FETCHES_PER_PAGE));
    let mut children: Vec<String> = Vec::new();
    let mut fetches = JoinSet::new();
    while let Some(ev) = events.recv().await {
        match ev.method.as_str() {
            "Fetch.requestPaused" => {
                state.inflight.fetch_add(1, Ordering::SeqCst);
                state.touch();
                let n = state.requests.fetch_add(1, Ordering::SeqCst);
                let conn = conn.clone();
                let state = state.clone();
                let network = network.clone();
                let limiter = limiter.clone();
                fetches.spawn(async move {
                    answer(&conn, ev, n, &state, network, limiter, block_media).await;
                    state.inflight.fetch_sub(1, Ordering::SeqCst);
                    state.touch();
                });
            }
            "Page.loadEventFired" if ev.session.as_deref() == Some(main_session.as_str()) => {
                state.loaded.store(true, Ordering::SeqCst);
                state.touch();
            }
            "Inspector.targetCrashed" => {
                state.crashed.store(true, Ordering::SeqCst);
            }
            "Target.attachedToTarget" => {
                let Some(child) = ev.params["sessionId"].as_str().map(str::to_string) else {
                    continue;
                };
                conn.route(&child, tx.clone());
                children.push(child.clone());
                let conn = conn.clone();
                fetches.spawn(async move {
                    let s = Some(child.as_str());
                    let _ = conn
                        .call(
                            s,
                            "Fetch.enable",
                            json!({"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}),
                        )
                        .await;
                    let _ = conn
                        .call(
                            s,
                            "Target.setAutoAttach",
                            json!({"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}),
                        )
                        .await;
                    let _ = conn
                        .call(s, "Runtime.runIfWaitingForDebugger", json!({}))
                        .await;
                });
            }
            _ => {}
        }
        // Finished fetch tasks are reaped as we go.
        while fetches.try_join_next().is_some() {}
    }
    for c in children {
        conn.unroute(&c);
    }
}

/// Answers one paused request of the page (`Fetch.requestPaused`): refused, or
/// fetched through the page's network (the SSRF guard) and fulfilled.
async fn answer(
    conn: &Connection,
    ev: Event,
    n: usize,
    state: &PageState,
    network: Arc<dyn PageNetwork>,
    limiter: Arc<tokio::sync::Semaphore>,
    block_media: bool,
) {
    let p = &ev.params;
    let session = ev.session.as_deref();
    let Some(id) = p["requestId"].as_str() else {
        return;
    };
    let request = match page_request(p, n, state, block_media) {
        Ok(request) => request,
        Err(reason) => {
            let _ = fail(conn, session, id, reason).await;
            return;
        }
    };
    let response = {
        let _permit = limiter.acquire().await;
        network.fetch(request).await
    };
    let _ = match response {
        PageResponse::Response {
            status,
            headers,
            body,
        } => {
            let headers: Vec<Value> = headers
                .into_iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            conn.call(
                session,
                "Fetch.fulfillRequest",
                json!({
                    "requestId": id,
                    "responseCode": status,
                    "responseHeaders": headers,
                    "body": base64::engine::general_purpose::STANDARD.encode(&body),
                }),
            )
            .await
        }
        PageResponse::Blocked(_) => fail(conn, session, id, "BlockedByClient").await,
        PageResponse::Failed(_) => fail(conn, session, id, "Failed").await,
    };
}

/// Fails a paused request with a DevTools `errorReason`.
async fn fail(
    conn: &Connection,
    session: Option<&str>,
    id: &str,
    reason: &'static str,
) -> Result<Value, CdpError> {
    conn.call(
        session,
        "Fetch.failRequest",
        json!({"requestId": id, "errorReason": reason}),
    )
    .await
}

/// The request a `Fetch.requestPaused` event describes, or the reason to refuse it:
/// not http(s), nothing the text needs (fonts, favicons, pings; media when asked),
/// over the page's request budget, or a navigation of the main frame after it loaded.
fn page_request(
    p: &Value,
    n: usize,
    state: &PageState,
    block_media: bool,
) -> Result<PageRequest, &'static str> {
    let req = &p["request"];
    let resource_type = p["resourceType"].as_str().unwrap_or("Other").to_string();
    let url = url::Url::parse(req["url"].as_str().unwrap_or("")).map_err(|_| "BlockedByClient")?;
    let main_frame_document =
        resource_type == "Document" && p["frameId"].as_str() == Some(state.main_frame.as_str());
    let useless = matches!(
        resource_type.as_str(),
        "Font" | "Ping" | "CSPViolationReport" | "Manifest" | "SignedExchange" | "Prefetch"
    ) || (block_media && matches!(resource_type.as_str(), "Image" | "Media"))
        || url.path() == "/favicon.ico";
    if useless || !matches!(url.scheme(), "http" | "https") || n >= MAX_REQUESTS_PER_PAGE {
        return Err("BlockedByClient");
    }
    if main_frame_document {
        let navigations = state.navigations.fetch_add(1, Ordering::SeqCst);
        if navigations >= MAX_NAVIGATIONS
            || (navigations > 0 && state.loaded.load(Ordering::SeqCst))
        {
            return Err("Aborted");
        }
    }
    let headers: Vec<(String, String)> = req["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let body = match req.get("postDataEntries").and_then(Value::as_array) {
        Some(entries) => {
            let mut out = Vec::new();
            for e in entries {
                if let Some(b) = e["bytes"].as_str()
                    && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b)
                {
                    out.extend_from_slice(&bytes);
                }
            }
            Some(out)
        }
        None => req["postData"].as_str().map(|s| s.as_bytes().to_vec()),
    };
    Ok(PageRequest {
        url,
        method: req["method"].as_str().unwrap_or("GET").to_string(),
        headers,
        body,
        resource_type,
        main_frame_document,
    })
}

/// Runs `step` of page.js in the page and returns its value.
async fn page_step(
    conn: &Connection,
    sid: &str,
    step: &str,
    arg: Value,
) -> Result<Value, RenderError> {
    let expression = format!("({PAGE_JS})({}, {})", json!(step), arg);
    let r = conn
        .call(
            Some(sid),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )
        .await
        .map_err(|e| RenderError::Page(format!("browser: {e}")))?;
    if let Some(ex) = r.get("exceptionDetails") {
        let text = ex["exception"]["description"]
            .as_str()
            .or_else(|| ex["text"].as_str())
            .unwrap_or("script error");
        return Err(RenderError::Page(format!(
            "page step {step} failed: {text}"
        )));
    }
    Ok(r["result"]["value"].clone())
}

/// Waits until no request has been in flight for [`NETWORK_QUIET`], or `until`.
async fn network_idle(state: &PageState, until: Instant) -> Result<(), RenderError> {
    loop {
        if state.crashed.load(Ordering::SeqCst) {
            return Err(crashed());
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        let quiet = state.quiet_for();
        if state.inflight.load(Ordering::SeqCst) == 0 && quiet >= NETWORK_QUIET {
            return Ok(());
        }
        let wait = NETWORK_QUIET
            .saturating_sub(quiet)
            .max(Duration::from_millis(10))
            .min(until - now);
        tokio::time::sleep(wait).await;
    }
}

/// After clicks or scrolling: a moment for the page's handlers to ask for what they
/// load, then, if they asked for anything, the network going idle again.
async fn settle_after(
    state: &PageState,
    requests_before: usize,
    deadline: Instant,
) -> Result<(), RenderError> {
    tokio::time::sleep(ACTION_GRACE).await;
    if state.requests.load(Ordering::SeqCst) == requests_before
        && state.inflight.load(Ordering::SeqCst) == 0
    {
        return Ok(());
    }
    network_idle(state, (Instant::now() + SETTLE_AFTER_ACTIONS).min(deadline)).await
}

fn crashed() -> RenderError {
    RenderError::Page("the page crashed in the browser (memory limit?)".to_string())
}

pub(super) async fn render_on(
    conn: Arc<Connection>,
    sid: &str,
    target: &str,
    job: &RenderJob,
    deadline: Instant,
) -> Result<Rendered, RenderError> {
    let (tx, rx) = mpsc::unbounded_channel();
    conn.route(sid, tx.clone());
    let state = Arc::new(PageState {
        inflight: AtomicUsize::new(0),
        requests: AtomicUsize::new(0),
        navigations: AtomicUsize::new(0),
        last_activity: Mutex::new(Instant::now()),
        loaded: AtomicBool::new(false),
        crashed: AtomicBool::new(false),
        main_frame: target.to_string(),
    });
    let pump = tokio::spawn(pump(
        conn.clone(),
        sid.to_string(),
        rx,
        tx,
        state.clone(),
        job.network.clone(),
        job.options.block_media,
    ));
    // The pump (and the fetches it started) stop with the render, however it ends.
    struct Stop(tokio::task::JoinHandle<()>, Arc<Connection>, String);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.1.unroute(&self.2);
            self.0.abort();
        }
    }
    let _stop = Stop(pump, conn.clone(), sid.to_string());
    render_steps(&conn, sid, job, &state, deadline).await
}

async fn render_steps(
    conn: &Connection,
    sid: &str,
    job: &RenderJob,
    state: &PageState,
    deadline: Instant,
) -> Result<Rendered, RenderError> {
    let o: &PageOptions = &job.options;
    let cdp = |e: CdpError| RenderError::Page(format!("browser: {e}"));
    let s = Some(sid);
    if !job.user_agent.is_empty() {
        conn.call(
            s,
            "Emulation.setUserAgentOverride",
            json!({"userAgent": job.user_agent}),
        )
        .await
        .map_err(cdp)?;
    }
    if !job.cookies.is_empty() {
        let cookies: Vec<Value> = job.cookies.iter().map(cookie_param).collect();
        // A cookie the browser refuses is not worth failing the page for.
        let _ = conn
            .call(s, "Network.setCookies", json!({"cookies": cookies}))
            .await;
    }
    let started = Instant::now();
    let settle_by = (started + o.dynamic_wait).min(deadline);
    let nav = conn
        .call(s, "Page.navigate", json!({"url": job.url.as_str()}))
        .await
        .map_err(cdp)?;
    if let Some(err) = nav.get("errorText").and_then(Value::as_str) {
        return Err(RenderError::Page(format!("navigation failed: {err}")));
    }
    // Load, then the network going quiet, within dynamicContentWaitSecs.
    while !state.loaded.load(Ordering::SeqCst) && Instant::now() < settle_by {
        if state.crashed.load(Ordering::SeqCst) {
            return Err(crashed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let loaded_ms = started.elapsed().as_millis();
    network_idle(state, settle_by).await?;
    let idle_ms = started.elapsed().as_millis();
    wait_for_selectors(conn, sid, o, settle_by, deadline).await?;
    if o.remove_cookie_warnings {
        page_step(conn, sid, "cookies", Value::Null).await?;
    }
    let waited_ms = started.elapsed().as_millis();
    if let Some(selector) = o.click_selector.as_deref() {
        click_open(conn, sid, state, selector, deadline).await?;
    }
    let clicked_ms = started.elapsed().as_millis();
    if o.max_scroll_pixels > 0 {
        let before = state.requests.load(Ordering::SeqCst);
        let scrolled = page_step(conn, sid, "scroll", json!(o.max_scroll_pixels)).await?;
        if scrolled.as_u64().unwrap_or(0) > 0 {
            settle_after(state, before, deadline).await?;
        }
    }
    let scrolled_ms = started.elapsed().as_millis();
    if o.expand_iframes {
        page_step(conn, sid, "iframes", Value::Null).await?;
    }
    if o.remove_cookie_warnings {
        // Banners that arrived late.
        page_step(conn, sid, "cookies", Value::Null).await?;
    }
    let snap = page_step(conn, sid, "snapshot", json!(o.max_html_bytes)).await?;
    if let Some(n) = snap.get("tooLarge") {
        return Err(RenderError::Page(format!(
            "rendered page larger than {} bytes ({n})",
            o.max_html_bytes
        )));
    }
    tracing::debug!(
        url = %job.url,
        loaded_ms,
        idle_ms,
        waited_ms,
        clicked_ms,
        scrolled_ms,
        done_ms = started.elapsed().as_millis(),
        requests = state.requests.load(Ordering::SeqCst),
        "page rendered"
    );
    let html = snap["html"].as_str().unwrap_or("").to_string();
    let url = snap["url"].as_str().unwrap_or(job.url.as_str()).to_string();
    let cookies = conn
        .call(s, "Network.getCookies", json!({"urls": [url]}))
        .await
        .ok()
        .and_then(|v| serde_json::from_value::<Vec<BrowserCookie>>(v["cookies"].clone()).ok())
        .unwrap_or_default();
    Ok(Rendered { html, url, cookies })
}

/// How long before the page's deadline a `waitForSelector` gives up.
const SELECTOR_MARGIN: Duration = Duration::from_millis(300);

/// `waitForSelector` (until the deadline; missing fails the page) and
/// `softWaitForSelector` (until the dynamic wait ends; missing is fine).
async fn wait_for_selectors(
    conn: &Connection,
    sid: &str,
    o: &PageOptions,
    settle_by: Instant,
    deadline: Instant,
) -> Result<(), RenderError> {
    for (selector, hard) in [
        (o.wait_for_selector.as_deref(), true),
        (o.soft_wait_for_selector.as_deref(), false),
    ] {
        let Some(selector) = selector else { continue };
        // A missing hard selector is reported as such, not as the page's timeout: the
        // wait ends a little before the page's deadline, and a check still running
        // then (a loaded machine) counts as not found.
        let until = if hard {
            deadline
                .checked_sub(SELECTOR_MARGIN)
                .unwrap_or(deadline)
                .max(Instant::now())
        } else {
            settle_by.max(Instant::now())
        };
        loop {
            let check = page_step(conn, sid, "has", json!(selector));
            let found = match tokio::time::timeout_at(until.into(), check).await {
                Ok(found) => found? == json!(true),
                Err(_) => false,
            };
            if found {
                break;
            }
            if Instant::now() + Duration::from_millis(100) >= until {
                if hard {
                    return Err(RenderError::Page(format!(
                        "waitForSelector {selector:?} did not appear"
                    )));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// `clickElementsCssSelector`: clicks the matches open, up to three levels deep,
/// letting the network settle after each.
async fn click_open(
    conn: &Connection,
    sid: &str,
    state: &PageState,
    selector: &str,
    deadline: Instant,
) -> Result<(), RenderError> {
    // Expanding one level may reveal the next (nested accordions).
    for _ in 0..3 {
        let before = state.requests.load(Ordering::SeqCst);
        let clicked = page_step(conn, sid, "click", json!(selector)).await?;
        if clicked.as_u64().unwrap_or(0) == 0 {
            break;
        }
        settle_after(state, before, deadline).await?;
    }
    Ok(())
}

fn cookie_param(c: &BrowserCookie) -> Value {
    let mut v = json!({
        "name": c.name,
        "value": c.value,
        "path": c.path,
        "secure": c.secure,
        "httpOnly": c.http_only,
    });
    if c.domain.starts_with('.') {
        v["domain"] = json!(c.domain);
    } else {
        // Host-only: named by URL, so the browser does not widen it to subdomains.
        let scheme = if c.secure { "https" } else { "http" };
        v["url"] = json!(format!("{scheme}://{}{}", c.domain, c.path));
    }
    if let Some(e) = c.expires.filter(|e| *e > 0.0) {
        v["expires"] = json!(e);
    }
    v
}
