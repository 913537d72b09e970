//! Conversations, messages, tool calls, the turn lease and the credit ledger.

use agentbase_core::conversation::{
    Conversation, ConversationStatus, CreditEntry, Feedback, Message, MessageRole, Part,
    ToolCallRecord, ToolCallStatus,
};
use agentbase_core::{Cursor, Error, Millis, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Page, Store, db_err, json_text};

const CONVERSATION_COLUMNS: &str =
    "id, workspace_id, agent_id, user_id, title, status, source, created_at, updated_at";
const MESSAGE_COLUMNS: &str = "id, conversation_id, seq, role, parts, created_at, feedback, score, finish_reason, credits, \
     sources";
const TOOL_CALL_COLUMNS: &str =
    "id, conversation_id, message_id, name, input, status, output, created_at, expires_at";

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("corrupt {what} in the record"))
}

fn conversation(row: &AnyRow) -> Result<Conversation> {
    let status: String = row.try_get("status").map_err(db_err)?;
    Ok(Conversation {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        user_id: row.try_get("user_id").map_err(db_err)?,
        title: row.try_get("title").map_err(db_err)?,
        status: ConversationStatus::parse(&status).ok_or_else(|| corrupt("conversation status"))?,
        source: row.try_get("source").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

fn message(row: &AnyRow) -> Result<Message> {
    let role: String = row.try_get("role").map_err(db_err)?;
    let parts: String = row.try_get("parts").map_err(db_err)?;
    let feedback: Option<String> = row.try_get("feedback").map_err(db_err)?;
    Ok(Message {
        id: row.try_get("id").map_err(db_err)?,
        conversation_id: row.try_get("conversation_id").map_err(db_err)?,
        seq: row.try_get("seq").map_err(db_err)?,
        role: MessageRole::parse(&role).ok_or_else(|| corrupt("message role"))?,
        parts: serde_json::from_str(&parts).map_err(|_| corrupt("message parts"))?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        feedback: feedback
            .as_deref()
            .map(|f| Feedback::parse(f).ok_or_else(|| corrupt("feedback")))
            .transpose()?,
        score: row.try_get("score").map_err(db_err)?,
        finish_reason: row.try_get("finish_reason").map_err(db_err)?,
        credits: row.try_get("credits").map_err(db_err)?,
        sources: {
            let s: Option<String> = row.try_get("sources").map_err(db_err)?;
            match s {
                Some(s) => serde_json::from_str(&s).map_err(|_| corrupt("message sources"))?,
                None => Vec::new(),
            }
        },
    })
}

fn tool_call(row: &AnyRow) -> Result<ToolCallRecord> {
    let status: String = row.try_get("status").map_err(db_err)?;
    let input: String = row.try_get("input").map_err(db_err)?;
    let output: Option<String> = row.try_get("output").map_err(db_err)?;
    Ok(ToolCallRecord {
        id: row.try_get("id").map_err(db_err)?,
        conversation_id: row.try_get("conversation_id").map_err(db_err)?,
        message_id: row.try_get("message_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        input: serde_json::from_str(&input).map_err(|_| corrupt("tool input"))?,
        status: match status.as_str() {
            "pending" => ToolCallStatus::Pending,
            "resolved" => ToolCallStatus::Resolved,
            _ => return Err(corrupt("tool call status")),
        },
        output: output
            .map(|o| serde_json::from_str(&o).map_err(|_| corrupt("tool output")))
            .transpose()?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
    })
}

/// Which conversations a list shows.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub created_from: Option<Millis>,
    pub created_to: Option<Millis>,
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
    pub sources: Option<Vec<String>>,
}

/// A held turn lease; release it with [`Store::release_turn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnLease {
    pub conversation_id: String,
    pub token: String,
}

/// What a finished turn writes in one transaction.
#[derive(Debug, Clone)]
pub struct NewTurn {
    /// A conversation not yet in the record and its first (user) message, written
    /// first: a turn whose caller acknowledges nothing before the answer (a JSON
    /// response) opens its conversation in the same transaction as the answer.
    /// The conversation is stored unleased, with the answer's time and the title.
    pub opening: Option<(Conversation, Message)>,
    pub message: Message,
    pub credit: Option<CreditEntry>,
    pub agent_id: String,
    pub title: Option<String>,
    /// The UTC month the charge counts towards (for the agent's counter).
    pub month_start: Millis,
    /// The turn's lease, released in the same transaction.
    pub lease: Option<TurnLease>,
}

/// Builds `WHERE` clauses with `$n` placeholders numbered in binding order.
pub(crate) struct Where {
    clauses: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Where {
    pub(crate) fn new() -> Self {
        Self {
            clauses: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Records an argument and returns its placeholder.
    pub(crate) fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    pub(crate) fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    pub(crate) fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

fn filter_where(agent_id: &str, filter: &ConversationFilter) -> Where {
    let mut w = Where::new();
    let p = w.arg(Arg::Text(agent_id.to_owned()));
    w.push(format!("agent_id = {p}"));
    if let Some(from) = filter.created_from {
        let p = w.arg(Arg::Int(from));
        w.push(format!("created_at >= {p}"));
    }
    if let Some(to) = filter.created_to {
        let p = w.arg(Arg::Int(to));
        w.push(format!("created_at <= {p}"));
    }
    if let Some(u) = &filter.user_id {
        let p = w.arg(Arg::Text(u.clone()));
        w.push(format!("user_id = {p}"));
    }
    if let Some(id) = &filter.conversation_id {
        let p = w.arg(Arg::Text(id.clone()));
        w.push(format!("id = {p}"));
    }
    if let Some(sources) = &filter.sources {
        let marks: Vec<String> = sources
            .iter()
            .map(|s| w.arg(Arg::Text(s.clone())))
            .collect();
        w.push(if marks.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("source IN ({})", marks.join(", "))
        });
    }
    w
}

pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// One page of `table`, newest first on (`col`, id), keyset-paginated from `after`,
/// with the total the filter `w` matches.
pub(crate) async fn keyset_page<T>(
    pool: &sqlx::AnyPool,
    (table, columns): (&str, &str),
    mut w: Where,
    col: &str,
    after: Option<&Cursor>,
    limit: u32,
    decode: fn(&AnyRow) -> Result<T>,
) -> Result<Page<T>> {
    let count_sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {}", w.sql());
    let total: i64 = bind_all(sqlx::query(&count_sql), &w.args)
        .fetch_one(pool)
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(db_err)?;
    if let Some(c) = after {
        let (a, b) = (w.arg(Arg::Int(c.t)), w.arg(Arg::Text(c.id.clone())));
        // A row-value comparison lets both engines walk the index from the cursor.
        w.push(format!("({col}, id) < ({a}, {b})"));
    }
    let lim = w.arg(Arg::Int(i64::from(limit) + 1));
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE {} ORDER BY {col} DESC, id DESC LIMIT {lim}",
        w.sql()
    );
    let rows = bind_all(sqlx::query(&sql), &w.args)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    let has_more = rows.len() > limit as usize;
    let items = rows
        .iter()
        .take(limit as usize)
        .map(decode)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page {
        items,
        has_more,
        total,
    })
}

pub(crate) fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::Int(i) => q.bind(*i),
        };
    }
    q
}

