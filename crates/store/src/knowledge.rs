//! Sources, their pages, chunks (with embeddings) and training jobs.
//!
//! A training writes a new generation of a source's chunks beside the live one and
//! switches to it in one transaction ([`Store::switch_generation`]): the source's
//! `generation` moves, the old chunks go, the agent's `kb_version` is bumped. A
//! failed training drops only its own generation, so the previous knowledge stays.

use agentbase_core::knowledge::{
    Document, JobStatus, Source, SourceKind, SourceStatus, StoredChunk, TrainingJob,
};
use agentbase_core::{AgentStatus, Cursor, Error, Millis, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::chat::{Arg, Where, keyset_page};
use crate::{Page, Store, db_err, json_text};

const SOURCE_COLUMNS: &str = "id, agent_id, kind, name, content, size, status, generation, \
    error, crawl_status, pages, created_at, updated_at, trained_at";
const JOB_COLUMNS: &str =
    "id, agent_id, source_id, status, stage, done, total, error, attempts, created_at, updated_at";

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("corrupt {what} in the record"))
}

fn source(row: &AnyRow) -> Result<Source> {
    let status: String = row.try_get("status").map_err(db_err)?;
    let content: String = row.try_get("content").map_err(db_err)?;
    Ok(Source {
        id: row.try_get("id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        content: serde_json::from_str(&content).map_err(|_| corrupt("source content"))?,
        size: row.try_get("size").map_err(db_err)?,
        status: SourceStatus::parse(&status).ok_or_else(|| corrupt("source status"))?,
        generation: row.try_get("generation").map_err(db_err)?,
        error: row.try_get("error").map_err(db_err)?,
        crawl_status: row.try_get("crawl_status").map_err(db_err)?,
        pages: row.try_get("pages").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        trained_at: row.try_get("trained_at").map_err(db_err)?,
    })
}

fn job(row: &AnyRow) -> Result<TrainingJob> {
    let status: String = row.try_get("status").map_err(db_err)?;
    Ok(TrainingJob {
        id: row.try_get("id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        source_id: row.try_get("source_id").map_err(db_err)?,
        status: JobStatus::parse(&status).ok_or_else(|| corrupt("job status"))?,
        stage: row.try_get("stage").map_err(db_err)?,
        done: row.try_get("done").map_err(db_err)?,
        total: row.try_get("total").map_err(db_err)?,
        error: row.try_get("error").map_err(db_err)?,
        attempts: row.try_get("attempts").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

fn embedding_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn embedding_from(bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(corrupt("chunk embedding"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Which sources a list shows.
#[derive(Debug, Clone, Default)]
pub struct SourceFilter {
    pub kinds: Vec<SourceKind>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
}

/// The end of a successful training of one source.
#[derive(Debug, Clone)]
pub struct TrainingSwitch {
    pub job_id: String,
    pub agent_id: String,
    pub source_id: String,
    pub generation: i64,
    pub now: Millis,
}

/// Which training jobs a claim takes: website sources' (which fetch their pages
/// before they embed), the others', or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKinds {
    All,
    Websites,
    Others,
}

impl Store {
    /// A new source and the job that trains it, in one transaction; the agent
    /// shows `training`.
    pub async fn insert_source(&self, s: &Source, identity: &str, job: &TrainingJob) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(&format!(
            "INSERT INTO sources ({SOURCE_COLUMNS}, identity) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&s.id)
        .bind(&s.agent_id)
        .bind(s.kind().as_str())
        .bind(&s.name)
        .bind(json_text(&s.content))
        .bind(s.size)
        .bind(s.status.as_str())
        .bind(s.generation)
        .bind(&s.error)
        .bind(&s.crawl_status)
        .bind(s.pages)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(s.trained_at)
        .bind(identity)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_job(&mut tx, job).await?;
        tx.commit().await.map_err(db_err)
    }

    /// Writes a changed source back and queues its training (unless one is queued
    /// already: it will read the new content).
    pub async fn update_source(&self, s: &Source, identity: &str, job: &TrainingJob) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "UPDATE sources SET name = $1, content = $2, identity = $3, size = $4, status = $5, \
             updated_at = $6, error = NULL WHERE id = $7 AND agent_id = $8",
        )
        .bind(&s.name)
        .bind(json_text(&s.content))
        .bind(identity)
        .bind(s.size)
        .bind(s.status.as_str())
        .bind(s.updated_at)
        .bind(&s.id)
        .bind(&s.agent_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_job(&mut tx, job).await?;
        tx.commit().await.map_err(db_err)
    }

    pub async fn source(&self, agent_id: &str, id: &str) -> Result<Option<Source>> {
        let row = sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE id = $1 AND agent_id = $2"
        ))
        .bind(id)
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(source).transpose()
    }

    /// Sources of an agent, newest first, keyset-paginated on (created_at, id).
    pub async fn sources(
        &self,
        agent_id: &str,
        filter: &SourceFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Source>> {
        let mut w = Where::new();
        let p = w.arg(Arg::Text(agent_id.to_owned()));
        w.push(format!("agent_id = {p}"));
        if !filter.kinds.is_empty() {
            let list: Vec<String> = filter
                .kinds
                .iter()
                .map(|k| w.arg(Arg::Text(k.as_str().to_owned())))
                .collect();
            w.push(format!("kind IN ({})", list.join(", ")));
        }
        if let Some(name) = &filter.name {
            let escaped = name
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let p = w.arg(Arg::Text(format!("%{escaped}%")));
            w.push(format!("LOWER(name) LIKE {p} ESCAPE '\\'"));
        }
        keyset_page(
            &self.pool,
            ("sources", SOURCE_COLUMNS),
            w,
            "created_at",
            after,
            limit,
            source,
        )
        .await
    }

    /// Every source of an agent, oldest first.
    pub async fn all_sources(&self, agent_id: &str) -> Result<Vec<Source>> {
        let rows = sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE agent_id = $1 ORDER BY created_at, id"
        ))
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(source).collect()
    }

    /// Whether another source of the agent has this identity.
    pub async fn source_identity_taken(
        &self,
        agent_id: &str,
        identity: &str,
        except: Option<&str>,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM sources WHERE agent_id = $1 AND identity = $2 AND id <> $3",
        )
        .bind(agent_id)
        .bind(identity)
        .bind(except.unwrap_or(""))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.try_get::<i64, _>("n").map_err(db_err)? > 0)
    }

    /// Bytes of the agent's sources, leaving out `except`.
    pub async fn source_bytes(&self, agent_id: &str, except: Option<&str>) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM sources WHERE agent_id = $1 AND id <> $2",
        )
        .bind(agent_id)
        .bind(except.unwrap_or(""))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        row.try_get::<i64, _>("n").map_err(db_err)
    }

    /// Bytes of the sources of every agent of the workspace, leaving out `except`
    /// (a source id) and the sources of `except_agent`.
    pub async fn workspace_source_bytes(
        &self,
        workspace_id: &str,
        except: Option<&str>,
        except_agent: Option<&str>,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(s.size), 0) AS BIGINT) AS n FROM sources s \
             JOIN agents a ON a.id = s.agent_id \
             WHERE a.workspace_id = $1 AND s.id <> $2 AND s.agent_id <> $3",
        )
        .bind(workspace_id)
        .bind(except.unwrap_or(""))
        .bind(except_agent.unwrap_or(""))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        row.try_get::<i64, _>("n").map_err(db_err)
    }

    /// Deletes a source with its chunks and pages at once; the agent's knowledge
    /// changes (a new version) in the same transaction.
    pub async fn delete_source(&self, agent_id: &str, id: &str, now: Millis) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for sql in [
            "DELETE FROM chunks WHERE source_id = $1",
            "DELETE FROM source_pages WHERE source_id = $1",
            "DELETE FROM training_jobs WHERE source_id = $1 AND status IN ('queued', 'running')",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let done = sqlx::query("DELETE FROM sources WHERE id = $1 AND agent_id = $2")
            .bind(id)
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE agents SET kb_version = kb_version + 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        refresh_agent(&mut tx, agent_id, None).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    /// Replaces a link source's fetched pages.
    pub async fn set_pages(&self, source_id: &str, pages: &[Document], now: Millis) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("DELETE FROM source_pages WHERE source_id = $1")
            .bind(source_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (i, p) in pages.iter().enumerate() {
            sqlx::query(
                "INSERT INTO source_pages (source_id, ord, url, title, markdown) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(source_id)
            .bind(i as i64)
            .bind(p.url.as_deref().unwrap_or(""))
            .bind(&p.title)
            .bind(&p.markdown)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        let size: i64 = pages.iter().map(|p| p.markdown.len() as i64).sum();
        sqlx::query(
            "UPDATE sources SET pages = $1, size = $2, crawl_status = 'fetched', updated_at = $3 \
             WHERE id = $4",
        )
        .bind(pages.len() as i64)
        .bind(size)
        .bind(now)
        .bind(source_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    pub async fn pages(&self, source_id: &str) -> Result<Vec<Document>> {
        let rows = sqlx::query(
            "SELECT url, title, markdown FROM source_pages WHERE source_id = $1 ORDER BY ord",
        )
        .bind(source_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let url: String = r.try_get("url").map_err(db_err)?;
                Ok(Document {
                    url: (!url.is_empty()).then_some(url),
                    title: r.try_get("title").map_err(db_err)?,
                    markdown: r.try_get("markdown").map_err(db_err)?,
                })
            })
            .collect()
    }

    pub async fn set_crawl_status(&self, source_id: &str, status: &str) -> Result<()> {
        sqlx::query("UPDATE sources SET crawl_status = $1 WHERE id = $2")
            .bind(status)
            .bind(source_id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    // ---- jobs --------------------------------------------------------------------

    /// Queues a training of `job.source_id` unless one is queued already.
    pub async fn enqueue_job(&self, job: &TrainingJob) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        insert_job(&mut tx, job).await?;
        tx.commit().await.map_err(db_err)
    }

    /// Takes the oldest runnable job: queued, or running under a lease that ran
    /// out (its node died). Jobs of a source run one at a time.
    /// Claims the next job for `owner`. Fair across workspaces: the job comes from
    /// the workspace with the fewest jobs running (on any node), oldest first
    /// within it, and a workspace already running `per_workspace` jobs waits; one
    /// running job per source. `kinds`: website sources' jobs, the others', or all.
    pub async fn claim_job(
        &self,
        owner: &str,
        now: Millis,
        lease_ms: i64,
        (per_workspace, kinds): (i64, JobKinds),
    ) -> Result<Option<TrainingJob>> {
        let website =
            "EXISTS (SELECT 1 FROM sources s WHERE s.id = j.source_id AND s.kind = 'link')";
        let kinds = match kinds {
            JobKinds::All => String::new(),
            JobKinds::Websites => format!(" AND {website}"),
            JobKinds::Others => format!(" AND NOT {website}"),
        };
        for _ in 0..3 {
            let candidate = sqlx::query(&format!(
                "SELECT j.id FROM training_jobs j JOIN agents a ON a.id = j.agent_id \
                 WHERE (j.status = 'queued' OR (j.status = 'running' AND j.lease_until < $1)){kinds} \
                 AND NOT EXISTS (SELECT 1 FROM training_jobs r WHERE r.source_id = j.source_id \
                 AND r.status = 'running' AND r.lease_until >= $2 AND r.id <> j.id) \
                 AND (SELECT COUNT(*) FROM training_jobs r JOIN agents ra ON ra.id = r.agent_id \
                 WHERE ra.workspace_id = a.workspace_id AND r.status = 'running' \
                 AND r.lease_until >= $3) < $4 \
                 ORDER BY (SELECT COUNT(*) FROM training_jobs r JOIN agents ra ON ra.id = r.agent_id \
                 WHERE ra.workspace_id = a.workspace_id AND r.status = 'running' \
                 AND r.lease_until >= $5), j.created_at, j.id LIMIT 1",
            ))
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(per_workspace)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
            let Some(row) = candidate else {
                return Ok(None);
            };
            let id: String = row.try_get("id").map_err(db_err)?;
            let won = sqlx::query(
                "UPDATE training_jobs SET status = 'running', lease_owner = $1, lease_until = $2, \
                 attempts = attempts + 1, updated_at = $3 WHERE id = $4 AND (status = 'queued' OR \
                 (status = 'running' AND lease_until < $5))",
            )
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(&id)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
            if won.rows_affected() == 1 {
                return self.job(&id).await;
            }
        }
        Ok(None)
    }

    pub async fn job(&self, id: &str) -> Result<Option<TrainingJob>> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM training_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(job).transpose()
    }

    /// The agent's jobs, newest first.
    pub async fn jobs(&self, agent_id: &str, limit: u32) -> Result<Vec<TrainingJob>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM training_jobs WHERE agent_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(agent_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(job).collect()
    }

    /// Records progress and extends the lease. `false` when the job is no longer
    /// this owner's (its lease ran out and another node took it, or it was deleted).
    pub async fn job_progress(
        &self,
        id: &str,
        owner: &str,
        (stage, done, total): (&str, i64, i64),
        lease_until: Millis,
        now: Millis,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE training_jobs SET stage = $1, done = $2, total = $3, lease_until = $4, \
             updated_at = $5 WHERE id = $6 AND lease_owner = $7 AND status = 'running'",
        )
        .bind(stage)
        .bind(done)
        .bind(total)
        .bind(lease_until)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    /// Writes chunks of a new (not yet live) generation.
    pub async fn insert_chunks(
        &self,
        agent_id: &str,
        generation: i64,
        first_ord: i64,
        chunks: &[StoredChunk],
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for (i, c) in chunks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO chunks (id, agent_id, source_id, generation, ord, title, url, heading, \
                 text, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&c.id)
            .bind(agent_id)
            .bind(&c.source_id)
            .bind(generation)
            .bind(first_ord + i as i64)
            .bind(&c.title)
            .bind(&c.url)
            .bind(&c.heading)
            .bind(&c.text)
            .bind(embedding_bytes(&c.embedding))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    /// Makes `generation` the source's live knowledge, in one transaction. `false`
    /// when the source is gone or a newer generation is live already (the new
    /// chunks are then dropped).
    pub async fn switch_generation(&self, s: &TrainingSwitch) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let moved = sqlx::query(
            "UPDATE sources SET generation = $1, status = 'trained', error = NULL, trained_at = $2 \
             WHERE id = $3 AND generation < $4",
        )
        .bind(s.generation)
        .bind(s.now)
        .bind(&s.source_id)
        .bind(s.generation)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let live = moved.rows_affected() == 1;
        let sql = if live {
            "DELETE FROM chunks WHERE source_id = $1 AND generation <> $2"
        } else {
            "DELETE FROM chunks WHERE source_id = $1 AND generation = $2"
        };
        sqlx::query(sql)
            .bind(&s.source_id)
            .bind(s.generation)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE training_jobs SET status = 'succeeded', stage = 'done', lease_owner = NULL, \
             updated_at = $1 WHERE id = $2",
        )
        .bind(s.now)
        .bind(&s.job_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if live {
            sqlx::query(
                "UPDATE agents SET kb_version = kb_version + 1, last_trained_at = $1 WHERE id = $2",
            )
            .bind(s.now)
            .bind(&s.agent_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        refresh_agent(&mut tx, &s.agent_id, Some(AgentStatus::Trained)).await?;
        crate::webhooks::enqueue_query(
            &agentbase_core::webhook::OutboxEvent::training_finished(
                &s.agent_id,
                &s.source_id,
                "trained",
                s.now,
            ),
            s.now,
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(live)
    }

    /// Ends a job that failed: its chunks go, the source shows `failed` with the
    /// reason, and whatever was live before stays live.
    pub async fn fail_job(
        &self,
        job: &TrainingJob,
        generation: Option<i64>,
        error: &str,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        if let Some(g) = generation {
            sqlx::query("DELETE FROM chunks WHERE source_id = $1 AND generation = $2")
                .bind(&job.source_id)
                .bind(g)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        sqlx::query(
            "UPDATE sources SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(error)
        .bind(now)
        .bind(&job.source_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "UPDATE training_jobs SET status = 'failed', error = $1, lease_owner = NULL, \
             updated_at = $2 WHERE id = $3",
        )
        .bind(error)
        .bind(now)
        .bind(&job.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        refresh_agent(&mut tx, &job.agent_id, Some(AgentStatus::Failed)).await?;
        crate::webhooks::enqueue_query(
            &agentbase_core::webhook::OutboxEvent::training_finished(
                &job.agent_id,
                &job.source_id,
                "failed",
                now,
            ),
            now,
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// The live chunks of an agent, in source and chunk order.
    pub async fn live_chunks(&self, agent_id: &str) -> Result<Vec<StoredChunk>> {
        let rows = sqlx::query(
            "SELECT c.id, c.source_id, c.title, c.url, c.heading, c.text, c.embedding FROM chunks c \
             JOIN sources s ON s.id = c.source_id AND s.generation = c.generation \
             WHERE c.agent_id = $1 ORDER BY s.created_at, s.id, c.ord",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let bytes: Vec<u8> = r.try_get("embedding").map_err(db_err)?;
                Ok(StoredChunk {
                    id: r.try_get("id").map_err(db_err)?,
                    source_id: r.try_get("source_id").map_err(db_err)?,
                    title: r.try_get("title").map_err(db_err)?,
                    url: r.try_get("url").map_err(db_err)?,
                    heading: r.try_get("heading").map_err(db_err)?,
                    text: r.try_get("text").map_err(db_err)?,
                    embedding: embedding_from(&bytes)?,
                })
            })
            .collect()
    }

    /// The agent's knowledge version as the record has it now (bypassing caches).
    pub async fn kb_version(&self, agent_id: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT kb_version FROM agents WHERE id = $1")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get("kb_version").map_err(db_err))
            .transpose()
    }

    /// The workspace an agent belongs to.
    pub async fn agent_workspace(&self, agent_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT workspace_id FROM agents WHERE id = $1")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get("workspace_id").map_err(db_err))
            .transpose()
    }

    // ---- auto-retrain ------------------------------------------------------------

    pub async fn set_auto_retrain(
        &self,
        agent_id: &str,
        enabled: bool,
        next: Option<Millis>,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET auto_retrain = $1, next_retrain_at = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(i64::from(enabled))
        .bind(next)
        .bind(now)
        .bind(agent_id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Agents whose auto-retrain is due: (id, the due time).
    pub async fn retrain_due(&self, now: Millis) -> Result<Vec<(String, Millis)>> {
        let rows = sqlx::query(
            "SELECT id, next_retrain_at FROM agents WHERE auto_retrain = 1 AND \
             next_retrain_at IS NOT NULL AND next_retrain_at <= $1 ORDER BY next_retrain_at LIMIT 100",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id").map_err(db_err)?,
                    r.try_get("next_retrain_at").map_err(db_err)?,
                ))
            })
            .collect()
    }

    /// Moves an agent's next retrain from `due` to `next`; `false` when another
    /// node got there first (only the winner queues the work).
    pub async fn claim_retrain(&self, agent_id: &str, due: Millis, next: Millis) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE agents SET next_retrain_at = $1 WHERE id = $2 AND next_retrain_at = $3",
        )
        .bind(next)
        .bind(agent_id)
        .bind(due)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }
}

async fn insert_job(tx: &mut Transaction<'_, Any>, j: &TrainingJob) -> Result<()> {
    let queued = sqlx::query(
        "SELECT COUNT(*) AS n FROM training_jobs WHERE source_id = $1 AND status = 'queued'",
    )
    .bind(&j.source_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_err)?;
    if queued.try_get::<i64, _>("n").map_err(db_err)? == 0 {
        sqlx::query(&format!(
            "INSERT INTO training_jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11)"
        ))
        .bind(&j.id)
        .bind(&j.agent_id)
        .bind(&j.source_id)
        .bind(j.status.as_str())
        .bind(&j.stage)
        .bind(j.done)
        .bind(j.total)
        .bind(&j.error)
        .bind(j.attempts)
        .bind(j.created_at)
        .bind(j.updated_at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    refresh_agent(tx, &j.agent_id, None).await
}

/// Recomputes the agent's `size` and `status`: `training` while a job is queued
/// or running, else `settled` (the outcome of the job that just ended) or, with
/// none given, trained/untrained by whether knowledge is live.
async fn refresh_agent(
    tx: &mut Transaction<'_, Any>,
    agent_id: &str,
    settled: Option<AgentStatus>,
) -> Result<()> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM training_jobs WHERE agent_id = $1 AND status IN ('queued', 'running')) AS pending, \
         (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM sources WHERE agent_id = $2) AS size, \
         (SELECT COUNT(*) FROM sources WHERE agent_id = $3 AND generation > 0) AS live, \
         (SELECT COUNT(*) FROM sources WHERE agent_id = $4 AND status = 'failed') AS failed",
    )
    .bind(agent_id)
    .bind(agent_id)
    .bind(agent_id)
    .bind(agent_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_err)?;
    let pending: i64 = row.try_get("pending").map_err(db_err)?;
    let size: i64 = row.try_get("size").map_err(db_err)?;
    let live: i64 = row.try_get("live").map_err(db_err)?;
    let failed: i64 = row.try_get("failed").map_err(db_err)?;
    let status = if pending > 0 {
        AgentStatus::Training
    } else if failed > 0 || settled == Some(AgentStatus::Failed) {
        AgentStatus::Failed
    } else if live > 0 {
        AgentStatus::Trained
    } else {
        AgentStatus::Untrained
    };
    sqlx::query("UPDATE agents SET status = $1, size = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(size)
        .bind(agent_id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}
