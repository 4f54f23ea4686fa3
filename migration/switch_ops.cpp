// Read switch operations: register, activate, update-percentage, rollback, percentage history.
#include "migration/operations.h"

#include <boost/json.hpp>
#include <cmath>

#include "migration/op_support.h"
#include "migration/snapshot.h"

namespace pgphase::migration::ops {
namespace json = boost::json;
namespace {

OpResult<SwitchConfig> not_found_switch(const std::string& id) {
  return fail<SwitchConfig>(Kind::kNotFound, "no switch config " + id,
                            "pgphase switch list shows the registered ones");
}

store::LogRow switch_row(const std::string& log_id, const char* action, const std::string& actor,
                         const SwitchConfig& s) {
  json::object details;
  details["config_id"] = s.config_id;
  return {log_id,    action, actor_or_default(actor), switch_state(s), "",
          "success", "",     json::serialize(details)};
}

OpResult<SwitchConfig> changed_concurrently_switch(const std::string& id) {
  return fail<SwitchConfig>(Kind::kConflict, "switch config " + id + " changed concurrently",
                            "retry");
}

}  // namespace

// Sets `s` to 0% and rolled_back, with its history and log rows (inside the caller's tx).
SwitchConfig roll_back_switch(pg::Connection& c, const SwitchConfig& s, const std::string& log_id,
                              const std::string& actor, const std::string& reason) {
  SwitchConfig next = s;
  next.switch_percentage = 0.0;
  next.status = SwitchStatus::kRolledBack;
  const auto stored = store::update_switch(c, next);
  if (!stored) {
    throw pg::PgError("40001", "switch config " + s.config_id + " changed concurrently", false);
  }
  if (s.switch_percentage != 0.0) {
    store::insert_history(c, s.config_id, s.switch_percentage, 0.0, actor_or_default(actor),
                          reason);
  }
  json::object details;
  details["config_id"] = s.config_id;
  store::insert_log(
      c,
      {log_id, "switch-rollback", actor_or_default(actor), switch_state(s), switch_state(*stored),
       "success", "rolled back read switch " + s.config_id + (reason.empty() ? "" : ": " + reason),
       json::serialize(details)});
  store::notify(c, "switch:" + s.config_id);
  return *stored;
}

OpResult<SwitchConfig> register_switch(pg::Connection& c, const SwitchConfig& s,
                                       const std::string& actor,
                                       std::optional<SwitchConfig>* existing) {
  validate_for_register(s);
  pg::Transaction tx(c);
  lock_mutations(c);
  if (auto found = store::find_switch(c, s.config_id, true)) {
    if (existing != nullptr) *existing = *found;
    return fail<SwitchConfig>(Kind::kConflict,
                              "switch config " + s.config_id + " already exists (status " +
                                  std::string(to_string(found->status)) + ", " +
                                  number(found->switch_percentage) + "%, updated at " +
                                  found->updated_at + ")",
                              "choose another config_id; the existing one is kept as it is");
  }
  const std::vector<Migration> migrations = store::load_migrations(c);
  if (!s.migration_id.empty()) {
    const Migration* m = migration_for(migrations, s);
    if (m == nullptr) {
      return fail<SwitchConfig>(Kind::kUnprocessable,
                                "migration_id: no migration " + s.migration_id,
                                "register the migration first, or leave migration_id out to "
                                "match by table_name");
    }
    if (!same_table(m->source_table, s.table_name)) {
      return fail<SwitchConfig>(Kind::kUnprocessable, "table_name: " + s.table_name +
                                                          " is not the source table of migration " +
                                                          m->migration_id + " (" + m->source_table +
                                                          ")");
    }
  }
  const SwitchConfig stored = store::insert_switch(c, s);
  store::LogRow row = switch_row(log_id_for(migrations, stored), "switch-register", actor, stored);
  row.from_state.clear();
  row.to_state = switch_state(stored);
  row.message = "registered read switch " + stored.config_id + " for " + stored.table_name + " (" +
                std::string(to_string(stored.strategy)) + ")";
  finish(c, tx, row, "switch:" + stored.config_id);
  return OpResult<SwitchConfig>::success(stored);
}

OpResult<SwitchConfig> activate_switch(pg::Connection& c, const std::string& id,
                                       const std::string& actor) {
  pg::Transaction tx(c);
  lock_mutations(c);
  const auto s = store::find_switch(c, id, true);
  if (!s) return not_found_switch(id);
  const std::vector<Migration> migrations = store::load_migrations(c);
  const std::vector<SwitchConfig> switches = store::load_switches(c);
  const Migration* m = migration_for(migrations, *s);
  store::LogRow row = switch_row(log_id_for(migrations, *s), "switch-activate", actor, *s);
  row.to_state = "active " + number(s->switch_percentage) + "%";
  const std::string prefix = "cannot activate " + id + ": ";
  if (m == nullptr) {
    return refuse<SwitchConfig>(
        c, tx, row,
        {false, prefix + "no migration has source table " + s->table_name,
         "register the migration (pgphase migration register) and move it to read_switch"});
  }
  if (m->phase != Phase::kReadSwitch) {
    const bool early = static_cast<int>(m->phase) < static_cast<int>(Phase::kReadSwitch);
    return refuse<SwitchConfig>(
        c, tx, row,
        {false,
         prefix + "migration " + m->migration_id + " is in " + phase_name(m->phase) +
             ", not read_switch",
         early ? "move it to read_switch first (pgphase migration set-phase --migration-id " +
                     m->migration_id + " --phase read_switch)"
               : "reads of " + m->migration_id + " already go to the target"});
  }
  if (s->status == SwitchStatus::kActive) return OpResult<SwitchConfig>::success(*s);
  if (s->status == SwitchStatus::kCompleted) {
    return refuse<SwitchConfig>(
        c, tx, row, {false, prefix + "it is completed", "register a new switch config if needed"});
  }
  for (const SwitchConfig& other : switches) {
    if (other.config_id == id || !governs(other, *m)) continue;
    if (other.status == SwitchStatus::kActive || other.status == SwitchStatus::kPaused) {
      return refuse<SwitchConfig>(
          c, tx, row,
          {false,
           prefix + "switch config " + other.config_id + " is already " +
               std::string(to_string(other.status)) + " for migration " + m->migration_id,
           "roll it back first (pgphase switch rollback --config-id " + other.config_id + ")"});
    }
  }
  SwitchConfig next = *s;
  next.status = SwitchStatus::kActive;
  const auto stored = store::update_switch(c, next);
  if (!stored) return changed_concurrently_switch(id);
  row.to_state = switch_state(*stored);
  row.message = "activated read switch " + id + " at " + number(stored->switch_percentage) +
                "% for migration " + m->migration_id;
  finish(c, tx, row, "switch:" + id);
  return OpResult<SwitchConfig>::success(*stored);
}

OpResult<SwitchConfig> set_switch_paused(pg::Connection& c, const std::string& id, bool paused,
                                         const std::string& actor) {
  pg::Transaction tx(c);
  lock_mutations(c);
  const auto s = store::find_switch(c, id, true);
  if (!s) return not_found_switch(id);
  const std::vector<Migration> migrations = store::load_migrations(c);
  store::LogRow row =
      switch_row(log_id_for(migrations, *s), paused ? "switch-pause" : "switch-resume", actor, *s);
  const SwitchStatus from = paused ? SwitchStatus::kActive : SwitchStatus::kPaused;
  const SwitchStatus to = paused ? SwitchStatus::kPaused : SwitchStatus::kActive;
  if (s->status == to) return OpResult<SwitchConfig>::success(*s);
  if (s->status != from) {
    return refuse<SwitchConfig>(
        c, tx, row,
        {false,
         "cannot " + std::string(paused ? "pause " : "resume ") + id + ": it is " +
             std::string(to_string(s->status)),
         paused ? "only an active switch can be paused" : "only a paused switch can be resumed"});
  }
  SwitchConfig next = *s;
  next.status = to;
  const auto stored = store::update_switch(c, next);
  if (!stored) return changed_concurrently_switch(id);
  row.to_state = switch_state(*stored);
  row.message = std::string(paused ? "paused" : "resumed") + " read switch " + id + " at " +
                number(stored->switch_percentage) + "%" +
                (paused ? " (reads keep this split; a ramp waits)" : "");
  finish(c, tx, row, "switch:" + id);
  return OpResult<SwitchConfig>::success(*stored);
}

OpResult<SwitchConfig> set_switch_percentage(pg::Connection& c, const std::string& id,
                                             double percentage, const std::string& actor,
                                             const std::string& reason) {
  if (!std::isfinite(percentage) || percentage < 0.0 || percentage > 100.0) {
    return fail<SwitchConfig>(Kind::kUnprocessable,
                              "percentage: " + number(percentage) + " is outside 0..100");
  }
  {
    pg::Transaction tx(c);
    lock_mutations(c);
    const auto s = store::find_switch(c, id, true);
    if (!s) return not_found_switch(id);
    const std::vector<Migration> migrations = store::load_migrations(c);
    store::LogRow row =
        switch_row(log_id_for(migrations, *s), "switch-update-percentage", actor, *s);
    row.to_state = std::string(to_string(s->status)) + " " + number(percentage) + "%";
    const std::string prefix = "cannot change the percentage of " + id + ": ";
    if (s->status != SwitchStatus::kActive && s->status != SwitchStatus::kPaused) {
      const bool rolled_back = s->status == SwitchStatus::kRolledBack;
      return refuse<SwitchConfig>(
          c, tx, row,
          {false,
           prefix + "it is " + std::string(to_string(s->status)) +
               " (percentages change while it is active or paused)",
           s->status == SwitchStatus::kCompleted
               ? "nothing to do: it is completed"
               : std::string(rolled_back ? "activate it again" : "activate it") +
                     " (pgphase switch activate --config-id " + id + ")"});
    }
    if (const Migration* m = migration_for(migrations, *s);
        m != nullptr && (m->phase == Phase::kCleanup || m->phase == Phase::kCompleted)) {
      return refuse<SwitchConfig>(
          c, tx, row,
          {false,
           prefix + "migration " + m->migration_id + " is in " + phase_name(m->phase) +
               ", where every read goes to the target",
           "roll back " + m->migration_id + " to send reads to the source again"});
    }
    if (s->switch_percentage == percentage) return OpResult<SwitchConfig>::success(*s);
    SwitchConfig next = *s;
    next.switch_percentage = percentage;
    const auto stored = store::update_switch(c, next);
    if (!stored) return changed_concurrently_switch(id);
    store::insert_history(c, id, s->switch_percentage, percentage, actor_or_default(actor), reason);
    row.to_state = switch_state(*stored);
    row.message = "read switch " + id + " from " + number(s->switch_percentage) + "% to " +
                  number(percentage) + "%" + (reason.empty() ? "" : ": " + reason);
    finish(c, tx, row, "switch:" + id);
    return OpResult<SwitchConfig>::success(*stored);
  }
}

OpResult<SwitchConfig> rollback_switch(pg::Connection& c, const std::string& id,
                                       const std::string& actor, const std::string& reason) {
  pg::Transaction tx(c);
  lock_mutations(c);
  const auto s = store::find_switch(c, id, true);
  if (!s) return not_found_switch(id);
  const std::vector<Migration> migrations = store::load_migrations(c);
  const std::string log_id = log_id_for(migrations, *s);
  if (!s->rollback_enabled) {
    store::LogRow row = switch_row(log_id, "switch-rollback", actor, *s);
    row.to_state = "rolled_back 0%";
    return refuse<SwitchConfig>(
        c, tx, row,
        {false, "cannot roll back " + id + ": rollback_enabled is false for it",
         "lower its percentage instead (pgphase switch update-percentage --config-id " + id +
             " --percentage 0)"});
  }
  if (s->status == SwitchStatus::kRolledBack && s->switch_percentage == 0.0) {
    // Idempotent: repeating an emergency rollback succeeds; it is still recorded.
    store::LogRow row = switch_row(log_id, "switch-rollback", actor, *s);
    row.to_state = switch_state(*s);
    row.message =
        "read switch " + id + " was already rolled back" + (reason.empty() ? "" : ": " + reason);
    store::insert_log(c, row);
    tx.commit();
    return OpResult<SwitchConfig>::success(*s);
  }
  const SwitchConfig stored = roll_back_switch(c, *s, log_id, actor, reason);
  tx.commit();
  return OpResult<SwitchConfig>::success(stored);
}

OpResult<std::vector<PercentageChange>> percentage_history(pg::Connection& c, const std::string& id,
                                                           int limit) {
  if (!store::find_switch(c, id, false)) {
    return fail<std::vector<PercentageChange>>(Kind::kNotFound, "no switch config " + id,
                                               "pgphase switch list shows the registered ones");
  }
  return OpResult<std::vector<PercentageChange>>::success(store::list_history(c, id, limit));
}

}  // namespace pgphase::migration::ops
