//! Limits and leaks from the hardening pass that have no better home: the request
//! deadline, v1 conversation ids scoped to their workspace, links only ever
//! http(s), and uploads read off the runtime with their errors in the envelope.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{outcome, spawn, spawn_with};

#[tokio::test]
async fn a_request_that_outlives_the_deadline_gets_a_clear_error() {
    let t = spawn_with(|s| s.server.request_timeout_secs = 1).await;
    let agent = t.scripted_agent().await;
    let r = t
        .raw(Method::POST, &format!("/api/v2/agents/{agent}/chat"))
        .json(&json!({"message": "[[delay:300]] one two three four five six", "stream": false}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = outcome(r).await;
    assert_eq!((status, code.as_deref()), (503, Some("REQUEST_TIMEOUT")));
    // A stream only has to start within the deadline.
    let (_, body) = t
        .stream_raw(
            &agent,
            json!({"message": "[[delay:300]] one two three four five"}),
        )
        .await;
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert!(body.contains("\"finishReason\":\"stop\""), "{body}");
}

#[tokio::test]
async fn v1_conversation_ids_are_scoped_to_their_workspace() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let (_, other_key) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let other_client = t.client_for(&other_key);
    let other_agent = other_client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "theirs".into(),
            model: Some("scripted".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let v1 = |key: &str, agent: &str, text: &str| {
        reqwest::Client::new()
            .post(t.url("/api/v1/chat"))
            .bearer_auth(key)
            .json(&json!({"chatbotId": agent, "conversationId": "order-1234",
                          "messages": [{"role": "user", "content": text}]}))
            .send()
    };
    let r = v1(&t.key, &agent, "mine").await.unwrap();
    assert_eq!(r.status(), 200);
    // The same name in another workspace is another conversation, not a 409 that
    // would tell that workspace the name is taken.
    let r = v1(&other_key, &other_agent, "theirs").await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mine = t
        .client
        .get_conversation(&agent, "order-1234")
        .await
        .unwrap();
    let theirs = other_client
        .get_conversation(&other_agent, "order-1234")
        .await
        .unwrap();
    assert_ne!(mine.data.conversation.id, theirs.data.conversation.id);
    let text = |c: &agentbase_client::types::ConversationWithMessages| {
        serde_json::to_string(&c.messages).unwrap()
    };
    assert!(text(&mine.data).contains("mine") && !text(&mine.data).contains("theirs"));
    assert!(text(&theirs.data).contains("theirs") && !text(&theirs.data).contains("mine"));
}

#[tokio::test]
async fn dataset_items_with_other_schemes_keep_their_text_but_never_become_links() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let items = [
        json!({"url": "javascript:alert(document.cookie)", "metadata": {"title": "Evil"}, "text": "Refunds take five days."}),
        json!({"url": "https://docs.example.com/shipping", "metadata": {"title": "Shipping"}, "text": "Shipping is free."}),
    ]
    .iter()
    .map(|i| format!("{i}\n"))
    .collect::<String>();
    let part = reqwest::multipart::Part::bytes(items.into_bytes()).file_name("items.jsonl");
    let r = t
        .raw(Method::POST, &format!("/api/v2/agents/{agent}/sources"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let (status, _, body) = outcome(r).await;
    assert_eq!(status, 201, "{body}");
    let source = t
        .app
        .record()
        .source(&agent, body["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let agentbase_core::knowledge::SourceContent::File { pages, .. } = source.content else {
        panic!("a file source");
    };
    let urls: Vec<Option<&str>> = pages.iter().map(|p| p.url.as_deref()).collect();
    assert_eq!(urls, [None, Some("https://docs.example.com/shipping")]);
    assert_eq!(pages[0].markdown, "Refunds take five days.");
}

#[tokio::test]
async fn unreadable_uploads_get_the_envelope_naming_the_file() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let mut deep = b"%PDF-1.4\ntrailer\n<< /Root ".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    for (name, bytes, says) in [
        ("deep.pdf", deep, "nested more than 64 deep"),
        ("x.exe", b"MZ".to_vec(), "unsupported file type"),
    ] {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name);
        let r = t
            .raw(Method::POST, &format!("/api/v2/agents/{agent}/sources"))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        let (status, code, body) = outcome(r).await;
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("VALIDATION_INVALID_BODY")),
            "{body}"
        );
        let detail = body["error"]["details"]["file"]
            .as_str()
            .unwrap_or_default();
        assert!(detail.contains(says), "{name}: {body}");
    }
    let list: Value = t
        .raw(Method::GET, &format!("/api/v2/agents/{agent}/sources"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "nothing was half-made"
    );
}
