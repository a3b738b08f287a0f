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
