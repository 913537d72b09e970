//! The dashboard and the widget in a real browser: the `agentbase` binary with the
//! scripted model and the real embedder, two test pages on two origins
//! (`127.0.0.1:<A>`, the agent's allowed domain, and `localhost:<B>`, not allowed),
//! and `compat/browser/scenario.mjs` driving Debian's chromium through npm
//! `playwright-core`: sign in, create a key, create and configure an agent, add a
//! text source and train, chat in the playground with a citation, then embed that
//! agent's widget and chat through it; then the lead form with its signed webhook,
//! and the human handoff between a visitor and an operator in two browser contexts
//! (asked for, answered live, handed back, taken over from the dashboard, checked
//! afterwards through the API). Screenshots go to `target/browser-artifacts`
//! (or `$AGENTBASE_BROWSER_ARTIFACTS`).
//!
//! Needs `node`, `npm ci --prefix compat` and `chromium` (scripts/services.sh
//! installs it); without them the test skips with a note, or fails when
//! `AGENTBASE_TEST_REQUIRE_SERVICES=1`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Server, compat_dir, http, repo_root, run};
use serde_json::Value;

/// Where chromium is, if anywhere: `$CHROMIUM_PATH`, else Debian's.
fn chromium() -> Option<PathBuf> {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/lib/chromium/chromium", "/usr/bin/chromium"].map(PathBuf::from))
        .find(|p| p.is_file())
}

/// True when the test should go on; false (after a note) when it may skip.
fn browser_or_skip() -> bool {
    let mut missing = Vec::new();
    if !Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        missing.push("node (Node.js 20+)".to_owned());
    }
    if !compat_dir()
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push("compat/node_modules/playwright-core (run `npm ci --prefix compat`)".into());
    }
    if chromium().is_none() {
        missing.push("chromium (apt-get install chromium; scripts/services.sh does)".into());
    }
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    assert!(
        std::env::var("AGENTBASE_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
        "AGENTBASE_TEST_REQUIRE_SERVICES=1 but missing: {missing}"
    );
    eprintln!("note: browser test skipped, missing: {missing}");
    false
}

/// The page on the allowed origin: the documented one-tag embed, under page CSS
/// that would restyle the widget if it leaked into it.
const WIDGET_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>A customer's site</title>
<style>
  body { font-family: Georgia, serif; margin: 40px; background: #fafaf5; }
  button, textarea, div { background: #f0f !important; font-size: 30px !important; }
</style>
</head>
<body>
<h1>A customer's site</h1>
<p>This page embeds the agentbase widget with one script tag.</p>
<script src="{{SERVER}}/widget.js" data-agent-id="{{AGENT_ID}}" defer></script>
</body>
</html>
"#;

/// The page on the refused origin: Chatbase's embed snippet, unchanged but for the host.
const CHATBASE_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Another site</title>
</head>
<body>
<h1>A site that is not allowed</h1>
<script>
  window.embeddedChatbotConfig = { chatbotId: "{{AGENT_ID}}", domain: "{{SERVER_HOST}}" };
</script>
<script src="{{SERVER}}/embed.min.js" chatbotId="{{AGENT_ID}}" domain="{{SERVER_HOST}}" defer></script>
</body>
</html>
"#;

/// Serves the two pages on 127.0.0.1:0 (any host name reaches it): `/widget.html`
/// and `/chatbase.html`, each for the agent named by `?agent=`. Returns the port.
fn serve_pages(server: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = server.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let server = server.clone();
            std::thread::spawn(move || answer_page(stream, &server));
        }
    });
    port
}

