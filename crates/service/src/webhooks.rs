//! Webhooks: an agent's endpoints (which events each wants) and the worker that
//! delivers the outbox. Events are written by `store` in the transaction that made
//! them; this worker claims due deliveries with a lease, POSTs them through the
//! crawler's SSRF guard signed as Chatbase signs (`x-chatbase-signature`), and
//! records each attempt. A failure is retried with doubling waits until
//! `webhooks.max_attempts`; a target the guard refuses fails at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbase_core::concurrency::PerKey;
use agentbase_core::run_webhook::{self, ApifyWebhook, Dispatch};
use agentbase_core::webhook::{
    self, Attempt, Delivery, DeliveryState, EVENT_ID_HEADER, SIGNATURE_HEADER, Webhook,
    WebhookInput,
};
use agentbase_core::{Cursor, Error, Resource, Result, ids};
use agentbase_crawler::{CrawlerSettings, PostError};
use agentbase_store::{AttemptOutcome, ClaimedDelivery, Page, RunDelivery};

use agentbase_core::Clock;
use agentbase_store::Store;

use crate::Agents;
use crate::settings::Settings;

/// A delivery and the log of its attempts.
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
}

/// An agent's webhook endpoints and the outbox worker that delivers their events.
pub struct Webhooks {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    agents: Arc<Agents>,
    /// Apify webhook tests going per workspace: each holds a request and an
    /// outgoing one for up to `webhooks.timeout_secs`.
    tests: Arc<PerKey<String>>,
}

/// Webhook tests (`POST /v2/webhooks/{id}/test`) one workspace may have going.
pub const TESTS_PER_WORKSPACE: usize = 2;

