//! The Anthropic provider against a local Messages API server: streaming text and
//! tool use, the request it sends, and every failure mapping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbase_core::model::{
    ChatMessage, ChatModel, FinishReason, ModelError, ModelEvent, Role, ToolCall, ToolSpec, Usage,
};
use agentbase_providers::{Anthropic, AnthropicConfig};
use serde_json::json;
use tokio::sync::Notify;

use crate::support::*;

const TEXT: &str = include_str!("fixtures/anthropic_text.sse");
const TOOL_USE: &str = include_str!("fixtures/anthropic_tool_use.sse");

fn provider(upstream: &Upstream, idle_timeout: Duration) -> Anthropic {
    Anthropic::new(AnthropicConfig {
        base_url: upstream.url.clone(),
        api_key: Some("sk-ant-test".into()),
        connect_timeout: Duration::from_secs(2),
        idle_timeout,
        ..AnthropicConfig::default()
    })
    .expect("valid config")
}

fn patient(upstream: &Upstream) -> Anthropic {
    provider(upstream, PATIENCE)
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

fn tool_result(id: &str, name: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: Role::Tool,
        content: content.into(),
        tool_calls: Vec::new(),
        tool_call_id: Some(id.into()),
        tool_name: Some(name.into()),
    }
}

#[tokio::test]
async fn text_streams_as_deltas_and_pings_are_ignored() {
    let upstream = Upstream::always(|| sse(TEXT)).await;
    let (events, error) =
        collect(patient(&upstream).stream(simple_request("claude-sonnet-4-5"))).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("Hello".into()),
            ModelEvent::TextDelta(" there!".into()),
            ModelEvent::Finish {
                reason: FinishReason::Stop,
                usage: Usage {
                    prompt_tokens: 472,
                    completion_tokens: 15
                },
            },
        ]
    );
}

#[tokio::test]
async fn the_request_lifts_the_system_prompt_and_sends_tool_calls_and_results_as_blocks() {
    let mut upstream = Upstream::always(|| sse(TEXT)).await;
    let mut request = simple_request("claude-sonnet-4-5");
    request.messages.push(ChatMessage {
        role: Role::Assistant,
        content: "Checking both.".into(),
        tool_calls: vec![
            call("toolu_1", "get_weather", r#"{"location":"Paris"}"#),
            call("toolu_2", "get_time", ""),
        ],
        tool_call_id: None,
        tool_name: None,
    });
    request
        .messages
        .push(tool_result("toolu_1", "get_weather", "18°C"));
    request
        .messages
        .push(tool_result("toolu_2", "get_time", "09:00"));
    request
        .messages
        .push(ChatMessage::text(Role::User, "And tomorrow?"));
    request.tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: "Current weather for a city".into(),
        parameters: json!({ "type": "object", "properties": { "location": { "type": "string" } } }),
    }];
    request.temperature = 0.4;
    request.max_tokens = 1024;

    let (_, error) = collect(patient(&upstream).stream(request)).await;
    assert_eq!(error, None);

    let seen = upstream.next_request().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(
        seen.body,
        json!({
            "model": "claude-sonnet-4-5",
            "system": "You are terse.",
            "max_tokens": 1024,
            "temperature": 0.4,
            "stream": true,
            "messages": [
                { "role": "user", "content": "Say hello." },
                {
                    "role": "assistant",
                    "content": [
                        { "type": "text", "text": "Checking both." },
                        { "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "location": "Paris" } },
                        { "type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {} },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        { "type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C" },
                        { "type": "tool_result", "tool_use_id": "toolu_2", "content": "09:00" },
                        { "type": "text", "text": "And tomorrow?" },
                    ],
                },
            ],
            "tools": [{
                "name": "get_weather",
                "description": "Current weather for a city",
                "input_schema": { "type": "object", "properties": { "location": { "type": "string" } } },
            }],
        })
    );
}

#[tokio::test]
async fn tool_use_blocks_stream_as_tool_calls_with_their_own_indices_and_end_the_turn_as_tool_calls()
 {
    let upstream = Upstream::always(|| sse(TOOL_USE)).await;
    let (events, error) =
        collect(patient(&upstream).stream(simple_request("claude-sonnet-4-5"))).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta("Let me check the weather.".into()),
            ModelEvent::ToolCallStart {
                index: 0,
                id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
                name: "get_weather".into(),
            },
            ModelEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"location\":".into()
            },
            ModelEvent::ToolCallDelta {
                index: 0,
                arguments: " \"San Francisco, CA\"}".into()
            },
            ModelEvent::ToolCallEnd { index: 0 },
            ModelEvent::ToolCallStart {
                index: 1,
                id: "toolu_01CGTjFqU3h2rWNiydQoeYyD".into(),
                name: "get_time".into()
            },
            // A tool without parameters streams only "": callers still get an object.
            ModelEvent::ToolCallDelta {
                index: 1,
                arguments: "{}".into()
            },
            ModelEvent::ToolCallEnd { index: 1 },
            ModelEvent::Finish {
                reason: FinishReason::ToolCalls,
                usage: Usage {
                    prompt_tokens: 472,
                    completion_tokens: 89
                },
            },
        ]
    );
}

