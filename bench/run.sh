#!/usr/bin/env bash
# pgphase benchmark: direct PostgreSQL vs pgphase vs PgBouncer, in one run on one machine.
#
# Starts a throwaway PostgreSQL 15 cluster, pgphase (workers = nproc) and PgBouncer (session
# pooling) in a temp dir, runs pgbench against them in round-robin order, and prints a report
# (median TPS, average latency, ratios, added single-client latency, memory per idle session,
# PASS/MISS against the targets). The report is also written to bench/results/<timestamp>.md and
# .json. It is a measurement, not a test: it exits 0 whether targets are met or not.
#
# Targets, in the same rounds (the unix-socket row: direct, pgphase and PgBouncer only):
#   direct           PostgreSQL itself
#   pgphase          pgphase as a plain pass-through (no control plane)
#   pgphase+cp       pgphase with a control plane (control database pgphase_bench_cp, empty) and
#                    no migration
#   pgphase+cp+mig   pgphase with a control plane in the benchmark database and the migration
#                    bench_other -> t_sys_bench_other in dual_write (registered and moved through
#                    the admin API): a table pgbench does not touch, so nothing it runs migrates
#   pgbouncer        PgBouncer, session pooling
#   pgphase(base), pgphase+cp(base)
#                    the same as pgphase and pgphase+cp with PGPHASE_BASELINE_BIN, when set
# Rows run with shared CPUs (no affinity) and, with BENCH_PINNED=1, the select-only 8- and
# 32-client rows (simple and prepared) once more pinned: PostgreSQL (postmaster and every backend)
# on CPU BENCH_PIN_PG_CPU, pgbench and every proxy on CPU BENCH_PIN_CLIENT_CPU (taskset).
#
# Because TPS on a shared, noisy machine swings from run to run, every run also records CPU time:
# the proxy's (utime+stime of the whole process from /proc/PID/stat, all threads) divided by the
# transactions pgbench processed gives "proxy CPU µs per transaction": what the proxy spent per
# transaction rather than what it was given, a second view next to TPS (still moved by cache and
# CPU contention, steal and event batching). /proc/stat and the CPU time of PostgreSQL (postmaster
# and children), pgbench and the proxies give the share of CPU taken by other processes during
# each run, and the report states the min-max spread of direct TPS across rounds.
#
#   bench/run.sh            # full run: 6 s per pgbench run, 5 rounds (~30 minutes; ~40 with a
#                           # baseline binary, ~19 with BENCH_PINNED=0)
#   bench/run.sh --quick    # smoke test: 3 s per run, 1 round (figures are not meaningful)
#
# Environment:
#   BENCH_DURATION   seconds per pgbench run (default 6; 3 with --quick)
#   BENCH_ROUNDS     rounds; each row reports the median (default 5; 1 with --quick)
#   BENCH_SCALE      pgbench -i scale factor (default 10)
#   BENCH_WARMUP     seconds of select-only warm-up per target before round 1 (default 2; 1 with --quick)
#   BENCH_IDLE_SESSIONS  idle sessions for the memory measurement (default 500)
#   BENCH_WORKERS    pgphase --workers (default nproc)
#   BENCH_WORKERS_ALT  --workers of an extra pgphase instance measured in the select-only 8-client
#                    simple TCP row only, reported as the row "pgphase --workers N" (default 1; 0 = off)
#   BENCH_PINNED     1: also the pinned rows (default); 0: shared CPUs only. Needs 2 CPUs and taskset.
#   BENCH_PIN_PG_CPU, BENCH_PIN_CLIENT_CPU
#                    CPUs of the pinned rows: PostgreSQL's (default 0), pgbench's and the proxies'
#                    (default 1)
#   BENCH_KEEP_TMP=1 keep the temp dir (logs, pgbouncer.ini, raw pgbench output) after the run
#   PGPHASE_BIN      pgphase binary (default build/pgphase; BUILD_DIR is honoured)
#   PGPHASE_BASELINE_BIN
#                    another pgphase binary (e.g. of an older commit), measured as the extra targets
#                    pgphase(base) and pgphase+cp(base) in the same rounds (default: none)
# Needs: build/pgphase (bash scripts/build.sh), and from scripts/deps.sh: postgresql-15, pgbench,
# psql, pgbouncer; python3 (stdlib only) for the idle-session client; curl (admin API); taskset
# (util-linux) for the pinned rows.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh


