//! Agents: their settings, validated against the configured models, and the
//! short-lived cache of their rows that chat and the widget read on every turn.

use std::sync::Arc;

use agentbase_core::agent::ESCALATION_ACTION;
use agentbase_core::{
    Agent, AgentPatch, AgentStatus, Clock, Cursor, Error, IpRateLimits, Millis, NewAgent, Resource,
    Result, Visibility, ids,
};
use agentbase_store::{Page, Store};

use crate::settings::Settings;
use crate::ttl_cache::TtlCache;

/// How long an agent row is served from memory (see [`Agents::get`]).
pub const AGENT_CACHE_MS: Millis = 1_000;
const AGENT_CACHE_MAX: usize = 10_000;

pub struct Agents {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    cache: TtlCache<Agent>,
}

impl Agents {
    pub(crate) fn new(store: Store, clock: Arc<dyn Clock>, settings: Arc<Settings>) -> Self {
        Agents {
            store,
            clock,
            settings,
            cache: TtlCache::new(AGENT_CACHE_MS, AGENT_CACHE_MAX),
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    fn known_model(&self) -> impl Fn(&str) -> bool + '_ {
        |m| self.settings.models.contains_key(m)
    }

    /// Refuses a new agent when the workspace has as many as its plan allows.
    pub(crate) async fn check_room(&self, workspace_id: &str) -> Result<()> {
        let plan = (self.store.workspace(workspace_id).await?)
            .ok_or(Error::NotFound(agentbase_core::Resource::Workspace))?
            .plan;
        let max = self.settings.agents.max_per_workspace.get_i64(plan);
        if self.store.agent_count(workspace_id).await? >= max {
            return Err(Error::Rejected(agentbase_core::Rejection::AgentLimit));
        }
        Ok(())
    }

    pub async fn create(&self, workspace_id: &str, new: NewAgent) -> Result<Agent> {
        new.validate(&self.known_model()).map_err(Error::Invalid)?;
        self.check_room(workspace_id).await?;
        let now = self.now();
        let agent = Agent {
            id: ids::agent_id(),
            workspace_id: workspace_id.to_owned(),
            name: new.name.trim().to_owned(),
            instructions: new
                .instructions
                .unwrap_or_else(|| agentbase_core::agent::DEFAULT_INSTRUCTIONS.to_owned()),
            model: new
                .model
                .unwrap_or_else(|| self.settings.agents.default_model.clone()),
            temp: new.temp.unwrap_or(0.0),
            visibility: new.visibility.unwrap_or(Visibility::Private),
            auto_retrain: false,
            allowed_domains: None,
            suggested_messages: None,
            initial_messages: vec!["Hi! What can I help you with?".into()],
            credit_limit: None,
            ip_rate_limits: IpRateLimits::default(),
            actions: Vec::new(),
            channel_instructions: None,
            notifications: None,
            spam: None,
            voice: None,
            blocked_countries: None,
            styles: None,
            lead_form: None,
            credits_month: 0,
            credits_used: 0.0,
            status: AgentStatus::Untrained,
            size: 0,
            created_at: now,
            updated_at: now,
            last_trained_at: None,
            last_message_at: None,
            kb_version: 0,
            next_retrain_at: None,
            quote_fallback: None,
        };
        self.store.insert_agent(&agent).await?;
        Ok(agent)
    }

    /// An agent of the workspace. Rows are cached for `AGENT_CACHE_MS`; every change
    /// made through this process drops the entry, so reads after writes here are
    /// exact, and changes made on another node show within that time.
    pub async fn get(&self, workspace_id: &str, id: &str) -> Result<Agent> {
        let now = self.now();
        if let Some(agent) = self.cache.get(id, now)
            && agent.workspace_id == workspace_id
        {
            return Ok(agent);
        }
        let ticket = self.cache.ticket();
        let agent = self
            .store
            .agent(workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Agent))?;
        self.cache.insert(id, agent.clone(), now, ticket);
        Ok(agent)
    }

    /// The agent as the record has it now, bypassing the cache: writes start from
    /// this so a stale cached row is never written back.
    pub(crate) async fn get_for_update(&self, workspace_id: &str, id: &str) -> Result<Agent> {
        self.store
            .agent(workspace_id, id)
            .await?
            .ok_or(Error::NotFound(Resource::Agent))
    }

    /// After a turn's answer (and charge) is committed: the cached row takes the
    /// same changes the record did (its counter, its last message time), so the
    /// next turn's checks need no read. The entry keeps its age, so it is still
    /// reread within `AGENT_CACHE_MS` for other nodes' changes.
    pub(crate) fn turn_committed(&self, agent_id: &str, month: Millis, credits: f64, at: Millis) {
        self.cache.update(agent_id, |agent| {
            agent.last_message_at = Some(at);
            if credits > 0.0 {
                if agent.credits_month == month {
                    agent.credits_used += credits;
                } else {
                    agent.credits_month = month;
                    agent.credits_used = credits;
                }
            }
        });
    }

    /// Drops a cached agent row (after any write to it).
    pub fn forget(&self, id: &str) {
        self.cache.forget(id);
    }

