//! Tenant isolation: a key reaches its own workspace only. Every implemented
//! endpoint, called with another workspace's key on this workspace's resources,
//! answers exactly as it does for resources that do not exist.

use agentbase_core::Plan;
use reqwest::Method;

use crate::{outcome, spawn};

type Endpoint = (Method, &'static str, Option<&'static str>);

/// Every endpoint; `{a}` agent, `{c}` conversation, `{m}` message.
const ENDPOINTS: &[Endpoint] = &[
    (Method::GET, "/api/v2/agents/{a}", None),
    (
        Method::PUT,
        "/api/v2/agents/{a}",
        Some(r#"{"name":"pwned"}"#),
    ),
    (Method::PUT, "/api/v2/agents/{a}", Some(r#"{"temp":9}"#)),
    (Method::PUT, "/api/v2/agents/{a}", Some("{bad json")),
    (
        Method::POST,
        "/api/v2/agents/{a}/chat",
        Some(r#"{"message":"hi","stream":false}"#),
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/chat",
        Some(r#"{"message":"hi","conversationId":"{c}","stream":false}"#),
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/conversations/{c}/retry",
        Some(r#"{"messageId":"{m}","stream":false}"#),
    ),
    (Method::GET, "/api/v2/agents/{a}/conversations", None),
    (Method::GET, "/api/v2/agents/{a}/conversations/export", None),
    (Method::GET, "/api/v2/agents/{a}/conversations/{c}", None),
    (
        Method::PATCH,
        "/api/v2/agents/{a}/conversations/{c}",
        Some(r#"{"paused":true}"#),
    ),
    (
        Method::GET,
        "/api/v2/agents/{a}/conversations/{c}/messages",
        None,
    ),
    (
        Method::POST,
        "/api/v2/agents/{a}/conversations/{c}/tool-result",
        Some(r#"{"toolCallId":"x","output":1}"#),
    ),
    (
        Method::PATCH,
        "/api/v2/agents/{a}/conversations/{c}/messages/{m}/feedback",
        Some(r#"{"feedback":"negative"}"#),
    ),
    (
        Method::GET,
        "/api/v2/agents/{a}/users/victim-user/conversations",
        None,
    ),
    (
        Method::POST,
        "/api/v1/chat",
        Some(
            r#"{"chatbotId":"{a}","conversationId":"{c}","messages":[{"role":"user","content":"x"}]}"#,
        ),
    ),
    (Method::GET, "/api/v1/get-conversations?chatbotId={a}", None),
    (Method::DELETE, "/api/v2/agents/{a}", None),
];

fn fill(s: &str, a: &str, c: &str, m: &str) -> String {
    s.replace("{a}", a).replace("{c}", c).replace("{m}", m)
}

#[tokio::test]
async fn another_workspaces_resources_are_indistinguishable_from_missing_ones() {
    let t = spawn().await;
    let victim_agent = t.scripted_agent().await;
    let r = t
        .client
        .chat(
            &victim_agent,
            &agentbase_client::types::ChatRequest {
                message: Some("secret".into()),
                user_id: Some("victim-user".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (victim_conv, victim_msg) = (r.data.metadata.conversation_id.clone(), r.data.id.clone());
    let (_, intruder_key) = t.other_workspace(Plan::Standard).await;
    let intruder = t.client_for(&intruder_key);
    let own_agent = intruder
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "mine".into(),
            model: Some("scripted".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let http = reqwest::Client::new();
    let call = |method: &Method, path: String, body: Option<String>| {
        let mut rb = http
            .request(method.clone(), t.url(&path))
            .bearer_auth(&intruder_key);
        if let Some(b) = body {
            rb = rb.body(b);
        }
        rb.send()
    };
    let missing_agent = "AAAAAAAAAAAAAAAAAAAAA";
    for (method, path, body) in ENDPOINTS {
        // The victim's agent, conversation and message…
        let foreign = (
            fill(path, &victim_agent, &victim_conv, &victim_msg),
            body.map(|b| fill(b, &victim_agent, &victim_conv, &victim_msg)),
        );
        // …against ids that exist nowhere.
        let missing = (
            fill(path, missing_agent, "missing-conversation", "msg_missing"),
            body.map(|b| fill(b, missing_agent, "missing-conversation", "msg_missing")),
        );
        let (fs, fc, fb) = outcome(call(method, foreign.0, foreign.1).await.unwrap()).await;
        let (ms, mc, mb) = outcome(call(method, missing.0, missing.1).await.unwrap()).await;
        assert_eq!((fs, &fc, &fb), (ms, &mc, &mb), "{method} {path} {body:?}");
        assert!(fs == 404 || fs == 400, "{method} {path}: {fs}");

        // The intruder's own agent with the victim's conversation and message ids.
        let names_ids = |s: &str| s.contains("{c}") || s.contains("{m}");
        if names_ids(path) || body.is_some_and(names_ids) {
            let foreign = (
                fill(path, &own_agent, &victim_conv, &victim_msg),
                body.map(|b| fill(b, &own_agent, &victim_conv, &victim_msg)),
            );
            let missing = (
                fill(path, &own_agent, "missing-conversation", "msg_missing"),
                body.map(|b| fill(b, &own_agent, "missing-conversation", "msg_missing")),
            );
            let (fs, fc, fb) = outcome(call(method, foreign.0, foreign.1).await.unwrap()).await;
            let (ms, mc, mb) = outcome(call(method, missing.0, missing.1).await.unwrap()).await;
            if path.starts_with("/api/v1/chat") {
                // v1 makes the conversation when its id is new: the intruder gets a
                // fresh one, never the victim's.
                assert_eq!(
                    fs, 409,
                    "the victim's id is taken, and no more is said: {fb}"
                );
                assert_eq!(ms, 200);
            } else {
                assert_eq!(
                    (fs, &fc, &fb),
                    (ms, &mc, &mb),
                    "{method} {path} {body:?} with own agent"
                );
            }
        }
    }
    let listed = intruder.all_agents().await.unwrap();
    assert_eq!(listed.len(), 1, "only the intruder's own agent is listed");

    let still = t.client.get_agent(&victim_agent).await.unwrap();
    assert_eq!(still.name, "scripted", "the owner's agent is untouched");
    let conv = t
        .client
        .get_conversation(&victim_agent, &victim_conv)
        .await
        .unwrap();
    assert_eq!(
        conv.data.messages.len(),
        2,
        "the owner's conversation is untouched"
    );
    assert_eq!(conv.data.conversation.status, "ongoing");
    assert_eq!(conv.data.messages[1].feedback, Some(None));
}
