#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 60 s each; `./scripts/fuzz.sh 600`
# for ten minutes), with a bounded memory, and fails on the first crash, hang or leak.
# cargo-fuzz wants nightly flags; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  echo "fuzz: $target for ${seconds}s" >&2
  mkdir -p "corpus/$target"
  cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536
done
