#!/usr/bin/env bash
# pgphase benchmark: direct PostgreSQL vs pgphase vs PgBouncer, in one run on one machine.
#
# Starts a throwaway PostgreSQL 15 cluster, pgphase (workers = nproc) and PgBouncer (session
# pooling) in a temp dir, runs pgbench against the three in round-robin order, and prints a report
# (median TPS, average latency, ratios, added single-client latency, memory per idle session,
# PASS/MISS against the targets). The report is also written to bench/results/<timestamp>.md and
# .json. It is a measurement, not a test: it exits 0 whether targets are met or not.
#
#   bench/run.sh            # full run: 10 s per pgbench run, 3 rounds (~13 minutes)
#   bench/run.sh --quick    # smoke test: 3 s per run, 1 round (figures are not meaningful)
#
# Environment:
#   BENCH_DURATION   seconds per pgbench run (default 10; 3 with --quick)
#   BENCH_ROUNDS     rounds; each row reports the median (default 3; 1 with --quick)
#   BENCH_SCALE      pgbench -i scale factor (default 10)
#   BENCH_WARMUP     seconds of select-only warm-up per target before round 1 (default 2; 1 with --quick)
#   BENCH_IDLE_SESSIONS  idle sessions for the memory measurement (default 500)
#   BENCH_WORKERS    pgphase --workers (default nproc)
#   BENCH_KEEP_TMP=1 keep the temp dir (logs, pgbouncer.ini, raw pgbench output) after the run
#   PGPHASE_BIN      pgphase binary (default build/pgphase; BUILD_DIR is honoured)
# Needs: build/pgphase (bash scripts/build.sh), and from scripts/deps.sh: postgresql-15, pgbench,
# psql, pgbouncer; python3 (stdlib only) for the idle-session client.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh

die() {
  echo "bench/run.sh: $*" >&2
  exit 1
}

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h | --help)
      sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

if [ "$QUICK" = 1 ]; then
  DURATION=${BENCH_DURATION:-3}
  ROUNDS=${BENCH_ROUNDS:-1}
  WARMUP=${BENCH_WARMUP:-1}
else
  DURATION=${BENCH_DURATION:-10}
  ROUNDS=${BENCH_ROUNDS:-3}
  WARMUP=${BENCH_WARMUP:-2}
fi
SCALE=${BENCH_SCALE:-10}
IDLE_SESSIONS=${BENCH_IDLE_SESSIONS:-500}
WORKERS=${BENCH_WORKERS:-$(nproc)}
for v in DURATION ROUNDS SCALE WARMUP IDLE_SESSIONS WORKERS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "BENCH_$v must be a non-negative integer (got '${!v}')"
done
for v in DURATION ROUNDS SCALE IDLE_SESSIONS WORKERS; do
  [ "${!v}" -ge 1 ] || die "BENCH_$v must be >= 1"
done

PGPHASE_BIN=${PGPHASE_BIN:-$ROOT/${BUILD_DIR:-build}/pgphase}
[ -x "$PGPHASE_BIN" ] ||
  die "pgphase binary not found at $PGPHASE_BIN; build it first: bash scripts/build.sh (or set PGPHASE_BIN)"
for cmd in pgbench psql pgbouncer python3 awk; do
  command -v "$cmd" >/dev/null || die "'$cmd' not found; install the dependencies: bash scripts/deps.sh"
done
[ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL 15 not found in $PG_BIN; run: bash scripts/deps.sh"
if [ "$(id -u)" -eq 0 ]; then
  command -v runuser >/dev/null || die "'runuser' (util-linux) is needed to run PostgreSQL as postgres"
fi

# 500 idle sessions through pgphase need ~1000 descriptors in pgphase alone.
hard=$(ulimit -Hn)
want=65536
[ "$hard" != unlimited ] && [ "$hard" -lt "$want" ] && want=$hard
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ] && ulimit -n "$want"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((2 * IDLE_SESSIONS + 64)) ] ||
  die "open-file limit $(ulimit -n) is too low for $IDLE_SESSIONS idle sessions (raise ulimit -n)"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS_DIR=$ROOT/bench/results
