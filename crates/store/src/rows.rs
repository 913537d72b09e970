//! Row → domain conversions. Kept apart so every query decodes the same way on
//! both engines.

use std::str::FromStr;

use agentbase_core::agent_settings::SpamSettings;
use agentbase_core::{
    Action, Agent, AgentStatus, ApiKey, Error, IpRateLimits, Plan, Result, Visibility, Workspace,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db_err;

pub(crate) const AGENT_COLUMNS: &str = "id, workspace_id, name, instructions, model, temp, \
    visibility, auto_retrain, allowed_domains, suggested_messages, initial_messages, \
    credit_limit, ip_limit, ip_timeframe, ip_message, status, size, created_at, updated_at, \
    last_trained_at, last_message_at, actions, credits_month, credits_used, kb_version, \
    next_retrain_at, channel_instructions, notifications_settings, spam_settings, \
    voice_settings, blocked_countries, styles, lead_form, quote_fallback";

fn corrupt(what: &str, value: &str) -> Error {
    Error::Storage(format!("corrupt {what} in the record: {value:?}"))
}

fn json_col<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(col).map_err(db_err)?;
    text.map(|t| serde_json::from_str(&t).map_err(|_| corrupt(col, &t)))
        .transpose()
}

pub(crate) fn workspace(row: &AnyRow) -> Result<Workspace> {
    let plan: String = row.try_get("plan").map_err(db_err)?;
    Ok(Workspace {
        id: row.try_get("id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        plan: Plan::from_str(&plan).map_err(|_| corrupt("plan", &plan))?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

pub(crate) fn api_key(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        prefix: row.try_get("prefix").map_err(db_err)?,
        secret_hash: row.try_get("secret_hash").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        revoked_at: row.try_get("revoked_at").map_err(db_err)?,
        last_used_at: row.try_get("last_used_at").map_err(db_err)?,
    })
}

pub(crate) fn spam_json(s: &SpamSettings) -> String {
    serde_json::json!({"enabled": s.enabled, "prompt": s.prompt}).to_string()
}

fn spam(v: &serde_json::Value) -> Result<SpamSettings> {
    Ok(SpamSettings {
        enabled: v["enabled"].as_bool().unwrap_or(false),
        prompt: v["prompt"]
            .as_str()
            .ok_or_else(|| corrupt("spam_settings", &v.to_string()))?
            .to_owned(),
    })
}

pub(crate) fn agent(row: &AnyRow) -> Result<Agent> {
    let visibility: String = row.try_get("visibility").map_err(db_err)?;
    let status: String = row.try_get("status").map_err(db_err)?;
    let ip_limit: i64 = row.try_get("ip_limit").map_err(db_err)?;
    let ip_timeframe: i64 = row.try_get("ip_timeframe").map_err(db_err)?;
    let auto_retrain: i64 = row.try_get("auto_retrain").map_err(db_err)?;
    let quote_fallback: Option<i64> = row.try_get("quote_fallback").map_err(db_err)?;
    Ok(Agent {
        id: row.try_get("id").map_err(db_err)?,
        workspace_id: row.try_get("workspace_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        instructions: row.try_get("instructions").map_err(db_err)?,
        model: row.try_get("model").map_err(db_err)?,
        temp: row.try_get("temp").map_err(db_err)?,
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| corrupt("visibility", &visibility))?,
        auto_retrain: auto_retrain != 0,
        allowed_domains: json_col(row, "allowed_domains")?,
        suggested_messages: json_col(row, "suggested_messages")?,
        initial_messages: json_col(row, "initial_messages")?.unwrap_or_default(),
        credit_limit: row.try_get("credit_limit").map_err(db_err)?,
        ip_rate_limits: IpRateLimits {
            limit: u32::try_from(ip_limit)
                .map_err(|_| corrupt("ip_limit", &ip_limit.to_string()))?,
            timeframe_secs: u32::try_from(ip_timeframe)
                .map_err(|_| corrupt("ip_timeframe", &ip_timeframe.to_string()))?,
            message: row.try_get("ip_message").map_err(db_err)?,
        },
        actions: actions(row)?,
        channel_instructions: json_col(row, "channel_instructions")?,
        notifications: json_col(row, "notifications_settings")?,
        spam: json_col::<serde_json::Value>(row, "spam_settings")?
            .map(|v| spam(&v))
            .transpose()?,
        voice: json_col(row, "voice_settings")?,
        blocked_countries: json_col(row, "blocked_countries")?,
        styles: json_col(row, "styles")?,
        lead_form: json_col(row, "lead_form")?,
        credits_month: row.try_get("credits_month").map_err(db_err)?,
        credits_used: row.try_get("credits_used").map_err(db_err)?,
        status: AgentStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        size: row.try_get("size").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        last_trained_at: row.try_get("last_trained_at").map_err(db_err)?,
        last_message_at: row.try_get("last_message_at").map_err(db_err)?,
        kb_version: row.try_get("kb_version").map_err(db_err)?,
        next_retrain_at: row.try_get("next_retrain_at").map_err(db_err)?,
        quote_fallback: quote_fallback.map(|v| v != 0),
    })
}

/// The `actions` column: a JSON array of `{name, description, parameters}`.
pub(crate) fn actions_json(actions: &[Action]) -> String {
    let list: Vec<serde_json::Value> = actions
        .iter()
        .map(|a| serde_json::json!({"name": a.name, "description": a.description, "parameters": a.parameters}))
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn actions(row: &AnyRow) -> Result<Vec<Action>> {
    let list: Vec<serde_json::Value> = json_col(row, "actions")?.unwrap_or_default();
    list.into_iter()
        .map(|v| {
            Ok(Action {
                name: v["name"]
                    .as_str()
                    .ok_or_else(|| corrupt("actions", "name"))?
                    .to_owned(),
                description: v["description"].as_str().unwrap_or_default().to_owned(),
                parameters: v["parameters"].clone(),
            })
        })
        .collect()
}
