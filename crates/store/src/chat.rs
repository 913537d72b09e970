//! Conversations, messages, tool calls, the turn lease and the credit ledger.

use agentbase_core::conversation::{
    Conversation, ConversationStatus, CreditEntry, Feedback, Message, MessageRole, Part,
    ToolCallRecord, ToolCallStatus,
};
use agentbase_core::webhook::OutboxEvent;
use agentbase_core::{Cursor, Error, Millis, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::webhooks::{ENQUEUE_SQL, EnqueueArg, enqueue_args, enqueue_query};
use crate::{Backend, Page, Store, db_err, json_text};

pub(crate) const CONVERSATION_COLUMNS: &str =
    "id, workspace_id, agent_id, user_id, title, status, source, created_at, updated_at";
const MESSAGE_COLUMNS: &str = "id, conversation_id, seq, role, parts, created_at, feedback, score, finish_reason, credits, \
     sources";
/// What reads take: the written columns and the spam flag, which is only ever set
/// afterwards ([`Store::flag_spam`]).
const MESSAGE_READ: &str = "id, conversation_id, seq, role, parts, created_at, feedback, score, finish_reason, credits, \
     sources, spam";
const TOOL_CALL_COLUMNS: &str =
    "id, conversation_id, message_id, name, input, status, output, created_at, expires_at";

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("corrupt {what} in the record"))
}

