// Automatic recovery actions of alert rules (auto_recovery + recovery_action), run once per
// firing through the control plane with actor "alert:<alert_id>" (so t_sys_migration_logs names
// the alert), and recorded as an "alert_recovery" log row with the alert id and the outcome.
//  - rollback_read_switch: the alert's switch, else the switches of its migration, else every
//    active or paused switch, back to 0%;
//  - disable_dual_write: dual write off (forced) for the migration(s);
//  - pause_backfill: running backfills of the migration(s) paused;
//  - retry_failed_dual_writes: the repair pass of the migration(s);
//  - retry_migration / retry_failed_migrations: the latest failed phase change (last hour) of the
//    alert's migration, or of every migration with one when the alert has none, is tried again.
#pragma once

#include <string>

namespace pgphase::migration {
class ControlPlane;
}

namespace pgphase::alerting {

struct RecoveryOutcome {
  bool ok = false;
  std::string result;  // what was done, or why it failed
};

class Recovery {
 public:
  Recovery(std::string dsn, migration::ControlPlane& control);
  // `scope` is the alert's switch config or migration ("" for database-wide SQL rules).
  RecoveryOutcome run(const std::string& action, const std::string& alert_id,
                      const std::string& rule_id, const std::string& scope,
                      const std::string& migration_id);

 private:
  std::string dsn_;
  migration::ControlPlane& control_;
};

}  // namespace pgphase::alerting
