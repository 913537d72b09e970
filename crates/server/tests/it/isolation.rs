//! Tenant isolation: a key reaches its own workspace only. Every implemented
//! endpoint, called with another workspace's key on this workspace's resource,
//! answers exactly as it does for a resource that does not exist.

use agentbase_core::Plan;
use reqwest::Method;

use crate::{outcome, spawn};

#[tokio::test]
async fn a_foreign_workspaces_agent_is_indistinguishable_from_a_missing_one() {
    let t = spawn().await;
    let victim = t
        .client
        .create_agent(&agentbase_client::types::CreateAgentBody {
            name: "private".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let (_, intruder_key) = t.other_workspace(Plan::Standard).await;
    let missing = "AAAAAAAAAAAAAAAAAAAAA";
    let http = reqwest::Client::new();

    let endpoints: &[(Method, &str, Option<&str>)] = &[
        (Method::GET, "/api/v2/agents/{id}", None),
        (
            Method::PUT,
            "/api/v2/agents/{id}",
            Some(r#"{"name":"pwned"}"#),
        ),
        (Method::PUT, "/api/v2/agents/{id}", Some(r#"{"temp":9}"#)),
        (Method::PUT, "/api/v2/agents/{id}", Some("{bad json")),
        (Method::DELETE, "/api/v2/agents/{id}", None),
    ];
    for (method, template, body) in endpoints {
        let call = |id: &str| {
            let mut rb = http
                .request(method.clone(), t.url(&template.replace("{id}", id)))
                .bearer_auth(&intruder_key);
            if let Some(b) = body {
                rb = rb.body(b.to_string());
            }
            rb.send()
        };
        let (fs, fc, fb) = outcome(call(&victim).await.unwrap()).await;
        let (ms, mc, mb) = outcome(call(missing).await.unwrap()).await;
        assert_eq!(
            (fs, &fc, &fb),
            (ms, &mc, &mb),
            "{method} {template} with {body:?}"
        );
        assert_eq!(fs, 404);
    }
    let listed = t.client_for(&intruder_key).all_agents().await.unwrap();
    assert!(listed.is_empty(), "the list shows no foreign agents");

    let still = t.client.get_agent(&victim).await.unwrap();
    assert_eq!(still.name, "private", "the owner's agent is untouched");
}
