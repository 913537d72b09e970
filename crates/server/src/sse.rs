//! The UI Message Stream protocol (v1) on the wire: turns a turn's events into
//! `data: <one-line JSON>\n\n` frames, each flushed as soon as it is made, ending
//! with `data: [DONE]`. The first frames (`start`, `start-step`) need nothing but
//! the turn's ids, so the first byte never waits for the model or the record.

use std::convert::Infallible;

use agentbase_api_types::{StreamMetadata, UiChunk, Usage};
use agentbase_service::chat::{Turn, TurnEvent, TurnMeta};
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;

fn frame(out: &mut Vec<u8>, chunk: &UiChunk) {
    out.extend_from_slice(b"data: ");
    // serde_json escapes control characters, so a frame is always one line.
    if serde_json::to_writer(&mut *out, chunk).is_err() {
        out.extend_from_slice(br#"{"type":"error","errorText":"unencodable chunk"}"#);
    }
    out.extend_from_slice(b"\n\n");
}

/// Turns events into chunks, tracking the open text part.
pub struct Encoder {
    meta: TurnMeta,
    text_id: Option<String>,
    text_parts: usize,
    /// Error details (an upstream provider's message, say) are for the operator:
    /// a public stream shows [`PUBLIC_ERROR`] instead.
    public: bool,
}

/// What a widget visitor sees when an answer fails; the cause is in the log and
/// in the stored message.
pub const PUBLIC_ERROR: &str = "The assistant could not answer just now. Please try again.";

impl Encoder {
    pub fn new(meta: TurnMeta) -> Self {
        Self {
            meta,
            text_id: None,
            text_parts: 0,
            public: false,
        }
    }

    fn close_text(&mut self, out: &mut Vec<UiChunk>) {
        if let Some(id) = self.text_id.take() {
            out.push(UiChunk::TextEnd { id });
        }
    }

    pub fn opening(&self) -> Vec<UiChunk> {
        vec![
            UiChunk::Start {
                message_id: self.meta.message_id.clone(),
            },
            UiChunk::StartStep,
        ]
    }

    pub fn metadata(&self, finish_reason: &str, credits: f64) -> StreamMetadata {
        StreamMetadata {
            message_id: self.meta.message_id.clone(),
            user_message_id: self.meta.user_message_id.clone(),
            conversation_id: self.meta.conversation_id.clone(),
            user_id: self.meta.user_id.clone(),
            finish_reason: finish_reason.to_owned(),
            usage: Usage { credits },
        }
    }

    pub fn encode(&mut self, event: TurnEvent) -> Vec<UiChunk> {
        let mut out = Vec::new();
        match event {
            TurnEvent::TextDelta(delta) => {
                let id = match &self.text_id {
                    Some(id) => id.clone(),
                    None => {
                        self.text_parts += 1;
                        let id = format!("text_{}", self.text_parts);
                        out.push(UiChunk::TextStart { id: id.clone() });
                        self.text_id = Some(id.clone());
                        id
                    }
                };
                out.push(UiChunk::TextDelta { id, delta });
            }
            TurnEvent::ToolInputStart { id, name } => {
                self.close_text(&mut out);
                out.push(UiChunk::ToolInputStart {
                    tool_call_id: id,
                    tool_name: name,
                });
            }
            TurnEvent::ToolInputDelta { id, delta } => {
                out.push(UiChunk::ToolInputDelta {
                    tool_call_id: id,
                    input_text_delta: delta,
                });
            }
            TurnEvent::ToolInputAvailable { id, name, input } => {
                out.push(UiChunk::ToolInputAvailable {
                    tool_call_id: id,
                    tool_name: name,
                    input,
                });
            }
            TurnEvent::Sources(citations) => {
                // One chunk per source (per page for websites), as the AI SDK's
                // `source-url` / `source-document` parts.
                let mut seen = std::collections::HashSet::new();
                for c in citations {
                    if !seen.insert((c.source_id.clone(), c.url.clone())) {
                        continue;
                    }
                    out.push(match c.url {
                        Some(url) => UiChunk::SourceUrl {
                            source_id: c.source_id,
                            url,
                            title: Some(c.title),
                        },
                        None => UiChunk::SourceDocument {
                            source_id: c.source_id,
                            media_type: "text/markdown".into(),
                            title: c.title,
                        },
                    });
                }
            }
            TurnEvent::Error(text) => {
                self.close_text(&mut out);
                let error_text = if self.public {
                    PUBLIC_ERROR.to_owned()
                } else {
                    text
                };
                out.push(UiChunk::Error { error_text });
            }
            TurnEvent::Finish {
                finish_reason,
                credits,
            } => {
                self.close_text(&mut out);
                let metadata = self.metadata(finish_reason, credits);
                out.push(UiChunk::FinishStep);
                out.push(UiChunk::MessageMetadata {
                    message_metadata: metadata.clone(),
                });
                out.push(UiChunk::Finish {
                    finish_reason: finish_reason.to_owned(),
                    message_metadata: metadata,
                });
            }
        }
        out
    }
}

/// The streaming response for a turn, for the API's callers.
pub fn response(turn: Turn) -> Response {
    stream_response(turn, false)
}

/// The streaming response for a turn, for anonymous visitors (the widget): error
/// details are replaced by [`PUBLIC_ERROR`].
pub fn public_response(turn: Turn) -> Response {
    stream_response(turn, true)
}

fn stream_response(turn: Turn, public: bool) -> Response {
    let mut encoder = Encoder::new(turn.meta);
    encoder.public = public;
    let mut first = Vec::new();
    for c in encoder.opening() {
        frame(&mut first, &c);
    }
    struct State {
        encoder: Encoder,
        events: tokio::sync::mpsc::Receiver<TurnEvent>,
        done: bool,
    }
    let state = State {
        encoder,
        events: turn.events,
        done: false,
    };
    let rest = stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let mut out = Vec::new();
        match s.events.recv().await {
            Some(event) => {
                let finished = matches!(event, TurnEvent::Finish { .. });
                for c in s.encoder.encode(event) {
                    frame(&mut out, &c);
                }
                if finished {
                    out.extend_from_slice(b"data: [DONE]\n\n");
                    s.done = true;
                }
            }
            None => {
                // The generator vanished without finishing: end cleanly anyway.
                for c in s
                    .encoder
                    .encode(TurnEvent::Error("The answer was interrupted".into()))
                {
                    frame(&mut out, &c);
                }
                for c in s.encoder.encode(TurnEvent::Finish {
                    finish_reason: "error",
                    credits: 0.0,
                }) {
                    frame(&mut out, &c);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                s.done = true;
            }
        }
        Some((Ok::<_, Infallible>(Bytes::from(out)), s))
    });
    let body = stream::once(async move { Ok::<_, Infallible>(Bytes::from(first)) });
    let mut response =
        Body::from_stream(futures_util::StreamExt::chain(body, rest)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert(
        "x-vercel-ai-ui-message-stream",
        HeaderValue::from_static("v1"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
