// The admin API's request router: a pure function from request to response over the parts of
// pgphase it reports on. The migration and switch routes live in api_migrations.cpp and
// api_switches.cpp; later modules (alerts, validation) add theirs the same way.
#pragma once

#include <functional>

#include "admin/http.h"

namespace pgphase::migration {
class ControlPlane;
class ReadStats;
class AutoRollback;
class BackfillManager;
}  // namespace pgphase::migration
namespace pgphase::stats {
class RoutingStats;
}
namespace pgphase::validator {
class ValidationJobs;
}
namespace pgphase::alerting {
class Alerting;
}

namespace pgphase::admin {

class AdminAuth;
class Metrics;

struct AdminContext {
  Metrics& metrics;
  std::function<bool()> healthy;               // false while shutting down
  migration::ControlPlane* control = nullptr;  // null: no control database (routes answer 503)
  const AdminAuth* auth = nullptr;             // null: every mutation is refused with 401
  migration::ReadStats* read_stats = nullptr;  // live read-switch figures (analytics)
  migration::AutoRollback* auto_rollback = nullptr;  // check-rollback; null without control plane
  migration::BackfillManager* backfill = nullptr;    // null without control plane
  validator::ValidationJobs* validations = nullptr;  // null without control plane
  alerting::Alerting* alerting = nullptr;            // null without control plane
  const stats::RoutingStats* routing = nullptr;  // the workers' dual-write figures (this pgphase)
};

[[nodiscard]] HttpResponse handle_request(const HttpRequest& request, AdminContext& ctx);

// True for requests whose handler may block on the control database (run off the I/O thread).
[[nodiscard]] bool may_block(const HttpRequest& request);

}  // namespace pgphase::admin
