// The admin API's request router: a pure function from request to response over the parts of
// pgphase it reports on. Later modules (migrations, switches, alerts) add their routes here.
#pragma once

#include <functional>

#include "admin/http.h"

namespace pgphase::admin {

class Metrics;

struct AdminContext {
  Metrics& metrics;
  std::function<bool()> healthy;  // false while shutting down
};

[[nodiscard]] HttpResponse handle_request(const HttpRequest& request, AdminContext& ctx);

}  // namespace pgphase::admin
