//! The knowledge base over HTTP: sources of every kind, training jobs, retrieval in
//! the chat turn (with citations), retrieval testing, and what each kind of bad
//! input gets. The embedder is the real all-MiniLM-L6-v2; the chat model is the
//! scripted one, whose `[[system]]` directive answers with the system prompt it was
//! given, so a test can see the knowledge retrieval put there.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::{TestApp, frames, outcome, spawn_knowledge};

const REFUNDS: &str = "# Refund policy\n\nCustomers can return any item within 30 days of delivery. \
Refunds are paid to the original card within five business days after the parcel reaches our \
warehouse in Rotterdam.\n\n## Exceptions\n\nGift cards and opened software cannot be refunded.";

const SHIPPING: &str = "# Shipping\n\nOrders ship from Rotterdam with PostNL. Standard delivery \
takes two to four days inside the Netherlands and up to ten days elsewhere in Europe.";

async fn post(t: &TestApp, path: &str, body: Value) -> (u16, Option<String>, Value) {
    outcome(t.raw(Method::POST, path).json(&body).send().await.unwrap()).await
}

async fn get(t: &TestApp, path: &str) -> (u16, Option<String>, Value) {
    outcome(t.raw(Method::GET, path).send().await.unwrap()).await
}

/// A multipart file upload (`name` when given, and `file`) to the agent's sources.
async fn upload(
    t: &TestApp,
    agent: &str,
    name: Option<&str>,
    file: reqwest::multipart::Part,
) -> (u16, Option<String>, Value) {
    let mut form = reqwest::multipart::Form::new();
    if let Some(name) = name {
        form = form.text("name", name.to_owned());
    }
    let r = t
        .raw(Method::POST, &format!("/api/v2/agents/{agent}/sources"))
        .multipart(form.part("file", file))
        .send()
        .await
        .unwrap();
    outcome(r).await
}

async fn text_source(t: &TestApp, agent: &str, name: &str, content: &str) -> String {
    let (status, code, body) = post(
        t,
        &format!("/api/v2/agents/{agent}/sources"),
        json!({"type": "text", "name": name, "content": content}),
    )
    .await;
    assert_eq!((status, code), (201, None), "{body}");
    assert_eq!(body["status"], "untrained");
    body["id"].as_str().unwrap().to_owned()
}

