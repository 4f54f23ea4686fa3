// The read half of the planner: a SELECT or EXPLAIN naming a switching source gets a target
// variant (every reference renamed to the target, or to a derived table presenting the target
// with the source's column names, order and types when the shapes differ), or stays on the source
// with the reason it cannot move (refused in completed, where the source is no longer written).
// Also the edits that keep the source's shape in writes redirected to the target (cleanup,
// completed).
#include "router/planner_internal.h"

namespace pgphase::router::detail {
namespace {

// The name the statement refers to a table by: its alias, else its name.
std::string range_name(const PgQuery__RangeVar& rv) {
  if (rv.alias != nullptr && rv.alias->aliasname != nullptr && *rv.alias->aliasname != '\0')
    return rv.alias->aliasname;
  return rv.relname != nullptr ? rv.relname : "";
}

const char* sval(const PgQuery__Node* n) {
  return n != nullptr && n->node_case == PG_QUERY__NODE__NODE_STRING && n->string != nullptr
             ? n->string->sval
             : nullptr;
}

bool is_star(const PgQuery__Node* n) {
  return n != nullptr && n->node_case == PG_QUERY__NODE__NODE_A_STAR;
}

const ReadColumn* read_column(const MigrationRoute& r, std::string_view name) {
  for (const auto& c : r.read_columns) {
    if (c.from == name) return &c;
  }
  return nullptr;
}

// The derived table that presents the target as the source: its columns with the source's
// names, in the source's order, cast to the source's types where they differ (PostgreSQL
// flattens it into the query, so a column that is not cast keeps its indexes).
std::string presented(const MigrationRoute& r, bool only) {
  std::string s = "(SELECT ";
  for (size_t i = 0; i < r.read_columns.size(); ++i) {
    const ReadColumn& c = r.read_columns[i];
    if (i > 0) s += ", ";
    s += quote_ident(c.to);
    if (!c.cast.empty()) s += "::" + c.cast;
    if (!c.cast.empty() || c.to != c.from) s += " AS " + quote_ident(c.from);
  }
  return s + " FROM " + (only ? "ONLY " : "") + quote_table(r.target) + ")";
}

// The names routed tables go by in a statement, each with its route.
using RowNames = std::vector<std::pair<std::string, const MigrationRoute*>>;

// Why a column reference uses a routed table's row type, or "": a whole-row reference (`u`,
// `u.*` inside an expression, as in row_to_json(u) or full_name(u.*)) or functional notation
// (`u.full_name`, a function of the row type). `listed`: references that are whole entries of a
// target list, where `u.*` expands to the columns.
std::string row_type_use(const PgQuery__ColumnRef& c, const RowNames& names,
                         const std::vector<const PgQuery__ColumnRef*>& listed) {
  if (c.n_fields == 0 || c.n_fields > 2) return {};
  const char* first = sval(c.fields[0]);
  if (first == nullptr) return {};
  for (const auto& [name, r] : names) {
    if (name != first) continue;
    if (c.n_fields == 1) {
      if (read_column(*r, name) != nullptr) return {};  // a column of that name comes first
      return "a whole-row reference to " + name + " (a value of " + r->source.table +
             "'s row type)";
    }
    if (is_star(c.fields[1])) {
      if (std::find(listed.begin(), listed.end(), &c) != listed.end()) return {};
      return "a whole-row reference " + name + ".* inside an expression (a value of " +
             r->source.table + "'s row type)";
    }
    const char* field = sval(c.fields[1]);
    if (field != nullptr && !r->read_columns.empty() && read_column(*r, field) == nullptr)
      return "functional notation " + name + "." + field + " (a function of " + r->source.table +
             "'s row type, or no such column)";
  }
  return {};
}

// The column references directly listed in a target list (SELECT's, or RETURNING's).
void add_listed(PgQuery__Node* const* items, size_t n,
                std::vector<const PgQuery__ColumnRef*>& listed) {
  for (size_t i = 0; i < n; ++i) {
    const PgQuery__Node* item = items[i];
    if (item->node_case != PG_QUERY__NODE__NODE_RES_TARGET || item->res_target->val == nullptr)
      continue;
    if (item->res_target->val->node_case == PG_QUERY__NODE__NODE_COLUMN_REF)
      listed.push_back(item->res_target->val->column_ref);
  }
}

}  // namespace

Outcome Planner::refuse_stale_read(int16_t route, const std::string& reason) const {
  const MigrationRoute& r = table_.routes()[static_cast<size_t>(route)];
  Outcome o;
  o.kind = Outcome::kRewrite;
  o.route = route;
  o.text = refusal_statement(
      "pgphase: migration " + r.migration_id + ": " + reason + "; in the completed phase " +
          r.source.table + " is no longer written, so this read is refused rather than answered " +
          "from it",
      "read " + quote_table(r.target) + " by its own name");
  o.transform.refused = true;
  o.transform.route = route;
  return o;
}

Outcome Planner::read_refs(const ProtobufCMessage* root, int node_case, Tokens& t,
                           const PgQuery__RangeVar* written, std::vector<Rename>* edits) {
  std::vector<Rename> refs;
  std::vector<bool> ref_stale;  // per ref: of a completed migration
  int16_t route = -1;
  int16_t stale = -1;  // a routed source of a completed migration: never read it
  bool writes = false;
  bool reads_rows = node_case == PG_QUERY__NODE__NODE_COPY_STMT;
  std::string why_not;
  const auto note = [&](std::string why) {
    if (why_not.empty()) why_not = std::move(why);
  };
  RowNames names;
  std::vector<const PgQuery__ColumnRef*> column_refs;
  std::vector<const PgQuery__ColumnRef*> listed;
  std::vector<std::string> hidden;  // names of routed tables the statement aliases
  walk(root, [&](const ProtobufCMessage& m) {
    if (is(m, pg_query__range_var__descriptor)) {
      const auto& rv = reinterpret_cast<const PgQuery__RangeVar&>(m);
      if (&rv == written) return true;  // renamed by the write itself
      int16_t idx = -1;
      const MigrationRoute* r = route_of(&rv, &idx);
      if (r == nullptr || r->read_mode == ReadMode::kSource) return true;
      if (route < 0) route = idx;
      if (r->phase == migration::Phase::kCompleted && stale < 0) stale = idx;
      names.emplace_back(range_name(rv), r);
      if (range_name(rv) != rv.relname) hidden.emplace_back(rv.relname);
      if (name_uncertain(rv, *r)) note(uncertain_reason(*r, "in a read"));
      if (!r->read_problem.empty()) note(r->read_problem);
      if (r->reshaped && !r->reshape_problem.empty()) note(r->reshape_problem);
      const size_t at = t.at_offset(rv.location);
      if (at == kNone) {
        note("could not locate a table reference");
        return true;
      }
      // ONLY users, ONLY (users), users *: the whole reference is replaced.
      size_t from = at;
      size_t to = t.name_end(at);
      if (!rv.inh) {
        if (from > t.first && t.all[from - 1].kind == PG_QUERY__TOKEN__ONLY) {
          from -= 1;
        } else if (from > t.first + 1 && t.all[from - 1].kind == PG_QUERY__TOKEN__ASCII_40 &&
                   t.all[from - 2].kind == PG_QUERY__TOKEN__ONLY && to < t.last &&
                   t.all[to].kind == PG_QUERY__TOKEN__ASCII_41) {
          from -= 2;
          to += 1;
        } else {
          note("could not locate ONLY");
        }
      } else if (to < t.last && t.all[to].kind == PG_QUERY__TOKEN__ASCII_42) {
        to += 1;  // users *: its children included, as without the star
      }
      const bool alias =
          rv.alias != nullptr && rv.alias->aliasname != nullptr && *rv.alias->aliasname != '\0';
      std::string text =
          r->reshaped ? presented(*r, !rv.inh) : (rv.inh ? "" : "ONLY ") + quote_table(r->target);
      refs.push_back({from, to, text + (alias ? "" : " AS " + quote_ident(rv.relname))});
      ref_stale.push_back(r->phase == migration::Phase::kCompleted);
    } else if (is(m, pg_query__column_ref__descriptor)) {
      const auto& c = reinterpret_cast<const PgQuery__ColumnRef&>(m);
      if (c.n_fields >= 3) note("a column reference qualified with a schema");
      column_refs.push_back(&c);
    } else if (is(m, pg_query__common_table_expr__descriptor)) {
      const auto& cte = reinterpret_cast<const PgQuery__CommonTableExpr&>(m);
      for (const auto& r : table_.routes()) {
        if (r.source.table == cte.ctename)
          note("a WITH query is named like the migrating table " + r.source.table);
      }
    } else if (is(m, pg_query__select_stmt__descriptor)) {
      const auto& s = reinterpret_cast<const PgQuery__SelectStmt&>(m);
      reads_rows = true;
      if (s.n_locking_clause > 0)
        note("a locking read (FOR UPDATE/SHARE) stays with the writes on the source");
      add_listed(s.target_list, s.n_target_list, listed);
    } else if (is(m, pg_query__range_table_sample__descriptor)) {
      note("TABLESAMPLE");  // cannot apply to a derived table
    } else if (is(m, pg_query__insert_stmt__descriptor) ||
               is(m, pg_query__update_stmt__descriptor) ||
               is(m, pg_query__delete_stmt__descriptor) ||
               is(m, pg_query__merge_stmt__descriptor)) {
      writes = true;
    }
    return true;
  });
  if (refs.empty()) return {};
  const bool in_write = writes || edits != nullptr;
  if (in_write) {
    // Reads inside writes stay with the writes while the source is written; in completed it is
    // not, and its name stands for the target there too.
    if (stale < 0) return {};
    size_t kept = 0;
    for (size_t i = 0; i < refs.size(); ++i) {
      if (!ref_stale[i]) continue;
      if (kept != i) refs[kept] = std::move(refs[i]);
      ++kept;
    }
    refs.resize(kept);
  }
  for (const PgQuery__ColumnRef* c : column_refs) {
    note(row_type_use(*c, names, listed));
    // users.id where users is aliased: PostgreSQL's error names the source table.
    const char* first = c->n_fields == 2 ? sval(c->fields[0]) : nullptr;
    if (first != nullptr && std::find(hidden.begin(), hidden.end(), first) != hidden.end())
      note(std::string("a reference to ") + first + " by its name where the statement aliases it");
  }
  Outcome o;
  if (!in_write && node_case != PG_QUERY__NODE__NODE_SELECT_STMT &&
      node_case != PG_QUERY__NODE__NODE_EXPLAIN_STMT)
    note("only SELECT and EXPLAIN are redirected");
  if (!why_not.empty()) {
    if (stale >= 0 && (reads_rows || in_write)) return refuse_stale_read(stale, why_not);
    o.unroutable = route;
    o.reason = std::move(why_not);
    return o;
  }
  if (edits != nullptr) {
    for (Rename& r : refs) edits->push_back(std::move(r));
    return {};
  }
  o.text = renamed_text(t, t.first, t.last, std::move(refs), &o.fragments);
  if (in_write) {
    o.kind = Outcome::kRewrite;  // another table's write, reading completed sources' targets
    return o;
  }
  o.kind = Outcome::kRead;
  o.route = route;
  return o;
}

Outcome Planner::classify_read(const PgQuery__Node& node, Tokens& t) {
  Outcome o = read_refs(reinterpret_cast<const ProtobufCMessage*>(&node), node.node_case, t,
                        nullptr, nullptr);
  if (o.kind == Outcome::kRead && node.node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
    o.transform.ordered = node.select_stmt->n_sort_clause > 0;
  return o;
}

std::string Planner::reshape_write(const ProtobufCMessage& stmt, const MigrationRoute& r,
                                   const Tokens& t, size_t rel_tok,
                                   std::vector<Rename>& edits) const {
  const PgQuery__RangeVar* rel = nullptr;
  const PgQuery__InsertStmt* insert = nullptr;
  PgQuery__Node* const* returning = nullptr;
  size_t n_returning = 0;
  bool other_tables = false;  // UPDATE ... FROM, DELETE ... USING: RETURNING * shows them too
  if (is(stmt, pg_query__insert_stmt__descriptor)) {
    insert = &reinterpret_cast<const PgQuery__InsertStmt&>(stmt);
    rel = insert->relation;
    returning = insert->returning_list;
    n_returning = insert->n_returning_list;
  } else if (is(stmt, pg_query__update_stmt__descriptor)) {
    const auto& s = reinterpret_cast<const PgQuery__UpdateStmt&>(stmt);
    rel = s.relation;
    returning = s.returning_list;
    n_returning = s.n_returning_list;
    other_tables = s.n_from_clause > 0;
  } else {
    const auto& s = reinterpret_cast<const PgQuery__DeleteStmt&>(stmt);
    rel = s.relation;
    returning = s.returning_list;
    n_returning = s.n_returning_list;
    other_tables = s.n_using_clause > 0;
  }
  const std::string name = range_name(*rel);
  const std::string phase = "in the " + std::string(migration::to_string(r.phase)) +
                            " phase the statement writes " + quote_table(r.target);
  // The target's row type is never the source's: row-type uses cannot be redirected.
  std::vector<const PgQuery__ColumnRef*> listed;
  add_listed(returning, n_returning, listed);
  const RowNames names{{name, &r}};
  std::string why;
  walk(&stmt, [&](const ProtobufCMessage& m) {
    if (why.empty() && is(m, pg_query__column_ref__descriptor))
      why = row_type_use(reinterpret_cast<const PgQuery__ColumnRef&>(m), names, listed);
    return why.empty();
  });
  if (!why.empty()) return why + ": " + phase;
  if (!r.reshaped) return {};
  const bool known = !r.read_columns.empty() && r.reshape_problem.empty();
  const std::string unknown =
      (r.reshape_problem.empty() ? "the columns of " + r.source.table + " are not known"
                                 : r.reshape_problem) +
      ", and " + phase + ", whose columns differ from the source's";

  // A positional INSERT fills the source's columns in the source's order: list them.
  if (insert != nullptr && insert->n_cols == 0 && insert->select_stmt != nullptr &&
      insert->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
    const PgQuery__SelectStmt* s = insert->select_stmt->select_stmt;
    while (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE && s->larg != nullptr) s = s->larg;
    size_t n = 0;
    if (s->n_values_lists > 0) {
      const PgQuery__Node* row = s->values_lists[0];
      n = row->node_case == PG_QUERY__NODE__NODE_LIST ? row->list->n_items : 0;
    } else {
      n = s->n_target_list;
      for (size_t i = 0; i < s->n_target_list; ++i) {
        const PgQuery__Node* item = s->target_list[i];
        const PgQuery__Node* v =
            item->node_case == PG_QUERY__NODE__NODE_RES_TARGET ? item->res_target->val : nullptr;
        if (v != nullptr && v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
            v->column_ref->n_fields > 0 &&
            is_star(v->column_ref->fields[v->column_ref->n_fields - 1]))
          n = 0;
      }
    }
    if (n == 0)
      return "a positional INSERT whose SELECT has a * (or no columns): the number of columns it "
             "fills is not known, and " +
             phase + ", whose columns differ from the source's (list the columns)";
    if (!known) return unknown;
    size_t at = t.name_end(rel_tok);
    if (range_name(*rel) != (rel->relname != nullptr ? rel->relname : "")) {
      at += (at < t.last && t.all[at].kind == PG_QUERY__TOKEN__AS) ? 2 : 1;  // the alias
    }
    std::string cols;
    for (size_t i = 0; i < std::min(n, r.read_columns.size()); ++i)
      cols += (i > 0 ? ", " : "") + quote_ident(r.read_columns[i].to);
    edits.push_back({at, at, "(" + cols + ")"});
  }

  // RETURNING: stars expanded to the source's columns; widened columns cast back.
  const std::string ref = quote_ident(name);
  for (size_t i = 0; i < n_returning; ++i) {
    const PgQuery__Node* item = returning[i];
    if (item->node_case != PG_QUERY__NODE__NODE_RES_TARGET) continue;
    const PgQuery__ResTarget& rt = *item->res_target;
    const PgQuery__Node* v = rt.val;
    if (v != nullptr && v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF) {
      const PgQuery__ColumnRef& c = *v->column_ref;
      const char* first = c.n_fields > 0 ? sval(c.fields[0]) : nullptr;
      const bool ours = c.n_fields == 1 || (c.n_fields == 2 && first != nullptr && first == name);
      const size_t at = t.at_offset(c.location);
      if (ours && is_star(c.fields[c.n_fields - 1])) {
        if (c.n_fields == 1 && other_tables)
          return "RETURNING * with other tables in FROM/USING, and " + phase +
                 ", whose columns differ from the source's (list the columns)";
        if (!known) return unknown;
        size_t star = at;
        while (star < t.last && t.all[star].kind != PG_QUERY__TOKEN__ASCII_42) ++star;
        if (at == kNone || star >= t.last) return "pgphase could not locate RETURNING's *";
        std::string cols;
        for (const ReadColumn& col : r.read_columns) {
          cols += (cols.empty() ? "" : ", ") + ref + "." + quote_ident(col.to);
          if (!col.cast.empty()) cols += "::" + col.cast + " AS " + quote_ident(col.from);
        }
        edits.push_back({at, star + 1, cols});
        continue;
      }
      const char* col_name = sval(c.fields[c.n_fields - 1]);
      const ReadColumn* col = ours && col_name != nullptr ? read_column(r, col_name) : nullptr;
      if (col != nullptr && !col->cast.empty()) {
        if (at == kNone) return "pgphase could not locate a RETURNING column";
        const size_t end = t.name_end(at);
        const bool named = rt.name != nullptr && *rt.name != '\0';
        edits.push_back({at, end,
                         std::string(t.text(at, end)) + "::" + col->cast +
                             (named ? "" : " AS " + quote_ident(col->from))});
      }
      continue;
    }
    // An expression over a widened column computes in the target's type.
    walk(reinterpret_cast<const ProtobufCMessage*>(item), [&](const ProtobufCMessage& m) {
      if (!why.empty() || !is(m, pg_query__column_ref__descriptor)) return why.empty();
      const auto& c = reinterpret_cast<const PgQuery__ColumnRef&>(m);
      const char* first = c.n_fields > 0 ? sval(c.fields[0]) : nullptr;
      const char* last = c.n_fields > 0 ? sval(c.fields[c.n_fields - 1]) : nullptr;
      const bool ours = c.n_fields == 1 || (c.n_fields == 2 && first != nullptr && first == name);
      const ReadColumn* col = ours && last != nullptr ? read_column(r, last) : nullptr;
      if (col != nullptr && !col->cast.empty())
        why = "RETURNING computes with column " + col->from + ", whose type differs in " +
              quote_table(r.target) + " (" + col->cast + " in the source)";
      return why.empty();
    });
    if (!why.empty()) return why + ": " + phase + " (return the column itself)";
  }
  return {};
}

}  // namespace pgphase::router::detail
