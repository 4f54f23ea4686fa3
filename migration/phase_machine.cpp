// The phase machine's rules (docs/control-plane.md, "Phases"):
//
// - set-phase moves forward exactly one step; moving to the current phase, skipping a phase or
//   moving backwards is refused (backwards is what rollback is for).
// - Entering read_switch needs the latest consistency check to score at least
//   auto_switch_threshold and to be at most max_check_age_seconds old. `force` bypasses this
//   guard (a missing check included): the operator takes responsibility for the data.
//   validation_enabled does not relax it: it tells the validator to run checks, it is not a
//   licence to switch reads without one.
// - Entering cleanup needs the table's switch config active at 100%. `force` does NOT bypass
//   this: cleanup sends every read to the target, and the explicit way there (activate the
//   switch, raise it to 100) is cheap and leaves the percentage history the analytics and the
//   audit rely on, whereas a forced jump from, say, 10% would put all reads on the target
//   without any trace of the ramp.
// - Entering dual_write, validation, read_switch or cleanup needs the privileges preflight to have
//   found no gap (privileges.h: every role that writes the table whose writes are mirrored can
//   write the mirror, and in read_switch and cleanup every reader of the source can read the
//   target). `force` does NOT bypass this: a gap is not a risk the operator could take on, it is
//   a 42501 on every write of that role from the first statement on, and the way past it (GRANT)
//   is cheap. The same holds for enable-dual-write.
// - Entering dual_write (and enable-dual-write) needs the source's key unique at the end of every
//   statement (a non-deferrable unique index on key columns: with a DEFERRABLE key a transaction
//   may hold two rows of one key for a while, and the key-based mirror then deletes or overwrites
//   the target's row) and the target to have a non-deferrable unique index on exactly the key (the
//   mirror's ON CONFLICT arbiter; deferrable ones are refused there). Entering cleanup needs the
//   same the other way round (the target is written, the source is the mirror). Registration
//   checks the source's. `force` does NOT bypass this: the fix (CREATE UNIQUE INDEX) is cheap and
//   the risk is lost rows.
// - Entering completed with foreign keys of other tables referencing the source is refused (the
//   source is no longer written: a child INSERT fails with 23503 and ON DELETE CASCADE stops),
//   naming each, with the SQL that moves them to the target; with move_foreign_keys the phase
//   change moves them itself. A key that references a column column_map drops cannot be moved.
//   `force` does not bypass this. (In cleanup they still work: the source is mirrored.)
// - completed only follows cleanup (the one-step rule).
// - rollback returns to preparation from dual_write, validation, read_switch or cleanup, if the
//   migration has rollback_enabled.
// - enable-dual-write: in preparation it is the move to dual_write; in dual_write..cleanup it
//   turns dual writes back on after a forced disable. disable-dual-write: allowed in cleanup (the
//   manual's step 5.1); in dual_write, validation and read_switch only with force, since the target
//   would fall behind.
#include "migration/phase_machine.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "migration/sql_text.h"