/// Polls a source until its status is `want` (training runs in the background).
async fn wait_status(t: &TestApp, agent: &str, source: &str, want: &str) -> Value {
    for _ in 0..300 {
        let (status, _, body) = get(t, &format!("/api/v2/agents/{agent}/sources/{source}")).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == want {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("source {source} never became {want}");
}

/// Waits until the agent answers from knowledge version `kb_version` or later.
async fn search(t: &TestApp, agent: &str, query: &str) -> Vec<Value> {
    let (status, code, body) = post(
        t,
        &format!("/api/v2/agents/{agent}/search"),
        json!({"query": query, "limit": 5}),
    )
    .await;
    assert_eq!((status, code), (200, None), "{body}");
    body["data"].as_array().unwrap().clone()
}

/// Search until the hits satisfy `ok` (snapshots switch in the background). Each
/// try lets a second pass on the manual clock, as it would while a client polls, so
/// cached agent rows (and their knowledge version) expire as they do in real time.
async fn search_until(
    t: &TestApp,
    agent: &str,
    query: &str,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..200 {
        t.clock.advance_ms(1_001);
        let hits = search(t, agent, query).await;
        if ok(&hits) {
            return hits;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("search for {query:?} never gave the expected hits");
}

#[tokio::test]
async fn a_text_source_trains_and_the_agent_answers_from_it_with_citations() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    let (_, _, a) = get(&t, &format!("/api/v2/agents/{agent}")).await;
    assert_eq!(a["status"], "untrained");
    assert_eq!(a["lastTrainedAt"], Value::Null);

    let refunds = text_source(&t, &agent, "Refund policy", REFUNDS).await;
    let shipping = text_source(&t, &agent, "Shipping", SHIPPING).await;
    let trained = wait_status(&t, &agent, &refunds, "trained").await;
    assert_eq!(trained["type"], "text");
    assert_eq!(trained["name"], "Refund policy");
    assert_eq!(trained["size"], REFUNDS.len());
    assert_eq!(trained["metadata"], Value::Null);
    wait_status(&t, &agent, &shipping, "trained").await;
    let (_, _, a) = get(&t, &format!("/api/v2/agents/{agent}")).await;
    assert_eq!(a["status"], "trained", "{a}");
    assert!(a["lastTrainedAt"].is_string());
    assert_eq!(a["size"], REFUNDS.len() + SHIPPING.len());

    // The training jobs show how they went.
    let (_, _, jobs) = get(&t, &format!("/api/v2/agents/{agent}/training-jobs")).await;
    let jobs = jobs["data"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(
        jobs.iter()
            .all(|j| j["status"] == "succeeded" && j["stage"] == "done")
    );
    assert!(
        jobs.iter()
            .all(|j| j["done"] == j["total"] && j["total"].as_i64() > Some(0))
    );

    // Retrieval testing ranks the refund chunk first for a refund question.
    let hits = search_until(&t, &agent, "how long until I get my money back?", |h| {
        !h.is_empty()
    })
    .await;
    assert_eq!(hits[0]["sourceId"], refunds.as_str(), "{hits:?}");
    assert_eq!(hits[0]["rank"], 1);
    assert_eq!(hits[0]["title"], "Refund policy");
    assert!(
        hits[0]["text"]
            .as_str()
            .unwrap()
            .contains("five business days")
    );
    assert!(hits[0]["relevance"].as_f64().unwrap() > 0.3, "{hits:?}");

    // A streamed answer carries the sources as AI SDK source chunks, before the text,
    // and the model was given the chunk with its source id.
    let (_, body) = t
        .stream_raw(
            &agent,
            json!({"message": "[[system]] How long do refunds take to reach my card?"}),
        )
        .await;
    let f = frames(&body);
    let kinds = crate::types(&f);
    let first_source = kinds
        .iter()
        .position(|k| k == "source-document")
        .expect("a source chunk");
    let first_text = kinds.iter().position(|k| k == "text-start").unwrap();
    assert!(first_source < first_text, "{kinds:?}");
    let doc = &f[first_source];
    assert_eq!(doc["sourceId"], refunds.as_str());
    assert_eq!(doc["title"], "Refund policy");
    assert_eq!(doc["mediaType"], "text/markdown");
    let text: String = f
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap())
        .collect();
    assert!(text.contains(&format!("source {refunds}")), "{text}");
    assert!(text.contains("five business days"), "{text}");

    // The stored answer keeps its citations and a confidence score.
    let conversation = f.last().unwrap()["messageMetadata"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _, c) = get(
        &t,
        &format!("/api/v2/agents/{agent}/conversations/{conversation}"),
    )
    .await;
    let answer = c["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .unwrap()
        .clone();
    let score = answer["metadata"]["score"].as_f64().unwrap();
    assert!(score > 0.3 && score <= 1.0, "{answer}");
    assert_eq!(
        answer["metadata"]["sources"][0]["sourceId"],
        refunds.as_str()
    );
}

#[tokio::test]
async fn with_nothing_relevant_the_agent_is_told_to_say_it_does_not_know() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    let refunds = text_source(&t, &agent, "Refund policy", REFUNDS).await;
    wait_status(&t, &agent, &refunds, "trained").await;
    search_until(&t, &agent, "refund", |h| !h.is_empty()).await;
    let (_, body) = t
        .stream_raw(
            &agent,
            json!({"message": "[[system]] What is the boiling point of liquid nitrogen?"}),
        )
        .await;
    let f = frames(&body);
    assert!(!crate::types(&f).iter().any(|k| k.starts_with("source-")));
    let text: String = f
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap())
        .collect();
    assert!(
        text.contains(agentbase_core::prompt::NO_KNOWLEDGE),
        "{text}"
    );
    assert!(!text.contains("Rotterdam"), "{text}");
}

#[tokio::test]
async fn updates_retrain_and_deletes_forget_at_once() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    let id = text_source(&t, &agent, "Refund policy", REFUNDS).await;
    wait_status(&t, &agent, &id, "trained").await;
    search_until(&t, &agent, "refund warehouse", |h| !h.is_empty()).await;

    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}/sources/{id}"))
        .json(&json!({"content": "Refunds are no longer offered. Every sale is final, including sales in Utrecht."}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = outcome(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "updated");
    wait_status(&t, &agent, &id, "trained").await;
    let hits = search_until(&t, &agent, "are refunds possible", |h| {
        h.first()
            .is_some_and(|h| h["text"].as_str().unwrap().contains("Utrecht"))
    })
    .await;
    assert!(
        hits.iter()
            .all(|h| !h["text"].as_str().unwrap().contains("Rotterdam"))
    );

    let r = t
        .raw(
            Method::DELETE,
            &format!("/api/v2/agents/{agent}/sources/{id}"),
        )
        .send()
        .await
        .unwrap();
    let (status, _, body) = outcome(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "deleted");
    assert_eq!(body["id"], id.as_str());
    search_until(&t, &agent, "are refunds possible", <[Value]>::is_empty).await;
    let (status, code, _) = get(&t, &format!("/api/v2/agents/{agent}/sources/{id}")).await;
    assert_eq!((status, code.as_deref()), (404, Some("SOURCE_NOT_FOUND")));
    let (_, _, a) = get(&t, &format!("/api/v2/agents/{agent}")).await;
    assert_eq!(a["size"], 0);
    assert_eq!(a["status"], "untrained");
}

#[tokio::test]
async fn qna_and_files_are_sources_too() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    let (status, _, qna) = post(
        &t,
        &format!("/api/v2/agents/{agent}/sources"),
        json!({"type": "qna", "name": "Opening hours", "questions": ["When are you open?", "Opening hours?"], "answer": "We are open Tuesday to Saturday, 9:00 to 17:30."}),
    )
    .await;
    assert_eq!(status, 201, "{qna}");
    assert_eq!(qna["type"], "qna");

    let html = "<html><head><title>Warranty</title></head><body><nav>Home | Shop</nav><main><h1>Warranty</h1><p>Every espresso machine carries a two year warranty covering the pump and the boiler, repaired free of charge in our Leiden workshop.</p></main></body></html>";
    let part = reqwest::multipart::Part::bytes(html.as_bytes().to_vec())
        .file_name("warranty.html")
        .mime_str("text/html")
        .unwrap();
    let (status, _, file) = upload(&t, &agent, Some("Warranty page"), part).await;
    assert_eq!(status, 201, "{file}");
    assert_eq!(file["type"], "file");
    assert_eq!(file["name"], "Warranty page");
    let file_id = file["id"].as_str().unwrap().to_owned();
    wait_status(&t, &agent, qna["id"].as_str().unwrap(), "trained").await;
    wait_status(&t, &agent, &file_id, "trained").await;
    let hits = search_until(&t, &agent, "who repairs a broken boiler?", |h| {
        h.first().is_some_and(|h| h["sourceId"] == file_id.as_str())
    })
    .await;
    assert!(!hits[0]["text"].as_str().unwrap().contains("Home | Shop"));
    // The snapshot holding both sources may still be loading (the file may have
    // trained first): wait for the Q&A to lead, as it must once both are served.
    search_until(&t, &agent, "what time do you open on saturday", |h| {
        h.first().is_some_and(|h| h["sourceId"] == qna["id"])
    })
    .await;

    // A corrupt file is refused with a clear error and the agent's data is untouched.
    let part =
        reqwest::multipart::Part::bytes(b"%PDF-1.7 garbage".to_vec()).file_name("broken.pdf");
    let (status, code, body) = upload(&t, &agent, Some("Broken"), part).await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY")),
        "{body}"
    );
    assert!(
        body["error"]["details"]["file"]
            .as_str()
            .unwrap()
            .contains("PDF"),
        "{body}"
    );
    let part = reqwest::multipart::Part::bytes(b"MZ".to_vec()).file_name("tool.exe");
    let (status, code, body) = upload(&t, &agent, None, part).await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY")),
        "{body}"
    );
    assert!(
        body["error"]["details"]["file"]
            .as_str()
            .unwrap()
            .contains("unsupported")
    );
    let (_, _, list) = get(&t, &format!("/api/v2/agents/{agent}/sources")).await;
    assert_eq!(list["pagination"]["total"], 2);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "trained")
    );
}

