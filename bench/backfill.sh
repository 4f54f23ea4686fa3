#!/usr/bin/env bash
# Backfill benchmark: a 1,000,000-row pair (bigint key, text, int, numeric, timestamptz, jsonb),
# in one run: the naive `INSERT INTO target SELECT * FROM source` against pgphase's backfill
# (unthrottled, batch size BENCH_BATCH), rows per second of each and their ratio (target: at
# least 0.7), and pgphase's RSS before and after (no loading of whole tables). A measurement.
#
#   bench/backfill.sh            # 1,000,000 rows
#   BENCH_ROWS=200000 bench/backfill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
ROWS=${BENCH_ROWS:-1000000}
BATCH=${BENCH_BATCH:-10000}
DB=pgphase_bfbench
bench_init bfbench
port=$(free_port 25832)
reserve_port "$port"
pg_start_throwaway "$TMP" "$port" shared_buffers=512MB max_wal_size=8GB synchronous_commit=off
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -p "$PG_PORT")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
log "creating $ROWS source rows"
bench_create_pair "$DB" "$ROWS"
log "naive INSERT INTO dst SELECT * FROM src"
start=$(date +%s.%N)
"${PSQL[@]}" -d "$DB" -c "INSERT INTO dst SELECT * FROM src"
naive=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
"${PSQL[@]}" -d "$DB" -c "TRUNCATE dst" -c "CHECKPOINT"

bench_start_pgphase "host=127.0.0.1 port=$PG_PORT dbname=$DB user=postgres"
api() { curl -sS -f -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data "$3" "http://127.0.0.1:$admin$2"; }
api POST /api/v1/migrations '{"migration_id":"bf","source_table":"src","target_table":"dst"}' >/dev/null
api POST /api/v1/migrations/bf/phase '{"phase":"dual_write"}' >/dev/null
rss() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }
rss_before=$(rss)
log "pgphase backfill (batch $BATCH, unthrottled)"
start=$(date +%s.%N)
api POST /api/v1/migrations/bf/backfill "{\"batch_size\": $BATCH}" >/dev/null
rss_max=$rss_before
while :; do
  st=$(curl -sS "http://127.0.0.1:$admin/api/v1/migrations/bf/backfill" -H "Authorization: Bearer $TOKEN" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  r=$(rss); [ "$r" -gt "$rss_max" ] && rss_max=$r
  [ "$st" = running ] || break
  sleep 0.2
done
backfill=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
diff=$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM (TABLE src EXCEPT TABLE dst) x")
echo
echo "## Backfill benchmark: $ROWS rows, $(nproc) CPUs"
echo
printf '| %-36s | %9s | %12s |\n' method seconds "rows/s"
printf '|%s|%s|%s|\n' "--------------------------------------" "-----------" "--------------"
printf '| %-36s | %9.2f | %12.0f |\n' "INSERT INTO dst SELECT * FROM src" "$naive" "$(awk -v n="$ROWS" -v t="$naive" 'BEGIN { print n / t }')"
printf '| %-36s | %9.2f | %12.0f |\n' "pgphase backfill (batch $BATCH)" "$backfill" "$(awk -v n="$ROWS" -v t="$backfill" 'BEGIN { print n / t }')"
echo
echo "backfill rate / naive rate: $(awk -v a="$naive" -v b="$backfill" 'BEGIN { printf "%.2f", a / b }')x (target >= 0.7x); status $st; rows missing from dst: $diff"
echo "pgphase RSS: ${rss_before} KiB before, at most ${rss_max} KiB during the backfill"
