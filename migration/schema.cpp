#include "migration/schema.h"

#include <map>
#include <set>
#include <vector>

#include "common/log.h"

namespace pgphase::migration {
namespace {

// Version 1. Names, columns and indexes follow the operations manual: its diagnostics query
// t_sys_dual_write_logs by target_success and created_at, its alert rules count
// t_sys_migration_logs rows by status and created_at, and its performance section names the
// three idx_* indexes.
constexpr const char* kSchemaV1 = R"SQL(
CREATE TABLE IF NOT EXISTS t_sys_schema_version (
  version integer PRIMARY KEY,
  description text NOT NULL DEFAULT '',
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS t_sys_migrations (
  migration_id text PRIMARY KEY,
  source_table text NOT NULL,
  target_table text NOT NULL,
  database text NOT NULL DEFAULT '',
  phase text NOT NULL CHECK (phase IN
    ('preparation', 'dual_write', 'validation', 'read_switch', 'cleanup', 'completed')),
  consistency_level text NOT NULL DEFAULT 'strict' CHECK (consistency_level IN ('strict', 'eventual')),
  dual_write_enabled boolean NOT NULL DEFAULT false,
  read_from_target boolean NOT NULL DEFAULT false,
  validation_enabled boolean NOT NULL DEFAULT true,
  auto_switch_threshold double precision NOT NULL DEFAULT 0.99
    CHECK (auto_switch_threshold BETWEEN 0 AND 1),
  rollback_enabled boolean NOT NULL DEFAULT true,
  key_columns jsonb NOT NULL DEFAULT '[]',
  column_map jsonb NOT NULL DEFAULT '{}',
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS t_sys_migration_logs (
  id bigserial PRIMARY KEY,
  migration_id text NOT NULL,
  action text NOT NULL,
  actor text NOT NULL DEFAULT '',
  from_state text,
  to_state text,
  status text NOT NULL,
  message text NOT NULL DEFAULT '',
  details jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_migration_logs_status_created
  ON t_sys_migration_logs (status, created_at);
CREATE INDEX IF NOT EXISTS idx_migration_logs_migration_created
  ON t_sys_migration_logs (migration_id, created_at);

CREATE TABLE IF NOT EXISTS t_sys_dual_write_logs (
  id bigserial PRIMARY KEY,
  migration_id text NOT NULL,
  operation text NOT NULL,
  record_id text,
  source_success boolean NOT NULL,
  target_success boolean NOT NULL,
  error_message text,
  latency_ms double precision,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_dual_write_logs_migration_created
  ON t_sys_dual_write_logs (migration_id, created_at);

CREATE TABLE IF NOT EXISTS t_sys_consistency_checks (
  check_id text PRIMARY KEY,
  migration_id text,
  source_table text NOT NULL,
  target_table text NOT NULL,
  level text NOT NULL,
  consistency_score double precision NOT NULL,
  total_records bigint NOT NULL DEFAULT 0,
  differences_count bigint NOT NULL DEFAULT 0,
  report jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_consistency_checks_migration_created
  ON t_sys_consistency_checks (migration_id, created_at);

CREATE TABLE IF NOT EXISTS t_sys_read_switch_configs (
  config_id text PRIMARY KEY,
  table_name text NOT NULL,
  migration_id text NOT NULL DEFAULT '',
  current_source text NOT NULL DEFAULT 'source',
  target_source text NOT NULL DEFAULT 'target',
  strategy text NOT NULL CHECK (strategy IN ('immediate', 'gradual', 'sticky', 'canary', 'shadow')),
  switch_percentage double precision NOT NULL DEFAULT 0
    CHECK (switch_percentage BETWEEN 0 AND 100),
  conditions jsonb NOT NULL DEFAULT '{}',
  rollback_enabled boolean NOT NULL DEFAULT true,
  auto_rollback_threshold double precision NOT NULL DEFAULT 0.05,
  status text NOT NULL CHECK (status IN ('inactive', 'active', 'paused', 'completed', 'rolled_back')),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS t_sys_read_switch_history (
  id bigserial PRIMARY KEY,
  config_id text NOT NULL,
  from_percentage double precision NOT NULL,
  to_percentage double precision NOT NULL,
  actor text NOT NULL DEFAULT '',
  reason text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_read_switch_history_config_created
  ON t_sys_read_switch_history (config_id, created_at);

INSERT INTO t_sys_schema_version (version, description)
VALUES (1, 'pgphase control plane: migrations, logs, dual-write logs, consistency checks, read switches')
ON CONFLICT (version) DO NOTHING;
)SQL";

// Version 2: what the proxy does with a write it cannot mirror, per migration. NULL: the default
// for the migration's consistency_level (strict: reject, eventual: allow_and_flag).
constexpr const char* kSchemaV2 = R"SQL(
ALTER TABLE t_sys_migrations ADD COLUMN IF NOT EXISTS unsupported_write_policy text
  CHECK (unsupported_write_policy IN ('reject', 'allow_and_flag'));

INSERT INTO t_sys_schema_version (version, description)
VALUES (2, 't_sys_migrations.unsupported_write_policy')
ON CONFLICT (version) DO NOTHING;
)SQL";

// Version 3: eventual consistency. t_sys_mirror_apply applies a dual write's row images to the
// target in a subtransaction and, when that fails, logs one t_sys_dual_write_logs row per key
// (record_id: the key as a JSON object) instead of failing the client's statement; the repair
// pass re-copies those keys from the source and sets repaired_at.
constexpr const char* kSchemaV3 = R"SQL(
ALTER TABLE t_sys_dual_write_logs ADD COLUMN IF NOT EXISTS repaired_at timestamptz;
CREATE INDEX IF NOT EXISTS idx_dual_write_logs_unrepaired
  ON t_sys_dual_write_logs (migration_id) WHERE NOT target_success AND repaired_at IS NULL;

CREATE OR REPLACE FUNCTION t_sys_mirror_apply(p_migration text, p_operation text, p_target text,
    p_cols text[], p_keys text[], p_delete boolean, p_rows jsonb)
  RETURNS integer LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  n integer := 0;
  cols text;
  keys text;
  tkeys text;
  rkeys text;
  sets text;
BEGIN
  IF p_rows IS NULL OR jsonb_array_length(p_rows) = 0 THEN
    RETURN 0;
  END IF;
  SELECT string_agg(format('%I', c), ', ') INTO cols FROM unnest(p_cols) c;
  SELECT string_agg(format('%I', k), ', '), string_agg(format('t.%I', k), ', '),
         string_agg(format('r.%I', k), ', ')
    INTO keys, tkeys, rkeys FROM unnest(p_keys) k;
  BEGIN
    IF p_delete THEN
      EXECUTE format('DELETE FROM %s t USING jsonb_populate_recordset(NULL::%s, $1) r '
                     'WHERE (%s) = (%s)', p_target, p_target, tkeys, rkeys) USING p_rows;
    ELSE
      SELECT string_agg(format('%I = EXCLUDED.%I', c, c), ', ') INTO sets
        FROM unnest(p_cols) c WHERE c <> ALL (p_keys);
      EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM '
                     'jsonb_populate_recordset(NULL::%s, $1) ON CONFLICT (%s) DO %s',
                     p_target, cols, cols, p_target, keys,
                     CASE WHEN sets IS NULL THEN 'NOTHING' ELSE 'UPDATE SET ' || sets END)
        USING p_rows;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO t_sys_dual_write_logs (migration_id, operation, record_id, source_success,
                                       target_success, error_message)
    SELECT p_migration, p_operation,
           (SELECT jsonb_object_agg(k, r -> k) FROM unnest(p_keys) k)::text, true, false,
           SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')'
      FROM jsonb_array_elements(p_rows) r;
    RETURN -1;
  END;
END
$fn$;

INSERT INTO t_sys_schema_version (version, description)
VALUES (3, 'eventual dual writes: t_sys_mirror_apply, t_sys_dual_write_logs.repaired_at')
ON CONFLICT (version) DO NOTHING;
)SQL";

// Version 4: backfills. One row per migration: its settings (changeable while it runs), state and
// checkpoint (the last copied key, written in the same transaction as the batch it ends).
constexpr const char* kSchemaV4 = R"SQL(
CREATE TABLE IF NOT EXISTS t_sys_backfills (
  migration_id text PRIMARY KEY,
  status text NOT NULL CHECK (status IN ('running', 'paused', 'cancelled', 'completed', 'failed')),
  batch_size integer NOT NULL DEFAULT 1000 CHECK (batch_size BETWEEN 1 AND 1000000),
  max_rows_per_second double precision NOT NULL DEFAULT 0 CHECK (max_rows_per_second >= 0),
  throttle_query text NOT NULL DEFAULT '',
  throttle_limit double precision NOT NULL DEFAULT 0,
  last_key jsonb,
  rows_copied bigint NOT NULL DEFAULT 0,
  rows_inserted bigint NOT NULL DEFAULT 0,
  total_estimate bigint NOT NULL DEFAULT 0,
  error text NOT NULL DEFAULT '',
  actor text NOT NULL DEFAULT '',
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

INSERT INTO t_sys_schema_version (version, description)
VALUES (4, 't_sys_backfills')
ON CONFLICT (version) DO NOTHING;
)SQL";

// Version 5: alerting. Rules (the manual's AlertRule plus the comparison and scope), alerts with
// their lifecycle (firing, acknowledged, resolved) and recovery outcome, silences, and the
// delivery log of notifications.
constexpr const char* kSchemaV5 = R"SQL(
CREATE TABLE IF NOT EXISTS t_sys_alert_rules (
  rule_id text PRIMARY KEY,
  rule_name text NOT NULL,
  alert_type text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  condition text NOT NULL,
  comparison text NOT NULL DEFAULT '>=' CHECK (comparison IN ('>', '>=', '<', '<=', '==', '!=')),
  threshold double precision NOT NULL,
  duration integer NOT NULL DEFAULT 0 CHECK (duration >= 0),
  enabled boolean NOT NULL DEFAULT true,
  notification_channels jsonb NOT NULL DEFAULT '[]',
  suppression_duration integer NOT NULL DEFAULT 300 CHECK (suppression_duration >= 0),
  auto_recovery boolean NOT NULL DEFAULT false,
  recovery_action text,
  migration_id text,
  config_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS t_sys_alerts (
  alert_id text PRIMARY KEY,
  rule_id text NOT NULL,
  rule_name text NOT NULL,
  alert_type text NOT NULL,
  severity text NOT NULL,
  scope text NOT NULL DEFAULT '',
  migration_id text,
  status text NOT NULL CHECK (status IN ('firing', 'acknowledged', 'resolved')),
  value double precision,
  threshold double precision,
  message text NOT NULL DEFAULT '',
  notifications integer NOT NULL DEFAULT 0,
  suppressed integer NOT NULL DEFAULT 0,
  last_notified_at timestamptz,
  recovery_action text,
  recovery_status text,
  recovery_result text,
  fired_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  acknowledged_at timestamptz,
  acknowledged_by text,
  resolved_at timestamptz,
  resolved_by text
);
CREATE INDEX IF NOT EXISTS idx_alerts_open ON t_sys_alerts (rule_id, scope) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS idx_alerts_fired ON t_sys_alerts (fired_at);

CREATE TABLE IF NOT EXISTS t_sys_alert_silences (
  silence_id text PRIMARY KEY,
  rule_id text,
  migration_id text,
  severity text,
  comment text NOT NULL DEFAULT '',
  created_by text NOT NULL DEFAULT '',
  starts_at timestamptz NOT NULL DEFAULT now(),
  ends_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS t_sys_alert_notifications (
  id bigserial PRIMARY KEY,
  alert_ids text[] NOT NULL,
  channel text NOT NULL,
  event text NOT NULL,
  status text NOT NULL CHECK (status IN ('sent', 'failed')),
  attempts integer NOT NULL,
  error text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO t_sys_schema_version (version, description)
VALUES (5, 'alerting: t_sys_alert_rules, t_sys_alerts, t_sys_alert_silences, t_sys_alert_notifications')
ON CONFLICT (version) DO NOTHING;
)SQL";

// Version 6: t_sys_mirror_delete, the strict dual write's mirror DELETE as a function, so that it
// runs with its own snapshot (READ COMMITTED takes one per statement inside PL/pgSQL): a target
// row that a backfill batch committed while the client's DELETE waited for the batch's lock on
// the source row is then seen and deleted. Errors propagate (the client's statement fails).
constexpr const char* kSchemaV6 = R"SQL(
CREATE OR REPLACE FUNCTION t_sys_mirror_delete(p_target text, p_keys text[], p_rows jsonb)
  RETURNS integer LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  n integer := 0;
  tkeys text;
  rkeys text;
BEGIN
  IF p_rows IS NULL OR jsonb_array_length(p_rows) = 0 THEN
    RETURN 0;
  END IF;
  SELECT string_agg(format('t.%I', k), ', '), string_agg(format('r.%I', k), ', ')
    INTO tkeys, rkeys FROM unnest(p_keys) k;
  EXECUTE format('DELETE FROM %s t USING jsonb_populate_recordset(NULL::%s, $1) r '
                 'WHERE (%s) = (%s)', p_target, p_target, tkeys, rkeys) USING p_rows;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;

INSERT INTO t_sys_schema_version (version, description)
VALUES (6, 't_sys_mirror_delete: the strict mirror delete with its own snapshot')
ON CONFLICT (version) DO NOTHING;
)SQL";

// Version 7: typed mirrors. t_sys_mirror_rows applies a dual write's row images, passed as an
// array of the written table's own row type (no text in between, so no session setting such as
// extra_float_digits, DateStyle, IntervalStyle, TimeZone or bytea_output can change a value on
// its way to the other table, and keys of any type compare exactly). It does nothing unless the
// name the client's statement used resolved to the migrating table (p_resolved = p_written):
// an unqualified name under another search_path, or a same-named table in another schema, is
// not the migration's. p_migration NULL: strict (errors fail the statement); else eventual (the
// mirror runs in a subtransaction and a failure is logged per key). p_old: for UPDATEs that may
// move keys, the rows' images before the UPDATE; mirrored rows whose key moved away are deleted.
constexpr const char* kSchemaV7 = R"SQL(
CREATE OR REPLACE FUNCTION t_sys_row(anyelement) RETURNS anyelement
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT $1';

-- The key of a row image as a JSON object keyed by the mirrored table's key names, printed
-- under fixed settings (for t_sys_dual_write_logs.record_id, read back by the repair pass).
CREATE OR REPLACE FUNCTION t_sys_key_json(p_row anyelement, p_src_keys text[], p_keys text[])
  RETURNS text LANGUAGE sql STABLE
  SET extra_float_digits = 3 SET DateStyle = 'ISO, MDY' SET IntervalStyle = 'postgres'
  SET TimeZone = 'UTC' SET bytea_output = 'hex'
  AS $fn$ SELECT jsonb_object_agg(k, to_jsonb(p_row) -> sk)::text
          FROM unnest(p_keys, p_src_keys) AS x(k, sk) $fn$;

-- Logs an eventual mirror's failure, one row per key, as the owner of t_sys_dual_write_logs (the
-- client's role needs no privilege on it); in the client's transaction.
CREATE OR REPLACE FUNCTION t_sys_mirror_failed(p_migration text, p_operation text,
    p_rows anyarray, p_src_keys text[], p_keys text[], p_error text)
  RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
    INSERT INTO t_sys_dual_write_logs (migration_id, operation, record_id, source_success,
                                       target_success, error_message)
    SELECT p_migration, p_operation, t_sys_key_json(r, p_src_keys, p_keys), true, false, p_error
      FROM unnest(p_rows) r
$fn$;

-- Runs t_sys_mirror_rows' DELETE (rows $1, old rows $2) then INSERT (rows $1), either may be
-- NULL; the row count of the last one.
CREATE OR REPLACE FUNCTION t_sys_mirror_exec(p_del text, p_ins text, p_rows anyarray,
    p_old anyarray)
  RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  n integer := 0;
BEGIN
  IF p_del IS NOT NULL THEN
    EXECUTE p_del USING p_rows, p_old;
    GET DIAGNOSTICS n = ROW_COUNT;
  END IF;
  IF p_ins IS NOT NULL THEN
    EXECUTE p_ins USING p_rows;
    GET DIAGNOSTICS n = ROW_COUNT;
  END IF;
  RETURN n;
END
$fn$;

CREATE OR REPLACE FUNCTION t_sys_mirror_rows(p_migration text, p_operation text,
    p_written regclass, p_resolved regclass, p_target text, p_src_cols text[], p_cols text[],
    p_src_keys text[], p_keys text[], p_delete boolean, p_rows anyarray, p_old anyarray)
  RETURNS integer LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  tkeys text;
  rkeys text;
  okeys text;
  del text;
  ins text;
  sets text;
BEGIN
  IF p_resolved IS DISTINCT FROM p_written OR
     ((p_rows IS NULL OR cardinality(p_rows) = 0) AND (p_old IS NULL OR cardinality(p_old) = 0))
  THEN
    RETURN 0;
  END IF;
  SELECT string_agg(format('t.%I', k), ', '), string_agg(format('r.%I', sk), ', '),
         string_agg(format('o.%I', sk), ', ')
    INTO tkeys, rkeys, okeys FROM unnest(p_keys, p_src_keys) AS x(k, sk);
  IF p_delete THEN
    del := format('DELETE FROM %s t USING unnest($1) r WHERE (%s) = (%s)', p_target, tkeys, rkeys);
  ELSE
    SELECT string_agg(format('%I = EXCLUDED.%I', c, c), ', ') INTO sets
      FROM unnest(p_cols) c WHERE c <> ALL (p_keys);
    ins := format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM unnest($1) r '
                  'ON CONFLICT (%s) DO %s', p_target,
                  (SELECT string_agg(format('%I', c), ', ') FROM unnest(p_cols) c),
                  (SELECT string_agg(format('r.%I', c), ', ') FROM unnest(p_src_cols) c),
                  (SELECT string_agg(format('%I', k), ', ') FROM unnest(p_keys) k),
                  CASE WHEN sets IS NULL THEN 'NOTHING' ELSE 'UPDATE SET ' || sets END);
    IF p_old IS NOT NULL AND cardinality(p_old) > 0 THEN
      -- Keys the UPDATE moved away (old images whose key no row of the new images has).
      del := format('DELETE FROM %s t USING unnest($2) o WHERE (%s) = (%s) AND NOT EXISTS '
                    '(SELECT 1 FROM unnest($1) r WHERE (%s) = (%s))', p_target, tkeys, okeys,
                    rkeys, okeys);
    END IF;
  END IF;
  IF p_migration IS NULL THEN
    RETURN t_sys_mirror_exec(del, ins, p_rows, p_old);
  END IF;
  BEGIN
    RETURN t_sys_mirror_exec(del, ins, p_rows, p_old);
  EXCEPTION WHEN OTHERS THEN
    PERFORM t_sys_mirror_failed(p_migration, p_operation, coalesce(p_rows, p_old), p_src_keys,
                                p_keys, SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')');
    RETURN -1;
  END;
END
$fn$;

INSERT INTO t_sys_schema_version (version, description)
VALUES (7, 't_sys_mirror_rows: typed row images, resolved names')
ON CONFLICT (version) DO NOTHING;
)SQL";

// Version 8: the admin API's audit log: every change request (POST), with who sent it, the
// role of the token it carried (operator, viewer, none) and how it was answered.
constexpr const char* kSchemaV8 = R"SQL(
CREATE TABLE IF NOT EXISTS t_sys_audit_log (
  id bigserial PRIMARY KEY,
  actor text NOT NULL,
  role text NOT NULL,
  method text NOT NULL,
  path text NOT NULL,
  status integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_audit_log_created ON t_sys_audit_log (created_at);

INSERT INTO t_sys_schema_version (version, description)
VALUES (8, 'admin audit log: actor and role of every change request')
ON CONFLICT (version) DO NOTHING;
)SQL";

// The columns pgphase reads and writes, per table (a table made by another tool may lack some).
const std::map<std::string, std::set<std::string>>& required_columns() {
  static const std::map<std::string, std::set<std::string>> kColumns = {
      {"t_sys_schema_version", {"version"}},
      {"t_sys_migrations",
       {"migration_id", "source_table", "target_table", "database", "phase", "consistency_level",
        "dual_write_enabled", "read_from_target", "validation_enabled", "auto_switch_threshold",
        "rollback_enabled", "key_columns", "column_map", "unsupported_write_policy", "version",
        "created_at", "updated_at"}},
      {"t_sys_migration_logs",
       {"id", "migration_id", "action", "actor", "from_state", "to_state", "status", "message",
        "details", "created_at"}},
      {"t_sys_dual_write_logs",
       {"id", "migration_id", "operation", "record_id", "source_success", "target_success",
        "error_message", "latency_ms", "created_at", "repaired_at"}},
      {"t_sys_consistency_checks",
       {"check_id", "migration_id", "source_table", "target_table", "level", "consistency_score",
        "total_records", "differences_count", "report", "created_at"}},
      {"t_sys_read_switch_configs",
       {"config_id", "table_name", "migration_id", "current_source", "target_source", "strategy",
        "switch_percentage", "conditions", "rollback_enabled", "auto_rollback_threshold", "status",
        "version", "created_at", "updated_at"}},
      {"t_sys_read_switch_history",
       {"id", "config_id", "from_percentage", "to_percentage", "actor", "reason", "created_at"}},
      {"t_sys_audit_log", {"id", "actor", "role", "method", "path", "status", "created_at"}},
  };
  return kColumns;
}

int current_version(pg::Connection& c) {
  const pg::Result exists = c.exec("SELECT to_regclass('t_sys_schema_version') IS NOT NULL");
  if (!exists.boolean(0, 0)) return 0;
  const pg::Result v = c.exec("SELECT coalesce(max(version), 0) FROM t_sys_schema_version");
  return static_cast<int>(v.int64(0, 0));
}

void check_columns(pg::Connection& c) {
  // Columns of the t_sys_* tables that the search path resolves to.
  const pg::Result r = c.exec(
      "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
      "WHERE c.oid = ANY (ARRAY[to_regclass('t_sys_schema_version'), "
      "to_regclass('t_sys_migrations'), to_regclass('t_sys_migration_logs'), "
      "to_regclass('t_sys_dual_write_logs'), to_regclass('t_sys_consistency_checks'), "
      "to_regclass('t_sys_read_switch_configs'), to_regclass('t_sys_read_switch_history'), "
      "to_regclass('t_sys_audit_log')]) "
      "AND a.attnum > 0 AND NOT a.attisdropped");
  std::map<std::string, std::set<std::string>> found;
  for (int i = 0; i < r.rows(); ++i) found[r.str(i, 0)].insert(r.str(i, 1));
  std::string problems;
  for (const auto& [table, columns] : required_columns()) {
    const auto it = found.find(table);
    std::vector<std::string> missing;
    for (const auto& col : columns) {
      if (it == found.end() || it->second.count(col) == 0) missing.push_back(col);
    }
    if (missing.empty()) continue;
    if (!problems.empty()) problems += "; ";
    problems += table + " lacks ";
    for (size_t i = 0; i < missing.size(); ++i) problems += (i ? ", " : "") + missing[i];
  }
  if (!problems.empty()) {
    throw SchemaError("the control database's t_sys_* tables are not pgphase's (" + problems +
                      "); they may have been created by another tool: migrate or rename them");
  }
}

}  // namespace

int ensure_schema(pg::Connection& c) {
  pg::Transaction tx(c);
  c.exec("SELECT pg_advisory_xact_lock($1)", {pg::param(kSchemaLockKey)});
  int version = current_version(c);
  if (version > kSchemaVersion) {
    throw SchemaError("the control database has schema version " + std::to_string(version) +
                      ", newer than this pgphase understands (" + std::to_string(kSchemaVersion) +
                      "): upgrade pgphase");
  }
  if (version < kSchemaVersion) {
    if (version < 1) c.exec(kSchemaV1);
    if (version < 2) c.exec(kSchemaV2);
    if (version < 3) c.exec(kSchemaV3);
    if (version < 4) c.exec(kSchemaV4);
    if (version < 5) c.exec(kSchemaV5);
    if (version < 6) c.exec(kSchemaV6);
    if (version < 7) c.exec(kSchemaV7);
    if (version < 8) c.exec(kSchemaV8);
    if (version == 0) {
      log::info("control database ", c.describe(), ": created the t_sys_* tables (schema version ",
                kSchemaVersion, ")");
    } else {
      log::info("control database ", c.describe(),
                ": upgraded the t_sys_* tables from schema "
                "version ",
                version, " to ", kSchemaVersion);
    }
    version = kSchemaVersion;
  }
  check_columns(c);
  tx.commit();
  return version;
}

}  // namespace pgphase::migration
