//! The `agentbase` binary as a user runs it: init, admin commands with --json,
//! configuration errors, and serve + SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn agentbase(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentbase"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("AGENTBASE_DATA_DIR")
        .output()
        .expect("runs")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn init_prints_a_key_once_and_refuses_to_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let v = json_of(&agentbase(dir.path(), &["init", "--json"]));
    assert!(v["apiKey"].as_str().unwrap().starts_with("agb_"));
    assert!(v["workspaceId"].as_str().unwrap().starts_with("ws_"));
    assert_eq!(v["baseUrl"], "http://127.0.0.1:8080/api/v2");
    assert_eq!(v["dashboardUrl"], "http://127.0.0.1:8080/dashboard");
    let password = v["adminPassword"]
        .as_str()
        .expect("a generated dashboard password");
    assert_eq!(password.len(), 24);
    assert!(dir.path().join("agentbase.db").exists());
    let config = std::fs::read_to_string(dir.path().join("agentbase.toml")).unwrap();
    assert!(
        config.contains("# agentbase configuration.") && config.contains("\n# bind = "),
        "the default config is written with its options commented out: {config}"
    );

    let again = agentbase(dir.path(), &["init", "--json"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));

    let keys = json_of(&agentbase(dir.path(), &["keys", "list", "--json"]));
    let listed = keys.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        !listed[0]
            .to_string()
            .contains(v["apiKey"].as_str().unwrap()),
        "the key is never shown again"
    );
}

#[test]
fn the_dashboard_password_is_chosen_at_init_or_replaced_later() {
    let dir = tempfile::tempdir().unwrap();
    let short = agentbase(dir.path(), &["init", "--admin-password", "short"]);
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"),
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
    let v = json_of(&agentbase(
        dir.path(),
        &[
            "init",
            "--json",
            "--admin-password",
            "a long enough password",
        ],
    ));
    assert!(
        v["adminPassword"].is_null(),
        "a chosen password is not echoed: {v}"
    );
    assert!(v["apiKey"].as_str().unwrap().starts_with("agb_"));

    let replaced = json_of(&agentbase(dir.path(), &["admin-password", "--json"]));
    assert_eq!(replaced["adminPassword"].as_str().unwrap().len(), 24);
    let chosen = agentbase(
        dir.path(),
        &["admin-password", "--password", "another good password"],
    );
    assert!(chosen.status.success());
    assert!(String::from_utf8_lossy(&chosen.stdout).contains("every session is signed out"));
    let weak = agentbase(dir.path(), &["admin-password", "--password", "weak"]);
    assert!(!weak.status.success());
}

