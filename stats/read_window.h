// One worker's figures of one read switch config since its last reset (activation), for the
// analytics, alerting and auto-rollback: statements, errors and a latency histogram per side
// (source, target) in one-second slots over the last 120 seconds and in total, and the reads kept
// on the source (unroutable).
//
// The worker writes (single writer, relaxed atomics, no lock); readers on other threads merge
// every worker's windows (migration/read_stats.h). A slot is stamped with its second: a reader
// skips a slot whose stamp is not in its window or changes while it reads it (a seqlock).
//
// Latency buckets are logarithmic, 10% wide from 0.01 ms: a percentile read from them is within
// 10% above the true value.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "stats/counter.h"

namespace pgphase::stats {

inline constexpr size_t kWindowSlots = 120;  // seconds
inline constexpr size_t kLogBuckets = 180;   // 0.01 ms * 1.1^180 ~ 280 s

// The bucket of a latency, and a bucket's upper bound in milliseconds.
[[nodiscard]] size_t log_bucket(uint64_t nanoseconds) noexcept;
[[nodiscard]] double log_bucket_upper_ms(size_t bucket) noexcept;

// The clock of the slots: whole seconds of std::chrono::steady_clock.
[[nodiscard]] int64_t steady_second() noexcept;

// Plain figures, as a reader merges them.
struct LogCounts {
  uint64_t statements = 0;
  uint64_t errors = 0;
  uint64_t sum_ns = 0;
  std::array<uint64_t, kLogBuckets> buckets{};
  void merge(const LogCounts& o) noexcept;
};

// T: uint32_t in a one-second slot (smaller), uint64_t for totals.
template <class T>
struct LogHistogram {
  std::atomic<T> statements{0};
  std::atomic<T> errors{0};
  Counter sum_ns{0};
  std::array<std::atomic<T>, kLogBuckets> buckets{};

  void add(bool ok, uint64_t ns, size_t bucket) noexcept;  // the writer
  void clear() noexcept;                                   // the writer
  void add_to(LogCounts& out) const noexcept;              // any thread
};

class ReadWindow {
 public:
  // The writer (the worker that owns this window).
  void record(int64_t second, bool target, bool ok, uint64_t nanoseconds) noexcept;
  void record_unroutable(int64_t second) noexcept;
  // Forgets everything and marks the figures as those of `epoch`.
  void restart(uint32_t epoch) noexcept;
  [[nodiscard]] uint32_t epoch() const noexcept { return epoch_.load(std::memory_order_acquire); }

  // Readers: the seconds (now - n, now] (n <= kWindowSlots), or everything since the restart.
  void merge_window(int64_t now, int64_t n, LogCounts (&side)[2],
                    uint64_t& unroutable) const noexcept;
  void merge_total(LogCounts (&side)[2], uint64_t& unroutable) const noexcept;

 private:
  struct Slot {
    std::atomic<int64_t> second{-1};  // -1: being reused (or never used)
    LogHistogram<uint32_t> side[2];
    std::atomic<uint32_t> unroutable{0};
  };
  Slot& slot(int64_t second) noexcept;

  std::atomic<uint32_t> epoch_{0};
  std::array<Slot, kWindowSlots> slots_;
  LogHistogram<uint64_t> total_[2];
  Counter unroutable_{0};
};

}  // namespace pgphase::stats
