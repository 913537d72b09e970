//! Leads: written with their `leads.submit` event in one transaction, listed by
//! agent and creation time.

use agentbase_core::lead::Lead;
use agentbase_core::webhook::OutboxEvent;
use agentbase_core::{Millis, Result};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, db_err};

const LEAD_COLUMNS: &str =
    "id, workspace_id, agent_id, conversation_id, name, email, phone, created_at";

fn lead(row: &AnyRow) -> Result<Lead> {
    Ok(Lead {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        conversation_id: row.try_get("conversation_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        email: row.try_get("email").map_err(db_err)?,
        phone: row.try_get("phone").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

impl Store {
    /// Stores the lead and its `leads.submit` event for the agent's endpoints.
    pub async fn insert_lead(&self, l: &Lead) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(&format!(
            "INSERT INTO leads ({LEAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&l.id)
        .bind(&l.workspace_id)
        .bind(&l.agent_id)
        .bind(&l.conversation_id)
        .bind(&l.name)
        .bind(&l.email)
        .bind(&l.phone)
        .bind(l.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        crate::webhooks::enqueue_query(&OutboxEvent::leads_submit(l), l.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// The agent's leads created in `[from, to]` (either bound optional), newest
    /// first, `limit` of them after skipping `offset`.
    pub async fn leads(
        &self,
        workspace_id: &str,
        agent_id: &str,
        from: Option<Millis>,
        to: Option<Millis>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Lead>> {
        let rows = sqlx::query(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE workspace_id = $1 AND agent_id = $2 \
             AND created_at >= $3 AND created_at <= $4 \
             ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(workspace_id)
        .bind(agent_id)
        .bind(from.unwrap_or(i64::MIN))
        .bind(to.unwrap_or(i64::MAX))
        .bind(limit.max(0))
        .bind(offset.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(lead).collect()
    }
}
