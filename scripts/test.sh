#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: sets up what the tests need
# (a Redis server on 127.0.0.1:6379, node clients where a package-lock.json exists),
# then runs the unit, integration, compile-fail and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ws-gateway-redis's fault test starts its own redis-server, so the binary is needed even when
# a Redis already listens on 6379.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: installing redis-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
if ! listening 127.0.0.1 6379; then
  echo "test.sh: starting redis-server on 127.0.0.1:6379" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --logfile /tmp/gateway-test-redis.log
  for _ in $(seq 50); do listening 127.0.0.1 6379 && break; sleep 0.1; done
fi

# A three-master Redis Cluster on 127.0.0.1:7000-7002 for the per-room scale-out tests
# (sharded pub/sub), in /tmp, nothing persisted.
if ! listening 127.0.0.1 7000; then
  echo "test.sh: starting a Redis Cluster on 127.0.0.1:7000-7002" >&2
  for port in 7000 7001 7002; do
    dir="/tmp/gateway-test-cluster/$port"
    rm -rf "$dir" && mkdir -p "$dir"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$dir" \
      --cluster-enabled yes --cluster-config-file nodes.conf --save "" --appendonly no \
      --logfile "$dir/redis.log"
  done
  for port in 7000 7001 7002; do
    for _ in $(seq 50); do listening 127.0.0.1 "$port" && break; sleep 0.1; done
  done
  redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 --cluster-yes >/dev/null
  for _ in $(seq 100); do
    redis-cli -p 7000 cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1
  done
fi

# Headless Chromium for the browser test of the chat page.
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# Node clients (Socket.IO, AsyncAPI validation, the browser driver) used by tests.
while IFS= read -r lock; do
  dir=$(dirname "$lock")
  echo "test.sh: npm ci in $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done < <(find . -name package-lock.json -not -path '*/node_modules/*' -not -path './target/*' -not -path './bench/*')

cargo test --workspace --locked

# The documentation builds without a warning (broken links included), as docs.rs builds it.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --locked \
  -p ws-gateway -p ws-gateway-core -p ws-gateway-axum -p ws-gateway-redis -p ws-gateway-macros

# The publish dry run of every library crate, and the minimum supported Rust version.
./scripts/package.sh --allow-dirty

# Commit subjects under 72 characters.
./scripts/commit-subjects.sh
