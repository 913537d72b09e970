//! Website crawler runs with Apify's lifecycle: READY → RUNNING → SUCCEEDED,
//! FAILED, TIMED-OUT or ABORTED. A run is executed by the node that started it;
//! its items go to the record as they come (so a dataset can be read while the run
//! writes it) and its lease is renewed with every progress report. A run whose node
//! stopped renewing (a crash or restart) is failed cleanly by any node's worker
//! rather than left hanging: a crawl has no resumable state.

mod apify_webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use agentbase_core::concurrency::{Entered, PerKey};
use agentbase_core::crawl_run::{CrawlRun, RunFilter, RunStatus};
use agentbase_core::run_webhook::{self, RunWebhook};
use agentbase_core::{Clock, Error, Millis, Plan, Rejection, Resource, Result, ids};
use agentbase_crawler::browser::Renderer;
use agentbase_crawler::{
    CancellationToken, CrawlError, CrawlInput, CrawlSpec, CrawlSummary, CrawlerSettings, Event,
    RenderingMemory, StopReason,
};
use agentbase_store::{RunDelivery, Store};
use serde_json::Value;

use crate::Principal;
use crate::settings::Settings;
use crate::striped::Striped;

/// How long a run is its node's without a progress report.
const RUN_LEASE_MS: i64 = 30_000;
/// Items written to the record per batch.
const ITEM_BATCH: usize = 20;
/// Most dataset items one read returns.
pub const MAX_ITEMS_PER_READ: i64 = 10_000;
/// Longest `waitForFinish`, as on Apify.
pub const MAX_WAIT_SECS: u64 = 60;
/// The actor ids a run may name: Apify's Website Content Crawler, by name or id.
pub const ACTOR_IDS: [&str; 4] = [
    "website-content-crawler",
    "apify~website-content-crawler",
    "apify/website-content-crawler",
    "aYG0l9s7dbB7j3gbS",
];

/// The actor's name and id as Apify gives them (`GET /v2/actors/{id}`).
pub const ACTOR_NAME: &str = "website-content-crawler";
pub const ACTOR_ID: &str = "aYG0l9s7dbB7j3gbS";

/// Log lines kept per run: a crawl of many pages logs one line each, so a very
/// large crawl's log ends with a note rather than growing without bound.
const LOG_LINES_MAX: i64 = 20_000;
/// Run logs one workspace may follow at once (each is a request held open and a
/// store read every 250 ms until its run ends).
pub const FOLLOWERS_PER_WORKSPACE: usize = 10;

/// Apify's log line: an ISO timestamp, then the message.
/// Characters of a log line's message kept (a crawled site's URLs and errors
/// can be any length); the rest is cut.
const LOG_MESSAGE_MAX: usize = 2_000;

fn log_line(at: agentbase_core::Millis, level: &str, message: &str) -> String {
    let message = match message.char_indices().nth(LOG_MESSAGE_MAX) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    };
    format!(
        "{} {level} {message}",
        agentbase_core::time_fmt::iso8601(at)
    )
}

/// What a run's start asks for besides its input (Apify's query parameters).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The run's timeout (the server's default and bound apply).
    pub timeout_secs: Option<u64>,
    /// Most dataset items the run writes (`maxItems`).
    pub max_items: Option<u64>,
    /// Apify's ad-hoc webhooks (`webhooks`), told of the run's start and end.
    pub webhooks: Vec<RunWebhook>,
}

/// Crawl runs: started, executed and aborted by this node, read by any.
pub struct CrawlRuns {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    /// This process's id in run leases.
    node: String,
    /// Runs executing in this process, by id: abort cancels the crawl.
    tokens: Mutex<HashMap<String, CancellationToken>>,
    /// Renders pages for the browser crawler types (unset: HTTP only).
    renderer: OnceLock<Arc<dyn Renderer>>,
    /// What adaptive runs with `reuseStoredDetectionResults` learnt per site.
    memory: Arc<RenderingMemory>,
    /// Followed logs open per workspace: each polls the store until its run ends.
    followers: Arc<PerKey<String>>,
    /// Requests waiting on a run per workspace (`waitForFinish`, synchronous
    /// runs): each polls the store until its run ends or its wait does.
    waiters: Arc<PerKey<String>>,
    /// Dataset reads per workspace, each held until its response is sent: one
    /// holds up to [`agentbase_store::MAX_BYTES_PER_READ`] of items in memory.
    readers: Arc<PerKey<String>>,
    /// Held from a key-value storage check to the write it allows.
    storage_locks: Striped,
    /// A run as Apify's API shows it, for run webhooks' `resource` (the server
    /// sets it; unset, the resource is the run's id and status).
    resource: OnceLock<fn(&CrawlRun) -> Value>,
}

impl CrawlRuns {
    pub(crate) fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: Arc<Settings>,
        node: String,
    ) -> Self {
        CrawlRuns {
            store,
            clock,
            settings,
            node,
            tokens: Mutex::default(),
            renderer: OnceLock::new(),
            memory: Arc::default(),
            followers: PerKey::new(FOLLOWERS_PER_WORKSPACE),
            readers: PerKey::new(READERS_PER_WORKSPACE),
            waiters: PerKey::new(WAITERS_PER_WORKSPACE),
            storage_locks: Striped::new(),
            resource: OnceLock::new(),
        }
    }

    /// Run webhooks show a run as `resource` shows it (Apify's Run object); the
    /// first one set stays.
    pub fn set_run_resource(&self, resource: fn(&CrawlRun) -> Value) {
        let _ = self.resource.set(resource);
    }

    /// Crawl runs render pages with `renderer` (`crawlerType` `playwright:*`);
    /// the first renderer set stays.
    pub(crate) fn set_renderer(&self, renderer: Arc<dyn Renderer>) {
        let _ = self.renderer.set(renderer);
    }

    fn renderer(&self) -> Option<Arc<dyn Renderer>> {
        self.renderer.get().cloned()
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }
}