fn answer_page(mut stream: TcpStream, server: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split(' ').nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let agent = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("agent="))
        .filter(|a| {
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        })
        .unwrap_or("");
    let template = match path {
        "/widget.html" => Some(WIDGET_PAGE),
        "/chatbase.html" => Some(CHATBASE_PAGE),
        _ => None,
    };
    let (status, body) = match template {
        Some(t) => (
            "200 OK",
            t.replace("{{SERVER}}", server)
                .replace("{{SERVER_HOST}}", server.trim_start_matches("http://"))
                .replace("{{AGENT_ID}}", agent),
        ),
        None => ("404 Not Found", "not found".to_owned()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("AGENTBASE_BROWSER_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/browser-artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    // Screenshots of an earlier run must not pass for this one's.
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    // Absolute and without `..`, as the scenario prints the paths.
    dir.canonicalize().unwrap()
}

fn get(server: &Server, path: &str) -> Value {
    let (status, body) = http(server.port, "GET", path, &server.key, "");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn the_dashboard_builds_an_agent_whose_widget_chats_on_an_allowed_page_and_is_refused_elsewhere() {
    if !browser_or_skip() {
        return;
    }
    // The lead steps' webhook receiver listens on loopback, which the SSRF guard
    // refuses by default.
    let server = Server::start(&[
        ("AGENTBASE__CRAWLER__ALLOW_PRIVATE_NETWORKS", "true"),
        ("AGENTBASE__WEBHOOKS__POLL_INTERVAL_MS", "100"),
    ]);
    let root = format!("http://127.0.0.1:{}", server.port);
    let (allowed, refused) = (serve_pages(&root), serve_pages(&root));
    let artifacts = artifacts_dir();
    let mut node = Command::new("node");
    node.arg(compat_dir().join("browser/scenario.mjs"))
        .env("AGENTBASE_URL", &root)
        .env("AGENTBASE_KEY", &server.key)
        .env("AGENTBASE_ADMIN_PASSWORD", &server.admin_password)
        .env(
            "ALLOWED_PAGE_URL",
            format!("http://127.0.0.1:{allowed}/widget.html"),
        )
        .env(
            "REFUSED_PAGE_URL",
            format!("http://localhost:{refused}/chatbase.html"),
        )
        .env("ARTIFACTS_DIR", &artifacts)
        .env("LEAD_STEPS", "1")
        .env("HANDOFF_STEPS", "1")
        .env_remove("AGENT_ID");
    if let Some(path) = chromium() {
        node.env("CHROMIUM_PATH", path);
    }
    let (ok, out, err) = run(&mut node, 240);
    println!("{out}");
    assert!(
        ok,
        "the browser scenario failed (screenshots in {}):\n{out}\n{err}\n--- server log ---\n{}",
        artifacts.display(),
        server.log()
    );
    let result: Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the scenario prints its result as a JSON line");
    let shots: Vec<&str> = result["screenshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for name in [
        "dashboard-workspaces",
        "dashboard-key-created",
        "dashboard-agent-settings",
        "dashboard-sources",
        "dashboard-playground",
        "dashboard-conversations",
        "dashboard-thread",
        "dashboard-usage",
        "dashboard-phone",
        "widget-bubble",
        "widget-open",
        "widget-answer",
        "widget-phone",
        "widget-refused",
        "widget-rate-limited",
        "widget-lead-form",
        "widget-lead-sent",
        "widget-handoff-asked",
        "dashboard-tickets",
        "dashboard-handoff-live",
        "dashboard-handoff-reply",
        "widget-handoff-reply",
        "widget-handed-back",
        "dashboard-handoff-taken-over",
    ] {
        let path = artifacts.join(format!("{name}.png"));
        assert!(shots.contains(&path.to_str().unwrap()), "{name} listed");
        assert!(
            Path::new(&path).metadata().is_ok_and(|m| m.len() > 1000),
            "{} saved",
            path.display()
        );
    }
    eprintln!("browser screenshots:\n  {}", shots.join("\n  "));

    // The agent the dashboard made holds its playground conversation and exactly
    // one widget conversation, with all three turns.
    let agent = result["agentId"].as_str().unwrap();
    let list = get(&server, &format!("/api/v2/agents/{agent}/conversations"));
    let conversations = list["data"].as_array().unwrap();
    assert_eq!(conversations.len(), 2, "playground + widget: {list}");
    let widget: Vec<&Value> = conversations
        .iter()
        .filter(|c| {
            c["userId"]
                .as_str()
                .is_some_and(|u| u.starts_with("widget-v_"))
        })
        .collect();
    assert_eq!(widget.len(), 1, "one widget conversation: {list}");
    assert_eq!(widget[0]["id"], result["conversationId"]);
    let id = result["conversationId"].as_str().unwrap();
    let thread = get(
        &server,
        &format!("/api/v2/agents/{agent}/conversations/{id}"),
    );
    assert_eq!(thread["data"]["messages"].as_array().unwrap().len(), 6);

    handoff_was_recorded(&server, &result);
}

/// What the handoff steps did, as the API tells it: one widget conversation whose
/// answers came from the AI, then from a person while taken over, then from the AI
/// after the hand-back; the visitor's messages while taken over went unanswered;
/// one ticket, asked for by the visitor, for that conversation.
fn handoff_was_recorded(server: &Server, result: &Value) {
    let agent = result["handoffAgentId"].as_str().expect("handoffAgentId");
    let id = result["handoffConversationId"].as_str().unwrap();
    let list = get(server, &format!("/api/v2/agents/{agent}/conversations"));
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id], "one conversation, the widget's: {list}");
    let conversation = get(
        server,
        &format!("/api/v2/agents/{agent}/conversations/{id}"),
    );
    assert_eq!(
        conversation["data"]["status"], "taken_over",
        "{conversation}"
    );

    let messages = get(
        server,
        &format!("/api/v2/agents/{agent}/conversations/{id}/messages"),
    );
    let turns: Vec<(String, String, Value)> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["parts"][0]["text"].as_str().unwrap_or("").to_owned(),
                m["metadata"]["answeredBy"]["type"].clone(),
            )
        })
        .collect();
    let turn = |role: &str, text: &str, by: Value| (role.to_owned(), text.to_owned(), by);
    assert_eq!(
        turns,
        [
            turn("user", "Hello, bot", Value::Null),
            turn("assistant", "Echo: Hello, bot", "ai".into()),
            turn("user", "Are you a person?", Value::Null),
            turn(
                "assistant",
                "Hi, I am a person. How can I help?",
                "human".into()
            ),
            turn("user", "Back to the bot?", Value::Null),
            turn("assistant", "Echo: Back to the bot?", "ai".into()),
            turn("user", "Anyone there?", Value::Null),
        ],
        "{messages}"
    );

    let tickets = get(server, &format!("/api/v2/agents/{agent}/helpdesk/tickets"));
    let tickets = tickets["data"].as_array().unwrap();
    assert_eq!(
        tickets.len(),
        1,
        "taking over again reused the ticket: {tickets:?}"
    );
    let number = &result["handoffTicketNumber"];
    assert_eq!(tickets[0]["ticketNumber"], *number);
    assert_eq!(tickets[0]["conversationId"], id);
    let ticket = get(
        server,
        &format!("/api/v2/agents/{agent}/helpdesk/tickets/{number}"),
    );
    assert_eq!(ticket["channel"], "iframe", "{ticket}");
    assert_eq!(ticket["metadata"]["requestedBy"], "visitor", "{ticket}");
}
