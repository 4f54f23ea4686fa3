#include "proxy/rewriter.h"

#include <chrono>
#include <string>

#include "protocol/codes.h"
#include "protocol/extended.h"
#include "protocol/wire.h"
#include "router/planner.h"

namespace pgphase::proxy {

namespace fe = protocol::fe;
namespace be = protocol::be;
using protocol::Disposition;
using router::ResultTransform;

namespace {

void append_raw(std::string& out, char type, std::span<const uint8_t> body) {
  out.push_back(type);
  protocol::append_u32(out, static_cast<uint32_t>(body.size() + 4));
  out.append(reinterpret_cast<const char*>(body.data()), body.size());
}

// Bind of a refused statement: no parameters, no formats (it takes none).
std::string bare_bind(std::string_view portal, std::string_view statement) {
  std::string out = protocol::begin_message(fe::kBind);
  out.append(portal);
  out.push_back('\0');
  out.append(statement);
  out.push_back('\0');
  protocol::append_u16(out, 0);
  protocol::append_u16(out, 0);
  protocol::append_u16(out, 0);
  protocol::finish_message(out);
  return out;
}

std::string close_statement(std::string_view name) {
  std::string out = protocol::begin_message(fe::kClose);
  out.push_back('S');
  out.append(name);
  out.push_back('\0');
  protocol::finish_message(out);
  return out;
}

std::string tag_text(router::TagKind k, int64_t rows) {
  switch (k) {
    case router::TagKind::kInsert:
      return "INSERT 0 " + std::to_string(rows);
    case router::TagKind::kUpdate:
      return "UPDATE " + std::to_string(rows);
    case router::TagKind::kDelete:
      return "DELETE " + std::to_string(rows);
  }
  return {};
}

// The row count of a "SELECT n" command tag.
int64_t tag_rows(std::span<const uint8_t> body) {
  std::string_view tag(reinterpret_cast<const char*>(body.data()), body.size());
  if (const auto nul = tag.find('\0'); nul != std::string_view::npos) tag = tag.substr(0, nul);
  const auto sp = tag.rfind(' ');
  int64_t n = 0;
  for (size_t i = sp == std::string_view::npos ? tag.size() : sp + 1; i < tag.size(); ++i) {
    if (tag[i] < '0' || tag[i] > '9') return 0;
    n = n * 10 + (tag[i] - '0');
  }
  return n;
}

bool is_sql_nul_terminated(std::span<const uint8_t> body) {
  return !body.empty() && body.back() == 0;
}

}  // namespace

std::shared_ptr<const router::RoutingTable> Rewriter::table() {
  table_ = tables_();
  return table_;
}

Rewriter::PlanPtr Rewriter::plan(std::string_view sql) {
  const auto t = table();
  if (t == nullptr || t->empty() || !t->may_touch(sql)) return nullptr;
  const auto start = std::chrono::steady_clock::now();
  PlanPtr p = cache_.find(t->generation(), sql);
  const bool hit = p != nullptr;
  if (!hit) {
    p = std::make_shared<const router::QueryPlan>(router::plan_query(*t, sql));
    cache_.insert(t->generation(), sql, p);
  }
  observer_.analysed(hit,
                     static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now() - start)
                                               .count()));
  if (!p->flagged.empty()) report_flags(*p, sql);
  for (const auto& s : p->statements) {
    if (s.refused && s.route >= 0) observer_.refused(p->route_ids[static_cast<size_t>(s.route)]);
  }
  return p->rewritten || !p->flagged.empty() ? p : nullptr;
}

void Rewriter::report_flags(const router::QueryPlan& p, std::string_view sql) {
  for (size_t i = 0; i < p.flagged.size(); ++i) {
    const int16_t r = p.flagged_routes[i];
    observer_.flagged(r >= 0 ? std::string_view(p.route_ids[static_cast<size_t>(r)]) : "?",
                      p.flagged[i], sql);
  }
}

void Rewriter::push(Expect e) {
  if (e.kind == Kind::kSync) {
    discard_until_sync_ = false;
  } else if (discard_until_sync_) {
    return;  // the server skips it: no answer will come
  }
  queue_.push_back(std::move(e));
}

