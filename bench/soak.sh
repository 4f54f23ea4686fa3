#!/usr/bin/env bash
# Soak: SOAK_MINUTES (default 30) of mixed pgbench through pgphase while a migration goes
# dual_write -> backfill -> validation -> read_switch and a driver ramps the read switch
# (10 -> 50 -> 100%), rolls it back, ramps it again and runs validations. Not in CI; the
# 3-minute version is (ctest soak_short: SOAK_MINUTES=3).
#
#   bench/soak.sh                  # 30 minutes, p99 per 5-minute window, samples every minute
#   SOAK_MINUTES=3 bench/soak.sh   # 3 minutes, p99 per 30 s window, samples every 15 s
#
# Traffic (rate-limited, so that the figures describe pgphase and not a saturated machine):
# writes (-M prepared: updates, inserts, deletes), reads (-M simple: point and range reads) and
# transactions mixing both (-M extended), each with a 10% sample of per-transaction latencies
# (pgbench --log). Every sample interval: pgphase's RSS, open file descriptors and PostgreSQL
# client backends. At the end a Markdown report: failed transactions (target 0), differing rows
# between source and target (target 0), validations, RSS at start (after warm-up)/middle/end
# (flat within 10%), file descriptors, p99 latency per window. Exits 1 when a target is missed.
#
# Environment: SOAK_MINUTES, SOAK_WRITE_TPS (150), SOAK_READ_TPS (300), SOAK_MIXED_TPS (50),
# SOAK_ROWS (50000 rows to backfill), SOAK_KEEP=1 (keep the temporary directory), PGPHASE_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
bench_parse_args "$@"
MINUTES=${SOAK_MINUTES:-30}
if ! [[ "$MINUTES" =~ ^[0-9]+$ ]] || [ "$MINUTES" -lt 1 ]; then
  die "SOAK_MINUTES must be a whole number >= 1"
fi
DURATION=$((MINUTES * 60))
if [ "$MINUTES" -lt 10 ]; then WINDOW=30 SAMPLE_EVERY=15; else WINDOW=300 SAMPLE_EVERY=60; fi
WRITE_TPS=${SOAK_WRITE_TPS:-150}
READ_TPS=${SOAK_READ_TPS:-300}
MIXED_TPS=${SOAK_MIXED_TPS:-50}
ROWS=${SOAK_ROWS:-50000}
PGPHASE_BIN=${PGPHASE_BIN:-$ROOT/${BUILD_DIR:-build}/pgphase}
[ -x "$PGPHASE_BIN" ] || die "pgphase binary not found at $PGPHASE_BIN; run: bash scripts/build.sh"
for cmd in pgbench psql curl awk python3; do
  command -v "$cmd" >/dev/null || die "'$cmd' not found; run: bash scripts/deps.sh"
