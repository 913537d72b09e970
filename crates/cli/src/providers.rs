//! Builds the configured hosted providers (the binary is the one place that knows
//! the concrete provider crates). Keys come from the environment variable each
//! provider names; they are never in the file.

use std::sync::Arc;
use std::time::Duration;

use agentbase_providers::{Anthropic, AnthropicConfig, OpenAiCompatible, OpenAiConfig};
use agentbase_service::ConfigError;
use agentbase_service::models::Providers;
use agentbase_service::settings::{ProviderKind, Settings};

fn key(env: &str) -> Option<String> {
    (!env.is_empty())
        .then(|| std::env::var(env).ok())
        .flatten()
        .filter(|k| !k.is_empty())
}

pub fn build(settings: &Settings) -> Result<Providers, ConfigError> {
    let mut out = Providers::new();
    for (name, p) in &settings.providers {
        let problem = |e: agentbase_core::model::ModelError| ConfigError {
            key: format!("providers.{name}.base_url"),
            problem: e.to_string(),
        };
        match p.kind {
            ProviderKind::Openai => {
                let mut config = OpenAiConfig {
                    api_key: key(&p.api_key_env),
                    ..Default::default()
                };
                if !p.base_url.is_empty() {
                    config.base_url = p.base_url.clone();
                }
                config.idle_timeout = Duration::from_secs(120);
                out.insert(
                    name.clone(),
                    Arc::new(OpenAiCompatible::new(config).map_err(problem)?),
                );
            }
            ProviderKind::Anthropic => {
                let mut config = AnthropicConfig {
                    api_key: key(&p.api_key_env),
                    ..Default::default()
                };
                if !p.base_url.is_empty() {
                    config.base_url = p.base_url.clone();
                }
                out.insert(
                    name.clone(),
                    Arc::new(Anthropic::new(config).map_err(problem)?),
                );
            }
            // Local models are loaded by `models`; the scripted one by the service.
            ProviderKind::Local | ProviderKind::Scripted => {}
        }
    }
    Ok(out)
}
