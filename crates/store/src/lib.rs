//! The system of record. The only crate with SQL: one set of portable queries run
//! through `sqlx::Any` on SQLite (the embedded default, WAL) or PostgreSQL (scale-out),
//! and one list of migrations applied to either.

#![forbid(unsafe_code)]

mod apify_webhooks;
mod chat;
mod contacts;
mod crawl_runs;
mod dashboard;
mod helpdesk;
mod knowledge;
mod leads;
mod members;
mod migrate;
mod notifications;
mod ops;
mod retention;
mod rows;
mod run_webhooks;
mod search;
mod webhooks;

use std::str::FromStr;
use std::sync::Once;

use agentbase_core::{Agent, ApiKey, Cursor, Error, Millis, Plan, Result, Workspace};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

pub use chat::{ConversationFilter, NewTurn, TurnLease};
pub use contacts::VisitorIdentity;
pub use crawl_runs::MAX_BYTES_PER_READ;
pub use dashboard::{DashboardSession, UsageRow};
pub use helpdesk::TicketWrite;
pub use knowledge::{JobKinds, SourceFilter, TrainingSwitch};
pub use members::{Joined, NewLink, NewMember, OpenLink};
pub use migrate::MIGRATIONS;
pub use ops::{RecordCounts, SchemaState, record_counts, schema_state, snapshot_sqlite};
pub use run_webhooks::RunDelivery;
pub use search::ConversationSearch;
pub use webhooks::{AttemptOutcome, ClaimedDelivery};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    /// Reads.
    pub(crate) pool: AnyPool,
    /// Writes. On SQLite one connection, so this process's writers queue here in
    /// order instead of busy-waiting on SQLite's file lock; on PostgreSQL the same
    /// pool as reads.
    pub(crate) writer: AnyPool,
    backend: Backend,
    /// Alive while any clone of this store is: the SQLite checkpointer stops when
    /// it can no longer upgrade its weak handle.
    _alive: std::sync::Arc<()>,
}

pub(crate) fn db_err(e: sqlx::Error) -> Error {
    Error::Storage(e.to_string())
}

pub(crate) fn install_drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

/// Opens a connection pool, creating the SQLite file when missing, and applies the
/// migrations.
pub async fn open(url: &str, max_connections: u32) -> Result<Store> {
    install_drivers();

    let backend = if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Backend::Postgres
    } else {
        return Err(Error::invalid(
            "database.url",
            "must start with sqlite: or postgres:",
        ));
    };
    let url = match backend {
        Backend::Sqlite if !url.contains("mode=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        }
        _ => url.to_owned(),
    };
    let options = AnyPoolOptions::new().max_connections(max_connections.max(1));
    let (pool, writer) = match backend {
        Backend::Sqlite => {
            let writer = sqlite_options(AnyPoolOptions::new().max_connections(1), true)
                .connect(&url)
                .await
                .map_err(db_err)?;
            // WAL lets readers run beside the one writer and persists in the file.
            // sqlx already turns foreign keys on and sets a 5 s busy timeout per
            // connection (still used when another process, such as the CLI, writes).
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&writer)
                .await
                .map_err(db_err)?;
            let pool = sqlite_options(options, false)
                .connect(&url)
                .await
                .map_err(db_err)?;
            (pool, writer)
        }
        Backend::Postgres => {
            let pool = options.connect(&url).await.map_err(db_err)?;
            (pool.clone(), pool)
        }
    };
    let store = Store {
        pool,
        writer,
        backend,
        _alive: std::sync::Arc::new(()),
    };
    migrate::run(&store.writer, backend).await?;
    if backend == Backend::Sqlite {
        spawn_checkpointer(&store);
    }
    Ok(store)
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL
/// pages, fsyncs included, so every few hundred turns one request waited for it.
/// The writer has it off (see [`sqlite_options`]); this task checkpoints from a
/// reader connection instead, PASSIVE (never blocking the writer or readers).
fn spawn_checkpointer(store: &Store) {
    let alive = std::sync::Arc::downgrade(&store._alive);
    let pool = store.pool.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.upgrade().is_none() || pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint failed; retrying next tick");
            }
        }
    });
}

/// What the WAL file is cut back to once checkpointed (64 MB).
const WAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 67108864";