DB=pgphase_bench
export PGUSER=postgres PGHOST=127.0.0.1 PGAPPNAME=pgphase-bench
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS PGSSLMODE

# ---------------------------------------------------------------------------------------------
# Processes and cleanup
TMP=""
declare -a PGPHASE_PIDS=() PGPHASE_NAMES=()
BOUNCER_PIDFILE=""
IDLE_PID=""

stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  [ -n "$IDLE_PID" ] && stop_pid "$IDLE_PID"
  for pid in "${PGPHASE_PIDS[@]}"; do stop_pid "$pid"; done
  if [ -n "$BOUNCER_PIDFILE" ] && [ -s "$BOUNCER_PIDFILE" ]; then
    stop_pid "$(cat "$BOUNCER_PIDFILE")"
  fi
  pg_stop
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$rc" -ne 143 ]; then
      local log
      for log in "$TMP"/pgphase-*.log "$TMP/pgbouncer.log" "$TMP/postgresql.log"; do
        [ -s "$log" ] || continue
        echo "--- last lines of $log" >&2
        tail -n 15 "$log" >&2
      done
    fi
    if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then
      echo "bench/run.sh: kept $TMP" >&2
    else
      rm -rf "$TMP"
    fi
  fi
  [ "$rc" -eq 0 ] || echo "bench/run.sh: aborted (exit $rc)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgphase-bench.XXXXXX")
FACTS=$TMP/facts.tsv
: >"$FACTS"
fact() {
  local IFS=$'\t'
  echo "$*" >>"$FACTS"
}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

# ---------------------------------------------------------------------------------------------
# PostgreSQL
PG_SETTINGS=(shared_buffers=256MB max_connections=600 synchronous_commit=off max_wal_size=4GB)
port=$(free_port 25432)
reserve_port "$port"
log "starting PostgreSQL 15 on 127.0.0.1:$port (${PG_SETTINGS[*]})"
pg_start_throwaway "$TMP" "$port" "${PG_SETTINGS[@]}"
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1)
"${PSQL[@]}" -p "$PG_PORT" -d postgres -c "CREATE DATABASE $DB"
log "pgbench -i -s $SCALE"
start=$SECONDS
pgbench -i -s "$SCALE" -q -p "$PG_PORT" "$DB" >"$TMP/pgbench-init.log" 2>&1 || {
  cat "$TMP/pgbench-init.log" >&2
  die "pgbench -i failed"
}
log "initialised in $((SECONDS - start)) s"
PG_VERSION=$("${PSQL[@]}" -p "$PG_PORT" -d "$DB" -c "SHOW server_version")

# ---------------------------------------------------------------------------------------------
# pgphase: one instance per backend transport (TCP and unix socket). Idle instances cost nothing.
start_pgphase() { # NAME BACKEND -> sets PGPHASE_PORT_<NAME>
  local name=$1 backend=$2 listen admin pid
  listen=$(free_port 6432)
  reserve_port "$listen"
  admin=$(free_port 8432)
  reserve_port "$admin"
  "$PGPHASE_BIN" serve --listen "127.0.0.1:$listen" --backend "$backend" \
    --admin "127.0.0.1:$admin" --workers "$WORKERS" --log-level warn \
    >"$TMP/pgphase-$name.log" 2>&1 &
  pid=$!
  PGPHASE_PIDS+=("$pid")
  PGPHASE_NAMES+=("$name")
  wait_for_listen "$listen" 30 "$pid" || die "pgphase ($name) did not start; see the log above"
  printf -v "PGPHASE_PORT_$name" '%s' "$listen"
  printf -v "PGPHASE_PID_$name" '%s' "$pid"
  log "pgphase ($name backend $backend) pid $pid on 127.0.0.1:$listen, admin 127.0.0.1:$admin"
}
start_pgphase tcp "127.0.0.1:$PG_PORT"
start_pgphase unix "unix:$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT"

