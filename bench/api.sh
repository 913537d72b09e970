#!/usr/bin/env bash
# Authenticated GET /api/v2/agents/{id}: agentbase (SQLite, in-process limiter,
# full middleware) against a bare axum handler returning the same bytes (the
# ceiling), same machine, same run, 64 connections, wrk (2 threads).
#   bench/api.sh [DURATION_SECS] [ROUNDS] [LEDGER_ROWS]
# The two servers are measured alternately, ROUNDS times each; the table gives
# the median of the valid rounds. Each side records the 1-minute load average
# before and after it runs and the share of CPU time the hypervisor stole
# meanwhile; a round where a load is above MAX_LOAD (2.5) or a steal above
# MAX_STEAL (0.02) is invalid and left out (the summary names it). With LEDGER_ROWS > 0, the agent's credit ledger is
# then seeded with that many entries of this month (what a busy agent
# accumulates) and agentbase is measured again: `creditsUsed` must not cost more
# with a longer ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rounds=${2:-3}
ledger_rows=${3:-0}
MAX_LOAD=${MAX_LOAD:-2.5}
MAX_STEAL=${MAX_STEAL:-0.02}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p agentbase-cli -p agentbase-bench-ceiling
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
cleanup() {
  local pids; pids=$(jobs -p)
  [ -n "$pids" ] && kill $pids 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "api.sh: $*" >&2; exit 1; }
wait_http() { # url what
  for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  die "$2 did not come up"
}

# The rate limiter stays on (every request is checked) but with a ceiling high
# enough not to refuse the benchmark's own traffic.
# The local model is not needed to read agents: serve its provider scripted so
# the server neither fetches nor loads weights.
export AGENTBASE__RATE_LIMIT__REQUESTS=1000000000 AGENTBASE__LOG__LEVEL=warn AGENTBASE__PROVIDERS__local__KIND=scripted
"$bin/agentbase" --data-dir "$work/data" init --json > "$work/init.json"
key=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["apiKey"])' "$work/init.json")
serve() {
  "$bin/agentbase" --data-dir "$work/data" serve --bind 127.0.0.1:18090 > "$work/serve.log" 2>&1 &
  server=$!
  wait_http http://127.0.0.1:18090/api/v2/health agentbase
}
serve
id=$(curl -sf -H "Authorization: Bearer $key" -d '{"name":"Bench agent"}' http://127.0.0.1:18090/api/v2/agents \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])') || die "cannot create the agent"
curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:18090/api/v2/agents/$id" > "$work/agent.json" || die "GET agent failed"
"$bin/agentbase-bench-ceiling" 127.0.0.1:18091 "$work/agent.json" > /dev/null &
wait_http "http://127.0.0.1:18091/api/v2/agents/$id" ceiling
cmp -s "$work/agent.json" <(curl -sf "http://127.0.0.1:18091/api/v2/agents/$id") || die "ceiling body differs"

run() { # name url [header]; $round names the round
  local load stat
  load=$(cut -d' ' -f1 /proc/loadavg); stat=$(grep '^cpu ' /proc/stat)
  wrk -t2 -c64 -d"${duration}s" --latency ${3:+-H "$3"} "$2" > "$work/$1.txt"
  python3 - "$1" "$work/$1.txt" "$round" "$load" "$(cut -d' ' -f1 /proc/loadavg)" "$(python3 bench/steal.py "$stat")" \
    <<'PY' | tee -a "$work/results.jsonl" >/dev/null
import json, re, sys
name, path, round_, load, load_after, steal = sys.argv[1:7]
text = open(path).read()
def ms(v):
    n, u = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u]
lat = {m.group(1): ms(m.group(2)) for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M)}
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
print(json.dumps({"name": name, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
                  "p50": lat["50"], "p99": lat["99"], "non2xx": int(non2xx.group(1)) if non2xx else 0,
                  "socket_errors": errors.group(1) if errors else "", "round": round_,
                  "load": float(load), "load_after": float(load_after),
                  "steal": float(steal)}))