Disposition Rewriter::frontend_disposition(const protocol::MessageView& m) {
  switch (m.type) {
    case fe::kQuery:
    case fe::kParse:
    case fe::kBind:
    case fe::kDescribe:
    case fe::kExecute:
    case fe::kClose:
      return Disposition::kHold;
    case fe::kSync:
      push({Kind::kSync});
      return Disposition::kStream;
    case fe::kFunctionCall:
      push({Kind::kFunctionCall});
      return Disposition::kStream;
    default:
      return Disposition::kStream;  // Flush, Terminate, COPY data, password messages
  }
}

void Rewriter::refresh_statement(const std::string& name, std::string& to_server) {
  const auto it = statements_.find(name);
  if (it == statements_.end()) return;
  Statement& st = it->second;
  const auto t = table();
  const uint64_t gen = t ? t->generation() : 0;
  if (st.generation == gen) return;
  st.generation = gen;
  PlanPtr next = plan(st.text);
  const std::string_view sent = st.plan && st.plan->rewritten ? st.plan->sql : st.text;
  const std::string_view wanted = next && next->rewritten ? next->sql : st.text;
  if (sent != wanted) {
    // Prepared under other routing (before dual write began, or after it ended): prepare it again
    // under the same name, answering nothing to the client.
    if (!name.empty()) {
      to_server += close_statement(name);
      push({Kind::kClose, true});
    }
    to_server += protocol::encode_parse(
        name, wanted,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(st.param_types.data()),
                                 st.param_types.size()));
    Expect e{Kind::kParse, true};
    if (next && next->rewritten) e.plan = next;
    push(std::move(e));
  }
  st.plan = std::move(next);
}

void Rewriter::frontend_held(char type, std::span<const uint8_t> body, std::string& to_server) {
  switch (type) {
    case fe::kQuery: {
      Expect e{Kind::kQuery};
      const auto sql = protocol::decode_query(body);
      PlanPtr p = sql ? plan(*sql) : nullptr;
      if (p && p->rewritten) {
        to_server += protocol::encode_query(p->sql);
        e.plan = std::move(p);
      } else {
        append_raw(to_server, type, body);
      }
      push(std::move(e));
      return;
    }
    case fe::kParse: {
      Expect e{Kind::kParse};
      const auto msg = protocol::decode_parse(body);
      if (!msg) {
        append_raw(to_server, type, body);
        push(std::move(e));
        return;
      }
      PlanPtr p = plan(msg->query);
      Statement st;
      st.text = std::string(msg->query);
      st.param_types.assign(reinterpret_cast<const char*>(msg->param_types.data()),
                            msg->param_types.size());
      st.generation = table_ ? table_->generation() : 0;
      if (p && p->rewritten) {
        to_server += protocol::encode_parse(msg->name, p->sql, msg->param_types);
        e.plan = p;
      } else {
        append_raw(to_server, type, body);
      }
      st.plan = std::move(p);
      statements_[std::string(msg->name)] = std::move(st);
      push(std::move(e));
      return;
    }
    case fe::kBind: {
      const auto msg = protocol::decode_bind(body);
      if (!msg) {
        append_raw(to_server, type, body);
        push({Kind::kBind});
        return;
      }
      const std::string stmt_name(msg->statement);
      refresh_statement(stmt_name, to_server);
      Portal portal;
      const auto it = statements_.find(stmt_name);
      if (it != statements_.end() && it->second.plan && it->second.plan->rewritten &&
          !it->second.plan->statements.empty()) {
        portal.plan = it->second.plan;
        portal.transform = it->second.plan->statements.front();
      }
      if (portal.transform.refused) {
        to_server += bare_bind(msg->portal, msg->statement);
      } else if (portal.transform.kind == ResultTransform::Kind::kStripColumns &&
                 msg->n_result_formats > 1) {
        to_server += protocol::bind_with_extra_result_columns(body, *msg, msg->n_result_formats,
                                                              portal.transform.strip);
      } else {
        append_raw(to_server, type, body);
      }
      portal.count_binary = protocol::bind_result_format(body, *msg, 0) == 1;
      if (portal.plan) {
        portals_[std::string(msg->portal)] = std::move(portal);
      } else {
        portals_.erase(std::string(msg->portal));
      }
      push({Kind::kBind});
      return;
    }
    case fe::kDescribe: {
      Expect e{Kind::kDescribe};
      if (const auto d = protocol::decode_describe(body); d) {
        if (d->kind == 'S') {
          const std::string name(d->name);
          refresh_statement(name, to_server);
          const auto it = statements_.find(name);
          if (it != statements_.end() && it->second.plan && it->second.plan->rewritten &&
              !it->second.plan->statements.empty()) {
            e.plan = it->second.plan;
            e.transform = it->second.plan->statements.front();
          }
        } else if (const auto it = portals_.find(std::string(d->name)); it != portals_.end()) {
          e.plan = it->second.plan;
          e.transform = it->second.transform;
        }
      }
      append_raw(to_server, type, body);
      push(std::move(e));
      return;
    }
    case fe::kExecute: {
      Expect e{Kind::kExecute};
      if (const auto name = protocol::decode_execute_portal(body); name) {
        if (const auto it = portals_.find(std::string(*name)); it != portals_.end()) {
          e.plan = it->second.plan;
          e.transform = it->second.transform;
          e.count_binary = it->second.count_binary;
        }
      }
      append_raw(to_server, type, body);
      push(std::move(e));
      return;
    }
    case fe::kClose: {
      if (const auto d = protocol::decode_describe(body); d) {
        if (d->kind == 'S') {
          statements_.erase(std::string(d->name));
        } else {
          portals_.erase(std::string(d->name));
        }
      }
      append_raw(to_server, type, body);
      push({Kind::kClose});
      return;
    }
    default:
      append_raw(to_server, type, body);
      return;
  }
}

