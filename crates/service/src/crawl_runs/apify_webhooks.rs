//! Apify's persistent webhooks (`/v2/webhooks`): created, read, changed and
//! deleted per workspace, told of every run of the crawler or of one run through
//! the run webhooks' outbox ([`CrawlRuns`]' deliveries), and their dispatches.

use agentbase_core::run_webhook::{self, ApifyWebhook, Dispatch, WebhookDefinition};
use agentbase_core::{Error, Resource, Result, ids};
use serde_json::Value;

use super::{CrawlRuns, known_actor};
use crate::Principal;

/// Most webhooks or dispatches one page holds.
const MAX_PER_PAGE: i64 = 1_000;

impl CrawlRuns {
    /// `POST /v2/webhooks`: a webhook from Apify's object. With an
    /// `idempotencyKey` the workspace already used, that webhook, unchanged.
    pub async fn create_webhook(&self, p: &Principal, body: &Value) -> Result<ApifyWebhook> {
        let definition = self.checked_definition(p, body).await?;
        let key = definition.hook.idempotency_key.clone();
        if let Some(existing) = self.webhook_by_key(p, key.as_deref()).await? {
            return Ok(existing);
        }
        let now = self.now();
        let w = ApifyWebhook {
            id: ids::alphanumeric(17),
            workspace_id: p.workspace_id.clone(),
            definition,
            created_at: now,
            modified_at: now,
        };
        let max = run_webhook::MAX_PER_WORKSPACE;
        if self.store.insert_apify_webhook(&w, max).await? {
            return Ok(w);
        }
        // Refused: another request took the key meanwhile, or the bound is met.
        match self.webhook_by_key(p, key.as_deref()).await? {
            Some(existing) => Ok(existing),
            None => Err(Error::Conflict(format!(
                "a workspace has at most {max} webhooks"
            ))),
        }
    }

    async fn webhook_by_key(
        &self,
        p: &Principal,
        key: Option<&str>,
    ) -> Result<Option<ApifyWebhook>> {
        match key {
            Some(k) => self.store.apify_webhook(&p.workspace_id, k, true).await,
            None => Ok(None),
        }
    }

    /// A webhook of the workspace.
    pub async fn webhook(&self, p: &Principal, id: &str) -> Result<ApifyWebhook> {
        self.store
            .apify_webhook(&p.workspace_id, id, false)
            .await?
            .ok_or(Error::NotFound(Resource::Webhook))
    }

    /// A page of the workspace's webhooks (those told of the crawler's runs with
    /// `actor_only`) and how many there are.
    pub async fn webhooks(
        &self,
        p: &Principal,
        actor_only: bool,
        (offset, limit): (i64, i64),
        desc: bool,
    ) -> Result<(Vec<ApifyWebhook>, i64)> {
        let page = (offset, limit.clamp(0, MAX_PER_PAGE));
        (self.store)
            .apify_webhooks(&p.workspace_id, actor_only, page, desc)
            .await
    }

    /// `PUT /v2/webhooks/{id}`: the fields given replace the webhook's (an empty
    /// `condition` keeps it), and the whole is checked as a new one is.
    pub async fn update_webhook(
        &self,
        p: &Principal,
        id: &str,
        body: &Value,
    ) -> Result<ApifyWebhook> {
        let mut w = self.webhook(p, id).await?;
        let Value::Object(changes) = body else {
            return Err(Error::invalid("body", "must be an object"));
        };
        let mut merged = serde_json::to_value(&w.definition)
            .map_err(|e| Error::Storage(format!("webhook definition: {e}")))?;
        if let Value::Object(m) = &mut merged {
            for (k, v) in changes {
                // Apify's Python client sends `"condition": {}` with every update
                // that does not change it.
                if k == "condition" && v.as_object().is_some_and(|c| c.is_empty()) {
                    continue;
                }
                m.insert(k.clone(), v.clone());
            }
        }
        w.definition = self.checked_definition(p, &merged).await?;
        w.modified_at = self.now();
        if self.store.update_apify_webhook(&w).await? {
            Ok(w)
        } else {
            Err(Error::Conflict(
                "another webhook of the workspace has this idempotencyKey".into(),
            ))
        }
    }

    /// `DELETE /v2/webhooks/{id}`.
    pub async fn delete_webhook(&self, p: &Principal, id: &str) -> Result<()> {
        if self.store.delete_apify_webhook(&p.workspace_id, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Webhook))
        }
    }

    /// A page of the workspace's dispatches (of one webhook when `webhook_id` is
    /// given, which must be the workspace's) and how many there are.
    pub async fn dispatches(
        &self,
        p: &Principal,
        webhook_id: Option<&str>,
        (offset, limit): (i64, i64),
        desc: bool,
    ) -> Result<(Vec<Dispatch>, i64)> {
        if let Some(id) = webhook_id {
            self.webhook(p, id).await?;
        }
        let page = (offset, limit.clamp(0, MAX_PER_PAGE));
        (self.store)
            .dispatches(&p.workspace_id, webhook_id, page, desc)
            .await
    }

    /// A dispatch of the workspace.
    pub async fn dispatch(&self, p: &Principal, id: &str) -> Result<Dispatch> {
        self.store
            .dispatch(&p.workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Webhook))
    }

    /// `body` as a webhook definition whose actor is the crawler or whose run is
    /// the workspace's, and whose target passes the SSRF guard's check.
    async fn checked_definition(&self, p: &Principal, body: &Value) -> Result<WebhookDefinition> {
        let d = run_webhook::parse_definition(body).map_err(Error::Invalid)?;
        if let Some(actor) = &d.condition.actor_id {
            known_actor(actor).map_err(|_| {
                Error::invalid(
                    "condition.actorId",
                    "this server has one actor, the crawler",
                )
            })?;
        }
        if let Some(run) = &d.condition.actor_run_id
            && self.store.run(&p.workspace_id, run).await?.is_none()
        {
            return Err(Error::invalid("condition.actorRunId", "no such run"));
        }
        let private = self.settings.crawler.allow_private_networks;
        agentbase_crawler::check_target(&d.hook.request_url, private)
            .map_err(|m| Error::invalid("requestUrl", m))?;
        Ok(d)
    }
}
