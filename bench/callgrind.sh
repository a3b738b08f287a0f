#!/usr/bin/env bash
# User-space instructions per message of our gateway (bench-server) and of the hand-written
# axum server doing the same envelope parse (raw-axum), counted by valgrind's callgrind: a
# count that machine noise does not move, for changes too small for bench/run.sh to see.
#
#   bench/callgrind.sh              # echo and broadcast, ours and raw axum: about 2 minutes
#   bench/callgrind.sh --socketio   # also ours over Socket.IO against socketioxide alone
#   bench/callgrind.sh --acks       # also a room's acknowledgements, against socketioxide
#   bench/callgrind.sh --acks-only  # only those: ours, ours over Socket.IO, socketioxide
#   bench/callgrind.sh --recovery   # also ours with connection state recovery on, in memory
#   bench/callgrind.sh --redis      # also ours broadcasting through the Redis adapter (one
#                                   # instance, the Redis at $REDIS_URL), with --recovery
#                                   # also with recovery on; broadcast rows only
#   bench/callgrind.sh --rounds 3   # every pair of runs three times; each cell the median
#   bench/callgrind.sh --short 3 --long 9   # seconds of load of the two runs (the default)
#   bench/callgrind.sh --event echo_value   # our echo reads the data into a serde_json::Value
#   bench/callgrind.sh --features preserve_order   # gateway-bench's cargo features
#   bench/callgrind.sh --socketio --only sio,sioxide   # only these servers' rows
#
# Method. Each server runs under `valgrind --tool=callgrind` on 127.0.0.1:$CALLGRIND_PORT
# (default 3950), pinned to CPU 0 as in bench/run.sh (so tokio runs one worker thread), the
# load generator on CPU 1. For each scenario it runs twice, in a fresh process each time,
# under the same load for a short and a long time (plus 1 s of warm-up):
#   echo       8 connections, each sending an `echo` and waiting for the reply, in a loop
#   broadcast  1,000 receivers, one sender keeping at most 16 broadcasts in flight
# Our servers' echo is `echo` (the data kept raw), or with --event `echo_value` (read into a
# `serde_json::Value` and written back) or `echo_typed` (into a struct); the peers always
# answer `echo`. --features builds gateway-bench with those features, e.g. `preserve_order`
# (serde_json's, for every crate of the build: a `Value`'s map is then an `IndexMap`).
#   ask        1,000 receivers answering every question of one sender's `ask` (one ask in
#              flight: under callgrind an ask of 1,000 takes most of a second, and the
#              servers wait 5 s for the answers); per answer collected
# It is then stopped with SIGTERM (valgrind writes the counts out on the fatal signal), and
# the process's total instruction count (Ir, every thread, start-up and shutdown included)
# is read from the callgrind file. The load generator prints `total=`, exactly how many
# round trips (deliveries to a receiver) the server completed over the whole run, warm-up
# and the last in-flight ones included. Per message is the slope between the two runs,
#   (Ir_long - Ir_short) / (total_long - total_short),
# so start-up, the handshakes and the closing of the connections cancel out. Callgrind
# counts only user-space instructions: the kernel's side of the syscalls (TCP on loopback,
# epoll) is not in it, nor are valgrind's own. Under callgrind the server is ~50x slower,
# so the load generator is never the bottleneck and the server works at saturation; a
# broadcast's own copy to its sender is counted in the Ir but not as a delivery. The long
# run must do at least 1.5x the short one's messages, else the pair runs again (up to three
# times; then the cell is "-"): broadcasts complete in steps of 16 (the sender's window), and
# ours over Socket.IO delivers only ~3k a second under callgrind, so on a busy machine its
# broadcast row may need a longer --long.
#
# The table goes to stdout and target/callgrind-table.md, each run's counts to $LOG
# (default target/callgrind-run.log), the callgrind files to target/callgrind-out/ for
# `callgrind_annotate target/callgrind-out/<server>-<scenario>-long.out`. The binaries
# are built with line tables into $CARGO_TARGET_DIR/callgrind (default target/callgrind),
# apart from bench/run.sh's, whose release profile stays without debug info.
set -euo pipefail
cd "$(dirname "$0")/.."

