#include "admin/migration_metrics.h"

#include <string>

#include "migration/model.h"

namespace pgphase::admin {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily gauge_family(std::string name, std::string help) {
  return MetricFamily{std::move(name), std::move(help), MetricType::Gauge, {}};
}

void add(MetricFamily& f, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  f.metric.push_back(std::move(m));
}

}  // namespace

MigrationCollector::MigrationCollector(std::function<migration::SnapshotPtr()> snapshot,
                                       std::function<bool()> connected,
                                       std::function<std::optional<StoredFigures>()> stored)
    : snapshot_(std::move(snapshot)),
      connected_(std::move(connected)),
      stored_(std::move(stored)) {}

std::vector<MetricFamily> MigrationCollector::Collect() const {
  std::vector<MetricFamily> out;
  const migration::SnapshotPtr snap = snapshot_ ? snapshot_() : nullptr;

  auto connected = gauge_family("pgphase_control_db_connected",
                                "1 while the control database is reachable, else 0");
  add(connected, connected_ && connected_() ? 1 : 0);
  out.push_back(std::move(connected));

  auto generation = gauge_family("pgphase_state_generation",
                                 "Generation of the migration state in force in this process");
  add(generation, snap ? static_cast<double>(snap->generation) : 0);
  out.push_back(std::move(generation));
  if (!snap) return out;

  auto phase = gauge_family("pgphase_migration_phase",
                            "1 for the migration's current phase, 0 for the other phases");
  auto dual_write = gauge_family("pgphase_migration_dual_write_enabled",
                                 "1 while the migration writes to source and target");
  for (const auto& m : snap->migrations) {
    for (const auto p : migration::kAllPhases) {
      add(phase, p == m.phase ? 1 : 0,
          {{"migration_id", m.migration_id}, {"phase", std::string(migration::to_string(p))}});
    }
    add(dual_write, m.dual_write_enabled ? 1 : 0, {{"migration_id", m.migration_id}});
  }
  out.push_back(std::move(phase));
  out.push_back(std::move(dual_write));

  auto percentage = gauge_family("pgphase_read_switch_percentage",
                                 "Share of reads sent to the target by the switch config (0-100)");
  auto active = gauge_family("pgphase_read_switch_active", "1 while the switch config is active");
  for (const auto& s : snap->switches) {
    add(percentage, s.switch_percentage, {{"config_id", s.config_id}, {"table", s.table_name}});
    add(active, s.status == migration::SwitchStatus::kActive ? 1 : 0, {{"config_id", s.config_id}});
  }
  out.push_back(std::move(percentage));
  out.push_back(std::move(active));

  const std::optional<StoredFigures> stored = stored_ ? stored_() : std::nullopt;
  if (stored) {
    auto score = gauge_family("pgphase_consistency_score",
                              "Score of the migration's latest consistency check (0-1)");
    for (const auto& [id, v] : stored->consistency_scores) add(score, v, {{"migration_id", id}});
    auto logs =
        gauge_family("pgphase_migration_log_entries",
                     "Operations on the migration logged in t_sys_migration_logs, by status");
    for (const auto& [key, n] : stored->log_entries) {
      add(logs, static_cast<double>(n), {{"migration_id", key.first}, {"status", key.second}});
    }
    out.push_back(std::move(score));
    out.push_back(std::move(logs));
  }
  return out;
}

}  // namespace pgphase::admin
