#!/usr/bin/env bash
# Dual-write benchmark: pgbench tpcb-like, 8 clients, with pgbench_accounts migrating to a copy
# table (pgbench_accounts_copy) in dual_write, in one run on one machine:
#
#   direct             PostgreSQL, no dual write (the ceiling)
#   trigger            PostgreSQL with an AFTER row trigger doing the same upsert/delete by key
#   pgbouncer+trigger  the trigger, through PgBouncer (session pooling): the hand-rolled stack
#   pgphase            through pgphase with the migration in dual_write (SQL-aware dual write)
#
# each with pgbench -M prepared and -M simple (literals inlined: every write a new text, the
# case of psycopg2, Django and Rails), in shared mode (no CPU affinity) and in pinned mode
# (PostgreSQL on CPU BENCH_PIN_PG_CPU, pgbench and the proxies on CPU BENCH_PIN_CLIENT_CPU, as
# bench/run.sh pins them: a database on its own host). Rounds alternate the configurations (the
# trigger exists only during its runs). Reports median TPS and average latency per mode, the
# ratios pgphase / trigger (target >= 0.9 pinned) and pgphase -M simple / -M prepared (target
# >= 0.9), and checks that the copy equals the source after a pgphase run. Also runs
# bench/router_bench (the per-statement microbenchmark). A measurement, not a test: it exits 0
# whether targets are met.
#
#   bench/dual_write.sh            # 3 rounds x 8 s per configuration and mode (~7 minutes)
#   bench/dual_write.sh --quick    # 1 round x 3 s (figures are not meaningful)
#
# Environment: BENCH_DURATION (s per run), BENCH_ROUNDS, BENCH_SCALE (pgbench -i -s, default 10),
# BENCH_MODES (pgbench -M values, default "prepared simple"), BENCH_CLIENTS (default 8),
# BENCH_PINNED (1: also the pinned mode, default; needs 2 CPUs and taskset), BENCH_PIN_PG_CPU
# (default 0), BENCH_PIN_CLIENT_CPU (default 1), PGPHASE_BIN.
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
else
  DURATION=${BENCH_DURATION:-8}
  ROUNDS=${BENCH_ROUNDS:-3}
fi
SCALE=${BENCH_SCALE:-10}
read -r -a MODES <<<"${BENCH_MODES:-${BENCH_MODE:-prepared simple}}"
CLIENTS=${BENCH_CLIENTS:-8}
PINNED=${BENCH_PINNED:-1}
PIN_PG_CPU=${BENCH_PIN_PG_CPU:-0}
PIN_CLIENT_CPU=${BENCH_PIN_CLIENT_CPU:-1}
PGPHASE_BIN=${PGPHASE_BIN:-$ROOT/${BUILD_DIR:-build}/pgphase}
ROUTER_BENCH=$(dirname "$PGPHASE_BIN")/bench/router_bench
[ -x "$PGPHASE_BIN" ] || die "pgphase binary not found at $PGPHASE_BIN; run: bash scripts/build.sh"
for cmd in pgbench psql pgbouncer curl awk; do
  command -v "$cmd" >/dev/null || die "'$cmd' not found; run: bash scripts/deps.sh"
done

DB=pgphase_dwbench
export PGUSER=postgres PGHOST=127.0.0.1 PGAPPNAME=pgphase-dwbench
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS PGSSLMODE
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgphase-dwbench.XXXXXX")
PGPHASE_PID=""
BOUNCER_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  for pid in $PGPHASE_PID $BOUNCER_PID; do
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  pg_stop
  if [ "$rc" -ne 0 ]; then
    for f in "$TMP"/pgphase.log "$TMP"/pgbouncer.log "$TMP"/postgresql.log; do
      [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

port=$(free_port 25532)
reserve_port "$port"
log "starting PostgreSQL 15 on 127.0.0.1:$port"
pg_start_throwaway "$TMP" "$port" shared_buffers=256MB max_connections=200 synchronous_commit=off \
  max_wal_size=4GB
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -p "$PG_PORT")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
log "pgbench -i -s $SCALE, copy table"
pgbench -i -s "$SCALE" -q -p "$PG_PORT" "$DB" >"$TMP/init.log" 2>&1 || {
  cat "$TMP/init.log" >&2
  die "pgbench -i failed"
}
"${PSQL[@]}" -d "$DB" <<'SQL'
CREATE TABLE pgbench_accounts_copy (LIKE pgbench_accounts INCLUDING ALL);
INSERT INTO pgbench_accounts_copy SELECT * FROM pgbench_accounts;
VACUUM ANALYZE pgbench_accounts_copy;
CREATE FUNCTION accounts_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM pgbench_accounts_copy WHERE aid = OLD.aid;
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.aid <> OLD.aid THEN
    DELETE FROM pgbench_accounts_copy WHERE aid = OLD.aid;
  END IF;
  INSERT INTO pgbench_accounts_copy VALUES (NEW.*)
    ON CONFLICT (aid) DO UPDATE SET bid = EXCLUDED.bid, abalance = EXCLUDED.abalance,
                                    filler = EXCLUDED.filler;
  RETURN NEW;