# ---------------------------------------------------------------------------------------------
# PgBouncer (session pooling), one instance with an alias per backend transport.
BOUNCER_PORT=$(free_port 7432)
reserve_port "$BOUNCER_PORT"
BOUNCER_PIDFILE=$TMP/pgbouncer.pid
printf '"postgres" ""\n' >"$TMP/userlist.txt"
cat >"$TMP/pgbouncer.ini" <<EOF
[databases]
$DB = host=127.0.0.1 port=$PG_PORT dbname=$DB
${DB}_unix = host=$PG_SOCKET_DIR port=$PG_PORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $TMP/userlist.txt
pool_mode = session
max_client_conn = 1000
default_pool_size = 100
admin_users = postgres
logfile = $TMP/pgbouncer.log
pidfile = $BOUNCER_PIDFILE
log_connections = 0
log_disconnections = 0
ignore_startup_parameters = extra_float_digits
EOF
# runuser applies pam_limits (soft nofile 1024); raise it to the hard limit for 1000 clients.
# shellcheck disable=SC2016 # expanded by the inner shell
as_pg_user bash -c 'n=$(ulimit -Hn); [ "$n" = unlimited ] && n=65536; [ "$n" -gt 65536 ] && n=65536
  ulimit -n "$n"; exec pgbouncer -d -q "$1"' _ "$TMP/pgbouncer.ini" ||
  die "pgbouncer failed to start"
wait_for_listen "$BOUNCER_PORT" 30 || die "pgbouncer did not start"
for _ in $(seq 50); do [ -s "$BOUNCER_PIDFILE" ] && break; sleep 0.1; done
BOUNCER_PID=$(cat "$BOUNCER_PIDFILE")
BOUNCER_VERSION=$(pgbouncer --version | awk 'NR == 1 { print $2 }')
log "pgbouncer $BOUNCER_VERSION pid $BOUNCER_PID on 127.0.0.1:$BOUNCER_PORT (pool_mode=session)"

# Dies with the exit status (or signal) of any proxy process that is gone.
check_alive() {
  local i pid status
  for i in "${!PGPHASE_PIDS[@]}"; do
    pid=${PGPHASE_PIDS[i]}
    kill -0 "$pid" 2>/dev/null && continue
    status=0
    wait "$pid" 2>/dev/null || status=$?
    if [ "$status" -gt 128 ]; then
      die "pgphase (${PGPHASE_NAMES[i]} backend, pid $pid) was killed by SIG$(kill -l $((status - 128)))"
    fi
    die "pgphase (${PGPHASE_NAMES[i]} backend, pid $pid) exited with status $status"
  done
  kill -0 "$BOUNCER_PID" 2>/dev/null || die "pgbouncer (pid $BOUNCER_PID) has exited"
}

# Target endpoint for a row transport: sets T_PORT and T_DB.
# shellcheck disable=SC2154 # PGPHASE_PORT_* are set by start_pgphase via printf -v
endpoint() { # TARGET TRANSPORT
  case "$1/$2" in
    direct/*) T_PORT=$PG_PORT T_DB=$DB ;;
    pgphase/tcp) T_PORT=$PGPHASE_PORT_tcp T_DB=$DB ;;
    pgphase/unix) T_PORT=$PGPHASE_PORT_unix T_DB=$DB ;;
    pgbouncer/tcp) T_PORT=$BOUNCER_PORT T_DB=$DB ;;
    pgbouncer/unix) T_PORT=$BOUNCER_PORT T_DB=${DB}_unix ;;
    *) die "unknown target $1/$2" ;;
  esac
}

# Every target must answer a query before anything is measured.
for t in direct/tcp pgphase/tcp pgphase/unix pgbouncer/tcp pgbouncer/unix; do
  endpoint "${t%/*}" "${t#*/}"
  got=$("${PSQL[@]}" -p "$T_PORT" -d "$T_DB" -c "SELECT count(*) FROM pgbench_branches") ||
    die "query through $t (port $T_PORT) failed"
  [ "$got" = "$SCALE" ] || die "query through $t returned '$got', expected $SCALE"
