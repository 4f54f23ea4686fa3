#include "tests/fuzz/model_sql.h"

#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "router/sql_tree.h"

namespace pgphase::fuzz {

namespace {

using Node = PgQuery__Node;

// A relation in a FROM list (or a CTE, or a derived table): its name, columns and rows.
struct Relation {
  std::string name;
  std::vector<Column> columns;
  int64_t rows = 0;
};
using Ctes = std::vector<Relation>;

struct Result {
  std::vector<Column> columns;
  int64_t rows = 0;
};

const char* str(const Node* n) {
  return n != nullptr && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : "";
}

std::vector<Column> table_columns(std::string_view table) {
  if (table == "users" || table == "t_sys_users") return {{"id"}, {"name"}};
  return {{"id"}, {"uid"}, {"total"}};  // orders, and any other table
}

class Analyser {
 public:
  explicit Analyser(int64_t rows) : rows_(rows) {}

  Result select(const PgQuery__SelectStmt* s, Ctes ctes) {
    if (s == nullptr) return {};
    with(s->with_clause, ctes);
    if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
        s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED) {
      Result l = select(s->larg, ctes);
      l.rows += select(s->rarg, ctes).rows;
      return l;
    }
    if (s->n_values_lists > 0) {
      Result r;
      const Node* first = s->values_lists[0];
      const size_t n = first->node_case == PG_QUERY__NODE__NODE_LIST ? first->list->n_items : 1;
      for (size_t i = 0; i < n; ++i) r.columns.push_back({"column" + std::to_string(i + 1)});
      r.rows = static_cast<int64_t>(s->n_values_lists);
      return r;
    }
    std::vector<Relation> from;
    int64_t rows = 1;
    for (size_t i = 0; i < s->n_from_clause; ++i) {
      add_from(s->from_clause[i], ctes, from);
    }
    for (const Relation& r : from) rows *= r.rows;
    Result out = targets(s->target_list, s->n_target_list, from);
    bool aggregate = false;
    for (Column& c : out.columns) {
      if (c.fixed) {
        aggregate = true;
        c.fixed = rows;
      }
    }
    out.rows = aggregate && s->n_group_clause == 0 ? 1 : rows;
    return out;
  }

