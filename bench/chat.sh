#!/usr/bin/env bash
# Chat throughput and time to first byte: agentbase (scripted model, zero latency,
# full stack: auth, rate limiter, credits check, SQLite persistence of the
# conversation, both messages and the ledger entry) against LiteLLM proxy (PyPI,
# a mock_response model, no database, no auth) and against a bare axum handler
# answering the same bytes (the ceiling), same machine, same run.
#   bench/chat.sh [DURATION_SECS] [CONNECTIONS] [ROUNDS] [LEDGER_ROWS]
# LEDGER_ROWS (default 0) pre-seeds the workspace's credit ledger with that many
# entries of this month, as a busy workspace would have.
# The servers are measured one after another (the idle ones stay up); the driver
# (bench/ceiling/src/bin/agentbase-bench-load.rs) runs on one thread beside it.
# Each run records the 1-minute load average before and after it and the share of
# CPU time the hypervisor stole meanwhile; a round where a load is above MAX_LOAD
# (2.5) or a steal above MAX_STEAL (0.02) is invalid and left out of the figures
# (the summary names it), as in bench/api.sh and bench/llm.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-64}
rounds=${3:-3}
ledger_rows=${4:-0}
MAX_LOAD=${MAX_LOAD:-2.5}
MAX_STEAL=${MAX_STEAL:-0.02}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
venv="${LITELLM_VENV:-/var/cache/agentbase-bench-venv}"
workers="${LITELLM_WORKERS:-$(nproc)}"
message="Hello from the benchmark"
reply="Echo: $message"

if [ ! -x "$venv/bin/litellm" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'litellm[proxy]'
fi
cargo build --release -q -p agentbase-cli -p agentbase-bench-ceiling
bin="$CARGO_TARGET_DIR/release"
load="$bin/agentbase-bench-load"
work=$(mktemp -d)
cleanup() {
  # The servers and their children (LiteLLM's worker processes); LiteLLM's
  # supervisor can ignore SIGTERM, so whatever is left after 5 s gets SIGKILL.
  local pids p; pids=$(jobs -p)
  for p in $pids; do pids="$pids $(pgrep -P "$p" || true)"; done
  if [ -n "${pids// /}" ]; then
    kill $pids 2>/dev/null || true
    for _ in $(seq 50); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
    kill -9 $pids 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "chat.sh: $*" >&2; exit 1; }
wait_http() { # url what (LiteLLM can take a minute to import on a busy machine)
  for _ in $(seq 1800); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  die "$2 did not come up"
}

# --- agentbase: scripted model, limits out of the way (still checked per request).
export AGENTBASE__PROVIDERS__local__KIND=scripted AGENTBASE__PROVIDERS__scripted__KIND=scripted AGENTBASE__MODELS__scripted__PROVIDER=scripted \
  AGENTBASE__MODELS__scripted__CREDITS=1 AGENTBASE__AGENTS__DEFAULT_MODEL=scripted \
  AGENTBASE__RATE_LIMIT__REQUESTS=1000000000 AGENTBASE__PLANS__STANDARD=1000000000000 \
  AGENTBASE__LOG__LEVEL=warn
"$bin/agentbase" --data-dir "$work/data" init --json > "$work/init.json"
key=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["apiKey"])' "$work/init.json")
if [ "$ledger_rows" -gt 0 ]; then
  # A workspace that already answered LEDGER_ROWS messages this month (entries of
  # another agent): the monthly allowance is checked against the ledger.
  python3 - "$work/data/agentbase.db" "$work/init.json" "$ledger_rows" <<'PY'
