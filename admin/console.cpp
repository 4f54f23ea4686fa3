#include "admin/console.h"

#include "admin/responses.h"

namespace pgphase::admin {

namespace {

std::string content_type_of(std::string_view file) {
  if (file.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (file.ends_with(".css")) return "text/css; charset=utf-8";
  return "text/html; charset=utf-8";
}

}  // namespace

std::optional<HttpResponse> serve_console(const HttpRequest& request, std::string_view path) {
  if (path == "/index.html") path = "/";
  for (const EmbeddedAsset& a : embedded_assets()) {
    if (a.url != path) continue;
    if (request.method != "GET" && request.method != "HEAD")
      return json_error(405, "method not allowed", "use GET");
    HttpResponse r;
    r.content_type = content_type_of(a.file);
    r.body = std::string(a.bytes);
    // Only this origin's own scripts, styles and API: the page works offline and nothing it
    // shows (table names, row values in reports) can pull in or run anything else.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; script-src 'self'; style-src 'self'; "
                           "connect-src 'self'; img-src 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'; form-action 'none'");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  return std::nullopt;
}

}  // namespace pgphase::admin
