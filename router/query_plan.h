// What the router decided for one query text (a simple Query string, possibly several
// statements, or the text of one Parse): the text to send instead, and how to turn the server's
// answer to each rewritten statement back into what PostgreSQL would have answered to the
// client's own statement.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pgphase::router {

enum class TagKind : uint8_t { kInsert, kUpdate, kDelete };

struct ResultTransform {
  enum class Kind : uint8_t {
    kNone,          // relay as is
    kCountToTag,    // rewritten as SELECT count(*): drop RowDescription (Describe: NoData) and the
                    // one DataRow, answer CommandComplete "<tag> <count>"
    kStripColumns,  // rewritten as SELECT *: drop the last `strip` columns of RowDescription and
                    // of every DataRow, answer CommandComplete "<tag> <rows>"
  };
  Kind kind = Kind::kNone;
  // The statement was replaced by one that raises feature_not_supported (it takes no
  // parameters: a Bind of it must bind none).
  bool refused = false;
  TagKind tag = TagKind::kInsert;
  uint16_t strip = 0;
  // A read of a migrating source that may go to the target: its side is the one chosen for the
  // whole text (QueryPlan::read_route's switch).
  bool read = false;
  bool ordered = false;  // a read with a top-level ORDER BY (shadow comparisons keep order)
  // Dual-write bookkeeping (metrics): which migration this statement mirrors, and its operation.
  int16_t route = -1;  // index into RoutingTable::routes(), -1 none
};

// A character (not byte) offset mapping from the rewritten text back to the client's text, for
// the position field of errors: each segment is a run copied unchanged.
struct TextSegment {
  uint32_t rewritten_start = 0;  // 0-based character offsets
  uint32_t original_start = 0;
  uint32_t length = 0;
};

struct QueryPlan {
  bool rewritten = false;
  std::string sql;                          // the text to send when rewritten
  std::vector<ResultTransform> statements;  // one per statement of the text (when rewritten)
  std::vector<TextSegment> segments;        // for error positions
  // Statements passed through although they write a migrating table in a way pgphase cannot
  // mirror (unsupported_write_policy allow_and_flag): one line each, for the migration log.
  std::vector<std::string> flagged;
  std::vector<int16_t> flagged_routes;
  // Migration ids, indexed by ResultTransform::route and flagged_routes.
  std::vector<std::string> route_ids;
  // Reads: when read_route >= 0, sql_target is the text to send when the reads go to the target
  // (every routable reference to a source renamed to its target); `sql` (or the client's text
  // when not rewritten) sends them to the source. One decision per text.
  int16_t read_route = -1;
  std::string sql_target;
  std::vector<TextSegment> segments_target;
  // Reads naming a source in read_switch or later that pgphase cannot redirect with certainty
  // (they stay on the source): the route and the reason, for the `unroutable` counters.
  std::vector<int16_t> unroutable_routes;
  std::vector<std::string> unroutable_reasons;
  // The text creates, renames or moves a relation to a migrating source's name in another
  // schema (or a temporary one): the session's unqualified names are uncertain from then on.
  bool shadows_source = false;
  [[nodiscard]] bool routes_reads() const noexcept { return read_route >= 0; }
  [[nodiscard]] bool matters() const noexcept {
    return rewritten || routes_reads() || !flagged.empty() || !unroutable_routes.empty() ||
           shadows_source;
  }
  [[nodiscard]] std::optional<uint32_t> original_position(uint32_t rewritten_1based,
                                                          bool target = false) const;
  [[nodiscard]] size_t bytes() const noexcept {
    return sizeof(QueryPlan) + sql.capacity() + sql_target.capacity() +
           statements.capacity() * sizeof(ResultTransform) +
           (segments.capacity() + segments_target.capacity()) * sizeof(TextSegment);
  }
};

}  // namespace pgphase::router
