// HTTP with any method, headers and body against pgphase's admin port, and JSON helpers for the
// admin API's answers (Boost.JSON), on top of the harness's http_request.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "harness/harness.h"

namespace pgphase::ctl {

namespace json = boost::json;
using Headers = it::HttpHeaders;
using it::http_request;  // the harness's client, for any method, headers and body

// The admin API of one pgphase, as a client with (or without) a token and an actor name.
struct Api {
  uint16_t port = 0;
  std::string token;  // "" = no Authorization header
  std::string actor;  // "" = no X-PGPhase-Actor header

  [[nodiscard]] it::HttpResponse get(std::string_view path) const;
  [[nodiscard]] it::HttpResponse post(std::string_view path, std::string_view body = {}) const;
  [[nodiscard]] it::HttpResponse send(std::string_view method, std::string_view path,
                                      std::string_view body = {}) const;
  [[nodiscard]] Api as(std::string name) const;       // same, other actor
  [[nodiscard]] Api with_token(std::string t) const;  // same, other token ("" = none)
};

// Parses `text` as JSON; throws std::runtime_error quoting the text on failure.
[[nodiscard]] json::value parse_json(std::string_view text);
// The body as a JSON object; throws when it is not one.
[[nodiscard]] json::object body_object(const it::HttpResponse& r);

// Field access that throws std::runtime_error naming the key when it is absent or mistyped.
[[nodiscard]] std::string str(const json::object& o, std::string_view key);
[[nodiscard]] double num(const json::object& o, std::string_view key);  // any JSON number
[[nodiscard]] bool flag(const json::object& o, std::string_view key);
[[nodiscard]] const json::object& obj(const json::object& o, std::string_view key);
[[nodiscard]] const json::array& arr(const json::object& o, std::string_view key);
[[nodiscard]] double as_number(const json::value& v);

// "STATUS body" for failure messages.
[[nodiscard]] std::string describe(const it::HttpResponse& r);

// Checks (Catch2 CHECKs, so it must run inside a test case) that `r` is an error answer with
// `status`: JSON content type, a JSON object with non-empty string "error" and "detail". Returns
// error + " | " + detail for further checks on the wording ("" when the body is not such JSON).
std::string expect_error(const it::HttpResponse& r, int status);

}  // namespace pgphase::ctl
