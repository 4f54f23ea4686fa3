// A small synchronous HTTP/1.1 client (Beast over Asio, OpenSSL for https with the system's CA
// store and SNI) for the CLI's admin API calls and the alerting webhooks. One request per
// connection; bounded by a connect and an answer timeout.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace pgphase::http_client {

struct Request {
  std::string method = "GET";  // GET | POST
  std::string url;             // http(s)://host[:port]/path?query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds answer_timeout{60000};
  std::string ca_file;  // https: trust this PEM file's CAs instead of the system's store
};

struct Response {
  unsigned status = 0;
  std::string body;
  std::string failure;  // non-empty: no answer (the reason: resolve, connect, TLS, timeout, ...)
  [[nodiscard]] bool answered() const noexcept { return failure.empty(); }
};

// Throws std::invalid_argument for a URL that is not http(s)://host[:port][/path].
Response send(const Request& r);

}  // namespace pgphase::http_client