impl Webhooks {
    pub(crate) fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: Arc<Settings>,
        agents: Arc<Agents>,
    ) -> Self {
        Webhooks {
            store,
            clock,
            settings,
            agents,
            tests: PerKey::new(TESTS_PER_WORKSPACE),
        }
    }

    fn now(&self) -> agentbase_core::Millis {
        self.clock.now_ms()
    }

    /// Refuses a target the SSRF guard would refuse before resolving it.
    fn check_target(&self, url: &str) -> Result<()> {
        agentbase_crawler::check_target(url, self.settings.crawler.allow_private_networks)
            .map_err(|m| Error::invalid("url", m))
    }

    /// The agent's endpoints, oldest first.
    pub async fn list(&self, workspace_id: &str, agent_id: &str) -> Result<Vec<Webhook>> {
        self.agents.get(workspace_id, agent_id).await?;
        self.store.webhooks(workspace_id, agent_id).await
    }

    pub async fn get(&self, workspace_id: &str, agent_id: &str, id: &str) -> Result<Webhook> {
        self.agents.get(workspace_id, agent_id).await?;
        self.store
            .webhook(workspace_id, agent_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Webhook))
    }

    /// A new endpoint with a fresh signing secret.
    pub async fn create(
        &self,
        workspace_id: &str,
        agent_id: &str,
        input: WebhookInput,
    ) -> Result<Webhook> {
        self.agents.get(workspace_id, agent_id).await?;
        let problems = input.problems(true);
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let url = input.url.unwrap_or_default();
        self.check_target(&url)?;
        let now = self.now();
        let mut events = input.events.unwrap_or_default();
        events.dedup();
        let w = Webhook {
            id: ids::alphanumeric(20),
            workspace_id: workspace_id.to_owned(),
            agent_id: agent_id.to_owned(),
            url,
            secret: webhook::new_secret(),
            events,
            active: input.active.unwrap_or(true),
            created_at: now,
            updated_at: now,
        };
        if !self
            .store
            .insert_webhook(&w, webhook::MAX_PER_AGENT as i64)
            .await?
        {
            return Err(Error::Conflict(format!(
                "an agent has at most {} webhooks",
                webhook::MAX_PER_AGENT
            )));
        }
        Ok(w)
    }

    /// Changes the given fields; `rotate_secret` issues a new secret.
    pub async fn update(
        &self,
        workspace_id: &str,
        agent_id: &str,
        id: &str,
        input: WebhookInput,
        rotate_secret: bool,
    ) -> Result<Webhook> {
        let mut w = self.get(workspace_id, agent_id, id).await?;
        let problems = input.problems(false);
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        if let Some(url) = input.url {
            self.check_target(&url)?;
            w.url = url;
        }
        if let Some(mut events) = input.events {
            events.dedup();
            w.events = events;
        }
        if let Some(active) = input.active {
            w.active = active;
        }
        if rotate_secret {
            w.secret = webhook::new_secret();
        }
        w.updated_at = self.now();
        if !self.store.update_webhook(&w).await? {
            return Err(Error::NotFound(Resource::Webhook));
        }
        Ok(w)
    }

    pub async fn delete(&self, workspace_id: &str, agent_id: &str, id: &str) -> Result<()> {
        self.agents.get(workspace_id, agent_id).await?;
        if self
            .store
            .delete_webhook(workspace_id, agent_id, id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Webhook))
        }
    }

    /// An endpoint's deliveries, newest first, each with its attempts.
    pub async fn deliveries(
        &self,
        workspace_id: &str,
        agent_id: &str,
        id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<DeliveryLog>> {
        self.get(workspace_id, agent_id, id).await?;
        let page = self
            .store
            .deliveries(workspace_id, id, after, limit)
            .await?;
        let mut items = Vec::with_capacity(page.items.len());
        for d in page.items {
            let attempts = self.store.delivery_attempts(&d.id).await?;
            items.push(DeliveryLog {
                delivery: d,
                attempts,
            });
        }
        Ok(Page {
            items,
            has_more: page.has_more,
            total: page.total,
        })
    }

    /// Deletes finished deliveries (with their attempts) of both outboxes older
    /// than `webhooks.delivery_retention_days`; how many went.
    pub(crate) async fn prune_deliveries(&self) -> Result<u64> {
        const BATCH: i64 = 1_000;
        let days =
            i64::try_from(self.settings.webhooks.delivery_retention_days).unwrap_or(i64::MAX);
        if days == 0 {
            return Ok(0);
        }
        let before = self.now().saturating_sub(days.saturating_mul(86_400_000));
        let mut gone = 0;
        loop {
            let pass = self.store.prune_deliveries(before, BATCH).await?;
            gone += pass;
            if pass < BATCH as u64 {
                return Ok(gone);
            }
        }
    }

    /// Starts the outbox worker: every `webhooks.poll_interval_ms` (the first pass
    /// one interval after the start), the due deliveries are claimed and sent,
    /// `webhooks.concurrency` at a time; after a pass that sent something the next
    /// starts at once.
    pub fn start_worker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        let every = Duration::from_millis(self.settings.webhooks.poll_interval_ms.max(1));
        tokio::spawn(async move {
            let mut busy = false;
            loop {
                if !busy {
                    tokio::time::sleep(every).await;
                }
                busy = match app.deliver_due().await {
                    Ok(attempted) => attempted > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook delivery pass failed");
                        false
                    }
                };
            }
        })
    }

    /// One pass: claims what is due now (agents' deliveries and Apify run webhooks'
    /// in turns), as many as go at once, and sends them; how many attempts were
    /// made. A pass waits for its slowest attempt, so it takes no more than one
    /// round: another workspace's delivery, first in the next pass's turns, waits
    /// at most one attempt's timeout.
    pub async fn deliver_due(self: &Arc<Self>) -> Result<usize> {
        let s = &self.settings.webhooks;
        let batch = s.concurrency.max(1);
        let now = self.now();
        let agents = self.store.due_deliveries(now, batch as i64).await?;
        let runs = self.store.due_run_deliveries(now, batch as i64).await?;
        // A lease past the attempt's deadline: a node that dies mid-attempt lets
        // another retry once it runs out.
        let lease_ms = (s.timeout_secs as i64 * 1000) * 2 + 5_000;
        let mut tasks = tokio::task::JoinSet::new();
        let (mut agents, mut runs) = (agents.into_iter(), runs.into_iter());
        while tasks.len() < batch {
            let (agent, run) = (agents.next(), runs.next());
            if agent.is_none() && run.is_none() {
                break;
            }
            if let Some(id) = agent
                && let Some(claimed) = self.store.claim_delivery(&id, now, now + lease_ms).await?
            {
                let app = self.clone();
                tasks.spawn(async move { app.attempt(claimed).await });
            }
            if let Some(id) = run
                && tasks.len() < batch
                && let Some(claimed) = (self.store)
                    .claim_run_delivery(&id, now, now + lease_ms)
                    .await?
            {
                let app = self.clone();
                tasks.spawn(async move { app.attempt_run(claimed).await });
            }
        }
        let mut attempted = 0;
        while let Some(r) = tasks.join_next().await {
            attempted += 1;
            if let Ok(Err(e)) = r {
                tracing::warn!(error = %e, "could not record a webhook attempt");
            }
        }
        Ok(attempted)
    }

    /// Sends one claimed delivery of an agent's endpoint, signed, and records how
    /// it went.
    async fn attempt(&self, c: ClaimedDelivery) -> Result<()> {
        let d = &c.delivery;
        let headers = [
            (
                SIGNATURE_HEADER.to_owned(),
                webhook::sign(&c.secret, d.body.as_bytes()),
            ),
            (EVENT_ID_HEADER.to_owned(), d.event_id.clone()),
            ("x-agentbase-event-type".to_owned(), d.event_type.clone()),
            (
                "x-agentbase-delivery-attempt".to_owned(),
                d.attempts.to_string(),
            ),
        ];
        let max_attempts = i64::from(self.settings.webhooks.max_attempts);
        let outcome = (self.send(&d.id, &c.url, &headers, &d.body))
            .await
            .judged((d.attempts, max_attempts), &self.settings);
        // The next attempt stays where it was for a delivery that has ended.
        let outcome = AttemptOutcome {
            next_attempt_at: match outcome.state {
                DeliveryState::Pending => outcome.next_attempt_at,
                _ => d.next_attempt_at,
            },
            ..outcome
        };
        self.store.finish_attempt(&d.id, &outcome).await
    }

    /// Sends one claimed delivery of an Apify run webhook, with Apify's headers and
    /// those its template makes, and records how it went.
    async fn attempt_run(&self, d: RunDelivery) -> Result<()> {
        // A persistent webhook by its id; an ad-hoc one (the delivery id is
        // `{run}.{place}.{event}`) by its run and place.
        let webhook_id = match &d.webhook_id {
            Some(id) => id.clone(),
            None => d.id.splitn(3, '.').take(2).collect::<Vec<_>>().join("."),
        };
        let mut headers = vec![
            ("x-apify-webhook".to_owned(), webhook_id),
            ("x-apify-webhook-dispatch-id".to_owned(), d.id.clone()),
            ("x-apify-request-origin".to_owned(), "agentbase".to_owned()),
        ];
        headers.extend(d.headers.iter().cloned());
        let outcome = (self.send(&d.id, &d.url, &headers, &d.body))
            .await
            .judged((d.attempts, d.max_attempts), &self.settings);
        self.store.finish_run_delivery(&d.id, &outcome).await
    }

    /// `POST /v2/webhooks/{id}/test`: sends `w` Apify's `TEST` event once, now,
    /// and answers with how it went as a dispatch. The dispatch is not kept (a
    /// test belongs to no run) and never retried. A workspace has at most
    /// [`TESTS_PER_WORKSPACE`] going: past them, `TooManyTests`.
    pub async fn test_apify_webhook(&self, w: &ApifyWebhook) -> Result<Dispatch> {
        let _place = (self.tests.try_enter(w.workspace_id.clone()))
            .ok_or(Error::Rejected(agentbase_core::Rejection::TooManyTests))?;
        let now = self.now();
        let id = ids::alphanumeric(17);
        let resource = serde_json::json!({"id": "test", "status": "SUCCEEDED"});
        let actor = crate::crawl_runs::ACTOR_ID;
        let vars = run_webhook::vars(&w.workspace_id, "TEST", (actor, ""), resource, now);
        let mut headers = vec![
            ("x-apify-webhook".to_owned(), w.id.clone()),
            ("x-apify-webhook-dispatch-id".to_owned(), id.clone()),
            ("x-apify-request-origin".to_owned(), "agentbase".to_owned()),
        ];
        let hook = &w.definition.hook;
        let (state, last_status, last_error) = match hook.request(&vars) {
            Ok((body, own)) => {
                headers.extend(own);
                match self.send(&id, &hook.request_url, &headers, &body).await {
                    Sent {
                        error: None,
                        status_code,
                        ..
                    } => (DeliveryState::Delivered, status_code, None),
                    Sent {
                        error, status_code, ..
                    } => (DeliveryState::Failed, status_code, error),
                }
            }
            Err(why) => (DeliveryState::Failed, None, Some(why)),
        };
        Ok(Dispatch {
            id,
            workspace_id: w.workspace_id.clone(),
            webhook_id: Some(w.id.clone()),
            run_id: String::new(),
            event_type: "TEST".into(),
            state,
            attempts: 1,
            last_status,
            last_error,
            created_at: now,
            finished_at: Some(self.now()),
        })
    }

    /// POSTs `body` for delivery `id` through the SSRF guard, `webhooks.timeout_secs`
    /// at most.
    async fn send(&self, id: &str, url: &str, headers: &[(String, String)], body: &str) -> Sent {
        let started_at = self.now();
        let clock = Instant::now();
        let settings = CrawlerSettings {
            allow_private_networks: self.settings.crawler.allow_private_networks,
            ..CrawlerSettings::default()
        };
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let timeout = Duration::from_secs(self.settings.webhooks.timeout_secs);
        let sent = agentbase_crawler::post_guarded(
            url,
            &headers,
            body.as_bytes().to_vec(),
            timeout,
            &settings,
        )
        .await;
        let duration_ms = clock.elapsed().as_millis() as i64;
        let (status_code, error, retry) = match sent {
            Ok(code) if (200..300).contains(&code) => (Some(i64::from(code)), None, false),
            // Redirects are not followed (a redirect to a private address would
            // pass the guard), and sending again gets the same answer: failed.
            Ok(code) if (300..400).contains(&code) => (
                Some(i64::from(code)),
                Some(format!(
                    "the endpoint answered {code}, a redirect; webhooks are not redirected"
                )),
                false,
            ),
            Ok(code) => (
                Some(i64::from(code)),
                Some(format!("the endpoint answered {code}")),
                true,
            ),
            Err(PostError::Refused(e)) => (None, Some(e), false),
            Err(PostError::Failed(e)) => (None, Some(e), true),
        };
        if let Some(e) = &error {
            tracing::info!(delivery = %id, error = %e, "webhook attempt failed");
        }
        Sent {
            started_at,
            duration_ms,
            status_code,
            error,
            retry,
            ended_at: self.now(),
        }
    }
}