impl Store {
    pub async fn insert_conversation(
        &self,
        c: &Conversation,
        lease: Option<(&str, Millis)>,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        insert_conversation(&mut tx, c, lease).await?;
        tx.commit().await.map_err(db_err)
    }

    /// A new conversation (leased to the turn that makes it) with its first user
    /// message, in one transaction.
    pub async fn insert_conversation_with_message(
        &self,
        c: &Conversation,
        lease: Option<(&str, Millis)>,
        m: &Message,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        insert_conversation(&mut tx, c, lease).await?;
        insert_messages(&mut tx, &[m]).await?;
        tx.commit().await.map_err(db_err)
    }
}

async fn insert_conversation(
    tx: &mut Transaction<'_, Any>,
    c: &Conversation,
    lease: Option<(&str, Millis)>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO conversations (id, workspace_id, agent_id, user_id, title, status, source, \
             created_at, updated_at, turn_token, turn_expires) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&c.id)
    .bind(&c.workspace_id)
    .bind(&c.agent_id)
    .bind(&c.user_id)
    .bind(&c.title)
    .bind(c.status.as_str())
    .bind(&c.source)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(lease.map(|l| l.0))
    .bind(lease.map(|l| l.1))
    .execute(&mut **tx)
    .await
    .map_err(|e| match e.as_database_error() {
        Some(d) if d.is_unique_violation() => {
            Error::Conflict("conversationId is already in use".into())
        }
        _ => db_err(e),
    })?;
    Ok(())
}

