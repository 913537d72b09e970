#!/usr/bin/env bash
# Pagination depth: page 1 against page 5,000 (limit 20) of
#   - the messages of a conversation with 100k messages
#     (GET /api/v2/agents/{id}/conversations/{cid}/messages), and
#   - the conversations of an agent with 1M conversations
#     (GET /api/v2/agents/{id}/conversations),
# plus the same first pages on 1k/10k/100k-row siblings to show how the `total`
# COUNT scales. Rows are seeded straight into the SQLite file (one transaction)
# after `agentbase init`; the deep cursor is constructed, not walked to.
#   bench/pagination.sh [REPEATS]
# Each measure() (the interleaved GETs of one list) records the 1-minute load average
# before and after it and the share of CPU time the hypervisor stole meanwhile
# (bench/steal.py); its rows are INVALID when a load is above MAX_LOAD (2.5) or the
# steal above MAX_STEAL (0.02), and a ratio from an invalid row is not reported.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-41}
MAX_LOAD=${MAX_LOAD:-2.5}
MAX_STEAL=${MAX_STEAL:-0.02}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
cargo build --release -q -p agentbase-cli
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d "${TMPDIR:-/tmp}/agentbase-pagination.XXXXXX")
cleanup() {
  local pids; pids=$(jobs -p)
  [ -n "$pids" ] && kill $pids 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "pagination.sh: $*" >&2; exit 1; }
port=18093
export AGENTBASE__RATE_LIMIT__REQUESTS=1000000000 AGENTBASE__LOG__LEVEL=warn AGENTBASE__PROVIDERS__local__KIND=scripted

serve() {
  "$bin/agentbase" --data-dir "$work/data" serve --bind 127.0.0.1:$port > "$work/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/api/v2/health >/dev/null && return 0; sleep 0.1; done
  die "server did not come up: $(tail -5 "$work/serve.log")"
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }

