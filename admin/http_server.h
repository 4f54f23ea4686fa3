// The admin HTTP/1.1 server (Boost.Beast): one coroutine per connection, body limits on the
// parser, keep-alive, and a pure handler that maps a request to a response.
#pragma once

#include <memory>
#include <string>

#include "admin/http.h"

namespace boost::asio {
class io_context;
}

namespace pgphase::admin {

class HttpServer {
 public:
  static constexpr size_t kMaxBodyBytes = 1 << 20;

  // Binds host:port at once (throws std::system_error with the reason if it cannot).
  HttpServer(boost::asio::io_context& ctx, const std::string& host, uint16_t port,
             HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] uint16_t port() const noexcept;
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgphase::admin
