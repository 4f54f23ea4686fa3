// --repair: re-reads the source rows of the differing keys FOR SHARE and writes them to the target
// (validator.h).
#include <set>

#include "validator/row_compare.h"
#include "validator/validator.h"

namespace pgphase::validator {

using namespace detail;

namespace {

constexpr std::size_t kRepairBatch = 500;  // keys per repair transaction

}  // namespace

RepairResult repair(pg::Connection& source, pg::Connection& target, const PairSpec& spec,
                    const Report& report, bool dry_run, bool same_database) {
  RepairResult out;
  out.dry_run = dry_run;
  std::set<std::string> keys;
  report.differences.for_each([&](const Difference& d) {
    keys.insert(d.record_id);
    if (dry_run && out.statements.size() < DifferenceSpool::kShownDifferences)
      out.statements.push_back(d.suggested_fix);
  });
  out.keys = static_cast<int64_t>(keys.size());
  if (dry_run || keys.empty()) return out;
  prepare_session(source);
  prepare_session(target);
  const TablePair p = describe_pair(source, target, spec);
  // Same database: one connection, one transaction (the source rows stay locked until the target
  // has them).
  pg::Connection& writer = same_database ? source : target;
  std::vector<std::string> batch;
  auto apply = [&] {
    if (batch.empty()) return;
    source.exec("BEGIN");
    if (&writer != &source) writer.exec("BEGIN");
    try {
      const pg::Result sr = source.exec(fetch_sql(p, true, true), {keys_param(batch)});
      const Rows rows = rows_of(sr, p.columns.size());
      std::vector<Row> present;
      std::vector<std::string> absent;
      for (const auto& k : batch) {
        const auto it = rows.find(k);
        if (it == rows.end())
          absent.push_back(k);
        else
          present.push_back(it->second.text);
      }
      if (!present.empty()) out.upserted += writer.exec(upsert_sql(p, present)).affected();
      if (!absent.empty())
        out.deleted += writer
                           .exec("DELETE FROM " + p.target_sql + " a WHERE " + p.keys_filter(false),
                                 {keys_param(absent)})
                           .affected();
      if (&writer != &source) writer.exec("COMMIT");
      source.exec("COMMIT");
    } catch (...) {
      if (&writer != &source && writer.ok()) writer.exec("ROLLBACK");
      if (source.ok()) source.exec("ROLLBACK");
      throw;
    }
    batch.clear();
  };
  for (const auto& k : keys) {
    batch.push_back(k);
    if (batch.size() >= kRepairBatch) apply();
  }
  apply();
  // Re-check the repaired keys.
  std::vector<std::string> all(keys.begin(), keys.end());
  for (std::size_t i = 0; i < all.size(); i += kResolveBatch) {
    const std::vector<std::string> part(
        all.begin() + static_cast<std::ptrdiff_t>(i),
        all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), i + kResolveBatch)));
    resolve(source, target, p, part, [&](const Difference&) { ++out.remaining; });
  }
  return out;
}

}  // namespace pgphase::validator
