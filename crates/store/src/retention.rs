//! Ageing out what nobody deletes: ended crawl runs past their plan's retention
//! (the service deletes each with its storages, as `DELETE` does), and finished
//! webhook deliveries of both outboxes past theirs.

use agentbase_core::crawl_run::CrawlRun;
use agentbase_core::{Millis, Plan, Result};

use crate::crawl_runs::{RUN_COLUMNS, run};
use crate::{Store, db_err};

impl Store {
    /// Up to `limit` runs of workspaces on `plan` that ended before `before`,
    /// oldest first. Read without their input (the deletion does not need it).
    pub async fn expired_runs(
        &self,
        plan: Plan,
        before: Millis,
        limit: i64,
    ) -> Result<Vec<CrawlRun>> {
        let columns = RUN_COLUMNS.replace("input,", "CAST('null' AS TEXT) AS input,");
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM crawl_runs WHERE finished_at < $1 AND status IN \
             ('SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED') AND workspace_id IN \
             (SELECT id FROM workspaces WHERE plan = $2) ORDER BY finished_at LIMIT $3"
        ))
        .bind(before)
        .bind(plan.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(run).collect()
    }

    /// Deletes up to `limit` deliveries of each outbox that finished (delivered or
    /// failed) before `before`, with their attempts; how many went.
    pub async fn prune_deliveries(&self, before: Millis, limit: i64) -> Result<u64> {
        let finished = "SELECT id FROM {table} WHERE finished_at < $1 AND state <> 'pending' \
                        ORDER BY finished_at LIMIT $2";
        let agents = finished.replace("{table}", "webhook_deliveries");
        let runs = finished.replace("{table}", "run_webhook_deliveries");
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let attempts = format!("DELETE FROM webhook_attempts WHERE delivery_id IN ({agents})");
        bounded_delete(&mut tx, &attempts, before, limit).await?;
        let mut gone = 0;
        for sql in [
            format!("DELETE FROM webhook_deliveries WHERE id IN ({agents})"),
            format!("DELETE FROM run_webhook_deliveries WHERE id IN ({runs})"),
        ] {
            gone += bounded_delete(&mut tx, &sql, before, limit).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(gone)
    }
}

/// Runs a `DELETE` whose `$1` is a time and `$2` a row limit; the rows it took.
async fn bounded_delete(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sql: &str,
    before: Millis,
    limit: i64,
) -> Result<u64> {
    let done = sqlx::query(sql)
        .bind(before)
        .bind(limit)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}
