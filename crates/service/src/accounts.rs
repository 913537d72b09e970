//! Workspaces, API keys, authentication and the per-key rate limit: who may call,
//! and how often. The service owns the short-lived caches that keep authentication
//! read-only on the hot path.

use std::sync::Arc;

use agentbase_core::keys::{self, KeyCheck};
use agentbase_core::{
    ApiKey, Clock, Error, Millis, Plan, RateDecision, Resource, Result, Workspace, ids,
};
use agentbase_limiter::{Limiter, LimiterError, Window};
use agentbase_store::Store;

use crate::settings::Settings;
use crate::ttl_cache::TtlCache;

/// How long a key's `last_used_at` may lag: one write per key per interval keeps
/// authentication read-only on the hot path.
const TOUCH_INTERVAL_MS: Millis = 60_000;

/// How long a key row (with its workspace's plan) is trusted without rereading it.
/// Revocation and plan changes made through this process take effect at once (the
/// entry is dropped); made by another process (the CLI, another node), within this.
pub const AUTH_CACHE_MS: Millis = 1_000;
const AUTH_CACHE_MAX: usize = 10_000;

/// Who is calling: established from an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub workspace_id: String,
    pub key_id: String,
    pub plan: Plan,
}

impl Principal {
    /// Acting in `workspace` as `key_id` without a key of its own: the CLI, the
    /// dashboard or the widget.
    pub fn acting_in(workspace: &Workspace, key_id: &str) -> Self {
        Principal {
            workspace_id: workspace.id.clone(),
            key_id: key_id.to_owned(),
            plan: workspace.plan,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("expired API key")]
    Expired,
    #[error(transparent)]
    Store(#[from] Error),
}

/// What the first start of a fresh data directory made.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub workspace: Workspace,
    pub api_key: String,
}

/// Workspaces, keys and the checks every API request passes.
pub struct Accounts {
    store: Store,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    /// The per-key window (`rate_limit` settings).
    window: Window,
    /// Key id → when its use was last recorded.
    touched: TtlCache<()>,
    auth_cache: TtlCache<(ApiKey, Plan)>,
}

impl Accounts {
    pub(crate) fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        limiter: Arc<Limiter>,
        settings: &Settings,
    ) -> Self {
        Accounts {
            store,
            clock,
            limiter,
            window: Window {
                limit: settings.rate_limit.requests,
                window_ms: (settings.rate_limit.window_secs * 1000) as i64,
            },
            touched: TtlCache::new(TOUCH_INTERVAL_MS, AUTH_CACHE_MAX),
            auth_cache: TtlCache::new(AUTH_CACHE_MS, AUTH_CACHE_MAX),
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// On a record with no workspace yet, makes the first one (Standard plan) and
    /// its first key. `None` when the record was already set up.
    pub async fn bootstrap(&self) -> Result<Option<Bootstrap>> {
        if !self.store.workspaces().await?.is_empty() {
            return Ok(None);
        }
        let workspace = self
            .create_workspace("Default workspace", Plan::Standard)
            .await?;
        let (_, api_key) = self.create_key(&workspace.id, "first key", None).await?;
        Ok(Some(Bootstrap { workspace, api_key }))
    }

    // ---- workspaces -------------------------------------------------------------

    pub async fn create_workspace(&self, name: &str, plan: Plan) -> Result<Workspace> {
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let w = Workspace {
            id: ids::workspace_id(),
            name: name.trim().to_owned(),
            plan,
            created_at: self.now(),
        };
        self.store.insert_workspace(&w).await?;
        Ok(w)
    }

    pub async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        self.store.workspace(id).await
    }

    pub async fn workspaces(&self) -> Result<Vec<Workspace>> {
        self.store.workspaces().await
    }

    pub async fn set_plan(&self, workspace_id: &str, plan: Plan) -> Result<()> {
        let changed = self.store.set_plan(workspace_id, plan).await?;
        self.auth_cache.clear();
        if changed {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::Workspace))
        }
    }

    /// The workspace named, or the first one when none is named (the CLI default).
    pub async fn resolve_workspace(&self, id: Option<&str>) -> Result<Workspace> {
        match id {
            Some(id) => self.store.workspace(id).await?,
            None => self.store.workspaces().await?.into_iter().next(),
        }
        .ok_or(Error::NotFound(Resource::Workspace))
    }

    /// The operator of an agent's workspace, acting as `key_id` (the CLI, the
    /// dashboard): `None` when no such agent exists.
    pub async fn agent_operator(&self, agent_id: &str, key_id: &str) -> Result<Option<Principal>> {
        let Some(workspace_id) = self.store.agent_workspace(agent_id).await? else {
            return Ok(None);
        };
        let workspace = self
            .store
            .workspace(&workspace_id)
            .await?
            .ok_or(Error::NotFound(Resource::Workspace))?;
        Ok(Some(Principal::acting_in(&workspace, key_id)))
    }

    // ---- keys -------------------------------------------------------------------

    /// Makes a key; returns its row and the plaintext, which is never stored.
    pub async fn create_key(
        &self,
        workspace_id: &str,
        name: &str,
        expires_at: Option<Millis>,
    ) -> Result<(ApiKey, String)> {
        if self.store.workspace(workspace_id).await?.is_none() {
            return Err(Error::NotFound(Resource::Workspace));
        }
        let g = keys::generate();
        let key = ApiKey {
            id: g.id,
            workspace_id: workspace_id.to_owned(),
            name: name.to_owned(),
            prefix: g.prefix,
            secret_hash: g.secret_hash,
            created_at: self.now(),
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        self.store.insert_key(&key).await?;
        Ok((key, g.plaintext))
    }

    pub async fn keys(&self, workspace_id: Option<&str>) -> Result<Vec<ApiKey>> {
        self.store.keys(workspace_id).await
    }

    /// Accepts the key id or its displayed prefix (`agb_<id>`).
    pub async fn revoke_key(&self, id_or_prefix: &str) -> Result<()> {
        let id = id_or_prefix.strip_prefix("agb_").unwrap_or(id_or_prefix);
        // Record first, then forget: a request racing in between rereads the new row.
        let revoked = self.store.revoke_key(id, self.now()).await?;
        self.auth_cache.forget(id);
        if revoked {
            Ok(())
        } else {
            Err(Error::NotFound(Resource::ApiKey))
        }
    }

    // ---- authentication and the key's rate limit -----------------------------

    /// Checks a presented `Authorization` value (`None` when the header is absent).
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty() && !h.eq_ignore_ascii_case("bearer"))
            .ok_or(AuthError::Missing)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(AuthError::Invalid),
        };
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let (id, secret) = keys::parse(token).ok_or(AuthError::Invalid)?;
        let now = self.now();
        let Some((key, plan)) = self.key_for_auth(id, now).await? else {
            return Err(AuthError::Invalid);
        };
        match key.check(secret, now) {
            KeyCheck::Valid => {}
            KeyCheck::Invalid | KeyCheck::Revoked => return Err(AuthError::Invalid),
            KeyCheck::Expired => return Err(AuthError::Expired),
        }
        self.touch(&key.id, now);
        Ok(Principal {
            workspace_id: key.workspace_id,
            key_id: key.id,
            plan,
        })
    }

    /// The key row and plan, from the short-lived cache or the record.
    async fn key_for_auth(&self, id: &str, now: Millis) -> Result<Option<(ApiKey, Plan)>> {
        if let Some(found) = self.auth_cache.get(id, now) {
            return Ok(Some(found));
        }
        let ticket = self.auth_cache.ticket();
        let found = self.store.key_for_auth(id).await?;
        if let Some(found) = &found {
            self.auth_cache.insert(id, found.clone(), now, ticket);
        }
        Ok(found)
    }

    /// Records the key's use at most once a minute. The write goes to the one
    /// writer, which may be busy with a training's inserts, so the request does not
    /// wait for it.
    fn touch(&self, key_id: &str, now: Millis) {
        if !self.touched.insert_if_stale(key_id, (), now) {
            return;
        }
        let store = self.store.clone();
        let key_id = key_id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = store.touch_key(&key_id, now).await {
                tracing::warn!(error = %e, key_id, "could not record key use");
            }
        });
    }

    /// One request against the (key, client IP) window.
    pub async fn rate_limit(
        &self,
        key_id: &str,
        client_ip: &str,
    ) -> Result<RateDecision, LimiterError> {
        self.limiter
            .check(&format!("{key_id}|{client_ip}"), self.window, self.now())
            .await
    }

    /// `memory` or `redis`.
    pub fn limiter_backend(&self) -> &'static str {
        self.limiter.backend_name()
    }
}

impl Accounts {
    /// Makes a key in the workspace; returns its plaintext (shown once) and the
    /// workspace's keys, the new one included.
    pub async fn create_key_and_list(
        &self,
        workspace_id: &str,
        name: &str,
    ) -> Result<(String, Vec<ApiKey>)> {
        let (_, plaintext) = self.create_key(workspace_id, name, None).await?;
        Ok((plaintext, self.keys(Some(workspace_id)).await?))
    }

    /// Revokes the workspace's key `key_id` (only this workspace's: another's is
    /// `None`, as is an unknown id).
    pub async fn revoke_workspace_key(
        &self,
        workspace_id: &str,
        key_id: &str,
    ) -> Result<Option<ApiKey>> {
        let keys = self.keys(Some(workspace_id)).await?;
        let Some(key) = keys.into_iter().find(|k| k.id == key_id) else {
            return Ok(None);
        };
        self.revoke_key(&key.id).await?;
        Ok(Some(key))
    }
}
