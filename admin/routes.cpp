#include "admin/routes.h"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <optional>
#include <string_view>

#include "admin/api_common.h"
#include "admin/auth.h"
#include "admin/console.h"
#include "admin/metrics.h"
#include "admin/responses.h"
#include "common/log.h"

namespace pgphase::admin {

namespace {

HttpResponse route_api(const HttpRequest& request, const Segments& segments, AdminContext& ctx) {
  // segments: "api", "v1", collection, rest...
  const Segments rest(segments.begin() + 3, segments.end());
  try {
    if (segments[2] == "migrations") return handle_migrations(request, rest, ctx);
    if (segments[2] == "switches") return handle_switches(request, rest, ctx);
    if (segments[2] == "validations") return handle_validations(request, rest, ctx);
    if (segments[2] == "alerts") return handle_alerts(request, rest, ctx);
    if (segments[2] == "alert-rules") return handle_alert_rules(request, rest, ctx);
    if (segments[2] == "silences") return handle_silences(request, rest, ctx);
    if (segments[2] == "alert-channels") return handle_alert_channels(request, rest, ctx);
    if (segments[2] == "auth" && rest.empty()) {
      // What the request's token may do (the console shows it; no token needed to ask).
      if (request.method != "GET") method_not_allowed("GET");
      const std::string_view role = ctx.auth ? ctx.auth->role_name(request) : "none";
      boost::json::object o;
      o["role"] = role == "none" ? boost::json::value(nullptr) : boost::json::value(role);
      o["may_read_reports"] = role != "none";
      o["may_change"] = role == "operator";
      o["operator_token_configured"] = ctx.auth != nullptr && ctx.auth->configured();
      o["viewer_token_configured"] = ctx.auth != nullptr && ctx.auth->viewer_configured();
      return json_response(200, o);
    }
  } catch (const ApiError& e) {
    return e.response;
  }
  return json_error(404, "not found", "no such endpoint: " + request.target);
}

}  // namespace

bool may_block(const HttpRequest& request) {
  if (!std::string_view(request.target).starts_with("/api/")) return false;
  if (request.method != "GET") return true;
  // GETs answered from the snapshot alone never wait for the control database; the migration
  // status (with its logs) and switch analytics (with the history) do.
  const auto url = boost::urls::parse_origin_form(request.target);
  if (!url) return false;
  Segments s(url->segments().begin(), url->segments().end());
  if (!s.empty() && s.back().empty()) s.pop_back();
  // Alerting and validation GETs read the control database.
  const bool db = s.size() >= 3 && (s[2] == "validations" || s[2] == "alerts" ||
                                    s[2] == "alert-rules" || s[2] == "silences");
  const bool list = s.size() == 3 && !db;
  const bool one_switch = s.size() == 4 && s[2] == "switches";
  return !(list || one_switch);
}

HttpResponse handle_request(const HttpRequest& request, AdminContext& ctx) {
  const auto url = boost::urls::parse_origin_form(request.target);
  if (!url) return json_error(400, "bad request", "malformed request target");
  const std::string_view path = url->encoded_path();

  if (path == "/healthz") {
    if (request.method != "GET" && request.method != "HEAD")
      return json_error(405, "method not allowed", "use GET");
    if (ctx.healthy && !ctx.healthy()) return text_response(503, "shutting down\n");
    return text_response(200, "ok\n");
  }
  if (path == "/metrics") {
    if (request.method != "GET") return json_error(405, "method not allowed", "use GET");
    return text_response(200, ctx.metrics.render(), "text/plain; version=0.0.4");
  }

  // Percent-decoded segments, so ids may carry any character ("%2F" stays inside its segment).
  Segments segments(url->segments().begin(), url->segments().end());
  if (!segments.empty() && segments.back().empty()) segments.pop_back();  // trailing slash
  if (segments.size() >= 3 && segments[0] == "api" && segments[1] == "v1") {
    HttpResponse response = route_api(request, segments, ctx);
    if (request.method == "POST") {
      const std::string_view actor = std::string_view(request.actor).substr(0, 128);
      log::info("admin: ", actor.empty() ? "api" : actor, " POST ", path, " -> ", response.status);
      // Every change request is audited, refused ones too, with the role of its token.
      if (ctx.control != nullptr) {
        migration::AuditRow row;
        row.actor = actor.empty() ? "api" : std::string(actor);
        row.role = ctx.auth ? ctx.auth->role_name(request) : "none";
        row.method = request.method;
        row.path = std::string(path);
        row.status = static_cast<int>(response.status);
        if (!ctx.control->record_audit(row))
          log::warn("admin: could not record the audit entry of POST ", path);
      }
    }
    return response;
  }
  if (auto console = serve_console(request, path)) return std::move(*console);
  return json_error(404, "not found", "no such endpoint: " + std::string(path));
}

}  // namespace pgphase::admin