SOCKETIO=0
ACKS=0
ROUNDS=1
SHORT=3
LONG=9
EVENT=echo
FEATURES=
RECOVERY=0
REDIS=0
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
ONLY=
usage() {
  echo "usage: $0 [--socketio] [--acks | --acks-only] [--recovery] [--redis] [--rounds N] [--short SECS] [--long SECS] [--event NAME] [--features LIST] [--only SERVERS]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --socketio) SOCKETIO=1 ;;
    --acks) ACKS=1 ;;
    --acks-only) ACKS=2 ;;
    --recovery) RECOVERY=1 ;;
    --redis) REDIS=1 ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --short) SHORT=${2:?--short needs seconds}; shift ;;
    --long) LONG=${2:?--long needs seconds}; shift ;;
    --event) EVENT=${2:?--event needs an event name}; shift ;;
    --features) FEATURES=${2:?--features needs a list}; shift ;;
    --only) ONLY=${2:?--only needs a list of servers: ours, raw, sio, sioxide, ours-rec, ours-redis, ours-redis-rec}; shift ;;
    *) usage ;;
  esac
  shift
done
awk -v s="$SHORT" -v l="$LONG" -v r="$ROUNDS" 'BEGIN { exit !(s > 0 && l > s && r >= 1) }' \
  || { echo "callgrind.sh: need 0 < --short < --long and --rounds >= 1" >&2; exit 2; }

command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not found" >&2; exit 1; }

BUILD_DIR=${CARGO_TARGET_DIR:-target}/callgrind
BIN="$BUILD_DIR/release"
OUT=target/callgrind-out
LOG=${LOG:-target/callgrind-run.log}
TABLE=target/callgrind-table.md
PORT=${CALLGRIND_PORT:-3950}
WARMUP=1
ECHO_CONNS=8
RECEIVERS=1000
mkdir -p target "$OUT"
: >"$LOG"

# 1,001 connections in the broadcast runs.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 0); LOADGEN_PIN=(taskset -c 1)
else
  SERVER_PIN=(); LOADGEN_PIN=()
fi

FEATURE_ARGS=()
[ -n "$FEATURES" ] && FEATURE_ARGS=(--features "$(tr ', ' '\n\n' <<<"$FEATURES" | sed '/^$/d; s/^/gateway-bench\//' | paste -sd, -)")
echo "callgrind.sh: building (release, line tables${FEATURES:+, features $FEATURES}) into $BUILD_DIR" >&2
CARGO_TARGET_DIR=$BUILD_DIR CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release --quiet -p gateway-bench -p gateway-loadgen "${FEATURE_ARGS[@]}"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if listening "$PORT"; then
  echo "callgrind.sh: something already listens on port $PORT (set CALLGRIND_PORT)" >&2
  exit 1
fi

# binary_of NAME / event_of NAME / protocol_of NAME: the server's binary, the event of its
# echo runs, what the load generator speaks.
binary_of() {
  case "$1" in
    ours|ours-rec|ours-redis|ours-redis-rec) echo bench-server ;;
    raw) echo raw-axum ;;
    sio) echo socketio-bench-server ;;
    sioxide) echo raw-socketioxide ;;
  esac
}
event_of() {
  case "$1" in
    ours|ours-rec|sio) echo "$EVENT" ;;
    *) echo echo ;;
  esac
}
protocol_of() {
  case "$1" in
    sio|sioxide) echo socketio ;;
    *) echo json ;;
  esac
}

# start NAME FILE: starts the server under callgrind, writing to FILE (its output to
# FILE's .log); sets SERVER_PID.
start() {
  rm -f "$2"
  local recovery=()
  case "$1" in
    ours-rec) recovery=(--recovery 120) ;;
    ours-redis) recovery=(--redis "$REDIS_URL" --redis-prefix callgrind-recovery) ;;
    ours-redis-rec) recovery=(--redis "$REDIS_URL" --redis-prefix callgrind-recovery --recovery 120) ;;
  esac
  PORT=$PORT "${SERVER_PIN[@]}" valgrind --tool=callgrind --callgrind-out-file="$2" \
    "$BIN/$(binary_of "$1")" "${recovery[@]}" >"${2%.out}.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do
    listening "$PORT" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "callgrind.sh: $1 did not start listening on $PORT (see ${2%.out}.log)" >&2
  exit 1
}

# stop: SIGTERM, then waits (up to 60 s) for callgrind to write its file out.
stop() {
  kill -TERM "$SERVER_PID"
  for _ in $(seq 600); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID"
    echo "callgrind.sh: the server did not exit on SIGTERM" >&2
    exit 1
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  sleep 1 # let the port and the sockets of the run go
}

# ir FILE: the total instruction count in a callgrind file.
ir() {
  local v
  v=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p; s/^summary: *\([0-9]*\).*/\1/p' "$1" | head -1)
  [ -n "$v" ] || { echo "callgrind.sh: no totals in $1" >&2; exit 1; }
  echo "$v"
}

