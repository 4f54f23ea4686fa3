#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <limits>

#include "common/log.h"
#include "protocol/messages.h"
#include "proxy/config.h"
#include "proxy/session_impl.h"

namespace pgphase::proxy {

using namespace asio::experimental::awaitable_operators;

namespace {
std::string address_of(const tcp::socket& s) {
  error_code ec;
  const auto ep = s.remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string();
}
}  // namespace

Session::Session(tcp::socket client, SessionEnv env)
    : env_(env),
      identity_{{}, {}, address_of(client)},
      client_(std::move(client)),
      c2b_split_(protocol::Direction::kFrontend, env.config.max_message_size),
      // The cap guards against clients; the server's messages are trusted up to the protocol's
      // own limit (lengths are int32), since PostgreSQL may send rows larger than the cap.
      b2c_split_(protocol::Direction::kBackend, std::numeric_limits<int32_t>::max()) {
  env_.tracker.add(this);
  stats::bump(env_.stats.client_connections_opened);
}

Session::~Session() {
  env_.tracker.remove(this);
  if (backend_) stats::bump(env_.stats.backend_connections_closed);
  stats::bump(env_.stats.client_connections_closed);
}

asio::awaitable<void> Session::run() {
  client_.set_nodelay();
  // A client that never completes its startup must not hold a slot forever.
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex, std::chrono::seconds(env_.config.startup_timeout_seconds));
  auto startup = [this]() -> asio::awaitable<bool> {
    if (co_await negotiate() == StartupOutcome::kDone) co_return false;
    if (!co_await connect_backend()) co_return false;
    co_return co_await authenticate();
  };
  auto outcome = co_await (startup() || deadline.async_wait(asio::use_awaitable));
  if (outcome.index() == 1) {
    log::info("session: startup did not complete within ", env_.config.startup_timeout_seconds,
              " s; closing");
  } else if (std::get<0>(outcome) && !drain_) {
    co_await relay();
  } else if (drain_ && std::get<0>(outcome)) {
    co_await send_fatal(protocol::sqlstate::kAdminShutdown,
                        "terminating connection because pgphase is shutting down");
  }
  close_backend();
  client_.close();
}

void Session::shutdown(bool force) {
  drain_ = true;
  if (!relaying_) {
    // Still starting up: a forced shutdown ends the startup exchange now.
    if (force) {
      close_backend();
      client_.close();
    }
    return;
  }
  if (force || idle()) {
    if (!fatal_for_client_) {
      fatal_for_client_ = Fatal{protocol::sqlstate::kAdminShutdown,
                                "terminating connection because pgphase is shutting down"};
    }
    // The backend->client pump wakes, sends the error at a message boundary and closes.
    close_backend();
  }
}

void Session::sweep() {
  if (!relaying_ || fatal_for_client_) return;
  const ProxyConfig& c = env_.config;
  const auto close_with = [this](const char* sqlstate, std::string message) {
    log::warn("session: ", message, "; closing");
    fatal_for_client_ = Fatal{sqlstate, std::move(message)};
    // The backend->client pump wakes, sends the error at a message boundary and closes.
    close_backend();
  };
  if (c.query_timeout_seconds > 0) {
    const bool stuck = awaiting_ready_ && ready_count_ == swept_ready_;
    unanswered_sweeps_ = stuck ? unanswered_sweeps_ + 1 : 0;
    swept_ready_ = ready_count_;
    if (unanswered_sweeps_ > c.query_timeout_seconds) {
      close_with(protocol::sqlstate::kQueryCanceled,
                 "no answer from the server within " + std::to_string(c.query_timeout_seconds) +
                     " s (pgphase query_timeout); the connection is closed");
      return;
    }
  }
  if (c.client_idle_timeout_seconds > 0) {
    const bool quiet = idle() && client_reads_ == swept_reads_;
    idle_sweeps_ = quiet ? idle_sweeps_ + 1 : 0;
    swept_reads_ = client_reads_;
    if (idle_sweeps_ > c.client_idle_timeout_seconds) {
      close_with(protocol::sqlstate::kIdleSessionTimeout,
                 "terminating connection due to idle-session timeout (pgphase "
                 "client_idle_timeout, " +
                     std::to_string(c.client_idle_timeout_seconds) + " s)");
    }
  }
}

asio::awaitable<void> Session::send_fatal(std::string_view sqlstate, std::string_view message) {
  const std::string msg = protocol::encode_error_response({"FATAL", sqlstate, message});
  co_await client_.write_all(asio::buffer(msg));
}

void Session::count_protocol_error(stats::ProtocolError e) noexcept {
  stats::bump(env_.stats.protocol_errors[static_cast<size_t>(e)]);
}

void Session::close_backend() noexcept {
  if (backend_) backend_->close();
}

asio::awaitable<void> run_session(tcp::socket client, SessionEnv env) {
  Session session(std::move(client), env);
  co_await session.run();
}

}  // namespace pgphase::proxy
