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

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// The same Bind with another statement name.
std::string bind_renamed(std::span<const uint8_t> body, const protocol::BindMessage& m,
                         std::string_view statement) {
  std::string out = protocol::begin_message(fe::kBind);
  out.append(m.portal);
  out.push_back('\0');
  out.append(statement);
  out.push_back('\0');
  const size_t rest = m.portal.size() + 1 + m.statement.size() + 1;
  out.append(reinterpret_cast<const char*>(body.data()) + rest, body.size() - rest);
  protocol::finish_message(out);
  return out;
}

// Names of prepared statements and portals as the server keys them: cut to NAMEDATALEN - 1
// bytes (two names that share their first 63 bytes are one statement for PostgreSQL).
std::string server_key(std::string_view name) {
  constexpr size_t kNameDataLen = 64;
  return std::string(name.substr(0, kNameDataLen - 1));
}

const router::MigrationRoute* route_by_id(const router::RoutingTable* t, std::string_view id) {
  if (t == nullptr) return nullptr;
  for (const auto& r : t->routes()) {
    if (r.migration_id == id) return &r;
  }
  return nullptr;
}

}  // namespace

Rewriter::Rewriter(TableSource tables, router::PlanCache& cache, RewriteObserver& observer,
                   SessionIdentity identity, LexSettings settings)
    : tables_(std::move(tables)),
      cache_(cache),
      observer_(observer),
      identity_(std::move(identity)),
      settings_(std::move(settings)),
      rng_(now_ns() | 1) {}

router::PlanContext Rewriter::context() const noexcept {
  router::PlanContext c;
  c.literals_uncertain = !settings_.standard_conforming_strings || settings_in_flight_;
  c.backslash_bytes_uncertain = settings_.backslash_in_multibyte() || settings_in_flight_;
  c.names_shadowed = names_shadowed_;
  return c;
}

void Rewriter::watch_settings(std::string_view sql) {
  // Without a migration for this database nothing is planned: what is in flight cannot matter
  // (ParameterStatus still keeps settings_ current).
  if (table_ == nullptr || table_->empty()) return;
  if (!settings_touched_) {
    static constexpr std::string_view kWords[] = {"conforming", "encoding", "names",
                                                  "set_config", "reset",    "discard"};
    for (std::string_view w : kWords) {
      if (router::contains_ci(sql, w)) settings_touched_ = true;
    }
  }
  // Once touched, a later COMMIT or ROLLBACK may revert them too: every request in flight counts.
  if (settings_touched_) settings_in_flight_ = true;
}

std::string Rewriter::alt_name(Statement& st) {
  if (st.alt_id == 0) st.alt_id = ++alt_ids_;
  return "__pgphase_rt_" + std::to_string(st.alt_id);
}

void Rewriter::undo(Expect& e) {
  if (e.injected || (e.kind != Kind::kParse && e.kind != Kind::kClose)) return;
  if (e.undo) {
    Statement restored = std::move(*e.undo);
    restored.alt_prepared = false;  // its twin was closed when it was replaced
    statements_[e.statement_key] = std::move(restored);
  } else if (e.kind == Kind::kParse) {
    statements_.erase(e.statement_key);
  }
}

bool Rewriter::sticky_target(const router::ReadSwitch& s) const {
  const std::string& key =
      s.sticky_key == router::StickyKey::kApplicationName ? identity_.application_name
      : s.sticky_key == router::StickyKey::kClientAddress ? identity_.client_address
                                                          : identity_.user;
  // A stable point in [0, 100): raising the percentage only moves sessions to the target.
  const double point = static_cast<double>(fnv1a(key) % 10000) / 100.0;
  return point < s.percentage;
}

Rewriter::ReadChoice Rewriter::choose(const router::QueryPlan& p) {
  ReadChoice c;
  if (!p.routes_reads()) return c;
  const router::MigrationRoute* r =
      route_by_id(table_.get(), p.route_ids[static_cast<size_t>(p.read_route)]);
  if (r == nullptr) return c;
  c.read = true;
  if (r->read_mode == router::ReadMode::kTarget) {
    c.target = true;
    return c;
  }
  if (r->read_mode != router::ReadMode::kSwitch) return c;
  const router::ReadSwitch& s = r->read_switch;
  c.config_id = s.config_id;
  switch (s.strategy) {
    case migration::SwitchStrategy::kImmediate:
      c.target = s.percentage >= 100;
      break;
    case migration::SwitchStrategy::kGradual: {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      c.target = static_cast<double>(rng_ % 1000000) / 10000.0 < s.percentage;
      break;
    }
    case migration::SwitchStrategy::kSticky:
      c.target = sticky_target(s);
      break;
    case migration::SwitchStrategy::kCanary: {
      bool match = false;
      for (const auto& u : s.canary_users) match = match || u == identity_.user;
      for (const auto& a : s.canary_applications) match = match || a == identity_.application_name;
      c.target = match && s.percentage > 0;
      break;
    }
    case migration::SwitchStrategy::kShadow: {
      c.target = false;  // the client is always answered from the source
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      c.shadow = static_cast<double>(rng_ % 1000000) / 10000.0 < s.percentage;
      break;
    }
  }
  return c;
}

