//! Webhook endpoints and their outbox: events are written beside the change that
//! made them (see `chat.rs`'s batches), claimed by a worker with a lease, and
//! finished with the attempt's log line in one transaction.

use agentbase_core::webhook::{Attempt, Delivery, DeliveryState, OutboxEvent, Webhook};
use agentbase_core::{Cursor, Error, Millis, Result};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Page, Store, bool_int, db_err, json_text};

const WEBHOOK_COLUMNS: &str =
    "id, workspace_id, agent_id, url, secret, events, active, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.webhook_id, d.agent_id, d.event_type, d.body, \
    d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.finished_at";

/// One row per active endpoint of the agent that asked for the event. The
/// delivery id is the event id and the endpoint id, so writing an event twice
/// cannot deliver it twice (SQLite parses the `ON CONFLICT` only because the
/// `SELECT` has a `WHERE`). The event name is one of `webhook::EVENTS` (no LIKE
/// wildcards in them); the quotes make it match a whole JSON string.
pub(crate) const ENQUEUE_SQL: &str = "INSERT INTO webhook_deliveries (id, event_id, webhook_id, \
    workspace_id, agent_id, event_type, body, state, attempts, next_attempt_at, lease_until, \
    created_at) SELECT $1 || '.' || id, $2, id, workspace_id, agent_id, $3, $4, 'pending', 0, $5, \
    0, $6 FROM webhooks WHERE agent_id = $7 AND active = 1 AND events LIKE $8 \
    ON CONFLICT DO NOTHING";

/// The arguments of [`ENQUEUE_SQL`], in order.
pub(crate) enum EnqueueArg {
    Text(String),
    Int(i64),
}

pub(crate) fn enqueue_args(ev: &OutboxEvent, now: Millis) -> Vec<EnqueueArg> {
    use EnqueueArg::{Int, Text};
    vec![
        Text(ev.id.clone()),
        Text(ev.id.clone()),
        Text(ev.event_type.to_owned()),
        Text(ev.body.clone()),
        Int(now),
        Int(now),
        Text(ev.agent_id.clone()),
        Text(format!("%\"{}\"%", ev.event_type)),
    ]
}

/// [`ENQUEUE_SQL`] bound, for running inside a caller's transaction.
pub(crate) fn enqueue_query(
    ev: &OutboxEvent,
    now: Millis,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>> {
    let mut q = sqlx::query(ENQUEUE_SQL);
    for a in enqueue_args(ev, now) {
        q = match a {
            EnqueueArg::Text(t) => q.bind(t),
            EnqueueArg::Int(i) => q.bind(i),
        };
    }
    q
}

/// The two outboxes: the agents' endpoints' (`webhook_deliveries`, with an
/// attempt log) and Apify run webhooks' (`run_webhook_deliveries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outbox {
    Agents,
    Runs,
}

impl Outbox {
    fn table(self) -> &'static str {
        match self {
            Outbox::Agents => "webhook_deliveries",
            Outbox::Runs => "run_webhook_deliveries",
        }
    }
}

/// An attempt's end on its delivery row: the new state, when the next attempt is
/// due, the last answer, and when it ended (unless it is pending again).
pub(crate) fn finish_query(
    outbox: Outbox,
    id: &str,
    o: &AttemptOutcome,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>> {
    let finished =
        (o.state != DeliveryState::Pending).then_some(o.attempt.started_at + o.attempt.duration_ms);
    sqlx::query(match outbox {
        Outbox::Agents => {
            "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, lease_until = 0, \
             last_status = $3, last_error = $4, finished_at = $5 WHERE id = $6"
        }
        Outbox::Runs => {
            "UPDATE run_webhook_deliveries SET state = $1, next_attempt_at = $2, \
             lease_until = 0, last_status = $3, last_error = $4, finished_at = $5 WHERE id = $6"
        }
    })
    .bind(o.state.as_str())
    .bind(o.next_attempt_at)
    .bind(o.attempt.status_code)
    .bind(o.attempt.error.clone())
    .bind(finished)
    .bind(id.to_owned())
}

/// A claimed delivery with where it goes.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: Delivery,
    pub url: String,
    pub secret: String,
}

/// How an attempt ended, for [`Store::finish_attempt`].
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub state: DeliveryState,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Millis,
    pub attempt: Attempt,
}

