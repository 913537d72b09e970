//! Message credits: the check before a turn (the workspace's monthly allowance, then
//! the agent's own limit) and the accounting after its charge is committed. The
//! charge itself is written with the turn's answer, in one transaction
//! (`Store::finish_turn`); this service keeps the in-memory figures that let the
//! next check skip reading it back.

use std::sync::Arc;

use agentbase_core::time_fmt::month_start;
use agentbase_core::{Agent, Clock, Error, Millis, Rejection, Result};
use agentbase_store::{Store, UsageRow};

use crate::Principal;
use crate::settings::Settings;
use crate::ttl_cache::TtlCache;

/// How long a workspace's spend is served from memory after it is read.
const SPEND_CACHE_MS: Millis = crate::AGENT_CACHE_MS;
const SPEND_CACHE_MAX: usize = 10_000;

pub struct Credits {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    /// Workspace id → (month start, this month's spend).
    spend: TtlCache<(Millis, f64)>,
}

impl Credits {
    pub(crate) fn new(store: Store, clock: Arc<dyn Clock>, settings: Arc<Settings>) -> Self {
        Credits {
            store,
            clock,
            settings,
            spend: TtlCache::new(SPEND_CACHE_MS, SPEND_CACHE_MAX),
        }
    }

    /// The workspace's allowance, then the agent's limit, for a turn costing
    /// `cost`. `agent` is the cached row ([`crate::App::agent`]), whose counter,
    /// like the workspace's spend here, takes this process's charges as they
    /// commit.
    pub(crate) async fn check(&self, p: &Principal, agent: &Agent, cost: f64) -> Result<()> {
        let month = month_start(self.clock.now_ms());
        let workspace_used = self.workspace_spend(&p.workspace_id, month).await?;
        if workspace_used + cost > self.settings.monthly_credits(p.plan) as f64 {
            return Err(Error::Rejected(Rejection::CreditsExhausted));
        }
        if agent
            .credit_limit
            .is_some_and(|limit| agent.credits_used_in(month) + cost > limit as f64)
        {
            return Err(Error::Rejected(Rejection::AgentCreditsExhausted));
        }
        Ok(())
    }

    /// Credits the agent used this calendar month (UTC), from its counter.
    pub fn agent_used(&self, agent: &Agent) -> f64 {
        agent.credits_used_in(month_start(self.clock.now_ms()))
    }

    /// This month's spend of a workspace. Served from memory for `SPEND_CACHE_MS`
    /// after it is read from the record; charges stored through this process are
    /// added at once ([`Credits::charged`]), so within the process the figure is
    /// as exact as the record, and another node's charges show within that time.
    async fn workspace_spend(&self, workspace_id: &str, month: Millis) -> Result<f64> {
        let now = self.clock.now_ms();
        if let Some((m, used)) = self.spend.get(workspace_id, now)
            && m == month
        {
            return Ok(used);
        }
        let ticket = self.spend.ticket();
        let used = self.store.workspace_credits(workspace_id, month).await?;
        self.spend.insert(workspace_id, (month, used), now, ticket);
        Ok(used)
    }

    /// After a charge of `credits` in `month` is committed: the cached spend takes
    /// the same change the record did. The entry keeps its age, so it is still
    /// reread within `SPEND_CACHE_MS` for other nodes' charges.
    pub(crate) fn charged(&self, workspace_id: &str, month: Millis, credits: f64) {
        if credits <= 0.0 {
            return;
        }
        self.spend.update(workspace_id, |(m, used)| {
            if *m == month {
                *used += credits;
            } else {
                *m = month;
                *used = credits;
            }
        });
    }

    /// Drops a cached spend (when a charge's outcome is unknown).
    pub(crate) fn forget(&self, workspace_id: &str) {
        self.spend.forget(workspace_id);
    }

    /// The workspace's credits over the last `days` UTC days (today included).
    pub async fn usage(&self, workspace_id: &str, days: i64) -> Result<Vec<UsageRow>> {
        let day = 86_400_000;
        let since = (self.clock.now_ms() / day - (days - 1)) * day;
        self.store.usage(workspace_id, since).await
    }
}

/// What the dashboard's usage page shows: the workspace's credits over the last
/// days, the first of those days, and its agents' names.
#[derive(Debug, Clone)]
pub struct UsagePage {
    pub rows: Vec<UsageRow>,
    /// The first day shown (days since the epoch, UTC).
    pub first_day: i64,
    /// The workspace's agents' names by id (the first 100).
    pub agent_names: std::collections::BTreeMap<String, String>,
    /// The workspace plan's monthly allowance.
    pub monthly: u64,
}

impl Credits {
    /// The usage page of `workspace` over the last `days` UTC days (today included).
    pub async fn usage_page(
        &self,
        workspace: &agentbase_core::Workspace,
        days: i64,
    ) -> Result<UsagePage> {
        let rows = self.usage(&workspace.id, days).await?;
        let first_day = self.clock.now_ms() / 86_400_000 - (days - 1);
        let agents = self.store.agents(&workspace.id, None, 100).await?;
        Ok(UsagePage {
            rows,
            first_day,
            agent_names: agents.items.into_iter().map(|a| (a.id, a.name)).collect(),
            monthly: self.settings.monthly_credits(workspace.plan),
        })
    }
}
