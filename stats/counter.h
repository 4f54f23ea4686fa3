// Counters with one writer: each worker bumps its own (no lock, no read-modify-write instruction,
// no cache line shared with another writer); readers on other threads sum them when they report.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace pgphase::stats {

using Counter = std::atomic<uint64_t>;

// Single-writer increment: a load and a store. Only the thread that owns `c` may call it.
template <class T>
inline void bump(std::atomic<T>& c, std::type_identity_t<T> n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

template <class T>
[[nodiscard]] inline T load(const std::atomic<T>& c) noexcept {
  return c.load(std::memory_order_relaxed);
}

}  // namespace pgphase::stats