impl CrawlRuns {
    /// `POST /v2/acts/{actorId}/runs`: checks the WCC input into the crawl's spec and
    /// starts the crawl.
    pub async fn start_run(
        self: &Arc<Self>,
        p: &Principal,
        actor_id: &str,
        input: Value,
        options: RunOptions,
    ) -> Result<CrawlRun> {
        known_actor(actor_id)?;
        let (input, parsed, mut spec) = self.checked_input(input)?;
        let now = self.now();
        let limits = &self.settings.crawler;
        let timeout_secs = options
            .timeout_secs
            .unwrap_or(limits.timeout_secs)
            .clamp(1, limits.run_timeout_secs);
        // As on Apify, the input is the INPUT record of the run's default store.
        let input_text = input.to_string();
        let quota = self.admit(p, &options.webhooks, input_text.len()).await?;
        let notes = self.bound_run(p, &input, &parsed, &mut spec);
        if let Some(most) = options.max_items {
            // Apify's `maxItems`: the run returns at most this many items.
            spec.limits.max_results = spec.limits.max_results.min(most);
        }
        let run = CrawlRun {
            id: ids::alphanumeric(17),
            workspace_id: p.workspace_id.clone(),
            actor_id: actor_id.to_owned(),
            status: RunStatus::Ready,
            status_message: (!notes.is_empty()).then(|| notes.join("; ")),
            input,
            dataset_id: ids::alphanumeric(17),
            timeout_secs: timeout_secs as i64,
            pages_done: 0,
            pages_failed: 0,
            items: 0,
            started_at: now,
            finished_at: None,
            kv_store_id: ids::alphanumeric(17),
            webhooks: options.webhooks,
            dataset_deleted_at: None,
            kv_store_deleted_at: None,
        };
        let admitted = self
            .store
            .insert_run(
                &run,
                &self.node,
                now + RUN_LEASE_MS,
                i64::from(limits.runs_per_workspace),
            )
            .await?;
        if !admitted {
            return Err(Error::Rejected(Rejection::TooManyRuns));
        }
        let created = self.deliveries(&run, run_webhook::CREATED, now).await?;
        self.store.insert_run_deliveries(&created, now).await?;
        self.store
            .put_record(
                &run.kv_store_id,
                "INPUT",
                "application/json; charset=utf-8",
                &input_text,
            )
            .await?;
        let mut first = vec![log_line(
            now,
            "INFO",
            &format!("Starting the crawl (run {})", run.id),
        )];
        if let Some(m) = &run.status_message {
            first.push(log_line(now, "WARN", m));
        }
        self.store.append_log(&run.id, 0, &first).await?;
        let token = CancellationToken::new();
        self.tokens
            .lock()
            .expect("crawl tokens")
            .insert(run.id.clone(), token.clone());
        let runs = self.clone();
        let id = run.id.clone();
        let dataset = run.dataset_id.clone();
        tokio::spawn(async move {
            runs.execute_run(id.clone(), (dataset, quota), spec, timeout_secs, token)
                .await;
            runs.tokens.lock().expect("crawl tokens").remove(&id);
        });
        Ok(run)
    }

    /// A run's input (none is `{}`), read as the Website Content Crawler's and
    /// turned into the crawl's spec, which this server must be able to crawl.
    fn checked_input(&self, input: Value) -> Result<(Value, CrawlInput, CrawlSpec)> {
        let input = if input.is_null() {
            Value::Object(Default::default())
        } else {
            input
        };
        let parsed = CrawlInput::from_json(input.clone())
            .map_err(|e| Error::invalid("input", e.to_string()))?;
        let spec =
            CrawlSpec::try_from(&parsed).map_err(|e| Error::invalid("input", e.to_string()))?;
        if spec.crawler_type.always_renders() && self.renderer.get().is_none() {
            return Err(Error::invalid(
                "input",
                "crawlerType: this server has no browser (browser.enabled); use playwright:adaptive or cheerio",
            ));
        }
        Ok((input, parsed, spec))
    }

    /// Whether a run may start: its webhooks' targets pass the SSRF guard's check
    /// before resolving, its input (kept as the `INPUT` record) fits the
    /// workspace's key-value storage, and its datasets are below the plan's limit.
    /// What its writer may add to them.
    async fn admit(
        &self,
        p: &Principal,
        hooks: &[RunWebhook],
        input_bytes: usize,
    ) -> Result<DatasetQuota> {
        let private = self.settings.crawler.allow_private_networks;
        for (i, hook) in hooks.iter().enumerate() {
            agentbase_crawler::check_target(&hook.request_url, private)
                .map_err(|m| Error::invalid(format!("webhooks[{i}].requestUrl"), m))?;
        }
        let records = (self.store)
            .workspace_kv_bytes(&p.workspace_id, ("", ""))
            .await?;
        let kv_limit = self.settings.crawler.kv_storage_limits.get_i64(p.plan);
        if records.saturating_add(input_bytes as i64) > kv_limit {
            return Err(Error::Rejected(Rejection::StorageLimit));
        }
        let limit = (self.settings.crawler.dataset_storage_limits).get_i64(p.plan);
        if self.store.dataset_bytes(&p.workspace_id).await? >= limit {
            return Err(Error::Rejected(Rejection::DatasetStorageLimit));
        }
        Ok(DatasetQuota {
            workspace_id: p.workspace_id.clone(),
            limit,
        })
    }

