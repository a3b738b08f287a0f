#!/usr/bin/env bash
# Commit subjects fit a line: every commit since this check was added has a subject under 72
# characters (the ones before it are history and stay as they are). `.githooks/commit-msg`
# refuses a long one at `git commit`; enable it with `git config core.hooksPath .githooks`.
set -euo pipefail
cd "$(dirname "$0")/.."

# A shallow clone has no history to check.
[ "$(git rev-parse --is-shallow-repository)" = false ] || exit 0
base=$(git log --diff-filter=A --format=%H -- scripts/commit-subjects.sh | tail -n 1)
range=${base:+$base^..}HEAD
long=$(git log --format='%h %s' "$range" | awk '{ s = $0; sub(/^[^ ]+ /, "", s); if (length(s) >= 72) print }')
if [ -n "$long" ]; then
  echo "commit-subjects.sh: subjects of 72 characters or more:" >&2
  echo "$long" >&2
  exit 1
fi
