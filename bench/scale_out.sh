#!/usr/bin/env bash
# Cross-instance room traffic (issue 16): 2 and 4 instances of each server on one machine,
# sharing rooms through the Redis at 127.0.0.1:6379, every delivery crossing from one instance
# to another. Servers:
#   classic   ours over plain WebSockets, RedisAdapter classic (a channel per gateway)
#   per-room  ours over plain WebSockets, RedisAdapter per-room (a channel per room)
#   sio       ours over Socket.IO (SocketIoTransport), RedisAdapter classic
#   nest      NestJS 12, @nestjs/platform-socket.io with the docs' RedisIoAdapter
#             (@socket.io/redis-adapter over the `redis` client), bench/peers/nest
#   sioxide   socketioxide 0.18 with socketioxide-redis 0.4 (raw-socketioxide-redis)
# Every instance is a process of its own, all pinned to CPU 0 with `taskset`; the load
# generator (`loadgen rooms`) is pinned to CPU 1; Redis is the machine's, on neither pin.
# Rooms: $ROOMS rooms of $MEMBERS members; room r's sender on instance r mod N, its members
# round-robin on the $SPREAD instances after it (with 2 instances: all on the other one), so
# that every delivery goes through Redis; each sender at most $WINDOW emits ahead of the
# slowest member of its room. Counted at the clients; server CPU is user + system time from
# /proc/<pid>/stat of every instance, added up, over the measured window.
#
#   bench/scale_out.sh                # one round, about 2 minutes
#   bench/scale_out.sh --rounds 3     # every cell three times, interleaved; each the median
#   bench/scale_out.sh --quick        # shorter runs
#   bench/scale_out.sh --no-nest      # without the NestJS row (no node needed)
#   bench/scale_out.sh --instances "2 4 8"
#
# Prints one markdown table (also to target/scale-out-table.md), with the ratio rows ours /
# NestJS and ours / socketioxide-redis; every run's output goes to $LOG (default
# target/scale-out-run.log). Also reached as `bench/run.sh --scale-out`.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
NEST=1
ROUNDS=1
INSTANCES="2 4"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-nest) NEST=0 ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --instances) INSTANCES=${2:?--instances needs a list, e.g. \"2 4\"}; shift ;;
    *) echo "usage: $0 [--quick] [--no-nest] [--rounds N] [--instances \"2 4\"]" >&2; exit 2 ;;
  esac
  shift
done

TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release"
LOG=${LOG:-target/scale-out-run.log}
TABLE=target/scale-out-table.md
BASE_PORT=${BENCH_PORT:-3930}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
ROOMS=${ROOMS:-100}
MEMBERS=${MEMBERS:-10}
SPREAD=${SPREAD:-2}
WINDOW=${WINDOW:-16}
if [ "$QUICK" = 1 ]; then SECS=3; else SECS=6; fi
mkdir -p target
: >"$LOG"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 0); LOADGEN_PIN=(taskset -c 1)
else
  echo "scale_out.sh: one CPU: servers and load generator share it" >&2
  SERVER_PIN=(); LOADGEN_PIN=()
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! listening 6379; then
  echo "scale_out.sh: no Redis on 127.0.0.1:6379 (start one: redis-server --daemonize yes)" >&2
  exit 1
