// The proxy process: N worker threads, each with its own io_context (sessions never leave their
// worker; no lock on the relay path), a listener that deals accepted clients out round-robin,
// the admin HTTP server, and graceful shutdown on SIGTERM/SIGINT.
#pragma once

#include <memory>

#include "proxy/config.h"

namespace pgphase::proxy {

class Server {
 public:
  explicit Server(ProxyConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, serves until SIGTERM/SIGINT, drains, and returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgphase::proxy
