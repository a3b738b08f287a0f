#!/usr/bin/env bash
# The benchmarks, side by side: our gateway (bench-server), a hand-written axum server
# (raw-axum) and a NestJS app (bench/peers/nest), then the same gateway over Socket.IO
# (socketio-bench-server, our SocketIoAdapter) and socketioxide alone (raw-socketioxide),
# one after the other on the same machine, each server pinned to CPU 0 and the load
# generator to CPU 1. Prints one markdown table with ratio rows ours/raw-axum, ours/NestJS
# and ours-over-Socket.IO/socketioxide, then a second one of server-initiated
# acknowledgements (a room of 1,000 clients answering `emit_with_ack`): ours, ours over
# Socket.IO and socketioxide alone, with the ratios to socketioxide.
#
#   bench/run.sh                # about 5 minutes
#   bench/run.sh --quick        # about 2.5 minutes, shorter runs and fewer connections
#   bench/run.sh --no-nest      # without the NestJS row (no node needed)
#   bench/run.sh --no-socketio  # without the two Socket.IO rows
#   bench/run.sh --acks-only    # only the acknowledgements table (about 1 minute a round)
#   bench/run.sh --recovery     # only the recovery table: broadcast with connection state
#                               # recovery on beside off, in memory and through the Redis
#                               # adapter (the Redis at $REDIS_URL, default 127.0.0.1:6379;
#                               # without one, in memory only); about 2 minutes a round
#   bench/run.sh --rounds 3     # every server three times, interleaved; each cell the median
#   bench/run.sh --scale-out [ARGS]   # only the cross-instance table: bench/scale_out.sh ARGS
#
# Every mode's full output goes to $LOG (default target/bench-run.log); the table also to
# target/bench-table.md.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
NEST=1
SOCKETIO=1
ACKS_ONLY=0
RECOVERY_ONLY=0
ROUNDS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-nest) NEST=0 ;;
    --no-socketio) SOCKETIO=0 ;;
    --acks-only) ACKS_ONLY=1; NEST=0 ;;
    --recovery) RECOVERY_ONLY=1; NEST=0; SOCKETIO=0 ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --scale-out) shift; exec bench/scale_out.sh "$@" ;;
    *) echo "usage: $0 [--quick] [--no-nest] [--no-socketio] [--acks-only] [--recovery] [--rounds N] | --scale-out [ARGS]" >&2; exit 2 ;;
  esac
  shift
done

TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release"
LOG=${LOG:-target/bench-run.log}
TABLE=target/bench-table.md
PORT=${BENCH_PORT:-3900}
# The Redis of the recovery table's Redis rows (one instance with the Redis adapter: every
# broadcast also goes to Redis, as it would to the other instances).
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
mkdir -p target
: >"$LOG"

if [ "$QUICK" = 1 ]; then
  ECHO_SECS=3; BCAST_SECS=3; CONNECT_SECS=3; IDLE_CONNS=5000; BIG_RECEIVERS=5000; ACK_SECS=3
else
  ECHO_SECS=8; BCAST_SECS=6; CONNECT_SECS=5; IDLE_CONNS=10000; BIG_RECEIVERS=10000; ACK_SECS=6
fi
# The acknowledgements' room, and how many asks its sender keeps in flight.
ACK_RECEIVERS=1000
ACK_WINDOW=${ACK_WINDOW:-4}

# Idle and fan-out runs hold thousands of sockets on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

CPUS=$(nproc)
if [ "$CPUS" -ge 2 ]; then
  SERVER_PIN=(taskset -c 0); LOADGEN_PIN=(taskset -c 1)
else
  echo "run.sh: one CPU: server and load generator share it" >&2
  SERVER_PIN=(); LOADGEN_PIN=()
fi

