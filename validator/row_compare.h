// Internal to validator/: the pieces the levels and the repair share. Rows are fetched by key from
// both sides at once and compared column by column through the per-column hashes of TablePair.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "migration/pg_client.h"
#include "validator/fix_sql.h"
#include "validator/progress.h"
#include "validator/report.h"
#include "validator/table_pair.h"

namespace pgphase::validator::detail {

inline constexpr std::size_t kResolveBatch = 1000;  // keys per full-row fetch

// Session settings that make every value's text the same whatever the server's defaults (and no
// parallel workers: both sides run at once, each on its own core).
void prepare_session(pg::Connection& c);

// One full row of one side: per compared column, its text and its hash (as text).
struct FetchedRow {
  std::vector<Value> text;
  std::vector<std::string> hash;
};
using Rows = std::unordered_map<std::string, FetchedRow>;

// SELECT of the rows whose keys are in $1 (keys_param): key text, then text and hash of every
// compared column; FOR SHARE when `for_share`.
[[nodiscard]] std::string fetch_sql(const TablePair& p, bool source, bool for_share);
[[nodiscard]] Rows rows_of(const pg::Result& r, std::size_t ncols);
// The keys as the JSON array fetch_sql's $1 takes.
[[nodiscard]] std::string keys_param(const std::vector<std::string>& keys);
// ORDER BY expression: the key text in byte order.
[[nodiscard]] std::string key_order(const TablePair& p, bool source);

struct Tally {
  int64_t differing_keys = 0;
  int64_t keys_with_field_mismatch = 0;
};

// Fetches `keys` from both sides (concurrently) and reports every difference to `sink`.
Tally resolve(pg::Connection& source, pg::Connection& target, const TablePair& p,
              const std::vector<std::string>& keys,
              const std::function<void(const Difference&)>& sink);

// The comprehensive level (comprehensive.cpp).
void run_comprehensive(pg::Connection& source, pg::Connection& target, const TablePair& p,
                       int buckets, Report& r, ProgressReporter& progress);

}  // namespace pgphase::validator::detail
