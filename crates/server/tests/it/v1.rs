//! The v1 API: chat with a full history, plain-text streaming, get-conversations.

use serde_json::json;

use crate::spawn;

#[tokio::test]
async fn v1_chat_answers_with_text_and_saves_the_exchange() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t
        .raw(reqwest::Method::POST, "/api/v1/chat")
        .json(&json!({
            "messages": [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "now"}],
            "chatbotId": agent, "conversationId": "client-chosen-1", "temperature": 0.5
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, json!({"text": "Echo: now"}));
    // Saved under the client's conversation id: the last message and the reply.
    let c = t
        .client
        .get_conversation(&agent, "client-chosen-1")
        .await
        .unwrap();
    assert_eq!(c.data.messages.len(), 2);

    // The same id again appends to it; `chatId` works as an alias.
    let r = t
        .raw(reqwest::Method::POST, "/api/v1/chat")
        .json(&json!({"messages": [{"role": "user", "content": "again"}], "chatId": agent, "conversationId": "client-chosen-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        t.client
            .get_conversation(&agent, "client-chosen-1")
            .await
            .unwrap()
            .data
            .messages
            .len(),
        4
    );
}

#[tokio::test]
async fn v1_streaming_is_plain_text() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t
        .raw(reqwest::Method::POST, "/api/v1/chat")
        .json(&json!({"messages": [{"role": "user", "content": "stream me"}], "chatbotId": agent, "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "Echo: stream me");
}

#[tokio::test]
async fn v1_errors_carry_a_message() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            400,
            "VALIDATION_INVALID_BODY",
        ),
        (
            json!({"messages": [], "chatbotId": agent}),
            400,
            "VALIDATION_INVALID_BODY",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": "x"}], "chatbotId": agent}),
            400,
            "VALIDATION_INVALID_BODY",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "chatbotId": agent, "model": "gpt-9"}),
            400,
            "VALIDATION_INVALID_BODY",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "chatbotId": agent, "temperature": 3}),
            400,
            "VALIDATION_INVALID_BODY",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "chatbotId": "nope"}),
            404,
            "AGENT_NOT_FOUND",
        ),
    ];
    for (body, status, code) in cases {
        let r = t
            .raw(reqwest::Method::POST, "/api/v1/chat")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["code"], code, "{body}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = reqwest::Client::new()
        .post(t.url("/api/v1/chat"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        e,
        json!({"message": "Authentication required", "code": "AUTH_MISSING_API_KEY"})
    );
}

#[tokio::test]
async fn v1_get_conversations_pages_by_number() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    for i in 0..3 {
        t.say(&agent, None, &format!("q{i}")).await;
        t.clock.advance_ms(1_000);
    }
    let get = |q: String| {
        t.raw(
            reqwest::Method::GET,
            &format!("/api/v1/get-conversations?{q}"),
        )
        .send()
    };
    let r: serde_json::Value = get(format!("chatbotId={agent}&page=1&size=2"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = r["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["chatbot_id"], agent.as_str());
    assert_eq!(data[0]["source"], "API");
    assert_eq!(
        data[0]["messages"],
        json!([{"role": "user", "content": "q2"}, {"role": "assistant", "content": "Echo: q2"}])
    );
    assert!(data[0]["created_at"].as_str().unwrap().ends_with('Z'));
    let r: serde_json::Value = get(format!("chatbotId={agent}&page=2&size=2"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"].as_array().unwrap().len(), 1);
    let r: serde_json::Value = get(format!("chatbotId={agent}&filteredSources=WhatsApp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["data"].as_array().unwrap().is_empty());
    let r = get("page=1".into()).await.unwrap();
    assert_eq!(r.status(), 400);
}