bench_parse_args "$@"

if [ "$QUICK" = 1 ]; then
  DURATION=${BENCH_DURATION:-3}
  ROUNDS=${BENCH_ROUNDS:-1}
  WARMUP=${BENCH_WARMUP:-1}
else
  DURATION=${BENCH_DURATION:-6}
  ROUNDS=${BENCH_ROUNDS:-5}
  WARMUP=${BENCH_WARMUP:-2}
fi
SCALE=${BENCH_SCALE:-10}
IDLE_SESSIONS=${BENCH_IDLE_SESSIONS:-500}
WORKERS=${BENCH_WORKERS:-$(nproc)}
WORKERS_ALT=${BENCH_WORKERS_ALT:-1}
PINNED=${BENCH_PINNED:-1}
PIN_PG_CPU=${BENCH_PIN_PG_CPU:-0}
PIN_CLIENT_CPU=${BENCH_PIN_CLIENT_CPU:-1}
for v in DURATION ROUNDS SCALE WARMUP IDLE_SESSIONS WORKERS WORKERS_ALT PINNED PIN_PG_CPU PIN_CLIENT_CPU; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "BENCH_$v must be a non-negative integer (got '${!v}')"
done
for v in DURATION ROUNDS SCALE IDLE_SESSIONS WORKERS; do
  [ "${!v}" -ge 1 ] || die "BENCH_$v must be >= 1"
done
[ "$PINNED" -le 1 ] || die "BENCH_PINNED must be 0 or 1"
[ "$PIN_PG_CPU" != "$PIN_CLIENT_CPU" ] || die "BENCH_PIN_PG_CPU and BENCH_PIN_CLIENT_CPU must differ"

PGPHASE_BIN=${PGPHASE_BIN:-$ROOT/${BUILD_DIR:-build}/pgphase}
[ -x "$PGPHASE_BIN" ] ||
  die "pgphase binary not found at $PGPHASE_BIN; build it first: bash scripts/build.sh (or set PGPHASE_BIN)"
BASELINE_BIN=${PGPHASE_BASELINE_BIN:-}
if [ -n "$BASELINE_BIN" ]; then
  [ -x "$BASELINE_BIN" ] || die "PGPHASE_BASELINE_BIN=$BASELINE_BIN is not an executable"
  BASELINE_BIN=$(cd "$(dirname "$BASELINE_BIN")" && pwd)/$(basename "$BASELINE_BIN")
fi
for cmd in pgbench psql pgbouncer python3 awk getconf curl; do
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
# The pass-through instances must not pick up a control plane from the caller's environment.
unset PGPHASE_CONTROL_DSN PGPHASE_ADMIN_TOKEN

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
PG_POSTMASTER_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
[[ "$PG_POSTMASTER_PID" =~ ^[0-9]+$ ]] || die "cannot read the postmaster pid from $PG_DATA/postmaster.pid"

# ---------------------------------------------------------------------------------------------
# Control databases and the unrelated migration's tables. pgphase+cp has an empty control
# database of its own (so it does not see the migration); pgphase+cp+mig keeps its control plane
# in the benchmark database, where the migrating tables are (pgphase reads their shape from the
# control database's catalog). The baseline's pgphase+cp has its own empty one as well.
CP_DB=${DB}_cp
CP_BASE_DB=${DB}_cp_base
"${PSQL[@]}" -p "$PG_PORT" -d postgres -c "CREATE DATABASE $CP_DB"
[ -n "$BASELINE_BIN" ] && "${PSQL[@]}" -p "$PG_PORT" -d postgres -c "CREATE DATABASE $CP_BASE_DB"
"${PSQL[@]}" -p "$PG_PORT" -d "$DB" <<'SQL'
CREATE TABLE bench_other (id bigint PRIMARY KEY, note text NOT NULL);
CREATE TABLE t_sys_bench_other (LIKE bench_other INCLUDING ALL);
SQL
control_dsn() { echo "host=127.0.0.1 port=$PG_PORT dbname=$1 user=postgres connect_timeout=5"; }
# The admin token reaches pgphase through its environment and curl through a config on stdin,
# never a command line.
ADMIN_TOKEN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

