//! Rust SDK for the agentbase / Chatbase v2 API: typed calls, errors that carry
//! the envelope's code and the `x-request-id`, and retries that honour
//! `Retry-After` and `X-RateLimit-Reset`. The base URL is configurable, so the same
//! client talks to chatbase.co.

use std::time::Duration;

use agentbase_api_types as api;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use agentbase_api_types as types;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message} (request {request_id:?})")]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<std::collections::BTreeMap<String, String>>,
    pub request_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl Error {
    /// The envelope code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => Some(&e.code),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    max_retries: u32,
    max_wait: Duration,
}

impl Client {
    /// `base_url` is the API root, e.g. `http://127.0.0.1:8080/api/v2` or
    /// `https://www.chatbase.co/api/v2`.
    pub fn new(base_url: impl Into<String>, api_key: Option<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key,
            max_retries: 3,
            max_wait: Duration::from_secs(60),
        }
    }

    /// How many times a 429 is retried (default 3, as the official CLI does).
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request with the key attached; for calls the typed methods do not cover.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.base_url, path));
        if let Some(k) = &self.api_key {
            rb = rb.bearer_auth(k);
        }
        rb
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            let mut rb = self.request(method.clone(), path);
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let response = rb.send().await?;
            if response.status() == StatusCode::TOO_MANY_REQUESTS && attempt < self.max_retries {
                attempt += 1;
                tokio::time::sleep(retry_delay(&response, attempt).min(self.max_wait)).await;
                continue;
            }
            return decode(response).await;
        }
    }

    pub async fn health(&self) -> Result<api::Health, Error> {
        self.send(Method::GET, "/health", None::<&()>).await
    }

    pub async fn list_agents(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<api::ListAgentsResponse, Error> {
        let mut q = Vec::new();
        if let Some(c) = cursor {
            q.push(format!("cursor={}", encode_query(c)));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let path = if q.is_empty() {
            "/agents".to_owned()
        } else {
            format!("/agents?{}", q.join("&"))
        };
        self.send(Method::GET, &path, None::<&()>).await
    }

    /// Every agent, following cursors until `hasMore` is false.
    pub async fn all_agents(&self) -> Result<Vec<api::Agent>, Error> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list_agents(cursor.as_deref(), Some(100)).await?;
            out.extend(page.data);
            match (page.pagination.has_more, page.pagination.cursor) {
                (true, Some(c)) => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    pub async fn create_agent(
        &self,
        body: &api::CreateAgentBody,
    ) -> Result<api::AgentCreated, Error> {
        self.send(Method::POST, "/agents", Some(body)).await
    }

    pub async fn get_agent(&self, id: &str) -> Result<api::Agent, Error> {
        self.send(
            Method::GET,
            &format!("/agents/{}", encode_path(id)),
            None::<&()>,
        )
        .await
    }

    pub async fn update_agent(
        &self,
        id: &str,
        body: &api::UpdateAgentBody,
    ) -> Result<api::SuccessResponse, Error> {
        self.send(
            Method::PUT,
            &format!("/agents/{}", encode_path(id)),
            Some(body),
        )
        .await
    }

    pub async fn delete_agent(&self, id: &str) -> Result<api::SuccessResponse, Error> {
        self.send(
            Method::DELETE,
            &format!("/agents/{}", encode_path(id)),
            None::<&()>,
        )
        .await
    }
}

/// Waits as the server says: `Retry-After` seconds, else until `X-RateLimit-Reset`
/// (Unix ms), else exponential backoff.
fn retry_delay(response: &reqwest::Response, attempt: u32) -> Duration {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(secs) = header("retry-after") {
        return Duration::from_secs(secs);
    }
    if let Some(reset) = header("x-ratelimit-reset") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        return Duration::from_millis(reset.saturating_sub(now));
    }
    Duration::from_millis(500 * 2u64.pow(attempt.saturating_sub(1)))
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, Error> {
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()));
    }
    let envelope: Option<api::ErrorResponse> = serde_json::from_slice(&bytes).ok();
    Err(Error::Api(match envelope {
        Some(e) => ApiError {
            status: status.as_u16(),
            code: e.error.code,
            message: e.error.message,
            details: e.error.details,
            request_id,
        },
        None => ApiError {
            status: status.as_u16(),
            code: format!("HTTP_{}", status.as_u16()),
            message: String::from_utf8_lossy(&bytes).into_owned(),
            details: None,
            request_id,
        },
    }))
}

fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn encode_query(s: &str) -> String {
    encode_path(s)
}
