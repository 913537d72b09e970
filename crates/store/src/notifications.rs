//! Daily notification mails: which agents want them, and the claim that makes one
//! node send each (agent, kind, day) once.

use agentbase_core::{Agent, Millis, Result};

use crate::{Store, db_err, rows};

impl Store {
    /// Agents with notification settings (active or not: the caller reads them).
    pub async fn agents_with_notifications(&self) -> Result<Vec<Agent>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM agents WHERE notifications_settings IS NOT NULL ORDER BY id",
            rows::AGENT_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(rows::agent).collect()
    }

    /// Claims the sending of `kind` for `agent_id` on UTC day `day` (days since the
    /// epoch): `true` for exactly one caller, on any node.
    pub async fn claim_notification(
        &self,
        agent_id: &str,
        kind: &str,
        day: i64,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO notification_sends (agent_id, kind, day, sent_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(agent_id)
        .bind(kind)
        .bind(day)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a claim back (the mail could not be sent), so a later check retries.
    pub async fn release_notification(&self, agent_id: &str, kind: &str, day: i64) -> Result<()> {
        sqlx::query(
            "DELETE FROM notification_sends WHERE agent_id = $1 AND kind = $2 AND day = $3",
        )
        .bind(agent_id)
        .bind(kind)
        .bind(day)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}
