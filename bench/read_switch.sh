#!/usr/bin/env bash
# Read-switch benchmark: pgbench select-only (-S, -M prepared or BENCH_MODE, 8 clients) on pgbench_accounts,
# which migrates to a copy table, in one run on one machine:
#
#   plain            pgphase without a control plane (byte relay, nothing parsed)
#   no-migration     pgphase with a control plane whose database holds no migration
#   switch 0%        pgphase with pgbench_accounts in read_switch, gradual at 0%
#   switch 50%       ... at 50% (half of the reads rewritten to the copy)
#   switch 100%      ... at 100%
#   shadow 10%       a shadow switch at 10%: clients read the source, 10% of reads are compared
#                    on both tables off the client's path (what cannot be compared in time is
#                    dropped and counted)
#
# Rounds alternate the configurations; the report gives median TPS and the cost of routing and
# rewriting relative to no-migration (target: at most 3%) and to plain (with -M simple, where
# every read is a new text of one shape: switch 50% at most 3% below plain). A measurement, not
# a test.
#
#   bench/read_switch.sh            # 5 rounds x 10 s (~5 minutes)
#   bench/read_switch.sh --quick    # 1 round x 3 s
#
# Environment: BENCH_DURATION, BENCH_ROUNDS, BENCH_SCALE (default 10), BENCH_CLIENTS (8),
# BENCH_MODE (pgbench -M, default prepared), PGPHASE_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
bench_parse_args "$@"
if [ "$QUICK" = 1 ]; then DURATION=${BENCH_DURATION:-3}; ROUNDS=${BENCH_ROUNDS:-1}; else
  DURATION=${BENCH_DURATION:-10}; ROUNDS=${BENCH_ROUNDS:-5}; fi
SCALE=${BENCH_SCALE:-10}
CLIENTS=${BENCH_CLIENTS:-8}
MODE=${BENCH_MODE:-prepared}
PGPHASE_BIN=${PGPHASE_BIN:-$ROOT/${BUILD_DIR:-build}/pgphase}
[ -x "$PGPHASE_BIN" ] || die "pgphase binary not found at $PGPHASE_BIN; run: bash scripts/build.sh"
for cmd in pgbench psql curl awk; do
  command -v "$cmd" >/dev/null || die "'$cmd' not found; run: bash scripts/deps.sh"
done
DB=pgphase_rsbench
export PGUSER=postgres PGHOST=127.0.0.1 PGAPPNAME=pgphase-rsbench
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS PGSSLMODE
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgphase-rsbench.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  pg_stop
  [ "$rc" -ne 0 ] && for f in "$TMP"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

port=$(free_port 25632)
reserve_port "$port"
log "starting PostgreSQL 15 on 127.0.0.1:$port"
pg_start_throwaway "$TMP" "$port" shared_buffers=256MB max_connections=200 synchronous_commit=off
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -p "$PG_PORT")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" -c "CREATE DATABASE pgphase_empty_control"
log "pgbench -i -s $SCALE, copy table"
pgbench -i -s "$SCALE" -q -p "$PG_PORT" "$DB" >"$TMP/init.log" 2>&1 || die "pgbench -i failed"
"${PSQL[@]}" -d "$DB" -c "CREATE TABLE pgbench_accounts_copy (LIKE pgbench_accounts INCLUDING ALL)" \
  -c "INSERT INTO pgbench_accounts_copy SELECT * FROM pgbench_accounts" -c "VACUUM ANALYZE"

TOKEN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
start_pgphase() { # NAME [serve args...] -> PORT_<NAME>, ADMIN_<NAME>
  local name=$1 listen admin
  shift
  listen=$(free_port 6732)
  reserve_port "$listen"
  admin=$(free_port 8732)
  reserve_port "$admin"
  PGPHASE_ADMIN_TOKEN=$TOKEN "$PGPHASE_BIN" serve --listen "127.0.0.1:$listen" \
    --backend "127.0.0.1:$PG_PORT" --admin "127.0.0.1:$admin" --log-level warn "$@" \
    >"$TMP/pgphase-$name.log" 2>&1 &
  PIDS+=($!)
  wait_for_listen "$listen" 30 "$!" || die "pgphase ($name) did not start"
  printf -v "PID_$name" '%s' "$!"
  printf -v "PORT_$name" '%s' "$listen"
  printf -v "ADMIN_$name" '%s' "$admin"
}
start_pgphase plain
start_pgphase empty --control-dsn "host=127.0.0.1 port=$PG_PORT dbname=pgphase_empty_control user=postgres"
start_pgphase switch --control-dsn "host=127.0.0.1 port=$PG_PORT dbname=$DB user=postgres"
api() { # METHOD PATH BODY
  curl -sS -f -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "$3" "http://127.0.0.1:$ADMIN_switch$2" >/dev/null
}
api POST /api/v1/migrations \
  '{"migration_id":"accounts","source_table":"pgbench_accounts","target_table":"pgbench_accounts_copy"}'
for phase in dual_write validation read_switch; do
  api POST /api/v1/migrations/accounts/phase "{\"phase\":\"$phase\",\"force\":true}"
