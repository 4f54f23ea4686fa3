#include "tests/fuzz/model_backend.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "protocol/codes.h"
#include "protocol/extended.h"
#include "protocol/messages.h"
#include "protocol/wire.h"

namespace pgphase::fuzz {

namespace fe = protocol::fe;
namespace be = protocol::be;

namespace {

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

void ModelBackend::receive(uint32_t group, std::string_view data, std::string_view client_request) {
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
  if (inbox_.size() == first) return;
  Message& own = inbox_.back();
  own.own = true;
  if (client_request.empty()) return;
  const auto c = protocol::decode_message(
      {reinterpret_cast<const uint8_t*>(client_request.data()), client_request.size()}, 1u << 30);
  if (c.status != protocol::DecodeStatus::kComplete) return;
  if (c.type == fe::kBind) {
    if (const auto b = protocol::decode_bind(c.body)) own.client_statement = b->statement;
  } else if (c.type == fe::kDescribe) {
    if (const auto d = protocol::decode_describe(c.body); d && d->kind == 'S')
      own.client_statement = d->name;
  }
}

std::string ModelBackend::answer() {
  ++round_;
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

void ModelBackend::known_refused(const Message& m, std::string_view statement) {
  if (known_issues_ && m.own && refused_.contains(key(statement)) && !diverged_)
    diverged_ = m.group;
}

void ModelBackend::known_unsettled(const Message& m, std::string_view statement) {
  if (!known_issues_ || !m.own || diverged_) return;
  if (const auto it = unsettled_.find(key(statement));
      it != unsettled_.end() && it->second == round_)
    diverged_ = m.group;
}

void ModelBackend::known_missing(const Message& m, std::string_view statement) {
  if (known_issues_ && m.own && parsed_.contains(key(statement)) && !diverged_) diverged_ = m.group;
}

void ModelBackend::process(const Message& m, std::string& out) {
  // The statement a client's own Parse or Close changes, if it does not (failed or skipped).
  std::optional<std::string> changes;
  if (m.own && m.type == fe::kParse) {
    if (const auto p = protocol::decode_parse(bytes(m.body))) {
      parsed_.insert(key(p->name));
      changes = key(p->name);
    }
  } else if (m.own && m.type == fe::kClose) {
    if (const auto d = protocol::decode_describe(bytes(m.body)); d && d->kind == 'S')
      changes = key(d->name);
  }
  if (m.type == fe::kSync) return sync(out);
  if (skipping_) {
    // PostgreSQL reads and discards everything up to Sync. (A simple Query would have dropped
    // the unnamed statement: pgphase's registry did so when it was sent.)
    if (m.own && m.type == fe::kQuery) changes = "";
    if (changes) unsettled_[*changes] = round_;
    return;
  }
  if (m.own && m.type == fe::kQuery) unsettled_.erase("");  // it drops it in both
  if (changes) {
    (m.type == fe::kParse ? parse(m, out) : close(m, out));
    if (skipping_) {
      unsettled_[*changes] = round_;
    } else {
      unsettled_.erase(*changes);  // the server has what the client meant again
    }
    return;
  }
  if (!m.own) {
    // A request of pgphase's that fails before the client's own request of the group:
    // - when a fault was to fail the client's request, the fault is never reached and the
    //   reference's answer is the fault's: not pgphase's doing, the runs may differ from here;
    // - a known divergence: its re-preparation of a statement (Close, Parse) in a failed
    //   transaction, where PostgreSQL refuses the Parse (25P02). The client's request (a Bind,
    //   which fails there anyway unless it ends the transaction, or a Describe) is skipped, and
    //   the statement is prepared again on its first use after the transaction ends.
    const bool failed_transaction = tx_ == 'E';
    dispatch(m, out);
    if (skipping_ && !diverged_ &&
        (faults_.contains(m.group) || (known_issues_ && failed_transaction)))
      diverged_ = m.group;
    return;
  }
  dispatch(m, out);
}

void ModelBackend::dispatch(const Message& m, std::string& out) {
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
  // PostgreSQL drops the unnamed statement before it parses the new one (exec_parse_message), so
  // a failed Parse of it leaves none.
  if (p->name.empty()) statements_.erase("");
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
  const std::string_view named = m.client_statement.empty() ? b->statement : m.client_statement;
  known_unsettled(m, named);
  if (fault_for(m)) return error("XX003", "injected", true, out);
  const auto it = statements_.find(key(b->statement));
  if (it == statements_.end()) {
    known_missing(m, named);
    return error("26000", "no such statement", true, out);
  }
  known_refused(m, named);
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
  if (fault_for(m)) return error("XX004", "injected", true, out);
  if (d->kind == 'S') {
    const auto it = statements_.find(key(d->name));
    if (it == statements_.end()) {
      known_missing(m, d->name);
      return error("26000", "no such statement", true, out);
    }
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
