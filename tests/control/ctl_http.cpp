#include "ctl_http.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace pgphase::ctl {
namespace {

const json::value& field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) {
    throw std::runtime_error("JSON has no \"" + std::string(key) + "\": " + json::serialize(o));
  }
  return *v;
}

[[noreturn]] void mistyped(const json::object& o, std::string_view key, const char* want) {
  throw std::runtime_error("JSON \"" + std::string(key) + "\" is not " + want + ": " +
                           json::serialize(o));
}

}  // namespace

it::HttpResponse Api::get(std::string_view path) const {
  return send("GET", path);
}
it::HttpResponse Api::post(std::string_view path, std::string_view body) const {
  return send("POST", path, body);
}

it::HttpResponse Api::send(std::string_view method, std::string_view path,
                           std::string_view body) const {
  Headers h;
  if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
  if (!actor.empty()) h.emplace_back("X-PGPhase-Actor", actor);
  return http_request(port, method, path, h, body);
}

Api Api::as(std::string name) const {
  Api a = *this;
  a.actor = std::move(name);
  return a;
}

Api Api::with_token(std::string t) const {
  Api a = *this;
  a.token = std::move(t);
  return a;
}

json::value parse_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) throw std::runtime_error("not JSON (" + ec.message() + "): " + std::string(text));
  return v;
}

json::object body_object(const it::HttpResponse& r) {
  json::value v = parse_json(r.body);
  if (!v.is_object()) throw std::runtime_error("JSON body is not an object: " + r.body);
  return std::move(v.as_object());
}

std::string str(const json::object& o, std::string_view key) {
  const json::value& v = field(o, key);
  if (!v.is_string()) mistyped(o, key, "a string");
  return std::string(v.as_string());
}

double as_number(const json::value& v) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  throw std::runtime_error("JSON value is not a number: " + json::serialize(v));
}

double num(const json::object& o, std::string_view key) {
  const json::value& v = field(o, key);
  if (!v.is_number()) mistyped(o, key, "a number");
  return as_number(v);
}

bool flag(const json::object& o, std::string_view key) {
  const json::value& v = field(o, key);
  if (!v.is_bool()) mistyped(o, key, "a boolean");
  return v.as_bool();
}

const json::object& obj(const json::object& o, std::string_view key) {
  const json::value& v = field(o, key);
  if (!v.is_object()) mistyped(o, key, "an object");
  return v.as_object();
}

const json::array& arr(const json::object& o, std::string_view key) {
  const json::value& v = field(o, key);
  if (!v.is_array()) mistyped(o, key, "an array");
  return v.as_array();
}

std::string describe(const it::HttpResponse& r) {
  return std::to_string(r.status) + " " + r.body;
}

std::string expect_error(const it::HttpResponse& r, int status) {
  INFO("response: " << describe(r));
  CHECK(r.status == status);
  CHECK(it::contains(r.header("content-type"), "application/json"));
  boost::system::error_code ec;
  const json::value v = json::parse(r.body, ec);
  CHECK_FALSE(ec);
  if (ec || !v.is_object()) {
    CHECK(v.is_object());
    return "";
  }
  const json::object& o = v.as_object();
  const auto* error = o.if_contains("error");
  const auto* detail = o.if_contains("detail");
  CHECK((error != nullptr && error->is_string() && !error->as_string().empty()));
  CHECK((detail != nullptr && detail->is_string() && !detail->as_string().empty()));
  if (error == nullptr || detail == nullptr || !error->is_string() || !detail->is_string()) {
    return "";
  }
  return std::string(error->as_string()) + " | " + std::string(detail->as_string());
}

}  // namespace pgphase::ctl
