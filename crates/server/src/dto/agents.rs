//! Agents on the wire: the agent, a created agent with its pending steps, its actions.

use agentbase_api_types as api;
use agentbase_core::time_fmt::iso8601;
use agentbase_core::{Agent, AgentPatch, Cursor, NewAgent, Visibility, agent::IpRateLimitsPatch};
use agentbase_service::Page;

use crate::dto::conversations::pagination;

/// The wire `Agent`; `credits_used` is this month's spend (from the ledger).
pub fn to_dto(a: agentbase_core::Agent, credits_used: f64) -> api::Agent {
    api::Agent {
        id: a.id,
        name: a.name,
        instructions: a.instructions,
        channel_instructions: a.channel_instructions,
        model: a.model,
        auto_retrain: a.auto_retrain,
        temp: a.temp,
        visibility: a.visibility.as_str().to_owned(),
        allowed_domains: a.allowed_domains,
        suggested_messages: a.suggested_messages,
        initial_messages: a.initial_messages,
        credit_limit: a.credit_limit,
        credits_used: credits_used.ceil() as i64,
        notifications_settings: a.notifications,
        ip_rate_limits: api::IpRateLimits {
            limit: a.ip_rate_limits.limit,
            timeframe: a.ip_rate_limits.timeframe_secs,
            message: a.ip_rate_limits.message,
        },
        spam_settings: a
            .spam
            .map(|s| serde_json::json!({"enabled": s.enabled, "prompt": s.prompt})),
        blocked_countries: a.blocked_countries,
        voice_settings: a.voice,
        styles: Some(
            a.styles
                .unwrap_or_else(|| serde_json::json!({"chat": null, "centerStage": null})),
        ),
        created_at: iso8601(a.created_at),
        last_message_at: a.last_message_at.map(iso8601),
        last_trained_at: a.last_trained_at.map(iso8601),
        quote_fallback: a.quote_fallback,
        status: a.status.as_str().to_owned(),
        size: a.size,
    }
}

pub(crate) fn created_dto(c: agentbase_service::AgentCreated) -> api::AgentCreated {
    api::AgentCreated {
        id: c.agent.id,
        pending_steps: (!c.pending_steps.is_empty()).then(|| {
            c.pending_steps
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect()
        }),
    }
}

pub(crate) fn actions_dto(actions: Vec<agentbase_core::Action>) -> api::ActionsResponse {
    api::ActionsResponse {
        data: actions
            .into_iter()
            .map(|a| api::Action {
                name: a.name,
                description: a.description,
                parameters: a.parameters,
            })
            .collect(),
    }
}

pub(crate) fn list_dto(page: Page<(Agent, f64)>) -> api::ListAgentsResponse {
    let pagination = pagination(&page, |(a, _)| Cursor {
        t: a.created_at,
        id: a.id.clone(),
    });
    let data = (page.items.into_iter())
        .map(|(a, used)| to_dto(a, used))
        .collect();
    api::ListAgentsResponse { data, pagination }
}

fn visibility(v: api::Visibility) -> Visibility {
    match v {
        api::Visibility::Public => Visibility::Public,
        api::Visibility::Private => Visibility::Private,
    }
}

/// The domain form of a create body, and the URL to train from.
pub(crate) fn new_agent(body: api::CreateAgentBody) -> (NewAgent, Option<String>) {
    let new = NewAgent {
        name: body.name,
        instructions: body.instructions,
        model: body.model,
        temp: body.temp,
        visibility: body.visibility.map(visibility),
    };
    (new, body.url)
}

pub(crate) fn actions_of(body: api::ActionsBody) -> Vec<agentbase_core::Action> {
    (body.actions.into_iter())
        .map(|a| agentbase_core::Action {
            name: a.name,
            description: a.description,
            parameters: a.parameters,
        })
        .collect()
}

/// The patch an update body asks for (the lead form is v1's and auto-retrain has
/// its own route).
pub(crate) fn agent_patch(b: api::UpdateAgentBody) -> AgentPatch {
    AgentPatch {
        name: b.name,
        instructions: b.instructions,
        model: b.model,
        temp: b.temp,
        visibility: b.visibility.map(visibility),
        allowed_domains: b.allowed_domains,
        suggested_messages: b.suggested_messages,
        initial_messages: b.initial_messages,
        credit_limit: b.credit_limit,
        ip_rate_limits: b.ip_rate_limits.map(|o| {
            o.map(|ip| IpRateLimitsPatch {
                limit: ip.limit,
                timeframe_secs: ip.timeframe,
                message: ip.message,
            })
        }),
        auto_retrain: None,
        channel_instructions: b.channel_instructions,
        notifications: b.notifications_settings,
        spam: b.spam_settings,
        voice: b.voice_settings,
        blocked_countries: b.blocked_countries,
        // Set through v1's `collectCustomerInformation`.
        lead_form: None,
        quote_fallback: b.quote_fallback,
    }
}
