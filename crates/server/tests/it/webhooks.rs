//! Webhooks end to end: a real HTTP receiver on loopback gets each event signed as
//! Chatbase signs (`x-chatbase-signature`, checked here with an HMAC of its own), a
//! failing receiver is retried with backoff on the manual clock, a private target
//! is refused by the crawler's SSRF guard, and pending deliveries outlive the
//! process that wrote them (SQLite and PostgreSQL).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{TestApp, outcome, spawn_full, spawn_with};

/// What the receiver was sent: headers and the raw body.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// A webhook receiver on loopback: answers the status `answer` gives for the n-th
/// request (from 0) and keeps everything it was sent.
pub(crate) async fn receiver(
    answer: impl Fn(usize) -> u16 + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let kept = got.clone();
    let answer = Arc::new(answer);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            let answer = answer.clone();
            async move {
                let mut all = kept.lock().unwrap();
                let n = all.len();
                all.push(Received { headers, body });
                StatusCode::from_u16(answer(n)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

/// The receiver's side of Chatbase's check: hex HMAC-SHA1 of the raw body.
pub(crate) fn signature_ok(secret: &str, r: &Received) -> bool {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&r.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    r.header("x-chatbase-signature") == want
}

pub(crate) async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

pub(crate) async fn create_hook(t: &TestApp, agent: &str, url: &str, events: &[&str]) -> Value {
    let r = t
        .raw(Method::POST, &format!("/api/v2/agents/{agent}/webhooks"))
        .json(&json!({"url": url, "events": events}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = outcome(r).await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn deliveries(t: &TestApp, agent: &str, hook: &str) -> Vec<Value> {
    let r = t
        .raw(
            Method::GET,
            &format!("/api/v2/agents/{agent}/webhooks/{hook}/deliveries"),
        )
        .send()
        .await
        .unwrap();
    let (status, _, body) = outcome(r).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// Polls the delivery log until `done` holds for it.
async fn wait_for_log(t: &TestApp, agent: &str, hook: &str, done: impl Fn(&[Value]) -> bool) {
    for _ in 0..400 {
        if done(&deliveries(t, agent, hook).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "the delivery log never got there: {:?}",
        deliveries(t, agent, hook).await
    );
}

/// Lets webhooks reach the loopback receiver. These tests poll the delivery log,
/// so the rate limit is lifted as well (the poller alone could exceed it while the
/// mock clock stands still).
pub(crate) fn loopback_allowed(s: &mut agentbase_service::Settings) {
    s.crawler.allow_private_networks = true;
    s.rate_limit.requests = 1_000_000;
    s.webhooks.poll_interval_ms = 20;
}

#[tokio::test]
async fn a_receiver_gets_each_event_signed_with_the_endpoint_secret() {
    let (port, got) = receiver(|_| 200).await;
    let t = spawn_with(loopback_allowed).await;
    let agent = t.scripted_agent().await;
    let hook = create_hook(
        &t,
        &agent,
        &format!("http://127.0.0.1:{port}/hook"),
        &["conversation.started", "message.answered"],
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "{hook}");
    let reply = t.say(&agent, None, "hello").await;
    let conversation = reply.data.metadata.conversation_id.clone();
    wait_for("two deliveries", || got.lock().unwrap().len() >= 2).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let mut types = Vec::new();
    for r in &got {
        assert!(signature_ok(&secret, r), "signed: {r:?}");
        let body = r.json();
        // Chatbase's envelope, and nothing else at the top level.
        assert_eq!(body["chatbotId"], agent.as_str());
        assert_eq!(body["payload"]["conversationId"], conversation.as_str());
        assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
        assert_eq!(r.header("content-type"), "application/json");
        assert!(!r.header("x-agentbase-event-id").is_empty());
        types.push(body["eventType"].as_str().unwrap().to_owned());
    }
    types.sort();
    assert_eq!(types, ["conversation.started", "message.answered"]);
    let answered = got
        .iter()
        .map(Received::json)
        .find(|b| b["eventType"] == "message.answered")
        .unwrap();
    assert_eq!(answered["payload"]["messageId"], reply.data.id.as_str());
    // A tampered body would not pass the receiver's check.
    let mut forged = got[0].clone();
    forged.body = Bytes::from(forged.body.iter().rev().copied().collect::<Vec<u8>>());
    assert!(!signature_ok(&secret, &forged));

    let hook_id = hook["id"].as_str().unwrap();
    wait_for_log(&t, &agent, hook_id, |log| {
        log.len() == 2 && log.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    for d in deliveries(&t, &agent, hook_id).await {
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["log"][0]["statusCode"], 200);
        assert!(d["nextAttemptAt"].is_null() && d["finishedAt"].is_string());
    }
    // A rotated secret signs what comes next; the old one no longer does.
    let r = t
        .raw(
            Method::PATCH,
            &format!("/api/v2/agents/{agent}/webhooks/{hook_id}"),
        )
        .json(&json!({"rotateSecret": true, "events": ["message.answered"]}))
        .send()
        .await
        .unwrap();
    let (status, _, updated) = outcome(r).await;
    assert_eq!(status, 200, "{updated}");
    let new_secret = updated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    // A later time, so the delivery log's newest-first order is certain.
    t.clock.advance_ms(1_000);
    t.say(&agent, Some(&conversation), "again").await;
    wait_for_log(&t, &agent, hook_id, |log| {
        log.len() == 3 && log.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    let newest = deliveries(&t, &agent, hook_id).await.remove(0);
    assert_eq!(newest["eventType"], "message.answered");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_doubling_waits_until_it_accepts() {
    // 503, 500, then 200.
    let (port, got) = receiver(|n| [503, 500, 200].get(n).copied().unwrap_or(200)).await;
    let t = spawn_with(|s| {
        loopback_allowed(s);
        s.webhooks.retry_base_secs = 60;
    })
    .await;
    let agent = t.scripted_agent().await;
    let hook = create_hook(
        &t,
        &agent,
        &format!("http://127.0.0.1:{port}/hook"),
        &["message.answered"],
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    t.say(&agent, None, "hello").await;
    wait_for_log(&t, &agent, &hook_id, |l| {
        l.len() == 1 && l[0]["attempts"] == 1 && l[0]["log"].as_array().unwrap().len() == 1
    })
    .await;
    let d = deliveries(&t, &agent, &hook_id).await.remove(0);
    assert_eq!(d["state"], "pending");
    assert_eq!(d["log"][0]["statusCode"], 503);
    assert!(
        d["log"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("503"))
    );
    // Not again before the wait is over.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(got.lock().unwrap().len(), 1);
    t.clock.advance_ms(60_000);
    // The failure recorded, not only the attempt claimed: the next wait counts from
    // it, so the clock must not move before it is written.
    wait_for_log(&t, &agent, &hook_id, |l| {
        l[0]["attempts"] == 2 && l[0]["log"].as_array().unwrap().len() == 2
    })
    .await;
    // The second wait is twice the first.
    t.clock.advance_ms(60_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(got.lock().unwrap().len(), 2, "no third attempt after 60 s");
    t.clock.advance_ms(60_000);
    wait_for_log(&t, &agent, &hook_id, |l| l[0]["state"] == "delivered").await;
    let d = deliveries(&t, &agent, &hook_id).await.remove(0);
    let codes: Vec<&Value> = d["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["statusCode"])
        .collect();
    assert_eq!(codes, [503, 500, 200]);
    // Every attempt carried the same event, so the receiver can drop repeats.
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.header("x-agentbase-event-id")
        == got[0].header("x-agentbase-event-id")
        && r.body == got[0].body));
}

#[tokio::test]
async fn attempts_stop_at_the_limit_and_the_delivery_is_marked_failed() {
    let (port, got) = receiver(|_| 500).await;
    let t = spawn_with(|s| {
        loopback_allowed(s);
        s.webhooks.max_attempts = 2;
        s.webhooks.retry_base_secs = 1;
    })
    .await;
    let agent = t.scripted_agent().await;
    let hook = create_hook(
        &t,
        &agent,
        &format!("http://127.0.0.1:{port}/hook"),
        &["message.answered"],
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    t.say(&agent, None, "hello").await;
    // The first failure is recorded (the next wait counts from it) before the
    // clock moves: `attempts` is 1 from the moment the attempt is claimed.
    wait_for_log(&t, &agent, &hook_id, |l| {
        l.len() == 1 && l[0]["attempts"] == 1 && l[0]["log"].as_array().unwrap().len() == 1
    })
    .await;
    t.clock.advance_ms(1_000);
    wait_for_log(&t, &agent, &hook_id, |l| l[0]["state"] == "failed").await;
    t.clock.advance_ms(3_600_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(got.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_private_address_target_is_refused_by_the_ssrf_guard() {
    let (port, got) = receiver(|_| 200).await;
    // The default: private networks refused, for crawls and webhooks alike.
    let t = spawn_with(|s| s.webhooks.poll_interval_ms = 20).await;
    let agent = t.scripted_agent().await;
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        "http://10.0.0.7/hook".to_owned(),
        "http://[::1]/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let r = t
            .raw(Method::POST, &format!("/api/v2/agents/{agent}/webhooks"))
            .json(&json!({"url": url, "events": ["message.answered"]}))
            .send()
            .await
            .unwrap();
        let (status, code, body) = outcome(r).await;
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("VALIDATION_INVALID_BODY")),
            "{url}: {body}"
        );
        assert!(
            body["error"]["details"]["url"]
                .as_str()
                .is_some_and(|m| m.contains("refused")),
            "{body}"
        );
    }
    // A name is judged when it resolves: to loopback here, so the attempt is
    // refused, logged, and not retried.
    let hook = create_hook(
        &t,
        &agent,
        &format!("http://localhost:{port}/hook"),
        &["message.answered"],
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    t.say(&agent, None, "hello").await;
    wait_for_log(&t, &agent, &hook_id, |l| {
        l.len() == 1 && l[0]["state"] == "failed"
    })
    .await;
    let d = deliveries(&t, &agent, &hook_id).await.remove(0);
    assert_eq!(d["attempts"], 1);
    assert!(
        d["log"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "{d}"
    );
    assert!(d["log"][0]["statusCode"].is_null());
    assert!(got.lock().unwrap().is_empty(), "nothing reached the target");
}

/// Events written by one process are delivered by the next one on the same
/// record: the first never delivers (its worker's first pass is an hour after its
/// start), the second does.
async fn pending_deliveries_outlive_the_process(url: &str) {
    let (port, got) = receiver(|_| 200).await;
    let first = spawn_full(
        |s| {
            s.crawler.allow_private_networks = true;
            s.webhooks.poll_interval_ms = 3_600_000;
        },
        &agentbase_service::models::Providers::new(),
        None,
        Some(url),
    )
    .await;
    let agent = first.scripted_agent().await;
    let hook = create_hook(
        &first,
        &agent,
        &format!("http://127.0.0.1:{port}/hook"),
        &["conversation.started", "message.answered"],
    )
    .await;
    first.say(&agent, None, "hello").await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let pending = deliveries(&first, &agent, &hook_id).await;
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|d| d["state"] == "pending"));
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(got.lock().unwrap().is_empty());

    let second = spawn_full(
        |s| {
            s.crawler.allow_private_networks = true;
            s.webhooks.poll_interval_ms = 20;
        },
        &agentbase_service::models::Providers::new(),
        None,
        Some(url),
    )
    .await;
    wait_for("both events", || got.lock().unwrap().len() >= 2).await;
    // The second node has a key of its own in the same workspace.
    wait_for_log(&second, &agent, &hook_id, |l| {
        l.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 2, "each event once");
    assert_ne!(
        got[0].header("x-agentbase-event-id"),
        got[1].header("x-agentbase-event-id")
    );
}

#[tokio::test]
async fn pending_deliveries_outlive_the_process_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hooks.db").display());
    pending_deliveries_outlive_the_process(&url).await;
}

#[tokio::test]
async fn pending_deliveries_outlive_the_process_on_postgres() {
    let Some(url) = crate::sources::fresh_postgres().await else {
        return;
    };
    pending_deliveries_outlive_the_process(&url).await;
}

/// A redirect is not followed, and sending again would get the same answer: the
/// delivery fails at its first attempt instead of being retried for hours.
#[tokio::test]
async fn a_redirecting_endpoint_fails_at_once() {
    let (port, got) = receiver(|_| 307).await;
    let t = spawn_with(|s| {
        loopback_allowed(s);
        s.webhooks.retry_base_secs = 1;
    })
    .await;
    let agent = t.scripted_agent().await;
    let hook = create_hook(
        &t,
        &agent,
        &format!("http://127.0.0.1:{port}/hook"),
        &["message.answered"],
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    t.say(&agent, None, "hello").await;
    wait_for_log(&t, &agent, &hook_id, |l| {
        l.len() == 1 && l[0]["state"] == "failed"
    })
    .await;
    let log = deliveries(&t, &agent, &hook_id).await;
    assert_eq!(log[0]["attempts"], 1, "{log:?}");
    t.clock.advance_ms(3_600_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(got.lock().unwrap().len(), 1, "not sent again");
}
