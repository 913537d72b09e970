//! [`Chromium`]: a bounded pool of pages in one headless Debian `chromium`, driven over
//! the DevTools pipe. Each page lives in its own browser context, bound to one crawl
//! (contexts are reused by that crawl's later pages, never by another crawl's). The
//! browser starts on first use, is restarted when its processes' memory passes a
//! budget or after a number of pages (leaks), and exits after a while unused.
//!
//! The browser has no network of its own: it is pointed at a proxy that refuses every
//! connection (loopback included), and every request a page makes is paused with
//! `Fetch.enable` and answered with what the crawler's [`PageNetwork`] fetched, or
//! failed. A page gets a time limit, a V8 heap limit and a cap on its requests.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::cdp::{CdpError, Connection};
use super::{BoxFuture, RenderError, RenderJob, Rendered, Renderer};
use crate::scratch::{self, ScratchDir};

/// A browser that failed to start is tried again after this long.
const LAUNCH_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Operator settings for the browser pool.
#[derive(Debug, Clone)]
pub struct ChromiumConfig {
    /// Debian's wrapper; no downloaded browser builds.
    pub executable: PathBuf,
    /// Pages (each with its own context) alive at once, across all crawls.
    pub max_pages: usize,
    /// V8 heap limit of a page's renderer; a page that needs more fails.
    pub page_memory_mb: u64,
    /// The browser is restarted (once its pages are done) when its processes together
    /// hold more than this (proportional set size: shared pages split between them).
    pub max_memory_mb: u64,
    /// ... or after this many pages, whatever their memory says.
    pub pages_per_browser: u64,
    /// Pages a context serves before it is replaced by a fresh one.
    pub pages_per_context: u32,
    /// The browser exits after this long without a page.
    pub idle_shutdown: Duration,
}

impl Default for ChromiumConfig {
    fn default() -> Self {
        Self {
            executable: PathBuf::from("/usr/bin/chromium"),
            max_pages: 4,
            page_memory_mb: 512,
            max_memory_mb: 2048,
            pages_per_browser: 2000,
            pages_per_context: 50,
            idle_shutdown: Duration::from_secs(300),
        }
    }
}

/// What the pool has done so far (for operators and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BrowserStats {
    pub launches: u64,
    /// Restarts because of memory or page count.
    pub restarts: u64,
    pub pages: u64,
    pub failed_pages: u64,
    /// Resident memory of the browser's processes now (summed; shared pages counted
    /// once per process, so an upper bound) and the highest seen.
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// Proportional set size (shared pages split between processes): the honest total.
    pub pss_bytes: u64,
    pub peak_pss_bytes: u64,
}

struct Browser {
    conn: Arc<Connection>,
    child: Mutex<Option<tokio::process::Child>>,
    pid: u32,
    generation: u64,
    renders: AtomicU64,
    /// Set when the browser should go: no new pages; killed when its pages are back.
    retiring: AtomicBool,
    /// The profile directory (`--user-data-dir`), deleted when the browser goes.
    _profile: ScratchDir,
    /// The refusing proxy and the stderr reader.
    tasks: Mutex<JoinSet<()>>,
}

impl Browser {
    async fn shut_down(&self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.conn.call(None, "Browser.close", json!({})),
        )
        .await;
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .abort_all();
    }
}

struct Tab {
    browser: Arc<Browser>,
    session: u64,
    context: String,
    target: String,
    sid: String,
    uses: u32,
}

#[derive(Default)]
struct State {
    browser: Option<Arc<Browser>>,
    launching: bool,
    /// Tabs of the current browser, idle ones included.
    tabs: usize,
    idle: Vec<Tab>,
    last_used: Option<Instant>,
    generation: u64,
    stats: BrowserStats,
    /// A failed start is not retried by every waiting page at once.
    last_failure: Option<(Instant, String)>,
}

struct Inner {
    config: ChromiumConfig,
    state: Mutex<State>,
    changed: Notify,
}

/// A pool of Chromium pages implementing [`Renderer`].
#[derive(Clone)]
pub struct Chromium {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Chromium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromium")
            .field("config", &self.inner.config)
            .finish()
    }
}

enum Step {
    Launch,
    Failed(String),
    Wait,
    Use(Tab),
    Create(Arc<Browser>, Option<Tab>),
}