impl Store {
    /// A conversation of the workspace, whatever its agent.
    pub async fn conversation(&self, workspace_id: &str, id: &str) -> Result<Option<Conversation>> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1 AND workspace_id = $2"
        ))
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(conversation).transpose()
    }

    pub async fn set_conversation_status(
        &self,
        id: &str,
        status: ConversationStatus,
        now: Millis,
    ) -> Result<()> {
        sqlx::query("UPDATE conversations SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Takes the conversation's turn lease when it is free or expired.
    pub async fn acquire_turn(
        &self,
        conversation_id: &str,
        token: &str,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<Option<TurnLease>> {
        let done = sqlx::query(
            "UPDATE conversations SET turn_token = $1, turn_expires = $2 \
             WHERE id = $3 AND (turn_token IS NULL OR turn_expires < $4)",
        )
        .bind(token)
        .bind(now + ttl_ms)
        .bind(conversation_id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok((done.rows_affected() == 1).then(|| TurnLease {
            conversation_id: conversation_id.to_owned(),
            token: token.to_owned(),
        }))
    }

    pub async fn release_turn(&self, lease: &TurnLease) -> Result<()> {
        sqlx::query(
            "UPDATE conversations SET turn_token = NULL, turn_expires = NULL WHERE id = $1 AND turn_token = $2",
        )
        .bind(&lease.conversation_id)
        .bind(&lease.token)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Conversations of an agent, newest first, keyset-paginated on (created_at, id).
    pub async fn conversations(
        &self,
        agent_id: &str,
        filter: &ConversationFilter,
        after: Option<&Cursor>,
        limit: u32,
        order_by_activity: bool,
    ) -> Result<Page<Conversation>> {
        let col = if order_by_activity {
            "updated_at"
        } else {
            "created_at"
        };
        keyset_page(
            &self.pool,
            ("conversations", CONVERSATION_COLUMNS),
            filter_where(agent_id, filter),
            col,
            after,
            limit,
            conversation,
        )
        .await
    }

    /// Offset pagination for the v1 API (`page`, `size`), newest first.
    pub async fn conversations_by_offset(
        &self,
        agent_id: &str,
        filter: &ConversationFilter,
        offset: i64,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        let mut w = filter_where(agent_id, filter);
        let lim = w.arg(Arg::Int(i64::from(limit)));
        let off = w.arg(Arg::Int(offset));
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {} ORDER BY created_at DESC, id DESC \
             LIMIT {lim} OFFSET {off}",
            w.sql()
        );
        let rows = bind_all(sqlx::query(&sql), &w.args)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(conversation).collect()
    }

    pub async fn insert_message(&self, m: &Message) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        insert_messages(&mut tx, &[m]).await?;
        sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
            .bind(m.created_at)
            .bind(&m.conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// The assistant message, its credit charge, the conversation's and agent's
    /// activity times and the lease's release (or, with `opening`, the new
    /// conversation and its first message), in one transaction of as few
    /// statements as the writes allow: on SQLite every statement is a round trip to
    /// the writer's thread while the one writer is held.
    pub async fn finish_turn(&self, turn: &NewTurn) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        match &turn.opening {
            Some((c, first)) => {
                let c = Conversation {
                    title: c.title.clone().or_else(|| turn.title.clone()),
                    updated_at: turn.message.created_at,
                    ..c.clone()
                };
                insert_conversation(&mut tx, &c, None).await?;
                insert_messages(&mut tx, &[first, &turn.message]).await?;
            }
            None => insert_messages(&mut tx, &[&turn.message]).await?,
        }
        if let Some(c) = &turn.credit {
            sqlx::query(
                "INSERT INTO credit_ledger (id, workspace_id, agent_id, conversation_id, message_id, model, \
                 credits, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&c.id)
            .bind(&c.workspace_id)
            .bind(&c.agent_id)
            .bind(&c.conversation_id)
            .bind(&c.message_id)
            .bind(&c.model)
            .bind(c.credits)
            .bind(c.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        if turn.opening.is_none() {
            // Activity, title and the lease's release in one statement (every
            // right-hand side reads the row as it was).
            let token = turn.lease.as_ref().map(|l| l.token.as_str());
            sqlx::query(
                "UPDATE conversations SET updated_at = $1, title = COALESCE(title, $2), \
                 turn_token = CASE WHEN turn_token = $3 THEN NULL ELSE turn_token END, \
                 turn_expires = CASE WHEN turn_token = $4 THEN NULL ELSE turn_expires END \
                 WHERE id = $5",
            )
            .bind(turn.message.created_at)
            .bind(&turn.title)
            .bind(token)
            .bind(token)
            .bind(&turn.message.conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        match &turn.credit {
            Some(c) => {
                sqlx::query(
                    "UPDATE agents SET last_message_at = $1, \
                     credits_used = CASE WHEN credits_month = $2 THEN credits_used + $3 ELSE $4 END, \
                     credits_month = $5 WHERE id = $6",
                )
                .bind(turn.message.created_at)
                .bind(turn.month_start)
                .bind(c.credits)
                .bind(c.credits)
                .bind(turn.month_start)
                .bind(&turn.agent_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                sqlx::query(
                    "UPDATE workspaces SET credits_used = CASE WHEN credits_month = $1 THEN credits_used + $2 ELSE $3 END, \
                     credits_month = $4 WHERE id = $5",
                )
                .bind(turn.month_start)
                .bind(c.credits)
                .bind(c.credits)
                .bind(turn.month_start)
                .bind(&c.workspace_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            None => {
                sqlx::query("UPDATE agents SET last_message_at = $1 WHERE id = $2")
                    .bind(turn.message.created_at)
                    .bind(&turn.agent_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    /// Every message, oldest first.
    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY seq"
        ))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(message).collect()
    }

    /// The newest `limit` messages with `seq` below `before` (when given), returned
    /// oldest first; `has_more` when older ones remain.
    pub async fn message_page(
        &self,
        conversation_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page<Message>> {
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE conversation_id = $1")
                .bind(conversation_id)
                .fetch_one(&self.pool)
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(db_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(conversation_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let has_more = rows.len() > limit as usize;
        let mut items = rows
            .iter()
            .take(limit as usize)
            .map(message)
            .collect::<Result<Vec<_>>>()?;
        items.reverse();
        Ok(Page {
            items,
            has_more,
            total,
        })
    }

    pub async fn message(&self, conversation_id: &str, id: &str) -> Result<Option<Message>> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND conversation_id = $2"
        ))
        .bind(id)
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(message).transpose()
    }

    pub async fn set_feedback(&self, id: &str, feedback: Option<Feedback>) -> Result<()> {
        sqlx::query("UPDATE messages SET feedback = $1 WHERE id = $2")
            .bind(feedback.map(Feedback::as_str))
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Removes messages from `seq` on (a retry's truncation), with their tool calls.
    pub async fn truncate_from(&self, conversation_id: &str, seq: i64) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "DELETE FROM tool_calls WHERE conversation_id = $1 AND message_id IN \
             (SELECT id FROM messages WHERE conversation_id = $2 AND seq >= $3)",
        )
        .bind(conversation_id)
        .bind(conversation_id)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM messages WHERE conversation_id = $1 AND seq >= $2")
            .bind(conversation_id)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    pub async fn insert_tool_call(&self, t: &ToolCallRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO tool_calls ({TOOL_CALL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&t.id)
        .bind(&t.conversation_id)
        .bind(&t.message_id)
        .bind(&t.name)
        .bind(json_text(&t.input))
        .bind(match t.status {
            ToolCallStatus::Pending => "pending",
            ToolCallStatus::Resolved => "resolved",
        })
        .bind(t.output.as_ref().map(json_text))
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Resolves a pending, unexpired call; false when there is none.
    pub async fn resolve_tool_call(
        &self,
        conversation_id: &str,
        id: &str,
        output: &serde_json::Value,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tool_calls SET status = 'resolved', output = $1 \
             WHERE id = $2 AND conversation_id = $3 AND status = 'pending' AND expires_at > $4",
        )
        .bind(json_text(output))
        .bind(id)
        .bind(conversation_id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn tool_calls(&self, conversation_id: &str) -> Result<Vec<ToolCallRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE conversation_id = $1 ORDER BY created_at, id"
        ))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(tool_call).collect()
    }

    /// This month's spend of the workspace and of one of its agents, from their
    /// counters (kept in step with the ledger by [`Store::finish_turn`]).
    pub async fn credits_this_month(
        &self,
        workspace_id: &str,
        agent_id: &str,
        month_start: Millis,
    ) -> Result<(f64, f64)> {
        let row = sqlx::query(
            "SELECT CASE WHEN w.credits_month = $1 THEN w.credits_used ELSE CAST(0 AS DOUBLE PRECISION) END AS ws, \
             CASE WHEN a.credits_month = $2 THEN a.credits_used ELSE CAST(0 AS DOUBLE PRECISION) END AS ag \
             FROM workspaces w JOIN agents a ON a.workspace_id = w.id WHERE w.id = $3 AND a.id = $4",
        )
        .bind(month_start)
        .bind(month_start)
        .bind(workspace_id)
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match row {
            Some(r) => Ok((
                r.try_get("ws").map_err(db_err)?,
                r.try_get("ag").map_err(db_err)?,
            )),
            None => Ok((0.0, 0.0)),
        }
    }

    /// This month's spend of the workspace, from its counter.
    pub async fn workspace_credits(&self, workspace_id: &str, month_start: Millis) -> Result<f64> {
        let row = sqlx::query(
            "SELECT CASE WHEN credits_month = $1 THEN credits_used ELSE CAST(0 AS DOUBLE PRECISION) END AS ws \
             FROM workspaces WHERE id = $2",
        )
        .bind(month_start)
        .bind(workspace_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match row {
            Some(r) => r.try_get("ws").map_err(db_err),
            None => Ok(0.0),
        }
    }

    pub async fn ledger(&self, workspace_id: &str) -> Result<Vec<CreditEntry>> {
        let rows = sqlx::query(
            "SELECT id, workspace_id, agent_id, conversation_id, message_id, model, credits, created_at \
             FROM credit_ledger WHERE workspace_id = $1 ORDER BY created_at, id",
        )
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(CreditEntry {
                    id: r.try_get("id").map_err(db_err)?,
                    workspace_id: r.try_get("workspace_id").map_err(db_err)?,
                    agent_id: r.try_get("agent_id").map_err(db_err)?,
                    conversation_id: r.try_get("conversation_id").map_err(db_err)?,
                    message_id: r.try_get("message_id").map_err(db_err)?,
                    model: r.try_get("model").map_err(db_err)?,
                    credits: r.try_get("credits").map_err(db_err)?,
                    created_at: r.try_get("created_at").map_err(db_err)?,
                })
            })
            .collect()
    }
}

/// One `INSERT` for any number of messages (one round trip).
async fn insert_messages(tx: &mut Transaction<'_, Any>, ms: &[&Message]) -> Result<()> {
    const COLUMNS: usize = 11;
    let rows: Vec<String> = (0..ms.len())
        .map(|r| {
            let cells: Vec<String> = (1..=COLUMNS)
                .map(|c| format!("${}", r * COLUMNS + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {}",
        rows.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for m in ms {
        let parts: &[Part] = &m.parts;
        q = q
            .bind(&m.id)
            .bind(&m.conversation_id)
            .bind(m.seq)
            .bind(m.role.as_str())
            .bind(json_text(parts))
            .bind(m.created_at)
            .bind(m.feedback.map(Feedback::as_str))
            .bind(m.score)
            .bind(&m.finish_reason)
            .bind(m.credits)
            .bind((!m.sources.is_empty()).then(|| json_text(&m.sources)));
    }
    q.execute(&mut **tx).await.map_err(db_err)?;
    Ok(())
}