"$bin/agentbase" --data-dir "$work/data" init --json > "$work/init.json"
key=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["apiKey"])' "$work/init.json")
serve
agents=()
for name in conv-1k conv-10k conv-100k conv-1M messages; do
  agents+=("$(curl -sf -H "Authorization: Bearer $key" -d "{\"name\":\"$name\"}" http://127.0.0.1:$port/api/v2/agents \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')") || die "cannot create agent $name"
done
stop

python3 - "$work/data/agentbase.db" "${agents[@]}" > "$work/seed.json" <<'PY'
import json, sqlite3, sys, time, uuid
db, *agents = sys.argv[1:]
conv_agents = dict(zip((1_000, 10_000, 100_000, 1_000_000), agents[:4]))
msg_agent = agents[4]
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode = DELETE")  # fast bulk load; WAL is restored below
con.execute("PRAGMA synchronous = OFF")
ws = con.execute("SELECT workspace_id FROM agents WHERE id = ?", (msg_agent,)).fetchone()[0]
base = 1_700_000_000_000
t0 = time.time()
con.execute("BEGIN")
out = {"conversations": {}, "messages": {}}
for n, agent in conv_agents.items():
    # Conversation i was created at base + i ms: page 1 holds the highest i.
    ids = [str(uuid.uuid4()) for _ in range(n)]
    con.executemany(
        "INSERT INTO conversations (id, workspace_id, agent_id, user_id, title, status, source, created_at, updated_at) "
        "VALUES (?, ?, ?, NULL, 'Seeded', 'ongoing', 'API', ?, ?)",
        ((ids[i], ws, agent, base + i, base + i) for i in range(n)))
    # Page p (limit 20) starts after the last item of page p-1, the
    # (20*(p-1))-th newest; keep the cursors for page 5,000 and the last page.
    def cursor_for(page):
        k = 20 * (page - 1) - 1          # index, newest first, of the previous page's last item
        i = n - 1 - k
        return {"t": base + i, "id": ids[i]}
    out["conversations"][n] = {"agent": agent, "p5000": cursor_for(5000) if n >= 100_000 else None,
                               "last": cursor_for(n // 20), "last_page": n // 20}
for n in (1_000, 10_000, 100_000):
    cid = str(uuid.uuid4())
    con.execute(
        "INSERT INTO conversations (id, workspace_id, agent_id, user_id, title, status, source, created_at, updated_at) "
        "VALUES (?, ?, ?, NULL, 'Seeded', 'ongoing', 'API', ?, ?)", (cid, ws, msg_agent, base, base + n))
    ids = [str(uuid.uuid4()) for _ in range(n + 1)]
    con.executemany(
        "INSERT INTO messages (id, conversation_id, seq, role, parts, created_at, finish_reason, credits) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ((ids[s], cid, s, "user" if s % 2 else "assistant",
          json.dumps([{"type": "text", "text": f"message {s} of the seeded conversation"}]),
          base + s, None if s % 2 else "stop", 0.0 if s % 2 else 1.0) for s in range(1, n + 1)))
    # Pages go backward from seq n; page p's cursor is the oldest seq of page p-1.
    out["messages"][n] = {"conversation": cid, "agent": msg_agent,
                          "p5000": {"t": n - 20 * 4999 + 1, "id": ids[n - 20 * 4999 + 1]} if n >= 100_000 else None,
                          "last": {"t": 21, "id": ids[21]}, "last_page": n // 20, "first_id": ids[1]}
con.execute("COMMIT")
con.execute("PRAGMA journal_mode = WAL")
con.execute("ANALYZE")
con.close()
out["seed_seconds"] = round(time.time() - t0, 1)
print(json.dumps(out))
PY
serve

python3 - "$work/seed.json" "$key" "$port" "$repeats" "$work/data/agentbase.db" "$MAX_LOAD" "$MAX_STEAL" <<'PY'
import base64, http.client, json, sqlite3, statistics, sys, time
sys.path.insert(0, "bench")
from steal import cpu_line, described, judged, load1
seed = json.load(open(sys.argv[1])); key = sys.argv[2]; port = int(sys.argv[3]); repeats = int(sys.argv[4])
db = sys.argv[5]; max_load, max_steal = float(sys.argv[6]), float(sys.argv[7])
conn = http.client.HTTPConnection("127.0.0.1", port)
H = {"Authorization": f"Bearer {key}"}
def cur(c): return base64.b64encode(json.dumps(c, separators=(",", ":")).encode()).decode()
def get(path):
    conn.request("GET", path, headers=H)
    r = conn.getresponse(); body = r.read()
    if r.status != 200: sys.exit(f"GET {path}: {r.status} {body[:300]!r}")
    return json.loads(body)
def timed(path):
    t = time.perf_counter(); get(path); return (time.perf_counter() - t) * 1000
def measure(paths):
    """Interleaves the paths, `repeats` rounds after 3 warm-up rounds: (median, p90) ms
    per path, and the run's load before/after, steal and validity."""
    load, stat = load1(), cpu_line()
    samples = {p: [] for p in paths}
    for r in range(repeats + 3):
        for p in paths:
            x = timed(p)
            if r >= 3: samples[p].append(x)
    return {p: (statistics.median(v), sorted(v)[int(0.9 * (len(v) - 1))]) for p, v in samples.items()}, judged(load, stat, max_load, max_steal)
print(f"seeded in {seed['seed_seconds']} s\n")

rows = []
# Messages of a conversation.
for n, m in sorted(seed["messages"].items(), key=lambda kv: int(kv[0])):
    base = f"/api/v2/agents/{m['agent']}/conversations/{m['conversation']}/messages?limit=20"
    p1 = get(base)
    assert p1["pagination"]["total"] == int(n) and len(p1["data"]) == 20, p1["pagination"]
    paths = {"page 1": base}
    if m["last_page"] != 5000:
        paths[f"last page ({m['last_page']:,})"] = base + "&cursor=" + cur(m["last"])
    if m["p5000"]:
        deep = get(base + "&cursor=" + cur(m["p5000"]))
        assert len(deep["data"]) == 20, deep["pagination"]
        paths["page 5,000"] = base + "&cursor=" + cur(m["p5000"])
    last = get(base + "&cursor=" + cur(m["last"]))
    assert last["pagination"]["hasMore"] is False and [d["id"] for d in last["data"]][:1] == [m["first_id"]], last["pagination"]
    res, run = measure(list(paths.values()))
    for label, p in paths.items():
        rows.append(("messages of one conversation", f"{int(n):,}", label, *res[p], run))
# Conversations of an agent.
for n, c in sorted(seed["conversations"].items(), key=lambda kv: int(kv[0])):
    base = f"/api/v2/agents/{c['agent']}/conversations?limit=20"
    p1 = get(base)
    assert p1["pagination"]["total"] == int(n) and len(p1["data"]) == 20, p1["pagination"]
    paths = {"page 1": base}
    if c["p5000"]:
        paths["page 5,000"] = base + "&cursor=" + cur(c["p5000"])
        deep = get(paths["page 5,000"])
        assert len(deep["data"]) == 20 and deep["pagination"]["hasMore"] is (c["last_page"] > 5000), deep["pagination"]
    if c["last_page"] != 5000:
        paths[f"last page ({c['last_page']:,})"] = base + "&cursor=" + cur(c["last"])
    last = get(base + "&cursor=" + cur(c["last"]))
    assert len(last["data"]) == 20 and last["pagination"]["hasMore"] is False, last["pagination"]
    res, run = measure(list(paths.values()))
    for label, p in paths.items():
        rows.append(("conversations of one agent", f"{int(n):,}", label, *res[p], run))

print("| list | rows | page | median ms | p90 ms | load before/after | steal | valid |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    v = r[5]
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {v['load']:.2f}/{v['load_after']:.2f} | "
          f"{v['steal']:.1%} | {'valid' if v['valid'] else 'INVALID'} |")
print(f"\n(a row is INVALID when the load average before or after its run is above {max_load} "
      f"or the CPU time stolen above {max_steal:.0%}: its figures are not results)\n")
for kind in ("messages of one conversation", "conversations of one agent"):
    big = [r for r in rows if r[0] == kind and r[1] in ("100,000", "1,000,000")]
    big_n = max(big, key=lambda r: int(r[1].replace(",", "")))[1]
    p1 = next(r for r in rows if r[0] == kind and r[1] == big_n and r[2] == "page 1")
    deep = next(r for r in rows if r[0] == kind and r[1] == big_n and r[2] == "page 5,000")
    if p1[5]["valid"] and deep[5]["valid"]:
        print(f"{kind}, {big_n} rows: page 5,000 / page 1 = {deep[3] / p1[3]:.2f} (target within 1.5x)")
    else:
        v = p1[5] if not p1[5]["valid"] else deep[5]
        print(f"{kind}, {big_n} rows: page 5,000 / page 1 not reported: measured at load average "
              f"{v['load']:.2f}/{v['load_after']:.2f} (limit {max_load}), CPU time stolen {v['steal']:.1%} "
              f"(limit {max_steal:.0%}), INVALID")

# The same statements straight on the file, without HTTP, to split the page's
# keyset read from the `total` COUNT.
print("\nSQL alone (sqlite3 module, median of 11, ms):\n")
print("| statement | rows | median ms |")
print("|---|---|---|")
sql_load, sql_stat = load1(), cpu_line()
sq = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
def sql_ms(q, args):
    v = []
    for _ in range(11):
        t = time.perf_counter(); sq.execute(q, args).fetchall(); v.append((time.perf_counter() - t) * 1000)
    return statistics.median(v)
# The server's keyset predicate, `(created_at < t OR (created_at = t AND id < i))`,
# against the row-value form `(created_at, id) < (t, i)` that an index can seek on.
or_form = ("SELECT * FROM conversations WHERE agent_id = ? AND (created_at < ? OR (created_at = ? AND id < ?)) "
           "ORDER BY created_at DESC, id DESC LIMIT 21")
row_form = ("SELECT * FROM conversations WHERE agent_id = ? AND (created_at, id) < (?, ?) "
            "ORDER BY created_at DESC, id DESC LIMIT 21")
for n, c in sorted(seed["conversations"].items(), key=lambda kv: int(kv[0])):
    a = c["agent"]
    print(f"| COUNT(*) conversations of the agent | {int(n):,} | "
          f"{sql_ms('SELECT COUNT(*) FROM conversations WHERE agent_id = ?', (a,)):.2f} |")
    print(f"| page 1 (LIMIT 21) conversations | {int(n):,} | "
          f"{sql_ms('SELECT * FROM conversations WHERE agent_id = ? ORDER BY created_at DESC, id DESC LIMIT 21', (a,)):.2f} |")
    for label, cu in (("page 5,000", c["p5000"]), (f"last page ({c['last_page']:,})", c["last"])):
        if cu is None or (label != "page 5,000" and c["last_page"] == 5000):
            continue
        t, i = cu["t"], cu["id"]
        print(f"| {label}, server's OR predicate | {int(n):,} | {sql_ms(or_form, (a, t, t, i)):.2f} |")
        print(f"| {label}, row-value predicate | {int(n):,} | {sql_ms(row_form, (a, t, i)):.2f} |")
for n, m in sorted(seed["messages"].items(), key=lambda kv: int(kv[0])):
    print(f"| COUNT(*) messages of the conversation | {int(n):,} | "
          f"{sql_ms('SELECT COUNT(*) FROM messages WHERE conversation_id = ?', (m['conversation'],)):.2f} |")
run = judged(sql_load, sql_stat, max_load, max_steal)
print(f"\nSQL timings: {described(run)}: " + ("valid" if run["valid"] else "INVALID: these timings are not results"))
print()
print(f"SQLite {sqlite3.sqlite_version} (Python's; the server links its own through sqlx)\n")
for q, args in (("SELECT * FROM tool_calls WHERE conversation_id = ?", ("x",)),
                ("SELECT COUNT(*) FROM conversations WHERE agent_id = ?", ("x",)),
                (or_form, ("x", 1, 1, "x")), (row_form, ("x", 1, "x"))):
    plan = " / ".join(r[3] for r in sq.execute("EXPLAIN QUERY PLAN " + q, args))
    print(f"- plan of `{q}`: {plan}")
PY
