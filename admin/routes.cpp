#include "admin/routes.h"

#include <string_view>

#include "admin/metrics.h"
#include "admin/responses.h"

namespace pgphase::admin {

HttpResponse handle_request(const HttpRequest& request, AdminContext& ctx) {
  std::string_view path = request.target;
  if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);

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
  return json_error(404, "not found", "no such endpoint: " + std::string(path));
}

}  // namespace pgphase::admin
