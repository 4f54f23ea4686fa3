#include "harness/raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "harness/util.h"

namespace pgphase::it {
namespace wire {

std::string i32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  return {static_cast<char>(u >> 24), static_cast<char>(u >> 16), static_cast<char>(u >> 8),
          static_cast<char>(u)};
}

std::string i16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  return {static_cast<char>(u >> 8), static_cast<char>(u)};
}

std::string cstr(std::string_view s) {
  return std::string(s) + '\0';
}

std::string message(char type, std::string_view body) {
  return std::string(1, type) + i32(static_cast<int32_t>(body.size() + 4)) + std::string(body);
}

namespace {
std::string untyped(std::string_view body) {
  return i32(static_cast<int32_t>(body.size() + 4)) + std::string(body);
}
}  // namespace

std::string startup(const std::vector<std::pair<std::string, std::string>>& params,
                    int32_t version) {
  std::string body = i32(version);
  for (const auto& [k, v] : params) body += cstr(k) + cstr(v);
  return untyped(body + '\0');
}

std::string ssl_request() {
  return untyped(i32(80877103));
}
std::string gssenc_request() {
  return untyped(i32(80877104));
}
std::string cancel_request(int32_t pid, int32_t secret) {
  return untyped(i32(80877102) + i32(pid) + i32(secret));
}

std::string query(std::string_view sql) {
  return message('Q', cstr(sql));
}

std::string parse(std::string_view statement, std::string_view sql,
                  const std::vector<uint32_t>& param_types) {
  std::string body = cstr(statement) + cstr(sql) + i16(static_cast<int16_t>(param_types.size()));
  for (uint32_t t : param_types) body += i32(static_cast<int32_t>(t));
  return message('P', body);
}

std::string bind(std::string_view portal, std::string_view statement,
                 const std::vector<std::optional<std::string>>& values,
                 const std::vector<int16_t>& param_formats,
                 const std::vector<int16_t>& result_formats) {
  std::string body = cstr(portal) + cstr(statement);
  body += i16(static_cast<int16_t>(param_formats.size()));
  for (int16_t f : param_formats) body += i16(f);
  body += i16(static_cast<int16_t>(values.size()));
  for (const auto& v : values) {
    body += v ? i32(static_cast<int32_t>(v->size())) + *v : i32(-1);
  }
  body += i16(static_cast<int16_t>(result_formats.size()));
  for (int16_t f : result_formats) body += i16(f);
  return message('B', body);
}

std::string describe(char kind, std::string_view name) {
  return message('D', std::string(1, kind) + cstr(name));
}
std::string execute(std::string_view portal, int32_t max_rows) {
  return message('E', cstr(portal) + i32(max_rows));
}
std::string close(char kind, std::string_view name) {
  return message('C', std::string(1, kind) + cstr(name));
}
std::string sync() {
  return message('S', "");
}
std::string flush() {
  return message('H', "");
}
std::string terminate() {
  return message('X', "");
}
std::string password(std::string_view pw) {
  return message('p', cstr(pw));
}
std::string copy_data(std::string_view data) {
  return message('d', data);
}
std::string copy_done() {
  return message('c', "");
}
std::string copy_fail(std::string_view why) {
  return message('f', cstr(why));
}

}  // namespace wire

namespace {

int32_t be32(const std::string& s, size_t at) {
  if (at + 4 > s.size()) throw std::out_of_range("message too short for an int32");
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return static_cast<int32_t>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
                              (uint32_t{p[2]} << 8) | uint32_t{p[3]});
}

std::string hex_prefix(std::string_view bytes, size_t max = 64) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out + (bytes.size() > max ? "..." : "");
}

}  // namespace

std::map<char, std::string> BackendMessage::fields() const {
  std::map<char, std::string> out;
  size_t pos = 0;
  while (pos < body.size() && body[pos] != '\0') {
    const char code = body[pos++];
    const size_t end = body.find('\0', pos);
    if (end == std::string::npos) break;
    out[code] = body.substr(pos, end - pos);
    pos = end + 1;
  }
  return out;
}

std::vector<std::optional<std::string>> BackendMessage::columns() const {
  std::vector<std::optional<std::string>> out;
  const int n =
      (static_cast<unsigned char>(body.at(0)) << 8) | static_cast<unsigned char>(body.at(1));
  size_t pos = 2;
  for (int i = 0; i < n; ++i) {
    const int32_t len = be32(body, pos);
    pos += 4;
    if (len < 0) {
      out.emplace_back(std::nullopt);
    } else {
      out.emplace_back(body.substr(pos, static_cast<size_t>(len)));
      pos += static_cast<size_t>(len);
    }
  }
  return out;
}

