// Plain request/response values for the admin API, so handlers stay free of Beast and Asio.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace pgphase::admin {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string body;
  std::string authorization;  // the Authorization header, if any
  std::string actor;          // the X-PGPhase-Actor header, if any
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones (Allow, WWW-Authenticate)
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

}  // namespace pgphase::admin