END $$;
SQL

# pgphase with its control plane in the same database; the migration goes to dual_write.
TOKEN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
listen=$(free_port 6532)
reserve_port "$listen"
admin=$(free_port 8532)
reserve_port "$admin"
PGPHASE_ADMIN_TOKEN=$TOKEN "$PGPHASE_BIN" serve --listen "127.0.0.1:$listen" \
  --backend "127.0.0.1:$PG_PORT" --admin "127.0.0.1:$admin" --log-level warn \
  --control-dsn "host=127.0.0.1 port=$PG_PORT dbname=$DB user=postgres" >"$TMP/pgphase.log" 2>&1 &
PGPHASE_PID=$!
wait_for_listen "$listen" 30 "$PGPHASE_PID" || die "pgphase did not start"
api() { # METHOD PATH BODY
  curl -sS -f -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "$3" "http://127.0.0.1:$admin$2" >/dev/null
}
api POST /api/v1/migrations \
  '{"migration_id":"accounts","source_table":"pgbench_accounts","target_table":"pgbench_accounts_copy"}'
api POST /api/v1/migrations/accounts/phase '{"phase":"dual_write"}'

# PgBouncer, session pooling.
bport=$(free_port 6632)
reserve_port "$bport"
cat >"$TMP/pgbouncer.ini" <<INI
[databases]
$DB = host=127.0.0.1 port=$PG_PORT dbname=$DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
auth_type = trust
auth_file = $TMP/users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 100
logfile = $TMP/pgbouncer.log
unix_socket_dir =
INI
echo '"postgres" ""' >"$TMP/users.txt"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres: "$TMP/pgbouncer.ini" "$TMP/users.txt"
  runuser -u postgres -- pgbouncer "$TMP/pgbouncer.ini" >/dev/null 2>&1 &
else
  pgbouncer "$TMP/pgbouncer.ini" >/dev/null 2>&1 &
fi
BOUNCER_PID=$!
wait_for_listen "$bport" 30 "$BOUNCER_PID" || die "pgbouncer did not start"

# CPU modes: shared (no affinity) and pinned (see the header).
ALL_CPUS=$(taskset -pc $$ 2>/dev/null | awk -F': ' '{ print $2 }' || true)
CPU_MODES=(shared)
if [ "$PINNED" = 1 ]; then
  if [ -n "$ALL_CPUS" ] && [ "$(nproc)" -ge 2 ] && taskset -c "$PIN_PG_CPU" true 2>/dev/null &&
    taskset -c "$PIN_CLIENT_CPU" true 2>/dev/null; then
    CPU_MODES+=(pinned)
  else
    log "warning: pinned mode skipped (needs taskset and CPUs $PIN_PG_CPU and $PIN_CLIENT_CPU)"
  fi
fi
PG_POSTMASTER_PID=$(head -n1 "$PG_DATA/postmaster.pid")
set_cpu_mode() { bench_set_cpu_mode "$1" "$PG_POSTMASTER_PID" "$PGPHASE_PID" "$BOUNCER_PID"; }
CPU_MODE=shared

run_pgbench() { # PORT MODE -> "tps latency_ms"
  local out pin=()
  [ "$CPU_MODE" = pinned ] && pin=(taskset -c "$PIN_CLIENT_CPU")
  out=$("${pin[@]}" pgbench -n -T "$DURATION" -c "$CLIENTS" -j 2 -M "$2" -h 127.0.0.1 -p "$1" "$DB" 2>&1) ||
    {
      echo "$out" >&2
      die "pgbench against port $1 failed"
    }
  local tps lat
  tps=$(awk '/^tps = / { print $3; exit }' <<<"$out")
  lat=$(awk '/^latency average = / { print $4; exit }' <<<"$out")
  echo "$tps $lat"
}
trigger_on() { "${PSQL[@]}" -d "$DB" -c "CREATE TRIGGER accounts_mirror AFTER INSERT OR UPDATE OR DELETE ON pgbench_accounts FOR EACH ROW EXECUTE FUNCTION accounts_mirror()"; }
trigger_off() { "${PSQL[@]}" -d "$DB" -c "DROP TRIGGER IF EXISTS accounts_mirror ON pgbench_accounts"; }