    /// Bounds a run's spec by the plan and the server (a lower figure in the input
    /// is kept); what the run's status message should say about it and about the
    /// inputs (`parsed`) not applied.
    fn bound_run(
        &self,
        p: &Principal,
        input: &Value,
        parsed: &CrawlInput,
        spec: &mut CrawlSpec,
    ) -> Vec<String> {
        let limits = &self.settings.crawler;
        // The plan bounds every run, whatever its input asks (WCC's default is
        // 9,999,999 pages); a lower figure in the input is kept.
        let max_pages = limits.run_max_pages.get(p.plan);
        let mut notes = Vec::new();
        if spec.limits.max_pages > max_pages {
            if input.get("maxCrawlPages").is_some() {
                notes.push(format!(
                    "maxCrawlPages lowered to {max_pages} (the plan's limit)"
                ));
            }
            spec.limits.max_pages = max_pages;
        }
        spec.limits.max_results = spec.limits.max_results.min(max_pages);
        spec.limits.cap_concurrency(limits.max_concurrency);
        let ignored: Vec<String> = parsed
            .ignored_inputs()
            .into_iter()
            .map(str::to_owned)
            .chain(parsed.unknown_inputs())
            .collect();
        if !ignored.is_empty() {
            notes.push(format!("Ignored inputs: {}", ignored.join(", ")));
        }
        if spec.crawler_type.uses_browser() && self.renderer.get().is_none() {
            notes.push("No browser on this server: pages are read over HTTP".to_owned());
        }
        notes
    }

