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

/// Loads the local (candle) providers that some model uses, fetching the default
/// weights into `<data_dir>/models` when no `model_path` is set and they are
/// missing. Slow (seconds), so only `serve` calls it.
pub async fn load_local(
    settings: &Settings,
    data_dir: &std::path::Path,
    into: &mut Providers,
) -> anyhow::Result<()> {
    use anyhow::Context;
    for (name, p) in &settings.providers {
        let used = settings.models.values().any(|m| &m.provider == name);
        if p.kind != ProviderKind::Local || !used {
            continue;
        }
        let path = if p.model_path.is_empty() {
            let models_dir = data_dir.join("models");
            let defaults = agentbase_llm::default_model_paths(&models_dir);
            if !defaults.chat_gguf.exists() {
                println!(
                    "Fetching the default models into {} (once)…",
                    models_dir.display()
                );
            }
            tokio::task::spawn_blocking(move || agentbase_llm::fetch_default_models(&models_dir))
                .await?
                .context("cannot fetch the default models (set providers.local.model_path to use a local GGUF)")?
                .chat_gguf
        } else {
            std::path::PathBuf::from(&p.model_path)
        };
        let shown = path.display().to_string();
        let model = tokio::task::spawn_blocking(move || {
            agentbase_llm::LocalChatModel::load(&path, agentbase_llm::LocalChatOptions::default())
        })
        .await?
        .with_context(|| {
            format!("cannot load the local model {shown} (providers.{name}.model_path)")
        })?;
        tracing::info!(provider = %name, model = %shown, "local model loaded");
        into.insert(name.clone(), Arc::new(model));
    }
    Ok(())
}

/// The embedder `knowledge.embedder` names: the local all-MiniLM-L6-v2 (fetched
/// into `<data_dir>/models` when missing) or an OpenAI-compatible provider's.
pub async fn load_embedder(
    settings: &Settings,
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn agentbase_core::model::Embedder>> {
    use anyhow::Context;
    let k = &settings.knowledge;
    if k.embedder != "local" {
        let p = &settings.providers[&k.embedder];
        let mut config = OpenAiConfig {
            api_key: key(&p.api_key_env),
            ..Default::default()
        };
        if !p.base_url.is_empty() {
            config.base_url = p.base_url.clone();
        }
        let provider = OpenAiCompatible::new(config)
            .map_err(|e| anyhow::anyhow!("providers.{}: {e}", k.embedder))?;
        return Ok(Arc::new(provider.embedder(
            agentbase_providers::EmbeddingModel {
                model: k.embedding_model.clone(),
                dimensions: k.embedding_dimensions,
                batch_size: 64,
            },
        )));
    }
    let models_dir = data_dir.join("models");
    let paths =
        tokio::task::spawn_blocking(move || agentbase_llm::fetch_default_models(&models_dir))
            .await?
            .context("cannot fetch the default embedding model")?;
    let dir = paths.embedding_dir.clone();
    let nice = k.embedder_nice;
    let embedder = tokio::task::spawn_blocking(move || {
        let options = agentbase_llm::LocalEmbedderOptions {
            nice,
            ..Default::default()
        };
        agentbase_llm::LocalEmbedder::load(&dir, options)
    })
    .await?
    .with_context(|| {
        format!(
            "cannot load the embedding model in {}",
            paths.embedding_dir.display()
        )
    })?;
    Ok(Arc::new(embedder))
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
