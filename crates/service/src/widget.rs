//! The public chat widget's use cases. The widget has no API key: the agent is found
//! by its id alone and acts for its own workspace, each visitor (a random id the
//! browser keeps) is limited per client IP by the agent's `ipRateLimits`, and a
//! visitor can continue only the conversations it started.

use std::sync::{Arc, OnceLock};

use agentbase_core::contact;
use agentbase_core::{Agent, Clock, Error, Millis, RateDecision, Resource, Result, Visibility};
use agentbase_limiter::{Limiter, LimiterError, Window};
use agentbase_store::{Store, VisitorIdentity};

use crate::chat::{ChatInput, Conversations, SOURCE_WIDGET, Turn};
use crate::settings::Settings;
use crate::{Agents, Principal};

/// The key id widget turns are made under (there is no key; this names the caller).
pub const WIDGET_KEY_ID: &str = "widget";

/// A MaxMind-format country database (`widget.geoip_database`).
pub struct GeoIp(maxminddb::Reader<Vec<u8>>);

impl GeoIp {
    pub fn open(path: &std::path::Path) -> std::result::Result<Self, String> {
        maxminddb::Reader::open_readfile(path)
            .map(GeoIp)
            .map_err(|e| e.to_string())
    }

    /// The ISO code of the country `ip` is in (`country.iso_code`, as GeoLite2
    /// and GeoIP2 Country databases have it).
    pub fn country(&self, ip: std::net::IpAddr) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Country {
            iso_code: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Record {
            country: Option<Country>,
        }
        let record: Record = self.0.lookup(ip).ok()?.decode().ok()??;
        record.country?.iso_code.map(|c| c.to_ascii_uppercase())
    }
}

/// A public-facing agent and the principal its widget turns run as.
#[derive(Debug, Clone)]
pub struct WidgetAgent {
    pub agent: Agent,
    pub principal: Principal,
}

impl WidgetAgent {
    pub fn is_public(&self) -> bool {
        self.agent.visibility == Visibility::Public
    }
}

