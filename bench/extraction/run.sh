#!/usr/bin/env bash
# Extraction F1 on ../shared/datasets/article-extraction-benchmark: `agentbase extract
# --format text` against trafilatura (PyPI) in the same run, same metric.
#   bench/extraction/run.sh [AGENTBASE_BIN]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/agentbase-target}"
venv=/var/cache/agentbase-bench-venv-crawl
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import trafilatura" 2>/dev/null || {
  python3 -m venv "$venv" && "$venv/bin/pip" install -q trafilatura lxml_html_clean
}
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p agentbase-cli
  bin="$CARGO_TARGET_DIR/release/agentbase"
fi
"$venv/bin/python" bench/extraction/evaluate.py ../shared/datasets/article-extraction-benchmark "$bin"