const ResultTransform* Rewriter::current_transform() const {
  if (queue_.empty()) return nullptr;
  const Expect& e = queue_.front();
  if (e.kind == Kind::kQuery) {
    if (!e.plan || e.statement >= e.plan->statements.size()) return nullptr;
    return &e.plan->statements[e.statement];
  }
  if (e.kind == Kind::kExecute || e.kind == Kind::kDescribe) return &e.transform;
  return nullptr;
}

Disposition Rewriter::backend_disposition(const protocol::MessageView& m) {
  if (desync_) return Disposition::kStream;
  held_type_ = m.type;
  auto mismatch = [&] {
    desync_ = true;  // relay unchanged from now on; rewritten answers would be wrong to guess
    return Disposition::kStream;
  };
  switch (m.type) {
    case be::kReadyForQuery: {
      if (queue_.empty()) return mismatch();
      const Kind k = queue_.front().kind;
      if (k != Kind::kQuery && k != Kind::kSync && k != Kind::kFunctionCall) return mismatch();
      queue_.pop_front();
      if (!m.peek.empty() && m.peek[0] == protocol::kTxIdle) portals_.clear();
      return Disposition::kStream;
    }
    case be::kErrorResponse: {
      if (queue_.empty()) return Disposition::kStream;  // e.g. FATAL at shutdown
      if (queue_.front().plan) return Disposition::kHold;
      std::string ignored;
      on_error(m.peek, ignored);
      return Disposition::kStream;
    }
    case be::kParseComplete:
    case be::kBindComplete:
    case be::kCloseComplete: {
      if (queue_.empty()) return mismatch();
      const Kind want = m.type == be::kParseComplete  ? Kind::kParse
                        : m.type == be::kBindComplete ? Kind::kBind
                                                      : Kind::kClose;
      if (queue_.front().kind != want) return mismatch();
      const bool injected = queue_.front().injected;
      queue_.pop_front();
      return injected ? Disposition::kDrop : Disposition::kStream;
    }
    case be::kNoData:
      if (queue_.empty() || queue_.front().kind != Kind::kDescribe) return mismatch();
      queue_.pop_front();
      return Disposition::kStream;
    case be::kRowDescription: {
      if (queue_.empty()) return mismatch();
      const ResultTransform* t = current_transform();
      const Kind k = queue_.front().kind;
      if (t == nullptr || t->kind == ResultTransform::Kind::kNone) {
        if (k == Kind::kDescribe) queue_.pop_front();
        return Disposition::kStream;
      }
      if (k == Kind::kQuery && t->kind == ResultTransform::Kind::kCountToTag)
        return Disposition::kDrop;
      return Disposition::kHold;
    }
    case be::kDataRow: {
      const ResultTransform* t = current_transform();
      if (t == nullptr || t->kind == ResultTransform::Kind::kNone) return Disposition::kStream;
      return Disposition::kHold;
    }
    case be::kCommandComplete: {
      if (queue_.empty()) return mismatch();
      const ResultTransform* t = current_transform();
      if (t != nullptr && t->kind != ResultTransform::Kind::kNone) return Disposition::kHold;
      Expect& e = queue_.front();
      if (e.kind == Kind::kQuery) {
        ++e.statement;
      } else if (e.kind == Kind::kExecute) {
        queue_.pop_front();
      } else {
        return mismatch();
      }
      return Disposition::kStream;
    }
    case be::kEmptyQueryResponse:
    case be::kPortalSuspended: {
      if (queue_.empty()) return mismatch();
      Expect& e = queue_.front();
      if (e.kind == Kind::kQuery) {
        ++e.statement;
      } else if (e.kind == Kind::kExecute) {
        queue_.pop_front();
      } else {
        return mismatch();
      }
      return Disposition::kStream;
    }
    default:
      // Notices, notifications, parameter status, ParameterDescription, COPY, function results.
      return Disposition::kStream;
  }
}

