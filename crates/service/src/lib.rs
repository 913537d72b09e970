//! Use cases over the record: bootstrapping, workspaces, API keys, authentication
//! and agents. Callable from the CLI and from tests without HTTP; the server crate
//! is a thin layer over [`App`].

pub mod agent_setup;
pub mod backup;
pub mod chat;
pub mod contacts;
pub mod conversation_search;
pub mod crawl_runs;
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

use agentbase_core::keys::{self, KeyCheck};
use agentbase_core::{
    Agent, AgentPatch, AgentStatus, ApiKey, Clock, Cursor, Error, IpRateLimits, Millis, NewAgent,
    Plan, RateDecision, Resource, Result, Visibility, Workspace, ids,
};
use agentbase_limiter::{Limiter, MemoryLimiter, RedisLimiter, Window};
use agentbase_store::Store;
use ttl_cache::TtlCache;

pub use agent_setup::{AgentCreated, PendingStep};
pub use agentbase_limiter::LimiterError;
pub use agentbase_store::{ConversationFilter, ConversationSearch, Page, SourceFilter};
pub use knowledge::{Retrieved, group_by_page};
pub use settings::{ConfigError, Layers, LimiterBackend, LogFormat, Overrides, Settings};

/// Who is calling: established from an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub workspace_id: String,
    pub key_id: String,
    pub plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("expired API key")]
    Expired,
    #[error(transparent)]
    Store(#[from] Error),
}

/// How long a key's `last_used_at` may lag: one write per key per interval keeps
/// authentication read-only on the hot path.
const TOUCH_INTERVAL_MS: Millis = 60_000;

/// How long a key row (with its workspace's plan) is trusted without rereading it.
/// Revocation and plan changes made through this process take effect at once (the
/// entry is dropped); made by another process (the CLI, another node), within this.
pub const AUTH_CACHE_MS: Millis = 1_000;
/// How long an agent row is served from memory (see [`App::agent`]).
pub const AGENT_CACHE_MS: Millis = 1_000;
const AUTH_CACHE_MAX: usize = 10_000;

pub struct App {
    pub store: Store,
    pub limiter: Limiter,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub models: models::Registry,
    pub knowledge: knowledge::Knowledge,
    crawls: crawl_runs::RunningCrawls,
    extractor: extractor::Extractor,
    /// Password hashing slots (see [`dashboard::HASHES_AT_ONCE`]).
    hash_slots: tokio::sync::Semaphore,
    /// The country database of `widget.geoip_database`, opened on first use.
    geoip: std::sync::OnceLock<Option<widget::GeoIp>>,
    /// Key id → when its use was last recorded.
    touched: TtlCache<()>,
    auth_cache: TtlCache<(ApiKey, Plan)>,
    agent_cache: TtlCache<Agent>,
    /// Workspace id → (month start, this month's spend).
    spend_cache: TtlCache<(Millis, f64)>,
}

