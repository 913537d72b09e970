//! A small migrator over `sqlx::Any`: numbered SQL files compiled into the binary,
//! applied in order, each recorded in `schema_migrations`. On PostgreSQL an advisory
//! lock makes nodes that start together take turns.

use sqlx::{AnyPool, Row};

use crate::{Backend, db_err};
use agentbase_core::{Error, Result};

pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/0001_foundation.sql"),
    ),
    (
        2,
        "conversations",
        include_str!("../migrations/0002_conversations.sql"),
    ),
    (3, "actions", include_str!("../migrations/0003_actions.sql")),
    (
        4,
        "agent_credits",
        include_str!("../migrations/0004_agent_credits.sql"),
    ),
    (
        5,
        "workspace_credits",
        include_str!("../migrations/0005_workspace_credits.sql"),
    ),
    (
        6,
        "knowledge",
        include_str!("../migrations/0006_knowledge.sql"),
    ),
    (
        7,
        "crawl_runs",
        include_str!("../migrations/0007_crawl_runs.sql"),
    ),
    (
        8,
        "dashboard",
        include_str!("../migrations/0008_dashboard.sql"),
    ),
    (
        10,
        "clients",
        include_str!("../migrations/0010_clients.sql"),
    ),
    (
        12,
        "quote_fallback",
        include_str!("../migrations/0012_quote_fallback.sql"),
    ),
    (
        13,
        "helpdesk",
        include_str!("../migrations/0013_helpdesk.sql"),
    ),
    (
        14,
        "contacts",
        include_str!("../migrations/0014_contacts.sql"),
    ),
    (
        15,
        "members",
        include_str!("../migrations/0015_members.sql"),
    ),
    (
        16,
        "handoff",
        include_str!("../migrations/0016_handoff.sql"),
    ),
    (
        17,
        "member_consent",
        include_str!("../migrations/0017_member_consent.sql"),
    ),
    (
        18,
        "kv_sizes",
        include_str!("../migrations/0018_kv_sizes.sql"),
    ),
    (
        19,
        "run_webhooks",
        include_str!("../migrations/0019_run_webhooks.sql"),
    ),
    (
        20,
        "dataset_sizes",
        include_str!("../migrations/0020_dataset_sizes.sql"),
    ),
    (
        21,
        "retention",
        include_str!("../migrations/0021_retention.sql"),
    ),
    (
        22,
        "apify_webhooks",
        include_str!("../migrations/0022_apify_webhooks.sql"),
    ),
];

const LOCK_ID: i64 = 0x6167_656e_7462;

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    let mut conn = pool.acquire().await.map_err(db_err)?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LOCK_ID)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    let result = apply(&mut conn).await;
    if backend == Backend::Postgres {
        // Released explicitly: the connection goes back to the pool, not away.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_ID)
            .execute(&mut *conn)
            .await;
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let rows = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let applied: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    if let Some(newest) = applied.iter().max() {
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if *newest > known {
            return Err(Error::Storage(format!(
                "the database is at schema version {newest}, newer than this binary knows ({known})"
            )));
        }
    }
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db_err)?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(*version)
        .bind(*name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

fn now_ms() -> i64 {
    use agentbase_core::Clock;
    agentbase_core::SystemClock.now_ms()
}
