#include "proxy/config.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <thread>

#include "common/log.h"

namespace pgphase::proxy {
namespace json = boost::json;

std::string Endpoint::to_string() const {
  if (is_unix()) return "unix:" + unix_path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Endpoint parse_endpoint(std::string_view text, std::string_view what) {
  const auto fail = [&](const char* why) {
    return ConfigError(std::string(what) + ": \"" + std::string(text) + "\" " + why);
  };
  if (text.starts_with("unix:")) {
    Endpoint e;
    e.unix_path = std::string(text.substr(5));
    if (e.unix_path.empty() || e.unix_path.front() != '/')
      throw fail("needs an absolute socket path");
    return e;
  }
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {  // [::1]:6432
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw fail("is not [host]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw fail("is not host:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty()) throw fail("has no host");
  if (ec != std::errc{} || ptr != port.data() + port.size() || value == 0 || value > 65535) {
    throw fail("has no valid port (1-65535)");
  }
  return Endpoint{std::string(host), static_cast<uint16_t>(value), {}};
}

BackendTls parse_backend_tls(std::string_view text) {
  if (text == "disable") return BackendTls::kDisable;
  if (text == "prefer") return BackendTls::kPrefer;
  if (text == "require") return BackendTls::kRequire;
  throw ConfigError("backend_tls: \"" + std::string(text) +
                    "\" is not one of disable, prefer, require");
}

const char* to_string(BackendTls mode) noexcept {
  switch (mode) {
    case BackendTls::kDisable:
      return "disable";
    case BackendTls::kPrefer:
      return "prefer";
    case BackendTls::kRequire:
      return "require";
  }
  return "?";
}

namespace {

std::string as_string(const json::value& v, std::string_view key) {
  if (!v.is_string()) throw ConfigError(std::string(key) + ": expected a string");
  return std::string(v.get_string());
}

uint64_t as_uint(const json::value& v, std::string_view key, uint64_t max) {
  uint64_t out = 0;
  if (v.is_uint64())
    out = v.get_uint64();
  else if (v.is_int64() && v.get_int64() >= 0)
    out = static_cast<uint64_t>(v.get_int64());
  else
    throw ConfigError(std::string(key) + ": expected a non-negative integer");
  if (out > max)
    throw ConfigError(std::string(key) + ": " + std::to_string(out) + " exceeds " +
                      std::to_string(max));
  return out;
}

}  // namespace

bool apply_key(ProxyConfig& c, std::string_view key, const json::value& v) {
  if (key == "listen")
    c.listen = parse_endpoint(as_string(v, key), key);
  else if (key == "backend")
    c.backend = parse_endpoint(as_string(v, key), key);
  else if (key == "admin")
    c.admin = parse_endpoint(as_string(v, key), key);
  else if (key == "workers")
    c.workers = static_cast<unsigned>(as_uint(v, key, 1024));
  else if (key == "tls_cert")
    c.tls_cert = as_string(v, key);
  else if (key == "tls_key")
    c.tls_key = as_string(v, key);
  else if (key == "backend_tls")
    c.backend_tls = parse_backend_tls(as_string(v, key));
  else if (key == "max_message_size")
    c.max_message_size = static_cast<uint32_t>(as_uint(v, key, 1u << 30));
  else if (key == "shutdown_timeout")
    c.shutdown_timeout_seconds = static_cast<unsigned>(as_uint(v, key, 86400));
  else if (key == "connect_timeout_ms")
    c.connect_timeout_ms = static_cast<unsigned>(as_uint(v, key, 600000));
  else if (key == "startup_timeout")
    c.startup_timeout_seconds = static_cast<unsigned>(as_uint(v, key, 3600));
  else if (key == "query_timeout")
    c.query_timeout_seconds = static_cast<unsigned>(as_uint(v, key, 86400));
  else if (key == "client_idle_timeout")
    c.client_idle_timeout_seconds = static_cast<unsigned>(as_uint(v, key, 86400 * 30));
  else if (key == "max_client_connections")
    c.max_client_connections = static_cast<unsigned>(as_uint(v, key, 1000000));
  else if (key == "log_level")
    c.log_level = as_string(v, key);
  else
    return false;
  return true;
}

void apply_json(ProxyConfig& c, std::string_view json_text) {
  json::error_code ec;
  json::value root = json::parse(json_text, ec);
  if (ec) throw ConfigError("invalid JSON: " + ec.message());
  if (!root.is_object()) throw ConfigError("the configuration must be a JSON object");
  for (const auto& [key, v] : root.get_object()) {
    if (!apply_key(c, key, v))
      throw ConfigError("unknown configuration key \"" + std::string(key) + "\"");
  }
}

void validate(const ProxyConfig& c) {
  if (c.tls_cert.empty() != c.tls_key.empty())
    throw ConfigError("set both tls_cert and tls_key or neither");
  if (c.listen.is_unix()) throw ConfigError("listen: only host:port is supported");
  if (c.admin.is_unix()) throw ConfigError("admin: only host:port is supported");
  if (c.max_message_size < 1024) throw ConfigError("max_message_size: must be at least 1024 bytes");
  if (c.backend.is_unix() && c.backend_tls == BackendTls::kRequire) {
    throw ConfigError("backend_tls: require cannot be used with a unix: backend");
  }
  log::Level level{};
  if (!log::parse_level(c.log_level, level)) {
    throw ConfigError("log_level: \"" + c.log_level + "\" is not one of debug, info, warn, error");
  }
}

unsigned worker_threads(const ProxyConfig& c) noexcept {
  return c.workers == 0 ? std::max(1u, std::thread::hardware_concurrency()) : c.workers;
}

}  // namespace pgphase::proxy