void Rewriter::on_error(std::span<const uint8_t> body, std::string& to_client) {
  (void)to_client;
  (void)body;
  Expect& e = queue_.front();
  if (const ResultTransform* t = current_transform();
      t != nullptr && t->kind != ResultTransform::Kind::kNone && t->route >= 0 && e.plan) {
    observer_.mirrored(e.plan->route_ids[static_cast<size_t>(t->route)], t->tag, false, 0);
  }
  if (e.kind == Kind::kQuery) return;  // ReadyForQuery ends it
  // Extended protocol: the server skips everything up to the next Sync.
  while (!queue_.empty() && queue_.front().kind != Kind::kSync) queue_.pop_front();
  if (queue_.empty()) discard_until_sync_ = true;
}

void Rewriter::complete(const Expect& e, const ResultTransform& t, std::span<const uint8_t> body,
                        std::string& to_client) {
  const int64_t rows = t.kind == ResultTransform::Kind::kCountToTag ? e.count : tag_rows(body);
  to_client += protocol::encode_command_complete(tag_text(t.tag, rows));
  if (t.route >= 0 && e.plan)
    observer_.mirrored(e.plan->route_ids[static_cast<size_t>(t.route)], t.tag, true, rows);
}

void Rewriter::backend_held(char type, std::span<const uint8_t> body, std::string& to_client) {
  if (queue_.empty()) {
    append_raw(to_client, type, body);
    return;
  }
  Expect& e = queue_.front();
  const ResultTransform* tp = current_transform();
  const ResultTransform t = tp != nullptr ? *tp : ResultTransform{};
  switch (type) {
    case be::kErrorResponse: {
      const router::QueryPlan* p = e.plan.get();
      auto mapped = protocol::error_map_position(
          type, body, [p](uint32_t pos) { return p->original_position(pos); });
      if (mapped) {
        to_client += *mapped;
      } else {
        append_raw(to_client, type, body);
      }
      on_error(body, to_client);
      return;
    }
    case be::kRowDescription: {
      if (t.kind == ResultTransform::Kind::kCountToTag) {
        to_client += protocol::encode_no_data();  // Describe of a write without RETURNING
      } else {
        const auto n = protocol::row_description_field_count(body);
        std::optional<std::string> kept;
        if (n && *n >= t.strip)
          kept = protocol::row_description_keep(body, static_cast<uint16_t>(*n - t.strip));
        if (kept) {
          to_client += *kept;
        } else {
          append_raw(to_client, type, body);
          desync_ = true;
        }
      }
      if (e.kind == Kind::kDescribe) queue_.pop_front();
      return;
    }
    case be::kDataRow: {
      if (t.kind == ResultTransform::Kind::kCountToTag) {
        e.count = protocol::data_row_first_int(body, e.count_binary).value_or(0);
        return;  // the client's statement returns no rows
      }
      const uint16_t n = body.size() >= 2 ? protocol::read_u16(body.data()) : 0;
      std::optional<std::string> kept;
      if (n >= t.strip) kept = protocol::data_row_keep(body, static_cast<uint16_t>(n - t.strip));
      if (kept) {
        to_client += *kept;
      } else {
        append_raw(to_client, type, body);
        desync_ = true;
      }
      return;
    }
    case be::kCommandComplete: {
      if (!is_sql_nul_terminated(body)) {
        append_raw(to_client, type, body);
        desync_ = true;
        return;
      }
      complete(e, t, body, to_client);
      if (e.kind == Kind::kQuery) {
        ++e.statement;
      } else {
        queue_.pop_front();
      }
      return;
    }
    default:
      append_raw(to_client, type, body);
      return;
  }
}

}  // namespace pgphase::proxy
