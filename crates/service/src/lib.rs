//! Use cases over the record: bootstrapping, workspaces, API keys, authentication
//! and agents. Callable from the CLI and from tests without HTTP; the server crate
//! is a thin layer over [`App`].

pub mod accounts;
pub mod agent_setup;
pub mod backup;
pub mod chat;
pub mod contacts;
pub mod conversation_search;
pub mod crawl_runs;
mod credits;
pub mod dashboard;
pub mod extractor;
pub mod files;
mod grounding;
pub mod helpdesk;
pub mod knowledge;
pub mod leads;
pub mod members;
pub mod models;
pub mod notifications;
pub mod scripted;
pub mod settings;
pub mod spam;
mod ttl_cache;
pub mod webhooks;
pub mod website;
pub mod widget;

use std::path::Path;
use std::sync::Arc;

use agentbase_core::{
    Agent, AgentPatch, AgentStatus, Clock, Cursor, Error, IpRateLimits, Millis, NewAgent, Resource,
    Result, Visibility, ids,
};
use agentbase_limiter::{Limiter, MemoryLimiter, RedisLimiter};
use agentbase_store::Store;
use ttl_cache::TtlCache;

pub use accounts::{AUTH_CACHE_MS, Accounts, AuthError, Bootstrap, Principal};
pub use agent_setup::{AgentCreated, PendingStep};
pub use agentbase_limiter::LimiterError;
pub use agentbase_store::{ConversationFilter, ConversationSearch, Page, SourceFilter};
pub use knowledge::{Retrieved, group_by_page};
pub use settings::{ConfigError, Layers, LimiterBackend, LogFormat, Overrides, Settings};

/// How long an agent row is served from memory (see [`App::agent`]).
pub const AGENT_CACHE_MS: Millis = 1_000;
const AGENT_CACHE_MAX: usize = 10_000;

pub struct App {
    store: Store,
    limiter: Arc<Limiter>,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    models: models::Registry,
    knowledge: knowledge::Knowledge,
    accounts: Accounts,
    credits: credits::Credits,
    crawls: crawl_runs::RunningCrawls,
    extractor: extractor::Extractor,
    /// Password hashing slots (see [`dashboard::HASHES_AT_ONCE`]).
    hash_slots: tokio::sync::Semaphore,
    /// The country database of `widget.geoip_database`, opened on first use.
    geoip: std::sync::OnceLock<Option<widget::GeoIp>>,
    agent_cache: TtlCache<Agent>,
}

/// The database URL the settings name, or the embedded default in `data_dir`.
pub fn database_url(settings: &Settings, data_dir: &Path) -> String {
    if settings.database.url.is_empty() {
        format!("sqlite://{}", data_dir.join("agentbase.db").display())
    } else {
        settings.database.url.clone()
    }
}

impl App {
    /// Opens (creating if needed) the record and the rate limiter, with only the
    /// built-in (scripted) providers.
    pub async fn open(settings: Settings, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<App> {
        Self::open_with_providers(settings, data_dir, clock, &models::Providers::new()).await
    }

    /// [`App::open`] with provider instances built by the caller (by provider name).
    pub async fn open_with_providers(
        settings: Settings,
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        providers: &models::Providers,
    ) -> Result<App> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::Storage(format!("cannot create {}: {e}", data_dir.display())))?;
        let store = agentbase_store::open(
            &database_url(&settings, data_dir),
            settings.database.max_connections,
        )
        .await?;
        let limiter = match settings.rate_limit.backend {
            LimiterBackend::Memory => Limiter::Memory(MemoryLimiter::new()),
            LimiterBackend::Redis => Limiter::Redis(
                RedisLimiter::connect(&settings.rate_limit.redis_url, "agentbase:rl:")
                    .await
                    .map_err(|e| Error::Unavailable(e.to_string()))?,
            ),
        };
        let index_dir = if settings.knowledge.index_dir.is_empty() {
            data_dir.join("index")
        } else {
            std::path::PathBuf::from(&settings.knowledge.index_dir)
        };
        let limiter = Arc::new(limiter);
        let settings = Arc::new(settings);
        Ok(App {
            accounts: Accounts::new(store.clone(), clock.clone(), limiter.clone(), &settings),
            credits: credits::Credits::new(store.clone(), clock.clone(), settings.clone()),
            store,
            limiter,
            clock,
            knowledge: knowledge::Knowledge::new(index_dir),
            crawls: crawl_runs::RunningCrawls::default(),
            extractor: extractor::Extractor::new(extractor::Mode::Thread, &settings.extraction),
            hash_slots: tokio::sync::Semaphore::new(dashboard::HASHES_AT_ONCE),
            geoip: std::sync::OnceLock::new(),
            models: models::Registry::build(&settings, providers),
            settings,
            agent_cache: TtlCache::new(AGENT_CACHE_MS, AGENT_CACHE_MAX),
        })
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Workspaces, API keys, authentication and the per-key rate limit.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The settings this process runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The record itself, for what is not a use case: closing it at shutdown, and
    /// tests that inspect what was stored.
    pub fn record(&self) -> &Store {
        &self.store
    }

    /// Reads uploaded and crawled documents with `extractor` (the server passes one
    /// that runs a worker process per document).
    pub fn with_extractor(mut self, extractor: extractor::Extractor) -> Self {
        self.extractor = extractor;
        self
    }

    pub fn extractor(&self) -> &extractor::Extractor {
        &self.extractor
    }

    /// The text of an untrusted file, read under the extractor's limits.
    pub async fn read_file(
        &self,
        filename: &str,
        content_type: Option<&str>,
        bytes: Vec<u8>,
    ) -> std::result::Result<files::FileText, files::FileError> {
        self.extractor.extract(filename, content_type, bytes).await
    }

