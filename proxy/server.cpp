#include "proxy/server.h"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/log.h"
#include "protocol/codes.h"
#include "protocol/messages.h"
#include "proxy/backend_connector.h"
#include "proxy/session.h"
#include "proxy/session_tracker.h"
#include "proxy/stream.h"
#include "proxy/worker_routing.h"
#include "stats/stats.h"

namespace pgphase::proxy {

namespace {

struct Worker {
  // One thread runs it; socket I/O on a worker happens only on that thread, so the reactor needs
  // no per-descriptor locking (registration and posted work stay locked).
  asio::io_context ctx{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::executor_work_guard<asio::io_context::executor_type> guard{ctx.get_executor()};
  SessionTracker tracker;
  std::unique_ptr<WorkerRouting> routing;  // with a control plane only
  std::thread thread;
};

// Plan cache per worker: analysed statement texts and their rewrites.
constexpr size_t kPlanCacheBytes = 8u << 20;

std::unique_ptr<asio::ssl::context> make_client_tls(const ProxyConfig& c) {
  if (!c.client_tls_enabled()) return nullptr;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  ctx->use_certificate_chain_file(c.tls_cert);
  ctx->use_private_key_file(c.tls_key, asio::ssl::context::pem);
  return ctx;
}

// Session timeouts (query_timeout, client_idle_timeout): each session is looked at once a second
// on its own worker, instead of a timer armed per request on the relay path.
asio::awaitable<void> sweep_sessions(SessionTracker& tracker) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await timer.async_wait(use_nothrow);
    if (ec) co_return;
    tracker.sweep_all();
  }
}

}  // namespace

struct Server::Impl {
  Impl(ProxyConfig c, stats::Stats& figures, MigrationSnapshotSource snapshots, FlagSink flags,
       migration::ShadowRunner* shadow_runner)
      : config(std::move(c)),
        stats(figures),
        shadow(shadow_runner),
        migration_snapshot(snapshots),
        flag_sink(std::move(flags)),
        workers_count(worker_threads(config)),
        backend(config),
        client_tls(make_client_tls(config)),
        acceptor(main_ctx) {
    if (stats.workers() < workers_count)
      throw std::invalid_argument("proxy: fewer stats shards than workers");
    for (unsigned i = 0; i < workers_count; ++i) workers.push_back(std::make_unique<Worker>());
    if (migration_snapshot != nullptr) {
      for (size_t i = 0; i < workers.size(); ++i) {
        workers[i]->routing = std::make_unique<WorkerRouting>(
            migration_snapshot, kPlanCacheBytes, stats.routing().shard(i), flag_sink, shadow);
      }
    }
  }

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> reject(tcp::socket sock);
  void begin_shutdown();
  asio::awaitable<void> drain();
  size_t live() const { return live_sessions.load(std::memory_order_relaxed); }

  ProxyConfig config;
  stats::Stats& stats;
  migration::ShadowRunner* shadow;
  MigrationSnapshotSource migration_snapshot;
  FlagSink flag_sink;
  unsigned workers_count;
  BackendConnector backend;
  std::unique_ptr<asio::ssl::context> client_tls;
  asio::io_context main_ctx{1};
  tcp::acceptor acceptor;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<size_t> live_sessions{0};
  std::atomic<bool> shutting_down{false};
  int exit_code = 0;
};

asio::awaitable<void> Server::Impl::reject(tcp::socket sock) {
  Stream s(std::move(sock));
  const std::string msg =
      protocol::encode_error_response({"FATAL", protocol::sqlstate::kTooManyConnections,
                                       "sorry, too many clients already (pgphase)"});
  co_await s.write_all(asio::buffer(msg));
}

asio::awaitable<void> Server::Impl::accept_loop() {
  size_t next = 0;
  for (;;) {
    const size_t index = next;
    Worker& w = *workers[index];
    next = (next + 1) % workers.size();
    auto [ec, sock] = co_await acceptor.async_accept(w.ctx, use_nothrow);
    if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      log::warn("listener: accept failed: ", ec.message());
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        asio::steady_timer backoff(main_ctx, std::chrono::milliseconds(100));
        co_await backoff.async_wait(use_nothrow);
      }
      continue;
    }
    if (live() >= config.max_client_connections) {
      asio::co_spawn(w.ctx, reject(std::move(sock)), asio::detached);
      continue;
    }
    live_sessions.fetch_add(1, std::memory_order_relaxed);
    SessionEnv env{config,    client_tls.get(), backend, stats.relay(index),
                   w.tracker, w.routing.get()};
    asio::co_spawn(w.ctx, run_session(std::move(sock), env), [this](std::exception_ptr e) {
      live_sessions.fetch_sub(1, std::memory_order_relaxed);
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error("session ended with an unexpected error: ", ex.what());
        }
      }
    });
  }
}

