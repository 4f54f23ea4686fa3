#!/usr/bin/env bash
# Validator benchmark: a 1,000,000-row pair (bigint key, text, int, numeric, timestamptz, jsonb,
# text), in one run: the naive `SELECT count(*) FROM src s FULL JOIN dst t USING (id) WHERE s IS
# DISTINCT FROM t` against `pgphase validate --level comprehensive`, on identical tables (target:
# at most 0.5x the naive time) and with 1,000 scattered differences (target: at most 0.7x), the
# median of BENCH_ROUNDS rounds each; the CLI's peak RSS, and pgphase serve's RSS around the same
# validation run through POST /api/v1/validations (no loading of whole tables). A measurement.
#
#   bench/validate.sh            # 1,000,000 rows, 3 rounds
#   BENCH_ROWS=200000 BENCH_ROUNDS=1 bench/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
bench_parse_args "$@"
ROWS=${BENCH_ROWS:-1000000}
ROUNDS=${BENCH_ROUNDS:-3}
[ "$QUICK" = 1 ] && { ROWS=100000; ROUNDS=1; }
DB=pgphase_valbench
bench_init valbench
port=$(free_port 26832)
reserve_port "$port"
pg_start_throwaway "$TMP" "$port" shared_buffers=512MB max_wal_size=8GB synchronous_commit=off
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -p "$PG_PORT")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
URL="host=127.0.0.1 port=$PG_PORT dbname=$DB user=postgres"
log "creating the $ROWS-row pair"
bench_create_pair "$DB" "$ROWS"
"${PSQL[@]}" -d "$DB" -c "INSERT INTO dst SELECT * FROM src" -c "VACUUM ANALYZE dst"

seconds_of() {  # seconds_of CMD...: wall time of CMD (its output discarded)
  local start
  start=$(date +%s.%N)
  "$@" >/dev/null || [ $? -eq 1 ]  # validate exits 1 when it finds differences
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'
}
naive() {
  "${PSQL[@]}" -d "$DB" -c \
    "SELECT count(*) FROM src s FULL JOIN dst t USING (id) WHERE s IS DISTINCT FROM t"
}
validate() {
  "$PGPHASE_BIN" validate --db-url "$URL" --source-table src --target-table dst \
    --level comprehensive --no-store "$@"
}
# peak_rss CMD...: the peak RSS (KiB) of CMD.
peak_rss() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}

measure() {  # measure LABEL: rounds of naive and validate; sets NAIVE, VALIDATE, RSS_CLI
  local n="" v="" i
  for ((i = 1; i <= ROUNDS; i++)); do
    n+=" $(seconds_of naive)"
    v+=" $(seconds_of validate)"
    log "$1 round $i: naive ${n##* } s, validate ${v##* } s"
  done
  NAIVE=$(median "$n")
  VALIDATE=$(median "$v")
  RSS_CLI=$(peak_rss "$PGPHASE_BIN" validate --db-url "$URL" --source-table src --target-table dst \
    --level comprehensive --no-store)
}

naive >/dev/null  # warm the cache
validate >/dev/null
measure identical
ID_NAIVE=$NAIVE ID_VALIDATE=$VALIDATE ID_RSS=$RSS_CLI
found_identical=$(validate --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["differences_count"])' || true)

log "injecting 1000 scattered differences"
step=$((ROWS / 1000))
"${PSQL[@]}" -d "$DB" <<SQL
UPDATE dst SET name = name || '!' WHERE id % $step = 1 AND id <= $((step * 334));
DELETE FROM dst WHERE id % $step = 2 AND id <= $((step * 333));
UPDATE dst SET doc = doc || '{"x": 1}' WHERE id % $step = 3 AND id <= $((step * 333));
VACUUM ANALYZE dst;
SQL
measure "1000 differences"
found=$(validate --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["differences_count"])' || true)

log "the same validation inside pgphase serve (POST /api/v1/validations)"
bench_start_pgphase "$URL"
rss() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }
rss_before=$(rss)
vid=$(curl -sS -f -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data '{"source_table":"src","target_table":"dst","level":"comprehensive"}' \
  "http://127.0.0.1:$admin/api/v1/validations" | python3 -c 'import json,sys; print(json.load(sys.stdin)["validation_id"])')
rss_max=$rss_before
while :; do
  st=$(curl -sS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$admin/api/v1/validations/$vid" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  r=$(rss); [ "$r" -gt "$rss_max" ] && rss_max=$r
  [ "$st" = running ] || break
  sleep 0.05
done

echo
echo "## Validator benchmark: $ROWS rows, $(nproc) CPUs, median of $ROUNDS rounds"
echo
printf '| %-18s | %-12s | %-14s | %-7s | %-7s | %-12s |\n' tables "naive s" "validate s" ratio target "CLI peak RSS"
printf '|%s|%s|%s|%s|%s|%s|\n' "--------------------" "--------------" "----------------" "---------" "---------" "--------------"
printf '| %-18s | %-12s | %-14s | %-7s | %-7s | %-12s |\n' "identical" "$ID_NAIVE" "$ID_VALIDATE" \
  "$(awk -v a="$ID_VALIDATE" -v b="$ID_NAIVE" 'BEGIN { printf "%.2f", a / b }')" "<= 0.5" "${ID_RSS} KiB"
printf '| %-18s | %-12s | %-14s | %-7s | %-7s | %-12s |\n' "1000 differences" "$NAIVE" "$VALIDATE" \
  "$(awk -v a="$VALIDATE" -v b="$NAIVE" 'BEGIN { printf "%.2f", a / b }')" "<= 0.7" "${RSS_CLI} KiB"
echo
echo "differences found: $found_identical on identical tables, $found after injecting 1000"
echo "pgphase serve RSS: ${rss_before} KiB before, at most ${rss_max} KiB during the API validation ($st)"