/// A page slot of a browser, counted in `State::tabs` from the moment `next_step`
/// grants it, with its page once it has one. Whatever ends its holder (the render
/// done, or the crawl aborted or timed out at any await), dropping it closes the
/// page and gives the slot back, unless [`Chromium::release`] put the page in the
/// idle list. Without this, a cancelled render kept its slot for good and, once
/// `max_pages` were lost, every crawl's rendering waited forever.
struct Slot {
    inner: Arc<Inner>,
    browser: Arc<Browser>,
    tab: Option<Tab>,
    counted: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(tab) = self.tab.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(close_tab(tab));
        }
        if self.counted {
            self.inner.forget_tab(&self.browser);
        }
    }
}

/// `State::launching` while a launch is under way: cleared when the launch is
/// cancelled, so the pages waiting for it try again instead of waiting forever.
struct Launching<'a> {
    inner: &'a Inner,
    armed: bool,
}

impl Drop for Launching<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.lock().launching = false;
            self.inner.changed.notify_waiters();
        }
    }
}

impl Chromium {
    /// A pool that starts the browser when the first page needs it.
    pub fn new(config: ChromiumConfig) -> Chromium {
        Chromium {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State::default()),
                changed: Notify::new(),
            }),
        }
    }

    pub fn config(&self) -> &ChromiumConfig {
        &self.inner.config
    }

    pub fn stats(&self) -> BrowserStats {
        self.inner.lock().stats
    }

    /// The running browser's process id (None when none runs): with
    /// [`process_tree`], what an operator's tooling or a test inspects.
    pub fn browser_pid(&self) -> Option<u32> {
        self.inner.lock().browser.as_ref().map(|b| b.pid)
    }

    /// Starts the browser now (a server warms it up before the first crawl needs it).
    pub async fn start(&self) -> Result<(), RenderError> {
        let slot = self.acquire(0).await?;
        self.release(slot, true).await;
        self.end_session(0);
        Ok(())
    }

    /// Stops the browser (it starts again when a page needs it).
    pub async fn shut_down(&self) {
        let (browser, idle) = {
            let mut st = self.inner.lock();
            st.tabs = 0;
            (st.browser.take(), std::mem::take(&mut st.idle))
        };
        drop(idle);
        if let Some(b) = browser {
            b.shut_down().await;
        }
        self.inner.changed.notify_waiters();
    }

    async fn acquire(&self, session: u64) -> Result<Slot, RenderError> {
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (step, stale) = self.next_step(session);
            for b in stale {
                tokio::spawn(async move { b.shut_down().await });
            }
            match step {
                Step::Launch => {
                    let mut launching = Launching {
                        inner: &self.inner,
                        armed: true,
                    };
                    let generation = {
                        let mut st = self.inner.lock();
                        st.generation += 1;
                        st.generation
                    };
                    let launched = launch(&self.inner.config, generation).await;
                    let mut st = self.inner.lock();
                    st.launching = false;
                    launching.armed = false;
                    match launched {
                        Ok(b) => {
                            st.last_failure = None;
                            st.stats.launches += 1;
                            st.browser = Some(b.clone());
                            st.tabs = 0;
                            st.last_used = Some(Instant::now());
                            drop(st);
                            self.watch(b);
                            self.inner.changed.notify_waiters();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the browser did not start");
                            st.last_failure = Some((Instant::now(), e.clone()));
                            drop(st);
                            self.inner.changed.notify_waiters();
                            return Err(RenderError::Unavailable(e));
                        }
                    }
                }
                Step::Wait => {
                    // Also wake up now and then: a browser that died tells no one.
                    let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
                }
                Step::Failed(why) => return Err(RenderError::Unavailable(why)),
                Step::Use(tab) => {
                    return Ok(Slot {
                        inner: self.inner.clone(),
                        browser: tab.browser.clone(),
                        tab: Some(tab),
                        counted: true,
                    });
                }
                Step::Create(browser, evicted) => {
                    if let Some(old) = evicted {
                        tokio::spawn(close_tab(old));
                    }
                    let mut slot = Slot {
                        inner: self.inner.clone(),
                        browser: browser.clone(),
                        tab: None,
                        counted: true,
                    };
                    // A failed or cancelled open drops the slot: it is given back.
                    let tab = open_tab(&browser, session).await.map_err(|e| {
                        RenderError::Page(format!("cannot open a browser page: {e}"))
                    })?;
                    slot.tab = Some(tab);
                    return Ok(slot);
                }
            }
        }
    }

    /// Decides what `acquire` does next; also returns browsers to stop.
    fn next_step(&self, session: u64) -> (Step, Vec<Arc<Browser>>) {
        let mut stale = Vec::new();
        let mut st = self.inner.lock();
        if let Some(b) = st.browser.clone() {
            let dead = b.conn.is_closed();
            let drained = b.retiring.load(Ordering::SeqCst) && st.tabs == st.idle.len();
            if dead || drained {
                if !dead {
                    st.stats.restarts += 1;
                }
                st.browser = None;
                st.tabs = 0;
                st.idle.clear();
                stale.push(b);
            }
        }
        let step = match st.browser.clone() {
            None if st.launching => Step::Wait,
            None if st
                .last_failure
                .as_ref()
                .is_some_and(|(t, _)| t.elapsed() < LAUNCH_RETRY_AFTER) =>
            {
                let why = st
                    .last_failure
                    .as_ref()
                    .map(|f| f.1.clone())
                    .unwrap_or_default();
                Step::Failed(why)
            }
            None => {
                st.launching = true;
                Step::Launch
            }
            Some(b) if b.retiring.load(Ordering::SeqCst) => Step::Wait,
            Some(b) => {
                st.last_used = Some(Instant::now());
                if let Some(i) = st.idle.iter().position(|t| t.session == session) {
                    Step::Use(st.idle.swap_remove(i))
                } else if st.tabs < self.inner.config.max_pages.max(1) {
                    st.tabs += 1;
                    Step::Create(b, None)
                } else if !st.idle.is_empty() {
                    // Another crawl's idle page makes room (its context goes with it).
                    let old = st.idle.remove(0);
                    Step::Create(b, Some(old))
                } else {
                    Step::Wait
                }
            }
        };
        (step, stale)
    }

    /// Puts the slot's page in the idle list when it can serve again; otherwise
    /// the slot drops, which closes the page and gives the slot back.
    async fn release(&self, mut slot: Slot, healthy: bool) {
        let Some(tab) = slot.tab.as_mut() else { return };
        tab.uses += 1;
        let renders = tab.browser.renders.fetch_add(1, Ordering::Relaxed) + 1;
        if renders >= self.inner.config.pages_per_browser {
            tab.browser.retiring.store(true, Ordering::SeqCst);
        }
        let keep = healthy
            && tab.uses < self.inner.config.pages_per_context.max(1)
            && !tab.browser.retiring.load(Ordering::SeqCst)
            && !tab.browser.conn.is_closed()
            && tokio::time::timeout(
                Duration::from_secs(2),
                tab.browser.conn.call(
                    Some(&tab.sid),
                    "Page.navigate",
                    json!({"url": "about:blank"}),
                ),
            )
            .await
            .is_ok_and(|r| r.is_ok());
        if keep {
            let mut st = self.inner.lock();
            let current = st
                .browser
                .as_ref()
                .is_some_and(|b| b.generation == tab.browser.generation);
            if current && let Some(tab) = slot.tab.take() {
                st.last_used = Some(Instant::now());
                st.idle.push(tab);
                slot.counted = false;
                drop(st);
                self.inner.changed.notify_waiters();
            }
        }
    }

    /// Samples the browser's memory (retiring it past the budget) and stops it when idle.
    fn watch(&self, browser: Arc<Browser>) {
        let budget = self.inner.config.max_memory_mb.saturating_mul(1 << 20);
        let inner = Arc::downgrade(&self.inner);
        let mut tasks = browser.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let b = Arc::downgrade(&browser);
        tasks.spawn(async move {
            for tick in 0u64.. {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let (Some(inner), Some(browser)) = (inner.upgrade(), b.upgrade()) else {
                    return;
                };
                if browser.conn.is_closed() {
                    inner.changed.notify_waiters();
                    return;
                }
                let pid = browser.pid;
                // RSS is an upper bound of PSS, so the costly PSS is only needed when
                // RSS is over the budget, and every 2 s for the stats.
                let periodic = tick % 8 == 0;
                let (rss, pss) =
                    crate::background::spawn(move || tree_memory(pid, budget, periodic))
                        .await
                        .unwrap_or((0, None));
                let idle_for = {
                    let mut st = inner.lock();
                    st.stats.rss_bytes = rss;
                    st.stats.peak_rss_bytes = st.stats.peak_rss_bytes.max(rss);
                    if let Some(pss) = pss {
                        st.stats.pss_bytes = pss;
                        st.stats.peak_pss_bytes = st.stats.peak_pss_bytes.max(pss);
                    }
                    let busy = st.tabs > st.idle.len();
                    (!busy).then(|| st.last_used.map(|t| t.elapsed()).unwrap_or_default())
                };
                if let Some(pss) = pss.filter(|pss| *pss > budget) {
                    if !browser.retiring.swap(true, Ordering::SeqCst) {
                        tracing::info!(
                            pss_mb = pss >> 20,
                            "browser over its memory budget; restarting it"
                        );
                    }
                    inner.changed.notify_waiters();
                }
                if idle_for.is_some_and(|d| d >= inner.config.idle_shutdown) {
                    let mut st = inner.lock();
                    let same = st
                        .browser
                        .as_ref()
                        .is_some_and(|x| x.generation == browser.generation);
                    if same && st.tabs == st.idle.len() {
                        st.browser = None;
                        st.tabs = 0;
                        st.idle.clear();
                        drop(st);
                        tracing::debug!("browser idle; stopping it");
                        // Shutting down aborts this task, so it runs elsewhere.
                        tokio::spawn(async move { browser.shut_down().await });
                        return;
                    }
                }
            }
        });
    }

    async fn render_job(&self, job: RenderJob) -> Result<Rendered, RenderError> {
        let slot = self.acquire(job.session).await?;
        let Some(tab) = slot.tab.as_ref() else {
            return Err(RenderError::Page("the browser page is gone".into()));
        };
        let deadline = Instant::now() + job.timeout;
        let result = tokio::time::timeout(
            job.timeout,
            super::tab::render_on(
                tab.browser.conn.clone(),
                &tab.sid,
                &tab.target,
                &job,
                deadline,
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(RenderError::Page(format!(
                "page timed out after {} s in the browser",
                job.timeout.as_secs_f64()
            )))
        });
        {
            let mut st = self.inner.lock();
            st.stats.pages += 1;
            if result.is_err() {
                st.stats.failed_pages += 1;
            }
        }
        self.release(slot, result.is_ok()).await;
        result
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives back a page slot of `browser` (nothing when another browser has
    /// replaced it: the count started again with that one).
    fn forget_tab(&self, browser: &Arc<Browser>) {
        let mut st = self.lock();
        if st
            .browser
            .as_ref()
            .is_some_and(|b| b.generation == browser.generation)
        {
            st.tabs = st.tabs.saturating_sub(1);
        }
        drop(st);
        self.changed.notify_waiters();
    }
}

impl Renderer for Chromium {
    fn render(&self, job: RenderJob) -> BoxFuture<'_, Result<Rendered, RenderError>> {
        Box::pin(self.render_job(job))
    }

    fn end_session(&self, session: u64) {
        let mut st = self.inner.lock();
        let (gone, kept): (Vec<Tab>, Vec<Tab>) = std::mem::take(&mut st.idle)
            .into_iter()
            .partition(|t| t.session == session);
        st.idle = kept;
        st.tabs = st.tabs.saturating_sub(gone.len());
        drop(st);
        if !gone.is_empty() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                for t in gone {
                    rt.spawn(close_tab(t));
                }
            }
            self.inner.changed.notify_waiters();
        }
    }
}