fi
# Redis's CPU per delivery too, when its process can be read.
REDIS_PID=$(redis-cli INFO server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p' || true)
REDIS_ARGS=()
[ -n "$REDIS_PID" ] && [ -r "/proc/$REDIS_PID/stat" ] && REDIS_ARGS=(--redis-pid "$REDIS_PID")

echo "scale_out.sh: building (release)" >&2
cargo build --release --quiet -p gateway-bench -p gateway-loadgen
if [ "$NEST" = 1 ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "scale_out.sh: building the NestJS peer" >&2
    (cd bench/peers/nest && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >&2
  else
    echo "scale_out.sh: npm not found: no NestJS row" >&2
    NEST=0
  fi
fi

PIDS=()
# start NAME N: starts N instances of server NAME on BASE_PORT+1.., sets PIDS and PORTS.
start() {
  local name=$1 n=$2 i port
  PIDS=(); PORTS=()
  for i in $(seq "$n"); do
    port=$((BASE_PORT + i))
    case "$name" in
      classic) PORT=$port "${SERVER_PIN[@]}" "$BIN/bench-server" --redis "$REDIS_URL" >>"$LOG" 2>&1 & ;;
      per-room) PORT=$port "${SERVER_PIN[@]}" "$BIN/bench-server" --redis "$REDIS_URL" --per-room >>"$LOG" 2>&1 & ;;
      sio) PORT=$port "${SERVER_PIN[@]}" "$BIN/socketio-bench-server" --redis "$REDIS_URL" >>"$LOG" 2>&1 & ;;
      nest) PORT=$port "${SERVER_PIN[@]}" node bench/peers/nest/dist/main-socketio-redis.js >>"$LOG" 2>&1 & ;;
      sioxide) PORT=$port "${SERVER_PIN[@]}" "$BIN/raw-socketioxide-redis" --redis "$REDIS_URL" >>"$LOG" 2>&1 & ;;
    esac
    PIDS+=($!); PORTS+=("$port")
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 300); do listening "$port" && continue 2; sleep 0.05; done
    echo "scale_out.sh: $name did not start listening on $port" >&2
    return 1
  done
}
stop() {
  kill "${PIDS[@]}" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  sleep 1 # let the ports and the sockets of the previous run go
}
protocol_of() { case "$1" in classic|per-room) echo json ;; *) echo socketio ;; esac; }
join_by_comma() { local IFS=,; echo "$*"; }

