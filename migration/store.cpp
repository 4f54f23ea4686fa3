#include "migration/store.h"

#include <algorithm>
#include <boost/json.hpp>

#include "migration/sql_text.h"

namespace pgphase::migration::store {
namespace json = boost::json;
namespace {

constexpr const char* kMigrationColumns =
    "migration_id, source_table, target_table, database, phase, consistency_level, "
    "dual_write_enabled, read_from_target, validation_enabled, auto_switch_threshold, "
    "rollback_enabled, key_columns::text, column_map::text, version, " PGPHASE_ISO(
        "created_at") ", " PGPHASE_ISO("updated_at") ", unsupported_write_policy";

constexpr const char* kSwitchColumns =
    "config_id, table_name, migration_id, current_source, target_source, strategy, "
    "switch_percentage, conditions::text, rollback_enabled, auto_rollback_threshold, status, "
    "version, " PGPHASE_ISO("created_at") ", " PGPHASE_ISO("updated_at");

template <class E>
E enum_of(const pg::Result& r, int row, int col, std::optional<E> (*parse)(std::string_view),
          const char* what, const std::string& id) {
  const std::string text = r.str(row, col);
  const std::optional<E> v = parse(text);
  if (!v) throw StoreError(id + ": unknown " + what + " \"" + text + "\" in the control database");
  return *v;
}

json::value json_of(const std::string& text, const char* what, const std::string& id) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) throw StoreError(id + ": malformed " + std::string(what) + " in the control database");
  return v;
}

Migration migration_row(const pg::Result& r, int i) {
  Migration m;
  m.migration_id = r.str(i, 0);
  m.source_table = r.str(i, 1);
  m.target_table = r.str(i, 2);
  m.database = r.str(i, 3);
  m.phase = enum_of(r, i, 4, &parse_phase, "phase", m.migration_id);
  m.consistency_level =
      enum_of(r, i, 5, &parse_consistency_level, "consistency_level", m.migration_id);
  m.dual_write_enabled = r.boolean(i, 6);
  m.read_from_target = r.boolean(i, 7);
  m.validation_enabled = r.boolean(i, 8);
  m.auto_switch_threshold = r.float64(i, 9);
  m.rollback_enabled = r.boolean(i, 10);
  const json::value keys = json_of(r.str(i, 11), "key_columns", m.migration_id);
  if (!keys.is_array()) throw StoreError(m.migration_id + ": key_columns is not an array");
  for (const auto& k : keys.get_array()) {
    if (!k.is_string()) throw StoreError(m.migration_id + ": key_columns holds a non-string");
    m.key_columns.emplace_back(k.get_string());
  }
  const json::value map = json_of(r.str(i, 12), "column_map", m.migration_id);
  if (!map.is_object()) throw StoreError(m.migration_id + ": column_map is not an object");
  for (const auto& kv : map.get_object()) {
    if (!kv.value().is_string()) {
      throw StoreError(m.migration_id + ": column_map holds a non-string");
    }
    m.column_map.emplace(std::string(kv.key()), std::string(kv.value().get_string()));
  }
  m.version = r.int64(i, 13);
  m.created_at = r.str(i, 14);
  m.updated_at = r.str(i, 15);
  if (!r.is_null(i, 16)) {  // NULL: the default for consistency_level
    m.unsupported_write_policy = enum_of(r, i, 16, &parse_unsupported_write_policy,
                                         "unsupported_write_policy", m.migration_id);
  }
  return m;
}

SwitchConfig switch_row(const pg::Result& r, int i) {
  SwitchConfig s;
  s.config_id = r.str(i, 0);
  s.table_name = r.str(i, 1);
  s.migration_id = r.str(i, 2);
  s.current_source = r.str(i, 3);
  s.target_source = r.str(i, 4);
  s.strategy = enum_of(r, i, 5, &parse_switch_strategy, "strategy", s.config_id);
  s.switch_percentage = r.float64(i, 6);
  const json::value conditions = json_of(r.str(i, 7), "conditions", s.config_id);
  if (!conditions.is_object()) throw StoreError(s.config_id + ": conditions is not an object");
  s.conditions_json = json::serialize(conditions);
  s.rollback_enabled = r.boolean(i, 8);
  s.auto_rollback_threshold = r.float64(i, 9);
  s.status = enum_of(r, i, 10, &parse_switch_status, "status", s.config_id);
  s.version = r.int64(i, 11);
  s.created_at = r.str(i, 12);
  s.updated_at = r.str(i, 13);
  return s;
}

std::string key_columns_json(const Migration& m) {
  json::array a;
  for (const auto& k : m.key_columns) a.emplace_back(k);
  return json::serialize(a);
}

