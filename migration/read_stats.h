// Live statistics of routed reads, per read switch config and side (source, target): statement
// and error counts and a latency histogram, over one-second slots (the last 120 seconds) and in
// total since the config's activation. Read by the analytics endpoint, the alerting and the
// auto-rollback check. Thread-safe.
//
// The reads are the proxy workers' own figures (stats/routing_stats.h: each worker writes its
// shard without a lock), merged here when read. Shadow comparisons, recorded off the client's path
// by the shadow runner, are kept here under a lock.
//
// Latency is the time from pgphase forwarding the statement (Execute, or the Query) to its
// completion from PostgreSQL (CommandComplete or ErrorResponse); percentiles come from
// logarithmic buckets 10% wide, so a reported p95 is within 10% above the true value.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pgphase::stats {
class RoutingStats;
}

namespace pgphase::migration {

struct SideStats {
  uint64_t statements = 0;
  uint64_t errors = 0;
  double error_rate = 0;  // errors / statements, 0 without statements
  double mean_ms = 0;
  double p50_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
};

struct ReadView {
  SideStats source;
  SideStats target;
  uint64_t unroutable = 0;  // reads kept on the source because pgphase could not redirect them
  uint64_t shadow_comparisons = 0;
  uint64_t shadow_mismatches = 0;
  uint64_t shadow_dropped = 0;  // shadow work dropped because the queue was full
  double seconds = 0;           // the window's length (0: since start)
};

class ReadStats {
 public:
  // `routing`: the workers' figures; null without a proxy (only shadow figures then).
  explicit ReadStats(stats::RoutingStats* routing = nullptr);
  ~ReadStats();
  ReadStats(const ReadStats&) = delete;
  ReadStats& operator=(const ReadStats&) = delete;

  // A shadow comparison (match or mismatch; a mismatching query is kept in a sample of the
  // latest 20) or dropped shadow work.
  void record_shadow(std::string_view config_id, bool match, const std::string& query);
  void record_shadow_dropped(std::string_view config_id);
  [[nodiscard]] std::vector<std::string> shadow_samples(std::string_view config_id) const;
  // The last `window` (at most 120 s) or, with a zero window, everything since the last reset
  // (or since start).
  [[nodiscard]] ReadView view(std::string_view config_id, std::chrono::seconds window) const;
  // Forgets a config's figures (a new activation starts from zero).
  void reset(std::string_view config_id);

  // Statement analysis by the router on every worker: parse-cache hits and misses and the time
  // spent (for the analytics' parse-cache hit rate and the proxy's own cost per statement).
  struct Analysis {
    uint64_t hits = 0;
    uint64_t misses = 0;
    double hit_rate = 0;
    double mean_us = 0;  // per analysed text, hits and misses together
  };
  [[nodiscard]] Analysis analysis() const noexcept;

 private:
  struct Shadow;
  Shadow& shadow(std::string_view id);  // mu_ held
  stats::RoutingStats* routing_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Shadow>, std::less<>> shadows_;
};

}  // namespace pgphase::migration