echo "run.sh: building (release)" >&2
cargo build --release --quiet -p gateway-bench -p gateway-loadgen
if [ "$NEST" = 1 ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "run.sh: building the NestJS peer" >&2
    (cd bench/peers/nest && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >&2
  else
    echo "run.sh: npm not found: no NestJS row" >&2
    NEST=0
  fi
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

SERVER_PID=
start() { # start NAME: starts a server on $PORT, sets SERVER_PID
  case "$1" in
    ours) PORT=$PORT "${SERVER_PIN[@]}" "$BIN/bench-server" >>"$LOG" 2>&1 & ;;
    ours-rec) PORT=$PORT "${SERVER_PIN[@]}" "$BIN/bench-server" --recovery 120 >>"$LOG" 2>&1 & ;;
    ours-redis) PORT=$PORT "${SERVER_PIN[@]}" "$BIN/bench-server" --redis "$REDIS_URL" --redis-prefix bench-recovery >>"$LOG" 2>&1 & ;;
    ours-redis-rec) PORT=$PORT "${SERVER_PIN[@]}" "$BIN/bench-server" --redis "$REDIS_URL" --redis-prefix bench-recovery --recovery 120 >>"$LOG" 2>&1 & ;;
    raw) PORT=$PORT "${SERVER_PIN[@]}" "$BIN/raw-axum" >>"$LOG" 2>&1 & ;;
    nest) PORT=$PORT "${SERVER_PIN[@]}" node bench/peers/nest/dist/main.js >>"$LOG" 2>&1 & ;;
    sio) PORT=$PORT "${SERVER_PIN[@]}" "$BIN/socketio-bench-server" >>"$LOG" 2>&1 & ;;
    sioxide) PORT=$PORT "${SERVER_PIN[@]}" "$BIN/raw-socketioxide" >>"$LOG" 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 200); do listening "$PORT" && return 0; sleep 0.05; done
  echo "run.sh: $1 did not start listening on $PORT" >&2
  return 1
}
stop() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  sleep 1 # let the port and the sockets of the previous run go
}

# loadgen ARGS...: runs the load generator against the current server (speaking $PROTOCOL),
# prints its RESULT line.
PROTOCOL=json
loadgen() {
  echo "## --protocol $PROTOCOL $*" >>"$LOG"
  "${LOADGEN_PIN[@]}" "$BIN/loadgen" --port "$PORT" --server-pid "$SERVER_PID" --protocol "$PROTOCOL" "$@" >>"$LOG.tmp" 2>&1 || true
  cat "$LOG.tmp" >>"$LOG"
  grep '^RESULT' "$LOG.tmp" | tail -1 || echo "RESULT failed=1"
  rm -f "$LOG.tmp"
}

# field LINE KEY: the value of KEY=... in a RESULT line, or "-".
field() {
  local v
  v=$(tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p")
  echo "${v:--}"
}

# protocol_of NAME: what the load generator speaks to that server.
protocol_of() {
  case "$1" in
    sio|sioxide) echo socketio ;;
    *) echo json ;;
  esac
}

declare -A R
run_server() { # run_server NAME
  local name=$1 line
  PROTOCOL=$(protocol_of "$name")
  echo "run.sh: $name" >&2
  echo "# $name" >>"$LOG"
  # A fresh process for the idle capacity, so earlier runs' memory does not hide its growth.
  start "$name"
  line=$(loadgen --source-ips 16 idle --connections "$IDLE_CONNS" --settle 2)
  R[$name,rss]=$(field "$line" rss_kib_per_conn); R[$name,base]=$(field "$line" base_mib)
  stop
  start "$name"
  line=$(loadgen echo --connections 1 --duration "$ECHO_SECS")
  R[$name,e1]=$(field "$line" rate); R[$name,p50_1]=$(field "$line" p50_us)
  line=$(loadgen echo --connections 64 --duration "$ECHO_SECS")
  R[$name,e64]=$(field "$line" rate); R[$name,cpu]=$(field "$line" cpu_us)
  R[$name,p99]=$(field "$line" p99_us)
  line=$(loadgen echo --connections 1024 --duration "$ECHO_SECS")
  R[$name,e1024]=$(field "$line" rate)
  line=$(loadgen broadcast --receivers 1000 --duration "$BCAST_SECS")
  R[$name,b1k]=$(field "$line" rate); R[$name,bcpu]=$(field "$line" cpu_us)
  R[$name,bp99]=$(field "$line" p99_us)
  line=$(loadgen broadcast --receivers "$BIG_RECEIVERS" --duration "$BCAST_SECS")
  R[$name,b10k]=$(field "$line" rate)
  stop
}