pub(crate) fn conversation(row: &AnyRow) -> Result<Conversation> {
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
        spam: row.try_get::<i64, _>("spam").map_err(db_err)? != 0,
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

/// `conversation_id IN (…)` over `ids` (not empty), with its arguments.
fn of_conversations(ids: &[String]) -> Where {
    let mut w = Where::new();
    let marks: Vec<String> = (ids.iter())
        .map(|id| w.arg(Arg::Text(id.clone())))
        .collect();
    w.push(format!("conversation_id IN ({})", marks.join(", ")));
    w
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
///
/// The total comes from a scalar subquery of the page's own statement: one round
/// trip to the database (on SQLite, one wake-up of a connection's worker thread
/// each way) instead of two, and the count and the rows see the same snapshot. A
/// page past the end has no row to carry it, so only then is it counted apart.
pub(crate) async fn keyset_page<T>(
    pool: &sqlx::AnyPool,
    (table, columns): (&str, &str),
    mut w: Where,
    col: &str,
    after: Option<&Cursor>,
    limit: u32,
    decode: fn(&AnyRow) -> Result<T>,
) -> Result<Page<T>> {
    let filter = w.sql();
    let filter_args = w.args.len();
    if let Some(c) = after {
        let (a, b) = (w.arg(Arg::Int(c.t)), w.arg(Arg::Text(c.id.clone())));
        // A row-value comparison lets both engines walk the index from the cursor.
        w.push(format!("({col}, id) < ({a}, {b})"));
    }
    let lim = w.arg(Arg::Int(i64::from(limit) + 1));
    let sql = format!(
        "SELECT {columns}, (SELECT COUNT(*) FROM {table} WHERE {filter}) AS page_total__ \
         FROM {table} WHERE {} ORDER BY {col} DESC, id DESC LIMIT {lim}",
        w.sql()
    );
    let rows = bind_all(sqlx::query(&sql), &w.args)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    let total: i64 = match rows.first() {
        Some(row) => row.try_get("page_total__").map_err(db_err)?,
        // Without a cursor the page's filter is the count's: nothing matched.
        None if after.is_none() => 0,
        None => {
            let count_sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
            bind_all(sqlx::query(&count_sql), &w.args[..filter_args])
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(db_err)?
        }
    };
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
        let mut b = Batch::default();
        push_conversation(&mut b, c, lease);
        push_messages(&mut b, &[m]);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        b.run(&mut tx, self.backend).await?;
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
    enqueue_query(&OutboxEvent::conversation_started(c), c.created_at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

impl Store {
    /// A conversation of the workspace, whatever its agent.
    /// The workspace's conversation `id`: by the record's id, or by the name a v1
    /// client gave it (see [`agentbase_core::conversation::v1_id`]).
    pub async fn conversation(&self, workspace_id: &str, id: &str) -> Result<Option<Conversation>> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE (id = $1 OR id = $3) \
             AND workspace_id = $2 ORDER BY id = $1 DESC LIMIT 1"
        ))
        .bind(id)
        .bind(workspace_id)
        .bind(agentbase_core::conversation::v1_id(workspace_id, id))
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

    /// Extends a held lease to `now + ttl_ms`. `false` once the lease is no longer
    /// this token's (released, or expired and taken by another turn).
    pub async fn renew_turn(&self, lease: &TurnLease, now: Millis, ttl_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE conversations SET turn_expires = $1 WHERE id = $2 AND turn_token = $3",
        )
        .bind(now + ttl_ms)
        .bind(&lease.conversation_id)
        .bind(&lease.token)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
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

    /// Flags a user message as spam and pauses its conversation, so it is kept
    /// but never answered.
    pub async fn flag_spam(&self, conversation_id: &str, message_id: &str) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("UPDATE messages SET spam = 1 WHERE id = $1 AND conversation_id = $2")
            .bind(message_id)
            .bind(conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("UPDATE conversations SET status = 'paused' WHERE id = $1")
            .bind(conversation_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    /// A message of an existing conversation, with the conversation's activity.
    pub async fn insert_message(&self, m: &Message) -> Result<()> {
        let mut b = Batch::default();
        push_messages(&mut b, &[m]);
        b.push(
            "UPDATE conversations SET updated_at = $1 WHERE id = $2",
            vec![
                Val::Int(Some(m.created_at)),
                Val::Text(Some(m.conversation_id.clone())),
            ],
        );
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        b.run(&mut tx, self.backend).await?;
        tx.commit().await.map_err(db_err)
    }

    /// The assistant message, its credit charge, the conversation's and agent's
    /// activity times and the lease's release (or, with `opening`, the new
    /// conversation and its first message), in one transaction. On SQLite every
    /// statement is a round trip to the writer's thread while the one writer is
    /// held, so the statements go as one [`Batch`]: begin, batch, commit.
    pub async fn finish_turn(&self, turn: &NewTurn) -> Result<()> {
        let mut b = Batch::default();
        let answer = &turn.message;
        let answered = OutboxEvent::message_answered(&turn.agent_id, answer);
        match &turn.opening {
            Some((c, first)) => {
                let c = Conversation {
                    title: c.title.clone().or_else(|| turn.title.clone()),
                    updated_at: answer.created_at,
                    ..c.clone()
                };
                push_conversation(&mut b, &c, None);
                push_messages(&mut b, &[first, answer]);
            }
            None => {
                push_messages(&mut b, &[answer]);
                // Activity, title and the lease's release in one statement (every
                // right-hand side reads the row as it was).
                let token = turn.lease.as_ref().map(|l| l.token.clone());
                b.push(
                    "UPDATE conversations SET updated_at = $1, title = COALESCE(title, $2), \
                     turn_token = CASE WHEN turn_token = $3 THEN NULL ELSE turn_token END, \
                     turn_expires = CASE WHEN turn_token = $4 THEN NULL ELSE turn_expires END \
                     WHERE id = $5",
                    vec![
                        Val::Int(Some(answer.created_at)),
                        Val::Text(turn.title.clone()),
                        Val::Text(token.clone()),
                        Val::Text(token),
                        Val::Text(Some(answer.conversation_id.clone())),
                    ],
                );
            }
        }
        match &turn.credit {
            Some(c) => {
                b.push(
                    "INSERT INTO credit_ledger (id, workspace_id, agent_id, conversation_id, message_id, model, \
                     credits, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    vec![
                        Val::Text(Some(c.id.clone())),
                        Val::Text(Some(c.workspace_id.clone())),
                        Val::Text(Some(c.agent_id.clone())),
                        Val::Text(c.conversation_id.clone()),
                        Val::Text(c.message_id.clone()),
                        Val::Text(Some(c.model.clone())),
                        Val::Real(Some(c.credits)),
                        Val::Int(Some(c.created_at)),
                    ],
                );
                b.push(
                    "UPDATE agents SET last_message_at = $1, \
                     credits_used = CASE WHEN credits_month = $2 THEN credits_used + $3 ELSE $4 END, \
                     credits_month = $5 WHERE id = $6",
                    vec![
                        Val::Int(Some(answer.created_at)),
                        Val::Int(Some(turn.month_start)),
                        Val::Real(Some(c.credits)),
                        Val::Real(Some(c.credits)),
                        Val::Int(Some(turn.month_start)),
                        Val::Text(Some(turn.agent_id.clone())),
                    ],
                );
                b.push(
                    "UPDATE workspaces SET credits_used = CASE WHEN credits_month = $1 THEN credits_used + $2 ELSE $3 END, \
                     credits_month = $4 WHERE id = $5",
                    vec![
                        Val::Int(Some(turn.month_start)),
                        Val::Real(Some(c.credits)),
                        Val::Real(Some(c.credits)),
                        Val::Int(Some(turn.month_start)),
                        Val::Text(Some(c.workspace_id.clone())),
                    ],
                );
            }
            None => b.push(
                "UPDATE agents SET last_message_at = $1 WHERE id = $2",
                vec![
                    Val::Int(Some(answer.created_at)),
                    Val::Text(Some(turn.agent_id.clone())),
                ],
            ),
        }
        push_event(&mut b, &answered, answer.created_at);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        b.run(&mut tx, self.backend).await?;
        tx.commit().await.map_err(db_err)
    }

    /// The newest `limit` messages, oldest first (what a prompt can use).
    pub async fn recent_messages(&self, conversation_id: &str, limit: u32) -> Result<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_READ} FROM messages WHERE conversation_id = $1 \
             ORDER BY seq DESC LIMIT $2"
        ))
        .bind(conversation_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut messages = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// Every message, oldest first.
    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_READ} FROM messages WHERE conversation_id = $1 ORDER BY seq"
        ))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(message).collect()
    }

    /// Every message of each of `conversation_ids`, grouped by conversation (in the
    /// order of the ids) and oldest first within each: one query for a page of an
    /// export instead of one per conversation.
    pub async fn messages_of(&self, conversation_ids: &[String]) -> Result<Vec<Message>> {
        if conversation_ids.is_empty() {
            return Ok(Vec::new());
        }
        let w = of_conversations(conversation_ids);
        let sql = format!("SELECT {MESSAGE_READ} FROM messages WHERE {}", w.sql());
        let rows = (bind_all(sqlx::query(&sql), &w.args).fetch_all(&self.pool))
            .await
            .map_err(db_err)?;
        // In the order of the ids, then of the conversation.
        let mut messages = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
        let order = |id: &str| conversation_ids.iter().position(|c| c == id);
        messages.sort_by_key(|m| (order(&m.conversation_id), m.seq));
        Ok(messages)
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
            "SELECT {MESSAGE_READ} FROM messages WHERE conversation_id = $1 AND seq < $2 \
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
            "SELECT {MESSAGE_READ} FROM messages WHERE id = $1 AND conversation_id = $2"
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

    /// The tool calls of each of `conversation_ids` (see [`Store::messages_of`]).
    pub async fn tool_calls_of(&self, conversation_ids: &[String]) -> Result<Vec<ToolCallRecord>> {
        if conversation_ids.is_empty() {
            return Ok(Vec::new());
        }
        let w = of_conversations(conversation_ids);
        let sql = format!(
            "SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE {} ORDER BY created_at, id",
            w.sql()
        );
        let rows = (bind_all(sqlx::query(&sql), &w.args).fetch_all(&self.pool))
            .await
            .map_err(db_err)?;
        rows.iter().map(tool_call).collect()
    }

    /// This month's spend of the workspace, from its counter (kept in step with
    /// the ledger by [`Store::finish_turn`]).
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

/// One `INSERT` for any number of messages.
fn push_messages(b: &mut Batch, ms: &[&Message]) {
    const COLUMNS: usize = 11;
    let rows: Vec<String> = (0..ms.len())
        .map(|r| {
            let cells: Vec<String> = (1..=COLUMNS)
                .map(|c| format!("${}", r * COLUMNS + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let mut args = Vec::with_capacity(ms.len() * COLUMNS);
    for m in ms {
        let parts: &[Part] = &m.parts;
        args.extend([
            Val::Text(Some(m.id.clone())),
            Val::Text(Some(m.conversation_id.clone())),
            Val::Int(Some(m.seq)),
            Val::Text(Some(m.role.as_str().to_owned())),
            Val::Text(Some(json_text(parts))),
            Val::Int(Some(m.created_at)),
            Val::Text(m.feedback.map(|f| f.as_str().to_owned())),
            Val::Real(m.score),
            Val::Text(m.finish_reason.clone()),
            Val::Real(Some(m.credits)),
            Val::Text((!m.sources.is_empty()).then(|| json_text(&m.sources))),
        ]);
    }
    b.push(
        &format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {}",
            rows.join(", ")
        ),
        args,
    );
}

/// A new conversation, leased (token, expiry) or not.
fn push_conversation(b: &mut Batch, c: &Conversation, lease: Option<(&str, Millis)>) {
    b.push(
        "INSERT INTO conversations (id, workspace_id, agent_id, user_id, title, status, source, \
         created_at, updated_at, turn_token, turn_expires) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        vec![
            Val::Text(Some(c.id.clone())),
            Val::Text(Some(c.workspace_id.clone())),
            Val::Text(Some(c.agent_id.clone())),
            Val::Text(c.user_id.clone()),
            Val::Text(c.title.clone()),
            Val::Text(Some(c.status.as_str().to_owned())),
            Val::Text(Some(c.source.clone())),
            Val::Int(Some(c.created_at)),
            Val::Int(Some(c.updated_at)),
            Val::Text(lease.map(|l| l.0.to_owned())),
            Val::Int(lease.map(|l| l.1)),
        ],
    );
    push_event(b, &OutboxEvent::conversation_started(c), c.created_at);
}

/// The event for the agent's webhook endpoints, in the same transaction as the
/// change it reports.
fn push_event(b: &mut Batch, ev: &OutboxEvent, now: Millis) {
    let args = enqueue_args(ev, now)
        .into_iter()
        .map(|a| match a {
            EnqueueArg::Text(t) => Val::Text(Some(t)),
            EnqueueArg::Int(i) => Val::Int(Some(i)),
        })
        .collect();
    b.push(ENQUEUE_SQL, args);
}

/// A bound value of a [`Batch`] statement.
enum Val {
    Text(Option<String>),
    Int(Option<i64>),
    Real(Option<f64>),
}

/// Statements run in order inside a transaction. SQLite takes them as one string
/// (its driver binds `$n` across the statements, so each statement's placeholders
/// are renumbered after the previous ones'): one round trip to the connection's
/// thread instead of one per statement. PostgreSQL's extended protocol takes one
/// statement per query, so there they run one by one.
#[derive(Default)]
struct Batch {
    statements: Vec<(String, Vec<Val>)>,
}

impl Batch {
    /// `sql` numbers its placeholders from `$1`, matching `args`.
    fn push(&mut self, sql: &str, args: Vec<Val>) {
        self.statements.push((sql.to_owned(), args));
    }

    async fn run(self, tx: &mut Transaction<'_, Any>, backend: Backend) -> Result<()> {
        match backend {
            Backend::Sqlite => {
                let mut sql = String::new();
                let mut args = Vec::new();
                for (statement, a) in self.statements {
                    sql.push_str(&renumber(&statement, args.len()));
                    sql.push_str(";\n");
                    args.extend(a);
                }
                bind_vals(sqlx::query(&sql), args)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
            Backend::Postgres => {
                for (statement, a) in self.statements {
                    bind_vals(sqlx::query(&statement), a)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
            }
        }
        Ok(())
    }
}

fn bind_vals<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Val>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Val::Text(v) => q.bind(v),
            Val::Int(v) => q.bind(v),
            Val::Real(v) => q.bind(v),
        };
    }
    q
}

/// `$n` → `$(n + offset)`. The statements here have no `$` in literals.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        out.push(ch);
        if ch != '$' {
            continue;
        }
        let mut n = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            n.push(*d);
            chars.next();
        }
        match n.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&n),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn placeholders_are_renumbered_after_the_previous_statements() {
        assert_eq!(
            renumber("UPDATE t SET a = $1, b = $12 WHERE id = $2", 10),
            "UPDATE t SET a = $11, b = $22 WHERE id = $12"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
    }
}