# field LINE KEY: the value of KEY=... in a RESULT line, or "-".
field() {
  local v
  v=$(tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p")
  echo "${v:--}"
}

# measure NAME SCENARIO short|long: one run; sets IR (the server's instructions) and TOTAL
# (the round trips or deliveries it completed). Not in a subshell: the trap must know the
# server's pid.
IR=
TOTAL=
measure() {
  local name=$1 scenario=$2 secs file line args errors drained
  secs=$([ "$3" = short ] && echo "$SHORT" || echo "$LONG")
  file="$OUT/$name-$scenario-$3.out"
  case "$scenario" in
    echo) args=(echo --connections "$ECHO_CONNS" --event "$(event_of "$name")") ;;
    broadcast) args=(broadcast --receivers "$RECEIVERS") ;;
    ask) args=(ask --receivers "$RECEIVERS" --window 1) ;;
  esac
  echo "## $name $scenario ${secs}s" >>"$LOG"
  start "$name" "$file"
  # The bound: start-up and the handshakes of 1,001 connections under callgrind, the run,
  # the drain of the last broadcasts.
  timeout --foreground "$(awk -v s="$secs" 'BEGIN { print int(s) + 120 }')" \
    "${LOADGEN_PIN[@]}" "$BIN/loadgen" --port "$PORT" --protocol "$(protocol_of "$name")" \
    "${args[@]}" --duration "$secs" --warmup "$WARMUP" >"$LOG.tmp" 2>&1 || true
  stop
  cat "$LOG.tmp" >>"$LOG"
  line=$(grep '^RESULT' "$LOG.tmp" | tail -1 || true)
  rm -f "$LOG.tmp"
  # An echo run must have no errors, a broadcast run must have drained, every ask must
  # have collected all its answers: else the count of what the server did is not exact.
  TOTAL=$(field "$line" total)
  errors=$(field "$line" errors)
  drained=$(field "$line" drained)
  if [ "$TOTAL" = - ] || { [ "$scenario" = echo ] && [ "$errors" != 0 ]; } \
    || { [ "$scenario" = broadcast ] && [ "$drained" != true ]; } \
    || { [ "$scenario" = ask ] && [ "$(field "$line" missing)" != 0 ]; }; then
    echo "callgrind.sh: $name $scenario ${secs}s: the load generator failed: ${line:-no RESULT line} (see $LOG)" >&2
    exit 1
  fi
  IR=$(ir "$file")
}

# median V...: the median of the numbers given ("-" left out), or "-".
median() {
  printf '%s\n' "$@" | { grep -v '^-$' || true; } | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A R
if [ "$ACKS" = 2 ]; then
  SERVERS=(ours sio sioxide)
else
  SERVERS=(ours raw)
  [ "$SOCKETIO" = 1 ] && SERVERS+=(sio sioxide)
  [ "$ACKS" = 1 ] && [ "$SOCKETIO" = 0 ] && SERVERS+=(sioxide)
  [ "$RECOVERY" = 1 ] && SERVERS+=(ours-rec)
  [ "$REDIS" = 1 ] && SERVERS+=(ours-redis)
  [ "$REDIS" = 1 ] && [ "$RECOVERY" = 1 ] && SERVERS+=(ours-redis-rec)
fi
# --only: the servers kept (their rows show "-" for the servers left out).
if [ -n "$ONLY" ]; then
  kept=()
  for name in "${SERVERS[@]}"; do
    [[ ",$ONLY," == *",$name,"* ]] && kept+=("$name")
  done
  SERVERS=("${kept[@]}")
fi
SCENARIOS=(echo broadcast ask)
# runs NAME SCENARIO: whether that server runs that scenario.
runs() {
  case "$2" in
    ask) [ "$ACKS" != 0 ] && [ "$1" != raw ] && [ "$1" != ours-rec ] && [[ "$1" != ours-redis* ]] ;;
    # Replies do not go through the adapter: the Redis servers echo as ours does.
    echo) [ "$ACKS" != 2 ] && [[ "$1" != ours-redis* ]] && { [ "$1" != sioxide ] || [ "$SOCKETIO" = 1 ]; } ;;
    *) [ "$ACKS" != 2 ] && { [ "$1" != sioxide ] || [ "$SOCKETIO" = 1 ]; } ;;
  esac
}

