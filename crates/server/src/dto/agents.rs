//! Agents on the wire: the agent, a created agent with its pending steps, its actions.

use agentbase_api_types as api;
use agentbase_core::time_fmt::iso8601;

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
