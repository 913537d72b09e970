//! The rest of the official Agent object and agent API: every settings field
//! round-trips through PUT/GET on both engines and does what it says (channel
//! instructions, spam, blocked countries, styles in the widget), create with
//! `url`, clone, conversation search, and the HTTP details official clients rely
//! on (non-object bodies, compressed bodies, `Allow`).

use std::io::Write;

use reqwest::Method;
use serde_json::{Value, json};

use crate::{TestApp, outcome, spawn, spawn_full, spawn_with};

/// A value for every settings field of the official `UpdateAgentBody`.
fn every_field() -> Value {
    json!({
        "name": "Every field",
        "instructions": "Base instructions.",
        "channelInstructions": {
            "api": "API instructions.",
            "chat_widget": {"chat": "Widget instructions.", "voice": "Speak slowly."},
            "slack": "Slack instructions."
        },
        "model": "scripted",
        "temp": 0.4,
        "visibility": "public",
        "allowedDomains": ["example.com"],
        "suggestedMessages": [{"type": "single", "text": "Pricing?", "order": 1, "icon": null}],
        "initialMessages": ["Hello!"],
        "creditLimit": 100,
        "notificationsSettings": {
            "dailyLeadsCollected": {"active": false, "emails": []},
            "dailyConversations": {"active": true, "emails": ["ops@example.com", "a.b+c@mail.example.org"]}
        },
        "ipRateLimits": {"limit": 7, "timeframe": 60, "message": "Slow down"},
        "spamSettings": {"enabled": true, "prompt": "Ads for pills are spam."},
        "voiceSettings": {
            "voice": {"voiceName": "Corey", "speed": 1.1, "stability": 0.5, "similarity": 0.75, "instructions": "Calm."},
            "transcriber": {"model": "deepgram/nova-3", "language": "en", "minSilenceDuration": 0.75, "activationThreshold": 0.5},
            "recordings": {"enabled": true, "retentionDays": 30},
            "maxConcurrentSessions": 5,
            "maxCallDurationSeconds": 900,
            "maxDailyCallsPerUser": null,
            "model": "auto",
            "temperature": 0.2,
            "allowInterruptions": true,
            "allowTextInput": false,
            "endConversationAfterSilenceSeconds": 300,
            "initialMessage": "Hi there",
            "errorMessage": "Sorry"
        },
        "blockedCountries": ["RU", "KP"]
    })
}

async fn put(t: &TestApp, agent: &str, body: &Value) -> (u16, Option<String>, Value) {
    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}"))
        .json(body)
        .send()
        .await
        .unwrap();
    outcome(r).await
}