/// In WAL mode NORMAL syncs at checkpoints, not on every commit: a committed
/// transaction survives a crash or kill -9 of the process (not a power cut), and
/// writes stop waiting on fsync.
///
/// No ping before each checkout: an embedded database has no link to go stale, and
/// the ping is a round trip to the connection's thread that, on the writer, holds
/// the one writer for it (sqlx still pings on release, which catches a connection
/// left mid-transaction).
///
/// The writer does not checkpoint the WAL as it commits: [`spawn_checkpointer`] does
/// that beside it.
fn sqlite_options(options: AnyPoolOptions, writer: bool) -> AnyPoolOptions {
    options
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                // A large deletion grows the WAL for a moment (gigabytes for
                // thousands of expired runs); once checkpointed, the file is cut
                // back to this instead of keeping that size until shutdown.
                conn.execute(WAL_SIZE_LIMIT).await?;
                if writer {
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                }
                Ok(())
            })
        })
}

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
    pub total: i64,
}

pub(crate) fn bool_int(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Store {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    // ---- workspaces -------------------------------------------------------------

    pub async fn insert_workspace(&self, w: &Workspace) -> Result<()> {
        sqlx::query("INSERT INTO workspaces (id, name, plan, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&w.id)
            .bind(&w.name)
            .bind(w.plan.as_str())
            .bind(w.created_at)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        let row = sqlx::query("SELECT id, name, plan, created_at FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::workspace).transpose()
    }

    pub async fn workspaces(&self) -> Result<Vec<Workspace>> {
        let rows = sqlx::query(
            "SELECT id, name, plan, created_at FROM workspaces ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(rows::workspace).collect()
    }

    /// Returns false when no such workspace exists.
    pub async fn set_plan(&self, id: &str, plan: Plan) -> Result<bool> {
        let done = sqlx::query("UPDATE workspaces SET plan = $1 WHERE id = $2")
            .bind(plan.as_str())
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    // ---- API keys ---------------------------------------------------------------

    pub async fn insert_key(&self, k: &ApiKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, name, prefix, secret_hash, created_at, \
             expires_at, revoked_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&k.id)
        .bind(&k.workspace_id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.secret_hash)
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(k.last_used_at)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The key and its workspace's plan in one round trip: the per-request auth read.
    pub async fn key_for_auth(&self, id: &str) -> Result<Option<(ApiKey, Plan)>> {
        let row = sqlx::query(
            "SELECT k.id, k.workspace_id, k.name, k.prefix, k.secret_hash, k.created_at, \
             k.expires_at, k.revoked_at, k.last_used_at, w.plan \
             FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let key = rows::api_key(&row)?;
        let plan: String = row.try_get("plan").map_err(db_err)?;
        let plan = Plan::from_str(&plan).map_err(|e| Error::Storage(e.to_string()))?;
        Ok(Some((key, plan)))
    }

    pub async fn keys(&self, workspace_id: Option<&str>) -> Result<Vec<ApiKey>> {
        let sql = "SELECT id, workspace_id, name, prefix, secret_hash, created_at, expires_at, \
                   revoked_at, last_used_at FROM api_keys";
        let rows = match workspace_id {
            Some(ws) => {
                sqlx::query(&format!(
                    "{sql} WHERE workspace_id = $1 ORDER BY created_at, id"
                ))
                .bind(ws)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!("{sql} ORDER BY created_at, id"))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(db_err)?;
        rows.iter().map(rows::api_key).collect()
    }

    /// Revokes a key; false when there is no such key or it was already revoked.
    pub async fn revoke_key(&self, id: &str, now: Millis) -> Result<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn touch_key(&self, id: &str, now: Millis) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    // ---- agents -----------------------------------------------------------------

    pub async fn insert_agent(&self, a: &Agent) -> Result<()> {
        sqlx::query(
            "INSERT INTO agents (id, workspace_id, name, instructions, model, temp, visibility, \
             auto_retrain, allowed_domains, suggested_messages, initial_messages, credit_limit, \
             ip_limit, ip_timeframe, ip_message, status, size, created_at, updated_at, \
             last_trained_at, last_message_at, actions, channel_instructions, \
             notifications_settings, spam_settings, voice_settings, blocked_countries, styles, \
             lead_form, quote_fallback) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, \
             $29, $30)",
        )
        .bind(&a.id)
        .bind(&a.workspace_id)
        .bind(&a.name)
        .bind(&a.instructions)
        .bind(&a.model)
        .bind(a.temp)
        .bind(a.visibility.as_str())
        .bind(bool_int(a.auto_retrain))
        .bind(a.allowed_domains.as_ref().map(json_text))
        .bind(a.suggested_messages.as_ref().map(json_text))
        .bind(json_text(&a.initial_messages))
        .bind(a.credit_limit)
        .bind(i64::from(a.ip_rate_limits.limit))
        .bind(i64::from(a.ip_rate_limits.timeframe_secs))
        .bind(&a.ip_rate_limits.message)
        .bind(a.status.as_str())
        .bind(a.size)
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(a.last_trained_at)
        .bind(a.last_message_at)
        .bind(rows::actions_json(&a.actions))
        .bind(a.channel_instructions.as_ref().map(json_text))
        .bind(a.notifications.as_ref().map(json_text))
        .bind(a.spam.as_ref().map(rows::spam_json))
        .bind(a.voice.as_ref().map(json_text))
        .bind(a.blocked_countries.as_ref().map(json_text))
        .bind(a.styles.as_ref().map(json_text))
        .bind(a.lead_form.as_ref().map(json_text))
        .bind(a.quote_fallback.map(bool_int))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Writes every setting back (not the training state, which training owns).
    /// Scoped by workspace like every read.
    pub async fn update_agent(&self, a: &Agent) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE agents SET name = $1, instructions = $2, model = $3, temp = $4, \
             visibility = $5, auto_retrain = $6, allowed_domains = $7, suggested_messages = $8, \
             initial_messages = $9, credit_limit = $10, ip_limit = $11, ip_timeframe = $12, \
             ip_message = $13, updated_at = $14, last_message_at = $15, actions = $16, \
             next_retrain_at = $17, channel_instructions = $18, notifications_settings = $19, \
             spam_settings = $20, voice_settings = $21, blocked_countries = $22, styles = $23, \
             lead_form = $24, quote_fallback = $25 WHERE id = $26 AND workspace_id = $27",
        )
        .bind(&a.name)
        .bind(&a.instructions)
        .bind(&a.model)
        .bind(a.temp)
        .bind(a.visibility.as_str())
        .bind(bool_int(a.auto_retrain))
        .bind(a.allowed_domains.as_ref().map(json_text))
        .bind(a.suggested_messages.as_ref().map(json_text))
        .bind(json_text(&a.initial_messages))
        .bind(a.credit_limit)
        .bind(i64::from(a.ip_rate_limits.limit))
        .bind(i64::from(a.ip_rate_limits.timeframe_secs))
        .bind(&a.ip_rate_limits.message)
        .bind(a.updated_at)
        .bind(a.last_message_at)
        .bind(rows::actions_json(&a.actions))
        .bind(a.next_retrain_at)
        .bind(a.channel_instructions.as_ref().map(json_text))
        .bind(a.notifications.as_ref().map(json_text))
        .bind(a.spam.as_ref().map(rows::spam_json))
        .bind(a.voice.as_ref().map(json_text))
        .bind(a.blocked_countries.as_ref().map(json_text))
        .bind(a.styles.as_ref().map(json_text))
        .bind(a.lead_form.as_ref().map(json_text))
        .bind(a.quote_fallback.map(bool_int))
        .bind(&a.id)
        .bind(&a.workspace_id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn agent(&self, workspace_id: &str, id: &str) -> Result<Option<Agent>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM agents WHERE id = $1 AND workspace_id = $2",
            rows::AGENT_COLUMNS
        ))
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::agent).transpose()
    }

    /// An agent by id alone, in whichever workspace holds it: only for the public
    /// widget, which has no key (and so no workspace) to filter on.
    pub async fn agent_by_id(&self, id: &str) -> Result<Option<Agent>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM agents WHERE id = $1",
            rows::AGENT_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::agent).transpose()
    }

    pub async fn delete_agent(&self, workspace_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM agents WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// How many agents the workspace has.
    pub async fn agent_count(&self, workspace_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM agents WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        row.try_get::<i64, _>("n").map_err(db_err)
    }

    /// Newest first, keyset-paginated on (created_at, id).
    pub async fn agents(
        &self,
        workspace_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Agent>> {
        let mut w = chat::Where::new();
        let p = w.arg(chat::Arg::Text(workspace_id.to_owned()));
        w.push(format!("workspace_id = {p}"));
        chat::keyset_page(
            &self.pool,
            ("agents", rows::AGENT_COLUMNS),
            w,
            "created_at",
            after,
            limit.max(1),
            rows::agent,
        )
        .await
    }
}
