// HTTP requests against pgphase's admin port and a strict parser for the Prometheus text format.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgphase::it {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // de-chunked
  // The header's value, "" when absent; `name` in lower case.
  [[nodiscard]] std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// One request to http://host:port/path with "Connection: close"; a non-empty body (or any POST/PUT)
// is sent with Content-Length and Content-Type: application/json. Throws on connect/timeout/parse
// errors.
HttpResponse http_request(uint16_t port, std::string_view method, std::string_view path,
                          const HttpHeaders& headers = {}, std::string_view body = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(10),
                          const std::string& host = "127.0.0.1");

// http_request(port, "GET", path).
HttpResponse http_get(uint16_t port, std::string_view path, const std::string& host = "127.0.0.1",
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct MetricSample {
  std::string name;  // full sample name, e.g. "pgphase_statement_duration_seconds_bucket"
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Metrics {
  std::vector<MetricSample> samples;
  std::map<std::string, std::string> types;  // family name -> "counter"/"gauge"/"histogram"/...

  // Parses the Prometheus text exposition format (0.0.4); throws std::runtime_error naming the
  // first malformed line.
  static Metrics parse(std::string_view text);
  // Sum of the samples named `name` whose labels include all of `labels`; nullopt if none match.
  [[nodiscard]] std::optional<double> value(
      std::string_view name, const std::map<std::string, std::string>& labels = {}) const;
  // value() or 0 when absent.
  [[nodiscard]] double get(std::string_view name,
                           const std::map<std::string, std::string>& labels = {}) const {
    return value(name, labels).value_or(0);
  }
  // Every sample named `name` (e.g. all _bucket lines of a histogram), in order.
  [[nodiscard]] std::vector<MetricSample> all(std::string_view name) const;
};

// http_get(admin_port, "/metrics"), checked for status 200, then parsed.
Metrics scrape_metrics(uint16_t admin_port);

}  // namespace pgphase::it
