#include "migration/repair.h"

#include <boost/json.hpp>

#include "migration/op_support.h"
#include "migration/sql_text.h"

namespace pgphase::migration {
namespace {
std::string ident(std::string_view s) {
  return quote_ident(s);
}
std::string table(std::string_view name) {
  return quote_table(name);
}
}  // namespace

std::string repair_sql(const Migration& m, const TableShape& shape) {
  if (!shape.problem.empty()) throw ModelValueError(shape.problem);
  if (shape.key_columns.empty()) throw ModelValueError(m.source_table + " has no key");
  auto mapped = [&](const std::string& c) {
    const auto it = m.column_map.find(c);
    return it == m.column_map.end() ? c : it->second;
  };
  std::string scols;
  std::string tcols;
  std::string sets;
  for (const auto& c : shape.source_columns) {
    const std::string t = mapped(c.name);
    if (t.empty()) continue;
    bool generated = false;
    for (const auto& tc : shape.target_columns)
      generated = generated || (tc.name == t && tc.generated);
    if (generated) continue;
    if (!scols.empty()) {
      scols += ", ";
      tcols += ", ";
    }
    scols += "s." + ident(c.name);
    tcols += ident(t);
    bool key = false;
    for (const auto& k : shape.key_columns) key = key || k == c.name;
    if (!key) sets += (sets.empty() ? "" : ", ") + ident(t) + " = EXCLUDED." + ident(t);
  }
  std::string skeys;
  std::string tkeys;
  std::string kkeys;
  std::string tt_keys;
  for (const auto& k : shape.key_columns) {
    const std::string t = mapped(k);
    if (t.empty()) throw ModelValueError("key column " + k + " is dropped by column_map");
    if (!skeys.empty()) {
      skeys += ", ";
      tkeys += ", ";
      kkeys += ", ";
      tt_keys += ", ";
    }
    skeys += "s." + ident(k);
    tkeys += ident(t);
    kkeys += "k." + ident(t);
    tt_keys += "t." + ident(t);
  }
  const std::string src = table(m.source_table);
  const std::string dst = table(m.target_table);
  return "WITH k AS (SELECT DISTINCT " + kkeys +
         " FROM t_sys_dual_write_logs l, jsonb_populate_record(NULL::" + dst +
         ", l.record_id::jsonb) k WHERE l.migration_id = $1 AND NOT l.target_success AND "
         "l.repaired_at IS NULL AND l.record_id IS NOT NULL), "
         "up AS (INSERT INTO " +
         dst + " (" + tcols + ") OVERRIDING SYSTEM VALUE SELECT " + scols + " FROM " + src +
         " s WHERE (" + skeys + ") IN (SELECT " + tkeys + " FROM k) ON CONFLICT (" + tkeys +
         ") DO " + (sets.empty() ? "NOTHING" : "UPDATE SET " + sets) + " RETURNING 1), " +
         "del AS (DELETE FROM " + dst + " t WHERE (" + tt_keys + ") IN (SELECT " + tkeys +
         " FROM k) AND NOT EXISTS (SELECT 1 FROM " + src + " s WHERE (" + skeys + ") = (" +
         tt_keys + ")) RETURNING 1), " +
         "done AS (UPDATE t_sys_dual_write_logs SET repaired_at = now() WHERE migration_id = $1 "
         "AND NOT target_success AND repaired_at IS NULL RETURNING 1) "
         "SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM up), (SELECT count(*) FROM "
         "del)";
}

namespace ops {

OpResult<RepairReport> repair(pg::Connection& c, const Migration& m, const TableShape* shape,
                              const std::string& actor) {
  if (shape == nullptr) {
    return fail<RepairReport>(Kind::kUnprocessable,
                              "the tables of " + m.migration_id + " are not resolved yet",
                              "repair runs once the migration is past preparation and both "
                              "tables are visible from the control database");
  }
  std::string sql;
  try {
    sql = repair_sql(m, *shape);
  } catch (const ModelError& e) {
    return fail<RepairReport>(Kind::kUnprocessable, e.what());
  }
  pg::Transaction tx(c);
  const pg::Result r = c.exec(sql, {m.migration_id});
  RepairReport report;
  report.migration_id = m.migration_id;
  report.log_rows = std::stoll(r.str(0, 0));
  report.upserted = std::stoll(r.str(0, 1));
  report.deleted = std::stoll(r.str(0, 2));
  boost::json::object details{{"log_rows", report.log_rows},
                              {"rows_copied", report.upserted},
                              {"rows_deleted", report.deleted}};
  store::LogRow row;
  row.migration_id = m.migration_id;
  row.action = "repair";
  row.actor = actor_or_default(actor);
  row.from_state = phase_name(m.phase);
  row.to_state = phase_name(m.phase);
  row.status = "success";
  row.message = "repaired " + std::to_string(report.log_rows) +
                " failed dual writes: " + std::to_string(report.upserted) +
                " rows copied from the source, " + std::to_string(report.deleted) +
                " deleted from the target";
  row.details_json = boost::json::serialize(details);
  store::insert_log(c, row);
  tx.commit();
  return OpResult<RepairReport>::success(std::move(report));
}

}  // namespace ops
}  // namespace pgphase::migration
