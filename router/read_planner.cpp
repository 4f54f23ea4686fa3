// The read half of the planner: a SELECT or EXPLAIN naming a switching source gets a target
// variant (every reference renamed to the target, or to a derived table with the source's column
// names under a renaming column_map), or stays on the source with the reason it cannot move.
#include "router/planner_internal.h"

namespace pgphase::router::detail {

Outcome Planner::classify_read(const PgQuery__Node& node, Tokens& t) {
  std::vector<Rename> refs;
  int16_t route = -1;
  bool writes = false;
  std::string why_not;
  walk(reinterpret_cast<const ProtobufCMessage*>(&node), [&](const ProtobufCMessage& m) {
    if (is(m, pg_query__range_var__descriptor)) {
      const auto& rv = reinterpret_cast<const PgQuery__RangeVar&>(m);
      int16_t idx = -1;
      const MigrationRoute* r = route_of(&rv, &idx);
      if (r == nullptr || r->read_mode == ReadMode::kSource) return true;
      if (route < 0) route = idx;
      if (why_not.empty() && name_uncertain(rv, *r)) why_not = uncertain_reason(*r, "in a read");
      if (why_not.empty() && !r->read_problem.empty()) why_not = r->read_problem;
      // A renaming column_map: the target is read through a derived table that gives its
      // columns the source's names, in the source's order (PostgreSQL flattens it).
      std::string mapped_select;
      if (!r->identity_map) {
        for (const auto& c : r->read_columns) {
          if (c.to.empty()) {
            if (why_not.empty())
              why_not = "column_map drops column " + c.from + " of " + r->source.table;
            break;
          }
          mapped_select += (mapped_select.empty() ? "(SELECT " : ", ") + quote_ident(c.to);
          if (c.to != c.from) mapped_select += " AS " + quote_ident(c.from);
        }
        if (r->read_columns.empty() && why_not.empty())
          why_not = "the columns of " + r->source.table + " are not known";
        if (!rv.inh && why_not.empty()) why_not = "ONLY with a renaming column_map";
        mapped_select += " FROM " + quote_table(r->target) + ")";
      }
      const size_t at = t.at_offset(rv.location);
      if (at == kNone) {
        if (why_not.empty()) why_not = "could not locate a table reference";
        return true;
      }
      const bool alias =
          rv.alias != nullptr && rv.alias->aliasname != nullptr && *rv.alias->aliasname != '\0';
      refs.push_back({at, t.name_end(at),
                      (r->identity_map ? quote_table(r->target) : mapped_select) +
                          (alias ? "" : " AS " + quote_ident(rv.relname))});
    } else if (is(m, pg_query__common_table_expr__descriptor)) {
      const auto& cte = reinterpret_cast<const PgQuery__CommonTableExpr&>(m);
      for (const auto& r : table_.routes()) {
        if (r.source.table == cte.ctename && why_not.empty())
          why_not = "a WITH query is named like the migrating table " + r.source.table;
      }
    } else if (is(m, pg_query__select_stmt__descriptor)) {
      if (reinterpret_cast<const PgQuery__SelectStmt&>(m).n_locking_clause > 0 && why_not.empty())
        why_not = "a locking read (FOR UPDATE/SHARE) stays with the writes on the source";
    } else if (is(m, pg_query__range_table_sample__descriptor)) {
      if (why_not.empty()) why_not = "TABLESAMPLE";  // cannot apply to a derived table
    } else if (is(m, pg_query__column_ref__descriptor)) {
      if (reinterpret_cast<const PgQuery__ColumnRef&>(m).n_fields >= 3 && why_not.empty())
        why_not = "a column reference qualified with a schema";
    } else if (is(m, pg_query__insert_stmt__descriptor) ||
               is(m, pg_query__update_stmt__descriptor) ||
               is(m, pg_query__delete_stmt__descriptor) ||
               is(m, pg_query__merge_stmt__descriptor)) {
      writes = true;
    }
    return true;
  });
  if (refs.empty() || writes) return {};  // reads inside writes stay with the writes
  Outcome o;
  if (node.node_case != PG_QUERY__NODE__NODE_SELECT_STMT &&
      node.node_case != PG_QUERY__NODE__NODE_EXPLAIN_STMT && why_not.empty())
    why_not = "only SELECT and EXPLAIN are redirected";
  if (!why_not.empty()) {
    o.unroutable = route;
    o.reason = std::move(why_not);
    return o;
  }
  o.text = renamed_text(t, t.first, t.last, std::move(refs));
  o.kind = Outcome::kRead;
  o.transform.ordered =
      node.node_case == PG_QUERY__NODE__NODE_SELECT_STMT && node.select_stmt->n_sort_clause > 0;
  o.route = route;
  return o;
}

}  // namespace pgphase::router::detail
