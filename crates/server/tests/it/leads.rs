//! Leads end to end: v1's `collectCustomerInformation` turns the form on, the
//! widget shows it in its config and takes the visitor's answers (checked, 4xx in
//! the envelope when wrong), the lead is stored with its conversation, listed by v1
//! `get-leads` with its date window and paging, exported as CSV with formula cells
//! neutralised, and sent to the webhooks as Chatbase's signed `leads.submit`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::webhooks::{create_hook, loopback_allowed, receiver, signature_ok, wait_for};
use crate::{TestApp, frames, outcome, spawn, spawn_with};

const VISITOR: &str = "v_lead_visitor_01";

/// A public scripted agent whose lead form asks for a name and a required email.
async fn lead_agent(t: &TestApp) -> String {
    let agent = t.scripted_agent().await;
    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}"))
        .json(&json!({"visibility": "public"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = t
        .raw(Method::POST, "/api/v1/update-chatbot-settings")
        .json(&json!({"chatbotId": agent, "collectCustomerInformation": {
            "title": "Stay in touch",
            "name": {"active": true, "label": "Your name"},
            "email": {"active": true, "label": "Email", "required": true},
            "phone": {"active": false, "label": "Phone"}
        }}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = outcome(r).await;
    assert_eq!(status, 200, "{body}");
    agent
}

/// A widget turn's conversation id.
async fn widget_conversation(t: &TestApp, agent: &str, visitor: &str) -> String {
    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/chat")))
        .json(&json!({"message": "hello", "visitorId": visitor}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let f = frames(&r.text().await.unwrap());
    f.last().unwrap()["messageMetadata"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn submit(t: &TestApp, agent: &str, body: Value) -> (u16, Option<String>, Value) {
    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/leads")))
        .json(&body)
        .send()
        .await
        .unwrap();
    outcome(r).await
}

async fn get_leads(t: &TestApp, query: &str) -> (u16, Value) {
    let r = t
        .raw(Method::GET, &format!("/api/v1/get-leads?{query}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn day(ms: i64) -> String {
    agentbase_core::time_fmt::iso8601(ms)[..10].to_owned()
}

#[tokio::test]
async fn a_visitors_lead_is_stored_listed_exported_and_sent_signed_as_leads_submit() {
    let (port, got) = receiver(|_| 200).await;
    let t = spawn_with(loopback_allowed).await;
    let agent = lead_agent(&t).await;
    let hook = create_hook(
        &t,
        &agent,
        &format!("http://127.0.0.1:{port}/hook"),
        &["leads.submit"],
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();

    // The widget learns the form from its config.
    let config: Value = reqwest::get(t.url(&format!("/widget/v1/agents/{agent}/config")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let form = &config["data"]["leadForm"];
    assert_eq!(form["title"], "Stay in touch");
    assert_eq!(form["email"]["required"], true);
    assert_eq!(form["phone"]["active"], false);
    assert_eq!(form["showAfterAnswers"], 1);

    let conversation = widget_conversation(&t, &agent, VISITOR).await;
    let (status, _, body) = submit(
        &t,
        &agent,
        json!({"visitorId": VISITOR, "conversationId": conversation,
               "name": " Ann Lee ", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // The webhook: Chatbase's body, byte for byte, and its signature.
    wait_for("leads.submit", || !got.lock().unwrap().is_empty()).await;
    let sent = got.lock().unwrap()[0].clone();
    assert!(signature_ok(&secret, &sent));
    let expected = json!({"eventType": "leads.submit", "chatbotId": agent, "payload": {
        "conversationId": conversation, "customerEmail": "ann@example.com",
        "customerName": "Ann Lee", "customerPhone": ""}});
    assert_eq!(sent.json(), expected);
    assert!(
        std::str::from_utf8(&sent.body)
            .unwrap()
            .starts_with(r#"{"eventType":"leads.submit","chatbotId":"#)
    );

    // Two more (one without a conversation), a second later each.
    t.clock.advance_ms(1_000);
    let (status, _, _) = submit(
        &t,
        &agent,
        json!({"visitorId": VISITOR, "email": "bob@example.com"}),
    )
    .await;
    assert_eq!(status, 201);
    t.clock.advance_ms(1_000);
    let (status, _, _) = submit(
        &t,
        &agent,
        json!({"visitorId": VISITOR, "name": "=HYPERLINK(\"http://evil\")", "email": "eve@example.com"}),
    )
    .await;
    assert_eq!(status, 201);

    let (status, body) = get_leads(&t, &format!("chatbotId={agent}")).await;
    assert_eq!(status, 200, "{body}");
    let leads = body["collectedCustomers"].as_array().unwrap();
    assert_eq!(leads.len(), 3);
    let ann = &leads[2];
    assert_eq!(ann["name"], "Ann Lee");
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["phone"], "");
    assert_eq!(ann["chatbot_id"], agent.as_str());
    assert_eq!(ann["account_id"], t.workspace_id.as_str());
    assert_eq!(ann["conversationId"], conversation.as_str());
    assert!(ann["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(leads[0]["email"], "eve@example.com", "newest first");

    // Paging.
    let (_, page2) = get_leads(&t, &format!("chatbotId={agent}&size=2&page=2")).await;
    assert_eq!(page2["collectedCustomers"].as_array().unwrap().len(), 1);
    assert_eq!(page2["collectedCustomers"][0]["email"], "ann@example.com");
    // The date window (both days included).
    let today = day(t.app.now());
    let tomorrow = day(t.app.now() + 86_400_000);
    let yesterday = day(t.app.now() - 86_400_000);
    for (query, n) in [
        (format!("startDate={today}&endDate={today}"), 3),
        (format!("startDate={tomorrow}"), 0),
        (format!("endDate={yesterday}"), 0),
        (format!("startDate={yesterday}&endDate={tomorrow}"), 3),
    ] {
        let (status, body) = get_leads(&t, &format!("chatbotId={agent}&{query}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["collectedCustomers"].as_array().unwrap().len(),
            n,
            "{query}"
        );
    }

    // CSV: a header row, one row per lead, formula-like cells made text.
    let r = t
        .raw(
            Method::GET,
            &format!("/api/v2/agents/{agent}/leads/export?startDate={today}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,name,email,phone,conversationId,createdAt");
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[1].contains(r#","'=HYPERLINK(""http://evil"")",eve@example.com,"#),
        "{csv}"
    );
    assert!(lines[3].contains(&format!("Ann Lee,ann@example.com,,{conversation},")));
    // The dashboard lists them and exports the same CSV.
    let op = crate::dashboard::sign_in(&t).await;
    let (status, page) = op
        .get(&format!(
            "/dashboard/w/{}/agents/{agent}/leads",
            t.workspace_id
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    for email in ["ann@example.com", "bob@example.com", "eve@example.com"] {
        assert!(
            page.contains(&format!("<span data-testid=\"lead-email\">{email}</span>")),
            "{page}"
        );
    }
    assert!(!page.contains("=HYPERLINK(\"http"), "names are escaped");
    let (status, dashboard_csv) = op
        .get(&format!(
            "/dashboard/w/{}/agents/{agent}/leads.csv",
            t.workspace_id
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(dashboard_csv, csv);
    // Every lead reached the webhook once.
    wait_for("three events", || got.lock().unwrap().len() >= 3).await;
}

/// The dashboard's Leads tab turns the lead form on and off and sets what it asks,
/// checked like v1's `collectCustomerInformation`; the widget's config follows.
#[tokio::test]
async fn the_lead_form_is_set_from_the_dashboard() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}"))
        .json(&json!({"visibility": "public"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let widget_form = || async {
        let r = reqwest::get(t.url(&format!("/widget/v1/agents/{agent}/config")))
            .await
            .unwrap();
        let (status, _, body) = outcome(r).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["leadForm"].clone()
    };
    assert_eq!(widget_form().await, Value::Null, "off by default");
    let op = crate::dashboard::sign_in(&t).await;
    let page_path = format!("/dashboard/w/{}/agents/{agent}/leads", t.workspace_id);
    let (_, page) = op.get(&page_path).await;
    assert!(
        page.contains("data-testid=\"lead-form-settings\""),
        "{page}"
    );
    let action = format!("/dashboard/w/{}/agents/{agent}/lead-form", t.workspace_id);
    let saved = op
        .post_and_follow(
            &action,
            &[
                ("title", "Stay in touch"),
                ("email", "1"),
                ("emailRequired", "1"),
                ("name", "1"),
                ("phoneRequired", "1"),
                ("showAfterAnswers", "2"),
            ],
        )
        .await;
    assert!(saved.contains("The lead form is on."), "{saved}");
    assert!(
        saved.contains("data-testid=\"lead-ask-email\" checked"),
        "shown as set"
    );
    let form = widget_form().await;
    assert_eq!(form["title"], "Stay in touch", "{form}");
    assert_eq!(
        (&form["email"]["active"], &form["email"]["required"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(
        (&form["name"]["active"], &form["name"]["required"]),
        (&json!(true), &json!(false))
    );
    // Required without being asked for means nothing.
    assert_eq!(form["phone"]["active"], false);
    assert_eq!(form["phone"]["required"], false);
    assert_eq!(form["showAfterAnswers"], 2);

    // Bad values come back as a message; the form stays as it was.
    for (field, value, says) in [
        ("showAfterAnswers", "soon", "whole number"),
        ("showAfterAnswers", "1000", "showAfterAnswers"),
        ("title", &"t".repeat(300), "title"),
    ] {
        let mut fields = vec![("email", "1"), (field, value)];
        if field != "title" {
            fields.push(("title", "x"));
        }
        let page = op.post_and_follow(&action, &fields).await;
        assert!(page.contains(says), "{field}={value}: {page}");
        assert_eq!(widget_form().await, form, "unchanged after {field}={value}");
    }

    // Asking for nothing turns it off.
    let saved = op.post_and_follow(&action, &[("title", "x")]).await;
    assert!(saved.contains("The lead form is off."), "{saved}");
    assert_eq!(widget_form().await, Value::Null);
}

#[tokio::test]
async fn bad_lead_input_is_refused_with_4xx_in_the_envelope() {
    let t = spawn().await;
    let agent = lead_agent(&t).await;
    let conversation = widget_conversation(&t, &agent, VISITOR).await;
    let plain = t.scripted_agent().await;
    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{plain}"))
        .json(&json!({"visibility": "public"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // (agent, body, status, code, field named)
    let ok = json!({"visitorId": VISITOR, "email": "a@b.example"});
    let with = |extra: Value| {
        let mut b = ok.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        (
            &plain,
            ok.clone(),
            400,
            "VALIDATION_INVALID_BODY",
            Some("form"),
        ),
        (
            &agent,
            json!({"visitorId": VISITOR, "name": "Ann"}),
            400,
            "VALIDATION_INVALID_BODY",
            Some("email"),
        ),
        (
            &agent,
            with(json!({"email": "not-an-email"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("email"),
        ),
        (
            &agent,
            with(json!({"email": "a@b.example\r\nBcc: x@y.example"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("email"),
        ),
        (
            &agent,
            with(json!({"phone": "+1 555 0100"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("phone"),
        ),
        (
            &agent,
            with(json!({"name": "x".repeat(101)})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("name"),
        ),
        (
            &agent,
            with(json!({"name": "a\u{0}b"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("name"),
        ),
        (
            &agent,
            with(json!({"visitorId": "short"})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("visitorId"),
        ),
        (
            &agent,
            with(json!({"email": 5})),
            400,
            "VALIDATION_INVALID_BODY",
            Some("email"),
        ),
        (
            &agent,
            with(json!({"company": "x"})),
            400,
            "VALIDATION_INVALID_BODY",
            None,
        ),
        (
            &agent,
            json!({"email": "a@b.example"}),
            400,
            "VALIDATION_INVALID_BODY",
            Some("visitorId"),
        ),
        (&agent, json!([]), 400, "VALIDATION_INVALID_BODY", None),
        // Another visitor's conversation is not found, like a missing one.
        (
            &agent,
            with(json!({"visitorId": "v_someone_else_1", "conversationId": conversation})),
            404,
            "RESOURCE_NOT_FOUND",
            None,
        ),
        (
            &agent,
            with(json!({"conversationId": "00000000-0000-4000-8000-000000000000"})),
            404,
            "RESOURCE_NOT_FOUND",
            None,
        ),
        (
            "AAAAAAAAAAAAAAAAAAAAA",
            ok.clone(),
            404,
            "AGENT_NOT_FOUND",
            None,
        ),
    ];
    for (agent_id, body, status, code, field) in cases {
        let (got_status, got_code, got) = submit(&t, agent_id, body.clone()).await;
        assert_eq!(
            (got_status, got_code.as_deref()),
            (status, Some(code)),
            "{body}: {got}"
        );
        if let Some(f) = field {
            assert!(
                got["error"]["details"].get(f).is_some(),
                "{body} names {f}: {got}"
            );
        }
    }
    // Malformed JSON.
    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/leads")))
        .body("{\"visitorId\":")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(r).await.1.as_deref(),
        Some("VALIDATION_INVALID_JSON")
    );

    // v1: the lead form's own checks, and get-leads' query.
    for bad in [
        json!({"title": 42}),
        json!({"email": {"required": "yes"}}),
        json!({"phone": "on"}),
        json!({"showAfterAnswers": 1000}),
        json!({"nickname": {"active": true}}),
        json!("on"),
    ] {
        let r = t
            .raw(Method::POST, "/api/v1/update-chatbot-settings")
            .json(&json!({"chatbotId": agent, "collectCustomerInformation": bad}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    for query in [
        String::new(),
        format!("chatbotId={agent}&startDate=2024-1-1"),
        format!("chatbotId={agent}&endDate=yesterday"),
        format!("chatbotId={agent}&size=0"),
        format!("chatbotId={agent}&size=101"),
        format!("chatbotId={agent}&page=-1"),
    ] {
        let (status, body) = get_leads(&t, &query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["message"].is_string(), "v1's error shape: {body}");
    }
    let (status, _) = get_leads(&t, "chatbotId=AAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(status, 404);
    let r = t
        .raw(
            Method::GET,
            &format!("/api/v2/agents/{agent}/leads/export?endDate=2024-13-01"),
        )
        .send()
        .await
        .unwrap();
    let (status, code, _) = outcome(r).await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY"))
    );
    // Nothing above was stored.
    let (_, body) = get_leads(&t, &format!("chatbotId={agent}")).await;
    assert_eq!(body["collectedCustomers"], json!([]));
}
