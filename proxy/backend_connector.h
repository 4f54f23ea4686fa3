// Opening connections to the PostgreSQL backend: TCP or Unix socket, optional TLS negotiated with
// an SSLRequest (disable / prefer / require, as libpq's sslmode), all under a connect timeout.
#pragma once

#include <optional>
#include <string>

#include "proxy/config.h"
#include "proxy/stream.h"

namespace pgphase::proxy {

// A backend's BackendKeyData, as CancelRequest carries it.
struct BackendKey {
  int32_t process_id = 0;
  int32_t secret_key = 0;
};

struct BackendConnection {
  std::optional<Stream> stream;  // set on success
  std::string error;             // why not, on failure (no secrets)
};

class BackendConnector {
 public:
  explicit BackendConnector(const ProxyConfig& config);
  ~BackendConnector();

  // Connects, and negotiates TLS per config.backend_tls.
  asio::awaitable<BackendConnection> connect() const;
  // Sends a CancelRequest for `key` on a fresh connection and waits for the server to close it.
  asio::awaitable<void> cancel(BackendKey key) const;

 private:
  asio::awaitable<BackendConnection> connect_plain() const;
  asio::awaitable<std::string> negotiate_tls(Stream& stream) const;

  const ProxyConfig& config_;
  std::unique_ptr<asio::ssl::context> tls_;
};

}  // namespace pgphase::proxy
