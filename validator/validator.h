// The consistency validator (the manual's DataConsistencyValidator). Levels:
// - basic: row counts, key min/max and per-column NULL counts of each side, and the differences
//   they imply;
// - detailed: a random sample of keys from each side, every sampled key looked up on both sides
//   and compared column by column;
// - comprehensive: every row. Each side computes, inside PostgreSQL and concurrently, a count and
//   a checksum per bucket of keys (buckets by a hash of the key, as pg_comparator folds keys, so
//   that any key type works and no collation is involved); only buckets that differ are read
//   again, as (key, row hash) pairs in byte order of the key, merged, and only the rows that
//   differ are fetched in full and compared column by column.
// Each side is read in one REPEATABLE READ READ ONLY transaction on its own connection; when both
// are in the same database the target imports the source's snapshot, so both see one instant.
#pragma once

#include <functional>
#include <string>

#include "migration/pg_client.h"
#include "validator/progress.h"
#include "validator/report.h"
#include "validator/table_pair.h"

namespace pgphase::validator {

struct Options {
  Level level = Level::kBasic;
  int sample_size = 1000;      // detailed: keys sampled from each side
  int buckets = 0;             // comprehensive: 0 chooses from the table size (~64 rows each)
  bool same_database = false;  // share one snapshot between the two connections
  std::string migration_id;    // recorded in the report
  ProgressFn on_progress;      // called at each stage and as rows are compared (may be empty)
};

// Runs one validation over the two connections (distinct connections, possibly to the same
// database). `source` and `target` must not be in a transaction. Throws std::invalid_argument
// for a pair that cannot be compared, pg::PgError for database failures.
void validate(pg::Connection& source, pg::Connection& target, const PairSpec& spec,
              const Options& options, Report& report);

// Applies the fixes of `report`'s differences (dry_run: only lists the SQL): per batch of keys,
// the current source rows are read FOR SHARE and written to the target by one upsert, keys the
// source no longer has are deleted, then those keys are compared again. Idempotent.
RepairResult repair(pg::Connection& source, pg::Connection& target, const PairSpec& spec,
                    const Report& report, bool dry_run, bool same_database);

// Stores the report (summary_json) in t_sys_consistency_checks of the database `c` is connected
// to; false when that database has no such table.
bool store_report(pg::Connection& c, const Report& report);

// A new check id ("chk_" + time + random).
[[nodiscard]] std::string new_check_id();

}  // namespace pgphase::validator
