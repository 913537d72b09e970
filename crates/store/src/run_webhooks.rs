//! The outbox of Apify's ad-hoc run webhooks (`run_webhook_deliveries`): a row per
//! (run, webhook, event), written with the run change that made the event (a run's
//! end in the same transaction as its status), claimed by a worker with a lease and
//! finished with its attempt's outcome, as the agents' webhook outbox is.

use agentbase_core::crawl_run::RunStatus;
use agentbase_core::{Error, Millis, Result};
use sqlx::Row;

use crate::webhooks::{Outbox, finish_query};
use crate::{AttemptOutcome, Store, db_err, json_text};

/// One delivery of a run event to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDelivery {
    /// The run, the webhook's place in it and the event: writing an event twice
    /// cannot deliver it twice.
    pub id: String,
    pub workspace_id: String,
    pub run_id: String,
    pub event_type: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Attempts before it fails (1 for `doNotRetry`).
    pub max_attempts: i64,
    /// Attempts made so far (counting the one a claim starts).
    pub attempts: i64,
    /// Why it is not sent at all (written as failed with this error).
    pub refused: Option<String>,
    /// The persistent webhook it is of; `None` for a run's ad-hoc one.
    pub webhook_id: Option<String>,
}

fn insert_query(
    d: &RunDelivery,
    now: Millis,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>> {
    let (state, finished_at) = match d.refused {
        Some(_) => ("failed", Some(now)),
        None => ("pending", None),
    };
    sqlx::query(
        "INSERT INTO run_webhook_deliveries (id, workspace_id, run_id, event_type, url, headers, \
         body, state, attempts, max_attempts, next_attempt_at, lease_until, created_at, \
         last_error, finished_at, webhook_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, \
         $10, 0, $11, $12, $13, $14) ON CONFLICT DO NOTHING",
    )
    .bind(d.id.clone())
    .bind(d.workspace_id.clone())
    .bind(d.run_id.clone())
    .bind(d.event_type.clone())
    .bind(d.url.clone())
    .bind(json_text(&d.headers))
    .bind(d.body.clone())
    .bind(state)
    .bind(d.max_attempts)
    .bind(now)
    .bind(now)
    .bind(d.refused.clone())
    .bind(finished_at)
    .bind(d.webhook_id.clone())
}

async fn insert_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[RunDelivery],
    now: Millis,
) -> Result<()> {
    for d in rows {
        insert_query(d, now)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

impl Store {
    /// Writes deliveries of an event that has happened (the run's start).
    pub async fn insert_run_deliveries(&self, rows: &[RunDelivery], now: Millis) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        insert_all(&mut tx, rows, now).await?;
        tx.commit().await.map_err(db_err)
    }

    /// [`Store::set_run_status`] that also writes the deliveries of the event the
    /// change makes, in the same transaction: none when the run was not in `from`.
    pub async fn set_run_status_with(
        &self,
        id: &str,
        (from, to): (&[RunStatus], RunStatus),
        message: Option<&str>,
        now: Millis,
        deliveries: &[RunDelivery],
    ) -> Result<bool> {
        let list: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let r = sqlx::query(&format!(
            "UPDATE crawl_runs SET status = $1, status_message = COALESCE($2, status_message), \
             finished_at = CASE WHEN $3 = 1 THEN $4 ELSE finished_at END WHERE id = $5 AND status IN ({})",
            list.join(", ")
        ))
        .bind(to.as_str())
        .bind(message)
        .bind(i64::from(to.is_terminal()))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let changed = r.rows_affected() == 1;
        if changed {
            insert_all(&mut tx, deliveries, now).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(changed)
    }

    /// Run deliveries due now, in turns by workspace (see
    /// [`Store::due_deliveries`]).
    pub async fn due_run_deliveries(&self, now: Millis, limit: i64) -> Result<Vec<String>> {
        self.due_in(Outbox::Runs, now, limit).await
    }

    /// Takes a due run delivery until `lease_until` and counts the attempt; `None`
    /// when another worker took it first.
    pub async fn claim_run_delivery(
        &self,
        id: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<RunDelivery>> {
        if !self.lease(Outbox::Runs, id, now, lease_until).await? {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, workspace_id, run_id, event_type, url, headers, body, max_attempts, \
             attempts, webhook_id FROM run_webhook_deliveries WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let headers: String = row.try_get("headers").map_err(db_err)?;
        Ok(Some(RunDelivery {
            id: row.try_get("id").map_err(db_err)?,
            workspace_id: row.try_get("workspace_id").map_err(db_err)?,
            run_id: row.try_get("run_id").map_err(db_err)?,
            event_type: row.try_get("event_type").map_err(db_err)?,
            url: row.try_get("url").map_err(db_err)?,
            headers: serde_json::from_str(&headers)
                .map_err(|_| Error::Storage("corrupt run delivery headers".into()))?,
            body: row.try_get("body").map_err(db_err)?,
            max_attempts: row.try_get("max_attempts").map_err(db_err)?,
            attempts: row.try_get("attempts").map_err(db_err)?,
            refused: None,
            webhook_id: row.try_get("webhook_id").map_err(db_err)?,
        }))
    }

    /// Ends an attempt of a run delivery: its new state and how the attempt went.
    pub async fn finish_run_delivery(&self, id: &str, o: &AttemptOutcome) -> Result<()> {
        finish_query(Outbox::Runs, id, o)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Run deliveries of the workspace still to be sent.
    pub async fn pending_run_deliveries(&self, workspace_id: &str) -> Result<i64> {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM run_webhook_deliveries WHERE workspace_id = $1 \
             AND state = 'pending'",
        )
        .bind(workspace_id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_err)
    }

    /// A run's deliveries as (event, state, attempts), oldest first.
    pub async fn run_deliveries(&self, run_id: &str) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT event_type, state, attempts FROM run_webhook_deliveries WHERE run_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("event_type").map_err(db_err)?,
                    r.try_get("state").map_err(db_err)?,
                    r.try_get("attempts").map_err(db_err)?,
                ))
            })
            .collect()
    }
}
