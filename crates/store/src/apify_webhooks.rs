//! Apify's persistent webhooks (`apify_webhooks`) and the dispatches of every run
//! webhook, ad-hoc or persistent (the rows of `run_webhook_deliveries`).

use agentbase_core::run_webhook::{ApifyWebhook, Dispatch, WebhookDefinition};
use agentbase_core::webhook::DeliveryState;
use agentbase_core::{Error, Result};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, db_err, json_text};

const COLUMNS: &str = "id, workspace_id, definition, created_at, modified_at";

const DISPATCH_COLUMNS: &str = "id, workspace_id, webhook_id, run_id, event_type, state, \
    attempts, last_status, last_error, created_at, finished_at";

fn apify_webhook(row: &AnyRow) -> Result<ApifyWebhook> {
    let definition: String = row.try_get("definition").map_err(db_err)?;
    Ok(ApifyWebhook {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        definition: serde_json::from_str(&definition)
            .map_err(|_| Error::Storage("corrupt webhook definition".into()))?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        modified_at: row.try_get("modified_at").map_err(db_err)?,
    })
}

fn dispatch(row: &AnyRow) -> Result<Dispatch> {
    let state: String = row.try_get("state").map_err(db_err)?;
    Ok(Dispatch {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        webhook_id: row.try_get("webhook_id").map_err(db_err)?,
        run_id: row.try_get("run_id").map_err(db_err)?,
        event_type: row.try_get("event_type").map_err(db_err)?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| Error::Storage(format!("corrupt delivery state: {state:?}")))?,
        attempts: row.try_get("attempts").map_err(db_err)?,
        last_status: row.try_get("last_status").map_err(db_err)?,
        last_error: row.try_get("last_error").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        finished_at: row.try_get("finished_at").map_err(db_err)?,
    })
}

/// The columns a definition is also kept in, to be found by.
fn keys(d: &WebhookDefinition) -> (Option<String>, Option<String>, Option<String>) {
    (
        d.condition.actor_id.clone(),
        d.condition.actor_run_id.clone(),
        d.hook.idempotency_key.clone(),
    )
}

