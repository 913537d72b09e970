#!/usr/bin/env bash
# Soak: the hostile corpus (bench/chaos/hostile.py) probed one case at a time
# (a case after which the server is dead is reported and the server restarted),
# then an unloaded authenticated GET, then DURATION seconds of mixed load (chat JSON
# and stream, listings, widget chat on a public agent, training, crawl runs of a
# site on loopback, hostile requests, slow clients) with the same GET probe beside
# it and the server's RSS sampled every 2 s.
#   bench/soak.sh [DURATION_SECS] [extra soak.py flags]
# Targets: no 5xx, no server death, RSS flat after warm-up, probe p99 within 2x.
# The unloaded baseline is judged by bench/steal.py's rule (load average above MAX_LOAD
# 2.5 before or after it, or CPU time stolen above MAX_STEAL 0.02: INVALID, and the 2x
# comparison is not reported); the mixed load is loaded on purpose and is not judged.
# Driver: bench/chaos/soak.py (Python 3, requests); the probe is
# bench/ceiling's agentbase-bench-load. PROFILE=debug uses the test build.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-600}
shift || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release -q -p agentbase-cli -p agentbase-bench-ceiling
else
  cargo build -q -p agentbase-cli -p agentbase-bench-ceiling
fi
dir="$CARGO_TARGET_DIR/$profile"
python3 bench/chaos/soak.py --binary "$dir/agentbase" --load "$dir/agentbase-bench-load" --duration "$duration" "$@"
