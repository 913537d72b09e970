//! A small closed-loop HTTP/1.1 load driver for the chat benchmark.
//!
//! `wrk` reports latency to the end of the response only; a chat server's cost
//! shows in the time to the first byte of the body (and to the first token of a
//! stream). This driver speaks just enough HTTP/1.1 over keep-alive connections
//! (Content-Length, chunked, close-delimited bodies) to time, per request:
//! - `ttfb`: request written → first byte of the response body,
//! - `ttft`: request written → first occurrence of `--marker` in the body
//!   (e.g. the first `text-delta` frame), when a marker is given,
//! - `total`: request written → last byte of the body.
//!
//! ```text
//! agentbase-bench-load --url http://127.0.0.1:8080/path [-c 64] [-d 10] [--warmup 2]
//!     [--threads 1] [--rate R] [-H 'Name: value']... [--body TEXT | --body-file F]
//!     [--marker TEXT] [--expect TEXT] [--label NAME] [--samples FILE]
//! ```
//!
//! Prints one JSON object. `--rate` paces the whole run at R requests/s spread over
//! the connections (an open-loop-ish schedule; each request is timed from when it
//! is written, so queueing inside the server shows but client-side lateness does
//! not). `--expect` counts a 2xx response whose body lacks TEXT as an error.
//! `--samples` writes every measured request to FILE, one line each: milliseconds
//! since measuring began, total microseconds, status (0: a transport error), so a
//! long run can be cut into windows (the soak benchmark's latency curve).

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    host: String,
    path: String,
    conns: usize,
    duration: f64,
    warmup: f64,
    threads: usize,
    rate: Option<f64>,
    headers: Vec<String>,
    body: Option<Vec<u8>>,
    marker: Option<Vec<u8>>,
    expect: Option<Vec<u8>>,
    label: String,
    samples: Option<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!("agentbase-bench-load: {msg}");
    eprintln!(
        "usage: agentbase-bench-load --url URL [-c N] [-d SECS] [--warmup SECS] [--threads N] \
         [--rate R] [-H HEADER]... [--body TEXT|--body-file F] [--marker TEXT] [--expect TEXT] [--label NAME] \
         [--samples FILE]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        host: String::new(),
        path: String::new(),
        conns: 64,
        duration: 10.0,
        warmup: 2.0,
        threads: 1,
        rate: None,
        headers: Vec::new(),
        body: None,
        marker: None,
        expect: None,
        label: "run".into(),
        samples: None,
    };
    let mut it = std::env::args().skip(1);
    let mut url = None;
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--url" => url = Some(val()),
            "-c" | "--connections" => a.conns = val().parse().unwrap_or_else(|_| usage("bad -c")),
            "-d" | "--duration" => a.duration = val().parse().unwrap_or_else(|_| usage("bad -d")),
            "--warmup" => a.warmup = val().parse().unwrap_or_else(|_| usage("bad --warmup")),
            "--threads" => a.threads = val().parse().unwrap_or_else(|_| usage("bad --threads")),
            "--rate" => a.rate = Some(val().parse().unwrap_or_else(|_| usage("bad --rate"))),
            "-H" | "--header" => a.headers.push(val()),
            "--body" => a.body = Some(val().into_bytes()),
            "--body-file" => {
                let p = val();
                a.body = Some(std::fs::read(&p).unwrap_or_else(|e| usage(&format!("{p}: {e}"))));
            }
            "--marker" => a.marker = Some(val().into_bytes()),
            "--expect" => a.expect = Some(val().into_bytes()),
            "--label" => a.label = val(),
            "--samples" => a.samples = Some(val()),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let url = url.unwrap_or_else(|| usage("--url is required"));
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| usage("only http:// URLs"));
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    a.host = host.to_owned();
    a.path = path.to_owned();
    if a.conns == 0 || a.threads == 0 {
        usage("-c and --threads must be at least 1");
    }
    a
}

#[derive(Default)]
struct Stats {
    ok: u64,
    non2xx: u64,
    errors: u64,
    ttfb: Vec<u32>,
    ttft: Vec<u32>,
    total: Vec<u32>,
    bytes: u64,
    /// (ms since measuring began, total µs, status) of every measured request.
    samples: Vec<(u32, u32, u16)>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.ok += o.ok;
        self.non2xx += o.non2xx;
        self.errors += o.errors;
        self.ttfb.extend(o.ttfb);
        self.ttft.extend(o.ttft);
        self.total.extend(o.total);
        self.bytes += o.bytes;
        self.samples.extend(o.samples);
    }
}

/// Timings of one response, in microseconds from the request being written.
struct Timing {
    status: u16,
    ttfb: Option<u32>,
    ttft: Option<u32>,
    total: u32,
    bytes: u64,
    expected: bool,
    keep_alive: bool,
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u32::MAX as u128) as u32
}

