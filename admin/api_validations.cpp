// /api/v1/validations: POST starts a validation inside pgphase (body: migration_id, or
// source_table and target_table [key_columns, column_map]; level, sample_size, repair, dry_run),
// GET /{id} answers its status and report, GET lists the latest stored checks. Reports carry row
// values, so reading them needs the admin token as changes do.
#include <boost/json.hpp>

#include "admin/api_common.h"
#include "admin/routes.h"
#include "validator/validation_jobs.h"

namespace pgphase::admin {

namespace json = boost::json;

namespace {

validator::ValidationRequest request_of(const json::object& body) {
  only_keys(body, {"migration_id", "source_table", "target_table", "key_columns", "column_map",
                   "level", "sample_size", "repair", "dry_run"});
  validator::ValidationRequest r;
  r.migration_id = opt_string(body, "migration_id").value_or("");
  r.spec.source_table = opt_string(body, "source_table").value_or("");
  r.spec.target_table = opt_string(body, "target_table").value_or("");
  if (!r.migration_id.empty() && (!r.spec.source_table.empty() || !r.spec.target_table.empty()))
    fail(422, "invalid value", "give migration_id or source_table and target_table, not both");
  if (const auto* k = body.if_contains("key_columns")) {
    if (!k->is_array()) fail(400, "bad request", "key_columns must be an array of strings");
    for (const auto& e : k->as_array()) {
      if (!e.is_string()) fail(400, "bad request", "key_columns must be an array of strings");
      r.spec.key_columns.emplace_back(e.as_string());
    }
  }
  if (const auto* m = body.if_contains("column_map")) {
    if (!m->is_object()) fail(400, "bad request", "column_map must be an object of strings");
    for (const auto& [from, to] : m->as_object()) {
      if (!to.is_string()) fail(400, "bad request", "column_map must be an object of strings");
      r.spec.column_map[std::string(from)] = std::string(to.as_string());
    }
  }
  const std::string level = opt_string(body, "level").value_or("basic");
  const auto l = validator::parse_level(level);
  if (!l) fail(422, "invalid value", "level must be basic, detailed or comprehensive");
  r.level = *l;
  if (const auto n = opt_number(body, "sample_size")) {
    if (!(*n >= 1 && *n <= 10000000)) fail(422, "invalid value", "sample_size must be 1..10000000");
    r.sample_size = static_cast<int>(*n);
  }
  r.repair = opt_bool(body, "repair").value_or(false);
  r.dry_run = opt_bool(body, "dry_run").value_or(false);
  return r;
}

template <class F>
HttpResponse jobs_op(AdminContext& ctx, unsigned status, F&& f) {
  if (ctx.validations == nullptr) fail(503, "unavailable", "no control database configured");
  return answer(status, [&] { return f(*ctx.validations); });
}

}  // namespace

HttpResponse handle_validations(const HttpRequest& request, const Segments& rest,
                                AdminContext& ctx) {
  if (rest.empty()) {
    if (request.method == "GET") {
      require_auth(request, ctx, Role::kViewer);  // reports hold row values
      return jobs_op(ctx, 200,
                     [](validator::ValidationJobs& j) { return json::value(j.list(50)); });
    }
    require_change(request, ctx, "GET, POST");
    auto r = request_of(parse_object(request, false));
    return jobs_op(ctx, 202, [&](validator::ValidationJobs& j) { return j.start(std::move(r)); });
  }
  if (rest.size() == 1) {
    if (request.method != "GET") method_not_allowed("GET");
    require_auth(request, ctx, Role::kViewer);
    return jobs_op(ctx, 200, [&](validator::ValidationJobs& j) { return j.get(rest[0]); });
  }
  fail(404, "not found", "no such endpoint: " + request.target);
}

}  // namespace pgphase::admin