  // An INSERT, UPDATE or DELETE: the rows it changes and what it returns.
  Result dml(const Node* n, const Ctes& outer) {
    Ctes ctes = outer;
    const PgQuery__RangeVar* rel = nullptr;
    Node* const* returning = nullptr;
    size_t n_returning = 0;
    Result r;
    r.rows = rows_;
    if (n->node_case == PG_QUERY__NODE__NODE_INSERT_STMT) {
      const auto* s = n->insert_stmt;
      with(s->with_clause, ctes);
      rel = s->relation;
      returning = s->returning_list;
      n_returning = s->n_returning_list;
      if (s->select_stmt != nullptr &&
          s->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
        r.rows = select(s->select_stmt->select_stmt, ctes).rows;
      else
        r.rows = 1;  // DEFAULT VALUES
    } else if (n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT) {
      const auto* s = n->update_stmt;
      with(s->with_clause, ctes);
      rel = s->relation;
      returning = s->returning_list;
      n_returning = s->n_returning_list;
    } else {
      const auto* s = n->delete_stmt;
      with(s->with_clause, ctes);
      rel = s->relation;
      returning = s->returning_list;
      n_returning = s->n_returning_list;
    }
    std::vector<Relation> from;
    if (rel != nullptr) {
      from.push_back({rel->alias != nullptr ? rel->alias->aliasname : rel->relname,
                      table_columns(rel->relname), rows_});
    }
    const int64_t changed = r.rows;
    r = targets(returning, n_returning, from);
    r.rows = changed;
    return r;
  }

 private:
  void with(const PgQuery__WithClause* w, Ctes& ctes) {
    if (w == nullptr) return;
    for (size_t i = 0; i < w->n_ctes; ++i) {
      const Node* c = w->ctes[i];
      if (c->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR) continue;
      const auto* cte = c->common_table_expr;
      const Node* q = cte->ctequery;
      Result r;
      if (q != nullptr && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
        r = select(q->select_stmt, ctes);
      } else if (q != nullptr && (q->node_case == PG_QUERY__NODE__NODE_INSERT_STMT ||
                                  q->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT ||
                                  q->node_case == PG_QUERY__NODE__NODE_DELETE_STMT)) {
        r = dml(q, ctes);
      }
      ctes.push_back({cte->ctename, std::move(r.columns), r.rows});
    }
  }

  void add_from(const Node* n, const Ctes& ctes, std::vector<Relation>& from) {
    switch (n->node_case) {
      case PG_QUERY__NODE__NODE_RANGE_VAR: {
        const auto* rv = n->range_var;
        const std::string alias = rv->alias != nullptr ? rv->alias->aliasname : rv->relname;
        if (rv->schemaname[0] == '\0') {
          for (auto it = ctes.rbegin(); it != ctes.rend(); ++it) {
            if (it->name == rv->relname) {
              from.push_back({alias, it->columns, it->rows});
              return;
            }
          }
        }
        from.push_back({alias, table_columns(rv->relname), rows_});
        return;
      }
      case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
        const auto* rs = n->range_subselect;
        Result r;
        if (rs->subquery != nullptr && rs->subquery->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
          r = select(rs->subquery->select_stmt, ctes);
        from.push_back(
            {rs->alias != nullptr ? rs->alias->aliasname : "", std::move(r.columns), r.rows});
        return;
      }
      case PG_QUERY__NODE__NODE_JOIN_EXPR:
        add_from(n->join_expr->larg, ctes, from);
        add_from(n->join_expr->rarg, ctes, from);
        return;
      default:
        from.push_back({"", {{"?column?"}}, 1});  // a function in FROM
        return;
    }
  }

  // A target or RETURNING list over `from`; an aggregate column gets `fixed` (set by select()).
  static Result targets(Node* const* list, size_t n, const std::vector<Relation>& from) {
    Result r;
    for (size_t i = 0; i < n; ++i) {
      if (list[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET) continue;
      const auto* rt = list[i]->res_target;
      const Node* v = rt->val;
      if (v != nullptr && v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF) {
        const auto* cr = v->column_ref;
        const Node* last = cr->n_fields > 0 ? cr->fields[cr->n_fields - 1] : nullptr;
        if (last != nullptr && last->node_case == PG_QUERY__NODE__NODE_A_STAR) {
          const std::string_view qual = cr->n_fields >= 2 ? str(cr->fields[cr->n_fields - 2]) : "";
          for (const Relation& rel : from) {
            if (qual.empty() || rel.name == qual)
              r.columns.insert(r.columns.end(), rel.columns.begin(), rel.columns.end());
          }
          continue;
        }
        r.columns.push_back({rt->name[0] != '\0' ? rt->name : str(last)});
        continue;
      }
      Column c{rt->name[0] != '\0' ? rt->name : "?column?"};
      if (v != nullptr && v->node_case == PG_QUERY__NODE__NODE_FUNC_CALL) {
        const auto* fc = v->func_call;
        const std::string_view fn = fc->n_funcname > 0 ? str(fc->funcname[fc->n_funcname - 1]) : "";
        if (rt->name[0] == '\0') c.name = fn;
        if (fn == "count") {
          c.type = 20;
          c.fixed = 0;
        }
      }
      r.columns.push_back(std::move(c));
    }
    return r;
  }

  int64_t rows_;
};

Statement statement_of(const Node* n, std::string_view text, int64_t rows) {
  Statement st;
  Analyser a(rows);
  switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT: {
      Result r = a.select(n->select_stmt, {});
      st.kind = Statement::Kind::kRows;
      st.tag = "SELECT";
      st.tag_counts = true;
      st.columns = std::move(r.columns);
      st.rows = r.rows;
      return st;
    }
    case PG_QUERY__NODE__NODE_INSERT_STMT:
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_DELETE_STMT: {
      Result r = a.dml(n, {});
      st.tag = n->node_case == PG_QUERY__NODE__NODE_INSERT_STMT   ? "INSERT 0"
               : n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT ? "UPDATE"
                                                                  : "DELETE";
      st.tag_counts = true;
      st.rows = r.rows;
      st.dml_returning = !r.columns.empty();
      st.kind = st.dml_returning ? Statement::Kind::kRows : Statement::Kind::kCommand;
      st.columns = std::move(r.columns);
      return st;
    }
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT: {
      st.kind = Statement::Kind::kTransaction;
      switch (n->transaction_stmt->kind) {
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
          st.tx = Statement::Tx::kBegin;
          st.tag = "BEGIN";
          break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
          st.tx = Statement::Tx::kCommit;
          st.tag = "COMMIT";
          break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
          st.tx = Statement::Tx::kRollback;
          st.tag = "ROLLBACK";
          break;
        default:
          st.kind = Statement::Kind::kCommand;
          st.tag = "SAVEPOINT";
          break;
      }
      return st;
    }
    case PG_QUERY__NODE__NODE_DO_STMT:
      st.kind = text.find("RAISE EXCEPTION") != std::string_view::npos ? Statement::Kind::kRaise
                                                                       : Statement::Kind::kCommand;
      st.tag = "DO";
      return st;
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
      st.tag = "TRUNCATE TABLE";
      return st;
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT: {
      st.tag = "SET";
      st.set_name = n->variable_set_stmt->name;
      const size_t eq = text.find_first_of("=");
      if (eq != std::string_view::npos) {
        std::string_view v = text.substr(eq + 1);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\'')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\'' || v.back() == ';'))
          v.remove_suffix(1);
        st.set_value = v;
      }
      return st;
    }
    default:
      st.tag = "OK";
      return st;
  }
}

}  // namespace

std::string column_value(const Column& c, int64_t row) {
  if (c.fixed) return std::to_string(*c.fixed);
  return c.name + ":" + std::to_string(row);
}

Text analyse(std::string_view sql, int64_t rows) {
  Text t;
  const auto tree = router::ParseTree::parse(sql);
  if (tree == nullptr) return t;
  t.parsed = true;
  t.refused = sql.starts_with("DO $pgphase$");
  const PgQuery__ParseResult& r = tree->result();
  for (size_t i = 0; i < r.n_stmts; ++i) {
    const PgQuery__RawStmt* raw = r.stmts[i];
    if (raw->stmt == nullptr) continue;
    const auto begin = static_cast<size_t>(std::max(0, raw->stmt_location));
    const std::string_view text = raw->stmt_len > 0
                                      ? sql.substr(begin, static_cast<size_t>(raw->stmt_len))
                                      : sql.substr(begin);
    t.statements.push_back(statement_of(raw->stmt, text, rows));
  }
  int params = 0;
  router::walk(&r.base, [&params](const ProtobufCMessage& m) {
    if (m.descriptor == &pg_query__param_ref__descriptor)
      params = std::max(params, reinterpret_cast<const PgQuery__ParamRef&>(m).number);
    return true;
  });
  t.params = params;
  return t;
}

}  // namespace pgphase::fuzz
