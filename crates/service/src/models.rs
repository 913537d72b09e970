//! The model registry: an agent's `model` name → the provider instance that runs
//! it, the provider's own model name and the credits one answer costs. Providers
//! are built by the binary (which knows the concrete crates) and handed in; the
//! scripted provider is built here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// The provider's bound on one workspace's turns at once, shared by every
    /// model it serves (`providers.*.turns_per_workspace`).
    pub share: Option<Arc<FairShare>>,
}

impl ModelEntry {
    /// Waits for the workspace's place on this entry's provider, when the provider
    /// bounds one workspace's turns (see [`FairShare`]); hold it while the model works.
    pub async fn turn_for(&self, workspace: &str) -> Option<FairTurn> {
        match &self.share {
            Some(share) => Some(share.enter(workspace).await),
            None => None,
        }
    }
}

/// At most `per_workspace` chat turns of one workspace on a provider at once; the
/// rest wait in the workspace's own line. A model with one queue for every tenant
/// (the local one) then always has room for the others' turns.
pub struct FairShare {
    per_workspace: usize,
    lines: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A turn's place on its provider, held until the turn's answer is done.
pub struct FairTurn {
    permit: Option<OwnedSemaphorePermit>,
    share: Arc<FairShare>,
    workspace: String,
}

impl FairShare {
    pub fn new(per_workspace: usize) -> Arc<FairShare> {
        Arc::new(FairShare {
            per_workspace: per_workspace.max(1),
            lines: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for one of `workspace`'s places (in the order asked).
    pub async fn enter(self: &Arc<Self>, workspace: &str) -> FairTurn {
        let line = {
            let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            lines
                .entry(workspace.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_workspace)))
                .clone()
        };
        // The semaphore is never closed.
        let permit = line.acquire_owned().await.ok();
        FairTurn {
            permit,
            share: self.clone(),
            workspace: workspace.to_owned(),
        }
    }

    /// Workspaces with a line (a turn going or waiting).
    pub fn lines(&self) -> usize {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for FairTurn {
    fn drop(&mut self) {
        drop(self.permit.take());
        // A line nobody stands in goes, so the map holds active workspaces only.
        let mut lines = self.share.lines.lock().unwrap_or_else(|p| p.into_inner());
        let idle = lines.get(&self.workspace).is_some_and(|line| {
            Arc::strong_count(line) == 1 && line.available_permits() == self.share.per_workspace
        });
        if idle {
            lines.remove(&self.workspace);
        }
    }
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
        let shares: HashMap<&str, Arc<FairShare>> = settings
            .providers
            .iter()
            .filter_map(|(name, p)| Some((name.as_str(), FairShare::new(p.workspace_turns()?))))
            .collect();
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
                        share: shares.get(m.provider.as_str()).cloned(),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_workspace_waits_for_its_own_turns_and_never_for_anothers() {
        let share = FairShare::new(1);
        let first = share.enter("ws_a").await;
        // A's second turn waits for its first …
        let waiting = tokio::spawn({
            let share = share.clone();
            async move { share.enter("ws_a").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "a second turn of A went past its first"
        );
        // … while B gets its place at once.
        let other = tokio::time::timeout(Duration::from_secs(5), share.enter("ws_b"))
            .await
            .expect("B waited for A");
        drop(other);
        assert_eq!(share.lines(), 1, "B's line goes when its turn is done");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("A's second turn got its place")
            .unwrap();
        drop(second);
        assert_eq!(share.lines(), 0);
    }

    #[test]
    fn only_local_providers_are_bounded_unless_told() {
        use crate::settings::ProviderSettings;
        let provider = |kind, turns_per_workspace| ProviderSettings {
            kind,
            base_url: String::new(),
            api_key_env: String::new(),
            model_path: String::new(),
            turns_per_workspace,
        };
        assert_eq!(
            provider(ProviderKind::Local, None).workspace_turns(),
            Some(2)
        );
        assert_eq!(
            provider(ProviderKind::Local, Some(0)).workspace_turns(),
            None
        );
        assert_eq!(provider(ProviderKind::Openai, None).workspace_turns(), None);
        assert_eq!(
            provider(ProviderKind::Openai, Some(3)).workspace_turns(),
            Some(3)
        );
    }
}
