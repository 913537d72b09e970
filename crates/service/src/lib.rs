//! The use cases, callable from the CLI and from tests without HTTP; the server
//! crate is a thin layer over [`App`]. `App` is the composition root: it opens the
//! record and the limiter and builds the services, which own their state and caches
//! and are reached through its accessors (`accounts`, `agents`, `credits`,
//! `sessions`, `crawl_runs`, `knowledge`, `conversations`, `widget`, `helpdesk`,
//! `contacts`, `members`, `webhooks`, `notifier`). `App` itself has no use cases.

#![forbid(unsafe_code)]

pub mod accounts;
pub mod agent_setup;
pub mod agents;
pub mod backup;
pub mod chat;
pub mod contacts;
pub mod conversation_search;
pub mod crawl_runs;
pub mod credits;
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
mod striped;
mod ttl_cache;
pub mod webhooks;
pub mod website;
pub mod widget;

use std::path::Path;
use std::sync::Arc;

use agentbase_core::{Clock, Error, Millis, Result};
use agentbase_limiter::{Limiter, MemoryLimiter, RedisLimiter};
use agentbase_store::Store;

pub use accounts::{AUTH_CACHE_MS, Accounts, AuthError, Bootstrap, Principal};
pub use agent_setup::{AgentCreated, PendingStep};
pub use agentbase_limiter::LimiterError;
pub use agentbase_store::{
    ConversationFilter, ConversationSearch, DashboardSession, OpenLink, Page, SourceFilter,
    UsageRow,
};
pub use agents::{AGENT_CACHE_MS, Agents};
pub use knowledge::{Retrieved, group_by_page};
pub use settings::{ConfigError, Layers, LimiterBackend, LogFormat, Overrides, Settings};

/// How often this node looks for crawl runs whose node stopped.
const ORPHAN_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// How often a node deletes what is past its retention ([`App::apply_retention`]).
const RETENTION_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub runs: u64,
    pub deliveries: u64,
}

/// The services and the shared pieces they were built from; reached through the
/// accessors (`app.accounts()`, `app.knowledge()`, …).
pub struct App {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    knowledge: Arc<knowledge::Knowledge>,
    accounts: Accounts,
    agents: Arc<Agents>,
    credits: Arc<credits::Credits>,
    crawl_runs: Arc<crawl_runs::CrawlRuns>,
    sessions: Arc<dashboard::Sessions>,
    contacts: Arc<contacts::Contacts>,
    members: Arc<members::Members>,
    helpdesk: helpdesk::Helpdesk,
    webhooks: Arc<webhooks::Webhooks>,
    notifier: Arc<notifications::Notifier>,
    conversations: Arc<chat::Conversations>,
    widget: Arc<widget::Widget>,
}

/// The database URL the settings name, or the embedded default in `data_dir`.
pub fn database_url(settings: &Settings, data_dir: &Path) -> String {
    if settings.database.url.is_empty() {
        format!("sqlite://{}", data_dir.join("agentbase.db").display())
    } else {
        settings.database.url.clone()
    }
}

/// The record, clock, settings and limiter the services are built from.
struct Shared {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    limiter: Arc<Limiter>,
}

/// The services that deal with people: visitors, their conversations, and the
/// members who answer them.
struct People {
    sessions: Arc<dashboard::Sessions>,
    contacts: Arc<contacts::Contacts>,
    conversations: Arc<chat::Conversations>,
    widget: Arc<widget::Widget>,
    members: Arc<members::Members>,
    helpdesk: helpdesk::Helpdesk,
}

