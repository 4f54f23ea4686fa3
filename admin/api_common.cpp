#include "admin/api_common.h"

#include <boost/json.hpp>

#include "admin/auth.h"
#include "admin/responses.h"
#include "admin/routes.h"

namespace pgphase::admin {

namespace json = boost::json;
using migration::OpError;

void fail(unsigned status, std::string_view error, std::string_view detail) {
  throw ApiError{json_error(status, error, detail)};
}

void method_not_allowed(std::string_view allow) {
  auto r = json_error(405, "method not allowed", "use " + std::string(allow));
  r.headers.emplace_back("Allow", std::string(allow));
  throw ApiError{std::move(r)};
}

void require_auth(const HttpRequest& request, const AdminContext& ctx, Role needed) {
  if (!ctx.auth) fail(401, "unauthorized", "no admin token configured: set PGPHASE_ADMIN_TOKEN");
  if (auto refused = ctx.auth->check(request, needed)) throw ApiError{std::move(*refused)};
}

migration::ControlPlane& require_control(const AdminContext& ctx) {
  if (!ctx.control)
    fail(503, "control database not configured",
         "start pgphase serve with --control-dsn (or control_dsn, PGPHASE_CONTROL_DSN)");
  return *ctx.control;
}

void require_change(const HttpRequest& request, const AdminContext& ctx, std::string_view allow) {
  if (request.method != "POST") method_not_allowed(allow);
  require_auth(request, ctx);
  require_control(ctx);
}

migration::SnapshotPtr require_snapshot(const AdminContext& ctx) {
  auto& control = require_control(ctx);
  auto snap = control.snapshot();
  if (!snap || (snap->generation == 0 && !control.connected()))
    fail(503, "control database unavailable",
         "no migration state loaded yet; pgphase keeps reconnecting");
  return snap;
}

std::string actor_of(const HttpRequest& request) {
  std::string_view a = request.actor;
  while (!a.empty() && (a.front() == ' ' || a.front() == '\t')) a.remove_prefix(1);
  while (!a.empty() && (a.back() == ' ' || a.back() == '\t')) a.remove_suffix(1);
  if (a.empty()) return "api";
  if (a.size() > 128) fail(400, "bad request", "X-PGPhase-Actor: longer than 128 bytes");
  for (const char c : a) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      fail(400, "bad request", "X-PGPhase-Actor: control characters are not allowed");
  }
  return std::string(a);
}

json::object parse_object(const HttpRequest& request, bool empty_ok) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (empty_ok) return {};
    fail(400, "bad request", "a JSON object body is required");
  }
  json::error_code ec;
  json::value v = json::parse(request.body, ec);
  if (ec) fail(400, "malformed JSON", ec.message());
  if (!v.is_object()) fail(400, "bad request", "the body must be a JSON object");
  return std::move(v.get_object());
}

void only_keys(const json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, v] : o) {
    bool known = false;
    for (const auto a : allowed) known = known || key == a;
    if (!known) fail(400, "bad request", "unknown key \"" + std::string(key) + "\"");
  }
}

namespace {

[[noreturn]] void wrong_type(std::string_view key, std::string_view expected) {
  fail(400, "bad request", std::string(key) + ": expected " + std::string(expected));
}

}  // namespace

std::optional<std::string> opt_string(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(key, "a string");
  return std::string(v->get_string());
}

std::optional<bool> opt_bool(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (!v->is_bool()) wrong_type(key, "true or false");
  return v->get_bool();
}

std::optional<double> opt_number(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number");
  return v->to_number<double>();
}

HttpResponse json_response(unsigned status, const json::value& v) {
  return {status, "application/json", json::serialize(v), {}};
}

void fail_op(const OpError& e) {
  struct Mapping {
    unsigned status;
    const char* phrase;
  };
  const Mapping m = [&]() -> Mapping {
    switch (e.kind) {
      case OpError::Kind::kBadRequest:
        return {400, "bad request"};
      case OpError::Kind::kNotFound:
        return {404, "not found"};
      case OpError::Kind::kConflict:
        return {409, "conflict"};
      case OpError::Kind::kUnprocessable:
        return {422, "invalid value"};
      case OpError::Kind::kUnavailable:
        return {503, "control database unavailable"};
      case OpError::Kind::kInternal:
        break;
    }
    return {500, "internal error"};
  }();
  // Both fields are always filled: {"error": what happened, "detail": why / what would allow it}.
  if (e.detail.empty()) fail(m.status, m.phrase, e.message.empty() ? m.phrase : e.message);
  fail(m.status, e.message.empty() ? m.phrase : e.message, e.detail);
}

}  // namespace pgphase::admin