import json, sqlite3, sys, time, uuid
db, init, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ws = json.load(open(init))["workspaceId"]
now = int(time.time() * 1000)
t = time.gmtime()
month_start = int(time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone) * 1000
span = max(1, now - month_start - 1)
con = sqlite3.connect(db, isolation_level=None)
con.execute("BEGIN")
con.executemany(
    "INSERT INTO credit_ledger (id, workspace_id, agent_id, conversation_id, message_id, model, credits, created_at) "
    "VALUES (?, ?, 'seeded-agent', NULL, NULL, 'scripted', 1, ?)",
    ((str(uuid.uuid4()), ws, month_start + (i * span) // n) for i in range(n)))
con.execute("COMMIT")
PY
fi
"$bin/agentbase" --data-dir "$work/data" serve --bind 127.0.0.1:18090 > "$work/agentbase.log" 2>&1 &
wait_http http://127.0.0.1:18090/api/v2/health agentbase
id=$(curl -sf -H "Authorization: Bearer $key" -d '{"name":"Bench agent"}' http://127.0.0.1:18090/api/v2/agents \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])') || die "cannot create the agent"
ab_url="http://127.0.0.1:18090/api/v2/agents/$id/chat"
auth="Authorization: Bearer $key"
curl -sfN -H "$auth" -H 'Content-Type: application/json' -d "{\"message\":\"$message\"}" "$ab_url" > "$work/chat.sse" \
  || die "streaming chat failed"
curl -sf -H "$auth" -H 'Content-Type: application/json' -d "{\"message\":\"$message\",\"stream\":false}" "$ab_url" \
  > "$work/chat.json" || die "non-streaming chat failed"
grep -q '"text-delta"' "$work/chat.sse" && grep -q 'data: \[DONE\]' "$work/chat.sse" || die "unexpected stream: $(head -c 300 "$work/chat.sse")"
grep -q "$reply" "$work/chat.json" || die "unexpected answer: $(head -c 300 "$work/chat.json")"

# --- the ceiling: the same bytes from a bare handler.
"$bin/agentbase-bench-ceiling" 127.0.0.1:18091 "$work/chat.json" "$work/chat.sse" "$work/chat.json" > /dev/null &
wait_http "http://127.0.0.1:18091/api/v2/agents/$id" ceiling
ceil_url="http://127.0.0.1:18091/api/v2/agents/$id/chat"

# --- LiteLLM proxy with a mock model (mock_response: no upstream is contacted),
# no database, a master key (so it authenticates every request, as agentbase does)
# and one worker process per core.
cat > "$work/litellm.yaml" <<YAML
model_list:
  - model_name: mock
    litellm_params:
      model: openai/mock
      api_key: sk-unused
      mock_response: "$reply"
litellm_settings:
  telemetry: false
YAML
ll_key=sk-bench-$(python3 -c 'import secrets;print(secrets.token_hex(16))')
LITELLM_MASTER_KEY=$ll_key LITELLM_LOG=ERROR LITELLM_LOCAL_MODEL_COST_MAP=True DISABLE_SCHEMA_UPDATE=True \
  "$venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port 18092 --num_workers "$workers" \
  > "$work/litellm.log" 2>&1 &
wait_http http://127.0.0.1:18092/health/liveliness litellm
ll_url="http://127.0.0.1:18092/v1/chat/completions"
ll_body() { printf '{"model":"mock","messages":[{"role":"user","content":"%s"}],"stream":%s}' "$message" "$1"; }
curl -sfN -H "Authorization: Bearer $ll_key" -H 'Content-Type: application/json' -d "$(ll_body true)" "$ll_url" > "$work/ll.sse" || die "litellm streaming failed: $(tail -5 "$work/litellm.log")"
curl -sf -H "Authorization: Bearer $ll_key" -H 'Content-Type: application/json' -d "$(ll_body false)" "$ll_url" > "$work/ll.json" || die "litellm failed"
grep -q 'data: \[DONE\]' "$work/ll.sse" || die "unexpected litellm stream: $(head -c 300 "$work/ll.sse")"
grep -q "$reply" "$work/ll.json" || die "unexpected litellm answer: $(head -c 300 "$work/ll.json")"

run() { # server mode connections duration [rate]; $round names the round
  local server=$1 mode=$2 c=$3 d=$4 rate=${5:-}
  local url body marker expect hdr=()
  case $server in
    agentbase|ceiling)
      [ "$server" = agentbase ] && url=$ab_url || url=$ceil_url
      hdr=(-H "$auth")
      marker='"text-delta"'
      if [ "$mode" = stream ]; then body="{\"message\":\"$message\"}"; expect='[DONE]'
      else body="{\"message\":\"$message\",\"stream\":false}"; expect='"finishReason"'; fi ;;
    litellm)
      url=$ll_url marker='"content":"' hdr=(-H "Authorization: Bearer $ll_key")
      if [ "$mode" = stream ]; then body=$(ll_body true); expect='[DONE]'
      else body=$(ll_body false); expect='"choices"'; fi ;;
  esac
  local load_before stat
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  stat=$(grep '^cpu ' /proc/stat)
  "$load" --url "$url" "${hdr[@]}" --body "$body" --marker "$marker" --expect "$expect" \
    -c "$c" -d "$d" --warmup 2 ${rate:+--rate $rate} --label "$server $mode c=$c${rate:+ rate=$rate}" \
    | python3 bench/steal.py row "$round" "$load_before" "$stat" | tee -a "$work/results.jsonl"
}

echo "# machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)" >&2
stat_before=$(grep '^cpu ' /proc/stat)  # steal: CPU time the hypervisor took, which the load average does not show
# Throughput: the servers take turns, ROUNDS times, so a burst of load from
# elsewhere on the machine does not land on one server only.
for r in $(seq "$rounds"); do
  round=throughput-$r
  for mode in stream json; do
    for server in ceiling agentbase litellm; do
      run $server $mode "$conns" "$duration" >/dev/null
    done
  done
done
# Unloaded time to first byte: one client, one request at a time.
for r in $(seq "$rounds"); do
  round=ttfb-$r
  for mode in stream json; do
    for server in ceiling agentbase litellm; do
      run $server $mode 1 "$duration" >/dev/null
    done
  done
done
grep -E "ERROR|panic" "$work/agentbase.log" | head -5 >&2 || true
python3 - "$work/data/agentbase.db" <<'PY' >&2
import sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
n = con.execute("SELECT COUNT(*) FROM credit_ledger").fetchone()[0]
c = con.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
print(f"# agentbase stored {c} conversations and {n} ledger entries during the run")
PY
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)" >&2
echo "# CPU time stolen by the hypervisor during the run: $(python3 bench/steal.py "$stat_before" --percent)" >&2
[ -n "${KEEP_RESULTS:-}" ] && cp "$work/results.jsonl" "$KEEP_RESULTS"

python3 - "$work/results.jsonl" "$conns" "$MAX_LOAD" "$MAX_STEAL" <<'PY'
import json, statistics, sys
sys.path.insert(0, "bench")
from steal import valid_rounds
conns = int(sys.argv[2])
rows = valid_rounds([json.loads(l) for l in open(sys.argv[1])], float(sys.argv[3]), float(sys.argv[4]))
print()
def runs(server, mode, c):
    return [r for r in rows if r["label"].split()[:3] == [server, mode, f"c={c}"]]
def med(server, mode, c, key, sub=None):
    vals = [r[key] if sub is None else r[key][sub] for r in runs(server, mode, c)]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
def f(v, d=2):
    return "–" if v is None else f"{v:.{d}f}"
servers = ("ceiling", "agentbase", "litellm")
print(f"## Throughput, {conns} connections (closed loop), median of {len(runs('agentbase', 'stream', conns))} rounds\n")
print("| mode | server | requests/s | rounds | TTFB p50 ms | TTFB p99 ms | first token p99 ms | total p99 ms | non-2xx | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
for mode in ("stream", "json"):
    for s in servers:
        rs = runs(s, mode, conns)
        each = ", ".join("%.0f" % r["rps"] for r in rs)
        print(f"| {mode} | {s} | {f(med(s, mode, conns, 'rps'), 0)} | {each} | {f(med(s, mode, conns, 'ttfb_ms', 'p50'))} | "
              f"{f(med(s, mode, conns, 'ttfb_ms', 'p99'))} | {f(med(s, mode, conns, 'ttft_ms', 'p99'))} | "
              f"{f(med(s, mode, conns, 'total_ms', 'p99'))} | {sum(r['non2xx'] for r in rs)} | {sum(r['errors'] for r in rs)} |")
print()
for mode in ("stream", "json"):
    a, l, c = (med(s, mode, conns, "rps") for s in ("agentbase", "litellm", "ceiling"))
    if None in (a, l, c):
        print(f"{mode}: no valid round of all three servers: no ratio")
        continue
    print(f"{mode}: agentbase/litellm throughput = {a / l:.1f}x (target >= 5x); agentbase/ceiling = {a / c:.4f}")
print(f"\n## Time to first byte, one client (unloaded), median of {len(runs('agentbase', 'stream', 1))} rounds\n")
print("| mode | server | requests/s | TTFB p50 ms | TTFB p99 ms | first token p50 ms | first token p99 ms | total p50 ms | total p99 ms |")
print("|---|---|---|---|---|---|---|---|---|")
for mode in ("stream", "json"):
    for s in servers:
        print(f"| {mode} | {s} | {f(med(s, mode, 1, 'rps'), 0)} | {f(med(s, mode, 1, 'ttfb_ms', 'p50'), 3)} | "
              f"{f(med(s, mode, 1, 'ttfb_ms', 'p99'), 3)} | {f(med(s, mode, 1, 'ttft_ms', 'p50'), 3)} | "
              f"{f(med(s, mode, 1, 'ttft_ms', 'p99'), 3)} | {f(med(s, mode, 1, 'total_ms', 'p50'), 3)} | "
              f"{f(med(s, mode, 1, 'total_ms', 'p99'), 3)} |")
print()
for mode in ("stream", "json"):
    for what, key in (("first byte", "ttfb_ms"), ("first token", "ttft_ms"), ("last byte", "total_ms")):
        a50, c50 = med("agentbase", mode, 1, key, "p50"), med("ceiling", mode, 1, key, "p50")
        a99, c99 = med("agentbase", mode, 1, key, "p99"), med("ceiling", mode, 1, key, "p99")
        if a50 is None or c50 is None:
            continue
        print(f"{mode}: agentbase adds to the {what}: p50 {a50 - c50:.3f} ms, p99 {a99 - c99:.3f} ms (target p99 <= 5 ms)")
PY
