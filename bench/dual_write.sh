#!/usr/bin/env bash
# Dual-write benchmark: pgbench tpcb-like, 8 clients, with pgbench_accounts migrating to a copy
# table (pgbench_accounts_copy) in dual_write, in one run on one machine:
#
#   direct             PostgreSQL, no dual write (the ceiling)
#   trigger            PostgreSQL with an AFTER row trigger doing the same upsert/delete by key
#   pgbouncer+trigger  the trigger, through PgBouncer (session pooling): the hand-rolled stack
#   pgphase            through pgphase with the migration in dual_write (SQL-aware dual write)
#
# Rounds alternate the four (the trigger exists only during its runs). Reports median TPS,
# average latency, the ratio pgphase / trigger (target >= 0.9) and checks that the copy equals
# the source after the pgphase runs of the last round. Also runs bench/router_bench (the
# per-statement microbenchmark). A measurement, not a test: it exits 0 whether targets are met.
#
#   bench/dual_write.sh            # 5 rounds x 10 s per configuration (~4 minutes)
#   bench/dual_write.sh --quick    # 1 round x 3 s (figures are not meaningful)
#
# Environment: BENCH_DURATION (s per run), BENCH_ROUNDS, BENCH_SCALE (pgbench -i -s, default 10),
# BENCH_MODE (pgbench -M, default prepared), BENCH_CLIENTS (default 8), PGPHASE_BIN.
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
  DURATION=${BENCH_DURATION:-10}
  ROUNDS=${BENCH_ROUNDS:-5}
fi
SCALE=${BENCH_SCALE:-10}
MODE=${BENCH_MODE:-prepared}
CLIENTS=${BENCH_CLIENTS:-8}
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

run_pgbench() { # PORT -> "tps latency_ms"
  local out
  out=$(pgbench -n -T "$DURATION" -c "$CLIENTS" -j 2 -M "$MODE" -h 127.0.0.1 -p "$1" "$DB" 2>&1) ||
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

declare -A TPS LAT
for ((r = 1; r <= ROUNDS; r++)); do
  for cfg in direct trigger pgbouncer+trigger pgphase; do
    case $cfg in
      direct) res=$(run_pgbench "$PG_PORT") ;;
      trigger)
        trigger_on
        res=$(run_pgbench "$PG_PORT")
        trigger_off
        ;;
      pgbouncer+trigger)
        trigger_on
        res=$(run_pgbench "$bport")
        trigger_off
        ;;
      pgphase) res=$(run_pgbench "$listen") ;;
    esac
    TPS[$cfg]+="${res%% *} "
    LAT[$cfg]+="${res##* } "
    log "round $r $cfg: tps ${res%% *}, latency ${res##* } ms"
  done
done

echo
echo "## Dual-write benchmark: tpcb-like, $CLIENTS clients, -M $MODE, scale $SCALE, ${DURATION}s x $ROUNDS rounds ($(nproc) CPUs)"
echo
printf '| %-18s | %10s | %12s | %14s |\n' configuration "median TPS" "latency ms" "vs direct"
printf '|%s|%s|%s|%s|\n' "--------------------" "------------" "--------------" "----------------"
d=$(median "${TPS[direct]}")
for cfg in direct trigger pgbouncer+trigger pgphase; do
  t=$(median "${TPS[$cfg]}")
  l=$(median "${LAT[$cfg]}")
  printf '| %-18s | %10.1f | %12.3f | %13.2fx |\n' "$cfg" "$t" "$l" "$(awk -v a="$t" -v b="$d" 'BEGIN { print a / b }')"
done
tp=$(median "${TPS[pgphase]}")
tt=$(median "${TPS[trigger]}")
ratio=$(awk -v a="$tp" -v b="$tt" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.9) ? "PASS" : "MISS" }')
echo
echo "pgphase dual write / trigger dual write: ${ratio}x (target >= 0.9x): $verdict"
echo "TPS per round: $(for c in direct trigger pgbouncer+trigger pgphase; do printf '%s [%s] ' "$c" "${TPS[$c]% }"; done)"

# The copy equals the source? (The direct runs write without dual write, so compare only after a
# pgphase-only resync: copy everything once more, then one more pgphase run.)
"${PSQL[@]}" -d "$DB" -c "TRUNCATE pgbench_accounts_copy; INSERT INTO pgbench_accounts_copy SELECT * FROM pgbench_accounts"
run_pgbench "$listen" >/dev/null
diff=$("${PSQL[@]}" -d "$DB" -c "SELECT (SELECT count(*) FROM (TABLE pgbench_accounts EXCEPT TABLE pgbench_accounts_copy) a) + (SELECT count(*) FROM (TABLE pgbench_accounts_copy EXCEPT TABLE pgbench_accounts) b)")
echo "rows differing between pgbench_accounts and its copy after a pgphase run: $diff"
if [ -x "$ROUTER_BENCH" ]; then
  echo
  echo "## Router microbenchmark (bench/router_bench)"
  "$ROUTER_BENCH"
fi
