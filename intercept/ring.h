// A FIFO over a ring of reused slots: once it has grown to the deepest pipeline a session sends,
// pushing and popping allocate nothing (std::deque allocates a block every few elements of a
// large type, and frees it again as the front passes it).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace pgphase::intercept {

template <class T>
class Ring {
 public:
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] T& front() noexcept { return slots_[head_]; }
  [[nodiscard]] const T& front() const noexcept { return slots_[head_]; }
  // The i-th element from the front (i < size()).
  [[nodiscard]] T& operator[](size_t i) noexcept { return at(i); }

  void push_back(T v) {
    if (size_ == slots_.size()) grow();
    at(size_) = std::move(v);
    ++size_;
  }
  // The front slot is reset (what it holds is released now, not when the slot is reused).
  void pop_front() noexcept {
    slots_[head_] = T{};
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
  }
  // Removes the elements `pred` is true of, keeping the others in order.
  template <class Pred>
  void erase_if(Pred pred) {
    size_t kept = 0;
    for (size_t i = 0; i < size_; ++i) {
      T& e = at(i);  // not moved yet: moves go to lower indices only
      if (pred(std::as_const(e))) continue;
      if (kept != i) at(kept) = std::move(e);
      ++kept;
    }
    for (size_t i = kept; i < size_; ++i) at(i) = T{};
    size_ = kept;
  }

 private:
  T& at(size_t i) noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }

  void grow() {
    std::vector<T> next(slots_.empty() ? 8 : slots_.size() * 2);
    for (size_t i = 0; i < size_; ++i) next[i] = std::move(at(i));
    slots_ = std::move(next);
    head_ = 0;
  }

  std::vector<T> slots_;  // a power of two in size (or empty)
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace pgphase::intercept
