//! Contacts, their custom-attribute schema, the agent's identity-verification
//! secret and the verified identity of widget conversations. Every query names the
//! workspace and agent, so one tenant's rows are never reached through another's.

use agentbase_core::contact::{AttributeType, Contact, CustomAttribute};
use agentbase_core::{Error, Millis, Result};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, db_err};

const CONTACT_COLUMNS: &str = "id, workspace_id, agent_id, external_id, name, email, \
     phonenumber, stripe_accounts, custom_attributes, created_at, updated_at";
const ATTRIBUTE_COLUMNS: &str = "name, label, type, description, archived, created_at, updated_at";

fn corrupt(col: &str) -> Error {
    Error::Storage(format!("contacts.{col} holds malformed JSON"))
}

fn contact(row: &AnyRow) -> Result<Contact> {
    let stripe: String = row.try_get("stripe_accounts").map_err(db_err)?;
    let attrs: String = row.try_get("custom_attributes").map_err(db_err)?;
    Ok(Contact {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        agent_id: row.try_get("agent_id").map_err(db_err)?,
        external_id: row.try_get("external_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        email: row.try_get("email").map_err(db_err)?,
        phonenumber: row.try_get("phonenumber").map_err(db_err)?,
        stripe_accounts: serde_json::from_str::<Vec<Value>>(&stripe)
            .map_err(|_| corrupt("stripe_accounts"))?,
        custom_attributes: serde_json::from_str::<Map<String, Value>>(&attrs)
            .map_err(|_| corrupt("custom_attributes"))?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

fn attribute(row: &AnyRow) -> Result<CustomAttribute> {
    let kind: String = row.try_get("type").map_err(db_err)?;
    Ok(CustomAttribute {
        name: row.try_get("name").map_err(db_err)?,
        label: row.try_get("label").map_err(db_err)?,
        kind: AttributeType::parse(&kind)
            .ok_or_else(|| Error::Storage(format!("unknown attribute type {kind}")))?,
        description: row.try_get("description").map_err(db_err)?,
        archived: row.try_get::<i64, _>("archived").map_err(db_err)? != 0,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

/// A unique index broken by a write: which one, as the API's 409 says it.
fn conflict(e: sqlx::Error) -> Error {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => {
            if d.message().contains("contacts_email") || d.constraint() == Some("contacts_email") {
                Error::Conflict("Email already exists".into())
            } else if d.message().contains("contact_attributes")
                || d.constraint() == Some("contact_attributes_pkey")
            {
                Error::Conflict("Custom attribute already exists".into())
            } else {
                Error::Conflict("External ID already exists".into())
            }
        }
        _ => db_err(e),
    }
}

/// A widget visitor who proved their user id.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitorIdentity {
    pub user_id: String,
    pub metadata: Option<String>,
}

impl Store {
    /// The agent's contact schema, oldest attribute first (archived ones included).
    pub async fn contact_attributes(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<Vec<CustomAttribute>> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTRIBUTE_COLUMNS} FROM contact_attributes \
             WHERE workspace_id = $1 AND agent_id = $2 ORDER BY created_at, name"
        ))
        .bind(workspace_id)
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(attribute).collect()
    }

    /// Adds an attribute; a name in use is a conflict.
    pub async fn insert_contact_attribute(
        &self,
        workspace_id: &str,
        agent_id: &str,
        a: &CustomAttribute,
    ) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO contact_attributes (workspace_id, agent_id, {ATTRIBUTE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(workspace_id)
        .bind(agent_id)
        .bind(&a.name)
        .bind(&a.label)
        .bind(a.kind.as_str())
        .bind(&a.description)
        .bind(i64::from(a.archived))
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(&self.writer)
        .await
        .map_err(conflict)?;
        Ok(())
    }

    /// Writes an attribute's label, description and archived flag.
    pub async fn update_contact_attribute(
        &self,
        workspace_id: &str,
        agent_id: &str,
        a: &CustomAttribute,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE contact_attributes SET label = $1, description = $2, archived = $3, \
             updated_at = $4 WHERE workspace_id = $5 AND agent_id = $6 AND name = $7",
        )
        .bind(&a.label)
        .bind(&a.description)
        .bind(i64::from(a.archived))
        .bind(a.updated_at)
        .bind(workspace_id)
        .bind(agent_id)
        .bind(&a.name)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn count_contacts(&self, workspace_id: &str, agent_id: &str) -> Result<i64> {
        sqlx::query("SELECT COUNT(*) AS n FROM contacts WHERE workspace_id = $1 AND agent_id = $2")
            .bind(workspace_id)
            .bind(agent_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?
            .try_get("n")
            .map_err(db_err)
    }

    /// The agent's contacts, oldest first, `limit` after skipping `offset`.
    pub async fn contacts(
        &self,
        workspace_id: &str,
        agent_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Contact>> {
        let rows = sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE workspace_id = $1 AND agent_id = $2 \
             ORDER BY created_at, id LIMIT $3 OFFSET $4"
        ))
        .bind(workspace_id)
        .bind(agent_id)
        .bind(limit.max(0))
        .bind(offset.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(contact).collect()
    }

    /// The contact whose `external_id` is `key`, else the one whose id is.
    pub async fn contact(
        &self,
        workspace_id: &str,
        agent_id: &str,
        key: &str,
    ) -> Result<Option<Contact>> {
        let row = sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE workspace_id = $1 AND agent_id = $2 \
             AND (external_id = $3 OR id = $3) ORDER BY external_id = $3 DESC LIMIT 1"
        ))
        .bind(workspace_id)
        .bind(agent_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(contact).transpose()
    }

    /// The agent's contacts among `external_ids` (for a bulk create's upserts).
    pub async fn contacts_by_external_id(
        &self,
        workspace_id: &str,
        agent_id: &str,
        external_ids: &[String],
    ) -> Result<Vec<Contact>> {
        let mut out = Vec::new();
        // Chunks keep the statement's parameters well under every backend's limit.
        for chunk in external_ids.chunks(200) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE workspace_id = $1 AND agent_id = $2 \
                 AND external_id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(workspace_id).bind(agent_id);
            for id in chunk {
                q = q.bind(id);
            }
            let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
            for r in &rows {
                out.push(contact(r)?);
            }
        }
        Ok(out)
    }

    /// New contacts inserted and existing ones rewritten, all or none; a unique
    /// index broken (email, external id) is a conflict.
    pub async fn save_contacts(&self, inserts: &[Contact], updates: &[Contact]) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        // Updates first: one may free an email that an insert takes.
        for c in updates {
            update_query(c).execute(&mut *tx).await.map_err(conflict)?;
        }
        for c in inserts {
            sqlx::query(&format!(
                "INSERT INTO contacts ({CONTACT_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(&c.id)
            .bind(&c.workspace_id)
            .bind(&c.agent_id)
            .bind(&c.external_id)
            .bind(&c.name)
            .bind(&c.email)
            .bind(&c.phonenumber)
            .bind(Value::Array(c.stripe_accounts.clone()).to_string())
            .bind(Value::Object(c.custom_attributes.clone()).to_string())
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
        }
        tx.commit().await.map_err(db_err)
    }

    /// Rewrites one contact (by id, within its workspace and agent).
    pub async fn update_contact(&self, c: &Contact) -> Result<bool> {
        let done = update_query(c)
            .execute(&self.writer)
            .await
            .map_err(conflict)?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_contact(
        &self,
        workspace_id: &str,
        agent_id: &str,
        id: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM contacts WHERE workspace_id = $1 AND agent_id = $2 AND id = $3",
        )
        .bind(workspace_id)
        .bind(agent_id)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// The agent's identity-verification secret and when it was made.
    pub async fn identity_secret(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<Option<(String, Millis)>> {
        let row = sqlx::query(
            "SELECT secret, created_at FROM identity_secrets \
             WHERE workspace_id = $1 AND agent_id = $2",
        )
        .bind(workspace_id)
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok((
                r.try_get("secret").map_err(db_err)?,
                r.try_get("created_at").map_err(db_err)?,
            ))
        })
        .transpose()
    }

    /// Sets (creates or replaces) the agent's identity-verification secret.
    pub async fn set_identity_secret(
        &self,
        workspace_id: &str,
        agent_id: &str,
        secret: &str,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO identity_secrets (agent_id, workspace_id, secret, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (agent_id) \
             DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at",
        )
        .bind(agent_id)
        .bind(workspace_id)
        .bind(secret)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Records a verified visitor (with the metadata they last sent).
    pub async fn set_visitor_identity(
        &self,
        workspace_id: &str,
        agent_id: &str,
        identity: &VisitorIdentity,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO visitor_identities (agent_id, workspace_id, user_id, metadata, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id, user_id) \
             DO UPDATE SET metadata = excluded.metadata, updated_at = excluded.updated_at",
        )
        .bind(agent_id)
        .bind(workspace_id)
        .bind(&identity.user_id)
        .bind(&identity.metadata)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The agent's verified visitor with this user id, if one ever verified.
    pub async fn visitor_identity(
        &self,
        workspace_id: &str,
        agent_id: &str,
        user_id: &str,
    ) -> Result<Option<VisitorIdentity>> {
        let row = sqlx::query(
            "SELECT user_id, metadata FROM visitor_identities \
             WHERE workspace_id = $1 AND agent_id = $2 AND user_id = $3",
        )
        .bind(workspace_id)
        .bind(agent_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(VisitorIdentity {
                user_id: r.try_get("user_id").map_err(db_err)?,
                metadata: r.try_get("metadata").map_err(db_err)?,
            })
        })
        .transpose()
    }
}

fn update_query(
    c: &Contact,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>> {
    sqlx::query(
        "UPDATE contacts SET external_id = $1, name = $2, email = $3, phonenumber = $4, \
         stripe_accounts = $5, custom_attributes = $6, updated_at = $7 \
         WHERE id = $8 AND workspace_id = $9 AND agent_id = $10",
    )
    .bind(c.external_id.clone())
    .bind(c.name.clone())
    .bind(c.email.clone())
    .bind(c.phonenumber.clone())
    .bind(Value::Array(c.stripe_accounts.clone()).to_string())
    .bind(Value::Object(c.custom_attributes.clone()).to_string())
    .bind(c.updated_at)
    .bind(c.id.clone())
    .bind(c.workspace_id.clone())
    .bind(c.agent_id.clone())
}
