//! Configuration: one settings struct, layered defaults → file → environment →
//! flags, rejected with the offending key named when anything is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in defaults, every option with its comment.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../agentbase.default.toml");

/// The configuration file `init` (or the first `serve`) writes into a data
/// directory: [`DEFAULT_CONFIG_TOML`] with every option commented out and its
/// section headers kept, so a newer release's defaults reach an existing install
/// and an operator uncomments only what they change.
pub fn default_config_file() -> String {
    let mut out = String::from(
        "# Written when this data directory was initialised. Every option is commented\n\
         # out, so the built-in default applies (and follows upgrades) until you uncomment it.\n\n",
    );
    for line in DEFAULT_CONFIG_TOML.lines() {
        let t = line.trim_start();
        if !(t.is_empty() || t.starts_with('#') || t.starts_with('[')) {
            out.push_str("# ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub rate_limit: RateLimitSettings,
    pub log: LogSettings,
    pub plans: PlanSettings,
    pub agents: AgentSettings,
    pub chat: ChatSettings,
    pub providers: BTreeMap<String, ProviderSettings>,
    pub models: BTreeMap<String, ModelSettings>,
    pub knowledge: KnowledgeSettings,
    pub crawler: CrawlerConfig,
    pub browser: BrowserSettings,
    pub extraction: ExtractionSettings,
    pub widget: WidgetSettings,
    pub notifications: NotificationSettings,
    pub webhooks: WebhookSettings,
}

/// Delivery of agents' webhook events (the outbox worker). Targets pass the
/// crawler's SSRF guard (`crawler.allow_private_networks` applies to them too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles with each further one.
    pub retry_base_secs: u64,
    /// The longest wait between attempts.
    pub retry_max_secs: u64,
    /// One attempt's deadline (connect, send, answer).
    pub timeout_secs: u64,
    /// How often the worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// Deliveries in flight at once on this node.
    pub concurrency: usize,
    /// Days a finished delivery (agents' and runs') stays in the delivery log.
    /// 0: kept.
    pub delivery_retention_days: u64,
    /// Apify run-webhook deliveries one workspace may have waiting to be sent;
    /// past it, an event's deliveries are recorded as failed, unsent.
    pub max_pending_per_workspace: u64,
}

/// Headless Chromium, for crawls that render pages (`crawlerType` `playwright:*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserSettings {
    /// Off: no browser; adaptive crawls read every page over HTTP and runs asking for
    /// `playwright:firefox`/`playwright:chrome` are refused.
    pub enabled: bool,
    /// Debian's chromium (scripts/services.sh installs it).
    pub executable: String,
    /// Pages rendered at once, across all crawls.
    pub max_pages: usize,
    /// JavaScript heap limit of one page; a page needing more fails.
    pub page_memory_mb: u64,
    /// The browser is restarted once its processes together hold more than this
    /// (proportional set size, MB).
    pub max_memory_mb: u64,
    /// The browser exits after this long without a page to render.
    pub idle_secs: u64,
}

/// Where the widget learns a visitor's country (for agents' `blockedCountries`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettings {
    /// A header set by the proxy in front (`CF-IPCountry`, …) holding the
    /// visitor's ISO country code; believed from `server.trusted_proxies` (from any
    /// peer when that list is empty). Empty: no header is read.
    pub country_header: String,
    /// A MaxMind-format (`.mmdb`) country database to look client IPs up in, when
    /// no header gave the country. Empty: none.
    pub geoip_database: String,
}

