//! The knowledge base: sources, training jobs, index snapshots and retrieval.
//!
//! - **Sources train on write.** Creating, changing or deleting a source queues a
//!   training job in the same transaction (deletes take effect at once).
//! - **Jobs** live in the record and are claimed under a lease by any node's worker,
//!   so they survive restarts: a job whose node died is taken again when its lease
//!   runs out. Pipeline: documents (a link source is fetched first) → Markdown-aware
//!   chunks with their heading path → embeddings, in batches, with progress → a new
//!   generation of chunks in the record → one transaction switches the source to it
//!   and bumps the agent's knowledge version. A failure drops only the new
//!   generation: what was live stays live.
//! - **Snapshots** are each node's cache of an agent's live chunks (tantivy BM25 +
//!   vectors, `agentbase-search`), on disk under `<index_dir>/<agent>/<version>` and
//!   in memory. A node that finds its snapshot older than the agent's version keeps
//!   answering from it while it loads or rebuilds the new one in the background; a
//!   node with none builds it before answering.
//! - **Retrieval** is hybrid (BM25 + dense, fused as `knowledge.fusion` says); a chunk
//!   less relevant (dense cosine) than `knowledge.min_relevance` is not used, and
//!   nothing is when the best chunk is that little relevant, or covers less of the
//!   message's best question than `knowledge.min_coverage` (unless it is as
//!   relevant as `agentbase_search::CONFIDENT_RELEVANCE`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use agentbase_core::knowledge::{
    Document, JobStatus, LinkOptions, NewSource, Source, SourceContent, SourceKind, SourceStatus,
    StoredChunk, TrainingJob, validate_content,
};
use agentbase_core::model::Embedder;
use agentbase_core::{
    Agent, AgentPatch, Cursor, Error, Millis, NewAgent, Plan, Rejection, Resource, Result, ids,
};
use agentbase_search::{CONFIDENT_RELEVANCE, ChunkOptions, Doc, Fusion, Index, Mode, Query};
use agentbase_store::{JobKinds, Page, SourceFilter, TrainingSwitch};
use tokio::sync::{Notify, Semaphore};

use agentbase_core::Clock;
use agentbase_crawler::scratch::{self, ScratchDir};
use agentbase_store::Store;

use crate::Principal;
use crate::agent_setup::{AgentCreated, PendingStep};
use crate::agents::Agents;
use crate::extractor::{Extractor, Mode as ExtractorMode};
use crate::files::{FileText, Upload};
use crate::settings::Settings;
use crate::striped::Striped;

/// How long a claimed job is this node's without a progress report.
const JOB_LEASE_MS: i64 = 30_000;
/// Texts per embedding call (progress is reported between calls).
const EMBED_BATCH: usize = 32;
/// A job that has been claimed this often (its nodes kept dying) fails.
const MAX_ATTEMPTS: i64 = 3;
/// How often an idle worker looks for work queued by other nodes and for
/// auto-retrains that are due.
const POLL: Duration = Duration::from_secs(2);

pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Vec<Document>, String>> + Send + 'a>>;

/// Fetches a website source's pages (the crawler, wired in by the binary).
pub trait SiteFetcher: Send + Sync + 'static {
    /// `progress(done, to_do)` is called as pages come in (`to_do`: found and not
    /// yet done, those being fetched included).
    fn fetch<'a>(
        &'a self,
        url: &'a str,
        options: &'a LinkOptions,
        progress: &'a (dyn Fn(usize, usize) + Send + Sync),
    ) -> FetchFuture<'a>;
}

/// One agent's snapshot at a knowledge version.
pub struct Snapshot {
    pub version: i64,
    /// `None` when the agent has no live chunks at this version.
    pub index: Option<Index>,
}

/// Knowledge-base state of this process.
pub struct Knowledge {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    agents: Arc<Agents>,
    // The embedder, fetcher and extractor are set while the app is built, after
    // the services that share this one (chat) hold it: hence set once, by `&self`.
    embedder: OnceLock<Arc<dyn Embedder>>,
    fetcher: OnceLock<Arc<dyn SiteFetcher>>,
    /// Reads uploaded files under the extraction limits (in this process unless
    /// another extractor is set).
    extractor: OnceLock<Extractor>,
    index_dir: PathBuf,
    snapshots: Mutex<HashMap<String, Arc<Snapshot>>>,
    building: Mutex<HashSet<String>>,
    /// Wakes the claim loops: the websites' and the others' (see `start_worker`).
    wake: [Notify; 2],
    /// Held by a job while it chunks and embeds: `knowledge.training_concurrency`
    /// at once on this node, whatever kind of source.
    embedding: Arc<Semaphore>,
    node: String,
    /// Held from a storage check to the write it allows.
    storage_locks: Striped,
}

impl Knowledge {
    /// This process's id in job and run leases.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub(crate) fn new(
        index_dir: PathBuf,
        store: Store,
        clock: Arc<dyn Clock>,
        settings: Arc<Settings>,
        agents: Arc<Agents>,
    ) -> Knowledge {
        let embedding = Semaphore::new(settings.knowledge.training_concurrency.max(1));
        Knowledge {
            extractor: OnceLock::new(),
            store,
            clock,
            settings,
            agents,
            embedder: OnceLock::new(),
            fetcher: OnceLock::new(),
            index_dir,
            snapshots: Mutex::new(HashMap::new()),
            building: Mutex::new(HashSet::new()),
            wake: [Notify::new(), Notify::new()],
            embedding: Arc::new(embedding),
            node: ids::alphanumeric(12),
            storage_locks: Striped::new(),
        }
    }
}

/// When retrieved knowledge counts as relevant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// Chunks with a lower dense cosine are dropped.
    pub relevance: f32,
    /// Below this lexical coverage of the question by the best chunk, nothing is,
    /// unless that chunk is as relevant as `agentbase_search::CONFIDENT_RELEVANCE`
    /// (a paraphrase).
    pub coverage: f32,
}

impl Floor {
    /// Everything counts (retrieval testing).
    pub const NONE: Floor = Floor {
        relevance: 0.0,
        coverage: 0.0,
    };

    /// Whether a question gets any knowledge, asked of its best chunk (as bench/rag
    /// chose the floor): relevant enough, and covering enough of the question
    /// unless as relevant as a paraphrase. A later chunk that would pass does not
    /// rescue a best chunk that does not: that one is a word match the meaning does
    /// not bear out.
    fn admits(self, relevance: f32, coverage: impl FnOnce() -> f32) -> bool {
        relevance >= self.relevance
            && (self.coverage <= 0.0
                || relevance >= CONFIDENT_RELEVANCE
                || coverage() >= self.coverage)
    }
}

/// A retrieved chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieved {
    pub chunk_id: String,
    pub source_id: String,
    pub title: String,
    pub url: Option<String>,
    pub heading: String,
    pub text: String,
    /// The score the list is ranked by (fused; comparable within one list).
    pub score: f32,
    /// Dense cosine, comparable across queries: the confidence.
    pub relevance: f32,
    pub bm25: Option<f32>,
}

