// The migration routing's figures, one shard per worker (sessions of a worker report to its
// shard only): dual-write statements and rows, unsupported writes, statement analysis, routed
// reads per read switch config and side, and reads kept on the source. The worker bumps relaxed
// atomics in entries only it writes; RoutingStats merges the shards when someone reads: /metrics
// (admin/routing_metrics.h), the analytics and the auto-rollback (migration/read_stats.h) and
// the alerting signals all read these figures.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stats/counter.h"
#include "stats/keyed_entries.h"
#include "stats/read_window.h"

namespace pgphase::stats {

enum class WriteOp : uint8_t { kInsert, kUpdate, kDelete };
inline constexpr size_t kWriteOps = 3;
[[nodiscard]] const char* write_op_name(WriteOp op) noexcept;

// Buckets of pgphase_read_switch_latency_seconds (upper bounds in seconds; +Inf is implied).
inline constexpr std::array<double, 13> kReadLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

// Merged figures (plain numbers), as readers get them.
struct DualWriteTotals {
  std::array<std::array<uint64_t, 2>, kWriteOps> statements{};  // [op][0 error, 1 ok]
  std::array<uint64_t, kWriteOps> rows{};
  uint64_t refused = 0;
  uint64_t flagged = 0;
};
struct ReadSideTotals {
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::array<uint64_t, kReadLatencyBuckets.size() + 1> latency{};  // non-cumulative
  uint64_t latency_ns = 0;
};
struct AnalysisTotals {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t nanoseconds = 0;
};
struct RoutingTotals {
  std::map<std::string, DualWriteTotals, std::less<>> dual_writes;          // by migration
  std::map<std::string, std::array<ReadSideTotals, 2>, std::less<>> reads;  // by config, side
  std::map<std::pair<std::string, std::string>, uint64_t> unroutable;       // (migration, config)
  AnalysisTotals analysis;
};

class RoutingStats;

// One worker's figures. Every method but the constructor is for that worker's thread only.
class alignas(64) RoutingShard {
 public:
  explicit RoutingShard(RoutingStats& owner) : owner_(owner) {}
  RoutingShard(const RoutingShard&) = delete;
  RoutingShard& operator=(const RoutingShard&) = delete;

  void mirrored(std::string_view migration_id, WriteOp op, bool ok, int64_t rows);
  void refused(std::string_view migration_id);
  void flagged(std::string_view migration_id);
  void analysed(bool cache_hit, uint64_t nanoseconds) noexcept;
  // `second`: steady_second() now (given by tests).
  void read(std::string_view config_id, bool target, bool ok, uint64_t nanoseconds,
            int64_t second = steady_second());
  // config_id may be empty (a migration without a switch config: counted per migration only).
  void unroutable(std::string_view migration_id, std::string_view config_id,
                  int64_t second = steady_second());

 private:
  friend class RoutingStats;
  struct DualWrite {
    std::array<std::array<Counter, 2>, kWriteOps> statements{};
    std::array<Counter, kWriteOps> rows{};
    Counter refused{0};
    Counter flagged{0};
  };
  struct ReadSide {
    Counter ok{0};
    Counter errors{0};
    std::array<Counter, kReadLatencyBuckets.size() + 1> latency{};
    Counter latency_ns{0};
  };
  struct Read {
    explicit Read(const std::atomic<uint32_t>& e) : epoch(e) {}
    const std::atomic<uint32_t>& epoch;  // the config's, advanced by RoutingStats::reset
    ReadSide side[2];
    ReadWindow window;
    // The window, restarted first when the config was reset since it was last written.
    ReadWindow& current() noexcept;
  };
  Read& read_entry(std::string_view config_id);

  RoutingStats& owner_;
  KeyedEntries<1, DualWrite> dual_writes_;
  KeyedEntries<1, Read> reads_;
  KeyedEntries<2, Counter> unroutable_;
  Counter hits_{0};
  Counter misses_{0};
  Counter analysis_ns_{0};
};

// Every worker's shard, and the merge. Readers may call from any thread at any time.
class RoutingStats {
 public:
  explicit RoutingStats(size_t shards);
  ~RoutingStats();
  RoutingStats(const RoutingStats&) = delete;
  RoutingStats& operator=(const RoutingStats&) = delete;

  [[nodiscard]] RoutingShard& shard(size_t i) noexcept { return *shards_[i]; }
  [[nodiscard]] size_t shard_count() const noexcept { return shards_.size(); }

  [[nodiscard]] RoutingTotals totals() const;
  [[nodiscard]] AnalysisTotals analysis() const noexcept;
  // f(window) for each worker's window of `config_id` kept since the config's last reset.
  void for_each_window(std::string_view config_id,
                       const std::function<void(const ReadWindow&)>& f) const;
  // Forgets the windows of `config_id` (a new activation starts from zero); the totals of
  // totals() (counters since start) stay.
  void reset(std::string_view config_id);

 private:
  friend class RoutingShard;
  // The reset epoch of a config, created on first use; stable.
  const std::atomic<uint32_t>& epoch(std::string_view config_id);
  std::atomic<uint32_t>& epoch_locked(std::string_view config_id);  // epochs_mu_ held

  std::vector<std::unique_ptr<RoutingShard>> shards_;
  mutable std::mutex epochs_mu_;
  std::map<std::string, std::unique_ptr<std::atomic<uint32_t>>, std::less<>> epochs_;
};

}  // namespace pgphase::stats