std::string column_map_json(const Migration& m) {
  json::object o;
  for (const auto& [from, to] : m.column_map) o[from] = to;
  return json::serialize(o);
}

// $1..$14: the fields of a migration, in kMigrationColumns order (without version/timestamps);
// $14 is unsupported_write_policy (NULL when not set).
std::vector<pg::Param> migration_params(const Migration& m) {
  return {m.migration_id,
          m.source_table,
          m.target_table,
          m.database,
          std::string(to_string(m.phase)),
          std::string(to_string(m.consistency_level)),
          pg::param(m.dual_write_enabled),
          pg::param(m.read_from_target),
          pg::param(m.validation_enabled),
          pg::param(m.auto_switch_threshold),
          pg::param(m.rollback_enabled),
          key_columns_json(m),
          column_map_json(m),
          m.unsupported_write_policy
              ? pg::Param{std::string(to_string(*m.unsupported_write_policy))}
              : pg::Param{}};
}

// $1..$11: the fields of a switch config (without version/timestamps).
std::vector<pg::Param> switch_params(const SwitchConfig& s) {
  return {s.config_id,
          s.table_name,
          s.migration_id,
          s.current_source,
          s.target_source,
          std::string(to_string(s.strategy)),
          pg::param(s.switch_percentage),
          s.conditions_json,
          pg::param(s.rollback_enabled),
          pg::param(s.auto_rollback_threshold),
          std::string(to_string(s.status))};
}

int clamp_limit(int limit) {
  return std::clamp(limit, 1, 1000);
}

}  // namespace

std::vector<Migration> load_migrations(pg::Connection& c) {
  const pg::Result r = c.exec(std::string("SELECT ") + kMigrationColumns +
                              " FROM t_sys_migrations ORDER BY migration_id");
  std::vector<Migration> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(migration_row(r, i));
  return out;
}

std::vector<SwitchConfig> load_switches(pg::Connection& c) {
  const pg::Result r = c.exec(std::string("SELECT ") + kSwitchColumns +
                              " FROM t_sys_read_switch_configs ORDER BY config_id");
  std::vector<SwitchConfig> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(switch_row(r, i));
  return out;
}

std::optional<Migration> find_migration(pg::Connection& c, const std::string& id, bool for_update) {
  const pg::Result r = c.exec(std::string("SELECT ") + kMigrationColumns +
                                  " FROM t_sys_migrations WHERE migration_id = $1" +
                                  (for_update ? " FOR UPDATE" : ""),
                              {id});
  if (r.rows() == 0) return std::nullopt;
  return migration_row(r, 0);
}

std::optional<SwitchConfig> find_switch(pg::Connection& c, const std::string& id, bool for_update) {
  const pg::Result r = c.exec(std::string("SELECT ") + kSwitchColumns +
                                  " FROM t_sys_read_switch_configs WHERE config_id = $1" +
                                  (for_update ? " FOR UPDATE" : ""),
                              {id});
  if (r.rows() == 0) return std::nullopt;
  return switch_row(r, 0);
}

Migration insert_migration(pg::Connection& c, const Migration& m) {
  const pg::Result r = c.exec(
      std::string("INSERT INTO t_sys_migrations (migration_id, source_table, target_table, "
                  "database, phase, consistency_level, dual_write_enabled, read_from_target, "
                  "validation_enabled, auto_switch_threshold, rollback_enabled, key_columns, "
                  "column_map, unsupported_write_policy, version) VALUES ($1, $2, $3, $4, $5, $6, "
                  "$7, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14, 1) RETURNING ") +
          kMigrationColumns,
      migration_params(m));
  return migration_row(r, 0);
}

SwitchConfig insert_switch(pg::Connection& c, const SwitchConfig& s) {
  const pg::Result r = c.exec(
      std::string("INSERT INTO t_sys_read_switch_configs (config_id, table_name, migration_id, "
                  "current_source, target_source, strategy, switch_percentage, conditions, "
                  "rollback_enabled, auto_rollback_threshold, status, version) VALUES ($1, $2, "
                  "$3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, 1) RETURNING ") +
          kSwitchColumns,
      switch_params(s));
  return switch_row(r, 0);
}

std::optional<Migration> update_migration(pg::Connection& c, const Migration& m) {
  std::vector<pg::Param> params = migration_params(m);
  params.push_back(pg::param(m.version));
  const pg::Result r = c.exec(
      std::string("UPDATE t_sys_migrations SET source_table = $2, target_table = $3, database = "
                  "$4, phase = $5, consistency_level = $6, dual_write_enabled = $7, "
                  "read_from_target = $8, validation_enabled = $9, auto_switch_threshold = $10, "
                  "rollback_enabled = $11, key_columns = $12::jsonb, column_map = $13::jsonb, "
                  "unsupported_write_policy = $14, version = version + 1, updated_at = now() "
                  "WHERE migration_id = $1 AND version = $15 RETURNING ") +
          kMigrationColumns,
      params);
  if (r.rows() == 0) return std::nullopt;
  return migration_row(r, 0);
}