#[tokio::test]
async fn lists_page_filter_and_summarise() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    for i in 0..5 {
        text_source(
            &t,
            &agent,
            &format!("Handbook part {i}"),
            &format!("Chapter {i} of the handbook."),
        )
        .await;
        t.clock.advance_ms(5);
    }
    post(
        &t,
        &format!("/api/v2/agents/{agent}/sources"),
        json!({"type": "qna", "name": "FAQ", "questions": ["Why?"], "answer": "Because."}),
    )
    .await;
    let (_, _, page1) = get(&t, &format!("/api/v2/agents/{agent}/sources?limit=4")).await;
    assert_eq!(page1["pagination"]["total"], 6);
    assert_eq!(page1["pagination"]["hasMore"], true);
    assert_eq!(page1["data"][0]["name"], "FAQ", "newest first");
    let cursor = page1["pagination"]["cursor"].as_str().unwrap();
    let (_, _, page2) = get(
        &t,
        &format!("/api/v2/agents/{agent}/sources?limit=4&cursor={cursor}"),
    )
    .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 2);
    assert_eq!(page2["pagination"]["cursor"], Value::Null);
    assert_eq!(page2["pagination"]["hasMore"], false);
    let (_, _, texts) = get(
        &t,
        &format!("/api/v2/agents/{agent}/sources?type=text&name=PART%203"),
    )
    .await;
    assert_eq!(texts["pagination"]["total"], 1);
    assert_eq!(texts["data"][0]["name"], "Handbook part 3");
    let (_, _, notion) = get(
        &t,
        &format!("/api/v2/agents/{agent}/sources?type=notionPage"),
    )
    .await;
    assert_eq!(notion["pagination"]["total"], 0);
    let (status, code, _) = get(&t, &format!("/api/v2/agents/{agent}/sources?type=video")).await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY"))
    );

    let (_, _, s) = get(&t, &format!("/api/v2/agents/{agent}/sources/summary")).await;
    assert_eq!(s["texts"]["count"], 5);
    assert_eq!(s["qnas"]["count"], 1);
    assert_eq!(s["links"], json!({"count": 0, "size": 0}));
    assert_eq!(s["notionPages"], json!({"count": 0, "size": 0}));
    assert!(s["shouldRetrain"].is_boolean());
}