/// Daily summary mails (agents' `notificationsSettings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// `smtp://host:port` (plain), `smtp+starttls://…` or `smtps://…`, with
    /// optional `user:password@`. Empty: no mail is sent.
    pub smtp_url: String,
    /// The sender of the mails.
    pub from: String,
    /// How often the worker checks whether a day's summaries are due.
    pub check_interval_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub public_url: String,
    pub body_limit_bytes: usize,
    pub trusted_proxies: Vec<IpAddr>,
    pub shutdown_grace_secs: u64,
    pub metrics: bool,
    /// A request's head must arrive within this long of the connection opening or
    /// going idle (so it is also the keep-alive idle limit).
    pub header_timeout_secs: u64,
    /// A request body that sends nothing for this long is abandoned.
    pub body_timeout_secs: u64,
    /// A request gets this long to be answered (a stream: to start); then 503.
    pub request_timeout_secs: u64,
    /// The same for file uploads (multipart bodies).
    pub upload_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 one by its /64) may have open at
    /// once; more are closed as they arrive. `trusted_proxies` are exempt; 0: no bound.
    pub max_connections_per_client: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimiterBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub backend: LimiterBackend,
    pub redis_url: String,
    pub requests: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Monthly credits per plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSettings {
    pub free: u64,
    pub hobby: u64,
    pub standard: u64,
    pub pro: u64,
    pub enterprise: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    pub default_model: String,
    /// Agents one workspace may have, by plan (each brings its own source storage,
    /// contacts and conversations).
    pub max_per_workspace: PlanLimits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    /// Most tokens one answer may have.
    pub max_tokens: u32,
    /// How long a tool call waits for its result before it expires.
    pub tool_call_ttl_secs: u64,
    /// How long a turn's hold on its conversation lasts unless renewed. A running
    /// turn renews it every third of this, so this is how long a conversation
    /// stays busy after the process running its turn died.
    pub turn_lease_secs: u64,
    /// Longest user message, in characters.
    pub max_message_chars: usize,
}

/// How the knowledge base trains and retrieves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// Where this node keeps index snapshots; empty means `<data-dir>/index`.
    pub index_dir: String,
    /// `local` (all-MiniLM-L6-v2 with candle), the name of an `openai` provider, or
    /// `none` (no knowledge base: sources are kept but cannot train).
    pub embedder: String,
    /// The provider's embedding model when `embedder` names a provider.
    pub embedding_model: String,
    /// The length of that model's vectors.
    pub embedding_dimensions: usize,
    /// Chunk size and overlap, in characters.
    pub chunk_chars: usize,
    pub chunk_overlap: usize,
    /// Chunks given to the model per answer.
    pub retrieval_limit: usize,
    /// Below this relevance (0–1) a chunk is not used, and when the best chunk is
    /// below it none is: the agent says it does not know.
    pub min_relevance: f32,
    /// Below this share (0–1) of the question's words, weighted by rarity, found
    /// in the best chunk, nothing is used either: the question is about something
    /// the knowledge does not name. A message of several sentences counts by its
    /// best-covered question (`agentbase_search::questions_of`), and a best chunk
    /// as relevant as `agentbase_search::CONFIDENT_RELEVANCE` needs no coverage.
    pub min_coverage: f32,
    /// Where a quoting agent's model (a small one, see `grounding.rs`) reads the
    /// knowledge: next to the question, at most 3 entries, with a one-sentence task
    /// (`true`), or in the system prompt like every other model (`false`, the
    /// default: SmolLM2's answers held the gold fact in 72/38/60% of the grounded
    /// questions against 58/32/54% inline, bench/rag/RESULTS.md).
    pub small_model_inline: bool,
    /// `rrf` (reciprocal rank fusion, k = 20; the default) or `normalized`
    /// (min-max normalised scores, dense weight 0.3).
    pub fusion: String,
    /// Auto-retrain period for agents that have it on (Chatbase: weekly).
    pub auto_retrain_interval_secs: u64,
    /// Storage per agent, in bytes of source text, by plan.
    pub storage_limits: PlanLimits,
    /// Storage per workspace, all its agents' sources together, by plan (so many
    /// agents do not multiply the per-agent limit).
    pub workspace_storage_limits: PlanLimits,
    /// Training jobs one node runs at once, claimed fairly across workspaces; also
    /// how many chunk and embed at once, whatever their kind.
    pub training_concurrency: usize,
    /// Website sources' jobs one node runs at once besides: they fetch their pages
    /// (waiting on the site) before they embed, so they do not hold the training
    /// slots while they wait.
    pub fetch_concurrency: usize,
    /// Training jobs one workspace may have running at once, on all nodes.
    pub jobs_per_workspace: usize,
    /// Nice value (0–19) of the local embedder's threads: training embeds at a lower
    /// priority than the threads answering requests.
    pub embedder_nice: i32,
}