done
DB=pgphase_soak
export PGUSER=postgres PGHOST=127.0.0.1 PGAPPNAME=pgphase-soak
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS PGSSLMODE
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgphase-soak.XXXXXX")
chmod 0755 "$TMP"
PID=""
BENCH_PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  for p in "${BENCH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  [ -n "$PID" ] && { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }
  pg_stop
  if [ "$rc" -ne 0 ]; then
    for f in "$TMP"/*.log "$TMP"/*.out; do
      [ -s "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
    done
  fi
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(free_port 26432)
reserve_port "$port"
log "starting PostgreSQL 15 on 127.0.0.1:$port"
pg_start_throwaway "$TMP" "$port" shared_buffers=128MB max_connections=100
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -p "$PG_PORT")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
"${PSQL[@]}" -d "$DB" <<SQL
CREATE TABLE acct (id bigserial PRIMARY KEY, owner int NOT NULL, balance int NOT NULL DEFAULT 0,
                   note text, updated_at timestamptz DEFAULT clock_timestamp());
CREATE TABLE t_sys_acct (id bigint PRIMARY KEY, owner int NOT NULL, balance int NOT NULL DEFAULT 0,
                         note text, updated_at timestamptz);
INSERT INTO acct (owner, balance, note) SELECT g % 997, g % 1000, 'old ' || g
  FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE acct;
SQL
COLUMNS="id, owner, balance, note, updated_at"

bench_start_pgphase "host=127.0.0.1 port=$PG_PORT dbname=$DB user=postgres connect_timeout=3"
log "pgphase $PID on 127.0.0.1:$listen (admin $admin)"
api() { # METHOD PATH [BODY] -> the answer on stdout; fails on an HTTP error
  curl -sS -f -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -H 'X-PGPhase-Actor: soak' --data "${3:-}" "http://127.0.0.1:$admin$2"
}
jfield() { # EXPR: a Python expression over the JSON document `d` read from stdin
  python3 -c "import json,sys; d=json.load(sys.stdin); v=$1; print('' if v is None else v)"
}
api POST /api/v1/migrations \
  '{"migration_id":"acct_mig","source_table":"acct","target_table":"t_sys_acct","key_columns":["id"]}' >/dev/null
api POST /api/v1/migrations/acct_mig/phase '{"phase":"dual_write"}' >/dev/null
# The shapes are loaded within a reload: wait until a write through pgphase reaches the target.
for ((i = 0; i < 100; i++)); do
  psql -X -q -At -h 127.0.0.1 -p "$listen" -d "$DB" \
    -c "INSERT INTO acct (owner, note) VALUES (-1, 'probe')" >/dev/null
  [ "$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM t_sys_acct WHERE owner = -1")" != 0 ] && break
  sleep 0.1
done
[ "$i" -lt 100 ] || die "writes through pgphase are not dual-written"

cat >"$TMP/write.sql" <<SQL
\set id random(1, $ROWS)
\set r random(1, 100)
\if :r <= 60
UPDATE acct SET balance = balance + 1, updated_at = clock_timestamp() WHERE id = :id;
\elif :r <= 95
INSERT INTO acct (owner, balance, note) VALUES (:id % 997, 0, 'soak') RETURNING id;
\else
DELETE FROM acct WHERE id = :id;
\endif
SQL
cat >"$TMP/read.sql" <<SQL
\set id random(1, $ROWS)
SELECT id, owner, balance, note, updated_at FROM acct WHERE id = :id;
SELECT count(*), sum(balance) FROM acct WHERE id BETWEEN :id AND :id + 20;
SQL
cat >"$TMP/mixed.sql" <<SQL
\set id random(1, $ROWS)
BEGIN;
SELECT balance FROM acct WHERE id = :id;
UPDATE acct SET balance = balance - 1, note = 'mixed', updated_at = clock_timestamp() WHERE id = :id;
SELECT count(*) FROM acct WHERE id BETWEEN :id AND :id + 5;
COMMIT;
SQL
run_bench() { # NAME MODE CLIENTS TPS
  (cd "$TMP" && exec pgbench -n -r -T "$DURATION" -c "$3" -j 1 -M "$2" -R "$4" \
    --log --log-prefix="lat_$1" --sampling-rate=0.1 -f "$1.sql" \
    -h 127.0.0.1 -p "$listen" "$DB" >"$TMP/$1.out" 2>&1) &
  BENCH_PIDS+=($!)
}
START=$(date +%s)
log "pgbench for ${MINUTES} min: writes ${WRITE_TPS}/s (prepared), reads ${READ_TPS}/s (simple), mixed ${MIXED_TPS}/s (extended)"
run_bench write prepared 3 "$WRITE_TPS"
run_bench read simple 3 "$READ_TPS"
run_bench mixed extended 2 "$MIXED_TPS"

# Sampler: every SAMPLE_EVERY s, "elapsed rss_kib fds client_backends".
sample() {
  local fds conns
  fds=$(find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  conns=$("${PSQL[@]}" -d postgres -c \
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>/dev/null || echo -1)
  echo "$(($(date +%s) - START)) $(bench_vmrss_kib "$PID") $fds $conns" >>"$TMP/samples.txt"
}
(
  while kill -0 "$PID" 2>/dev/null; do
    sample
    sleep "$SAMPLE_EVERY"
  done
) &
SAMPLER=$!
BENCH_PIDS+=("$SAMPLER")

EVENTS=()
event() {
  EVENTS+=("$(($(date +%s) - START)) s: $*")
  log "$*"
}
VALIDATIONS=()
VALIDATION_MISS=0
validate() { # runs a comprehensive validation through the API and records its score
  local id status body score diffs
  id=$(api POST /api/v1/validations '{"migration_id":"acct_mig","level":"comprehensive"}' |
    jfield 'd["validation_id"]')
  for ((k = 0; k < 600; k++)); do
    body=$(api GET "/api/v1/validations/$id")
    status=$(jfield 'd["status"]' <<<"$body")
    [ "$status" != running ] && break
    sleep 0.5
  done
  score=$(jfield '(d.get("report") or {}).get("consistency_score", ((d.get("report") or {}).get("result") or {}).get("consistency_score"))' <<<"$body")
  diffs=$(jfield '(d.get("report") or {}).get("differences_count")' <<<"$body")
  VALIDATIONS+=("$(($(date +%s) - START)) s: $status, consistency score $score, differences $diffs")
  event "validation $id: $status, consistency score $score"
  if [ "$status" != completed ] || [ "$(awk -v s="${score:-0}" 'BEGIN { print (s + 0 < 1) }')" = 1 ]; then
    VALIDATION_MISS=1
  fi
}
wait_until_elapsed() { # SECONDS since START
  local now
  now=$(($(date +%s) - START))
  [ "$now" -lt "$1" ] && sleep $(($1 - now))
  return 0
}
set_pct() {
  local status
  status=$(api GET /api/v1/switches/acct_sw | jfield 'd["status"]')
  if [ "$status" = rolled_back ]; then
    event "switch found rolled back (auto-rollback?): activating again"
    api POST /api/v1/switches/acct_sw/activate '{}' >/dev/null
  fi
  api POST /api/v1/switches/acct_sw/percentage "{\"percentage\":$1,\"reason\":\"soak\"}" >/dev/null
  event "read switch at $1%"
}

# Driver: backfill, validation, read_switch, then the ramps spread over the run.
api POST /api/v1/migrations/acct_mig/backfill '{"batch_size":1000,"max_rows_per_second":5000}' >/dev/null
event "backfill started ($ROWS rows, 5000 rows/s)"
for ((k = 0; k < 1200; k++)); do
  bf=$(api GET /api/v1/migrations/acct_mig/backfill)
  [ "$(jfield 'd["status"]' <<<"$bf")" != running ] && break
  sleep 0.5
done
event "backfill $(jfield 'd["status"]' <<<"$bf"): rows_copied $(jfield 'd["rows_copied"]' <<<"$bf"), rows_inserted $(jfield 'd["rows_inserted"]' <<<"$bf")"
BACKFILL_STATUS=$(jfield 'd["status"]' <<<"$bf")
validate
for phase in validation read_switch; do
  if ! api POST /api/v1/migrations/acct_mig/phase "{\"phase\":\"$phase\"}" >/dev/null 2>"$TMP/phase.err"; then
    event "phase $phase refused without force ($(cat "$TMP/phase.err")); forcing"
    api POST /api/v1/migrations/acct_mig/phase "{\"phase\":\"$phase\",\"force\":true}" >/dev/null
  fi
  event "phase $phase"
done
api POST /api/v1/switches '{"config_id":"acct_sw","table_name":"acct","migration_id":"acct_mig","strategy":"gradual","switch_percentage":0,"status":"inactive","conditions":{"latency_threshold":2000,"error_rate_threshold":0.05}}' >/dev/null
api POST /api/v1/switches/acct_sw/activate '{}' >/dev/null
event "read switch registered and activated"
# Ten slots over what is left (the last one leaves a margin before pgbench ends).
T0=$(($(date +%s) - START))
SLOT=$(((DURATION - T0 - 10) / 10))
[ "$SLOT" -ge 3 ] || die "SOAK_MINUTES too short for the schedule"
STEPS=(10 50 100 rollback 10 50 100 validate 100 validate)
for ((s = 0; s < ${#STEPS[@]}; s++)); do
  wait_until_elapsed $((T0 + s * SLOT))
  case ${STEPS[$s]} in
    rollback)
      api POST /api/v1/switches/acct_sw/rollback '{"reason":"soak: planned rollback"}' >/dev/null
      event "read switch rolled back"
      api POST /api/v1/switches/acct_sw/activate '{}' >/dev/null
      event "read switch activated again (0%)"
      ;;
    validate) validate ;;
    *) set_pct "${STEPS[$s]}" ;;
  esac
done
log "waiting for pgbench to finish"
for p in "${BENCH_PIDS[@]}"; do
  [ "$p" = "$SAMPLER" ] && continue
  wait "$p" || true
done
sample
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
BENCH_PIDS=()
FINAL_SWITCH=$(api GET /api/v1/switches/acct_sw | jfield '"%s %s%%" % (d["status"], d["switch_percentage"])')
target_share=$(curl -sS "http://127.0.0.1:$admin/metrics" |
  awk '/^pgphase_read_switch_statements_total/ && /side="target"/ { t += $2 }
       /^pgphase_read_switch_statements_total/ { a += $2 }
       END { if (a > 0) printf "%.1f", 100 * t / a; else print "n/a" }')

# ---- figures
MISS=0
failed_total=0
aborted_total=0
processed_total=0
BENCH_ROWS=()
for name in write read mixed; do
  out=$TMP/$name.out
  processed=$(awk '/^number of transactions actually processed/ { print $6 }' "$out")
  failed=$(awk '/^number of failed transactions/ { print $5 }' "$out")
  aborted=$(grep -c 'aborted' "$out" || true)
  processed=${processed:-0}
  failed=${failed:-unknown}
  [ "$failed" = unknown ] && { failed=0; aborted=$((aborted + 1)); }
  failed_total=$((failed_total + failed))
  aborted_total=$((aborted_total + aborted))
  processed_total=$((processed_total + processed))
  BENCH_ROWS+=("| $name | $(awk '/^transaction type/ { print $0 }' "$out" | head -1 | sed 's/.*: //') | $processed | $failed | $aborted |")
done
[ "$failed_total" -eq 0 ] && [ "$aborted_total" -eq 0 ] || MISS=1
DIFF=$("${PSQL[@]}" -d "$DB" -c "SELECT (SELECT count(*) FROM (SELECT $COLUMNS FROM acct EXCEPT SELECT $COLUMNS FROM t_sys_acct) a)
  + (SELECT count(*) FROM (SELECT $COLUMNS FROM t_sys_acct EXCEPT SELECT $COLUMNS FROM acct) b)")
SRC_ROWS=$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM acct")
DST_ROWS=$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM t_sys_acct")
[ "$DIFF" -eq 0 ] || MISS=1
[ "$VALIDATION_MISS" -eq 0 ] || MISS=1
[ "$BACKFILL_STATUS" = completed ] || MISS=1

# RSS: start = the first sample after one window of warm-up, middle = the sample nearest to
# half-time, end = the last one (taken after pgbench ended); fds and backends also at the last
# sample under traffic.
read -r RSS_START RSS_MID RSS_END FD_START FD_END CONN_START CONN_END FD_LAST CONN_LAST < <(awk -v warm="$WINDOW" -v half=$((DURATION / 2)) '
  { t[NR] = $1; r[NR] = $2; f[NR] = $3; c[NR] = $4 }
  END {
    s = 1; while (s < NR && t[s] < warm) s++
    m = 1; best = -1
    for (i = 1; i <= NR; i++) { d = t[i] - half; if (d < 0) d = -d; if (best < 0 || d < best) { best = d; m = i } }
    l = NR > 1 ? NR - 1 : NR
    print r[s], r[m], r[NR], f[s], f[NR], c[s], c[NR], f[l], c[l]
  }' "$TMP/samples.txt")
RSS_FLAT=$(awk -v a="$RSS_START" -v b="$RSS_MID" -v c="$RSS_END" 'BEGIN {
  ok = (b <= a * 1.10 && b >= a * 0.90 && c <= a * 1.10 && c >= a * 0.90); print ok ? "yes" : "no" }')
[ "$RSS_FLAT" = yes ] || MISS=1
[ "$FD_END" -le $((FD_START + 10)) ] || MISS=1

# p99 per window from the sampled per-transaction logs: "client tx time_us script epoch us ...";
# a failed transaction logs "failed" in the time field.
# Transactions that ended after the last full window (pgbench's -T edge) count in the last one.
cat "$TMP"/lat_* 2>/dev/null | awk -v start="$START" -v w="$WINDOW" -v last=$((DURATION / WINDOW - 1)) \
  '$3 ~ /^[0-9]+$/ { k = int(($5 - start) / w); if (k > last) k = last; print k, $3 / 1000.0 }' \
  >"$TMP/latencies.txt"
P99_ROWS=()
while read -r win; do
  n_p99=$(awk -v k="$win" '$1 == k { print $2 }' "$TMP/latencies.txt" | sort -g |
    awk '{ a[NR] = $1 } END { i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; printf "%d %.2f %.2f", NR, a[i], a[int((NR + 1) / 2)] }')
  read -r n p99 p50 <<<"$n_p99"
  P99_ROWS+=("| $((win * WINDOW))–$(((win + 1) * WINDOW)) s | $n | $p50 | $p99 |")
done < <(awk '{ print $1 }' "$TMP/latencies.txt" | sort -n | uniq)

{
  echo
  echo "## pgphase soak: ${MINUTES} min, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Mixed pgbench through one pgphase (writes -M prepared ${WRITE_TPS}/s, reads -M simple ${READ_TPS}/s, mixed transactions -M extended ${MIXED_TPS}/s) while acct -> t_sys_acct went dual_write -> backfill -> validation -> read_switch and the read switch ramped, rolled back and ramped again."
  echo
  echo "| target | figure | result |"
  echo "|---|---|---|"
  echo "| failed transactions 0 | $failed_total failed, $aborted_total aborted clients, of $processed_total | $([ "$failed_total" -eq 0 ] && [ "$aborted_total" -eq 0 ] && echo PASS || echo MISS) |"
  echo "| differing rows at the end 0 | $DIFF (source $SRC_ROWS rows, target $DST_ROWS) | $([ "$DIFF" -eq 0 ] && echo PASS || echo MISS) |"
  echo "| RSS flat within 10% | start $RSS_START KiB, middle $RSS_MID KiB, end $RSS_END KiB | $([ "$RSS_FLAT" = yes ] && echo PASS || echo MISS) |"
  echo "| file descriptors steady | start $FD_START, last under traffic $FD_LAST, after the clients left $FD_END | $([ "$FD_END" -le $((FD_START + 10)) ] && echo PASS || echo MISS) |"
  echo "| validations score 1 | ${#VALIDATIONS[@]} run | $([ "$VALIDATION_MISS" -eq 0 ] && echo PASS || echo MISS) |"
  echo "| backfill completed | $BACKFILL_STATUS | $([ "$BACKFILL_STATUS" = completed ] && echo PASS || echo MISS) |"
  echo
  echo "PostgreSQL client backends: start $CONN_START, last under traffic $CONN_LAST, after the clients left $CONN_END. Read switch at the end: $FINAL_SWITCH; share of routed reads answered by the target over the run: ${target_share}%."
  echo
  echo "| pgbench | script | transactions | failed | aborted clients |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${BENCH_ROWS[@]}"
  echo
  echo "Latency per ${WINDOW} s window (10% sample of all transactions, all three pgbench runs, ms):"
  echo
  echo "| window | sampled transactions | p50 | p99 |"
  echo "|---|---|---|---|"
  printf '%s\n' "${P99_ROWS[@]}"
  echo
  echo "Samples (elapsed s, RSS KiB, open fds, client backends):"
  echo
  echo '```'
  cat "$TMP/samples.txt"
  echo '```'
  echo
  echo "Validations:"
  printf -- '- %s\n' "${VALIDATIONS[@]}"
  echo
  echo "Events:"
  printf -- '- %s\n' "${EVENTS[@]}"
  echo
  echo "Result: $([ "$MISS" -eq 0 ] && echo "all targets met" || echo "TARGET MISSED")"
} | tee "$TMP/report.md"
if [ "$MISS" -ne 0 ]; then
  grep -E ' (ERROR|WARN) ' "$TMP/pgphase.log" | tail -n 20 >&2 || true
  exit 1
fi
