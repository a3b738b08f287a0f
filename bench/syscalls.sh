#!/usr/bin/env bash
# What a broadcast delivery costs the server outside its own instructions: syscalls, wake-ups
# of the process (context switches) and CPU time per delivery, ours (bench-server) against
# raw axum, counted by `perf stat` on the server's process while the load generator's
# broadcast runs (bench/callgrind.sh counts the user-space instructions).
#
#   bench/syscalls.sh                        # 1,000 and 10,000 receivers, 3 rounds: ~2 minutes
#   bench/syscalls.sh --receivers 1000,5000  # other room sizes
#   bench/syscalls.sh --rounds 5 --duration 4
#
# Method. As in bench/run.sh: the server pinned to CPU 0 (one tokio worker), the load
# generator to CPU 1, a fresh server process for each run, the servers interleaved (every
# other round in reverse order). Once every receiver is connected and the load generator's
# warm-up is over, `perf stat -p` counts, for the rest of its measured window, the server's
# CPU time (task-clock, user + kernel), its context switches (a thread that sleeps in
# epoll_wait and is woken), every syscall it enters (raw_syscalls:sys_enter) and those of
# the write and wake-up path by name: sendto (tokio's socket writes), writev, recvfrom,
# epoll_wait, futex. Each is divided by the deliveries of that window (the load generator's
# rate times the window); each cell is the median of the rounds. Needs `perf` with the
# syscall tracepoints (root, or kernel.perf_event_paranoid <= -1) and `ss`.
#
# The table goes to stdout and target/syscalls-table.md, the runs' output to $LOG (default
# target/syscalls-run.log).
set -euo pipefail
cd "$(dirname "$0")/.."

RECEIVERS=1000,10000
ROUNDS=3
DURATION=3
usage() {
  echo "usage: $0 [--receivers N,N...] [--rounds N] [--duration SECS]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --receivers) RECEIVERS=${2:?--receivers needs a list}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    *) usage ;;
  esac
  shift
done
awk -v d="$DURATION" -v r="$ROUNDS" 'BEGIN { exit !(d >= 1 && r >= 1) }' \
  || { echo "syscalls.sh: need --duration >= 1 and --rounds >= 1" >&2; exit 2; }
command -v perf >/dev/null || { echo "syscalls.sh: perf not found" >&2; exit 1; }
command -v ss >/dev/null || { echo "syscalls.sh: ss not found" >&2; exit 1; }

BIN=${CARGO_TARGET_DIR:-target}/release
LOG=${LOG:-target/syscalls-run.log}
TABLE=target/syscalls-table.md
PORT=${BENCH_PORT:-3970}
WARMUP=1
EVENTS=(task-clock context-switches raw_syscalls:sys_enter syscalls:sys_enter_sendto
  syscalls:sys_enter_writev syscalls:sys_enter_recvfrom syscalls:sys_enter_epoll_wait
  syscalls:sys_enter_futex)
mkdir -p target
: >"$LOG"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if perf stat -e syscalls:sys_enter_sendto -- true >/dev/null 2>&1; then :; else
  echo "syscalls.sh: perf cannot read the syscall tracepoints (root, or perf_event_paranoid)" >&2
  exit 1
fi
if [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 0); LOADGEN_PIN=(taskset -c 1)
else
  SERVER_PIN=(); LOADGEN_PIN=()
fi

echo "syscalls.sh: building (release)" >&2
cargo build --release --quiet -p gateway-bench -p gateway-loadgen

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if listening "$PORT"; then
  echo "syscalls.sh: something already listens on port $PORT (set BENCH_PORT)" >&2
  exit 1
fi

SERVER_PID=
LOADGEN_PID=
cleanup() {
  [ -n "$LOADGEN_PID" ] && kill "$LOADGEN_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

binary_of() { case "$1" in ours) echo bench-server ;; raw) echo raw-axum ;; esac; }

