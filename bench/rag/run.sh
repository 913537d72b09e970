#!/usr/bin/env bash
# Retrieval benchmarks for agentbase-search over the Rust docs installed with the
# toolchain: quality (eval), latency and memory at 100k chunks, Rust Book build time.
# Usage: bench/rag/run.sh [eval|latency|build|all]   (from the repository root)
# Needs the all-MiniLM-L6-v2 weights (agentbase models fetch, or MODEL=dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
MODEL=${MODEL:-/var/cache/agentbase-models/all-minilm-l6-v2}
what=${1:-all}
nice -n 10 cargo build --release -p agentbase-bench-rag
bin=$CARGO_TARGET_DIR/release/agentbase-bench-rag
if [[ $what == all || $what == eval ]]; then
  echo "## eval"; "$bin" eval --model "$MODEL"
fi
if [[ $what == all || $what == latency ]]; then
  echo "## latency"; "$bin" latency --model "$MODEL" --chunks 100000
fi
if [[ $what == all || $what == build ]]; then
  echo "## build"; "$bin" build --model "$MODEL" --book book
fi
