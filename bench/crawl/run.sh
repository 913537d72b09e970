#!/usr/bin/env bash
# Crawl throughput: agentbase-crawler against Scrapy (PyPI) on the local Rust docs (the
# Book, the Reference, Rust by Example, the Cargo book) served over loopback by a tiny
# in-memory axum server, same limits for both: same start URLs and scope, the same page
# cap and concurrency, no retries, robots and autothrottle off, no per-host delay.
# agentbase also runs Readability-style extraction and Markdown on every page; Scrapy
# extracts the body text with one XPath.
#   bench/crawl/run.sh [MAX_PAGES] [CONCURRENCY] [ROUNDS]
# The two crawlers take turns, ROUNDS times each. Each side records the 1-minute load
# average before and after it runs and the share of CPU time the hypervisor stole
# meanwhile; a round where a load is above MAX_LOAD (2.5) or a steal above MAX_STEAL
# (0.02) is invalid and left out of the medians and the ratio (the summary names it),
# as in bench/api.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
max_pages=${1:-1500}
concurrency=${2:-16}
rounds=${3:-3}
MAX_LOAD=${MAX_LOAD:-2.5}
MAX_STEAL=${MAX_STEAL:-0.02}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
venv=/var/cache/agentbase-bench-venv-crawl
[ -x "$venv/bin/scrapy" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q scrapy; }
cargo build --release -q -p agentbase-bench-crawl
bin="$CARGO_TARGET_DIR/release"
docs="$(rustc --print sysroot)/share/doc/rust/html"
work=$(mktemp -d)
cleanup() {
  local pids; pids=$(jobs -p)
  [ -n "$pids" ] && kill $pids 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
"$bin/static-server" "$docs" "127.0.0.1:$port" &
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf -o /dev/null "$base/book/index.html" && break; sleep 0.1; done
starts=("$base/book/index.html" "$base/reference/index.html" "$base/rust-by-example/index.html" "$base/cargo/index.html")
# Warm the server cache (and the page cache) so neither crawler pays for cold files.
"$bin/crawl-bench" "$work/warm.jsonl" "$max_pages" "$concurrency" "${starts[@]}" > /dev/null
# The HTTP crawler, as Scrapy sees the site: no iframe expansion (mdBook's table of
# contents sits in a <noscript> iframe, which Scrapy does not follow either).
export CRAWL_INPUT='{"crawlerType":"cheerio","expandIframes":false}'
side() { # command...: its JSON line, with the round ($r), the load before/after and the steal
  local load stat
  load=$(cut -d' ' -f1 /proc/loadavg); stat=$(grep '^cpu ' /proc/stat)
  "$@" | python3 bench/steal.py row "$r" "$load" "$stat" | tee -a "$work/results.jsonl"
}
for r in $(seq "$rounds"); do
  side "$bin/crawl-bench" "$work/agentbase.jsonl" "$max_pages" "$concurrency" "${starts[@]}"
  side "$venv/bin/python" bench/crawl/scrapy_spider.py "$work/scrapy.jsonl" "$max_pages" "$concurrency" "${starts[@]}"
done
python3 - "$work/results.jsonl" "$rounds" "$MAX_LOAD" "$MAX_STEAL" <<'PY'
import json, statistics, sys
sys.path.insert(0, "bench")
from steal import valid_rounds
rows = valid_rounds([json.loads(l) for l in open(sys.argv[1])], float(sys.argv[3]), float(sys.argv[4]))
valid = sorted({r["round"] for r in rows}, key=int)
if {r["crawler"] for r in rows} != {"agentbase", "scrapy"}:
    sys.exit("no valid round of both crawlers: no figures, no ratio")
def med(name, key):
    return statistics.median(r[key] for r in rows if r["crawler"] == name)
a, s = med("agentbase", "pages_per_sec"), med("scrapy", "pages_per_sec")
print(f"over the valid rounds only ({len(valid)} of {sys.argv[2]}: {', '.join(valid)}):")
print(f"median pages/s  agentbase {a:.1f}  scrapy {s:.1f}  ratio {a / s:.2f}x")
print(f"median pages    agentbase {med('agentbase', 'pages'):.0f}  scrapy {med('scrapy', 'pages'):.0f}")
PY
