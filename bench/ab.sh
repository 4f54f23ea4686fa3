#!/usr/bin/env bash
# A/B of two pgphase binaries on one throwaway PostgreSQL 15, in one run: select-only pgbench
# through A, then through B, alternating for AB_ROUNDS rounds per protocol, so that both see the
# same machine. Reports the medians of TPS and of proxy CPU per transaction (utime + stime of the
# proxy process over the round, divided by its transactions: steadier than TPS on a shared box).
#
#   bench/ab.sh OLD_BINARY [NEW_BINARY]      # NEW defaults to build/pgphase
#
# Environment: AB_ROUNDS (4), AB_SECONDS per round (10), AB_CLIENTS (8), AB_PROTOCOLS
# ("simple prepared"), AB_CONTROL=1 gives both binaries a control plane (no migration).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
. "$ROOT/scripts/lib/pg.sh"
# shellcheck source=scripts/lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"

[ "$#" -ge 1 ] || die "usage: bench/ab.sh OLD_BINARY [NEW_BINARY]"
BIN_A=$(realpath "$1")
BIN_B=$(realpath "${2:-$ROOT/${BUILD_DIR:-build}/pgphase}")
[ -x "$BIN_A" ] && [ -x "$BIN_B" ] || die "both binaries must be executable"
ROUNDS=${AB_ROUNDS:-4}
SECONDS_PER=${AB_SECONDS:-10}
CLIENTS=${AB_CLIENTS:-8}
PROTOCOLS=${AB_PROTOCOLS:-simple prepared}
TICK=$(getconf CLK_TCK)

PGPHASE_BIN=$BIN_B bench_init ab
PG_PORT=$(free_port 26432)
pg_start_throwaway "$TMP" "$PG_PORT" max_connections=200 shared_buffers=128MB fsync=off \
  synchronous_commit=off || die "PostgreSQL did not start"
psql -X -q -p "$PG_PORT" -d postgres -c "CREATE DATABASE bench" -c "CREATE DATABASE bench_cp"
pgbench -q -i -s 10 -p "$PG_PORT" bench >/dev/null 2>&1 || die "pgbench -i failed"

PIDS=()
start() {  # start NAME BINARY: pgphase on a free port; sets port_NAME and pid_NAME
  local name=$1 bin=$2 port admin
  port=$(free_port 6990)
  reserve_port "$port"
  admin=$(free_port 8990)
  reserve_port "$admin"
  local -a cp=()
  [ "${AB_CONTROL:-0}" = 1 ] &&
    cp=(--control-dsn "host=127.0.0.1 port=$PG_PORT dbname=bench_cp user=postgres")
  PGPHASE_ADMIN_TOKEN=ab-token "$bin" serve --listen "127.0.0.1:$port" \
    --backend "127.0.0.1:$PG_PORT" --admin "127.0.0.1:$admin" --log-level warn "${cp[@]}" \
    >"$TMP/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_for_listen "$port" 30 "$pid" || die "pgphase $name did not start ($TMP/$name.log)"
  printf -v "port_$name" '%s' "$port"
  printf -v "pid_$name" '%s' "$pid"
}
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; _bench_cleanup' EXIT
start A "$BIN_A"
start B "$BIN_B"

run() {  # run PORT PID MODE -> "TPS CPU_US_PER_TXN"
  local t0 t1 out txns tps
  t0=$(bench_proc_ticks "$2")
  out=$(pgbench -n -S -M "$3" -c "$CLIENTS" -j 2 -T "$SECONDS_PER" -p "$1" bench 2>&1) ||
    die "pgbench failed: $out"
  t1=$(bench_proc_ticks "$2")
  txns=$(awk '/number of transactions actually processed/ { split($0, a, ": "); print a[2] + 0 }' <<<"$out")
  tps=$(awk '/^tps/ { print $3; exit }' <<<"$out")
  awk -v a="$t0" -v b="$t1" -v n="$txns" -v k="$TICK" -v t="$tps" \
    'BEGIN { printf "%.0f %.2f\n", t, (b - a) / k * 1e6 / n }'
}

echo "A: $BIN_A"
echo "B: $BIN_B"
echo "$CLIENTS clients, $SECONDS_PER s x $ROUNDS rounds per binary and protocol, control plane: ${AB_CONTROL:-0}"
echo
printf '| protocol | A TPS | B TPS | B/A | A CPU µs/txn | B CPU µs/txn | B/A |\n'
printf '|---|---|---|---|---|---|---|\n'
for mode in $PROTOCOLS; do
  ta="" tb="" ca="" cb=""
  for ((r = 0; r < ROUNDS; r++)); do
    # Alternate which goes first, so neither always runs on a warmer machine.
    if ((r % 2 == 0)); then order="A B"; else order="B A"; fi
    for w in $order; do
      port_var=port_$w pid_var=pid_$w
      read -r tps cpu < <(run "${!port_var}" "${!pid_var}" "$mode")
      if [ "$w" = A ]; then ta+=" $tps" ca+=" $cpu"; else tb+=" $tps" cb+=" $cpu"; fi
    done
  done
  mta=$(median "$ta") mtb=$(median "$tb") mca=$(median "$ca") mcb=$(median "$cb")
  awk -v m="$mode" -v ta="$mta" -v tb="$mtb" -v ca="$mca" -v cb="$mcb" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.3f | %.2f | %.2f | %.3f |\n", m, ta, tb, tb / ta, ca, cb, cb / ca }'
  echo "  rounds: A TPS$ta | B TPS$tb | A µs$ca | B µs$cb" >&2
done