#[tokio::test]
async fn a_max_tokens_stop_ends_the_turn_as_length() {
    let transcript = TEXT.replace(
        r#""stop_reason":"end_turn""#,
        r#""stop_reason":"max_tokens""#,
    );
    let upstream = Upstream::always(move || sse(&transcript)).await;
    let (events, error) =
        collect(patient(&upstream).stream(simple_request("claude-sonnet-4-5"))).await;
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
            r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#,
        )
    })
    .await;
    let (events, error) =
        collect(patient(&upstream).stream(simple_request("claude-sonnet-4-5"))).await;
    assert_eq!(events, vec![]);
    assert_eq!(
        error,
        Some(ModelError::Upstream {
            status: 500,
            message: "Internal server error".into()
        })
    );
}

#[tokio::test]
async fn a_429_becomes_rate_limited_with_the_retry_after_seconds() {
    let upstream = Upstream::always(|| Reply::Json {
        status: axum::http::StatusCode::TOO_MANY_REQUESTS,
        headers: vec![("retry-after", "7".into())],
        body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#.into(),
    })
    .await;
    let (_, error) = collect(patient(&upstream).stream(simple_request("claude-sonnet-4-5"))).await;
    assert_eq!(
        error,
        Some(ModelError::RateLimited {
            retry_after_secs: Some(7)
        })
    );
}

#[tokio::test]
async fn an_overloaded_error_event_mid_stream_becomes_upstream_529_after_the_text_so_far() {
    let upstream = Upstream::always(|| {
        let mut events = events(TEXT);
        events.truncate(4);
        events.push(
            "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"
                .into(),
        );
        Reply::Sse { events, end: End::Clean }
    })
    .await;
    let (events, error) =
        collect(patient(&upstream).stream(simple_request("claude-sonnet-4-5"))).await;
    assert_eq!(events, vec![ModelEvent::TextDelta("Hello".into())]);
    assert_eq!(
        error,
        Some(ModelError::Upstream {
            status: 529,
            message: "Overloaded".into()
        })
    );
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_disconnected_after_the_text_so_far() {
    let cut = Arc::new(Notify::new());
    let server_cut = cut.clone();
    let upstream = Upstream::always(move || {
        let mut events = events(TEXT);
        events.truncate(4);
        Reply::Sse {
            events,
            end: End::CutWhen(server_cut.clone()),
        }
    })
    .await;
    let mut stream = patient(&upstream).stream(simple_request("claude-sonnet-4-5"));
    assert_eq!(
        next_event(&mut stream).await,
        ModelEvent::TextDelta("Hello".into())
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
async fn a_stream_that_ends_without_message_stop_is_disconnected() {
    let upstream = Upstream::always(|| {
        let mut events = events(TEXT);
        events.pop();
        Reply::Sse {
            events,
            end: End::Clean,
        }
    })
    .await;
    let (events, error) =
        collect(patient(&upstream).stream(simple_request("claude-sonnet-4-5"))).await;
    assert_eq!(text_of(&events), "Hello there!");
    match error {
        Some(ModelError::Disconnected(message)) => {
            assert!(message.contains("message_stop"), "{message}")
        }
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
    let started = Instant::now();
    let (events, error) =
        collect(provider(&upstream, idle).stream(simple_request("claude-sonnet-4-5"))).await;
    let waited = started.elapsed();
    assert_eq!(events, vec![]);
    assert!(
        matches!(error, Some(ModelError::Disconnected(_))),
        "{error:?}"
    );
    assert!(waited >= idle && waited < PATIENCE / 2, "waited {waited:?}");
}

#[tokio::test]
async fn a_refused_connection_is_disconnected() {
    let provider = Anthropic::new(AnthropicConfig {
        base_url: closed_port_url().await,
        ..AnthropicConfig::default()
    })
    .expect("valid config");
    let (events, error) = collect(provider.stream(simple_request("claude-sonnet-4-5"))).await;
    assert_eq!(events, vec![]);
    assert!(
        matches!(error, Some(ModelError::Disconnected(_))),
        "{error:?}"
    );
}

#[test]
fn the_config_debug_output_hides_the_api_key() {
    let config = AnthropicConfig {
        api_key: Some("sk-ant-secret".into()),
        ..AnthropicConfig::default()
    };
    assert!(!format!("{config:?}").contains("sk-ant-secret"));
}