declare -A R
# measure NAME RECEIVERS ROUND: one run; fills R[NAME,RECEIVERS,EVENT,ROUND] per delivery.
measure() {
  local name=$1 receivers=$2 round=$3 out stat line rate window n
  out=$(mktemp); stat=$(mktemp)
  PORT=$PORT "${SERVER_PIN[@]}" "$BIN/$(binary_of "$name")" >>"$LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do listening "$PORT" && break; sleep 0.05; done
  "${LOADGEN_PIN[@]}" "$BIN/loadgen" --port "$PORT" --server-pid "$SERVER_PID" broadcast \
    --receivers "$receivers" --duration "$DURATION" --warmup "$WARMUP" >"$out" 2>&1 &
  LOADGEN_PID=$!
  # Every receiver and the sender connected; then the load generator's pause before the
  # first broadcast (0.5 s) and its warm-up.
  for _ in $(seq 1200); do
    n=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
    [ "$n" -ge $((receivers + 1)) ] && break
    kill -0 "$LOADGEN_PID" 2>/dev/null || break
    sleep 0.1
  done
  sleep "$(awk -v w="$WARMUP" 'BEGIN { print w + 0.6 }')"
  window=$(awk -v d="$DURATION" 'BEGIN { print d - 0.4 }')
  perf stat -x, -e "$(IFS=,; echo "${EVENTS[*]}")" -p "$SERVER_PID" -o "$stat" -- sleep "$window"
  wait "$LOADGEN_PID" || true
  LOADGEN_PID=
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  { echo "## $name $receivers receivers, round $round"; cat "$out" "$stat"; } >>"$LOG"
  line=$(grep '^RESULT' "$out" | tail -1 || true)
  rate=$(tr ' ' '\n' <<<"$line" | sed -n 's/^rate=//p')
  rm -f "$out"
  if [ -z "$rate" ] || [ "$rate" = 0 ]; then
    echo "syscalls.sh: $name $receivers: the load generator failed (see $LOG)" >&2
    rm -f "$stat"
    return 0
  fi
  R[$name,$receivers,rate,$round]=$rate
  # task-clock is in ms: per delivery in µs; the others are counts.
  while IFS=, read -r value _ event _; do
    [[ "$value" =~ ^[0-9.]+$ ]] || continue
    R[$name,$receivers,$event,$round]=$(awk -v v="$value" -v r="$rate" -v w="$window" -v e="$event" \
      'BEGIN { d = r * w; printf "%.4f", (e == "task-clock" ? v * 1000 : v) / d }')
  done <"$stat"
  rm -f "$stat"
  sleep 1 # let the port and the sockets of the run go
}

median() {
  printf '%s\n' "$@" | { grep -v '^-$' || true; } | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

IFS=, read -r -a SIZES <<<"$RECEIVERS"
SERVERS=(ours raw)
for round in $(seq "$ROUNDS"); do
  ORDER=("${SERVERS[@]}")
  [ $((round % 2)) = 0 ] && ORDER=(raw ours)
  for receivers in "${SIZES[@]}"; do
    for s in "${ORDER[@]}"; do
      echo "syscalls.sh: round $round/$ROUNDS: $s, $receivers receivers" >&2
      measure "$s" "$receivers" "$round"
    done
  done
done

COLS=(rate task-clock context-switches raw_syscalls:sys_enter syscalls:sys_enter_sendto
  syscalls:sys_enter_writev syscalls:sys_enter_recvfrom syscalls:sys_enter_epoll_wait
  syscalls:sys_enter_futex)
cell() { # cell SERVER RECEIVERS COLUMN: the median over the rounds
  local values=()
  for round in $(seq "$ROUNDS"); do values+=("${R[$1,$2,$3,$round]:--}"); done
  median "${values[@]}"
}
{
  echo "| server, receivers (perf stat, median of $ROUNDS rounds) | deliveries/s | server CPU µs | context switches | syscalls | sendto | writev | recvfrom | epoll_wait | futex |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for receivers in "${SIZES[@]}"; do
    for s in "${SERVERS[@]}"; do
      row="| $s, $receivers |"
      for c in "${COLS[@]}"; do
        v=$(cell "$s" "$receivers" "$c")
        [ "$c" = rate ] && v=$(awk -v v="$v" 'BEGIN { if (v == "-") print v; else printf "%.0fk", v / 1000 }')
        row+=" $v |"
      done
      echo "$row"
    done
    row="| ours / raw, $receivers |"
    for c in "${COLS[@]}"; do
      row+=" $(awk -v a="$(cell ours "$receivers" "$c")" -v b="$(cell raw "$receivers" "$c")" \
        'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }') |"
    done
    echo "$row"
  done
} | tee "$TABLE"
echo >&2
echo "syscalls.sh: every column but deliveries/s is per delivery; runs in $LOG" >&2
