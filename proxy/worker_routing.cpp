#include "proxy/worker_routing.h"

#include "common/log.h"
#include "migration/shadow.h"
#include "stats/routing_stats.h"

namespace pgphase::proxy {

namespace {
stats::WriteOp write_op(router::TagKind k) {
  switch (k) {
    case router::TagKind::kInsert:
      return stats::WriteOp::kInsert;
    case router::TagKind::kUpdate:
      return stats::WriteOp::kUpdate;
    case router::TagKind::kDelete:
      return stats::WriteOp::kDelete;
  }
  return stats::WriteOp::kInsert;
}
}  // namespace

WorkerRouting::WorkerRouting(MigrationSnapshotSource snapshots, size_t plan_cache_bytes,
                             stats::RoutingShard& stats, FlagSink flag_sink,
                             migration::ShadowRunner* shadow)
    : snapshots_(snapshots),
      cache_(plan_cache_bytes),
      stats_(stats),
      flag_sink_(std::move(flag_sink)),
      shadow_(shadow) {}

router::TableRef WorkerRouting::table_for(const std::string& database) {
  if (snapshots_ == nullptr) return nullptr;
  // Per statement: one acquire load (a plain load on x86); the snapshot's shared_ptr is copied
  // only when a new generation was published.
  if (const uint64_t g = snapshots_->generation(); g != seen_) {
    migration::SnapshotPtr snap = snapshots_->load();
    seen_ = snap->generation;  // may be newer than g: then it is not loaded twice
    if (snapshot_ == nullptr || snap->generation != snapshot_->generation) tables_.clear();
    snapshot_ = std::move(snap);
  }
  auto found = tables_.find(database);
  if (found == tables_.end())
    found = tables_.emplace(database, router::RoutingTable::build(*snapshot_, database)).first;
  return found->second;
}

void WorkerRouting::mirrored(std::string_view migration_id, router::TagKind op, bool ok,
                             int64_t rows) {
  stats_.mirrored(migration_id, write_op(op), ok, rows);
}

void WorkerRouting::refused(std::string_view migration_id) {
  stats_.refused(migration_id);
}

void WorkerRouting::flagged(std::string_view migration_id, std::string_view reason,
                            std::string_view sql) {
  stats_.flagged(migration_id);
  log::warn("migration ", migration_id,
            ": passed a write pgphase cannot mirror (allow_and_flag): ", reason);
  if (flag_sink_)
    flag_sink_(std::string(migration_id), std::string(reason), std::string(sql.substr(0, 2000)));
}

void WorkerRouting::read(std::string_view config_id, bool target, bool ok, uint64_t nanoseconds) {
  stats_.read(config_id, target, ok, nanoseconds);
}

void WorkerRouting::unroutable(std::string_view migration_id, std::string_view config_id,
                               std::string_view reason) {
  stats_.unroutable(migration_id, config_id);
  log::debug("migration ", migration_id, ": read kept on the source: ", reason);
}

void WorkerRouting::shadow(migration::ShadowJob job) {
  if (shadow_ != nullptr) (void)shadow_->submit(std::move(job));
}

void WorkerRouting::analysed(bool cache_hit, uint64_t nanoseconds) {
  stats_.analysed(cache_hit, nanoseconds);
}

}  // namespace pgphase::proxy
