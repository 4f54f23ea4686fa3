#include "proxy/stream.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cerrno>

namespace pgphase::proxy {
namespace {
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

// errno of a failed non-blocking call as an error code; EAGAIN/EWOULDBLOCK as would_block.
error_code nonblocking_error() {
  error_code ec(errno, boost::system::system_category());
  if (ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block)
    ec = asio::error::would_block;
  return ec;
}
}  // namespace

int Stream::native_fd() {
  return std::visit(
      overloaded{[](std::unique_ptr<tls_stream>& s) { return s->lowest_layer().native_handle(); },
                 [](auto& s) { return s.native_handle(); }},
      s_);
}

tls_stream& Stream::upgrade_to_tls(asio::ssl::context& ctx) {
  auto tls = std::make_unique<tls_stream>(std::move(std::get<tcp::socket>(s_)), ctx);
  tls_stream& ref = *tls;
  s_ = std::move(tls);
  return ref;
}

asio::awaitable<std::tuple<error_code, size_t>> Stream::read_some(asio::mutable_buffer buf) {
  return std::visit(overloaded{[&](std::unique_ptr<tls_stream>& s) {
                                 return s->async_read_some(buf, use_nothrow);
                               },
                               [&](auto& s) { return s.async_read_some(buf, use_nothrow); }},
                    s_);
}

asio::awaitable<std::tuple<error_code, size_t>> Stream::read_exact(asio::mutable_buffer buf) {
  return std::visit(overloaded{[&](std::unique_ptr<tls_stream>& s) {
                                 return asio::async_read(*s, buf, use_nothrow);
                               },
                               [&](auto& s) { return asio::async_read(s, buf, use_nothrow); }},
                    s_);
}

asio::awaitable<std::tuple<error_code, size_t>> Stream::write_all(asio::const_buffer buf) {
  return std::visit(overloaded{[&](std::unique_ptr<tls_stream>& s) {
                                 return asio::async_write(*s, buf, use_nothrow);
                               },
                               [&](auto& s) { return asio::async_write(s, buf, use_nothrow); }},
                    s_);
}

asio::awaitable<std::tuple<error_code, size_t>> Stream::write_all(
    const std::vector<asio::const_buffer>& bufs) {
  return std::visit(overloaded{[&](std::unique_ptr<tls_stream>& s) {
                                 return asio::async_write(*s, bufs, use_nothrow);
                               },
                               [&](auto& s) { return asio::async_write(s, bufs, use_nothrow); }},
                    s_);
}

size_t Stream::read_nonblocking(asio::mutable_buffer buf, error_code& ec) {
  // MSG_DONTWAIT whatever the descriptor's mode: a socket's synchronous read_some waits in poll()
  // when Asio, not the user, made it non-blocking (backend sockets, after async_connect), which
  // would stall every session of the worker until the peer sent more.
  const int fd = native_fd();
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) {
      ec = {};
      return static_cast<size_t>(n);
    }
    if (n == 0) {
      ec = asio::error::eof;
      return 0;
    }
    if (errno == EINTR) continue;
    ec = nonblocking_error();
    return 0;
  }
}

size_t Stream::write_nonblocking(std::span<const asio::const_buffer> bufs, error_code& ec) {
  // At most kMaxIov buffers per call (well under IOV_MAX, 1024 on Linux); the caller writes the
  // rest as it would after any short write.
  constexpr size_t kMaxIov = 64;
  std::array<iovec, kMaxIov> iov{};
  const size_t count = std::min(bufs.size(), kMaxIov);
  for (size_t i = 0; i < count; ++i) {
    iov[i].iov_base = const_cast<void*>(bufs[i].data());
    iov[i].iov_len = bufs[i].size();
  }
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  const int fd = native_fd();
  for (;;) {
    const ssize_t n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      ec = {};
      return static_cast<size_t>(n);
    }
    if (errno == EINTR) continue;
    ec = nonblocking_error();
    return 0;
  }
}

size_t Stream::available() const {
  error_code ec;
  return std::visit(overloaded{[&](const std::unique_ptr<tls_stream>&) -> size_t { return 0; },
                               [&](const auto& s) -> size_t { return s.available(ec); }},
                    s_);
}

void Stream::set_nodelay() {
  error_code ec;
  if (auto* t = std::get_if<tcp::socket>(&s_)) t->set_option(tcp::no_delay(true), ec);
  if (auto* s = std::get_if<std::unique_ptr<tls_stream>>(&s_))
    (*s)->lowest_layer().set_option(tcp::no_delay(true), ec);
}

void Stream::cancel() noexcept {
  error_code ec;
  std::visit(overloaded{[&](std::unique_ptr<tls_stream>& s) { s->lowest_layer().cancel(ec); },
                        [&](auto& s) { s.cancel(ec); }},
             s_);
}

void Stream::close() noexcept {
  error_code ec;
  std::visit(overloaded{[&](std::unique_ptr<tls_stream>& s) { s->lowest_layer().close(ec); },
                        [&](auto& s) { s.close(ec); }},
             s_);
}

bool Stream::is_open() const noexcept {
  return std::visit(
      overloaded{[](const std::unique_ptr<tls_stream>& s) { return s->lowest_layer().is_open(); },
                 [](const auto& s) { return s.is_open(); }},
      s_);
}

}  // namespace pgphase::proxy