    pub async fn update(&self, workspace_id: &str, id: &str, patch: AgentPatch) -> Result<Agent> {
        // Existence first: a foreign or missing agent is 404 even for a bad body.
        let mut agent = self.get_for_update(workspace_id, id).await?;
        patch
            .validate(&self.known_model())
            .map_err(Error::Invalid)?;
        let retrain = patch.auto_retrain;
        agent.apply(patch, self.now());
        // Turning auto-retrain on starts its schedule; off stops it.
        match retrain {
            Some(true) if agent.next_retrain_at.is_none() => {
                agent.next_retrain_at = Some(
                    self.now() + (self.settings.knowledge.auto_retrain_interval_secs as i64) * 1000,
                );
            }
            Some(false) => agent.next_retrain_at = None,
            _ => {}
        }
        self.save(agent).await
    }

    /// Writes an agent's settings back and drops its cached row.
    pub(crate) async fn save(&self, agent: Agent) -> Result<Agent> {
        let updated = self.store.update_agent(&agent).await?;
        self.forget(&agent.id);
        if !updated {
            return Err(Error::NotFound(Resource::Agent));
        }
        Ok(agent)
    }

    /// Replaces the agent's client actions (the tools offered to its model).
    pub async fn set_actions(
        &self,
        workspace_id: &str,
        id: &str,
        actions: Vec<agentbase_core::Action>,
    ) -> Result<Agent> {
        let mut agent = self.get_for_update(workspace_id, id).await?;
        agentbase_core::agent::validate_actions(&actions).map_err(Error::Invalid)?;
        agent.actions = actions;
        agent.updated_at = self.now();
        self.save(agent).await
    }

    /// Adds or removes the built-in escalation action; the agent's own client actions
    /// stay as they are. Nothing is written when the agent already is as wanted.
    pub async fn set_escalation(&self, workspace_id: &str, id: &str, on: bool) -> Result<Agent> {
        let agent = self.get(workspace_id, id).await?;
        let has = agent.actions.iter().any(|x| x.name == ESCALATION_ACTION);
        if on == has {
            return Ok(agent);
        }
        let mut actions: Vec<agentbase_core::Action> = (agent.actions.into_iter())
            .filter(|x| x.name != ESCALATION_ACTION)
            .collect();
        if on {
            actions.push(agentbase_core::Action::escalation());
        }
        self.set_actions(workspace_id, id, actions).await
    }

    pub async fn delete(&self, workspace_id: &str, id: &str) -> Result<()> {
        let deleted = self.store.delete_agent(workspace_id, id).await?;
        self.forget(id);
        if deleted {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Agent))
        }
    }

    pub async fn list(
        &self,
        workspace_id: &str,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Agent>> {
        self.store.agents(workspace_id, cursor, limit).await
    }

    /// `PUT /agents/{id}/styles`.
    pub async fn update_styles(
        &self,
        workspace_id: &str,
        id: &str,
        styles: serde_json::Value,
    ) -> Result<Agent> {
        let mut agent = self.get_for_update(workspace_id, id).await?;
        let mut errors = agentbase_core::FieldErrors::new();
        agentbase_core::agent_settings::check_styles(&styles, &mut errors);
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        agent.styles = Some(agentbase_core::agent_settings::merge_styles(
            agent.styles.as_ref(),
            &styles,
        ));
        agent.updated_at = self.now();
        self.save(agent).await
    }
}

/// Agents with this month's credit spend, as the public API shows them.
impl Agents {
    /// Credits `agent` used this calendar month (UTC), from its counter (as
    /// [`crate::credits::Credits::agent_used`]).
    fn used_this_month(&self, agent: &Agent) -> f64 {
        agent.credits_used_in(agentbase_core::time_fmt::month_start(self.now()))
    }

    /// [`Agents::get`] with the agent's spend this month.
    pub async fn get_with_usage(&self, workspace_id: &str, id: &str) -> Result<(Agent, f64)> {
        let agent = self.get(workspace_id, id).await?;
        let used = self.used_this_month(&agent);
        Ok((agent, used))
    }

    /// [`Agents::list`], each agent with its spend this month.
    pub async fn list_with_usage(
        &self,
        workspace_id: &str,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<(Agent, f64)>> {
        let page = self.list(workspace_id, cursor, limit).await?;
        Ok(Page {
            items: (page.items.into_iter())
                .map(|a| {
                    let used = self.used_this_month(&a);
                    (a, used)
                })
                .collect(),
            has_more: page.has_more,
            total: page.total,
        })
    }

    /// Every agent of the workspace, oldest first (v1's `get-chatbots`), read a
    /// page of 100 at a time.
    pub async fn all(&self, workspace_id: &str) -> Result<Vec<Agent>> {
        let mut agents = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list(workspace_id, cursor.as_ref(), 100).await?;
            cursor = page.items.last().map(|a| Cursor {
                t: a.created_at,
                id: a.id.clone(),
            });
            agents.extend(page.items);
            if !page.has_more {
                return Ok(agents);
            }
        }
    }
}

impl Agents {
    /// [`Agents::update`], then, when `escalation` is given, [`Agents::set_escalation`]
    /// (a settings form that shows the escalation switch saves both).
    pub async fn update_with_escalation(
        &self,
        workspace_id: &str,
        id: &str,
        patch: AgentPatch,
        escalation: Option<bool>,
    ) -> Result<Agent> {
        let agent = self.update(workspace_id, id, patch).await?;
        match escalation {
            Some(on) => self.set_escalation(workspace_id, id, on).await,
            None => Ok(agent),
        }
    }
}
