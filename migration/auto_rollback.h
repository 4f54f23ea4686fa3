// Automatic rollback of read switches: the check (pure) and the thread that runs it for every
// active switch at least once a second against this pgphase's live read statistics.
//
// A breach — target error rate above auto_rollback_threshold or conditions.error_rate_threshold,
// target p95 latency above conditions.latency_threshold (ms), or the migration's latest
// consistency score below conditions.consistency_threshold — rolls the switch back (0%, status
// rolled_back, logged with the reasons) through the control plane, which every pgphase follows
// within a second (NOTIFY). A window with fewer than conditions.min_samples target reads (default
// 20) is inconclusive for the rates; conditions.window_seconds (default 30, at most 120) sets the
// window.
//
// Progressive ramp (conditions.steps, e.g. [10, 25, 50, 100], and conditions.step_interval in
// seconds, default 60): the percentage moves to the next step only after a full healthy and
// conclusive window at the current one, and at least step_interval after the last change (from
// 0% the first step needs only the interval: no target reads exist yet). A paused switch does not
// ramp; promote takes the next step now unless the latest check breached.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "migration/model.h"
#include "migration/read_stats.h"

namespace pgphase::migration {

class ControlPlane;

struct RollbackThresholds {
  double error_rate = 0.05;
  std::optional<double> latency_ms;
  std::optional<double> consistency;
  uint64_t min_samples = 20;
  int window_seconds = 30;
  std::vector<double> steps;  // ramp steps, ascending; empty: no ramp
  int step_interval_seconds = 60;
};
// The first ramp step above `percentage`; nullopt at or past the last.
[[nodiscard]] std::optional<double> next_step(const RollbackThresholds& t, double percentage);
[[nodiscard]] RollbackThresholds thresholds_of(const SwitchConfig& s);

struct RollbackCheck {
  std::string config_id;
  bool inconclusive = false;  // too few target reads in the window for the rates
  bool breach = false;
  bool rolled_back = false;  // this check rolled the switch back
  std::vector<std::string> reasons;
  RollbackThresholds thresholds;
  ReadView window;
  std::optional<double> consistency_score;
};

[[nodiscard]] RollbackCheck evaluate(const SwitchConfig& s, const ReadView& window,
                                     std::optional<double> consistency_score);

class AutoRollback {
 public:
  AutoRollback(ControlPlane& control, ReadStats& stats,
               std::chrono::milliseconds interval = std::chrono::milliseconds(500));
  ~AutoRollback();
  AutoRollback(const AutoRollback&) = delete;
  AutoRollback& operator=(const AutoRollback&) = delete;

  void start();
  void stop();
  // Evaluates `config_id` now and rolls it back on a breach (the manual's check_auto_rollback).
  // nullopt: no such switch config.
  std::optional<RollbackCheck> check_now(const std::string& config_id, const std::string& actor);
  // The latest check of a config by the thread or check_now.
  [[nodiscard]] std::optional<RollbackCheck> last(const std::string& config_id) const;
  // Takes the next ramp step now. Error text when refused (no such switch, not active, no ramp,
  // at the last step, latest check breached); empty on success.
  std::string promote(const std::string& config_id, const std::string& actor);

 private:
  RollbackCheck run_check(const SwitchConfig& s, const std::string& actor);
  void maybe_ramp(const SwitchConfig& s, const RollbackCheck& c);
  void loop();

  ControlPlane& control_;
  ReadStats& stats_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, RollbackCheck> last_;
  std::map<std::string, SwitchStatus> seen_status_;
  // When this pgphase saw each config's percentage last change.
  std::map<std::string, std::pair<double, std::chrono::steady_clock::time_point>> seen_percentage_;
  std::thread thread_;
};

}  // namespace pgphase::migration
