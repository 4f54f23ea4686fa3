#include "stats/read_window.h"

#include <chrono>
#include <cmath>

namespace pgphase::stats {
namespace {

constexpr double kBaseMs = 0.01;  // upper bound of bucket 0
constexpr double kGrowth = 1.1;

}  // namespace

size_t log_bucket(uint64_t nanoseconds) noexcept {
  const double ms = static_cast<double>(nanoseconds) / 1e6;
  if (ms <= kBaseMs) return 0;
  const auto b = static_cast<size_t>(std::ceil(std::log(ms / kBaseMs) / std::log(kGrowth)));
  return b < kLogBuckets ? b : kLogBuckets - 1;
}

double log_bucket_upper_ms(size_t bucket) noexcept {
  return kBaseMs * std::pow(kGrowth, static_cast<double>(bucket));
}

int64_t steady_second() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void LogCounts::merge(const LogCounts& o) noexcept {
  statements += o.statements;
  errors += o.errors;
  sum_ns += o.sum_ns;
  for (size_t i = 0; i < kLogBuckets; ++i) buckets[i] += o.buckets[i];
}

template <class T>
void LogHistogram<T>::add(bool ok, uint64_t ns, size_t bucket) noexcept {
  bump(statements);
  if (!ok) bump(errors);
  bump(sum_ns, ns);
  bump(buckets[bucket]);
}

template <class T>
void LogHistogram<T>::clear() noexcept {
  constexpr auto r = std::memory_order_relaxed;
  statements.store(0, r);
  errors.store(0, r);
  sum_ns.store(0, r);
  for (auto& b : buckets) b.store(0, r);
}

template <class T>
void LogHistogram<T>::add_to(LogCounts& out) const noexcept {
  out.statements += load(statements);
  out.errors += load(errors);
  out.sum_ns += load(sum_ns);
  for (size_t i = 0; i < kLogBuckets; ++i) out.buckets[i] += load(buckets[i]);
}

template struct LogHistogram<uint32_t>;
template struct LogHistogram<uint64_t>;

ReadWindow::Slot& ReadWindow::slot(int64_t second) noexcept {
  Slot& s = slots_[static_cast<size_t>(second) % kWindowSlots];
  if (s.second.load(std::memory_order_relaxed) != second) {
    // Reused for a new second (it held one 120 s old): unstamped while it is cleared, so that a
    // reader never takes the old second's figures for the new one's.
    s.second.store(-1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    s.side[0].clear();
    s.side[1].clear();
    s.unroutable.store(0, std::memory_order_relaxed);
    s.second.store(second, std::memory_order_release);
  }
  return s;
}

void ReadWindow::record(int64_t second, bool target, bool ok, uint64_t nanoseconds) noexcept {
  const size_t bucket = log_bucket(nanoseconds);
  const int side = target ? 1 : 0;
  slot(second).side[side].add(ok, nanoseconds, bucket);
  total_[side].add(ok, nanoseconds, bucket);
}

void ReadWindow::record_unroutable(int64_t second) noexcept {
  bump(slot(second).unroutable);
  bump(unroutable_);
}

void ReadWindow::restart(uint32_t epoch) noexcept {
  for (Slot& s : slots_) s.second.store(-1, std::memory_order_relaxed);
  total_[0].clear();
  total_[1].clear();
  unroutable_.store(0, std::memory_order_relaxed);
  // Readers take these figures as the new epoch's only once they are cleared.
  epoch_.store(epoch, std::memory_order_release);
}

void ReadWindow::merge_window(int64_t now, int64_t n, LogCounts (&side)[2],
                              uint64_t& unroutable) const noexcept {
  for (const Slot& s : slots_) {
    const int64_t stamp = s.second.load(std::memory_order_acquire);
    if (stamp < 0 || stamp <= now - n || stamp > now) continue;
    LogCounts read[2];
    s.side[0].add_to(read[0]);
    s.side[1].add_to(read[1]);
    const uint64_t kept = load(s.unroutable);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.second.load(std::memory_order_relaxed) != stamp) continue;  // reused meanwhile
    side[0].merge(read[0]);
    side[1].merge(read[1]);
    unroutable += kept;
  }
}

void ReadWindow::merge_total(LogCounts (&side)[2], uint64_t& unroutable) const noexcept {
  total_[0].add_to(side[0]);
  total_[1].add_to(side[1]);
  unroutable += load(unroutable_);
}

}  // namespace pgphase::stats
