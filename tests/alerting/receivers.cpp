#include "receivers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/beast/core/detail/base64.hpp>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace pgphase::alert_test {

namespace {

int listen_loopback(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    throw std::runtime_error("bind/listen failed");
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// Accepts one connection within 100 ms, -1 when none.
int accept_some(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 100) <= 0) return -1;
  return ::accept(fd, nullptr, nullptr);
}

// Reads until `pred(buffer)` or the peer closes or 5 s pass.
template <class Pred>
bool read_until(int fd, std::string& buf, Pred pred) {
  char chunk[4096];
  for (int i = 0; i < 50 && !pred(buf); ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) return pred(buf);
    buf.append(chunk, static_cast<std::size_t>(n));
    i = 0;
  }
  return pred(buf);
}

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

HttpReceiver::HttpReceiver() {
  fd_ = listen_loopback(port_);
  thread_ = std::thread([this] { serve(); });
}

HttpReceiver::~HttpReceiver() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

std::string HttpReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<std::string> HttpReceiver::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void HttpReceiver::serve() {
  while (!stop_) {
    const int c = accept_some(fd_);
    if (c < 0) continue;
    std::string buf;
    std::size_t body_at = std::string::npos;
    std::size_t length = 0;
    read_until(c, buf, [&](const std::string& b) {
      if (body_at == std::string::npos) {
        const auto end = b.find("\r\n\r\n");
        if (end == std::string::npos) return false;
        body_at = end + 4;
        std::string head = b.substr(0, end);
        for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const auto cl = head.find("content-length:");
        if (cl != std::string::npos) length = std::stoul(head.substr(cl + 15));
      }
      return b.size() >= body_at + length;
    });
    if (body_at != std::string::npos) {
      const auto sp1 = buf.find(' ');
      const auto sp2 = buf.find(' ', sp1 + 1);
      const std::string path = buf.substr(sp1 + 1, sp2 - sp1 - 1);
      {
        std::lock_guard lock(mu_);
        requests_.push_back(path + " " + buf.substr(body_at, length));
      }
      const int st = status_;
      write_all(c, "HTTP/1.1 " + std::to_string(st) + (st == 200 ? " OK" : " Error") +
                       "\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    }
    ::close(c);
  }
}

SmtpReceiver::SmtpReceiver(std::string cert, std::string key)
    : cert_(std::move(cert)), key_(std::move(key)) {
  fd_ = listen_loopback(port_);
  thread_ = std::thread([this] { serve(); });
}

SmtpReceiver::~SmtpReceiver() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

std::vector<std::string> SmtpReceiver::messages() const {
  std::lock_guard lock(mu_);
  return messages_;
}

namespace {

// One SMTP connection's transport: the socket, or TLS over it after STARTTLS.
struct Io {
  int fd;
  SSL* ssl = nullptr;
  bool readable() const {
    if (ssl != nullptr && SSL_pending(ssl) > 0) return true;
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 100) > 0;
  }
  ssize_t read(char* buf, std::size_t n) const {
    if (ssl == nullptr) return ::read(fd, buf, n);
    const int r = SSL_read(ssl, buf, static_cast<int>(n));
    return r > 0 ? r : -1;
  }
  void write(const std::string& s) const {
    if (ssl == nullptr) {
      write_all(fd, s);
      return;
    }
    SSL_write(ssl, s.data(), static_cast<int>(s.size()));
  }
  // Reads until `pred(buf)`, the peer closes, or 5 s of silence.
  template <class Pred>
  bool read_until(std::string& buf, Pred pred) const {
    char chunk[4096];
    for (int i = 0; i < 50 && !pred(buf); ++i) {
      if (!readable()) continue;
      const ssize_t n = read(chunk, sizeof chunk);
      if (n <= 0) return pred(buf);
      buf.append(chunk, static_cast<std::size_t>(n));
      i = 0;
    }
    return pred(buf);
  }
};

std::string from_base64(const std::string& s) {
  std::string out(boost::beast::detail::base64::decoded_size(s.size()), '\0');
  out.resize(boost::beast::detail::base64::decode(out.data(), s.data(), s.size()).first);
  return out;
}

}  // namespace

void SmtpReceiver::serve() {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(nullptr, &SSL_CTX_free);
  if (!cert_.empty()) {
    ctx.reset(SSL_CTX_new(TLS_server_method()));
    if (SSL_CTX_use_certificate_file(ctx.get(), cert_.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), key_.c_str(), SSL_FILETYPE_PEM) != 1)
      ctx.reset();
  }
  while (!stop_) {
    const int c = accept_some(fd_);
    if (c < 0) continue;
    Io io{c};
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(nullptr, &SSL_free);
    io.write("220 test-smtp ready\r\n");
    std::string buf;
    std::string envelope;
    std::string tags;
    for (;;) {
      if (!io.read_until(buf,
                         [](const std::string& b) { return b.find("\r\n") != std::string::npos; }))
        break;
      const auto eol = buf.find("\r\n");
      const std::string line = buf.substr(0, eol);
      buf.erase(0, eol + 2);
      std::string upper = line;
      for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (upper.rfind("EHLO", 0) == 0 || upper.rfind("HELO", 0) == 0) {
        io.write(ctx && !io.ssl ? "250-test-smtp\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"
                                : "250-test-smtp\r\n250 8BITMIME\r\n");
      } else if (upper == "STARTTLS" && ctx && !io.ssl) {
        io.write("220 go ahead\r\n");
        ssl.reset(SSL_new(ctx.get()));
        SSL_set_fd(ssl.get(), c);
        if (SSL_accept(ssl.get()) != 1) break;
        io.ssl = ssl.get();
        buf.clear();
        tags += "[tls] ";
      } else if (upper.rfind("AUTH PLAIN ", 0) == 0) {
        std::string creds = from_base64(line.substr(11));
        for (auto& ch : creds)
          if (ch == '\0') ch = ':';
        tags += "[auth " + creds.substr(creds.empty() ? 0 : 1) + "] ";
        io.write("235 ok\r\n");
      } else if (upper.rfind("MAIL FROM", 0) == 0 || upper.rfind("RCPT TO", 0) == 0) {
        envelope += line + " ";
        io.write("250 ok\r\n");
      } else if (upper == "DATA") {
        io.write("354 go ahead\r\n");
        io.read_until(
            buf, [](const std::string& b) { return b.find("\r\n.\r\n") != std::string::npos; });
        const auto end = buf.find("\r\n.\r\n");
        if (end == std::string::npos) break;
        {
          std::lock_guard lock(mu_);
          messages_.push_back(tags + envelope + "\n" + buf.substr(0, end));
        }
        buf.erase(0, end + 5);
        envelope.clear();
        io.write("250 queued\r\n");
      } else if (upper == "QUIT") {
        io.write("221 bye\r\n");
        break;
      } else {
        io.write("502 not implemented\r\n");
      }
    }
    if (ssl) SSL_shutdown(ssl.get());
    ::close(c);
  }
}

}  // namespace pgphase::alert_test
