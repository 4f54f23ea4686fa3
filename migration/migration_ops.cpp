// Migration operations: register, set-phase, enable/disable dual write, rollback, logs.
#include "migration/operations.h"

#include <boost/json.hpp>
#include <cmath>

#include "migration/op_support.h"
#include "migration/privileges.h"
#include "migration/snapshot.h"

namespace pgphase::migration::ops {
namespace json = boost::json;
namespace {

OpResult<Migration> not_found_migration(const std::string& id) {
  return fail<Migration>(Kind::kNotFound, "no migration " + id,
                         "pgphase migration list shows the registered ones");
}
OpResult<Migration> changed_concurrently(const std::string& id) {
  return fail<Migration>(Kind::kConflict, "migration " + id + " changed concurrently", "retry");
}

// key_columns left empty means "the source's primary key". When the source table is visible
// from the control database (the usual setup: pgphase's t_sys_* tables live in the application's
// database), the key is read from the catalog at registration, in the index's column order, so
// operators see it in `status`. Otherwise it stays empty and is resolved where rows are keyed.
std::vector<std::string> primary_key_of(pg::Connection& c, const Migration& m) {
  const QualifiedName name = qualify(m.source_table);
  const pg::Result r = c.exec(
      "SELECT a.attname FROM pg_index i "
      "JOIN pg_class t ON t.oid = i.indrelid "
      "JOIN pg_namespace n ON n.oid = t.relnamespace "
      "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true "
      "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
      "WHERE i.indisprimary AND n.nspname = $1 AND t.relname = $2 "
      "AND ($3 = '' OR $3 = current_database()) ORDER BY k.ord",
      {name.schema, name.table, m.database});
  std::vector<std::string> keys;
  for (int row = 0; row < r.rows(); ++row) keys.push_back(r.str(row, 0));
  return keys;
}

// The privileges preflight for `access` (privileges.h); records in `details` what it found, or
// why it could not run.
std::vector<PrivilegeGap> preflight(pg::Connection& c, const Migration& m, TableAccess access,
                                    json::object& details) {
  PrivilegePreflight p = run_privilege_preflight(c, m, access);
  if (!p.not_checked.empty()) {
    details["privileges_not_checked"] = p.not_checked;
  } else if (!p.gaps.empty()) {
    json::array gaps;
    for (const PrivilegeGap& g : p.gaps) {
      gaps.push_back(json::object{{"role", g.role}, {"table", g.table}, {"missing", g.missing}});
    }
    details["privilege_gaps"] = std::move(gaps);
  }
  return std::move(p.gaps);
}

}  // namespace

OpResult<Migration> register_migration(pg::Connection& c, const Migration& m,
                                       const std::string& actor,
                                       std::optional<Migration>* existing) {
  validate_for_register(m);
  pg::Transaction tx(c);
  lock_mutations(c);
  if (auto found = store::find_migration(c, m.migration_id, true)) {
    if (existing != nullptr) *existing = *found;
    return fail<Migration>(Kind::kConflict,
                           "migration " + m.migration_id + " already exists (phase " +
                               phase_name(found->phase) + ", updated at " + found->updated_at + ")",
                           "choose another migration_id; the existing one is kept as it is");
  }
  for (const Migration& other : store::load_migrations(c)) {
    if (other.phase == Phase::kCompleted || other.database != m.database) continue;
    if (same_table(other.source_table, m.source_table)) {
      return fail<Migration>(Kind::kConflict,
                             "table " + m.source_table + " is already being migrated by " +
                                 other.migration_id + " (phase " + phase_name(other.phase) + ")",
                             "complete or roll back " + other.migration_id + " first");
    }
  }
  Migration keyed = m;
  if (keyed.key_columns.empty()) keyed.key_columns = primary_key_of(c, keyed);
  const Migration stored = store::insert_migration(c, keyed);
  json::object details;
  details["source_table"] = stored.source_table;
  details["target_table"] = stored.target_table;
  finish(c, tx,
         {stored.migration_id, "register", actor_or_default(actor), "", phase_name(stored.phase),
          "success", "registered " + stored.source_table + " -> " + stored.target_table,
          json::serialize(details)},
         "migration:" + stored.migration_id);
  return OpResult<Migration>::success(stored);
}

OpResult<Migration> set_phase(pg::Connection& c, double max_check_age_seconds,
                              const std::string& id, Phase to, bool force,
                              const std::string& actor) {
  pg::Transaction tx(c);
  lock_mutations(c);
  const auto m = store::find_migration(c, id, true);
  if (!m) return not_found_migration(id);
  TransitionFacts facts;
  facts.max_check_age_seconds = max_check_age_seconds;
  json::object details;
  details["force"] = force;
  if (to == Phase::kReadSwitch) {
    if (const auto check = store::latest_check(c, *m)) {
      facts.latest_consistency_score = check->score;
      facts.latest_check_age_seconds = check->age_seconds;
      details["check_id"] = check->check_id;
      details["consistency_score"] = check->score;
      details["check_age_seconds"] = std::round(check->age_seconds);
    }
  }
  if (to == Phase::kCleanup) {
    const std::vector<SwitchConfig> switches = store::load_switches(c);
    if (const SwitchConfig* s = switch_for(switches, *m)) {
      facts.switch_percentage = s->switch_percentage;
      facts.switch_status = s->status;
      facts.switch_config_id = s->config_id;
      details["config_id"] = s->config_id;
      details["switch_percentage"] = s->switch_percentage;
    }
  }
  facts.privilege_gaps = preflight(c, *m, access_entering(to), details);
  store::LogRow row{
      id,        "set-phase", actor_or_default(actor), phase_name(m->phase), phase_name(to),
      "success", "",          json::serialize(details)};
  facts.force = force;
  const Verdict verdict = check_phase_change(*m, to, facts);
  if (!verdict) return refuse<Migration>(c, tx, row, verdict);
  row.message = "moved from " + phase_name(m->phase) + " to " + phase_name(to);
  if (force) {
    facts.force = false;
    const Verdict unforced = check_phase_change(*m, to, facts);
    if (!unforced) row.message += " (forced past: " + unforced.reason + ")";
  }
  Migration next = *m;
  next.phase = to;
  const PhaseFlags flags = flags_for(to);
  next.dual_write_enabled = flags.dual_write_enabled;
  next.read_from_target = flags.read_from_target;
  const auto stored = store::update_migration(c, next);
  if (!stored) return changed_concurrently(id);
  finish(c, tx, row, "migration:" + id);
  return OpResult<Migration>::success(*stored);
}

OpResult<Migration> set_dual_write(pg::Connection& c, const std::string& id, bool enabled,
                                   bool force, const std::string& actor) {
  pg::Transaction tx(c);
  lock_mutations(c);
  const auto m = store::find_migration(c, id, true);
  if (!m) return not_found_migration(id);
  json::object details;
  details["force"] = force;
  std::vector<PrivilegeGap> gaps;
  if (enabled) {
    // The mirror of the phase dual write is enabled in (preparation: the move to dual_write).
    const Phase in = m->phase == Phase::kPreparation ? Phase::kDualWrite : m->phase;
    TableAccess access = access_entering(in);
    access.read_target = false;  // reads do not change with dual write
    gaps = preflight(c, *m, access, details);
  }
  const auto state = [](const Migration& x) {
    return phase_name(x.phase) + (x.dual_write_enabled ? " (dual write on)" : " (dual write off)");
  };
  store::LogRow row{id,
                    enabled ? "enable-dual-write" : "disable-dual-write",
                    actor_or_default(actor),
                    state(*m),
                    "",
                    "success",
                    "",
                    json::serialize(details)};
  const Verdict verdict = check_dual_write_change(*m, enabled, force, gaps);
  if (!verdict) return refuse<Migration>(c, tx, row, verdict);
  Migration next = *m;
  if (enabled && m->phase == Phase::kPreparation) {
    next.phase = Phase::kDualWrite;
    const PhaseFlags flags = flags_for(next.phase);
    next.dual_write_enabled = flags.dual_write_enabled;
    next.read_from_target = flags.read_from_target;
  } else {
    next.dual_write_enabled = enabled;
  }
  row.to_state = state(next);
  row.message = std::string(enabled ? "enabled" : "disabled") + " dual write" +
                (next.phase != m->phase ? " (moved to " + phase_name(next.phase) + ")" : "") +
                (force && !enabled && m->phase != Phase::kCleanup ? " (forced)" : "");
  const auto stored = store::update_migration(c, next);
  if (!stored) return changed_concurrently(id);
  finish(c, tx, row, "migration:" + id);
  return OpResult<Migration>::success(*stored);
}

OpResult<Migration> rollback(pg::Connection& c, const std::string& id, const std::string& actor,
                             const std::string& reason) {
  pg::Transaction tx(c);
  lock_mutations(c);
  const auto m = store::find_migration(c, id, true);
  if (!m) return not_found_migration(id);
  json::object details;
  if (!reason.empty()) details["reason"] = reason;
  store::LogRow row{id,
                    "rollback",
                    actor_or_default(actor),
                    phase_name(m->phase),
                    phase_name(Phase::kPreparation),
                    "success",
                    "",
                    json::serialize(details)};
  const Verdict verdict = check_rollback(*m);
  if (!verdict) return refuse<Migration>(c, tx, row, verdict);
  Migration next = *m;
  next.phase = Phase::kPreparation;
  next.dual_write_enabled = false;
  next.read_from_target = false;
  const auto stored = store::update_migration(c, next);
  if (!stored) return changed_concurrently(id);
  row.message = "rolled back from " + phase_name(m->phase) + " to preparation" +
                (reason.empty() ? "" : ": " + reason);
  // Its read switch goes back to the source too: an active switch left behind would split
  // reads again the moment the migration re-entered read_switch.
  const std::vector<SwitchConfig> switches = store::load_switches(c);
  for (const SwitchConfig& s : switches) {
    if (!governs(s, *m)) continue;
    if (s.status != SwitchStatus::kActive && s.status != SwitchStatus::kPaused &&
        s.status != SwitchStatus::kCompleted) {
      continue;
    }
    roll_back_switch(c, s, id, actor,
                     "migration " + id + " rolled back" + (reason.empty() ? "" : ": " + reason));
  }
  finish(c, tx, row, "migration:" + id);
  return OpResult<Migration>::success(*stored);
}

OpResult<std::vector<LogEntry>> logs(pg::Connection& c, const std::string& id, int limit) {
  if (!store::find_migration(c, id, false)) {
    return fail<std::vector<LogEntry>>(Kind::kNotFound, "no migration " + id,
                                       "pgphase migration list shows the registered ones");
  }
  return OpResult<std::vector<LogEntry>>::success(store::list_logs(c, id, limit));
}

}  // namespace pgphase::migration::ops
