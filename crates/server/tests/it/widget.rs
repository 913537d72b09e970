//! The widget's public surface: the script, an agent's config and chat with no API
//! key, public agents only, allowed domains through Origin/Referer and CORS, per-IP
//! limits from the agent's `ipRateLimits`, visitors confined to their own
//! conversations, and bad input answered with the envelope.

use agentbase_service::LimiterBackend;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::{TestApp, frames, outcome, redis_url, spawn, spawn_with, types};

const VISITOR: &str = "v_visitor_0001";

/// A scripted agent made public, with `settings` applied through the API.
async fn public_agent(t: &TestApp, settings: Value) -> String {
    let agent = t.scripted_agent().await;
    let mut body = json!({"visibility": "public"});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    agent
}

/// A request with no API key, as a browser sends it, with the given headers.
fn browser(
    t: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut b = reqwest::Client::new().request(method, t.url(path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b
}

async fn config(t: &TestApp, agent: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    browser(
        t,
        Method::GET,
        &format!("/widget/v1/agents/{agent}/config"),
        headers,
    )
    .send()
    .await
    .unwrap()
}

async fn chat(
    t: &TestApp,
    agent: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> reqwest::Response {
    browser(
        t,
        Method::POST,
        &format!("/widget/v1/agents/{agent}/chat"),
        headers,
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

fn acao(h: &HeaderMap) -> Option<&str> {
    h.get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

/// The answer's text and its conversation id, from a streamed widget answer.
async fn answer(r: reqwest::Response) -> (String, String) {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let f = frames(&r.text().await.unwrap());
    assert_eq!(types(&f).last().map(String::as_str), Some("finish"));
    let text = f
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap())
        .collect();
    let conversation = f.last().unwrap()["messageMetadata"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    (text, conversation)
}

#[tokio::test]
async fn the_script_is_public_cacheable_javascript_under_both_names() {
    let t = spawn().await;
    for path in ["/widget.js", "/embed.min.js"] {
        let r = browser(
            &t,
            Method::GET,
            path,
            &[("origin", "https://anywhere.example")],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript"),
            "{path}"
        );
        assert_eq!(acao(h), Some("*"));
        assert!(h["cache-control"].to_str().unwrap().contains("max-age="));
        let js = r.text().await.unwrap();
        assert!(js.contains("/widget/v1/agents/"), "{path} is the widget");
    }
}

#[tokio::test]
async fn the_config_needs_no_key_and_shows_the_agents_messages() {
    let t = spawn().await;
    let suggested = json!([
        {"type": "single", "text": "What are your hours?", "order": 1},
        {"type": "nested", "name": "Billing", "order": 2,
         "items": [{"text": "Where is my invoice?", "order": 1}]}
    ]);
    let agent = public_agent(
        &t,
        json!({"initialMessages": ["Hello!", "Ask me anything."], "suggestedMessages": suggested}),
    )
    .await;
    let r = config(&t, &agent, &[]).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"data": {
            "id": agent,
            "name": "scripted",
            "initialMessages": ["Hello!", "Ask me anything."],
            "suggestedMessages": suggested,
            "styles": null,
            // No lead form unless v1's collectCustomerInformation sets one.
            "leadForm": null,
        }})
    );
}

#[tokio::test]
async fn unknown_agents_are_not_found_and_private_agents_are_refused() {
    let t = spawn().await;
    let private = t.scripted_agent().await;
    let origin = [("origin", "https://site.example")];
    let body = json!({"message": "hi", "visitorId": VISITOR});
    for r in [
        config(&t, "nope", &origin).await,
        chat(&t, "nope", &origin, body.clone()).await,
    ] {
        let (status, code, _) = outcome(r).await;
        assert_eq!((status, code.as_deref()), (404, Some("AGENT_NOT_FOUND")));
    }
    for r in [
        config(&t, &private, &origin).await,
        chat(&t, &private, &origin, body.clone()).await,
    ] {
        assert_eq!(acao(r.headers()), Some("https://site.example"));
        let (status, code, body) = outcome(r).await;
        assert_eq!((status, code.as_deref()), (403, Some("AGENT_NOT_PUBLIC")));
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("private")
        );
    }
    let stored = t.app.record().ledger(&t.workspace_id).await.unwrap();
    assert!(stored.is_empty(), "a refused turn costs nothing");
}

#[tokio::test]
async fn allowed_domains_are_enforced_by_origin_then_referer_and_cors_follows() {
    let t = spawn().await;
    let agent = public_agent(
        &t,
        json!({"allowedDomains": ["127.0.0.1:4000", "example.com"]}),
    )
    .await;
    for allowed in [
        [("origin", "http://127.0.0.1:4000")],
        [("origin", "https://example.com")],
        [("origin", "https://shop.example.com")],
        [("referer", "https://shop.example.com/products?id=1")],
    ] {
        let r = config(&t, &agent, &allowed).await;
        assert_eq!(r.status(), 200, "{allowed:?}");
        let h = r.headers();
        let expected = (allowed[0].0 == "origin").then_some(allowed[0].1);
        assert_eq!(acao(h), expected, "the Origin is reflected");
        assert_eq!(h["vary"], "origin");
    }
    for refused in [
        vec![("origin", "http://localhost:4000")],
        vec![("origin", "http://127.0.0.1:4001")],
        vec![("origin", "https://notexample.com")],
        vec![("origin", "null")],
        vec![("referer", "https://evil.example/?https://example.com")],
        // An allowed Referer does not vouch for a refused Origin.
        vec![
            ("origin", "https://evil.example"),
            ("referer", "https://example.com/"),
        ],
        vec![],
    ] {
        for r in [
            config(&t, &agent, &refused).await,
            chat(
                &t,
                &agent,
                &refused,
                json!({"message": "hi", "visitorId": VISITOR}),
            )
            .await,
        ] {
            assert_eq!(acao(r.headers()), None, "{refused:?}");
            assert_eq!(r.headers()["vary"], "origin");
            let (status, code, _) = outcome(r).await;
            assert_eq!(
                (status, code.as_deref()),
                (403, Some("WIDGET_ORIGIN_NOT_ALLOWED")),
                "{refused:?}"
            );
        }
    }
    assert!(
        t.app
            .record()
            .ledger(&t.workspace_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn preflights_admit_allowed_origins_only() {
    let t = spawn().await;
    let agent = public_agent(&t, json!({"allowedDomains": ["127.0.0.1:4000"]})).await;
    for route in ["config", "chat"] {
        let path = format!("/widget/v1/agents/{agent}/{route}");
        let r = browser(
            &t,
            Method::OPTIONS,
            &path,
            &[
                ("origin", "http://127.0.0.1:4000"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 204, "{route}");
        let h = r.headers();
        assert_eq!(acao(h), Some("http://127.0.0.1:4000"));
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        assert_eq!(h["access-control-allow-headers"], "content-type");
        assert_eq!(h["vary"], "origin");

        let r = browser(
            &t,
            Method::OPTIONS,
            &path,
            &[
                ("origin", "http://localhost:4000"),
                ("access-control-request-method", "POST"),
            ],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 403, "{route}");
        assert_eq!(acao(r.headers()), None);
    }
}

#[tokio::test]
async fn a_visitor_chats_in_a_stream_and_continues_its_own_conversation() {
    let t = spawn().await;
    let agent = public_agent(&t, json!({})).await;
    let origin = [("origin", "https://any.example")];
    let r = chat(
        &t,
        &agent,
        &origin,
        json!({"message": "hello widget", "visitorId": VISITOR}),
    )
    .await;
    assert_eq!(acao(r.headers()), Some("https://any.example"));
    assert_eq!(r.headers()["x-vercel-ai-ui-message-stream"], "v1");
    let (text, conversation) = answer(r).await;
    assert_eq!(text, "Echo: hello widget");

    let r = chat(
        &t,
        &agent,
        &origin,
        json!({"message": "again", "visitorId": VISITOR, "conversationId": conversation}),
    )
    .await;
    let (text, same) = answer(r).await;
    assert_eq!(
        (text.as_str(), same.as_str()),
        ("Echo: again", conversation.as_str())
    );

    // The operator sees it through the API, under the visitor's user id, and the
    // record has the widget as its source.
    let got = t
        .client
        .get_conversation(&agent, &conversation)
        .await
        .unwrap();
    assert_eq!(got.data.messages.len(), 4);
    let user = format!("widget-{VISITOR}");
    assert_eq!(
        got.data.conversation.user_id.as_deref(),
        Some(user.as_str())
    );
    let stored = t
        .app
        .record()
        .conversation(&t.workspace_id, &conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.source, "Widget or Iframe");
}

#[tokio::test]
async fn visitors_cannot_continue_conversations_that_are_not_theirs() {
    let t = spawn().await;
    let agent = public_agent(&t, json!({})).await;
    let other_agent = public_agent(&t, json!({})).await;
    async fn turn(t: &TestApp, agent: &str, visitor: &str, c: Option<&str>) -> reqwest::Response {
        let mut body = json!({"message": "hi", "visitorId": visitor});
        if let Some(c) = c {
            body["conversationId"] = json!(c);
        }
        chat(t, agent, &[], body).await
    }
    let (_, mine) = answer(turn(&t, &agent, VISITOR, None).await).await;
    let api = t.say(&agent, None, "through the API").await;
    let api_conversation = api.data.metadata.conversation_id;
    let (_, elsewhere) = answer(turn(&t, &other_agent, VISITOR, None).await).await;
    for (visitor, conversation) in [
        ("v_someone_else", mine.as_str()),
        (VISITOR, api_conversation.as_str()),
        (VISITOR, elsewhere.as_str()),
        (VISITOR, "conv_unknown"),
    ] {
        let (status, code, _) = outcome(turn(&t, &agent, visitor, Some(conversation)).await).await;
        assert_eq!(
            (status, code.as_deref()),
            (404, Some("RESOURCE_NOT_FOUND")),
            "{visitor} continuing {conversation}"
        );
    }
    assert_eq!(t.app.record().messages(&mine).await.unwrap().len(), 2);
}

#[tokio::test]
async fn bad_bodies_get_the_envelope_never_a_500() {
    let t = spawn().await;
    let agent = public_agent(&t, json!({})).await;
    let post = |body: String| {
        browser(
            &t,
            Method::POST,
            &format!("/widget/v1/agents/{agent}/chat"),
            &[],
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
    };
    let cases = [
        ("{not json", "VALIDATION_INVALID_JSON", None),
        (
            r#"{"visitorId":"v_visitor_0001"}"#,
            "VALIDATION_INVALID_BODY",
            Some("message"),
        ),
        (
            r#"{"message":"hi"}"#,
            "VALIDATION_INVALID_BODY",
            Some("visitorId"),
        ),
        (
            r#"{"message":5,"visitorId":"v_visitor_0001"}"#,
            "VALIDATION_INVALID_BODY",
            Some("message"),
        ),
        (
            r#"{"message":"","visitorId":"v_visitor_0001"}"#,
            "VALIDATION_INVALID_BODY",
            Some("message"),
        ),
        (
            r#"{"message":"hi","visitorId":"bad id!"}"#,
            "VALIDATION_INVALID_BODY",
            Some("visitorId"),
        ),
        (
            r#"{"message":"hi","visitorId":"short"}"#,
            "VALIDATION_INVALID_BODY",
            Some("visitorId"),
        ),
    ];
    for (body, expected, field) in cases {
        let (status, code, got) = outcome(post(body.to_owned()).await.unwrap()).await;
        assert_eq!((status, code.as_deref()), (400, Some(expected)), "{body}");
        if let Some(field) = field {
            assert!(
                got["error"]["details"].get(field).is_some(),
                "{body}: {got}"
            );
        }
    }
    let long = json!({"message": "x".repeat(4001), "visitorId": VISITOR}).to_string();
    let (status, _, got) = outcome(post(long).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        got["error"]["details"]["message"]
            .as_str()
            .unwrap()
            .contains("4000")
    );
    let fits = json!({"message": "x".repeat(4000), "visitorId": VISITOR}).to_string();
    assert_eq!(post(fits).await.unwrap().status(), 200);
}

#[tokio::test]
async fn exhausted_credits_refuse_widget_turns_like_api_turns() {
    let t = spawn_with(|s| s.plans.standard = 1).await;
    let agent = public_agent(&t, json!({})).await;
    let body = json!({"message": "hi", "visitorId": VISITOR});
    answer(chat(&t, &agent, &[], body.clone()).await).await;
    let (status, code, _) = outcome(chat(&t, &agent, &[], body).await).await;
    assert_eq!(
        (status, code.as_deref()),
        (402, Some("CHAT_CREDITS_EXHAUSTED"))
    );

    let t = spawn().await;
    let agent = public_agent(&t, json!({"creditLimit": 0})).await;
    let r = chat(
        &t,
        &agent,
        &[],
        json!({"message": "hi", "visitorId": VISITOR}),
    )
    .await;
    let (status, code, _) = outcome(r).await;
    assert_eq!(
        (status, code.as_deref()),
        (402, Some("CHAT_AGENT_CREDITS_EXHAUSTED"))
    );
}

#[tokio::test]
async fn chat_messages_are_limited_per_agent_and_client_ip_with_the_agents_message() {
    let mut apps = vec![(
        "memory",
        spawn_with(|s| s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await,
    )];
    if let Some(url) = redis_url() {
        let t = spawn_with(move |s| {
            s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            s.rate_limit.backend = LimiterBackend::Redis;
            s.rate_limit.redis_url = url.clone();
        })
        .await;
        apps.push(("redis", t));
    }
    for (backend, t) in apps {
        let limits = json!({"limit": 2, "timeframe": 60, "message": "Slow down, please"});
        let agent = public_agent(&t, json!({"ipRateLimits": limits})).await;
        let other = public_agent(&t, json!({"ipRateLimits": limits})).await;
        let from = |ip: &'static str| [("origin", "https://a.example"), ("x-forwarded-for", ip)];
        let body = json!({"message": "hi", "visitorId": VISITOR});
        // Config reads are not counted.
        for _ in 0..5 {
            assert_eq!(config(&t, &agent, &from("1.1.1.1")).await.status(), 200);
        }
        for i in 1..=2 {
            let r = chat(&t, &agent, &from("1.1.1.1"), body.clone()).await;
            assert_eq!(r.status(), 200, "{backend}: message {i}");
            r.text().await.unwrap();
        }
        let r = chat(&t, &agent, &from("1.1.1.1"), body.clone()).await;
        assert_eq!(r.headers()["retry-after"], "60", "{backend}");
        assert_eq!(
            acao(r.headers()),
            Some("https://a.example"),
            "the page can read the refusal"
        );
        let (status, code, got) = outcome(r).await;
        assert_eq!(
            (status, code.as_deref()),
            (429, Some("RATE_LIMIT_TOO_MANY_REQUESTS")),
            "{backend}"
        );
        assert_eq!(got["error"]["message"], "Slow down, please");

        // Another IP, or another agent, has a window of its own.
        let r = chat(&t, &agent, &from("2.2.2.2"), body.clone()).await;
        assert_eq!(r.status(), 200, "{backend}");
        r.text().await.unwrap();
        let r = chat(&t, &other, &from("1.1.1.1"), body.clone()).await;
        assert_eq!(r.status(), 200, "{backend}");
        r.text().await.unwrap();

        // The window slides.
        t.clock.advance_ms(60_001);
        let r = chat(&t, &agent, &from("1.1.1.1"), body.clone()).await;
        assert_eq!(r.status(), 200, "{backend}");
        r.text().await.unwrap();
    }
}

#[tokio::test]
async fn visitors_see_a_generic_error_while_the_operator_keeps_the_detail() {
    let t = spawn().await;
    let agent = public_agent(&t, json!({})).await;
    let r = chat(
        &t,
        &agent,
        &[("origin", "https://any.example")],
        json!({"message": "[[fail:0]] hi", "visitorId": VISITOR}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let f = frames(&r.text().await.unwrap());
    let error = f
        .iter()
        .find(|c| c["type"] == "error")
        .expect("an error chunk");
    assert_eq!(
        error["errorText"],
        agentbase_server::sse::PUBLIC_ERROR,
        "the upstream detail must not reach a visitor"
    );
    // The API's callers (the operator's own code) get the detail.
    let (_, body) = t
        .stream_raw(&agent, json!({"message": "[[fail:0]] hi"}))
        .await;
    assert!(body.contains("scripted failure"), "{body}");
}
