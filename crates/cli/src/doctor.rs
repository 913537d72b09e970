//! `agentbase doctor`: what a new operator needs to know about an installation, one
//! line per check, and a failing exit status when something would break serving
//! (or, for the SSRF guard, leave it open). `agentbase health` asks a running server
//! whether it is up (the container image's health check).

use std::path::Path;
use std::time::Duration;

use agentbase_service::settings::ProviderKind;
use agentbase_service::{LimiterBackend, Settings};
use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct DoctorArgs {
    /// Fail when the data directory's filesystem has less free space than this, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub min_free_mb: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

struct Check {
    name: &'static str,
    status: Status,
    detail: String,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

/// Runs every check and prints one line each; an error when any failed.
pub async fn doctor(
    settings: &Settings,
    data_dir: &Path,
    args: &DoctorArgs,
    as_json: bool,
) -> anyhow::Result<()> {
    let checks = vec![
        cpu(),
        data_dir_check(data_dir),
        database(settings, data_dir).await,
        redis(settings).await,
        models(settings, data_dir).await,
        disk(data_dir, args.min_free_mb),
        ssrf(settings),
    ];
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if as_json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| json!({"check": c.name, "status": c.status.label().to_lowercase(), "detail": c.detail}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": failed == 0, "checks": list}))?
        );
    } else {
        for c in &checks {
            println!("{:<5} {:<9} {}", c.status.label(), c.name, c.detail);
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} checks failed", checks.len());
    }
    Ok(())
}

/// The kernels the local models run on this CPU (as `agentbase --version` says):
/// scalar is a warning (slow, not broken); a forced level the CPU lacks is a failure,
/// since the models would refuse to load.
fn cpu() -> Check {
    use agentbase_llm::cpu::Level;
    match agentbase_llm::cpu::kernels() {
        Ok(k) => {
            let status = if k.chat == Level::Scalar || k.embeddings == Level::Scalar {
                Status::Warn
            } else {
                Status::Ok
            };
            check("cpu", status, format!("local models run on: {k}"))
        }
        Err(e) => check(
            "cpu",
            Status::Fail,
            format!("{e}; this CPU's best: {}", agentbase_llm::cpu::best()),
        ),
    }
}

fn data_dir_check(dir: &Path) -> Check {
    if !dir.is_dir() {
        return check(
            "data-dir",
            Status::Fail,
            format!(
                "{} does not exist: run `agentbase init` (or `serve`) first",
                dir.display()
            ),
        );
    }
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"probe") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            check(
                "data-dir",
                Status::Ok,
                format!("{} is writable", dir.display()),
            )
        }
        Err(e) => check(
            "data-dir",
            Status::Fail,
            format!("{} is not writable: {e}", dir.display()),
        ),
    }
}

/// The URL with its password hidden.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

async fn database(settings: &Settings, data_dir: &Path) -> Check {
    let url = agentbase_service::database_url(settings, data_dir);
    let shown = redact(&url);
    let state = match agentbase_store::schema_state(&url, Duration::from_secs(5)).await {
        Ok(s) => s,
        Err(e) => {
            return check(
                "database",
                Status::Fail,
                format!("{shown} is unreachable: {e}"),
            );
        }
    };
    let (status, detail) = match state.applied {
        None => (
            Status::Fail,
            format!("{shown} has no schema: run `agentbase init` or `serve`"),
        ),
        Some(v) if v < state.known => (
            Status::Fail,
            format!(
                "{shown} is at schema {v}, this binary needs {}: start `agentbase serve` once to migrate",
                state.known
            ),
        ),
        Some(v) if v > state.known => (
            Status::Fail,
            format!(
                "{shown} is at schema {v}, newer than this binary ({}): upgrade agentbase",
                state.known
            ),
        ),
        Some(v) => (
            Status::Ok,
            format!("{shown} reachable, schema {v} (current)"),
        ),
    };
    check("database", status, detail)
}

async fn redis(settings: &Settings) -> Check {
    let rl = &settings.rate_limit;
    if rl.backend != LimiterBackend::Redis {
        return check(
            "redis",
            Status::Ok,
            "not used (rate_limit.backend = \"memory\")",
        );
    }
    let shown = redact(&rl.redis_url);
    // The limiter's own script, on a key of its own: proves Redis runs it, not only
    // that something accepts connections on the port.
    let probe = async {
        let limiter =
            agentbase_limiter::RedisLimiter::connect(&rl.redis_url, "agentbase:doctor:").await?;
        let window = agentbase_limiter::Window {
            limit: u32::MAX,
            window_ms: 1_000,
        };
        use agentbase_core::Clock;
        limiter
            .check("probe", window, agentbase_core::SystemClock.now_ms())
            .await
    };
    match probe.await {
        Ok(_) => check(
            "redis",
            Status::Ok,
            format!("{shown} reachable (rate-limit script ran)"),
        ),
        Err(e) => check(
            "redis",
            Status::Fail,
            format!("{shown} is unreachable: {e}"),
        ),
    }
}

