// Per-worker pool of fixed-size relay buffers. A session borrows a buffer only while bytes are in
// flight (read -> scan -> write) and returns it at once, so idle sessions hold none. Each worker
// thread has its own pool: no locks, no sharing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace pgphase::proxy {

class BufferPool {
 public:
  static constexpr size_t kBufferSize = 32 * 1024;
  static constexpr size_t kMaxCached = 256;

  struct Returner {
    void operator()(uint8_t* p) const noexcept;
  };
  using Buffer = std::unique_ptr<uint8_t[], Returner>;

  // The calling thread's pool.
  static BufferPool& local();

  [[nodiscard]] Buffer acquire();
  [[nodiscard]] size_t cached() const noexcept { return free_.size(); }
  ~BufferPool();

 private:
  void release(uint8_t* p) noexcept;
  std::vector<uint8_t*> free_;
};

}  // namespace pgphase::proxy