/// 8–64 characters of a-z, A-Z, 0-9, '_' or '-': what the widget generates, and
/// short enough that `widget-<visitorId>` is a valid user id.
pub fn valid_visitor_id(v: &str) -> bool {
    (8..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What the user ids of anonymous widget visitors start with.
pub const VISITOR_PREFIX: &str = "widget-";

/// The conversation user id of a widget visitor.
pub fn visitor_user_id(visitor_id: &str) -> String {
    format!("{VISITOR_PREFIX}{visitor_id}")
}

/// What a widget visitor sends.
#[derive(Debug, Clone)]
pub struct WidgetMessage {
    pub visitor_id: String,
    pub message: String,
    pub conversation_id: Option<String>,
    /// Identity verification (`user_id` and its `user_hash`), when the page
    /// identified its user.
    pub identity: Option<crate::contacts::Identity>,
}

/// The widget's use cases: the public agent, the visitor's checks and rate limit,
/// widget turns and lead forms.
pub struct Widget {
    // The crate sees `store`, `agents` and `now` for this service's use cases in
    // `leads.rs`.
    pub(crate) store: Store,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    settings: Arc<Settings>,
    pub(crate) agents: Arc<Agents>,
    conversations: Arc<Conversations>,
    /// The country database of `widget.geoip_database`, opened on first use.
    geoip: OnceLock<Option<GeoIp>>,
}

impl Widget {
    pub(crate) fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        limiter: Arc<Limiter>,
        settings: Arc<Settings>,
        agents: Arc<Agents>,
        conversations: Arc<Conversations>,
    ) -> Self {
        Widget {
            store,
            clock,
            limiter,
            settings,
            agents,
            conversations,
            geoip: OnceLock::new(),
        }
    }

    pub(crate) fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The country of a client IP from the configured GeoIP database, if any.
    pub fn country_of_ip(&self, ip: std::net::IpAddr) -> Option<String> {
        self.geoip
            .get_or_init(|| {
                let path = self.settings.widget.geoip_database.trim();
                if path.is_empty() {
                    return None;
                }
                GeoIp::open(std::path::Path::new(path))
                    .inspect_err(|e| tracing::error!(path, error = %e, "the GeoIP database cannot be opened; countries come from the header only"))
                    .ok()
            })
            .as_ref()?
            .country(ip)
    }

    /// The agent named, in whichever workspace holds it, with its workspace's plan.
    /// Visibility is the caller's to check (private agents are refused, not hidden).
    pub async fn widget_agent(&self, agent_id: &str) -> Result<WidgetAgent> {
        let agent = self
            .store
            .agent_by_id(agent_id)
            .await?
            .ok_or(Error::NotFound(Resource::Agent))?;
        let workspace = self
            .store
            .workspace(&agent.workspace_id)
            .await?
            .ok_or(Error::NotFound(Resource::Agent))?;
        Ok(WidgetAgent {
            principal: Principal::acting_in(&workspace, WIDGET_KEY_ID),
            agent,
        })
    }

    /// One widget message against the agent's per-IP window.
    pub async fn widget_rate_limit(
        &self,
        agent: &Agent,
        client_ip: &str,
    ) -> Result<RateDecision, LimiterError> {
        let limits = &agent.ip_rate_limits;
        let window = Window {
            limit: limits.limit,
            window_ms: i64::from(limits.timeframe_secs) * 1000,
        };
        self.limiter
            .check(
                &format!("widget|{}|{client_ip}", agent.id),
                window,
                self.now(),
            )
            .await
    }

    /// The visitor's user id, once its id is well formed and the conversation it
    /// names (if any) is its own with this agent: another visitor's, one made
    /// through the API or another agent's is "not found", like an unknown one.
    pub(crate) async fn check_visitor(
        &self,
        w: &WidgetAgent,
        visitor_id: &str,
        conversation_id: Option<&str>,
    ) -> Result<String> {
        if !valid_visitor_id(visitor_id) {
            return Err(Error::invalid(
                "visitorId",
                "must be 8–64 characters of a-z, A-Z, 0-9, '_' or '-'",
            ));
        }
        let user_id = visitor_user_id(visitor_id);
        self.check_owner(w, &user_id, conversation_id).await?;
        Ok(user_id)
    }

    /// The user id a widget request acts as: the verified user's when `identity`
    /// verifies (recorded with their metadata, for the turn about to run), else the
    /// anonymous visitor's; the conversation named (if any) must be that user's.
    pub(crate) async fn widget_user(
        &self,
        w: &WidgetAgent,
        visitor_id: &str,
        identity: Option<&crate::contacts::Identity>,
        conversation_id: Option<&str>,
    ) -> Result<String> {
        self.user_for(w, visitor_id, identity, conversation_id, true)
            .await
    }

    /// [`Widget::widget_user`] for requests about a conversation that exists (the
    /// handoff, the live poll): the same user, without recording the visitor again.
    pub(crate) async fn conversation_user(
        &self,
        w: &WidgetAgent,
        visitor_id: &str,
        identity: Option<&crate::contacts::Identity>,
        conversation_id: &str,
    ) -> Result<String> {
        self.user_for(w, visitor_id, identity, Some(conversation_id), false)
            .await
    }

    async fn user_for(
        &self,
        w: &WidgetAgent,
        visitor_id: &str,
        identity: Option<&crate::contacts::Identity>,
        conversation_id: Option<&str>,
        record: bool,
    ) -> Result<String> {
        let anonymous = self.check_visitor(w, visitor_id, None).await?;
        let verified = match identity {
            Some(i) if record => self.verify_visitor(w, i).await?,
            Some(i) => self.verified_user(w, i).await?,
            None => None,
        };
        let user_id = verified.unwrap_or(anonymous);
        self.check_owner(w, &user_id, conversation_id).await?;
        Ok(user_id)
    }

    /// The visitor's verified user id: `Some` when the agent has a secret and the
    /// hash is the user id's under it, after recording the visitor (and their
    /// metadata) so the turn about to run sees them. A wrong hash is not an error:
    /// as in Chatbase, the visitor goes on anonymously (logged). A user id that
    /// cannot be a conversation's user id is refused, and so is one in the
    /// anonymous visitors' `widget-` namespace (which would let an anonymous
    /// visitor reach that user's conversations).
    pub(crate) async fn verify_visitor(
        &self,
        w: &WidgetAgent,
        identity: &crate::contacts::Identity,
    ) -> Result<Option<String>> {
        let Some(user_id) = self.verified_user(w, identity).await? else {
            return Ok(None);
        };
        let visitor = VisitorIdentity {
            user_id,
            metadata: contact::metadata_text(&identity.metadata),
        };
        let (workspace_id, agent_id) = (&w.principal.workspace_id, &w.agent.id);
        self.store
            .set_visitor_identity(workspace_id, agent_id, &visitor, self.now())
            .await?;
        Ok(Some(visitor.user_id))
    }

    /// The identity's user id when its hash verifies under the agent's secret
    /// (`None`, logged, when it does not); a user id that cannot be one is refused.
    async fn verified_user(
        &self,
        w: &WidgetAgent,
        identity: &crate::contacts::Identity,
    ) -> Result<Option<String>> {
        if !crate::chat::valid_user_id(&identity.user_id) {
            return Err(Error::invalid(
                "userId",
                "must be 1–128 characters of a-z, A-Z, 0-9, '.', '_' or '-'",
            ));
        }
        if identity.user_id.starts_with(VISITOR_PREFIX) {
            return Err(Error::invalid(
                "userId",
                format!(
                    "must not start with '{}' (the anonymous visitors' ids)",
                    VISITOR_PREFIX
                ),
            ));
        }
        let (workspace_id, agent_id) = (&w.principal.workspace_id, &w.agent.id);
        let secret = self.store.identity_secret(workspace_id, agent_id).await?;
        let verified = secret.is_some_and(|(s, _)| {
            contact::verify_user_hash(&s, &identity.user_id, &identity.user_hash)
        });
        if !verified {
            tracing::info!(agent = %agent_id, "identity not verified; the visitor stays anonymous");
            return Ok(None);
        }
        Ok(Some(identity.user_id.clone()))
    }

    /// Whether the conversation named (if any) is this user's with this agent.
    async fn check_owner(
        &self,
        w: &WidgetAgent,
        user_id: &str,
        conversation_id: Option<&str>,
    ) -> Result<()> {
        if let Some(id) = conversation_id {
            let owned = self
                .store
                .conversation(&w.principal.workspace_id, id)
                .await?
                .is_some_and(|c| c.agent_id == w.agent.id && c.user_id.as_deref() == Some(user_id));
            if !owned {
                return Err(Error::NotFound(Resource::Conversation));
            }
        }
        Ok(())
    }

    /// A widget turn. A conversation that is not this visitor's (another visitor's,
    /// one made through the API, another agent's) is "not found", like an unknown one.
    /// A verified visitor's turns carry their user id instead of the anonymous one,
    /// so their conversations are theirs on any device.
    pub async fn widget_chat(&self, w: &WidgetAgent, m: WidgetMessage) -> Result<Turn> {
        let user_id = self
            .widget_user(
                w,
                &m.visitor_id,
                m.identity.as_ref(),
                m.conversation_id.as_deref(),
            )
            .await?;
        self.conversations
            .chat(
                &w.principal,
                ChatInput {
                    agent_id: w.agent.id.clone(),
                    message: Some(m.message),
                    conversation_id: m.conversation_id,
                    user_id: Some(user_id),
                    source: SOURCE_WIDGET.into(),
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_ids_make_valid_user_ids() {
        for ok in ["abcdefgh", "v_0123456789abcdef-XYZ", &"a".repeat(64)] {
            assert!(valid_visitor_id(ok), "{ok}");
            assert!(crate::chat::valid_user_id(&visitor_user_id(ok)));
        }
        for bad in [
            "",
            "short",
            &"a".repeat(65),
            "has space1",
            "dots.are.out",
            "ünïcode12",
        ] {
            assert!(!valid_visitor_id(bad), "{bad}");
        }
    }
}
