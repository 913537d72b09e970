#!/usr/bin/env bash
# Retrieval benchmarks for agentbase-search over three documentation sites installed
# from packages: the Rust docs (toolchain), the PostgreSQL 15 manual
# (postgresql-doc-15) and the Python 3.11 docs (python3.11-doc).
#
# Usage (from the repository root):
#   bench/rag/run.sh eval [ARGS]      quality per corpus on the test halves (ARGS go to
#                                     `agentbase-bench-rag eval`, e.g. --split dev --sweep)
#   bench/rag/run.sh latency          p50/p99 at 100k chunks, query embedding included
#   bench/rag/run.sh build            Rust Book build time
#   bench/rag/run.sh http             search through HTTP on a Rust Book agent
#   bench/rag/run.sh grounded [ARGS]  answers of the embedded model through the chat API
#   bench/rag/run.sh all              eval, latency, build
# Needs the all-MiniLM-L6-v2 (and for grounded, SmolLM2) weights: agentbase models fetch,
# or MODEL=dir. Installs the two Debian doc packages at the versions the question
# sets were written against when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
MODEL=${MODEL:-/var/cache/agentbase-models/all-minilm-l6-v2}
CACHE=${CACHE:-/var/cache/agentbase-bench-rag}
what=${1:-all}
shift || true
# PROFILE=debug skips the release build (quality figures do not depend on it; the
# workspace's dev profile optimises dependencies and the model crate).
profile=${PROFILE:-release}
release=(); [[ $profile == release ]] && release=(--release)

# The question sets name pages of these exact package versions (bench/rag/QUESTIONS.md).
PG_DOC=postgresql-doc-15=15.20-0+deb12u1
PY_DOC=python3.11-doc=3.11.2-6+deb12u9
if [[ ! -d /usr/share/doc/postgresql-doc-15/html || ! -d /usr/share/doc/python3.11/html ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PG_DOC" "$PY_DOC" >/dev/null
fi

# Timings (latency, build, http) are worth reporting only from a quiet machine: each
# such step prints the 1-minute load average before and after it and the share of CPU
# time the hypervisor stole meanwhile (bench/steal.py), and marks its figures invalid
# when a load is above MAX_LOAD (2.5 on these 2 cores) or the steal above MAX_STEAL,
# as bench/llm and bench/api.sh do for their rounds. Quality (eval) does not depend on
# load.
MAX_LOAD=${MAX_LOAD:-2.5}
MAX_STEAL=${MAX_STEAL:-0.02}
timed() { # step name, command...
  local step=$1; shift
  local load stat
  load=$(cut -d' ' -f1 /proc/loadavg)
  stat=$(grep '^cpu ' /proc/stat)
  "$@"
  python3 -c 'import sys
sys.path.insert(0, "bench")
from steal import described, judged
step, load, stat, max_load, max_steal = sys.argv[1], float(sys.argv[2]), sys.argv[3], *map(float, sys.argv[4:])
run = judged(load, stat, max_load, max_steal)
print(f"# {step}: {described(run)}: "
      + ("valid" if run["valid"] else f"INVALID (above {max_load} or {max_steal:.0%}): do not report these timings"))' \
    "$step" "$load" "$stat" "$MAX_LOAD" "$MAX_STEAL"
}

nice -n 10 cargo build "${release[@]}" -p agentbase-bench-rag
bin=$CARGO_TARGET_DIR/$profile/agentbase-bench-rag
if [[ $what == all || $what == eval ]]; then
  echo "## eval"; "$bin" eval --model "$MODEL" --cache "$CACHE" "$@"
fi
if [[ $what == all || $what == latency ]]; then
  echo "## latency"; timed latency "$bin" latency --model "$MODEL" --cache "$CACHE" --chunks 100000
fi
if [[ $what == all || $what == build ]]; then
  echo "## build"; timed build "$bin" build --model "$MODEL" --book book
fi

# A server with the docs sites on loopback: the Rust docs, the PostgreSQL manual and
# the Python docs each on their own port, and agentbase on :8480 with its data dir
# kept in $CACHE/server (agents and their trained knowledge survive between runs).
start_server() {
  nice -n 10 cargo build "${release[@]}" -p agentbase-cli
  local rust_docs
  rust_docs=$(rustc --print sysroot)/share/doc/rust/html
  pids=()
  python3 -m http.server 8481 --bind 127.0.0.1 --directory "$rust_docs" >/dev/null 2>&1 & pids+=($!)
  python3 -m http.server 8482 --bind 127.0.0.1 --directory /usr/share/doc/postgresql-doc-15/html >/dev/null 2>&1 & pids+=($!)
  python3 -m http.server 8483 --bind 127.0.0.1 --directory /usr/share/doc/python3.11/html >/dev/null 2>&1 & pids+=($!)
  trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
  local data=$CACHE/server
  mkdir -p "$data"
  export AGENTBASE_DATA_DIR=$data
  export AGENTBASE__CRAWLER__ALLOW_PRIVATE_NETWORKS=true
  export AGENTBASE__CRAWLER__MAX_PAGES=5000
  export AGENTBASE__RATE_LIMIT__REQUESTS=100000
  local agentbase=$CARGO_TARGET_DIR/$profile/agentbase
  if [[ ! -f $data/key ]]; then
    "$agentbase" init --admin-password bench-rag-password | sed -n 's/^ *\(agb_[A-Za-z0-9_]*\).*/\1/p' | head -1 >"$data/key"
  fi
  export AGENTBASE_KEY=$(cat "$data/key")
  "$agentbase" serve --bind 127.0.0.1:8480 >"$data/serve.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 600); do
    curl -sf http://127.0.0.1:8480/api/v2/health >/dev/null && break
    sleep 1
  done
}

if [[ $what == grounded ]]; then
  start_server
  "$bin" grounded --server http://127.0.0.1:8480 \
    --sites rust=http://127.0.0.1:8481/,postgres=http://127.0.0.1:8482/,python=http://127.0.0.1:8483/ "$@"
fi
if [[ $what == http ]]; then
  start_server
  timed http "$bin" http --server http://127.0.0.1:8480 --site http://127.0.0.1:8481/ "$@"
fi
