//! Listing, reading, paging, feedback and export of conversations.

use agentbase_client::ListParams;
use agentbase_client::types::FeedbackValue;
use futures_util::StreamExt;
use serde_json::json;

use crate::{official_spec, outcome, spawn};

#[tokio::test]
async fn conversation_lists_page_by_keyset_with_totals_and_null_final_cursors() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            t.say(&agent, None, &format!("c{i}"))
                .await
                .data
                .metadata
                .conversation_id,
        );
        t.clock.advance_ms(1_000);
    }
    ids.reverse();
    let p1 = t
        .client
        .list_conversations(
            &agent,
            &ListParams {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (p1.data.len(), p1.pagination.has_more, p1.pagination.total),
        (2, true, 5)
    );
    let mut seen: Vec<String> = p1.data.iter().map(|c| c.id.clone()).collect();
    let mut cursor = p1.pagination.cursor.clone();
    while let Some(c) = cursor {
        let p = t
            .client
            .list_conversations(
                &agent,
                &ListParams {
                    limit: Some(2),
                    cursor: Some(c),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            p.pagination.cursor.is_none(),
            !p.pagination.has_more,
            "cursor is null exactly when hasMore is false"
        );
        seen.extend(p.data.iter().map(|c| c.id.clone()));
        cursor = p.pagination.cursor;
    }
    assert_eq!(seen, ids, "newest first");
    let streamed: Vec<String> = t
        .client
        .conversations(&agent, ListParams::default())
        .map(|c| c.unwrap().id)
        .collect()
        .await;
    assert_eq!(streamed, ids, "the pagination stream walks every page");

    let bad = t
        .raw(
            reqwest::Method::GET,
            &format!("/api/v2/agents/{agent}/conversations?limit=0"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(bad).await.1.as_deref(),
        Some("VALIDATION_INVALID_BODY")
    );
    let other = t
        .raw(reqwest::Method::GET, "/api/v2/agents/nope/conversations")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(other).await.1.as_deref(), Some("AGENT_NOT_FOUND"));
}

#[tokio::test]
async fn date_filters_accept_dates_and_datetimes_and_refuse_inverted_windows() {
    let t = spawn().await;
    // 2024-01-15T10:30:00Z, then the next day.
    t.clock.set(1_705_314_600_000);
    let agent = t.scripted_agent().await;
    let first = t
        .say(&agent, None, "monday")
        .await
        .data
        .metadata
        .conversation_id;
    t.clock.advance_ms(86_400_000);
    let second = t
        .say(&agent, None, "tuesday")
        .await
        .data
        .metadata
        .conversation_id;
    let list = |start: Option<&str>, end: Option<&str>| {
        let params = ListParams {
            start_date: start.map(Into::into),
            end_date: end.map(Into::into),
            ..Default::default()
        };
        let c = t.client.clone();
        let agent = agent.clone();
        async move {
            c.list_conversations(&agent, &params)
                .await
                .map(|p| p.data.into_iter().map(|c| c.id).collect::<Vec<_>>())
        }
    };
    assert_eq!(
        list(Some("2024-01-15"), Some("2024-01-15")).await.unwrap(),
        vec![first.clone()],
        "endDate includes its whole day"
    );
    assert_eq!(
        list(Some("2024-01-16"), None).await.unwrap(),
        vec![second.clone()]
    );
    assert_eq!(
        list(None, Some("2024-01-15T10:30:00Z")).await.unwrap(),
        vec![first.clone()]
    );
    assert_eq!(
        list(Some("2024-01-15T10:30:00.001Z"), None).await.unwrap(),
        vec![second.clone()]
    );
    let inverted = list(Some("2024-01-16"), Some("2024-01-15"))
        .await
        .unwrap_err();
    assert_eq!(inverted.code(), Some("VALIDATION_INVALID_DATE_RANGE"));
    let garbage = list(Some("last week"), None).await.unwrap_err();
    assert_eq!(garbage.code(), Some("VALIDATION_INVALID_BODY"));
}

#[tokio::test]
async fn messages_page_backward_and_each_page_is_chronological() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let c = t
        .say(&agent, None, "m0")
        .await
        .data
        .metadata
        .conversation_id;
    for i in 1..12 {
        t.say(&agent, Some(&c), &format!("m{i}")).await;
    }
    let all: Vec<String> = t
        .app
        .record()
        .messages(&c)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(all.len(), 24);

    let got = t.client.get_conversation(&agent, &c).await.unwrap();
    assert_eq!(got.data.messages.len(), 20, "the newest page");
    assert_eq!(got.pagination.total, 24);
    let newest: Vec<_> = got.data.messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(newest, all[4..]);
    let cursor = got
        .pagination
        .cursor
        .clone()
        .expect("older messages remain");
    let older = t
        .client
        .list_messages(
            &agent,
            &c,
            &ListParams {
                cursor: Some(cursor),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let older_ids: Vec<_> = older.data.iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        older_ids,
        all[..4],
        "the cursor from get-conversation works on the messages endpoint"
    );
    assert_eq!(
        (older.pagination.has_more, older.pagination.cursor.clone()),
        (false, None)
    );

    let mut walked = Vec::new();
    let mut params = ListParams {
        limit: Some(5),
        ..Default::default()
    };
    loop {
        let page = t.client.list_messages(&agent, &c, &params).await.unwrap();
        let ids: Vec<_> = page.data.iter().map(|m| m.id.clone()).collect();
        let mut sorted = ids.clone();
        sorted.sort_by_key(|id| all.iter().position(|x| x == id));
        assert_eq!(ids, sorted, "each page is oldest → newest");
        walked.splice(0..0, ids);
        match page.pagination.cursor {
            Some(cur) => params.cursor = Some(cur),
            None => break,
        }
    }
    assert_eq!(walked, all);

    let msg = &got.data.messages[1];
    assert_eq!(msg.role, "assistant");
    let json = serde_json::to_value(msg).unwrap();
    assert_eq!(
        json["feedback"],
        serde_json::Value::Null,
        "assistant messages carry feedback"
    );
    assert_eq!(
        json["metadata"],
        json!({"score": null, "answeredBy": {"type": "ai"}}),
        "who answered (issue 16's handoff)"
    );
    let user_json = serde_json::to_value(&got.data.messages[0]).unwrap();
    assert!(user_json.get("feedback").is_none() && user_json.get("metadata").is_none());
    assert!(
        json["createdAt"].as_i64().unwrap() < 10_000_000_000,
        "Unix seconds"
    );
}

#[tokio::test]
async fn a_users_conversations_are_ordered_by_last_activity() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let start = |u: &str| agentbase_client::types::ChatRequest {
        message: Some("hi".into()),
        user_id: Some(u.into()),
        ..Default::default()
    };
    let old = t
        .client
        .chat(&agent, &start("u1"))
        .await
        .unwrap()
        .data
        .metadata
        .conversation_id;
    t.clock.advance_ms(1_000);
    let newer = t
        .client
        .chat(&agent, &start("u1"))
        .await
        .unwrap()
        .data
        .metadata
        .conversation_id;
    t.clock.advance_ms(1_000);
    t.client.chat(&agent, &start("someone-else")).await.unwrap();
    t.clock.advance_ms(1_000);
    t.say(&agent, Some(&old), "I'm back").await;
    let list = t
        .client
        .user_conversations(&agent, "u1", &ListParams::default())
        .await
        .unwrap();
    let ids: Vec<_> = list.data.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids, [old, newer]);
    assert_eq!(list.pagination.total, 2);
    let bad = t
        .raw(
            reqwest::Method::GET,
            &format!("/api/v2/agents/{agent}/users/bad%20id/conversations"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(bad).await.1.as_deref(),
        Some("VALIDATION_INVALID_BODY")
    );
}

