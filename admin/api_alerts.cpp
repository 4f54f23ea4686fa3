// /api/v1/alerts, /api/v1/alert-rules, /api/v1/silences and /api/v1/alert-channels (the manual's
// migration_alerting_system.py actions): listing is open like the other GETs; acknowledging,
// resolving, rules and silences are changes (token).
//   GET  /alerts[?status=active|all|firing|acknowledged|resolved&limit=N]   GET /alerts/{id}
//   POST /alerts/{id}/acknowledge   POST /alerts/{id}/resolve   GET /alerts/statistics?days=7
//   GET|POST /alert-rules           GET|POST /silences[?all=true]   GET /alert-channels
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

#include "admin/api_common.h"
#include "admin/routes.h"
#include "alerting/rule.h"
#include "alerting/service.h"

namespace pgphase::admin {

namespace json = boost::json;

namespace {

std::string query_param(const HttpRequest& r, std::string_view key, std::string def) {
  const auto url = boost::urls::parse_origin_form(r.target);
  if (!url) return def;
  for (const auto& p : url->params())
    if (p.key == key) return std::string(p.value);
  return def;
}

int int_param(const HttpRequest& r, std::string_view key, int def) {
  const std::string v = query_param(r, key, "");
  if (v.empty()) return def;
  int out = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size())
    fail(400, "bad request", std::string(key) + ": expected a whole number");
  return out;
}

alerting::Alerting& require_alerting(const AdminContext& ctx) {
  if (ctx.alerting == nullptr) fail(503, "unavailable", "no control database configured");
  return *ctx.alerting;
}

}  // namespace

HttpResponse handle_alerts(const HttpRequest& request, const Segments& rest, AdminContext& ctx) {
  alerting::Alerting& a = require_alerting(ctx);
  if (rest.empty()) {
    if (request.method != "GET") method_not_allowed("GET");
    const std::string status = query_param(request, "status", "active");
    const int limit = int_param(request, "limit", 100);
    return answer(200, [&] { return json::value(a.alerts(status, limit)); });
  }
  if (rest.size() == 1 && rest[0] == "statistics") {
    if (request.method != "GET") method_not_allowed("GET");
    const int days = int_param(request, "days", 7);
    return answer(200, [&] { return json::value(a.statistics(days)); });
  }
  if (rest.size() == 1) {
    if (request.method != "GET") method_not_allowed("GET");
    return answer(200, [&] { return json::value(a.alert(rest[0])); });
  }
  if (rest.size() == 2 && (rest[1] == "acknowledge" || rest[1] == "resolve")) {
    require_change(request, ctx, "POST");
    const auto body = parse_object(request, true);
    only_keys(body, {"user"});
    const std::string user = opt_string(body, "user").value_or(actor_of(request));
    if (rest[1] == "acknowledge")
      return answer(200, [&] { return json::value(a.acknowledge(rest[0], user)); });
    return answer(200, [&] { return json::value(a.resolve(rest[0], user)); });
  }
  fail(404, "not found", "no such endpoint: " + request.target);
}

HttpResponse handle_alert_rules(const HttpRequest& request, const Segments& rest,
                                AdminContext& ctx) {
  alerting::Alerting& a = require_alerting(ctx);
  if (!rest.empty()) fail(404, "not found", "no such endpoint: " + request.target);
  if (request.method == "GET") return answer(200, [&] { return json::value(a.rules()); });
  require_change(request, ctx, "GET, POST");
  const json::value body = parse_object(request, false);
  bool created = false;
  json::object saved;
  try {
    saved = a.save_rule(body, created);
  } catch (const alerting::RuleError& e) {
    fail(422, "invalid rule", e.what());
  } catch (const std::exception& e) {
    fail(503, "unavailable", std::string("control database: ") + e.what());
  }
  return json_response(created ? 201 : 200, saved);
}

HttpResponse handle_silences(const HttpRequest& request, const Segments& rest, AdminContext& ctx) {
  alerting::Alerting& a = require_alerting(ctx);
  if (!rest.empty()) fail(404, "not found", "no such endpoint: " + request.target);
  if (request.method == "GET") {
    const bool all = query_param(request, "all", "false") == "true";
    return answer(200, [&] { return json::value(a.silences(all)); });
  }
  require_change(request, ctx, "GET, POST");
  const json::value body = parse_object(request, false);
  return answer(201, [&] { return json::value(a.add_silence(body, actor_of(request))); });
}

HttpResponse handle_alert_channels(const HttpRequest& request, const Segments& rest,
                                   AdminContext& ctx) {
  alerting::Alerting& a = require_alerting(ctx);
  if (!rest.empty()) fail(404, "not found", "no such endpoint: " + request.target);
  if (request.method != "GET") method_not_allowed("GET");
  return json_response(200, a.channels());
}

}  // namespace pgphase::admin
