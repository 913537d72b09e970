//! The model registry: an agent's `model` name → the provider instance that runs
//! it, the provider's own model name and the credits one answer costs. Providers
//! are built by the binary (which knows the concrete crates) and handed in; the
//! scripted provider is built here.

use std::collections::HashMap;
use std::sync::Arc;

use agentbase_core::model::{ChatModel, ChatRequest, ModelError, ModelStream};

use crate::scripted::ScriptedModel;
use crate::settings::{ProviderKind, Settings};

/// Provider name (a key of `[providers]`) → instance.
pub type Providers = HashMap<String, Arc<dyn ChatModel>>;

#[derive(Clone)]
pub struct ModelEntry {
    pub name: String,
    pub upstream: String,
    pub credits: f64,
    pub model: Arc<dyn ChatModel>,
}

#[derive(Clone, Default)]
pub struct Registry {
    entries: HashMap<String, ModelEntry>,
}

/// Stands in for a configured provider this process could not load; every answer
/// is a clear error rather than a panic or a hang.
struct Unavailable(String);

impl ChatModel for Unavailable {
    fn stream(&self, _: ChatRequest) -> ModelStream {
        let e = ModelError::Unavailable(self.0.clone());
        Box::pin(futures_util::stream::once(async move { Err(e) }))
    }
}

impl Registry {
    pub fn build(settings: &Settings, providers: &Providers) -> Registry {
        let mut built: HashMap<&str, Arc<dyn ChatModel>> = HashMap::new();
        for (name, p) in &settings.providers {
            let model: Arc<dyn ChatModel> = match (providers.get(name), p.kind) {
                (Some(m), _) => m.clone(),
                (None, ProviderKind::Scripted) => Arc::new(ScriptedModel),
                (None, kind) => Arc::new(Unavailable(format!(
                    "provider `{name}` ({kind:?}) is not loaded in this process"
                ))),
            };
            built.insert(name.as_str(), model);
        }
        let entries = settings
            .models
            .iter()
            .filter_map(|(name, m)| {
                let model = built.get(m.provider.as_str())?.clone();
                Some((
                    name.clone(),
                    ModelEntry {
                        name: name.clone(),
                        upstream: if m.upstream.is_empty() {
                            name.clone()
                        } else {
                            m.upstream.clone()
                        },
                        credits: m.credits,
                        model,
                    },
                ))
            })
            .collect();
        Registry { entries }
    }

    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.entries.get(name)
    }
}
