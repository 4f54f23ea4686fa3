#!/usr/bin/env bash
# System calls per transaction: pgphase (pass-through and with a control plane, no migration)
# against PgBouncer (session pooling), on the same throwaway PostgreSQL 15, in one run.
#
# For each proxy, pgbench runs a fixed number of select-only transactions (simple and prepared)
# while `perf stat -e raw_syscalls:sys_enter -p PID` counts every system call the proxy's threads
# enter; the count divided by the transactions is "syscalls per transaction". With
# SYSCALLS_BREAKDOWN=1 (default) a second pass under `strace -c -f` lists which calls they are.
# Connection setup is outside the counted window (pgbench connects before perf attaches is not
# guaranteed, so the setup of CLIENTS sessions is a fixed cost: ~60 calls per session, under 1%
# of the window at the defaults).
#
#   bench/syscalls.sh                    # 8 clients x 5000 transactions per row
#   SYSCALLS_CLIENTS=32 bench/syscalls.sh
#
# Environment: SYSCALLS_CLIENTS (8), SYSCALLS_TRANSACTIONS per client (5000), SYSCALLS_BREAKDOWN
# (1), PGPHASE_BIN (build/pgphase). Needs perf (linux-perf), strace, pgbench, pgbouncer.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
. "$ROOT/scripts/lib/pg.sh"
# shellcheck source=scripts/lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"

CLIENTS=${SYSCALLS_CLIENTS:-8}
TXNS=${SYSCALLS_TRANSACTIONS:-5000}
BREAKDOWN=${SYSCALLS_BREAKDOWN:-1}
PGPHASE_BIN=${PGPHASE_BIN:-$ROOT/${BUILD_DIR:-build}/pgphase}
for cmd in perf strace pgbench psql pgbouncer; do
  command -v "$cmd" >/dev/null || die "$cmd not found (bash scripts/deps.sh)"
done
[ -x "$PGPHASE_BIN" ] || die "pgphase not built: $PGPHASE_BIN (bash scripts/build.sh)"

bench_init syscalls
PG_PORT=$(free_port 25432)
pg_start_throwaway "$TMP" "$PG_PORT" max_connections=200 shared_buffers=128MB fsync=off \
  synchronous_commit=off || die "PostgreSQL did not start"
DB=bench
psql -X -q -p "$PG_PORT" -d postgres -c "CREATE DATABASE $DB" -c "CREATE DATABASE bench_cp"
pgbench -q -i -s 1 -p "$PG_PORT" "$DB" >/dev/null 2>&1 || die "pgbench -i failed"

# pgphase without a control plane.
PT_PORT=$(free_port 6932)
reserve_port "$PT_PORT"
PT_ADMIN=$(free_port 8932)
reserve_port "$PT_ADMIN"
"$PGPHASE_BIN" serve --listen "127.0.0.1:$PT_PORT" --backend "127.0.0.1:$PG_PORT" \
  --admin "127.0.0.1:$PT_ADMIN" --log-level warn >"$TMP/pgphase-pt.log" 2>&1 &
PT_PID=$!
wait_for_listen "$PT_PORT" 30 "$PT_PID" || die "pgphase did not start"
# pgphase with a control plane and no migration.
bench_start_pgphase "host=127.0.0.1 port=$PG_PORT dbname=bench_cp user=postgres"
CP_PORT=$listen
CP_PID=$PID  # stopped by _bench_cleanup

BOUNCER_PORT=$(free_port 7532)
reserve_port "$BOUNCER_PORT"
printf '"postgres" ""\n' >"$TMP/userlist.txt"
cat >"$TMP/pgbouncer.ini" <<EOF
[databases]
$DB = host=127.0.0.1 port=$PG_PORT dbname=$DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $TMP/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 100
logfile = $TMP/pgbouncer.log
pidfile = $TMP/pgbouncer.pid
ignore_startup_parameters = extra_float_digits
EOF
pg_prepare_dir "$TMP"
as_pg_user pgbouncer -d -q "$TMP/pgbouncer.ini" || die "pgbouncer failed to start"
wait_for_listen "$BOUNCER_PORT" 30 || die "pgbouncer did not start"
for _ in $(seq 50); do [ -s "$TMP/pgbouncer.pid" ] && break; sleep 0.1; done
BOUNCER_PID=$(cat "$TMP/pgbouncer.pid")
trap 'kill "$PT_PID" "$BOUNCER_PID" 2>/dev/null; _bench_cleanup' EXIT

# count NAME PORT PID MODE: prints "NAME MODE syscalls/txn".
count() {
  local name=$1 port=$2 pid=$3 mode=$4 out
  out=$TMP/perf-$name-$mode.txt
  perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$out" &
  local perf_pid=$!
  sleep 0.5
  pgbench -n -S -M "$mode" -c "$CLIENTS" -j "$CLIENTS" -t "$TXNS" -h 127.0.0.1 -p "$port" "$DB" \
    >"$TMP/pgbench-$name-$mode.txt" 2>&1 || die "pgbench through $name failed"
  kill -INT "$perf_pid"
  wait "$perf_pid" 2>/dev/null || true
  local calls
  calls=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$out")
  awk -v n="$name" -v m="$mode" -v c="$calls" -v t="$((CLIENTS * TXNS))" \
    'BEGIN { printf "| %-12s | %-8s | %10d | %6.2f |\n", n, m, c, c / t }'
}

# breakdown NAME PORT PID: the calls under strace -c -f for one simple-protocol pass.
breakdown() {
  local name=$1 port=$2 pid=$3 out=$TMP/strace-$1.txt
  strace -c -f -p "$pid" -o "$out" &
  local st=$!
  sleep 1
  pgbench -n -S -M simple -c "$CLIENTS" -j "$CLIENTS" -t "$((TXNS / 5))" -h 127.0.0.1 \
    -p "$port" "$DB" >/dev/null 2>&1 || die "pgbench through $name failed"
  kill -INT "$st"
  wait "$st" 2>/dev/null || true
  echo
  echo "$name, strace -c -f, $((CLIENTS * TXNS / 5)) simple-protocol transactions:"
  awk 'NR > 2 && $NF != "total" && $1 !~ /^-/ { printf "  %-16s %8d calls\n", $NF, $4 }' "$out" |
    sort -k2 -n -r | head -8
}

echo
echo "Syscalls per select-only transaction, $CLIENTS clients x $TXNS transactions (perf stat)"
echo
echo "| proxy        | protocol | syscalls   | /txn   |"
echo "|--------------|----------|------------|--------|"
for mode in simple prepared; do
  count pgphase "$PT_PORT" "$PT_PID" "$mode"
  count pgphase+cp "$CP_PORT" "$CP_PID" "$mode"
  count pgbouncer "$BOUNCER_PORT" "$BOUNCER_PID" "$mode"
done
if [ "$BREAKDOWN" = 1 ]; then
  breakdown pgphase "$PT_PORT" "$PT_PID"
  breakdown pgbouncer "$BOUNCER_PORT" "$BOUNCER_PID"
fi