async fn models(settings: &Settings, data_dir: &Path) -> Check {
    use agentbase_llm::fetch::{CHAT_GGUF, EMBEDDING_DIR, FileState, verify_default_models};
    let mut custom = Vec::new();
    let mut default_chat = false;
    for (name, p) in &settings.providers {
        let used = settings.models.values().any(|m| &m.provider == name);
        if p.kind != ProviderKind::Local || !used {
            continue;
        }
        if p.model_path.is_empty() {
            default_chat = true;
        } else {
            custom.push((name.clone(), p.model_path.clone()));
        }
    }
    let default_embedder = settings.knowledge.embedder == "local";
    for (name, path) in &custom {
        if let Err(e) = std::fs::File::open(path) {
            return check(
                "models",
                Status::Fail,
                format!("providers.{name}.model_path {path} cannot be read: {e}"),
            );
        }
    }
    if !default_chat && !default_embedder {
        let detail = if custom.is_empty() {
            "no local models configured".to_owned()
        } else {
            format!("custom GGUF present (not checksummed): {}", paths(&custom))
        };
        return check("models", Status::Ok, detail);
    }
    let models_dir = data_dir.join("models");
    let files = {
        let dir = models_dir.clone();
        match tokio::task::spawn_blocking(move || verify_default_models(&dir)).await {
            Ok(files) => files,
            Err(e) => return check("models", Status::Fail, format!("cannot check: {e}")),
        }
    };
    let needed: Vec<_> = files
        .into_iter()
        .filter(|f| {
            (default_chat && f.name == CHAT_GGUF)
                || (default_embedder && f.name.starts_with(EMBEDDING_DIR))
        })
        .collect();
    let mut missing = Vec::new();
    for f in &needed {
        match &f.state {
            FileState::Verified => {}
            FileState::Missing => missing.push(f.name),
            FileState::WrongChecksum { expected, actual } => {
                return check(
                    "models",
                    Status::Fail,
                    format!(
                        "{} has the wrong checksum (sha256 {actual}, expected {expected}): \
                         delete it and run `agentbase models fetch`",
                        f.path.display()
                    ),
                );
            }
            FileState::Unreadable(e) => {
                return check(
                    "models",
                    Status::Fail,
                    format!("{} cannot be read: {e}", f.path.display()),
                );
            }
        }
    }
    if !missing.is_empty() {
        return check(
            "models",
            Status::Warn,
            format!(
                "not fetched yet into {}: {} (`serve` fetches them on first start; \
                 `agentbase models fetch` does it now)",
                models_dir.display(),
                missing.join(", ")
            ),
        );
    }
    let mut detail = format!(
        "{} default model files in {} match their pinned checksums",
        needed.len(),
        models_dir.display()
    );
    if !custom.is_empty() {
        detail.push_str(&format!("; custom GGUF present: {}", paths(&custom)));
    }
    check("models", Status::Ok, detail)
}

fn paths(custom: &[(String, String)]) -> String {
    custom
        .iter()
        .map(|(_, p)| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn disk(data_dir: &Path, min_free_mb: u64) -> Check {
    // A data dir that does not exist yet will be made in its nearest existing parent.
    let mut at = data_dir;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    match fs4::available_space(at) {
        Ok(bytes) => {
            let mib = bytes / (1024 * 1024);
            let detail = format!(
                "{} free on the data directory's filesystem (minimum {min_free_mb} MiB)",
                human(bytes)
            );
            let status = if mib < min_free_mb {
                Status::Fail
            } else {
                Status::Ok
            };
            check("disk", status, detail)
        }
        Err(e) => check(
            "disk",
            Status::Fail,
            format!("cannot read free space of {}: {e}", at.display()),
        ),
    }
}

fn human(bytes: u64) -> String {
    const GIB: u64 = 1024 * 1024 * 1024;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes / (1024 * 1024))
    }
}

fn ssrf(settings: &Settings) -> Check {
    if settings.crawler.allow_private_networks {
        check(
            "ssrf",
            Status::Fail,
            "crawler.allow_private_networks is on: website sources and crawls can reach \
             private, loopback and link-local addresses (turn it off unless you crawl an \
             intranet on purpose)",
        )
    } else {
        check(
            "ssrf",
            Status::Ok,
            "guard on: the crawler refuses private, loopback and link-local addresses",
        )
    }
}

/// `agentbase health`: GET `/api/v2/health` of a running server (by default the one
/// this configuration binds), exiting non-zero unless it answers `ok`.
pub async fn health(settings: &Settings, url: Option<String>, as_json: bool) -> anyhow::Result<()> {
    let root = match url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let mut addr = settings.server.bind;
            // A server bound to every address is reached over loopback.
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr.ip() {
                    std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}")
        }
    };
    let url = format!("{root}/api/v2/health");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url} is unreachable: {e}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() || body["status"] != "ok" {
        anyhow::bail!("{url} answered {status}: {body}");
    }
    if as_json {
        println!("{body}");
    } else {
        println!("ok {url}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_a_url() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/agentbase"),
            "postgres://app:***@db:5432/agentbase"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("sqlite:///data/agentbase.db"),
            "sqlite:///data/agentbase.db"
        );
    }
}