/// `hits` grouped by page (same source and URL), as indices into `hits`: pages
/// in order of their first hit, each page's hits in list order.
pub fn group_by_page(hits: &[Retrieved]) -> Vec<Vec<usize>> {
    let mut pages: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for (i, h) in hits.iter().enumerate() {
        let key = (h.source_id.as_str(), h.url.as_deref());
        match index.get(&key) {
            Some(&p) => pages[p].push(i),
            None => {
                index.insert(key, pages.len());
                pages.push(vec![i]);
            }
        }
    }
    pages
}

/// What `PUT /sources/{id}` may change.
#[derive(Debug, Clone, Default)]
pub struct SourceUpdate {
    pub name: Option<String>,
    pub content: Option<String>,
    pub questions: Option<Vec<String>>,
    pub answer: Option<String>,
    pub exclude_paths: Option<Vec<String>>,
    pub include_only_paths: Option<Vec<String>>,
    pub slow_scraping: Option<bool>,
    /// A replaced file, read by the update.
    pub file: Option<Upload>,
}

/// Per-kind counts and sizes for `GET /sources/summary`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcesSummary {
    pub counts: HashMap<&'static str, (i64, i64)>,
    pub should_retrain: bool,
}

fn new_job(agent_id: &str, source_id: &str, now: Millis) -> TrainingJob {
    TrainingJob {
        id: format!("job_{}", ids::alphanumeric(20)),
        agent_id: agent_id.to_owned(),
        source_id: source_id.to_owned(),
        status: JobStatus::Queued,
        done: 0,
        total: 0,
        stage: "queued".into(),
        error: None,
        attempts: 0,
        created_at: now,
        updated_at: now,
    }
}

fn identity_hash(content: &SourceContent, name: &str) -> String {
    agentbase_core::keys::sha256_hex(&content.identity(name))
}

impl Knowledge {
    /// Whether this process can train knowledge (it has an embedder).
    pub fn can_train(&self) -> bool {
        self.embedder.get().is_some()
    }

    pub(crate) fn set_embedder(&self, embedder: Arc<dyn Embedder>) {
        assert!(
            self.embedder.set(embedder).is_ok(),
            "the embedder is set once, while the app is built"
        );
    }

    pub(crate) fn set_fetcher(&self, fetcher: Arc<dyn SiteFetcher>) {
        assert!(
            self.fetcher.set(fetcher).is_ok(),
            "the fetcher is set once, while the app is built"
        );
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    fn embedder(&self) -> Result<&Arc<dyn Embedder>> {
        self.embedder.get().ok_or_else(|| {
            Error::Unavailable("no embedding model is loaded in this process".into())
        })
    }

    /// Refuses `adding` bytes of sources past the agent's storage limit or the
    /// workspace's; `except` (a source being replaced) is not counted, nor, with
    /// `whole_agent`, the agent's own sources (all being replaced). The guard is
    /// the workspace's stripe: hold it until the bytes are written, so parallel
    /// requests cannot all pass the same check.
    async fn check_storage(
        &self,
        (workspace_id, plan): (&str, Plan),
        agent_id: &str,
        except: Option<&str>,
        whole_agent: bool,
        adding: i64,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        let held = self.storage_locks.lock(workspace_id).await;
        let knowledge = &self.settings.knowledge;
        let agent_used = match whole_agent {
            true => 0,
            false => self.store.source_bytes(agent_id, except).await?,
        };
        let others = self
            .store
            .workspace_source_bytes(workspace_id, except, Some(agent_id))
            .await?;
        if agent_used.saturating_add(adding) > knowledge.storage_limits.get_i64(plan)
            || others.saturating_add(agent_used).saturating_add(adding)
                > knowledge.workspace_storage_limits.get_i64(plan)
        {
            return Err(Error::Rejected(Rejection::SourceSizeLimit));
        }
        Ok(held)
    }

    /// `POST /agents/{id}/sources` (text, Q&A, link) and file uploads.
    pub async fn create_source(
        &self,
        p: &Principal,
        agent_id: &str,
        new: NewSource,
    ) -> Result<Source> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        validate_source(&new)?;
        let name = new.name.trim().to_owned();
        let identity = identity_hash(&new.content, &name);
        if self
            .store
            .source_identity_taken(&agent.id, &identity, None)
            .await?
        {
            return Err(Error::Rejected(Rejection::SourceDuplicate));
        }
        let size = new.content.size();
        let ws = (p.workspace_id.as_str(), p.plan);
        let _held = self.check_storage(ws, &agent.id, None, false, size).await?;
        let now = self.now();
        let is_link = new.content.kind() == SourceKind::Link;
        let source = Source {
            id: ids::uuid_v4(),
            agent_id: agent.id.clone(),
            name,
            content: new.content,
            size,
            status: SourceStatus::Untrained,
            generation: 0,
            error: None,
            crawl_status: is_link.then(|| "fetching".to_owned()),
            pages: 0,
            created_at: now,
            updated_at: now,
            trained_at: None,
        };
        let job = new_job(&agent.id, &source.id, now);
        self.store.insert_source(&source, &identity, &job).await?;
        self.agents.forget(&agent.id);
        self.wake();
        Ok(source)
    }

