//! The OpenAI-compatible chat provider against a local Chat Completions server:
//! streaming text and tool calls, the request it sends, and every failure mapping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbase_core::model::{
    ChatMessage, ChatModel, FinishReason, ModelError, ModelEvent, Role, ToolCall, ToolSpec, Usage,
};
use agentbase_providers::{OpenAiCompatible, OpenAiConfig};
use serde_json::json;
use tokio::sync::{Notify, oneshot};

use crate::support::*;

const TEXT: &str = include_str!("fixtures/openai_text.sse");
const PARALLEL_TOOLS: &str = include_str!("fixtures/openai_parallel_tools.sse");
const OLLAMA_TOOLS: &str = include_str!("fixtures/ollama_tools_without_index.sse");

fn provider(
    upstream: &Upstream,
    api_key: Option<&str>,
    idle_timeout: Duration,
) -> OpenAiCompatible {
    OpenAiCompatible::new(OpenAiConfig {
        base_url: format!("{}/v1/", upstream.url),
        api_key: api_key.map(str::to_owned),
        connect_timeout: Duration::from_secs(2),
        idle_timeout,
        ..OpenAiConfig::default()
    })
    .expect("valid config")
}

fn patient(upstream: &Upstream) -> OpenAiCompatible {
    provider(upstream, Some("sk-test"), PATIENCE)
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Current weather for a city".into(),
        parameters: json!({
            "type": "object",
            "properties": { "location": { "type": "string" } },
            "required": ["location"],
        }),
    }
}

#[tokio::test]
async fn text_streams_as_deltas_and_finishes_with_the_usage_of_the_last_chunk() {
    let upstream = Upstream::always(|| sse(TEXT)).await;
    let (events, error) = collect(patient(&upstream).stream(simple_request("gpt-4o-mini"))).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("Hello".into()),
            ModelEvent::TextDelta(" there".into()),
            ModelEvent::TextDelta("!".into()),
            ModelEvent::Finish {
                reason: FinishReason::Stop,
                usage: Usage {
                    prompt_tokens: 21,
                    completion_tokens: 3
                },
            },
        ]
    );
}

#[tokio::test]
async fn the_request_carries_the_conversation_tools_and_settings_in_chat_completions_form() {
    let mut upstream = Upstream::always(|| sse(TEXT)).await;
    let mut request = simple_request("gpt-4o");
    request.messages.push(ChatMessage {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"location":"Paris"}"#.into(),
        }],
        tool_call_id: None,
        tool_name: None,
    });
    request.messages.push(ChatMessage {
        role: Role::Tool,
        content: "18°C and sunny".into(),
        tool_calls: Vec::new(),
        tool_call_id: Some("call_1".into()),
        tool_name: Some("get_weather".into()),
    });
    request
        .messages
        .push(ChatMessage::text(Role::Assistant, "It is sunny."));
    request
        .messages
        .push(ChatMessage::text(Role::User, "Thanks!"));
    request.tools = vec![weather_tool()];
    request.temperature = 0.7;
    request.max_tokens = 321;

    let (_, error) = collect(patient(&upstream).stream(request)).await;
    assert_eq!(error, None);

    let seen = upstream.next_request().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.body,
        json!({
            "model": "gpt-4o",
            "messages": [
                { "role": "system", "content": "You are terse." },
                { "role": "user", "content": "Say hello." },
                {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": "call_1",
                        "type": "function",
                        "function": { "name": "get_weather", "arguments": "{\"location\":\"Paris\"}" },
                    }],
                },
                { "role": "tool", "tool_call_id": "call_1", "content": "18°C and sunny" },
                { "role": "assistant", "content": "It is sunny." },
                { "role": "user", "content": "Thanks!" },
            ],
            "tools": [{
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": { "location": { "type": "string" } },
                        "required": ["location"],
                    },
                },
            }],
            "temperature": 0.7,
            "max_tokens": 321,
            "stream": true,
            "stream_options": { "include_usage": true },
        })
    );
}

#[tokio::test]
async fn a_local_server_without_a_key_gets_no_authorization_header_and_no_tools_field() {
    let mut upstream = Upstream::always(|| sse(TEXT)).await;
    let provider = provider(&upstream, None, PATIENCE);
    let (_, error) = collect(provider.stream(simple_request("llama3.2"))).await;
    assert_eq!(error, None);
    let seen = upstream.next_request().await;
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.body.get("tools"), None);
}

