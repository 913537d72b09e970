//! Prometheus metrics, rendered by hand in the text exposition format: request
//! counts by route, method and status, a latency histogram by route, and the
//! process gauges the binary registers (its allocator's figures).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// One gauge of the process: its name, help text and value.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
}

/// Reads the process gauges when `/metrics` is rendered.
pub type GaugeSource = fn() -> Vec<Gauge>;

static PROCESS_GAUGES: OnceLock<GaugeSource> = OnceLock::new();

/// Registers the process's gauges (the binary knows its allocator; this crate does
/// not). The first call wins; false when a source was registered already.
pub fn set_process_gauges(source: GaugeSource) -> bool {
    PROCESS_GAUGES.set(source).is_ok()
}

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        {
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *requests
                .entry((route.to_owned(), method.to_owned(), status))
                .or_default() += 1;
        }
        let secs = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = latency.entry(route.to_owned()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP agentbase_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE agentbase_http_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "agentbase_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        out.push_str(
            "# HELP agentbase_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE agentbase_http_request_duration_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let route = escape(route);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "agentbase_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "agentbase_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "agentbase_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "agentbase_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        if let Some(source) = PROCESS_GAUGES.get() {
            render_gauges(&mut out, &source());
        }
        out
    }
}

fn render_gauges(out: &mut String, gauges: &[Gauge]) {
    for g in gauges {
        let _ = writeln!(out, "# HELP {} {}", g.name, g.help);
        let _ = writeln!(out, "# TYPE {} gauge", g.name);
        let _ = writeln!(out, "{} {}", g.name, g.value);
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("/api/v2/health", "GET", 200, Duration::from_micros(800));
        m.record("/api/v2/health", "GET", 200, Duration::from_millis(30));
        let text = m.render();
        assert!(text.contains("agentbase_http_requests_total{route=\"/api/v2/health\",method=\"GET\",status=\"200\"} 2"));
        assert!(text.contains("le=\"0.001\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
    }

    #[test]
    fn renders_gauges_with_their_help_and_type() {
        let mut out = String::new();
        render_gauges(
            &mut out,
            &[Gauge {
                name: "agentbase_test_bytes",
                help: "Bytes.",
                value: 1536.0,
            }],
        );
        assert_eq!(
            out,
            "# HELP agentbase_test_bytes Bytes.\n# TYPE agentbase_test_bytes gauge\nagentbase_test_bytes 1536\n"
        );
    }
}
