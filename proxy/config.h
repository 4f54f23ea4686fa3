// pgphase's proxy configuration: defaults in the struct, one parser for the JSON file that rejects
// unknown keys, and cross-field checks with exact messages. Command-line flags override the file.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace boost::json {
class value;
}  // namespace boost::json

namespace pgphase::proxy {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// host:port, or unix:/path/to/.s.PGSQL.5432 for a Unix-domain socket.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string unix_path;  // non-empty for unix: endpoints
  [[nodiscard]] bool is_unix() const noexcept { return !unix_path.empty(); }
  [[nodiscard]] std::string to_string() const;
};

// Throws ConfigError with a message naming `what` on malformed input.
[[nodiscard]] Endpoint parse_endpoint(std::string_view text, std::string_view what);

enum class BackendTls { kDisable, kPrefer, kRequire };
[[nodiscard]] BackendTls parse_backend_tls(std::string_view text);
[[nodiscard]] const char* to_string(BackendTls mode) noexcept;

struct ProxyConfig {
  Endpoint listen{"127.0.0.1", 6432, {}};
  Endpoint backend{"127.0.0.1", 5432, {}};
  Endpoint admin{"127.0.0.1", 8432, {}};
  unsigned workers = 0;  // 0: one per core
  std::string tls_cert;  // client-side TLS termination: both or neither
  std::string tls_key;
  BackendTls backend_tls = BackendTls::kDisable;
  uint32_t max_message_size = 1u << 30;  // PostgreSQL's own cap is ~1 GiB
  unsigned shutdown_timeout_seconds = 30;
  unsigned connect_timeout_ms = 5000;     // to the backend
  unsigned startup_timeout_seconds = 60;  // PostgreSQL's authentication_timeout default
  // 0 = off (PgBouncer's defaults). query_timeout: a session whose client awaits an answer and
  // whose server has sent no ReadyForQuery for this long is closed, with an error to the client
  // (a hung server or a network that stopped delivering without a reset). client_idle_timeout: a
  // session idle outside a transaction for this long is closed (a client that vanished without a
  // FIN holds a backend connection otherwise). Checked once a second: up to a second late.
  unsigned query_timeout_seconds = 0;
  unsigned client_idle_timeout_seconds = 0;
  unsigned max_client_connections = 10000;
  std::string log_level = "info";

  [[nodiscard]] bool client_tls_enabled() const noexcept { return !tls_cert.empty(); }
};

// Applies one key of the configuration file onto `config`. Returns false for a key that is not a
// proxy setting (the application's config parser dispatches the rest); wrong types and bad values
// throw ConfigError naming the key.
[[nodiscard]] bool apply_key(ProxyConfig& config, std::string_view key,
                             const boost::json::value& v);

// Applies the keys of a JSON object holding only proxy settings onto `config`.
// Unknown keys, wrong types and bad values throw ConfigError.
void apply_json(ProxyConfig& config, std::string_view json_text);

// Cross-field rules. Throws ConfigError.
void validate(const ProxyConfig& config);

// The worker threads the proxy runs: `workers`, or one per core when it is 0.
[[nodiscard]] unsigned worker_threads(const ProxyConfig& config) noexcept;

}  // namespace pgphase::proxy