fn webhook(row: &AnyRow) -> Result<Webhook> {
    let events: String = row.try_get("events").map_err(db_err)?;
    Ok(Webhook {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        url: row.try_get("url").map_err(db_err)?,
        secret: row.try_get("secret").map_err(db_err)?,
        events: serde_json::from_str(&events)
            .map_err(|_| Error::Storage(format!("corrupt webhook events: {events:?}")))?,
        active: row.try_get::<i64, _>("active").map_err(db_err)? != 0,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

fn delivery(row: &AnyRow) -> Result<Delivery> {
    let state: String = row.try_get("state").map_err(db_err)?;
    Ok(Delivery {
        id: row.try_get("id").map_err(db_err)?,
        event_id: row.try_get("event_id").map_err(db_err)?,
        webhook_id: row.try_get("webhook_id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        event_type: row.try_get("event_type").map_err(db_err)?,
        body: row.try_get("body").map_err(db_err)?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| Error::Storage(format!("corrupt delivery state: {state:?}")))?,
        attempts: row.try_get("attempts").map_err(db_err)?,
        next_attempt_at: row.try_get("next_attempt_at").map_err(db_err)?,
        last_status: row.try_get("last_status").map_err(db_err)?,
        last_error: row.try_get("last_error").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        finished_at: row.try_get("finished_at").map_err(db_err)?,
    })
}

impl Store {
    /// Adds an endpoint unless the agent has `max_per_agent` already (checked in
    /// the same statement, so concurrent creations cannot pass it).
    pub async fn insert_webhook(&self, w: &Webhook, max_per_agent: i64) -> Result<bool> {
        let done = sqlx::query(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
             WHERE (SELECT COUNT(*) FROM webhooks WHERE agent_id = $10) < $11"
        ))
        .bind(&w.id)
        .bind(&w.workspace_id)
        .bind(&w.agent_id)
        .bind(&w.url)
        .bind(&w.secret)
        .bind(json_text(&w.events))
        .bind(bool_int(w.active))
        .bind(w.created_at)
        .bind(w.updated_at)
        .bind(&w.agent_id)
        .bind(max_per_agent)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// The agent's endpoints, oldest first.
    pub async fn webhooks(&self, workspace_id: &str, agent_id: &str) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE workspace_id = $1 AND agent_id = $2 \
             ORDER BY created_at, id"
        ))
        .bind(workspace_id)
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(webhook).collect()
    }

    pub async fn webhook(
        &self,
        workspace_id: &str,
        agent_id: &str,
        id: &str,
    ) -> Result<Option<Webhook>> {
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND workspace_id = $2 \
             AND agent_id = $3"
        ))
        .bind(id)
        .bind(workspace_id)
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(webhook).transpose()
    }

    /// Writes the endpoint's url, secret, events and state.
    pub async fn update_webhook(&self, w: &Webhook) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhooks SET url = $1, secret = $2, events = $3, active = $4, updated_at = $5 \
             WHERE id = $6 AND workspace_id = $7 AND agent_id = $8",
        )
        .bind(&w.url)
        .bind(&w.secret)
        .bind(json_text(&w.events))
        .bind(bool_int(w.active))
        .bind(w.updated_at)
        .bind(&w.id)
        .bind(&w.workspace_id)
        .bind(&w.agent_id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the endpoint with its deliveries and their log.
    pub async fn delete_webhook(
        &self,
        workspace_id: &str,
        agent_id: &str,
        id: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM webhooks WHERE id = $1 AND workspace_id = $2 AND agent_id = $3",
        )
        .bind(id)
        .bind(workspace_id)
        .bind(agent_id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Writes `ev` for each endpoint of its agent that wants it; the number written.
    /// (Chat turns write theirs inside the turn's transaction instead.)
    pub async fn enqueue_event(&self, ev: &OutboxEvent, now: Millis) -> Result<u64> {
        let done = enqueue_query(ev, now)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    /// Ids of deliveries due at `now` to active endpoints and not leased: each
    /// workspace's oldest due first, in turns by workspace.
    pub async fn due_deliveries(&self, now: Millis, limit: i64) -> Result<Vec<String>> {
        self.due_in(Outbox::Agents, now, limit).await
    }

    /// Due deliveries of `outbox`, taken in turns by workspace: every workspace's
    /// oldest due delivery, then every workspace's second, and so on. One tenant's
    /// backlog (thousands of events for an endpoint that never answers) then does
    /// not stand in front of another tenant's next delivery.
    pub(crate) async fn due_in(
        &self,
        outbox: Outbox,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<String>> {
        let (from, only) = match outbox {
            Outbox::Agents => (
                "webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id",
                " AND w.active = 1",
            ),
            Outbox::Runs => ("run_webhook_deliveries d", ""),
        };
        let rows = sqlx::query(&format!(
            "SELECT id FROM (SELECT d.id, d.next_attempt_at, ROW_NUMBER() OVER \
             (PARTITION BY d.workspace_id ORDER BY d.next_attempt_at, d.id) AS turn \
             FROM {from} WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
             AND d.lease_until <= $2{only}) due ORDER BY turn, next_attempt_at, id LIMIT $3"
        ))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(db_err))
            .collect()
    }

    /// Takes due delivery `id` of `outbox` until `lease_until` and counts the
    /// attempt; `false` when another worker (here or on another node) took it first.
    pub(crate) async fn lease(
        &self,
        outbox: Outbox,
        id: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(&format!(
            "UPDATE {} SET lease_until = $1, attempts = attempts + 1 \
             WHERE id = $2 AND state = 'pending' AND next_attempt_at <= $3 AND lease_until <= $4",
            outbox.table()
        ))
        .bind(lease_until)
        .bind(id)
        .bind(now)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes a due delivery until `lease_until` and counts the attempt; `None` when
    /// another worker (here or on another node) took it first.
    pub async fn claim_delivery(
        &self,
        id: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Option<ClaimedDelivery>> {
        if !self.lease(Outbox::Agents, id, now, lease_until).await? {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS}, w.url, w.secret FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1"
        ))
        .bind(id)
        // The writer: on SQLite a reader could still see the row before the claim.
        .fetch_optional(&self.writer)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(ClaimedDelivery {
            delivery: delivery(&row)?,
            url: row.try_get("url").map_err(db_err)?,
            secret: row.try_get("secret").map_err(db_err)?,
        }))
    }

    /// Ends an attempt: the delivery's new state and the log line, together.
    pub async fn finish_attempt(&self, id: &str, o: &AttemptOutcome) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        finish_query(Outbox::Agents, id, o)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, \
             status_code, error) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(o.attempt.attempt)
        .bind(o.attempt.started_at)
        .bind(o.attempt.duration_ms)
        .bind(o.attempt.status_code)
        .bind(&o.attempt.error)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// An endpoint's deliveries, newest first, keyset-paginated on (created_at, id).
    pub async fn deliveries(
        &self,
        workspace_id: &str,
        webhook_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Delivery>> {
        let limit = i64::from(limit.max(1));
        let (t, id) = match after {
            Some(c) => (c.t, c.id.clone()),
            None => (i64::MAX, String::new()),
        };
        // Without a cursor every row passes: created_at < i64::MAX.
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.workspace_id = $1 \
             AND d.webhook_id = $2 AND (d.created_at < $3 OR (d.created_at = $4 AND d.id < $5)) \
             ORDER BY d.created_at DESC, d.id DESC LIMIT $6"
        ))
        .bind(workspace_id)
        .bind(webhook_id)
        .bind(t)
        .bind(t)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE workspace_id = $1 AND webhook_id = $2",
        )
        .bind(workspace_id)
        .bind(webhook_id)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_err)?;
        let has_more = rows.len() as i64 > limit;
        let items = rows
            .iter()
            .take(limit as usize)
            .map(delivery)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            has_more,
            total,
        })
    }

    /// The log of a delivery's attempts, first first.
    pub async fn delivery_attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT attempt, started_at, duration_ms, status_code, error FROM webhook_attempts \
             WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(Attempt {
                    attempt: r.try_get("attempt").map_err(db_err)?,
                    started_at: r.try_get("started_at").map_err(db_err)?,
                    duration_ms: r.try_get("duration_ms").map_err(db_err)?,
                    status_code: r.try_get("status_code").map_err(db_err)?,
                    error: r.try_get("error").map_err(db_err)?,
                })
            })
            .collect()
    }
}
