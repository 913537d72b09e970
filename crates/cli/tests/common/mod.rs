//! What the tests that drive the real `agentbase` binary share: a server on a fresh
//! data dir with the scripted model, one-shot HTTP requests, and running external
//! clients (Node, Python) with a deadline. Each test binary uses a part of it.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The scripted model under a Chatbase model name (`auto`), so agents created with the
/// defaults carry a `model` that the official `Agent` schema accepts.
pub const SCRIPTED: [(&str, &str); 5] = [
    ("AGENTBASE__PROVIDERS__scripted__KIND", "scripted"),
    ("AGENTBASE__MODELS__auto__PROVIDER", "scripted"),
    ("AGENTBASE__MODELS__auto__CREDITS", "1"),
    ("AGENTBASE__AGENTS__DEFAULT_MODEL", "auto"),
    ("AGENTBASE__LOG__LEVEL", "warn"),
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn compat_dir() -> PathBuf {
    repo_root().join("compat")
}

/// A server on a fresh data dir, listening on a port of its own choosing.
pub struct Server {
    child: Child,
    pub port: u16,
    pub key: String,
    /// The dashboard password `init` generated.
    pub admin_password: String,
    pub dir: tempfile::TempDir,
}

impl Server {
    pub fn start(extra_env: &[(&str, &str)]) -> Server {
        Self::start_with_config(extra_env, "")
    }

    /// [`Server::start`] with `config` as `<data-dir>/agentbase.toml`.
    pub fn start_with_config(extra_env: &[(&str, &str)], config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        if !config.is_empty() {
            std::fs::write(dir.path().join("agentbase.toml"), config).unwrap();
        }
        link_models(dir.path());
        let init = agentbase(dir.path(), extra_env)
            .args(["init", "--json"])
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "init: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let init: Value = serde_json::from_slice(&init.stdout).unwrap();
        let key = init["apiKey"].as_str().unwrap().to_owned();
        let admin_password = init["adminPassword"].as_str().unwrap().to_owned();
        Server::serve(dir, key, admin_password, extra_env)
    }

    /// `serve` on a data dir that is already initialised (a restored backup), whose
    /// API key is `key`.
    pub fn serve(
        dir: tempfile::TempDir,
        key: String,
        admin_password: String,
        extra_env: &[(&str, &str)],
    ) -> Server {
        let log = File::create(dir.path().join("serve.log")).unwrap();
        let mut child = agentbase(dir.path(), extra_env)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut port = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("agentbase listening on http://127.0.0.1:") {
                port = rest.split(' ').next().and_then(|p| p.parse().ok());
                break;
            }
        }
        // Keep draining stdout so the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let mut server = Server {
            child,
            port: 0,
            key,
            admin_password,
            dir,
        };
        server.port = port.unwrap_or_else(|| panic!("serve did not start: {}", server.log()));
        server
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/api/v2", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn create_agent(&self, name: &str) -> String {
        let (status, body) = http(
            self.port,
            "POST",
            "/api/v2/agents",
            &self.key,
            &json!({ "name": name }).to_string(),
        );
        assert_eq!(status, 201, "create agent: {body}");
        serde_json::from_str::<Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn transcript(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `<dir>/models` the shared weights cache (the embedder is real).
pub fn link_models(dir: &Path) {
    let cache = std::env::var_os("AGENTBASE_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/cache/agentbase-models"));
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(&cache, dir.join("models")).unwrap();
}

pub fn agentbase(dir: &Path, extra_env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentbase"));
    cmd.arg("--data-dir").arg(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("AGENTBASE__") || key == "AGENTBASE_DATA_DIR" {
            cmd.env_remove(key);
        }
    }
    cmd.envs(SCRIPTED).envs(extra_env.iter().copied());
    cmd
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub fn http(port: u16, method: &str, path: &str, key: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// Runs an external client with a deadline; returns its exit success, stdout, stderr.
pub fn run(cmd: &mut Command, secs: u64) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let mut stderr = read(&err);
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {secs} s)"));
    }
    (status.is_some_and(|s| s.success()), read(&out), stderr)
}
