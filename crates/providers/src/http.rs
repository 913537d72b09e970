//! The HTTP plumbing both providers share: one client per provider with the connect
//! timeout, every wait bounded by the idle timeout, error statuses and transport
//! failures mapped onto `ModelError`, and an SSE body driven into `ModelEvent`s by a
//! provider-specific `Decoder`. Keeping this in one place is what makes "never hang"
//! and "same failure, same error" hold for every provider alike.

use std::collections::VecDeque;
use std::error::Error as _;
use std::pin::Pin;
use std::time::Duration;

use agentbase_core::model::{ModelError, ModelEvent, ModelStream};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::sse::{SseDecoder, SseEvent};

/// Error bodies are read for their message only; a huge one is cut here.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// What of an unparseable error body is kept in the message.
const ERROR_TEXT_CHARS: usize = 500;

#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) client: reqwest::Client,
    idle_timeout: Duration,
}

impl Http {
    pub(crate) fn new(
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("agentbase/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ModelError::Unavailable(format!("cannot build the HTTP client: {}", chain(&e)))
            })?;
        Ok(Self {
            client,
            idle_timeout,
        })
    }

    /// Sends `request` and reads the whole JSON answer, for non-streaming calls.
    pub(crate) async fn json(&self, request: RequestBuilder) -> Result<Value, ModelError> {
        let response = send(request, self.idle_timeout).await?;
        let body = read_body(response, self.idle_timeout, usize::MAX).await?;
        serde_json::from_slice(&body)
            .map_err(|e| ModelError::Failed(format!("upstream answered with invalid JSON: {e}")))
    }

    /// Sends `request` lazily (on the first poll) and streams its SSE body through
    /// `decoder`. Dropping the stream drops the response, which closes the connection.
    pub(crate) fn stream<D: Decoder>(&self, request: RequestBuilder, decoder: D) -> ModelStream {
        let driver = Driver {
            request: Some(request),
            body: None,
            idle_timeout: self.idle_timeout,
            sse: SseDecoder::default(),
            decoder,
            queue: VecDeque::new(),
            done: false,
        };
        Box::pin(futures_util::stream::unfold(
            driver,
            |mut driver| async move {
                let item = driver.next().await?;
                Some((item, driver))
            },
        ))
    }
}

