// Helpers of the validator tests: running `pgphase validate` against the shared cluster's control
// database (where the tables live) and reading its JSON report.
#pragma once

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "dw_env.h"

namespace pgphase::val {

using namespace pgphase::dw;

// The conninfo of a database of the shared cluster (default: the control database).
[[nodiscard]] std::string db_url(const std::string& db = kControlDb);

// `pgphase validate --db-url <control db> args... --json`; REQUIREs that it ran (exit 0 or 1)
// and printed JSON. `exit_code` receives the exit code.
json::object validate_json(const std::vector<std::string>& args, int* exit_code = nullptr);

// (difference_type, record_id, field_name or "") of every difference in `report.differences`.
using DiffKey = std::tuple<std::string, std::string, std::string>;
[[nodiscard]] std::set<DiffKey> diff_keys(const json::object& report);

}  // namespace pgphase::val
