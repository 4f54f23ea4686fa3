// The alerting subsystem as pgphase serve (and `pgphase alerts monitor`) runs it: the evaluator,
// the notifier and the recovery actions over one control database, the rules and channels of the
// manual's alerting_config.json, and the operations behind /api/v1/alerts, /alert-rules and
// /silences. Errors: RuleError (422), std::out_of_range (404), std::logic_error (409).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "alerting/engine.h"
#include "migration/snapshot.h"

namespace prometheus {
class Registry;
}
namespace pgphase::migration {
class ControlPlane;
class ReadStats;
}  // namespace pgphase::migration

namespace pgphase::stats {
class RoutingStats;
}

namespace pgphase::alerting {

class Recovery;

struct AlertingOptions {
  EngineOptions engine;
  std::chrono::milliseconds retry_base{1000};  // notification retries: 1x, 2x, 4x this
};

class Alerting {
 public:
  // `control` (recovery actions), `reads` and `routing` (the proxy's figures) may be null.
  Alerting(std::string dsn, migration::ControlPlane* control, migration::ReadStats* reads,
           const stats::RoutingStats* routing, prometheus::Registry* registry,
           AlertingOptions options);
  ~Alerting();
  Alerting(const Alerting&) = delete;
  Alerting& operator=(const Alerting&) = delete;

  // Loads alert_rules and notification_configs of the given files (files without them are
  // skipped): channels are set; each valid rule not yet in the database is stored (existing ones
  // are left alone); each invalid rule (bad field, broken SQL, unknown signal) is refused and
  // reported, and never stops the others. Returns the refusals. Throws only when a file cannot be
  // read or is not JSON.
  std::vector<std::string> load_files(const std::vector<std::string>& files);

  void start();
  void stop();
  AlertEngine& engine() noexcept { return *engine_; }
  Notifier& notifier() noexcept { return *notifier_; }

  // API operations.
  boost::json::array rules();
  // Validates (fields, then the SQL against the database) and stores; `created` tells whether it
  // was new (else replaced).
  boost::json::object save_rule(const boost::json::value& body, bool& created);
  boost::json::array alerts(const std::string& status, int limit);
  boost::json::object alert(const std::string& id);
  boost::json::object acknowledge(const std::string& id, const std::string& user);
  boost::json::object resolve(const std::string& id, const std::string& user);
  boost::json::object statistics(int days);
  boost::json::array silences(bool all);
  boost::json::object add_silence(const boost::json::value& body, const std::string& actor);
  boost::json::array channels();

 private:
  std::string dsn_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<Recovery> recovery_;
  std::unique_ptr<AlertEngine> engine_;
};

}  // namespace pgphase::alerting
