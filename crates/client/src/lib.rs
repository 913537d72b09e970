//! Rust SDK for the agentbase / Chatbase v2 API: typed calls, errors that carry
//! the envelope's code and the `x-request-id`, and retries that honour
//! `Retry-After` and `X-RateLimit-Reset`. The base URL is configurable, so the same
//! client talks to chatbase.co.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use agentbase_api_types as api;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use agentbase_api_types as types;
/// The HTTP client this crate is built on, for [`Client::with_http_client`] and
/// [`Client::request`] without a second, possibly mismatched, `reqwest` dependency.
pub use reqwest;

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

    /// Sends every call through `http` instead of a default `reqwest::Client`: for
    /// a self-hosted server whose certificate comes from a private CA, or for
    /// timeouts, proxies and client certificates. The key and the base URL still
    /// come from [`Client::new`].
    ///
    /// ```no_run
    /// # #[cfg(feature = "rustls")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use agentbase_client::{Client, reqwest};
    ///
    /// let ca = reqwest::Certificate::from_pem(&std::fs::read("ca.pem")?)?;
    /// let http = reqwest::Client::builder().add_root_certificate(ca).build()?;
    /// let client = Client::new("https://agents.internal/api/v2", Some("key".into()))
    ///     .with_http_client(http);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "rustls"))]
    /// # fn main() {}
    /// ```
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
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

/// A stream of UI Message Stream chunks, ending after `data: [DONE]`.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<api::UiChunk, Error>> + Send>>;

/// Query parameters of the conversation lists.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
}

impl ListParams {
    fn query(&self) -> String {
        let mut q = Vec::new();
        for (k, v) in [
            ("cursor", &self.cursor),
            ("startDate", &self.start_date),
            ("endDate", &self.end_date),
        ] {
            if let Some(v) = v {
                q.push(format!("{k}={}", encode_query(v)));
            }
        }
        if let Some(l) = self.limit {
            q.push(format!("limit={l}"));
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }
}

impl Client {
    /// A non-streaming chat call (`stream: false` is forced).
    pub async fn chat(
        &self,
        agent_id: &str,
        request: &api::ChatRequest,
    ) -> Result<api::ChatResponse, Error> {
        let mut r = request.clone();
        r.stream = Some(false);
        self.send(
            Method::POST,
            &format!("/agents/{}/chat", encode_path(agent_id)),
            Some(&r),
        )
        .await
    }

    /// A streaming chat call: the typed chunks as they arrive.
    pub async fn chat_stream(
        &self,
        agent_id: &str,
        request: &api::ChatRequest,
    ) -> Result<ChunkStream, Error> {
        let mut r = request.clone();
        r.stream = Some(true);
        self.stream(&format!("/agents/{}/chat", encode_path(agent_id)), &r)
            .await
    }