#[tokio::test]
async fn each_kind_of_bad_source_input_gets_its_error() {
    let t = spawn_knowledge(|s| s.knowledge.storage_limits.standard = 1_000).await;
    let agent = t.scripted_agent().await;
    let path = format!("/api/v2/agents/{agent}/sources");
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"type": "text", "name": "x"}),
            400,
            "VALIDATION_INVALID_BODY",
            "content",
        ),
        (
            json!({"type": "text", "name": "", "content": "y"}),
            400,
            "VALIDATION_INVALID_BODY",
            "name",
        ),
        (
            json!({"type": "video", "name": "x"}),
            400,
            "VALIDATION_INVALID_BODY",
            "type",
        ),
        (
            json!({"type": "qna", "name": "q", "questions": [], "answer": "a"}),
            400,
            "VALIDATION_INVALID_BODY",
            "questions",
        ),
        (
            json!({"type": "link", "url": "ftp://example.com", "linkType": "crawl"}),
            400,
            "VALIDATION_INVALID_BODY",
            "url",
        ),
        (
            json!({"type": "link", "url": "https://example.com", "linkType": "deep"}),
            400,
            "VALIDATION_INVALID_BODY",
            "linkType",
        ),
        (
            json!({"type": "text", "name": "big", "content": "z".repeat(1_001)}),
            422,
            "SOURCE_SIZE_LIMIT_EXCEEDED",
            "",
        ),
    ];
    for (body, status, code, field) in cases {
        let (s, c, b) = post(&t, &path, body.clone()).await;
        assert_eq!((s, c.as_deref()), (status, Some(code)), "{body} → {b}");
        if !field.is_empty() {
            assert!(b["error"]["details"][field].is_string(), "{body} → {b}");
        }
    }
    let r = t
        .raw(Method::POST, &path)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(r).await.1.as_deref(),
        Some("VALIDATION_INVALID_JSON")
    );

    text_source(&t, &agent, "Policy", "Refunds take five days.").await;
    let (s, c, _) = post(
        &t,
        &path,
        json!({"type": "text", "name": "Policy", "content": "Refunds take five days."}),
    )
    .await;
    assert_eq!((s, c.as_deref()), (409, Some("SOURCE_DUPLICATE")));
    // Over the plan's storage with what is there already.
    let (s, c, _) = post(
        &t,
        &path,
        json!({"type": "text", "name": "More", "content": "m".repeat(990)}),
    )
    .await;
    assert_eq!((s, c.as_deref()), (422, Some("SOURCE_SIZE_LIMIT_EXCEEDED")));

    let (s, c, _) = get(&t, &format!("{path}/no-such-source")).await;
    assert_eq!((s, c.as_deref()), (404, Some("SOURCE_NOT_FOUND")));
    let (s, c, _) = get(&t, "/api/v2/agents/no-such-agent/sources").await;
    assert_eq!((s, c.as_deref()), (404, Some("AGENT_NOT_FOUND")));
    let (s, c, b) = post(
        &t,
        &format!("/api/v2/agents/{agent}/search"),
        json!({"query": " "}),
    )
    .await;
    assert_eq!(
        (s, c.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY")),
        "{b}"
    );
    let (s, c, _) = post(
        &t,
        &format!("/api/v2/agents/{agent}/search"),
        json!({"query": "x", "limit": 0}),
    )
    .await;
    assert_eq!((s, c.as_deref()), (400, Some("VALIDATION_INVALID_BODY")));
    // A field of another kind.
    let id = text_source(&t, &agent, "Other", "Shipping takes two days.").await;
    let r = t
        .raw(Method::PUT, &format!("{path}/{id}"))
        .json(&json!({"answer": "no"}))
        .send()
        .await
        .unwrap();
    let (s, c, b) = outcome(r).await;
    assert_eq!(
        (s, c.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY")),
        "{b}"
    );
    assert!(b["error"]["details"]["answer"].is_string());
    let r = t
        .raw(Method::PUT, &format!("{path}/{id}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 400);
}

#[tokio::test]
async fn train_and_restore_are_no_ops_and_auto_retrain_needs_a_trained_agent() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    let (s, _, b) = post(&t, &format!("/api/v2/agents/{agent}/train"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        (b["success"].clone(), b["deprecated"].clone()),
        (json!(true), json!(true))
    );
    let put = |enabled: bool| {
        t.raw(Method::PUT, &format!("/api/v2/agents/{agent}/auto-retrain"))
            .json(&json!({"enabled": enabled}))
            .send()
    };
    let (s, c, _) = outcome(put(true).await.unwrap()).await;
    assert_eq!((s, c.as_deref()), (409, Some("AGENT_NOT_TRAINED")));
    let id = text_source(&t, &agent, "Policy", REFUNDS).await;
    wait_status(&t, &agent, &id, "trained").await;
    let (s, _, b) = outcome(put(true).await.unwrap()).await;
    assert_eq!((s, b), (200, json!({"success": true})));
    let (_, _, a) = get(&t, &format!("/api/v2/agents/{agent}")).await;
    assert_eq!(a["autoRetrain"], true);

    // A week later the agent's sources are retrained by the schedule.
    t.clock.advance_ms(7 * 24 * 3600 * 1000 + 1000);
    for _ in 0..200 {
        let (_, _, jobs) = get(&t, &format!("/api/v2/agents/{agent}/training-jobs")).await;
        if jobs["data"].as_array().unwrap().len() == 2 {
            let (s, _, _) = outcome(put(false).await.unwrap()).await;
            assert_eq!(s, 200);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the weekly retrain was not queued");
}

#[tokio::test]
async fn v1_chatbots_take_source_text_and_update_chatbot_data_replaces_it() {
    let t = spawn_knowledge(|_| {}).await;
    let (s, _, b) = post(
        &t,
        "/api/v1/create-chatbot",
        json!({"chatbotName": "Shop bot", "sourceText": REFUNDS}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let bot = b["chatbotId"].as_str().unwrap().to_owned();
    search_until(&t, &bot, "money back after a return", |h| {
        h.first()
            .is_some_and(|h| h["text"].as_str().unwrap().contains("five business days"))
    })
    .await;

    // The seed's upload_text_to_chatbase body: chatbotId and sourceText only.
    let (s, _, b) = post(
        &t,
        "/api/v1/update-chatbot-data",
        json!({"chatbotId": bot, "sourceText": SHIPPING}),
    )
    .await;
    assert_eq!((s, b.clone()), (200, json!({"chatbotId": bot})));
    search_until(&t, &bot, "money back after a return", |h| {
        !h.is_empty()
            && h.iter()
                .all(|h| h["text"].as_str().unwrap().contains("PostNL"))
    })
    .await;
    let (_, _, sources) = get(&t, &format!("/api/v2/agents/{bot}/sources")).await;
    assert_eq!(sources["pagination"]["total"], 1);

    let (s, _, b) = post(
        &t,
        "/api/v1/update-chatbot-settings",
        json!({"chatbotId": bot, "name": "Shop assistant", "instructions": "Be brief.", "visibility": "public", "styles": {"theme": "dark"}}),
    )
    .await;
    assert_eq!((s, b), (200, json!({"message": "Your changes are saved."})));
    let (_, _, list) = get(&t, "/api/v1/get-chatbots").await;
    let found = list["chatbots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == bot.as_str())
        .unwrap()
        .clone();
    assert_eq!(found["name"], "Shop assistant");
    assert_eq!(found["instructions"], "Be brief.");
    assert_eq!(found["visibility"], "public");
    assert!(found["initial_messages"].is_array());
    // The styles are kept (they are v2's `styles.chat`).
    let (_, _, agent) = get(&t, &format!("/api/v2/agents/{bot}")).await;
    assert_eq!(agent["styles"]["chat"]["theme"], "dark", "{agent}");

    // The contract's forms: suggested messages as strings, the domain switch.
    let (s, _, b) = post(
        &t,
        "/api/v1/update-chatbot-settings",
        json!({"chatbotId": bot, "suggestedMessages": ["What are your hours?", "Where do you ship?"],
               "domains": ["shop.example"], "onlyAllowOnAddedDomains": true,
               "styles": {"buttonColor": "#112233", "displayName": "Shop"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, _, agent) = get(&t, &format!("/api/v2/agents/{bot}")).await;
    assert_eq!(
        agent["suggestedMessages"],
        json!([{"type": "single", "text": "What are your hours?", "order": 0},
               {"type": "single", "text": "Where do you ship?", "order": 1}]),
        "{agent}"
    );
    assert_eq!(agent["allowedDomains"], json!(["shop.example"]));
    let chat = &agent["styles"]["chat"];
    assert_eq!(
        (&chat["theme"], &chat["buttonColor"], &chat["displayName"]),
        (&json!("dark"), &json!("#112233"), &json!("Shop")),
        "{agent}"
    );
    // Not only on the added domains: the widget runs everywhere.
    let (s, _, b) = post(
        &t,
        "/api/v1/update-chatbot-settings",
        json!({"chatbotId": bot, "onlyAllowOnAddedDomains": false}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, _, agent) = get(&t, &format!("/api/v2/agents/{bot}")).await;
    assert_eq!(agent["allowedDomains"], Value::Null, "{agent}");
    // A bad style is refused, named as the v1 body names it, and nothing is saved.
    let (s, _, b) = post(
        &t,
        "/api/v1/update-chatbot-settings",
        json!({"chatbotId": bot, "name": "Not saved", "styles": {"theme": "purple"}}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.to_string().contains("styles.theme"), "{b}");
    let (_, _, agent) = get(&t, &format!("/api/v2/agents/{bot}")).await;
    assert_eq!(agent["name"], "Shop assistant");

    // Bad input gets v1's error shape.
    let (s, c, b) = post(&t, "/api/v1/create-chatbot", json!({"chatbotName": "ab"})).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(c, None);
    assert_eq!(b["code"], "VALIDATION_INVALID_BODY");
    assert!(b["message"].is_string());
    let (s, _, b) = post(
        &t,
        "/api/v1/update-chatbot-data",
        json!({"chatbotId": "nope", "sourceText": "x"}),
    )
    .await;
    assert_eq!((s, b["code"].clone()), (404, json!("AGENT_NOT_FOUND")));
    let (s, _, b) = post(
        &t,
        "/api/v1/update-chatbot-settings",
        json!({"chatbotId": bot, "visibility": "secret"}),
    )
    .await;
    assert_eq!(
        (s, b["code"].clone()),
        (400, json!("VALIDATION_INVALID_BODY"))
    );

    let r = t
        .raw(
            Method::DELETE,
            &format!("/api/v1/delete-chatbot?chatbotId={bot}"),
        )
        .send()
        .await
        .unwrap();
    let (s, _, b) = outcome(r).await;
    assert_eq!((s, b), (200, json!({"message": "Deleted successfully"})));
    let r = t
        .raw(Method::DELETE, "/api/v1/delete-chatbot")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 400);
}

/// A fresh database on the PostgreSQL of AGENTBASE_TEST_POSTGRES_URL; `None` (skip)
/// only outside `scripts/test`.
pub(crate) async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let admin = match std::env::var("AGENTBASE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("AGENTBASE_TEST_REQUIRE_SERVICES").is_err(),
                "AGENTBASE_TEST_POSTGRES_URL is required when AGENTBASE_TEST_REQUIRE_SERVICES is set"
            );
            eprintln!("note: AGENTBASE_TEST_POSTGRES_URL unset; multi-node test skipped");
            return None;
        }
    };
    let db = format!(
        "agentbase_nodes_{}",
        agentbase_core::ids::alphanumeric(12).to_ascii_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    conn.close().await.ok();
    let i = admin.rfind('/').expect("a database path in the URL");
    Some(format!("{}/{db}", &admin[..i]))
}

#[tokio::test]
async fn two_nodes_on_one_postgres_answer_from_the_same_trained_knowledge() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let providers = agentbase_service::models::Providers::new();
    let lift = |s: &mut agentbase_service::Settings| s.rate_limit.requests = 1_000_000;
    let a = crate::spawn_full(lift, &providers, Some(crate::embedder()), Some(&url)).await;
    let b = crate::spawn_full(lift, &providers, Some(crate::embedder()), Some(&url)).await;
    let agent = a.scripted_agent().await;
    let id = text_source(&a, &agent, "Refund policy", REFUNDS).await;
    wait_status(&a, &agent, &id, "trained").await;

    // Node B never saw the training: it builds its snapshot from the chunks in the
    // record and ranks exactly as node A does.
    let question = "how long until I get my money back?";
    let from_b = search_until(&b, &agent, question, |h| !h.is_empty()).await;
    let from_a = search(&a, &agent, question).await;
    let ids = |hits: &[Value]| -> Vec<String> {
        hits.iter()
            .map(|h| h["chunkId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&from_a), ids(&from_b));
    assert_eq!(from_b[0]["sourceId"], id.as_str());

    // A change made through node B (trained by whichever node's worker takes the
    // job) reaches node A's answers.
    let r = b
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}/sources/{id}"))
        .json(&json!({"content": "Refunds now take ninety days and are paid in store credit at the Delft shop."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    search_until(&a, &agent, question, |h| {
        h.first()
            .is_some_and(|h| h["text"].as_str().unwrap().contains("Delft"))
    })
    .await;
    search_until(&b, &agent, question, |h| {
        h.first()
            .is_some_and(|h| h["text"].as_str().unwrap().contains("Delft"))
    })
    .await;
}

#[tokio::test]
async fn an_apify_dataset_imports_as_a_source_whose_pages_keep_their_urls() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    let items = json!([
        {"url": "https://docs.example.com/descaling", "crawl": {"httpStatusCode": 200},
         "metadata": {"title": "Descaling"}, "text": "", "markdown": "Descale the boiler every two months with citric acid."},
        {"url": "https://docs.example.com/grinding", "crawl": {"httpStatusCode": 200},
         "metadata": {"title": "Grinding"}, "text": "Grind the beans fine: a double shot takes twenty-five seconds."}
    ]);
    let part =
        reqwest::multipart::Part::bytes(items.to_string().into_bytes()).file_name("dataset.json");
    let (status, _, source) = upload(&t, &agent, Some("Apify run"), part).await;
    assert_eq!(status, 201, "{source}");
    let id = source["id"].as_str().unwrap().to_owned();
    wait_status(&t, &agent, &id, "trained").await;
    let hits = search_until(&t, &agent, "how often should I descale?", |h| !h.is_empty()).await;
    assert_eq!(hits[0]["url"], "https://docs.example.com/descaling");
    assert_eq!(hits[0]["title"], "Descaling");
    let (_, body) = t
        .stream_raw(
            &agent,
            json!({"message": "How fine should I grind the beans?"}),
        )
        .await;
    let f = frames(&body);
    let url = f
        .iter()
        .find(|c| c["type"] == "source-url")
        .expect("a source-url chunk");
    assert_eq!(url["sourceId"], id.as_str());
    assert!(
        url["url"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.example.com/")
    );
}

/// A docs site whose pages can be rewritten while the test runs.
pub(crate) async fn docs_site(
    pages: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
) -> std::net::SocketAddr {
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::get(
            move |axum::extract::Path(path): axum::extract::Path<String>| {
                let pages = pages.clone();
                async move {
                    let body = pages.lock().unwrap().get(&path).cloned();
                    match body {
                        Some(b) => axum::response::Html(b).into_response(),
                        None => axum::http::StatusCode::NOT_FOUND.into_response(),
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub(crate) fn html(title: &str, text: &str, links: &[&str]) -> String {
    let nav: String = links
        .iter()
        .map(|l| format!("<a href=\"{l}\">{l}</a> "))
        .collect();
    format!(
        "<html><head><title>{title}</title></head><body><nav>{nav}</nav><main><h1>{title}</h1>\
         <p>{text} This paragraph is long enough to be the main content of the page.</p></main></body></html>"
    )
}

#[tokio::test]
async fn a_website_source_is_crawled_trained_and_recrawled_by_auto_retrain() {
    let pages = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::from([
        (
            "docs/".to_owned(),
            html(
                "Docs",
                "Guides for the Fiorenza espresso machine.",
                &["/docs/descaling", "/docs/private/keys", "/blog/"],
            ),
        ),
        (
            "docs/descaling".to_owned(),
            html(
                "Descaling",
                "Descale the Fiorenza boiler every two months with citric acid.",
                &["/docs/"],
            ),
        ),
        (
            "docs/private/keys".to_owned(),
            html("Keys", "The service keys of the Fiorenza are secret.", &[]),
        ),
        ("blog/".to_owned(), html("Blog", "Out of scope.", &[])),
    ])));
    let site = docs_site(pages.clone()).await;
    let t = spawn_knowledge(|s| s.crawler.allow_private_networks = true).await;
    let agent = t.scripted_agent().await;
    let (status, _, source) = post(
        &t,
        &format!("/api/v2/agents/{agent}/sources"),
        json!({"type": "link", "url": format!("http://{site}/docs/"), "linkType": "crawl", "excludePaths": ["^/docs/private"]}),
    )
    .await;
    assert_eq!(status, 201, "{source}");
    assert_eq!(source["metadata"]["type"], "crawl");
    assert_eq!(source["metadata"]["crawlStatus"], "fetching");
    let id = source["id"].as_str().unwrap().to_owned();
    let trained = wait_status(&t, &agent, &id, "trained").await;
    assert_eq!(trained["metadata"]["crawlStatus"], "fetched");
    assert_eq!(trained["metadata"]["children"]["included"], 2, "{trained}");
    assert!(trained["size"].as_i64().unwrap() > 0);
    let hits = search_until(
        &t,
        &agent,
        "how often should the boiler be descaled?",
        |h| !h.is_empty(),
    )
    .await;
    assert_eq!(hits[0]["url"], format!("http://{site}/docs/descaling"));
    assert!(
        hits.iter()
            .all(|h| !h["text"].as_str().unwrap().contains("secret"))
    );
    assert!(
        hits.iter()
            .all(|h| !h["text"].as_str().unwrap().contains("Out of scope"))
    );

    // The site changes; a week later auto-retrain fetches it again.
    pages.lock().unwrap().insert(
        "docs/descaling".to_owned(),
        html(
            "Descaling",
            "Descale the Fiorenza boiler every month with vinegar-free descaler.",
            &["/docs/"],
        ),
    );
    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}/auto-retrain"))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.clock.advance_ms(7 * 24 * 3600 * 1000 + 1000);
    search_until(
        &t,
        &agent,
        "how often should the boiler be descaled?",
        |h| {
            h.first()
                .is_some_and(|h| h["text"].as_str().unwrap().contains("vinegar-free"))
        },
    )
    .await;
}

/// `app` served on loopback, a knowledge server allowed to crawl it, and an agent
/// with a crawl of its `/docs/` as a source: (server, agent, site, source id).
async fn crawl_site(app: axum::Router) -> (TestApp, String, std::net::SocketAddr, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let t = spawn_knowledge(|s| s.crawler.allow_private_networks = true).await;
    let agent = t.scripted_agent().await;
    let (status, _, source) = post(
        &t,
        &format!("/api/v2/agents/{agent}/sources"),
        json!({"type": "link", "url": format!("http://{site}/docs/"), "linkType": "crawl"}),
    )
    .await;
    assert_eq!(status, 201, "{source}");
    let id = source["id"].as_str().unwrap().to_owned();
    (t, agent, site, id)
}

#[tokio::test]
async fn a_crawl_in_progress_shows_pages_fetched_of_pages_found() {
    // `/docs/` links to two pages; `/docs/slow` answers only once the test lets it.
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = gate.clone();
    let app = axum::Router::new()
        .route(
            "/docs/",
            axum::routing::get(|| async {
                axum::response::Html(html(
                    "Docs",
                    "Guides for the kettle.",
                    &["/docs/fast", "/docs/slow"],
                ))
            }),
        )
        .route(
            "/docs/fast",
            axum::routing::get(|| async {
                axum::response::Html(html("Fast", "The kettle boils in two minutes.", &[]))
            }),
        )
        .route(
            "/docs/slow",
            axum::routing::get(move || {
                let gate = gate.clone();
                async move {
                    gate.notified().await;
                    axum::response::Html(html("Slow", "Descale the kettle monthly.", &[]))
                }
            }),
        );
    let (t, agent, _, id) = crawl_site(app).await;
    // While the slow page is held: the job says it is fetching, two of three pages
    // found are done.
    let mut seen = Value::Null;
    for _ in 0..300 {
        let (_, _, jobs) = get(&t, &format!("/api/v2/agents/{agent}/training-jobs")).await;
        seen = jobs["data"][0].clone();
        if seen["stage"] == "fetching" && seen["done"] == 2 && seen["total"] == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        (
            &seen["stage"],
            &seen["done"],
            &seen["total"],
            &seen["status"]
        ),
        (&json!("fetching"), &json!(2), &json!(3), &json!("running")),
        "{seen}"
    );
    release.notify_one();
    let trained = wait_status(&t, &agent, &id, "trained").await;
    assert_eq!(trained["metadata"]["children"]["included"], 3, "{trained}");
}

/// A website source waiting on a slow site does not hold the node's training
/// slot: with one slot, another workspace's text trains while the crawl still
/// waits for its page (website jobs fetch under their own slots, then embed in a
/// training one).
#[tokio::test]
async fn a_slow_site_does_not_hold_up_another_workspaces_training() {
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = gate.clone();
    let app = axum::Router::new()
        .route(
            "/docs/",
            axum::routing::get(|| async {
                axum::response::Html(html("Docs", "Guides for the kettle.", &["/docs/slow"]))
            }),
        )
        .route(
            "/docs/slow",
            axum::routing::get(move || {
                let gate = gate.clone();
                async move {
                    gate.notified().await;
                    axum::response::Html(html("Slow", "Descale the kettle monthly.", &[]))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let t = spawn_knowledge(|s| {
        s.crawler.allow_private_networks = true;
        s.knowledge.training_concurrency = 1;
    })
    .await;
    let agent = t.scripted_agent().await;
    let (status, _, source) = post(
        &t,
        &format!("/api/v2/agents/{agent}/sources"),
        json!({"type": "link", "url": format!("http://{site}/docs/"), "linkType": "crawl"}),
    )
    .await;
    assert_eq!(status, 201, "{source}");
    let website = source["id"].as_str().unwrap().to_owned();
    let fetching = || async {
        let (_, _, jobs) = get(&t, &format!("/api/v2/agents/{agent}/training-jobs")).await;
        jobs["data"][0]["stage"] == "fetching" && jobs["data"][0]["status"] == "running"
    };
    for _ in 0..300 {
        if fetching().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fetching().await, "the crawl waits for the slow page");

    // Another workspace's text trains meanwhile.
    let (_, other_key) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let other_agent = t.scripted_agent_for(&other_key).await;
    let client = reqwest::Client::new();
    let r = client
        .post(t.url(&format!("/api/v2/agents/{other_agent}/sources")))
        .bearer_auth(&other_key)
        .json(&json!({"type": "text", "name": "kettle", "content": "The kettle holds 1.7 litres."}))
        .send()
        .await
        .unwrap();
    let (status, _, text) = outcome(r).await;
    assert_eq!(status, 201, "{text}");
    let text = text["id"].as_str().unwrap().to_owned();
    let mut trained = false;
    for _ in 0..300 {
        let r = client
            .get(t.url(&format!("/api/v2/agents/{other_agent}/sources/{text}")))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        if body["status"] == "trained" {
            trained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(trained, "the text trained while the crawl waited");
    assert!(fetching().await, "the crawl is still waiting for its page");

    // Once the page comes, the website trains in the slot.
    release.notify_one();
    wait_status(&t, &agent, &website, "trained").await;
}

#[tokio::test]
async fn pdfs_linked_from_a_website_are_read_and_cited_with_their_url() {
    const PDF: &[u8] = include_bytes!("../../../service/tests/fixtures/kettle-manual.pdf");
    let app = axum::Router::new()
        .route(
            "/docs/",
            axum::routing::get(|| async {
                axum::response::Html(html(
                    "Docs",
                    "Guides for the kettle.",
                    &["/docs/manual.pdf"],
                ))
            }),
        )
        .route(
            "/docs/manual.pdf",
            axum::routing::get(|| async { ([("content-type", "application/pdf")], PDF) }),
        );
    let (t, agent, site, id) = crawl_site(app).await;
    let trained = wait_status(&t, &agent, &id, "trained").await;
    assert_eq!(
        trained["metadata"]["children"]["included"], 2,
        "the page and the PDF: {trained}"
    );
    let hits = search_until(
        &t,
        &agent,
        "how often should the kettle be descaled?",
        |h| !h.is_empty(),
    )
    .await;
    assert_eq!(hits[0]["url"], format!("http://{site}/docs/manual.pdf"));
    assert!(
        hits[0]["text"].as_str().unwrap().contains("citric acid"),
        "{}",
        hits[0]
    );
}

#[tokio::test]
async fn search_results_are_diverse_by_page_and_can_be_grouped() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    // One long source about refunds (several chunks) and two short ones.
    let long: String = (1..=12)
        .map(|i| {
            format!(
                "## Refund rule {i}\n\nRefunds for order type {i} are paid back to the card \
                 within {i} business days after the refund is approved by our refund desk.\n\n"
            )
        })
        .collect();
    let long_id = text_source(&t, &agent, "Refund handbook", &long).await;
    // REFUNDS has two sections (two chunks); the short sources here have one each,
    // so every second chunk in the results is the long source's.
    let refunds = text_source(
        &t,
        &agent,
        "Refund policy",
        "Refunds are paid back to the original card within five business days.",
    )
    .await;
    let shipping = text_source(&t, &agent, "Shipping", SHIPPING).await;
    for s in [&long_id, &refunds, &shipping] {
        wait_status(&t, &agent, s, "trained").await;
    }
    let hits = search_until(&t, &agent, "refund paid back to the card", |h| h.len() == 5).await;
    let sources: Vec<&str> = hits
        .iter()
        .map(|h| h["sourceId"].as_str().unwrap())
        .collect();
    // Every source's best chunk comes before a second chunk of the long one.
    let distinct: std::collections::HashSet<&str> = sources[..3].iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{sources:?}");
    assert_eq!(
        &sources[3..],
        [long_id.as_str(), long_id.as_str()],
        "{sources:?}"
    );

    let (status, _, body) = post(
        &t,
        &format!("/api/v2/agents/{agent}/search"),
        json!({"query": "refund paid back to the card", "limit": 5, "groupByPage": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pages = body["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 3, "{body}");
    assert_eq!(pages[0]["rank"], 1);
    let long_page = pages
        .iter()
        .find(|p| p["sourceId"] == long_id.as_str())
        .unwrap();
    assert_eq!(long_page["hits"].as_array().unwrap().len(), 3);
    assert_eq!(long_page["title"], "Refund handbook");
    let total: usize = pages
        .iter()
        .map(|p| p["hits"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 5);
    // Without the flag there is no `pages`.
    let (_, _, body) = post(
        &t,
        &format!("/api/v2/agents/{agent}/search"),
        json!({"query": "refund", "limit": 5}),
    )
    .await;
    assert!(body.get("pages").is_none(), "{body}");
    let (status, code, _) = post(
        &t,
        &format!("/api/v2/agents/{agent}/search"),
        json!({"query": "refund", "groupByPage": "yes"}),
    )
    .await;
    assert_eq!(
        (status, code.as_deref()),
        (400, Some("VALIDATION_INVALID_BODY"))
    );
}

const WARRANTY: &str = "# Warranty\n\nEvery Fiorenza mower has a warranty of 17 months from the \
date of purchase, covering parts and labour. Replacement blades cost 12 euros each and ship \
within two days.";

/// The streamed answer text of one turn.
async fn answer(t: &TestApp, agent: &str, message: &str) -> String {
    let (_, body) = t.stream_raw(agent, json!({ "message": message })).await;
    frames(&body)
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap())
        .collect()
}

/// Sets the agent's `quoteFallback` and checks it reads back.
async fn set_quote_fallback(t: &TestApp, agent: &str, value: Value) {
    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}"))
        .json(&json!({ "quoteFallback": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.clock.advance_ms(1_001);
    let (_, _, a) = get(t, &format!("/api/v2/agents/{agent}")).await;
    assert_eq!(a["quoteFallback"], value);
}

#[tokio::test]
async fn a_quoting_agent_quotes_the_passage_its_answer_ignored_and_admits_ignorance() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    let warranty = text_source(&t, &agent, "Warranty", WARRANTY).await;
    wait_status(&t, &agent, &warranty, "trained").await;
    search_until(&t, &agent, "warranty", |h| !h.is_empty()).await;
    let question =
        "How long is the mower warranty? [[reply:The warranty is one-year, three-month.]]";

    // The scripted model is not a small local model: no quoting unless asked.
    let (_, _, a) = get(&t, &format!("/api/v2/agents/{agent}")).await;
    assert_eq!(a["quoteFallback"], Value::Null);
    assert_eq!(
        answer(&t, &agent, question).await,
        "The warranty is one-year, three-month."
    );

    set_quote_fallback(&t, &agent, json!(true)).await;
    let text = answer(&t, &agent, question).await;
    assert!(
        text.starts_with("The warranty is one-year, three-month."),
        "{text}"
    );
    assert!(text.contains("From \u{201c}Warranty\u{201d} [1]"), "{text}");
    assert!(text.contains("17 months"), "{text}");
    assert!(
        !text.contains("12 euros"),
        "only the sentences that answer: {text}"
    );
    // A greeting around the question does not make it look unanswerable: the
    // coverage floor scores the question, not the visitor's story.
    let chatty = answer(
        &t,
        &agent,
        "Hi! We bought two of your machines last spring and our gardener loves them. \
         How long is the mower warranty? [[reply:The warranty is one-year, three-month.]]",
    )
    .await;
    assert!(chatty.contains("17 months"), "{chatty}");

    // An answer that uses the passage is left alone: `[[system]]` answers with the
    // system prompt, where the knowledge is by default, as for any model.
    let used = answer(&t, &agent, "How long is the mower warranty? [[system]]").await;
    assert!(used.contains("17 months"), "{used}");
    assert!(!used.contains("From \u{201c}"), "{used}");
    // The user's message does not hold the knowledge: the echo of it gets the quote.
    let echo = answer(&t, &agent, "How long is the mower warranty?").await;
    assert!(
        echo.starts_with("Echo: How long is the mower warranty?"),
        "{echo}"
    );
    assert!(echo.contains("From \u{201c}Warranty\u{201d} [1]"), "{echo}");

    // Nothing relevant: the agent says it does not know, without the model.
    let text = answer(
        &t,
        &agent,
        "What is the boiling point of liquid nitrogen? [[reply:-196 C]]",
    )
    .await;
    assert!(text.contains("I don't know"), "{text}");
    assert!(!text.contains("-196"), "{text}");

    // null returns the agent to automatic.
    set_quote_fallback(&t, &agent, Value::Null).await;
}

/// With `knowledge.small_model_inline`, a quoting agent's model reads the knowledge
/// next to the question (the scripted model's echo repeats it), and an answer that
/// repeats the passage gets no quote.
#[tokio::test]
async fn a_quoting_agent_can_read_the_knowledge_next_to_the_question() {
    let t = spawn_knowledge(|s| s.knowledge.small_model_inline = true).await;
    let agent = t.scripted_agent().await;
    let warranty = text_source(&t, &agent, "Warranty", WARRANTY).await;
    wait_status(&t, &agent, &warranty, "trained").await;
    search_until(&t, &agent, "warranty", |h| !h.is_empty()).await;
    set_quote_fallback(&t, &agent, json!(true)).await;
    let echo = answer(&t, &agent, "How long is the mower warranty?").await;
    assert!(echo.contains("Knowledge:"), "{echo}");
    assert!(echo.contains("17 months"), "{echo}");
    assert!(!echo.contains("From \u{201c}"), "{echo}");
}

/// Deleting an agent takes its knowledge with it: the node's snapshot of its index
/// (on disk and in memory), so a node that hosts many short-lived agents does not
/// keep them all.
#[tokio::test]
async fn deleting_an_agent_removes_its_index_snapshot() {
    let t = spawn_knowledge(|_| {}).await;
    let agent = t.scripted_agent().await;
    let refunds = text_source(&t, &agent, "Refund policy", REFUNDS).await;
    wait_status(&t, &agent, &refunds, "trained").await;
    search_until(&t, &agent, "refund card", |hits| !hits.is_empty()).await;
    let index = t.data_dir().join("index").join(&agent);
    assert!(index.is_dir(), "no index at {}", index.display());

    let path = format!("/api/v2/agents/{agent}");
    let (status, _, body) = outcome(t.raw(Method::DELETE, &path).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    crate::webhooks::wait_for("the index removed", || !index.exists()).await;
    let query = json!({"query": "refund card"});
    let (status, code, body) = post(&t, &format!("{path}/search"), query).await;
    assert_eq!(
        (status, code.as_deref()),
        (404, Some("AGENT_NOT_FOUND")),
        "{body}"
    );
}

/// More agents do not multiply the storage: a workspace's agents share
/// `knowledge.workspace_storage_limits`, and another workspace is not counted.
#[tokio::test]
async fn a_workspaces_agents_share_its_storage_limit() {
    let t = spawn_knowledge(|s| {
        s.knowledge.storage_limits.standard = 1_000;
        s.knowledge.workspace_storage_limits.standard = 2_500;
    })
    .await;
    let text =
        |n: usize| json!({"type": "text", "name": format!("t{n}"), "content": "w".repeat(900)});
    let mut created = Vec::new();
    for n in 0..2 {
        let agent = t.scripted_agent().await;
        let (s, c, b) = post(&t, &format!("/api/v2/agents/{agent}/sources"), text(n)).await;
        assert_eq!(s, 201, "{c:?} {b}");
        created.push(agent);
    }
    let third = t.scripted_agent().await;
    let path = format!("/api/v2/agents/{third}/sources");
    let (s, c, _) = post(&t, &path, text(2)).await;
    assert_eq!((s, c.as_deref()), (422, Some("SOURCE_SIZE_LIMIT_EXCEEDED")));
    // What is left of the workspace's share still fits.
    let small = json!({"type": "text", "name": "small", "content": "s".repeat(500)});
    assert_eq!(post(&t, &path, small).await.0, 201);
    // Another workspace has its own.
    let (_, other_key) = t.other_workspace(agentbase_core::Plan::Standard).await;
    let theirs = t.scripted_agent_for(&other_key).await;
    let r = reqwest::Client::new()
        .post(t.url(&format!("/api/v2/agents/{theirs}/sources")))
        .bearer_auth(&other_key)
        .json(&text(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}