done
api POST /api/v1/switches \
  '{"config_id":"accounts_sw","table_name":"pgbench_accounts","migration_id":"accounts","strategy":"gradual","switch_percentage":0,"status":"inactive"}'
api POST /api/v1/switches/accounts_sw/activate '{}'
api POST /api/v1/switches \
  '{"config_id":"accounts_shadow","table_name":"pgbench_accounts","migration_id":"accounts","strategy":"shadow","switch_percentage":0,"status":"inactive"}'
ACTIVE=accounts_sw
use_switch() { # CONFIG_ID: make it the active switch config of the migration
  [ "$ACTIVE" = "$1" ] && return 0
  api POST "/api/v1/switches/$ACTIVE/rollback" '{"reason":"bench"}'
  api POST "/api/v1/switches/$1/activate" '{}'
  ACTIVE=$1
}

CLK_TCK=$(getconf CLK_TCK)
run_pgbench() { # PORT PID -> "tps cpu_us_per_txn" (the proxy's CPU: utime + stime, all threads)
  local out t0 t1
  t0=$(bench_proc_ticks "$2")
  out=$(pgbench -n -S -T "$DURATION" -c "$CLIENTS" -j 2 -M "$MODE" -h 127.0.0.1 -p "$1" "$DB" 2>&1) ||
    { echo "$out" >&2; die "pgbench against port $1 failed"; }
  t1=$(bench_proc_ticks "$2")
  awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" '/^tps = / { tps = $3 }
    /^number of transactions actually processed/ { n = $6 }
    END { printf "%s %.1f\n", tps, (n > 0 ? d * 1e6 / hz / n : 0) }' <<<"$out"
}
declare -A TPS CPU
CONFIGS=(plain no-migration "switch 0%" "switch 50%" "switch 100%" "shadow 10%")
for ((r = 1; r <= ROUNDS; r++)); do
  for cfg in "${CONFIGS[@]}"; do
    case $cfg in
      plain) tps=$(run_pgbench "$PORT_plain" "$PID_plain") ;;
      no-migration) tps=$(run_pgbench "$PORT_empty" "$PID_empty") ;;
      "switch "*)
        pct=${cfg#switch }
        pct=${pct%\%}
        use_switch accounts_sw
        api POST /api/v1/switches/accounts_sw/percentage "{\"percentage\":$pct,\"reason\":\"bench\"}" || true
        tps=$(run_pgbench "$PORT_switch" "$PID_switch")
        ;;
      "shadow 10%")
        use_switch accounts_shadow
        api POST /api/v1/switches/accounts_shadow/percentage '{"percentage":10,"reason":"bench"}' || true
        tps=$(run_pgbench "$PORT_switch" "$PID_switch")
        ;;
    esac
    cpu=${tps##* }
    tps=${tps%% *}
    CPU[$cfg]+="$cpu "
    TPS[$cfg]+="$tps "
    log "round $r $cfg: tps $tps, proxy CPU $cpu µs/txn"
  done
done
target_share=$(curl -sS "http://127.0.0.1:$ADMIN_switch/metrics" |
  awk '/^pgphase_read_switch_statements_total/ && /side="target"/ { t += $2 } /^pgphase_read_switch_statements_total/ { a += $2 } END { if (a > 0) printf "%.1f", 100 * t / a; else print "n/a" }')
echo
echo "## Read-switch benchmark: select-only, $CLIENTS clients, -M $MODE, scale $SCALE, ${DURATION}s x $ROUNDS rounds ($(nproc) CPUs)"
echo
printf '| %-14s | %10s | %16s | %10s | %16s |\n' configuration "median TPS" "vs no-migration" "vs plain" "proxy µs/txn"
printf '|%s|%s|%s|%s|%s|\n' "----------------" "------------" "------------------" "------------" "------------------"
base=$(median "${TPS[no-migration]}")
plain=$(median "${TPS[plain]}")
for cfg in "${CONFIGS[@]}"; do
  t=$(median "${TPS[$cfg]}")
  printf '| %-14s | %10.1f | %15.3fx | %9.3fx | %16.1f |\n' "$cfg" "$t" "$(awk -v a="$t" -v b="$base" 'BEGIN { print a / b }')" \
    "$(awk -v a="$t" -v b="$plain" 'BEGIN { print a / b }')" "$(median "${CPU[$cfg]}")"
done
r=$(awk -v a="$(median "${TPS[switch 50%]}")" -v b="$plain" 'BEGIN { printf "%.3f", a / b }')
echo
echo "switch 50% / plain pgphase: ${r}x (target >= 0.97x): $(awk -v r="$r" 'BEGIN { print (r >= 0.97) ? "PASS" : "MISS" }')"
echo
echo "share of routed reads answered by the copy over all switch runs: ${target_share}%"
curl -sS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_switch/api/v1/switches/accounts_shadow/analytics" |
  python3 -c 'import json,sys; s=json.load(sys.stdin)["live"]["since_activation"]["shadow"]; print("shadow (last activation): %d compared, %d mismatches, %d dropped (queue full)" % (s["comparisons"], s["mismatches"], s["dropped"]))' || true
echo "TPS per round: $(for c in "${CONFIGS[@]}"; do printf '%s [%s] ' "$c" "${TPS[$c]% }"; done)"
