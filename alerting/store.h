// The alerting tables of the control database (schema version 5): rules, alerts, silences and the
// notification log. Every function runs one statement (or a few) on the caller's connection.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "alerting/rule.h"
#include "migration/pg_client.h"

namespace pgphase::alerting::store {

namespace pg = migration::pg;

[[nodiscard]] std::vector<AlertRule> load_rules(pg::Connection& c);
// true: inserted; false: it existed (replaced when `replace`, else left alone).
bool save_rule(pg::Connection& c, const AlertRule& r, bool replace);

// An alert that is not resolved, as the evaluator needs it.
struct OpenAlert {
  std::string alert_id;
  std::string rule_id;
  std::string scope;
  std::string migration_id;
  std::string status;          // firing | acknowledged
  double since_notified = -1;  // seconds since the last notification (-1: never)
};
[[nodiscard]] std::vector<OpenAlert> open_alerts(pg::Connection& c);

struct NewAlert {
  std::string alert_id;
  AlertRule rule;
  std::string scope;
  std::string migration_id;
  double value = 0;
  std::string message;
};
void insert_alert(pg::Connection& c, const NewAlert& a);
void touch_alert(pg::Connection& c, const std::string& alert_id, double value);
// A notification was sent (or suppressed) for the alert.
void mark_notified(pg::Connection& c, const std::string& alert_id, bool suppressed);
void set_recovery(pg::Connection& c, const std::string& alert_id, const std::string& action,
                  const std::string& status, const std::string& result);
// Returns the alert (JSON) after the change, nullopt if it does not exist; throws
// std::logic_error when the change is not allowed (acknowledging a resolved alert).
std::optional<boost::json::object> acknowledge(pg::Connection& c, const std::string& alert_id,
                                               const std::string& user);
std::optional<boost::json::object> resolve(pg::Connection& c, const std::string& alert_id,
                                           const std::string& user);

[[nodiscard]] std::optional<boost::json::object> get_alert(pg::Connection& c,
                                                           const std::string& alert_id);
// status: "active" (firing or acknowledged), "all", or one status. Newest first.
[[nodiscard]] boost::json::array list_alerts(pg::Connection& c, const std::string& status,
                                             int limit);
// Counts by severity, type, status and day; mean time to acknowledge and to resolve; notification
// and recovery outcomes; over the last `days` days.
[[nodiscard]] boost::json::object statistics(pg::Connection& c, int days);

struct Silence {
  std::string silence_id;
  std::string rule_id;  // "" = any
  std::string migration_id;
  std::string severity;
  std::string comment;
  std::string created_by;
  double duration_seconds = 3600;
};
boost::json::object insert_silence(pg::Connection& c, const Silence& s);
// Silences not yet ended (all: also the ended ones, newest first).
[[nodiscard]] boost::json::array list_silences(pg::Connection& c, bool all);
// Whether an active silence matches.
[[nodiscard]] bool silenced(pg::Connection& c, const std::string& rule_id,
                            const std::string& migration_id, const std::string& severity);

void record_notification(pg::Connection& c, const std::vector<std::string>& alert_ids,
                         const std::string& channel, const std::string& event, bool ok,
                         int attempts, const std::string& error);

}  // namespace pgphase::alerting::store
