//! The repository suite. Every test runs against SQLite (a temp file) and against
//! PostgreSQL (a fresh database on the server named by AGENTBASE_TEST_POSTGRES_URL).
//! When that variable is missing the PostgreSQL half is skipped with a note, except
//! under AGENTBASE_TEST_REQUIRE_SERVICES=1 (`scripts/test`, CI), where it fails.

mod agents;
mod chat;
mod contacts;
mod crawl_runs;
mod dashboard;
mod keys;
mod knowledge;
mod members;
mod migrations;
mod ops;
mod webhooks;

use agentbase_core::{
    Agent, AgentStatus, ApiKey, IpRateLimits, Plan, Visibility, Workspace, ids, keys as key_gen,
};
use agentbase_store::Store;
use sqlx::Connection;

pub struct Backend {
    pub name: &'static str,
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

impl Backend {
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((admin_url, db)) = self.pg_cleanup
            && let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("AGENTBASE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("AGENTBASE_TEST_REQUIRE_SERVICES").is_err(),
                "AGENTBASE_TEST_POSTGRES_URL is required when AGENTBASE_TEST_REQUIRE_SERVICES is set"
            );
            eprintln!("note: AGENTBASE_TEST_POSTGRES_URL unset; PostgreSQL half skipped");
            None
        }
    }
}

/// A fresh, migrated database on each engine.
pub async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut out = vec![Backend {
        name: "sqlite",
        store: agentbase_store::open(&url, 4).await.expect("open sqlite"),
        url,
        _dir: Some(dir),
        pg_cleanup: None,
    }];
    if let Some(admin) = postgres_admin_url() {
        let db = format!("agentbase_t_{}", ids::alphanumeric(12).to_ascii_lowercase());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&mut conn)
            .await
            .expect("create db");
        conn.close().await.ok();
        let url = match admin.rfind('/') {
            Some(i) => format!("{}/{db}", &admin[..i]),
            None => panic!("postgres URL needs a database path"),
        };
        out.push(Backend {
            name: "postgres",
            store: agentbase_store::open(&url, 4).await.expect("open postgres"),
            url,
            _dir: None,
            pg_cleanup: Some((admin, db)),
        });
    }
    out
}

pub fn workspace(plan: Plan, created_at: i64) -> Workspace {
    Workspace {
        id: ids::workspace_id(),
        name: "w".into(),
        plan,
        created_at,
    }
}

pub fn api_key(workspace_id: &str) -> (ApiKey, String) {
    let g = key_gen::generate();
    (
        ApiKey {
            id: g.id,
            workspace_id: workspace_id.into(),
            name: "k".into(),
            prefix: g.prefix,
            secret_hash: g.secret_hash,
            created_at: 1,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        },
        g.plaintext,
    )
}

pub fn agent(workspace_id: &str, created_at: i64) -> Agent {
    Agent {
        id: ids::agent_id(),
        workspace_id: workspace_id.into(),
        name: format!("agent {created_at}"),
        instructions: "be brief".into(),
        model: "auto".into(),
        temp: 0.25,
        visibility: Visibility::Private,
        auto_retrain: false,
        allowed_domains: None,
        suggested_messages: None,
        initial_messages: vec!["hi".into()],
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
        created_at,
        updated_at: created_at,
        last_trained_at: None,
        last_message_at: None,
        kb_version: 0,
        next_retrain_at: None,
        quote_fallback: None,
    }
}
