// The proxy process: N worker threads, each with its own io_context (sessions never leave their
// worker; no lock on the relay path), a listener that deals accepted clients out round-robin,
// and graceful shutdown on SIGTERM/SIGINT. Each worker writes its own shards of the figures the
// application gives it (stats/stats.h); the admin HTTP server runs on its own thread, wired by the
// application (app/serve.cpp) over those figures and shutting_down().
#pragma once

#include <functional>
#include <memory>

#include "proxy/config.h"
#include "proxy/routing_hooks.h"

namespace pgphase::migration {
class ShadowRunner;
}
namespace pgphase::stats {
class Stats;
}

namespace pgphase::proxy {

class Server {
 public:
  // `stats` has a shard per worker (worker_threads(config) at least); it outlives the server.
  Server(ProxyConfig config, stats::Stats& stats, MigrationSnapshotSource migration_snapshot = {},
         FlagSink flag_sink = {}, migration::ShadowRunner* shadow = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, serves until SIGTERM/SIGINT, drains, and returns the process exit code.
  int run();

  // True from SIGTERM/SIGINT on (the admin API's /healthz answers 503 then).
  [[nodiscard]] bool shutting_down() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgphase::proxy