# A room of $ACK_RECEIVERS clients answering every `emit_with_ack` of one sender's asks, in
# a fresh process.
ack_server() { # ack_server NAME
  local name=$1 line
  PROTOCOL=$(protocol_of "$name")
  echo "run.sh: $name (acknowledgements)" >&2
  echo "# $name acks" >>"$LOG"
  start "$name"
  line=$(loadgen ask --receivers "$ACK_RECEIVERS" --window "$ACK_WINDOW" --duration "$ACK_SECS")
  R[$name,a1k]=$(field "$line" rate); R[$name,acpu]=$(field "$line" cpu_us)
  R[$name,ap50]=$(field "$line" p50_us); R[$name,ap99]=$(field "$line" p99_us)
  R[$name,amiss]=$(field "$line" missing)
  stop
}

# Broadcasts to 1,000 and $BIG_RECEIVERS receivers, in a fresh process: with recovery on
# (ours-rec) every delivered frame is numbered and kept.
recovery_server() { # recovery_server NAME
  local name=$1 line
  PROTOCOL=json
  echo "run.sh: $name (recovery)" >&2
  echo "# $name recovery" >>"$LOG"
  start "$name"
  line=$(loadgen broadcast --receivers 1000 --duration "$BCAST_SECS")
  R[$name,b1k]=$(field "$line" rate); R[$name,bcpu]=$(field "$line" cpu_us)
  R[$name,bp99]=$(field "$line" p99_us)
  line=$(loadgen broadcast --receivers "$BIG_RECEIVERS" --duration "$BCAST_SECS")
  R[$name,b10k]=$(field "$line" rate)
  stop
}

# The connection rate comes last in a round: its tens of thousands of TIME_WAIT sockets
# would slow the other servers' loopback traffic for a minute.
connect_server() { # connect_server NAME
  local name=$1 line
  PROTOCOL=$(protocol_of "$name")
  echo "run.sh: $name (connections/s)" >&2
  echo "# $name connect" >>"$LOG"
  start "$name"
  line=$(loadgen --source-ips 16 connect --duration "$CONNECT_SECS")
  R[$name,conn]=$(field "$line" rate)
  stop
}

# Waits (up to 70 s) for the TIME_WAIT sockets of the connection-rate runs to expire.
settle_time_wait() {
  local tw
  for _ in $(seq 70); do
    tw=$(awk '/^TCP:/ { for (i = 1; i <= NF; i++) if ($i == "tw") print $(i + 1) }' /proc/net/sockstat 2>/dev/null || echo 0)
    [ "${tw:-0}" -lt 2000 ] && return 0
    sleep 1
  done
}

