// An alert rule: the manual's AlertRule (rule_id, rule_name, alert_type, severity, condition,
// threshold, duration, enabled, notification_channels, suppression_duration, auto_recovery,
// recovery_action) plus `comparison` and an optional scope (`migration_id`, `config_id`). The
// condition is either SQL returning one number (run read-only against the control database), or
// one of pgphase's signals, optionally with its comparison written in: "switch_error_rate > 0.05".
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace boost::json {
class object;
class value;
}  // namespace boost::json

namespace pgphase::alerting {

// A rule or request that cannot be accepted; the message names the field and why.
struct RuleError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

enum class Comparison { kGt, kGe, kLt, kLe, kEq, kNe };
[[nodiscard]] std::optional<Comparison> parse_comparison(std::string_view s) noexcept;
[[nodiscard]] const char* to_string(Comparison c) noexcept;
[[nodiscard]] bool holds(double value, Comparison c, double threshold) noexcept;

// pgphase's own signals; per migration (dual_write_success_rate, consistency_score,
// migration_success_rate) or per read switch config (switch_error_rate, target_p95_latency_ms).
inline const std::vector<std::string> kSignals = {"dual_write_success_rate", "consistency_score",
                                                  "migration_success_rate", "switch_error_rate",
                                                  "target_p95_latency_ms"};
[[nodiscard]] bool signal_per_switch(std::string_view signal) noexcept;

inline const std::vector<std::string> kRecoveryActions = {
    "rollback_read_switch",     "disable_dual_write", "pause_backfill",
    "retry_failed_dual_writes", "retry_migration",    "retry_failed_migrations"};

struct AlertRule {
  std::string rule_id;
  std::string rule_name;
  std::string alert_type;  // migration_failure, consistency, dual_write_failure, ...
  std::string severity;    // info | warning | critical
  std::string condition;   // SQL, or a signal expression
  Comparison comparison = Comparison::kGe;
  double threshold = 0;
  int duration = 0;  // seconds the condition must hold before it fires
  bool enabled = true;
  std::vector<std::string> notification_channels;
  int suppression_duration = 300;  // seconds between notifications of one alert (and its group)
  bool auto_recovery = false;
  std::string recovery_action;  // one of kRecoveryActions, or ""
  std::string migration_id;     // scope ("" = every migration / the whole database)
  std::string config_id;

  // Derived from `condition`.
  [[nodiscard]] bool is_sql() const;
  [[nodiscard]] std::string signal() const;  // the signal name ("" for SQL)
};

// Parses one rule (the manual's JSON; unknown keys are refused). A signal condition with its own
// comparison ("x < 0.98") sets comparison and threshold; without "threshold" it needs one. Checks
// everything that does not need the database (an unknown signal, a bad severity or recovery
// action, negative durations); throws RuleError.
[[nodiscard]] AlertRule parse_rule(const boost::json::value& v);
[[nodiscard]] boost::json::object to_json(const AlertRule& r);

}  // namespace pgphase::alerting