std::string BackendMessage::tag() const {
  return body.substr(0, body.find('\0'));
}
int32_t BackendMessage::auth_code() const {
  return be32(body, 0);
}

std::string types(const std::vector<BackendMessage>& messages) {
  std::string out;
  for (const auto& m : messages) out += m.type;
  return out;
}

RawClient RawClient::tcp(uint16_t port, const std::string& host) {
  harness_init();
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  RawClient client(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    throw std::invalid_argument("not an IPv4 address: " + host);
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect to " + host + ":" + std::to_string(port) +
                             " failed: " + strerror(errno));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return client;
}

RawClient RawClient::unix_socket(const std::string& path) {
  harness_init();
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  RawClient client(fd);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw std::invalid_argument("socket path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect to " + path + " failed: " + strerror(errno));
  }
  return client;
}

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(other.fd_), buffer_(std::move(other.buffer_)), pid_(other.pid_), secret_(other.secret_) {
  other.fd_ = -1;
}

RawClient& RawClient::operator=(RawClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    buffer_ = std::move(other.buffer_);
    pid_ = other.pid_;
    secret_ = other.secret_;
    other.fd_ = -1;
  }
  return *this;
}

RawClient::~RawClient() {
  close();
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RawClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool RawClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return false;
    if (n < 0) throw std::runtime_error(std::string("send failed: ") + strerror(errno));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawClient::fill(size_t n, std::chrono::steady_clock::time_point deadline) {
  char buf[65536];
  while (buffer_.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      throw std::runtime_error("raw client: timed out waiting for " + std::to_string(n) +
                               " bytes; have " + std::to_string(buffer_.size()) + ": " +
                               hex_prefix(buffer_));
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left));
    if (r <= 0) continue;
    const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got == 0 || (got < 0 && errno == ECONNRESET)) return false;
    if (got < 0 && errno != EINTR && errno != EAGAIN) {
      throw std::runtime_error(std::string("recv failed: ") + strerror(errno));
    }
    if (got > 0) buffer_.append(buf, static_cast<size_t>(got));
  }
  return true;
}

std::string RawClient::read_exact(size_t n, std::chrono::milliseconds timeout) {
  if (!fill(n, std::chrono::steady_clock::now() + timeout)) {
    throw std::runtime_error("raw client: connection closed after " +
                             std::to_string(buffer_.size()) + " of " + std::to_string(n) +
                             " bytes: " + hex_prefix(buffer_));
  }
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return out;
}

std::string RawClient::read_some(std::chrono::milliseconds timeout) {
  if (buffer_.empty() && !fill(1, std::chrono::steady_clock::now() + timeout)) return "";
  return std::exchange(buffer_, std::string());
}

BackendMessage RawClient::read_message(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!fill(5, deadline)) {
    throw std::runtime_error("raw client: connection closed while waiting for a message (" +
                             hex_prefix(buffer_) + ")");
  }
  const int32_t len = be32(buffer_, 1);
  if (len < 4) throw std::runtime_error("raw client: bad message length " + std::to_string(len));
  const size_t total = static_cast<size_t>(len) + 1;
  if (!fill(total, deadline)) {
    throw std::runtime_error("raw client: connection closed inside a '" +
                             std::string(1, buffer_[0]) + "' message");
  }
  BackendMessage m{buffer_[0], buffer_.substr(5, total - 5)};
  buffer_.erase(0, total);
  return m;
}

std::vector<BackendMessage> RawClient::read_until(char last, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<BackendMessage> out;
  while (out.empty() || out.back().type != last) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    try {
      out.push_back(read_message(std::max(left, std::chrono::milliseconds(1))));
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) + " (after messages \"" + types(out) + "\")");
    }
  }
  return out;
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  try {
    while (fill(buffer_.size() + 1, deadline)) buffer_.clear();
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

std::vector<BackendMessage> RawClient::startup(
    const std::string& user, const std::string& db,
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::pair<std::string, std::string>> params{{"user", user}, {"database", db}};
  params.insert(params.end(), extra.begin(), extra.end());
  if (!send(wire::startup(params))) throw std::runtime_error("startup: peer closed");
  std::vector<BackendMessage> out;
  while (out.empty() || out.back().type != 'Z') {
    out.push_back(read_message());
    const BackendMessage& m = out.back();
    if (m.type == 'E') throw std::runtime_error("startup failed: " + m.fields()['M']);
    if (m.type == 'R' && m.auth_code() != 0) {
      throw std::runtime_error("startup: unexpected authentication request " +
                               std::to_string(m.auth_code()) + " (is the role trusted?)");
    }
    if (m.type == 'K') {
      pid_ = be32(m.body, 0);
      secret_ = be32(m.body, 4);
    }
  }
  return out;
}

}  // namespace pgphase::it