# field LINE KEY: the value of KEY=... in a RESULT line, or "-".
field() {
  local v
  v=$(tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p")
  echo "${v:--}"
}

declare -A R
# measure NAME N ROUND: one run of N instances of NAME.
measure() {
  local name=$1 n=$2 round=$3 line
  echo "scale_out.sh: $name, $n instances" >&2
  echo "# $name, $n instances, round $round" >>"$LOG"
  start "$name" "$n"
  "${LOADGEN_PIN[@]}" "$BIN/loadgen" --protocol "$(protocol_of "$name")" \
    --server-pid "$(join_by_comma "${PIDS[@]}")" rooms --ports "$(join_by_comma "${PORTS[@]}")" \
    --rooms "$ROOMS" --members "$MEMBERS" --spread "$SPREAD" --window "$WINDOW" \
    --duration "$SECS" "${REDIS_ARGS[@]}" >"$LOG.tmp" 2>&1 || true
  cat "$LOG.tmp" >>"$LOG"
  line=$(grep '^RESULT' "$LOG.tmp" | tail -1 || echo "RESULT failed=1")
  rm -f "$LOG.tmp"
  stop
  for key in rate p99_us cpu_us redis_cpu_us missing out_of_order; do
    R[$name,$n,$key,$round]=$(field "$line" "$key")
  done
}

SERVERS=(classic per-room sio)
[ "$NEST" = 1 ] && SERVERS+=(nest)
SERVERS+=(sioxide)
read -r -a NS <<<"$INSTANCES"

for round in $(seq "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "scale_out.sh: round $round of $ROUNDS" >&2
  # Interleaved: every other round in reverse order, so a noisy minute falls on all.
  CELLS=()
  for n in "${NS[@]}"; do for s in "${SERVERS[@]}"; do CELLS+=("$s:$n"); done; done
  if [ $((round % 2)) = 0 ]; then
    REV=()
    for ((i = ${#CELLS[@]} - 1; i >= 0; i--)); do REV+=("${CELLS[$i]}"); done
    CELLS=("${REV[@]}")
  fi
  for cell in "${CELLS[@]}"; do measure "${cell%%:*}" "${cell##*:}" "$round"; done
done

# median V...: the median of the numbers given ("-" left out), or "-".
median() {
  printf '%s\n' "$@" | { grep -v '^-$' || true; } | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maximum() { printf '%s\n' "$@" | { grep -v '^-$' || true; } | sort -g | tail -1 | sed 's/^$/-/'; }
declare -A M
for s in "${SERVERS[@]}"; do
  for n in "${NS[@]}"; do
    for key in rate p99_us cpu_us redis_cpu_us missing out_of_order; do
      values=()
      for round in $(seq "$ROUNDS"); do values+=("${R[$s,$n,$key,$round]}"); done
      if [ "$key" = missing ]; then M[$s,$n,$key]=$(maximum "${values[@]}"); else M[$s,$n,$key]=$(median "${values[@]}"); fi
    done
    # Deliveries per second of one server core: what the instances would deliver if they
    # kept a core busy at this CPU cost per delivery.
    M[$s,$n,core]=$(awk -v c="${M[$s,$n,cpu_us]}" 'BEGIN { if (c == "-" || c + 0 == 0) print "-"; else printf "%.0f", 1e6 / c }')
    # How much of CPU 0 the instances kept busy: near 100%, the servers were the limit.
    M[$s,$n,busy]=$(awk -v r="${M[$s,$n,rate]}" -v c="${M[$s,$n,cpu_us]}" 'BEGIN { if (r == "-" || c == "-") print "-"; else printf "%.0f%%", r * c / 1e4 }')
  done
done

declare -A LABEL=(
  [classic]="ours, RedisAdapter classic (plain WebSocket)"
  [per-room]="ours, RedisAdapter per-room (plain WebSocket)"
  [sio]="ours over Socket.IO, RedisAdapter classic"
  [nest]="NestJS 12 + platform-socket.io + RedisIoAdapter"
  [sioxide]="socketioxide 0.18 + socketioxide-redis 0.4"
)
k() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else if (v >= 10000) printf "%.0fk", v/1000; else if (v >= 1000) printf "%.1fk", v/1000; else printf "%s", v }'; }
us() { [ "$1" = - ] && echo - || awk -v v="$1" 'BEGIN { printf "%.2f µs", v }'; }
ms() { [ "$1" = - ] && echo - || awk -v v="$1" 'BEGIN { if (v >= 10000) printf "%.0f ms", v/1000; else if (v >= 1000) printf "%.1f ms", v/1000; else printf "%d µs", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
COLS=(rate p99_us cpu_us core busy redis_cpu_us lost)
cell() { # cell SERVER N COLUMN
  local v=${M[$1,$2,$3]:--}
  case "$3" in
    rate|core) k "$v" ;;
    busy) echo "$v" ;;
    p99_us) ms "$v" ;;
    cpu_us|redis_cpu_us) us "$v" ;;
    lost) echo "${M[$1,$2,missing]:--} / ${M[$1,$2,out_of_order]:--}" ;;
  esac
}
RATIOS=()
[ "$NEST" = 1 ] && RATIOS+=("classic:nest:ours classic / NestJS" "per-room:nest:ours per-room / NestJS")
RATIOS+=("classic:sioxide:ours classic / socketioxide-redis" "per-room:sioxide:ours per-room / socketioxide-redis" "sio:sioxide:ours over Socket.IO / socketioxide-redis")

{
  header="| server |"; rule="|---|"
  for n in "${NS[@]}"; do
    header+=" $n instances: deliveries/s | p99 delivery latency | server CPU per delivery | deliveries/s per server core | server core busy | Redis CPU per delivery | missing / out of order |"
    rule+="---|---|---|---|---|---|---|"
  done
  echo "$header"; echo "$rule"
  for s in "${SERVERS[@]}"; do
    row="| ${LABEL[$s]} |"
    for n in "${NS[@]}"; do for c in "${COLS[@]}"; do row+=" $(cell "$s" "$n" "$c") |"; done; done
    echo "$row"
  done
  for spec in "${RATIOS[@]}"; do
    IFS=: read -r ours peer label <<<"$spec"
    row="| $label |"
    for n in "${NS[@]}"; do
      for c in rate p99_us cpu_us core; do row+=" $(ratio "${M[$ours,$n,$c]:--}" "${M[$peer,$n,$c]:--}") |"; done
      row+=" | $(ratio "${M[$ours,$n,redis_cpu_us]:--}" "${M[$peer,$n,redis_cpu_us]:--}") | |"
    done
    echo "$row"
  done
} | tee "$TABLE"
echo >&2
echo "scale_out.sh: $ROOMS rooms of $MEMBERS members, spread over $SPREAD instances, window $WINDOW, ${SECS} s per run, $ROUNDS round(s) (medians; missing: the most of any round). Ratios are ours divided by the peer: above 1 is better for rates, below 1 for CPU and latency. Full output: $LOG" >&2