void Server::Impl::begin_shutdown() {
  if (shutting_down.exchange(true)) return;
  log::info("shutdown: stop accepting; waiting up to ", config.shutdown_timeout_seconds,
            " s for sessions to finish (", live(), " open)");
  // The listener stays open while sessions drain: CancelRequests still reach running queries,
  // and new sessions are told 57P03 (as PostgreSQL does in a smart shutdown).
  for (auto& w : workers) asio::post(w->ctx, [&t = w->tracker] { t.shutdown_all(false); });
  asio::co_spawn(main_ctx, drain(), asio::detached);
}

asio::awaitable<void> Server::Impl::drain() {
  using namespace std::chrono;
  asio::steady_timer timer(main_ctx);
  const auto deadline = steady_clock::now() + seconds(config.shutdown_timeout_seconds);
  while (live() > 0 && steady_clock::now() < deadline) {
    timer.expires_after(milliseconds(50));
    co_await timer.async_wait(use_nothrow);
  }
  if (live() > 0) {
    log::warn("shutdown: closing ", live(), " sessions still open after the timeout");
    for (auto& w : workers) asio::post(w->ctx, [&t = w->tracker] { t.shutdown_all(true); });
    const auto hard = steady_clock::now() + seconds(2);
    while (live() > 0 && steady_clock::now() < hard) {
      timer.expires_after(milliseconds(20));
      co_await timer.async_wait(use_nothrow);
    }
  }
  error_code ignored;
  acceptor.close(ignored);
  for (auto& w : workers) {
    w->guard.reset();
    w->ctx.stop();
  }
  main_ctx.stop();
}

Server::Server(ProxyConfig config, stats::Stats& stats, MigrationSnapshotSource migration_snapshot,
               FlagSink flag_sink, migration::ShadowRunner* shadow)
    : impl_(std::make_unique<Impl>(std::move(config), stats, migration_snapshot,
                                   std::move(flag_sink), shadow)) {}
Server::~Server() = default;

bool Server::shutting_down() const noexcept {
  return impl_->shutting_down.load();
}

int Server::run() {
  Impl& s = *impl_;
  try {
    const tcp::endpoint ep(asio::ip::make_address(s.config.listen.host), s.config.listen.port);
    s.acceptor.open(ep.protocol());
    s.acceptor.set_option(tcp::acceptor::reuse_address(true));
    s.acceptor.bind(ep);
    s.acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    log::error("cannot listen on ", s.config.listen.to_string(), ": ", e.code().message());
    return 1;
  }

  asio::signal_set signals(s.main_ctx, SIGTERM, SIGINT);
  signals.async_wait([&s](const error_code& ec, int sig) {
    if (ec) return;
    log::info("received signal ", sig);
    s.begin_shutdown();
  });

  const bool sweeps =
      s.config.query_timeout_seconds > 0 || s.config.client_idle_timeout_seconds > 0;
  for (auto& w : s.workers) {
    if (sweeps) asio::co_spawn(w->ctx, sweep_sessions(w->tracker), asio::detached);
    w->thread = std::thread([&ctx = w->ctx] { ctx.run(); });
  }
  asio::co_spawn(s.main_ctx, s.accept_loop(), asio::detached);
  log::info("pgphase listening on ", s.config.listen.to_string(), ", backend ",
            s.config.backend.to_string(), " (backend_tls=", to_string(s.config.backend_tls),
            ", client TLS ", s.config.client_tls_enabled() ? "on" : "off", "), ", s.workers.size(),
            " workers");

  s.main_ctx.run();
  for (auto& w : s.workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  log::info("pgphase stopped");
  return s.exit_code;
}

}  // namespace pgphase::proxy