    async fn execute_run(
        &self,
        id: String,
        (dataset, quota): (String, DatasetQuota),
        spec: CrawlSpec,
        timeout_secs: u64,
        token: CancellationToken,
    ) {
        let _ = self
            .store
            .set_run_status(
                &id,
                &[RunStatus::Ready],
                RunStatus::Running,
                None,
                self.now(),
            )
            .await;
        let settings = CrawlerSettings {
            allow_private_networks: self.settings.crawler.allow_private_networks,
            overall_timeout: Some(Duration::from_secs(timeout_secs)),
            renderer: self.renderer(),
            rendering_memory: Some(self.memory.clone()),
            max_frontier: self.settings.crawler.max_frontier,
            ..CrawlerSettings::default()
        };
        // The crawler's sink is synchronous: events go through a channel to a task
        // that writes them.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let quota = (quota, token.clone());
        let mut writer = RunWriter::new(
            self.store.clone(),
            self.clock.clone(),
            (id.clone(), dataset),
            quota,
        )
        .await;
        let writer = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                writer.on_event(event, rx.is_empty()).await;
            }
            writer.finish().await
        });
        let outcome = agentbase_crawler::crawl(&spec, &settings, token, move |e| {
            let _ = tx.send(e);
        })
        .await;
        let write_error = writer.await.ok().flatten();
        let (status, message) = run_outcome(outcome, write_error, timeout_secs);
        self.end_run(&id, status, &message).await;
    }

    /// Records the end of a run: its last log line, then its status.
    async fn end_run(&self, id: &str, status: RunStatus, message: &str) {
        // The last line goes in before the status changes, so a client that sees
        // the run ended reads the whole log.
        let logged = self
            .store
            .log_lines(id, 0)
            .await
            .map_or(0, |l| l.len() as i64);
        let level = if status == RunStatus::Succeeded {
            "INFO"
        } else {
            "ERROR"
        };
        let line = log_line(
            self.now(),
            level,
            &format!("{}: {message}", status.as_str()),
        );
        let _ = self.store.append_log(id, logged, &[line]).await;
        let ended = match self.store.run_by_id(id).await {
            Ok(Some(run)) => self.end(&run, NOT_ENDED, status, message).await,
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        if let Err(e) = ended {
            tracing::error!(run = %id, error = %e, "cannot record the end of a crawl run");
        }
    }

    /// Ends `run` in `to` with `message` when it is in one of `from`, and writes
    /// what its webhooks are told of the end in the same transaction; whether it
    /// was in `from`.
    async fn end(
        &self,
        run: &CrawlRun,
        from: &[RunStatus],
        to: RunStatus,
        message: &str,
    ) -> Result<bool> {
        let now = self.now();
        let deliveries = match run_webhook::end_event(to) {
            Some(event) => {
                let mut ended = run.clone();
                ended.status = to;
                ended.status_message = Some(message.to_owned());
                ended.finished_at = Some(now);
                self.deliveries(&ended, event, now).await?
            }
            None => Vec::new(),
        };
        self.store
            .set_run_status_with(&run.id, (from, to), Some(message), now, &deliveries)
            .await
    }

    /// What `run`'s webhooks that want `event`, which happened at `now`, are sent:
    /// its ad-hoc ones (a delivery id `{run}.{place}.{event}`) and the workspace's
    /// persistent ones told of it (`{run}.{webhook}.{event}`).
    async fn deliveries(
        &self,
        run: &CrawlRun,
        event: &str,
        now: Millis,
    ) -> Result<Vec<RunDelivery>> {
        let persistent = (self.store)
            .apify_webhooks_of_run(&run.workspace_id, &run.id)
            .await?;
        let ad_hoc = (run.webhooks.iter().enumerate()).map(|(i, hook)| (i.to_string(), None, hook));
        let named =
            (persistent.iter()).map(|w| (w.id.clone(), Some(w.id.clone()), &w.definition.hook));
        let wanted: Vec<_> = (ad_hoc.chain(named))
            .filter(|(_, _, hook)| hook.wants(event))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let resource = match self.resource.get() {
            Some(show) => show(run),
            None => serde_json::json!({"id": run.id, "status": run.status.as_str()}),
        };
        let vars = run_webhook::vars(&run.workspace_id, event, (ACTOR_ID, &run.id), resource, now);
        let max_attempts = i64::from(self.settings.webhooks.max_attempts.max(1));
        // Past the workspace's bound on deliveries waiting, the rest are recorded
        // unsent: targets that never answer cannot grow the outbox without end.
        let bound = self.settings.webhooks.max_pending_per_workspace;
        let pending = (self.store)
            .pending_run_deliveries(&run.workspace_id)
            .await?;
        let mut room = bound.saturating_sub(u64::try_from(pending).unwrap_or(0));
        let deliveries = wanted.into_iter().map(|(place, webhook_id, hook)| {
            let id = format!("{}.{place}.{event}", run.id);
            let mut d = delivery(hook, &vars, max_attempts, (id, run, event, webhook_id));
            if d.refused.is_none() {
                if room == 0 {
                    d.refused = Some(format!(
                        "the workspace has {bound} webhook deliveries waiting to be sent"
                    ));
                    d.body.clear();
                    d.headers.clear();
                } else {
                    room -= 1;
                }
            }
            d
        });
        Ok(deliveries.collect())
    }

    /// `GET /v2/actor-runs/{runId}[?waitForFinish=S]`: waits up to `wait` (at most
    /// 60 s) for the run to end, then answers with its state either way.
    pub async fn run(&self, p: &Principal, id: &str, wait: Duration) -> Result<CrawlRun> {
        self.wait_for(p, id, wait.min(Duration::from_secs(MAX_WAIT_SECS)))
            .await
    }

    /// The run once it has ended or `wait` is over, whichever comes first. A
    /// workspace waits on at most [`WAITERS_PER_WORKSPACE`] runs at once: past
    /// that, `TooManyWaits` (a run that has ended is answered still).
    async fn wait_for(&self, p: &Principal, id: &str, wait: Duration) -> Result<CrawlRun> {
        if wait.is_zero() {
            return self.poll_until(p, id, wait).await;
        }
        match self.waiters.try_enter(p.workspace_id.clone()) {
            Some(_place) => self.poll_until(p, id, wait).await,
            None => {
                let run = self.poll_until(p, id, Duration::ZERO).await?;
                if run.status.is_terminal() {
                    return Ok(run);
                }
                Err(Error::Rejected(Rejection::TooManyWaits))
            }
        }
    }

    /// Reads the run every 200 ms until it has ended or `wait` is over.
    async fn poll_until(&self, p: &Principal, id: &str, wait: Duration) -> Result<CrawlRun> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let run = self
                .store
                .run(&p.workspace_id, id)
                .await?
                .ok_or(Error::NotFound(Resource::Run))?;
            if run.status.is_terminal() || tokio::time::Instant::now() >= deadline {
                return Ok(run);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /v2/actor-runs/{runId}/abort`. A run this node executes is cancelled
    /// (ABORTING until the crawl stops, then ABORTED); one whose node is gone is
    /// marked ABORTED at once. An ended run is returned as it is.
    pub async fn abort_run(&self, p: &Principal, id: &str) -> Result<CrawlRun> {
        let run = self
            .store
            .run(&p.workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Run))?;
        if run.status.is_terminal() {
            return Ok(run);
        }
        let token = self
            .tokens
            .lock()
            .expect("crawl tokens")
            .get(&run.id)
            .cloned();
        let now = self.now();
        match token {
            Some(t) => {
                self.store
                    .set_run_status(
                        &run.id,
                        &[RunStatus::Ready, RunStatus::Running],
                        RunStatus::Aborting,
                        Some("Aborting"),
                        now,
                    )
                    .await?;
                t.cancel();
            }
            None => {
                self.end(&run, NOT_ENDED, RunStatus::Aborted, "Aborted")
                    .await?;
            }
        }
        self.store
            .run(&p.workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Run))
    }

    /// Items of a run's (or a dataset id's) dataset, with a place among the
    /// workspace's reads (at most [`READERS_PER_WORKSPACE`]; past them,
    /// `TooManyReads`) for the caller to hold until the items are sent.
    pub async fn dataset_items(
        &self,
        p: &Principal,
        id: &str,
        offset: i64,
        limit: Option<i64>,
        desc: bool,
    ) -> Result<DatasetRead> {
        let run = self.dataset_run(p, id).await?;
        let place = (self.readers.try_enter(p.workspace_id.clone()))
            .ok_or(Error::Rejected(Rejection::TooManyReads))?;
        // One response holds at most this many items, whatever `limit` says (the
        // pagination headers give the total, so clients page through the rest).
        let limit = Some(limit.unwrap_or(MAX_ITEMS_PER_READ).min(MAX_ITEMS_PER_READ));
        let (items, total) = (self.store)
            .dataset_items(&run.dataset_id, offset, limit, desc)
            .await?;
        Ok(DatasetRead {
            items,
            total,
            place,
        })
    }

    /// A run's log lines from line `from` on (`GET /v2/actor-runs/{id}/log`), and
    /// whether the run has ended (then no more lines will come).
    pub async fn run_log(&self, p: &Principal, id: &str, from: i64) -> Result<(Vec<String>, bool)> {
        let run = self
            .store
            .run(&p.workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Run))?;
        let lines = self.store.log_lines(&run.id, from).await?;
        Ok((lines, run.status.is_terminal()))
    }

    /// The run whose dataset is `id` (by dataset id or run id), while the dataset
    /// has not been deleted.
    pub async fn dataset_run(&self, p: &Principal, id: &str) -> Result<CrawlRun> {
        self.store
            .run(&p.workspace_id, id)
            .await?
            .filter(|r| r.dataset_deleted_at.is_none())
            .ok_or(Error::NotFound(Resource::Run))
    }

    /// The run owning key-value store `store_id` (by store id or run id), while
    /// the store has not been deleted.
    pub async fn kv_run(&self, p: &Principal, store_id: &str) -> Result<CrawlRun> {
        self.store
            .run_by_kv_store(&p.workspace_id, store_id)
            .await?
            .filter(|r| r.kv_store_deleted_at.is_none())
            .ok_or(Error::NotFound(Resource::Run))
    }

    /// A record of a run's key-value store: (content type, value); `None` when
    /// the store has no such key.
    pub async fn kv_record(
        &self,
        p: &Principal,
        store_id: &str,
        key: &str,
    ) -> Result<Option<(String, String)>> {
        let run = self.kv_run(p, store_id).await?;
        self.store.record(&run.kv_store_id, key).await
    }

    /// The store's run and its keys with sizes.
    pub async fn kv_keys(
        &self,
        p: &Principal,
        store_id: &str,
    ) -> Result<(CrawlRun, Vec<(String, i64)>)> {
        let run = self.kv_run(p, store_id).await?;
        let keys = self.store.record_keys(&run.kv_store_id).await?;
        Ok((run, keys))
    }

    /// Writes a record into a run's key-value store (`PUT …/records/{key}`).
    pub async fn put_kv_record(
        &self,
        p: &Principal,
        store_id: &str,
        key: &str,
        content_type: &str,
        value: &str,
    ) -> Result<()> {
        if key.is_empty() || key.len() > 256 || key.contains('/') {
            return Err(Error::invalid(
                "key",
                "must be 1–256 characters without '/'",
            ));
        }
        if value.len() > 9 * 1024 * 1024 {
            return Err(Error::invalid("body", "a record holds at most 9 MB"));
        }
        let run = self.kv_run(p, store_id).await?;
        let limit = self.settings.crawler.kv_storage_limits.get_i64(p.plan);
        let _held = self.storage_locks.lock(&p.workspace_id).await;
        let held = (self.store)
            .workspace_kv_bytes(&p.workspace_id, (&run.kv_store_id, key))
            .await?;
        if held.saturating_add(value.len() as i64) > limit {
            return Err(Error::Rejected(Rejection::StorageLimit));
        }
        self.store
            .put_record(&run.kv_store_id, key, content_type, value)
            .await
    }

    /// `DELETE /v2/actor-runs/{runId}`: an ended run goes with its dataset, log and
    /// key-value store (how a workspace at its dataset limit makes room). A run
    /// still going is a conflict: abort it first.
    pub async fn delete_run(&self, p: &Principal, id: &str) -> Result<()> {
        let run = self.run(p, id, Duration::ZERO).await?;
        if !run.status.is_terminal() {
            return Err(Error::Conflict(
                "the run has not ended; abort it first".into(),
            ));
        }
        if self.store.delete_run(&run).await? {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Run))
        }
    }

    /// `DELETE /v2/datasets/{id}`: the items of an ended run's dataset go, and the
    /// dataset reads as gone; the run stays. A run still going is a conflict.
    pub async fn delete_dataset(&self, p: &Principal, id: &str) -> Result<()> {
        let run = self.dataset_run(p, id).await?;
        if !run.status.is_terminal() {
            return Err(Error::Conflict(
                "the run writing this dataset has not ended; abort it first".into(),
            ));
        }
        if self.store.delete_dataset(&run, self.now()).await? {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Run))
        }
    }

    /// `DELETE /v2/key-value-stores/{id}`: the store's records go (the `INPUT`
    /// record too), and the store reads as gone; the run stays.
    pub async fn delete_kv_store(&self, p: &Principal, store_id: &str) -> Result<()> {
        let run = self.kv_run(p, store_id).await?;
        if self.store.delete_kv_store(&run, self.now()).await? {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Run))
        }
    }

    /// Deletes ended runs past their workspace's plan's `crawler.run_retention_days`
    /// with their storages, as `DELETE` does; how many went.
    pub(crate) async fn expire_runs(&self) -> Result<u64> {
        const BATCH: i64 = 100;
        let mut gone = 0;
        for plan in Plan::ALL {
            let days = self.settings.crawler.run_retention_days.get_i64(plan);
            if days == 0 {
                continue;
            }
            let before = self.now().saturating_sub(days.saturating_mul(86_400_000));
            loop {
                let batch = self.store.expired_runs(plan, before, BATCH).await?;
                let mut deleted = 0;
                for run in &batch {
                    deleted += u64::from(self.store.delete_run(run).await?);
                }
                gone += deleted;
                // A short batch was the last; one where nothing went (another node
                // took them) is not read again.
                if (batch.len() as i64) < BATCH || deleted == 0 {
                    break;
                }
            }
        }
        Ok(gone)
    }

    /// Deletes a record of a run's key-value store (`DELETE …/records/{key}`);
    /// false when there was none.
    pub async fn delete_kv_record(&self, p: &Principal, store_id: &str, key: &str) -> Result<bool> {
        let run = self.kv_run(p, store_id).await?;
        self.store.delete_record(&run.kv_store_id, key).await
    }

    /// Fails runs orphaned by a node that stopped (see the module docs); their
    /// webhooks are told as of any run that fails.
    pub(crate) async fn fail_orphaned_runs(&self) -> Result<()> {
        let message = "The server running this crawl stopped; start the run again";
        let mut failed = 0;
        for run in self.store.orphaned_runs(self.now()).await? {
            if self
                .end(&run, NOT_ENDED, RunStatus::Failed, message)
                .await?
            {
                failed += 1;
            }
        }
        if failed > 0 {
            tracing::warn!(
                runs = failed,
                "crawl runs orphaned by a stopped node failed"
            );
        }
        Ok(())
    }
}

/// The status and message a run ends with: a dataset that could not be written
/// fails the run whatever the crawl did.
fn run_outcome(
    outcome: std::result::Result<CrawlSummary, CrawlError>,
    write_error: Option<String>,
    timeout_secs: u64,
) -> (RunStatus, String) {
    match (outcome, write_error) {
        (_, Some(e)) => (
            RunStatus::Failed,
            format!("the dataset could not be written: {e}"),
        ),
        (Err(e), None) => (RunStatus::Failed, e.to_string()),
        (Ok(summary), None) => match summary.stop_reason {
            StopReason::Aborted => (RunStatus::Aborted, "Aborted".to_owned()),
            StopReason::TimedOut => (
                RunStatus::TimedOut,
                format!("Timed out after {timeout_secs} s"),
            ),
            _ => (
                RunStatus::Succeeded,
                format!(
                    "Finished: {} pages, {} items, {} failed",
                    summary.progress.done, summary.progress.items, summary.progress.failed
                ),
            ),
        },
    }
}

/// What a run's items may add to its workspace's datasets.
struct DatasetQuota {
    workspace_id: String,
    /// Bytes all the workspace's datasets may hold.
    limit: i64,
}

/// Writes a run's crawl events: items to its dataset and lines to its log, in
/// batches, and its progress (renewing the run's lease) after each event. A batch
/// that would take the workspace's datasets past their limit is not written: the
/// crawl is stopped and the run fails, saying why.
struct RunWriter {
    store: Store,
    clock: Arc<dyn Clock>,
    run_id: String,
    dataset: String,
    quota: DatasetQuota,
    /// Cancels the crawl when the datasets are full.
    stop: CancellationToken,
    full: bool,
    /// Items encoded as JSON, not written yet.
    batch: Vec<String>,
    log: Vec<String>,
    /// Items written, log lines written.
    written: i64,
    logged: i64,
    /// Pages done and failed, from the last progress event.
    done: i64,
    failed: i64,
    /// The first thing that could not be written or encoded.
    error: Option<String>,
}

impl RunWriter {
    async fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        (run_id, dataset): (String, String),
        (quota, stop): (DatasetQuota, CancellationToken),
    ) -> RunWriter {
        let logged = store
            .log_lines(&run_id, 0)
            .await
            .map_or(0, |l| l.len() as i64);
        RunWriter {
            store,
            clock,
            run_id,
            dataset,
            quota,
            stop,
            full: false,
            batch: Vec::new(),
            log: Vec::new(),
            written: 0,
            logged,
            done: 0,
            failed: 0,
            error: None,
        }
    }

    /// One event; `idle` when no other is waiting, which flushes what is batched.
    async fn on_event(&mut self, event: Event, idle: bool) {
        let at = self.clock.now_ms();
        match event {
            Event::Item(item) => {
                self.log.push(log_line(
                    at,
                    "INFO",
                    &format!("Crawled {} (depth {})", item.url, item.crawl.depth),
                ));
                match serde_json::to_value(&*item).map(item_text) {
                    Ok(v) => self.batch.push(v),
                    Err(e) => self.error = Some(format!("an item could not be encoded: {e}")),
                }
            }
            Event::Progress(p) => {
                self.done = p.done as i64;
                self.failed = p.failed as i64;
            }
            Event::Failed { url, error } => {
                self.log
                    .push(log_line(at, "WARN", &format!("Failed {url}: {error}")));
            }
            Event::Skipped { url, reason } => {
                self.log
                    .push(log_line(at, "DEBUG", &format!("Skipped {url}: {reason}")));
            }
        }
        if !self.log.is_empty() && (idle || self.log.len() >= ITEM_BATCH) {
            self.write_log().await;
        }
        if self.batch.len() >= ITEM_BATCH || (idle && !self.batch.is_empty()) {
            self.write_items().await;
        }
        self.progress().await;
    }

    /// Writes what is left; the first error, if any.
    async fn finish(mut self) -> Option<String> {
        if !self.log.is_empty() {
            self.write_log().await;
        }
        if !self.batch.is_empty() {
            self.write_items().await;
        }
        self.progress().await;
        self.error
    }

    /// The log keeps its first `LOG_LINES_MAX` lines (more are dropped).
    async fn write_log(&mut self) {
        if self.logged < LOG_LINES_MAX {
            let _ = self
                .store
                .append_log(&self.run_id, self.logged, &self.log)
                .await;
            self.logged += self.log.len() as i64;
        }
        self.log.clear();
    }

    async fn write_items(&mut self) {
        if self.full {
            // What comes after the datasets filled is dropped.
            self.batch.clear();
            return;
        }
        let bytes: i64 = self.batch.iter().map(|i| i.len() as i64).sum();
        let used = self.store.dataset_bytes(&self.quota.workspace_id).await;
        if let Ok(used) = used
            && used + bytes > self.quota.limit
        {
            self.error = Some(format!(
                "the workspace's run datasets would pass the plan's limit of {} bytes, so the \
                 crawl stopped; delete runs it no longer needs (DELETE /v2/actor-runs/{{runId}})",
                self.quota.limit
            ));
            self.full = true;
            self.stop.cancel();
            self.batch.clear();
            return;
        }
        if let Err(e) = self
            .store
            .append_items(&self.dataset, self.written, &self.batch)
            .await
        {
            self.error = Some(e.to_string());
        }
        self.written += self.batch.len() as i64;
        self.batch.clear();
    }

    async fn progress(&self) {
        let lease = self.clock.now_ms() + RUN_LEASE_MS;
        let counts = (self.done, self.failed, self.written);
        let _ = self.store.run_progress(&self.run_id, counts, lease).await;
    }
}

/// Use cases of the Apify-compatible API that join two of the steps above.
impl CrawlRuns {
    /// [`CrawlRuns::start_run`], then, when `wait` is some seconds, the run once it
    /// ends or the wait is over (see [`CrawlRuns::run`]).
    pub async fn start_and_wait(
        self: &Arc<Self>,
        p: &Principal,
        actor_id: &str,
        input: Value,
        options: RunOptions,
        wait: Option<u64>,
    ) -> Result<CrawlRun> {
        let run = self.start_run(p, actor_id, input, options).await?;
        match wait {
            Some(w) if w > 0 => self.run(p, &run.id, Duration::from_secs(w)).await,
            _ => Ok(run),
        }
    }

    /// A record of the run's default key-value store (see [`CrawlRuns::kv_record`]).
    pub async fn run_kv_record(
        &self,
        p: &Principal,
        run_id: &str,
        key: &str,
    ) -> Result<Option<(String, String)>> {
        let run = self.run(p, run_id, Duration::ZERO).await?;
        self.kv_record(p, &run.kv_store_id, key).await
    }
}

/// Delivery `id` of `run`'s `event` to `hook` (a persistent webhook's when
/// `webhook_id` is given), with `vars`: its body and headers, or, for filled
/// templates past their bounds ([`RunWebhook::request`]), why it is not sent.
fn delivery(
    hook: &RunWebhook,
    vars: &Value,
    max_attempts: i64,
    (id, run, event, webhook_id): (String, &CrawlRun, &str, Option<String>),
) -> RunDelivery {
    let (body, headers, refused) = match hook.request(vars) {
        Ok((body, headers)) => (body, headers, None),
        Err(why) => (String::new(), Vec::new(), Some(why)),
    };
    RunDelivery {
        id,
        workspace_id: run.workspace_id.clone(),
        run_id: run.id.clone(),
        event_type: event.to_owned(),
        url: hook.request_url.clone(),
        headers,
        body,
        max_attempts: if hook.do_not_retry { 1 } else { max_attempts },
        attempts: 0,
        refused,
        webhook_id,
    }
}

/// Levels of nesting a dataset item keeps: a page's JSON-LD nested near JSON's
/// parse limit (128) would, inside the item, pass it, and the item could not be
/// read back. What is deeper becomes `null`.
const MAX_ITEM_DEPTH: usize = 100;

/// An item as the JSON text stored, nested at most [`MAX_ITEM_DEPTH`] levels.
fn item_text(mut item: Value) -> String {
    fn clamp(v: &mut Value, depth: usize) {
        match v {
            Value::Array(_) | Value::Object(_) if depth >= MAX_ITEM_DEPTH => *v = Value::Null,
            Value::Array(a) => a.iter_mut().for_each(|x| clamp(x, depth + 1)),
            Value::Object(m) => m.values_mut().for_each(|x| clamp(x, depth + 1)),
            _ => {}
        }
    }
    clamp(&mut item, 0);
    item.to_string()
}

/// The statuses of a run that has not ended, which an end moves it from.
const NOT_ENDED: &[RunStatus] = &[RunStatus::Ready, RunStatus::Running, RunStatus::Aborting];

/// Whether `actor_id` names the crawler (the one actor this server has).
pub fn known_actor(actor_id: &str) -> Result<()> {
    if ACTOR_IDS.contains(&actor_id) {
        Ok(())
    } else {
        Err(Error::NotFound(Resource::Actor))
    }
}

/// Requests one workspace may have waiting on runs at once.
pub const WAITERS_PER_WORKSPACE: usize = 32;

/// Dataset reads one workspace may have in flight at once (each holds up to
/// [`agentbase_store::MAX_BYTES_PER_READ`] of items until its client has read them).
pub const READERS_PER_WORKSPACE: usize = 8;

/// A page of a dataset, its size, and the read's place among the workspace's
/// reads, to be held until the page is sent.
pub struct DatasetRead {
    pub items: Vec<Value>,
    pub total: i64,
    pub place: Entered<String>,
}

/// Most runs one page of a run list holds (Apify's limit too).
pub const MAX_RUNS_PER_PAGE: i64 = 1_000;

/// The run lists of the Apify-compatible API, and the run a path names.
impl CrawlRuns {
    /// A page of the workspace's runs (`GET /v2/acts/{actorId}/runs`,
    /// `GET /v2/actor-runs`), without their inputs, and how many there are; only
    /// those in `statuses` when some are given. `limit` is at most
    /// [`MAX_RUNS_PER_PAGE`].
    pub async fn runs(
        &self,
        p: &Principal,
        filter: &RunFilter,
        offset: i64,
        limit: i64,
        desc: bool,
    ) -> Result<(Vec<CrawlRun>, i64)> {
        let limit = limit.clamp(0, MAX_RUNS_PER_PAGE);
        self.store
            .runs(&p.workspace_id, filter, (offset, limit), desc)
            .await
    }

    /// The id of the run a path names: `last` is the workspace's newest run (the
    /// newest `filter` keeps; none is `NotFound`), anything else is a run id as
    /// it is.
    pub async fn run_id_of(
        &self,
        p: &Principal,
        reference: &str,
        filter: &RunFilter,
    ) -> Result<String> {
        if reference != "last" {
            return Ok(reference.to_owned());
        }
        let (mut newest, _) = self.runs(p, filter, 0, 1, true).await?;
        newest
            .pop()
            .map(|r| r.id)
            .ok_or(Error::NotFound(Resource::Run))
    }

    /// Apify's synchronous runs: starts a run as [`CrawlRuns::start_run`] does and
    /// waits for it up to `crawler.sync_wait_secs`; the run, ended or not (the
    /// caller answers 408 for one that has not ended, and it goes on). The wait
    /// counts among the workspace's waits: past them, `TooManyWaits` before any
    /// run starts.
    pub async fn run_sync(
        self: &Arc<Self>,
        p: &Principal,
        actor_id: &str,
        input: Value,
        options: RunOptions,
    ) -> Result<CrawlRun> {
        // The place to wait is taken first: a run is not started for a request
        // that could not wait for it.
        let _place = (self.waiters.try_enter(p.workspace_id.clone()))
            .ok_or(Error::Rejected(Rejection::TooManyWaits))?;
        let run = self.start_run(p, actor_id, input, options).await?;
        let wait = Duration::from_secs(self.settings.crawler.sync_wait_secs);
        self.poll_until(p, &run.id, wait).await
    }
}

/// A run's log as `GET /v2/actor-runs/{id}/log` sends it: the lines so far and,
/// when followed while the run goes on, its next lines as they are written.
pub struct RunLog {
    pub lines: Vec<String>,
    /// Each item is the lines one poll found; it ends when the run does (or can
    /// no longer be read).
    pub more: Option<futures_util::stream::BoxStream<'static, Vec<String>>>,
    /// A log read whole holds a place among the workspace's reads (as a dataset
    /// read does), to be held until the lines are sent; a followed one holds a
    /// follower's place in `more` instead.
    pub place: Option<Entered<String>>,
}

/// The followed log of the Apify-compatible API.
impl CrawlRuns {
    /// The run's log; with `follow`, and unless the run has ended, the lines
    /// written after it too (polled every 250 ms). A workspace follows at most
    /// [`FOLLOWERS_PER_WORKSPACE`] logs at once (past that, `TooManyFollowers`),
    /// and reads at most [`READERS_PER_WORKSPACE`] logs and datasets whole (past
    /// that, `TooManyReads`): a log holds up to its run's storage in lines.
    pub async fn log(self: &Arc<Self>, p: &Principal, id: &str, follow: bool) -> Result<RunLog> {
        let read = (self.readers.try_enter(p.workspace_id.clone()))
            .ok_or(Error::Rejected(Rejection::TooManyReads))?;
        let (lines, ended) = self.run_log(p, id, 0).await?;
        if follow && !ended {
            let place = (self.followers.try_enter(p.workspace_id.clone()))
                .ok_or(Error::Rejected(Rejection::TooManyFollowers))?;
            let from = lines.len() as i64;
            let more = self
                .clone()
                .follow_log(p.clone(), id.to_owned(), from, place);
            return Ok(RunLog {
                lines,
                more: Some(more),
                place: None,
            });
        }
        Ok(RunLog {
            lines,
            more: None,
            place: Some(read),
        })
    }

    fn follow_log(
        self: Arc<Self>,
        p: Principal,
        id: String,
        from: i64,
        place: Entered<String>,
    ) -> futures_util::stream::BoxStream<'static, Vec<String>> {
        use futures_util::StreamExt;
        // The place goes with the stream, however it ends.
        let place = Arc::new(place);
        futures_util::stream::unfold((from, false), move |(from, done)| {
            let (runs, p, id, _place) = (self.clone(), p.clone(), id.clone(), place.clone());
            async move {
                if done {
                    return None;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let (lines, ended) = runs.run_log(&p, &id, from).await.ok()?;
                    if !lines.is_empty() || ended {
                        let next = from + lines.len() as i64;
                        return Some((lines, (next, ended)));
                    }
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_item_nested_past_the_parse_limit_is_stored_readable() {
        // A page's JSON-LD 127 levels deep (it parsed), inside an item.
        let deep = (0..127).fold(json!("leaf"), |v, _| json!([v]));
        let item = json!({"url": "u", "metadata": {"jsonLd": [deep]}});
        assert!(serde_json::from_str::<Value>(&item.to_string()).is_err());
        let stored: Value = serde_json::from_str(&item_text(item)).unwrap();
        assert_eq!(stored["url"], "u");
        let shallow = json!({"a": [[{"b": 1}]]});
        assert_eq!(item_text(shallow.clone()), shallow.to_string());
    }

    #[test]
    fn log_lines_keep_a_bounded_message() {
        let line = log_line(0, "WARN", &format!("Failed {}", "é".repeat(10_000)));
        assert!(line.ends_with('…'), "{line}");
        assert_eq!(
            line.chars().filter(|c| *c == 'é').count(),
            LOG_MESSAGE_MAX - 7
        );
        assert_eq!(
            log_line(0, "INFO", "short"),
            "1970-01-01T00:00:00.000Z INFO short"
        );
    }
}
