//! Agent use cases beyond plain CRUD: creating an agent from a website (`url`),
//! cloning one with its knowledge, and its widget styles.

use agentbase_core::agent_settings;
use agentbase_core::knowledge::{LinkOptions, LinkType, NewSource, SourceContent};
use agentbase_core::{Agent, Error, NewAgent, Result, ids};
use serde_json::Value;

use crate::{App, Principal};

/// A follow-up step of agent creation that did not happen (the contract's
/// `pendingSteps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingStep {
    AddSource,
    TrainAgent,
}

impl PendingStep {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingStep::AddSource => "ADD_SOURCE",
            PendingStep::TrainAgent => "TRAIN_AGENT",
        }
    }
}

/// A new agent and the steps that could not be taken for it.
#[derive(Debug, Clone)]
pub struct AgentCreated {
    pub agent: Agent,
    pub pending_steps: Vec<PendingStep>,
}

impl App {
    /// `POST /agents`: the agent, then (with `url`) a website source crawled from
    /// that URL and queued for training. The agent stays created whatever happens
    /// to the source, as the contract says; failed steps are reported.
    pub async fn create_agent_from(
        &self,
        p: &Principal,
        new: NewAgent,
        url: Option<String>,
    ) -> Result<AgentCreated> {
        if let Some(u) = &url {
            let rest = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            let ok = rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace));
            if !ok {
                return Err(Error::invalid("url", "must be an http(s) URL"));
            }
        }
        let agent = self.agents.create(&p.workspace_id, new).await?;
        let mut pending = Vec::new();
        if let Some(url) = url {
            let source = NewSource {
                name: url.clone(),
                content: SourceContent::Link {
                    url,
                    options: LinkOptions {
                        link_type: LinkType::Crawl,
                        exclude_paths: Vec::new(),
                        include_only_paths: Vec::new(),
                        slow_scraping: false,
                    },
                },
            };
            match self.knowledge.create_source(p, &agent.id, source).await {
                Ok(_) if !self.knowledge.can_train() => pending.push(PendingStep::TrainAgent),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(agent = %agent.id, error = %e, "the url could not be added as a source");
                    pending.push(PendingStep::AddSource);
                }
            }
        }
        Ok(AgentCreated {
            agent,
            pending_steps: pending,
        })
    }

    /// `POST /agents/{id}/clone`: a new agent with the same settings and sources
    /// (each trained anew from its content), without conversations or usage.
    pub async fn clone_agent(&self, p: &Principal, id: &str) -> Result<AgentCreated> {
        let original = self.agents.get_for_update(&p.workspace_id, id).await?;
        let now = self.now();
        let mut copy = original.clone();
        copy.id = ids::agent_id();
        copy.created_at = now;
        copy.updated_at = now;
        copy.last_message_at = None;
        copy.last_trained_at = None;
        copy.credits_used = 0.0;
        copy.credits_month = 0;
        copy.status = agentbase_core::AgentStatus::Untrained;
        copy.size = 0;
        copy.kb_version = 0;
        copy.next_retrain_at = original
            .auto_retrain
            .then(|| now + (self.settings.knowledge.auto_retrain_interval_secs as i64) * 1000);
        self.store.insert_agent(&copy).await?;
        let mut pending = Vec::new();
        let sources = self.store.all_sources(&original.id).await?;
        for s in sources {
            let new = NewSource {
                name: s.name,
                content: s.content,
            };
            if let Err(e) = self.knowledge.create_source(p, &copy.id, new).await {
                tracing::warn!(agent = %copy.id, error = %e, "a source could not be cloned");
                if !pending.contains(&PendingStep::AddSource) {
                    pending.push(PendingStep::AddSource);
                }
            }
        }
        if !pending.contains(&PendingStep::AddSource)
            && copy.size == 0
            && !self.knowledge.can_train()
            && !self.store.all_sources(&copy.id).await?.is_empty()
        {
            pending.push(PendingStep::TrainAgent);
        }
        Ok(AgentCreated {
            agent: copy,
            pending_steps: pending,
        })
    }

    /// `PUT /agents/{id}/styles`.
    pub async fn update_styles(
        &self,
        workspace_id: &str,
        id: &str,
        styles: Value,
    ) -> Result<Agent> {
        let mut agent = self.agents.get_for_update(workspace_id, id).await?;
        let mut errors = agentbase_core::FieldErrors::new();
        agent_settings::check_styles(&styles, &mut errors);
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        agent.styles = Some(agent_settings::merge_styles(agent.styles.as_ref(), &styles));
        agent.updated_at = self.now();
        self.agents.save(agent).await
    }
}
