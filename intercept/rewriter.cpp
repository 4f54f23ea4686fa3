#include "intercept/rewriter.h"

#include <chrono>
#include <optional>
#include <string>

#include "intercept/requests.h"
#include "intercept/result_transforms.h"
#include "protocol/codes.h"
#include "protocol/extended.h"
#include "protocol/wire.h"
#include "router/planner.h"

namespace pgphase::intercept {

namespace fe = protocol::fe;
namespace be = protocol::be;
using protocol::Disposition;
using router::ResultTransform;

namespace {

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A Query whose current statement is a routed read (its completion is counted).
bool reads_now(const Expect& e) {
  return e.kind == Request::kQuery && e.plan && e.statement < e.plan->statements.size() &&
         e.plan->statements[e.statement].read;
}

// The comparison of a Bind's read on both tables (strategy shadow); nullopt if the Bind's
// parameters do not decode.
std::optional<migration::ShadowJob> shadow_bind(const ReadChoice& read, const Statement& st,
                                                std::span<const uint8_t> body) {
  const auto params = protocol::decode_bind_params(body);
  if (!params) return std::nullopt;
  migration::ShadowJob job;
  job.config_id = *read.config_id;
  job.source_sql = st.text;
  job.target_sql = st.plan->sql_target;
  job.ordered = st.plan->statements[0].ordered;
  const std::string& pt = st.param_types;  // int16 count + int32 oids
  for (size_t k = 2; k + 4 <= pt.size(); k += 4) {
    job.param_types.push_back(protocol::read_u32(reinterpret_cast<const uint8_t*>(pt.data()) + k));
  }
  for (size_t k = 0; k < params->values.size(); ++k) {
    const auto& v = params->values[k];
    job.params.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
    job.param_formats.push_back(params->formats[k]);
  }
  return job;
}

}  // namespace

Rewriter::Rewriter(TableSource tables, router::PlanCache& cache, RewriteObserver& observer,
                   SessionIdentity identity, LexSettings settings)
    : tables_(std::move(tables)),
      cache_(cache),
      observer_(observer),
      chooser_(std::move(identity), now_ns() | 1),
      settings_(std::move(settings)) {}

router::PlanContext Rewriter::context() const noexcept {
  router::PlanContext c;
  c.literals_uncertain = settings_.literals_uncertain();
  c.backslash_bytes_uncertain = settings_.backslash_bytes_uncertain();
  c.names_shadowed = names_shadowed_;
  return c;
}

void Rewriter::watch_settings(std::string_view sql) {
  // Without a migration for this database nothing is planned: what is in flight cannot matter
  // (ParameterStatus still keeps the settings current).
  if (table_ == nullptr || table_->empty()) return;
  settings_.watch(sql);
}

void Rewriter::watch_deallocation(std::string_view sql) {
  // Only named statements are ever taken to be on the server (a client that uses just the unnamed
  // one pays no scan of its texts).
  if (registry_.statements() <= (registry_.find("") != nullptr ? 1U : 0U)) return;
  // DEALLOCATE and DISCARD drop prepared statements behind the registry's back: whether the
  // server still has one is no longer known (over-matching only makes that so more often).
  if (router::contains_ci(sql, "dealloc") || router::contains_ci(sql, "discard"))
    registry_.forget_on_server();
}

void Rewriter::drop_unnamed_statement(Expect& e) {
  e.statement_key.clear();
  e.changes = true;  // whether the registry has it or not (an undo in flight may put it back)
  if (registry_.find("") == nullptr) return;
  // Its target-reading twin, if any, is a named statement of pgphase's: it stays on the server,
  // unused (twin names are never reused).
  e.undo = registry_.close(e.statement_key);
}

void Rewriter::read_done(const Expect& e, bool ok) {
  if (!e.read.read || !e.read.config_id) return;
  observer_.read(*e.read.config_id, e.read.target, ok, now_ns() - e.started_ns);
}

router::TableRef Rewriter::table() {
  table_ = tables_();
  return table_;
}

PlanPtr Rewriter::plan(std::string_view sql) {
  const auto t = table();
  if (t == nullptr || t->empty() || !t->may_touch(sql)) return nullptr;
  const auto start = std::chrono::steady_clock::now();
  // Plans are cached for the default context only (sessions with other settings are rare).
  router::Lookup found = router::find_or_plan(cache_, *t, sql, context(), scratch_);
  const bool hit = found.cached;
  PlanPtr p = std::move(found.plan);
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
    observer_.unroutable(
        id,
        r != nullptr && r->read_switch.config_id ? std::string_view(*r->read_switch.config_id) : "",
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

bool Rewriter::quiet() {
  if (planned_) return false;
  const auto t = table();
  return t == nullptr || t->empty();
}

Disposition Rewriter::frontend_disposition(const protocol::MessageView& m) {
  // After an error the server skips everything up to the next Sync: the message goes on as it
  // is and changes nothing here (a Parse or Close it skips must not touch the registry, nor a
  // statement be re-prepared by requests it skips). Nothing is expected of it.
  if (queue_.discarding() && m.type != fe::kSync) return Disposition::kStream;
  switch (m.type) {
    case fe::kQuery:
    case fe::kBind:
    case fe::kDescribe:
    case fe::kExecute:
      // No migration applies to the session and none of its statements was ever planned: the
      // message goes on as it is (only its answer is expected). Parse and Close are held always,
      // so that the statements prepared now are known when a migration begins.
      if (quiet()) {
        Expect e{m.type == fe::kQuery      ? Request::kQuery
                 : m.type == fe::kBind     ? Request::kBind
                 : m.type == fe::kDescribe ? Request::kDescribe
                                           : Request::kExecute};
        if (m.type == fe::kQuery) drop_unnamed_statement(e);
        queue_.push(std::move(e));
        return Disposition::kStream;
      }
      return Disposition::kHold;
    case fe::kParse:
    case fe::kClose:
      return Disposition::kHold;
    case fe::kSync:
      queue_.push_sync();
      ++batches_;
      return Disposition::kStream;
    case fe::kCopyDone:
    case fe::kCopyFail:
      queue_.copy_ended();
      return Disposition::kStream;
    case fe::kFunctionCall:
      queue_.push({Request::kFunctionCall});
      return Disposition::kStream;
    default:
      return Disposition::kStream;  // Flush, Terminate, COPY data, password messages
  }
}

void Rewriter::refresh_statement(std::string_view name, std::string& to_server) {
  Statement* st = registry_.find(server_key(name));
  if (st == nullptr) return;
  // Before anything else: the caller's plan and read choice use table_ as this makes it current.
  const auto t = table();
  if (!settled(*st)) return;  // prepared again on a use once it is settled
  // In a failed transaction PostgreSQL refuses the Parse (25P02) after the Close went through:
  // the client's Describe would fail where it succeeds on the statement as it is, and nothing
  // but ending the transaction can run there. Prepared again on a use after it ends.
  // (A re-preparation already sent and not confirmed left the server with the old statement or
  // none, while the registry has the new plan: that one is made again, as anywhere.)
  if (failed_transaction_ && queue_.empty() && !st->unconfirmed) return;
  const uint64_t gen = t ? t->generation() : 0;
  if (st->generation == gen && !st->unconfirmed) return;
  PlanPtr was_plan = st->plan;  // what the server has until this re-preparation goes through
  const uint64_t was_generation = st->generation;
  if (st->generation != gen) {
    st->generation = gen;
    st->alt_prepared = false;  // its target text may have changed too
    PlanPtr next = plan(st->text);
    const std::string_view sent = st->plan && st->plan->rewritten ? st->plan->sql : st->text;
    const std::string_view wanted = next && next->rewritten ? next->sql : st->text;
    const bool differs = sent != wanted;
    st->plan = std::move(next);
    if (!differs && !st->unconfirmed) return;
  }
  // Prepared under other routing (before dual write began, or after it ended), or a
  // re-preparation of ours is not confirmed yet (it may still be failed or skipped): prepare it
  // under the same name, answering nothing to the client. Until the server confirms it, every
  // use does so again, so that each use sees the statement it was sent for.
  if (!name.empty()) {
    append_close_statement(to_server, name);
    queue_.push({Request::kClose, true});
  }
  const bool rewritten = st->plan && st->plan->rewritten;
  protocol::append_parse(to_server, name, rewritten ? std::string_view(st->plan->sql) : st->text,
                         bytes(st->param_types));
  Expect e{Request::kParse, true};
  if (rewritten) e.plan = st->plan;
  e.refresh = true;
  e.statement_key = server_key(name);
  e.made = st->version;
  e.undo = std::make_shared<Statement>();
  e.undo->plan = std::move(was_plan);
  e.undo->generation = was_generation;
  queue_.push(std::move(e));
  st->unconfirmed = true;
}

void Rewriter::frontend_held(char type, std::span<const uint8_t> body, std::string& to_server) {
  switch (type) {
    case fe::kQuery:
      return on_query(body, to_server);
    case fe::kParse:
      return on_parse(body, to_server);
    case fe::kBind:
      return on_bind(body, to_server);
    case fe::kDescribe:
      return on_describe(body, to_server);
    case fe::kExecute:
      return on_execute(body, to_server);
    case fe::kClose:
      return on_close(body, to_server);
    default:
      append_raw(to_server, type, body);
      return;
  }
}

void Rewriter::on_query(std::span<const uint8_t> body, std::string& to_server) {
  Expect e{Request::kQuery};
  const auto sql = protocol::decode_query(body);
  PlanPtr p = sql ? plan(*sql) : nullptr;
  if (sql) {
    watch_settings(*sql);
    watch_deallocation(*sql);
  }
  if (p) e.read = chooser_.choose(*p, table_.get());
  if (p && e.read.shadow && !p->rewritten && p->statements.size() == 1 && p->statements[0].read) {
    migration::ShadowJob job;
    job.config_id = *e.read.config_id;
    job.source_sql = std::string(*sql);
    job.target_sql = p->sql_target;
    job.ordered = p->statements[0].ordered;
    observer_.shadow(std::move(job));
  }
  if (p && e.read.target) {
    protocol::append_query(to_server, p->sql_target);
    e.plan = std::move(p);
  } else if (p && p->rewritten) {
    protocol::append_query(to_server, p->sql);
    e.plan = std::move(p);
  } else {
    if (p && p->routes_reads()) e.plan = std::move(p);  // reads counted on the source
    append_raw(to_server, fe::kQuery, body);
  }
  drop_unnamed_statement(e);
  e.started_ns = now_ns();
  queue_.push(std::move(e));
}

void Rewriter::on_parse(std::span<const uint8_t> body, std::string& to_server) {
  Expect e{Request::kParse};
  const auto msg = protocol::decode_parse(body);
  if (!msg) {
    append_raw(to_server, fe::kParse, body);
    queue_.push(std::move(e));
    return;
  }
  PlanPtr p = plan(msg->query);
  watch_settings(msg->query);
  watch_deallocation(msg->query);
  e.statement_key = server_key(msg->name);
  Statement* old = registry_.find(e.statement_key);
  // A named statement the server is known to have: PostgreSQL refuses this Parse (42P05). The
  // registry keeps it; this Parse's statement is recorded only if its ParseComplete comes after
  // all (on_parse_complete). A statement whose own Parse is still in flight is replaced: which of
  // the two the server ends with is known only from the answers (undo).
  const bool taken = old != nullptr && !msg->name.empty() && old->on_server && !old->unconfirmed;
  if (old != nullptr && old->alt_prepared && !taken) {
    append_close_statement(to_server, registry_.alt_name(*old));
    queue_.push({Request::kClose, true});
  }
  if (p && p->rewritten) {
    protocol::append_parse(to_server, msg->name, p->sql, msg->param_types);
    e.plan = p;
  } else {
    append_raw(to_server, fe::kParse, body);
  }
  Statement* st = nullptr;
  if (taken) {
    e.install = std::make_shared<Statement>();
    st = e.install.get();
  } else {
    // The unnamed statement's previous one is kept only behind requests in flight: one of them
    // may fail, and the server then skips this Parse and keeps it.
    st = &registry_.parse_in_place(e.statement_key, !msg->name.empty() || !queue_.empty(), e.undo);
    e.made = st->version;
    e.changes = true;
  }
  st->text.assign(msg->query);
  st->param_types.assign(reinterpret_cast<const char*>(msg->param_types.data()),
                         msg->param_types.size());
  st->generation = table_ ? table_->generation() : 0;
  st->batch = batches_;
  st->plan = std::move(p);
  queue_.push(std::move(e));
}

void Rewriter::on_bind(std::span<const uint8_t> body, std::string& to_server) {
  const auto msg = protocol::decode_bind(body);
  if (!msg) {
    append_raw(to_server, fe::kBind, body);
    queue_.push({Request::kBind});
    return;
  }
  refresh_statement(msg->statement, to_server);
  Portal portal;
  Statement* st = registry_.find(server_key(msg->statement));
  if (st != nullptr && st->plan && st->plan->rewritten && !st->plan->statements.empty()) {
    portal.plan = st->plan;
    portal.transform = st->plan->statements.front();
  }
  if (st != nullptr && st->plan && st->plan->routes_reads()) {
    portal.plan = st->plan;
    portal.read = chooser_.choose(*st->plan, table_.get());
    if (portal.read.shadow && !st->plan->rewritten && st->plan->statements.size() == 1) {
      if (auto job = shadow_bind(portal.read, *st, body)) observer_.shadow(std::move(*job));
    }
    if (portal.read.target && !settled(*st)) portal.read.target = false;  // read on the source
    if (portal.read.target) {
      // Its twin reading the target, prepared (again) on first use.
      const std::string& alt = registry_.alt_name(*st);
      if (!st->alt_prepared || !st->alt_confirmed) {
        append_close_statement(to_server, alt);
        queue_.push({Request::kClose, true});
        protocol::append_parse(to_server, alt, st->plan->sql_target, bytes(st->param_types));
        Expect pe{Request::kParse, true};
        pe.twin = true;
        pe.statement_key = server_key(msg->statement);
        pe.made = st->version;
        pe.plan = st->plan;
        pe.read = portal.read;
        pe.started_ns = now_ns();
        queue_.push(std::move(pe));
        st->alt_prepared = true;
        st->alt_confirmed = false;
      }
      append_bind_renamed(to_server, body, *msg, alt);
      registry_.bind(server_key(msg->portal), std::move(portal));
      queue_.push({Request::kBind});
      return;
    }
  }
  if (portal.transform.refused) {
    append_bare_bind(to_server, msg->portal, msg->statement);
  } else if (portal.transform.kind == ResultTransform::Kind::kStripColumns &&
             msg->n_result_formats > 1) {
    to_server += protocol::bind_with_extra_result_columns(body, *msg, msg->n_result_formats,
                                                          portal.transform.strip);
  } else {
    append_raw(to_server, fe::kBind, body);
  }
  portal.count_binary = protocol::bind_result_format(body, *msg, 0) == 1;
  Expect e{Request::kBind};
  e.portal = server_key(msg->portal);
  // A statement whose Parse or Close in an earlier batch is in flight: the server may yet keep
  // another one under the name. A Bind sent as the client wrote it gets its portal's transforms
  // again at BindComplete.
  if (st != nullptr && !settled(*st) && !portal.transform.refused &&
      !(portal.transform.kind == ResultTransform::Kind::kStripColumns &&
        msg->n_result_formats > 1)) {
    e.resolve = true;
    e.statement_key = server_key(msg->statement);
  }
  if (portal.plan || portal.read.read) {
    registry_.bind(*e.portal, std::move(portal));
  } else {
    registry_.erase_portal(*e.portal);
  }
  queue_.push(std::move(e));
}

void Rewriter::on_describe(std::span<const uint8_t> body, std::string& to_server) {
  Expect e{Request::kDescribe};
  if (const auto d = protocol::decode_describe(body); d) {
    if (d->kind == 'S') {
      refresh_statement(d->name, to_server);
      e.statement_key = server_key(d->name);
      const Statement* st = registry_.find(e.statement_key);
      describe_as(e, st != nullptr ? st->plan : nullptr);
      e.resolve = true;  // chosen again when its answer comes (describe_answered)
    } else {
      e.portal = server_key(d->name);
      if (const Portal* pt = registry_.find_portal(*e.portal); pt != nullptr) {
        e.plan = pt->plan;
        e.transform = pt->transform;
      }
    }
  }
  append_raw(to_server, fe::kDescribe, body);
  queue_.push(std::move(e));
}

void Rewriter::on_execute(std::span<const uint8_t> body, std::string& to_server) {
  Expect e{Request::kExecute};
  if (const auto name = protocol::decode_execute_portal(body); name) {
    e.portal = server_key(*name);
    if (const Portal* pt = registry_.find_portal(*e.portal); pt != nullptr) {
      e.plan = pt->plan;
      e.transform = pt->transform;
      e.count_binary = pt->count_binary;
      e.read = pt->read;
    }
  }
  e.started_ns = now_ns();
  if (e.transform.kind == ResultTransform::Kind::kCountToTag && body.size() >= 4 &&
      protocol::read_u32(body.data() + body.size() - 4) != 0) {
    // The client's INSERT/UPDATE/DELETE runs to completion whatever its row limit (pgjdbc sends 1
    // for updates); its rewrite returns one row, which must not suspend the portal.
    append_execute_unlimited(to_server, body);
  } else {
    append_raw(to_server, fe::kExecute, body);
  }
  queue_.push(std::move(e));
}

void Rewriter::on_close(std::span<const uint8_t> body, std::string& to_server) {
  Expect e{Request::kClose};
  if (const auto d = protocol::decode_describe(body); d) {
    if (d->kind == 'S') {
      e.statement_key = server_key(d->name);
      if (Statement* st = registry_.find(e.statement_key); st != nullptr && st->alt_prepared) {
        append_close_statement(to_server, registry_.alt_name(*st));
        queue_.push({Request::kClose, true});
      }
      e.undo = registry_.close(e.statement_key);
      e.changes = true;
    } else {
      e.portal = server_key(d->name);
      registry_.erase_portal(*e.portal);
    }
  }
  append_raw(to_server, fe::kClose, body);
  queue_.push(std::move(e));
}

const ResultTransform* Rewriter::current_transform() const {
  return queue_.empty() ? nullptr : active_transform(queue_.front());
}

Disposition Rewriter::relay(ReplyQueue::Fit f) const noexcept {
  // A mismatch is dropped: the session sees desynchronised() and closes.
  return f == ReplyQueue::Fit::kForward ? Disposition::kStream : Disposition::kDrop;
}

Disposition Rewriter::backend_disposition(const protocol::MessageView& m) {
  if (queue_.desynchronised()) return Disposition::kDrop;
  switch (m.type) {
    case be::kReadyForQuery: {
      const ReplyQueue::Fit f = queue_.answer(m.type);
      if (f != ReplyQueue::Fit::kForward) return relay(f);
      // The transaction ended and its portals with it, but a portal bound by a request still in
      // flight (pipelined behind this one) belongs to the next: portals are forgotten only when
      // nothing is in flight. One kept too long is harmless: its name is bound again before use.
      if (!m.peek.empty() && m.peek[0] == protocol::kTxIdle && queue_.empty())
        registry_.clear_portals();
      failed_transaction_ = !m.peek.empty() && m.peek[0] == protocol::kTxFailed;
      if (queue_.empty()) settings_.settled();  // their ParameterStatus came before
      return Disposition::kStream;
    }
    case be::kErrorResponse:
      if (queue_.empty()) return Disposition::kStream;  // e.g. FATAL at shutdown
      if (queue_.front().plan) return Disposition::kHold;
      on_error();
      return Disposition::kStream;
    case be::kRowDescription: {
      if (!queue_.empty() && queue_.front().resolve && queue_.front().kind == Request::kDescribe)
        describe_answered(queue_.front());
      const ResultTransform* t = current_transform();
      if (t == nullptr || t->kind == ResultTransform::Kind::kNone)
        return relay(queue_.answer(m.type));
      if (queue_.front().kind == Request::kQuery && t->kind == ResultTransform::Kind::kCountToTag)
        return Disposition::kDrop;
      return Disposition::kHold;
    }
    case be::kDataRow: {
      const ResultTransform* t = current_transform();
      if (t == nullptr || t->kind == ResultTransform::Kind::kNone) return Disposition::kStream;
      return Disposition::kHold;
    }
    case be::kCommandComplete: {
      const ResultTransform* t = current_transform();
      if (t != nullptr && t->kind != ResultTransform::Kind::kNone) return Disposition::kHold;
      if (!queue_.empty()) {
        const Expect& e = queue_.front();
        if (reads_now(e) || e.kind == Request::kExecute) read_done(e, true);
      }
      return relay(queue_.answer(m.type));
    }
    case be::kParseComplete:
      if (!queue_.empty() && queue_.front().kind == Request::kParse)
        on_parse_complete(queue_.front());
      return relay(queue_.answer(m.type));
    case be::kBindComplete:
      if (!queue_.empty() && queue_.front().resolve && queue_.front().kind == Request::kBind)
        bind_answered(queue_.front());
      return relay(queue_.answer(m.type));
    case be::kCloseComplete:
    case be::kNoData:
    case be::kEmptyQueryResponse:
    case be::kPortalSuspended:
    case be::kCopyInResponse:
    case be::kCopyBothResponse:
      return relay(queue_.answer(m.type));
    case be::kParameterStatus:
      return Disposition::kHold;  // read whole in backend_held (LexSettings)
    default:
      // Notices, notifications, ParameterDescription, COPY, function results.
      return Disposition::kStream;
  }
}

void Rewriter::on_error() {
  Expect& e = queue_.front();
  if (const ResultTransform* t = current_transform();
      t != nullptr && t->kind != ResultTransform::Kind::kNone && t->route >= 0 && e.plan) {
    observer_.mirrored(e.plan->route_ids[static_cast<size_t>(t->route)], t->tag, false, 0);
  }
  if (e.kind == Request::kExecute || reads_now(e) || (e.kind == Request::kParse && e.injected)) {
    read_done(e, false);  // a target that cannot even prepare the read counts as its error
  }
  queue_.failed(
      [this](Expect& skipped, size_t later, bool failed) { undo(skipped, later, failed); });
}

void Rewriter::complete(const Expect& e, const ResultTransform& t, std::span<const uint8_t> body,
                        std::string& to_client) {
  const int64_t rows = client_rows(e, t, body);
  to_client += client_command_complete(t.tag, rows);
  if (t.route >= 0 && e.plan)
    observer_.mirrored(e.plan->route_ids[static_cast<size_t>(t.route)], t.tag, true, rows);
}

void Rewriter::backend_held(char type, std::span<const uint8_t> body, std::string& to_client) {
  if (type == be::kParameterStatus) {
    if (const auto ps = protocol::decode_parameter_status(body)) {
      settings_.apply(ps->first, ps->second);
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
    case be::kErrorResponse:
      client_error(e, body, to_client);
      on_error();
      return;
    case be::kRowDescription:
      if (!client_row_description(t, body, to_client))
        queue_.lose_track(type, "is shorter than its rewrite requires");
      (void)queue_.answer(type);  // ends a Describe
      return;
    case be::kDataRow:
      if (!client_data_row(e, t, body, to_client))
        queue_.lose_track(type, "is shorter than its rewrite requires");
      return;
    case be::kCommandComplete:
      if (!terminated_tag(body)) {
        queue_.lose_track(type, "has no terminated command tag");
        return;
      }
      complete(e, t, body, to_client);
      queue_.finish_front();
      return;
    default:
      append_raw(to_client, type, body);
      return;
  }
}

}  // namespace pgphase::intercept
