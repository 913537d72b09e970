//! A local stand-in for a provider's server: an axum app on 127.0.0.1:0 that records
//! every request and answers from a script, streaming SSE bytes and then ending the
//! body cleanly, cutting the connection, or going silent. Cut and silence are driven
//! by signals from the test, never by sleeps.

use std::sync::Arc;
use std::time::Duration;

use agentbase_core::model::{ChatMessage, ChatRequest, ModelError, ModelEvent, ModelStream, Role};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures_util::stream::{self, BoxStream};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};

/// A safety net for every wait in a test: far above any expected duration, so it
/// only fires when the code under test hangs.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One request as the server saw it.
#[derive(Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub enum Reply {
    /// `text/event-stream`, the given events one write each, then `end`.
    Sse { events: Vec<String>, end: End },
    /// A plain answer, as for errors and embeddings.
    Json {
        status: StatusCode,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

pub enum End {
    /// The body ends normally.
    Clean,
    /// The connection is cut (no final chunk) once the test notifies.
    CutWhen(Arc<Notify>),
    /// Nothing more is ever sent; the sender is dropped when the server drops the body.
    Silent(Option<oneshot::Sender<()>>),
}

type Script = Box<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Clone)]
struct AppState {
    script: Arc<Script>,
    requests: mpsc::UnboundedSender<Recorded>,
}

pub struct Upstream {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    requests: mpsc::UnboundedReceiver<Recorded>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Upstream {
    pub async fn start(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let state = AppState {
            script: Arc::new(Box::new(script)),
            requests: requests_tx,
        };
        let app = axum::Router::new().fallback(answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("test server runs");
        });
        Self {
            url,
            requests,
            server,
        }
    }

    /// Answers every request with `reply`, built afresh each time.
    pub async fn always(reply: impl Fn() -> Reply + Send + Sync + 'static) -> Self {
        Self::start(move |_| reply()).await
    }

    pub async fn next_request(&mut self) -> Recorded {
        tokio::time::timeout(PATIENCE, self.requests.recv())
            .await
            .expect("a request within the patience")
            .expect("server still running")
    }

    pub fn no_more_requests(&mut self) -> bool {
        self.requests.try_recv().is_err()
    }
}

async fn answer(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("client sends JSON")
    };
    let recorded = Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    };
    let reply = (state.script)(&recorded);
    let _ = state.requests.send(recorded);
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut response = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::from(body)).expect("valid response")
        }
        Reply::Sse { events, end } => {
            let events = stream::iter(
                events
                    .into_iter()
                    .map(|e| Ok::<_, std::io::Error>(Bytes::from(e))),
            );
            let tail: BoxStream<'static, Result<Bytes, std::io::Error>> = match end {
                End::Clean => stream::empty().boxed(),
                End::CutWhen(signal) => stream::once(async move {
                    signal.notified().await;
                    Err(std::io::Error::other("test server cuts the connection"))
                })
                .boxed(),
                // The sender lives in the stream's state, so it is dropped exactly when
                // hyper drops the body, which it does when the client goes away.
                End::Silent(dropped) => stream::unfold(dropped, |dropped| async move {
                    let _keep = dropped;
                    std::future::pending::<()>().await;
                    None
                })
                .boxed(),
            };
            Response::builder()
                .header("content-type", "text/event-stream; charset=utf-8")
                .header("cache-control", "no-cache")
                .body(Body::from_stream(events.chain(tail)))
                .expect("valid response")
        }
    }
}

/// Splits a captured SSE transcript into its events, each with its blank line, so
/// the server writes them one by one as the providers do.
pub fn events(transcript: &str) -> Vec<String> {
    transcript
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect()
}

pub fn sse(transcript: &str) -> Reply {
    Reply::Sse {
        events: events(transcript),
        end: End::Clean,
    }
}

pub fn json(status: u16, body: &str) -> Reply {
    Reply::Json {
        status: StatusCode::from_u16(status).expect("status"),
        headers: Vec::new(),
        body: body.into(),
    }
}

/// Everything a stream yields: its events, and the error that ended it if any.
pub async fn collect(stream: ModelStream) -> (Vec<ModelEvent>, Option<ModelError>) {
    let all = tokio::time::timeout(PATIENCE, stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends");
    let mut events = Vec::new();
    let mut error = None;
    for item in all {
        assert!(error.is_none(), "nothing follows an error, got {item:?}");
        match item {
            Ok(event) => events.push(event),
            Err(e) => error = Some(e),
        }
    }
    (events, error)
}

pub async fn next_event(
    stream: &mut (impl Stream<Item = Result<ModelEvent, ModelError>> + Unpin),
) -> ModelEvent {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("an event within the patience")
        .expect("the stream has not ended")
        .expect("an event, not an error")
}

pub fn text_of(events: &[ModelEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::TextDelta(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

pub fn simple_request(model: &str) -> ChatRequest {
    ChatRequest {
        upstream_model: model.into(),
        messages: vec![
            ChatMessage::text(Role::System, "You are terse."),
            ChatMessage::text(Role::User, "Say hello."),
        ],
        tools: Vec::new(),
        temperature: 0.2,
        max_tokens: 64,
    }
}

/// A port that nothing listens on: bound, then released.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}")
}
