// The proxy process: N worker threads, each with its own io_context (sessions never leave their
// worker; no lock on the relay path), a listener that deals accepted clients out round-robin,
// and graceful shutdown on SIGTERM/SIGINT. The admin HTTP server runs on its own thread, wired by
// the application (app/serve.cpp) over metrics() and shutting_down().
#pragma once

#include <functional>
#include <memory>

#include "proxy/config.h"
#include "proxy/routing_hooks.h"

namespace pgphase::admin {
class Metrics;
}

namespace pgphase::migration {
class ReadStats;
class ShadowRunner;
}  // namespace pgphase::migration

namespace pgphase::proxy {

class Server {
 public:
  explicit Server(ProxyConfig config, MigrationSnapshotSource migration_snapshot = {},
                  FlagSink flag_sink = {}, migration::ReadStats* read_stats = nullptr,
                  migration::ShadowRunner* shadow = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, serves until SIGTERM/SIGINT, drains, and returns the process exit code.
  int run();

  // Per-worker metrics, rendered by the admin API (thread-safe to read).
  [[nodiscard]] admin::Metrics& metrics() noexcept;
  // True from SIGTERM/SIGINT on (the admin API's /healthz answers 503 then).
  [[nodiscard]] bool shutting_down() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgphase::proxy