done
log "all targets answer queries"

vmrss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------
# Memory per idle client session (fresh processes, before any load).
wait_idle_backends_gone() {
  local i n
  for ((i = 0; i < 300; i++)); do
    n=$("${PSQL[@]}" -p "$PG_PORT" -d postgres -c \
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgphase-bench-idle'")
    [ "$n" = 0 ] && return 0
    sleep 0.1
  done
  log "warning: $n idle-test backends still connected after 30 s"
}

measure_idle_rss() { # TARGET PID PORT DB
  local target=$1 pid=$2 port=$3 db=$4 before after ready=$TMP/idle-$1.ready i
  rm -f "$ready"
  before=$(vmrss_kib "$pid")
  python3 "$ROOT/bench/idle_sessions.py" --port "$port" --database "$db" --count "$IDLE_SESSIONS" \
    --ready-file "$ready" 2>"$TMP/idle-$target.err" &
  IDLE_PID=$!
  for ((i = 0; i < 1200; i++)); do
    [ -s "$ready" ] && break
    if ! kill -0 "$IDLE_PID" 2>/dev/null; then
      cat "$TMP/idle-$target.err" >&2
      check_alive
      die "opening $IDLE_SESSIONS idle sessions through $target failed"
    fi
    sleep 0.1
  done
  [ -s "$ready" ] || { check_alive; die "$IDLE_SESSIONS idle sessions through $target not ready after 120 s"; }
  sleep 1
  after=$(vmrss_kib "$pid")
  stop_pid "$IDLE_PID"
  IDLE_PID=""
  fact mem "$target" "$before" "$after" "$IDLE_SESSIONS"
  log "$target VmRSS ${before} KiB -> ${after} KiB with $IDLE_SESSIONS idle sessions ($(awk -v a="$after" -v b="$before" -v n="$IDLE_SESSIONS" 'BEGIN { printf "%.1f", (a - b) / n }') KiB/session; opened in $(awk '{ print $3 }' "$ready") s)"
  wait_idle_backends_gone
}
# shellcheck disable=SC2154 # set by start_pgphase via printf -v
measure_idle_rss pgphase "$PGPHASE_PID_tcp" "$PGPHASE_PORT_tcp" "$DB"
measure_idle_rss pgbouncer "$BOUNCER_PID" "$BOUNCER_PORT" "$DB"
check_alive

# ---------------------------------------------------------------------------------------------
# pgbench rows: id workload clients threads mode transport kind
ROWS=(
  "sel-simple-c8 select-only 8 2 simple tcp tps"
  "sel-simple-c32 select-only 32 2 simple tcp tps"
  "sel-prepared-c8 select-only 8 2 prepared tcp tps"
  "sel-prepared-c32 select-only 32 2 prepared tcp tps"
  "tpcb-prepared-c8 tpcb-like 8 2 prepared tcp tps"
  "sel-simple-c1 select-only 1 1 simple tcp latency"
  "sel-simple-c8-unix select-only 8 2 simple unix tps"
)
TARGETS=(direct pgphase pgbouncer)
for row in "${ROWS[@]}"; do
  # shellcheck disable=SC2086
  fact row $row
done

run_pgbench() { # OUTFILE TARGET TRANSPORT WORKLOAD CLIENTS THREADS MODE SECONDS
  local out=$1 workload=$4 clients=$5 threads=$6 mode=$7 seconds=$8 script=()
  endpoint "$2" "$3"
  [ "$workload" = select-only ] && script=(-S)
  if ! pgbench -n "${script[@]}" -p "$T_PORT" -c "$clients" -j "$threads" -M "$mode" \
    -T "$seconds" "$T_DB" >"$out" 2>&1; then
    tail -n 20 "$out" >&2
    check_alive
    die "pgbench against $2 ($3 backend, port $T_PORT) failed"
  fi
  check_alive
}

if [ "$WARMUP" -gt 0 ]; then
  log "warm-up: ${WARMUP} s select-only per target"
  for t in direct/tcp pgphase/tcp pgphase/unix pgbouncer/tcp pgbouncer/unix; do
    run_pgbench "$TMP/warmup.out" "${t%/*}" "${t#*/}" select-only 8 2 simple "$WARMUP"
  done
fi

runs_total=$((ROUNDS * ${#ROWS[@]} * ${#TARGETS[@]}))
log "running $runs_total pgbench runs of ${DURATION} s (${#ROWS[@]} rows x ${#TARGETS[@]} targets x $ROUNDS rounds)"
n=0
for ((round = 1; round <= ROUNDS; round++)); do
  for ((r = 0; r < ${#ROWS[@]}; r++)); do
    read -r id workload clients threads mode transport _ <<<"${ROWS[r]}"
    for ((k = 0; k < ${#TARGETS[@]}; k++)); do
      # Rotate the order per round and row so no target always runs first or last.
      target=${TARGETS[(k + round + r) % ${#TARGETS[@]}]}
      n=$((n + 1))
      out=$TMP/run-$id-$target-$round.out
      run_pgbench "$out" "$target" "$transport" "$workload" "$clients" "$threads" "$mode" "$DURATION"
      tps=$(awk '/^tps = / { print $3; exit }' "$out")
      lat=$(awk '/^latency average = / { print $4; exit }' "$out")
      failed=$(awk -F'[: ]+' '/^number of failed transactions/ { print $5; exit }' "$out")
      if [ -z "$tps" ] || [ -z "$lat" ]; then
        cat "$out" >&2
        die "could not parse pgbench output ($id, $target)"
      fi
      [ "${failed:-0}" = 0 ] || log "warning: $failed failed transactions ($id, $target, round $round)"
      fact run "$id" "$target" "$round" "$tps" "$lat"
      printf '%s [%3d/%d] round %d  %-20s %-9s %10.0f tps  %8.3f ms\n' "$(date +%H:%M:%S)" \
        "$n" "$runs_total" "$round" "$id" "$target" "$tps" "$lat"
    done
  done
done

# ---------------------------------------------------------------------------------------------
# Report
fact meta timestamp "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fact meta quick "$QUICK"
fact meta duration_s "$DURATION"
fact meta rounds "$ROUNDS"
fact meta warmup_s "$WARMUP"
fact meta scale "$SCALE"
fact meta idle_sessions "$IDLE_SESSIONS"
fact meta pgphase_workers "$WORKERS"
fact meta cpus "$(nproc)"
fact meta cpu_model "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
fact meta kernel "$(uname -r)"
fact meta postgresql "$PG_VERSION"
fact meta postgresql_settings "${PG_SETTINGS[*]}"
fact meta pgbouncer "$BOUNCER_VERSION"
fact meta pgbouncer_settings "pool_mode=session default_pool_size=100 max_client_conn=1000 auth_type=trust"
fact meta pgbench "$(pgbench --version | awk '{ print $3 }')"
fact meta pgphase_git "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
fact meta pgphase_version "$("$PGPHASE_BIN" version 2>/dev/null | head -n 1 || echo unknown)"

mkdir -p "$RESULTS_DIR"
MD=$RESULTS_DIR/$STAMP.md
JSON=$RESULTS_DIR/$STAMP.json
awk -F'\t' -v md="$MD" -v json="$JSON" -f "$ROOT/bench/report.awk" "$FACTS"
echo
cat "$MD"
echo
echo "report written to ${MD#"$ROOT"/} and ${JSON#"$ROOT"/}"
