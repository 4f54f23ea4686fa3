// Migration state as Prometheus gauges, read from the snapshot in force on every scrape:
//   pgphase_migration_phase{migration_id,phase}         1 for the current phase, 0 for the others
//   pgphase_migration_dual_write_enabled{migration_id}
//   pgphase_read_switch_percentage{config_id,table}
//   pgphase_read_switch_active{config_id}
//   pgphase_control_db_connected                        0/1
//   pgphase_state_generation
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <functional>
#include <vector>

#include "migration/snapshot.h"

namespace pgphase::admin {

class MigrationCollector final : public prometheus::Collectable {
 public:
  MigrationCollector(std::function<migration::SnapshotPtr()> snapshot,
                     std::function<bool()> connected);
  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<migration::SnapshotPtr()> snapshot_;
  std::function<bool()> connected_;
};

}  // namespace pgphase::admin
