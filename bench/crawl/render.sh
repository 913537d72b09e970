#!/usr/bin/env bash
# Browser rendering (issue 17): pages/s of the crawler types on the local Rust docs (a
# static site: adaptive mode should stay on HTTP) and on a client-rendered single-page
# app (every page needs the browser), with the fraction of pages rendered and the peak
# memory of the browser's processes. Same server, limits and concurrency for all; the
# browser is Debian's chromium, started before each timed crawl (a server keeps it
# running; its start-up time is printed apart). Each crawl prints one JSON line with the
# load average before and after it.
# The 600-page docs crawl takes ~2.5 s over HTTP, so adaptive mode's fixed cost (the
# few pages it renders to compare, ~2 CPU-seconds of Chromium) weighs heavily there;
# a LARGE_PAGES crawl of all the docs' mdBook sites (~2,300 pages) shows it amortised.
# Before each crawl the script waits (at most 90 s) for the 1-minute load average to
# fall under MAX_LOAD (2.5), since the browser runs before it leave it high. Each crawl
# also records the share of CPU time the hypervisor stole while it ran; a round where a
# crawl began above MAX_LOAD or lost more than MAX_STEAL (0.02) is invalid and left out
# of the figures (bench/steal.py's rule, as in bench/crawl/run.sh and bench/api.sh; the
# summary names it). The load after a crawl is printed but not judged here: Chromium's
# own processes take it to 4-6 on 2 cores, so it says nothing about other work.
#   bench/crawl/render.sh [MAX_PAGES=600] [CONCURRENCY=16] [ROUNDS=3] [RENDER_PAGES=200] [LARGE_PAGES=3000]
set -euo pipefail
cd "$(dirname "$0")/../.."
max_pages=${1:-600}
concurrency=${2:-16}
rounds=${3:-3}
render_pages=${4:-200}
large_pages=${5:-3000}
MAX_LOAD=${MAX_LOAD:-2.5}
MAX_STEAL=${MAX_STEAL:-0.02}
browser=${CHROMIUM:-/usr/bin/chromium}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
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
# The app: 300 routes, each a JSON document of a few paragraphs linking to 4 others.
spa="$work/spa"
mkdir -p "$spa/data"
cp bench/crawl/spa/index.html bench/crawl/spa/app.js "$spa/"
python3 - "$spa/data" <<'PY'
import json, random, sys
rng = random.Random(17)
words = ("gizmo calibrate spindle torque housing gasket firmware sensor bracket valve "
         "adjust measure replace inspect tighten align clean store ship warranty").split()
n = 300
for i in range(n):
    paragraphs = [" ".join(rng.choice(words) for _ in range(60)).capitalize() + "." for _ in range(5)]
    links = sorted({(i * 7 + k * 13 + 1) % n for k in range(4)})
    json.dump({"title": f"Gizmo handbook, page {i}", "paragraphs": paragraphs, "links": links},
              open(f"{sys.argv[1]}/{i}.json", "w"))
PY
port=$((20000 + RANDOM % 20000))
"$bin/static-server" "$docs" "127.0.0.1:$port" "$spa" &
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf -o /dev/null "$base/book/index.html" && break; sleep 0.1; done
docs_starts=("$base/book/index.html" "$base/reference/index.html" "$base/rust-by-example/index.html" "$base/cargo/index.html")
# The other mdBook sites of the docs (static too; the std API pages are not: rustdoc
# builds their sidebars with scripts, so adaptive mode rightly renders them).
large_starts=("${docs_starts[@]}")
for book in nomicon edition-guide rustc unstable-book error_codes embedded-book; do
  large_starts+=("$base/$book/index.html")
