#!/usr/bin/env bash
# Installs (from Debian's packages) and starts what the test suite needs beside the
# code: PostgreSQL and Redis, both on loopback, chromium for the browser tests
# (installed only; playwright-core starts it) and qemu-user for the portability test. Idempotent: already-running services
# are left alone. Source it to get the URLs exported:
#   AGENTBASE_TEST_POSTGRES_URL  AGENTBASE_TEST_REDIS_URL
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_pkgs=()
command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
# Debian's chromium, never a downloaded browser build (crates/cli/tests/browser.rs).
[ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
# qemu-user runs the binary on an emulated AVX2-only CPU (crates/cli/tests/cli.rs).
[ "$(uname -m)" != x86_64 ] || command -v qemu-x86_64 >/dev/null 2>&1 || need_pkgs+=(qemu-user)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "services: installing ${need_pkgs[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# PostgreSQL: the Debian cluster, a password for the postgres role, loopback TCP.
pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$pg_version main$"; then
  as_root pg_createcluster "$pg_version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$pg_version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  as_root pg_ctlcluster "$pg_version" main start
fi
pg_port=$(pg_lsclusters -h | awk -v v="$pg_version" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 30); do
  as_root su postgres -c "psql -p $pg_port -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
as_root su postgres -c "psql -p $pg_port -qc \"ALTER USER postgres PASSWORD 'agentbase'\"" >/dev/null

# Redis: a private instance on its own port, no persistence.
redis_port=63790
if ! (exec 3<>/dev/tcp/127.0.0.1/$redis_port) 2>/dev/null; then
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/$redis_port) 2>/dev/null && break; sleep 0.2; done
fi

export AGENTBASE_TEST_POSTGRES_URL="postgres://postgres:agentbase@127.0.0.1:$pg_port/postgres"
export AGENTBASE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
echo "services: PostgreSQL $pg_version on :$pg_port, Redis on :$redis_port" >&2
