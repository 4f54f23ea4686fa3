#include "tests/fuzz/model_backend.h"

#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "protocol/codes.h"
#include "protocol/extended.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "router/sql_tree.h"

namespace pgphase::fuzz {

namespace fe = protocol::fe;
namespace be = protocol::be;

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

std::string row_description(const std::vector<Column>& cols, const std::vector<int16_t>& formats) {
  std::string out = protocol::begin_message(be::kRowDescription);
  protocol::append_u16(out, static_cast<uint16_t>(cols.size()));
  for (size_t i = 0; i < cols.size(); ++i) {
    out += cols[i].name;
    out += '\0';
    protocol::append_u32(out, 0);  // table oid
    protocol::append_u16(out, 0);  // column number
    protocol::append_u32(out, cols[i].type);
    protocol::append_u16(out, cols[i].type == 20 ? 8 : 0xffff);
    protocol::append_u32(out, 0xffffffff);
    const int16_t f = formats.empty() ? 0 : formats.size() == 1 ? formats[0] : formats[i];
    protocol::append_u16(out, static_cast<uint16_t>(f));
  }
  protocol::finish_message(out);
  return out;
}

std::string data_row(const std::vector<Column>& cols, int64_t row,
                     const std::vector<int16_t>& formats) {
  std::string out = protocol::begin_message(be::kDataRow);
  protocol::append_u16(out, static_cast<uint16_t>(cols.size()));
  for (size_t i = 0; i < cols.size(); ++i) {
    const int16_t f = formats.empty() ? 0 : formats.size() == 1 ? formats[0] : formats[i];
    if (f == 1 && cols[i].type == 20) {
      protocol::append_u32(out, 8);
      const auto v = static_cast<uint64_t>(cols[i].fixed.value_or(row));
      protocol::append_u32(out, static_cast<uint32_t>(v >> 32));
      protocol::append_u32(out, static_cast<uint32_t>(v));
      continue;
    }
    const std::string v = column_value(cols[i], row);
    protocol::append_u32(out, static_cast<uint32_t>(v.size()));
    out += v;
  }
  protocol::finish_message(out);
  return out;
}

std::string tag_of(const Statement& st, int64_t rows, char tx) {
  if (st.tx == Statement::Tx::kCommit && tx == 'E') return "ROLLBACK";
  return st.tag_counts ? st.tag + " " + std::to_string(rows) : st.tag;
}

std::string key(std::string_view name) {
  return std::string(name.substr(0, 63));  // NAMEDATALEN - 1
}

// A message without a body.
std::string bare(char type) {
  std::string out = protocol::begin_message(type);
  protocol::finish_message(out);
  return out;
}

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
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

void ModelBackend::receive(uint32_t group, std::string_view data) {
  std::string& types = groups_[group];
  const size_t first = inbox_.size();
  while (!data.empty()) {
    const auto d = protocol::decode_message(
        {reinterpret_cast<const uint8_t*>(data.data()), data.size()}, 1u << 30);
    if (d.status != protocol::DecodeStatus::kComplete) std::abort();  // the harness sends whole
    inbox_.push_back({group, false, d.type,
                      std::string(reinterpret_cast<const char*>(d.body.data()), d.body.size())});
    types += d.type;
    data.remove_prefix(d.total);
  }
  if (inbox_.size() > first) inbox_.back().own = true;
}

std::string ModelBackend::answer() {
  std::string out;
  for (const Message& m : inbox_) process(m, out);
  inbox_.clear();
  return out;
}

std::optional<ModelBackend::Fault> ModelBackend::fault_for(const Message& m) {
  if (m.own) {
    if (const auto it = faults_.find(m.group); it != faults_.end()) return it->second;
    return std::nullopt;
  }
  if (injected_faults_.erase(m.group) > 0) {
    if (!diverged_) diverged_ = m.group;
    return Fault{};
  }
  return std::nullopt;
}

void ModelBackend::known_divergence(const Message& m, std::string_view statement) {
  if (!known_issues_ || !statement.empty() || !m.own) return;
  if (unnamed_stale_ && !diverged_) diverged_ = m.group;
}

void ModelBackend::known_refused(const Message& m, std::string_view statement) {
  if (known_issues_ && m.own && refused_.contains(key(statement)) && !diverged_)
    diverged_ = m.group;
}

void ModelBackend::known_missing(const Message& m, std::string_view statement) {
  if (known_issues_ && m.own && parsed_.contains(key(statement)) && !diverged_) diverged_ = m.group;
}

void ModelBackend::process(const Message& m, std::string& out) {
  if (m.own && m.type == fe::kParse) {
    if (const auto p = protocol::decode_parse(bytes(m.body))) parsed_.insert(key(p->name));
  }
  if (m.type == fe::kSync) return sync(out);
  if (skipping_) {
    // PostgreSQL reads and discards everything up to Sync.
    if (m.type == fe::kParse && m.body.starts_with('\0') && statements_.contains(""))
      unnamed_stale_ = true;
    return;
  }
  switch (m.type) {
    case fe::kQuery:
      return query(m, out);
    case fe::kParse:
      return parse(m, out);
    case fe::kBind:
      return bind(m, out);
    case fe::kDescribe:
      return describe(m, out);
    case fe::kExecute:
      return execute(m, out);
    case fe::kClose:
      return close(m, out);
    default:
      return;  // Flush: the model writes everything at once anyway
  }
}

void ModelBackend::error(std::string_view sqlstate, std::string_view text, bool extended,
                         std::string& out) {
  protocol::ErrorFields f;
  f.severity = "ERROR";
  f.sqlstate = sqlstate;
  f.message = text;
  out += protocol::encode_error_response(f);
  if (tx_ == 'T') tx_ = 'E';
  if (extended) skipping_ = true;
}

void ModelBackend::end_transaction() {
  portals_.clear();
}

void ModelBackend::complete(const Statement& st, int64_t rows, std::string& out) {
  const std::string tag = tag_of(st, rows, tx_);
  switch (st.tx) {
    case Statement::Tx::kBegin:
      if (tx_ == 'I') tx_ = 'T';
      break;
    case Statement::Tx::kCommit:
    case Statement::Tx::kRollback:
      tx_ = 'I';
      end_transaction();
      break;
    case Statement::Tx::kNone:
      break;
  }
  if (!st.set_name.empty()) {
    std::string ps = protocol::begin_message(be::kParameterStatus);
    ps += st.set_name;
    ps += '\0';
    ps += st.set_value;
    ps += '\0';
    protocol::finish_message(ps);
    out += ps;
  }
  out += protocol::encode_command_complete(tag);
}

void ModelBackend::sync(std::string& out) {
  skipping_ = false;
  if (tx_ == 'I') end_transaction();  // the implicit transaction commits
  out += protocol::encode_ready_for_query(tx_);
}

void ModelBackend::query(const Message& m, std::string& out) {
  // A simple Query drops the unnamed statement and portal.
  statements_.erase("");
  portals_.erase("");
  const auto sql = protocol::decode_query(bytes(m.body));
  const Text t = sql ? analyse(*sql, rows_) : Text{};
  if (t.refused && !diverged_) diverged_ = m.group;
  const std::optional<Fault> fault = fault_for(m);
  auto finish = [&] {
    if (tx_ == 'I') end_transaction();
    out += protocol::encode_ready_for_query(tx_);
  };
  if (!t.parsed) {
    error("42601", "syntax error", false, out);
    return finish();
  }
  if (t.statements.empty()) {
    out += bare(be::kEmptyQueryResponse);
    return finish();
  }
  for (size_t i = 0; i < t.statements.size(); ++i) {
    const Statement& st = t.statements[i];
    const bool exits = st.tx == Statement::Tx::kCommit || st.tx == Statement::Tx::kRollback;
    if (tx_ == 'E' && !exits) {
      error("25P02", "current transaction is aborted", false, out);
      return finish();
    }
    if (t.params > 0) {
      error("42P02", "there is no parameter $1", false, out);
      return finish();
    }
    const bool fails = fault && fault->statement == i;
    if (st.kind == Statement::Kind::kRaise) {
      error("0A000", "refused", false, out);
      return finish();
    }
    int64_t rows = st.rows;
    if (st.kind == Statement::Kind::kRows) {
      out += row_description(st.columns, {});
      if (fails) rows = std::min<int64_t>(rows, fault->after_rows);
      for (int64_t r = 0; r < rows; ++r) out += data_row(st.columns, r, {});
    }
    if (fails) {
      error("XX001", "injected", false, out);
      return finish();
    }
    complete(st, rows, out);
  }
  finish();
}

void ModelBackend::parse(const Message& m, std::string& out) {
  const auto p = protocol::decode_parse(bytes(m.body));
  if (!p) return error("08P01", "bad Parse", true, out);
  Prepared prepared;
  prepared.text = analyse(p->query, rows_);
  if (prepared.text.refused && !diverged_) diverged_ = m.group;
  if (p->name.empty()) unnamed_stale_ = false;
  if (fault_for(m)) return error("XX002", "injected", true, out);
  if (!prepared.text.parsed) return error("42601", "syntax error", true, out);
  if (prepared.text.statements.size() > 1)
    return error("42601", "cannot insert multiple commands into a prepared statement", true, out);
  const bool exits = !prepared.text.statements.empty() &&
                     (prepared.text.statements[0].tx == Statement::Tx::kCommit ||
                      prepared.text.statements[0].tx == Statement::Tx::kRollback);
  if (tx_ == 'E' && !exits) return error("25P02", "current transaction is aborted", true, out);
  const std::string k = key(p->name);
  if (!k.empty() && statements_.contains(k)) {
    if (m.own) refused_.insert(k);
    return error("42P05", "prepared statement already exists", true, out);
  }
  const auto& pt = p->param_types;
  for (size_t i = 2; i + 4 <= pt.size(); i += 4) {
    prepared.param_types.push_back(protocol::read_u32(pt.data() + i));
  }
  if (prepared.param_types.size() > static_cast<size_t>(prepared.text.params))
    prepared.text.params = static_cast<int>(prepared.param_types.size());
  statements_[k] = std::move(prepared);
  out += bare(be::kParseComplete);
}

void ModelBackend::bind(const Message& m, std::string& out) {
  const auto b = protocol::decode_bind(bytes(m.body));
  const auto params = protocol::decode_bind_params(bytes(m.body));
  if (!b || !params) return error("08P01", "bad Bind", true, out);
  known_divergence(m, b->statement);
  if (fault_for(m)) return error("XX003", "injected", true, out);
  const auto it = statements_.find(key(b->statement));
  if (it == statements_.end()) {
    known_missing(m, b->statement);
    return error("26000", "no such statement", true, out);
  }
  known_refused(m, b->statement);
  const Text& t = it->second.text;
  const bool exits = !t.statements.empty() && (t.statements[0].tx == Statement::Tx::kCommit ||
                                               t.statements[0].tx == Statement::Tx::kRollback);
  if (tx_ == 'E' && !exits) return error("25P02", "current transaction is aborted", true, out);
  if (params->values.size() != static_cast<size_t>(t.params))
    return error("08P01", "wrong number of parameters", true, out);
  const std::string pk = key(b->portal);
  if (!pk.empty() && portals_.contains(pk)) return error("42P03", "cursor exists", true, out);
  Portal portal;
  portal.empty = t.statements.empty();
  if (!portal.empty) portal.st = t.statements[0];
  portal.raise = !portal.empty && portal.st.kind == Statement::Kind::kRaise;
  const auto* rf = reinterpret_cast<const uint8_t*>(m.body.data()) + b->result_formats_offset;
  for (uint16_t i = 0; i < b->n_result_formats; ++i) {
    portal.formats.push_back(static_cast<int16_t>(protocol::read_u16(rf + 2 + 2 * i)));
  }
  const size_t ncols = portal.st.kind == Statement::Kind::kRows ? portal.st.columns.size() : 0;
  if (ncols > 0 && portal.formats.size() > 1 && portal.formats.size() != ncols)
    return error("08P01", "result formats do not match the columns", true, out);
  if (ncols == 0) portal.formats.clear();
  portals_[pk] = std::move(portal);
  out += bare(be::kBindComplete);
}

void ModelBackend::describe(const Message& m, std::string& out) {
  const auto d = protocol::decode_describe(bytes(m.body));
  if (!d) return error("08P01", "bad Describe", true, out);
  if (d->kind == 'S') known_divergence(m, d->name);
  if (fault_for(m)) return error("XX004", "injected", true, out);
  if (d->kind == 'S') {
    const auto it = statements_.find(key(d->name));
    if (it == statements_.end()) {
      known_missing(m, d->name);
      return error("26000", "no such statement", true, out);
    }
    known_refused(m, d->name);
    const Prepared& p = it->second;
    std::string pd = protocol::begin_message(be::kParameterDescription);
    protocol::append_u16(pd, static_cast<uint16_t>(p.text.params));
    for (int i = 0; i < p.text.params; ++i) {
      const auto k = static_cast<size_t>(i);
      protocol::append_u32(
          pd, k < p.param_types.size() && p.param_types[k] != 0 ? p.param_types[k] : 25);
    }
    protocol::finish_message(pd);
    out += pd;
    if (!p.text.statements.empty() && p.text.statements[0].kind == Statement::Kind::kRows) {
      out += row_description(p.text.statements[0].columns, {});
    } else {
      out += protocol::encode_no_data();
    }
    return;
  }
  const auto it = portals_.find(key(d->name));
  if (it == portals_.end()) return error("34000", "no such portal", true, out);
  const Portal& p = it->second;
  if (!p.empty && p.st.kind == Statement::Kind::kRows) {
    out += row_description(p.st.columns, p.formats);
  } else {
    out += protocol::encode_no_data();
  }
}

void ModelBackend::execute(const Message& m, std::string& out) {
  const auto name = protocol::decode_execute_portal(bytes(m.body));
  if (!name || m.body.size() < 4) return error("08P01", "bad Execute", true, out);
  const uint32_t limit =
      protocol::read_u32(reinterpret_cast<const uint8_t*>(m.body.data()) + m.body.size() - 4);
  const std::optional<Fault> fault = fault_for(m);
  const auto it = portals_.find(key(*name));
  if (it == portals_.end()) return error("34000", "no such portal", true, out);
  Portal& p = it->second;
  const bool exits =
      !p.empty && (p.st.tx == Statement::Tx::kCommit || p.st.tx == Statement::Tx::kRollback);
  if (tx_ == 'E' && !exits) return error("25P02", "current transaction is aborted", true, out);
  if (p.empty) {
    out += bare(be::kEmptyQueryResponse);
    return;
  }
  if (p.raise) return error("0A000", "refused", true, out);
  if (p.st.kind != Statement::Kind::kRows) {
    if (fault) return error("XX005", "injected", true, out);
    const Statement st = p.st;  // complete() may drop the portal (COMMIT)
    const int64_t rows = p.done ? 0 : st.rows;
    p.done = true;
    complete(st, rows, out);
    return;
  }
  const int64_t left = p.done ? 0 : p.st.rows - p.sent;
  int64_t n = limit == 0 ? left : std::min<int64_t>(left, limit);
  if (fault) n = std::min<int64_t>(n, fault->after_rows);
  for (int64_t r = 0; r < n; ++r) out += data_row(p.st.columns, p.sent + r, p.formats);
  p.sent += n;
  if (fault) return error("XX005", "injected", true, out);
  if (limit != 0 && n == static_cast<int64_t>(limit)) {
    out += bare(be::kPortalSuspended);
    return;
  }
  p.done = true;
  complete(p.st, n, out);
}

void ModelBackend::close(const Message& m, std::string& out) {
  const auto d = protocol::decode_describe(bytes(m.body));
  if (!d) return error("08P01", "bad Close", true, out);
  if (fault_for(m)) return error("XX006", "injected", true, out);
  if (d->kind == 'S') {
    statements_.erase(key(d->name));
  } else {
    portals_.erase(key(d->name));
  }
  out += bare(be::kCloseComplete);
}

}  // namespace pgphase::fuzz
