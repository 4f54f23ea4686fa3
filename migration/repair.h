// The repair pass of eventual dual writes: the keys whose target write failed (logged by
// t_sys_mirror_apply in t_sys_dual_write_logs) are copied again from the source, or deleted from
// the target when the source no longer has them, and their log rows are marked repaired, all in
// one statement (one snapshot, idempotent). Internal to migration/.
#pragma once

#include <string>

#include "migration/control_plane.h"
#include "migration/pg_client.h"
#include "migration/snapshot.h"

namespace pgphase::migration {

// The statement ($1 = migration id) returning one row: log rows marked, rows copied, rows deleted.
// Throws ModelValueError when the shape cannot support it (problem set, no key).
[[nodiscard]] std::string repair_sql(const Migration& m, const TableShape& shape);

namespace ops {
OpResult<RepairReport> repair(pg::Connection& c, const Migration& m, const TableShape* shape,
                              const std::string& actor);
}  // namespace ops

}  // namespace pgphase::migration