PY
}
echo "# machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)" >&2
stat_before=$(grep '^cpu ' /proc/stat)  # steal: CPU time the hypervisor took, which the load average does not show
agent_url="http://127.0.0.1:18090/api/v2/agents/$id"
wrk -t2 -c64 -d3s -H "Authorization: Bearer $key" "$agent_url" >/dev/null  # warm-up
for r in $(seq "$rounds"); do
  round=$r
  run agentbase "$agent_url" "Authorization: Bearer $key"
  run ceiling "http://127.0.0.1:18091/api/v2/agents/$id"
done

if [ "$ledger_rows" -gt 0 ]; then
  kill "$server"; wait "$server" 2>/dev/null || true
  python3 - "$work/data/agentbase.db" "$id" "$ledger_rows" <<'PY'
import sqlite3, sys, time, uuid
db, agent, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = sqlite3.connect(db, isolation_level=None)
ws = con.execute("SELECT workspace_id FROM agents WHERE id = ?", (agent,)).fetchone()[0]
now = int(time.time() * 1000)
t = time.gmtime()
month_start = int(time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone) * 1000
span = max(1, now - month_start - 1)
con.execute("BEGIN")
con.executemany(
    "INSERT INTO credit_ledger (id, workspace_id, agent_id, conversation_id, message_id, model, credits, created_at) "
    "VALUES (?, ?, ?, NULL, NULL, 'scripted', 1, ?)",
    ((str(uuid.uuid4()), ws, agent, month_start + (i * span) // n) for i in range(n)))
# The agent's monthly counter (migration 0004), kept by the server beside each
# ledger entry it writes, is brought in line with the seeded entries.
cols = {r[1] for r in con.execute("PRAGMA table_info(agents)")}
if {"credits_month", "credits_used"} <= cols:
    con.execute("UPDATE agents SET credits_month = ?, credits_used = ? WHERE id = ?", (month_start, n, agent))
con.execute("COMMIT")
con.close()
PY
  serve
  used=$(curl -sf -H "Authorization: Bearer $key" "$agent_url" | python3 -c 'import json,sys;print(json.load(sys.stdin)["creditsUsed"])')
  [ "$used" = "$ledger_rows" ] || die "creditsUsed is $used after seeding $ledger_rows ledger rows"
  wrk -t2 -c64 -d3s -H "Authorization: Bearer $key" "$agent_url" >/dev/null
  for r in $(seq "$rounds"); do
    round=ledger-$r
    run "agentbase-ledger-$ledger_rows" "$agent_url" "Authorization: Bearer $key"
  done
fi
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)" >&2
echo "# CPU time stolen by the hypervisor during the run: $(python3 bench/steal.py "$stat_before" --percent)" >&2

python3 - "$work/results.jsonl" "$MAX_LOAD" "$MAX_STEAL" <<'PY'
import json, statistics, sys
sys.path.insert(0, "bench")
from steal import valid_rounds
rows = valid_rounds([json.loads(l) for l in open(sys.argv[1])], float(sys.argv[2]), float(sys.argv[3]))
print()
names = list(dict.fromkeys(r["name"] for r in rows))
if not {"agentbase", "ceiling"} <= set(names):
    sys.exit("no valid round of both servers: no figures")
med = {}
print("| server | requests/s (median) | p50 latency ms | p99 latency ms | rounds: requests/s | non-2xx |")
print("|---|---|---|---|---|---|")
for n in names:
    rs = [r for r in rows if r["name"] == n]
    m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
    med[n] = m
    each = ", ".join("%.0f" % r["rps"] for r in rs)
    print(f"| {n} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {each} | {sum(r['non2xx'] for r in rs)} |")
print(f"\nthroughput ratio agentbase/ceiling: {med['agentbase']['rps'] / med['ceiling']['rps']:.2f} (target >= 0.5)")
for n in names:
    if n.startswith("agentbase-ledger"):
        print(f"{n}: throughput ratio against the ceiling {med[n]['rps'] / med['ceiling']['rps']:.3f}, "
              f"against the empty ledger {med[n]['rps'] / med['agentbase']['rps']:.3f}")
PY
