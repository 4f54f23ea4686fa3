// /api/v1/migrations: list, status with recent logs, register, phase changes, dual-write and
// rollback, repair (docs/control-plane.md).
#include <boost/json.hpp>

#include "admin/api_common.h"
#include "admin/routes.h"
#include "migration/backfill.h"
#include "migration/model.h"
#include "stats/routing_stats.h"

namespace pgphase::admin {

namespace json = boost::json;
using migration::Migration;

namespace {

constexpr int kStatusLogs = 20;

json::object log_json(const migration::LogEntry& e) {
  return {{"id", e.id},         {"migration_id", e.migration_id}, {"action", e.action},
          {"actor", e.actor},   {"from", e.from_state},           {"to", e.to_state},
          {"status", e.status}, {"message", e.message},           {"created_at", e.created_at}};
}

std::string known_phases() {
  std::string out;
  for (const auto p : migration::kAllPhases) {
    if (!out.empty()) out += ", ";
    out += migration::to_string(p);
  }
  return out;
}

// A migration as the phase-change answers give it: with "actions" (what the change did besides
// the phase: sequences advanced, foreign keys moved) when there were any.
json::object with_actions(const Migration& m, json::object actions) {
  json::object out = migration::to_json(m);
  if (!actions.empty()) out["actions"] = std::move(actions);
  return out;
}

// This pgphase's dual writes of a migration since it started (the figures /metrics exports as
// pgphase_dual_write_statements_total and pgphase_dual_write_rows_total).
json::object dual_write_stats(const stats::RoutingTotals& t, const std::string& id) {
  uint64_t ok = 0, failed = 0, rows = 0, refused = 0, flagged = 0;
  if (const auto it = t.dual_writes.find(id); it != t.dual_writes.end()) {
    for (size_t o = 0; o < stats::kWriteOps; ++o) {
      failed += it->second.statements[o][0];
      ok += it->second.statements[o][1];
      rows += it->second.rows[o];
    }
    refused = it->second.refused;
    flagged = it->second.flagged;
  }
  return {
      {"ok", ok}, {"failed", failed}, {"rows", rows}, {"refused", refused}, {"flagged", flagged}};
}

HttpResponse list(const AdminContext& ctx) {
  const auto snap = require_snapshot(ctx);
  json::array items;
  const stats::RoutingTotals totals =
      ctx.routing != nullptr ? ctx.routing->totals() : stats::RoutingTotals{};
  for (const auto& m : snap->migrations) {
    json::object o = migration::to_json(m);
    o["dual_write_stats"] = dual_write_stats(totals, m.migration_id);
    items.push_back(std::move(o));
  }
  return json_response(200, json::object{{"migrations", std::move(items)}});
}

HttpResponse status(const AdminContext& ctx, const std::string& id) {
  const auto snap = require_snapshot(ctx);
  const Migration* m = snap->find_migration(id);
  if (!m) fail(404, "not found", "no migration \"" + id + "\"");
  json::object out = migration::to_json(*m);
  if (ctx.routing != nullptr)
    out["dual_write_stats"] = dual_write_stats(ctx.routing->totals(), m->migration_id);
  json::array logs;
  for (const auto& e : take(ctx.control->logs(id, kStatusLogs))) logs.push_back(log_json(e));
  out["logs"] = std::move(logs);
  return json_response(200, out);
}

HttpResponse register_migration(const HttpRequest& request, AdminContext& ctx) {
  const Migration m = parse_model(request, [](const json::value& body) {
    Migration parsed = migration::migration_from_json(body);
    migration::validate_for_register(parsed);
    return parsed;
  });
  const std::string actor = actor_of(request);
  return json_response(201, migration::to_json(take(ctx.control->register_migration(m, actor))));
}

HttpResponse set_phase(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  const auto body = parse_object(request, false);
  only_keys(body, {"phase", "force", "move_foreign_keys"});
  const auto phase_name = opt_string(body, "phase");
  if (!phase_name) fail(400, "bad request", "missing required key \"phase\"");
  migration::PhaseChangeOptions options;
  options.force = opt_bool(body, "force").value_or(false);
  options.move_foreign_keys = opt_bool(body, "move_foreign_keys").value_or(false);
  const auto phase = migration::parse_phase(*phase_name);
  if (!phase)
    fail(422, "invalid value", "phase: \"" + *phase_name + "\" is not one of " + known_phases());
  const std::string actor = actor_of(request);
  json::object actions;
  const Migration m = take(ctx.control->set_phase(id, *phase, options, actor, &actions));
  return json_response(200, with_actions(m, std::move(actions)));
}

HttpResponse set_dual_write(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  const auto body = parse_object(request, false);
  only_keys(body, {"enabled", "force"});
  const auto enabled = opt_bool(body, "enabled");
  if (!enabled) fail(400, "bad request", "missing required key \"enabled\"");
  const bool force = opt_bool(body, "force").value_or(false);
  const std::string actor = actor_of(request);
  return json_response(
      200, migration::to_json(take(ctx.control->set_dual_write(id, *enabled, force, actor))));
}

HttpResponse rollback(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  const auto body = parse_object(request, true);
  only_keys(body, {"reason"});
  const std::string reason = opt_string(body, "reason").value_or("");
  const std::string actor = actor_of(request);
  json::object actions;
  const Migration m = take(ctx.control->rollback(id, actor, reason, &actions));
  return json_response(200, with_actions(m, std::move(actions)));
}

HttpResponse repair(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  const auto body = parse_object(request, true);
  only_keys(body, {});
  const migration::RepairReport r = take(ctx.control->repair(id, actor_of(request)));
  return json_response(200, boost::json::object{{"migration_id", r.migration_id},
                                                {"log_rows", r.log_rows},
                                                {"rows_copied", r.upserted},
                                                {"rows_deleted", r.deleted}});
}

migration::BackfillSettings backfill_settings(const boost::json::object& body) {
  only_keys(body, {"batch_size", "max_rows_per_second", "throttle_query", "throttle_limit"});
  migration::BackfillSettings s;
  if (const auto v = opt_number(body, "batch_size")) s.batch_size = static_cast<int>(*v);
  s.max_rows_per_second = opt_number(body, "max_rows_per_second");
  if (const auto q = opt_string(body, "throttle_query")) s.throttle_query = *q;
  s.throttle_limit = opt_number(body, "throttle_limit");
  return s;
}

// Runs a backfill operation, mapping its errors to HTTP.
template <class F>
HttpResponse backfill_op(AdminContext& ctx, F&& f) {
  if (ctx.backfill == nullptr) fail(503, "unavailable", "no control database configured");
  return answer(200, [&] { return f(*ctx.backfill); });
}

HttpResponse backfill(const HttpRequest& request, AdminContext& ctx, const std::string& id,
                      const std::string& action) {
  if (request.method == "GET" && action.empty())
    return backfill_op(ctx, [&](migration::BackfillManager& b) { return b.progress(id); });
  require_change(request, ctx, action.empty() ? "GET, POST" : "POST");
  const auto body = parse_object(request, true);
  if (action.empty()) {
    const auto s = backfill_settings(body);
    return backfill_op(ctx, [&](migration::BackfillManager& b) {
      return b.start_backfill(id, s, actor_of(request));
    });
  }
  if (action == "settings") {
    const auto s = backfill_settings(body);
    return backfill_op(ctx, [&](migration::BackfillManager& b) { return b.change(id, s); });
  }
  only_keys(body, {});
  return backfill_op(ctx, [&](migration::BackfillManager& b) { return b.set_status(id, action); });
}

}  // namespace

HttpResponse handle_migrations(const HttpRequest& request, const Segments& rest,
                               AdminContext& ctx) {
  const bool get = request.method == "GET";
  if (rest.empty()) {
    if (get) return list(ctx);
    require_change(request, ctx, "GET, POST");
    return register_migration(request, ctx);
  }
  const std::string& id = rest[0];
  if (rest.size() == 1) {
    if (!get) method_not_allowed("GET");
    return status(ctx, id);
  }
  if (rest.size() >= 2 && rest[1] == "backfill") {
    if (rest.size() == 2) return backfill(request, ctx, id, "");
    const std::string& sub_action = rest[2];
    if (rest.size() == 3 && (sub_action == "pause" || sub_action == "resume" ||
                             sub_action == "cancel" || sub_action == "settings"))
      return backfill(request, ctx, id, sub_action);
    fail(404, "not found", "no such endpoint: " + request.target);
  }
  if (rest.size() == 2) {
    const std::string& action = rest[1];
    if (action != "phase" && action != "dual-write" && action != "rollback" && action != "repair")
      fail(404, "not found", "no such endpoint: " + request.target);
    require_change(request, ctx, "POST");
    if (action == "phase") return set_phase(request, ctx, id);
    if (action == "dual-write") return set_dual_write(request, ctx, id);
    if (action == "repair") return repair(request, ctx, id);
    return rollback(request, ctx, id);
  }
  fail(404, "not found", "no such endpoint: " + request.target);
}

}  // namespace pgphase::admin