/// `root` and every process descended from it, from /proc (empty elsewhere).
pub fn process_tree(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent: Vec<(u32, u32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name, which may itself contain spaces and parens.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parent.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// Resident memory of `root` and its descendants in bytes (from `status`, cheap), and
/// their proportional memory when `with_pss` or the resident total is over `budget`.
/// PSS comes from `smaps_rollup`, which walks every page table of each process: for
/// chromium's address spaces (hundreds of GB reserved) that is milliseconds of kernel
/// time per process, which at four reads a second cost the server a sixth of a core
/// during a crawl.
fn tree_memory(root: u32, budget: u64, with_pss: bool) -> (u64, Option<u64>) {
    let tree = process_tree(root);
    let rss = tree
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .map(|text| kb_field(&text, "VmRSS:"))
        .sum();
    if !with_pss && rss <= budget {
        return (rss, None);
    }
    let pss = tree
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .map(|text| kb_field(&text, "Pss:"))
        .sum();
    (rss, Some(pss))
}

/// The value of a `Name:   1234 kB` line of a /proc file, in bytes (0 when absent).
fn kb_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// What the browser profiles' directories are named, in the temporary directory.
const PROFILE_PREFIX: &str = "agentbase-chromium-";

/// Run by `/bin/sh -c` with the browser and its arguments as `$0 "$@"` (see [`launch`]).
const LAUNCH_SCRIPT: &str = r#"renice -n 10 -p $$ >/dev/null 2>&1
set -- "$0" "$@"
if chrt --idle 0 true 2>/dev/null; then
  set -- chrt --idle 0 "$@"
fi
if [ "$(id -u)" = 0 ] && setpriv --inh-caps=-sys_nice --bounding-set=-sys_nice true 2>/dev/null; then
  set -- setpriv --inh-caps=-sys_nice --bounding-set=-sys_nice "$@"
fi
exec "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#;

/// A listener on loopback that drops every connection: the browser's proxy, so that
/// whatever a page sends past request interception (WebSockets, preconnects) goes
/// nowhere. Its port.
async fn refusing_proxy(tasks: &mut JoinSet<()>) -> Result<u16, String> {
    let refuser = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind the browser's proxy: {e}"))?;
    let port = refuser
        .local_addr()
        .map_err(|e| format!("cannot bind the browser's proxy: {e}"))?
        .port();
    tasks.spawn(async move {
        while let Ok((socket, _)) = refuser.accept().await {
            drop(socket);
        }
    });
    Ok(port)
}

/// Chromium's command line: headless, no background services, the refusing proxy,
/// the page memory bound and its own profile, driven over the debugging pipe.
fn chromium_args(
    config: &ChromiumConfig,
    proxy_port: u16,
    profile: &std::path::Path,
) -> Vec<String> {
    vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-extensions".into(),
        "--disable-default-apps".into(),
        "--disable-breakpad".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,InterestFeedContentSuggestions".into(),
        "--mute-audio".into(),
        "--hide-scrollbars".into(),
        "--disable-background-timer-throttling".into(),
        "--disable-renderer-backgrounding".into(),
        "--disable-backgrounding-occluded-windows".into(),
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp".into(),
        format!("--proxy-server=http://127.0.0.1:{proxy_port}"),
        "--proxy-bypass-list=<-loopback>".into(),
        format!("--js-flags=--max-old-space-size={}", config.page_memory_mb.max(16)),
        format!("--user-data-dir={}", profile.display()),
        "--remote-debugging-pipe".into(),
        "about:blank".into(),
    ]
}

/// The browser's last 20 lines of stderr, kept for the error when it does not start.
fn keep_stderr_tail(
    child: &mut tokio::process::Child,
    tasks: &mut JoinSet<()>,
) -> Arc<Mutex<VecDeque<String>>> {
    let stderr_tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
    if let Some(stderr) = child.stderr.take() {
        let tail = stderr_tail.clone();
        tasks.spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() >= 20 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
    }
    stderr_tail
}

/// A new profile directory for a browser. Each launch first deletes the profiles of
/// browsers whose server was killed (see `scratch`).
async fn new_profile() -> Result<ScratchDir, String> {
    crate::background::spawn(|| {
        let root = std::env::temp_dir();
        let ours = |n: &str| n.starts_with(PROFILE_PREFIX);
        scratch::sweep(&root, "browser profiles", ours, scratch::MIN_AGE);
        ScratchDir::create_in(&root, PROFILE_PREFIX)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|made| made.map_err(|e| e.to_string()))
    .map_err(|e| format!("cannot create a browser profile directory: {e}"))
}

async fn launch(config: &ChromiumConfig, generation: u64) -> Result<Arc<Browser>, String> {
    if !config.executable.exists() {
        return Err(format!(
            "{} not found (install Debian's chromium)",
            config.executable.display()
        ));
    }
    let profile = new_profile().await?;
    let mut tasks = JoinSet::new();
    let proxy_port = refusing_proxy(&mut tasks).await?;
    let args = chromium_args(config, proxy_port, profile.path());
    // The pipe protocol wants fds 3 (commands in) and 4 (messages out); the shell moves
    // our stdin and stdout pipes there (no unsafe pre-exec code needed). The browser
    // runs at a lower CPU priority: rendering is bulk work, and the API, HTTP crawling
    // and this process's own page handling come first. Chromium raises some of its
    // threads (compositor, IO) to nice -8 whenever it may; as root it may, and those
    // threads then preempted the server's runtime workers (a 6x p99 in the soak,
    // bench/RESULTS-chaos.md). So for root the browser runs without CAP_SYS_NICE (setpriv drops
    // it from the bounding and inheritable sets), and every thread stays at 10 or
    // nicer; anyone else cannot raise a priority anyway. It also runs under the
    // `SCHED_IDLE` policy (`chrt --idle`, when util-linux has it), like the server's
    // own background threads (`agentbase_llm::sched`): a woken request thread
    // preempts it at once instead of after its slice.
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(LAUNCH_SCRIPT)
        .arg(&config.executable)
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", config.executable.display()))?;
    let pid = child.id().unwrap_or(0);
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the browser's pipes are missing".to_string());
    };
    let stderr_tail = keep_stderr_tail(&mut child, &mut tasks);
    let conn = Connection::start(stdin, stdout);
    let version = tokio::time::timeout(
        Duration::from_secs(30),
        conn.call(None, "Browser.getVersion", json!({})),
    )
    .await;
    let browser = Arc::new(Browser {
        conn,
        child: Mutex::new(Some(child)),
        pid,
        generation,
        renders: AtomicU64::new(0),
        retiring: AtomicBool::new(false),
        _profile: profile,
        tasks: Mutex::new(tasks),
    });
    match version {
        Ok(Ok(v)) => {
            tracing::info!(
                product = v["product"].as_str().unwrap_or(""),
                pid,
                "browser started"
            );
            Ok(browser)
        }
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer in 30 s".to_string(),
            };
            // Give stderr a moment to say why.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let tail: Vec<String> = stderr_tail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect();
            browser.shut_down().await;
            Err(format!(
                "{} did not start ({why}): {}",
                config.executable.display(),
                tail.join(" | ")
            ))
        }
    }
}

