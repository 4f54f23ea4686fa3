// /api/v1/switches: list, show, register, activate, percentage, rollback and analytics of read
// switch configs (docs/control-plane.md).
#include <boost/json.hpp>
#include <cmath>
#include <sstream>

#include "admin/api_common.h"
#include "admin/routes.h"
#include "migration/auto_rollback.h"
#include "migration/model.h"
#include "migration/read_stats.h"

namespace pgphase::admin {

namespace json = boost::json;
using migration::SwitchConfig;

namespace {

constexpr int kHistoryLimit = 100;

const SwitchConfig& find(const migration::Snapshot& snap, const std::string& id) {
  const SwitchConfig* s = snap.find_switch(id);
  if (!s) fail(404, "not found", "no switch config \"" + id + "\"");
  return *s;
}

HttpResponse list(const AdminContext& ctx) {
  const auto snap = require_snapshot(ctx);
  json::array items;
  for (const auto& s : snap->switches) items.push_back(migration::to_json(s));
  return json_response(200, json::object{{"switch_configs", std::move(items)}});
}

HttpResponse show(const AdminContext& ctx, const std::string& id) {
  const auto snap = require_snapshot(ctx);
  return json_response(200, migration::to_json(find(*snap, id)));
}

json::object side_json(const migration::SideStats& s) {
  return json::object{{"statements", s.statements}, {"errors", s.errors},
                      {"error_rate", s.error_rate}, {"mean_ms", s.mean_ms},
                      {"p50_ms", s.p50_ms},         {"p95_ms", s.p95_ms},
                      {"p99_ms", s.p99_ms}};
}

json::object view_json(const migration::ReadView& v) {
  const double mismatch_rate =
      v.shadow_comparisons > 0
          ? static_cast<double>(v.shadow_mismatches) / static_cast<double>(v.shadow_comparisons)
          : 0.0;
  return json::object{{"seconds", v.seconds},
                      {"source", side_json(v.source)},
                      {"target", side_json(v.target)},
                      {"unroutable", v.unroutable},
                      {"shadow", json::object{{"comparisons", v.shadow_comparisons},
                                              {"mismatches", v.shadow_mismatches},
                                              {"mismatch_rate", mismatch_rate},
                                              {"dropped", v.shadow_dropped}}}};
}

json::object check_json(const migration::RollbackCheck& c) {
  json::array reasons;
  for (const auto& r : c.reasons) reasons.emplace_back(r);
  json::object t{{"error_rate", c.thresholds.error_rate},
                 {"min_samples", c.thresholds.min_samples},
                 {"window_seconds", c.thresholds.window_seconds}};
  if (c.thresholds.latency_ms) t["latency_ms"] = *c.thresholds.latency_ms;
  if (c.thresholds.consistency) t["consistency"] = *c.thresholds.consistency;
  json::object o{{"config_id", c.config_id},       {"breach", c.breach},
                 {"inconclusive", c.inconclusive}, {"rolled_back", c.rolled_back},
                 {"reasons", std::move(reasons)},  {"thresholds", std::move(t)},
                 {"window", view_json(c.window)}};
  if (c.consistency_score) o["consistency_score"] = *c.consistency_score;
  return o;
}

HttpResponse check_rollback(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  if (ctx.auto_rollback == nullptr) fail(503, "unavailable", "no control database configured");
  const auto body = parse_object(request, true);
  only_keys(body, {});
  const auto c = ctx.auto_rollback->check_now(id, actor_of(request));
  if (!c) fail(404, "not found", "no switch config \"" + id + "\"");
  return json_response(200, check_json(*c));
}

HttpResponse pause_resume(const HttpRequest& request, AdminContext& ctx, const std::string& id,
                          bool pause) {
  const auto body = parse_object(request, true);
  only_keys(body, {});
  return json_response(
      200, migration::to_json(take(ctx.control->set_switch_paused(id, pause, actor_of(request)))));
}

HttpResponse promote(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  if (ctx.auto_rollback == nullptr) fail(503, "unavailable", "no control database configured");
  const auto body = parse_object(request, true);
  only_keys(body, {});
  const auto snap = require_snapshot(ctx);
  (void)find(*snap, id);
  const std::string refused = ctx.auto_rollback->promote(id, actor_of(request));
  if (!refused.empty()) fail(409, "conflict", refused);
  return json_response(200, migration::to_json(find(*require_snapshot(ctx), id)));
}

HttpResponse analytics(const AdminContext& ctx, const std::string& id) {
  const auto snap = require_snapshot(ctx);
  const SwitchConfig& config = find(*snap, id);
  json::array history;
  for (const auto& c : take(ctx.control->percentage_history(id, kHistoryLimit))) {
    history.push_back(json::object{{"from", c.from},
                                   {"to", c.to},
                                   {"actor", c.actor},
                                   {"reason", c.reason},
                                   {"created_at", c.created_at}});
  }
  json::object out{{"config", migration::to_json(config)},
                   {"percentage_history", std::move(history)}};
  if (ctx.read_stats != nullptr) {
    // This pgphase's own reads (each instance counts what it routed).
    const auto t = migration::thresholds_of(config);
    out["live"] = json::object{
        {"window", view_json(ctx.read_stats->view(id, std::chrono::seconds(t.window_seconds)))},
        {"last_minute", view_json(ctx.read_stats->view(id, std::chrono::seconds(60)))},
        {"since_activation", view_json(ctx.read_stats->view(id, std::chrono::seconds(0)))}};
    json::array samples;
    for (auto& q : ctx.read_stats->shadow_samples(id)) samples.emplace_back(q);
    out["shadow_mismatch_samples"] = std::move(samples);
    const auto a = ctx.read_stats->analysis();
    out["parse_cache"] = json::object{{"hits", a.hits},
                                      {"misses", a.misses},
                                      {"hit_rate", a.hit_rate},
                                      {"mean_analysis_us", a.mean_us}};
  }
  if (ctx.auto_rollback != nullptr) {
    if (const auto last = ctx.auto_rollback->last(id))
      out["last_rollback_check"] = check_json(*last);
  }
  return json_response(200, out);
}

HttpResponse register_switch(const HttpRequest& request, AdminContext& ctx) {
  const SwitchConfig s = parse_model(request, [](const json::value& body) {
    SwitchConfig parsed = migration::switch_from_json(body);
    migration::validate_for_register(parsed);
    return parsed;
  });
  const std::string actor = actor_of(request);
  return json_response(201, migration::to_json(take(ctx.control->register_switch(s, actor))));
}

HttpResponse activate(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  only_keys(parse_object(request, true), {});
  const std::string actor = actor_of(request);
  return json_response(200, migration::to_json(take(ctx.control->activate_switch(id, actor))));
}

HttpResponse percentage(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  const auto body = parse_object(request, false);
  only_keys(body, {"percentage", "reason"});
  const auto p = opt_number(body, "percentage");
  if (!p) fail(400, "bad request", "missing required key \"percentage\"");
  if (!std::isfinite(*p) || *p < 0 || *p > 100) {
    std::ostringstream shown;
    shown << *p;
    fail(422, "invalid value", "percentage: " + shown.str() + " is outside 0-100");
  }
  const std::string reason = opt_string(body, "reason").value_or("");
  const std::string actor = actor_of(request);
  return json_response(
      200, migration::to_json(take(ctx.control->set_switch_percentage(id, *p, actor, reason))));
}

HttpResponse rollback(const HttpRequest& request, AdminContext& ctx, const std::string& id) {
  const auto body = parse_object(request, true);
  only_keys(body, {"reason"});
  const std::string reason = opt_string(body, "reason").value_or("");
  const std::string actor = actor_of(request);
  return json_response(200,
                       migration::to_json(take(ctx.control->rollback_switch(id, actor, reason))));
}

}  // namespace

HttpResponse handle_switches(const HttpRequest& request, const Segments& rest, AdminContext& ctx) {
  const bool get = request.method == "GET";
  if (rest.empty()) {
    if (get) return list(ctx);
    require_change(request, ctx, "GET, POST");
    return register_switch(request, ctx);
  }
  const std::string& id = rest[0];
  if (rest.size() == 1) {
    if (!get) method_not_allowed("GET");
    return show(ctx, id);
  }
  if (rest.size() == 2) {
    const std::string& action = rest[1];
    if (action == "analytics") {
      if (!get) method_not_allowed("GET");
      return analytics(ctx, id);
    }
    if (action != "activate" && action != "percentage" && action != "rollback" &&
        action != "check-rollback" && action != "pause" && action != "resume" &&
        action != "promote")
      fail(404, "not found", "no such endpoint: " + request.target);
    require_change(request, ctx, "POST");
    if (action == "activate") return activate(request, ctx, id);
    if (action == "percentage") return percentage(request, ctx, id);
    if (action == "check-rollback") return check_rollback(request, ctx, id);
    if (action == "pause" || action == "resume")
      return pause_resume(request, ctx, id, action == "pause");
    if (action == "promote") return promote(request, ctx, id);
    return rollback(request, ctx, id);
  }
  fail(404, "not found", "no such endpoint: " + request.target);
}

}  // namespace pgphase::admin
