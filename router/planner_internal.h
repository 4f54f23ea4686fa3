// Internal to router/: the planner's pieces shared by planner.cpp (writes, assembly) and
// read_planner.cpp (reads). Not for use outside router/.
#pragma once

#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/dual_write_sql.h"
#include "router/planner.h"
#include "router/query_plan.h"
#include "router/routing_table.h"
#include "router/sql_tree.h"

namespace pgphase::router::detail {

constexpr size_t kNone = static_cast<size_t>(-1);

inline bool is(const ProtobufCMessage& m, const ProtobufCMessageDescriptor& d) {
  return m.descriptor == &d;
}

inline TableName name_of(const PgQuery__RangeVar& rv) {
  return {rv.schemaname != nullptr ? rv.schemaname : "", rv.relname != nullptr ? rv.relname : ""};
}

// The statement text as tokens, with helpers to find clause keywords outside parentheses.
struct Tokens {
  std::string_view sql;
  const std::vector<Token>& all;
  size_t first = 0;  // [first, last) are this statement's tokens
  size_t last = 0;

  [[nodiscard]] std::string_view text(size_t from_tok, size_t to_tok) const {
    if (from_tok >= to_tok) return {};
    return sql.substr(all[from_tok].start, all[to_tok - 1].end - all[from_tok].start);
  }
  // First token of `kind` at parenthesis depth 0 in [from, last).
  [[nodiscard]] size_t find0(size_t from, int32_t kind) const {
    int depth = 0;
    for (size_t i = from; i < last; ++i) {
      const int32_t k = all[i].kind;
      if (k == PG_QUERY__TOKEN__ASCII_40) ++depth;
      if (k == PG_QUERY__TOKEN__ASCII_41) --depth;
      if (depth == 0 && k == kind) return i;
    }
    return kNone;
  }
  [[nodiscard]] size_t at_offset(int32_t offset) const {
    for (size_t i = first; i < last; ++i) {
      if (all[i].start == offset) return i;
    }
    return kNone;
  }
  // The keyword that starts the INSERT/UPDATE/DELETE after a WITH clause: the first one at depth
  // 0 that is not a CTE's name (a name is followed by AS or a column list).
  [[nodiscard]] size_t main_keyword(int32_t kind) const {
    for (size_t i = find0(first, kind); i != kNone; i = find0(i + 1, kind)) {
      const bool names_cte = i + 1 < last && (all[i + 1].kind == PG_QUERY__TOKEN__AS ||
                                              all[i + 1].kind == PG_QUERY__TOKEN__ASCII_40);
      if (!names_cte) return i;
    }
    return kNone;
  }
  // The tokens of a relation name starting at token i: name [. name [. name]].
  [[nodiscard]] size_t name_end(size_t i) const {
    size_t j = i + 1;
    while (j + 1 < last && all[j].kind == PG_QUERY__TOKEN__ASCII_46) j += 2;
    return j;
  }
};

// A run of tokens [from, to) replaced by `text` (a table name redirected to another table).
struct Rename {
  size_t from;
  size_t to;
  std::string text;
};

// A run of the client's text copied unchanged into a rewritten text: {offset in the rewritten
// text, offset in the client's text, length} (bytes), for mapping error positions back.
struct TextFragment {
  size_t at;
  size_t from;
  size_t length;
};

// Tokens [from, to) of `t` with the renamed runs that start inside replaced; the runs copied
// unchanged are added to `fragments` (if given).
inline std::string renamed_text(const Tokens& t, size_t from, size_t to,
                                std::vector<Rename> renames,
                                std::vector<TextFragment>* fragments = nullptr) {
  std::sort(renames.begin(), renames.end(),
            [](const Rename& a, const Rename& b) { return a.from < b.from; });
  std::string out;
  const auto copy = [&](size_t a, size_t b) {
    const std::string_view part = t.text(a, b);
    if (part.empty()) return;
    if (fragments != nullptr)
      fragments->push_back(
          {out.size(), static_cast<size_t>(part.data() - t.sql.data()), part.size()});
    out += part;
  };
  size_t i = from;
  for (const Rename& rn : renames) {
    if (rn.from < i || rn.from >= to) continue;
    copy(i, rn.from);
    if (rn.from > i) out += ' ';
    out += rn.text;
    i = rn.to;
    if (i < to) out += ' ';
  }
  copy(i, to);
  return out;
}

struct Outcome {
  enum Kind { kPass, kRewrite, kRefuse, kRead } kind = kPass;
  std::string text;
  ResultTransform transform;
  std::string reason;  // kRefuse / flagged / unroutable read
  int16_t route = -1;
  int16_t unroutable = -1;  // a read that stays on the source although its route switches
  // Runs of the client's text copied into `text` unchanged: {offset in text, offset in the
  // client's text, length}, for mapping error positions back.
  using Fragment = TextFragment;
  std::vector<Fragment> fragments;
};

// One statement of the text: its bytes and what becomes of it.
struct Piece {
  size_t begin;
  size_t end;
  Outcome outcome;
};

class Planner {
 public:
  Planner(const RoutingTable& table, std::string_view sql, const PlanContext& context,
          PlanTexts* texts = nullptr)
      : table_(table), sql_(sql), context_(context), texts_(texts) {}

  QueryPlan run();