done
spa_start="$base/spa/"
# Warm the server cache (and the page cache) so no crawler pays for cold files.
CRAWL_INPUT='{"crawlerType":"cheerio"}' "$bin/crawl-bench" "$work/warm.jsonl" "$max_pages" "$concurrency" "${docs_starts[@]}" > /dev/null
CRAWL_BROWSER="$browser" CRAWL_INPUT='{"crawlerType":"playwright:chrome"}' "$bin/crawl-bench" "$work/warm.jsonl" 400 "$concurrency" "$spa_start" > /dev/null
results="$work/results.jsonl"
settle() {
  for _ in $(seq 90); do
    awk -v max="$MAX_LOAD" '{exit !($1 < max)}' /proc/loadavg && return
    sleep 1
  done
}
run() { # LABEL INPUT PAGES [browser] START...: the crawl's JSON line, with the round
         # ($r), the load before/after and the steal added
  local label=$1 input=$2 pages=$3 load stat; shift 3
  local vars=(CRAWL_LABEL="$label" CRAWL_INPUT="$input")
  if [ "$1" = browser ]; then
    shift
    vars+=(CRAWL_BROWSER="$browser")
  fi
  settle
  load=$(cut -d' ' -f1 /proc/loadavg); stat=$(grep '^cpu ' /proc/stat)
  env "${vars[@]}" "$bin/crawl-bench" "$work/$label.jsonl" "$pages" "$concurrency" "$@" \
    | python3 bench/steal.py row "$r" "$load" "$stat" | tee -a "$results"
}
for r in $(seq "$rounds"); do
  run docs-http-large '{"crawlerType":"cheerio"}' "$large_pages" "${large_starts[@]}"
  run docs-adaptive-large '{"crawlerType":"playwright:adaptive"}' "$large_pages" browser "${large_starts[@]}"
  run docs-http '{"crawlerType":"cheerio"}' "$max_pages" "${docs_starts[@]}"
  run docs-adaptive '{"crawlerType":"playwright:adaptive"}' "$max_pages" browser "${docs_starts[@]}"
  run docs-render '{"crawlerType":"playwright:chrome"}' "$render_pages" browser "${docs_starts[@]}"
  run spa-http '{"crawlerType":"cheerio"}' "$render_pages" "$spa_start"
  run spa-adaptive '{"crawlerType":"playwright:adaptive"}' "$render_pages" browser "$spa_start"
  run spa-render '{"crawlerType":"playwright:chrome"}' "$render_pages" browser "$spa_start"
done
python3 - "$results" "$rounds" "$MAX_LOAD" "$MAX_STEAL" <<'PY'
import json, statistics, sys
sys.path.insert(0, "bench")
from steal import valid_rounds
rows = [json.loads(l) for l in open(sys.argv[1])]
# Judged by the load before each crawl (and the steal): the one after is the browser's own.
valid = {r["round"] for r in valid_rounds([{k: v for k, v in r.items() if k != "load_after"} for r in rows],
                                          float(sys.argv[3]), float(sys.argv[4]))}
rows = [r for r in rows if r["round"] in valid]
if not rows:
    sys.exit("no valid round: no figures")
print(f"over the valid rounds only ({len({r['round'] for r in rows})} of {sys.argv[2]}):")
def med(label, key):
    return statistics.median(r[key] for r in rows if r["crawler"] == label)
def peak(label, key):
    return max(r[key] for r in rows if r["crawler"] == label)
for label in ["docs-http-large", "docs-adaptive-large", "docs-http", "docs-adaptive", "docs-render", "spa-http", "spa-adaptive", "spa-render"]:
    if not any(r["crawler"] == label for r in rows):
        continue
    print(f"{label:19} median {med(label, 'pages_per_sec'):7.1f} pages/s  pages {med(label, 'pages'):5.0f}"
          f"  items {med(label, 'items'):5.0f}  rendered {med(label, 'rendered'):5.0f}"
          f" ({med(label, 'rendered') / max(med(label, 'pages'), 1):.1%})"
          f"  browser peak RSS {peak(label, 'browser_peak_rss_mb'):6.0f} MB (PSS {peak(label, 'browser_peak_pss_mb'):6.0f})"
          f"  start {med(label, 'browser_launch_secs'):.2f}s")
print(f"adaptive / http on the docs:   {med('docs-adaptive', 'pages_per_sec') / med('docs-http', 'pages_per_sec'):.2f}x (target >= 0.8)")
print(f"adaptive / http, {med('docs-http-large', 'pages'):.0f} pages: {med('docs-adaptive-large', 'pages_per_sec') / med('docs-http-large', 'pages_per_sec'):.2f}x (target >= 0.8)")
# Per round: adaptive mode may crawl more pages than HTTP when a rendered page shows
# links the raw HTML lacks (Rust by Example's script-built language menu adds its four
# translations), and then the two crawls are not the same crawl.
pairs = zip([r for r in rows if r["crawler"] == "docs-http-large"],
            [r for r in rows if r["crawler"] == "docs-adaptive-large"])
for i, (h, a) in enumerate(pairs, 1):
    same = "" if h["pages"] == a["pages"] else f" (not the same crawl: {a['pages']} against {h['pages']} pages)"
    print(f"round {i}: adaptive / http, large: {a['pages_per_sec'] / h['pages_per_sec']:.2f}x{same}")
print(f"adaptive / render on the docs: {med('docs-adaptive', 'pages_per_sec') / med('docs-render', 'pages_per_sec'):.2f}x (target >= 3)")
loads = [(r["crawler"], r["load_before"], r["load_after"]) for r in rows]
print("load averages (before, after):", ", ".join(f"{c} {a:.2f}/{b:.2f}" for c, a, b in loads))
print("max load:", max(max(a, b) for _, a, b in loads))
PY