impl Shared {
    /// Chat, the widget and the helpdesk, over `Handoffs` (which chat and the
    /// helpdesk share, so neither calls the other).
    fn people(
        &self,
        agents: &Arc<Agents>,
        knowledge: &Arc<knowledge::Knowledge>,
        credits: &Arc<credits::Credits>,
        providers: &models::Providers,
    ) -> People {
        let (store, clock, settings) = (&self.store, &self.clock, &self.settings);
        let sessions = Arc::new(dashboard::Sessions::new(
            store.clone(),
            clock.clone(),
            self.limiter.clone(),
        ));
        let contacts = Arc::new(contacts::Contacts::new(
            store.clone(),
            clock.clone(),
            agents.clone(),
        ));
        let handoffs = Arc::new(helpdesk::Handoffs::new(
            store.clone(),
            clock.clone(),
            agents.clone(),
        ));
        let conversations = Arc::new(chat::Conversations::new(chat::Parts {
            store: store.clone(),
            clock: clock.clone(),
            settings: settings.clone(),
            models: models::Registry::build(settings, providers),
            knowledge: knowledge.clone(),
            agents: agents.clone(),
            credits: credits.clone(),
            handoffs: handoffs.clone(),
            contacts: contacts.clone(),
        }));
        let widget = Arc::new(widget::Widget::new(
            store.clone(),
            clock.clone(),
            self.limiter.clone(),
            settings.clone(),
            agents.clone(),
            conversations.clone(),
        ));
        let members = Arc::new(members::Members::new(
            store.clone(),
            clock.clone(),
            settings.clone(),
            sessions.clone(),
        ));
        let helpdesk = helpdesk::Helpdesk::new(helpdesk::HelpdeskParts {
            store: store.clone(),
            clock: clock.clone(),
            agents: agents.clone(),
            members: members.clone(),
            handoffs,
            conversations: conversations.clone(),
            widget: widget.clone(),
        });
        People {
            sessions,
            contacts,
            conversations,
            widget,
            members,
            helpdesk,
        }
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
        let shared = Shared {
            store,
            clock,
            settings: Arc::new(settings),
            limiter: Arc::new(limiter),
        };
        Ok(App::assemble(shared, index_dir, providers))
    }

