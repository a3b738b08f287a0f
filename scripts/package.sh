#!/usr/bin/env bash
# The publish dry run: packages every library crate as `cargo publish` would, in dependency
# order, and builds each from its package alone (cargo resolves the crates not yet on the
# registry from the ones packaged before them). Then checks what each package ships, and that
# no dependency needs a newer Rust than the workspace's `rust-version`.
#
#   scripts/package.sh            # a clean checkout
#   scripts/package.sh --allow-dirty
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(ws-gateway-macros ws-gateway-core ws-gateway-axum ws-gateway-redis ws-gateway)
selection=()
for crate in "${crates[@]}"; do selection+=(-p "$crate"); done

# Cargo unpacks each crate packaged before into CARGO_HOME's registry sources and, the version
# being the same, reuses that copy on the next run even when the crate changed since: remove
# ours (none of these crates comes from crates.io yet) so that each run verifies what is here.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
for crate in "${crates[@]}"; do
  rm -rf "$cargo_home"/registry/src/*/"$crate"-[0-9]* "$cargo_home"/registry/cache/*/"$crate"-[0-9]*.crate
done

cargo package "${selection[@]}" --locked "$@"

# Each package carries its README and both licence texts; the facade carries the guide.
for crate in "${crates[@]}"; do
  files=$(cargo package --list -p "$crate" --locked --allow-dirty)
  for file in README.md LICENSE-MIT LICENSE-APACHE Cargo.toml; do
    grep -qx "$file" <<<"$files" || { echo "package.sh: $crate does not ship $file" >&2; exit 1; }
  done
done
grep -q '^guide/gateways.md$' <<<"$(cargo package --list -p ws-gateway --locked --allow-dirty)" \
  || { echo "package.sh: ws-gateway does not ship its guide" >&2; exit 1; }

# The minimum supported Rust version: the workspace states it (`rust-version`), clippy's
# `incompatible_msrv` lint (on in `.ci/run`) refuses std APIs newer than it in our code, and
# here every crate our libraries build with must declare a `rust-version` no newer.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo metadata --format-version 1 --locked --filter-platform "$host" | python3 -c '
import json, sys
meta = json.load(sys.stdin)
ours = {"ws-gateway-macros", "ws-gateway-core", "ws-gateway-axum", "ws-gateway-redis", "ws-gateway"}
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
def version(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])
msrv = {p["rust_version"] for p in packages.values() if p["name"] in ours}
if len(msrv) != 1 or None in msrv:
    sys.exit(f"package.sh: the library crates state rust-version {msrv}, not one version")
msrv = msrv.pop()
seen, todo = set(), [i for i, p in packages.items() if p["name"] in ours]
while todo:
    node = nodes[todo.pop()]
    for dep in node["deps"]:
        kinds = {k["kind"] for k in dep["dep_kinds"]}
        if kinds - {"dev"} and dep["pkg"] not in seen:
            seen.add(dep["pkg"])
            todo.append(dep["pkg"])
def needs(p):
    return "%s %s needs Rust %s" % (p["name"], p["version"], p["rust_version"])
newer = sorted(
    needs(packages[i])
    for i in seen
    if packages[i]["rust_version"] and version(packages[i]["rust_version"]) > version(msrv)
)
if newer:
    sys.exit(f"package.sh: dependencies newer than rust-version {msrv}:\n  " + "\n  ".join(newer))
print(f"package.sh: {len(seen)} dependencies build with Rust {msrv}", file=sys.stderr)
'