# ---------------------------------------------------------------------------------------------
# pgphase: one pass-through instance per backend transport (TCP and unix socket), plus
# (BENCH_WORKERS_ALT > 0) one with --workers BENCH_WORKERS_ALT for the select-only 8-client simple
# TCP row, the control-plane instances (cp, mig) and, with PGPHASE_BASELINE_BIN, the baseline's
# pass-through and control-plane instances (base, basecp). Idle instances cost next to nothing.
start_pgphase() { # NAME BINARY BACKEND WORKERS [SERVE_OPTION...] -> PGPHASE_{PORT,ADMIN,PID}_<NAME>
  local name=$1 bin=$2 backend=$3 workers=$4 listen admin pid
  shift 4
  listen=$(free_port 6432)
  reserve_port "$listen"
  admin=$(free_port 8432)
  reserve_port "$admin"
  PGPHASE_ADMIN_TOKEN=$ADMIN_TOKEN "$bin" serve --listen "127.0.0.1:$listen" --backend "$backend" \
    --admin "127.0.0.1:$admin" --workers "$workers" --log-level warn "$@" \
    >"$TMP/pgphase-$name.log" 2>&1 &
  pid=$!
  PGPHASE_PIDS+=("$pid")
  PGPHASE_NAMES+=("$name")
  wait_for_listen "$listen" 30 "$pid" || die "pgphase ($name) did not start; see the log above"
  wait_for_listen "$admin" 30 "$pid" || die "pgphase ($name): its admin API did not start"
  printf -v "PGPHASE_PORT_$name" '%s' "$listen"
  printf -v "PGPHASE_ADMIN_$name" '%s' "$admin"
  printf -v "PGPHASE_PID_$name" '%s' "$pid"
  log "pgphase ($name: $bin, backend $backend, --workers $workers${*:+ $*}) pid $pid on 127.0.0.1:$listen, admin 127.0.0.1:$admin"
}
start_pgphase tcp "$PGPHASE_BIN" "127.0.0.1:$PG_PORT" "$WORKERS"
start_pgphase unix "$PGPHASE_BIN" "unix:$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT" "$WORKERS"
[ "$WORKERS_ALT" -gt 0 ] && start_pgphase alt "$PGPHASE_BIN" "127.0.0.1:$PG_PORT" "$WORKERS_ALT"
start_pgphase cp "$PGPHASE_BIN" "127.0.0.1:$PG_PORT" "$WORKERS" --control-dsn "$(control_dsn "$CP_DB")"
start_pgphase mig "$PGPHASE_BIN" "127.0.0.1:$PG_PORT" "$WORKERS" --control-dsn "$(control_dsn "$DB")"
if [ -n "$BASELINE_BIN" ]; then
  start_pgphase base "$BASELINE_BIN" "127.0.0.1:$PG_PORT" "$WORKERS"
  start_pgphase basecp "$BASELINE_BIN" "127.0.0.1:$PG_PORT" "$WORKERS" --control-dsn "$(control_dsn "$CP_BASE_DB")"
fi

# admin_api NAME METHOD PATH [BODY]: the answer's body on stdout; fails on an HTTP error.
admin_api() {
  local port_var=PGPHASE_ADMIN_$1
  printf 'header = "Authorization: Bearer %s"\n' "$ADMIN_TOKEN" |
    curl -sS -f --max-time 30 -K - -X "$2" -H 'Content-Type: application/json' \
      -H 'X-PGPhase-Actor: bench/run.sh' ${4:+--data "$4"} "http://127.0.0.1:${!port_var}$3"
}

# The control-plane instances must be connected to their control database before anything is
# measured (pgphase_control_db_connected 1).
wait_control_plane() { # NAME
  local i
  for ((i = 0; i < 300; i++)); do
    admin_api "$1" GET /metrics 2>/dev/null | grep -Eq '^pgphase_control_db_connected(\{[^}]*\})? 1(\.0*)?$' &&
      return 0
    sleep 0.1
  done
  die "pgphase ($1) is not connected to its control database after 30 s"
}
wait_control_plane cp
wait_control_plane mig
[ -n "$BASELINE_BIN" ] && wait_control_plane basecp