namespace pgphase::migration {
namespace {

Verdict allow() {
  return Verdict{true, {}, {}};
}

Verdict refuse(std::string reason, std::string remedy) {
  return Verdict{false, std::move(reason), std::move(remedy)};
}

std::string name(Phase p) {
  return std::string(to_string(p));
}

std::optional<Phase> next_of(Phase p) {
  switch (p) {
    case Phase::kPreparation:
      return Phase::kDualWrite;
    case Phase::kDualWrite:
      return Phase::kValidation;
    case Phase::kValidation:
      return Phase::kReadSwitch;
    case Phase::kReadSwitch:
      return Phase::kCleanup;
    case Phase::kCleanup:
      return Phase::kCompleted;
    case Phase::kCompleted:
      return std::nullopt;
  }
  return std::nullopt;
}

std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string validate_hint(const Migration& m) {
  return "run pgphase validate --migration-id " + m.migration_id + " (source " + m.source_table +
         ", target " + m.target_table + ") to record a fresh consistency check";
}

Verdict check_read_switch_entry(const Migration& m, const TransitionFacts& f,
                                const std::string& prefix) {
  if (f.force) return allow();
  if (!f.latest_consistency_score.has_value()) {
    return refuse(prefix + "no consistency check of " + m.source_table + " and " + m.target_table +
                      " is recorded in t_sys_consistency_checks",
                  validate_hint(m) + ", or pass --force to switch reads without one");
  }
  const double score = *f.latest_consistency_score;
  if (!(score >= m.auto_switch_threshold)) {
    return refuse(
        prefix + "the latest consistency check scored " + number(score) +
            ", below auto_switch_threshold " + number(m.auto_switch_threshold),
        "repair the differences it reports and " + validate_hint(m) + ", or pass --force");
  }
  const double age = std::max(0.0, f.latest_check_age_seconds.value_or(0.0));
  if (age > f.max_check_age_seconds) {
    return refuse(prefix + "the latest consistency check is " + number(std::round(age)) +
                      " s old, older than max_check_age_seconds " + number(f.max_check_age_seconds),
                  validate_hint(m) + ", or pass --force");
  }
  return allow();
}

Verdict check_cleanup_entry(const Migration& m, const TransitionFacts& f,
                            const std::string& prefix) {
  const std::string no_force = " (--force does not bypass this)";
  if (!f.switch_percentage.has_value()) {
    return refuse(prefix + "no read switch config exists for table " + m.source_table +
                      ", so reads were never switched to the target",
                  "register a switch config for " + m.source_table +
                      " (pgphase switch register), activate it and raise it to 100 "
                      "(pgphase switch update-percentage --percentage 100)" +
                      no_force);
  }
  const std::string id = f.switch_config_id.empty() ? "the read switch config" : f.switch_config_id;
  const SwitchStatus status = f.switch_status.value_or(SwitchStatus::kActive);
  if (status != SwitchStatus::kActive) {
    return refuse(prefix + "read switch config " + id + " is " + std::string(to_string(status)) +
                      ", not active at 100%",
                  "activate it (pgphase switch activate --config-id " + id +
                      ") and raise it to 100 (pgphase switch update-percentage --config-id " + id +
                      " --percentage 100)" + no_force);
  }
  if (*f.switch_percentage < 100.0) {
    return refuse(prefix + "read switch config " + id + " sends only " +
                      number(*f.switch_percentage) +
                      "% of reads to the target; cleanup reads only from the target",
                  "raise it to 100 (pgphase switch update-percentage --config-id " + id +
                      " --percentage 100)" + no_force);
  }
  return allow();
}

constexpr size_t kMaxGapsNamed = 10;

std::string display(const std::string& configured) {
  const QualifiedName q = qualify(configured);
  return q.schema + "." + q.table;
}

// The gaps as one reason and one remedy (the GRANTs), at most kMaxGapsNamed of them spelled out.
Verdict check_privileges(const std::vector<PrivilegeGap>& gaps, const std::string& prefix) {
  if (gaps.empty()) return allow();
  std::string reasons;
  std::string grants;
  for (size_t i = 0; i < gaps.size() && i < kMaxGapsNamed; ++i) {
    reasons += (i ? "; " : "") + gaps[i].reason;
    grants += (i ? "; " : "") + gaps[i].grant;
  }
  if (gaps.size() > kMaxGapsNamed) {
    const std::string more = " (and " + std::to_string(gaps.size() - kMaxGapsNamed) + " more)";
    reasons += more;
    grants += more;
  }
  return refuse(prefix + reasons + "; those statements would fail with SQLSTATE 42501",
                "grant them (" + grants +
                    "), or revoke from the role what it should not have; --force does not bypass "
                    "this");
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "; " : "") + parts[i];
  return out;
}

std::string key_list(const TableKey& t) {
  std::string out;
  for (size_t i = 0; i < t.key.size(); ++i) out += (i ? ", " : "") + t.key[i];
  return "(" + out + ")";
}

// `written` is the table the phase writes with the client's statements, `mirror` (nullptr: not
// checked) the one its rows are mirrored to by key.
Verdict check_keys(const TableKey& written, const TableKey* mirror, const std::string& prefix) {
  std::vector<std::string> reasons;
  std::vector<std::string> fixes;
  const std::string mirror_name = mirror != nullptr ? mirror->table : "the other table";
  if (written.visible && !key_unique_per_statement(written)) {
    const std::string deferrable = deferrable_key_indexes(written);
    reasons.push_back(
        deferrable.empty()
            ? written.table + " has no unique index on its key " + key_list(written) +
                  ": mirroring its writes by key to " + mirror_name +
                  " is exact only when the key is unique at the end of every statement"
            : "the key " + key_list(written) + " of " + written.table +
                  " is unique only through DEFERRABLE " + deferrable +
                  ": a transaction that defers it can hold two rows of one key for a while, and "
                  "mirroring by key to " +
                  mirror_name + " then loses a row");
    fixes.push_back(create_key_index_sql(written));
  }
  bool drops = false;
  if (mirror != nullptr && mirror->visible && !key_has_arbiter(*mirror)) {
    const std::vector<std::string> deferrable = deferrable_arbiters(*mirror);
    if (deferrable.empty()) {
      reasons.push_back(mirror->table + " has no non-deferrable unique index on exactly its key " +
                        key_list(*mirror) +
                        ", which the mirror's INSERT ... ON CONFLICT needs as its arbiter");
    } else {
      std::string names;
      for (const auto& n : deferrable) names += (names.empty() ? "" : ", ") + n;
      reasons.push_back(mirror->table + "'s unique index on exactly its key " + key_list(*mirror) +
                        ", " + names +
                        ", is DEFERRABLE: the mirror's INSERT ... ON CONFLICT refuses it as "
                        "arbiter (SQLSTATE 55000), even next to a non-deferrable one");
    }
    if (!key_has_immediate_index(*mirror)) fixes.push_back(create_key_index_sql(*mirror));
    for (const auto& n : deferrable) fixes.push_back(drop_constraint_sql(*mirror, n));
    drops = !deferrable.empty();
  }
  if (reasons.empty()) return allow();
  return refuse(prefix + joined(reasons),
                std::string("create a non-deferrable unique index on the key columns") +
                    (drops ? " and drop the deferrable constraint on exactly the key of " +
                                 mirror->table + " (it cannot be made non-deferrable in place)"
                           : "") +
                    " (" + joined(fixes) + "); --force does not bypass this");
}

// The key guard of a phase that mirrors: dual_write..read_switch write the source and mirror to
// the target, cleanup the other way round.
Verdict check_mirror_keys(Phase mirroring_in, const std::optional<KeyFacts>& keys,
                          const std::string& prefix) {
  if (!keys.has_value()) return allow();
  if (mirroring_in == Phase::kCleanup) return check_keys(keys->target, &keys->source, prefix);
  return check_keys(keys->source, &keys->target, prefix);
}

Verdict check_completed_entry(const Migration& m, const TransitionFacts& f,
                              const std::string& prefix) {
  const auto& fks = f.referencing_foreign_keys;
  if (fks.empty()) return allow();
  const std::string source = display(m.source_table);
  const std::string target = quote_table(m.target_table);
  const std::string no_force = "; --force does not bypass this";
  std::vector<std::string> unmovable;
  for (const ForeignKeyRef& fk : fks) {
    if (const std::string cols = unmapped_columns(fk); !cols.empty()) {
      unmovable.push_back(fk.name + " on " + fk.child + " references " + cols + " of " + source +
                          ", which column_map drops");
    }
  }
  if (!unmovable.empty()) {
    return refuse(
        prefix + "foreign keys reference " + source +
            ", which completed stops writing, and cannot be moved to the target: " +
            joined(unmovable),
        "drop them or make them reference columns the target keeps, then retry" + no_force);
  }
  if (f.move_foreign_keys) return allow();
  std::vector<std::string> named;
  std::vector<std::string> sql;
  for (size_t i = 0; i < fks.size(); ++i) {
    if (i < kMaxGapsNamed) named.push_back(describe(fks[i], m.source_table));
    for (const std::string& s : foreign_key_move_sql(fks[i], target)) sql.push_back(s);
  }
  std::string list = joined(named);
  if (fks.size() > kMaxGapsNamed) {
    list += " (and " + std::to_string(fks.size() - kMaxGapsNamed) + " more)";
  }
  return refuse(prefix + "foreign keys reference " + source +
                    ", which completed stops writing (a child INSERT referencing a row written "
                    "from now on fails with SQLSTATE 23503, and ON DELETE/ON UPDATE actions such "
                    "as CASCADE no longer run): " +
                    list,
                "move them to " + display(m.target_table) +
                    " in the phase change: set-phase with move_foreign_keys (pgphase migration "
                    "set-phase --migration-id " +
                    m.migration_id +
                    " --phase completed --move-foreign-keys), which runs, in the same "
                    "transaction: " +
                    joined(sql) + no_force);
}

// The guard of the phase being entered, other than the privileges.
Verdict check_entry_guard(const Migration& m, Phase to, const TransitionFacts& facts,
                          const std::string& prefix) {
  switch (to) {
    case Phase::kReadSwitch:
      return check_read_switch_entry(m, facts, prefix);
    case Phase::kCleanup:
      if (Verdict v = check_cleanup_entry(m, facts, prefix); !v) return v;
      return check_mirror_keys(Phase::kCleanup, facts.keys, prefix);
    case Phase::kDualWrite:
      return check_mirror_keys(Phase::kDualWrite, facts.keys, prefix);
    case Phase::kCompleted:
      return check_completed_entry(m, facts, prefix);
    default:
      return allow();
  }
}

}  // namespace

