#!/usr/bin/env bash
# Quick start: installs dependencies, builds pgphase, starts a throwaway PostgreSQL 15 cluster with
# a pgbench-initialised database `pgphase_demo` (plus the manual's `users` and `t_sys_users`
# tables), and runs pgphase in front of it until Ctrl-C, with its migration control plane in that
# database and the manual's example migration (conf/migration_configs.json,
# conf/read_switch_configs.json) registered. Everything (cluster, logs) lives in one temp dir that
# is removed on exit.
#
#   bash scripts/demo.sh            # interactive: prints how to connect, runs until Ctrl-C/SIGTERM
#   bash scripts/demo.sh --check    # non-interactive smoke test: one query through pgphase and
#                                   # `pgphase migration list`, then exit (= DEMO_EXIT_AFTER_CHECK=1)
# Environment: PGPHASE_PORT (default 6432), PGPHASE_ADMIN_PORT (8432), DEMO_PG_PORT (15432);
# each falls back to the next free port when taken. BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh

CHECK=${DEMO_EXIT_AFTER_CHECK:-0}
for arg in "$@"; do
  case "$arg" in
    --check) CHECK=1 ;;
    -h | --help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

bash scripts/deps.sh
bash scripts/build.sh
PGPHASE_BIN="$ROOT/${BUILD_DIR:-build}/pgphase"
if [ ! -x "$PGPHASE_BIN" ]; then
  echo "demo.sh: $PGPHASE_BIN was not built" >&2
  exit 1
fi

TMP=""
PGPHASE_PID=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$PGPHASE_PID" ] && kill -0 "$PGPHASE_PID" 2>/dev/null; then
    kill -TERM "$PGPHASE_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$PGPHASE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PGPHASE_PID" 2>/dev/null || true
    wait "$PGPHASE_PID" 2>/dev/null || true
  fi
  pg_stop
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$rc" -ne 143 ]; then
      for log in "$TMP/pgphase.log" "$TMP/postgresql.log"; do
        if [ -s "$log" ]; then
          echo "--- last lines of $(basename "$log")" >&2
          tail -n 20 "$log" >&2
        fi
      done
    fi
    rm -rf "$TMP"
  fi
  [ "$rc" -eq 0 ] || [ "$rc" -eq 130 ] || [ "$rc" -eq 143 ] || echo "demo.sh: failed (exit $rc)" >&2
  echo "demo.sh: stopped pgphase and PostgreSQL, removed the temp dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgphase-demo.XXXXXX")

PG_PORT_WANT=$(free_port "${DEMO_PG_PORT:-15432}")
reserve_port "$PG_PORT_WANT"
echo "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT_WANT (data in $TMP)"
pg_start_throwaway "$TMP" "$PG_PORT_WANT"
export PGUSER=postgres PGHOST=127.0.0.1
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -p "$PG_PORT" -d postgres -c "CREATE DATABASE pgphase_demo"
echo "initialising pgphase_demo with pgbench -i -s 1"
pgbench -i -s 1 -q -p "$PG_PORT" pgphase_demo >"$TMP/pgbench-init.log" 2>&1 || {
  cat "$TMP/pgbench-init.log" >&2
  exit 1
}
# The manual's example: users is migrated to t_sys_users (same shape; the target starts empty).
"${PSQL[@]}" -p "$PG_PORT" -d pgphase_demo <<'SQL'
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE t_sys_users (LIKE users INCLUDING ALL);
INSERT INTO users (name, email)
SELECT 'user ' || i, 'user' || i || '@example.com' FROM generate_series(1, 100) AS i;
SQL

# The control plane keeps its t_sys_* tables in the demo database; the admin token is fresh.
CONTROL_DSN="host=127.0.0.1 port=$PG_PORT dbname=pgphase_demo user=postgres"
PGPHASE_ADMIN_TOKEN=$(openssl rand -hex 16)
export PGPHASE_ADMIN_TOKEN