impl KnowledgeSettings {
    /// The relevance floor chat answers use.
    pub fn floor(&self) -> crate::knowledge::Floor {
        crate::knowledge::Floor {
            relevance: self.min_relevance,
            coverage: self.min_coverage,
        }
    }
}

/// How website sources are fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlerConfig {
    /// Fetch from private, loopback and link-local addresses too (off: the crawler
    /// refuses them, checked after DNS and on every redirect).
    pub allow_private_networks: bool,
    /// Most pages one website source fetches.
    pub max_pages: u64,
    /// How deep a `crawl` source follows links from its URL.
    pub max_depth: u32,
    /// A website fetch gives up after this long.
    pub timeout_secs: u64,
    /// Concurrent requests of one crawl (a run's `maxConcurrency` is capped to it).
    pub max_concurrency: u32,
    /// URLs one crawl may know (queued or seen); links past it are not followed.
    pub max_frontier: usize,
    /// Apify runs: most running at once per workspace, longest duration, and most
    /// pages (and so dataset items) per run by plan, also the default when a run
    /// sets no `maxCrawlPages`.
    pub runs_per_workspace: u32,
    pub run_timeout_secs: u64,
    pub run_max_pages: PlanLimits,
    /// How long Apify's synchronous endpoints (`run-sync`,
    /// `run-sync-get-dataset-items`) wait for their run before answering 408 (the
    /// run goes on). Apify waits 300 s.
    pub sync_wait_secs: u64,
    /// Bytes of key-value records (written through the Apify API) all of a
    /// workspace's runs may hold, by plan.
    pub kv_storage_limits: PlanLimits,
    /// Bytes of dataset items all of a workspace's runs may hold, by plan: a run
    /// that would write past it stops and fails, and none starts at the limit.
    pub dataset_storage_limits: PlanLimits,
    /// Days an ended run is kept, by plan, as Apify keeps unnamed storages: then it
    /// goes with its dataset, log and key-value store. 0: kept until deleted.
    pub run_retention_days: PlanLimits,
}

/// Where and under which limits uploaded and crawled documents are parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractionSettings {
    /// Address space of one document reader process.
    pub worker_memory_mb: u64,
    /// Time for one document (wall clock and CPU).
    pub timeout_secs: u64,
    /// Documents read at once by this node.
    pub max_concurrent: usize,
    /// How long a document waits for a free reader before the upload gets 503.
    pub queue_timeout_secs: u64,
}

/// One number per plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    pub free: u64,
    pub hobby: u64,
    pub standard: u64,
    pub pro: u64,
    pub enterprise: u64,
}

impl PlanLimits {
    /// The plan's limit as a count or size to compare with stored ones (`i64`).
    pub fn get_i64(&self, plan: agentbase_core::Plan) -> i64 {
        i64::try_from(self.get(plan)).unwrap_or(i64::MAX)
    }

