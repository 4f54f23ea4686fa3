// One byte stream of a session: plain TCP, Unix-domain socket, or TLS over TCP, behind one
// interface of awaitable reads and writes with errors as values.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <span>
#include <tuple>
#include <variant>
#include <vector>

namespace pgphase::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol::socket;
using tls_stream = asio::ssl::stream<tcp::socket>;
using error_code = boost::system::error_code;

// Completion token for expected errors: co_await yields a tuple whose first member is the error.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

class Stream {
 public:
  explicit Stream(tcp::socket s) : s_(std::move(s)) {}
  explicit Stream(unix_socket s) : s_(std::move(s)) {}
  explicit Stream(std::unique_ptr<tls_stream> s) : s_(std::move(s)) {}

  [[nodiscard]] bool is_tls() const noexcept { return s_.index() == 2; }
  // Plain sockets can be read without blocking; TLS streams must go through the TLS engine.
  [[nodiscard]] bool supports_nonblocking_read() const noexcept { return !is_tls(); }

  // Moves a plain TCP stream into TLS (the handshake is the caller's to do). Only valid on TCP.
  tls_stream& upgrade_to_tls(asio::ssl::context& ctx);

  asio::awaitable<std::tuple<error_code, size_t>> read_some(asio::mutable_buffer buf);
  asio::awaitable<std::tuple<error_code, size_t>> read_exact(asio::mutable_buffer buf);
  asio::awaitable<std::tuple<error_code, size_t>> write_all(asio::const_buffer buf);
  // One gather write of several buffers (writev on plain sockets).
  asio::awaitable<std::tuple<error_code, size_t>> write_all(
      const std::vector<asio::const_buffer>& bufs);
  // Non-blocking read on a plain socket; ec == would_block when nothing is there.
  size_t read_nonblocking(asio::mutable_buffer buf, error_code& ec);
  // Non-blocking gather write on a plain socket (sendmsg, MSG_DONTWAIT | MSG_NOSIGNAL): the bytes
  // written, which may be fewer than asked; ec == would_block when none could be.
  size_t write_nonblocking(std::span<const asio::const_buffer> bufs, error_code& ec);
  // Bytes the kernel has buffered for reading (plain sockets; 0 for TLS).
  [[nodiscard]] size_t available() const;

  void set_nodelay();
  void cancel() noexcept;
  void close() noexcept;
  [[nodiscard]] bool is_open() const noexcept;

 private:
  [[nodiscard]] int native_fd();  // the socket's descriptor (TLS: the TCP socket's)
  std::variant<tcp::socket, unix_socket, std::unique_ptr<tls_stream>> s_;
};

}  // namespace pgphase::proxy