/// What the first start of a fresh data directory made.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub workspace: Workspace,
    pub api_key: String,
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
        Ok(App {
            store,
            limiter,
            clock,
            knowledge: knowledge::Knowledge::new(index_dir),
            crawls: crawl_runs::RunningCrawls::default(),
            extractor: extractor::Extractor::new(extractor::Mode::Thread, &settings.extraction),
            hash_slots: tokio::sync::Semaphore::new(dashboard::HASHES_AT_ONCE),
            geoip: std::sync::OnceLock::new(),
            models: models::Registry::build(&settings, providers),
            settings: Arc::new(settings),
            touched: TtlCache::new(TOUCH_INTERVAL_MS, AUTH_CACHE_MAX),
            auth_cache: TtlCache::new(AUTH_CACHE_MS, AUTH_CACHE_MAX),
            agent_cache: TtlCache::new(AGENT_CACHE_MS, AUTH_CACHE_MAX),
            spend_cache: TtlCache::new(AGENT_CACHE_MS, AUTH_CACHE_MAX),
        })
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
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

    /// On a record with no workspace yet, makes the first one (Standard plan) and
    /// its first key. `None` when the record was already set up.
    pub async fn bootstrap(&self) -> Result<Option<Bootstrap>> {
        if !self.store.workspaces().await?.is_empty() {
            return Ok(None);
        }
        let workspace = self
            .create_workspace("Default workspace", Plan::Standard)
            .await?;
        let (_, api_key) = self.create_key(&workspace.id, "first key", None).await?;
        Ok(Some(Bootstrap { workspace, api_key }))
    }

    // ---- workspaces -------------------------------------------------------------

    pub async fn create_workspace(&self, name: &str, plan: Plan) -> Result<Workspace> {
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let w = Workspace {
            id: ids::workspace_id(),
            name: name.trim().to_owned(),
            plan,
            created_at: self.now(),
        };
        self.store.insert_workspace(&w).await?;
        Ok(w)
    }

    pub async fn workspaces(&self) -> Result<Vec<Workspace>> {
        self.store.workspaces().await
    }

    pub async fn set_plan(&self, workspace_id: &str, plan: Plan) -> Result<()> {
        let changed = self.store.set_plan(workspace_id, plan).await?;
        self.forget_keys(None);
        if changed {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Workspace))
        }
    }

    /// The workspace named, or the first one when none is named (the CLI default).
    pub async fn resolve_workspace(&self, id: Option<&str>) -> Result<Workspace> {
        match id {
            Some(id) => self
                .store
                .workspace(id)
                .await?
                .ok_or(Error::NotFound(Resource::Workspace)),
            None => self
                .store
                .workspaces()
                .await?
                .into_iter()
                .next()
                .ok_or(Error::NotFound(Resource::Workspace)),
        }
    }

    // ---- keys -------------------------------------------------------------------

    /// Makes a key; returns its row and the plaintext, which is never stored.
    pub async fn create_key(
        &self,
        workspace_id: &str,
        name: &str,
        expires_at: Option<Millis>,
    ) -> Result<(ApiKey, String)> {
        if self.store.workspace(workspace_id).await?.is_none() {
            return Err(Error::NotFound(Resource::Workspace));
        }
        let g = keys::generate();
        let key = ApiKey {
            id: g.id,
            workspace_id: workspace_id.to_owned(),
            name: name.to_owned(),
            prefix: g.prefix,
            secret_hash: g.secret_hash,
            created_at: self.now(),
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        self.store.insert_key(&key).await?;
        Ok((key, g.plaintext))
    }

    pub async fn keys(&self, workspace_id: Option<&str>) -> Result<Vec<ApiKey>> {
        self.store.keys(workspace_id).await
    }

    /// Accepts the key id or its displayed prefix (`agb_<id>`).
    pub async fn revoke_key(&self, id_or_prefix: &str) -> Result<()> {
        let id = id_or_prefix.strip_prefix("agb_").unwrap_or(id_or_prefix);
        // Record first, then forget: a request racing in between rereads the new row.
        let revoked = self.store.revoke_key(id, self.now()).await?;
        self.forget_keys(Some(id));
        if revoked {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::ApiKey))
        }
    }

    /// Checks a presented `Authorization` value (`None` when the header is absent).
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty() && !h.eq_ignore_ascii_case("bearer"))
            .ok_or(AuthError::Missing)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(AuthError::Invalid),
        };
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let (id, secret) = keys::parse(token).ok_or(AuthError::Invalid)?;
        let now = self.now();
        let Some((key, plan)) = self.key_for_auth(id, now).await? else {
            return Err(AuthError::Invalid);
        };
        match key.check(secret, now) {
            KeyCheck::Valid => {}
            KeyCheck::Invalid | KeyCheck::Revoked => return Err(AuthError::Invalid),
            KeyCheck::Expired => return Err(AuthError::Expired),
        }
        self.touch(&key.id, now);
        Ok(Principal {
            workspace_id: key.workspace_id,
            key_id: key.id,
            plan,
        })
    }

    /// The key row and plan, from the short-lived cache or the record.
    async fn key_for_auth(&self, id: &str, now: Millis) -> Result<Option<(ApiKey, Plan)>> {
        if let Some(found) = self.auth_cache.get(id, now) {
            return Ok(Some(found));
        }
        let ticket = self.auth_cache.ticket();
        let found = self.store.key_for_auth(id).await?;
        if let Some(found) = &found {
            self.auth_cache.insert(id, found.clone(), now, ticket);
        }
        Ok(found)
    }

    fn forget_keys(&self, id: Option<&str>) {
        match id {
            Some(id) => self.auth_cache.forget(id),
            None => self.auth_cache.clear(),
        }
    }

    /// Records the key's use at most once a minute. The write goes to the one
    /// writer, which may be busy with a training's inserts, so the request does not
    /// wait for it.
    fn touch(&self, key_id: &str, now: Millis) {
        if !self.touched.insert_if_stale(key_id, (), now) {
            return;
        }
        let store = self.store.clone();
        let key_id = key_id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = store.touch_key(&key_id, now).await {
                tracing::warn!(error = %e, key_id, "could not record key use");
            }
        });
    }

    /// One request against the (key, client IP) window.
    pub async fn rate_limit(
        &self,
        key_id: &str,
        client_ip: &str,
    ) -> Result<RateDecision, LimiterError> {
        let window = Window {
            limit: self.settings.rate_limit.requests,
            window_ms: (self.settings.rate_limit.window_secs * 1000) as i64,
        };
        self.limiter
            .check(&format!("{key_id}|{client_ip}"), window, self.now())
            .await
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

    /// This month's spend of a workspace. Served from memory for `AGENT_CACHE_MS`
    /// after it is read from the record; charges stored through this process are
    /// added at once ([`App::note_charge`]), so within the process the figure is
    /// as exact as the record, and another node's charges show within that time.
    pub(crate) async fn workspace_spend(&self, workspace_id: &str, month: Millis) -> Result<f64> {
        let now = self.now();
        if let Some((m, used)) = self.spend_cache.get(workspace_id, now)
            && m == month
        {
            return Ok(used);
        }
        let ticket = self.spend_cache.ticket();
        let used = self.store.workspace_credits(workspace_id, month).await?;
        self.spend_cache
            .insert(workspace_id, (month, used), now, ticket);
        Ok(used)
    }

    /// After a turn's answer (and charge) is committed: the cached agent row and
    /// workspace spend take the same changes the record did, so the next turn's
    /// checks need no read. Cache entries keep their age, so they are still reread
    /// within `AGENT_CACHE_MS` for other nodes' changes.
    pub(crate) fn note_charge(
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
        if credits > 0.0 {
            self.spend_cache.update(workspace_id, |(m, used)| {
                if *m == month {
                    *used += credits;
                } else {
                    *m = month;
                    *used = credits;
                }
            });
        }
    }

    /// Drops a cached workspace spend (when a charge's outcome is unknown).
    pub(crate) fn forget_spend(&self, workspace_id: &str) {
        self.spend_cache.forget(workspace_id);
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