# redis_reachable: whether the Redis at $REDIS_URL (redis://[user:pass@]host[:port][/db])
# accepts connections.
redis_reachable() {
  local hostport=${REDIS_URL#*://}
  hostport=${hostport##*@}; hostport=${hostport%%/*}
  local host=${hostport%%:*} port=6379
  [ "$hostport" != "$host" ] && port=${hostport##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

if [ "$RECOVERY_ONLY" = 1 ]; then
  SERVERS=(ours ours-rec)
  if redis_reachable; then
    SERVERS+=(ours-redis ours-redis-rec)
  else
    echo "run.sh: no Redis at $REDIS_URL: no Redis rows in the recovery table" >&2
  fi
elif [ "$ACKS_ONLY" = 1 ]; then
  SERVERS=(ours)
else
  SERVERS=(ours raw)
fi
[ "$NEST" = 1 ] && SERVERS+=(nest)
[ "$SOCKETIO" = 1 ] && SERVERS+=(sio sioxide)
COLS=(e1 p50_1 e64 cpu p99 e1024 b1k bcpu bp99 b10k rss conn)
# The acknowledgements' columns, for the servers that ask: ours plain, ours over Socket.IO
# and socketioxide (raw axum and NestJS's platform-ws have no server-initiated acks).
ACOLS=(a1k acpu ap50 ap99 amiss)
asks() { case "$1" in ours|sio|sioxide) return 0 ;; *) return 1 ;; esac; }

# median V...: the median of the numbers given ("-" left out), or "-".
median() {
  printf '%s\n' "$@" | { grep -v '^-$' || true; } | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Rounds interleave the servers, so that a noisy minute on the machine falls on all of them;
# every other round runs them in reverse order.
declare -A ROUND
for round in $(seq "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "run.sh: round $round of $ROUNDS" >&2
  ORDER=("${SERVERS[@]}")
  if [ $((round % 2)) = 0 ]; then
    ORDER=()
    for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do ORDER+=("${SERVERS[$i]}"); done
  fi
  if [ "$RECOVERY_ONLY" = 1 ]; then
    for s in "${ORDER[@]}"; do recovery_server "$s"; done
  else
    if [ "$ACKS_ONLY" = 0 ]; then
      for s in "${ORDER[@]}"; do run_server "$s"; done
    fi
    for s in "${ORDER[@]}"; do asks "$s" && ack_server "$s"; done
    if [ "$ACKS_ONLY" = 0 ]; then
      for s in "${ORDER[@]}"; do connect_server "$s"; done
    fi
  fi
  for s in "${ORDER[@]}"; do
    for c in "${COLS[@]}" "${ACOLS[@]}" base; do ROUND[$s,$c,$round]=${R[$s,$c]:--}; done
  done
  [ "$round" -lt "$ROUNDS" ] && [ "$ACKS_ONLY" = 0 ] && [ "$RECOVERY_ONLY" = 0 ] && settle_time_wait
done
for s in "${SERVERS[@]}"; do
  for c in "${COLS[@]}" "${ACOLS[@]}" base; do
    values=()
    for round in $(seq "$ROUNDS"); do values+=("${ROUND[$s,$c,$round]}"); done
    R[$s,$c]=$(median "${values[@]}")
  done
done
declare -A LABEL=(
  [ours]="ours (bench-server)"
  [ours-rec]="ours with recovery on, in memory (bench-server --recovery 120)"
  [ours-redis]="ours through Redis, recovery off (bench-server --redis)"
  [ours-redis-rec]="ours through Redis, recovery on (bench-server --redis --recovery 120)"
  [raw]="raw axum 0.8, 4 KiB buffers"
  [nest]="NestJS 12 + @nestjs/platform-ws"
  [sio]="ours over Socket.IO (socketio-bench-server)"
  [sioxide]="socketioxide 0.18 alone"
)
# Ratio rows: "ours:peer:label", ours divided by the peer.
RATIOS=("ours:raw:ours / raw axum 0.8")
[ "$NEST" = 1 ] && RATIOS+=("ours:nest:ours / NestJS")
[ "$SOCKETIO" = 1 ] && RATIOS+=("sio:sioxide:ours over Socket.IO / socketioxide")
ARATIOS=()
[ "$SOCKETIO" = 1 ] && ARATIOS+=("sio:sioxide:ours over Socket.IO / socketioxide" "ours:sioxide:ours / socketioxide")

k() { # 123456 -> 123k
  awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else if (v >= 10000) printf "%.0fk", v/1000; else if (v >= 1000) printf "%.1fk", v/1000; else printf "%s", v }'
}
thousands() { # 1000 -> 1,000
  sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"
}
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}
cell() { # cell SERVER COLUMN
  local v=${R[$1,$2]:--}
  case "$2" in
    e1|e64|e1024|b1k|b10k|conn|a1k) k "$v" ;;
    cpu|bcpu|acpu) [ "$v" = - ] && echo - || awk -v v="$v" 'BEGIN { printf "%.2f µs", v }' ;;
    amiss) echo "$v" ;;
    p50_1|p99|bp99|ap50|ap99) [ "$v" = - ] && echo - || awk -v v="$v" 'BEGIN { if (v >= 10000) printf "%.0f ms", v/1000; else if (v >= 1000) printf "%.1f ms", v/1000; else printf "%d µs", v }' ;;
    rss) [ "$v" = - ] && echo - || awk -v v="$v" -v b="${R[$1,base]}" 'BEGIN { printf "%.2f KiB (+%.1f MiB process)", v, b }' ;;
  esac
}

