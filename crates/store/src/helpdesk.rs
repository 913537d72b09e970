//! The helpdesk's record: ticket statuses and teams (seeded per agent on first
//! use), tickets and their threads, and the handoff's writes. A ticket change, the
//! messages it appends, the conversation status it sets and its webhook events go
//! in one transaction.

use agentbase_core::conversation::{ConversationStatus, Message};
use agentbase_core::helpdesk::{
    CATEGORIES, Customer, Sender, Team, Ticket, TicketCursor, TicketFilter, TicketMessage,
    TicketSort, TicketStatus,
};
use agentbase_core::webhook::OutboxEvent;
use agentbase_core::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::chat::{Arg, Where, bind_all};
use crate::{Page, Store, bool_int, db_err, json_text};

const STATUS_COLUMNS: &str =
    "id, agent_id, category, external_label, internal_label, color, is_default, position";
const TICKET_COLUMNS: &str = "id, workspace_id, agent_id, number, conversation_id, subject, \
    description, status_id, status_category, assignee_id, assignee_email, team_id, priority, \
    channel, customer_id, customer_name, customer_email, customer_phone, metadata, created_at, \
    updated_at, last_message_at";
const MESSAGE_COLUMNS: &str =
    "id, ticket_id, seq, kind, sender, content, content_text, metadata, created_at";

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("corrupt {what} in the record"))
}

