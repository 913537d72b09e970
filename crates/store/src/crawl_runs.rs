//! Crawler runs and their dataset items.

use agentbase_core::crawl_run::{CrawlRun, RunFilter, RunStatus};
use agentbase_core::{Error, Millis, Result};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, db_err, json_text};

/// Bytes of items one read of a dataset returns at most (its first item whatever
/// its size); a client pages on from the count it got, as Apify's clients do.
pub const MAX_BYTES_PER_READ: i64 = 16 * 1024 * 1024;

/// Items one transaction of a dataset's deletion takes.
const DELETE_BATCH: i64 = 1_000;

/// What a new run is written with.
const INSERT_COLUMNS: &str = "id, workspace_id, actor_id, status, status_message, input, \
    dataset_id, timeout_secs, pages_done, pages_failed, items, started_at, finished_at, \
    kv_store_id, webhooks";

/// What a run is read with.
pub(crate) const RUN_COLUMNS: &str = "id, workspace_id, actor_id, status, status_message, input, \
    dataset_id, timeout_secs, pages_done, pages_failed, items, started_at, finished_at, \
    kv_store_id, webhooks, dataset_deleted_at, kv_store_deleted_at";

pub(crate) fn run(row: &AnyRow) -> Result<CrawlRun> {
    let status: String = row.try_get("status").map_err(db_err)?;
    let input: String = row.try_get("input").map_err(db_err)?;
    Ok(CrawlRun {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        actor_id: row.try_get("actor_id").map_err(db_err)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| Error::Storage(format!("corrupt run status {status:?}")))?,
        status_message: row.try_get("status_message").map_err(db_err)?,
        input: serde_json::from_str(&input)
            .map_err(|_| Error::Storage("corrupt run input".into()))?,
        dataset_id: row.try_get("dataset_id").map_err(db_err)?,
        timeout_secs: row.try_get("timeout_secs").map_err(db_err)?,
        pages_done: row.try_get("pages_done").map_err(db_err)?,
        pages_failed: row.try_get("pages_failed").map_err(db_err)?,
        items: row.try_get("items").map_err(db_err)?,
        started_at: row.try_get("started_at").map_err(db_err)?,
        finished_at: row.try_get("finished_at").map_err(db_err)?,
        // Runs from before key-value stores use their own id for it.
        kv_store_id: row
            .try_get::<Option<String>, _>("kv_store_id")
            .map_err(db_err)?
            .unwrap_or(row.try_get("id").map_err(db_err)?),
        webhooks: match row
            .try_get::<Option<String>, _>("webhooks")
            .map_err(db_err)?
        {
            None => Vec::new(),
            Some(text) => serde_json::from_str(&text)
                .map_err(|_| Error::Storage("corrupt run webhooks".into()))?,
        },
        dataset_deleted_at: row.try_get("dataset_deleted_at").map_err(db_err)?,
        kv_store_deleted_at: row.try_get("kv_store_deleted_at").map_err(db_err)?,
    })
}