/// How one POST of a delivery went.
struct Sent {
    started_at: agentbase_core::Millis,
    duration_ms: i64,
    status_code: Option<i64>,
    error: Option<String>,
    /// Whether sending again may go otherwise.
    retry: bool,
    ended_at: agentbase_core::Millis,
}

impl Sent {
    /// The delivery's new state: delivered, pending again (when a retry may help
    /// and `attempts` is below `max_attempts`, after a doubling wait) or failed.
    fn judged(self, (attempts, max_attempts): (i64, i64), settings: &Settings) -> AttemptOutcome {
        let s = &settings.webhooks;
        let state = if self.error.is_none() {
            DeliveryState::Delivered
        } else if self.retry && attempts < max_attempts {
            DeliveryState::Pending
        } else {
            DeliveryState::Failed
        };
        let next_attempt_at = self.ended_at
            + match state {
                DeliveryState::Pending => webhook::backoff_ms(
                    attempts,
                    s.retry_base_secs as i64 * 1000,
                    s.retry_max_secs as i64 * 1000,
                ),
                _ => 0,
            };
        AttemptOutcome {
            state,
            next_attempt_at,
            attempt: Attempt {
                attempt: attempts,
                started_at: self.started_at,
                duration_ms: self.duration_ms,
                status_code: self.status_code,
                error: self.error,
            },
        }
    }
}
