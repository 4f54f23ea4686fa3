// A fault-injecting TCP relay for the fault tests: listens on a free 127.0.0.1 port and forwards
// every accepted connection to a target (pgphase's listen port, or PostgreSQL). Each accepted
// connection pair is a Link, served by its own thread (poll loop, non-blocking sockets); faults
// are set on a Link at runtime from any thread:
//
//   latency(base, jitter)    every chunk read is forwarded base +- jitter later (order kept)
//   bandwidth(bytes_per_s)   reads are paced so that no more than this flows per direction
//   reset_after(dir, n)      forward n more bytes in `dir`, then close both sockets with
//                            SO_LINGER 0 (RST to both peers) — with small n, inside a message
//   close_after(dir, n)      forward n more bytes in `dir`, then close both sockets normally
//                            (FIN to both peers): a peer that closes after a partial write
//   silent()                 stop reading and writing both ways, keep both sockets open (no FIN,
//                            no RST): a half-open peer; the relay's kernel still ACKs
//   slow_reads(dir, n, p)    read at most n bytes at a time from the sender in `dir`, pausing p
//                            between reads, so that the sender's socket buffer fills
//
// Without faults a Link forwards bytes both ways, propagates a FIN as a FIN (shutdown) and a
// reset as a reset. Everything stops and closes when the relay is destroyed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgphase::faults {

using Ms = std::chrono::milliseconds;

// kUp: from the accepted side (the client) to the target; kDown: back.
enum class Dir { kUp = 0, kDown = 1 };

struct FaultSpec {
  Ms latency{0};
  Ms jitter{0};
  uint64_t bandwidth = 0;  // bytes per second and direction; 0 = unlimited
  bool silent = false;
  // Per direction (index Dir): cut after this many more forwarded bytes; -1 = not armed.
  int64_t reset_after[2] = {-1, -1};
  int64_t close_after[2] = {-1, -1};
  size_t slow_chunk[2] = {0, 0};  // 0 = normal reads
  Ms slow_pause[2] = {Ms{0}, Ms{0}};
};

class Link {
 public:
  Link(int accepted_fd, int target_fd, FaultSpec spec);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void latency(Ms base, Ms jitter);
  void bandwidth(uint64_t bytes_per_second);
  void reset_after(Dir d, int64_t n);
  void close_after(Dir d, int64_t n);
  void silent();
  void slow_reads(Dir d, size_t chunk, Ms pause);
  void clear();  // no faults (a silent link resumes; a closed link stays closed)
  void set(const FaultSpec& s);

  // Both sockets closed (by a fault, by the peers, or by stop()).
  [[nodiscard]] bool finished() const noexcept { return finished_.load(); }
  // Bytes forwarded (written to the destination) in `d`.
  [[nodiscard]] uint64_t bytes(Dir d) const noexcept { return bytes_[static_cast<int>(d)].load(); }
  // How the link ended: "" (still open), "eof", "reset", "error", "fault-reset", "fault-close",
  // "stopped".
  [[nodiscard]] std::string end_reason() const;
  void stop();  // closes both sockets (normally) and joins the thread

 private:
  void run();
  void wake() const;
  void finish(const char* reason, bool rst);

  int fd_[2];  // [0] accepted side, [1] target side
  int wake_r_ = -1;
  int wake_w_ = -1;
  mutable std::mutex mu_;
  FaultSpec spec_;
  std::string end_reason_;
  std::atomic<bool> finished_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> bytes_[2] = {0, 0};
  std::thread thread_;
};

class FaultRelay {
 public:
  FaultRelay(std::string target_host, uint16_t target_port);
  ~FaultRelay();
  FaultRelay(const FaultRelay&) = delete;
  FaultRelay& operator=(const FaultRelay&) = delete;

  [[nodiscard]] uint16_t port() const noexcept { return port_; }
  // Connections accepted so far, and those whose Link has not finished.
  [[nodiscard]] size_t accepted() const;
  [[nodiscard]] size_t open() const;
  // The Link of the index-th accepted connection (0-based), waiting up to `timeout` for it;
  // nullptr when it never came.
  [[nodiscard]] std::shared_ptr<Link> link(size_t index, Ms timeout = Ms{5000}) const;
  // Links not finished, in accept order.
  [[nodiscard]] std::vector<std::shared_ptr<Link>> open_links() const;
  // Faults every Link accepted from now on starts with (FaultSpec{} = none).
  void set_defaults(const FaultSpec& s);
  // Applies `s` to every open link and as the defaults.
  void set_all(const FaultSpec& s);
  // Stops every open link (closes both of its sockets normally).
  void close_all();

 private:
  void accept_loop();
  std::string host_;
  uint16_t target_port_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_r_ = -1;
  int wake_w_ = -1;
  mutable std::mutex mu_;
  FaultSpec defaults_;
  std::vector<std::shared_ptr<Link>> links_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pgphase::faults
