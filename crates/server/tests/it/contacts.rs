//! Contacts end to end: v1's custom-attribute schema (types, coercion, archiving),
//! contacts listed with `page`/`per_page`, created in bulk (upserting by
//! `external_id`), read, updated and deleted in Chatbase's shapes, every bad input a
//! 4xx in v1's envelope; identity verification in the widget (HMAC-SHA256 of the
//! user id under the agent's secret) linking the visitor's conversations to the
//! user id, and the identified contact's attributes in the prompt the model gets.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::{TestApp, frames, spawn, spawn_with};

async fn call(t: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = t.raw(method, path);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn base(agent: &str) -> String {
    format!("/api/v1/chatbots/{agent}")
}

/// The agent's schema: plan (text), age (number), vip (boolean), since (date).
async fn with_schema(t: &TestApp, agent: &str) {
    for (name, kind) in [
        ("plan", "text"),
        ("age", "number"),
        ("vip", "boolean"),
        ("since", "date"),
    ] {
        let (status, body) = call(
            t,
            Method::POST,
            &format!("{}/custom-attributes", base(agent)),
            Some(json!({"name": name, "type": kind, "label": name.to_uppercase()})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

const CONTACT_KEYS: [&str; 9] = [
    "created_at",
    "custom_attributes",
    "email",
    "external_id",
    "id",
    "name",
    "phonenumber",
    "stripe_accounts",
    "updated_at",
];

#[tokio::test]
async fn custom_attributes_are_created_listed_and_archived_in_chatbases_shape() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let attrs = format!("{}/custom-attributes", base(&agent));
    let (status, body) = call(
        &t,
        Method::POST,
        &attrs,
        Some(json!({"name": "plan_tier", "type": "text", "label": "Plan", "description": "Billing plan"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": "Success", "data": {"name": "plan_tier", "label": "Plan", "type": "text",
            "description": "Billing plan", "archived": false}})
    );
    // The label defaults to the name (optional in the API reference).
    let (status, body) = call(
        &t,
        Method::POST,
        &attrs,
        Some(json!({"name": "score", "type": "number"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["label"], "score");
    let (status, body) = call(
        &t,
        Method::PUT,
        &format!("{attrs}/score"),
        Some(json!({"archived": true, "label": "Score"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"name": "score", "label": "Score", "type": "number", "description": null, "archived": true})
    );
    let (status, body) = call(&t, Method::GET, &attrs, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["message"], "Success");
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plan_tier", "score"], "archived ones are listed");
    // A name in use is a conflict.
    let (status, body) = call(
        &t,
        Method::POST,
        &attrs,
        Some(json!({"name": "score", "type": "text"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["message"], "Custom attribute already exists");
}

#[tokio::test]
async fn contacts_are_created_read_updated_and_deleted_in_chatbases_shapes() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    with_schema(&t, &agent).await;
    let contacts = format!("{}/contacts", base(&agent));
    let (status, body) = call(
        &t,
        Method::POST,
        &contacts,
        Some(json!({"users": [
            {"external_id": "user-1", "name": "Ann", "email": "ann@example.com",
             "phonenumber": "+1234567890", "favourite_colour": "stripped",
             "stripe_accounts": [{"label": "main", "stripe_id": "cus_1"}],
             "custom_attributes": {"plan": "pro", "age": 41, "vip": "true",
                                   "since": "2024-01-15", "unknown": "stripped"}},
            {"external_id": "user-2", "custom_attributes": {"vip": 0}}
        ]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Success");
    let made = body["data"].as_array().unwrap();
    assert_eq!(made.len(), 2);
    let ann = &made[0];
    assert_eq!(keys(ann), CONTACT_KEYS.into());
    assert_eq!(ann["external_id"], "user-1");
    assert_eq!(ann["name"], "Ann");
    assert_eq!(ann["phonenumber"], "+1234567890");
    assert_eq!(
        ann["stripe_accounts"],
        json!([{"label": "main", "stripe_id": "cus_1"}])
    );
    // Types coerced as Chatbase does; keys outside the schema dropped.
    assert_eq!(
        ann["custom_attributes"],
        json!({"plan": "pro", "age": 41, "vip": true, "since": "2024-01-15T00:00:00.000Z"})
    );
    let created = ann["created_at"].as_i64().expect("Unix seconds");
    assert_eq!(created, t.app.now() / 1000);
    assert_eq!(made[1]["custom_attributes"], json!({"vip": false}));
    assert_eq!(made[1]["name"], Value::Null);
    let ann_id = ann["id"].as_str().unwrap().to_owned();

    // Read by external_id, and by the contact's own id.
    for key in ["user-1", ann_id.as_str()] {
        let (status, body) = call(&t, Method::GET, &format!("{contacts}/{key}"), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"message": "Success", "data": ann}));
    }

    // A partial update inside `data`: attributes merge, null removes one.
    t.clock.advance_ms(5000);
    let (status, body) = call(
        &t,
        Method::PATCH,
        &format!("{contacts}/user-1"),
        Some(json!({"data": {"name": "Ann B.", "phonenumber": null,
            "custom_attributes": {"age": 42, "plan": null}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let updated = &body["data"];
    assert_eq!(updated["name"], "Ann B.");
    assert_eq!(updated["email"], "ann@example.com");
    assert_eq!(updated["phonenumber"], Value::Null);
    assert_eq!(
        updated["custom_attributes"],
        json!({"age": 42, "vip": true, "since": "2024-01-15T00:00:00.000Z"})
    );
    assert_eq!(updated["updated_at"].as_i64(), Some(created + 5));
    assert_eq!(updated["created_at"].as_i64(), Some(created));

    // A bulk create naming an existing external_id updates that contact.
    let (status, body) = call(
        &t,
        Method::POST,
        &contacts,
        Some(json!({"users": [{"external_id": "user-2", "name": "Bo"}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], made[1]["id"]);
    assert_eq!(body["data"][0]["custom_attributes"], json!({"vip": false}));
    let (_, list) = call(&t, Method::GET, &contacts, None).await;
    assert_eq!(list["total"], 2);

    // Delete echoes the contact; then it is gone.
    let (status, body) = call(&t, Method::DELETE, &format!("{contacts}/{ann_id}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["external_id"], "user-1");
    let (status, body) = call(&t, Method::GET, &format!("{contacts}/user-1"), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], "Contact not found");
    let (status, _) = call(&t, Method::DELETE, &format!("{contacts}/user-1"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn contacts_page_through_with_per_page_and_total_pages() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let contacts = format!("{}/contacts", base(&agent));
    let (status, body) = call(&t, Method::GET, &contacts, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": "Success", "data": [], "total": 0,
               "pages": {"page": 1, "per_page": 100, "total_pages": 0}})
    );
    let users: Vec<Value> = (0..25)
        .map(|i| json!({"external_id": format!("u{i:02}")}))
        .collect();
    let (status, _) = call(&t, Method::POST, &contacts, Some(json!({"users": users}))).await;
    assert_eq!(status, 200);
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (status, body) = call(
            &t,
            Method::GET,
            &format!("{contacts}?page={page}&per_page=10"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total"], 25);
        assert_eq!(
            body["pages"],
            json!({"page": page, "per_page": 10, "total_pages": 3})
        );
        for c in body["data"].as_array().unwrap() {
            seen.push(c["external_id"].as_str().unwrap().to_owned());
        }
    }
    // Contacts of one bulk call share their creation time; pages are stable
    // (ordered by time, then id) and hold every contact exactly once.
    seen.sort();
    let expected: Vec<String> = (0..25).map(|i| format!("u{i:02}")).collect();
    assert_eq!(seen, expected, "every contact once");
    // Later contacts come after earlier ones.
    t.clock.advance_ms(1000);
    let (status, _) = call(
        &t,
        Method::POST,
        &contacts,
        Some(json!({"users": [{"external_id": "late"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = call(
        &t,
        Method::GET,
        &format!("{contacts}?page=3&per_page=10"),
        None,
    )
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 6);
    assert_eq!(body["data"][5]["external_id"], "late");
    let (status, body) = call(
        &t,
        Method::GET,
        &format!("{contacts}?page=4&per_page=10"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Invalid request parameters");
    assert_eq!(
        body["issues"],
        json!([{"field": "page", "message": "Page out of range"}])
    );
}

/// One bad request and the field its error must name.
struct Bad {
    method: Method,
    path: String,
    body: Option<String>,
    status: u16,
    field: Option<&'static str>,
}

fn bad(method: Method, path: String, body: &str, status: u16, field: Option<&'static str>) -> Bad {
    Bad {
        method,
        path,
        body: (!body.is_empty()).then(|| body.to_owned()),
        status,
        field,
    }
}

#[tokio::test]
async fn each_bad_contact_request_gets_a_4xx_in_v1s_envelope() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    with_schema(&t, &agent).await;
    let c = format!("{}/contacts", base(&agent));
    let a = format!("{}/custom-attributes", base(&agent));
    let (status, _) = call(
        &t,
        Method::POST,
        &c,
        Some(json!({"users": [{"external_id": "taken", "email": "taken@example.com"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &t,
        Method::PUT,
        &format!("{a}/since"),
        Some(json!({"archived": true})),
    )
    .await;
    assert_eq!(status, 200);
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"external_id": format!("u{i}")}))
        .collect();
    let too_many = json!({ "users": too_many }).to_string();
    let long_name = json!({"users": [{"external_id": "x", "name": "n".repeat(257)}]}).to_string();
    let long_text =
        json!({"users": [{"external_id": "x", "custom_attributes": {"plan": "p".repeat(2001)}}]})
            .to_string();
    let long_id = json!({"users": [{"external_id": "i".repeat(257)}]}).to_string();
    let post = Method::POST;
    let cases = vec![
        // List paging.
        bad(
            Method::GET,
            format!("{c}?per_page=5"),
            "",
            400,
            Some("per_page"),
        ),
        bad(
            Method::GET,
            format!("{c}?per_page=1001"),
            "",
            400,
            Some("per_page"),
        ),
        bad(
            Method::GET,
            format!("{c}?per_page=ten"),
            "",
            400,
            Some("per_page"),
        ),
        bad(Method::GET, format!("{c}?page=0"), "", 400, Some("page")),
        bad(Method::GET, format!("{c}?page=-1"), "", 400, Some("page")),
        // Bulk create: the body.
        bad(post.clone(), c.clone(), "{bad json", 400, None),
        bad(post.clone(), c.clone(), "[]", 400, Some("body")),
        bad(post.clone(), c.clone(), "{}", 400, Some("users")),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":{}}"#,
            400,
            Some("users"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[]}"#,
            400,
            Some("users"),
        ),
        bad(post.clone(), c.clone(), &too_many, 400, Some("users")),
        // Bulk create: each contact.
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":["x"]}"#,
            400,
            Some("users.0"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"name":"no id"}]}"#,
            400,
            Some("users.0.external_id"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":7}]}"#,
            400,
            Some("users.0.external_id"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"  "}]}"#,
            400,
            Some("users.0.external_id"),
        ),
        bad(
            post.clone(),
            c.clone(),
            &long_id,
            400,
            Some("users.0.external_id"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"a"},{"external_id":"a"}]}"#,
            400,
            Some("users.1.external_id"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","name":["Ann"]}]}"#,
            400,
            Some("users.0.name"),
        ),
        bad(
            post.clone(),
            c.clone(),
            &long_name,
            400,
            Some("users.0.name"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","email":"nope"}]}"#,
            400,
            Some("users.0.email"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","phonenumber":"call me"}]}"#,
            400,
            Some("users.0.phonenumber"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","stripe_accounts":{}}]}"#,
            400,
            Some("users.0.stripe_accounts"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","stripe_accounts":[{"stripe_id":"cus"}]}]}"#,
            400,
            Some("users.0.stripe_accounts.0.label"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","stripe_accounts":[{"label":"l"}]}]}"#,
            400,
            Some("users.0.stripe_accounts.0.stripe_id"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","custom_attributes":[]}]}"#,
            400,
            Some("users.0.custom_attributes"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","custom_attributes":{"age":"invalid"}}]}"#,
            400,
            Some("users.0.custom_attributes.age"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","custom_attributes":{"vip":"yes"}}]}"#,
            400,
            Some("users.0.custom_attributes.vip"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","custom_attributes":{"plan":5}}]}"#,
            400,
            Some("users.0.custom_attributes.plan"),
        ),
        bad(
            post.clone(),
            c.clone(),
            &long_text,
            400,
            Some("users.0.custom_attributes.plan"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","custom_attributes":{"since":"2024-01-15"}}]}"#,
            400,
            Some("users.0.custom_attributes.since"),
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","email":"TAKEN@example.com"}]}"#,
            409,
            None,
        ),
        bad(
            post.clone(),
            c.clone(),
            r#"{"users":[{"external_id":"x","email":"a@b.co"},{"external_id":"y","email":"A@b.co"}]}"#,
            409,
            None,
        ),
        // Read, update, delete.
        bad(Method::GET, format!("{c}/nobody"), "", 404, None),
        bad(Method::GET, format!("{c}/%00"), "", 404, None),
        bad(
            Method::PATCH,
            format!("{c}/nobody"),
            r#"{"data":{"name":"x"}}"#,
            404,
            None,
        ),
        bad(
            Method::PATCH,
            format!("{c}/taken"),
            r#"{"name":"x"}"#,
            400,
            Some("data"),
        ),
        bad(
            Method::PATCH,
            format!("{c}/taken"),
            r#"{"data":"x"}"#,
            400,
            Some("data"),
        ),
        bad(
            Method::PATCH,
            format!("{c}/taken"),
            r#"{"data":{"external_id":null}}"#,
            400,
            Some("external_id"),
        ),
        bad(
            Method::PATCH,
            format!("{c}/taken"),
            r#"{"data":{"custom_attributes":{"age":"42"}}}"#,
            400,
            Some("custom_attributes.age"),
        ),
        bad(
            Method::PATCH,
            format!("{c}/taken"),
            r#"{"data":{"custom_attributes":{"since":"2024-01-01"}}}"#,
            400,
            Some("custom_attributes.since"),
        ),
        bad(Method::PATCH, format!("{c}/taken"), "{bad json", 400, None),
        bad(Method::DELETE, format!("{c}/nobody"), "", 404, None),
        // Custom attributes.
        bad(
            post.clone(),
            a.clone(),
            r#"{"type":"text"}"#,
            400,
            Some("name"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":"x"}"#,
            400,
            Some("type"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":"x","type":"color"}"#,
            400,
            Some("type"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":"x","type":7}"#,
            400,
            Some("type"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":"1x","type":"text"}"#,
            400,
            Some("name"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":"a b","type":"text"}"#,
            400,
            Some("name"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":"email","type":"text"}"#,
            400,
            Some("name"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":5,"type":"text"}"#,
            400,
            Some("name"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":"x","type":"text","archived":"no"}"#,
            400,
            Some("archived"),
        ),
        bad(
            post.clone(),
            a.clone(),
            r#"{"name":"plan","type":"text"}"#,
            409,
            None,
        ),
        bad(
            Method::PUT,
            format!("{a}/nope"),
            r#"{"label":"x"}"#,
            404,
            None,
        ),
        bad(
            Method::PUT,
            format!("{a}/plan"),
            r#"{"type":"number"}"#,
            400,
            Some("type"),
        ),
        bad(
            Method::PUT,
            format!("{a}/plan"),
            r#"{"name":"other"}"#,
            400,
            Some("name"),
        ),
        bad(
            Method::PUT,
            format!("{a}/plan"),
            r#"{"label":""}"#,
            400,
            Some("label"),
        ),
        bad(
            Method::PUT,
            format!("{a}/plan"),
            r#"{"archived":1}"#,
            400,
            Some("archived"),
        ),
        bad(Method::PUT, format!("{a}/plan"), "[1]", 400, Some("body")),
        // An agent that is not there.
        bad(
            Method::GET,
            format!("{}/contacts", base("AAAAAAAAAAAAAAAAAAAAA")),
            "",
            404,
            None,
        ),
        bad(
            Method::GET,
            format!("{}/custom-attributes", base("AAAAAAAAAAAAAAAAAAAAA")),
            "",
            404,
            None,
        ),
    ];
    for case in cases {
        let mut rb = t.raw(case.method.clone(), &case.path);
        if let Some(b) = &case.body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.clone());
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let what = format!(
            "{} {} {:?}",
            case.method,
            case.path,
            case.body.as_deref().map(|b| &b[..b.len().min(120)])
        );
        assert_eq!(status, case.status, "{what}: {body}");
        assert!(
            body["message"].is_string() && body["code"].is_string(),
            "{what}: {body}"
        );
        if let Some(field) = case.field {
            let issues = body["issues"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: {body}"));
            assert!(
                issues.iter().any(|i| i["field"] == field),
                "{what}: expected an issue for {field}: {body}"
            );
        }
    }
    // Nothing bad was stored.
    let (_, list) = call(&t, Method::GET, &c, None).await;
    assert_eq!(list["total"], 1, "{list}");
    let (_, attrs) = call(&t, Method::GET, &a, None).await;
    assert_eq!(attrs["data"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn emails_are_unique_per_agent_whatever_their_case() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let other = t.scripted_agent().await;
    let make = |agent: String, id: &'static str, email: &'static str| {
        let t = &t;
        async move {
            call(
                t,
                Method::POST,
                &format!("{}/contacts", base(&agent)),
                Some(json!({"users": [{"external_id": id, "email": email}]})),
            )
            .await
        }
    };
    assert_eq!(make(agent.clone(), "a", "ann@example.com").await.0, 200);
    assert_eq!(make(agent.clone(), "b", "bo@example.com").await.0, 200);
    // The same email under another agent is fine.
    assert_eq!(make(other.clone(), "a", "ann@example.com").await.0, 200);
    let (status, body) = make(agent.clone(), "c", "Ann@Example.com").await;
    assert_eq!(status, 409);
    assert_eq!(body["message"], "Email already exists");
    let (status, body) = call(
        &t,
        Method::PATCH,
        &format!("{}/contacts/b", base(&agent)),
        Some(json!({"data": {"email": "ANN@example.com"}})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["message"], "Email already exists");
}

/// A public scripted agent with these instructions.
async fn public_agent(t: &TestApp, instructions: &str) -> String {
    let agent = t.scripted_agent().await;
    let (status, body) = call(
        t,
        Method::PUT,
        &format!("/api/v2/agents/{agent}"),
        Some(json!({"visibility": "public", "instructions": instructions})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    agent
}

/// A widget turn: the status, and (on 200) the answer's text and conversation id.
async fn widget_turn(t: &TestApp, agent: &str, body: Value) -> (u16, String, Value) {
    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/chat")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    if status != 200 {
        return (
            status,
            String::new(),
            serde_json::from_str(&text).unwrap_or(Value::Null),
        );
    }
    let f = frames(&text);
    let answer: String = f
        .iter()
        .filter(|e| e["type"] == "text-delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let conversation = f.last().unwrap()["messageMetadata"]["conversationId"].clone();
    (status, answer, conversation)
}

async fn secret(t: &TestApp, agent: &str, method: Method) -> String {
    let (status, body) = call(
        t,
        method,
        &format!("/api/v2/agents/{agent}/identity-verification"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["secret"].as_str().unwrap().to_owned()
}

async fn user_of(t: &TestApp, agent: &str, conversation: &Value) -> Value {
    let id = conversation.as_str().unwrap();
    let (status, body) = call(
        t,
        Method::GET,
        &format!("/api/v2/agents/{agent}/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["userId"].clone()
}

#[tokio::test]
async fn a_verified_visitor_gets_their_contacts_attributes_in_the_prompt() {
    let t = spawn().await;
    let agent = public_agent(
        &t,
        "Greet {{ name }} by name; they are on the {{plan}} plan. {{other}}",
    )
    .await;
    with_schema(&t, &agent).await;
    let (status, body) = call(
        &t,
        Method::POST,
        &format!("{}/contacts", base(&agent)),
        Some(
            json!({"users": [{"external_id": "user-42", "name": "Ann", "email": "ann@example.com",
            "custom_attributes": {"plan": "pro", "age": 41}}]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let secret = secret(&t, &agent, Method::GET).await;
    // The same secret on every ask until rotated.
    assert_eq!(secret, self::secret(&t, &agent, Method::GET).await);
    let hash = agentbase_core::contact::user_hash(&secret, "user-42");

    let (status, prompt, conversation) = widget_turn(
        &t,
        &agent,
        json!({"message": "[[system]]", "visitorId": "v_identity_01", "userId": "user-42",
               "userHash": hash, "userMetadata": {"company": "Acme"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        prompt.starts_with("Greet Ann by name; they are on the pro plan. {{other}}"),
        "{prompt}"
    );
    for fact in [
        "user id user-42",
        "- email: ann@example.com",
        "- age: 41",
        r#"(not verified): {"company":"Acme"}"#,
    ] {
        assert!(prompt.contains(fact), "{fact} in {prompt}");
    }
    // The conversation is the user's: listed under their id, continued from any
    // device that proves the same id, and not by an anonymous visitor.
    assert_eq!(user_of(&t, &agent, &conversation).await, "user-42");
    let (status, body) = call(
        &t,
        Method::GET,
        &format!("/api/v2/agents/{agent}/users/user-42/conversations"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], conversation);
    let (status, again, _) = widget_turn(
        &t,
        &agent,
        json!({"message": "[[reply:hello again]]", "visitorId": "v_other_device", "userId": "user-42",
               "userHash": hash, "conversationId": conversation}),
    )
    .await;
    assert_eq!((status, again.as_str()), (200, "hello again"));
    let (status, _, _) = widget_turn(
        &t,
        &agent,
        json!({"message": "hi", "visitorId": "v_identity_01", "conversationId": conversation}),
    )
    .await;
    assert_eq!(status, 404, "an anonymous visitor cannot continue it");
    // The contact's changes show in the next turn.
    let (status, _) = call(
        &t,
        Method::PATCH,
        &format!("{}/contacts/user-42", base(&agent)),
        Some(json!({"data": {"custom_attributes": {"plan": "enterprise"}}})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, prompt, _) = widget_turn(
        &t,
        &agent,
        json!({"message": "[[system]]", "visitorId": "v_identity_01", "userId": "user-42",
               "userHash": hash, "conversationId": conversation}),
    )
    .await;
    assert!(prompt.contains("on the enterprise plan"), "{prompt}");

    // The live feed and "talk to a person" are theirs the same way.
    let c = conversation.as_str().unwrap();
    let live = |query: String| {
        let url = t.url(&format!("/widget/v1/agents/{agent}/live?{query}"));
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    let anonymous = format!("visitorId=v_identity_01&conversationId={c}&wait=0");
    assert_eq!(live(anonymous.clone()).await, 404);
    let verified = format!("{anonymous}&userId=user-42&userHash={hash}");
    assert_eq!(live(verified).await, 200);
    let handoff = |body: Value| {
        let url = t.url(&format!("/widget/v1/agents/{agent}/handoff"));
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }
    };
    let visitor = json!({"visitorId": "v_identity_01", "conversationId": c});
    assert_eq!(handoff(visitor.clone()).await, 404);
    let mut verified = visitor;
    verified["userId"] = json!("user-42");
    verified["userHash"] = json!(hash);
    assert_eq!(handoff(verified).await, 200);
}

#[tokio::test]
async fn a_wrong_hash_leaves_the_visitor_anonymous_as_chatbase_does() {
    let t = spawn().await;
    let agent = public_agent(&t, "Greet {{name}} ({{plan}}).").await;
    with_schema(&t, &agent).await;
    let (status, _) = call(
        &t,
        Method::POST,
        &format!("{}/contacts", base(&agent)),
        Some(json!({"users": [{"external_id": "user-42", "name": "Ann"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let old = secret(&t, &agent, Method::GET).await;
    let old_hash = agentbase_core::contact::user_hash(&old, "user-42");
    let anonymous = |prompt: &str| prompt.starts_with("Greet  ().") && !prompt.contains("user-42");
    for hash in [
        agentbase_core::contact::user_hash(&old, "user-43"),
        agentbase_core::contact::user_hash("guessed", "user-42"),
        "not hex".to_owned(),
        String::new(),
    ] {
        let (status, prompt, conversation) = widget_turn(
            &t,
            &agent,
            json!({"message": "[[system]]", "visitorId": "v_anon_0001", "userId": "user-42", "userHash": hash}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(anonymous(&prompt), "{prompt}");
        assert_eq!(
            user_of(&t, &agent, &conversation).await,
            "widget-v_anon_0001"
        );
    }
    // A rotated secret: the old hash no longer verifies, the new one does.
    let new = secret(&t, &agent, Method::POST).await;
    assert_ne!(new, old);
    let (_, prompt, _) = widget_turn(
        &t,
        &agent,
        json!({"message": "[[system]]", "visitorId": "v_anon_0001", "userId": "user-42", "userHash": old_hash}),
    )
    .await;
    assert!(anonymous(&prompt), "{prompt}");
    let new_hash = agentbase_core::contact::user_hash(&new, "user-42");
    let (_, prompt, _) = widget_turn(
        &t,
        &agent,
        json!({"message": "[[system]]", "visitorId": "v_anon_0001", "userId": "user-42", "userHash": new_hash}),
    )
    .await;
    assert!(prompt.starts_with("Greet Ann ()."), "{prompt}");
    // A verified user with no contact is still verified, with empty fields.
    let stranger = agentbase_core::contact::user_hash(&new, "user-99");
    let (_, prompt, _) = widget_turn(
        &t,
        &agent,
        json!({"message": "[[system]]", "visitorId": "v_anon_0001", "userId": "user-99", "userHash": stranger}),
    )
    .await;
    assert!(
        prompt.starts_with("Greet  ().") && prompt.contains("user id user-99"),
        "{prompt}"
    );
}

#[tokio::test]
async fn malformed_identities_are_refused_in_the_envelope() {
    let t = spawn().await;
    let agent = public_agent(&t, "Hi.").await;
    let hash = |u: &str| agentbase_core::contact::user_hash("x", u);
    for (body, field) in [
        (json!({"userId": "user-1"}), "userHash"),
        (json!({"userHash": hash("user-1")}), "userId"),
        (
            json!({"userId": "widget-v_someone_01", "userHash": hash("widget-v_someone_01")}),
            "userId",
        ),
        (
            json!({"userId": "has space", "userHash": hash("has space")}),
            "userId",
        ),
        (
            json!({"userId": "u".repeat(129), "userHash": "00"}),
            "userId",
        ),
        (json!({"userId": 42, "userHash": "00"}), "userId"),
        (json!({"userId": "user-1", "userHash": ["00"]}), "userHash"),
        (
            json!({"userId": "user-1", "userHash": "00", "userMetadata": "acme"}),
            "userMetadata",
        ),
    ] {
        let mut body = body;
        body["message"] = json!("hi");
        body["visitorId"] = json!("v_malformed_1");
        let (status, _, error) = widget_turn(&t, &agent, body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert!(
            error["error"]["details"].get(field).is_some(),
            "{body}: names {field}: {error}"
        );
    }
}

#[tokio::test]
async fn the_secret_belongs_to_its_agent_and_workspace() {
    let t = spawn_with(|_| {}).await;
    let agent = t.scripted_agent().await;
    let other = t.scripted_agent().await;
    let a = secret(&t, &agent, Method::GET).await;
    let b = secret(&t, &other, Method::GET).await;
    assert_ne!(a, b);
    let (_, intruder) = t.other_workspace(agentbase_core::Plan::Standard).await;
    for method in [Method::GET, Method::POST] {
        let r = reqwest::Client::new()
            .request(
                method.clone(),
                t.url(&format!("/api/v2/agents/{agent}/identity-verification")),
            )
            .bearer_auth(&intruder)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method}");
    }
    assert_eq!(
        a,
        secret(&t, &agent, Method::GET).await,
        "not rotated by the intruder"
    );
}

#[tokio::test]
async fn another_workspaces_key_cannot_reach_contacts() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    with_schema(&t, &agent).await;
    let (status, _) = call(
        &t,
        Method::POST,
        &format!("{}/contacts", base(&agent)),
        Some(json!({"users": [{"external_id": "victim", "name": "Victim"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, intruder) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let c = format!("{}/contacts", base(&agent));
    for (method, path, body) in [
        (Method::GET, c.clone(), None),
        (
            Method::POST,
            c.clone(),
            Some(json!({"users": [{"external_id": "planted"}]})),
        ),
        (Method::GET, format!("{c}/victim"), None),
        (
            Method::PATCH,
            format!("{c}/victim"),
            Some(json!({"data": {"name": "pwned"}})),
        ),
        (Method::DELETE, format!("{c}/victim"), None),
        (
            Method::GET,
            format!("{}/custom-attributes", base(&agent)),
            None,
        ),
        (
            Method::PUT,
            format!("{}/custom-attributes/plan", base(&agent)),
            Some(json!({"archived": true})),
        ),
    ] {
        let mut rb = reqwest::Client::new()
            .request(method.clone(), t.url(&path))
            .bearer_auth(&intruder);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (status, body["message"].as_str()),
            (404, Some("Chatbot not found")),
            "{method} {path}"
        );
    }
    let (_, body) = call(&t, Method::GET, &format!("{c}/victim"), None).await;
    assert_eq!(body["data"]["name"], "Victim");
    let (_, body) = call(
        &t,
        Method::GET,
        &format!("{}/custom-attributes", base(&agent)),
        None,
    )
    .await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["archived"] == false)
    );
}

#[tokio::test]
async fn a_verified_visitor_sends_the_lead_form_for_their_own_conversation() {
    let t = spawn().await;
    let agent = public_agent(&t, "Hi.").await;
    let (status, body) = call(
        &t,
        Method::POST,
        "/api/v1/update-chatbot-settings",
        Some(json!({"chatbotId": agent, "collectCustomerInformation": {
            "email": {"active": true, "required": true}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let secret = secret(&t, &agent, Method::GET).await;
    let hash = agentbase_core::contact::user_hash(&secret, "user-7");
    let (status, _, conversation) = widget_turn(
        &t,
        &agent,
        json!({"message": "hi", "visitorId": "v_lead_ident_1", "userId": "user-7", "userHash": hash}),
    )
    .await;
    assert_eq!(status, 200);
    let lead = |body: Value| {
        let t = &t;
        let agent = agent.clone();
        async move {
            reqwest::Client::new()
                .post(t.url(&format!("/widget/v1/agents/{agent}/leads")))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Without the identity the conversation is not the visitor's.
    let anonymous = json!({"visitorId": "v_lead_ident_1", "conversationId": conversation,
                           "email": "ann@example.com"});
    assert_eq!(lead(anonymous.clone()).await, 404);
    let mut verified = anonymous;
    verified["userId"] = json!("user-7");
    verified["userHash"] = json!(hash);
    assert_eq!(lead(verified).await, 201);
}