async fn get(t: &TestApp, agent: &str) -> Value {
    let r = t
        .raw(Method::GET, &format!("/api/v2/agents/{agent}"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = outcome(r).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Every field in, every field back, then `null` clears the nullable ones.
async fn round_trip(t: &TestApp) {
    let agent = t.scripted_agent().await;
    let body = every_field();
    let (status, _, answer) = put(t, &agent, &body).await;
    assert_eq!(status, 200, "{answer}");
    let got = get(t, &agent).await;
    for (k, v) in body.as_object().unwrap() {
        assert_eq!(&got[k], v, "{k} round-trips");
    }
    assert_eq!(got["styles"], json!({"chat": null, "centerStage": null}));

    let cleared = json!({
        "channelInstructions": null, "notificationsSettings": null, "spamSettings": null,
        "voiceSettings": null, "blockedCountries": null
    });
    assert_eq!(put(t, &agent, &cleared).await.0, 200);
    let got = get(t, &agent).await;
    for k in cleared.as_object().unwrap().keys() {
        assert_eq!(got[k], Value::Null, "{k} cleared");
    }
    assert_eq!(got["instructions"], "Base instructions.", "others kept");
}

#[tokio::test]
async fn every_official_agent_field_round_trips_on_sqlite() {
    round_trip(&spawn().await).await;
}

#[tokio::test]
async fn every_official_agent_field_round_trips_on_postgres() {
    let Some(url) = crate::sources::fresh_postgres().await else {
        return;
    };
    let t = spawn_full(
        |_| {},
        &agentbase_service::models::Providers::new(),
        None,
        Some(&url),
    )
    .await;
    round_trip(&t).await;
}

/// PUTs `body` on `agent`: it must be refused with each of `fields` named.
async fn refused_naming(t: &TestApp, agent: &str, body: Value, fields: &[&str]) {
    let (status, code, body) = put(t, agent, &body).await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY")),
        "{body}"
    );
    let details = body["error"]["details"].as_object().unwrap();
    for field in fields {
        assert!(details.contains_key(*field), "{field} in {details:?}");
    }
}

#[tokio::test]
async fn bad_settings_are_refused_with_every_field_named() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let body = json!({
        "channelInstructions": {"fax": "x"},
        "notificationsSettings": {"dailyConversations": {"active": true, "emails": ["not-an-address"]}},
        "spamSettings": {"enabled": "yes"},
        "voiceSettings": {"voice": {"voiceName": "Nobody"}},
        "blockedCountries": ["USA"]
    });
    let fields = [
        "channelInstructions.fax",
        "notificationsSettings.dailyLeadsCollected",
        "notificationsSettings.dailyConversations.emails[0]",
        "spamSettings.enabled",
        "spamSettings.prompt",
        "voiceSettings.voice.voiceName",
        "blockedCountries[0]",
    ];
    refused_naming(&t, &agent, body, &fields).await;
    // What every visitor is shown is bounded, and names and codes are text.
    let body = json!({
        "name": "\u{0}",
        "blockedCountries": ["\u{0}\u{0}", "u1"],
        "initialMessages": ["x".repeat(2_001), ""],
        "suggestedMessages": vec![json!({"type": "single", "text": "hi", "order": 0}); 51],
        "allowedDomains": vec!["a.example"; 101],
        "ipRateLimits": {"limit": 5, "timeframe": 60, "message": "m".repeat(2_001)}
    });
    let fields = [
        "name",
        "blockedCountries[0]",
        "blockedCountries[1]",
        "initialMessages[0]",
        "initialMessages[1]",
        "suggestedMessages",
        "allowedDomains",
        "ipRateLimits.message",
    ];
    refused_naming(&t, &agent, body, &fields).await;
    let body = json!({"initialMessages": vec!["Hi"; 21],
                      "suggestedMessages": [{"type": "single", "text": "q".repeat(2_001), "order": 0}],
                      "allowedDomains": ["d".repeat(254)]});
    let fields = ["initialMessages", "suggestedMessages[0]", "allowedDomains"];
    refused_naming(&t, &agent, body, &fields).await;
    // At the bounds, it is taken.
    let (status, _, body) = put(
        &t,
        &agent,
        &json!({"initialMessages": vec!["x".repeat(2_000); 20],
                "allowedDomains": vec!["a.example"; 100], "blockedCountries": ["kp"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Fields outside the contract keep their 400, named.
    let (status, code, body) = put(&t, &agent, &json!({"colour": "red"})).await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY"))
    );
    assert!(body.to_string().contains("colour"), "{body}");
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_refused() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    for body in ["[null, null]", "null", "7", "\"x\"", "[]"] {
        let r = t
            .raw(Method::PUT, &format!("/api/v2/agents/{agent}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, code, _) = outcome(r).await;
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("VALIDATION_INVALID_BODY")),
            "{body}"
        );
    }
    let r = t
        .raw(Method::POST, "/api/v2/agents")
        .body("[{\"name\": \"x\"}]")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(r).await.1.as_deref(),
        Some("VALIDATION_INVALID_BODY")
    );
}

fn text_part(p: &agentbase_client::types::MessagePart) -> String {
    match p {
        agentbase_client::types::MessagePart::Text { text } => text.clone(),
        _ => String::new(),
    }
}

/// What the scripted model was told: `[[system]]` answers with the system prompt.
async fn system_prompt_via_api(t: &TestApp, agent: &str) -> String {
    t.say(agent, None, "[[system]]")
        .await
        .data
        .parts
        .iter()
        .map(text_part)
        .collect::<String>()
}

#[tokio::test]
async fn a_channels_instructions_replace_the_agents_for_its_conversations() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let settings = json!({
        "instructions": "BASE-RULES",
        "visibility": "public",
        "channelInstructions": {"api": "API-RULES", "chat_widget": {"chat": "WIDGET-RULES"}}
    });
    assert_eq!(put(&t, &agent, &settings).await.0, 200);
    let api = system_prompt_via_api(&t, &agent).await;
    assert!(
        api.contains("API-RULES") && !api.contains("BASE-RULES"),
        "{api}"
    );

    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/chat")))
        .json(&json!({"message": "[[system]]", "visitorId": "v_channel_01"}))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(
        body.contains("WIDGET-RULES") && !body.contains("BASE-RULES"),
        "{body}"
    );

    // Without an entry for the channel, the agent's instructions apply.
    let settings = json!({"channelInstructions": {"slack": "SLACK-RULES"}});
    assert_eq!(put(&t, &agent, &settings).await.0, 200);
    let api = system_prompt_via_api(&t, &agent).await;
    assert!(api.contains("BASE-RULES"), "{api}");
}

#[tokio::test]
async fn spam_is_stored_and_flagged_but_not_answered_or_charged() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let spam = json!({"spamSettings": {"enabled": true, "prompt": "Adverts are spam."}});
    assert_eq!(put(&t, &agent, &spam).await.0, 200);

    // The scripted classifier answers what the message asks it to: SPAM.
    let answer = t.say(&agent, None, "[[reply:SPAM]] cheap pills here").await;
    assert_eq!(
        answer.data.parts.iter().map(text_part).collect::<String>(),
        "",
        "spam gets no answer"
    );
    let conversation = answer.data.metadata.conversation_id.clone();
    let r = t
        .raw(
            Method::GET,
            &format!("/api/v2/agents/{agent}/conversations/{conversation}"),
        )
        .send()
        .await
        .unwrap();
    let (_, _, c) = outcome(r).await;
    let c = &c["data"];
    assert_eq!(c["status"], "paused", "{c}");
    let messages = c["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "only the user's message: {c}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["metadata"]["spam"], true, "{c}");
    assert_eq!(get(&t, &agent).await["creditsUsed"], 0, "no credits");

    // An ordinary message is classified NOT spam and answered.
    let answer = t.say(&agent, None, "hello there").await;
    assert_eq!(
        answer.data.parts.iter().map(text_part).collect::<String>(),
        "Echo: hello there"
    );
    assert_eq!(get(&t, &agent).await["creditsUsed"], 1);

    // Detection off: the same message is answered.
    let off = json!({"spamSettings": {"enabled": false, "prompt": ""}});
    assert_eq!(put(&t, &agent, &off).await.0, 200);
    let answer = t.say(&agent, None, "[[reply:SPAM]] cheap pills here").await;
    assert_eq!(
        answer.data.parts.iter().map(text_part).collect::<String>(),
        "SPAM"
    );
}

#[tokio::test]
async fn a_visitor_from_a_blocked_country_is_refused_by_the_widget() {
    let t = spawn_with(|s| s.widget.country_header = "CF-IPCountry".into()).await;
    let agent = t.scripted_agent().await;
    let settings = json!({"visibility": "public", "blockedCountries": ["KP", "ru"]});
    assert_eq!(put(&t, &agent, &settings).await.0, 200);
    let config = |country: &'static str| {
        reqwest::Client::new()
            .get(t.url(&format!("/widget/v1/agents/{agent}/config")))
            .header("CF-IPCountry", country)
            .send()
    };
    for blocked in ["KP", "RU", "kp"] {
        let (status, code, _) = outcome(config(blocked).await.unwrap()).await;
        assert_eq!(
            (status, code.as_deref()),
            (403, Some("WIDGET_COUNTRY_BLOCKED")),
            "{blocked}"
        );
    }
    assert_eq!(config("US").await.unwrap().status(), 200);
    let r = reqwest::Client::new()
        .post(t.url(&format!("/widget/v1/agents/{agent}/chat")))
        .header("CF-IPCountry", "KP")
        .json(&json!({"message": "hi", "visitorId": "v_blocked_01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(r).await.1.as_deref(),
        Some("WIDGET_COUNTRY_BLOCKED")
    );

    // A server that reads no country header lets the visitor in.
    let open = spawn().await;
    let agent = open.scripted_agent().await;
    assert_eq!(put(&open, &agent, &settings).await.0, 200);
    let r = reqwest::Client::new()
        .get(open.url(&format!("/widget/v1/agents/{agent}/config")))
        .header("CF-IPCountry", "KP")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn styles_are_merged_stored_and_served_to_the_widget() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    assert_eq!(
        put(&t, &agent, &json!({"visibility": "public"})).await.0,
        200
    );
    let styles = |body: Value| {
        t.raw(Method::PUT, &format!("/api/v2/agents/{agent}/styles"))
            .json(&body)
            .send()
    };
    let first = json!({"styles": {"chat": {"buttonColor": "#FF0000", "headerColor": "#00ff00",
        "alignChatButton": "left", "displayName": "Helper", "theme": "dark"}}});
    let (status, _, body) = outcome(styles(first).await.unwrap()).await;
    assert_eq!((status, &body), (200, &json!({"success": true})), "{body}");
    let second = json!({"styles": {"chat": {"theme": null, "userMessageColor": "#123"},
        "centerStage": {"enabled": true, "width": "large"}}});
    assert_eq!(styles(second).await.unwrap().status(), 200);
    let expected = json!({
        "chat": {"buttonColor": "#FF0000", "headerColor": "#00ff00", "alignChatButton": "left",
                 "displayName": "Helper", "userMessageColor": "#123"},
        "centerStage": {"enabled": true, "width": "large"}
    });
    assert_eq!(get(&t, &agent).await["styles"], expected);
    let r = reqwest::Client::new()
        .get(t.url(&format!("/widget/v1/agents/{agent}/config")))
        .send()
        .await
        .unwrap();
    let config: Value = r.json().await.unwrap();
    assert_eq!(config["data"]["styles"], expected);

    for bad in [
        json!({"styles": {"chat": {"buttonColor": "red"}}}),
        json!({"styles": {"chat": {"shadow": true}}}),
        json!({"styles": "dark"}),
        json!({}),
    ] {
        let (status, code, _) = outcome(styles(bad.clone()).await.unwrap()).await;
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("VALIDATION_INVALID_BODY")),
            "{bad}"
        );
    }
    let r = t
        .raw(Method::PUT, "/api/v2/agents/nope/styles")
        .json(&json!({"styles": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_clone_copies_settings_and_sources_but_not_conversations() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    assert_eq!(put(&t, &agent, &every_field()).await.0, 200);
    let r = t
        .raw(Method::POST, &format!("/api/v2/agents/{agent}/sources"))
        .json(&json!({"type": "text", "name": "Refunds", "content": "Refunds take 5 days."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    t.say(&agent, None, "hello").await;

    let r = t
        .raw(Method::POST, &format!("/api/v2/agents/{agent}/clone"))
        .send()
        .await
        .unwrap();
    let (status, _, created) = outcome(r).await;
    assert_eq!(status, 201, "{created}");
    let copy = created["id"].as_str().unwrap().to_owned();
    assert_ne!(copy, agent);
    // This server has no embedder: training cannot start, and the response says so.
    assert_eq!(created["pendingSteps"], json!(["TRAIN_AGENT"]));
    let (a, b) = (get(&t, &agent).await, get(&t, &copy).await);
    for k in every_field().as_object().unwrap().keys() {
        assert_eq!(a[k], b[k], "{k} copied");
    }
    assert_eq!(b["creditsUsed"], 0);
    let sources = t
        .raw(Method::GET, &format!("/api/v2/agents/{copy}/sources"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(sources["data"][0]["name"], "Refunds", "{sources}");
    let conversations = t
        .raw(Method::GET, &format!("/api/v2/agents/{copy}/conversations"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(conversations["data"], json!([]));
    let r = t
        .raw(Method::POST, "/api/v2/agents/nope/clone")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn creating_with_a_url_adds_a_website_source_that_trains_at_once() {
    let t = spawn().await;
    let r = t
        .raw(Method::POST, "/api/v2/agents")
        .json(&json!({"name": "From a site", "url": "https://example.com/docs"}))
        .send()
        .await
        .unwrap();
    let (status, _, created) = outcome(r).await;
    assert_eq!(status, 201, "{created}");
    // No embedder on this server: the source is added, training cannot start.
    assert_eq!(created["pendingSteps"], json!(["TRAIN_AGENT"]));
    let id = created["id"].as_str().unwrap();
    let jobs = t
        .raw(Method::GET, &format!("/api/v2/agents/{id}/training-jobs"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        jobs["data"].as_array().map(Vec::len),
        Some(1),
        "a training job: {jobs}"
    );
    let sources = t
        .raw(Method::GET, &format!("/api/v2/agents/{id}/sources"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(sources["data"][0]["type"], "link", "{sources}");

    let r = t
        .raw(Method::POST, "/api/v2/agents")
        .json(&json!({"name": "x", "url": "ftp://example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(r).await.1.as_deref(),
        Some("VALIDATION_INVALID_BODY")
    );
    // Without a url nothing is pending.
    let r = t
        .raw(Method::POST, "/api/v2/agents")
        .json(&json!({"name": "plain"}))
        .send()
        .await
        .unwrap();
    let (_, _, created) = outcome(r).await;
    assert!(created.get("pendingSteps").is_none(), "{created}");
}

#[tokio::test]
async fn conversations_are_searched_by_text_and_filters() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let mut ids = Vec::new();
    for (text, user) in [
        ("Where is my refund?", "alice"),
        ("Shipping times", "bob"),
        ("refund again", "bob"),
    ] {
        let r = t
            .raw(Method::POST, &format!("/api/v2/agents/{agent}/chat"))
            .json(&json!({"message": text, "userId": user, "stream": false}))
            .send()
            .await
            .unwrap();
        let (_, _, body) = outcome(r).await;
        ids.push(
            body["data"]["metadata"]["conversationId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        t.clock.advance_ms(1000);
    }
    let search = |q: &str| {
        t.raw(
            Method::GET,
            &format!("/api/v2/agents/{agent}/conversations/search?{q}"),
        )
        .send()
    };
    let found = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, _, all) = outcome(search("").await.unwrap()).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        found(&all),
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()],
        "most recent first"
    );
    assert_eq!(all["data"][0]["snippet"], Value::Null);
    assert_eq!(all["data"][0]["source"], "API");

    let (_, _, hits) = outcome(search("query=REFUND").await.unwrap()).await;
    assert_eq!(found(&hits), vec![ids[2].clone(), ids[0].clone()]);
    let snippet = &hits["data"][1]["snippet"];
    assert_eq!(snippet["speaker"], "user");
    assert!(
        snippet["highlights"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["isHit"] == true && h["value"] == "refund"),
        "{snippet}"
    );

    let (_, _, bob) = outcome(search("query=refund&userId=bob").await.unwrap()).await;
    assert_eq!(found(&bob), vec![ids[2].clone()]);
    let (_, _, page) = outcome(search("limit=2").await.unwrap()).await;
    assert_eq!(page["pagination"]["hasMore"], true);
    let cursor = page["pagination"]["cursor"].as_str().unwrap();
    let (_, _, rest) = outcome(search(&format!("limit=2&cursor={cursor}")).await.unwrap()).await;
    assert_eq!(found(&rest), vec![ids[0].clone()]);
    let (_, _, none) = outcome(search("sentiment=positive").await.unwrap()).await;
    assert_eq!(found(&none), Vec::<String>::new());
    let (_, _, unspecified) = outcome(
        search("sentiment=unspecified&activityState=ongoing")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(found(&unspecified).len(), 3);
    for bad in [
        "limit=26",
        "activityState=sleeping",
        "startDate=yesterday",
        "startDate=2030-01-02&endDate=2030-01-01",
    ] {
        let (status, _, body) = outcome(search(bad).await.unwrap()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn compressed_request_bodies_are_accepted_everywhere() {
    let t = spawn().await;
    let body = json!({"name": "Compressed"}).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(body.as_bytes()).unwrap();
    let mut br = Vec::new();
    {
        let mut w = brotli_writer(&mut br);
        w.write_all(body.as_bytes()).unwrap();
    }
    for (encoding, bytes) in [
        ("gzip", gz.finish().unwrap()),
        ("deflate", zlib.finish().unwrap()),
        ("br", br),
    ] {
        let r = t
            .raw(Method::POST, "/api/v2/agents")
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let (status, _, created) = outcome(r).await;
        assert_eq!(status, 201, "{encoding}: {created}");
    }
    let r = t
        .raw(Method::POST, "/api/v2/agents")
        .header("content-encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(r).await.1.as_deref(),
        Some("VALIDATION_INVALID_BODY")
    );
    let r = t
        .raw(Method::POST, "/api/v2/agents")
        .header("content-encoding", "zstd")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, code, _) = outcome(r).await;
    assert_eq!(
        (status, code.as_deref()),
        (415, Some("VALIDATION_UNSUPPORTED_ENCODING"))
    );
}

fn brotli_writer(out: &mut Vec<u8>) -> impl Write + '_ {
    brotli::CompressorWriter::new(out, 4096, 5, 22)
}

#[tokio::test]
async fn options_and_405_name_the_allowed_methods() {
    let t = spawn().await;
    let agent = t.scripted_agent().await;
    let allow = |r: &reqwest::Response| {
        let mut m: Vec<String> = r.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();
        m.sort();
        m
    };
    let r = t
        .raw(Method::OPTIONS, &format!("/api/v2/agents/{agent}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(allow(&r), ["DELETE", "GET", "HEAD", "OPTIONS", "PUT"]);
    let r = t
        .raw(Method::PATCH, &format!("/api/v2/agents/{agent}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(allow(&r), ["DELETE", "GET", "HEAD", "OPTIONS", "PUT"]);
    assert_eq!(outcome(r).await.1.as_deref(), Some("METHOD_NOT_ALLOWED"));
    let r = t
        .raw(Method::DELETE, "/api/v2/agents")
        .send()
        .await
        .unwrap();
    assert_eq!(allow(&r), ["GET", "HEAD", "OPTIONS", "POST"]);
    let r = reqwest::Client::new()
        .request(Method::OPTIONS, t.url("/v2/actor-runs/x/abort"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), allow(&r)),
        (204, vec!["OPTIONS".to_owned(), "POST".to_owned()])
    );
    // Unknown routes stay 404.
    let r = t
        .raw(Method::OPTIONS, "/api/v2/nothing")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// A MaxMind DB (format 2.0, IPv4, 24-bit records) mapping `prefix`/24 to
/// `country.iso_code` = `code`: the layout GeoLite2-Country files have, written
/// here so the test needs no download.
fn country_mmdb(prefix: [u8; 3], code: &str) -> Vec<u8> {
    fn string(s: &str) -> Vec<u8> {
        assert!(s.len() < 29);
        let mut v = vec![(2 << 5) | s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }
    fn map(n: u8) -> u8 {
        (7 << 5) | n
    }
    fn uint(kind: u8, value: u64, bytes: usize) -> Vec<u8> {
        let be = value.to_be_bytes();
        let mut v = match kind {
            5 | 6 => vec![(kind << 5) | bytes as u8],
            // uint64: an extended type (9 = 7 + 2).
            _ => vec![bytes as u8, 2],
        };
        v.extend_from_slice(&be[8 - bytes..]);
        v
    }
    let nodes: u32 = 24;
    let data_pointer = nodes + 16;
    let mut tree = Vec::new();
    for depth in 0..24 {
        let bit = (prefix[depth / 8] >> (7 - depth % 8)) & 1;
        let next = if depth == 23 {
            data_pointer
        } else {
            depth as u32 + 1
        };
        let (left, right) = match (depth, bit) {
            (23, _) => (next, next),
            (_, 0) => (next, nodes),
            _ => (nodes, next),
        };
        for r in [left, right] {
            tree.extend_from_slice(&r.to_be_bytes()[1..]);
        }
    }
    let mut out = tree;
    out.extend_from_slice(&[0; 16]);
    out.push(map(1));
    out.extend(string("country"));
    out.push(map(1));
    out.extend(string("iso_code"));
    out.extend(string(code));
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    out.push(map(9));
    for (k, v) in [
        ("node_count", uint(6, nodes.into(), 4)),
        ("record_size", uint(5, 24, 2)),
        ("ip_version", uint(5, 4, 2)),
        ("binary_format_major_version", uint(5, 2, 2)),
        ("binary_format_minor_version", uint(5, 0, 2)),
        ("build_epoch", uint(9, 1, 8)),
        ("database_type", string("Test-Country")),
    ] {
        out.extend(string(k));
        out.extend(v);
    }
    out.extend(string("languages"));
    out.extend_from_slice(&[1, 4]); // an array (extended type 11) of one
    out.extend(string("en"));
    out.extend(string("description"));
    out.push(map(1));
    out.extend(string("en"));
    out.extend(string("test"));
    out
}

#[tokio::test]
async fn a_geoip_database_places_visitors_when_no_header_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("country.mmdb");
    // The test's requests come from 127.0.0.1.
    std::fs::write(&db, country_mmdb([127, 0, 0], "KP")).unwrap();
    let path = db.display().to_string();
    let t = spawn_with(move |s| s.widget.geoip_database = path).await;
    let agent = t.scripted_agent().await;
    let config = || {
        reqwest::Client::new()
            .get(t.url(&format!("/widget/v1/agents/{agent}/config")))
            .send()
    };
    assert_eq!(
        put(&t, &agent, &json!({"visibility": "public"})).await.0,
        200
    );
    assert_eq!(config().await.unwrap().status(), 200, "nothing blocked yet");
    assert_eq!(
        put(&t, &agent, &json!({"blockedCountries": ["KP"]}))
            .await
            .0,
        200
    );
    let (status, code, _) = outcome(config().await.unwrap()).await;
    assert_eq!(
        (status, code.as_deref()),
        (403, Some("WIDGET_COUNTRY_BLOCKED"))
    );
    assert_eq!(
        put(&t, &agent, &json!({"blockedCountries": ["RU"]}))
            .await
            .0,
        200
    );
    assert_eq!(config().await.unwrap().status(), 200);
}

/// A workspace has at most `agents.max_per_workspace` agents by plan: creating or
/// cloning past it gets 403 `AGENT_LIMIT_REACHED`, and deleting one makes room. A
/// clone's sources count against the workspace's storage like any others.
#[tokio::test]
async fn agents_per_workspace_and_clones_are_bounded_by_the_plan() {
    let t = spawn_with(|s| {
        s.agents.max_per_workspace.standard = 2;
        s.knowledge.workspace_storage_limits.standard = 1_500;
    })
    .await;
    let first = t.scripted_agent().await;
    let r = t
        .raw(Method::POST, &format!("/api/v2/agents/{first}/sources"))
        .json(&json!({"type": "text", "name": "Big", "content": "b".repeat(1_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // The copy would hold 2,000 bytes of the workspace's 1,500.
    let clone = |agent: String| {
        t.raw(Method::POST, &format!("/api/v2/agents/{agent}/clone"))
            .send()
    };
    let (status, code, _) = outcome(clone(first.clone()).await.unwrap()).await;
    assert_eq!(
        (status, code.as_deref()),
        (422, Some("SOURCE_SIZE_LIMIT_EXCEEDED"))
    );
    let second = t.scripted_agent().await;
    let create = || {
        t.raw(Method::POST, "/api/v2/agents")
            .json(&json!({"name": "one too many"}))
            .send()
    };
    let (status, code, body) = outcome(create().await.unwrap()).await;
    assert_eq!(
        (status, code.as_deref()),
        (403, Some("AGENT_LIMIT_REACHED")),
        "{body}"
    );
    let (status, code, _) = outcome(clone(second.clone()).await.unwrap()).await;
    assert_eq!(
        (status, code.as_deref()),
        (403, Some("AGENT_LIMIT_REACHED"))
    );
    let r = t
        .raw(Method::DELETE, &format!("/api/v2/agents/{second}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (status, _, body) = outcome(create().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
}
