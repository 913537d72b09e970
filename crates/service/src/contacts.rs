//! Contacts and custom attributes (Chatbase's v1 contacts API), identity
//! verification of widget visitors, and what an identified visitor's contact adds
//! to the agent's instructions.
//!
//! Decisions where Chatbase's docs are silent or disagree (see
//! ARCHITECTURE.md, "Contacts"): a bulk create updates the contacts whose
//! `external_id` exists (as the dashboard importer does) and creates the rest;
//! `external_id` is required on create; custom attributes merge on update.

use std::collections::{BTreeMap, BTreeSet};

use agentbase_core::contact::{
    self, BULK_MAX, Contact, CustomAttribute, Mode, PER_AGENT_MAX, new_identity_secret,
};
use agentbase_core::{Error, FieldErrors, Millis, Resource, Result, ids};
use agentbase_store::Store;
use serde_json::{Map, Value};

use std::sync::Arc;

use agentbase_core::Clock;

use crate::Agents;

/// A page of contacts with the count of all of them.
#[derive(Debug, Clone)]
pub struct ContactsPage {
    pub contacts: Vec<Contact>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

impl ContactsPage {
    pub fn total_pages(&self) -> i64 {
        let per = i64::from(self.per_page.max(1));
        (self.total + per - 1) / per
    }
}

/// What a widget visitor sends to be identified (Chatbase's `identify`).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub user_id: String,
    pub user_hash: String,
    pub metadata: Map<String, Value>,
}

/// What the agent is told about an identified visitor, ready for the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitorContext {
    pub user_id: String,
    pub contact: Option<Contact>,
    pub metadata: Option<String>,
    pub attribute_names: BTreeSet<String>,
}

/// Contacts, their custom attributes, and the identity-verification secrets.
pub struct Contacts {
    store: Store,
    clock: Arc<dyn Clock>,
    agents: Arc<Agents>,
}

impl Contacts {
    pub(crate) fn new(store: Store, clock: Arc<dyn Clock>, agents: Arc<Agents>) -> Self {
        Contacts {
            store,
            clock,
            agents,
        }
    }

    fn now(&self) -> agentbase_core::Millis {
        self.clock.now_ms()
    }

