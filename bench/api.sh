#!/usr/bin/env bash
# Authenticated GET /api/v2/agents/{id}: agentbase (SQLite, in-process limiter,
# full middleware) against a bare axum handler returning the same bytes (the
# ceiling), same machine, same run, 64 connections, wrk.
#   bench/api.sh [DURATION_SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p agentbase-cli -p agentbase-bench-ceiling
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# The rate limiter stays on (every request is checked) but with a ceiling high
# enough not to refuse the benchmark's own traffic.
export AGENTBASE__RATE_LIMIT__REQUESTS=1000000000 AGENTBASE__LOG__LEVEL=warn
"$bin/agentbase" --data-dir "$work/data" init --json > "$work/init.json"
key=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["apiKey"])' "$work/init.json")
"$bin/agentbase" --data-dir "$work/data" serve --bind 127.0.0.1:18090 > "$work/serve.log" 2>&1 &
for _ in $(seq 50); do curl -sf http://127.0.0.1:18090/api/v2/health >/dev/null && break; sleep 0.1; done
id=$(curl -sf -H "Authorization: Bearer $key" -d '{"name":"Bench agent"}' http://127.0.0.1:18090/api/v2/agents | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:18090/api/v2/agents/$id" > "$work/agent.json"
"$bin/agentbase-bench-ceiling" 127.0.0.1:18091 "$work/agent.json" > /dev/null &
for _ in $(seq 50); do curl -sf "http://127.0.0.1:18091/api/v2/agents/$id" >/dev/null && break; sleep 0.1; done
cmp -s "$work/agent.json" <(curl -sf "http://127.0.0.1:18091/api/v2/agents/$id") || { echo "ceiling body differs" >&2; exit 1; }

run() { # name url [header]
  wrk -t2 -c64 -d"${duration}s" --latency ${3:+-H "$3"} "$2" > "$work/$1.txt"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$1.txt")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $5}' "$work/$1.txt"); non2xx=${non2xx:-0}
  echo "$1 $rps $p99 $non2xx"
}
wrk -t2 -c64 -d3s -H "Authorization: Bearer $key" "http://127.0.0.1:18090/api/v2/agents/$id" >/dev/null  # warm-up
a=$(run agentbase "http://127.0.0.1:18090/api/v2/agents/$id" "Authorization: Bearer $key")
c=$(run ceiling "http://127.0.0.1:18091/api/v2/agents/$id")
echo "| server | requests/s | p99 latency | non-2xx |"
echo "|---|---|---|---|"
for line in "$a" "$c"; do set -- $line; echo "| $1 | $2 | $3 | $4 |"; done
python3 - "$a" "$c" <<'PY'
import sys
a = sys.argv[1].split(); c = sys.argv[2].split()
print(f"\nthroughput ratio agentbase/ceiling: {float(a[1]) / float(c[1]):.2f} (target >= 0.5)")
PY