#[tokio::test]
async fn two_parallel_tool_calls_stream_as_separate_starts_deltas_and_ends() {
    let upstream = Upstream::always(|| sse(PARALLEL_TOOLS)).await;
    let mut request = simple_request("gpt-4o");
    request.tools = vec![weather_tool()];
    let (events, error) = collect(patient(&upstream).stream(request)).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::ToolCallStart {
                index: 0,
                id: "call_Wt2xMxTdVv5mmKjOtbNSZ9nO".into(),
                name: "get_weather".into(),
            },
            ModelEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"lo".into()
            },
            ModelEvent::ToolCallDelta {
                index: 0,
                arguments: "cation\": \"P".into()
            },
            ModelEvent::ToolCallDelta {
                index: 0,
                arguments: "aris\"}".into()
            },
            ModelEvent::ToolCallStart {
                index: 1,
                id: "call_Gl0iCCJjZ4Q9ArUDFjPQnT9B".into(),
                name: "get_time".into()
            },
            ModelEvent::ToolCallDelta {
                index: 1,
                arguments: "{\"tz\"".into()
            },
            ModelEvent::ToolCallDelta {
                index: 1,
                arguments: ": \"CET\"}".into()
            },
            ModelEvent::ToolCallEnd { index: 0 },
            ModelEvent::ToolCallEnd { index: 1 },
            ModelEvent::Finish {
                reason: FinishReason::ToolCalls,
                usage: Usage {
                    prompt_tokens: 82,
                    completion_tokens: 51
                },
            },
        ]
    );
}

#[tokio::test]
async fn tool_calls_without_an_index_are_told_apart_by_id_and_end_the_turn_as_tool_calls() {
    let upstream = Upstream::always(|| sse(OLLAMA_TOOLS)).await;
    let (events, error) = collect(patient(&upstream).stream(simple_request("llama3.2"))).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::ToolCallStart {
                index: 0,
                id: "call_ib2ypsnm".into(),
                name: "get_weather".into()
            },
            ModelEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"location\":\"Paris\"}".into()
            },
            ModelEvent::ToolCallStart {
                index: 1,
                id: "call_w0q3ax7c".into(),
                name: "get_weather".into()
            },
            ModelEvent::ToolCallDelta {
                index: 1,
                arguments: "{\"location\":\"Rome\"}".into()
            },
            ModelEvent::ToolCallEnd { index: 0 },
            ModelEvent::ToolCallEnd { index: 1 },
            ModelEvent::Finish {
                reason: FinishReason::ToolCalls,
                usage: Usage {
                    prompt_tokens: 160,
                    completion_tokens: 34
                },
            },
        ]
    );
}

