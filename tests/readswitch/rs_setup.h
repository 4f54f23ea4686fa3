// Shared setup of the read-switch tests: a source/target pair whose rows carry a marker telling
// which table answered ("S" in the source, "T" in the target; the tables differ on purpose), a
// migration in read_switch and an active switch config with the given strategy and conditions.
#pragma once

#include <string>

#include "dw_env.h"

namespace pgphase::rs {

using namespace pgphase::dw;

// Tables <name> and t_sys_<name> (id int primary key, side text, v int), `rows` rows each;
// migration <name>_mig in read_switch, switch <name>_sw (strategy, conditions) active at
// `percentage`.
inline void setup_switch(Env& e, const std::string& name, const std::string& strategy,
                         double percentage, const json::object& conditions = {}, int rows = 100) {
  e.direct.exec_ok("CREATE TABLE " + name + " (id int PRIMARY KEY, side text, v int);" +
                   "CREATE TABLE t_sys_" + name + " (id int PRIMARY KEY, side text, v int);" +
                   "INSERT INTO " + name + " SELECT g, 'S', g FROM generate_series(1, " +
                   std::to_string(rows) + ") g;" + "INSERT INTO t_sys_" + name +
                   " SELECT g, 'T', g FROM generate_series(1, " + std::to_string(rows) + ") g");
  register_migration(e.stack.api, name + "_mig", name, "t_sys_" + name);
  advance_to(e.stack.api, name + "_mig", "read_switch");
  json::object cond = conditions;
  register_switch(e.stack.api, name + "_sw", name, name + "_mig",
                  {{"strategy", strategy}, {"conditions", cond}});
  const it::HttpResponse a = e.stack.api.post("/api/v1/switches/" + name + "_sw/activate", "{}");
  INFO(describe(a));
  REQUIRE(a.status == 200);
  if (percentage > 0) set_percentage(e.stack.api, name + "_sw", percentage);
}

// (idx_scan + seq_scan) of a table as PostgreSQL counts them, after the counters are flushed.
inline long scans(const it::PgConn& direct, const std::string& table) {
  direct.exec_ok("SELECT pg_stat_clear_snapshot()");
  return std::stol(direct.scalar(
      "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE "
      "relname = '" +
      table + "'"));
}

}  // namespace pgphase::rs
