#include "fault_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <random>
#include <stdexcept>

namespace pgphase::faults {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxQueued = 256 * 1024;  // per direction; beyond it the relay stops reading

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL, 0);
  (void)::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void make_pipe(int& r, int& w) {
  int p[2];
  if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  r = p[0];
  w = p[1];
}

void drain(int fd) {
  char buf[64];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

int connect_to(const std::string& host, uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int ms_until(Clock::time_point t, Clock::time_point now) {
  if (t <= now) return 0;
  return static_cast<int>(std::chrono::ceil<Ms>(t - now).count());
}

struct Chunk {
  std::string data;
  size_t off = 0;
  Clock::time_point due;
};

}  // namespace

// ---- Link -----------------------------------------------------------------------------------

Link::Link(int accepted_fd, int target_fd, FaultSpec spec) : fd_{accepted_fd, target_fd} {
  spec_ = spec;
  set_nonblocking(fd_[0]);
  set_nonblocking(fd_[1]);
  make_pipe(wake_r_, wake_w_);
  thread_ = std::thread([this] { run(); });
}

Link::~Link() {
  stop();
  ::close(wake_r_);
  ::close(wake_w_);
}

void Link::wake() const {
  const char c = 1;
  (void)!::write(wake_w_, &c, 1);
}

void Link::set(const FaultSpec& s) {
  {
    std::lock_guard lock(mu_);
    spec_ = s;
  }
  wake();
}

void Link::latency(Ms base, Ms jitter) {
  {
    std::lock_guard lock(mu_);
    spec_.latency = base;
    spec_.jitter = jitter;
  }
  wake();
}

void Link::bandwidth(uint64_t bytes_per_second) {
  {
    std::lock_guard lock(mu_);
    spec_.bandwidth = bytes_per_second;
  }
  wake();
}

void Link::reset_after(Dir d, int64_t n) {
  {
    std::lock_guard lock(mu_);
    spec_.reset_after[static_cast<int>(d)] = n;
  }
  wake();
}

void Link::close_after(Dir d, int64_t n) {
  {
    std::lock_guard lock(mu_);
    spec_.close_after[static_cast<int>(d)] = n;
  }
  wake();
}

void Link::silent() {
  {
    std::lock_guard lock(mu_);
    spec_.silent = true;
  }
  wake();
}

void Link::slow_reads(Dir d, size_t chunk, Ms pause) {
  {
    std::lock_guard lock(mu_);
    spec_.slow_chunk[static_cast<int>(d)] = chunk;
    spec_.slow_pause[static_cast<int>(d)] = pause;
  }
  wake();
}

void Link::clear() {
  set(FaultSpec{});
}

std::string Link::end_reason() const {
  std::lock_guard lock(mu_);
  return end_reason_;
}

void Link::stop() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void Link::finish(const char* reason, bool rst) {
  std::lock_guard lock(mu_);
  for (int& fd : fd_) {
    if (fd < 0) continue;
    if (rst) {
      const linger l{1, 0};
      (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd);
    fd = -1;
  }
  if (end_reason_.empty()) end_reason_ = reason;
  finished_ = true;
}

void Link::run() {
  std::deque<Chunk> q[2];
  size_t queued[2] = {0, 0};
  bool src_eof[2] = {false, false};
  bool dst_shut[2] = {false, false};
  Clock::time_point next_read[2] = {Clock::now(), Clock::now()};
  Clock::time_point last_due[2] = {Clock::now(), Clock::now()};
  std::mt19937 rng(std::random_device{}());
  std::string buf(65536, '\0');

  for (;;) {
    if (stop_) return finish("stopped", false);
    FaultSpec s;
    {
      std::lock_guard lock(mu_);
      s = spec_;
    }
    for (int d = 0; d < 2; ++d) {
      if (s.reset_after[d] == 0) return finish("fault-reset", true);
      if (s.close_after[d] == 0) return finish("fault-close", false);
    }
    auto now = Clock::now();
    pollfd fds[3] = {{fd_[0], 0, 0}, {fd_[1], 0, 0}, {wake_r_, POLLIN, 0}};
    int timeout = 200;
    bool want_read[2] = {false, false};
    if (s.silent) {
      fds[0].fd = -1;  // ignored by poll: no HUP/ERR either, the peers are not noticed
      fds[1].fd = -1;
    } else {
      for (int d = 0; d < 2; ++d) {
        const int src = d;
        const int dst = 1 - d;
        if (!src_eof[d] && queued[d] < kMaxQueued) {
          if (now >= next_read[d]) {
            fds[src].events |= POLLIN;
            want_read[d] = true;
          } else {
            timeout = std::min(timeout, ms_until(next_read[d], now));
          }
        }
        if (!q[d].empty()) {
          if (q[d].front().due <= now) {
            fds[dst].events |= POLLOUT;
          } else {
            timeout = std::min(timeout, ms_until(q[d].front().due, now));
          }
        }
      }
    }
    const int n = ::poll(fds, 3, timeout);
    if (n < 0 && errno != EINTR) return finish("error", false);
    if ((fds[2].revents & POLLIN) != 0) {
      drain(wake_r_);
      // A fault set while poll waited applies to what this round reads, not to the next round:
      // a test arms a link and then sends, and both may wake this poll together.
      std::lock_guard lock(mu_);
      s = spec_;
    }
    if (s.silent || stop_) continue;
    now = Clock::now();

    // A socket in error (reset by its peer) resets the other side too.
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & POLLERR) != 0) return finish("reset", true);
    }

    // Reads.
    for (int d = 0; d < 2; ++d) {
      const int src = d;
      const bool hup = (fds[src].revents & POLLHUP) != 0;
      if (!want_read[d] && !hup) continue;
      if ((fds[src].revents & (POLLIN | POLLHUP)) == 0) continue;
      if (src_eof[d]) {
        // Both directions of this socket are done: nothing more can happen on it.
        if (hup && q[1 - d].empty()) return finish("eof", false);
        continue;
      }
      size_t cap = buf.size();
      if (s.slow_chunk[d] > 0) cap = std::min(cap, s.slow_chunk[d]);
      if (s.bandwidth > 0) cap = std::min<size_t>(cap, std::max<uint64_t>(1, s.bandwidth / 50));
      const ssize_t r = ::recv(fd_[src], buf.data(), cap, 0);
      if (r > 0) {
        Clock::time_point due = now + s.latency;
        if (s.jitter.count() > 0) {
          std::uniform_int_distribution<int64_t> j(-s.jitter.count(), s.jitter.count());
          due += Ms{j(rng)};
        }
        due = std::max({due, last_due[d], now});
        last_due[d] = due;
        q[d].push_back(Chunk{std::string(buf.data(), static_cast<size_t>(r)), 0, due});
        queued[d] += static_cast<size_t>(r);
        Clock::time_point next = now;
        if (s.slow_chunk[d] > 0) next = now + s.slow_pause[d];
        if (s.bandwidth > 0) {
          next = std::max(
              next, now + std::chrono::microseconds(static_cast<int64_t>(
                              static_cast<double>(r) * 1e6 / static_cast<double>(s.bandwidth))));
        }
        next_read[d] = next;
      } else if (r == 0) {
        src_eof[d] = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return finish("reset", true);
      }
    }

    // Writes of the chunks that are due.
    for (int d = 0; d < 2; ++d) {
      const int dst = 1 - d;
      while (!q[d].empty() && q[d].front().due <= now) {
        Chunk& c = q[d].front();
        size_t len = c.data.size() - c.off;
        int64_t cut = -1;
        bool cut_is_reset = false;
        {
          std::lock_guard lock(mu_);
          if (spec_.reset_after[d] >= 0) {
            cut = spec_.reset_after[d];
            cut_is_reset = true;
          } else if (spec_.close_after[d] >= 0) {
            cut = spec_.close_after[d];
          }
        }
        if (cut >= 0) len = std::min<size_t>(len, static_cast<size_t>(cut));
        ssize_t w = 0;
        if (len > 0) {
          w = ::send(fd_[dst], c.data.data() + c.off, len, MSG_NOSIGNAL);
          if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
            return finish("reset", true);
          }
        }
        bytes_[d] += static_cast<uint64_t>(w);
        c.off += static_cast<size_t>(w);
        queued[d] -= static_cast<size_t>(w);
        if (cut >= 0) {
          std::lock_guard lock(mu_);
          int64_t& left = cut_is_reset ? spec_.reset_after[d] : spec_.close_after[d];
          left = std::max<int64_t>(0, left - w);
          cut = left;
        }
        if (cut == 0) {
          if (cut_is_reset) return finish("fault-reset", true);
          return finish("fault-close", false);
        }
        if (c.off == c.data.size()) {
          q[d].pop_front();
        } else {
          break;  // partial write: wait for POLLOUT
        }
      }
      // A FIN from the sender goes on once everything before it is forwarded.
      if (src_eof[d] && q[d].empty() && !dst_shut[d]) {
        (void)::shutdown(fd_[dst], SHUT_WR);
        dst_shut[d] = true;
      }
    }
    if (dst_shut[0] && dst_shut[1]) return finish("eof", false);
  }
}