main_table() {
  echo "| server | echo round trips/s, 1 conn | echo p50, 1 conn | echo round trips/s, 64 conns | server CPU per round trip | echo p99, 64 conns | echo round trips/s, 1024 conns | broadcast deliveries/s, 1,000 receivers | server CPU per delivery | delivery p99, 1,000 receivers | broadcast deliveries/s, $(k "$BIG_RECEIVERS") receivers | RSS per idle connection ($(k "$IDLE_CONNS")) | new connections/s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for s in "${SERVERS[@]}"; do
    row="| ${LABEL[$s]} |"
    for c in "${COLS[@]}"; do row+=" $(cell "$s" "$c") |"; done
    echo "$row"
  done
  for spec in "${RATIOS[@]}"; do
    IFS=: read -r ours peer label <<<"$spec"
    row="| $label |"
    for c in "${COLS[@]}"; do row+=" $(ratio "${R[$ours,$c]:--}" "${R[$peer,$c]:--}") |"; done
    echo "$row"
  done
}
acks_table() {
  echo "| server (acknowledgements, $ACK_WINDOW asks in flight) | answers collected/s, $(thousands "$ACK_RECEIVERS") receivers | server CPU per answer | ask p50 | ask p99 | answers missing |"
  echo "|---|---|---|---|---|---|"
  for s in "${SERVERS[@]}"; do
    asks "$s" || continue
    row="| ${LABEL[$s]} |"
    for c in "${ACOLS[@]}"; do row+=" $(cell "$s" "$c") |"; done
    echo "$row"
  done
  for spec in "${ARATIOS[@]}"; do
    IFS=: read -r ours peer label <<<"$spec"
    row="| $label |"
    for c in a1k acpu ap50 ap99; do row+=" $(ratio "${R[$ours,$c]:--}" "${R[$peer,$c]:--}") |"; done
    echo "$row |"
  done
}
recovery_table() {
  echo "| server | broadcast deliveries/s, 1,000 receivers | server CPU per delivery | delivery p99, 1,000 receivers | broadcast deliveries/s, $(k "$BIG_RECEIVERS") receivers |"
  echo "|---|---|---|---|---|"
  for s in "${SERVERS[@]}"; do
    row="| ${LABEL[$s]} |"
    for c in b1k bcpu bp99 b10k; do row+=" $(cell "$s" "$c") |"; done
    echo "$row"
  done
  # Ratio rows: "on:off:label", the first divided by the second, measured in the same run.
  local specs=("ours-rec:ours:recovery on / off, in memory")
  if [[ " ${SERVERS[*]} " == *" ours-redis "* ]]; then
    specs+=("ours-redis-rec:ours-redis:recovery on / off, through Redis"
      "ours-redis:ours:through Redis / in memory, recovery off")
  fi
  for spec in "${specs[@]}"; do
    IFS=: read -r on off label <<<"$spec"
    row="| $label |"
    for c in b1k bcpu bp99 b10k; do row+=" $(ratio "${R[$on,$c]:--}" "${R[$off,$c]:--}") |"; done
    echo "$row"
  done
}
{
  if [ "$RECOVERY_ONLY" = 1 ]; then
    recovery_table
  else
    if [ "$ACKS_ONLY" = 0 ]; then main_table; echo; fi
    acks_table
  fi
} | tee "$TABLE"
echo >&2
echo "run.sh: ratios are ours divided by the peer: above 1 is better for rates, below 1 for CPU, latency and RSS. Full output: $LOG" >&2
