//! Where untrusted documents are parsed. Every upload (API, dashboard, CLI) and every
//! document a crawl finds goes through [`Extractor::extract`], never through
//! [`files::extract`](crate::files::extract) on the async runtime.
//!
//! The server runs [`Mode::Worker`]: the `agentbase` binary re-executed as
//! `agentbase extract-worker`, one process per document, with an address-space
//! limit, a CPU-time limit, no files to write, an empty environment and a wall-clock
//! deadline after which it is killed. A parser that overflows its stack, allocates
//! without end or loops forever kills only its worker; the caller gets
//! [`FileError::Unreadable`] naming what happened (a 400 for an upload, a failed
//! page for a crawl), and the death is logged. [`Mode::Thread`] (library users and
//! tests without the binary) runs the same code on a thread with a large stack,
//! under the same deadline and output cap but without the process boundary.
//!
//! Wire format to the worker: one JSON header line (`filename`, `contentType`),
//! then the file's bytes to end of input. It answers one JSON object: `{"ok": …}`
//! or `{"error": {"code", "message"}}`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentbase_core::knowledge::{Document, FILE_MAX_BYTES};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::files::{self, FileError, FileText};
use crate::settings::ExtractionSettings;

/// The hidden subcommand that runs [`worker_main`].
pub const WORKER_SUBCOMMAND: &str = "extract-worker";

/// Where documents are parsed.
#[derive(Debug, Clone)]
pub enum Mode {
    /// In a child process: this program (normally `agentbase`), run with
    /// [`WORKER_SUBCOMMAND`].
    Worker(PathBuf),
    /// On a thread of this process.
    Thread,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Address space of a worker process.
    pub memory_bytes: u64,
    /// Wall-clock time for one document (CPU time is limited to the same).
    pub timeout: Duration,
    /// How long a document may wait for a free slot before the caller is told to
    /// come back later.
    pub queue_timeout: Duration,
}

/// Parses untrusted documents under limits, a few at a time.
#[derive(Clone)]
pub struct Extractor {
    inner: Arc<Inner>,
}