impl Store {
    /// Inserts `r` unless its workspace already has `max_active` runs that have not
    /// ended (checked in the same statement); `false` when refused.
    pub async fn insert_run(
        &self,
        r: &CrawlRun,
        node: &str,
        lease_until: Millis,
        max_active: i64,
    ) -> Result<bool> {
        let done = sqlx::query(&format!(
            "INSERT INTO crawl_runs ({INSERT_COLUMNS}, node, lease_until) SELECT $1, $2, $3, $4, $5, \
             $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 WHERE (SELECT COUNT(*) FROM \
             crawl_runs WHERE workspace_id = $18 AND status IN ('READY', 'RUNNING', 'ABORTING')) \
             < $19"
        ))
        .bind(&r.id)
        .bind(&r.workspace_id)
        .bind(&r.actor_id)
        .bind(r.status.as_str())
        .bind(&r.status_message)
        .bind(json_text(&r.input))
        .bind(&r.dataset_id)
        .bind(r.timeout_secs)
        .bind(r.pages_done)
        .bind(r.pages_failed)
        .bind(r.items)
        .bind(r.started_at)
        .bind(r.finished_at)
        .bind(&r.kv_store_id)
        .bind((!r.webhooks.is_empty()).then(|| json_text(&r.webhooks)))
        .bind(node)
        .bind(lease_until)
        .bind(&r.workspace_id)
        .bind(max_active)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// A run of the workspace (by run id or dataset id).
    pub async fn run(&self, workspace_id: &str, id: &str) -> Result<Option<CrawlRun>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM crawl_runs WHERE workspace_id = $1 AND (id = $2 OR dataset_id = $3)"
        ))
        .bind(workspace_id)
        .bind(id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(run).transpose()
    }

    /// A page of the workspace's runs that `filter` keeps, oldest first (newest
    /// first with `desc`), and how many it keeps in all. The runs come without
    /// their input and webhooks (a list of a thousand runs would otherwise read a
    /// thousand inputs): they read as `null` and none.
    pub async fn runs(
        &self,
        workspace_id: &str,
        filter: &RunFilter,
        (offset, limit): (i64, i64),
        desc: bool,
    ) -> Result<(Vec<CrawlRun>, i64)> {
        // The statuses are the enum's own words, never the caller's text; the
        // bounds are numbers, bound as parameters ($2, $3) with open ends as the
        // widest.
        let mut filter_sql = " AND started_at >= $2 AND started_at <= $3".to_owned();
        if !filter.statuses.is_empty() {
            let list: Vec<String> = (filter.statuses.iter())
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            filter_sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
        }
        if filter.with_dataset {
            filter_sql.push_str(" AND dataset_deleted_at IS NULL");
        }
        if filter.with_kv_store {
            filter_sql.push_str(" AND kv_store_deleted_at IS NULL");
        }
        let after = filter.started_after.unwrap_or(Millis::MIN);
        let before = filter.started_before.unwrap_or(Millis::MAX);
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM crawl_runs WHERE workspace_id = $1{filter_sql}"
        ))
        .bind(workspace_id)
        .bind(after)
        .bind(before)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?
        .try_get("n")
        .map_err(db_err)?;
        let order = if desc { "DESC" } else { "ASC" };
        let columns = RUN_COLUMNS
            .replace("input,", "CAST('null' AS TEXT) AS input,")
            .replace(", webhooks", ", CAST(NULL AS TEXT) AS webhooks");
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM crawl_runs WHERE workspace_id = $1{filter_sql} \
             ORDER BY started_at {order}, id {order} LIMIT $4 OFFSET $5"
        ))
        .bind(workspace_id)
        .bind(after)
        .bind(before)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let runs = rows.iter().map(run).collect::<Result<_>>()?;
        Ok((runs, total))
    }

    /// The run whose default key-value store is `store_id` (or whose id it is).
    pub async fn run_by_kv_store(
        &self,
        workspace_id: &str,
        store_id: &str,
    ) -> Result<Option<CrawlRun>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM crawl_runs WHERE workspace_id = $1 AND (kv_store_id = $2 OR id = $3)"
        ))
        .bind(workspace_id)
        .bind(store_id)
        .bind(store_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(run).transpose()
    }

    /// Writes a key-value store record (replacing one under the same key).
    pub async fn put_record(
        &self,
        store_id: &str,
        key: &str,
        content_type: &str,
        value: &str,
    ) -> Result<()> {
        self.delete_record(store_id, key).await?;
        sqlx::query(
            "INSERT INTO kv_records (store_id, record_key, content_type, value, size) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(store_id)
        .bind(key)
        .bind(content_type)
        .bind(value)
        .bind(value.len() as i64)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Deletes a record; false when there was none.
    pub async fn delete_record(&self, store_id: &str, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM kv_records WHERE store_id = $1 AND record_key = $2")
            .bind(store_id)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Bytes of the key-value records of every run of the workspace, leaving out
    /// the record `except` (store id, key), which a write would replace.
    pub async fn workspace_kv_bytes(
        &self,
        workspace_id: &str,
        except: (&str, &str),
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(r.size), 0) AS BIGINT) AS n FROM kv_records r \
             JOIN crawl_runs c ON c.kv_store_id = r.store_id \
             WHERE c.workspace_id = $1 AND NOT (r.store_id = $2 AND r.record_key = $3)",
        )
        .bind(workspace_id)
        .bind(except.0)
        .bind(except.1)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        row.try_get::<i64, _>("n").map_err(db_err)
    }

    /// A record: (content type, value).
    pub async fn record(&self, store_id: &str, key: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT content_type, value FROM kv_records WHERE store_id = $1 AND record_key = $2",
        )
        .bind(store_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok((
                r.try_get("content_type").map_err(db_err)?,
                r.try_get("value").map_err(db_err)?,
            ))
        })
        .transpose()
    }

    /// The keys of a store with their sizes, in key order.
    pub async fn record_keys(&self, store_id: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT record_key, value FROM kv_records WHERE store_id = $1 ORDER BY record_key",
        )
        .bind(store_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let value: String = r.try_get("value").map_err(db_err)?;
                Ok((r.try_get("record_key").map_err(db_err)?, value.len() as i64))
            })
            .collect()
    }

    /// Appends lines to a run's log after line `from` (the count already written).
    /// Their bytes count towards the run's `dataset_bytes` (a log is the run's
    /// storage too).
    pub async fn append_log(&self, run_id: &str, from: i64, lines: &[String]) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for (i, line) in lines.iter().enumerate() {
            sqlx::query("INSERT INTO crawl_run_log (run_id, seq, line) VALUES ($1, $2, $3)")
                .bind(run_id)
                .bind(from + i as i64)
                .bind(line)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let bytes: i64 = lines.iter().map(|l| l.len() as i64).sum();
        sqlx::query("UPDATE crawl_runs SET dataset_bytes = dataset_bytes + $1 WHERE id = $2")
            .bind(bytes)
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// Log lines from `from` on, in order.
    pub async fn log_lines(&self, run_id: &str, from: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT line FROM crawl_run_log WHERE run_id = $1 AND seq >= $2 ORDER BY seq",
        )
        .bind(run_id)
        .bind(from)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get("line").map_err(db_err))
            .collect()
    }

    /// Progress of a running run; also extends its lease. Only while it has not
    /// ended (an abort or a finish is never overwritten).
    pub async fn run_progress(
        &self,
        id: &str,
        (done, failed, items): (i64, i64, i64),
        lease_until: Millis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE crawl_runs SET pages_done = $1, pages_failed = $2, items = $3, lease_until = $4 \
             WHERE id = $5 AND status IN ('READY', 'RUNNING', 'ABORTING')",
        )
        .bind(done)
        .bind(failed)
        .bind(items)
        .bind(lease_until)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Moves a run to `to` when it is in one of `from`; `false` otherwise.
    pub async fn set_run_status(
        &self,
        id: &str,
        from: &[RunStatus],
        to: RunStatus,
        message: Option<&str>,
        now: Millis,
    ) -> Result<bool> {
        self.set_run_status_with(id, (from, to), message, now, &[])
            .await
    }

    /// Runs left going by a node that stopped renewing their lease (it died or
    /// restarted), to be failed (see [`Store::set_run_status_with`]).
    pub async fn orphaned_runs(&self, now: Millis) -> Result<Vec<CrawlRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM crawl_runs WHERE status IN ('READY', 'RUNNING', 'ABORTING') \
             AND lease_until < $1"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(run).collect()
    }

    /// A run by id, whichever workspace has it (for the node that runs it).
    pub async fn run_by_id(&self, id: &str) -> Result<Option<CrawlRun>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM crawl_runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(run).transpose()
    }

    /// Appends items to a dataset, numbered from `first_seq`.
    /// The items are written as JSON text; their bytes count towards the run's
    /// `dataset_bytes` in the same transaction.
    pub async fn append_items(
        &self,
        dataset_id: &str,
        first_seq: i64,
        items: &[String],
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for (i, item) in items.iter().enumerate() {
            sqlx::query("INSERT INTO dataset_items (dataset_id, seq, item) VALUES ($1, $2, $3)")
                .bind(dataset_id)
                .bind(first_seq + i as i64)
                .bind(item)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let bytes: i64 = items.iter().map(|i| i.len() as i64).sum();
        sqlx::query(
            "UPDATE crawl_runs SET dataset_bytes = dataset_bytes + $1 WHERE dataset_id = $2",
        )
        .bind(bytes)
        .bind(dataset_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// Bytes of dataset items all of a workspace's runs hold.
    pub async fn dataset_bytes(&self, workspace_id: &str) -> Result<i64> {
        sqlx::query(
            "SELECT CAST(COALESCE(SUM(dataset_bytes), 0) AS BIGINT) AS n FROM crawl_runs \
             WHERE workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?
        .try_get("n")
        .map_err(db_err)
    }

    /// Deletes `run` with its dataset, log and key-value store, when it has ended
    /// (checked in the statement); `false` when it has not, or is gone already.
    pub async fn delete_run(&self, run: &CrawlRun) -> Result<bool> {
        // A run that has ended never goes on again: its items go first, in
        // batches (a dataset of gigabytes never holds the writer at once), then
        // the run with the rest.
        if !run.status.is_terminal() {
            return Ok(false);
        }
        self.delete_items(&run.dataset_id).await?;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let gone = sqlx::query(
            "DELETE FROM crawl_runs WHERE id = $1 AND status IN \
             ('SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED')",
        )
        .bind(&run.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if gone.rows_affected() != 1 {
            return Ok(false);
        }
        for (sql, key) in [
            (
                "DELETE FROM dataset_items WHERE dataset_id = $1",
                &run.dataset_id,
            ),
            ("DELETE FROM crawl_run_log WHERE run_id = $1", &run.id),
            (
                "DELETE FROM kv_records WHERE store_id = $1",
                &run.kv_store_id,
            ),
        ] {
            sqlx::query(sql)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    /// Deletes the items of `run`'s dataset and marks it deleted (the run stays),
    /// when the run has ended and the dataset is still there (checked in the
    /// statement); `false` otherwise. What the run's storage counts is then its log.
    pub async fn delete_dataset(&self, run: &CrawlRun, now: Millis) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let marked = sqlx::query(
            "UPDATE crawl_runs SET dataset_deleted_at = $1, dataset_bytes = (SELECT \
             CAST(COALESCE(SUM(LENGTH(line)), 0) AS BIGINT) FROM crawl_run_log WHERE run_id = $2) \
             WHERE id = $3 AND dataset_deleted_at IS NULL AND status IN \
             ('SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED')",
        )
        .bind(now)
        .bind(&run.id)
        .bind(&run.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if marked.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit().await.map_err(db_err)?;
        // Marked, the dataset reads as gone; a crash before its items are all
        // deleted leaves them for the run's own deletion.
        self.delete_items(&run.dataset_id).await?;
        Ok(true)
    }

    /// Deletes a dataset's items, [`DELETE_BATCH`] per transaction.
    async fn delete_items(&self, dataset_id: &str) -> Result<()> {
        loop {
            let done = sqlx::query(
                "DELETE FROM dataset_items WHERE dataset_id = $1 AND seq IN (SELECT seq FROM \
                 dataset_items WHERE dataset_id = $2 ORDER BY seq LIMIT $3)",
            )
            .bind(dataset_id)
            .bind(dataset_id)
            .bind(DELETE_BATCH)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
            if done.rows_affected() < DELETE_BATCH as u64 {
                return Ok(());
            }
        }
    }

    /// Deletes the records of `run`'s key-value store and marks it deleted (the run
    /// stays), when the store is still there; `false` otherwise.
    pub async fn delete_kv_store(&self, run: &CrawlRun, now: Millis) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let marked = sqlx::query(
            "UPDATE crawl_runs SET kv_store_deleted_at = $1 WHERE id = $2 \
             AND kv_store_deleted_at IS NULL",
        )
        .bind(now)
        .bind(&run.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if marked.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM kv_records WHERE store_id = $1")
            .bind(&run.kv_store_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    /// A page of a dataset in insertion order (or reversed) and the dataset's size.
    pub async fn dataset_items(
        &self,
        dataset_id: &str,
        offset: i64,
        limit: Option<i64>,
        desc: bool,
    ) -> Result<(Vec<serde_json::Value>, i64)> {
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM dataset_items WHERE dataset_id = $1")
                .bind(dataset_id)
                .fetch_one(&self.pool)
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(db_err)?;
        let order = if desc { "DESC" } else { "ASC" };
        // The page stops once its items hold `MAX_BYTES_PER_READ` (with at least one
        // item), counted in the database: a page of ten thousand large pages never
        // comes into this process whole.
        let rows = sqlx::query(&format!(
            "SELECT item FROM (SELECT seq, item, SUM(LENGTH(item)) OVER (ORDER BY seq {order} \
             ROWS UNBOUNDED PRECEDING) - LENGTH(item) AS before FROM (SELECT seq, item FROM \
             dataset_items WHERE dataset_id = $1 ORDER BY seq {order} LIMIT $2 OFFSET $3) page) w \
             WHERE before < $4 ORDER BY seq {order}"
        ))
        .bind(dataset_id)
        .bind(limit.unwrap_or(i64::MAX))
        .bind(offset)
        .bind(MAX_BYTES_PER_READ)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let items = rows
            .iter()
            .map(|r| {
                // An item stored before items were bounded in depth may not parse
                // back: it is answered as its text rather than failing the read.
                let text: String = r.try_get("item").map_err(db_err)?;
                Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((items, total))
    }
}
