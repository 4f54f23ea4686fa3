// The model database of the interception fuzz target (model_backend.h): what a SQL text does
// when PostgreSQL runs it, read with libpg_query (through router/sql_tree.h), over a database in
// which every table has R rows and every write changes R rows (or as many as its VALUES lists).
// The same client statement gives the same columns, rows and tags whether it arrives as the
// client wrote it or as pgphase rewrote it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgphase::fuzz {

// A result column as the model describes it.
struct Column {
  std::string name;
  uint32_t type = 25;            // text; 20 (int8) for count(*)
  std::optional<int64_t> fixed;  // count(*): every row holds this value
  [[nodiscard]] bool operator==(const Column&) const = default;
};

// What one statement does when executed.
struct Statement {
  enum class Kind : uint8_t { kRows, kCommand, kTransaction, kRaise };
  Kind kind = Kind::kCommand;
  std::string tag;          // "SELECT", "INSERT 0", "UPDATE", "DELETE", "BEGIN", "SET", ...
  bool tag_counts = false;  // the tag ends in a row count
  std::vector<Column> columns;
  int64_t rows = 0;  // rows it returns (kRows) or changes (kCommand with a count)
  bool dml_returning = false;
  enum class Tx : uint8_t { kNone, kBegin, kCommit, kRollback } tx = Tx::kNone;
  std::string set_name, set_value;  // SET name = value (reported with ParameterStatus)
};

// What a text (a simple Query's string, or a Parse's) holds.
struct Text {
  bool parsed = false;  // false: a syntax error
  std::vector<Statement> statements;
  int params = 0;        // highest $n
  bool refused = false;  // pgphase's DO $pgphase$ ... RAISE text
};

// Reads `sql` as the model database sees it (every table has `rows` rows).
[[nodiscard]] Text analyse(std::string_view sql, int64_t rows);

// One row's value of `c` at row `row` (0-based) in text form.
[[nodiscard]] std::string column_value(const Column& c, int64_t row);

}  // namespace pgphase::fuzz