struct Inner {
    mode: Mode,
    limits: Limits,
    slots: Semaphore,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("mode", &self.inner.mode)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl Extractor {
    pub fn new(mode: Mode, settings: &ExtractionSettings) -> Extractor {
        Extractor {
            inner: Arc::new(Inner {
                mode,
                limits: Limits {
                    memory_bytes: settings.worker_memory_mb << 20,
                    timeout: Duration::from_secs(settings.timeout_secs.max(1)),
                    queue_timeout: Duration::from_secs(settings.queue_timeout_secs),
                },
                slots: Semaphore::new(settings.max_concurrent.max(1)),
            }),
        }
    }

    pub fn mode(&self) -> &Mode {
        &self.inner.mode
    }

    /// The text of an untrusted file. Cheap refusals (empty, too large, unknown
    /// type) are answered here; everything that parses runs under the limits.
    pub async fn extract(
        &self,
        filename: &str,
        content_type: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<FileText, FileError> {
        files::precheck(filename, content_type, &bytes)?;
        let kind = FileError::kind_name(filename, content_type, &bytes);
        let limits = self.inner.limits;
        let _slot = tokio::time::timeout(limits.queue_timeout, self.inner.slots.acquire())
            .await
            .map_err(|_| FileError::Busy)?
            .map_err(|_| FileError::Busy)?;
        let request = Request {
            filename: filename.to_owned(),
            content_type: content_type.map(str::to_owned),
        };
        let result = match &self.inner.mode {
            Mode::Worker(program) => run_worker(program, &request, bytes, limits).await,
            Mode::Thread => run_thread(request, bytes, limits).await,
        };
        if let Err(FileError::Unreadable(why)) = &result {
            tracing::warn!(kind, reason = %why, "a document could not be read");
        }
        result
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    filename: String,
    content_type: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePage {
    title: String,
    url: Option<String>,
    markdown: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireText {
    media_type: String,
    markdown: String,
    pages: Vec<WirePage>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireError {
    code: String,
    message: String,
    /// `Corrupt`'s format name.
    #[serde(default)]
    kind: String,
    /// `Unsupported`'s extension.
    #[serde(default)]
    detail: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    Ok(WireText),
    Error(WireError),
}

fn to_wire(result: Result<FileText, FileError>) -> Reply {
    match result {
        Ok(t) => Reply::Ok(WireText {
            media_type: t.media_type,
            markdown: t.markdown,
            pages: t
                .pages
                .into_iter()
                .map(|p| WirePage {
                    title: p.title,
                    url: p.url,
                    markdown: p.markdown,
                })
                .collect(),
        }),
        Err(e) => {
            let message = e.to_string();
            let (code, kind, detail) = match e {
                FileError::Unsupported(ext) => ("unsupported", String::new(), ext),
                FileError::Empty => ("empty", String::new(), String::new()),
                FileError::TooLarge => ("too_large", String::new(), String::new()),
                FileError::Corrupt { kind, reason } => ("corrupt", kind.to_owned(), reason),
                FileError::NoText => ("no_text", String::new(), String::new()),
                FileError::Unreadable(why) => ("unreadable", String::new(), why),
                FileError::Busy => ("busy", String::new(), String::new()),
            };
            Reply::Error(WireError {
                code: code.into(),
                message,
                kind,
                detail,
            })
        }
    }
}

fn from_wire(reply: Reply, kind: &'static str) -> Result<FileText, FileError> {
    match reply {
        Reply::Ok(t) => Ok(FileText {
            media_type: t.media_type,
            markdown: t.markdown,
            pages: t
                .pages
                .into_iter()
                .map(|p| Document {
                    title: p.title,
                    url: p.url,
                    markdown: p.markdown,
                })
                .collect(),
        }),
        Reply::Error(e) => Err(match e.code.as_str() {
            "unsupported" => FileError::Unsupported(e.detail),
            "empty" => FileError::Empty,
            "too_large" => FileError::TooLarge,
            "corrupt" => FileError::Corrupt {
                kind: static_kind(&e.kind).unwrap_or(kind),
                reason: e.detail,
            },
            "no_text" => FileError::NoText,
            "busy" => FileError::Busy,
            _ => FileError::Unreadable(e.detail),
        }),
    }
}

fn static_kind(kind: &str) -> Option<&'static str> {
    [
        "an Apify dataset",
        "text",
        "Markdown",
        "HTML",
        "PDF",
        "DOCX",
    ]
    .into_iter()
    .find(|k| *k == kind)
}

/// The reply may hold the text (at most [`files::MAX_TEXT_BYTES`]) JSON-escaped,
/// twice over for datasets (the pages and the joined Markdown).
const MAX_REPLY_BYTES: u64 = 4 * files::MAX_TEXT_BYTES as u64 + (1 << 20);

async fn run_worker(
    program: &std::path::Path,
    request: &Request,
    bytes: Vec<u8>,
    limits: Limits,
) -> Result<FileText, FileError> {
    let kind = FileError::kind_name(&request.filename, request.content_type.as_deref(), &bytes);
    let unreadable = |why: String| FileError::Unreadable(why);
    let mut child = tokio::process::Command::new(program)
        .arg(WORKER_SUBCOMMAND)
        .arg(limits.memory_bytes.to_string())
        .arg(limits.timeout.as_secs().to_string())
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| unreadable(format!("the document reader could not start ({e})")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let mut header = serde_json::to_vec(request).expect("a request serializes");
    header.push(b'\n');
    let feed = async move {
        // A worker that dies early closes its end; its exit status says why.
        let _ = stdin.write_all(&header).await;
        let _ = stdin.write_all(&bytes).await;
        let _ = stdin.shutdown().await;
    };
    let read = async {
        let mut out = Vec::new();
        (&mut stdout)
            .take(MAX_REPLY_BYTES + 1)
            .read_to_end(&mut out)
            .await
            .map(|_| out)
    };
    // Rust's runtime says on stderr why it aborted (a stack overflow and a failed
    // allocation both end in SIGABRT).
    let read_err = async {
        let mut err = Vec::new();
        let _ = (&mut stderr).take(4096).read_to_end(&mut err).await;
        String::from_utf8_lossy(&err).into_owned()
    };
    let run = async {
        let ((), out, err) = tokio::join!(feed, read, read_err);
        let status = child.wait().await;
        (out, status, err)
    };
    let (out, status, err) = match tokio::time::timeout(limits.timeout, run).await {
        Ok(done) => done,
        Err(_) => {
            let _ = child.kill().await;
            return Err(unreadable(format!(
                "reading it took longer than {} s",
                limits.timeout.as_secs()
            )));
        }
    };
    let out = out.map_err(|e| unreadable(format!("the document reader failed ({e})")))?;
    if out.len() as u64 > MAX_REPLY_BYTES {
        let _ = child.kill().await;
        return Err(unreadable("it produced too much text".into()));
    }
    let status = status.map_err(|e| unreadable(format!("the document reader failed ({e})")))?;
    if !status.success() {
        return Err(unreadable(death(status, &err, limits)));
    }
    let reply: Reply = serde_json::from_slice(&out)
        .map_err(|_| unreadable("the document reader gave no answer".into()))?;
    from_wire(reply, kind)
}

/// Why a worker ended without answering, in words for the uploader.
fn death(status: std::process::ExitStatus, stderr: &str, limits: Limits) -> String {
    if stderr.contains("overflowed its stack") {
        return "its structure is nested too deeply to read".into();
    }
    if stderr.contains("memory allocation") {
        return format!(
            "reading it needed more than {} MB of memory",
            limits.memory_bytes >> 20
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Numbers are the same on every Linux architecture agentbase builds for.
        const SIGABRT: i32 = 6;
        const SIGBUS: i32 = 7;
        const SIGKILL: i32 = 9;
        const SIGSEGV: i32 = 11;
        const SIGXCPU: i32 = 24;
        match status.signal() {
            Some(SIGSEGV | SIGBUS) => {
                return "its structure made the reader crash (too deeply nested or malformed)"
                    .into();
            }
            Some(SIGABRT) => {
                return format!(
                    "reading it needed more than {} MB of memory",
                    limits.memory_bytes >> 20
                );
            }
            Some(SIGXCPU | SIGKILL) => {
                return format!("reading it took longer than {} s", limits.timeout.as_secs());
            }
            Some(sig) => return format!("the reader stopped on signal {sig}"),
            None => {}
        }
    }
    format!("the reader stopped ({status})")
}

/// Stack for [`Mode::Thread`]: reserved, not committed, so only what a deep parse
/// touches costs memory.
const THREAD_STACK_BYTES: usize = 256 << 20;

async fn run_thread(
    request: Request,
    bytes: Vec<u8>,
    limits: Limits,
) -> Result<FileText, FileError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("extract".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| {
                files::extract(&request.filename, request.content_type.as_deref(), &bytes)
            })
            .unwrap_or_else(|_| {
                Err(FileError::Unreadable(
                    "its structure made the reader fail".into(),
                ))
            });
            let _ = tx.send(result);
        })
        .map_err(|e| FileError::Unreadable(format!("the document reader could not start ({e})")))?;
    match tokio::time::timeout(limits.timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(FileError::Unreadable("the document reader failed".into())),
        // The thread cannot be stopped; it ends when the parse does.
        Err(_) => Err(FileError::Unreadable(format!(
            "reading it took longer than {} s",
            limits.timeout.as_secs()
        ))),
    }
}

/// The worker's whole life: limits on itself first, then one document from
/// standard input, one reply on standard output. `args` are the memory limit in
/// bytes and the CPU limit in seconds.
pub fn worker_main(args: &[String]) -> std::process::ExitCode {
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    let (Some(memory), Some(cpu_secs)) = (number(0), number(1)) else {
        eprintln!("usage: agentbase {WORKER_SUBCOMMAND} MEMORY_BYTES CPU_SECS");
        return std::process::ExitCode::from(2);
    };
    if let Err(e) = limit_self(memory, cpu_secs) {
        eprintln!("cannot set resource limits: {e}");
        return std::process::ExitCode::from(3);
    }
    let mut input = Vec::new();
    let stdin = std::io::stdin();
    if std::io::Read::read_to_end(
        &mut std::io::Read::take(stdin.lock(), FILE_MAX_BYTES as u64 + 8192),
        &mut input,
    )
    .is_err()
    {
        return std::process::ExitCode::from(4);
    }
    let Some(split) = input.iter().position(|&b| b == b'\n') else {
        return std::process::ExitCode::from(4);
    };
    let Ok(request) = serde_json::from_slice::<Request>(&input[..split]) else {
        return std::process::ExitCode::from(4);
    };
    let bytes = &input[split + 1..];
    let result = std::panic::catch_unwind(|| {
        files::extract(&request.filename, request.content_type.as_deref(), bytes)
    })
    .unwrap_or_else(|_| {
        Err(FileError::Unreadable(
            "its structure made the reader fail".into(),
        ))
    });
    let reply = to_wire(result);
    let mut stdout = std::io::stdout().lock();
    if serde_json::to_writer(&mut stdout, &reply).is_err()
        || std::io::Write::flush(&mut stdout).is_err()
    {
        return std::process::ExitCode::from(5);
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(unix)]
fn limit_self(memory: u64, cpu_secs: u64) -> std::io::Result<()> {
    use rlimit::Resource;
    Resource::AS.set(memory, memory)?;
    // The soft limit sends SIGXCPU; the hard one a second later, SIGKILL.
    Resource::CPU.set(cpu_secs, cpu_secs + 1)?;
    Resource::FSIZE.set(0, 0)?;
    Resource::CORE.set(0, 0)?;
    Resource::NOFILE.set(16, 16)?;
    Ok(())
}

#[cfg(not(unix))]
fn limit_self(_memory: u64, _cpu_secs: u64) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ExtractionSettings {
        ExtractionSettings {
            worker_memory_mb: 1024,
            timeout_secs: 10,
            max_concurrent: 1,
            queue_timeout_secs: 1,
        }
    }

    #[tokio::test]
    async fn the_thread_mode_reads_files_and_reports_errors() {
        let x = Extractor::new(Mode::Thread, &settings());
        let t = x
            .extract("a.md", None, b"# Hello\n\nWorld".to_vec())
            .await
            .unwrap();
        assert_eq!(t.markdown, "# Hello\n\nWorld");
        assert_eq!(
            x.extract("a.md", None, Vec::new()).await.unwrap_err(),
            FileError::Empty
        );
        let mut deep = b"%PDF-1.4\ntrailer\n<< /Root ".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 100_000));
        let e = x.extract("a.pdf", None, deep).await.unwrap_err();
        assert!(matches!(e, FileError::Corrupt { kind: "PDF", .. }), "{e:?}");
    }

    #[test]
    fn replies_round_trip_through_the_wire() {
        let errors = [
            FileError::Unsupported("exe".into()),
            FileError::Empty,
            FileError::TooLarge,
            FileError::Corrupt {
                kind: "DOCX",
                reason: "broken".into(),
            },
            FileError::NoText,
            FileError::Unreadable("why".into()),
        ];
        for e in errors {
            let wire = serde_json::to_vec(&to_wire(Err(e.clone()))).unwrap();
            let back = from_wire(serde_json::from_slice(&wire).unwrap(), "PDF");
            assert_eq!(back, Err(e));
        }
        let ok = FileText {
            media_type: "application/json".into(),
            markdown: "# A\n\nx".into(),
            pages: vec![Document {
                title: "A".into(),
                url: Some("https://x/a".into()),
                markdown: "x".into(),
            }],
        };
        let wire = serde_json::to_vec(&to_wire(Ok(ok.clone()))).unwrap();
        assert_eq!(
            from_wire(serde_json::from_slice(&wire).unwrap(), "PDF"),
            Ok(ok)
        );
    }
}
