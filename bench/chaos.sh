#!/usr/bin/env bash
# Chaos: 20 cycles of `kill -9` of the real `agentbase serve` during concurrent chat
# turns (scripted model, JSON and streamed), training (text, file and website
# sources, the real local embedder) and Apify crawl runs of a site on loopback;
# restart after each kill and check that every acknowledged message, source, delete
# and dataset item is there and that every training job and crawl run ends.
#   bench/chaos.sh [CYCLES] [extra chaos.py flags, e.g. --database postgres]
# `--database postgres` runs against a fresh database on the local PostgreSQL
# (scripts/services.sh) instead of SQLite. PROFILE=debug uses the test build.
# Driver: bench/chaos/chaos.py (Python 3, requests). Per-cycle table and a JSON
# summary on stdout; exit 0 only with 0 lost and 0 stuck.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-20}
shift || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release -q -p agentbase-cli
else
  cargo build -q -p agentbase-cli
fi
bin="$CARGO_TARGET_DIR/$profile/agentbase"
args=()
db=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--database" ] && [ "${2:-}" = postgres ]; then
    # shellcheck source=scripts/services.sh
    source scripts/services.sh >/dev/null
    db="agentbase_chaos_$$"
    psql "$AGENTBASE_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
    args+=(--database "${AGENTBASE_TEST_POSTGRES_URL%/*}/$db")
    shift 2
  else
    args+=("$1")
    shift
  fi
done
cleanup() { [ -n "$db" ] && psql "$AGENTBASE_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
python3 bench/chaos/chaos.py --binary "$bin" --cycles "$cycles" "${args[@]}"