# Rounds interleave the servers, so that a change of load on the machine (which moves how
# many messages the server finds per wake-up) falls on all of them.
for round in $(seq "$ROUNDS"); do
  for name in "${SERVERS[@]}"; do
    for scenario in "${SCENARIOS[@]}"; do
      runs "$name" "$scenario" || continue
      echo "callgrind.sh: round $round/$ROUNDS: $name $scenario, ${SHORT}s and ${LONG}s" >&2
      # The slope needs the long run to do clearly more than the short one; on a shared
      # machine a busy minute can slow one run down that much: then the pair runs again.
      for attempt in 1 2 3; do
        measure "$name" "$scenario" short; ir_s=$IR; n_s=$TOTAL
        measure "$name" "$scenario" long; ir_l=$IR; n_l=$TOTAL
        slope=$(awk -v a="$ir_s" -v b="$ir_l" -v m="$n_s" -v n="$n_l" \
          'BEGIN { if (n >= 1.5 * m) printf "%.1f", (b - a) / (n - m); else print "-" }')
        [ "$slope" != - ] && break
        echo "callgrind.sh: $name $scenario: the long run did $n_l, the short $n_s$([ "$attempt" -lt 3 ] && echo ": again")" \
          | tee -a "$LOG" >&2
      done
      echo "$name $scenario round $round: short Ir=$ir_s n=$n_s, long Ir=$ir_l n=$n_l: $slope instructions per op" \
        | tee -a "$LOG" >&2
      R[$name,$scenario,$round]=$slope
    done
  done
done
for name in "${SERVERS[@]}"; do
  for scenario in "${SCENARIOS[@]}"; do
    values=()
    for round in $(seq "$ROUNDS"); do values+=("${R[$name,$scenario,$round]:--}"); done
    R[$name,$scenario]=$(median "${values[@]}")
  done
done

# n 15612.3 -> 15,612
n() {
  awk -v v="$1" 'BEGIN { if (v == "-") { print "-"; exit } s = sprintf("%.0f", v); t = ""
    while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) }
    print s t }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.2fx", a / b }'; }

# Rows: "ours:peer:scenario:label".
ROWS=()
[ "$ACKS" != 2 ] && ROWS+=(
  "ours:raw:echo:echo round trip, $ECHO_CONNS connections (peer: raw axum)"
  "ours:raw:broadcast:broadcast delivery, $(n "$RECEIVERS") receivers (peer: raw axum)"
)
[ "$SOCKETIO" = 1 ] && [ "$ACKS" != 2 ] && ROWS+=(
  "sio:sioxide:echo:Socket.IO echo round trip, $ECHO_CONNS connections (peer: socketioxide)"
  "sio:sioxide:broadcast:Socket.IO broadcast delivery, $(n "$RECEIVERS") receivers (peer: socketioxide)"
)
[ "$RECOVERY" = 1 ] && [ "$ACKS" != 2 ] && ROWS+=(
  "ours-rec:ours:echo:echo round trip with recovery on, $ECHO_CONNS connections (peer: ours, recovery off)"
  "ours-rec:ours:broadcast:broadcast delivery with recovery on, $(n "$RECEIVERS") receivers (peer: ours, recovery off)"
)
[ "$REDIS" = 1 ] && [ "$ACKS" != 2 ] && ROWS+=(
  "ours-redis:ours:broadcast:broadcast delivery through Redis, $(n "$RECEIVERS") receivers (peer: ours in memory)"
)
[ "$REDIS" = 1 ] && [ "$RECOVERY" = 1 ] && [ "$ACKS" != 2 ] && ROWS+=(
  "ours-redis-rec:ours-redis:broadcast:broadcast delivery through Redis with recovery on, $(n "$RECEIVERS") receivers (peer: ours through Redis, recovery off)"
)
[ "$ACKS" != 0 ] && ROWS+=(
  "ours:sioxide:ask:answer to a room's emit_with_ack, $(n "$RECEIVERS") receivers (peer: socketioxide)"
)
[ "$ACKS" = 2 ] || { [ "$ACKS" = 1 ] && [ "$SOCKETIO" = 1 ]; } && ROWS+=(
  "sio:sioxide:ask:Socket.IO answer to a room's emit_with_ack, $(n "$RECEIVERS") receivers (peer: socketioxide)"
)
HOW="callgrind, ${LONG} s − ${SHORT} s slope"
[ "$EVENT" != echo ] && HOW+=", ours echoing \`$EVENT\`"
[ -n "$FEATURES" ] && HOW+=", features $FEATURES"
[ "$ROUNDS" -gt 1 ] && HOW+=", median of $ROUNDS rounds"
{
  echo "| scenario ($HOW) | ours, instructions per op | peer, instructions per op | ours / peer |"
  echo "|---|---|---|---|"
  for spec in "${ROWS[@]}"; do
    IFS=: read -r ours peer scenario label <<<"$spec"
    echo "| $label | $(n "${R[$ours,$scenario]:--}") | $(n "${R[$peer,$scenario]:--}") | $(ratio "${R[$ours,$scenario]:--}" "${R[$peer,$scenario]:--}") |"
  done
} | tee "$TABLE"
echo >&2
echo "callgrind.sh: user-space instructions per round trip / delivery / answer; the counts of each run in $LOG" >&2
