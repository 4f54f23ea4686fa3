#include "migration/read_stats.h"

#include <array>
#include <cmath>
#include <deque>

#include "stats/read_window.h"
#include "stats/routing_stats.h"

namespace pgphase::migration {
namespace {

using stats::kLogBuckets;
using stats::kWindowSlots;
using stats::LogCounts;

SideStats summarise(const LogCounts& h) {
  SideStats s;
  s.statements = h.statements;
  s.errors = h.errors;
  if (h.statements == 0) return s;
  s.error_rate = static_cast<double>(h.errors) / static_cast<double>(h.statements);
  s.mean_ms = static_cast<double>(h.sum_ns) / 1e6 / static_cast<double>(h.statements);
  auto pct = [&](double q) {
    const auto want = static_cast<uint64_t>(std::ceil(q * static_cast<double>(h.statements)));
    uint64_t seen = 0;
    for (size_t i = 0; i < kLogBuckets; ++i) {
      seen += h.buckets[i];
      if (seen >= want && seen > 0) return stats::log_bucket_upper_ms(i);
    }
    return stats::log_bucket_upper_ms(kLogBuckets - 1);
  };
  s.p50_ms = pct(0.50);
  s.p95_ms = pct(0.95);
  s.p99_ms = pct(0.99);
  return s;
}

}  // namespace

// Shadow comparisons of a config (the shadow runner's thread records them, rarely: locked).
struct ReadStats::Shadow {
  struct Counts {
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
    Counts counts;
  };
  Counts total;
  std::deque<std::string> samples;
  std::array<Slot, kWindowSlots> slots;
  Counts& slot(int64_t second) {
    Slot& s = slots[static_cast<size_t>(second) % kWindowSlots];
    if (s.second != second) s = Slot{second, {}};
    return s.counts;
  }
};

ReadStats::ReadStats(stats::RoutingStats* routing) : routing_(routing) {}
ReadStats::~ReadStats() = default;

ReadStats::Shadow& ReadStats::shadow(std::string_view id) {
  auto it = shadows_.find(id);
  if (it == shadows_.end())
    it = shadows_.emplace(std::string(id), std::make_unique<Shadow>()).first;
  return *it->second;
}

void ReadStats::record_shadow(std::string_view config_id, bool match, const std::string& query) {
  const int64_t sec = stats::steady_second();
  std::lock_guard lock(mu_);
  Shadow& c = shadow(config_id);
  for (Shadow::Counts* s : {&c.slot(sec), &c.total}) {
    ++s->comparisons;
    if (!match) ++s->mismatches;
  }
  if (!match) {
    c.samples.push_back(query.substr(0, 500));
    if (c.samples.size() > 20) c.samples.pop_front();
  }
}

void ReadStats::record_shadow_dropped(std::string_view config_id) {
  const int64_t sec = stats::steady_second();
  std::lock_guard lock(mu_);
  Shadow& c = shadow(config_id);
  ++c.slot(sec).dropped;
  ++c.total.dropped;
}

std::vector<std::string> ReadStats::shadow_samples(std::string_view config_id) const {
  std::lock_guard lock(mu_);
  const auto it = shadows_.find(config_id);
  if (it == shadows_.end()) return {};
  return {it->second->samples.begin(), it->second->samples.end()};
}

ReadView ReadStats::view(std::string_view config_id, std::chrono::seconds window) const {
  ReadView v;
  const bool total = window.count() <= 0;
  const int64_t n =
      total ? 0 : std::min<int64_t>(window.count(), static_cast<int64_t>(kWindowSlots));
  const int64_t now = stats::steady_second();
  bool known = false;  // some figures of the config exist (else: the window asked for, unclamped)
  LogCounts side[2];
  if (routing_ != nullptr) {
    routing_->for_each_window(config_id, [&](const stats::ReadWindow& w) {
      known = true;
      if (total)
        w.merge_total(side, v.unroutable);
      else
        w.merge_window(now, n, side, v.unroutable);
    });
  }
  v.source = summarise(side[0]);
  v.target = summarise(side[1]);
  std::lock_guard lock(mu_);
  const auto it = shadows_.find(config_id);
  if (it != shadows_.end()) {
    known = true;
    const Shadow& c = *it->second;
    if (total) {
      c.total.merge_into(v);
    } else {
      for (const auto& s : c.slots) {
        if (s.second < 0 || s.second <= now - n || s.second > now) continue;
        s.counts.merge_into(v);
      }
    }
  }
  v.seconds = static_cast<double>(known ? n : window.count());
  return v;
}

ReadStats::Analysis ReadStats::analysis() const noexcept {
  Analysis a;
  if (routing_ == nullptr) return a;
  const stats::AnalysisTotals t = routing_->analysis();
  a.hits = t.hits;
  a.misses = t.misses;
  const uint64_t n = a.hits + a.misses;
  if (n > 0) {
    a.hit_rate = static_cast<double>(a.hits) / static_cast<double>(n);
    a.mean_us = static_cast<double>(t.nanoseconds) / 1e3 / static_cast<double>(n);
  }
  return a;
}

void ReadStats::reset(std::string_view config_id) {
  if (routing_ != nullptr) routing_->reset(config_id);
  std::lock_guard lock(mu_);
  if (const auto it = shadows_.find(config_id); it != shadows_.end()) shadows_.erase(it);
}

}  // namespace pgphase::migration