# The unrelated migration, through pgphase+cp+mig's admin API, to dual_write.
MIG_ID=bench_other
admin_api mig POST /api/v1/migrations \
  "{\"migration_id\":\"$MIG_ID\",\"source_table\":\"bench_other\",\"target_table\":\"t_sys_bench_other\"}" \
  >"$TMP/migration-register.json" || die "registering the migration $MIG_ID failed"
admin_api mig POST "/api/v1/migrations/$MIG_ID/phase" '{"phase":"dual_write"}' >"$TMP/migration-phase.json" ||
  die "moving the migration $MIG_ID to dual_write failed: $(cat "$TMP/migration-phase.json" 2>/dev/null)"
grep -q '"phase": *"dual_write"' "$TMP/migration-phase.json" ||
  die "the migration $MIG_ID is not in dual_write: $(cat "$TMP/migration-phase.json")"
# Proof that pgphase+cp+mig applies it: a row written through it reaches the target table.
mig_ok=0
for ((i = 1; i <= 100; i++)); do
  # shellcheck disable=SC2154 # set by start_pgphase via printf -v
  "${PSQL[@]}" -p "$PGPHASE_PORT_mig" -d "$DB" -c "INSERT INTO bench_other VALUES ($i, 'probe')" ||
    die "writing bench_other through pgphase+cp+mig failed"
  [ "$("${PSQL[@]}" -p "$PG_PORT" -d "$DB" -c "SELECT count(*) FROM t_sys_bench_other")" != 0 ] &&
    { mig_ok=1; break; }
  sleep 0.1
done
[ "$mig_ok" = 1 ] || die "writes through pgphase+cp+mig do not reach t_sys_bench_other (no dual write)"
log "migration $MIG_ID (bench_other -> t_sys_bench_other) in dual_write through pgphase+cp+mig"

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

# Target endpoint for a row transport: sets T_PORT, T_DB and T_PID (the proxy process; empty for
# direct). pgphase-alt is the --workers BENCH_WORKERS_ALT instance; it, the control-plane and the
# baseline instances have a TCP backend only.
# shellcheck disable=SC2154 # PGPHASE_PORT_* / PGPHASE_PID_* are set by start_pgphase via printf -v
endpoint() { # TARGET TRANSPORT
  case "$1/$2" in
    direct/*) T_PORT=$PG_PORT T_DB=$DB T_PID="" ;;
    pgphase/tcp) T_PORT=$PGPHASE_PORT_tcp T_DB=$DB T_PID=$PGPHASE_PID_tcp ;;
    pgphase/unix) T_PORT=$PGPHASE_PORT_unix T_DB=$DB T_PID=$PGPHASE_PID_unix ;;
    pgphase-alt/tcp) T_PORT=$PGPHASE_PORT_alt T_DB=$DB T_PID=$PGPHASE_PID_alt ;;
    pgphase+cp/tcp) T_PORT=$PGPHASE_PORT_cp T_DB=$DB T_PID=$PGPHASE_PID_cp ;;
    pgphase+cp+mig/tcp) T_PORT=$PGPHASE_PORT_mig T_DB=$DB T_PID=$PGPHASE_PID_mig ;;
    "pgphase(base)/tcp") T_PORT=$PGPHASE_PORT_base T_DB=$DB T_PID=$PGPHASE_PID_base ;;
    "pgphase+cp(base)/tcp") T_PORT=$PGPHASE_PORT_basecp T_DB=$DB T_PID=$PGPHASE_PID_basecp ;;
    pgbouncer/tcp) T_PORT=$BOUNCER_PORT T_DB=$DB T_PID=$BOUNCER_PID ;;
    pgbouncer/unix) T_PORT=$BOUNCER_PORT T_DB=${DB}_unix T_PID=$BOUNCER_PID ;;
    *) die "unknown target $1/$2" ;;
  esac
}
# Targets of the rows with a TCP backend, in this order in every row (rotated per round and row);
# the unix-socket row has direct, pgphase and PgBouncer only.
TCP_TARGETS=(direct pgphase pgphase+cp pgphase+cp+mig pgbouncer)
[ -n "$BASELINE_BIN" ] && TCP_TARGETS+=("pgphase(base)" "pgphase+cp(base)")
UNIX_TARGETS=(direct pgphase pgbouncer)
ALL_TARGETS=()
for t in "${TCP_TARGETS[@]}"; do ALL_TARGETS+=("$t/tcp"); done
ALL_TARGETS+=(pgphase/unix pgbouncer/unix)
[ "$WORKERS_ALT" -gt 0 ] && ALL_TARGETS+=(pgphase-alt/tcp)

# Every target must answer a query before anything is measured.
for t in "${ALL_TARGETS[@]}"; do
  endpoint "${t%/*}" "${t#*/}"
  got=$("${PSQL[@]}" -p "$T_PORT" -d "$T_DB" -c "SELECT count(*) FROM pgbench_branches") ||
    die "query through $t (port $T_PORT) failed"
  [ "$got" = "$SCALE" ] || die "query through $t returned '$got', expected $SCALE"
