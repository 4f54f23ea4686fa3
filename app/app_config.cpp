#include "app/app_config.h"

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>

namespace pgphase::app {

namespace json = boost::json;

namespace {

std::string as_string(const json::value& v, std::string_view key) {
  if (!v.is_string()) throw ConfigError(std::string(key) + ": expected a string");
  return std::string(v.get_string());
}

uint64_t as_positive(const json::value& v, std::string_view key, uint64_t max) {
  uint64_t out = 0;
  if (v.is_uint64())
    out = v.get_uint64();
  else if (v.is_int64() && v.get_int64() > 0)
    out = static_cast<uint64_t>(v.get_int64());
  else
    throw ConfigError(std::string(key) + ": expected a positive integer");
  if (out == 0 || out > max)
    throw ConfigError(std::string(key) + ": " + std::to_string(out) + " is outside 1-" +
                      std::to_string(max));
  return out;
}

bool is_env_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (const char c : s) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string env_name(const json::value& v, std::string_view key) {
  std::string name = as_string(v, key);
  if (!is_env_name(name))
    throw ConfigError(std::string(key) + ": \"" + name + "\" is not an environment variable name");
  return name;
}

bool apply_app_key(AppConfig& c, std::string_view key, const json::value& v) {
  if (key == "control_dsn") {
    c.control.dsn = as_string(v, key);  // never echoed in messages: it may hold secrets
  } else if (key == "control_dsn_env") {
    c.control_dsn_env = env_name(v, key);
  } else if (key == "config_files") {
    if (!v.is_array()) throw ConfigError("config_files: expected an array of file names");
    c.control.config_files.clear();
    for (const auto& f : v.get_array()) c.control.config_files.push_back(as_string(f, key));
  } else if (key == "admin_token_env") {
    c.admin.token_env = env_name(v, key);
  } else if (key == "admin_tls_cert") {
    c.admin.tls_cert = as_string(v, key);
  } else if (key == "admin_tls_key") {
    c.admin.tls_key = as_string(v, key);
  } else if (key == "state_reload_interval_ms") {
    c.control.reload_interval_seconds =
        static_cast<double>(as_positive(v, key, 3'600'000)) / 1000.0;
  } else if (key == "control_answer_timeout_ms") {
    c.control.answer_timeout_ms = static_cast<unsigned>(as_positive(v, key, 3'600'000));
  } else if (key == "alert_interval_ms") {
    c.alerts.interval_ms = static_cast<int>(as_positive(v, key, 3'600'000));
  } else if (key == "alert_resolve_after_ms") {
    c.alerts.resolve_after_ms = static_cast<int>(as_positive(v, key, 86'400'000));
  } else if (key == "alert_retry_base_ms") {
    c.alerts.retry_base_ms = static_cast<int>(as_positive(v, key, 600'000));
  } else if (key == "max_check_age_seconds") {
    c.control.max_check_age_seconds = static_cast<double>(as_positive(v, key, 365LL * 86400));
  } else {
    return false;
  }
  return true;
}

}  // namespace

void apply_json(AppConfig& c, std::string_view json_text) {
  json::error_code ec;
  json::value root = json::parse(json_text, ec);
  if (ec) throw ConfigError("invalid JSON: " + ec.message());
  if (!root.is_object()) throw ConfigError("the configuration must be a JSON object");
  const auto& o = root.get_object();
  if (o.contains("control_dsn") && o.contains("control_dsn_env"))
    throw ConfigError("set control_dsn or control_dsn_env, not both");
  for (const auto& [key, v] : o) {
    if (proxy::apply_key(c.proxy, key, v)) continue;
    if (apply_app_key(c, key, v)) continue;
    throw ConfigError("unknown configuration key \"" + std::string(key) + "\"");
  }
}

void resolve_environment(AppConfig& c) {
  if (!c.control.dsn.empty()) return;
  if (!c.control_dsn_env.empty()) {
    const char* v = std::getenv(c.control_dsn_env.c_str());
    if (!v || !*v)
      throw ConfigError("control_dsn_env: environment variable " + c.control_dsn_env +
                        " is not set");
    c.control.dsn = v;
    return;
  }
  if (const char* v = std::getenv("PGPHASE_CONTROL_DSN"); v && *v) c.control.dsn = v;
}

void validate(const AppConfig& c) {
  proxy::validate(c.proxy);
  if (c.control.dsn.empty() && !c.control.config_files.empty())
    throw ConfigError("config_files: needs a control database (control_dsn)");
  for (const auto& f : c.control.config_files) {
    if (!std::ifstream(f)) throw ConfigError("config_files: cannot read \"" + f + "\"");
  }
  if (c.admin.tls_cert.empty() != c.admin.tls_key.empty())
    throw ConfigError("set both admin_tls_cert and admin_tls_key or neither");
  for (const auto* f : {&c.admin.tls_cert, &c.admin.tls_key}) {
    if (!f->empty() && !std::ifstream(*f))
      throw ConfigError((f == &c.admin.tls_cert ? "admin_tls_cert" : "admin_tls_key") +
                        std::string(": cannot read \"") + *f + "\"");
  }
}

}  // namespace pgphase::app