CONFIGS=(direct trigger pgbouncer+trigger pgphase)
declare -A TPS LAT
for ((r = 1; r <= ROUNDS; r++)); do
  for cpu in "${CPU_MODES[@]}"; do
    set_cpu_mode "$cpu"
    for mode in "${MODES[@]}"; do
      for cfg in "${CONFIGS[@]}"; do
        case $cfg in
          direct) res=$(run_pgbench "$PG_PORT" "$mode") ;;
          trigger)
            trigger_on
            res=$(run_pgbench "$PG_PORT" "$mode")
            trigger_off
            ;;
          pgbouncer+trigger)
            trigger_on
            res=$(run_pgbench "$bport" "$mode")
            trigger_off
            ;;
          pgphase) res=$(run_pgbench "$listen" "$mode") ;;
        esac
        k="$cpu/$mode/$cfg"
        TPS[$k]+="${res%% *} "
        LAT[$k]+="${res##* } "
        log "round $r $cpu -M $mode $cfg: tps ${res%% *}, latency ${res##* } ms"
      done
    done
  done
done
set_cpu_mode shared

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" 'BEGIN { print (r >= 0.9) ? "PASS" : "MISS" }'; }
for cpu in "${CPU_MODES[@]}"; do
  for mode in "${MODES[@]}"; do
    echo
    echo "## Dual write, $cpu CPUs: tpcb-like, $CLIENTS clients, -M $mode, scale $SCALE, ${DURATION}s x $ROUNDS rounds ($(nproc) CPUs)"
    echo
    printf '| %-18s | %10s | %12s | %14s |\n' configuration "median TPS" "latency ms" "vs direct"
    printf '|%s|%s|%s|%s|\n' "--------------------" "------------" "--------------" "----------------"
    d=$(median "${TPS[$cpu/$mode/direct]}")
    for cfg in "${CONFIGS[@]}"; do
      t=$(median "${TPS[$cpu/$mode/$cfg]}")
      l=$(median "${LAT[$cpu/$mode/$cfg]}")
      printf '| %-18s | %10.1f | %12.3f | %13.2fx |\n' "$cfg" "$t" "$l" "$(ratio "$t" "$d")"
    done
    echo "TPS per round: $(for c in "${CONFIGS[@]}"; do printf '%s [%s] ' "$c" "${TPS[$cpu/$mode/$c]% }"; done)"
  done
done
echo
echo "## Ratios (medians of the same run)"
echo
for cpu in "${CPU_MODES[@]}"; do
  for mode in "${MODES[@]}"; do
    r=$(ratio "$(median "${TPS[$cpu/$mode/pgphase]}")" "$(median "${TPS[$cpu/$mode/trigger]}")")
    target=""
    [ "$cpu" = pinned ] && target=" (target >= 0.9x pinned): $(verdict "$r")"
    echo "$cpu -M $mode: pgphase dual write / trigger dual write: ${r}x$target"
  done
  if [[ " ${MODES[*]} " == *" simple "* && " ${MODES[*]} " == *" prepared "* ]]; then
    r=$(ratio "$(median "${TPS[$cpu/simple/pgphase]}")" "$(median "${TPS[$cpu/prepared/pgphase]}")")
    echo "$cpu: pgphase -M simple / -M prepared: ${r}x (target >= 0.9x): $(verdict "$r")"
  fi
done

# The copy equals the source? (The direct runs write without dual write, so compare only after a
# pgphase-only resync: copy everything once more, then one more pgphase run.)
"${PSQL[@]}" -d "$DB" -c "TRUNCATE pgbench_accounts_copy; INSERT INTO pgbench_accounts_copy SELECT * FROM pgbench_accounts"
run_pgbench "$listen" "${MODES[0]}" >/dev/null
diff=$("${PSQL[@]}" -d "$DB" -c "SELECT (SELECT count(*) FROM (TABLE pgbench_accounts EXCEPT TABLE pgbench_accounts_copy) a) + (SELECT count(*) FROM (TABLE pgbench_accounts_copy EXCEPT TABLE pgbench_accounts) b)")
echo "rows differing between pgbench_accounts and its copy after a pgphase run: $diff"
# How pgphase found its plans over the whole run (a hit: by text or rendered from the shape).
curl -sS "http://127.0.0.1:$admin/metrics" |
  awk '/^pgphase_statement_analysis_total/ { if ($0 ~ /"hit"/) h = $2; else m = $2 }
       END { printf "statements analysed by pgphase: %d from the cache (text or shape), %d planned\n", h, m }'
if [ -x "$ROUTER_BENCH" ]; then
  echo
  echo "## Router microbenchmark (bench/router_bench)"
  "$ROUTER_BENCH"
fi
