//! The chat contract: streaming framing and chunk order, the non-streaming shape,
//! conversations, tool calls, retry, credits, concurrency and faults.

use std::time::Duration;

use agentbase_client::types::{ChatRequest, UiChunk};
use futures_util::StreamExt;
use serde_json::json;

use crate::{frames, outcome, spawn, spawn_with, types};

#[tokio::test]
async fn a_streamed_answer_follows_the_ui_message_stream_protocol() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let (headers, body) = t
        .stream_raw(&agent, json!({"message": "hello there world"}))
        .await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-vercel-ai-ui-message-stream"], "v1");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(headers.contains_key("x-request-id"));
    assert!(
        headers.contains_key("x-ratelimit-remaining"),
        "streams are rate limited too"
    );

    let f = frames(&body);
    let kinds = types(&f);
    let deltas = kinds.iter().filter(|k| *k == "text-delta").count();
    assert!(deltas >= 3);
    let mut expected = vec!["start", "start-step", "text-start"];
    expected.extend(std::iter::repeat_n("text-delta", deltas));
    expected.extend(["text-end", "finish-step", "message-metadata", "finish"]);
    assert_eq!(kinds, expected);

    let message_id = f[0]["messageId"].as_str().unwrap();
    let text: String = f
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Echo: hello there world");
    assert!(
        f.iter()
            .filter(|c| c["type"] != "start")
            .all(|c| c.get("id").is_none_or(|id| id == "text_1"))
    );
    let finish = f.last().unwrap();
    assert_eq!(finish["finishReason"], "stop");
    let meta = &finish["messageMetadata"];
    assert_eq!(meta["messageId"], message_id);
    assert_eq!(meta["usage"]["credits"], 1.0);
    assert_eq!(meta["userId"], serde_json::Value::Null);
    assert!(meta["userMessageId"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        f[f.len() - 2]["messageMetadata"],
        *meta,
        "message-metadata repeats the finish metadata"
    );

    // The stored conversation has both messages.
    let conversation = meta["conversationId"].as_str().unwrap();
    let got = t
        .client
        .get_conversation(&agent, conversation)
        .await
        .unwrap();
    assert_eq!(got.data.messages.len(), 2);
    assert_eq!(got.data.messages[1].id, message_id);
    assert_eq!(
        got.data.conversation.title.as_deref(),
        Some("hello there world")
    );
}

