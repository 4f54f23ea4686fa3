// The phase machine: which moves are legal, and why not. Pure: no I/O, no clock (the caller
// passes the facts a guard needs), so every legal and illegal move is unit-tested.
//
//   preparation -> dual_write -> validation -> read_switch -> cleanup -> completed
//   rollback: from dual_write, validation, read_switch or cleanup back to preparation
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "migration/constraints.h"
#include "migration/model.h"
#include "migration/privileges.h"

namespace pgphase::migration {

// What the guards look at, gathered by the caller from the control database.
struct TransitionFacts {
  bool force = false;
  // Latest consistency check of this migration: its score, and its age in seconds.
  std::optional<double> latest_consistency_score;
  std::optional<double> latest_check_age_seconds;
  double max_check_age_seconds = 30 * 60;
  // The read switch config of this migration's table, if any (see Snapshot::switch_for): its
  // percentage, status (nullopt with a percentage counts as active) and id (for messages).
  std::optional<double> switch_percentage;
  std::optional<SwitchStatus> switch_status;
  std::string switch_config_id;
  // What the roles of the migration's tables lack for the phase being entered (privileges.h's
  // preflight; empty when it found nothing or could not run).
  std::vector<PrivilegeGap> privilege_gaps;
  // The migration's key and the unique indexes over it in both tables (constraints.h), read when
  // entering dual_write or cleanup; nullopt: nothing to check (key or tables not known).
  std::optional<KeyFacts> keys;
  // Entering completed: the foreign keys of other tables referencing the source, and whether the
  // operator asked for them to be moved to the target in the phase change (move_foreign_keys).
  std::vector<ForeignKeyRef> referencing_foreign_keys;
  bool move_foreign_keys = false;
};

struct Verdict {
  bool allowed = false;
  std::string reason;  // why not (empty when allowed)
  std::string remedy;  // what would allow it
  [[nodiscard]] explicit operator bool() const noexcept { return allowed; }
};

// A forward move set by an operator (set-phase). Moving to the current phase is refused.
[[nodiscard]] Verdict check_phase_change(const Migration& m, Phase to,
                                         const TransitionFacts& facts);

// Registration: when the source is visible, its key must be unique at the end of every statement
// (a non-deferrable unique index on it), since dual_write mirrors its rows by key.
[[nodiscard]] Verdict check_register(const Migration& m, const std::optional<KeyFacts>& keys);

// Rollback to preparation.
[[nodiscard]] Verdict check_rollback(const Migration& m);

// enable-dual-write / disable-dual-write. `privilege_gaps` and `keys`: the preflight's and the
// key facts for enabling (the mirror of the phase dual write is enabled in).
[[nodiscard]] Verdict check_dual_write_change(const Migration& m, bool enable, bool force,
                                              const std::vector<PrivilegeGap>& privilege_gaps = {},
                                              const std::optional<KeyFacts>& keys = std::nullopt);

// The flags a phase implies (applied together with the phase, so they never disagree).
struct PhaseFlags {
  bool dual_write_enabled;
  bool read_from_target;
};
[[nodiscard]] PhaseFlags flags_for(Phase p) noexcept;

}  // namespace pgphase::migration