async fn open_tab(browser: &Arc<Browser>, session: u64) -> Result<Tab, CdpError> {
    let conn = &browser.conn;
    let ctx = conn
        .call(
            None,
            "Target.createBrowserContext",
            json!({"disposeOnDetach": true}),
        )
        .await?;
    let context = ctx["browserContextId"].as_str().unwrap_or("").to_string();
    let made = async {
        let t = conn
            .call(
                None,
                "Target.createTarget",
                json!({"url": "about:blank", "browserContextId": context}),
            )
            .await?;
        let target = t["targetId"].as_str().unwrap_or("").to_string();
        let a = conn
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await?;
        let sid = a["sessionId"].as_str().unwrap_or("").to_string();
        let s = Some(sid.as_str());
        conn.call(s, "Page.enable", json!({})).await?;
        conn.call(
            s,
            "Fetch.enable",
            json!({"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}),
        )
        .await?;
        // Out-of-process frames and workers start paused until their own requests are
        // intercepted too.
        conn.call(
            s,
            "Target.setAutoAttach",
            json!({"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}),
        )
        .await?;
        Ok::<_, CdpError>((target, sid))
    }
    .await;
    match made {
        Ok((target, sid)) => Ok(Tab {
            browser: browser.clone(),
            session,
            context,
            target,
            sid,
            uses: 0,
        }),
        Err(e) => {
            let _ = conn
                .call(
                    None,
                    "Target.disposeBrowserContext",
                    json!({"browserContextId": context}),
                )
                .await;
            Err(e)
        }
    }
}

async fn close_tab(tab: Tab) {
    let conn = &tab.browser.conn;
    tab.browser.conn.unroute(&tab.sid);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = conn
            .call(None, "Target.closeTarget", json!({"targetId": tab.target}))
            .await;
        let _ = conn
            .call(
                None,
                "Target.disposeBrowserContext",
                json!({"browserContextId": tab.context}),
            )
            .await;
    })
    .await;
}
