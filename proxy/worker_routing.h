// Per-worker routing state shared by the worker's sessions (one thread: no locks): the routing
// table compiled from the latest migration snapshot for each database, the plan cache, and the
// worker's routing figures (stats/routing_stats.h) sessions report to.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "intercept/observer.h"
#include "migration/snapshot.h"
#include "proxy/routing_hooks.h"
#include "router/plan_cache.h"
#include "router/routing_table.h"

namespace pgphase::migration {
class ShadowRunner;
}
namespace pgphase::stats {
class RoutingShard;
}

namespace pgphase::proxy {

class WorkerRouting final : public intercept::RewriteObserver {
 public:
  WorkerRouting(MigrationSnapshotSource snapshots, size_t plan_cache_bytes,
                stats::RoutingShard& stats, FlagSink flag_sink, migration::ShadowRunner* shadow);

  // The table in force for `database`; valid until the next call (which may find a new
  // snapshot generation and drop the tables of the previous one).
  [[nodiscard]] router::TableRef table_for(const std::string& database);
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
  MigrationSnapshotSource snapshots_;
  router::PlanCache cache_;
  stats::RoutingShard& stats_;
  FlagSink flag_sink_;
  migration::ShadowRunner* shadow_;

  // The snapshot as of the last generation seen (kept alive for the tables built from it).
  uint64_t seen_ = UINT64_MAX;
  migration::SnapshotPtr snapshot_;
  std::unordered_map<std::string, std::shared_ptr<const router::RoutingTable>> tables_;
};

}  // namespace pgphase::proxy