void Rewriter::read_done(const Expect& e, bool ok) {
  if (!e.read.read || e.read.config_id.empty()) return;
  observer_.read(e.read.config_id, e.read.target, ok, now_ns() - e.started_ns);
}

router::TableRef Rewriter::table() {
  table_ = tables_();
  return table_;
}

Rewriter::PlanPtr Rewriter::plan(std::string_view sql) {
  const auto t = table();
  if (t == nullptr || t->empty() || !t->may_touch(sql)) return nullptr;
  const auto start = std::chrono::steady_clock::now();
  const router::PlanContext ctx = context();
  // Plans are cached for the default context only (sessions with other settings are rare).
  PlanPtr p = ctx.is_default() ? cache_.find(t->generation(), sql) : nullptr;
  const bool hit = p != nullptr;
  if (!hit) {
    p = std::make_shared<const router::QueryPlan>(router::plan_query(*t, sql, ctx));
    if (ctx.is_default()) cache_.insert(t->generation(), sql, p);
  }
  if (p->shadows_source) names_shadowed_ = true;
  observer_.analysed(hit,
                     static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now() - start)
                                               .count()));
  if (!p->flagged.empty()) report_flags(*p, sql);
  for (const auto& s : p->statements) {
    if (s.refused && s.route >= 0) observer_.refused(p->route_ids[static_cast<size_t>(s.route)]);
  }
  for (size_t i = 0; i < p->unroutable_routes.size(); ++i) {
    const std::string& id = p->route_ids[static_cast<size_t>(p->unroutable_routes[i])];
    const router::MigrationRoute* r = route_by_id(t.get(), id);
    observer_.unroutable(id, r != nullptr ? std::string_view(r->read_switch.config_id) : "",
                         p->unroutable_reasons[i]);
  }
  if (!p->matters()) return nullptr;
  planned_ = true;
  return p;
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

bool Rewriter::quiet() {
  if (planned_) return false;
  const auto t = table();
  return t == nullptr || t->empty();
}

Disposition Rewriter::frontend_disposition(const protocol::MessageView& m) {
  switch (m.type) {
    case fe::kQuery:
    case fe::kBind:
    case fe::kDescribe:
    case fe::kExecute:
      // No migration applies to the session and none of its statements was ever planned: the
      // message goes on as it is (only its answer is expected). Parse and Close are held always,
      // so that the statements prepared now are known when a migration begins.
      if (quiet()) {
        Expect e{m.type == fe::kQuery      ? Kind::kQuery
                 : m.type == fe::kBind     ? Kind::kBind
                 : m.type == fe::kDescribe ? Kind::kDescribe
                                           : Kind::kExecute};
        push(std::move(e));
        return Disposition::kStream;
      }
      return Disposition::kHold;
    case fe::kParse:
    case fe::kClose:
      return Disposition::kHold;
    case fe::kSync:
      // While the server is in COPY FROM STDIN it ignores Sync (libpq sends one right after the
      // COPY's Execute, and another after CopyDone): no ReadyForQuery answers it.
      if (!copy_in_) push({Kind::kSync});
      return Disposition::kStream;
    case fe::kCopyDone:
    case fe::kCopyFail:
      copy_in_ = false;
      return Disposition::kStream;
    case fe::kFunctionCall:
      push({Kind::kFunctionCall});
      return Disposition::kStream;
    default:
      return Disposition::kStream;  // Flush, Terminate, COPY data, password messages
  }
}