    /// Builds the services, each over the shared pieces and the services it uses.
    fn assemble(s: Shared, index_dir: std::path::PathBuf, providers: &models::Providers) -> App {
        let (store, clock, settings) = (&s.store, &s.clock, &s.settings);
        let agents = Arc::new(Agents::new(store.clone(), clock.clone(), settings.clone()));
        let knowledge = Arc::new(knowledge::Knowledge::new(
            index_dir,
            store.clone(),
            clock.clone(),
            settings.clone(),
            agents.clone(),
        ));
        let crawl_runs = crawl_runs::CrawlRuns::new(
            store.clone(),
            clock.clone(),
            settings.clone(),
            knowledge.node().to_owned(),
        );
        let credits = Arc::new(credits::Credits::new(
            store.clone(),
            clock.clone(),
            settings.clone(),
        ));
        let people = s.people(&agents, &knowledge, &credits, providers);
        App {
            crawl_runs: Arc::new(crawl_runs),
            accounts: Accounts::new(store.clone(), clock.clone(), s.limiter.clone(), settings),
            webhooks: Arc::new(webhooks::Webhooks::new(
                store.clone(),
                clock.clone(),
                settings.clone(),
                agents.clone(),
            )),
            notifier: Arc::new(notifications::Notifier::new(
                store.clone(),
                clock.clone(),
                settings.clone(),
            )),
            agents,
            credits,
            knowledge,
            contacts: people.contacts,
            conversations: people.conversations,
            widget: people.widget,
            helpdesk: people.helpdesk,
            members: people.members,
            sessions: people.sessions,
            store: s.store,
            clock: s.clock,
            settings: s.settings,
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Workspaces, API keys, authentication and the per-key rate limit.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Agents and their settings.
    pub fn agents(&self) -> &Agents {
        &self.agents
    }

    /// Message credits: the allowance checks and usage figures.
    pub fn credits(&self) -> &credits::Credits {
        &self.credits
    }

    /// Conversations and the chat turn: chat (API, dashboard and v1), retries,
    /// tool results, and listing, reading, pausing, rating and searching
    /// conversations.
    pub fn conversations(&self) -> &Arc<chat::Conversations> {
        &self.conversations
    }

    /// The public chat widget: its agent, visitors, turns and lead forms.
    pub fn widget(&self) -> &Arc<widget::Widget> {
        &self.widget
    }

    /// Tickets, handoff to people and back, and live messages.
    pub fn helpdesk(&self) -> &helpdesk::Helpdesk {
        &self.helpdesk
    }

    /// The operator's and members' dashboard sign-ins.
    pub fn sessions(&self) -> &dashboard::Sessions {
        &self.sessions
    }

    /// Contacts, their custom attributes and identity-verification secrets.
    pub fn contacts(&self) -> &Arc<contacts::Contacts> {
        &self.contacts
    }

    /// Workspace members: invitations, links, removal and sign-in.
    pub fn members(&self) -> &Arc<members::Members> {
        &self.members
    }

    /// Webhook endpoints and their deliveries.
    pub fn webhooks(&self) -> &Arc<webhooks::Webhooks> {
        &self.webhooks
    }

    /// The daily summary mails.
    pub fn notifier(&self) -> &Arc<notifications::Notifier> {
        &self.notifier
    }

    /// Website crawler runs (Apify's run, dataset and key-value store API).
    pub fn crawl_runs(&self) -> &Arc<crawl_runs::CrawlRuns> {
        &self.crawl_runs
    }

    /// Crawl runs render pages with `renderer` (`crawlerType` `playwright:*`).
    pub fn with_renderer(self, renderer: Arc<dyn agentbase_crawler::browser::Renderer>) -> Self {
        self.crawl_runs.set_renderer(renderer);
        self
    }

    /// The knowledge base: sources, training, snapshots and retrieval.
    pub fn knowledge(&self) -> &Arc<knowledge::Knowledge> {
        &self.knowledge
    }

    /// Uses `embedder` for training and retrieval. Called while building the app,
    /// before it is shared.
    pub fn with_embedder(self, embedder: Arc<dyn agentbase_core::model::Embedder>) -> Self {
        self.knowledge.set_embedder(embedder);
        self
    }

    /// Fetches website sources with `fetcher`. Called while building the app,
    /// before it is shared.
    pub fn with_fetcher(self, fetcher: Arc<dyn knowledge::SiteFetcher>) -> Self {
        self.knowledge.set_fetcher(fetcher);
        self
    }

    /// Starts this node's background work: the training worker (with the
    /// auto-retrain schedule), the check for crawl runs orphaned by a stopped
    /// node, email notifications and webhook deliveries. Returns the training
    /// worker's task.
    pub fn start_workers(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.notifier.start();
        self.webhooks.start_worker();
        let runs = self.crawl_runs.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = runs.fail_orphaned_runs().await {
                    tracing::warn!(error = %e, "orphaned crawl run check failed");
                }
                tokio::time::sleep(ORPHAN_CHECK).await;
            }
        });
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                match app.apply_retention().await {
                    Ok(Expired {
                        runs: 0,
                        deliveries: 0,
                    }) => {}
                    Ok(Expired { runs, deliveries }) => {
                        tracing::info!(
                            runs,
                            deliveries,
                            "expired crawl runs and deliveries deleted"
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "retention pass failed"),
                }
                tokio::time::sleep(RETENTION_CHECK).await;
            }
        });
        self.knowledge.start_worker()
    }

    /// Deletes what is past its retention: ended crawl runs (with their storages)
    /// past `crawler.run_retention_days`, finished webhook deliveries past
    /// `webhooks.delivery_retention_days`. Every node runs it hourly; two at once
    /// delete each row once.
    pub async fn apply_retention(&self) -> Result<Expired> {
        Ok(Expired {
            runs: self.crawl_runs.expire_runs().await?,
            deliveries: self.webhooks.prune_deliveries().await?,
        })
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
    pub fn with_extractor(self, extractor: extractor::Extractor) -> Self {
        self.knowledge.set_extractor(extractor);
        self
    }

    pub fn extractor(&self) -> &extractor::Extractor {
        self.knowledge.extractor()
    }
}
