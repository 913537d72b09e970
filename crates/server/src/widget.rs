//! The embeddable chat widget's public surface: the script (`/widget.js`, alias
//! `/embed.min.js`) and, per agent, `/widget/v1/agents/{agentId}/config`, `…/chat` and
//! `…/leads` (the lead form's answers).
//! No API key is involved, so the browser never sees one. Instead: the agent must be
//! public; the embedding page (its `Origin`, else its `Referer`) must be one of the
//! agent's allowed domains, and only then does CORS let the page read the answer;
//! chat messages are limited per client IP by the agent's `ipRateLimits`.

use std::net::{IpAddr, SocketAddr};

use agentbase_api_types::codes;
use agentbase_core::lead::LeadInput;
use agentbase_service::contacts::Identity;
use agentbase_service::widget::{WidgetAgent, WidgetMessage};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::dto::widget::{CreatedLead, Data, WidgetConfig};
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::layers::client_ip;
use crate::sse;

/// The widget, served as is: vanilla JS, no build step.
const SCRIPT: &str = include_str!("../assets/widget.js");

/// The longest message a visitor may send.
pub const MESSAGE_MAX_CHARS: usize = 4000;

/// `GET /widget.js` (and `/embed.min.js`, the name Chatbase's snippet loads).
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// Scheme-independent host and effective port of a page (or of an allowed domain).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    host: String,
    port: Option<u16>,
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, lowercased.
fn host_port(authority: &str) -> Option<Site> {
    let authority = authority.to_ascii_lowercase();
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.parse().ok()?)),
            None => (authority, None),
        }
    };
    let host = host.trim_end_matches('.').to_owned();
    (!host.is_empty()).then_some(Site { host, port })
}

/// The site of an `Origin` value or a `Referer` URL; the port defaults by scheme.
fn page_site(url: &str) -> Option<Site> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let mut site = host_port(authority)?;
    if site.port.is_none() {
        site.port = match scheme.to_ascii_lowercase().as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
    }
    Some(site)
}

/// An allowed-domains entry: `example.com`, `*.example.com`, `127.0.0.1:4000`, or a
/// pasted URL (`https://example.com/`), whose scheme and path are ignored.
fn allowed_site(entry: &str) -> Option<Site> {
    let entry = entry.trim();
    let entry = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    let authority = entry.split(['/', '?', '#']).next()?;
    let authority = authority.trim_start_matches("*.").trim_start_matches('.');
    host_port(authority)
}

/// The page's host equals the entry's or is a subdomain of it; an entry with a port
/// also needs that port.
fn site_matches(page: &Site, entry: &Site) -> bool {
    let host = page.host == entry.host
        || page
            .host
            .strip_suffix(&entry.host)
            .is_some_and(|rest| rest.ends_with('.'));
    host && entry.port.is_none_or(|p| page.port == Some(p))
}

/// Whether a page with these headers may use the agent's widget.
fn origin_allowed(allowed: Option<&[String]>, headers: &HeaderMap) -> bool {
    let entries: Vec<Site> = match allowed {
        None | Some([]) => return true,
        Some(domains) => domains.iter().filter_map(|d| allowed_site(d)).collect(),
    };
    let page = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(page_site);
    page.is_some_and(|page| entries.iter().any(|e| site_matches(&page, e)))
}

/// The CORS headers an answer to an admitted page carries. `Vary: Origin` goes on
/// every answer, refusals included, so a cache never serves one page's to another.
pub(crate) fn with_cors(mut response: Response, origin: Option<&HeaderValue>) -> Response {
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after, x-request-id"),
        );
    }
    response
}

