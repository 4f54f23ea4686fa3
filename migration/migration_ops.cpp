// Migration operations: register, set-phase, enable/disable dual write, rollback, logs.
#include "migration/operations.h"

#include <boost/json.hpp>
#include <cmath>

#include "migration/constraints.h"
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

json::value opt_json(const std::optional<int64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::array sequences_json(const std::vector<SequenceMove>& moves) {
  json::array out;
  for (const SequenceMove& s : moves) {
    json::object o{{"table", s.table},
                   {"column", s.column},
                   {"sequence", s.sequence},
                   {"moved", s.moved},
                   {"last_value", opt_json(s.last_value)},
                   {"max_key", opt_json(s.max_key)}};
    if (!s.paired_sequence.empty()) {
      o["paired_sequence"] = s.paired_sequence;
      o["paired_last_value"] = opt_json(s.paired_last_value);
    }
    if (s.moved || s.set_to != 0) o["set_to"] = s.set_to;
    if (!s.note.empty()) o["note"] = s.note;
    out.push_back(std::move(o));
  }
  return out;
}

size_t moved_count(const std::vector<SequenceMove>& moves) {
  size_t n = 0;
  for (const SequenceMove& s : moves) n += s.moved ? 1 : 0;
  return n;
}

// " (advanced 1 sequence: public.t_sys_users_id_seq to 10042)", "" when none moved.
std::string sequences_message(const std::vector<SequenceMove>& moves) {
  std::string names;
  for (const SequenceMove& s : moves) {
    if (!s.moved) continue;
    names += (names.empty() ? "" : ", ") + s.sequence + " to " + std::to_string(s.set_to);
  }
  if (names.empty()) return "";
  const size_t n = moved_count(moves);
  return " (advanced " + std::to_string(n) + (n == 1 ? " sequence: " : " sequences: ") + names +
         ")";
}

void merge(json::object& into, const json::object& from) {
  for (const auto& kv : from) into[kv.key()] = kv.value();
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
  if (const Verdict v = check_register(keyed, load_key_facts(c, keyed)); !v) {
    return fail<Migration>(Kind::kConflict, v.reason, v.remedy);
  }
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
                              const std::string& id, Phase to, const PhaseChangeOptions& options,
                              const std::string& actor, json::object* actions) {
  const bool force = options.force;
  if (actions != nullptr) actions->clear();
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
  if (to == Phase::kDualWrite || to == Phase::kCleanup) facts.keys = load_key_facts(c, *m);
  if (to == Phase::kCompleted) {
    facts.referencing_foreign_keys = load_referencing_foreign_keys(c, *m);
    facts.move_foreign_keys = options.move_foreign_keys;
    details["move_foreign_keys"] = options.move_foreign_keys;
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
  // What the phase change does besides the phase, in its transaction.
  const std::string prefix =
      "cannot move " + id + " from " + phase_name(m->phase) + " to " + phase_name(to) + ": ";
  json::object done;
  if (to == Phase::kCleanup) {
    // Plain INSERTs now take their keys from the target's sequences, which the mirrored and
    // backfilled rows (explicit keys) never advanced.
    const SequenceAdvance a = advance_sequences(c, *m, true);
    if (!a.error.empty()) {
      return refuse<Migration>(
          c, tx, row,
          Verdict{false,
                  prefix + "could not advance the sequences of " + m->target_table +
                      " past the keys it holds (" + a.error +
                      "); a plain INSERT in cleanup would fail with SQLSTATE 23505",
                  "grant pgphase's role SELECT and UPDATE on the sequences behind the defaults "
                  "of " +
                      m->target_table +
                      ", or setval() them past max(key) plus 10000 yourself, then retry"});
    }
    if (!a.moves.empty()) done["sequences"] = sequences_json(a.moves);
    row.message += sequences_message(a.moves);
  }
  if (to == Phase::kCompleted && !facts.referencing_foreign_keys.empty()) {
    const ForeignKeyMoves fm = move_foreign_keys(c, *m, facts.referencing_foreign_keys);
    if (!fm.error.empty()) {
      return refuse<Migration>(
          c, tx, row,
          Verdict{false,
                  prefix + "moving the foreign keys that reference " + m->source_table + " to " +
                      m->target_table + " failed, nothing was moved: " + fm.error,
                  "fix what it reports (a child row whose key the target lacks: repair and "
                  "validate; a lock not granted within 10 s: retry when the tables are quieter), "
                  "or move them yourself, then retry"});
    }
    json::array moved;
    for (const std::string& d : fm.moved) moved.push_back(json::string(d));
    done["foreign_keys_moved"] = std::move(moved);
    row.message += " (moved " + std::to_string(fm.moved.size()) + " foreign key" +
                   (fm.moved.size() == 1 ? "" : "s") + " to " + m->target_table + ")";
  }
  if (!done.empty()) {
    merge(details, done);
    row.details_json = json::serialize(details);
  }
  Migration next = *m;
  next.phase = to;
  const PhaseFlags flags = flags_for(to);
  next.dual_write_enabled = flags.dual_write_enabled;
  next.read_from_target = flags.read_from_target;
  const auto stored = store::update_migration(c, next);
  if (!stored) return changed_concurrently(id);
  finish(c, tx, row, "migration:" + id);
  if (actions != nullptr) *actions = std::move(done);
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
  std::optional<KeyFacts> keys;
  if (enabled) {
    // The mirror of the phase dual write is enabled in (preparation: the move to dual_write).
    const Phase in = m->phase == Phase::kPreparation ? Phase::kDualWrite : m->phase;
    TableAccess access = access_entering(in);
    access.read_target = false;  // reads do not change with dual write
    gaps = preflight(c, *m, access, details);
    if (m->phase != Phase::kCompleted) keys = load_key_facts(c, *m);
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
  const Verdict verdict = check_dual_write_change(*m, enabled, force, gaps, keys);
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
                             const std::string& reason, json::object* actions) {
  if (actions != nullptr) actions->clear();
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
  json::object done;
  std::string sequences_note;
  if (m->phase == Phase::kCleanup) {
    // The source is written with default keys again, while its sequences stayed behind the keys
    // cleanup inserted (mirrored to it with explicit values). A failure does not hold the rollback
    // up (it is the way out): it is logged and answered, with what to run.
    const SequenceAdvance a = advance_sequences(c, *m, false);
    if (!a.error.empty()) {
      done["sequences_not_advanced"] =
          a.error + "; setval() the sequences behind the defaults of " + m->source_table +
          " past max(key) plus 10000, or a plain INSERT may fail with SQLSTATE 23505";
      sequences_note = " (its sequences could not be advanced: " + a.error + ")";
    } else {
      if (!a.moves.empty()) done["sequences"] = sequences_json(a.moves);
      sequences_note = sequences_message(a.moves);
    }
    merge(details, done);
    row.details_json = json::serialize(details);
  }
  Migration next = *m;
  next.phase = Phase::kPreparation;
  next.dual_write_enabled = false;
  next.read_from_target = false;
  const auto stored = store::update_migration(c, next);
  if (!stored) return changed_concurrently(id);
  row.message = "rolled back from " + phase_name(m->phase) + " to preparation" +
                (reason.empty() ? "" : ": " + reason) + sequences_note;
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
  if (actions != nullptr) *actions = std::move(done);
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