// ---- FaultRelay -----------------------------------------------------------------------------

FaultRelay::FaultRelay(std::string target_host, uint16_t target_port)
    : host_(std::move(target_host)), target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket failed");
  const int one = 1;
  (void)::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;  // the kernel picks a free port
  socklen_t len = sizeof a;
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 128) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error(std::string("relay listen failed: ") + std::strerror(errno));
  }
  port_ = ntohs(a.sin_port);
  make_pipe(wake_r_, wake_w_);
  thread_ = std::thread([this] { accept_loop(); });
}

FaultRelay::~FaultRelay() {
  stop_ = true;
  const char c = 1;
  (void)!::write(wake_w_, &c, 1);
  if (thread_.joinable()) thread_.join();
  close_all();
  ::close(listen_fd_);
  ::close(wake_r_);
  ::close(wake_w_);
}

void FaultRelay::accept_loop() {
  while (!stop_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_r_, POLLIN, 0}};
    if (::poll(fds, 2, 500) <= 0) continue;
    if ((fds[1].revents & POLLIN) != 0) drain(wake_r_);
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    const int t = connect_to(host_, target_port_);
    if (t < 0) {
      ::close(c);
      continue;
    }
    std::lock_guard lock(mu_);
    links_.push_back(std::make_shared<Link>(c, t, defaults_));
  }
}

size_t FaultRelay::accepted() const {
  std::lock_guard lock(mu_);
  return links_.size();
}

size_t FaultRelay::open() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(
      std::count_if(links_.begin(), links_.end(), [](const auto& l) { return !l->finished(); }));
}

std::shared_ptr<Link> FaultRelay::link(size_t index, Ms timeout) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (index < links_.size()) return links_[index];
    }
    if (Clock::now() >= deadline) return nullptr;
    std::this_thread::sleep_for(Ms{5});
  }
}

std::vector<std::shared_ptr<Link>> FaultRelay::open_links() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Link>> out;
  for (const auto& l : links_) {
    if (!l->finished()) out.push_back(l);
  }
  return out;
}

void FaultRelay::set_defaults(const FaultSpec& s) {
  std::lock_guard lock(mu_);
  defaults_ = s;
}

void FaultRelay::set_all(const FaultSpec& s) {
  set_defaults(s);
  for (const auto& l : open_links()) l->set(s);
}

void FaultRelay::close_all() {
  std::vector<std::shared_ptr<Link>> all;
  {
    std::lock_guard lock(mu_);
    all = links_;
  }
  for (const auto& l : all) l->stop();
}

}  // namespace pgphase::faults
