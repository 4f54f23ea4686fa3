#!/usr/bin/env bash
# Alerting benchmark: does evaluating alert rules cost the proxy throughput? pgbench select-only
# (8 clients) through one pgphase, in alternating rounds: without alert rules, and with 100 rules
# (50 SQL conditions on t_sys_* tables, 50 signal conditions; none fires) evaluated every
# BENCH_INTERVAL_MS (default 1000, the default). Reports median TPS of each, their ratio, and the
# evaluations done during the rule rounds (pgphase_alert_evaluations_total; the issue asks for at
# least 10,000). A measurement.
#
#   bench/alerting.sh                 # 5 rounds x 20 s each way
#   BENCH_ROUNDS=2 BENCH_DURATION=10 BENCH_INTERVAL_MS=200 bench/alerting.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
bench_parse_args "$@"
ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-20}
INTERVAL=${BENCH_INTERVAL_MS:-1000}
[ "$QUICK" = 1 ] && { ROUNDS=1; DURATION=5; INTERVAL=200; }
DB=pgphase_alertbench
bench_init alertbench
port=$(free_port 24832)
reserve_port "$port"
pg_start_throwaway "$TMP" "$port" shared_buffers=256MB
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -p "$PG_PORT")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
pgbench -i -q -s 10 -p "$PG_PORT" "$DB" >/dev/null 2>&1

echo "{\"alert_interval_ms\": $INTERVAL}" >"$TMP/pgphase.json"
bench_start_pgphase "host=127.0.0.1 port=$PG_PORT dbname=$DB user=postgres" --config "$TMP/pgphase.json"
api() {
  curl -sS -f -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "$2" "http://127.0.0.1:$admin$1" >/dev/null
}
evaluations() {
  curl -sS "http://127.0.0.1:$admin/metrics" |
    awk '/^pgphase_alert_evaluations_total/ { s += $2 } END { printf "%d", s }'
}
rule() {  # rule ID CONDITION THRESHOLD ENABLED
  api /api/v1/alert-rules "{\"rule_id\": \"$1\", \"alert_type\": \"bench\", \"severity\": \"info\",
    \"condition\": \"$2\", \"threshold\": $3, \"duration\": 60, \"enabled\": $4,
    \"notification_channels\": [\"log\"]}"
}
set_rules() {  # set_rules true|false: the 100 rules on or off
  local i
  for ((i = 0; i < 50; i++)); do
    rule "sql_$i" "SELECT count(*) FROM t_sys_migration_logs WHERE status = 'failed' AND created_at > now() - interval '5 minutes'" 1000000 "$1"
    case $((i % 5)) in
      0) rule "sig_$i" "consistency_score < 0.5" 0.5 "$1" ;;
      1) rule "sig_$i" "dual_write_success_rate < 0.5" 0.5 "$1" ;;
      2) rule "sig_$i" "switch_error_rate > 0.9" 0.9 "$1" ;;
      3) rule "sig_$i" "target_p95_latency_ms > 100000" 100000 "$1" ;;
      4) rule "sig_$i" "migration_success_rate < 0.1" 0.1 "$1" ;;
    esac
  done
}
tps() {
  pgbench -n -S -M prepared -c 8 -j 2 -T "$DURATION" -h 127.0.0.1 -p "$listen" "$DB" 2>/dev/null |
    awk '/^tps/ { print int($3) }'
}

pgbench -n -S -M prepared -c 8 -j 2 -T 3 -h 127.0.0.1 -p "$listen" "$DB" >/dev/null 2>&1  # warm
without="" with="" evals=0
for ((r = 1; r <= ROUNDS; r++)); do
  set_rules false
  sleep 1
  a=$(tps)
  set_rules true
  sleep 1
  before=$(evaluations)
  b=$(tps)
  after=$(evaluations)
  evals=$((evals + after - before))
  without+=" $a"
  with+=" $b"
  log "round $r: without rules $a TPS, with 100 rules $b TPS ($((after - before)) evaluations)"
done
W=$(median "$without")
R=$(median "$with")
echo
echo "## Alerting benchmark: pgbench -S, 8 clients, $(nproc) CPUs, $ROUNDS x ${DURATION} s each way, rules every ${INTERVAL} ms"
echo
printf '| %-34s | %10s |\n' configuration "median TPS"
printf '|%s|%s|\n' "------------------------------------" "------------"
printf '| %-34s | %10s |\n' "pgphase, no alert rules" "$W"
printf '| %-34s | %10s |\n' "pgphase, 100 alert rules evaluated" "$R"
echo
echo "with / without: $(awk -v a="$R" -v b="$W" 'BEGIN { printf "%.3f", a / b }'); evaluations during the rule rounds: $evals"