#[tokio::test]
async fn feedback_is_set_and_cleared_on_assistant_messages_only() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t.say(&agent, None, "rate me").await;
    let (c, a, u) = (
        r.data.metadata.conversation_id.clone(),
        r.data.id.clone(),
        r.data.metadata.user_message_id.clone(),
    );
    let set = t
        .client
        .set_feedback(&agent, &c, &a, Some(FeedbackValue::Positive))
        .await
        .unwrap();
    assert_eq!(set.data.feedback, Some(Some("positive".into())));
    t.client
        .set_feedback(&agent, &c, &a, Some(FeedbackValue::Negative))
        .await
        .unwrap();
    let got = t.client.get_conversation(&agent, &c).await.unwrap();
    assert_eq!(got.data.messages[1].feedback, Some(Some("negative".into())));
    let cleared = t.client.set_feedback(&agent, &c, &a, None).await.unwrap();
    assert_eq!(cleared.data.feedback, Some(None));

    let on_user = t
        .client
        .set_feedback(&agent, &c, &u, Some(FeedbackValue::Positive))
        .await
        .unwrap_err();
    let agentbase_client::Error::Api(e) = on_user else {
        panic!()
    };
    assert_eq!(
        (e.status, e.code.as_str()),
        (422, "RESOURCE_MESSAGE_NOT_ASSISTANT")
    );
    let missing = t
        .client
        .set_feedback(&agent, &c, "msg_nope", None)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("RESOURCE_MESSAGE_NOT_FOUND"));

    let path = format!("/api/v2/agents/{agent}/conversations/{c}/messages/{a}/feedback");
    for (body, code) in [
        (json!({}), "VALIDATION_INVALID_BODY"),
        (json!({"feedback": "meh"}), "VALIDATION_INVALID_BODY"),
        (
            json!({"feedback": null, "extra": true}),
            "VALIDATION_INVALID_BODY",
        ),
    ] {
        let r = t
            .raw(reqwest::Method::PATCH, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(outcome(r).await.1.as_deref(), Some(code), "{body}");
    }
}

