//! Client actions end to end: defined on the agent, offered to a hosted model as
//! tools (an OpenAI-compatible server speaking the real wire format, on loopback),
//! called, answered through `tool-result`, and continued with the result in context.

use std::sync::{Arc, Mutex};

use agentbase_client::types::{ChatRequest, MessagePart};
use agentbase_providers::{OpenAiCompatible, OpenAiConfig};
use agentbase_service::models::Providers;
use agentbase_service::settings::{ModelSettings, ProviderKind, ProviderSettings};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use crate::{outcome, spawn, spawn_with_providers};

type Seen = Arc<Mutex<Vec<Value>>>;

fn sse(events: &[Value]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&format!("data: {e}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

/// Calls `lookupOrder` first; after a tool message, answers with text.
async fn completions(
    State(seen): State<Seen>,
    body: axum::Json<Value>,
) -> ([(&'static str, &'static str); 1], String) {
    let body = body.0;
    let answered = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    seen.lock().unwrap().push(body);
    let chunk = |delta: Value, finish: Value| json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let events = if answered {
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Your order shipped."}), Value::Null),
            chunk(json!({}), json!("stop")),
        ]
    } else {
        vec![
            chunk(json!({"role": "assistant", "content": null}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_up_1", "type": "function", "function": {"name": "lookupOrder", "arguments": ""}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"orderId\":"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"ORD-1\"}"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
        ]
    };
    ([("content-type", "text/event-stream")], sse(&events))
}

/// A server whose model `model` (charging `credits`) runs on `provider`, an agent
/// on it, and `actions` set on the agent (checked by reading them back).
async fn agent_on(
    provider: (
        &str,
        ProviderKind,
        Arc<dyn agentbase_core::model::ChatModel>,
    ),
    model: (&str, &str, f64),
    actions: &Value,
) -> (crate::TestApp, String) {
    let (name, kind, instance) = provider;
    let (model, upstream, credits) = model;
    let providers: Providers = [(name.to_owned(), instance)].into();
    let t = spawn_with_providers(
        |s| {
            s.providers.insert(
                name.into(),
                ProviderSettings {
                    kind,
                    base_url: String::new(),
                    api_key_env: String::new(),
                    model_path: String::new(),
                    turns_per_workspace: None,
                },
            );
            s.models.insert(
                model.into(),
                ModelSettings {
                    provider: name.into(),
                    upstream: upstream.into(),
                    credits,
                },
            );
        },
        &providers,
    )
    .await;
    let agent = t
        .client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "with actions".into(),
            model: Some(model.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let r = t
        .raw(
            reqwest::Method::PUT,
            &format!("/api/v2/agents/{agent}/actions"),
        )
        .json(actions)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = t
        .raw(
            reqwest::Method::GET,
            &format!("/api/v2/agents/{agent}/actions"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], actions["actions"]);
    (t, agent)
}

/// A loopback server for `app`; its address.
async fn upstream(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn actions_are_offered_as_tools_and_the_turn_continues_with_the_result() {
    let seen: Seen = Arc::default();
    let addr = upstream(
        Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(seen.clone()),
    )
    .await;
    let openai = OpenAiCompatible::new(OpenAiConfig {
        base_url: format!("http://{addr}/v1"),
        api_key: Some("sk-test".into()),
        ..Default::default()
    })
    .unwrap();
    let actions = json!({"actions": [{"name": "lookupOrder", "description": "Find an order by id", "parameters": {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}}]});
    let (t, agent) = agent_on(
        ("openai", ProviderKind::Openai, Arc::new(openai)),
        ("gpt-4o", "gpt-4o-mini", 2.0),
        &actions,
    )
    .await;

    let first = t.say(&agent, None, "where is ORD-1?").await;
    assert_eq!(first.data.metadata.finish_reason, "tool-calls");
    assert_eq!(first.data.metadata.usage.credits, 2.0);
    let MessagePart::ToolCall {
        tool_call_id,
        tool_name,
        input,
    } = &first.data.parts[0]
    else {
        panic!("{:?}", first.data.parts)
    };
    assert_eq!(
        (tool_name.as_str(), input),
        ("lookupOrder", &json!({"orderId": "ORD-1"}))
    );
    {
        let requests = seen.lock().unwrap();
        let sent = &requests[0];
        assert_eq!(sent["model"], "gpt-4o-mini");
        assert_eq!(sent["tools"][0]["function"]["name"], "lookupOrder");
        assert_eq!(
            sent["tools"][0]["function"]["parameters"],
            actions["actions"][0]["parameters"]
        );
        assert_eq!(sent["messages"][0]["role"], "system");
    }

    let c = first.data.metadata.conversation_id.clone();
    t.client
        .submit_tool_result(&agent, &c, tool_call_id, json!({"status": "shipped"}))
        .await
        .unwrap();
    let next = t
        .client
        .chat(
            &agent,
            &ChatRequest {
                conversation_id: Some(c),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        next.data.parts,
        vec![MessagePart::Text {
            text: "Your order shipped.".into()
        }]
    );
    let requests = seen.lock().unwrap();
    let messages = requests[1]["messages"].as_array().unwrap();
    let tool = messages.last().unwrap();
    assert_eq!(tool["role"], "tool");
    assert_eq!(tool["tool_call_id"], tool_call_id.as_str());
    assert_eq!(tool["content"], r#"{"status":"shipped"}"#);
    assert_eq!(
        messages[messages.len() - 2]["tool_calls"][0]["function"]["name"],
        "lookupOrder"
    );
}

#[tokio::test]
async fn bad_action_definitions_are_refused_field_by_field() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let body = json!({"actions": [
        {"name": "ok_one", "parameters": {"type": "object"}},
        {"name": "has space", "parameters": {"type": "object"}},
        {"name": "ok_one", "parameters": {"type": "object"}},
        {"name": "noschema", "parameters": {"type": "string"}},
        {"name": "huge", "parameters": {"type": "object", "description": "x".repeat(20_000)}}
    ]});
    let r = t
        .raw(
            reqwest::Method::PUT,
            &format!("/api/v2/agents/{agent}/actions"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, code, body) = outcome(r).await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY"))
    );
    let details = body["error"]["details"].as_object().unwrap();
    let keys: Vec<_> = details.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "actions[1].name",
            "actions[2].name",
            "actions[3].parameters",
            "actions[4].parameters"
        ]
    );
    let listed: Value = t
        .raw(
            reqwest::Method::GET,
            &format!("/api/v2/agents/{agent}/actions"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]), "nothing was stored");
}

/// The Anthropic upstream: tool use first, then text once the last user turn
/// carries tool results; each request is kept with its headers.
async fn messages(
    State(seen): State<Seen>,
    headers: axum::http::HeaderMap,
    body: axum::Json<Value>,
) -> ([(&'static str, &'static str); 1], &'static str) {
    let body = body.0;
    let answered = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_array())
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    seen.lock().unwrap().push(json!({
        "body": body, "x-api-key": header("x-api-key"), "anthropic-version": header("anthropic-version"),
    }));
    let events = if answered {
        include_str!("../../../providers/tests/it/fixtures/anthropic_text.sse")
    } else {
        include_str!("../../../providers/tests/it/fixtures/anthropic_tool_use.sse")
    };
    ([("content-type", "text/event-stream")], events)
}

#[tokio::test]
async fn through_the_server_anthropic_tool_use_streams_as_tool_calls_and_continues_after_results() {
    let seen: Seen = Arc::default();
    let addr = upstream(
        Router::new()
            .route("/v1/messages", post(messages))
            .with_state(seen.clone()),
    )
    .await;
    let anthropic = agentbase_providers::Anthropic::new(agentbase_providers::AnthropicConfig {
        base_url: format!("http://{addr}"),
        api_key: Some("sk-ant-test".into()),
        ..Default::default()
    })
    .unwrap();
    let actions = json!({"actions": [
        {"name": "get_weather", "description": "Weather for a place", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}},
        {"name": "get_time", "description": "The time now", "parameters": {"type": "object", "properties": {}}}
    ]});
    let (t, agent) = agent_on(
        ("anthropic", ProviderKind::Anthropic, Arc::new(anthropic)),
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 3.0),
        &actions,
    )
    .await;

    // Streamed: the text, then each tool call as start / delta / available, and the
    // turn ends with `tool-calls`.
    let (_, body) = t
        .stream_raw(&agent, json!({"message": "Weather and time in SF?"}))
        .await;
    let frames = crate::frames(&body);
    let types = crate::types(&frames);
    let text: String = frames
        .iter()
        .filter(|f| f["type"] == "text-delta")
        .map(|f| f["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Let me check the weather.");
    let available: Vec<(&str, &Value)> = frames
        .iter()
        .filter(|f| f["type"] == "tool-input-available")
        .map(|f| (f["toolName"].as_str().unwrap(), &f["input"]))
        .collect();
    assert_eq!(
        available,
        [
            ("get_weather", &json!({"location": "San Francisco, CA"})),
            ("get_time", &json!({}))
        ]
    );
    let first_start = types.iter().position(|t| t == "tool-input-start").unwrap();
    let first_delta = types.iter().position(|t| t == "tool-input-delta").unwrap();
    let first_available = types
        .iter()
        .position(|t| t == "tool-input-available")
        .unwrap();
    assert!(
        first_start < first_delta && first_delta < first_available,
        "{types:?}"
    );
    let finish = frames.iter().find(|f| f["type"] == "finish").unwrap();
    assert_eq!(finish["finishReason"], "tool-calls");
    assert_eq!(finish["messageMetadata"]["usage"]["credits"], 3.0);
    {
        let requests = seen.lock().unwrap();
        let sent = &requests[0];
        assert_eq!(sent["x-api-key"], "sk-ant-test");
        assert!(!sent["anthropic-version"].as_str().unwrap().is_empty());
        assert_eq!(sent["body"]["model"], "claude-sonnet-4-5-20250929");
        assert_eq!(sent["body"]["stream"], true);
        assert_eq!(sent["body"]["tools"][0]["name"], "get_weather");
        assert_eq!(
            sent["body"]["tools"][0]["input_schema"],
            actions["actions"][0]["parameters"]
        );
        assert!(
            sent["body"]["system"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
    }

    // Both results (an object goes as its JSON, a string as itself), then a call
    // without a message continues the turn.
    let conversation = finish["messageMetadata"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let ids: Vec<String> = frames
        .iter()
        .filter(|f| f["type"] == "tool-input-available")
        .map(|f| f["toolCallId"].as_str().unwrap().to_owned())
        .collect();
    for (id, output) in ids.iter().zip([json!({"tempF": 61}), json!("14:05")]) {
        t.client
            .submit_tool_result(&agent, &conversation, id, output)
            .await
            .unwrap();
    }
    let next = t
        .client
        .chat(
            &agent,
            &ChatRequest {
                conversation_id: Some(conversation),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        next.data.parts,
        vec![MessagePart::Text {
            text: "Hello there!".into()
        }]
    );
    let requests = seen.lock().unwrap();
    let messages = requests[1]["body"]["messages"].as_array().unwrap();
    let results = messages.last().unwrap();
    assert_eq!(results["role"], "user");
    let blocks: Vec<(&str, &str)> = results["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (
                b["tool_use_id"].as_str().unwrap(),
                b["content"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        blocks,
        [
            (ids[0].as_str(), r#"{"tempF":61}"#),
            (ids[1].as_str(), "14:05")
        ]
    );
    let calls = &messages[messages.len() - 2];
    assert_eq!(calls["role"], "assistant");
    assert!(
        calls["content"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "tool_use" && b["name"] == "get_weather"),
        "{calls}"
    );
}
