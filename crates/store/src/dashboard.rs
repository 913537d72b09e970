//! The dashboard's record: the operator password hash, sign-in sessions, and
//! credit usage grouped for the usage chart.

use agentbase_core::{Millis, Result};
use sqlx::Row;

use crate::{Store, db_err};

const ADMIN_PASSWORD: &str = "admin_password_hash";
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq)]
pub struct DashboardSession {
    /// SHA-256 hex of the cookie token.
    pub id: String,
    pub csrf_token: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// The member signed in; `None` for the instance administrator.
    pub member_id: Option<String>,
}

/// Credits spent on one UTC day by one agent with one model.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub agent_id: String,
    pub model: String,
    pub credits: f64,
    pub responses: i64,
}

/// The insert of a session row (also run inside the transaction that accepts an
/// invitation).
pub(crate) fn insert_session_query(
    s: &DashboardSession,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(
        "INSERT INTO dashboard_sessions (id, csrf_token, created_at, expires_at, member_id) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&s.id)
    .bind(&s.csrf_token)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(&s.member_id)
}

impl Store {
    pub async fn admin_password_hash(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM instance_settings WHERE name = $1")
            .bind(ADMIN_PASSWORD)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get("value").map_err(db_err)).transpose()
    }

    /// Sets the operator password hash and ends every session signed in with the
    /// old password, in one transaction.
    pub async fn set_admin_password_hash(&self, hash: &str) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO instance_settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(ADMIN_PASSWORD)
        .bind(hash)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Members' sessions are theirs: a new operator password ends only the
        // administrator's.
        sqlx::query("DELETE FROM dashboard_sessions WHERE member_id IS NULL")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// Sets the hash only when none is set yet; false when one already was (two
    /// nodes starting together keep the first).
    pub async fn init_admin_password_hash(&self, hash: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO instance_settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(ADMIN_PASSWORD)
        .bind(hash)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a new session and drops expired ones.
    pub async fn insert_session(&self, s: &DashboardSession) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
            .bind(s.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        insert_session_query(s)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// The session, when it exists and has not expired at `now`.
    pub async fn session(&self, id: &str, now: Millis) -> Result<Option<DashboardSession>> {
        let row = sqlx::query(
            "SELECT id, csrf_token, created_at, expires_at, member_id FROM dashboard_sessions \
             WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(DashboardSession {
                id: r.try_get("id").map_err(db_err)?,
                csrf_token: r.try_get("csrf_token").map_err(db_err)?,
                created_at: r.try_get("created_at").map_err(db_err)?,
                expires_at: r.try_get("expires_at").map_err(db_err)?,
                member_id: r.try_get("member_id").map_err(db_err)?,
            })
        })
        .transpose()
    }

    pub async fn delete_session(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// The workspace's credit ledger since `since`, summed per UTC day, agent and
    /// model (oldest day first).
    pub async fn usage(&self, workspace_id: &str, since: Millis) -> Result<Vec<UsageRow>> {
        let rows = sqlx::query(&format!(
            "SELECT created_at / {DAY_MS} AS day, agent_id, model, SUM(credits) AS credits, \
             COUNT(*) AS responses FROM credit_ledger \
             WHERE workspace_id = $1 AND created_at >= $2 \
             GROUP BY created_at / {DAY_MS}, agent_id, model ORDER BY day, agent_id, model"
        ))
        .bind(workspace_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    day: r.try_get("day").map_err(db_err)?,
                    agent_id: r.try_get("agent_id").map_err(db_err)?,
                    model: r.try_get("model").map_err(db_err)?,
                    credits: r.try_get("credits").map_err(db_err)?,
                    responses: r.try_get("responses").map_err(db_err)?,
                })
            })
            .collect()
    }
}
