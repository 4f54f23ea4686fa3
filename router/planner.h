// The router's decision for one query text: parse it (only when the pre-filter says it may name
// a migrating table), find every write to a migrating source table, and rewrite each one so that
// the same statement also mirrors the rows PostgreSQL stored (see dual_write_sql.h), or refuse
// it when it cannot be mirrored correctly (unsupported_write_policy).
#pragma once

#include <string_view>
#include <vector>

#include "router/query_plan.h"
#include "router/routing_table.h"
#include "router/sql_tree.h"
#include "router/text_template.h"

namespace pgphase::router {

// What of the session the plan depends on. The default (all false) is what plans are cached
// for; any other context is planned afresh.
struct PlanContext {
  // standard_conforming_strings is off, or may be changing (a statement in flight may set it):
  // a '...' literal with a backslash may not end where libpg_query (always on) says it does.
  bool literals_uncertain = false;
  // client_encoding is one where a multibyte character may end in a backslash byte (SJIS, BIG5,
  // GBK, UHC, GB18030, JOHAB, SHIFT_JIS_2004), or may be changing.
  bool backslash_bytes_uncertain = false;
  // The session created a relation named like a migrating source (e.g. a temporary table, which
  // comes first in every search_path): its unqualified names are uncertain.
  bool names_shadowed = false;
  [[nodiscard]] bool is_default() const noexcept {
    return !literals_uncertain && !backslash_bytes_uncertain && !names_shadowed;
  }
};

// What a plan's texts were built from, for the shape cache (plan_lookup.h): each text variant
// as a template, libpg_query's tokens of the client's text, and whether libpg_query parsed it.
struct PlanTexts {
  TextTemplate sql;
  TextTemplate sql_target;
  std::vector<Token> tokens;  // when the planner scanned them
  bool scanned = false;
  bool parsed = false;
};

[[nodiscard]] QueryPlan plan_query(const RoutingTable& table, std::string_view sql,
                                   const PlanContext& context = {}, PlanTexts* texts = nullptr);

}  // namespace pgphase::router