impl Conn {
    async fn open(host: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The index of `needle` at or after `pos`, reading until it arrives.
    async fn find_from(&mut self, pos: usize, needle: &[u8]) -> std::io::Result<usize> {
        loop {
            if let Some(i) = find(&self.buf[pos..], needle) {
                return Ok(pos + i);
            }
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn request(&mut self, req: &[u8], a: &Args) -> std::io::Result<Timing> {
        self.buf.clear();
        let start = Instant::now();
        self.stream.write_all(req).await?;
        // Status line and headers.
        let head_end = self.find_from(0, b"\r\n\r\n").await? + 4;
        let head = Head::parse(&self.buf[..head_end])?;
        let mut t = Timing {
            status: head.status,
            ttfb: None,
            ttft: None,
            total: 0,
            bytes: 0,
            expected: a.expect.is_none(),
            keep_alive: head.keep_alive,
        };
        // The body, decoded (chunk framing removed) as it arrives.
        let mut body = Body {
            start,
            marker: a.marker.as_deref(),
            bytes: Vec::new(),
        };
        if head.chunked {
            self.read_chunked(head_end, &mut t, &mut body).await?;
        } else {
            self.read_sized(head_end, head.length, &mut t, &mut body)
                .await?;
        }
        t.total = micros(start);
        t.bytes = body.bytes.len() as u64;
        if let Some(e) = &a.expect {
            t.expected = find(&body.bytes, e).is_some();
        }
        Ok(t)
    }

    /// A chunked body from `pos`, through the last chunk and the trailers.
    async fn read_chunked(
        &mut self,
        mut pos: usize,
        t: &mut Timing,
        body: &mut Body<'_>,
    ) -> std::io::Result<()> {
        loop {
            // Chunk size line.
            let line_end = self.find_from(pos, b"\r\n").await?;
            let size_text = String::from_utf8_lossy(&self.buf[pos..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            pos = line_end + 2;
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                loop {
                    let at = self.find_from(pos, b"\r\n").await?;
                    if at == pos {
                        break;
                    }
                    pos = at + 2;
                }
                return Ok(());
            }
            // Chunk data, noted as it arrives so the first byte is timed early.
            let mut need = size;
            while need > 0 {
                if pos >= self.buf.len() && self.fill().await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                let take = need.min(self.buf.len() - pos);
                body.push(t, &self.buf[pos..pos + take]);
                pos += take;
                need -= take;
            }
            while self.buf.len() < pos + 2 {
                if self.fill().await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            pos += 2;
            // Keep the buffer small on long streams.
            self.buf.drain(..pos);
            pos = 0;
        }
    }

    /// A body of `length` bytes from `pos`, or up to the end of the stream without one.
    async fn read_sized(
        &mut self,
        mut pos: usize,
        length: Option<u64>,
        t: &mut Timing,
        body: &mut Body<'_>,
    ) -> std::io::Result<()> {
        let want = length.unwrap_or(u64::MAX);
        loop {
            if pos < self.buf.len() {
                let take =
                    ((self.buf.len() - pos) as u64).min(want - body.bytes.len() as u64) as usize;
                body.push(t, &self.buf[pos..pos + take]);
                pos += take;
            }
            if body.bytes.len() as u64 >= want {
                return Ok(());
            }
            if self.fill().await? == 0 {
                if length.is_some() {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                return Ok(());
            }
        }
    }
}

/// What the response's status line and headers say.
struct Head {
    status: u16,
    length: Option<u64>,
    chunked: bool,
    keep_alive: bool,
}

impl Head {
    fn parse(bytes: &[u8]) -> std::io::Result<Head> {
        let head = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        let length: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let keep_alive = !header("connection").is_some_and(|v| v.contains("close"))
            && (length.is_some() || chunked);
        Ok(Head {
            status,
            length,
            chunked,
            keep_alive,
        })
    }
}

/// The decoded body as it arrives, timing its first byte and the marker's first
/// occurrence.
struct Body<'a> {
    start: Instant,
    marker: Option<&'a [u8]>,
    bytes: Vec<u8>,
}

impl Body<'_> {
    fn push(&mut self, t: &mut Timing, bytes: &[u8]) {
        let from = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        if t.ttfb.is_none() && !self.bytes.is_empty() {
            t.ttfb = Some(micros(self.start));
        }
        if let (None, Some(m)) = (t.ttft, self.marker) {
            let from = from.saturating_sub(m.len());
            if find(&self.bytes[from..], m).is_some() {
                t.ttft = Some(micros(self.start));
            }
        }
    }
}

fn build_request(a: &Args) -> Vec<u8> {
    let method = if a.body.is_some() { "POST" } else { "GET" };
    let mut r = format!("{method} {} HTTP/1.1\r\nHost: {}\r\n", a.path, a.host);
    let mut has_ct = false;
    for h in &a.headers {
        has_ct |= h.to_ascii_lowercase().starts_with("content-type:");
        r.push_str(h);
        r.push_str("\r\n");
    }
    if let Some(b) = &a.body {
        if !has_ct {
            r.push_str("Content-Type: application/json\r\n");
        }
        r.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    if let Some(b) = &a.body {
        bytes.extend_from_slice(b);
    }
    bytes
}

async fn worker(
    a: Arc<Args>,
    req: Arc<Vec<u8>>,
    index: usize,
    measure_from: Instant,
    stop_at: Instant,
    recording: Arc<AtomicBool>,
) -> Stats {
    let mut s = Stats::default();
    let mut conn: Option<Conn> = None;
    // With --rate, this connection's share of the schedule: one request every
    // `interval`, offset so the connections interleave.
    let interval = a.rate.map(|r| Duration::from_secs_f64(a.conns as f64 / r));
    let mut next = interval.map(|i| Instant::now() + i.mul_f64(index as f64 / a.conns as f64));
    while Instant::now() < stop_at {
        if let (Some(n), Some(i)) = (next.as_mut(), interval) {
            tokio::time::sleep_until((*n).into()).await;
            *n += i;
            if Instant::now() >= stop_at {
                break;
            }
        }
        if conn.is_none() {
            match Conn::open(&a.host).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    if recording.load(Ordering::Relaxed) {
                        s.errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let started = Instant::now();
        let res = conn.as_mut().expect("connected").request(&req, &a).await;
        let record = started >= measure_from && Instant::now() <= stop_at;
        let at = started.saturating_duration_since(measure_from).as_millis() as u32;
        match res {
            Ok(t) => {
                if !t.keep_alive {
                    conn = None;
                }
                if !record {
                    continue;
                }
                if a.samples.is_some() {
                    s.samples.push((at, t.total, t.status));
                }
                if !(200..300).contains(&t.status) {
                    s.non2xx += 1;
                } else if !t.expected {
                    s.errors += 1;
                } else {
                    s.ok += 1;
                    s.ttfb.push(t.ttfb.unwrap_or(t.total));
                    if let Some(x) = t.ttft {
                        s.ttft.push(x);
                    }
                    s.total.push(t.total);
                    s.bytes += t.bytes;
                }
            }
            Err(_) => {
                conn = None;
                if record {
                    s.errors += 1;
                    if a.samples.is_some() {
                        s.samples.push((at, micros(started), 0));
                    }
                }
            }
        }
    }
    s
}

fn pct(v: &[u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)] as f64 / 1000.0
}

fn summary(name: &str, v: &mut [u32]) -> String {
    v.sort_unstable();
    let mean = if v.is_empty() {
        f64::NAN
    } else {
        v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64 / 1000.0
    };
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x:.3}")
        } else {
            "null".into()
        }
    };
    format!(
        "\"{name}_ms\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{},\"mean\":{}}}",
        num(pct(v, 50.0)),
        num(pct(v, 90.0)),
        num(pct(v, 99.0)),
        num(pct(v, 100.0)),
        num(mean)
    )
}

fn main() {
    let a = Arc::new(parse_args());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads)
        .enable_all()
        .build()
        .expect("runtime");
    let req = Arc::new(build_request(&a));
    let stats = rt.block_on(async {
        let now = Instant::now();
        let measure_from = now + Duration::from_secs_f64(a.warmup);
        let stop_at = measure_from + Duration::from_secs_f64(a.duration);
        let recording = Arc::new(AtomicBool::new(false));
        {
            let r = recording.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(measure_from.into()).await;
                r.store(true, Ordering::Relaxed);
            });
        }
        let tasks: Vec<_> = (0..a.conns)
            .map(|i| {
                tokio::spawn(worker(
                    a.clone(),
                    req.clone(),
                    i,
                    measure_from,
                    stop_at,
                    recording.clone(),
                ))
            })
            .collect();
        let mut all = Stats::default();
        for t in tasks {
            all.merge(t.await.expect("worker"));
        }
        all
    });
    let mut s = stats;
    if let Some(path) = &a.samples {
        s.samples.sort_unstable();
        let text: String = s
            .samples
            .iter()
            .map(|(at, us, status)| format!("{at} {us} {status}\n"))
            .collect();
        std::fs::write(path, text).unwrap_or_else(|e| usage(&format!("{path}: {e}")));
    }
    let rps = s.ok as f64 / a.duration;
    let ttfb = summary("ttfb", &mut s.ttfb);
    let ttft = summary("ttft", &mut s.ttft);
    let total = summary("total", &mut s.total);
    let label = a.label.replace('"', "'");
    println!(
        "{{\"label\":\"{label}\",\"connections\":{},\"duration_s\":{},\"rate\":{},\"ok\":{},\"non2xx\":{},\"errors\":{},\
         \"rps\":{rps:.1},\"body_bytes\":{},{ttfb},{ttft},{total}}}",
        a.conns,
        a.duration,
        a.rate.map_or("null".into(), |r| r.to_string()),
        s.ok,
        s.non2xx,
        s.errors,
        s.bytes
    );
}
