#include "alerting/smtp.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <ctime>

namespace pgphase::alerting::smtp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct Failure {
  std::string why;
};

std::string base64(const std::string& s) {
  std::string out(beast::detail::base64::encoded_size(s.size()), '\0');
  out.resize(beast::detail::base64::encode(out.data(), s.data(), s.size()));
  return out;
}

// A reply: its code and its text (lines joined).
struct Reply {
  int code = 0;
  std::string text;
};

template <class Stream>
asio::awaitable<Reply> read_reply(Stream& s, std::string& buf, beast::tcp_stream& timer,
                                  std::chrono::seconds timeout) {
  Reply r;
  for (;;) {
    timer.expires_after(timeout);
    auto [ec, n] =
        co_await asio::async_read_until(s, asio::dynamic_buffer(buf), "\r\n", use_nothrow);
    if (ec) throw Failure{"no reply from the SMTP server: " + ec.message()};
    const std::string line = buf.substr(0, n - 2);
    buf.erase(0, n);
    if (line.size() < 3) throw Failure{"malformed SMTP reply \"" + line + "\""};
    r.code = std::atoi(line.substr(0, 3).c_str());
    r.text += (r.text.empty() ? "" : "\n") + line;
    if (line.size() == 3 || line[3] == ' ') co_return r;
  }
}

template <class Stream>
asio::awaitable<Reply> command(Stream& s, std::string& buf, beast::tcp_stream& timer,
                               std::chrono::seconds timeout, std::string line, int ok1, int ok2,
                               std::string what) {
  timer.expires_after(timeout);
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(line), use_nothrow);
  if (ec) throw Failure{"cannot send " + what + ": " + ec.message()};
  Reply r = co_await read_reply(s, buf, timer, timeout);
  if (r.code == ok1 || (ok2 != 0 && r.code == ok2)) co_return r;
  throw Failure{what + " refused: " + r.text};
}

std::string message_of(const Mail& m) {
  char date[64];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string to;
  for (const auto& r : m.to) to += (to.empty() ? "" : ", ") + r;
  std::string msg = "From: " + m.from + "\r\nTo: " + to + "\r\nSubject: " + m.subject +
                    "\r\nDate: " + date +
                    "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
  // Body lines with CRLF, dot-stuffed.
  std::string line;
  auto flush = [&] {
    if (!line.empty() && line[0] == '.') line.insert(0, ".");
    msg += line + "\r\n";
    line.clear();
  };
  for (char c : m.body) {
    if (c == '\r') continue;
    if (c == '\n')
      flush();
    else
      line.push_back(c);
  }
  if (!line.empty()) flush();
  return msg + ".\r\n";
}

template <class Stream>
asio::awaitable<void> transact(Stream& s, std::string& buf, beast::tcp_stream& timer,
                               const Mail& m) {
  // (GCC 12 miscompiles literals and braced lists inside co_await full-expressions: the lines
  // and names are built first.)
  const auto to = m.timeout;
  std::string line;
  std::string what;
  if (!m.username.empty()) {
    line = "AUTH PLAIN " +
           base64(std::string(1, '\0') + m.username + std::string(1, '\0') + m.password) + "\r\n";
    what = "AUTH";
    co_await command(s, buf, timer, to, line, 235, 0, what);
  }
  line = "MAIL FROM:<" + m.from + ">\r\n";
  what = "MAIL FROM";
  co_await command(s, buf, timer, to, line, 250, 0, what);
  for (const auto& r : m.to) {
    line = "RCPT TO:<" + r + ">\r\n";
    what = "RCPT TO";
    co_await command(s, buf, timer, to, line, 250, 251, what);
  }
  line = "DATA\r\n";
  what = "DATA";
  co_await command(s, buf, timer, to, line, 354, 0, what);
  line = message_of(m);
  what = "the message";
  co_await command(s, buf, timer, to, line, 250, 0, what);
  line = "QUIT\r\n";
  what = "QUIT";
  co_await command(s, buf, timer, to, line, 221, 250, what);
}

asio::awaitable<void> session(const Mail& m, std::string& failure) {
  try {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, results] =
        co_await resolver.async_resolve(m.server, std::to_string(m.port), use_nothrow);
    if (rec) throw Failure{"cannot resolve " + m.server + ": " + rec.message()};
    beast::tcp_stream stream(ex);
    stream.expires_after(m.timeout);
    auto [cec, ep] = co_await stream.async_connect(results, use_nothrow);
    if (cec)
      throw Failure{"cannot connect to " + m.server + ":" + std::to_string(m.port) + ": " +
                    cec.message()};
    std::string buf;
    const Reply greeting = co_await read_reply(stream, buf, stream, m.timeout);
    if (greeting.code != 220) throw Failure{"SMTP greeting: " + greeting.text};
    std::string line = "EHLO pgphase\r\n";
    std::string what = "EHLO";
    const Reply ehlo = co_await command(stream, buf, stream, m.timeout, line, 250, 0, what);
    if (!m.starttls) {
      co_await transact(stream, buf, stream, m);
      co_return;
    }
    if (ehlo.text.find("STARTTLS") == std::string::npos)
      throw Failure{"the SMTP server does not offer STARTTLS (use_tls is true)"};
    line = "STARTTLS\r\n";
    what = "STARTTLS";
    co_await command(stream, buf, stream, m.timeout, line, 220, 0, what);
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(ssl::verify_peer);
    ssl::stream<beast::tcp_stream&> tls(stream, ctx);
    SSL_set_tlsext_host_name(tls.native_handle(), m.server.c_str());
    tls.set_verify_callback(ssl::host_name_verification(m.server));
    stream.expires_after(m.timeout);
    auto [hec] = co_await tls.async_handshake(ssl::stream_base::client, use_nothrow);
    if (hec) throw Failure{"TLS handshake with " + m.server + " failed: " + hec.message()};
    buf.clear();
    line = "EHLO pgphase\r\n";
    what = "EHLO";
    co_await command(tls, buf, stream, m.timeout, line, 250, 0, what);
    co_await transact(tls, buf, stream, m);
  } catch (const Failure& f) {
    failure = f.why;
  }
}

}  // namespace

std::string send(const Mail& m) {
  std::string failure;
  asio::io_context ioc;
  std::exception_ptr failed;
  asio::co_spawn(ioc, session(m, failure), [&failed](std::exception_ptr e) { failed = e; });
  ioc.run();
  if (failed) {
    try {
      std::rethrow_exception(failed);
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  return failure;
}

}  // namespace pgphase::alerting::smtp