    pub fn get(&self, plan: agentbase_core::Plan) -> u64 {
        use agentbase_core::Plan::*;
        match plan {
            Free => self.free,
            Hobby => self.hobby,
            Standard => self.standard,
            Pro => self.pro,
            Enterprise => self.enterprise,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Local,
    Openai,
    Anthropic,
    Scripted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub kind: ProviderKind,
    #[serde(default)]
    pub base_url: String,
    /// Name of the environment variable holding the provider's key; the key itself
    /// never sits in the file.
    #[serde(default)]
    pub api_key_env: String,
    /// `local` only: a GGUF file to serve; empty means the default model under
    /// `<data-dir>/models`, fetched on first start.
    #[serde(default)]
    pub model_path: String,
    /// Chat turns of one workspace on this provider at once (this node); more wait
    /// their turn in the workspace's own line, so that one tenant cannot fill a
    /// shared model's queue. 0: no bound. Default: 2 for `local` (one model, one
    /// queue for every tenant), none for the others.
    #[serde(default)]
    pub turns_per_workspace: Option<usize>,
}

impl ProviderSettings {
    /// [`ProviderSettings::turns_per_workspace`] as it applies: `None` for no bound.
    pub fn workspace_turns(&self) -> Option<usize> {
        let default = (self.kind == ProviderKind::Local).then_some(LOCAL_TURNS_PER_WORKSPACE);
        self.turns_per_workspace.or(default).filter(|n| *n > 0)
    }
}

/// The default [`ProviderSettings::turns_per_workspace`] of a `local` provider.
pub const LOCAL_TURNS_PER_WORKSPACE: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub provider: String,
    #[serde(default)]
    pub upstream: String,
    pub credits: f64,
}

impl Default for Settings {
    fn default() -> Self {
        let model = |credits| ModelSettings {
            provider: "local".into(),
            upstream: "SmolLM2-135M-Instruct".into(),
            credits,
        };
        Settings {
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            rate_limit: RateLimitSettings::default(),
            log: LogSettings::default(),
            plans: PlanSettings::default(),
            agents: AgentSettings::default(),
            chat: ChatSettings::default(),
            providers: BTreeMap::from([(
                "local".into(),
                ProviderSettings {
                    kind: ProviderKind::Local,
                    base_url: String::new(),
                    api_key_env: String::new(),
                    model_path: String::new(),
                    turns_per_workspace: None,
                },
            )]),
            models: BTreeMap::from([("auto".into(), model(1.0)), ("smollm2".into(), model(1.0))]),
            knowledge: KnowledgeSettings::default(),
            crawler: CrawlerConfig::default(),
            extraction: ExtractionSettings::default(),
            widget: WidgetSettings::default(),
            notifications: NotificationSettings::default(),
            webhooks: WebhookSettings::default(),
            browser: BrowserSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            body_limit_bytes: 2 * 1024 * 1024,
            trusted_proxies: Vec::new(),
            shutdown_grace_secs: 30,
            metrics: true,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            request_timeout_secs: 120,
            upload_timeout_secs: 300,
            max_connections: 4096,
            max_connections_per_client: 256,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: String::new(),
            max_connections: 16,
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            backend: LimiterBackend::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            requests: 100,
            window_secs: 10,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            free: 50,
            hobby: 500,
            standard: 4000,
            pro: 15_000,
            enterprise: 100_000,
        }
    }
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            default_model: "auto".into(),
            max_per_workspace: PlanLimits {
                free: 5,
                hobby: 20,
                standard: 100,
                pro: 500,
                enterprise: 10_000,
            },
        }
    }
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            max_tokens: 512,
            tool_call_ttl_secs: 1800,
            turn_lease_secs: 30,
            max_message_chars: 32_000,
        }
    }
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        KnowledgeSettings {
            index_dir: String::new(),
            embedder: "local".into(),
            embedding_model: String::new(),
            embedding_dimensions: 1536,
            chunk_chars: 1000,
            chunk_overlap: 150,
            retrieval_limit: 5,
            min_relevance: agentbase_search::MIN_RELEVANCE,
            min_coverage: agentbase_search::MIN_COVERAGE,
            small_model_inline: false,
            fusion: "rrf".into(),
            auto_retrain_interval_secs: 7 * 24 * 3600,
            storage_limits: PlanLimits {
                free: 400_000,
                hobby: 33_000_000,
                standard: 33_000_000,
                pro: 33_000_000,
                enterprise: 1_000_000_000,
            },
            workspace_storage_limits: PlanLimits {
                free: 4_000_000,
                hobby: 330_000_000,
                standard: 330_000_000,
                pro: 1_000_000_000,
                enterprise: 10_000_000_000,
            },
            training_concurrency: 3,
            fetch_concurrency: 4,
            jobs_per_workspace: 2,
            embedder_nice: 10,
        }
    }
}

impl Default for CrawlerConfig {
    fn default() -> Self {
        CrawlerConfig {
            allow_private_networks: false,
            max_pages: 500,
            max_depth: 20,
            timeout_secs: 1800,
            max_concurrency: 16,
            max_frontier: 100_000,
            runs_per_workspace: 2,
            run_timeout_secs: 3600,
            sync_wait_secs: 300,
            run_max_pages: PlanLimits {
                free: 50,
                hobby: 1_000,
                standard: 10_000,
                pro: 50_000,
                enterprise: 200_000,
            },
            kv_storage_limits: PlanLimits {
                free: 50_000_000,
                hobby: 200_000_000,
                standard: 1_000_000_000,
                pro: 5_000_000_000,
                enterprise: 20_000_000_000,
            },
            dataset_storage_limits: PlanLimits {
                free: 100_000_000,
                hobby: 500_000_000,
                standard: 2_000_000_000,
                pro: 10_000_000_000,
                enterprise: 50_000_000_000,
            },
            run_retention_days: PlanLimits {
                free: 7,
                hobby: 14,
                standard: 21,
                pro: 31,
                enterprise: 31,
            },
        }
    }
}