impl Store {
    /// Inserts `w` unless its workspace has `max` webhooks already or one with its
    /// idempotency key (both checked in the statement); `false` when refused.
    pub async fn insert_apify_webhook(&self, w: &ApifyWebhook, max: i64) -> Result<bool> {
        let (actor_id, run_id, key) = keys(&w.definition);
        let done = sqlx::query(
            "INSERT INTO apify_webhooks (id, workspace_id, actor_id, actor_run_id, \
             idempotency_key, definition, created_at, modified_at) SELECT $1, $2, $3, $4, $5, \
             $6, $7, $8 WHERE (SELECT COUNT(*) FROM apify_webhooks WHERE workspace_id = $9) < $10 \
             ON CONFLICT DO NOTHING",
        )
        .bind(&w.id)
        .bind(&w.workspace_id)
        .bind(actor_id)
        .bind(run_id)
        .bind(key)
        .bind(json_text(&w.definition))
        .bind(w.created_at)
        .bind(w.modified_at)
        .bind(&w.workspace_id)
        .bind(max)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// A webhook of the workspace, by id or (with `by_key`) by idempotency key.
    pub async fn apify_webhook(
        &self,
        workspace_id: &str,
        id: &str,
        by_key: bool,
    ) -> Result<Option<ApifyWebhook>> {
        let column = if by_key { "idempotency_key" } else { "id" };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM apify_webhooks WHERE workspace_id = $1 AND {column} = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(apify_webhook).transpose()
    }

    /// A page of the workspace's webhooks, oldest first (newest with `desc`), and
    /// how many there are; with `actor_only`, those told of an actor's runs.
    pub async fn apify_webhooks(
        &self,
        workspace_id: &str,
        actor_only: bool,
        (offset, limit): (i64, i64),
        desc: bool,
    ) -> Result<(Vec<ApifyWebhook>, i64)> {
        let filter = if actor_only {
            " AND actor_id IS NOT NULL"
        } else {
            ""
        };
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM apify_webhooks WHERE workspace_id = $1{filter}"
        ))
        .bind(workspace_id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_err)?;
        let order = if desc { "DESC" } else { "ASC" };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM apify_webhooks WHERE workspace_id = $1{filter} \
             ORDER BY created_at {order}, id {order} LIMIT $2 OFFSET $3"
        ))
        .bind(workspace_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let hooks = rows.iter().map(apify_webhook).collect::<Result<_>>()?;
        Ok((hooks, total))
    }

    /// The webhooks a run of the workspace is told of: the actor's (every run)
    /// and the run's own.
    pub async fn apify_webhooks_of_run(
        &self,
        workspace_id: &str,
        run_id: &str,
    ) -> Result<Vec<ApifyWebhook>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM apify_webhooks WHERE workspace_id = $1 AND \
             (actor_id IS NOT NULL OR actor_run_id = $2) ORDER BY created_at, id"
        ))
        .bind(workspace_id)
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(apify_webhook).collect()
    }

    /// Writes `w`'s definition; `false` when it is gone (or another of the
    /// workspace's has its new idempotency key).
    pub async fn update_apify_webhook(&self, w: &ApifyWebhook) -> Result<bool> {
        let (actor_id, run_id, key) = keys(&w.definition);
        let clash = match &key {
            Some(k) => (self.apify_webhook(&w.workspace_id, k, true).await?)
                .is_some_and(|other| other.id != w.id),
            None => false,
        };
        if clash {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE apify_webhooks SET actor_id = $1, actor_run_id = $2, idempotency_key = $3, \
             definition = $4, modified_at = $5 WHERE id = $6 AND workspace_id = $7",
        )
        .bind(actor_id)
        .bind(run_id)
        .bind(key)
        .bind(json_text(&w.definition))
        .bind(w.modified_at)
        .bind(&w.id)
        .bind(&w.workspace_id)
        .execute(&self.writer)
        .await;
        match done {
            Ok(done) => Ok(done.rows_affected() == 1),
            // Another request took the key between the check and the write.
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Ok(false)
            }
            Err(e) => Err(db_err(e)),
        }
    }

    /// Deletes a webhook of the workspace (its dispatches stay, and those still
    /// pending are still sent); `false` when there was none.
    pub async fn delete_apify_webhook(&self, workspace_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM apify_webhooks WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// A page of the workspace's dispatches (of one persistent webhook when
    /// `webhook_id` is given), oldest first (newest with `desc`), and how many.
    pub async fn dispatches(
        &self,
        workspace_id: &str,
        webhook_id: Option<&str>,
        (offset, limit): (i64, i64),
        desc: bool,
    ) -> Result<(Vec<Dispatch>, i64)> {
        // `$2` is the webhook, or empty (no webhook's id) for every dispatch.
        let filter = " AND ($2 = '' OR webhook_id = $2)";
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM run_webhook_deliveries WHERE workspace_id = $1{filter}"
        ))
        .bind(workspace_id)
        .bind(webhook_id.unwrap_or(""))
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_err)?;
        let order = if desc { "DESC" } else { "ASC" };
        let rows = sqlx::query(&format!(
            "SELECT {DISPATCH_COLUMNS} FROM run_webhook_deliveries WHERE workspace_id = $1{filter} \
             ORDER BY created_at {order}, id {order} LIMIT $3 OFFSET $4"
        ))
        .bind(workspace_id)
        .bind(webhook_id.unwrap_or(""))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let items = rows.iter().map(dispatch).collect::<Result<_>>()?;
        Ok((items, total))
    }

    /// A dispatch of the workspace by id.
    pub async fn dispatch(&self, workspace_id: &str, id: &str) -> Result<Option<Dispatch>> {
        let row = sqlx::query(&format!(
            "SELECT {DISPATCH_COLUMNS} FROM run_webhook_deliveries WHERE workspace_id = $1 \
             AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(dispatch).transpose()
    }
}
