use agentbase_core::Plan;
use reqwest::Method;

use crate::{outcome, spawn};

async fn code_for(t: &crate::TestApp, authorization: Option<&str>) -> (u16, Option<String>) {
    let mut rb = reqwest::Client::new().get(t.url("/api/v2/agents"));
    if let Some(a) = authorization {
        rb = rb.header("authorization", a);
    }
    let (status, code, _) = outcome(rb.send().await.unwrap()).await;
    (status, code)
}

#[tokio::test]
async fn each_kind_of_bad_key_gets_its_own_401() {
    let t = spawn().await;
    let (id, _) = agentbase_core::keys::parse(&t.key).unwrap();
    let wrong_secret = format!("agb_{id}_{}", "x".repeat(43));
    let cases: &[(Option<&str>, &str)] = &[
        (None, "AUTH_MISSING_API_KEY"),
        (Some(""), "AUTH_MISSING_API_KEY"),
        (Some("Bearer "), "AUTH_MISSING_API_KEY"),
        (Some("Bearer garbage"), "AUTH_INVALID_API_KEY"),
        (Some("Basic dXNlcjpwYXNz"), "AUTH_INVALID_API_KEY"),
        (Some(&wrong_secret), "AUTH_INVALID_API_KEY"),
    ];
    for (header, expected) in cases {
        let header = header.map(|h| {
            if h.starts_with("agb_") {
                format!("Bearer {h}")
            } else {
                h.to_owned()
            }
        });
        assert_eq!(
            code_for(&t, header.as_deref()).await,
            (401, Some(expected.to_string())),
            "{header:?}"
        );
    }
    let good = format!("Bearer {}", t.key);
    assert_eq!(code_for(&t, Some(&good)).await.0, 200);
    let lower = format!("bearer {}", t.key);
    assert_eq!(
        code_for(&t, Some(&lower)).await.0,
        200,
        "the scheme is case-insensitive"
    );
}

#[tokio::test]
async fn a_revoked_key_is_invalid_at_once() {
    let t = spawn().await;
    let (key, plaintext) = t
        .app
        .accounts()
        .create_key(&t.workspace_id, "temp", None)
        .await
        .unwrap();
    let c = t.client_for(&plaintext);
    c.list_agents(None, None).await.unwrap();
    t.app.accounts().revoke_key(&key.prefix).await.unwrap();
    assert_eq!(
        c.list_agents(None, None).await.unwrap_err().code(),
        Some("AUTH_INVALID_API_KEY")
    );
    assert!(
        t.app.accounts().revoke_key(&key.id).await.is_err(),
        "revoking twice reports no active key"
    );
}

#[tokio::test]
async fn an_expired_key_says_so() {
    let t = spawn().await;
    let now = agentbase_core::Clock::now_ms(&t.clock);
    let (_, plaintext) = t
        .app
        .accounts()
        .create_key(&t.workspace_id, "short", Some(now + 1_000))
        .await
        .unwrap();
    let c = t.client_for(&plaintext);
    c.list_agents(None, None).await.unwrap();
    t.clock.advance_ms(1_000);
    assert_eq!(
        c.list_agents(None, None).await.unwrap_err().code(),
        Some("AUTH_EXPIRED_API_KEY")
    );
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes() {
    let t = spawn().await;
    let keys = t.app.accounts().keys(None).await.unwrap();
    assert_eq!(keys.len(), 1);
    let (_, secret) = agentbase_core::keys::parse(&t.key).unwrap();
    assert!(!keys[0].secret_hash.contains(secret));
    assert_eq!(keys[0].secret_hash.len(), 64);
    assert!(
        t.key.len() >= 55,
        "at least 43 random alphanumerics (~256 bits) in the secret"
    );
}

#[tokio::test]
async fn plans_below_standard_are_refused_on_every_endpoint_but_health() {
    let t = spawn().await;
    let agent = t
        .client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let endpoints = [
        (Method::GET, "/api/v2/agents".to_owned(), None),
        (
            Method::POST,
            "/api/v2/agents".to_owned(),
            Some(r#"{"name":"x"}"#),
        ),
        (Method::GET, format!("/api/v2/agents/{}", agent.id), None),
        (
            Method::PUT,
            format!("/api/v2/agents/{}", agent.id),
            Some(r#"{"name":"y"}"#),
        ),
        (Method::DELETE, format!("/api/v2/agents/{}", agent.id), None),
    ];
    for plan in [Plan::Free, Plan::Hobby] {
        t.app
            .accounts()
            .set_plan(&t.workspace_id, plan)
            .await
            .unwrap();
        for (method, path, body) in &endpoints {
            let mut rb = t.raw(method.clone(), path);
            if let Some(b) = body {
                rb = rb.body(*b);
            }
            let r = rb.send().await.unwrap();
            assert!(
                r.headers().contains_key("x-ratelimit-remaining"),
                "rate headers on 403 too"
            );
            let (status, code, body) = outcome(r).await;
            assert_eq!(
                (status, code.as_deref()),
                (403, Some("SUBSCRIPTION_API_RESTRICTED_PLAN")),
                "{plan} {method} {path}"
            );
            assert_eq!(
                body["error"]["message"],
                "A Standard plan or higher is required to access the API"
            );
        }
        assert_eq!(
            reqwest::get(t.url("/api/v2/health"))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    for plan in [Plan::Standard, Plan::Pro, Plan::Enterprise] {
        t.app
            .accounts()
            .set_plan(&t.workspace_id, plan)
            .await
            .unwrap();
        t.client.get_agent(&agent.id).await.unwrap();
    }
}