 private:
  const MigrationRoute* route_of(const PgQuery__RangeVar* rv, int16_t* index) const {
    if (rv == nullptr) return nullptr;
    const MigrationRoute* r = table_.find_source(name_of(*rv));
    if (r != nullptr && index != nullptr) *index = static_cast<int16_t>(r - table_.routes().data());
    return r;
  }
  // An unqualified reference whose resolution pgphase cannot be sure of: another schema has a
  // relation of that name, the session created one, or several migrations' sources share it.
  [[nodiscard]] bool name_uncertain(const PgQuery__RangeVar& rv, const MigrationRoute& r) const {
    if (rv.schemaname != nullptr && *rv.schemaname != '\0') return false;
    return shared_name(rv) || !r.homonyms.empty() || context_.names_shadowed;
  }
  // Sources of several migrations have this unqualified name.
  [[nodiscard]] bool shared_name(const PgQuery__RangeVar& rv) const {
    if (rv.schemaname != nullptr && *rv.schemaname != '\0') return false;
    bool shared = false;
    (void)table_.find_source(name_of(rv), &shared);
    return shared;
  }
  [[nodiscard]] static std::string uncertain_reason(const MigrationRoute& r,
                                                    const std::string& what) {
    return "the unqualified name " + r.source.table + " " + what +
           ": under the session's search_path it may name another table (" +
           (r.homonyms.empty()
                ? std::string("one this session created, or another migration's source")
                : "schemas with a relation of that name: " + r.homonyms) +
           "); schema-qualify it";
  }
  // A temporary relation (first in every search_path) or one in another schema created (or
  // moved there) with a migrating source's name: unqualified names of this session are uncertain
  // from then on (QueryPlan::shadows_source). Other sessions see a homonym once the shapes are
  // read again (one reload interval); until then the guard of the inline mirror covers them.
  void note_created(const PgQuery__RangeVar* rv) {
    if (rv == nullptr || rv->relname == nullptr) return;
    const bool temp = rv->relpersistence != nullptr && std::string_view(rv->relpersistence) == "t";
    const bool qualified = rv->schemaname != nullptr && *rv->schemaname != '\0';
    for (const auto& r : table_.routes()) {
      if (r.source.table == rv->relname &&
          (temp || (qualified && r.source.schema != rv->schemaname)))
        shadows_ = true;
    }
  }
  // Writes (INSERT/UPDATE/DELETE/MERGE/COPY FROM) below `root` that target a migrating table.
  int count_writes(const ProtobufCMessage* root, int16_t* route) const;
  Outcome classify(const PgQuery__RawStmt& raw, Tokens& t);
  Outcome unsupported(int16_t route, std::string reason) const;
  Outcome rewrite_dml(const ProtobufCMessage& stmt, int16_t route_index, Tokens& t);
  Outcome rewrite_truncate(const PgQuery__TruncateStmt& s, Tokens& t);
  Outcome classify_read(const PgQuery__Node& node, Tokens& t);
  // The statement below `root` (of kind `node_case`) as a read: its target variant, or why it
  // stays on the source. Inside a write (the statement writes, or `edits` is given: the write
  // to `written` of a completed migration) only references to completed migrations' sources
  // move, as renames appended to `edits` (or a kRewrite outcome); a reference the source is
  // still written for stays with the write.
  Outcome read_refs(const ProtobufCMessage* root, int node_case, Tokens& t,
                    const PgQuery__RangeVar* written, std::vector<Rename>* edits);
  // A read that cannot be redirected in the completed phase (the source is no longer written):
  // refused with the reason rather than answered from the stale source.
  Outcome refuse_stale_read(int16_t route, const std::string& reason) const;
  // cleanup and completed, where a statement naming the source writes the target: the edits
  // that make the client see the source's shape (an explicit column list for a positional
  // INSERT; RETURNING's stars expanded to the source's columns, widened columns cast back to
  // the source's type), added to `edits`. Returns why it cannot be made exact ("" when it can).
  [[nodiscard]] std::string reshape_write(const ProtobufCMessage& stmt, const MigrationRoute& r,
                                          const Tokens& t, size_t rel_tok,
                                          std::vector<Rename>& edits) const;
  const std::vector<Token>& tokens() {
    if (!tokens_) tokens_ = scan_tokens(sql_);
    return *tokens_;
  }

  // The byte offset from which libpg_query's reading of the text may differ from the server's
  // under the session's settings (PlanContext), or kNone.
  [[nodiscard]] size_t lexing_uncertain_from();
  // Where the session's settings make the text read differently from how libpg_query reads it:
  // writes from there on are refused, reads stay on the source unchanged.
  void guard_lexing(std::vector<Piece>& pieces);
  [[nodiscard]] std::string lexing_reason() const;
  // A text libpg_query cannot parse under an uncertain lexing context: refused when it may write
  // a migrating table, else passed.
  QueryPlan refuse_unparsed();
  // The route of the first migrating table named in a text that has a write keyword, or -1.
  [[nodiscard]] int16_t may_write(std::string_view text) const;
  // The plan of `pieces` (the outcome of each statement): transforms, flags, text variants.
  QueryPlan assemble_plan(std::vector<Piece>& pieces);

  const RoutingTable& table_;
  std::string_view sql_;
  PlanContext context_;
  PlanTexts* texts_;  // filled when given
  bool shadows_ = false;
  std::optional<std::vector<Token>> tokens_;
};

}  // namespace pgphase::router::detail
