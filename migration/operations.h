// The control-plane operations, each run on the command connection by ControlPlane (which maps
// pg::PgError and ModelError to OpError kinds, and publishes the new state afterwards). Every
// mutation is one transaction: pg_advisory_xact_lock (kMutationLockKey), SELECT ... FOR UPDATE,
// the phase machine with facts read in the same transaction, UPDATE ... WHERE version = $n, a
// t_sys_migration_logs row, NOTIFY pgphase_state '<kind>:<id>', COMMIT. A refusal rolls that
// back and logs status "refused" in its own transaction. Internal to migration/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "migration/control_plane.h"
#include "migration/pg_client.h"

namespace pgphase::migration::ops {

// `existing` (optional) receives the stored row when the id exists already (kConflict).
OpResult<Migration> register_migration(pg::Connection& c, const Migration& m,
                                       const std::string& actor,
                                       std::optional<Migration>* existing);
// `actions` (optional): what the change did besides the phase (sequences advanced entering
// cleanup, foreign keys moved entering completed), as in its log row's details.
OpResult<Migration> set_phase(pg::Connection& c, double max_check_age_seconds,
                              const std::string& id, Phase to, const PhaseChangeOptions& options,
                              const std::string& actor, boost::json::object* actions = nullptr);
OpResult<Migration> set_dual_write(pg::Connection& c, const std::string& id, bool enabled,
                                   bool force, const std::string& actor);
// Also rolls back the migration's active, paused or completed switch config.
// Leaving cleanup it also advances the source's sequences (reported in `actions`).
OpResult<Migration> rollback(pg::Connection& c, const std::string& id, const std::string& actor,
                             const std::string& reason, boost::json::object* actions = nullptr);
OpResult<std::vector<LogEntry>> logs(pg::Connection& c, const std::string& id, int limit);

OpResult<SwitchConfig> register_switch(pg::Connection& c, const SwitchConfig& s,
                                       const std::string& actor,
                                       std::optional<SwitchConfig>* existing);
OpResult<SwitchConfig> activate_switch(pg::Connection& c, const std::string& id,
                                       const std::string& actor);
// active <-> paused (idempotent); other states are refused.
OpResult<SwitchConfig> set_switch_paused(pg::Connection& c, const std::string& id, bool paused,
                                         const std::string& actor);
OpResult<SwitchConfig> set_switch_percentage(pg::Connection& c, const std::string& id,
                                             double percentage, const std::string& actor,
                                             const std::string& reason);
OpResult<SwitchConfig> rollback_switch(pg::Connection& c, const std::string& id,
                                       const std::string& actor, const std::string& reason);
OpResult<std::vector<PercentageChange>> percentage_history(pg::Connection& c, const std::string& id,
                                                           int limit);

// Inside the caller's transaction: sets `s` to 0% and rolled_back, writes its history row (when
// the percentage changes), its log row under `log_id`, and NOTIFYs. Throws pg::PgError (40001)
// when `s` changed concurrently.
SwitchConfig roll_back_switch(pg::Connection& c, const SwitchConfig& s, const std::string& log_id,
                              const std::string& actor, const std::string& reason);

}  // namespace pgphase::migration::ops
