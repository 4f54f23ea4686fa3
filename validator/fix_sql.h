// The SQL that makes a target row equal to its source row: the suggested_fix of each difference,
// and the batched statements --repair runs. Values are string literals, which PostgreSQL reads
// with the target column's input function (exact for every type); NULL is NULL.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "validator/table_pair.h"

namespace pgphase::validator {

using Value = std::optional<std::string>;
// One source row: a text value per compared column (TablePair::columns order).
using Row = std::vector<Value>;

[[nodiscard]] std::string literal(const Value& v);

// INSERT ... ON CONFLICT (key) DO UPDATE for `rows` (idempotent).
[[nodiscard]] std::string upsert_sql(const TablePair& p, const std::vector<Row>& rows);
// DELETE of the target rows with these keys (key_parts each).
[[nodiscard]] std::string delete_sql(const TablePair& p,
                                     const std::vector<std::vector<std::string>>& keys);
// UPDATE of one column of one target row.
[[nodiscard]] std::string update_sql(const TablePair& p, std::size_t column, const Value& v,
                                     const std::vector<std::string>& key);

}  // namespace pgphase::validator