void Rewriter::refresh_statement(const std::string& name, std::string& to_server) {
  const auto it = statements_.find(server_key(name));
  if (it == statements_.end()) return;
  Statement& st = it->second;
  const auto t = table();
  const uint64_t gen = t ? t->generation() : 0;
  if (st.generation == gen) return;
  st.generation = gen;
  st.alt_prepared = false;  // its target text may have changed too
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
      if (sql) watch_settings(*sql);
      if (p) e.read = choose(*p);
      if (p && e.read.shadow && !p->rewritten && p->statements.size() == 1 &&
          p->statements[0].read) {
        migration::ShadowJob job;
        job.config_id = e.read.config_id;
        job.source_sql = std::string(*sql);
        job.target_sql = p->sql_target;
        job.ordered = p->statements[0].ordered;
        observer_.shadow(std::move(job));
      }
      if (p && e.read.target) {
        to_server += protocol::encode_query(p->sql_target);
        e.plan = std::move(p);
      } else if (p && p->rewritten) {
        to_server += protocol::encode_query(p->sql);
        e.plan = std::move(p);
      } else {
        if (p && p->routes_reads()) e.plan = std::move(p);  // reads counted on the source
        append_raw(to_server, type, body);
      }
      e.started_ns = now_ns();
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
      watch_settings(msg->query);
      Statement st;
      st.text = std::string(msg->query);
      st.param_types.assign(reinterpret_cast<const char*>(msg->param_types.data()),
                            msg->param_types.size());
      st.generation = table_ ? table_->generation() : 0;
      e.statement_key = server_key(msg->name);
      const auto it = statements_.find(e.statement_key);
      if (it != statements_.end() && it->second.alt_prepared) {
        to_server += close_statement(alt_name(it->second));
        push({Kind::kClose, true});
      }
      if (p && p->rewritten) {
        to_server += protocol::encode_parse(msg->name, p->sql, msg->param_types);
        e.plan = p;
      } else {
        append_raw(to_server, type, body);
      }
      st.plan = std::move(p);
      if (it != statements_.end()) {
        // A named statement of that name is replaced only if the server accepts this Parse
        // (else it answers 42P05 and keeps the old one); the unnamed one is replaced always.
        if (!msg->name.empty()) e.undo = std::make_shared<Statement>(std::move(it->second));
        it->second = std::move(st);
      } else {
        statements_.emplace(e.statement_key, std::move(st));
      }
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
      const auto it = statements_.find(server_key(stmt_name));
      if (it != statements_.end() && it->second.plan && it->second.plan->rewritten &&
          !it->second.plan->statements.empty()) {
        portal.plan = it->second.plan;
        portal.transform = it->second.plan->statements.front();
      }
      if (it != statements_.end() && it->second.plan && it->second.plan->routes_reads()) {
        Statement& st = it->second;
        portal.plan = st.plan;
        portal.read = choose(*st.plan);
        if (portal.read.shadow && !st.plan->rewritten && st.plan->statements.size() == 1) {
          if (const auto params = protocol::decode_bind_params(body)) {
            migration::ShadowJob job;
            job.config_id = portal.read.config_id;
            job.source_sql = st.text;
            job.target_sql = st.plan->sql_target;
            job.ordered = st.plan->statements[0].ordered;
            const std::string& pt = st.param_types;  // int16 count + int32 oids
            for (size_t k = 2; k + 4 <= pt.size(); k += 4) {
              job.param_types.push_back(
                  protocol::read_u32(reinterpret_cast<const uint8_t*>(pt.data()) + k));
            }
            for (size_t k = 0; k < params->values.size(); ++k) {
              const auto& v = params->values[k];
              job.params.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
              job.param_formats.push_back(params->formats[k]);
            }
            observer_.shadow(std::move(job));
          }
        }
        if (portal.read.target) {
          // Its twin reading the target, prepared (again) on first use.
          const std::string alt = alt_name(st);
          if (!st.alt_prepared) {
            to_server += close_statement(alt);
            push({Kind::kClose, true});
            to_server += protocol::encode_parse(
                alt, st.plan->sql_target,
                std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(st.param_types.data()),
                                         st.param_types.size()));
            Expect pe{Kind::kParse, true};
            pe.plan = st.plan;
            pe.read = portal.read;
            pe.started_ns = now_ns();
            push(std::move(pe));
            st.alt_prepared = true;
          }
          to_server += bind_renamed(body, *msg, alt);
          portals_[server_key(msg->portal)] = std::move(portal);
          push({Kind::kBind});
          return;
        }
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
      if (portal.plan || portal.read.read) {
        portals_[server_key(msg->portal)] = std::move(portal);
      } else {
        portals_.erase(server_key(msg->portal));
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
          const auto it = statements_.find(server_key(name));
          if (it != statements_.end() && it->second.plan && it->second.plan->rewritten &&
              !it->second.plan->statements.empty()) {
            e.plan = it->second.plan;
            e.transform = it->second.plan->statements.front();
          }
        } else if (const auto it = portals_.find(server_key(d->name)); it != portals_.end()) {
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
        if (const auto it = portals_.find(server_key(*name)); it != portals_.end()) {
          e.plan = it->second.plan;
          e.transform = it->second.transform;
          e.count_binary = it->second.count_binary;
          e.read = it->second.read;
        }
      }
      e.started_ns = now_ns();
      if (e.transform.kind == ResultTransform::Kind::kCountToTag && body.size() >= 4 &&
          protocol::read_u32(body.data() + body.size() - 4) != 0) {
        // The client's INSERT/UPDATE/DELETE runs to completion whatever its row limit (pgjdbc
        // sends 1 for updates); its rewrite returns one row, which must not suspend the portal.
        std::string all(reinterpret_cast<const char*>(body.data()), body.size() - 4);
        protocol::append_u32(all, 0);
        append_raw(
            to_server, type,
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(all.data()), all.size()));
      } else {
        append_raw(to_server, type, body);
      }
      push(std::move(e));
      return;
    }
    case fe::kClose: {
      Expect e{Kind::kClose};
      if (const auto d = protocol::decode_describe(body); d) {
        if (d->kind == 'S') {
          e.statement_key = server_key(d->name);
          const auto it = statements_.find(e.statement_key);
          if (it != statements_.end() && it->second.alt_prepared) {
            to_server += close_statement(alt_name(it->second));
            push({Kind::kClose, true});
          }
          if (it != statements_.end()) {
            e.undo = std::make_shared<Statement>(std::move(it->second));
            statements_.erase(it);
          }
        } else {
          portals_.erase(server_key(d->name));
        }
      }
      append_raw(to_server, type, body);
      push(std::move(e));
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

void Rewriter::lose_track(char type, const char* why) {
  if (desync_) return;
  desync_ = true;
  desync_reason_ = std::string("server message '") + type + "' " + why + " (" +
                   std::to_string(queue_.size()) + " requests in flight)";
}

Disposition Rewriter::backend_disposition(const protocol::MessageView& m) {
  if (desync_) return Disposition::kDrop;
  held_type_ = m.type;
  auto mismatch = [&] {
    lose_track(m.type, queue_.empty() ? "arrived with no request in flight"
                                      : "does not answer the oldest request in flight");
    return Disposition::kDrop;
  };
  switch (m.type) {
    case be::kReadyForQuery: {
      if (queue_.empty()) return mismatch();
      const Kind k = queue_.front().kind;
      if (k != Kind::kQuery && k != Kind::kSync && k != Kind::kFunctionCall) return mismatch();
      queue_.pop_front();
      if (!m.peek.empty() && m.peek[0] == protocol::kTxIdle) portals_.clear();
      if (queue_.empty()) settings_in_flight_ = false;  // their ParameterStatus came before
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
        if (e.plan && e.statement < e.plan->statements.size() &&
            e.plan->statements[e.statement].read)
          read_done(e, true);
        ++e.statement;
      } else if (e.kind == Kind::kExecute) {
        read_done(e, true);
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
    case be::kParameterStatus:
      return Disposition::kHold;  // read whole in backend_held (LexSettings)
    case be::kCopyInResponse:
    case be::kCopyBothResponse: {
      if (queue_.empty()) return mismatch();
      // The Syncs the client sent after this COPY's request, before it saw this answer, are
      // ignored by the server (it reads only copy data, Flush and Sync until CopyDone/CopyFail).
      copy_in_ = true;
      std::erase_if(queue_, [first = &queue_.front()](const Expect& e) {
        return &e != first && e.kind == Kind::kSync;
      });
      return Disposition::kStream;
    }
    default:
      // Notices, notifications, ParameterDescription, COPY, function results.
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
  if (e.kind == Kind::kExecute ||
      (e.kind == Kind::kQuery && e.plan && e.statement < e.plan->statements.size() &&
       e.plan->statements[e.statement].read) ||
      (e.kind == Kind::kParse && e.injected)) {
    read_done(e, false);  // a target that cannot even prepare the read counts as its error
  }
  if (e.kind == Kind::kQuery || e.kind == Kind::kFunctionCall) return;  // ReadyForQuery ends it
  // Extended protocol: the server skips everything up to the next Sync.
  while (!queue_.empty() && queue_.front().kind != Kind::kSync) {
    undo(queue_.front());
    queue_.pop_front();
  }
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
  if (type == be::kParameterStatus) {
    if (const auto ps = protocol::decode_parameter_status(body)) {
      if (settings_.apply(ps->first, ps->second)) settings_touched_ = true;
    }
    append_raw(to_client, type, body);
    return;
  }
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
      const bool target = e.read.target;
      auto mapped = protocol::error_map_position(
          type, body, [p, target](uint32_t pos) { return p->original_position(pos, target); });
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
          lose_track(type, "is shorter than its rewrite requires");
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
        lose_track(type, "is shorter than its rewrite requires");
      }
      return;
    }
    case be::kCommandComplete: {
      if (!is_sql_nul_terminated(body)) {
        lose_track(type, "has no terminated command tag");
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
