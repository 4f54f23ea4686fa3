#include "proxy/backend_connector.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>

#include "protocol/messages.h"

namespace pgphase::proxy {

using namespace asio::experimental::awaitable_operators;

BackendConnector::BackendConnector(const ProxyConfig& config)
    : config_(config), tls_(std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client)) {
  // Like libpq's sslmode=prefer/require: encrypt, but do not verify the server certificate.
  tls_->set_verify_mode(asio::ssl::verify_none);
}

BackendConnector::~BackendConnector() = default;

asio::awaitable<BackendConnection> BackendConnector::connect_plain() const {
  auto ex = co_await asio::this_coro::executor;
  const Endpoint& be = config_.backend;
  if (be.is_unix()) {
    unix_socket sock(ex);
    auto [ec] = co_await sock.async_connect(asio::local::stream_protocol::endpoint(be.unix_path),
                                            use_nothrow);
    if (ec)
      co_return BackendConnection{std::nullopt,
                                  "connect to " + be.to_string() + ": " + ec.message()};
    co_return BackendConnection{Stream(std::move(sock)), {}};
  }
  tcp::resolver resolver(ex);
  auto [rec, results] =
      co_await resolver.async_resolve(be.host, std::to_string(be.port), use_nothrow);
  if (rec) co_return BackendConnection{std::nullopt, "resolve " + be.host + ": " + rec.message()};
  tcp::socket sock(ex);
  auto [ec, ep] = co_await asio::async_connect(sock, results, use_nothrow);
  if (ec)
    co_return BackendConnection{std::nullopt, "connect to " + be.to_string() + ": " + ec.message()};
  Stream s(std::move(sock));
  s.set_nodelay();
  co_return BackendConnection{std::move(s), {}};
}

asio::awaitable<std::string> BackendConnector::negotiate_tls(Stream& stream) const {
  const std::string request = protocol::encode_ssl_request();
  if (auto [ec, n] = co_await stream.write_all(asio::buffer(request)); ec)
    co_return "SSLRequest: " + ec.message();
  char answer = 0;
  if (auto [ec, n] = co_await stream.read_exact(asio::buffer(&answer, 1)); ec)
    co_return "SSLRequest: " + ec.message();
  if (answer == 'S') {
    tls_stream& tls = stream.upgrade_to_tls(*tls_);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::client, use_nothrow);
    if (ec) co_return "TLS handshake with the backend failed: " + ec.message();
    co_return std::string{};
  }
  // 'N' (or 'E' from a server that predates SSL) means no TLS.
  if (config_.backend_tls == BackendTls::kRequire)
    co_return "the backend does not support TLS (backend_tls=require)";
  co_return std::string{};
}

asio::awaitable<BackendConnection> BackendConnector::connect() const {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, std::chrono::milliseconds(config_.connect_timeout_ms));
  auto attempt = [this]() -> asio::awaitable<BackendConnection> {
    BackendConnection c = co_await connect_plain();
    if (c.stream && config_.backend_tls != BackendTls::kDisable && !config_.backend.is_unix()) {
      if (std::string err = co_await negotiate_tls(*c.stream); !err.empty())
        co_return BackendConnection{std::nullopt, err};
    }
    co_return c;
  };
  auto result = co_await (attempt() || timer.async_wait(asio::use_awaitable));
  if (result.index() == 1) {
    co_return BackendConnection{std::nullopt,
                                "timed out after " + std::to_string(config_.connect_timeout_ms) +
                                    " ms connecting to " + config_.backend.to_string()};
  }
  co_return std::move(std::get<0>(result));
}

asio::awaitable<void> BackendConnector::cancel(BackendKey key) const {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, std::chrono::milliseconds(config_.connect_timeout_ms));
  auto send = [this, key]() -> asio::awaitable<void> {
    BackendConnection c = co_await connect_plain();
    if (!c.stream) co_return;
    const std::string packet = protocol::encode_cancel_request(key.process_id, key.secret_key);
    auto [ec, n] = co_await c.stream->write_all(asio::buffer(packet));
    if (ec) co_return;
    // The server closes the connection once it has processed the request.
    char byte = 0;
    co_await c.stream->read_some(asio::buffer(&byte, 1));
  };
  co_await (send() || timer.async_wait(asio::use_awaitable));
}

}  // namespace pgphase::proxy