    /// The agent's contact schema (the agent must be the workspace's).
    pub async fn contact_attributes(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<Vec<CustomAttribute>> {
        self.agents.get(workspace_id, agent_id).await?;
        self.store.contact_attributes(workspace_id, agent_id).await
    }

    /// Adds an attribute to the agent's schema from the create endpoint's body.
    pub async fn create_contact_attribute(
        &self,
        workspace_id: &str,
        agent_id: &str,
        body: &Value,
    ) -> Result<CustomAttribute> {
        self.agents.get(workspace_id, agent_id).await?;
        let new = contact::read_new_attribute(body).map_err(Error::Invalid)?;
        let existing = self
            .store
            .contact_attributes(workspace_id, agent_id)
            .await?;
        if existing.len() as i64 >= contact::ATTRIBUTES_MAX {
            return Err(Error::invalid(
                "name",
                format!(
                    "an agent has at most {} custom attributes",
                    contact::ATTRIBUTES_MAX
                ),
            ));
        }
        let now = self.now();
        let a = CustomAttribute {
            name: new.name,
            label: new.label,
            kind: new.kind,
            description: new.description,
            archived: new.archived,
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_contact_attribute(workspace_id, agent_id, &a)
            .await?;
        Ok(a)
    }

    /// Changes an attribute's label, description or archived flag.
    pub async fn update_contact_attribute(
        &self,
        workspace_id: &str,
        agent_id: &str,
        name: &str,
        body: &Value,
    ) -> Result<CustomAttribute> {
        self.agents.get(workspace_id, agent_id).await?;
        let mut a = self
            .store
            .contact_attributes(workspace_id, agent_id)
            .await?
            .into_iter()
            .find(|a| a.name == name)
            .ok_or(Error::NotFound(Resource::CustomAttribute))?;
        contact::apply_attribute_patch(&mut a, body, self.now()).map_err(Error::Invalid)?;
        if !self
            .store
            .update_contact_attribute(workspace_id, agent_id, &a)
            .await?
        {
            return Err(Error::NotFound(Resource::CustomAttribute));
        }
        Ok(a)
    }

    /// One page (from 1) of the agent's contacts, oldest first. A page past the
    /// last is refused, as Chatbase does ("page out of range").
    pub async fn list(
        &self,
        workspace_id: &str,
        agent_id: &str,
        page: u32,
        per_page: u32,
    ) -> Result<ContactsPage> {
        self.agents.get(workspace_id, agent_id).await?;
        let total = self.store.count_contacts(workspace_id, agent_id).await?;
        let mut out = ContactsPage {
            contacts: Vec::new(),
            total,
            page,
            per_page,
        };
        if i64::from(page) > out.total_pages().max(1) {
            return Err(Error::invalid("page", "Page out of range"));
        }
        let offset = i64::from(page.max(1) - 1) * i64::from(per_page);
        out.contacts = self
            .store
            .contacts(workspace_id, agent_id, offset, i64::from(per_page))
            .await?;
        Ok(out)
    }

    /// Creates the contacts of a bulk body (`users`), all or none. One whose
    /// `external_id` exists updates that contact instead.
    pub async fn create_contacts(
        &self,
        workspace_id: &str,
        agent_id: &str,
        users: &[Value],
    ) -> Result<Vec<Contact>> {
        self.agents.get(workspace_id, agent_id).await?;
        if users.is_empty() {
            return Err(Error::invalid("users", "must have at least 1 item"));
        }
        if users.len() > BULK_MAX {
            return Err(Error::invalid(
                "users",
                format!("must have at most {BULK_MAX} items"),
            ));
        }
        let schema = self
            .store
            .contact_attributes(workspace_id, agent_id)
            .await?;
        let mut e = FieldErrors::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut emails: BTreeMap<String, usize> = BTreeMap::new();
        let mut fields = Vec::with_capacity(users.len());
        for (i, u) in users.iter().enumerate() {
            let f = contact::read_contact(u, &schema, Mode::Create, &format!("users.{i}."), &mut e);
            if let Some(x) = &f.external_id
                && let Some(first) = seen.insert(x.clone(), i)
            {
                e.insert(
                    format!("users.{i}.external_id"),
                    format!("the same external_id as users.{first}"),
                );
            }
            if let Some(Some(m)) = &f.email
                && emails.insert(m.to_lowercase(), i).is_some()
            {
                return Err(Error::Conflict("Email already exists".into()));
            }
            fields.push(f);
        }
        if !e.is_empty() {
            return Err(Error::Invalid(e));
        }
        let ids: Vec<String> = seen.into_keys().collect();
        let existing = self
            .store
            .contacts_by_external_id(workspace_id, agent_id, &ids)
            .await?;
        let new_count = users.len() - existing.len();
        let count = self.store.count_contacts(workspace_id, agent_id).await?;
        if count + new_count as i64 > PER_AGENT_MAX {
            return Err(Error::invalid(
                "users",
                format!("Maximum contacts limit reached: an agent holds at most {PER_AGENT_MAX}"),
            ));
        }
        let now = self.now();
        let (mut inserts, mut updates, mut out) = (Vec::new(), Vec::new(), Vec::new());
        for f in fields {
            let external_id = f.external_id.clone().unwrap_or_default();
            match existing.iter().find(|c| c.external_id == external_id) {
                Some(c) => {
                    let mut c = c.clone();
                    f.apply(&mut c, now);
                    updates.push(c.clone());
                    out.push(c);
                }
                None => {
                    let c = f.into_contact(workspace_id, agent_id, ids::uuid_v4(), now);
                    inserts.push(c.clone());
                    out.push(c);
                }
            }
        }
        self.store.save_contacts(&inserts, &updates).await?;
        Ok(out)
    }

    /// A contact by its `external_id` (or, failing that, its id).
    pub async fn get(&self, workspace_id: &str, agent_id: &str, key: &str) -> Result<Contact> {
        self.agents.get(workspace_id, agent_id).await?;
        self.store
            .contact(workspace_id, agent_id, key)
            .await?
            .ok_or(Error::NotFound(Resource::Contact))
    }

    /// A partial update from the update endpoint's `data` object; attributes merge
    /// (a null removes one).
    pub async fn update_contact(
        &self,
        workspace_id: &str,
        agent_id: &str,
        key: &str,
        data: &Value,
    ) -> Result<Contact> {
        let mut c = self.get(workspace_id, agent_id, key).await?;
        let schema = self
            .store
            .contact_attributes(workspace_id, agent_id)
            .await?;
        let mut e = FieldErrors::new();
        let f = contact::read_contact(data, &schema, Mode::Update, "", &mut e);
        if !e.is_empty() {
            return Err(Error::Invalid(e));
        }
        f.apply(&mut c, self.now());
        if !self.store.update_contact(&c).await? {
            return Err(Error::NotFound(Resource::Contact));
        }
        Ok(c)
    }

    /// Deletes a contact; returns it as it was.
    pub async fn delete_contact(
        &self,
        workspace_id: &str,
        agent_id: &str,
        key: &str,
    ) -> Result<Contact> {
        let c = self.get(workspace_id, agent_id, key).await?;
        if !self
            .store
            .delete_contact(workspace_id, agent_id, &c.id)
            .await?
        {
            return Err(Error::NotFound(Resource::Contact));
        }
        Ok(c)
    }

    /// The agent's identity-verification secret, made on first ask.
    pub async fn identity_secret(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<(String, Millis)> {
        self.agents.get(workspace_id, agent_id).await?;
        if let Some(s) = self.store.identity_secret(workspace_id, agent_id).await? {
            return Ok(s);
        }
        self.rotate_identity_secret(workspace_id, agent_id).await
    }

    /// A new identity-verification secret; hashes made with the old one stop
    /// verifying at once.
    pub async fn rotate_identity_secret(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<(String, Millis)> {
        self.agents.get(workspace_id, agent_id).await?;
        let (secret, now) = (new_identity_secret(), self.now());
        self.store
            .set_identity_secret(workspace_id, agent_id, &secret, now)
            .await?;
        Ok((secret, now))
    }
}

/// What is known about a widget visitor (their verified identity and contact) and
/// what it adds to the agent's instructions; the chat service asks it for a widget
/// turn's instructions.
impl Contacts {
    /// The verified visitor behind a widget conversation's user id, with their
    /// contact (if the agent has one with that `external_id`). `None` when the user
    /// id never verified (anonymous visitors among them).
    pub async fn visitor_context(
        &self,
        workspace_id: &str,
        agent_id: &str,
        user_id: &str,
    ) -> Result<Option<VisitorContext>> {
        let Some(identity) = self
            .store
            .visitor_identity(workspace_id, agent_id, user_id)
            .await?
        else {
            return Ok(None);
        };
        let contact = self
            .store
            .contact(workspace_id, agent_id, &identity.user_id)
            .await?
            .filter(|c| c.external_id == identity.user_id);
        Ok(Some(VisitorContext {
            user_id: identity.user_id,
            contact,
            metadata: identity.metadata,
            attribute_names: self.attribute_names(workspace_id, agent_id).await?,
        }))
    }

    async fn attribute_names(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<BTreeSet<String>> {
        Ok(self
            .store
            .contact_attributes(workspace_id, agent_id)
            .await?
            .into_iter()
            .map(|a| a.name)
            .collect())
    }

    /// The instructions of a widget turn: for a verified visitor, placeholders
    /// filled from their contact and what is known about them after; for an
    /// anonymous one, the contact placeholders emptied. Instructions without
    /// placeholders, for anonymous visitors, are left exactly as written.
    pub(crate) async fn personal_instructions(
        &self,
        workspace_id: &str,
        agent_id: &str,
        user_id: Option<&str>,
        instructions: &str,
    ) -> String {
        let ctx = match user_id {
            Some(u) => self.visitor_context(workspace_id, agent_id, u).await,
            None => Ok(None),
        };
        let result = match ctx {
            Ok(Some(ctx)) => {
                let mut out = contact::fill_placeholders(
                    instructions,
                    ctx.contact.as_ref(),
                    &ctx.attribute_names,
                );
                out.push_str("\n\n");
                out.push_str(&contact::identity_context(
                    &ctx.user_id,
                    ctx.contact.as_ref(),
                    ctx.metadata.as_deref(),
                ));
                Ok(out)
            }
            Ok(None) if instructions.contains("{{") => self
                .attribute_names(workspace_id, agent_id)
                .await
                .map(|names| contact::fill_placeholders(instructions, None, &names)),
            Ok(None) => Ok(instructions.to_owned()),
            Err(e) => Err(e),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(agent = %agent_id, error = %e, "visitor context not read; answering without it");
            instructions.to_owned()
        })
    }
}
