// One client connection, from its first packet to its close (session mode: one backend
// connection per client, opened with the client's own startup parameters).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace boost::asio::ssl {
class context;
}

namespace pgphase::stats {
struct StatsShard;
}

namespace pgphase::proxy {

struct ProxyConfig;
class BackendConnector;
class SessionTracker;
class WorkerRouting;

// What every session of a worker shares. All references outlive the worker's sessions.
struct SessionEnv {
  const ProxyConfig& config;
  boost::asio::ssl::context* client_tls;  // null: answer 'N' to SSLRequest
  const BackendConnector& backend;
  pgphase::stats::StatsShard& stats;  // the worker's
  SessionTracker& tracker;
  // Migration routing of the worker; null when pgphase runs without a control plane (sessions
  // are then relayed as byte streams, nothing is parsed).
  WorkerRouting* routing = nullptr;
};

boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket client, SessionEnv env);

}  // namespace pgphase::proxy