#[tokio::test]
async fn a_length_finish_reason_ends_the_turn_as_length() {
    let transcript = TEXT.replace(r#""finish_reason":"stop""#, r#""finish_reason":"length""#);
    let upstream = Upstream::always(move || sse(&transcript)).await;
    let (events, error) = collect(patient(&upstream).stream(simple_request("gpt-4o-mini"))).await;
    assert_eq!(error, None);
    assert!(matches!(
        events.last(),
        Some(ModelEvent::Finish {
            reason: FinishReason::Length,
            ..
        })
    ));
}

#[tokio::test]
async fn an_upstream_500_becomes_an_upstream_error_with_the_providers_message() {
    let upstream = Upstream::always(|| {
        json(
            500,
            r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
        )
    })
    .await;
    let (events, error) = collect(patient(&upstream).stream(simple_request("gpt-4o"))).await;
    assert_eq!(events, vec![]);
    assert_eq!(
        error,
        Some(ModelError::Upstream {
            status: 500,
            message: "The server had an error while processing your request. Sorry about that!"
                .into(),
        })
    );
}

#[tokio::test]
async fn a_429_becomes_rate_limited_with_the_retry_after_seconds() {
    let upstream = Upstream::always(|| Reply::Json {
        status: axum::http::StatusCode::TOO_MANY_REQUESTS,
        headers: vec![("retry-after", "20".into()), ("x-ratelimit-reset-requests", "20s".into())],
        body: r#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(),
    })
    .await;
    let (_, error) = collect(patient(&upstream).stream(simple_request("gpt-4o"))).await;
    assert_eq!(
        error,
        Some(ModelError::RateLimited {
            retry_after_secs: Some(20)
        })
    );
}

#[tokio::test]
async fn a_flat_vllm_error_chunk_in_a_successful_stream_becomes_an_upstream_error() {
    let upstream = Upstream::always(|| {
        let mut events = events(TEXT);
        events.truncate(2);
        events.push(
            "data: {\"object\":\"error\",\"message\":\"This model's maximum context length is 4096 tokens.\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}\n\n".into(),
        );
        Reply::Sse { events, end: End::Clean }
    })
    .await;
    let (events, error) = collect(patient(&upstream).stream(simple_request("served-model"))).await;
    assert_eq!(text_of(&events), "Hello");
    assert_eq!(
        error,
        Some(ModelError::Upstream {
            status: 400,
            message: "This model's maximum context length is 4096 tokens.".into(),
        })
    );
}

#[tokio::test]
async fn a_nested_error_chunk_keeps_its_status_and_message() {
    let upstream = Upstream::always(|| {
        let mut events = events(TEXT);
        events.truncate(2);
        events.push("data: {\"error\":{\"message\":\"upstream overloaded\",\"type\":\"server_error\",\"code\":503}}\n\n".into());
        Reply::Sse { events, end: End::Clean }
    })
    .await;
    let (events, error) = collect(patient(&upstream).stream(simple_request("gpt-4o"))).await;
    assert_eq!(text_of(&events), "Hello");
    assert_eq!(
        error,
        Some(ModelError::Upstream {
            status: 503,
            message: "upstream overloaded".into()
        })
    );
}

#[tokio::test]
async fn a_whole_json_answer_where_a_stream_was_asked_for_is_a_failure_not_an_early_end() {
    let upstream = Upstream::always(|| {
        json(
            200,
            r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}"#,
        )
    })
    .await;
    let (events, error) = collect(patient(&upstream).stream(simple_request("gpt-4o"))).await;
    assert_eq!(events, vec![]);
    assert!(
        matches!(error, Some(ModelError::Failed(ref m)) if m.contains("instead of an event stream")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_disconnected_after_the_text_so_far() {
    let cut = Arc::new(Notify::new());
    let server_cut = cut.clone();
    let upstream = Upstream::always(move || {
        let mut events = events(TEXT);
        events.truncate(3);
        Reply::Sse {
            events,
            end: End::CutWhen(server_cut.clone()),
        }
    })
    .await;
    let mut stream = patient(&upstream).stream(simple_request("gpt-4o-mini"));
    assert_eq!(
        next_event(&mut stream).await,
        ModelEvent::TextDelta("Hello".into())
    );
    assert_eq!(
        next_event(&mut stream).await,
        ModelEvent::TextDelta(" there".into())
    );
    cut.notify_one();
    let (rest, error) = collect(stream).await;
    assert_eq!(rest, vec![]);
    // The cause is the cut itself, not the idle timeout running out after it.
    assert!(
        matches!(error, Some(ModelError::Disconnected(ref m)) if !m.starts_with("no data")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stream_that_ends_without_done_is_disconnected() {
    let upstream = Upstream::always(|| {
        let mut events = events(TEXT);
        events.pop();
        Reply::Sse {
            events,
            end: End::Clean,
        }
    })
    .await;
    let (events, error) = collect(patient(&upstream).stream(simple_request("gpt-4o-mini"))).await;
    assert_eq!(text_of(&events), "Hello there!");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ModelEvent::Finish { .. }))
    );
    match error {
        Some(ModelError::Disconnected(message)) => assert!(message.contains("[DONE]"), "{message}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_sends_headers_and_then_nothing_is_disconnected_within_the_idle_timeout() {
    let upstream = Upstream::always(|| Reply::Sse {
        events: Vec::new(),
        end: End::Silent(None),
    })
    .await;
    let idle = Duration::from_millis(300);
    let provider = provider(&upstream, Some("sk-test"), idle);
    let started = Instant::now();
    let (events, error) = collect(provider.stream(simple_request("gpt-4o-mini"))).await;
    let waited = started.elapsed();
    assert_eq!(events, vec![]);
    assert!(
        matches!(error, Some(ModelError::Disconnected(_))),
        "{error:?}"
    );
    assert!(waited >= idle && waited < PATIENCE / 2, "waited {waited:?}");
}

#[tokio::test]
async fn a_server_that_goes_silent_mid_answer_is_disconnected_after_the_text_so_far() {
    let upstream = Upstream::always(|| {
        let mut events = events(TEXT);
        events.truncate(2);
        Reply::Sse {
            events,
            end: End::Silent(None),
        }
    })
    .await;
    let provider = provider(&upstream, Some("sk-test"), Duration::from_millis(300));
    let (events, error) = collect(provider.stream(simple_request("gpt-4o-mini"))).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("Hello".into())]);
    assert!(
        matches!(error, Some(ModelError::Disconnected(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_disconnected() {
    let provider = OpenAiCompatible::new(OpenAiConfig {
        base_url: format!("{}/v1", closed_port_url().await),
        ..OpenAiConfig::default()
    })
    .expect("valid config");
    let (events, error) = collect(provider.stream(simple_request("gpt-4o-mini"))).await;
    assert_eq!(events, vec![]);
    match error {
        Some(ModelError::Disconnected(message)) => {
            assert!(message.contains("connect"), "{message}")
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_response() {
    let (body_dropped_tx, body_dropped) = oneshot::channel();
    let sender = std::sync::Mutex::new(Some(body_dropped_tx));
    let upstream = Upstream::always(move || {
        let mut events = events(TEXT);
        events.truncate(2);
        Reply::Sse {
            events,
            end: End::Silent(sender.lock().expect("not poisoned").take()),
        }
    })
    .await;
    let mut stream = patient(&upstream).stream(simple_request("gpt-4o-mini"));
    assert_eq!(
        next_event(&mut stream).await,
        ModelEvent::TextDelta("Hello".into())
    );
    drop(stream);
    let closed = tokio::time::timeout(PATIENCE, body_dropped).await;
    assert!(
        matches!(closed, Ok(Err(_))),
        "the server still holds the response body"
    );
}

#[test]
fn a_base_url_that_is_not_http_is_refused_at_construction() {
    let result = OpenAiCompatible::new(OpenAiConfig {
        base_url: "localhost:11434".into(),
        ..OpenAiConfig::default()
    });
    assert!(matches!(result, Err(ModelError::Unavailable(_))));
}

#[test]
fn the_config_debug_output_hides_the_api_key() {
    let config = OpenAiConfig {
        api_key: Some("sk-secret".into()),
        ..OpenAiConfig::default()
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("sk-secret"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}