#[tokio::test]
async fn export_includes_messages_without_tool_inputs_or_only_summaries() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t
        .say(&agent, None, r#"[[tool:lookup {"secret": 1}]]"#)
        .await;
    let c = r.data.metadata.conversation_id.clone();
    t.say(&agent, None, "second").await;

    let full = t.client.export_conversations(&agent, "").await.unwrap();
    assert_eq!(full.data.len(), 2);
    let exported = full.data.iter().find(|e| e.conversation.id == c).unwrap();
    assert_eq!(exported.source.as_deref(), Some("API"));
    let parts = serde_json::to_value(&exported.messages.as_ref().unwrap()[1].parts).unwrap();
    assert_eq!(parts[0]["type"], "tool-call");
    assert!(
        parts[0].get("input").is_none(),
        "export tool-call parts have no input"
    );
    // A page's messages are read together; each conversation gets its own, in order.
    assert_eq!(exported.messages.as_ref().unwrap().len(), 2);
    let other = full.data.iter().find(|e| e.conversation.id != c).unwrap();
    let other = serde_json::to_value(other.messages.as_ref().unwrap()).unwrap();
    assert_eq!(other.as_array().unwrap().len(), 2, "{other}");
    assert_eq!(other[0]["role"], "user", "{other}");
    assert_eq!(other[0]["parts"][0]["text"], "second", "{other}");

    let summary = t
        .client
        .export_conversations(&agent, "include=summary")
        .await
        .unwrap();
    assert!(summary.data.iter().all(|e| e.messages.is_none()));
    let one = t
        .client
        .export_conversations(&agent, &format!("conversationId={c}"))
        .await
        .unwrap();
    assert_eq!(one.data.len(), 1);
    let by_source = t
        .client
        .export_conversations(&agent, "source=WhatsApp,Slack")
        .await
        .unwrap();
    assert!(by_source.data.is_empty());
    let too_many = t
        .client
        .export_conversations(&agent, "limit=21")
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Some("VALIDATION_INVALID_BODY"));
    let bad_include = t
        .client
        .export_conversations(&agent, "include=everything")
        .await
        .unwrap_err();
    assert_eq!(bad_include.code(), Some("VALIDATION_INVALID_BODY"));
}

#[tokio::test]
async fn conversation_responses_carry_every_field_the_official_schemas_require() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let c = t.say(&agent, None, "x").await.data.metadata.conversation_id;
    let spec = official_spec();
    let schemas = &spec["components"]["schemas"];
    let required = |name: &str| -> Vec<String> {
        schemas[name]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let list: serde_json::Value = t
        .raw(
            reqwest::Method::GET,
            &format!("/api/v2/agents/{agent}/conversations"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for f in required("ConversationMetadata") {
        assert!(
            list["data"][0].get(&f).is_some(),
            "ConversationMetadata.{f}"
        );
    }
    let one: serde_json::Value = t
        .raw(
            reqwest::Method::GET,
            &format!("/api/v2/agents/{agent}/conversations/{c}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for f in required("ConversationMessage") {
        assert!(
            one["data"]["messages"][0].get(&f).is_some(),
            "ConversationMessage.{f}"
        );
    }
    for f in required("ExportConversation") {
        let e: serde_json::Value = t
            .raw(
                reqwest::Method::GET,
                &format!("/api/v2/agents/{agent}/conversations/export"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(e["data"][0].get(&f).is_some(), "ExportConversation.{f}");
    }
}
