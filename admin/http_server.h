// The admin HTTP/1.1 server (Boost.Beast): one coroutine per connection, body limits on the
// parser, keep-alive, and a pure handler that maps a request to a response. Requests whose
// handler may block (control-database operations) run on a small thread pool of the server's own,
// so a slow database stalls neither the server's io_context nor /healthz and /metrics.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "admin/http.h"

namespace boost::asio {
class io_context;
}

namespace pgphase::admin {

struct HttpServerOptions {
  // True for requests whose handler may block; those run on the pool, the rest inline.
  std::function<bool(const HttpRequest&)> may_block;
  unsigned blocking_threads = 2;
  // Both set: HTTPS only (TLS 1.2 or later), with this PEM certificate chain and private key.
  std::string tls_cert;
  std::string tls_key;
};

class HttpServer {
 public:
  static constexpr size_t kMaxBodyBytes = 1 << 20;

  // Binds host:port at once (throws std::system_error with the reason if it cannot; a
  // certificate or key that cannot be loaded throws too).
  HttpServer(boost::asio::io_context& ctx, const std::string& host, uint16_t port,
             HttpHandler handler, HttpServerOptions options = {});
  // Waits for handlers still running on the pool; destroy it before the io_context.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] uint16_t port() const noexcept;
  // Stops accepting; call it on the io_context's thread (or while it does not run).
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgphase::admin