LISTEN_PORT=$(free_port "${PGPHASE_PORT:-6432}")
reserve_port "$LISTEN_PORT"
ADMIN_PORT=$(free_port "${PGPHASE_ADMIN_PORT:-8432}")
reserve_port "$ADMIN_PORT"
"$PGPHASE_BIN" serve --listen "127.0.0.1:$LISTEN_PORT" --backend "127.0.0.1:$PG_PORT" \
  --admin "127.0.0.1:$ADMIN_PORT" --log-level warn --control-dsn "$CONTROL_DSN" \
  --config-file conf/migration_configs.json --config-file conf/read_switch_configs.json \
  --config-file conf/alerting_config.json --config-file conf/alert_rules.json \
  >"$TMP/pgphase.log" 2>&1 &
PGPHASE_PID=$!
wait_for_listen "$LISTEN_PORT" 30 "$PGPHASE_PID"
wait_for_listen "$ADMIN_PORT" 30 "$PGPHASE_PID"

URL="postgresql://postgres@127.0.0.1:$LISTEN_PORT/pgphase_demo"
export PGPHASE_ADMIN_URL="http://127.0.0.1:$ADMIN_PORT"
if [ "$CHECK" = 1 ]; then
  echo "check: one query through pgphase ($URL)"
  "${PSQL[@]}" "$URL" -c \
    "SELECT count(*) AS accounts, current_setting('server_version') AS server_version FROM pgbench_accounts"
  echo "check: GET http://127.0.0.1:$ADMIN_PORT/healthz"
  curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/healthz"
  echo
  echo "check: pgphase migration list"
  "$PGPHASE_BIN" migration list
  "$PGPHASE_BIN" migration list --json | grep -q '"users_table_migration"' || {
    echo "demo.sh: the manual's example migration is not registered" >&2
    exit 1
  }
  echo "check: pgphase alerts rules"
  "$PGPHASE_BIN" alerts rules
  [ "$("$PGPHASE_BIN" alerts rules --json | grep -o '"rule_id"' | wc -l)" -eq 11 ] || {
    echo "demo.sh: the manual's and the default alert rules are not all registered" >&2
    exit 1
  }
  echo "check: OK"
  exit 0
fi

cat <<EOF

================================================================================
 pgphase is running (pid $PGPHASE_PID) in front of a throwaway PostgreSQL 15.

 Connect through pgphase:
     psql "$URL"
 Load it with pgbench:
     pgbench -n -S -c 8 -j 2 -T 10 "$URL"
 Admin:
     http://127.0.0.1:$ADMIN_PORT/healthz
     http://127.0.0.1:$ADMIN_PORT/metrics
 Migration control plane (the manual's users -> t_sys_users is registered). In another shell:
     export PGPHASE_ADMIN_URL=$PGPHASE_ADMIN_URL
     export PGPHASE_ADMIN_TOKEN=$PGPHASE_ADMIN_TOKEN
     $PGPHASE_BIN migration list
     $PGPHASE_BIN migration --action status --migration-id users_table_migration
     $PGPHASE_BIN migration --action enable-dual-write --migration-id users_table_migration
     $PGPHASE_BIN switch list
     $PGPHASE_BIN validate --db-url "$CONTROL_DSN" --source-table pgbench_accounts --target-table pgbench_accounts --level basic
     $PGPHASE_BIN alerts rules
     $PGPHASE_BIN alerts status
 PostgreSQL directly (for comparison):
     psql "postgresql://postgres@127.0.0.1:$PG_PORT/pgphase_demo"
 Logs: $TMP/pgphase.log, $TMP/postgresql.log

 Press Ctrl-C to stop pgphase and PostgreSQL and delete $TMP.
================================================================================
EOF

# `wait` returns early when a trapped signal arrives, so Ctrl-C/SIGTERM reach cleanup promptly.
set +e
wait "$PGPHASE_PID"
status=$?
set -e
PGPHASE_PID=""
echo "demo.sh: pgphase exited on its own (status $status)" >&2
exit 1
