// /api/v1/switches: list, show, register, activate, percentage, rollback and analytics of read
// switch configs (docs/control-plane.md).
#include <boost/json.hpp>
#include <cmath>
#include <sstream>

#include "admin/api_common.h"
#include "admin/routes.h"
#include "migration/model.h"

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
  return json_response(200, json::object{{"config", migration::to_json(config)},
                                         {"percentage_history", std::move(history)}});
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
    if (action != "activate" && action != "percentage" && action != "rollback")
      fail(404, "not found", "no such endpoint: " + request.target);
    require_change(request, ctx, "POST");
    if (action == "activate") return activate(request, ctx, id);
    if (action == "percentage") return percentage(request, ctx, id);
    return rollback(request, ctx, id);
  }
  fail(404, "not found", "no such endpoint: " + request.target);
}

}  // namespace pgphase::admin
