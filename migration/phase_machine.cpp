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

// The guard of the phase being entered, other than the privileges.
Verdict check_entry_guard(const Migration& m, Phase to, const TransitionFacts& facts,
                          const std::string& prefix) {
  switch (to) {
    case Phase::kReadSwitch:
      return check_read_switch_entry(m, facts, prefix);
    case Phase::kCleanup:
      return check_cleanup_entry(m, facts, prefix);
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
                                const std::vector<PrivilegeGap>& privilege_gaps) {
  const std::string prefix = std::string("cannot ") + (enable ? "enable" : "disable") +
                             " dual write for " + m.migration_id + " in " + name(m.phase) + ": ";
  if (enable) {
    switch (m.phase) {
      case Phase::kPreparation:
        return check_privileges(privilege_gaps, prefix);  // the move to dual_write
      case Phase::kCompleted:
        return refuse(prefix + "the migration is completed and the source is no longer written",
                      "register a new migration to write to both tables again");
      default:
        if (m.dual_write_enabled) return refuse(prefix + "it is already enabled", "nothing to do");
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