    pub async fn source(&self, p: &Principal, agent_id: &str, id: &str) -> Result<Source> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        self.store
            .source(&agent.id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Source))
    }

    pub async fn sources(
        &self,
        p: &Principal,
        agent_id: &str,
        filter: &SourceFilter,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Source>> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        self.store.sources(&agent.id, filter, cursor, limit).await
    }

    pub async fn sources_summary(&self, p: &Principal, agent_id: &str) -> Result<SourcesSummary> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        let mut summary = SourcesSummary::default();
        for kind in SourceKind::ALL {
            summary.counts.insert(kind.as_str(), (0, 0));
        }
        for s in self.store.all_sources(&agent.id).await? {
            let e = summary.counts.entry(s.kind().as_str()).or_default();
            e.0 += 1;
            e.1 += s.size;
            if s.status != SourceStatus::Trained {
                summary.should_retrain = true;
            }
        }
        Ok(summary)
    }

    /// `PUT /agents/{id}/sources/{sourceId}`: a change retrains the source (status
    /// `updated` while the trained version stays live).
    pub async fn update_source(
        &self,
        p: &Principal,
        agent_id: &str,
        id: &str,
        mut update: SourceUpdate,
    ) -> Result<Source> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        let mut source = self
            .store
            .source(&agent.id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Source))?;
        let file = self.replaced_file(&source, update.file.take()).await?;
        let content = updated_content(&source, &update, file)?;
        let kind = source.kind();
        let name = update
            .name
            .as_deref()
            .map(str::trim)
            .unwrap_or(&source.name)
            .to_owned();
        let identity = identity_hash(&content, &name);
        if self
            .store
            .source_identity_taken(&agent.id, &identity, Some(&source.id))
            .await?
        {
            return Err(Error::Rejected(Rejection::SourceDuplicate));
        }
        let size = if kind == SourceKind::Link {
            source.size
        } else {
            content.size()
        };
        let ws = (p.workspace_id.as_str(), p.plan);
        let _held = self
            .check_storage(ws, &agent.id, Some(&source.id), false, size)
            .await?;
        let now = self.now();
        source.name = name;
        source.content = content;
        source.size = size;
        source.updated_at = now;
        source.error = None;
        if source.generation > 0 {
            source.status = SourceStatus::Updated;
        } else {
            source.status = SourceStatus::Untrained;
        }
        let job = new_job(&agent.id, &source.id, now);
        self.store.update_source(&source, &identity, &job).await?;
        self.agents.forget(&agent.id);
        self.wake();
        Ok(source)
    }

    /// `DELETE /agents/{id}/sources/{sourceId}`: the knowledge goes at once.
    pub async fn delete_source(
        self: &Arc<Self>,
        p: &Principal,
        agent_id: &str,
        id: &str,
    ) -> Result<Source> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        let source = self
            .store
            .source(&agent.id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Source))?;
        if !self.store.delete_source(&agent.id, id, self.now()).await? {
            return Err(Error::NotFound(Resource::Source));
        }
        self.agents.forget(&agent.id);
        self.refresh_snapshot(&agent.id);
        Ok(source)
    }

    /// Adds a file source: the upload is read (off the runtime, under the extraction
    /// limits) and trains like any source. `name` defaults to the file's name.
    pub async fn add_file(
        &self,
        p: &Principal,
        agent_id: &str,
        name: Option<String>,
        upload: Upload,
    ) -> Result<Source> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        let (filename, read) = self.read(upload).await?;
        let new = NewSource {
            name: name.unwrap_or_else(|| filename.clone()),
            content: SourceContent::File {
                filename,
                media_type: read.media_type,
                content: read.markdown,
                pages: read.pages,
            },
        };
        self.create_source(p, &agent.id, new).await
    }

    /// The text of an untrusted file, read under the extractor's limits; a file that
    /// cannot be read is a problem with the request's `file`.
    pub async fn read(&self, upload: Upload) -> Result<(String, FileText)> {
        let Upload {
            filename,
            content_type,
            bytes,
        } = upload;
        let read = self
            .extractor()
            .extract(&filename, content_type.as_deref(), bytes)
            .await?;
        Ok((filename, read))
    }

    /// A replacement file, read; only a file source takes one.
    async fn replaced_file(
        &self,
        source: &Source,
        upload: Option<Upload>,
    ) -> Result<Option<ReadFile>> {
        let Some(upload) = upload else {
            return Ok(None);
        };
        if source.kind() != SourceKind::File {
            let kind = source.kind().as_str();
            return Err(Error::invalid(
                "file",
                format!("not a field of {kind} sources"),
            ));
        }
        self.read(upload).await.map(Some)
    }

    pub fn extractor(&self) -> &Extractor {
        self.extractor
            .get_or_init(|| Extractor::new(ExtractorMode::Thread, &self.settings.extraction))
    }

    pub(crate) fn set_extractor(&self, extractor: Extractor) {
        assert!(
            self.extractor.set(extractor).is_ok(),
            "the extractor is set once, while the app is built, before it is used"
        );
    }

    /// Deletes an agent with its knowledge: the record's rows, and this node's
    /// snapshot of its index (in memory and on disk). Other nodes drop theirs when
    /// they next look the agent up and find no knowledge.
    pub async fn delete_agent(&self, workspace_id: &str, id: &str) -> Result<()> {
        self.agents.delete(workspace_id, id).await?;
        self.drop_snapshots(id);
        Ok(())
    }

    /// Makes an agent with its first sources (v1 `create-chatbot`): nothing half-made,
    /// the agent goes again when its sources are refused.
    pub async fn create_agent_with(
        self: &Arc<Self>,
        p: &Principal,
        new: NewAgent,
        sources: Vec<NewSource>,
    ) -> Result<Agent> {
        let agent = self.agents.create(&p.workspace_id, new).await?;
        if !sources.is_empty()
            && let Err(e) = self.replace_sources(p, &agent.id, sources).await
        {
            let _ = self.delete_agent(&p.workspace_id, &agent.id).await;
            return Err(e);
        }
        Ok(agent)
    }

    /// Replaces an agent's sources and, when given, renames it (v1
    /// `update-chatbot-data`).
    pub async fn replace_agent_data(
        self: &Arc<Self>,
        p: &Principal,
        agent_id: &str,
        name: Option<String>,
        sources: Vec<NewSource>,
    ) -> Result<()> {
        self.replace_sources(p, agent_id, sources).await?;
        if let Some(name) = name {
            let rename = AgentPatch {
                name: Some(name),
                ..Default::default()
            };
            self.agents
                .update(&p.workspace_id, agent_id, rename)
                .await?;
        }
        Ok(())
    }

    /// Replaces all of an agent's sources (v1 `update-chatbot-data`): the old ones
    /// go, the new ones train.
    pub async fn replace_sources(
        self: &Arc<Self>,
        p: &Principal,
        agent_id: &str,
        sources: Vec<NewSource>,
    ) -> Result<Vec<Source>> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        for s in &sources {
            validate_source(s)?;
        }
        let total: i64 = sources.iter().map(|s| s.content.size()).sum();
        let ws = (p.workspace_id.as_str(), p.plan);
        // Each source below is written through `create_source`, which takes the
        // workspace's stripe itself: the guard goes now.
        drop(self.check_storage(ws, &agent.id, None, true, total).await?);
        for old in self.store.all_sources(&agent.id).await? {
            self.store
                .delete_source(&agent.id, &old.id, self.now())
                .await?;
        }
        self.agents.forget(&agent.id);
        let mut made = Vec::new();
        for s in sources {
            match self.create_source(p, &agent.id, s).await {
                Ok(s) => made.push(s),
                // Two identical entries in one request: one is enough.
                Err(Error::Rejected(Rejection::SourceDuplicate)) => {}
                Err(e) => return Err(e),
            }
        }
        self.refresh_snapshot(&agent.id);
        Ok(made)
    }

    /// The agent's training jobs, newest first.
    pub async fn training_jobs(&self, p: &Principal, agent_id: &str) -> Result<Vec<TrainingJob>> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        self.store.jobs(&agent.id, 100).await
    }

    /// `PUT /agents/{id}/auto-retrain`.
    pub async fn set_auto_retrain(
        &self,
        p: &Principal,
        agent_id: &str,
        enabled: bool,
    ) -> Result<()> {
        let agent = self
            .agents
            .get_for_update(&p.workspace_id, agent_id)
            .await?;
        if !p.plan.allows_api() {
            return Err(Error::Rejected(Rejection::PlanFeatureNotAvailable));
        }
        if enabled && agent.last_trained_at.is_none() {
            return Err(Error::Rejected(Rejection::AgentNotTrained));
        }
        let now = self.now();
        let next = enabled.then(|| now + self.retrain_interval_ms());
        self.store
            .set_auto_retrain(&agent.id, enabled, next, now)
            .await?;
        self.agents.forget(&agent.id);
        Ok(())
    }

    fn retrain_interval_ms(&self) -> Millis {
        i64::try_from(self.settings.knowledge.auto_retrain_interval_secs).unwrap_or(i64::MAX / 2000)
            * 1000
    }

    // ---- the worker -------------------------------------------------------------

    /// Wakes both claim loops (a job was queued or one finished).
    fn wake(&self) {
        self.wake.iter().for_each(Notify::notify_one);
    }

    /// Starts this node's training worker (with the auto-retrain schedule). Jobs
    /// are taken from the record, so any number of nodes may run one. Two loops
    /// claim them: website sources' jobs, `knowledge.fetch_concurrency` at once
    /// (they spend most of their time waiting on the site), and the others',
    /// `knowledge.training_concurrency` at once; both embed under the same
    /// `training_concurrency` slots. A slow site then never holds up another
    /// workspace's text or file. At most `jobs_per_workspace` jobs (on all nodes)
    /// run for one workspace.
    pub(crate) fn start_worker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let k = &self.settings.knowledge;
        // Builds cut short when this node last stopped (killed, crashed) go now; the
        // agents loaded later are swept again as their snapshots load.
        let index_dir = self.index_dir.clone();
        drop(agentbase_crawler::background::spawn(move || {
            for agent in std::fs::read_dir(&index_dir)
                .into_iter()
                .flatten()
                .flatten()
            {
                if agent.file_type().is_ok_and(|t| t.is_dir()) {
                    sweep_builds(&agent.path());
                }
            }
        }));
        let sites = self
            .clone()
            .claim_loop(JobKinds::Websites, k.fetch_concurrency);
        let others = self
            .clone()
            .claim_loop(JobKinds::Others, k.training_concurrency);
        tokio::spawn(async move {
            let _ = tokio::join!(sites, others);
        })
    }

    /// Claims and runs jobs of `kinds`, `slots` at once; the others' loop also
    /// queues the auto-retrains that are due.
    fn claim_loop(self: Arc<Self>, kinds: JobKinds, slots: usize) -> tokio::task::JoinHandle<()> {
        let slots = Arc::new(Semaphore::new(slots.max(1)));
        let per_workspace = self.settings.knowledge.jobs_per_workspace.max(1) as i64;
        let wake = usize::from(kinds == JobKinds::Others);
        tokio::spawn(async move {
            let app = self;
            loop {
                if kinds == JobKinds::Others
                    && let Err(e) = app.queue_due_retrains().await
                {
                    tracing::warn!(error = %e, "auto-retrain check failed");
                }
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let claim = (app.store)
                    .claim_job(&app.node, app.now(), JOB_LEASE_MS, (per_workspace, kinds))
                    .await;
                match claim {
                    Ok(Some(job)) => {
                        let app = app.clone();
                        tokio::spawn(async move {
                            app.run_job(job).await;
                            drop(slot);
                            // A finished job may let another workspace's run.
                            app.wake();
                        });
                    }
                    Ok(None) => {
                        drop(slot);
                        tokio::select! {
                            _ = app.wake[wake].notified() => {}
                            _ = tokio::time::sleep(POLL) => {}
                        }
                    }
                    Err(e) => {
                        drop(slot);
                        tracing::warn!(error = %e, "cannot claim training jobs");
                        tokio::time::sleep(POLL).await;
                    }
                }
            }
        })
    }

    /// Queues a refetch of every website source (every source when there are none)
    /// of agents whose auto-retrain is due.
    async fn queue_due_retrains(&self) -> Result<()> {
        let now = self.now();
        for (agent_id, due) in self.store.retrain_due(now).await? {
            let next = now + self.retrain_interval_ms();
            if !self.store.claim_retrain(&agent_id, due, next).await? {
                continue;
            }
            self.queue_retrain(&agent_id, true).await?;
            tracing::info!(agent = %agent_id, "auto-retrain queued");
        }
        Ok(())
    }

    /// Retrains the agent's sources now (the dashboard's retrain button): websites
    /// are fetched again, everything else re-embedded. Returns how many sources
    /// were queued.
    pub async fn retrain(&self, p: &Principal, agent_id: &str) -> Result<usize> {
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        self.queue_retrain(&agent.id, false).await
    }

    /// Queues a training job per source: with `links_only`, only the website
    /// sources when there are any (what a scheduled retrain refreshes).
    async fn queue_retrain(&self, agent_id: &str, links_only: bool) -> Result<usize> {
        let now = self.now();
        let sources = self.store.all_sources(agent_id).await?;
        let links: Vec<&Source> = sources
            .iter()
            .filter(|s| s.kind() == SourceKind::Link)
            .collect();
        let chosen: Vec<&Source> = if links.is_empty() || !links_only {
            sources.iter().collect()
        } else {
            links
        };
        for s in &chosen {
            self.store
                .enqueue_job(&new_job(agent_id, &s.id, now))
                .await?;
        }
        self.agents.forget(agent_id);
        self.wake();
        Ok(chosen.len())
    }

    async fn run_job(self: &Arc<Self>, job: TrainingJob) {
        // The new generation's number; `train` raises it above the live one, and a
        // failure drops exactly the chunks written under it.
        let mut generation = self.now().max(1);
        if job.attempts > MAX_ATTEMPTS {
            let _ = self
                .store
                .fail_job(
                    &job,
                    Some(generation),
                    "training was interrupted too often",
                    self.now(),
                )
                .await;
            self.agents.forget(&job.agent_id);
            return;
        }
        match self.train(&job, &mut generation).await {
            Ok(true) => {
                self.agents.forget(&job.agent_id);
                self.refresh_snapshot(&job.agent_id);
            }
            Ok(false) => {
                // The lease was lost (another node has the job) or the source went.
                self.agents.forget(&job.agent_id);
            }
            Err(e) => {
                let message = match &e {
                    Error::Invalid(m) => m.values().cloned().collect::<Vec<_>>().join("; "),
                    other => other.to_string(),
                };
                tracing::warn!(job = %job.id, source = %job.source_id, error = %message, "training failed");
                if let Err(e) = self
                    .store
                    .fail_job(&job, Some(generation), &message, self.now())
                    .await
                {
                    tracing::error!(error = %e, "cannot record a failed training");
                }
                self.agents.forget(&job.agent_id);
            }
        }
    }

    async fn progress(
        &self,
        job: &TrainingJob,
        stage: &str,
        done: usize,
        total: usize,
    ) -> Result<bool> {
        let now = self.now();
        self.store
            .job_progress(
                &job.id,
                &self.node,
                (stage, done as i64, total as i64),
                now + JOB_LEASE_MS,
                now,
            )
            .await
    }

    /// Trains one source into `generation`. `Ok(false)`: nothing to do any more.
    async fn train(self: &Arc<Self>, job: &TrainingJob, generation: &mut i64) -> Result<bool> {
        let Some(source) = self.store.source(&job.agent_id, &job.source_id).await? else {
            return Ok(false);
        };
        *generation = (*generation).max(source.generation + 1);
        let generation = *generation;
        let documents = match &source.content {
            SourceContent::Link { url, options } => {
                if !self.progress(job, "fetching", 0, 0).await? {
                    return Ok(false);
                }
                self.fetch_and_keep(job, &source, url, options).await?
            }
            other => other.documents(&source.name),
        };
        // Chunking and embedding take the CPU: one of the node's training slots.
        let _slot = (self.embedding.clone().acquire_owned())
            .await
            .map_err(|_| Error::Unavailable("the training slots are closed".into()))?;
        let pieces = self.chunk_documents(&source.id, documents).await?;
        if pieces.is_empty() {
            return Err(Error::invalid(
                "source",
                "the source has no text to learn from",
            ));
        }
        let embedder = self.embedder()?.clone();
        let total = pieces.len();
        let mut done = 0;
        for batch in pieces.chunks(EMBED_BATCH) {
            if !self.progress(job, "embedding", done, total).await? {
                return Ok(false);
            }
            let texts: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
            let vectors = embedder
                .embed(&texts)
                .await
                .map_err(|e| Error::Unavailable(format!("embedding failed: {e}")))?;
            if vectors.len() != batch.len() {
                return Err(Error::Internal(
                    "the embedder returned too few vectors".into(),
                ));
            }
            let chunks: Vec<StoredChunk> = batch
                .iter()
                .zip(vectors)
                .map(|((c, _), v)| StoredChunk {
                    embedding: v,
                    ..c.clone()
                })
                .collect();
            self.store
                .insert_chunks(&job.agent_id, generation, done as i64, &chunks)
                .await?;
            done += batch.len();
        }
        if !self.progress(job, "switching", done, total).await? {
            return Ok(false);
        }
        self.store
            .switch_generation(&TrainingSwitch {
                job_id: job.id.clone(),
                agent_id: job.agent_id.clone(),
                source_id: source.id.clone(),
                generation,
                now: self.now(),
            })
            .await
    }

    /// A link source's pages, fetched and stored, when they fit the plan's storage.
    async fn fetch_and_keep(
        self: &Arc<Self>,
        job: &TrainingJob,
        source: &Source,
        url: &str,
        options: &LinkOptions,
    ) -> Result<Vec<Document>> {
        let pages = self.fetch_site(job, source, url, options).await?;
        let size: i64 = pages.iter().map(|p| p.markdown.len() as i64).sum();
        let (workspace, plan) = self.workspace_of_agent(&job.agent_id).await?;
        let fits = self
            .check_storage(
                (&workspace, plan),
                &job.agent_id,
                Some(&source.id),
                false,
                size,
            )
            .await;
        if let Err(Error::Rejected(Rejection::SourceSizeLimit)) = fits {
            self.store.set_crawl_status(&source.id, "failed").await?;
            return Err(Error::invalid(
                "source",
                "the fetched pages exceed the plan's storage limit",
            ));
        }
        let _held = fits?;
        self.store.set_pages(&source.id, &pages, self.now()).await?;
        Ok(pages)
    }

    /// The documents' chunks (off the runtime), each with the text to embed.
    async fn chunk_documents(
        &self,
        source_id: &str,
        documents: Vec<Document>,
    ) -> Result<Vec<(StoredChunk, String)>> {
        let k = &self.settings.knowledge;
        let options = ChunkOptions {
            max_chars: k.chunk_chars,
            overlap_chars: k.chunk_overlap,
        };
        let source_id = source_id.to_owned();
        let pieces = agentbase_crawler::background::spawn(move || {
            let mut out = Vec::new();
            for d in &documents {
                for c in agentbase_search::chunk_markdown(&d.markdown, &options) {
                    if c.text.trim().is_empty() {
                        continue;
                    }
                    let embed = agentbase_search::embedding_text(&d.title, &c);
                    out.push((
                        StoredChunk {
                            id: format!("chk_{}", ids::alphanumeric(20)),
                            source_id: source_id.clone(),
                            title: d.title.clone(),
                            url: d.url.clone(),
                            heading: c.heading_path.join(" > "),
                            text: c.text,
                            embedding: Vec::new(),
                        },
                        embed,
                    ));
                }
            }
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("chunking panicked: {e}")))?;
        Ok(pieces)
    }

    /// The agent's workspace and its plan (Free for an agent gone meanwhile).
    async fn workspace_of_agent(&self, agent_id: &str) -> Result<(String, Plan)> {
        let Some(workspace) = self.store.agent_workspace(agent_id).await? else {
            return Ok((String::new(), Plan::Free));
        };
        let plan = self
            .store
            .workspace(&workspace)
            .await?
            .map_or(Plan::Free, |w| w.plan);
        Ok((workspace, plan))
    }

    async fn fetch_site(
        &self,
        job: &TrainingJob,
        source: &Source,
        url: &str,
        options: &LinkOptions,
    ) -> Result<Vec<Document>> {
        let Some(fetcher) = self.fetcher.get().cloned() else {
            // Pages imported with the source (an Apify dataset) train as they are.
            let pages = self.store.pages(&source.id).await?;
            if pages.is_empty() {
                self.store.set_crawl_status(&source.id, "failed").await?;
                return Err(Error::Unavailable(
                    "website fetching is not available in this process".into(),
                ));
            }
            return Ok(pages);
        };
        // The crawler reports (done, to do) synchronously; the latest figures go
        // through a watch channel to one writer beside the fetch, so progress rows
        // are written in order and never queue up behind a fast crawl.
        let (tx, mut rx) = tokio::sync::watch::channel(None::<(usize, usize)>);
        let report = move |done: usize, queued: usize| {
            tx.send_replace(Some((done, done + queued)));
        };
        let fetching = async move {
            let result = fetcher.fetch(url, options, &report).await;
            drop(report); // closes the channel: the writer stops
            result
        };
        let writing = async {
            while rx.changed().await.is_ok() {
                let latest = *rx.borrow_and_update();
                if let Some((done, total)) = latest {
                    let _ = self.progress(job, "fetching", done, total).await;
                }
            }
        };
        let (fetched, ()) = tokio::join!(fetching, writing);
        match fetched {
            Ok(pages) if !pages.is_empty() => Ok(pages),
            Ok(_) => {
                self.store.set_crawl_status(&source.id, "failed").await?;
                Err(Error::invalid(
                    "url",
                    "no pages could be fetched from this URL",
                ))
            }
            Err(e) => {
                self.store.set_crawl_status(&source.id, "failed").await?;
                Err(Error::invalid("url", e))
            }
        }
    }

    // ---- snapshots and retrieval ------------------------------------------------

    fn snapshot_dir(&self, agent_id: &str) -> PathBuf {
        self.index_dir.join(agent_id)
    }

    /// Loads or rebuilds the agent's snapshot in the background (once at a time).
    fn refresh_snapshot(self: &Arc<Self>, agent_id: &str) {
        if !self
            .building
            .lock()
            .expect("building lock")
            .insert(agent_id.to_owned())
        {
            return;
        }
        let app = self.clone();
        let agent_id = agent_id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = app.load_snapshot(&agent_id).await {
                tracing::warn!(agent = %agent_id, error = %e, "cannot build the index snapshot");
            }
            app.building
                .lock()
                .expect("building lock")
                .remove(&agent_id);
        });
    }

    /// Opens `<index_dir>/<agent>/<version>` when this node has it, else builds it
    /// from the live chunks in the record; then serves it.
    pub(crate) async fn load_snapshot(&self, agent_id: &str) -> Result<Option<Arc<Snapshot>>> {
        let Some(version) = self.store.kb_version(agent_id).await? else {
            self.forget_snapshot(agent_id);
            return Ok(None);
        };
        if let Some(s) = self.cached_snapshot(agent_id)
            && s.version >= version
        {
            return Ok(Some(s));
        }
        let base = self.snapshot_dir(agent_id);
        let dir = base.join(version.to_string());
        let opened = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || Index::open(&dir).ok())
                .await
                .ok()
                .flatten()
        };
        let index = match opened {
            Some(index) => Some(index),
            None => {
                let chunks = self.store.live_chunks(agent_id).await?;
                let docs: Vec<Doc> = chunks
                    .into_iter()
                    .map(|c| Doc {
                        chunk_id: c.id,
                        source_id: c.source_id,
                        title: c.title,
                        url: c.url,
                        heading: c.heading,
                        text: c.text,
                        embedding: c.embedding,
                    })
                    .collect();
                if docs.is_empty() {
                    None
                } else {
                    let dir = dir.clone();
                    Some(
                        agentbase_crawler::background::spawn(move || build_snapshot(&dir, docs))
                            .await
                            .map_err(|e| Error::Internal(format!("index build panicked: {e}")))??,
                    )
                }
            }
        };
        let snapshot = Arc::new(Snapshot { version, index });
        // An agent deleted while its snapshot was built keeps nothing on this node.
        if self.store.kb_version(agent_id).await?.is_none() {
            self.drop_snapshots(agent_id);
            return Ok(None);
        }
        {
            let mut all = self.snapshots.lock().expect("snapshot lock");
            let newer = all.get(agent_id).is_some_and(|s| s.version > version);
            if !newer {
                all.insert(agent_id.to_owned(), snapshot.clone());
            }
        }
        // Older snapshots of this node are no longer needed. Deleting waits on the
        // disk, so it happens in the background, never on a runtime worker.
        drop(agentbase_crawler::background::spawn(move || {
            let Ok(entries) = std::fs::read_dir(&base) else {
                return;
            };
            for e in entries.flatten() {
                // Only finished snapshots of older versions: a `.tmp-` directory
                // may be another build in progress (`sweep_builds` knows).
                let old = e
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i64>().ok())
                    .is_some_and(|v| v < version);
                if old {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
            sweep_builds(&base);
        }));
        Ok(Some(snapshot))
    }

    /// A deleted agent's snapshots on this node: the served one, and every version
    /// on disk (removed in the background, never on a runtime worker).
    fn drop_snapshots(&self, agent_id: &str) {
        self.forget_snapshot(agent_id);
        let dir = self.snapshot_dir(agent_id);
        drop(agentbase_crawler::background::spawn(move || {
            let _ = std::fs::remove_dir_all(dir);
        }));
    }

    fn forget_snapshot(&self, agent_id: &str) {
        (self.snapshots.lock().expect("snapshot lock")).remove(agent_id);
    }

    fn cached_snapshot(&self, agent_id: &str) -> Option<Arc<Snapshot>> {
        self.snapshots
            .lock()
            .expect("snapshot lock")
            .get(agent_id)
            .cloned()
    }

    /// The snapshot to answer from: the current one, or while a newer version is
    /// being loaded the previous one; built before answering only when this node
    /// has none.
    async fn snapshot_for(self: &Arc<Self>, agent: &Agent) -> Result<Option<Arc<Snapshot>>> {
        if agent.kb_version == 0 {
            return Ok(None);
        }
        match self.cached_snapshot(&agent.id) {
            Some(s) if s.version >= agent.kb_version => Ok(Some(s)),
            Some(old) => {
                self.refresh_snapshot(&agent.id);
                Ok(Some(old))
            }
            None => self.load_snapshot(&agent.id).await,
        }
    }

    /// Hybrid retrieval over the agent's knowledge; chunks below the floor's
    /// relevance are left out, and nothing is returned when the best chunk is below
    /// it or covers less of the question than the floor's coverage (see
    /// `agentbase_search::Index::coverage`). `None` when the agent has no trained
    /// knowledge.
    pub async fn retrieve(
        self: &Arc<Self>,
        agent: &Agent,
        query: &str,
        limit: usize,
        floor: Floor,
    ) -> Result<Option<Vec<Retrieved>>> {
        let Some(snapshot) = self.snapshot_for(agent).await? else {
            return Ok(None);
        };
        if snapshot.index.as_ref().is_none_or(Index::is_empty) {
            return Ok(None);
        }
        if query.trim().is_empty() {
            return Ok(Some(Vec::new()));
        }
        let embedding = self
            .embedder()?
            .embed_urgent(&[query.to_owned()])
            .await
            .map_err(|e| Error::Unavailable(format!("embedding failed: {e}")))?
            .pop()
            .ok_or_else(|| Error::Internal("the embedder returned no vector".into()))?;
        let fusion = if self.settings.knowledge.fusion == "normalized" {
            // The fusion that shipped before the three-corpus evaluation.
            Fusion::Normalized { weight_dense: 0.3 }
        } else {
            // The fusion chosen on the evaluation sets' dev halves (bench/rag).
            Fusion::default()
        };
        // Grouped by page (the search crate's default): a page's second chunk only
        // comes after every candidate page's best one.
        let q = Query {
            text: query.to_owned(),
            embedding: Some(embedding),
            limit,
            mode: Mode::Hybrid(fusion),
            ..Query::default()
        };
        let hits = tokio::task::spawn_blocking(move || {
            let Some(index) = snapshot.index.as_ref() else {
                return Ok(Vec::new());
            };
            let hits = index.search(&q)?;
            let admitted = hits.first().is_some_and(|h| {
                // Clamped as each chunk's `relevance` below is.
                floor.admits(h.relevance().unwrap_or(0.0).clamp(0.0, 1.0), || {
                    index.coverage(&q.text, h.doc)
                })
            });
            if !admitted {
                return Ok(Vec::new());
            }
            Ok::<_, agentbase_search::Error>(
                hits.into_iter()
                    .filter_map(|h| {
                        let d = index.doc(h.doc)?;
                        Some(Retrieved {
                            chunk_id: d.chunk_id.clone(),
                            source_id: d.source_id.clone(),
                            title: d.title.clone(),
                            url: d.url.clone(),
                            heading: d.heading.clone(),
                            text: d.text.clone(),
                            score: h.score,
                            relevance: h.relevance().unwrap_or(0.0).clamp(0.0, 1.0),
                            bm25: h.bm25,
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("search panicked: {e}")))?
        .map_err(|e| Error::Internal(format!("search failed: {e}")))?;
        Ok(Some(
            hits.into_iter()
                .filter(|h| h.relevance >= floor.relevance)
                .collect(),
        ))
    }

    /// `POST /agents/{id}/search`: retrieval testing for operators. Every hit is
    /// returned with its scores (no relevance cut), best first, from the newest
    /// trained version.
    pub async fn search_knowledge(
        self: &Arc<Self>,
        p: &Principal,
        agent_id: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Retrieved>> {
        let mut errors = agentbase_core::FieldErrors::new();
        if query.trim().is_empty() {
            errors.insert("query".into(), "must not be empty".into());
        }
        if !(1..=50).contains(&limit) {
            errors.insert("limit".into(), "must be 1 to 50".into());
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let agent = self.agents.get(&p.workspace_id, agent_id).await?;
        // Retrieval testing answers from what is trained now: a source shown as
        // trained is searchable at once. (Chat turns may answer from the previous
        // snapshot while a newer one loads; see `snapshot_for`.)
        self.load_snapshot(&agent.id).await?;
        Ok(self
            .retrieve(&agent, query, limit, Floor::NONE)
            .await?
            .unwrap_or_default())
    }
}

/// Builds the snapshot of one version beside `dir` and moves it into place.
///
/// It is built in a scratch directory beside `dir` (`<version>.tmp-*`), which this
/// process holds locked until it is done with it: a build cut short by a kill or a
/// crash leaves it unlocked, and [`sweep_builds`] deletes it later.
///
/// Two builders of the same version can meet: the refresh that follows a training
/// job and a search that loads the snapshot itself. Whoever moves a complete
/// snapshot into place first wins, and the other serves that one and drops its own;
/// a snapshot in place is only replaced when it does not open (torn by a crash).
fn build_snapshot(dir: &Path, docs: Vec<Doc>) -> Result<Index> {
    let io = |what: &str, e: std::io::Error| Error::Internal(format!("{what}: {e}"));
    let (Some(base), Some(version)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str()))
    else {
        return Err(Error::Internal(format!(
            "bad snapshot path {}",
            dir.display()
        )));
    };
    std::fs::create_dir_all(base).map_err(|e| io("cannot create the index directory", e))?;
    let scratch = ScratchDir::create_in(base, &format!("{version}{BUILD_MARK}"))
        .map_err(|e| io("cannot create the index build directory", e))?;
    let built = scratch.path().join("index");
    let index = Index::build(&built, docs)
        .map_err(|e| Error::Internal(format!("index build failed: {e}")))?;
    drop(index);
    // Whatever is not moved into place goes with `scratch`.
    let theirs = || Index::open(dir).ok();
    if let Some(existing) = theirs() {
        return Ok(existing);
    }
    if dir.exists() {
        // It may have arrived since the first look (a rename is atomic, so what is
        // in place is complete); only what still does not open is torn.
        if let Some(existing) = theirs() {
            return Ok(existing);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Err(e) = std::fs::rename(&built, dir) {
        return theirs().ok_or_else(|| io("cannot move the snapshot into place", e));
    }
    Index::open(dir).map_err(|e| Error::Internal(format!("cannot open the new snapshot: {e}")))
}

/// What marks an index build's scratch directory: `<version>.tmp-*`.
const BUILD_MARK: &str = ".tmp-";

/// Deletes the index builds in one agent's snapshot directory that no process is
/// still at (see [`agentbase_crawler::scratch`]).
fn sweep_builds(agent_dir: &Path) {
    let ours = |n: &str| n.contains(BUILD_MARK);
    scratch::sweep(agent_dir, "index builds", ours, scratch::MIN_AGE);
}

/// The content `update` gives `source`, checked: fields of another kind of source,
/// a bad name and content out of bounds are field errors.
/// A file as read: its name and text.
type ReadFile = (String, FileText);

fn updated_content(
    source: &Source,
    update: &SourceUpdate,
    file: Option<ReadFile>,
) -> Result<SourceContent> {
    let mut errors = agentbase_core::FieldErrors::new();
    let mismatch = |errors: &mut agentbase_core::FieldErrors, field: &str| {
        errors.insert(
            field.to_owned(),
            format!("not a field of {} sources", source.kind().as_str()),
        );
    };
    if let Some(name) = &update.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > agentbase_core::knowledge::SOURCE_NAME_MAX {
            errors.insert("name".into(), "1 to 100 characters".into());
        }
    }
    let mut content = source.content.clone();
    match &mut content {
        SourceContent::Text { content } => {
            if let Some(c) = update.content.clone() {
                *content = c;
            }
        }
        SourceContent::Qna { questions, answer } => {
            if let Some(q) = update.questions.clone() {
                *questions = q;
            }
            if let Some(a) = update.answer.clone() {
                *answer = a;
            }
        }
        SourceContent::Link { options, .. } => {
            if let Some(x) = update.exclude_paths.clone() {
                options.exclude_paths = x;
            }
            if let Some(x) = update.include_only_paths.clone() {
                options.include_only_paths = x;
            }
            if let Some(x) = update.slow_scraping {
                options.slow_scraping = x;
            }
        }
        SourceContent::File {
            filename,
            media_type,
            content,
            pages,
        } => {
            if let Some((f, read)) = file {
                *filename = f;
                *media_type = read.media_type;
                *content = read.markdown;
                *pages = read.pages;
            }
        }
    }
    let kind = source.kind();
    if update.content.is_some() && kind != SourceKind::Text {
        mismatch(&mut errors, "content");
    }
    if (update.questions.is_some() || update.answer.is_some()) && kind != SourceKind::Qna {
        mismatch(
            &mut errors,
            if update.questions.is_some() {
                "questions"
            } else {
                "answer"
            },
        );
    }
    if (update.exclude_paths.is_some()
        || update.include_only_paths.is_some()
        || update.slow_scraping.is_some())
        && kind != SourceKind::Link
    {
        mismatch(&mut errors, "excludePaths");
    }
    validate_content(&content, &mut errors);
    if errors.is_empty() {
        compile_path_rules(&content, &mut errors);
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(content)
}

/// A new source's fields, as [`NewSource::validate`] checks them, and a link
/// source's path rules compiled as its crawl will compile them.
fn validate_source(new: &NewSource) -> Result<()> {
    new.validate().map_err(Error::Invalid)?;
    let mut errors = agentbase_core::FieldErrors::new();
    compile_path_rules(&new.content, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

/// A link source's `includeOnlyPaths` and `excludePaths` are regular expressions:
/// one that does not compile (or compiles past the crawler's size limit) is refused
/// when it is given, not found out by the training job.
fn compile_path_rules(content: &SourceContent, errors: &mut agentbase_core::FieldErrors) {
    let SourceContent::Link { options, .. } = content else {
        return;
    };
    let rules = [
        ("includeOnlyPaths", &options.include_only_paths),
        ("excludePaths", &options.exclude_paths),
    ];
    for (field, patterns) in rules {
        for (i, pattern) in patterns.iter().enumerate() {
            if let Err(reason) = agentbase_crawler::spec::PathRules::check_rule(pattern) {
                errors.insert(format!("{field}.{i}"), reason);
            }
        }
    }
}

/// Agent creation that brings knowledge with it: from a website, or as a clone.
impl Knowledge {
    /// `POST /agents`: the agent, then (with `url`) a website source crawled from
    /// that URL and queued for training. The agent stays created whatever happens
    /// to the source, as the contract says; failed steps are reported.
    pub async fn create_agent_from(
        &self,
        p: &Principal,
        new: NewAgent,
        url: Option<String>,
    ) -> Result<AgentCreated> {
        if let Some(u) = &url {
            let rest = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            let ok = rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace));
            if !ok {
                return Err(Error::invalid("url", "must be an http(s) URL"));
            }
        }
        let agent = self.agents.create(&p.workspace_id, new).await?;
        let mut pending = Vec::new();
        if let Some(url) = url {
            let source = NewSource {
                name: url.clone(),
                content: SourceContent::Link {
                    url,
                    options: LinkOptions {
                        link_type: agentbase_core::knowledge::LinkType::Crawl,
                        exclude_paths: Vec::new(),
                        include_only_paths: Vec::new(),
                        slow_scraping: false,
                    },
                },
            };
            match self.create_source(p, &agent.id, source).await {
                Ok(_) if !self.can_train() => pending.push(PendingStep::TrainAgent),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(agent = %agent.id, error = %e, "the url could not be added as a source");
                    pending.push(PendingStep::AddSource);
                }
            }
        }
        Ok(AgentCreated {
            agent,
            pending_steps: pending,
        })
    }

    /// `POST /agents/{id}/clone`: a new agent with the same settings and sources
    /// (each trained anew from its content), without conversations or usage.
    pub async fn clone_agent(&self, p: &Principal, id: &str) -> Result<AgentCreated> {
        let original = self.agents.get_for_update(&p.workspace_id, id).await?;
        self.agents.check_room(&p.workspace_id).await?;
        let now = self.now();
        let mut copy = original.clone();
        copy.id = ids::agent_id();
        // The copy's sources count against the workspace's storage like any others.
        let bytes = self.store.source_bytes(&original.id, None).await?;
        let ws = (p.workspace_id.as_str(), p.plan);
        // The copies are written through `create_source`-like steps that take the
        // workspace's stripe themselves: the guard goes now.
        drop(self.check_storage(ws, &copy.id, None, false, bytes).await?);
        copy.created_at = now;
        copy.updated_at = now;
        copy.last_message_at = None;
        copy.last_trained_at = None;
        copy.credits_used = 0.0;
        copy.credits_month = 0;
        copy.status = agentbase_core::AgentStatus::Untrained;
        copy.size = 0;
        copy.kb_version = 0;
        copy.next_retrain_at = original
            .auto_retrain
            .then(|| now + (self.settings.knowledge.auto_retrain_interval_secs as i64) * 1000);
        self.store.insert_agent(&copy).await?;
        let mut pending = Vec::new();
        let sources = self.store.all_sources(&original.id).await?;
        for s in sources {
            let new = NewSource {
                name: s.name,
                content: s.content,
            };
            if let Err(e) = self.create_source(p, &copy.id, new).await {
                tracing::warn!(agent = %copy.id, error = %e, "a source could not be cloned");
                if !pending.contains(&PendingStep::AddSource) {
                    pending.push(PendingStep::AddSource);
                }
            }
        }
        if !pending.contains(&PendingStep::AddSource)
            && copy.size == 0
            && !self.can_train()
            && !self.store.all_sources(&copy.id).await?.is_empty()
        {
            pending.push(PendingStep::TrainAgent);
        }
        Ok(AgentCreated {
            agent: copy,
            pending_steps: pending,
        })
    }

    /// Builds the index snapshot of every agent with trained knowledge from the
    /// chunks in the record (after a restore, or on a new node), returning how many
    /// agents have a non-empty index now.
    pub async fn rebuild_indexes(&self) -> Result<usize> {
        let agents = self.store.agents_with_knowledge().await?;
        let mut built = 0;
        for agent in &agents {
            let snapshot = self.load_snapshot(agent).await?;
            if snapshot.is_some_and(|s| s.index.is_some()) {
                built += 1;
            }
        }
        Ok(built)
    }
}

impl Knowledge {
    /// An agent's first `limit` sources and its unfinished training jobs: what the
    /// dashboard's sources page and its live progress show.
    pub async fn training_state(
        &self,
        p: &Principal,
        agent_id: &str,
        limit: u32,
    ) -> Result<(Vec<Source>, Vec<TrainingJob>)> {
        let all = SourceFilter::default();
        let list = self.sources(p, agent_id, &all, None, limit).await?;
        let mut jobs = self.training_jobs(p, agent_id).await?;
        jobs.retain(|j| !j.status.is_finished());
        Ok((list.items, jobs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_asked_of_the_best_chunk() {
        let floor = Floor {
            relevance: 0.23,
            coverage: 0.40,
        };
        let never = || -> f32 { panic!("coverage asked") };
        // Below the relevance floor nothing counts, whatever the words.
        assert!(!floor.admits(0.22, || 1.0));
        // Relevant, then the words decide, unless it is a paraphrase.
        assert!(floor.admits(0.30, || 0.40));
        assert!(!floor.admits(0.30, || 0.39));
        assert!(floor.admits(CONFIDENT_RELEVANCE, never));
        // Without a coverage floor only relevance counts.
        let plain = Floor {
            coverage: 0.0,
            ..floor
        };
        assert!(plain.admits(0.23, never));
        assert!(!plain.admits(0.2, never));
        assert!(Floor::NONE.admits(0.0, never));
    }

    fn docs() -> Vec<Doc> {
        (0..20)
            .map(|i| Doc {
                chunk_id: format!("c{i}"),
                source_id: "s".to_owned(),
                title: "Warranty".to_owned(),
                url: None,
                heading: String::new(),
                text: format!("The warranty lasts {i} months and blades cost 12 euros."),
                embedding: vec![i as f32, 1.0, 0.5, 0.25],
            })
            .collect()
    }

    fn build_dirs(base: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(base)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(BUILD_MARK))
            .collect();
        names.sort();
        names
    }

    /// A build that fails (here: vectors of two sizes) leaves no scratch behind.
    #[test]
    fn a_failed_build_leaves_nothing() {
        let base = tempfile::tempdir().unwrap();
        let mut bad = docs();
        bad[3].embedding.push(1.0);
        assert!(build_snapshot(&base.path().join("1"), bad).is_err());
        assert!(build_dirs(base.path()).is_empty());
        assert!(!base.path().join("1").exists());
    }

    /// What a build killed midway leaves is swept; a build still under way (its
    /// scratch directory locked by a live process) and finished snapshots are kept.
    #[test]
    fn unfinished_builds_are_swept_and_builds_under_way_kept() {
        let base = tempfile::tempdir().unwrap();
        let finished = base.path().join("2");
        build_snapshot(&finished, docs()).unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        // Killed midway: the lock file is there and nobody holds it.
        let killed = base.path().join("3.tmp-killed");
        std::fs::create_dir_all(killed.join("index")).unwrap();
        std::fs::File::create(killed.join(".agentbase-lock"))
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        // Left by a build from before builds were locked.
        let unlocked = base.path().join("1.tmp-Ab3dE5f7");
        std::fs::create_dir_all(unlocked.join("tantivy")).unwrap();
        std::fs::File::open(&unlocked)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let under_way = ScratchDir::create_in(base.path(), "3.tmp-").unwrap();
        std::fs::File::open(under_way.path().join(".agentbase-lock"))
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let under_way_name = under_way
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();

        sweep_builds(base.path());
        assert_eq!(build_dirs(base.path()), vec![under_way_name]);
        assert_eq!(Index::open(&finished).unwrap().len(), 20);
        drop(under_way);
        assert!(build_dirs(base.path()).is_empty());
    }

    /// The refresh after a training job and a search that loads the snapshot itself
    /// can build the same version at once: both must end with a snapshot, not an
    /// error, and one complete snapshot stays in place.
    #[test]
    fn builders_of_one_version_at_once_all_get_the_snapshot() {
        let base = tempfile::tempdir().unwrap();
        for round in 0..10 {
            let dir = base.path().join(round.to_string());
            let builders: Vec<_> = (0..4)
                .map(|_| {
                    let dir = dir.clone();
                    std::thread::spawn(move || build_snapshot(&dir, docs()))
                })
                .collect();
            for b in builders {
                let index = b.join().unwrap().expect("a snapshot, whoever won");
                assert_eq!(index.len(), 20);
            }
            assert_eq!(Index::open(&dir).unwrap().len(), 20);
        }
        let leftovers: Vec<_> = std::fs::read_dir(base.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
