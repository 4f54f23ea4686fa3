#include "migration/read_stats.h"

#include <array>
#include <cmath>
#include <deque>

namespace pgphase::migration {
namespace {

constexpr size_t kSlots = 120;
constexpr size_t kBuckets = 180;  // 0.01 ms * 1.1^180 ~ 280 s
constexpr double kBase = 0.01;    // ms, upper bound of bucket 0
constexpr double kGrowth = 1.1;

size_t bucket_of(double ms) {
  if (ms <= kBase) return 0;
  const auto b = static_cast<size_t>(std::ceil(std::log(ms / kBase) / std::log(kGrowth)));
  return b < kBuckets ? b : kBuckets - 1;
}
double bucket_upper(size_t b) {
  return kBase * std::pow(kGrowth, static_cast<double>(b));
}

struct Hist {
  uint64_t statements = 0;
  uint64_t errors = 0;
  double sum_ms = 0;
  std::array<uint32_t, kBuckets> buckets{};
  void add(bool ok, double ms, size_t bucket) {
    ++statements;
    if (!ok) ++errors;
    sum_ms += ms;
    ++buckets[bucket];
  }
  void merge(const Hist& o) {
    statements += o.statements;
    errors += o.errors;
    sum_ms += o.sum_ms;
    for (size_t i = 0; i < kBuckets; ++i) buckets[i] += o.buckets[i];
  }
};

SideStats summarise(const Hist& h) {
  SideStats s;
  s.statements = h.statements;
  s.errors = h.errors;
  if (h.statements == 0) return s;
  s.error_rate = static_cast<double>(h.errors) / static_cast<double>(h.statements);
  s.mean_ms = h.sum_ms / static_cast<double>(h.statements);
  auto pct = [&](double q) {
    const auto want = static_cast<uint64_t>(std::ceil(q * static_cast<double>(h.statements)));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += h.buckets[i];
      if (seen >= want && seen > 0) return bucket_upper(i);
    }
    return bucket_upper(kBuckets - 1);
  };
  s.p50_ms = pct(0.50);
  s.p95_ms = pct(0.95);
  s.p99_ms = pct(0.99);
  return s;
}

int64_t now_second() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct ReadStats::Config {
  struct Shadow {
    uint64_t comparisons = 0;
    uint64_t mismatches = 0;
    uint64_t dropped = 0;
    void merge_into(ReadView& v) const {
      v.shadow_comparisons += comparisons;
      v.shadow_mismatches += mismatches;
      v.shadow_dropped += dropped;
    }
  };
  struct Slot {
    int64_t second = -1;
    Hist side[2];
    uint64_t unroutable = 0;
    Shadow shadow;
  };
  Shadow shadow_total;
  std::deque<std::string> samples;
  std::array<Slot, kSlots> slots;
  Hist total[2];
  uint64_t unroutable = 0;
  Slot& slot(int64_t second) {
    Slot& s = slots[static_cast<size_t>(second) % kSlots];
    if (s.second != second) s = Slot{second, {}, 0, {}};
    return s;
  }
};

ReadStats::ReadStats() = default;
ReadStats::~ReadStats() = default;

ReadStats::Config& ReadStats::config(std::string_view id) {
  auto it = configs_.find(id);
  if (it == configs_.end())
    it = configs_.emplace(std::string(id), std::make_unique<Config>()).first;
  return *it->second;
}

void ReadStats::record(std::string_view config_id, bool target, bool ok, double ms) {
  const int64_t sec = now_second();
  const size_t bucket = bucket_of(ms);  // outside the lock
  std::lock_guard lock(mu_);
  Config& c = config(config_id);
  c.slot(sec).side[target ? 1 : 0].add(ok, ms, bucket);
  c.total[target ? 1 : 0].add(ok, ms, bucket);
}

void ReadStats::record_shadow(std::string_view config_id, bool match, const std::string& query) {
  const int64_t sec = now_second();
  std::lock_guard lock(mu_);
  Config& c = config(config_id);
  for (Config::Shadow* s : {&c.slot(sec).shadow, &c.shadow_total}) {
    ++s->comparisons;
    if (!match) ++s->mismatches;
  }
  if (!match) {
    c.samples.push_back(query.substr(0, 500));
    if (c.samples.size() > 20) c.samples.pop_front();
  }
}

void ReadStats::record_shadow_dropped(std::string_view config_id) {
  const int64_t sec = now_second();
  std::lock_guard lock(mu_);
  Config& c = config(config_id);
  ++c.slot(sec).shadow.dropped;
  ++c.shadow_total.dropped;
}

std::vector<std::string> ReadStats::shadow_samples(std::string_view config_id) const {
  std::lock_guard lock(mu_);
  const auto it = configs_.find(config_id);
  if (it == configs_.end()) return {};
  return {it->second->samples.begin(), it->second->samples.end()};
}

void ReadStats::record_unroutable(std::string_view config_id) {
  const int64_t sec = now_second();
  std::lock_guard lock(mu_);
  Config& c = config(config_id);
  ++c.slot(sec).unroutable;
  ++c.unroutable;
}

ReadView ReadStats::view(std::string_view config_id, std::chrono::seconds window) const {
  ReadView v;
  std::lock_guard lock(mu_);
  const auto it = configs_.find(config_id);
  if (it == configs_.end()) {
    v.seconds = static_cast<double>(window.count());
    return v;
  }
  const Config& c = *it->second;
  if (window.count() <= 0) {
    v.source = summarise(c.total[0]);
    v.target = summarise(c.total[1]);
    v.unroutable = c.unroutable;
    c.shadow_total.merge_into(v);
    return v;
  }
  const int64_t n = std::min<int64_t>(window.count(), static_cast<int64_t>(kSlots));
  const int64_t now = now_second();
  Hist side[2];
  for (const auto& s : c.slots) {
    if (s.second < 0 || s.second <= now - n || s.second > now) continue;
    side[0].merge(s.side[0]);
    side[1].merge(s.side[1]);
    v.unroutable += s.unroutable;
    s.shadow.merge_into(v);
  }
  v.source = summarise(side[0]);
  v.target = summarise(side[1]);
  v.seconds = static_cast<double>(n);
  return v;
}

void ReadStats::record_analysis(bool cache_hit, uint64_t nanoseconds) noexcept {
  (cache_hit ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
  analysis_ns_.fetch_add(nanoseconds, std::memory_order_relaxed);
}

ReadStats::Analysis ReadStats::analysis() const noexcept {
  Analysis a;
  a.hits = hits_.load(std::memory_order_relaxed);
  a.misses = misses_.load(std::memory_order_relaxed);
  const uint64_t n = a.hits + a.misses;
  if (n > 0) {
    a.hit_rate = static_cast<double>(a.hits) / static_cast<double>(n);
    a.mean_us = static_cast<double>(analysis_ns_.load(std::memory_order_relaxed)) / 1e3 /
                static_cast<double>(n);
  }
  return a;
}

void ReadStats::reset(std::string_view config_id) {
  std::lock_guard lock(mu_);
  configs_.erase(std::string(config_id));
}

}  // namespace pgphase::migration
