//! Each kind of bad input, with the exact status and code it gets. None is a 500.

use reqwest::Method;
use serde_json::json;

use crate::{outcome, spawn, spawn_with};

#[tokio::test]
async fn each_kind_of_bad_input_gets_its_status_and_code() {
    let t = spawn().await;
    let id = t
        .client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let agent = format!("/api/v2/agents/{id}");
    let hook = t
        .raw(Method::POST, &format!("{agent}/webhooks"))
        .json(&json!({"url": "https://h.example/in", "events": ["leads.submit"]}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = format!("{agent}/webhooks/{hook}");
    // (method, path, body, status, code, field named in details)
    type Case<'a> = (Method, String, &'a str, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{\"name\":",
            400,
            "VALIDATION_INVALID_JSON",
            None,
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "not json",
            400,
            "VALIDATION_INVALID_JSON",
            None,
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "",
            400,
            "VALIDATION_INVALID_JSON",
            None,
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{\"name\":\"a\"} trailing",
            400,
            "VALIDATION_INVALID_JSON",
            None,
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("name"),
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "[]",
            400,
            "VALIDATION_INVALID_BODY",
            Some("body"),
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{\"name\":42}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("name"),
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{\"name\":\"a\",\"temp\":\"hot\"}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("temp"),
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{\"name\":\"a\",\"visibility\":\"secret\"}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("visibility"),
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{\"name\":\"a\",\"voiceSettings\":{}}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("voiceSettings"),
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{\"name\":\"a\",\"model\":\"nope\"}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("model"),
        ),
        (
            Method::POST,
            "/api/v2/agents".into(),
            "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("name"),
        ),
        (
            Method::PUT,
            agent.clone(),
            "{\"ipRateLimits\":{\"limit\":500}}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("ipRateLimits.limit"),
        ),
        (
            Method::PUT,
            agent.clone(),
            "{\"ipRateLimits\":{\"bogus\":1}}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("ipRateLimits.bogus"),
        ),
        (
            Method::PUT,
            agent.clone(),
            "{\"suggestedMessages\":[{\"type\":\"single\"}]}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("suggestedMessages[0]"),
        ),
        (
            Method::PUT,
            agent.clone(),
            "{\"creditLimit\":-5}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("creditLimit"),
        ),
        (
            Method::PUT,
            agent.clone(),
            "{\"initialMessages\":\"hi\"}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("initialMessages"),
        ),
        (
            Method::PUT,
            agent.clone(),
            "{oops",
            400,
            "VALIDATION_INVALID_JSON",
            None,
        ),
        (
            Method::PUT,
            "/api/v2/agents/missing".into(),
            "{oops",
            404,
            "AGENT_NOT_FOUND",
            None,
        ),
        (
            Method::GET,
            "/api/v2/agents/missing".into(),
            "",
            404,
            "AGENT_NOT_FOUND",
            None,
        ),
        (
            Method::DELETE,
            "/api/v2/agents/missing".into(),
            "",
            404,
            "AGENT_NOT_FOUND",
            None,
        ),
        (
            Method::GET,
            "/api/v2/agents?limit=0".into(),
            "",
            400,
            "VALIDATION_INVALID_BODY",
            Some("limit"),
        ),
        (
            Method::GET,
            "/api/v2/agents?limit=101".into(),
            "",
            400,
            "VALIDATION_INVALID_BODY",
            Some("limit"),
        ),
        (
            Method::GET,
            "/api/v2/agents?limit=ten".into(),
            "",
            400,
            "VALIDATION_INVALID_BODY",
            Some("limit"),
        ),
        (
            Method::GET,
            "/api/v2/agents?cursor=%%%".into(),
            "",
            400,
            "VALIDATION_INVALID_BODY",
            Some("cursor"),
        ),
        (
            Method::GET,
            "/api/v2/agents?cursor=eyJ0IjoxfQ==".into(),
            "",
            400,
            "VALIDATION_INVALID_BODY",
            Some("cursor"),
        ),
        (
            Method::PATCH,
            agent.clone(),
            "{}",
            405,
            "METHOD_NOT_ALLOWED",
            None,
        ),
        // Webhooks.
        (
            Method::POST,
            format!("{agent}/webhooks"),
            "{}",
            400,
            "VALIDATION_INVALID_BODY",
            Some("url"),
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"https://h.example/in"}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("events"),
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"ftp://h.example/in","events":["leads.submit"]}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("url"),
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"https://user:pw@h.example/in","events":["leads.submit"]}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("url"),
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"http://[::ffff:127.0.0.1]/","events":["leads.submit"]}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("url"),
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"https://h.example/in","events":[]}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("events"),
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"https://h.example/in","events":["leads.submit","%"]}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("events"),
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"https://h.example/in","events":"leads.submit"}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("events"),
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"https://h.example/in","events":["leads.submit"],"secret":"mine"}"#,
            400,
            "VALIDATION_INVALID_BODY",
            None,
        ),
        (
            Method::POST,
            format!("{agent}/webhooks"),
            r#"{"url":"#,
            400,
            "VALIDATION_INVALID_JSON",
            None,
        ),
        (
            Method::GET,
            format!("{agent}/webhooks/AAAAAAAAAAAAAAAAAAAA"),
            "",
            404,
            "RESOURCE_NOT_FOUND",
            None,
        ),
        (
            Method::PATCH,
            format!("{agent}/webhooks/AAAAAAAAAAAAAAAAAAAA"),
            r#"{"active":false}"#,
            404,
            "RESOURCE_NOT_FOUND",
            None,
        ),
        (
            Method::PATCH,
            hook.clone(),
            r#"{"url":"http://10.1.2.3/"}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("url"),
        ),
        (
            Method::PATCH,
            hook.clone(),
            r#"{"events":["leads.submit","ticket.closed"]}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("events"),
        ),
        (
            Method::PATCH,
            hook.clone(),
            r#"{"active":"yes"}"#,
            400,
            "VALIDATION_INVALID_BODY",
            Some("active"),
        ),
        (
            Method::PATCH,
            hook.clone(),
            "[]",
            400,
            "VALIDATION_INVALID_BODY",
            None,
        ),
        (
            Method::GET,
            format!("{hook}/deliveries?cursor=%%%"),
            "",
            400,
            "VALIDATION_INVALID_BODY",
            Some("cursor"),
        ),
        (
            Method::GET,
            format!("{agent}/webhooks/AAAAAAAAAAAAAAAAAAAA/deliveries?limit=0"),
            "",
            400,
            "VALIDATION_INVALID_BODY",
            Some("limit"),
        ),
    ];
    for (method, path, body, status, code, field) in cases {
        let r = t
            .raw(method.clone(), &path)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let (got_status, got_code, got) = outcome(r).await;
        assert_eq!(
            (got_status, got_code.as_deref()),
            (status, Some(code)),
            "{method} {path} {body:?}: {got}"
        );
        assert!(
            got["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        if let Some(f) = field {
            assert!(
                got["error"]["details"].get(f).is_some(),
                "{method} {path} {body:?} names {f}: {got}"
            );
        }
    }
    assert_eq!(
        t.client.get_agent(&id).await.unwrap().name,
        "x",
        "nothing above changed the agent"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_in_the_envelope() {
    let t = spawn_with(|s| s.server.body_limit_bytes = 4096).await;
    let big = json!({"name": "x", "instructions": "y".repeat(10_000)});
    let r = t
        .raw(Method::POST, "/api/v2/agents")
        .json(&big)
        .send()
        .await
        .unwrap();
    let (status, code, _) = outcome(r).await;
    assert_eq!(
        (status, code.as_deref()),
        (413, Some("VALIDATION_BODY_TOO_LARGE"))
    );
    let ok = json!({"name": "x", "instructions": "y".repeat(1_000)});
    assert_eq!(
        t.raw(Method::POST, "/api/v2/agents")
            .json(&ok)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
}