#[tokio::test]
async fn the_rust_client_reads_the_same_stream_as_typed_chunks() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let mut s = t
        .client
        .chat_stream(
            &agent,
            &ChatRequest {
                message: Some("typed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut chunks = Vec::new();
    while let Some(c) = s.next().await {
        chunks.push(c.unwrap());
    }
    assert!(matches!(chunks.first(), Some(UiChunk::Start { .. })));
    assert!(
        matches!(chunks.last(), Some(UiChunk::Finish { finish_reason, .. }) if finish_reason == "stop")
    );
}

#[tokio::test]
async fn a_non_streamed_answer_has_the_contract_shape() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t
        .raw(
            reqwest::Method::POST,
            &format!("/api/v2/agents/{agent}/chat"),
        )
        .json(&json!({"message": "hi", "stream": false, "userId": "user_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    let data = &body["data"];
    assert!(data["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(data["role"], "assistant");
    assert_eq!(data["parts"], json!([{"type": "text", "text": "Echo: hi"}]));
    let meta = &data["metadata"];
    assert_eq!(meta["finishReason"], "stop");
    assert_eq!(meta["userId"], "user_1");
    assert_eq!(meta["usage"], json!({"credits": 1.0}));
    assert!(meta["conversationId"].as_str().unwrap().len() == 36);
    assert!(meta["userMessageId"].is_string());
    assert!(meta.get("messageId").is_none(), "the message id is data.id");
}

#[tokio::test]
async fn user_id_is_set_when_the_conversation_is_created_and_never_changes() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let req = |conversation: Option<String>, user: &str| ChatRequest {
        message: Some("x".into()),
        conversation_id: conversation,
        user_id: Some(user.into()),
        ..Default::default()
    };
    let first = t.client.chat(&agent, &req(None, "alice")).await.unwrap();
    let c = first.data.metadata.conversation_id.clone();
    let second = t
        .client
        .chat(&agent, &req(Some(c.clone()), "mallory"))
        .await
        .unwrap();
    assert_eq!(second.data.metadata.user_id.as_deref(), Some("alice"));
    assert_eq!(
        t.client
            .get_conversation(&agent, &c)
            .await
            .unwrap()
            .data
            .conversation
            .user_id
            .as_deref(),
        Some("alice")
    );
    let bad = t
        .client
        .chat(&agent, &req(None, "not valid!"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("VALIDATION_INVALID_BODY"));
}

#[tokio::test]
async fn conversations_are_checked_against_the_agent() {
    let t = spawn().await;
    let a = t.scripted_agent().await;
    let b = t.scripted_agent().await;
    let c = t.say(&a, None, "hi").await.data.metadata.conversation_id;
    let on_b = t
        .client
        .chat(
            &b,
            &ChatRequest {
                message: Some("x".into()),
                conversation_id: Some(c.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(on_b.code(), Some("CHAT_CONVERSATION_MISMATCH"));
    let missing = t
        .client
        .chat(
            &a,
            &ChatRequest {
                message: Some("x".into()),
                conversation_id: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("RESOURCE_NOT_FOUND"));
    let no_agent = t
        .client
        .chat(
            "nope",
            &ChatRequest {
                message: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(no_agent.code(), Some("AGENT_NOT_FOUND"));
    let empty = t
        .client
        .chat(
            &a,
            &ChatRequest {
                message: Some(String::new()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Some("VALIDATION_INVALID_BODY"));
    let nothing = t
        .client
        .chat(&a, &ChatRequest::default())
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), Some("VALIDATION_INVALID_BODY"));
}

#[tokio::test]
async fn a_tool_call_streams_waits_for_its_result_and_the_turn_continues() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let (_, body) = t
        .stream_raw(
            &agent,
            json!({"message": r#"where is my order? [[tool:lookupOrder {"orderId": "ORD-123"}]]"#}),
        )
        .await;
    let f = frames(&body);
    assert_eq!(
        types(&f),
        [
            "start",
            "start-step",
            "tool-input-start",
            "tool-input-delta",
            "tool-input-delta",
            "tool-input-available",
            "finish-step",
            "message-metadata",
            "finish"
        ]
    );
    let call_id = f[2]["toolCallId"].as_str().unwrap().to_owned();
    assert_eq!(f[2]["toolName"], "lookupOrder");
    let typed: String = f
        .iter()
        .filter(|c| c["type"] == "tool-input-delta")
        .map(|c| c["inputTextDelta"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&typed).unwrap(),
        json!({"orderId": "ORD-123"})
    );
    assert_eq!(f[5]["input"], json!({"orderId": "ORD-123"}));
    assert_eq!(f[5]["toolCallId"], call_id.as_str());
    assert_eq!(f[8]["finishReason"], "tool-calls");
    let conversation = f[8]["messageMetadata"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_message = f[8]["messageMetadata"]["userMessageId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Continuing before the result is in is refused.
    let early = t
        .client
        .chat(
            &agent,
            &ChatRequest {
                conversation_id: Some(conversation.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(early.code(), Some("VALIDATION_INVALID_BODY"));

    let ok = t
        .client
        .submit_tool_result(
            &agent,
            &conversation,
            &call_id,
            json!({"status": "shipped"}),
        )
        .await
        .unwrap();
    assert!(ok.data.success);
    let again = t
        .client
        .submit_tool_result(&agent, &conversation, &call_id, json!(1))
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Some("RESOURCE_TOOL_CALL_NOT_FOUND"),
        "a call is resolved once"
    );
    let unknown = t
        .client
        .submit_tool_result(&agent, &conversation, "call_nope", json!(1))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("RESOURCE_TOOL_CALL_NOT_FOUND"));

    let next = t
        .client
        .chat(
            &agent,
            &ChatRequest {
                conversation_id: Some(conversation.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        next.data.metadata.user_message_id, user_message,
        "continuations name the last user message"
    );
    assert_eq!(
        next.data.parts,
        vec![agentbase_client::types::MessagePart::Text {
            text: r#"Tool lookupOrder returned {"status":"shipped"}."#.into()
        }]
    );

    let history = t
        .client
        .get_conversation(&agent, &conversation)
        .await
        .unwrap()
        .data
        .messages;
    let parts = serde_json::to_value(&history[1].parts).unwrap();
    assert_eq!(
        parts,
        json!([
            {"type": "tool-call", "toolCallId": call_id, "toolName": "lookupOrder", "input": {"orderId": "ORD-123"}},
            {"type": "tool-result", "toolCallId": call_id, "toolName": "lookupOrder", "output": {"status": "shipped"}}
        ])
    );
}

#[tokio::test]
async fn pending_tool_calls_expire() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t.say(&agent, None, "[[tool:ping {}]]").await;
    let agentbase_client::types::MessagePart::ToolCall { tool_call_id, .. } = &r.data.parts[0]
    else {
        panic!()
    };
    assert_eq!(r.data.metadata.finish_reason, "tool-calls");
    t.clock.advance_ms(1_800_001);
    let err = t
        .client
        .submit_tool_result(
            &agent,
            &r.data.metadata.conversation_id,
            tool_call_id,
            json!("pong"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("RESOURCE_TOOL_CALL_NOT_FOUND"));
}

#[tokio::test]
async fn retry_truncates_at_the_target_and_answers_the_preceding_user_message_again() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let first = t.say(&agent, None, "one").await;
    let c = first.data.metadata.conversation_id.clone();
    let second = t.say(&agent, Some(&c), "two").await;
    assert_eq!(
        t.client
            .get_conversation(&agent, &c)
            .await
            .unwrap()
            .data
            .messages
            .len(),
        4
    );

    let retried = t.client.retry(&agent, &c, &first.data.id).await.unwrap();
    assert_eq!(
        retried.data.metadata.user_message_id,
        first.data.metadata.user_message_id
    );
    assert_ne!(retried.data.id, first.data.id);
    let messages = t
        .client
        .get_conversation(&agent, &c)
        .await
        .unwrap()
        .data
        .messages;
    let ids: Vec<_> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            first.data.metadata.user_message_id.as_str(),
            retried.data.id.as_str()
        ]
    );
    assert!(!ids.contains(&second.data.id.as_str()));

    let missing = t
        .client
        .retry(&agent, &c, &second.data.id)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("CHAT_RETRY_MESSAGE_NOT_FOUND"));

    // A conversation whose only message is the assistant's has no user message to retry.
    let lonely = t.say(&agent, None, "x").await;
    let lc = lonely.data.metadata.conversation_id.clone();
    t.app.record().truncate_from(&lc, 1).await.unwrap();
    let mut m = t.app.record().messages(&c).await.unwrap().pop().unwrap();
    m.conversation_id = lc.clone();
    m.id = "msg_lonely".into();
    m.seq = 1;
    t.app.record().insert_message(&m).await.unwrap();
    let none = t.client.retry(&agent, &lc, "msg_lonely").await.unwrap_err();
    assert_eq!(none.code(), Some("CHAT_RETRY_NO_USER_MESSAGE"));

    let streamed = t
        .raw(
            reqwest::Method::POST,
            &format!("/api/v2/agents/{agent}/conversations/{c}/retry"),
        )
        .json(&json!({"messageId": retried.data.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        streamed.headers()["content-type"],
        "text/event-stream",
        "retry streams by default"
    );
    let f = frames(&streamed.text().await.unwrap());
    assert_eq!(f.last().unwrap()["finishReason"], "stop");
}

#[tokio::test]
async fn credits_are_recorded_per_message_and_limits_are_checked_before_generation() {
    let t = spawn_with(|s| s.plans.standard = 3).await;
    let agent = t.scripted_agent().await;
    let c = t.say(&agent, None, "a").await.data.metadata.conversation_id;
    t.say(&agent, Some(&c), "b").await;
    let ledger = t.app.record().ledger(&t.workspace_id).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert!(
        ledger
            .iter()
            .all(|e| e.credits == 1.0 && e.model == "scripted" && e.agent_id == agent)
    );
    assert_eq!(t.client.get_agent(&agent).await.unwrap().credits_used, 2);

    // Agent limit: 2 used, limit 2 → refused; the workspace still has 1 credit.
    t.client
        .update_agent(
            &agent,
            &agentbase_client::types::UpdateAgentBody {
                credit_limit: Some(Some(2)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = t
        .client
        .chat(
            &agent,
            &ChatRequest {
                message: Some("c".into()),
                conversation_id: Some(c.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let agentbase_client::Error::Api(e) = err else {
        panic!()
    };
    assert_eq!(
        (e.status, e.code.as_str()),
        (402, "CHAT_AGENT_CREDITS_EXHAUSTED")
    );
    let before = t.app.record().messages(&c).await.unwrap().len();
    assert_eq!(before, 4, "a refused turn stores nothing");

    let other = t.scripted_agent().await;
    t.say(&other, None, "uses the last workspace credit").await;
    let err = t
        .client
        .chat(
            &other,
            &ChatRequest {
                message: Some("d".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let agentbase_client::Error::Api(e) = err else {
        panic!()
    };
    assert_eq!(
        (e.status, e.code.as_str(), e.message.as_str()),
        (402, "CHAT_CREDITS_EXHAUSTED", "Message limit reached")
    );

    // A new month resets the allowance.
    t.clock.advance_ms(32 * 86_400_000);
    t.say(&other, None, "next month").await;
}

/// A conversation with one finished turn, and a second (streamed) turn on it
/// still running.
async fn slow_turn(
    t: &crate::TestApp,
    agent: &str,
    script: &str,
) -> (String, agentbase_client::ChunkStream) {
    let c = t
        .say(agent, None, "start")
        .await
        .data
        .metadata
        .conversation_id;
    let slow = t
        .client
        .chat_stream(
            agent,
            &ChatRequest {
                message: Some(script.into()),
                conversation_id: Some(c.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (c, slow)
}

/// The error code a JSON turn on conversation `c` gets (`None` when answered).
async fn cut_in(t: &crate::TestApp, agent: &str, c: &str) -> Option<String> {
    t.client
        .chat(
            agent,
            &ChatRequest {
                message: Some("cut in".into()),
                conversation_id: Some(c.to_owned()),
                ..Default::default()
            },
        )
        .await
        .err()
        .and_then(|e| e.code().map(str::to_owned))
}

#[tokio::test]
async fn a_running_turn_renews_a_lease_shorter_than_itself() {
    // A one-second lease and a turn of about three seconds: the turn keeps its
    // conversation the whole time, and frees it when done.
    let t = spawn_with(|s| s.chat.turn_lease_secs = 1).await;
    let agent = t.scripted_agent().await;
    let (c, slow) = slow_turn(&t, &agent, "[[delay:600]] one two three four five").await;
    // Five seconds later on the server's clock, the one-second lease has been
    // renewed (every third of a second, real time), so the turn still holds it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.clock.advance_ms(5_000);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        cut_in(&t, &agent, &c).await,
        Some("CHAT_CONVERSATION_BUSY".into())
    );
    let chunks: Vec<_> = slow.collect().await;
    assert!(chunks.iter().all(Result::is_ok));
    t.say(&agent, Some(&c), "after").await;
}

#[tokio::test]
async fn two_turns_on_one_conversation_never_interleave() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let (c, slow) = slow_turn(&t, &agent, "[[delay:100]] one two three").await;
    assert_eq!(
        cut_in(&t, &agent, &c).await,
        Some("CHAT_CONVERSATION_BUSY".into())
    );
    let chunks: Vec<_> = slow.collect().await;
    assert!(chunks.iter().all(Result::is_ok));
    // Once the first turn is done, the conversation takes turns again.
    t.say(&agent, Some(&c), "after").await;
    let texts: Vec<String> = t
        .client
        .get_conversation(&agent, &c)
        .await
        .unwrap()
        .data
        .messages
        .iter()
        .map(|m| serde_json::to_string(&m.parts).unwrap())
        .collect();
    assert_eq!(texts.len(), 6);
    assert!(
        !texts.iter().any(|t| t.contains("cut in")),
        "the refused message was not stored"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_generation_and_the_conversation_stays_usable() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let c = t
        .say(&agent, None, "start")
        .await
        .data
        .metadata
        .conversation_id;
    let long = format!("[[delay:50]] {}", "word ".repeat(200));
    let mut s = t
        .client
        .chat_stream(
            &agent,
            &ChatRequest {
                message: Some(long),
                conversation_id: Some(c.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for _ in 0..5 {
        s.next().await.unwrap().unwrap();
    }
    drop(s);
    // The turn notices within a token or two and releases the conversation.
    let mut stored = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let messages = t.app.record().messages(&c).await.unwrap();
        if messages.len() == 4 {
            stored = messages.last().cloned();
            break;
        }
    }
    let partial = stored.expect("the partial answer is stored");
    assert_eq!(partial.finish_reason.as_deref(), Some("error"));
    assert_eq!(partial.credits, 0.0, "an abandoned answer is not charged");
    assert!(
        partial.text().split_whitespace().count() < 50,
        "generation stopped early: {}",
        partial.text()
    );
    t.say(&agent, Some(&c), "still here").await;
}

#[tokio::test]
async fn a_model_failure_mid_stream_ends_with_an_error_chunk_and_consistent_state() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let (_, body) = t
        .stream_raw(&agent, json!({"message": "[[fail:2]] one two three four"}))
        .await;
    let f = frames(&body);
    assert_eq!(
        types(&f),
        [
            "start",
            "start-step",
            "text-start",
            "text-delta",
            "text-delta",
            "text-end",
            "error",
            "finish-step",
            "message-metadata",
            "finish"
        ]
    );
    assert!(
        f[6]["errorText"]
            .as_str()
            .unwrap()
            .contains("scripted failure")
    );
    assert_eq!(f[9]["finishReason"], "error");
    assert_eq!(f[9]["messageMetadata"]["usage"]["credits"], 0.0);
    let c = f[9]["messageMetadata"]["conversationId"].as_str().unwrap();
    let messages = t.app.record().messages(c).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].finish_reason.as_deref(), Some("error"));
    assert_eq!(messages[1].text(), "Echo: one ");
    t.say(&agent, Some(c), "recovered").await;
}

#[tokio::test]
async fn an_unloaded_model_is_a_clear_error_not_a_hang() {
    let t = spawn().await;
    let agent = t
        .client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "local".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let (_, body) = t.stream_raw(&agent, json!({"message": "hi"})).await;
    let f = frames(&body);
    assert_eq!(
        types(&f),
        [
            "start",
            "start-step",
            "error",
            "finish-step",
            "message-metadata",
            "finish"
        ]
    );
    assert!(f[2]["errorText"].as_str().unwrap().contains("not loaded"));
}

#[tokio::test]
async fn a_paused_conversation_records_messages_without_answering() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let c = t
        .say(&agent, None, "hi")
        .await
        .data
        .metadata
        .conversation_id;
    let r = t.client.set_paused(&agent, &c, true).await.unwrap();
    assert_eq!(
        (r.data.id.as_str(), r.data.status.as_str()),
        (c.as_str(), "paused")
    );
    let answer = t.say(&agent, Some(&c), "anyone?").await;
    assert!(answer.data.parts.is_empty());
    assert_eq!(answer.data.metadata.usage.credits, 0.0);
    let messages = t
        .client
        .get_conversation(&agent, &c)
        .await
        .unwrap()
        .data
        .messages;
    assert_eq!(messages.len(), 3, "the user message is recorded, no answer");
    assert_eq!(
        t.client
            .set_paused(&agent, &c, false)
            .await
            .unwrap()
            .data
            .status,
        "ongoing"
    );
    assert_eq!(t.say(&agent, Some(&c), "back").await.data.parts.len(), 1);
    let bad = t
        .raw(
            reqwest::Method::PATCH,
            &format!("/api/v2/agents/{agent}/conversations/{c}"),
        )
        .json(&json!({"paused": true, "extra": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(bad).await.0, 400);
}

#[tokio::test]
async fn streaming_requests_count_against_the_rate_limit() {
    let t = spawn_with(|s| s.rate_limit.requests = 2).await;
    let agent = t
        .client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "x".into(),
            model: Some("scripted".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    t.stream_raw(&agent, json!({"message": "1"})).await;
    let r = t
        .raw(
            reqwest::Method::POST,
            &format!("/api/v2/agents/{agent}/chat"),
        )
        .json(&json!({"message": "2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn a_json_turn_that_fails_before_answering_still_records_its_new_conversation() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t.say(&agent, None, "[[fail:0]] one two").await;
    assert_eq!(r.data.metadata.finish_reason, "error");
    assert_eq!(r.data.metadata.usage.credits, 0.0);
    let c = r.data.metadata.conversation_id;
    let messages = t.app.record().messages(&c).await.unwrap();
    assert_eq!(messages.len(), 1, "the user message is kept");
    assert_eq!(messages[0].id, r.data.metadata.user_message_id);
    assert!(
        t.app
            .record()
            .ledger(&t.workspace_id)
            .await
            .unwrap()
            .is_empty()
    );
    // Stored free: the conversation takes the next turn.
    t.say(&agent, Some(&c), "again").await;
    assert_eq!(t.app.record().messages(&c).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_json_turn_that_calls_a_tool_on_a_new_conversation_takes_its_result() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t
        .say(
            &agent,
            None,
            r#"track it [[tool:lookupOrder {"orderId": "ORD-9"}]]"#,
        )
        .await;
    assert_eq!(r.data.metadata.finish_reason, "tool-calls");
    let call_id = r
        .data
        .parts
        .iter()
        .find_map(|p| match p {
            agentbase_client::types::MessagePart::ToolCall { tool_call_id, .. } => {
                Some(tool_call_id.clone())
            }
            _ => None,
        })
        .expect("a tool call part");
    let c = r.data.metadata.conversation_id;
    t.client
        .submit_tool_result(&agent, &c, &call_id, json!({"status": "shipped"}))
        .await
        .unwrap();
    let next = t
        .client
        .chat(
            &agent,
            &ChatRequest {
                conversation_id: Some(c.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        next.data.metadata.user_message_id,
        r.data.metadata.user_message_id
    );
    let stored = t
        .app
        .record()
        .conversation(&t.workspace_id, &c)
        .await
        .unwrap();
    assert_eq!(
        stored.unwrap().title.as_deref(),
        Some("track it [[tool:lookupOrder {\"orderId\": \"ORD-9\"}]]")
    );
}

#[tokio::test]
async fn another_nodes_charges_count_against_the_allowance_within_a_second() {
    use agentbase_core::conversation::{CreditEntry, Message, MessageRole, Part};
    let t = spawn_with(|s| s.plans.standard = 2).await;
    let agent = t.scripted_agent().await;
    let c = t.say(&agent, None, "a").await.data.metadata.conversation_id;
    // Another node answers in the same conversation and charges the last credit:
    // written to the record directly, unseen by this process's caches.
    let now = t.app.now();
    let answer = Message {
        id: agentbase_core::ids::message_id(),
        conversation_id: c.clone(),
        seq: 3,
        role: MessageRole::Assistant,
        parts: vec![Part::Text {
            text: "elsewhere".into(),
        }],
        created_at: now,
        feedback: None,
        score: None,
        finish_reason: Some("stop".into()),
        credits: 1.0,
        sources: Vec::new(),
        spam: false,
    };
    let month = agentbase_core::time_fmt::month_start(now);
    t.app
        .record()
        .finish_turn(&agentbase_store::NewTurn {
            opening: None,
            credit: Some(CreditEntry {
                id: agentbase_core::ids::alphanumeric(20),
                workspace_id: t.workspace_id.clone(),
                agent_id: agent.clone(),
                conversation_id: Some(c.clone()),
                message_id: Some(answer.id.clone()),
                model: "scripted".into(),
                credits: 1.0,
                created_at: now,
            }),
            agent_id: agent.clone(),
            title: None,
            month_start: month,
            lease: None,
            message: answer,
        })
        .await
        .unwrap();
    // Within the cache's second this node may still answer from its own count…
    t.clock.advance_ms(agentbase_service::AGENT_CACHE_MS);
    // …after it, the record's count refuses the turn before anything is stored.
    let err = t
        .client
        .chat(
            &agent,
            &ChatRequest {
                message: Some("b".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("CHAT_CREDITS_EXHAUSTED"));
}

/// A non-streamed turn sent with `key`, read to its end (status 200).
async fn whole_turn(url: String, key: String, message: &str) {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .json(&json!({"message": message, "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
}

/// With `providers.*.turns_per_workspace` (the local model's default is 2), one
/// workspace's turns on the provider go one after another, past that bound, while
/// another workspace's turn does not wait for them.
#[tokio::test]
async fn a_workspaces_turns_beyond_its_share_wait_for_each_other_not_for_others() {
    let t = spawn_with(|s| {
        s.providers.get_mut("scripted").unwrap().turns_per_workspace = Some(1);
    })
    .await;
    let agent = t.scripted_agent().await;
    let (_, other_key) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let other_agent = t.scripted_agent_for(&other_key).await;
    let started = std::time::Instant::now();
    let turn = |key: String, agent: String, message: &'static str| {
        let url = t.url(&format!("/api/v2/agents/{agent}/chat"));
        async move {
            whole_turn(url, key, message).await;
            started.elapsed()
        }
    };
    let slow = "[[delay:150]][[reply:one two three four]]";
    let first = tokio::spawn(turn(t.key.clone(), agent.clone(), slow));
    let second = tokio::spawn(turn(t.key.clone(), agent.clone(), slow));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let theirs = turn(other_key, other_agent, "[[reply:hi]]").await;
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    let (earlier, later) = (first.min(second), first.max(second));
    assert!(
        theirs < earlier,
        "the other workspace waited: {theirs:?} against {earlier:?}"
    );
    // Four deltas 150 ms apart: the later turn ran after the earlier one ended.
    assert!(
        later - earlier >= Duration::from_millis(450),
        "{earlier:?} and {later:?}: the two turns ran at once"
    );
}

/// A spam check is a model call like a turn's, so it takes the workspace's place
/// too: with a share of one, two messages' four calls (two checks, two answers) run
/// one after another, never two at once.
#[tokio::test]
async fn spam_checks_count_against_the_workspaces_share() {
    let t = spawn_with(|s| {
        s.providers.get_mut("scripted").unwrap().turns_per_workspace = Some(1);
    })
    .await;
    let agent = t.scripted_agent().await;
    let r = t
        .raw(reqwest::Method::PUT, &format!("/api/v2/agents/{agent}"))
        .json(&json!({"spamSettings": {"enabled": true, "prompt": "Adverts are spam."}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = std::time::Instant::now();
    // Eight deltas 100 ms apart, for the check and for the answer alike.
    let message = "[[delay:100]][[reply:a b c d e f g h]]";
    let turn = || {
        let url = t.url(&format!("/api/v2/agents/{agent}/chat"));
        whole_turn(url, t.key.clone(), message)
    };
    tokio::join!(turn(), turn());
    // Four calls of at least 800 ms each, in turn; with the checks outside the
    // share, both checks ran at once and this took three calls' time.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(3200),
        "{took:?}: two model calls of the workspace ran at once"
    );
}
