#include "common/http_client.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <stdexcept>

namespace pgphase::http_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct Target {
  bool tls = false;
  std::string host, port, host_header, path;
};

Target parse(const std::string& url) {
  const auto u = boost::urls::parse_uri(url);
  if (!u) throw std::invalid_argument("\"" + url + "\" is not a URL");
  Target t;
  if (u->scheme() == "https")
    t.tls = true;
  else if (u->scheme() != "http")
    throw std::invalid_argument("only http:// and https:// URLs are supported");
  if (!u->has_authority() || u->host_address().empty())
    throw std::invalid_argument("the URL has no host");
  t.host = u->host_address();
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  t.host_header = u->encoded_host_and_port();
  t.path = u->encoded_path().empty() ? "/" : std::string(u->encoded_path());
  if (u->has_query()) t.path += "?" + std::string(u->encoded_query());
  return t;
}

template <class Stream>
asio::awaitable<void> exchange(Stream& stream, http::request<http::string_body>& req,
                               Response& out) {
  auto [wec, wn] = co_await http::async_write(stream, req, use_nothrow);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  beast::error_code ec = wec;
  if (!ec) std::tie(ec, wn) = co_await http::async_read(stream, buffer, res, use_nothrow);
  if (ec) {
    out.failure = "no answer: " + ec.message();
    co_return;
  }
  out.status = res.result_int();
  out.body = std::move(res.body());
}

asio::awaitable<void> run(const Request& r, const Target& t, Response& out) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(t.host, t.port, use_nothrow);
  if (rec) {
    out.failure = "cannot resolve " + t.host + ": " + rec.message();
    co_return;
  }
  http::request<http::string_body> req{r.method == "POST" ? http::verb::post : http::verb::get,
                                       t.path, 11};
  req.set(http::field::host, t.host_header);
  req.set(http::field::user_agent, "pgphase");
  for (const auto& [k, v] : r.headers) req.set(k, v);
  if (r.method == "POST") req.body() = r.body;
  req.keep_alive(false);
  req.prepare_payload();
  if (!t.tls) {
    beast::tcp_stream stream(ex);
    stream.expires_after(r.connect_timeout);
    auto [cec, ep] = co_await stream.async_connect(results, use_nothrow);
    if (cec) {
      out.failure = "cannot connect to " + t.host + ":" + t.port + ": " + cec.message();
      co_return;
    }
    stream.expires_after(r.answer_timeout);
    co_await exchange(stream, req, out);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  ssl::context ctx(ssl::context::tls_client);
  if (r.ca_file.empty()) {
    ctx.set_default_verify_paths();
  } else {
    beast::error_code ec;
    ctx.load_verify_file(r.ca_file, ec);
    if (ec) {
      out.failure = "cannot load the CA file " + r.ca_file + ": " + ec.message();
      co_return;
    }
  }
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ex, ctx);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str())) {
    out.failure = "cannot set the TLS server name";
    co_return;
  }
  stream.set_verify_callback(ssl::host_name_verification(t.host));
  beast::get_lowest_layer(stream).expires_after(r.connect_timeout);
  auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(results, use_nothrow);
  if (cec) {
    out.failure = "cannot connect to " + t.host + ":" + t.port + ": " + cec.message();
    co_return;
  }
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_nothrow);
  if (hec) {
    out.failure = "TLS handshake with " + t.host + " failed: " + hec.message();
    co_return;
  }
  beast::get_lowest_layer(stream).expires_after(r.answer_timeout);
  co_await exchange(stream, req, out);
}

}  // namespace

Response send(const Request& r) {
  const Target t = parse(r.url);
  Response out;
  asio::io_context ioc;
  std::exception_ptr failed;
  asio::co_spawn(ioc, run(r, t, out), [&failed](std::exception_ptr e) { failed = e; });
  ioc.run();
  if (failed) std::rethrow_exception(failed);
  return out;
}

}  // namespace pgphase::http_client