fn status(row: &AnyRow) -> Result<TicketStatus> {
    Ok(TicketStatus {
        id: row.try_get("id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        category: row.try_get("category").map_err(db_err)?,
        external_label: row.try_get("external_label").map_err(db_err)?,
        internal_label: row.try_get("internal_label").map_err(db_err)?,
        color: row.try_get("color").map_err(db_err)?,
        is_default: row.try_get::<i64, _>("is_default").map_err(db_err)? != 0,
        position: row.try_get("position").map_err(db_err)?,
    })
}

fn team(row: &AnyRow) -> Result<Team> {
    Ok(Team {
        id: row.try_get("id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        is_default: row.try_get::<i64, _>("is_default").map_err(db_err)? != 0,
        member_count: 0,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn ticket(row: &AnyRow) -> Result<Ticket> {
    let metadata: String = row.try_get("metadata").map_err(db_err)?;
    Ok(Ticket {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        number: row.try_get("number").map_err(db_err)?,
        conversation_id: row.try_get("conversation_id").map_err(db_err)?,
        subject: row.try_get("subject").map_err(db_err)?,
        description: row.try_get("description").map_err(db_err)?,
        status_id: row.try_get("status_id").map_err(db_err)?,
        status_category: row.try_get("status_category").map_err(db_err)?,
        assignee_id: row.try_get("assignee_id").map_err(db_err)?,
        assignee_email: row.try_get("assignee_email").map_err(db_err)?,
        team_id: row.try_get("team_id").map_err(db_err)?,
        priority: row.try_get("priority").map_err(db_err)?,
        channel: row.try_get("channel").map_err(db_err)?,
        customer: Customer {
            id: row.try_get("customer_id").map_err(db_err)?,
            name: row.try_get("customer_name").map_err(db_err)?,
            email: row.try_get("customer_email").map_err(db_err)?,
            phone: row.try_get("customer_phone").map_err(db_err)?,
        },
        metadata: serde_json::from_str(&metadata).map_err(|_| corrupt("ticket metadata"))?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        last_message_at: row.try_get("last_message_at").map_err(db_err)?,
    })
}

fn thread_message(row: &AnyRow) -> Result<TicketMessage> {
    let sender: Option<String> = row.try_get("sender").map_err(db_err)?;
    let metadata: Option<String> = row.try_get("metadata").map_err(db_err)?;
    Ok(TicketMessage {
        id: row.try_get("id").map_err(db_err)?,
        ticket_id: row.try_get("ticket_id").map_err(db_err)?,
        seq: row.try_get("seq").map_err(db_err)?,
        kind: row.try_get("kind").map_err(db_err)?,
        sender: sender
            .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("ticket message sender")))
            .transpose()?,
        content: row.try_get("content").map_err(db_err)?,
        content_text: row.try_get("content_text").map_err(db_err)?,
        metadata: metadata
            .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("ticket message metadata")))
            .transpose()?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A ticket write: the ticket (inserted when `new`, its number assigned here;
/// otherwise updated), thread messages to append (their `seq` assigned here), an
/// operator's reply to append to the conversation with its author, the
/// conversation status to set, and the webhook events, built from the ticket as
/// written.
pub struct TicketWrite<'a> {
    pub ticket: Ticket,
    pub new: bool,
    pub messages: Vec<TicketMessage>,
    pub reply: Option<(Message, Sender)>,
    pub conversation_status: Option<(String, ConversationStatus)>,
    pub events: &'a (dyn Fn(&Ticket) -> Vec<OutboxEvent> + Send + Sync),
}

/// A sort key column of the ticket list.
fn sort_sql(s: TicketSort) -> &'static str {
    match s {
        TicketSort::CreatedAt => "created_at",
        TicketSort::UpdatedAt => "updated_at",
        TicketSort::LastMessageAt => "COALESCE(last_message_at, created_at)",
    }
}

impl Store {
    /// The agent's statuses, by category then position.
    pub async fn ticket_statuses(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<Vec<TicketStatus>> {
        let rows = sqlx::query(&format!(
            "SELECT {STATUS_COLUMNS} FROM ticket_statuses WHERE workspace_id = $1 AND agent_id = $2"
        ))
        .bind(workspace_id)
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut out = rows.iter().map(status).collect::<Result<Vec<_>>>()?;
        let rank = |c: &str| {
            CATEGORIES
                .iter()
                .position(|x| *x == c)
                .unwrap_or(usize::MAX)
        };
        out.sort_by_key(|a| (rank(&a.category), a.position));
        Ok(out)
    }

    /// The agent's teams, oldest first.
    pub async fn helpdesk_teams(&self, workspace_id: &str, agent_id: &str) -> Result<Vec<Team>> {
        let rows = sqlx::query(
            "SELECT id, agent_id, name, is_default, created_at FROM helpdesk_teams \
             WHERE workspace_id = $1 AND agent_id = $2 ORDER BY created_at, id",
        )
        .bind(workspace_id)
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(team).collect()
    }

    /// Writes the default statuses and team unless they exist (two first uses at
    /// once write them once: the unique keys drop the second).
    pub async fn seed_helpdesk(
        &self,
        workspace_id: &str,
        statuses: &[TicketStatus],
        team: &Team,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for s in statuses {
            sqlx::query(&format!(
                "INSERT INTO ticket_statuses (workspace_id, {STATUS_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
            ))
            .bind(workspace_id)
            .bind(&s.id)
            .bind(&s.agent_id)
            .bind(&s.category)
            .bind(&s.external_label)
            .bind(&s.internal_label)
            .bind(&s.color)
            .bind(bool_int(s.is_default))
            .bind(s.position)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sqlx::query(
            "INSERT INTO helpdesk_teams (id, workspace_id, agent_id, name, is_default, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&team.id)
        .bind(workspace_id)
        .bind(&team.agent_id)
        .bind(&team.name)
        .bind(bool_int(team.is_default))
        .bind(team.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    pub async fn ticket(
        &self,
        workspace_id: &str,
        agent_id: &str,
        number: i64,
    ) -> Result<Option<Ticket>> {
        let row = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE workspace_id = $1 AND agent_id = $2 \
             AND number = $3"
        ))
        .bind(workspace_id)
        .bind(agent_id)
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(ticket).transpose()
    }

    /// The conversation's newest ticket.
    pub async fn conversation_ticket(
        &self,
        workspace_id: &str,
        conversation_id: &str,
    ) -> Result<Option<Ticket>> {
        let row = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE workspace_id = $1 AND conversation_id = $2 \
             ORDER BY created_at DESC, number DESC LIMIT 1"
        ))
        .bind(workspace_id)
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(ticket).transpose()
    }

    /// One page of the agent's tickets in the filter's order, after `after`.
    pub async fn tickets(
        &self,
        workspace_id: &str,
        agent_id: &str,
        f: &TicketFilter,
        after: Option<&TicketCursor>,
        limit: u32,
    ) -> Result<Page<Ticket>> {
        let mut w = Where::new();
        let p = w.arg(Arg::Text(workspace_id.to_owned()));
        w.push(format!("workspace_id = {p}"));
        let p = w.arg(Arg::Text(agent_id.to_owned()));
        w.push(format!("agent_id = {p}"));
        for (col, values) in [
            ("status_category", &f.statuses),
            ("channel", &f.channels),
            ("priority", &f.priorities),
        ] {
            if !values.is_empty() {
                let marks: Vec<String> =
                    values.iter().map(|v| w.arg(Arg::Text(v.clone()))).collect();
                w.push(format!("{col} IN ({})", marks.join(", ")));
            }
        }
        for (col, value) in [("assignee_id", &f.assignee_id), ("team_id", &f.team_id)] {
            match value {
                None => {}
                Some(None) => w.push(format!("{col} IS NULL")),
                Some(Some(v)) => {
                    let p = w.arg(Arg::Text(v.clone()));
                    w.push(format!("{col} = {p}"));
                }
            }
        }
        if let Some(t) = f.created_after {
            let p = w.arg(Arg::Int(t));
            w.push(format!("created_at >= {p}"));
        }
        if let Some(t) = f.created_before {
            let p = w.arg(Arg::Int(t));
            w.push(format!("created_at <= {p}"));
        }
        let count_sql = format!("SELECT COUNT(*) AS n FROM tickets WHERE {}", w.sql());
        let total: i64 = bind_all(sqlx::query(&count_sql), &w.args)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get("n"))
            .map_err(db_err)?;
        let key = sort_sql(f.sort);
        let (cmp, dir) = if f.ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some(c) = after {
            let (a, b) = (w.arg(Arg::Int(c.t)), w.arg(Arg::Text(c.id.clone())));
            w.push(format!(
                "({key} {cmp} {a} OR ({key} = {a} AND id {cmp} {b}))"
            ));
        }
        let lim = w.arg(Arg::Int(i64::from(limit) + 1));
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE {} ORDER BY {key} {dir}, id {dir} LIMIT {lim}",
            w.sql()
        );
        let rows = bind_all(sqlx::query(&sql), &w.args)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let has_more = rows.len() > limit as usize;
        let items = rows
            .iter()
            .take(limit as usize)
            .map(ticket)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            has_more,
            total,
        })
    }

    /// Tickets whose subject or thread mentions any of `terms` (lower-case), with
    /// the matching text, at most `cap` (ticket, text) rows; ranking is the
    /// caller's.
    pub async fn ticket_search_rows(
        &self,
        workspace_id: &str,
        agent_id: &str,
        terms: &[String],
        cap: i64,
    ) -> Result<Vec<(Ticket, String)>> {
        let mut w = Where::new();
        let p = w.arg(Arg::Text(workspace_id.to_owned()));
        w.push(format!("t.workspace_id = {p}"));
        let p = w.arg(Arg::Text(agent_id.to_owned()));
        w.push(format!("t.agent_id = {p}"));
        let likes: Vec<String> = terms
            .iter()
            .map(|term| {
                let p = w.arg(Arg::Text(format!("%{}%", escape_like(term))));
                format!(
                    "LOWER(COALESCE(m.content_text, '')) LIKE {p} ESCAPE '\\' \
                     OR LOWER(COALESCE(t.subject, '')) LIKE {p} ESCAPE '\\'"
                )
            })
            .collect();
        w.push(format!("({})", likes.join(" OR ")));
        let lim = w.arg(Arg::Int(cap));
        let cols: Vec<String> = TICKET_COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect();
        let sql = format!(
            "SELECT {}, COALESCE(t.subject, '') || ' ' || COALESCE(m.content_text, '') AS hit \
             FROM tickets t LEFT JOIN ticket_messages m ON m.ticket_id = t.id \
             WHERE {} ORDER BY t.updated_at DESC LIMIT {lim}",
            cols.join(", "),
            w.sql()
        );
        let rows = bind_all(sqlx::query(&sql), &w.args)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((ticket(r)?, r.try_get::<String, _>("hit").map_err(db_err)?)))
            .collect()
    }

    /// One page of a thread: `kinds` only, by `seq` in the given direction after
    /// `after_seq`, with the total of those kinds.
    pub async fn ticket_messages(
        &self,
        ticket_id: &str,
        kinds: &[String],
        after_seq: Option<i64>,
        ascending: bool,
        limit: u32,
    ) -> Result<Page<TicketMessage>> {
        let mut w = Where::new();
        let p = w.arg(Arg::Text(ticket_id.to_owned()));
        w.push(format!("ticket_id = {p}"));
        let marks: Vec<String> = kinds.iter().map(|k| w.arg(Arg::Text(k.clone()))).collect();
        w.push(format!("kind IN ({})", marks.join(", ")));
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM ticket_messages WHERE {}",
            w.sql()
        );
        let total: i64 = bind_all(sqlx::query(&count_sql), &w.args)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get("n"))
            .map_err(db_err)?;
        let (cmp, dir) = if ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some(s) = after_seq {
            let p = w.arg(Arg::Int(s));
            w.push(format!("seq {cmp} {p}"));
        }
        let lim = w.arg(Arg::Int(i64::from(limit) + 1));
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM ticket_messages WHERE {} ORDER BY seq {dir} LIMIT {lim}",
            w.sql()
        );
        let rows = bind_all(sqlx::query(&sql), &w.args)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let has_more = rows.len() > limit as usize;
        let items = rows
            .iter()
            .take(limit as usize)
            .map(thread_message)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            has_more,
            total,
        })
    }

    /// The authors of a conversation's messages written by people, by message id.
    pub async fn message_authors(&self, conversation_id: &str) -> Result<Vec<(String, Sender)>> {
        let rows = sqlx::query(
            "SELECT id, author FROM messages WHERE conversation_id = $1 AND author IS NOT NULL",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let author: String = r.try_get("author").map_err(db_err)?;
                Ok((
                    r.try_get("id").map_err(db_err)?,
                    serde_json::from_str(&author).map_err(|_| corrupt("message author"))?,
                ))
            })
            .collect()
    }

    /// Writes a [`TicketWrite`] in one transaction; the ticket as written. A new
    /// ticket's number and the appended rows' positions are taken inside the
    /// transaction; a concurrent writer that took the same one makes this retry.
    pub async fn write_ticket(&self, w: TicketWrite<'_>) -> Result<Ticket> {
        let mut last = None;
        for _ in 0..5 {
            match self.try_write_ticket(&w).await {
                Ok(t) => return Ok(t),
                Err(e) if unique_violation(&e) => last = Some(e),
                Err(e) => return Err(db_err(e)),
            }
        }
        Err(db_err(last.unwrap_or(sqlx::Error::RowNotFound)))
    }

    async fn try_write_ticket(
        &self,
        w: &TicketWrite<'_>,
    ) -> std::result::Result<Ticket, sqlx::Error> {
        let mut tx = self.writer.begin().await?;
        let mut t = w.ticket.clone();
        if w.new {
            insert_ticket(&mut tx, &mut t).await?;
        } else {
            update_ticket(&mut tx, &t).await?;
        }
        if !w.messages.is_empty() {
            append_ticket_messages(&mut tx, &t.id, &w.messages).await?;
        }
        if let Some((m, author)) = &w.reply {
            append_reply(&mut tx, m, author).await?;
        }
        if let Some((id, s)) = &w.conversation_status {
            sqlx::query("UPDATE conversations SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(s.as_str())
                .bind(t.updated_at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for ev in (w.events)(&t) {
            crate::webhooks::enqueue_query(&ev, t.updated_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(t)
    }
}

/// `MAX(column) + 1` over the rows of `table` whose `key_column` is `key` (1 when
/// there are none): the next ticket number or message sequence.
async fn next_in(
    conn: &mut AnyConnection,
    table: &str,
    column: &str,
    key_column: &str,
    key: &str,
) -> std::result::Result<i64, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT COALESCE(MAX({column}), 0) + 1 AS n FROM {table} WHERE {key_column} = $1"
    ))
    .bind(key)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")
}

/// A new ticket, numbered after the agent's last.
async fn insert_ticket(
    conn: &mut AnyConnection,
    t: &mut Ticket,
) -> std::result::Result<(), sqlx::Error> {
    t.number = next_in(conn, "tickets", "number", "agent_id", &t.agent_id).await?;
    sqlx::query(&format!(
        "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
    ))
    .bind(&t.id)
    .bind(&t.workspace_id)
    .bind(&t.agent_id)
    .bind(t.number)
    .bind(&t.conversation_id)
    .bind(&t.subject)
    .bind(&t.description)
    .bind(&t.status_id)
    .bind(&t.status_category)
    .bind(&t.assignee_id)
    .bind(&t.assignee_email)
    .bind(&t.team_id)
    .bind(&t.priority)
    .bind(&t.channel)
    .bind(&t.customer.id)
    .bind(&t.customer.name)
    .bind(&t.customer.email)
    .bind(&t.customer.phone)
    .bind(json_text(&t.metadata))
    .bind(t.created_at)
    .bind(t.updated_at)
    .bind(t.last_message_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A ticket's changeable fields.
async fn update_ticket(
    conn: &mut AnyConnection,
    t: &Ticket,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tickets SET status_id = $1, status_category = $2, assignee_id = $3, \
         assignee_email = $4, team_id = $5, priority = $6, updated_at = $7, \
         last_message_at = $8 WHERE id = $9",
    )
    .bind(&t.status_id)
    .bind(&t.status_category)
    .bind(&t.assignee_id)
    .bind(&t.assignee_email)
    .bind(&t.team_id)
    .bind(&t.priority)
    .bind(t.updated_at)
    .bind(t.last_message_at)
    .bind(&t.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Messages after the ticket's last.
async fn append_ticket_messages(
    conn: &mut AnyConnection,
    ticket_id: &str,
    messages: &[TicketMessage],
) -> std::result::Result<(), sqlx::Error> {
    let next = next_in(conn, "ticket_messages", "seq", "ticket_id", ticket_id).await?;
    for (i, m) in messages.iter().enumerate() {
        sqlx::query(&format!(
            "INSERT INTO ticket_messages ({MESSAGE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&m.id)
        .bind(ticket_id)
        .bind(next + i as i64)
        .bind(&m.kind)
        .bind(m.sender.as_ref().map(json_text))
        .bind(&m.content)
        .bind(&m.content_text)
        .bind(m.metadata.as_ref().map(json_text))
        .bind(m.created_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// An operator's reply in the conversation, after its last message.
async fn append_reply(
    conn: &mut AnyConnection,
    m: &Message,
    author: &Sender,
) -> std::result::Result<(), sqlx::Error> {
    let seq = next_in(
        conn,
        "messages",
        "seq",
        "conversation_id",
        &m.conversation_id,
    )
    .await?;
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, seq, role, parts, created_at, \
         finish_reason, credits, author) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&m.id)
    .bind(&m.conversation_id)
    .bind(seq)
    .bind(m.role.as_str())
    .bind(json_text(&m.parts))
    .bind(m.created_at)
    .bind(&m.finish_reason)
    .bind(m.credits)
    .bind(json_text(author))
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
        .bind(m.created_at)
        .bind(&m.conversation_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `%`, `_` and the escape character itself taken literally in a LIKE pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
