// pgphase's own signals for alert rules, per scope: a migration (dual_write_success_rate,
// consistency_score, migration_success_rate) or a read switch config (switch_error_rate,
// target_p95_latency_ms). Rates cover the last kWindow; a scope without data in the window has no
// value (the rule does not hold there).
//  - dual_write_success_rate: 1 - failed / mirrored statements, from this pgphase's counters
//    (pgphase_dual_write_statements_total) plus the failed target writes of eventual migrations
//    logged in t_sys_dual_write_logs;
//  - consistency_score: the latest check in t_sys_consistency_checks;
//  - migration_success_rate: success / (success + failed) of t_sys_migration_logs (last hour);
//  - switch_error_rate, target_p95_latency_ms: the target side of the switch's routed reads
//    (ReadStats), over the switch's conditions.window_seconds (as its auto-rollback) or 60 s.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "migration/pg_client.h"
#include "migration/snapshot.h"

namespace pgphase::migration {
class ReadStats;
}
namespace pgphase::stats {
class RoutingStats;
}

namespace pgphase::alerting {

struct SignalValue {
  std::string scope;         // migration_id or config_id
  std::string migration_id;  // the scope's migration ("" when unknown)
  double value = 0;
};

class Signals {
 public:
  static constexpr std::chrono::seconds kWindow{60};
  // Any of the sources may be null (the CLI monitor has no proxy: no counters, no read stats).
  Signals(std::function<migration::SnapshotPtr()> snapshot, migration::ReadStats* reads,
          const stats::RoutingStats* routing);

  // Called once per evaluation round, before values(): starts a new round (each signal is read
  // at most once per round; the counters are sampled when a rule needs them).
  void begin_round();
  // The values of `signal`, limited to `migration_id` / `config_id` when not empty.
  std::vector<SignalValue> values(migration::pg::Connection& c, const std::string& signal,
                                  const std::string& migration_id, const std::string& config_id);

 private:
  struct Sample {
    std::chrono::steady_clock::time_point at;
    std::map<std::string, std::pair<double, double>> dual_write;  // migration -> (ok, error)
  };
  std::function<migration::SnapshotPtr()> snapshot_;
  migration::ReadStats* reads_;
  // The proxy workers' dual-write statement counters (as /metrics renders them).
  const stats::RoutingStats* routing_;
  void sample();
  std::vector<SignalValue> compute(migration::pg::Connection& c, const std::string& signal);
  std::vector<Sample> samples_;  // oldest first, kWindow long
  bool sampled_ = false;
  std::map<std::string, std::vector<SignalValue>> round_;  // this round's values by signal
};

}  // namespace pgphase::alerting
