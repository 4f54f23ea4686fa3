// The admin HTTP API on a thread and io_context of its own, so that control-plane operations
// (which block on the control database) never stall the proxy's listener or workers.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <thread>

#include "admin/http_server.h"
#include "proxy/config.h"

namespace pgphase::app {

class AdminThread {
 public:
  // Binds at once (throws boost::system::system_error if it cannot), then serves on its thread.
  AdminThread(const proxy::Endpoint& at, admin::HttpHandler handler,
              admin::HttpServerOptions options);
  ~AdminThread();
  AdminThread(const AdminThread&) = delete;
  AdminThread& operator=(const AdminThread&) = delete;

  [[nodiscard]] uint16_t port() const noexcept { return port_; }
  // Stops accepting, ends open connections and waits for running handlers. Idempotent.
  void stop();

 private:
  boost::asio::io_context ctx_{1};  // declared first: outlives the server and its handlers
  std::unique_ptr<admin::HttpServer> server_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace pgphase::app