/// Local servers take no key, so the header is only sent when one is configured.
pub(crate) fn bearer(request: RequestBuilder, api_key: Option<&str>) -> RequestBuilder {
    match api_key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

/// Whether the provider's stream goes on after an event.
pub(crate) enum Flow {
    Continue,
    /// The provider's terminator was seen: nothing more is read.
    Done,
}

/// Turns one provider's SSE events into model events.
pub(crate) trait Decoder: Send + 'static {
    /// What ends this provider's stream, for the "ended early" message.
    const TERMINATOR: &'static str;

    fn event(&mut self, event: SseEvent, out: &mut Vec<ModelEvent>) -> Result<Flow, ModelError>;
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct Driver<D> {
    request: Option<RequestBuilder>,
    body: Option<Body>,
    idle_timeout: Duration,
    sse: SseDecoder,
    decoder: D,
    /// Events decoded from a chunk but not yet handed out; an error goes last and
    /// ends the stream.
    queue: VecDeque<Result<ModelEvent, ModelError>>,
    done: bool,
}

impl<D: Decoder> Driver<D> {
    async fn next(&mut self) -> Option<Result<ModelEvent, ModelError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            if let Err(error) = self.advance().await {
                self.finish();
                self.queue.push_back(Err(error));
            }
        }
    }

    /// Connects, or reads and decodes one chunk into the queue.
    async fn advance(&mut self) -> Result<(), ModelError> {
        let chunk = match self.body.as_mut() {
            Some(body) => tokio::time::timeout(self.idle_timeout, body.next()).await,
            None => {
                let request = self.request.take().ok_or_else(|| {
                    ModelError::Failed("stream polled after its connection closed".into())
                })?;
                let response = send(request, self.idle_timeout).await?;
                expect_event_stream(&response)?;
                self.body = Some(Box::pin(response.bytes_stream()));
                return Ok(());
            }
        };
        let chunk = match chunk {
            Err(_) => return Err(idle(self.idle_timeout)),
            Ok(None) => {
                return Err(ModelError::Disconnected(format!(
                    "the stream ended before {}",
                    D::TERMINATOR
                )));
            }
            Ok(Some(Err(e))) => return Err(transport(&e)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        let mut events = Vec::new();
        self.sse
            .push(&chunk, &mut events)
            .map_err(ModelError::Failed)?;
        let mut decoded = Vec::new();
        for event in events {
            let flow = self.decoder.event(event, &mut decoded);
            self.queue.extend(decoded.drain(..).map(Ok));
            if let Flow::Done = flow? {
                self.finish();
                break;
            }
        }
        Ok(())
    }

    fn finish(&mut self) {
        self.done = true;
        self.body = None;
    }
}

/// Sends with the idle timeout on the wait for headers and maps a refusal.
async fn send(request: RequestBuilder, idle_timeout: Duration) -> Result<Response, ModelError> {
    let response = match tokio::time::timeout(idle_timeout, request.send()).await {
        Err(_) => return Err(idle(idle_timeout)),
        Ok(Err(e)) => return Err(transport(&e)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after_secs = retry_after(response.headers());
        // The body is dropped unread: the retry hint is all a caller acts on.
        tracing::debug!(
            status = status.as_u16(),
            retry_after_secs,
            "upstream rate limited"
        );
        return Err(ModelError::RateLimited { retry_after_secs });
    }
    let body = read_body(response, idle_timeout, ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    Err(ModelError::Upstream {
        status: status.as_u16(),
        message: error_message(&body, status),
    })
}

/// Some servers answer a streaming request with one JSON document (an error, or a
/// complete answer when they ignore `stream`); reading that as SSE would only end in
/// a misleading "stream ended early".
fn expect_event_stream(response: &Response) -> Result<(), ModelError> {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        return Err(ModelError::Failed(
            "upstream answered with JSON instead of an event stream".into(),
        ));
    }
    Ok(())
}

/// Reads a body chunk by chunk, each chunk within the idle timeout, up to `limit`.
async fn read_body(
    response: Response,
    idle_timeout: Duration,
    limit: usize,
) -> Result<Vec<u8>, ModelError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    loop {
        match tokio::time::timeout(idle_timeout, stream.next()).await {
            Err(_) => return Err(idle(idle_timeout)),
            Ok(None) => return Ok(body),
            Ok(Some(Err(e))) => return Err(transport(&e)),
            Ok(Some(Ok(chunk))) => {
                let room = limit.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= limit {
                    return Ok(body);
                }
            }
        }
    }
}

fn idle(idle_timeout: Duration) -> ModelError {
    ModelError::Disconnected(format!(
        "no data from upstream for {:.1}s",
        idle_timeout.as_secs_f64()
    ))
}

fn transport(error: &reqwest::Error) -> ModelError {
    let what = if error.is_connect() {
        "cannot connect to upstream"
    } else if error.is_timeout() {
        "upstream timed out"
    } else {
        "upstream connection failed"
    };
    ModelError::Disconnected(format!("{what}: {}", chain(error)))
}

/// reqwest's own message is generic ("error sending request"); the cause that says
/// "connection refused" or "connection reset" is further down the source chain.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds (fractions round up); the HTTP-date form gives `None`,
/// as no provider sends it. Azure's `retry-after-ms` is the fallback.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = |text: &str| {
        text.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
    };
    if let Some(secs) = header(RETRY_AFTER.as_str()).and_then(seconds) {
        return Some(secs.ceil() as u64);
    }
    header("retry-after-ms")
        .and_then(seconds)
        .map(|ms| (ms / 1000.0).ceil() as u64)
}

/// The human message in a provider's error body. OpenAI, Anthropic, Ollama and
/// vLLM all nest it as `error.message`; FastAPI-style servers use `detail` or
/// `message`; anything else is shown as text, shortened.
pub(crate) fn error_message(body: &[u8], status: StatusCode) -> String {
    let json = serde_json::from_slice::<Value>(body).ok();
    if let Some(message) = json.as_ref().and_then(json_error_message) {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no error message")
            .to_owned();
    }
    text.chars().take(ERROR_TEXT_CHARS).collect()
}

pub(crate) fn json_error_message(json: &Value) -> Option<String> {
    [
        &json["error"]["message"],
        &json["error"],
        &json["message"],
        &json["detail"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn retry_after_reads_whole_and_fractional_seconds_and_milliseconds() {
        assert_eq!(retry_after(&headers(&[("retry-after", "20")])), Some(20));
        assert_eq!(retry_after(&headers(&[("retry-after", "1.2")])), Some(2));
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "1500")])),
            Some(2)
        );
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            None
        );
        assert_eq!(retry_after(&headers(&[])), None);
    }

    #[test]
    fn error_messages_are_found_in_every_providers_shape() {
        let status = StatusCode::BAD_REQUEST;
        let openai = br#"{"error":{"message":"bad model","type":"invalid_request_error","param":null,"code":null}}"#;
        let anthropic = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}}"#;
        assert_eq!(error_message(openai, status), "bad model");
        assert_eq!(error_message(anthropic, status), "max_tokens: required");
        assert_eq!(
            error_message(br#"{"error":"model not found"}"#, status),
            "model not found"
        );
        assert_eq!(
            error_message(br#"{"detail":"Not Found"}"#, status),
            "Not Found"
        );
        assert_eq!(
            error_message(b"<html>bad gateway</html>", status),
            "<html>bad gateway</html>"
        );
        assert_eq!(error_message(b"", StatusCode::BAD_GATEWAY), "Bad Gateway");
    }
}