/// The visitor's ISO country code: the proxy's country header when configured and
/// sent by a trusted peer (any peer when no proxies are listed).
fn visitor_country(state: &AppState, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<String> {
    let name = state.app.settings().widget.country_header.trim();
    if name.is_empty() {
        return None;
    }
    let trusted = &state.app.settings().server.trusted_proxies;
    if !trusted.is_empty() && !peer.is_some_and(|p| trusted.contains(&p)) {
        return None;
    }
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_uppercase())
        .filter(|v| v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// The socket peer of a request.
pub(crate) fn peer_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The agent, if it is public and this page may use it; otherwise the refusal,
/// ready to send. Pages of unknown or private agents still get CORS (there are no
/// domains to check), so the widget can say why it cannot chat.
pub(crate) async fn admit(
    state: &AppState,
    agent_id: &str,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Result<(WidgetAgent, Option<HeaderValue>), Response> {
    let origin = headers.get(header::ORIGIN).cloned();
    let refuse = |code, message: &str, cors: Option<&HeaderValue>| {
        let refusal = ApiError::new(StatusCode::FORBIDDEN, code, message);
        with_cors(refusal.into_response(), cors)
    };
    let w = match state.app.widget().widget_agent(agent_id).await {
        Ok(w) => w,
        Err(e) => {
            return Err(with_cors(
                ApiError::from(e).into_response(),
                origin.as_ref(),
            ));
        }
    };
    if !w.is_public() {
        let message = "This agent is private; make it public to use the chat widget";
        return Err(refuse(codes::AGENT_NOT_PUBLIC, message, origin.as_ref()));
    }
    if !origin_allowed(w.agent.allowed_domains.as_deref(), headers) {
        let message = "This website is not allowed to use this agent's chat widget";
        return Err(refuse(codes::WIDGET_ORIGIN_NOT_ALLOWED, message, None));
    }
    if country_blocked(state, &w, peer, headers) {
        let message = "This agent is not available in your country";
        return Err(refuse(
            codes::WIDGET_COUNTRY_BLOCKED,
            message,
            origin.as_ref(),
        ));
    }
    Ok((w, origin))
}

/// A widget request the agent admits ([`admit`]): the public agent, and the
/// origin its answer's CORS names. Its rejection is the refusal, ready to send.
pub struct Admitted {
    pub agent: WidgetAgent,
    pub origin: Option<HeaderValue>,
}

impl FromRequestParts<AppState> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Path(agent_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let peer = peer_of(&parts.extensions);
        let (agent, origin) = admit(state, &agent_id, &parts.headers, peer).await?;
        Ok(Admitted { agent, origin })
    }
}

/// Whether the agent blocks the visitor's country (from the trusted header, else
/// the GeoIP database); a visitor whose country is unknown is let through.
fn country_blocked(
    state: &AppState,
    w: &WidgetAgent,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> bool {
    let Some(blocked) = (w.agent.blocked_countries.as_deref()).filter(|b| !b.is_empty()) else {
        return false;
    };
    visitor_country(state, peer, headers)
        .or_else(|| state.app.widget().country_of_ip(peer?))
        .is_some_and(|country| agentbase_core::agent_settings::is_blocked(blocked, &country))
}

/// `OPTIONS` on the config and chat routes: the CORS preflight.
pub async fn preflight(Admitted { origin, .. }: Admitted) -> Response {
    let mut response = with_cors(StatusCode::NO_CONTENT.into_response(), origin.as_ref());
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

/// `GET /widget/v1/agents/{agentId}/config`: what the panel shows before any turn.
pub async fn config(Admitted { agent: w, origin }: Admitted) -> Response {
    let body = Data {
        data: WidgetConfig::of(&w.agent),
    };
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_cors(response, origin.as_ref())
}

/// One widget POST against the agent's per-IP window (`ipRateLimits`); the 429
/// with its `Retry-After` when over.
pub(crate) async fn rate_limit(
    state: &AppState,
    w: &WidgetAgent,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<(), Response> {
    let ip = client_ip(peer, headers, &state.app.settings().server.trusted_proxies);
    let decision = state
        .app
        .widget()
        .widget_rate_limit(&w.agent, &ip)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "rate limiter unavailable");
            ApiError::unavailable().into_response()
        })?;
    if decision.allowed {
        return Ok(());
    }
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        codes::RATE_LIMIT_TOO_MANY_REQUESTS,
        w.agent.ip_rate_limits.message.clone(),
    )
    .into_response();
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(decision.retry_after_secs(state.app.now())),
    );
    Err(r)
}

/// The lead form's answers, as the widget posts them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadBody {
    visitor_id: String,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    /// A verified visitor's identity, as on chat messages (their conversations
    /// carry their user id).
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_hash: Option<String>,
    #[serde(default)]
    user_metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A visitor's POST the agent admits ([`Admitted`]): the public agent, the origin
/// its answer's CORS names, and the JSON body read as `B` once the visitor's rate
/// limit allows it. Its rejection is the refusal, with CORS for an admitted page;
/// the handler puts the same CORS on its answer ([`VisitorPost::answer`]).
pub struct VisitorPost<B> {
    pub agent: WidgetAgent,
    pub origin: Option<HeaderValue>,
    pub body: B,
}

impl<B: serde::de::DeserializeOwned> FromRequest<AppState> for VisitorPost<B> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Admitted { agent, origin } = Admitted::from_request_parts(&mut parts, state).await?;
        let peer = peer_of(&parts.extensions);
        let read = async {
            rate_limit(state, &agent, peer, &parts.headers).await?;
            let req = Request::from_parts(parts, body);
            let AppJson(body) = AppJson::<B>::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            Ok(body)
        };
        match read.await {
            Ok(body) => Ok(VisitorPost {
                agent,
                origin,
                body,
            }),
            Err(refusal) => Err(with_cors(refusal, origin.as_ref())),
        }
    }
}

/// The handler's answer to a visitor's POST, refusals included, with its CORS.
pub(crate) fn answer(origin: Option<&HeaderValue>, answer: Result<Response, ApiError>) -> Response {
    with_cors(answer.unwrap_or_else(IntoResponse::into_response), origin)
}

/// `POST /widget/v1/agents/{agentId}/leads`: the visitor's answers to the lead
/// form, stored with their conversation (`leads.submit` goes to the webhooks).
pub async fn leads(State(state): State<AppState>, post: VisitorPost<LeadBody>) -> Response {
    let VisitorPost {
        agent,
        origin,
        body,
    } = post;
    let created = async {
        let identity = identity_of(body.user_id, body.user_hash, body.user_metadata)?;
        let input = LeadInput {
            name: body.name,
            email: body.email,
            phone: body.phone,
        };
        let (visitor, conversation) = (&body.visitor_id, body.conversation_id);
        let submitted = (state.app.widget())
            .submit_lead(&agent, visitor, identity.as_ref(), conversation, input)
            .await?;
        let data = CreatedLead { id: submitted.id };
        Ok((StatusCode::CREATED, axum::Json(Data { data })).into_response())
    };
    answer(origin.as_ref(), created.await)
}

