// Per-worker routing state shared by the worker's sessions (one thread: no locks): the routing
// table compiled from the latest migration snapshot for each database, the plan cache, and the
// dual-write counters sessions report to.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "intercept/observer.h"
#include "migration/snapshot.h"
#include "proxy/routing_hooks.h"
#include "router/plan_cache.h"
#include "router/routing_table.h"

namespace prometheus {
class Counter;
class Registry;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace pgphase::migration {
class ReadStats;
class ShadowRunner;
}  // namespace pgphase::migration

namespace pgphase::proxy {

// prometheus-cpp families for dual writes, created once per server.
struct DualWriteFamilies {
  explicit DualWriteFamilies(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& statements;   // by migration, operation, result
  prometheus::Family<prometheus::Counter>& rows;         // by migration, operation
  prometheus::Family<prometheus::Counter>& unsupported;  // by migration, action
  prometheus::Family<prometheus::Counter>& analysis;     // parse cache hits/misses
  prometheus::Family<prometheus::Counter>& analysis_seconds;
  prometheus::Family<prometheus::Counter>& reads;           // by config, side, result
  prometheus::Family<prometheus::Histogram>& read_latency;  // by config, side
  prometheus::Family<prometheus::Counter>& unroutable;      // by migration, config
};

class WorkerRouting final : public intercept::RewriteObserver {
 public:
  WorkerRouting(MigrationSnapshotSource snapshots, size_t plan_cache_bytes,
                DualWriteFamilies& families, FlagSink flag_sink, migration::ReadStats* read_stats,
                migration::ShadowRunner* shadow);

  [[nodiscard]] std::shared_ptr<const router::RoutingTable> table_for(const std::string& database);
  [[nodiscard]] router::PlanCache& cache() noexcept { return cache_; }

  void mirrored(std::string_view migration_id, router::TagKind op, bool ok, int64_t rows) override;
  void refused(std::string_view migration_id) override;
  void flagged(std::string_view migration_id, std::string_view reason,
               std::string_view sql) override;
  void analysed(bool cache_hit, uint64_t nanoseconds) override;
  void read(std::string_view config_id, bool target, bool ok, uint64_t nanoseconds) override;
  void unroutable(std::string_view migration_id, std::string_view config_id,
                  std::string_view reason) override;
  void shadow(migration::ShadowJob job) override;

 private:
  prometheus::Counter& counter(prometheus::Family<prometheus::Counter>& family,
                               const std::string& key,
                               const std::map<std::string, std::string>& labels);

  MigrationSnapshotSource snapshots_;
  router::PlanCache cache_;
  DualWriteFamilies& families_;
  FlagSink flag_sink_;
  migration::ReadStats* read_stats_;
  migration::ShadowRunner* shadow_;
  struct ReadMetrics {
    prometheus::Counter* ok[2];
    prometheus::Counter* error[2];
    prometheus::Histogram* latency[2];
  };
  struct ViewHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, ReadMetrics, ViewHash, std::equal_to<>> read_metrics_;

  uint64_t generation_ = static_cast<uint64_t>(-1);
  std::unordered_map<std::string, std::shared_ptr<const router::RoutingTable>> tables_;
  std::unordered_map<std::string, prometheus::Counter*> counters_;
  prometheus::Counter* hits_ = nullptr;
  prometheus::Counter* misses_ = nullptr;
  prometheus::Counter* seconds_ = nullptr;
};

}  // namespace pgphase::proxy
