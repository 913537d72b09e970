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

#[tokio::test]
async fn actions_are_offered_as_tools_and_the_turn_continues_with_the_result() {
    let seen: Seen = Arc::default();
    let upstream = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, upstream).await });

    let openai = OpenAiCompatible::new(OpenAiConfig {
        base_url: format!("http://{addr}/v1"),
        api_key: Some("sk-test".into()),
        ..Default::default()
    })
    .unwrap();
    let providers: Providers = [(
        "openai".to_owned(),
        Arc::new(openai) as Arc<dyn agentbase_core::model::ChatModel>,
    )]
    .into();
    let t = spawn_with_providers(
        |s| {
            s.providers.insert(
                "openai".into(),
                ProviderSettings {
                    kind: ProviderKind::Openai,
                    base_url: String::new(),
                    api_key_env: String::new(),
                    model_path: String::new(),
                },
            );
            s.models.insert(
                "gpt-4o".into(),
                ModelSettings {
                    provider: "openai".into(),
                    upstream: "gpt-4o-mini".into(),
                    credits: 2.0,
                },
            );
        },
        &providers,
    )
    .await;
    let agent = t
        .client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "shop".into(),
            model: Some("gpt-4o".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let actions = json!({"actions": [{"name": "lookupOrder", "description": "Find an order by id", "parameters": {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}}]});
    let r = t
        .raw(
            reqwest::Method::PUT,
            &format!("/api/v2/agents/{agent}/actions"),
        )
        .json(&actions)
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
        {"name": "noschema", "parameters": {"type": "string"}}
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
            "actions[3].parameters"
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