Verdict check_phase_change(const Migration& m, Phase to, const TransitionFacts& facts) {
  const std::string prefix =
      "cannot move " + m.migration_id + " from " + name(m.phase) + " to " + name(to) + ": ";
  if (to == m.phase) {
    return refuse(prefix + "it is already in " + name(to), "nothing to do");
  }
  const std::optional<Phase> next = next_of(m.phase);
  if (!next.has_value()) {
    return refuse(prefix + "it is completed; there is no later phase",
                  "register a new migration for further changes");
  }
  if (to != *next) {
    const bool backwards = static_cast<int>(to) < static_cast<int>(m.phase);
    return refuse(prefix + "phases advance one step at a time (next: " + name(*next) + ")",
                  backwards ? "to go back, use rollback (it returns to preparation)"
                            : "move to " + name(*next) + " first");
  }
  if (Verdict guard = check_entry_guard(m, to, facts, prefix); !guard) return guard;
  return check_privileges(facts.privilege_gaps, prefix);
}

Verdict check_register(const Migration& m, const std::optional<KeyFacts>& keys) {
  if (!keys.has_value()) return allow();
  return check_keys(keys->source, nullptr, "cannot register " + m.migration_id + ": ");
}

Verdict check_rollback(const Migration& m) {
  const std::string prefix = "cannot roll back " + m.migration_id + ": ";
  switch (m.phase) {
    case Phase::kPreparation:
      return refuse(prefix + "it is already in preparation", "nothing to do");
    case Phase::kCompleted:
      return refuse(prefix +
                        "it is completed: reads and writes use only the target, the source is no "
                        "longer kept up to date",
                    "register a new migration (target back to source) to return");
    default:
      break;
  }
  if (!m.rollback_enabled) {
    return refuse(prefix + "rollback_enabled is false for this migration",
                  "move it forward instead; rollback was disabled when it was registered");
  }
  return allow();
}