impl Default for ExtractionSettings {
    fn default() -> Self {
        ExtractionSettings {
            worker_memory_mb: 1024,
            timeout_secs: 60,
            max_concurrent: 2,
            queue_timeout_secs: 30,
        }
    }
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            smtp_url: String::new(),
            from: "agentbase <notifications@localhost>".into(),
            check_interval_secs: 300,
        }
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            max_attempts: 8,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            timeout_secs: 10,
            poll_interval_ms: 1000,
            concurrency: 4,
            delivery_retention_days: 30,
            max_pending_per_workspace: 1_000,
        }
    }
}

impl Default for BrowserSettings {
    fn default() -> Self {
        BrowserSettings {
            enabled: true,
            executable: "/usr/bin/chromium".into(),
            max_pages: 4,
            page_memory_mb: 512,
            max_memory_mb: 2048,
            idle_secs: 300,
        }
    }
}

/// Configuration that cannot be used, naming the key and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: `{}`: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn config_err(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Command-line overrides, the last layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<SocketAddr>,
}

/// Sources for [`Settings::load`]: the file text (if any) and the environment.
pub struct Layers {
    /// (path, text) of the configuration file.
    pub file: Option<(String, String)>,
    pub env: Vec<(String, String)>,
    pub overrides: Overrides,
}

impl Layers {
    /// Reads `config` if given, else `<data_dir>/agentbase.toml` when it exists, and
    /// the process environment.
    pub fn from_system(
        data_dir: &Path,
        config: Option<&Path>,
        overrides: Overrides,
    ) -> Result<Layers, ConfigError> {
        let path = match config {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let p = data_dir.join("agentbase.toml");
                p.exists().then_some(p)
            }
        };
        let file = match path {
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    config_err(p.display().to_string(), format!("cannot read: {e}"))
                })?;
                Some((p.display().to_string(), text))
            }
            None => None,
        };
        Ok(Layers {
            file,
            env: std::env::vars().collect(),
            overrides,
        })
    }
}

const ENV_PREFIX: &str = "AGENTBASE__";

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// An environment value: TOML when it parses as a TOML value, else plain text.
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn env_layer(env: &[(String, String)]) -> Result<toml::Value, ConfigError> {
    let mut root = toml::Table::new();
    for (name, raw) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // Map keys (model and provider names) keep their case; field names, those
        // of nested tables included (`KNOWLEDGE__STORAGE_LIMITS__STANDARD`), are
        // snake_case.
        let in_map = |first: &str| {
            first.eq_ignore_ascii_case("models") || first.eq_ignore_ascii_case("providers")
        };
        let first = path.split("__").next().unwrap_or("");
        let segments: Vec<String> = path
            .split("__")
            .enumerate()
            .map(|(i, s)| {
                if i == 1 && in_map(first) && path.split("__").count() > 2 {
                    s.to_owned()
                } else {
                    s.to_ascii_lowercase()
                }
            })
            .collect();
        if segments.iter().any(String::is_empty) {
            return Err(config_err(name.clone(), "malformed variable name"));
        }
        let mut table = &mut root;
        for seg in &segments[..segments.len() - 1] {
            let entry = table
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| config_err(name.clone(), "conflicts with another variable"))?;
        }
        table.insert(segments[segments.len() - 1].clone(), env_value(raw));
    }
    Ok(toml::Value::Table(root))
}

