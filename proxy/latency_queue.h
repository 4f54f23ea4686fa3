// Start times of requests awaiting their ReadyForQuery, oldest first. Grows on demand (an idle
// session holds no storage) up to a cap; requests beyond the cap are counted, not timed, and the
// queue keeps pairing each ReadyForQuery with the right request.
#pragma once

#include <cstdint>
#include <memory>

namespace pgphase::proxy {

class LatencyQueue {
 public:
  static constexpr uint32_t kMaxTimed = 1024;

  void push(uint64_t start_ns) {
    if (untimed_ > 0 || size_ == kMaxTimed) {  // keep order: once past the cap, the tail is untimed
      ++untimed_;
      return;
    }
    if (size_ == capacity_) grow();
    slots_[(head_ + size_) & (capacity_ - 1)] = start_ns;
    ++size_;
  }

  // The start time of the request a ReadyForQuery answers; 0 when it was not timed or unknown.
  uint64_t pop() noexcept {
    if (size_ > 0) {
      const uint64_t v = slots_[head_];
      head_ = (head_ + 1) & (capacity_ - 1);
      --size_;
      return v;
    }
    if (untimed_ > 0) --untimed_;
    return 0;
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0 && untimed_ == 0; }

 private:
  void grow() {
    const uint32_t cap = capacity_ == 0 ? 4 : capacity_ * 2;
    auto next = std::make_unique<uint64_t[]>(cap);
    for (uint32_t i = 0; i < size_; ++i) next[i] = slots_[(head_ + i) & (capacity_ - 1)];
    slots_ = std::move(next);
    capacity_ = cap;
    head_ = 0;
  }

  std::unique_ptr<uint64_t[]> slots_;
  uint32_t capacity_ = 0;  // a power of two
  uint32_t head_ = 0;
  uint32_t size_ = 0;
  uint32_t untimed_ = 0;
};

}  // namespace pgphase::proxy
