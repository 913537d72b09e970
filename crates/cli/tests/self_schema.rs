//! The server against its own OpenAPI document: schemathesis (PyPI, pinned in
//! `compat/requirements.txt`) generates requests for every operation of
//! `/api/v2/openapi.json`, valid and invalid per the document, against the real
//! binary with a key and seeded resources, and checks every answer: no 5xx, statuses,
//! content types, headers and bodies as documented, invalid input refused.
//!
//! Needs `pip install -r compat/requirements.txt`; without it the test skips with a
//! note, or fails when `AGENTBASE_TEST_REQUIRE_SERVICES=1`.

mod common;

use std::process::Command;

use common::{Server, compat_dir, http, run};
use serde_json::{Value, json};

/// Generated cases per operation and mode (positive, negative); the run must reach
/// `MIN_CASES` in all.
const EXAMPLES: u32 = 30;
const MIN_CASES: u64 = 2_000;

fn schemathesis_or_skip() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import schemathesis, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    let required = std::env::var("AGENTBASE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1");
    match (found, required) {
        (true, _) => true,
        (false, true) => panic!(
            "AGENTBASE_TEST_REQUIRE_SERVICES=1 but python3 cannot import schemathesis \
             (pip install -r compat/requirements.txt)"
        ),
        (false, false) => {
            eprintln!("note: schemathesis test skipped: pip install -r compat/requirements.txt");
            false
        }
    }
}

fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, text) = http(server.port, "POST", path, &server.key, &body.to_string());
    assert!((200..300).contains(&status), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_server_answers_every_generated_request_as_its_own_document_says() {
    if !schemathesis_or_skip() {
        return;
    }
    let server = Server::start(&[
        ("AGENTBASE__RATE_LIMIT__REQUESTS", "10000000"),
        ("AGENTBASE__PLANS__FREE", "100000000"),
        ("AGENTBASE__PLANS__HOBBY", "100000000"),
        ("AGENTBASE__PLANS__STANDARD", "100000000"),
        ("AGENTBASE__PLANS__PRO", "100000000"),
        ("AGENTBASE__PLANS__ENTERPRISE", "100000000"),
        // Destructive cases each get a fresh agent.
        ("AGENTBASE__AGENTS__MAX_PER_WORKSPACE__STANDARD", "1000000"),
    ]);
    // One of everything a path can name.
    let agent = server.create_agent("seeded");
    let turn = post(
        &server,
        &format!("/api/v2/agents/{agent}/chat"),
        json!({"message": "hello", "stream": false, "userId": "seeded-user"}),
    );
    let source = post(
        &server,
        &format!("/api/v2/agents/{agent}/sources"),
        json!({"type": "text", "name": "seeded", "content": "Seeded text for the schema run."}),
    );
    // A crawl of an address the SSRF guard refuses ends at once and keeps its run
    // and dataset.
    let crawl = post(
        &server,
        "/v2/acts/apify~website-content-crawler/runs?waitForFinish=30",
        json!({"startUrls": [{"url": "http://127.0.0.1:9/"}], "maxCrawlPages": 1}),
    );
    let ids = json!({
        "agentId": agent,
        "conversationId": turn["data"]["metadata"]["conversationId"],
        "messageId": turn["data"]["id"],
        "userId": "seeded-user",
        "sourceId": source["id"],
        "runId": crawl["data"]["id"],
        "datasetId": crawl["data"]["defaultDatasetId"],
        "storeId": crawl["data"]["defaultKeyValueStoreId"],
        "key": "INPUT",
        "actorId": "apify~website-content-crawler",
    });
    let args = [
        "--origin".to_owned(),
        format!("http://127.0.0.1:{}", server.port),
        "--api-key".to_owned(),
        server.key.clone(),
        "--ids".to_owned(),
        ids.to_string(),
        "--examples".to_owned(),
        EXAMPLES.to_string(),
    ];
    let mut cmd = Command::new("python3");
    cmd.arg(compat_dir().join("schemathesis_self.py"))
        .args(&args)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (ok, out, err) = run(&mut cmd, 600);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "schemathesis_self.py printed no report ({e}): {out}\n{err}\n{}",
            server.log()
        )
    });
    eprintln!(
        "schemathesis: {} cases over {} operations in {} s; statuses {}",
        report["cases"],
        report["operations"].as_array().map_or(0, Vec::len),
        report["seconds"],
        report["statuses"]
    );
    assert!(
        ok && report["failures"].as_array().is_some_and(Vec::is_empty),
        "responses that disagree with the document:\n{}\n{err}",
        serde_json::to_string_pretty(&report["failures"]).unwrap()
    );
    let cases = report["cases"].as_u64().unwrap();
    assert!(cases >= MIN_CASES, "only {cases} cases were generated");
    assert!(
        report["statuses"]
            .as_object()
            .unwrap()
            .keys()
            .all(|s| !s.starts_with('5')),
        "{report}"
    );
}
