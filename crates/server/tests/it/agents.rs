use agentbase_client::types::{CreateAgentBody, IpRateLimitsPatch, UpdateAgentBody, Visibility};
use serde_json::json;

use crate::{official_spec, spawn};

fn named(name: &str) -> CreateAgentBody {
    CreateAgentBody {
        name: name.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_agent_is_created_read_updated_and_deleted() {
    let t = spawn().await;
    let created = t
        .client
        .create_agent(&CreateAgentBody {
            name: "Support Bot".into(),
            instructions: Some("Answer briefly.".into()),
            model: Some("smollm2".into()),
            temp: Some(0.3),
            visibility: Some(Visibility::Public),
            url: None,
        })
        .await
        .unwrap();
    assert_eq!(created.id.len(), 21);

    let a = t.client.get_agent(&created.id).await.unwrap();
    assert_eq!(
        (a.name.as_str(), a.instructions.as_str(), a.model.as_str()),
        ("Support Bot", "Answer briefly.", "smollm2")
    );
    assert_eq!(
        (a.temp, a.visibility.as_str(), a.status.as_str()),
        (0.3, "public", "untrained")
    );
    assert_eq!(a.credit_limit, None);
    assert!(a.created_at.ends_with('Z'));

    let update = UpdateAgentBody {
        name: Some("Renamed".into()),
        allowed_domains: Some(Some(vec!["example.com".into()])),
        suggested_messages: Some(Some(
            json!([{"type": "single", "text": "Pricing?", "order": 1}]),
        )),
        initial_messages: Some(vec!["Hello!".into()]),
        credit_limit: Some(Some(250)),
        ip_rate_limits: Some(Some(IpRateLimitsPatch {
            limit: Some(5),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert!(
        t.client
            .update_agent(&created.id, &update)
            .await
            .unwrap()
            .success
    );
    let a = t.client.get_agent(&created.id).await.unwrap();
    assert_eq!(a.name, "Renamed");
    assert_eq!(a.allowed_domains, Some(vec!["example.com".to_owned()]));
    assert_eq!(a.initial_messages, vec!["Hello!"]);
    assert_eq!(a.credit_limit, Some(250));
    assert_eq!(
        (a.ip_rate_limits.limit, a.ip_rate_limits.timeframe),
        (5, 240)
    );
    assert_eq!(
        a.instructions, "Answer briefly.",
        "fields not in the update are kept"
    );

    // null clears nullable fields and resets ip limits to their defaults.
    let r = t
        .raw(
            reqwest::Method::PUT,
            &format!("/api/v2/agents/{}", created.id),
        )
        .json(&json!({"allowedDomains": null, "creditLimit": null, "ipRateLimits": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a = t.client.get_agent(&created.id).await.unwrap();
    assert_eq!(
        (a.allowed_domains, a.credit_limit, a.ip_rate_limits.limit),
        (None, None, 20)
    );

    assert!(t.client.delete_agent(&created.id).await.unwrap().success);
    assert_eq!(
        t.client.get_agent(&created.id).await.unwrap_err().code(),
        Some("AGENT_NOT_FOUND")
    );
    assert_eq!(
        t.client.delete_agent(&created.id).await.unwrap_err().code(),
        Some("AGENT_NOT_FOUND")
    );
}

#[tokio::test]
async fn agents_get_the_configured_default_model() {
    let t = spawn().await;
    let id = t.client.create_agent(&named("x")).await.unwrap().id;
    assert_eq!(t.client.get_agent(&id).await.unwrap().model, "auto");
}

#[tokio::test]
async fn an_unconfigured_model_is_refused_with_field_details() {
    let t = spawn().await;
    let err = t
        .client
        .create_agent(&CreateAgentBody {
            name: "x".into(),
            model: Some("gpt-4o".into()),
            temp: Some(2.0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let agentbase_client::Error::Api(e) = err else {
        panic!()
    };
    assert_eq!(
        (e.status, e.code.as_str()),
        (400, "VALIDATION_INVALID_BODY")
    );
    let details = e.details.unwrap();
    assert!(details["model"].contains("gpt-4o"));
    assert!(details.contains_key("temp"));

    let id = t.client.create_agent(&named("y")).await.unwrap().id;
    let err = t
        .client
        .update_agent(
            &id,
            &UpdateAgentBody {
                model: Some("claude-opus-4-8".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("VALIDATION_INVALID_BODY"));
    assert_eq!(
        t.client.get_agent(&id).await.unwrap().model,
        "auto",
        "a refused update changes nothing"
    );
}

#[tokio::test]
async fn models_added_in_configuration_are_accepted() {
    let t = crate::spawn_with(|s| {
        s.models.insert(
            "gpt-4o".into(),
            agentbase_service::settings::ModelSettings {
                provider: "local".into(),
                upstream: "x".into(),
                credits: 2.0,
            },
        );
    })
    .await;
    let id = t
        .client
        .create_agent(&CreateAgentBody {
            name: "x".into(),
            model: Some("gpt-4o".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    assert_eq!(t.client.get_agent(&id).await.unwrap().model, "gpt-4o");
}

#[tokio::test]
async fn the_list_pages_with_cursors_and_reports_the_total() {
    let t = spawn().await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(
            t.client
                .create_agent(&named(&format!("agent {i}")))
                .await
                .unwrap()
                .id,
        );
        t.clock.advance_ms(1);
    }
    ids.reverse();

    let first = t.client.list_agents(None, None).await.unwrap();
    assert_eq!(first.data.len(), 20, "default limit is 20");
    assert_eq!(
        (first.pagination.has_more, first.pagination.total),
        (true, 25)
    );
    let cursor = first
        .pagination
        .cursor
        .clone()
        .expect("a cursor when hasMore");
    let second = t.client.list_agents(Some(&cursor), None).await.unwrap();
    assert_eq!(second.data.len(), 5);
    assert_eq!(
        (second.pagination.has_more, second.pagination.cursor.clone()),
        (false, None)
    );

    let walked: Vec<_> = first
        .data
        .iter()
        .chain(&second.data)
        .map(|a| a.id.clone())
        .collect();
    assert_eq!(walked, ids, "newest first, no gaps, no repeats");
    let all: Vec<_> = t
        .client
        .all_agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(all, ids);
}

#[tokio::test]
async fn agent_responses_have_every_field_the_official_schema_requires() {
    let t = spawn().await;
    let id = t.client.create_agent(&named("x")).await.unwrap().id;
    let spec = official_spec();
    let schemas = &spec["components"]["schemas"];
    let agent: serde_json::Value = t
        .raw(reqwest::Method::GET, &format!("/api/v2/agents/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in schemas["Agent"]["required"].as_array().unwrap() {
        assert!(
            agent.get(field.as_str().unwrap()).is_some(),
            "Agent.{field}"
        );
    }
    let list: serde_json::Value = t
        .raw(reqwest::Method::GET, "/api/v2/agents")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in schemas["ListAgentsResponse"]["properties"]["pagination"]["required"]
        .as_array()
        .unwrap()
    {
        assert!(
            list["pagination"].get(field.as_str().unwrap()).is_some(),
            "pagination.{field}"
        );
    }
    let created: serde_json::Value = t
        .raw(reqwest::Method::POST, "/api/v2/agents")
        .json(&json!({"name": "y"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string());
}