#[test]
fn workspaces_keys_and_agents_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    json_of(&agentbase(dir.path(), &["init", "--json"]));

    let ws = json_of(&agentbase(
        dir.path(),
        &[
            "workspaces",
            "create",
            "Team B",
            "--plan",
            "hobby",
            "--json",
        ],
    ));
    let ws_id = ws["id"].as_str().unwrap();
    assert_eq!(ws["plan"], "hobby");
    let set = json_of(&agentbase(
        dir.path(),
        &["workspaces", "set-plan", ws_id, "pro", "--json"],
    ));
    assert_eq!(set["plan"], "pro");
    let list = json_of(&agentbase(dir.path(), &["workspaces", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !agentbase(dir.path(), &["workspaces", "set-plan", ws_id, "gold"])
            .status
            .success()
    );

    let key = json_of(&agentbase(
        dir.path(),
        &["keys", "create", "--workspace", ws_id, "--json"],
    ));
    assert!(key["apiKey"].as_str().unwrap().starts_with("agb_"));
    let prefix = key["prefix"].as_str().unwrap();
    json_of(&agentbase(
        dir.path(),
        &["keys", "revoke", prefix, "--json"],
    ));
    let keys = json_of(&agentbase(
        dir.path(),
        &["keys", "list", "--workspace", ws_id, "--json"],
    ));
    assert!(keys[0]["revokedAt"].is_string());
    assert!(
        !agentbase(dir.path(), &["keys", "revoke", prefix])
            .status
            .success(),
        "already revoked"
    );

    let agent = json_of(&agentbase(
        dir.path(),
        &[
            "agents", "create", "--name", "Helper", "--temp", "0.5", "--json",
        ],
    ));
    let id = agent["id"].as_str().unwrap();
    assert_eq!(agent["temp"], 0.5);
    let updated = json_of(&agentbase(
        dir.path(),
        &["agents", "update", id, "--name", "Helper 2", "--json"],
    ));
    assert_eq!(updated["name"], "Helper 2");
    let shown = json_of(&agentbase(dir.path(), &["agents", "show", id, "--json"]));
    assert_eq!(shown["name"], "Helper 2");
    let listed = json_of(&agentbase(dir.path(), &["agents", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let actions_file = dir.path().join("actions.json");
    std::fs::write(
        &actions_file,
        r#"[{"name":"lookupOrder","description":"Find an order","parameters":{"type":"object"}}]"#,
    )
    .unwrap();
    let actions = json_of(&agentbase(
        dir.path(),
        &[
            "agents",
            "actions",
            id,
            "--set",
            actions_file.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(actions[0]["name"], "lookupOrder");
    let actions = json_of(&agentbase(dir.path(), &["agents", "actions", id, "--json"]));
    assert_eq!(actions.as_array().unwrap().len(), 1);
    std::fs::write(&actions_file, r#"[{"name":"bad name","parameters":{}}]"#).unwrap();
    let bad = agentbase(
        dir.path(),
        &[
            "agents",
            "actions",
            id,
            "--set",
            actions_file.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("actions[0].name"));
    let bad = agentbase(
        dir.path(),
        &["agents", "create", "--name", "x", "--model", "gpt-9"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("model"));
    json_of(&agentbase(dir.path(), &["agents", "delete", id, "--json"]));
    assert!(
        !agentbase(dir.path(), &["agents", "show", id])
            .status
            .success()
    );
}

#[test]
fn members_are_invited_reset_and_removed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let init = json_of(&agentbase(dir.path(), &["init", "--json"]));
    let ws = init["workspaceId"].as_str().unwrap();
    let fails_saying = |args: &[&str], says: &str| {
        let out = agentbase(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };

    let ann = json_of(&agentbase(
        dir.path(),
        &[
            "members",
            "invite",
            "Ann@Example.com",
            "--role",
            "admin",
            "--name",
            "Ann",
            "--json",
        ],
    ));
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["role"], "admin");
    assert_eq!(ann["status"], "invited");
    assert_eq!(ann["workspaceId"], ws);
    let link = ann["link"].as_str().unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:8080/dashboard/invite/") && link.len() > 50,
        "{link}"
    );

    fails_saying(
        &["members", "invite", "ann@example.com"],
        "ann@example.com is already a member of this workspace",
    );
    fails_saying(
        &["members", "invite", "not-an-email"],
        "email: must be an email address",
    );
    fails_saying(
        &["members", "invite", "bob@example.com", "--role", "root"],
        "role: must be one of owner, admin, member",
    );
    fails_saying(
        &[
            "members",
            "invite",
            "bob@example.com",
            "--workspace",
            "ws_nope",
        ],
        "not found",
    );

    let listed = json_of(&agentbase(dir.path(), &["members", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], ann["id"]);

    let reset = json_of(&agentbase(
        dir.path(),
        &["members", "reset-password", "ann@example.com", "--json"],
    ));
    let new_link = reset["link"].as_str().unwrap();
    assert!(new_link.contains("/dashboard/invite/") && new_link != link);

    let removed = json_of(&agentbase(
        dir.path(),
        &["members", "remove", ann["id"].as_str().unwrap(), "--json"],
    ));
    assert_eq!(removed["removed"]["email"], "ann@example.com");
    fails_saying(
        &["members", "remove", "ann@example.com"],
        "member: is not a member of this workspace",
    );
    let listed = json_of(&agentbase(dir.path(), &["members", "list", "--json"]));
    assert!(listed.as_array().unwrap().is_empty());
}

#[test]
fn invalid_configuration_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agentbase"))
        .args(["--data-dir"])
        .arg(dir.path())
        .args(["init"])
        .env("AGENTBASE__RATE_LIMIT__WINDOW_SECS", "soon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rate_limit.window_secs"), "{err}");

    std::fs::write(
        dir.path().join("agentbase.toml"),
        "[server]\nbind = \"127.0.0.1:8080\"\nport = 1\n",
    )
    .unwrap();
    let out = agentbase(dir.path(), &["init"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`server.port`") && err.contains("unknown field"),
        "{err}"
    );
}

#[test]
fn serve_starts_on_a_fresh_directory_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbase"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .envs(SCRIPTED)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut key = None;
    let mut dashboard_password = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        dashboard_password |= line.starts_with("Dashboard password (shown once");
        if let Some(k) = line.trim().strip_prefix("agb_") {
            key = Some(format!("agb_{k}"));
        }
        if line.starts_with("agentbase listening") {
            break;
        }
    }
    let key = key.expect("first start prints a key");
    assert!(
        dashboard_password,
        "first start prints the dashboard password"
    );
    let login = http_get(port, "/dashboard/login", None);
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let health = http_get(port, "/api/v2/health", None);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let agents = http_get(port, "/api/v2/agents", Some(&key));
    assert!(agents.starts_with("HTTP/1.1 200"), "{agents}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_get(port: u16, path: &str, key: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A server process on a fresh data dir with the scripted model configured.
struct Server {
    child: std::process::Child,
    port: u16,
    key: String,
    dir: tempfile::TempDir,
}

/// The scripted model as `scripted`, and the `local` provider scripted too, so
/// these tests neither fetch nor load weights (one test below does, on purpose).
const SCRIPTED: [(&str, &str); 5] = [
    ("AGENTBASE__PROVIDERS__local__KIND", "scripted"),
    // No knowledge base: these tests need no embedding weights.
    ("AGENTBASE__KNOWLEDGE__EMBEDDER", "none"),
    ("AGENTBASE__PROVIDERS__scripted__KIND", "scripted"),
    ("AGENTBASE__MODELS__scripted__PROVIDER", "scripted"),
    ("AGENTBASE__MODELS__scripted__CREDITS", "1"),
];

impl Server {
    fn start() -> Server {
        Server::start_with_config("")
    }

    /// [`Server::start`] with `config` as `<data-dir>/agentbase.toml`.
    fn start_with_config(config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        if !config.is_empty() {
            std::fs::write(dir.path().join("agentbase.toml"), config).unwrap();
        }
        let init = json_of(&agentbase(dir.path(), &["init", "--json"]));
        let key = init["apiKey"].as_str().unwrap().to_owned();
        let mut s = Server {
            child: spawn_serve(dir.path(), 0),
            port: 0,
            key,
            dir,
        };
        s.port = wait_listening(&mut s.child);
        s
    }

    fn restart(&mut self) {
        self.child = spawn_serve(self.dir.path(), self.port);
        wait_listening(&mut self.child);
    }

    /// Creates an agent through the API; its id.
    fn agent(&self, name: &str, model: &str) -> String {
        let (status, agent) = http(
            self.port,
            "POST",
            "/api/v2/agents",
            &self.key,
            &serde_json::json!({"name": name, "model": model}).to_string(),
        );
        assert_eq!(status, 201, "{agent}");
        agent["id"].as_str().unwrap().to_owned()
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/api/v2", self.port)
    }

    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentbase"))
            .args(args)
            .args(["--base-url", &self.base(), "--api-key", &self.key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_serve(dir: &std::path::Path, port: u16) -> std::process::Child {
    let port = if port == 0 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        port
    };
    Command::new(env!("CARGO_BIN_EXE_agentbase"))
        .arg("--data-dir")
        .arg(dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .envs(SCRIPTED)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads stdout until the server says it listens; returns its port.
fn wait_listening(child: &mut std::process::Child) -> u16 {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("agentbase listening on http://127.0.0.1:") {
            return rest.split(' ').next().unwrap().parse().unwrap();
        }
    }
    panic!("the server did not start");
}

fn http(port: u16, method: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // Bodies are small and sent with content-length.
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn an_acknowledged_answer_survives_kill_9() {
    let mut server = Server::start();
    let agent = json_of(
        &Command::new(env!("CARGO_BIN_EXE_agentbase"))
            .arg("--data-dir")
            .arg(server.dir.path())
            .args([
                "agents", "create", "--name", "durable", "--model", "scripted", "--json",
            ])
            .envs(SCRIPTED)
            .output()
            .unwrap(),
    );
    let agent = agent["id"].as_str().unwrap().to_owned();
    let (status, answer) = http(
        server.port,
        "POST",
        &format!("/api/v2/agents/{agent}/chat"),
        &server.key,
        r#"{"message":"remember me","stream":false}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let conversation = answer["data"]["metadata"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();

    let killed = Command::new("kill")
        .args(["-KILL", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = server.child.wait();
    server.restart();

    let (status, got) = http(
        server.port,
        "GET",
        &format!("/api/v2/agents/{agent}/conversations/{conversation}"),
        &server.key,
        "",
    );
    assert_eq!(status, 200, "{got}");
    let messages = got["data"]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["parts"][0]["text"], "Echo: remember me");
}

/// A loopback webhook receiver: records every request (event id, signature, body);
/// while `hang` is set it reads a request and never answers, so the delivery is in
/// flight when the server dies.
struct Receiver {
    port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
    hang: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = Receiver {
            port,
            got: Default::default(),
            hang: Default::default(),
        };
        let (got, hang) = (r.got.clone(), r.hang.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then the body by its content-length.
                let (head, body) = loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        break (String::new(), String::new());
                    };
                    if n == 0 {
                        break (String::new(), String::new());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break (head.to_owned(), body.to_owned());
                        }
                    }
                };
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                got.lock().unwrap().push((
                    header("x-agentbase-event-id"),
                    header("x-chatbase-signature"),
                    body,
                ));
                if hang.load(Ordering::SeqCst) {
                    held.push(stream);
                } else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
            }
        });
        r
    }

    fn received(&self) -> Vec<(String, String, String)> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `event` has arrived `times` times.
    fn wait_for(&self, event: &str, times: usize, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.received().iter().filter(|r| r.0 == event).count() >= times {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

fn kill_9(server: &mut Server) {
    let killed = Command::new("kill")
        .args(["-KILL", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = server.child.wait();
}

/// Webhook deliveries live in the database outbox: an event whose delivery had not
/// started when the server was killed with `kill -9`, and one whose delivery was in
/// flight, both reach the receiver after the restart, signed, and each event id is
/// acted on once by a receiver that deduplicates on it (the in-flight one may be
/// sent again: delivery is at least once).
#[test]
fn webhook_deliveries_survive_kill_9_of_the_server() {
    use std::sync::atomic::Ordering;
    let receiver = Receiver::start();
    // The worker's first pass is a minute away: the first event waits in the outbox.
    let slow = "[crawler]\nallow_private_networks = true\n\
                [webhooks]\npoll_interval_ms = 60000\ntimeout_secs = 1\n";
    let fast = "[crawler]\nallow_private_networks = true\n\
                [webhooks]\npoll_interval_ms = 100\ntimeout_secs = 1\n";
    let mut server = Server::start_with_config(slow);
    let agent = server.agent("hooks", "scripted");
    let (status, hook) = http(
        server.port,
        "POST",
        &format!("/api/v2/agents/{agent}/webhooks"),
        &server.key,
        &format!(
            r#"{{"url":"http://127.0.0.1:{}/hook","events":["ticket.created"]}}"#,
            receiver.port
        ),
    );
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let hook = hook["id"].as_str().unwrap().to_owned();
    let ticket = |server: &Server, subject: &str| {
        let (status, t) = http(
            server.port,
            "POST",
            &format!("/api/v2/agents/{agent}/helpdesk/tickets"),
            &server.key,
            &format!(
                r#"{{"subject":"{subject}","description":"{subject}","customer":{{"email":"a@example.com"}}}}"#
            ),
        );
        assert!(status == 200 || status == 201, "{status} {t}");
    };

    // 1. Killed before the delivery started.
    ticket(&server, "before the crash");
    kill_9(&mut server);
    assert!(
        receiver.received().is_empty(),
        "nothing was sent before the kill"
    );
    std::fs::write(server.dir.path().join("agentbase.toml"), fast).unwrap();
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.received().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = receiver.received();
    assert_eq!(first.len(), 1, "delivered after the restart: {first:?}");
    let (event, signature, body) = first[0].clone();
    assert!(!event.is_empty());
    assert_eq!(
        signature,
        agentbase_core::webhook::sign(&secret, body.as_bytes()),
        "signed with the endpoint's secret"
    );
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert!(body.contains("before the crash"), "{payload}");

    // 2. Killed while the delivery was in flight (the receiver holds the request).
    receiver.hang.store(true, Ordering::SeqCst);
    ticket(&server, "during the crash");
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.received().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let in_flight = receiver.received();
    assert_eq!(in_flight.len(), 2, "{in_flight:?}");
    let second = in_flight[1].0.clone();
    assert_ne!(second, event);
    kill_9(&mut server);
    receiver.hang.store(false, Ordering::SeqCst);
    server.restart();
    // The claim's lease (twice the timeout and 5 s) runs out, then it is resent.
    assert!(
        receiver.wait_for(&second, 2, 30),
        "the in-flight event is sent again after the restart: {:?}",
        receiver.received()
    );
    std::thread::sleep(Duration::from_millis(1_500));
    let all = receiver.received();
    for (_, signature, body) in &all {
        assert_eq!(
            *signature,
            agentbase_core::webhook::sign(&secret, body.as_bytes())
        );
    }
    let mut ids: Vec<&str> = all.iter().map(|r| r.0.as_str()).collect();
    ids.dedup();
    assert_eq!(
        ids,
        [event.as_str(), second.as_str()],
        "two events, each acted on once after deduplication by id: {all:?}"
    );
    assert_eq!(
        all.iter().filter(|r| r.0 == event).count(),
        1,
        "the delivered event is never sent again"
    );
    assert!(all.iter().filter(|r| r.0 == second).count() <= 3);
    // The delivery log says both were delivered.
    let (status, log) = http(
        server.port,
        "GET",
        &format!("/api/v2/agents/{agent}/webhooks/{hook}/deliveries"),
        &server.key,
        "",
    );
    assert_eq!(status, 200, "{log}");
    let states: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["delivered", "delivered"], "{log}");
}

/// The server's threads as (name, (nice value, scheduling policy)), from /proc.
#[cfg(target_os = "linux")]
fn threads_of(pid: u32) -> Vec<(String, (i32, i32))> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let name = stat[stat.find('(')? + 1..stat.rfind(')')?].to_owned();
            // Fields 19 (nice) and 41 (policy) are the 17th and 39th after the
            // name's closing parenthesis.
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
            let nice = fields.get(16)?.parse().ok()?;
            let policy = fields.get(38)?.parse().ok()?;
            Some((name, (nice, policy)))
        })
        .collect()
}

/// Training's chunking and index builds (and crawled pages' extraction) run on the
/// background runtime's threads, at nice 10, while the threads that answer requests
/// keep the server's own priority.
#[cfg(target_os = "linux")]
#[test]
fn background_work_runs_below_the_threads_that_answer_requests() {
    let server = Server::start();
    let agent = server.agent("bg", "scripted");
    let (status, source) = http(
        server.port,
        "POST",
        &format!("/api/v2/agents/{agent}/sources"),
        &server.key,
        r#"{"type":"text","name":"notes","content":"Some text to chunk.\n\nAnd a second paragraph."}"#,
    );
    assert!(status == 200 || status == 201, "{status} {source}");
    let source = source["id"].as_str().unwrap().to_owned();
    // Training chunks the text (in the background), then fails: no embedder here.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = http(
            server.port,
            "GET",
            &format!("/api/v2/agents/{agent}/sources/{source}"),
            &server.key,
            "",
        );
        if s["status"] == "failed" || Instant::now() > deadline {
            let error = s["error"].as_str().unwrap_or_default();
            assert!(error.contains("embedding"), "{s}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The background runtime's worker, and the blocking thread that chunked (kept
    // alive for a while after its work).
    let threads = threads_of(server.child.id());
    let background: Vec<(i32, i32)> = threads
        .iter()
        .filter(|(n, _)| n == "agentbase-bg")
        .map(|t| t.1)
        .collect();
    assert!(
        background.len() >= 2,
        "training used the background threads: {threads:?}"
    );
    let own = threads[0].1;
    // SCHED_IDLE is policy 5: a woken request thread preempts them at once.
    assert!(
        background
            .iter()
            .all(|&(n, p)| n >= own.0.max(10) && p == 5),
        "background threads at nice 10 or more, SCHED_IDLE: {threads:?}"
    );
    let workers: Vec<(i32, i32)> = threads
        .iter()
        .filter(|(n, _)| n.starts_with("tokio-r"))
        .map(|t| t.1)
        .collect();
    assert!(!workers.is_empty(), "{threads:?}");
    assert!(
        workers.iter().all(|&n| n == own),
        "the request threads keep the server's priority: {threads:?}"
    );
}

#[test]
fn chat_and_conversations_work_from_the_terminal() {
    let server = Server::start();
    let agent = server.agent("cli", "scripted");

    let out = server.cli(&["chat", &agent], "hello there\nsecond line\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Echo: hello there"), "{stdout}");
    assert!(stdout.contains("Echo: second line"), "{stdout}");

    let out = server.cli(&["conversations", "list", &agent, "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "both lines went to one conversation");
    let conversation = lines[0]["id"].as_str().unwrap().to_owned();

    let out = server.cli(
        &["conversations", "show", &agent, &conversation, "--json"],
        "",
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["messages"].as_array().unwrap().len(), 4);

    let out = server.cli(&["conversations", "export", &agent], "");
    let exported: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["messages"].as_array().unwrap().len(), 4);

    let bad = Command::new(env!("CARGO_BIN_EXE_agentbase"))
        .args([
            "conversations",
            "list",
            &agent,
            "--base-url",
            &server.base(),
            "--api-key",
            "agb_wrong_key",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("AUTH_INVALID_API_KEY"));
}

/// Where the weights are cached between runs (shared with the llm crate's tests).
fn models_cache() -> std::path::PathBuf {
    std::env::var_os("AGENTBASE_MODELS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/cache/agentbase-models"))
}

/// Runs `serve` (a command for the binary, to which the data dir and bind address
/// are added) on a fresh data dir whose `models` is the shared weights cache, asks
/// the default local model one question, stops the server; returns the answer's
/// status and body and what the server logged.
fn first_answer(mut serve: Command, max_tokens: &str) -> (u16, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let cache = models_cache();
    std::fs::create_dir_all(&cache).unwrap();
    // `<data-dir>/models` is the shared cache, so the weights are fetched once per
    // machine; a fresh cache exercises the real fetch.
    std::os::unix::fs::symlink(&cache, dir.path().join("models")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("serve.log");
    let mut child = serve
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("AGENTBASE_DATA_DIR")
        .env("AGENTBASE__CHAT__MAX_TOKENS", max_tokens)
        .env("AGENTBASE__LOG__LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut key = None;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(k) = line.trim().strip_prefix("agb_") {
            key = Some(format!("agb_{k}"));
        }
        if line.starts_with("agentbase listening") {
            break;
        }
    }
    // Keep draining stdout so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let Some(key) = key else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve did not start: {}", logged());
    };
    let (status, agent) = http(
        port,
        "POST",
        "/api/v2/agents",
        &key,
        r#"{"name":"local","model":"auto"}"#,
    );
    assert_eq!(status, 201, "{agent}");
    let id = agent["id"].as_str().unwrap();
    let (status, answer) = http(
        port,
        "POST",
        &format!("/api/v2/agents/{id}/chat"),
        &key,
        r#"{"message":"What is the capital of France?","stream":false}"#,
    );
    let _ = child.kill();
    let _ = child.wait();
    (status, answer, logged())
}

#[test]
fn the_first_start_fetches_the_default_model_and_answers_with_it() {
    let (status, answer, log) = first_answer(Command::new(env!("CARGO_BIN_EXE_agentbase")), "24");
    assert_eq!(status, 200, "{answer} {log}");
    let text = answer["data"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.split_whitespace().count() >= 2,
        "SmolLM2 answered: {answer}"
    );
    // Hitting max_tokens is still a normal end on the wire (contract: stop|error|tool-calls).
    assert_eq!(
        answer["data"]["metadata"]["finishReason"], "stop",
        "{answer}"
    );
}

/// A one-shot HTTP server answering every request with `body` (an Apify items URL).
fn serve_once(body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/v2/datasets/abc/items?format=json")
}

#[test]
fn knowledge_is_managed_and_searched_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cache = models_cache();
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(&cache, dir.path().join("models")).unwrap();
    json_of(&agentbase(dir.path(), &["init", "--json"]));
    let agent = json_of(&agentbase(
        dir.path(),
        &["agents", "create", "--name", "Docs bot", "--json"],
    ))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = json_of(&agentbase(
        dir.path(),
        &[
            "sources",
            "add",
            &agent,
            "--name",
            "Refunds",
            "--text",
            "Refunds are paid within five business days after the parcel arrives.",
            "--json",
        ],
    ));
    assert_eq!(text["status"], "untrained");

    // An Apify dataset, from a file and from an items URL.
    let items = serde_json::json!([
        {"url": "https://docs.example.com/descaling", "metadata": {"title": "Descaling"},
         "text": "Descale the boiler every two months with citric acid."}
    ])
    .to_string();
    let file = dir.path().join("items.json");
    std::fs::write(&file, &items).unwrap();
    let from_file = json_of(&agentbase(
        dir.path(),
        &[
            "sources",
            "import-apify",
            &agent,
            file.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(from_file["type"], "file");
    let url = serve_once(items.replace("two months", "three months"));
    let import_url = [
        "sources",
        "import-apify",
        &agent,
        &url,
        "--name",
        "Run 2",
        "--json",
    ];
    let guarded = agentbase(dir.path(), &import_url);
    assert!(
        !guarded.status.success(),
        "a loopback dataset URL is refused"
    );
    assert!(
        String::from_utf8_lossy(&guarded.stderr).contains("crawler.allow_private_networks"),
        "{}",
        String::from_utf8_lossy(&guarded.stderr)
    );
    let url = serve_once(items.replace("two months", "three months"));
    let import_url = [
        "sources",
        "import-apify",
        &agent,
        &url,
        "--name",
        "Run 2",
        "--json",
    ];
    let from_url = json_of(
        &Command::new(env!("CARGO_BIN_EXE_agentbase"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(import_url)
            .env_remove("AGENTBASE_DATA_DIR")
            .env("AGENTBASE__CRAWLER__ALLOW_PRIVATE_NETWORKS", "true")
            .output()
            .expect("runs"),
    );
    assert_eq!(from_url["name"], "Run 2");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"not": "a dataset"}"#).unwrap();
    let refused = agentbase(
        dir.path(),
        &["sources", "import-apify", &agent, bad.to_str().unwrap()],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Apify dataset"));

    // The server's worker trains them; `search` ranks the knowledge.
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbase"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .envs(
            SCRIPTED
                .into_iter()
                .filter(|(k, _)| *k != "AGENTBASE__KNOWLEDGE__EMBEDDER"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(&mut child);
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = agentbase(dir.path(), &["sources", "list", &agent, "--json"]);
        let lines = String::from_utf8_lossy(&out.stdout).to_string();
        let statuses: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if statuses.len() == 3 && statuses.iter().all(|s| s["status"] == "trained") {
            break;
        }
        assert!(Instant::now() < deadline, "never trained: {lines}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let hits = json_of(&agentbase(
        dir.path(),
        &[
            "search",
            &agent,
            "when do I get my refund?",
            "--limit",
            "3",
            "--json",
        ],
    ));
    let first = &hits["data"][0];
    assert_eq!(first["sourceId"], text["id"]);
    assert_eq!(first["rank"], 1);
    assert!(first["relevance"].as_f64().unwrap() > 0.3, "{hits}");
    let hits = json_of(&agentbase(
        dir.path(),
        &["search", &agent, "descaling schedule", "--json"],
    ));
    assert_eq!(hits["data"][0]["url"], "https://docs.example.com/descaling");
}

/// `qemu-x86_64` (Debian's qemu-user; `scripts/services.sh` installs it), or `None`
/// where it is missing and the run does not require it.
fn qemu() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("qemu-x86_64"))
            .find(|p| p.is_file())
    });
    if found.is_none() && std::env::var_os("AGENTBASE_TEST_REQUIRE_SERVICES").is_some() {
        panic!("qemu-x86_64 is missing: scripts/services.sh installs qemu-user");
    }
    found
}

/// The portable build on a CPU without AVX-512 (Haswell: AVX2, FMA, F16C), emulated
/// by qemu: it picks the AVX2 kernels, starts, serves and answers with the local
/// model. This is the test profile's binary, built with the same target CPU
/// (`.cargo/config.toml`) and the same run-time dispatch as a release build: an
/// instruction outside the emulated CPU would kill it with SIGILL here just the same.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_portable_binary_serves_and_answers_on_an_emulated_avx2_only_cpu() {
    let Some(qemu) = qemu() else {
        eprintln!("skipped: no qemu-x86_64");
        return;
    };
    let emulated = || {
        let mut cmd = Command::new(&qemu);
        cmd.args(["-cpu", "Haswell"])
            .arg(env!("CARGO_BIN_EXE_agentbase"))
            .env_remove("AGENTBASE_KERNELS")
            // Emulation runs the model many times slower than the real CPU; on a
            // loaded machine one answer can outlast the default 120 s deadline.
            .env("AGENTBASE__SERVER__REQUEST_TIMEOUT_SECS", "1800");
        cmd
    };
    let version = emulated().arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        version.contains("kernels: chat avx2 (AVX2+FMA), embeddings avx2 (AVX2+FMA)"),
        "{version}"
    );
    // Forcing kernels the CPU lacks is refused, naming what is missing.
    let forced = emulated()
        .arg("--version")
        .env("AGENTBASE_KERNELS", "avx512")
        .output()
        .unwrap();
    let forced = String::from_utf8_lossy(&forced.stdout).into_owned();
    assert!(
        forced.contains("AGENTBASE_KERNELS=avx512: this CPU lacks avx512f"),
        "{forced}"
    );

    let (status, answer, log) = first_answer(emulated(), "12");
    assert_eq!(status, 200, "{answer} {log}");
    let text = answer["data"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.split_whitespace().count() >= 2,
        "SmolLM2 answered under qemu: {answer}"
    );
    // Both local models ran on our forward passes, on the AVX2 kernels.
    assert!(log.contains("forward=ours (avx2)"), "{log}");
    assert!(log.contains("encoder=ours (avx2)"), "{log}");
}
