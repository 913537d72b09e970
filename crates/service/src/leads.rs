//! Leads: a widget visitor's answers to the agent's lead form, checked and stored
//! with their conversation (the `leads.submit` webhook goes out with them), listed
//! as v1's `get-leads` does and exported.

use agentbase_core::lead::{self, Lead, LeadInput};
use agentbase_core::{Error, Millis, Result, ids};

use crate::widget::{Widget, WidgetAgent};

/// Most leads one export holds.
pub const EXPORT_MAX: i64 = 100_000;

impl Widget {
    /// A visitor's lead. The conversation, when named, must be this visitor's with
    /// this agent (otherwise "not found", as for widget turns); a verified
    /// visitor's (`identity`) is their user id's.
    pub async fn submit_lead(
        &self,
        w: &WidgetAgent,
        visitor_id: &str,
        identity: Option<&crate::contacts::Identity>,
        conversation_id: Option<String>,
        input: LeadInput,
    ) -> Result<Lead> {
        // The visitor and its conversation first, as for a widget turn.
        self.widget_user(w, visitor_id, identity, conversation_id.as_deref())
            .await?;
        let Some(form) = lead::form_of(w.agent.lead_form.as_ref()) else {
            return Err(Error::invalid("form", "this agent does not collect leads"));
        };
        let answers = lead::check_answers(&form, input).map_err(Error::Invalid)?;
        let l = Lead {
            id: ids::uuid_v4(),
            workspace_id: w.principal.workspace_id.clone(),
            agent_id: w.agent.id.clone(),
            conversation_id,
            name: answers.name,
            email: answers.email,
            phone: answers.phone,
            created_at: self.now(),
        };
        self.store.insert_lead(&l).await?;
        Ok(l)
    }

    /// One page (from 1) of the agent's leads created in `[from, to]`, newest first.
    pub async fn leads(
        &self,
        workspace_id: &str,
        agent_id: &str,
        from: Option<Millis>,
        to: Option<Millis>,
        page: u32,
        size: u32,
    ) -> Result<Vec<Lead>> {
        self.agents.get(workspace_id, agent_id).await?;
        let offset = i64::from(page.max(1) - 1) * i64::from(size);
        self.store
            .leads(workspace_id, agent_id, from, to, offset, i64::from(size))
            .await
    }

    /// Every lead in the window (at most [`EXPORT_MAX`]), newest first.
    pub async fn export_leads(
        &self,
        workspace_id: &str,
        agent_id: &str,
        from: Option<Millis>,
        to: Option<Millis>,
    ) -> Result<Vec<Lead>> {
        self.agents.get(workspace_id, agent_id).await?;
        self.store
            .leads(workspace_id, agent_id, from, to, 0, EXPORT_MAX)
            .await
    }
}