/// A visitor's message, as the widget posts it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatBody {
    message: String,
    #[serde(default)]
    conversation_id: Option<String>,
    visitor_id: String,
    /// Identity verification: the page's user id, its HMAC-SHA256 under the
    /// agent's secret, and optional details about the user (unverified).
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_hash: Option<String>,
    #[serde(default)]
    user_metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ChatBody {
    /// The visitor's message, its identity checked and its length within
    /// [`MESSAGE_MAX_CHARS`].
    fn into_message(self) -> Result<WidgetMessage, ApiError> {
        let identity = identity_of(self.user_id, self.user_hash, self.user_metadata)?;
        if self.message.chars().count() > MESSAGE_MAX_CHARS {
            let most = format!("must be at most {MESSAGE_MAX_CHARS} characters");
            return Err(ApiError::invalid_field("message", most));
        }
        Ok(WidgetMessage {
            visitor_id: self.visitor_id,
            message: self.message,
            conversation_id: self.conversation_id,
            identity,
        })
    }
}

/// The identity a body carries: both `userId` and `userHash`, or neither.
pub(crate) fn identity_of(
    user_id: Option<String>,
    user_hash: Option<String>,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Option<Identity>, ApiError> {
    match (user_id, user_hash) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::invalid_field("userHash", "Required with userId")),
        (None, Some(_)) => Err(ApiError::invalid_field("userId", "Required with userHash")),
        (Some(user_id), Some(user_hash)) => Ok(Some(Identity {
            user_id,
            user_hash,
            metadata: metadata.unwrap_or_default(),
        })),
    }
}

/// `POST /widget/v1/agents/{agentId}/chat`: a visitor's message, answered as the
/// API's chat stream (UI Message Stream v1).
pub async fn chat(State(state): State<AppState>, post: VisitorPost<ChatBody>) -> Response {
    let VisitorPost {
        agent,
        origin,
        body,
    } = post;
    let turn = async {
        let message = body.into_message()?;
        let turn = state.app.widget().widget_chat(&agent, message).await?;
        Ok(sse::public_response(turn))
    };
    answer(origin.as_ref(), turn.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(domains: &[&str], header: (&'static str, &str)) -> bool {
        let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
        let mut h = HeaderMap::new();
        h.insert(header.0, HeaderValue::from_str(header.1).unwrap());
        origin_allowed(Some(&domains), &h)
    }

    #[test]
    fn a_page_matches_its_domain_and_subdomains_only() {
        let o = "origin";
        assert!(allowed(&["example.com"], (o, "https://example.com")));
        assert!(allowed(
            &["example.com"],
            (o, "https://shop.example.com:8443")
        ));
        assert!(allowed(&["Example.COM"], (o, "http://EXAMPLE.com")));
        assert!(!allowed(&["example.com"], (o, "https://badexample.com")));
        assert!(!allowed(
            &["example.com"],
            (o, "https://example.com.evil.io")
        ));
        assert!(!allowed(&["shop.example.com"], (o, "https://example.com")));
        assert!(allowed(&["*.example.com"], (o, "https://a.example.com")));
        assert!(allowed(
            &["https://example.com/"],
            (o, "https://example.com")
        ));
        assert!(!allowed(&["example.com"], (o, "null")));
    }

    #[test]
    fn an_entry_with_a_port_needs_that_port() {
        let o = "origin";
        assert!(allowed(&["127.0.0.1:4000"], (o, "http://127.0.0.1:4000")));
        assert!(!allowed(&["127.0.0.1:4000"], (o, "http://127.0.0.1:4001")));
        assert!(!allowed(&["127.0.0.1:4000"], (o, "http://localhost:4000")));
        assert!(allowed(&["127.0.0.1"], (o, "http://127.0.0.1:4001")));
        assert!(allowed(&["example.com:443"], (o, "https://example.com")));
        assert!(allowed(&["[::1]:4000"], (o, "http://[::1]:4000")));
    }

    #[test]
    fn the_referer_counts_when_there_is_no_origin() {
        let r = "referer";
        assert!(allowed(
            &["example.com"],
            (r, "https://example.com/a/b?c#d")
        ));
        assert!(allowed(
            &["example.com"],
            (r, "https://user:pw@example.com/")
        ));
        assert!(!allowed(
            &["example.com"],
            (r, "https://evil.io/?example.com")
        ));
    }

    #[test]
    fn no_domains_means_any_page_and_no_page_means_refused() {
        assert!(origin_allowed(None, &HeaderMap::new()));
        assert!(origin_allowed(Some(&[]), &HeaderMap::new()));
        assert!(!origin_allowed(
            Some(&["example.com".to_owned()]),
            &HeaderMap::new()
        ));
    }
}
