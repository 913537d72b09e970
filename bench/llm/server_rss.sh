#!/usr/bin/env bash
# Peak RSS of `agentbase serve` on the embedded defaults with both local models
# loaded and used: a Rust Book chapter trained as a text source (all-MiniLM-L6-v2
# embeddings) and a RAG question answered by SmolLM2 (non-streaming and streaming).
# Prints VmRSS after start, after training and VmHWM (peak) at the end.
#   bench/llm/server_rss.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target-bench}"
cargo build --release -q -p agentbase-cli
bin="$CARGO_TARGET_DIR/release/agentbase"
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
ln -s "${AGENTBASE_MODELS_DIR:-/var/cache/agentbase-models}" "$dir/models"
for k in $(env | grep -o '^AGENTBASE__[A-Za-z_]*' || true); do unset "$k"; done
key=$("$bin" --data-dir "$dir" init --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --data-dir "$dir" serve --bind "127.0.0.1:$port" >"$dir/serve.out" 2>&1 &
pid=$!
base="http://127.0.0.1:$port/api/v2"
for _ in $(seq 600); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
rss() { awk -v k="$1:" '$1 == k {print int($2 / 1024)}' "/proc/$pid/status"; }
echo "after start:     VmRSS $(rss VmRSS) MB"
auth=(-H "Authorization: Bearer $key" -H "Content-Type: application/json")
agent=$(curl -sf "${auth[@]}" -d '{"name":"rss"}' "$base/agents" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
chapter="$(rustc --print sysroot)/share/doc/rust/html/book/ch04-01-what-is-ownership.html"
python3 - "$chapter" >"$dir/source.json" <<'PY'
import html, json, re, sys
text = re.sub(r"<[^>]+>", " ", open(sys.argv[1], encoding="utf-8").read())
text = re.sub(r"\s+", " ", html.unescape(text))
print(json.dumps({"type": "text", "name": "What is ownership?", "content": text[:60000]}))
PY
source=$(curl -sf "${auth[@]}" -d @"$dir/source.json" "$base/agents/$agent/sources" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 1200); do
  status=$(curl -sf "${auth[@]}" "$base/agents/$agent/sources/$source" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  [ "$status" = trained ] && break
  sleep 0.1
done
echo "after training:  VmRSS $(rss VmRSS) MB (source $status)"
question='{"message":"What are the ownership rules in Rust?","stream":false}'
curl -sf "${auth[@]}" -d "$question" "$base/agents/$agent/chat" >"$dir/answer.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; print("answer:", repr("".join(p.get("text","") for p in d["parts"])[:120]))' "$dir/answer.json"
curl -sfN "${auth[@]}" -d '{"message":"What happens when a variable goes out of scope?"}' "$base/agents/$agent/chat" >/dev/null
echo "after two chats: VmRSS $(rss VmRSS) MB"
echo "peak:            VmHWM $(rss VmHWM) MB"