done
log "all targets answer queries"

vmrss_kib() { bench_vmrss_kib "$1"; } # 0 once the process has exited

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
# CPU affinity for the pinned rows: PostgreSQL on PIN_PG_CPU, pgbench and the proxies on
# PIN_CLIENT_CPU; back to the script's own CPUs for the shared rows.
ALL_CPUS=""
command -v taskset >/dev/null && ALL_CPUS=$(taskset -pc $$ 2>/dev/null | awk -F': ' '{ print $2 }')
affinity_of() { taskset -pc "$1" 2>/dev/null | awk -F': ' '{ print $2 }'; }
CPU_MODE=shared
set_cpu_mode() { # shared | pinned
  [ "$1" = "$CPU_MODE" ] && return 0
  bench_set_cpu_mode "$1" "$PG_POSTMASTER_PID" "${PGPHASE_PIDS[@]}" "$BOUNCER_PID"
}
PINNED_ACTIVE=0
PINNED_SKIPPED=""
if [ "$PINNED" = 1 ]; then
  if [ -z "$ALL_CPUS" ]; then
    PINNED_SKIPPED="taskset (util-linux) not found"
  elif [ "$(nproc)" -lt 2 ]; then
    PINNED_SKIPPED="fewer than 2 CPUs"
  elif ! taskset -c "$PIN_PG_CPU" true 2>/dev/null || ! taskset -c "$PIN_CLIENT_CPU" true 2>/dev/null; then
    PINNED_SKIPPED="CPU $PIN_PG_CPU or $PIN_CLIENT_CPU is not available to this script (affinity $ALL_CPUS)"
  else
    set_cpu_mode pinned
    if [ "$(affinity_of "$PG_POSTMASTER_PID")" = "$PIN_PG_CPU" ] &&
      [ "$(affinity_of "$BOUNCER_PID")" = "$PIN_CLIENT_CPU" ] &&
      [ "$(affinity_of "$PGPHASE_PID_tcp")" = "$PIN_CLIENT_CPU" ]; then
      PINNED_ACTIVE=1
    else
      PINNED_SKIPPED="setting the CPU affinity of PostgreSQL or the proxies failed"
    fi
    set_cpu_mode shared
    [ "$(affinity_of "$PG_POSTMASTER_PID")" = "$ALL_CPUS" ] ||
      die "cannot restore PostgreSQL's CPU affinity to $ALL_CPUS"
  fi
  [ -n "$PINNED_SKIPPED" ] && log "warning: pinned rows skipped: $PINNED_SKIPPED"
fi

# pgbench rows: id workload clients threads mode transport kind cpus (shared: no affinity;
# pinned: see set_cpu_mode). The pinned rows come last in each round.
ROWS=(
  "sel-simple-c8 select-only 8 2 simple tcp tps shared"
  "sel-simple-c32 select-only 32 2 simple tcp tps shared"
  "sel-prepared-c8 select-only 8 2 prepared tcp tps shared"
  "sel-prepared-c32 select-only 32 2 prepared tcp tps shared"
  "tpcb-prepared-c8 tpcb-like 8 2 prepared tcp tps shared"
  "sel-simple-c1 select-only 1 1 simple tcp latency shared"
  "sel-simple-c8-unix select-only 8 2 simple unix tps shared"
)
if [ "$PINNED_ACTIVE" = 1 ]; then
  ROWS+=(
    "pin-sel-simple-c8 select-only 8 2 simple tcp tps pinned"
    "pin-sel-simple-c32 select-only 32 2 simple tcp tps pinned"
    "pin-sel-prepared-c8 select-only 8 2 prepared tcp tps pinned"
    "pin-sel-prepared-c32 select-only 32 2 prepared tcp tps pinned"
  )