impl Settings {
    pub fn load(layers: Layers) -> Result<Settings, ConfigError> {
        let mut value = toml::Value::try_from(Settings::default())
            .map_err(|e| config_err("(defaults)", e.to_string()))?;
        if let Some((path, text)) = &layers.file {
            let file: toml::Value = toml::from_str(text).map_err(|e| {
                config_err(path.clone(), format!("not valid TOML: {}", e.message()))
            })?;
            merge(&mut value, file);
        }
        merge(&mut value, env_layer(&layers.env)?);
        let mut settings: Settings = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            config_err(
                if key == "." { "(root)".into() } else { key },
                e.into_inner().to_string(),
            )
        })?;
        if let Some(bind) = layers.overrides.bind {
            settings.server.bind = bind;
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Values the types allow but the server cannot run with, named by their key.
    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_models()?;
        self.validate_notifications()?;
        self.validate_limits()?;
        self.validate_knowledge()?;
        self.validate_browser()
    }

    /// The rate limiter, request bodies and the database.
    fn validate_server(&self) -> Result<(), ConfigError> {
        if self.rate_limit.requests == 0 {
            return Err(config_err("rate_limit.requests", "must be at least 1"));
        }
        if self.rate_limit.window_secs == 0 {
            return Err(config_err("rate_limit.window_secs", "must be at least 1"));
        }
        if self.rate_limit.backend == LimiterBackend::Redis
            && !self.rate_limit.redis_url.starts_with("redis://")
        {
            return Err(config_err("rate_limit.redis_url", "must be a redis:// URL"));
        }
        if self.server.body_limit_bytes < 1024 {
            return Err(config_err(
                "server.body_limit_bytes",
                "must be at least 1024",
            ));
        }
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(config_err(
                "database.url",
                "must be empty, sqlite:PATH or postgres://…",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(config_err("database.max_connections", "must be at least 1"));
        }
        Ok(())
    }

    /// Every model names a provider and a price.
    fn validate_models(&self) -> Result<(), ConfigError> {
        for (name, model) in &self.models {
            if !self.providers.contains_key(&model.provider) {
                return Err(config_err(
                    format!("models.{name}.provider"),
                    format!("no provider named `{}` in [providers]", model.provider),
                ));
            }
            if !(model.credits.is_finite() && model.credits >= 0.0) {
                return Err(config_err(
                    format!("models.{name}.credits"),
                    "must be a number ≥ 0",
                ));
            }
        }
        Ok(())
    }

    /// The mail relay and its schedule.
    fn validate_notifications(&self) -> Result<(), ConfigError> {
        let smtp = &self.notifications.smtp_url;
        if !(smtp.is_empty()
            || ["smtp://", "smtps://", "smtp+starttls://"]
                .iter()
                .any(|p| smtp.starts_with(p)))
        {
            return Err(config_err(
                "notifications.smtp_url",
                "must be empty, smtp://, smtps:// or smtp+starttls://",
            ));
        }
        if self.notifications.check_interval_secs == 0 {
            return Err(config_err(
                "notifications.check_interval_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Counts, sizes and timeouts that must be at least 1 (or a floor).
    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.chat.max_tokens == 0 {
            return Err(config_err("chat.max_tokens", "must be at least 1"));
        }
        let at_least_one = [
            (
                "server.header_timeout_secs",
                self.server.header_timeout_secs,
            ),
            ("server.body_timeout_secs", self.server.body_timeout_secs),
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
            ),
            (
                "server.upload_timeout_secs",
                self.server.upload_timeout_secs,
            ),
            ("server.max_connections", self.server.max_connections as u64),
            ("chat.max_message_chars", self.chat.max_message_chars as u64),
            (
                "knowledge.training_concurrency",
                self.knowledge.training_concurrency as u64,
            ),
            (
                "knowledge.fetch_concurrency",
                self.knowledge.fetch_concurrency as u64,
            ),
            (
                "knowledge.jobs_per_workspace",
                self.knowledge.jobs_per_workspace as u64,
            ),
            (
                "crawler.max_concurrency",
                u64::from(self.crawler.max_concurrency),
            ),
            ("crawler.max_frontier", self.crawler.max_frontier as u64),
            (
                "crawler.runs_per_workspace",
                u64::from(self.crawler.runs_per_workspace),
            ),
            ("crawler.run_timeout_secs", self.crawler.run_timeout_secs),
            ("crawler.sync_wait_secs", self.crawler.sync_wait_secs),
            ("extraction.timeout_secs", self.extraction.timeout_secs),
            (
                "webhooks.max_attempts",
                u64::from(self.webhooks.max_attempts),
            ),
            ("webhooks.retry_base_secs", self.webhooks.retry_base_secs),
            ("webhooks.timeout_secs", self.webhooks.timeout_secs),
            ("webhooks.poll_interval_ms", self.webhooks.poll_interval_ms),
            ("webhooks.concurrency", self.webhooks.concurrency as u64),
            (
                "webhooks.max_pending_per_workspace",
                self.webhooks.max_pending_per_workspace,
            ),
            (
                "extraction.max_concurrent",
                self.extraction.max_concurrent as u64,
            ),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(config_err(*key, "must be at least 1"));
        }
        Ok(())
    }

    /// Extraction, chat leases and the knowledge base's retrieval and embedder.
    fn validate_knowledge(&self) -> Result<(), ConfigError> {
        if self.extraction.worker_memory_mb < 128 {
            return Err(config_err(
                "extraction.worker_memory_mb",
                "must be at least 128",
            ));
        }
        if !(0..=19).contains(&self.knowledge.embedder_nice) {
            return Err(config_err("knowledge.embedder_nice", "must be 0–19"));
        }
        if self.chat.turn_lease_secs == 0 {
            return Err(config_err("chat.turn_lease_secs", "must be at least 1"));
        }
        if !matches!(self.knowledge.fusion.as_str(), "rrf" | "normalized") {
            return Err(config_err(
                "knowledge.fusion",
                "must be \"rrf\" or \"normalized\"",
            ));
        }
        if self.knowledge.chunk_chars < 100
            || self.knowledge.chunk_overlap >= self.knowledge.chunk_chars
        {
            return Err(config_err(
                "knowledge.chunk_chars",
                "must be at least 100 and larger than knowledge.chunk_overlap",
            ));
        }
        if !(0.0..=1.0).contains(&self.knowledge.min_coverage) {
            return Err(config_err("knowledge.min_coverage", "must be 0 to 1"));
        }
        if !(1..=50).contains(&self.knowledge.retrieval_limit) {
            return Err(config_err("knowledge.retrieval_limit", "must be 1 to 50"));
        }
        if self.knowledge.auto_retrain_interval_secs < 60 {
            return Err(config_err(
                "knowledge.auto_retrain_interval_secs",
                "must be at least 60",
            ));
        }
        if !matches!(self.knowledge.embedder.as_str(), "local" | "none")
            && self
                .providers
                .get(&self.knowledge.embedder)
                .is_none_or(|p| p.kind != ProviderKind::Openai)
        {
            return Err(config_err(
                "knowledge.embedder",
                "must be \"local\", \"none\" or the name of a provider of kind \"openai\"",
            ));
        }
        Ok(())
    }

    /// The browser pool, and the default model of new agents.
    fn validate_browser(&self) -> Result<(), ConfigError> {
        if !(1..=64).contains(&self.browser.max_pages) {
            return Err(config_err("browser.max_pages", "must be 1 to 64"));
        }
        if self.browser.page_memory_mb < 64 {
            return Err(config_err("browser.page_memory_mb", "must be at least 64"));
        }
        if self.browser.max_memory_mb < 256 {
            return Err(config_err("browser.max_memory_mb", "must be at least 256"));
        }
        if !self.models.contains_key(&self.agents.default_model) {
            return Err(config_err(
                "agents.default_model",
                format!("`{}` is not a key of [models]", self.agents.default_model),
            ));
        }
        Ok(())
    }

    /// The base URL clients should use, e.g. `http://127.0.0.1:8080/api/v2`.
    pub fn base_url(&self) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{}/api/v2", self.server.bind)
        } else {
            format!("{}/api/v2", self.server.public_url.trim_end_matches('/'))
        }
    }

    pub fn monthly_credits(&self, plan: agentbase_core::Plan) -> u64 {
        use agentbase_core::Plan::*;
        match plan {
            Free => self.plans.free,
            Hobby => self.plans.hobby,
            Standard => self.plans.standard,
            Pro => self.plans.pro,
            Enterprise => self.plans.enterprise,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        overrides: Overrides,
    ) -> Result<Settings, ConfigError> {
        Settings::load(Layers {
            file: file.map(|t| ("agentbase.toml".to_owned(), t.to_owned())),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overrides,
        })
    }

    #[test]
    fn the_commented_default_file_is_exactly_the_defaults() {
        let parsed: Settings = toml::from_str(DEFAULT_CONFIG_TOML).expect("default file parses");
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn the_file_init_writes_sets_nothing_and_comments_out_each_option() {
        let written = default_config_file();
        assert_eq!(
            load(Some(&written), &[], Overrides::default()).unwrap(),
            Settings::default()
        );
        let keys = |text: &str| -> Vec<String> {
            let v: toml::Value = toml::from_str(text).unwrap();
            let mut out = Vec::new();
            for (section, table) in v.as_table().unwrap() {
                for (k, v) in table.as_table().unwrap() {
                    match v.as_table() {
                        Some(t) => out.extend(t.keys().map(|kk| format!("{section}.{k}.{kk}"))),
                        None => out.push(format!("{section}.{k}")),
                    }
                }
            }
            out
        };
        assert!(keys(&written).is_empty(), "{:?}", keys(&written));
        assert!(keys(DEFAULT_CONFIG_TOML).len() > 50);
        // Line by line it is the defaults file, its options behind a "# ".
        let body: Vec<&str> = written.lines().skip(3).collect();
        let defaults: Vec<&str> = DEFAULT_CONFIG_TOML.lines().collect();
        assert_eq!(body.len(), defaults.len());
        for (w, d) in body.iter().zip(&defaults) {
            let option = !d.starts_with('[')
                && toml::from_str::<toml::Table>(d).is_ok_and(|t| !t.is_empty());
            match option {
                true => assert_eq!(*w, format!("# {d}")),
                false => assert_eq!(w, d),
            }
        }
    }

    #[test]
    fn later_layers_win() {
        let s = load(
            Some("[server]\nbind = \"127.0.0.1:9000\"\n[rate_limit]\nrequests = 5\n"),
            &[
                ("AGENTBASE__RATE_LIMIT__REQUESTS", "7"),
                ("AGENTBASE__KNOWLEDGE__STORAGE_LIMITS__STANDARD", "1234"),
                ("AGENTBASE__LOG__FORMAT", "json"),
            ],
            Overrides {
                bind: Some("127.0.0.1:9100".parse().unwrap()),
            },
        )
        .unwrap();
        assert_eq!(s.rate_limit.requests, 7);
        assert_eq!(
            s.knowledge.storage_limits.standard, 1234,
            "a nested table's field"
        );
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.server.bind.port(), 9100);
        let s = load(
            Some("[server]\nbind = \"127.0.0.1:9000\"\n"),
            &[],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.server.bind.port(), 9000);
    }

    #[test]
    fn environment_can_add_a_model_keeping_its_case() {
        let s = load(
            None,
            &[
                ("AGENTBASE__MODELS__DeepSeek-V3__PROVIDER", "local"),
                ("AGENTBASE__MODELS__DeepSeek-V3__CREDITS", "2.5"),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.models["DeepSeek-V3"].credits, 2.5);
    }

    #[test]
    fn invalid_configuration_names_the_key_and_the_problem() {
        // (file, environment, key named in the error)
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (Some("[server]\nbind = \"nowhere\"\n"), &[], "server.bind"),
            (Some("[server]\nbnd = 1\n"), &[], "server.bnd"),
            (
                None,
                &[("AGENTBASE__RATE_LIMIT__REQUESTS", "many")],
                "rate_limit.requests",
            ),
            (
                None,
                &[("AGENTBASE__RATE_LIMIT__REQUESTS", "0")],
                "rate_limit.requests",
            ),
            (
                None,
                &[("AGENTBASE__AGENTS__DEFAULT_MODEL", "gpt-9")],
                "agents.default_model",
            ),
            (
                Some("[models.x]\nprovider = \"nope\"\ncredits = 1\n"),
                &[],
                "models.x.provider",
            ),
            (Some("not toml ["), &[], "agentbase.toml"),
            (
                None,
                &[("AGENTBASE__DATABASE__URL", "mysql://x")],
                "database.url",
            ),
        ];
        for (file, env, key) in cases {
            let err = load(*file, env, Overrides::default()).expect_err(key);
            assert_eq!(err.key, *key, "{err}");
            assert!(!err.problem.is_empty());
            assert!(err.to_string().contains(key));
        }
    }
}
