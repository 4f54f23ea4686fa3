#include "admin/http_server.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <optional>

#include "admin/responses.h"
#include "common/log.h"

namespace pgphase::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct HttpServer::Impl {
  Impl(asio::io_context& ctx, HttpHandler h, HttpServerOptions o)
      : acceptor(ctx),
        handler(std::move(h)),
        options(std::move(o)),
        pool(std::max(1u, options.blocking_threads)) {
    if (!options.tls_cert.empty()) {
      tls.emplace(asio::ssl::context::tls_server);
      tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
      tls->use_certificate_chain_file(options.tls_cert);
      tls->use_private_key_file(options.tls_key, asio::ssl::context::pem);
    }
  }
  ~Impl() { pool.join(); }
  tcp::acceptor acceptor;
  HttpHandler handler;
  HttpServerOptions options;
  std::optional<asio::ssl::context> tls;  // set: every connection is HTTPS
  asio::thread_pool pool;
};

namespace {

http::response<http::string_body> to_beast(const HttpResponse& r, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "pgphase");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  return res;
}

HttpResponse call(const HttpHandler& handler, const HttpRequest& request) noexcept {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    log::error("admin: handler failed for ", request.method, " ", request.target, ": ", e.what());
    return json_error(500, "internal error", e.what());
  }
}

asio::awaitable<HttpResponse> respond(HttpServer::Impl& impl, const HttpRequest& request) {
  if (!impl.options.may_block || !impl.options.may_block(request))
    co_return call(impl.handler, request);
  // Run it on the pool; this coroutine resumes on the server's io_context.
  co_return co_await asio::co_spawn(
      impl.pool,
      [&impl, &request]() -> asio::awaitable<HttpResponse> {
        co_return call(impl.handler, request);
      },
      asio::use_awaitable);
}

// Requests and answers on one connection (plain or TLS) until the peer or an error ends it.
template <class Stream>
asio::awaitable<void> serve_requests(Stream& stream, HttpServer::Impl& impl) {
  beast::flat_buffer buffer;
  for (;;) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    http::request_parser<http::string_body> parser;
    parser.body_limit(HttpServer::kMaxBodyBytes);
    parser.header_limit(16 * 1024);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_nothrow);
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::ssl::error::stream_truncated)
      break;
    if (ec) {
      // Malformed or oversized request: say so, then close.
      const auto res = to_beast(json_error(400, "bad request", ec.message()), 11, false);
      co_await http::async_write(stream, res, use_nothrow);
      break;
    }
    auto& req = parser.get();
    HttpRequest request{std::string(req.method_string()), std::string(req.target()),
                        std::move(req.body()), std::string(req[http::field::authorization]),
                        std::string(req["X-PGPhase-Actor"])};
    const HttpResponse response = co_await respond(impl, request);
    const bool keep_alive = req.keep_alive();
    auto res = to_beast(response, req.version(), keep_alive);
    auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
    if (wec || !keep_alive) break;
  }
}

asio::awaitable<void> serve_connection(beast::tcp_stream stream, HttpServer::Impl& impl) {
  if (impl.tls) {
    beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), *impl.tls);
    beast::get_lowest_layer(tls).expires_after(std::chrono::seconds(10));
    auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::server, use_nothrow);
    if (hec) {
      // A plain-HTTP client or a failed handshake: nothing the peer could read as HTTP.
      log::debug("admin: TLS handshake failed: ", hec.message());
      co_return;
    }
    co_await serve_requests(tls, impl);
    beast::get_lowest_layer(tls).expires_after(std::chrono::seconds(5));
    auto [sec] = co_await tls.async_shutdown(use_nothrow);
    (void)sec;  // the peer may close without its close_notify; the connection ends either way
    co_return;
  }
  co_await serve_requests(stream, impl);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept_loop(HttpServer::Impl& impl) {
  for (;;) {
    auto [ec, sock] = co_await impl.acceptor.async_accept(use_nothrow);
    if (ec == asio::error::operation_aborted || !impl.acceptor.is_open()) co_return;
    if (ec) {
      log::warn("admin: accept failed: ", ec.message());
      continue;
    }
    asio::co_spawn(impl.acceptor.get_executor(),
                   serve_connection(beast::tcp_stream(std::move(sock)), impl), asio::detached);
  }
}

}  // namespace

HttpServer::HttpServer(asio::io_context& ctx, const std::string& host, uint16_t port,
                       HttpHandler handler, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(ctx, std::move(handler), std::move(options))) {
  const tcp::endpoint ep(asio::ip::make_address(host), port);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  asio::co_spawn(ctx, accept_loop(*impl_), asio::detached);
}

HttpServer::~HttpServer() = default;

uint16_t HttpServer::port() const noexcept {
  return impl_->acceptor.local_endpoint().port();
}

void HttpServer::stop() {
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace pgphase::admin