fi
# The extra --workers BENCH_WORKERS_ALT instance runs in this row only, in the same rotation.
ALT_ROW=sel-simple-c8
row_targets() { # ID TRANSPORT -> ROW_TARGETS
  if [ "$2" = unix ]; then ROW_TARGETS=("${UNIX_TARGETS[@]}"); else ROW_TARGETS=("${TCP_TARGETS[@]}"); fi
  if [ "$1" = "$ALT_ROW" ] && [ "$WORKERS_ALT" -gt 0 ]; then ROW_TARGETS+=(pgphase-alt); fi
}
runs_total=0
for row in "${ROWS[@]}"; do
  read -r id _ _ _ _ transport _ <<<"$row"
  row_targets "$id" "$transport"
  runs_total=$((runs_total + ROUNDS * ${#ROW_TARGETS[@]}))
  # shellcheck disable=SC2086
  fact row $row "$(IFS=,; echo "${ROW_TARGETS[*]}")"
done

CLK_TCK=$(getconf CLK_TCK)
[[ "$CLK_TCK" =~ ^[1-9][0-9]*$ ]] || die "getconf CLK_TCK returned '$CLK_TCK'"
# Without CONFIG_IRQ_TIME_ACCOUNTING, irq/softirq time (loopback networking, mostly) is charged to
# whichever task it interrupted as well as to the irq/softirq columns of /proc/stat, so it must not
# be subtracted again when working out the CPU share of other processes. y, n or unknown.
irq_time_accounting() {
  local cfg=""
  if [ -r /proc/config.gz ] && command -v zcat >/dev/null; then
    cfg=$(zcat /proc/config.gz 2>/dev/null | grep -E '^(# )?CONFIG_IRQ_TIME_ACCOUNTING[= ]' || true)
  elif [ -r "/boot/config-$(uname -r)" ]; then
    cfg=$(grep -E '^(# )?CONFIG_IRQ_TIME_ACCOUNTING[= ]' "/boot/config-$(uname -r)" || true)
  else
    echo unknown
    return
  fi
  case "$cfg" in
    CONFIG_IRQ_TIME_ACCOUNTING=y) echo y ;;
    *) echo n ;;
  esac
}
IRQ_TIME_ACCT=$(irq_time_accounting)

# CPU snapshot, all in clock ticks (1/CLK_TCK s), printed as one line:
#   machine_total machine_idle machine_irq machine_steal pgbench postgresql kernel_threads proxies target
# machine_*: the "cpu" line of /proc/stat (total = user..steal over all CPUs; idle = idle + iowait;
# irq = irq + softirq). pgbench: cutime+cstime of this shell, i.e. the CPU of every child it has
# reaped, which between two snapshots is pgbench (plus a few ms of the first snapshot's awk).
# postgresql: the postmaster's own and reaped children's CPU plus its live children's (backends that
# exit during a run move from "live" to the postmaster's cutime, so the delta stays right).
# kernel_threads: children of kthreadd (pid 2; e.g. ksoftirqd, kworker). proxies: all pgphase
# instances and PgBouncer. target: the proxy process given as $1 (0 if none). /proc/PID/stat fields
# 14-17 are utime, stime, cutime, cstime; a process's utime/stime cover all its threads.
cpu_snapshot() { # [TARGET_PID]
  # Processes come from bench_proc_stats (scripts/lib/bench.sh), which skips the ones that exit
  # while being read: a vanished process counts as 0 and never aborts the script.
  # shellcheck disable=SC2016 # awk program
  bench_proc_stats | awk -v pm="$PG_POSTMASTER_PID" -v sh="$$" -v target="${1:-0}" \
    -v proxies="${PGPHASE_PIDS[*]} $BOUNCER_PID" '
    BEGIN {
      while ((getline line < "/proc/stat") > 0) if (line ~ /^cpu /) break
      close("/proc/stat")
      split(line, c, " ")
      total = 0
      for (i = 2; i <= 9; i++) total += c[i]
      np = split(proxies, pp, " ")
      for (i = 1; i <= np; i++) isproxy[pp[i]] = 1
      pg = kids = kthr = prox = tgt = 0
    }
    { # PID PPID UTIME+STIME CUTIME+CSTIME
      pid = $1; ppid = $2; t = $3
      if (pid == pm) pg += t + $4
      else if (ppid == pm) pg += t
      else if (pid == sh) kids = $4
      else if (pid == 2 || ppid == 2) kthr += t
      if (pid in isproxy) prox += t
      if (pid == target) tgt = t
    }
    END {
      printf "%d %d %d %d %d %d %d %d %d\n", total, c[5] + c[6], c[7] + c[8], c[9], kids, pg, kthr, prox, tgt
    }'
}

# Runs pgbench; sets RUN_CPU to the CPU ticks used during the run, in cpu_snapshot's field order.
run_pgbench() { # OUTFILE TARGET TRANSPORT WORKLOAD CLIENTS THREADS MODE SECONDS [CPUS]
  local out=$1 workload=$4 clients=$5 threads=$6 mode=$7 seconds=$8 script=() pin=() before after i
  local -a b a
  endpoint "$2" "$3"
  [ "$workload" = select-only ] && script=(-S)
  [ "${9:-shared}" = pinned ] && pin=(taskset -c "$PIN_CLIENT_CPU")
  before=$(cpu_snapshot "$T_PID")
  if ! "${pin[@]}" pgbench -n "${script[@]}" -p "$T_PORT" -c "$clients" -j "$threads" -M "$mode" \
    -T "$seconds" "$T_DB" >"$out" 2>&1; then
    tail -n 20 "$out" >&2
    check_alive
    die "pgbench against $2 ($3 backend, port $T_PORT) failed"
  fi
  after=$(cpu_snapshot "$T_PID")
  check_alive
  read -r -a b <<<"$before"
  read -r -a a <<<"$after"
  [[ ${#b[@]} == 9 && ${#a[@]} == 9 ]] || die "bad CPU snapshot: '$before' / '$after'"
  RUN_CPU=""
  for ((i = 0; i < 9; i++)); do RUN_CPU+="$((a[i] - b[i])) "; done
  RUN_CPU=${RUN_CPU% }
}

if [ "$WARMUP" -gt 0 ]; then
  log "warm-up: ${WARMUP} s select-only per target"
  for t in "${ALL_TARGETS[@]}"; do
    run_pgbench "$TMP/warmup.out" "${t%/*}" "${t#*/}" select-only 8 2 simple "$WARMUP"
  done
fi

log "running $runs_total pgbench runs of ${DURATION} s (${#ROWS[@]} rows$(
  [ "$PINNED_ACTIVE" = 1 ] && echo ", 4 of them pinned"), up to ${#TCP_TARGETS[@]} targets each$(
  [ "$WORKERS_ALT" -gt 0 ] && echo " + pgphase --workers $WORKERS_ALT in $ALT_ROW"), $ROUNDS rounds;" \
  "about $(((runs_total * (DURATION + 1) + 59) / 60)) min)"
n=0
for ((round = 1; round <= ROUNDS; round++)); do
  read -r load1 load5 load15 _ </proc/loadavg
  fact load "$round" "$load1" "$load5" "$load15"
  log "round $round: load average $load1 $load5 $load15"
  for ((r = 0; r < ${#ROWS[@]}; r++)); do
    read -r id workload clients threads mode transport _ cpus <<<"${ROWS[r]}"
    row_targets "$id" "$transport"
    set_cpu_mode "$cpus"
    for ((k = 0; k < ${#ROW_TARGETS[@]}; k++)); do
      # Rotate the order per round and row so no target always runs first or last.
      target=${ROW_TARGETS[(k + round + r) % ${#ROW_TARGETS[@]}]}
      n=$((n + 1))
      out=$TMP/run-$id-${target//[()+]/_}-$round.out
      # A run that completed no transaction (pgbench then prints no tps; seen with short runs on a
      # starved machine, when connecting took the whole duration) is repeated, up to twice.
      for ((try = 1; ; try++)); do
        run_pgbench "$out" "$target" "$transport" "$workload" "$clients" "$threads" "$mode" "$DURATION" "$cpus"
        tps=$(awk '/^tps = / { print $3; exit }' "$out")
        lat=$(awk '/^latency average = / { print $4; exit }' "$out")
        failed=$(awk -F'[: ]+' '/^number of failed transactions/ { print $5; exit }' "$out")
        txns=$(awk -F': *' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1] + 0; exit }' "$out")
        [ -n "$tps" ] && [ -n "$lat" ] && [ -n "$txns" ] && [ "$txns" != 0 ] && break
        if [ "$try" -ge 3 ] || [ -z "$txns" ]; then
          cat "$out" >&2
          die "could not parse pgbench output ($id, $target${txns:+: $txns transactions in $try runs})"
        fi
        log "warning: $id $target round $round: no transaction completed in ${DURATION} s; running it again"
        sleep 1
      done
      [ "${failed:-0}" = 0 ] || log "warning: $failed failed transactions ($id, $target, round $round)"
      fact run "$id" "$target" "$round" "$tps" "$lat"
      read -r c_total c_idle c_irq c_steal c_pgbench c_pg c_kthr c_prox c_target <<<"$RUN_CPU"
      [ "$target" = direct ] && c_target=-
      fact cpu "$id" "$target" "$round" "$txns" "$c_target" "$c_pgbench" "$c_pg" "$c_prox" "$c_kthr" \
        "$c_total" "$c_idle" "$c_irq" "$c_steal"
      # Per-run progress: proxy CPU µs per transaction, and the share of all CPUs' time taken by
      # processes other than PostgreSQL, pgbench, the proxies and the kernel (noise).
      cpu_txn=$(awk -v t="$c_target" -v n="$txns" -v hz="$CLK_TCK" \
        'BEGIN { if (t == "-" || n == 0) print "-"; else printf "%.1f", t * 1e6 / hz / n }')
      ours=$((c_pgbench + c_pg + c_prox + c_kthr + c_steal))
      [ "$IRQ_TIME_ACCT" = y ] && ours=$((ours + c_irq))
      other=$(awk -v tot="$c_total" -v busy="$((c_total - c_idle))" -v ours="$ours" \
        'BEGIN { printf "%.0f", (tot > 0 ? (busy - ours) * 100 / tot : 0) }')
      printf '%s [%3d/%d] round %d  %-20s %-16s %10.0f tps  %8.3f ms  %6s µs CPU/txn  other %s%%\n' \
        "$(date +%H:%M:%S)" "$n" "$runs_total" "$round" "$id" "$target" "$tps" "$lat" "$cpu_txn" "$other"
    done
  done
  set_cpu_mode shared
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
fact meta workers_alt "$WORKERS_ALT"
fact meta workers_alt_row "$ALT_ROW"
fact meta clk_tck "$CLK_TCK"
fact meta irq_time_accounting "$IRQ_TIME_ACCT"
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
fact meta pinned "$PINNED"
fact meta pinned_active "$PINNED_ACTIVE"
fact meta pinned_skipped "$PINNED_SKIPPED"
fact meta pin_pg_cpu "$PIN_PG_CPU"
fact meta pin_client_cpu "$PIN_CLIENT_CPU"
fact meta cpus_shared "$ALL_CPUS"
fact meta cp_control "database $CP_DB"
fact meta mig_control "database $DB"
fact meta mig_tables "$MIG_ID (bench_other -> t_sys_bench_other)"
if [ -n "$BASELINE_BIN" ]; then
  fact meta baseline_bin "$BASELINE_BIN"
  fact meta baseline_version "$("$BASELINE_BIN" version 2>/dev/null | head -n 1 || echo unknown)"
  fact meta baseline_git "$(git -C "$(dirname "$BASELINE_BIN")" describe --always --dirty 2>/dev/null || echo unknown)"
fi

mkdir -p "$RESULTS_DIR"
MD=$RESULTS_DIR/$STAMP.md
JSON=$RESULTS_DIR/$STAMP.json
awk -F'\t' -v md="$MD" -v json="$JSON" -f "$ROOT/bench/report.awk" "$FACTS"
echo
cat "$MD"
echo
echo "report written to ${MD#"$ROOT"/} and ${JSON#"$ROOT"/}"
