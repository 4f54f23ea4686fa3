// Shared pieces of the migration and switch endpoints: errors thrown as ApiError and turned into
// responses once by the router, JSON body parsing with exact 400/422 messages, the actor header,
// and the mapping of control-plane errors (migration::OpError) to HTTP statuses.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "admin/auth.h"
#include "admin/http.h"
#include "migration/control_plane.h"
#include "migration/model.h"

namespace pgphase::admin {

struct AdminContext;

// Thrown by handlers and helpers; the router answers with `response`.
struct ApiError {
  HttpResponse response;
};
[[noreturn]] void fail(unsigned status, std::string_view error, std::string_view detail);
[[noreturn]] void method_not_allowed(std::string_view allow);

// The path below /api/v1/<collection>/, percent-decoded, one element per segment.
using Segments = std::vector<std::string>;

HttpResponse handle_migrations(const HttpRequest& request, const Segments& rest, AdminContext& ctx);
HttpResponse handle_switches(const HttpRequest& request, const Segments& rest, AdminContext& ctx);
HttpResponse handle_validations(const HttpRequest& request, const Segments& rest,
                                AdminContext& ctx);
HttpResponse handle_alerts(const HttpRequest& request, const Segments& rest, AdminContext& ctx);
HttpResponse handle_alert_rules(const HttpRequest& request, const Segments& rest,
                                AdminContext& ctx);
HttpResponse handle_silences(const HttpRequest& request, const Segments& rest, AdminContext& ctx);
HttpResponse handle_alert_channels(const HttpRequest& request, const Segments& rest,
                                   AdminContext& ctx);

// 401 unless the request carries a token of a role that may do what `needed` may (the
// operator's for changes; a viewer's or the operator's for reads of row values); 403 for a
// viewer's token where an operator's is needed.
void require_auth(const HttpRequest& request, const AdminContext& ctx,
                  Role needed = Role::kOperator);
// The control plane, or 503 when none is configured.
migration::ControlPlane& require_control(const AdminContext& ctx);
// Every change request passes these gates, in this order: POST (else 405 with `allow`), the admin
// token (else 401), a configured control plane (else 503).
void require_change(const HttpRequest& request, const AdminContext& ctx, std::string_view allow);
// The state in force, or 503 when none could be loaded yet.
migration::SnapshotPtr require_snapshot(const AdminContext& ctx);
// X-PGPhase-Actor (trimmed; default "api"); 400 if too long or not printable.
std::string actor_of(const HttpRequest& request);

// The body as a JSON object (an empty body is {} when `empty_ok`); 400 otherwise.
boost::json::object parse_object(const HttpRequest& request, bool empty_ok);
// 400 naming the first key not in `allowed`.
void only_keys(const boost::json::object& o, std::initializer_list<std::string_view> allowed);
// Typed optional fields: absent -> nullopt; wrong type -> 400 naming the key.
std::optional<std::string> opt_string(const boost::json::object& o, std::string_view key);
std::optional<bool> opt_bool(const boost::json::object& o, std::string_view key);
std::optional<double> opt_number(const boost::json::object& o, std::string_view key);

// A model object (migration or switch config) from the body: the model's ModelError (shape: not
// an object, unknown key, wrong type, missing key) answers 400, ModelValueError (a well-formed
// document with an invalid value) 422.
template <class Parse>
auto parse_model(const HttpRequest& request, Parse parse) {
  const boost::json::value body = parse_object(request, false);
  try {
    return parse(body);
  } catch (const migration::ModelValueError& e) {
    fail(422, "invalid value", e.what());
  } catch (const migration::ModelError& e) {
    fail(400, "bad request", e.what());
  }
}

// Answers.
HttpResponse json_response(unsigned status, const boost::json::value& v);
// `status` with f()'s JSON; the errors of the backfill, validation and alerting services mapped
// to HTTP: std::invalid_argument 422, std::out_of_range 404, other std::logic_error 409 (refused
// in the current state), any other std::exception 503 (the control database).
template <class F>
HttpResponse answer(unsigned status, F&& f) {
  try {
    return json_response(status, f());
  } catch (const std::invalid_argument& e) {
    fail(422, "invalid value", e.what());
  } catch (const std::out_of_range& e) {
    fail(404, "not found", e.what());
  } catch (const std::logic_error& e) {
    fail(409, "conflict", e.what());
  } catch (const std::exception& e) {
    fail(503, "unavailable", std::string("control database: ") + e.what());
  }
}
[[noreturn]] void fail_op(const migration::OpError& e);
template <class T>
T take(migration::OpResult<T> r) {
  if (!r.ok()) {
    fail_op(r.error ? *r.error : migration::OpError{});
  }
  return std::move(*r.value);
}

}  // namespace pgphase::admin