    pub async fn retry(
        &self,
        agent_id: &str,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<api::ChatResponse, Error> {
        let body = api::RetryRequest {
            message_id: message_id.to_owned(),
            stream: Some(false),
        };
        self.send(
            Method::POST,
            &format!(
                "/agents/{}/conversations/{}/retry",
                encode_path(agent_id),
                encode_path(conversation_id)
            ),
            Some(&body),
        )
        .await
    }

    pub async fn retry_stream(
        &self,
        agent_id: &str,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<ChunkStream, Error> {
        let body = api::RetryRequest {
            message_id: message_id.to_owned(),
            stream: Some(true),
        };
        self.stream(
            &format!(
                "/agents/{}/conversations/{}/retry",
                encode_path(agent_id),
                encode_path(conversation_id)
            ),
            &body,
        )
        .await
    }

    async fn stream(&self, path: &str, body: &impl Serialize) -> Result<ChunkStream, Error> {
        let mut attempt = 0;
        let response = loop {
            let response = self.request(Method::POST, path).json(body).send().await?;
            if response.status() == StatusCode::TOO_MANY_REQUESTS && attempt < self.max_retries {
                attempt += 1;
                tokio::time::sleep(retry_delay(&response, attempt).min(self.max_wait)).await;
                continue;
            }
            break response;
        };
        if !response.status().is_success() {
            return Err(decode::<serde_json::Value>(response)
                .await
                .err()
                .unwrap_or_else(|| Error::Decode("error without body".into())));
        }
        Ok(parse_sse(response.bytes_stream()))
    }

    pub async fn submit_tool_result(
        &self,
        agent_id: &str,
        conversation_id: &str,
        tool_call_id: &str,
        output: serde_json::Value,
    ) -> Result<api::SuccessData, Error> {
        let body = api::SubmitToolResultRequest {
            tool_call_id: tool_call_id.to_owned(),
            output: Some(output),
        };
        self.send(
            Method::POST,
            &format!(
                "/agents/{}/conversations/{}/tool-result",
                encode_path(agent_id),
                encode_path(conversation_id)
            ),
            Some(&body),
        )
        .await
    }

    pub async fn list_conversations(
        &self,
        agent_id: &str,
        params: &ListParams,
    ) -> Result<api::ListConversationsResponse, Error> {
        self.send(
            Method::GET,
            &format!(
                "/agents/{}/conversations{}",
                encode_path(agent_id),
                params.query()
            ),
            None::<&()>,
        )
        .await
    }

    /// Every conversation matching `params`, page by page, as one stream.
    pub fn conversations(
        &self,
        agent_id: &str,
        params: ListParams,
    ) -> Pin<Box<dyn Stream<Item = Result<api::ConversationMetadata, Error>> + Send + '_>> {
        let agent_id = agent_id.to_owned();
        let state = (Some(params), VecDeque::new());
        Box::pin(futures_util::stream::unfold(
            state,
            move |(mut next, mut buffer)| {
                let agent_id = agent_id.clone();
                async move {
                    loop {
                        if let Some(item) = buffer.pop_front() {
                            return Some((Ok(item), (next, buffer)));
                        }
                        let params = next.take()?;
                        match self.list_conversations(&agent_id, &params).await {
                            Ok(page) => {
                                buffer.extend(page.data);
                                if let (true, Some(c)) =
                                    (page.pagination.has_more, page.pagination.cursor)
                                {
                                    next = Some(ListParams {
                                        cursor: Some(c),
                                        ..params
                                    });
                                }
                            }
                            Err(e) => return Some((Err(e), (None, VecDeque::new()))),
                        }
                    }
                }
            },
        ))
    }

    pub async fn user_conversations(
        &self,
        agent_id: &str,
        user_id: &str,
        params: &ListParams,
    ) -> Result<api::ListConversationsResponse, Error> {
        self.send(
            Method::GET,
            &format!(
                "/agents/{}/users/{}/conversations{}",
                encode_path(agent_id),
                encode_path(user_id),
                params.query()
            ),
            None::<&()>,
        )
        .await
    }

    pub async fn get_conversation(
        &self,
        agent_id: &str,
        conversation_id: &str,
    ) -> Result<api::GetConversationResponse, Error> {
        self.send(
            Method::GET,
            &format!(
                "/agents/{}/conversations/{}",
                encode_path(agent_id),
                encode_path(conversation_id)
            ),
            None::<&()>,
        )
        .await
    }

    pub async fn list_messages(
        &self,
        agent_id: &str,
        conversation_id: &str,
        params: &ListParams,
    ) -> Result<api::ListMessagesResponse, Error> {
        self.send(
            Method::GET,
            &format!(
                "/agents/{}/conversations/{}/messages{}",
                encode_path(agent_id),
                encode_path(conversation_id),
                params.query()
            ),
            None::<&()>,
        )
        .await
    }

    pub async fn set_paused(
        &self,
        agent_id: &str,
        conversation_id: &str,
        paused: bool,
    ) -> Result<api::UpdateConversationResponse, Error> {
        let body = api::UpdateConversationRequest { paused };
        self.send(
            Method::PATCH,
            &format!(
                "/agents/{}/conversations/{}",
                encode_path(agent_id),
                encode_path(conversation_id)
            ),
            Some(&body),
        )
        .await
    }

    pub async fn set_feedback(
        &self,
        agent_id: &str,
        conversation_id: &str,
        message_id: &str,
        feedback: Option<api::FeedbackValue>,
    ) -> Result<api::MessageResponse, Error> {
        let body = api::UpdateFeedbackRequest { feedback };
        self.send(
            Method::PATCH,
            &format!(
                "/agents/{}/conversations/{}/messages/{}/feedback",
                encode_path(agent_id),
                encode_path(conversation_id),
                encode_path(message_id)
            ),
            Some(&body),
        )
        .await
    }

    /// `GET …/conversations/export`; `query` is the raw query string (without `?`).
    pub async fn export_conversations(
        &self,
        agent_id: &str,
        query: &str,
    ) -> Result<api::ExportConversationsResponse, Error> {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        self.send(
            Method::GET,
            &format!("/agents/{}/conversations/export{q}", encode_path(agent_id)),
            None::<&()>,
        )
        .await
    }
}

/// Splits an SSE byte stream into `data:` payloads and decodes each chunk. Only
/// `data: ` lines count (as the official clients do); `[DONE]` ends the stream.
pub fn parse_sse<S, E>(bytes: S) -> ChunkStream
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: Into<Error>,
{
    let state = (
        Box::pin(bytes),
        Vec::<u8>::new(),
        VecDeque::<Result<api::UiChunk, Error>>::new(),
        false,
    );
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut bytes, mut buf, mut ready, mut done)| async move {
            loop {
                if let Some(item) = ready.pop_front() {
                    return Some((item, (bytes, buf, ready, done)));
                }
                if done {
                    return None;
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => {
                        // Only the new bytes (and the one before them, for a split
                        // "\n\n") are searched, and the buffer is drained once per
                        // chunk: a long event in small pieces, or many events in one
                        // piece, costs linear time.
                        let mut from = buf.len().saturating_sub(1);
                        buf.extend_from_slice(&chunk);
                        let mut start = 0;
                        while let Some(end) = buf[from..]
                            .windows(2)
                            .position(|w| w == b"\n\n")
                            .map(|i| from + i)
                        {
                            let event = &buf[start..end + 2];
                            start = end + 2;
                            from = start;
                            for line in String::from_utf8_lossy(event).lines() {
                                let Some(data) = line.strip_prefix("data: ") else {
                                    continue;
                                };
                                if data == "[DONE]" {
                                    done = true;
                                    break;
                                }
                                ready.push_back(
                                    serde_json::from_str(data)
                                        .map_err(|e| Error::Decode(format!("{e}: {data}"))),
                                );
                            }
                            if done {
                                break;
                            }
                        }
                        buf.drain(..start);
                    }
                    Some(Err(e)) => {
                        ready.push_back(Err(e.into()));
                        done = true;
                    }
                    None => {
                        ready
                            .push_back(Err(Error::Decode("the stream ended before [DONE]".into())));
                        done = true;
                    }
                }
            }
        },
    ))
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