std::optional<SwitchConfig> update_switch(pg::Connection& c, const SwitchConfig& s) {
  std::vector<pg::Param> params = switch_params(s);
  params.push_back(pg::param(s.version));
  const pg::Result r = c.exec(
      std::string("UPDATE t_sys_read_switch_configs SET table_name = $2, migration_id = $3, "
                  "current_source = $4, target_source = $5, strategy = $6, switch_percentage = "
                  "$7, conditions = $8::jsonb, rollback_enabled = $9, auto_rollback_threshold = "
                  "$10, status = $11, version = version + 1, updated_at = now() "
                  "WHERE config_id = $1 AND version = $12 RETURNING ") +
          kSwitchColumns,
      params);
  if (r.rows() == 0) return std::nullopt;
  return switch_row(r, 0);
}

void insert_log(pg::Connection& c, const LogRow& row) {
  c.exec(
      "INSERT INTO t_sys_migration_logs (migration_id, action, actor, from_state, to_state, "
      "status, message, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
      {row.migration_id, row.action, row.actor,
       row.from_state.empty() ? pg::Param{} : pg::Param{row.from_state},
       row.to_state.empty() ? pg::Param{} : pg::Param{row.to_state}, row.status, row.message,
       row.details_json.empty() ? pg::Param{} : pg::Param{row.details_json}});
}

void insert_audit(pg::Connection& c, const AuditRow& row) {
  c.exec(
      "INSERT INTO t_sys_audit_log (actor, role, method, path, status) VALUES ($1, $2, $3, $4, "
      "$5::int)",
      {row.actor, row.role, row.method, row.path, std::to_string(row.status)});
}

std::vector<LogEntry> list_logs(pg::Connection& c, const std::string& migration_id, int limit) {
  const pg::Result r = c.exec(
      "SELECT id, migration_id, action, actor, coalesce(from_state, ''), coalesce(to_state, ''), "
      "status, message, " PGPHASE_ISO("created_at") " FROM t_sys_migration_logs "
      "WHERE migration_id = $1 ORDER BY id DESC LIMIT $2",
      {migration_id, pg::param(static_cast<int64_t>(clamp_limit(limit)))});
  std::vector<LogEntry> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(LogEntry{r.int64(i, 0), r.str(i, 1), r.str(i, 2), r.str(i, 3), r.str(i, 4),
                           r.str(i, 5), r.str(i, 6), r.str(i, 7), r.str(i, 8)});
  }
  return out;
}

std::optional<CheckFacts> latest_check(pg::Connection& c, const Migration& m) {
  const pg::Result r = c.exec(
      "SELECT check_id, consistency_score, extract(epoch FROM now() - created_at)::float8 "
      "FROM t_sys_consistency_checks WHERE migration_id = $1 OR (coalesce(migration_id, '') = "
      "'' AND source_table = $2 AND target_table = $3) ORDER BY created_at DESC, check_id DESC "
      "LIMIT 1",
      {m.migration_id, m.source_table, m.target_table});
  if (r.rows() == 0) return std::nullopt;
  return CheckFacts{r.str(0, 0), r.float64(0, 1), r.float64(0, 2)};
}

void insert_history(pg::Connection& c, const std::string& config_id, double from, double to,
                    const std::string& actor, const std::string& reason) {
  c.exec(
      "INSERT INTO t_sys_read_switch_history (config_id, from_percentage, to_percentage, actor, "
      "reason) VALUES ($1, $2, $3, $4, $5)",
      {config_id, pg::param(from), pg::param(to), actor, reason});
}

std::vector<PercentageChange> list_history(pg::Connection& c, const std::string& config_id,
                                           int limit) {
  const pg::Result r = c.exec(
      "SELECT from_percentage, to_percentage, actor, reason, " PGPHASE_ISO(
          "created_at") " FROM t_sys_read_switch_history WHERE config_id = $1 "
                        "ORDER BY id DESC LIMIT $2",
      {config_id, pg::param(static_cast<int64_t>(clamp_limit(limit)))});
  std::vector<PercentageChange> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(
        PercentageChange{r.float64(i, 0), r.float64(i, 1), r.str(i, 2), r.str(i, 3), r.str(i, 4)});
  }
  return out;
}

void notify(pg::Connection& c, const std::string& payload) {
  c.exec("SELECT pg_notify($1, $2)", {std::string(kNotifyChannel), payload});
}

}  // namespace pgphase::migration::store