    // ---- agents -----------------------------------------------------------------

    fn known_model(&self) -> impl Fn(&str) -> bool + '_ {
        |m| self.settings.models.contains_key(m)
    }

    pub async fn create_agent(&self, workspace_id: &str, new: NewAgent) -> Result<Agent> {
        new.validate(&self.known_model()).map_err(Error::Invalid)?;
        let now = self.now();
        let agent = Agent {
            id: ids::agent_id(),
            workspace_id: workspace_id.to_owned(),
            name: new.name.trim().to_owned(),
            instructions: new
                .instructions
                .unwrap_or_else(|| agentbase_core::agent::DEFAULT_INSTRUCTIONS.to_owned()),
            model: new
                .model
                .unwrap_or_else(|| self.settings.agents.default_model.clone()),
            temp: new.temp.unwrap_or(0.0),
            visibility: new.visibility.unwrap_or(Visibility::Private),
            auto_retrain: false,
            allowed_domains: None,
            suggested_messages: None,
            initial_messages: vec!["Hi! What can I help you with?".into()],
            credit_limit: None,
            ip_rate_limits: IpRateLimits::default(),
            actions: Vec::new(),
            channel_instructions: None,
            notifications: None,
            spam: None,
            voice: None,
            blocked_countries: None,
            styles: None,
            lead_form: None,
            credits_month: 0,
            credits_used: 0.0,
            status: AgentStatus::Untrained,
            size: 0,
            created_at: now,
            updated_at: now,
            last_trained_at: None,
            last_message_at: None,
            kb_version: 0,
            next_retrain_at: None,
            quote_fallback: None,
        };
        self.store.insert_agent(&agent).await?;
        Ok(agent)
    }

    /// An agent of the workspace. Rows are cached for `AGENT_CACHE_MS`; every change
    /// made through this process drops the entry, so reads after writes here are
    /// exact, and changes made on another node show within that time.
    pub async fn agent(&self, workspace_id: &str, id: &str) -> Result<Agent> {
        let now = self.now();
        if let Some(agent) = self.agent_cache.get(id, now)
            && agent.workspace_id == workspace_id
        {
            return Ok(agent);
        }
        let ticket = self.agent_cache.ticket();
        let agent = self
            .store
            .agent(workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Agent))?;
        self.agent_cache.insert(id, agent.clone(), now, ticket);
        Ok(agent)
    }

    /// The agent as the record has it now, bypassing the cache: writes start from
    /// this so a stale cached row is never written back.
    async fn agent_for_update(&self, workspace_id: &str, id: &str) -> Result<Agent> {
        self.store
            .agent(workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Agent))
    }

    /// After a turn's answer (and charge) is committed: the cached agent row and
    /// the workspace's spend take the same changes the record did, so the next
    /// turn's checks need no read. Cache entries keep their age, so they are still
    /// reread within `AGENT_CACHE_MS` for other nodes' changes.
    pub(crate) fn note_turn(
        &self,
        workspace_id: &str,
        agent_id: &str,
        month: Millis,
        credits: f64,
        at: Millis,
    ) {
        self.agent_cache.update(agent_id, |agent| {
            agent.last_message_at = Some(at);
            if credits > 0.0 {
                if agent.credits_month == month {
                    agent.credits_used += credits;
                } else {
                    agent.credits_month = month;
                    agent.credits_used = credits;
                }
            }
        });
        self.credits.charged(workspace_id, month, credits);
    }

    /// Drops a cached agent row (after any write to it).
    pub fn forget_agent(&self, id: &str) {
        self.agent_cache.forget(id);
    }

    pub async fn update_agent(
        &self,
        workspace_id: &str,
        id: &str,
        patch: AgentPatch,
    ) -> Result<Agent> {
        // Existence first: a foreign or missing agent is 404 even for a bad body.
        let mut agent = self.agent_for_update(workspace_id, id).await?;
        patch
            .validate(&self.known_model())
            .map_err(Error::Invalid)?;
        let retrain = patch.auto_retrain;
        agent.apply(patch, self.now());
        // Turning auto-retrain on starts its schedule; off stops it.
        match retrain {
            Some(true) if agent.next_retrain_at.is_none() => {
                agent.next_retrain_at = Some(
                    self.now() + (self.settings.knowledge.auto_retrain_interval_secs as i64) * 1000,
                );
            }
            Some(false) => agent.next_retrain_at = None,
            _ => {}
        }
        self.save_agent(agent).await
    }

    /// Writes an agent's settings back and drops its cached row.
    pub(crate) async fn save_agent(&self, agent: Agent) -> Result<Agent> {
        let updated = self.store.update_agent(&agent).await?;
        self.forget_agent(&agent.id);
        if !updated {
            return Err(Error::NotFound(Resource::Agent));
        }
        Ok(agent)
    }

    /// Replaces the agent's client actions (the tools offered to its model).
    pub async fn set_actions(
        &self,
        workspace_id: &str,
        id: &str,
        actions: Vec<agentbase_core::Action>,
    ) -> Result<Agent> {
        let mut agent = self.agent_for_update(workspace_id, id).await?;
        agentbase_core::agent::validate_actions(&actions).map_err(Error::Invalid)?;
        agent.actions = actions;
        agent.updated_at = self.now();
        self.save_agent(agent).await
    }

    pub async fn delete_agent(&self, workspace_id: &str, id: &str) -> Result<()> {
        let deleted = self.store.delete_agent(workspace_id, id).await?;
        self.forget_agent(id);
        if deleted {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Agent))
        }
    }

    pub async fn agents(
        &self,
        workspace_id: &str,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Agent>> {
        self.store.agents(workspace_id, cursor, limit).await
    }
}