Verdict check_dual_write_change(const Migration& m, bool enable, bool force,
                                const std::vector<PrivilegeGap>& privilege_gaps,
                                const std::optional<KeyFacts>& keys) {
  const std::string prefix = std::string("cannot ") + (enable ? "enable" : "disable") +
                             " dual write for " + m.migration_id + " in " + name(m.phase) + ": ";
  if (enable) {
    switch (m.phase) {
      case Phase::kPreparation:  // the move to dual_write
        if (Verdict v = check_mirror_keys(Phase::kDualWrite, keys, prefix); !v) return v;
        return check_privileges(privilege_gaps, prefix);
      case Phase::kCompleted:
        return refuse(prefix + "the migration is completed and the source is no longer written",
                      "register a new migration to write to both tables again");
      default:
        if (m.dual_write_enabled) return refuse(prefix + "it is already enabled", "nothing to do");
        if (Verdict v = check_mirror_keys(m.phase, keys, prefix); !v) return v;
        return check_privileges(privilege_gaps, prefix);
    }
  }
  switch (m.phase) {
    case Phase::kPreparation:
    case Phase::kCompleted:
      return refuse(prefix + "dual write is not enabled in " + name(m.phase), "nothing to do");
    case Phase::kCleanup:
      if (!m.dual_write_enabled) return refuse(prefix + "it is already disabled", "nothing to do");
      return allow();
    default:
      if (!m.dual_write_enabled) return refuse(prefix + "it is already disabled", "nothing to do");
      if (force) return allow();
      return refuse(prefix +
                        "the target would fall behind the source while reads still depend "
                        "on it being complete",
                    "disable dual write in cleanup (after the read switch reached 100%), roll "
                    "back, or pass --force");
  }
}

PhaseFlags flags_for(Phase p) noexcept {
  switch (p) {
    case Phase::kPreparation:
      return {false, false};
    case Phase::kDualWrite:
    case Phase::kValidation:
    case Phase::kReadSwitch:
      return {true, false};
    case Phase::kCleanup:
      return {true, true};
    case Phase::kCompleted:
      return {false, true};
  }
  return {false, false};
}

}  // namespace pgphase::migration
