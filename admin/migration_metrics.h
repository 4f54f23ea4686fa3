// Migration state as Prometheus gauges, read from the snapshot in force on every scrape:
//   pgphase_migration_phase{migration_id,phase}         1 for the current phase, 0 for the others
//   pgphase_migration_dual_write_enabled{migration_id}
//   pgphase_read_switch_percentage{config_id,table}
//   pgphase_read_switch_active{config_id}
//   pgphase_control_db_connected                        0/1
//   pgphase_state_generation
// and, read from the control database on every scrape (left out when it cannot be read):
//   pgphase_consistency_score{migration_id}             the latest consistency check's score
//   pgphase_migration_log_entries{migration_id,status}  t_sys_migration_logs rows by status
//                                                       (success, refused, flagged, failed)
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <functional>
#include <optional>
#include <vector>

#include "migration/control_plane.h"
#include "migration/snapshot.h"

namespace pgphase::admin {

class MigrationCollector final : public prometheus::Collectable {
 public:
  using StoredFigures = migration::ControlPlane::StoredFigures;
  MigrationCollector(std::function<migration::SnapshotPtr()> snapshot,
                     std::function<bool()> connected,
                     std::function<std::optional<StoredFigures>()> stored = {});
  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<migration::SnapshotPtr()> snapshot_;
  std::function<bool()> connected_;
  std::function<std::optional<StoredFigures>()> stored_;
};

}  // namespace pgphase::admin
