// The migration control plane: state lives in the control database (t_sys_* tables, created
// idempotently with a schema version); every change is one transaction that checks the phase
// machine, writes the new state and a t_sys_migration_logs row, and NOTIFYs every pgphase on the
// same database. A listener thread LISTENs (and reloads periodically as a safety net), rebuilds
// the Snapshot and publishes it atomically. If the control database is unreachable, the last
// snapshot stays in force, changes are refused with kUnavailable, and it reconnects by itself.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "migration/audit_row.h"
#include "migration/model.h"
#include "migration/snapshot.h"

namespace pgphase::migration {

struct ControlConfig {
  std::string dsn;  // libpq conninfo of pgphase's own role; never logged
  double reload_interval_seconds = 2.0;
  double max_check_age_seconds = 30 * 60;  // consistency checks older than this do not count
  std::vector<std::string> config_files;   // the manual's JSON files, loaded at start
  // How long a control connection waits for the server's answer before it is given up as lost
  // (pg::Connection::set_answer_timeout); above the sessions' statement_timeout of 30 s.
  unsigned answer_timeout_ms = 35'000;  // pg::Connection::kControlAnswerTimeout
};

// Errors of control-plane operations, mapped to HTTP statuses at the admin edge.
struct OpError {
  enum class Kind { kBadRequest, kNotFound, kConflict, kUnprocessable, kUnavailable, kInternal };
  Kind kind = Kind::kInternal;
  std::string message;
  std::string detail;
};

template <class T>
struct OpResult {
  std::optional<T> value;
  std::optional<OpError> error;
  [[nodiscard]] bool ok() const noexcept { return value.has_value(); }
  static OpResult success(T v) { return OpResult{std::move(v), std::nullopt}; }
  static OpResult failure(OpError::Kind k, std::string message, std::string detail = {}) {
    return OpResult{std::nullopt, OpError{k, std::move(message), std::move(detail)}};
  }
};

// Options of set-phase: `force` bypasses the guards that allow it (read_switch's consistency
// check); `move_foreign_keys` lets the move to completed recreate the foreign keys that reference
// the source on the target, in the phase change's transaction.
struct PhaseChangeOptions {
  bool force = false;
  bool move_foreign_keys = false;
};

struct LogEntry {
  int64_t id = 0;
  std::string migration_id;
  std::string action;
  std::string actor;
  std::string from_state;
  std::string to_state;
  std::string status;  // "success" | "failed" | "refused"
  std::string message;
  std::string created_at;
};

// What one repair pass did (see repair.h).
struct RepairReport {
  std::string migration_id;
  int64_t log_rows = 0;  // failed dual writes marked repaired
  int64_t upserted = 0;  // rows copied again from the source
  int64_t deleted = 0;   // rows deleted from the target (gone from the source)
};

struct PercentageChange {
  double from = 0;
  double to = 0;
  std::string actor;
  std::string reason;
  std::string created_at;
};

class ControlPlane {
 public:
  explicit ControlPlane(ControlConfig config);
  ~ControlPlane();
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  // Connects, creates the schema, loads config files, publishes the first snapshot and starts the
  // listener thread. An unreachable database is not fatal: start() logs it and keeps retrying
  // (the config files are registered once it is reachable). Throws ConfigFileError
  // (config_files.h) for a config file that cannot be read or holds an invalid entry, and
  // SchemaError (schema.h) when the database is reachable but its t_sys_* tables are not
  // pgphase's. Until the first load, snapshot() is an empty Snapshot (generation 0).
  void start();
  // Joins the listener and closes the connections. Final: operations afterwards return
  // kUnavailable.
  void stop();

  [[nodiscard]] SnapshotPtr snapshot() const noexcept;
  // Where snapshot() reads from, with its generation (for readers that cache a snapshot).
  [[nodiscard]] const SnapshotCell& published() const noexcept;
  [[nodiscard]] bool connected() const noexcept;

  // Operations (blocking, thread-safe; `actor` is recorded in the log). Each is one transaction
  // in the control database (serialised across pgphase processes by an advisory lock) that writes
  // the change and its t_sys_migration_logs row and NOTIFYs; the new state is published before
  // the call returns. A refusal (kConflict: message says why, detail what would allow it) is
  // logged with status "refused". Kinds: kNotFound unknown id; kConflict id exists, illegal move,
  // concurrent change; kUnprocessable invalid value; kBadRequest malformed model; kUnavailable
  // control database unreachable ("control database unavailable: ...").
  //
  // register_*: a migration must be in preparation, a switch config inactive (kUnprocessable
  // otherwise); version/created_at/updated_at of the argument are ignored. A second active
  // migration of the same source table (same database) is a kConflict.
  // set_dual_write(enabled) from preparation is the move to dual_write.
  // rollback also rolls back the migration's active/paused/completed switch config (0%).
  // activate_switch: idempotent when already active. set_switch_percentage: same value is a
  // no-op success; refused when the migration is in cleanup/completed. rollback_switch:
  // idempotent (repeating it succeeds and is logged).
  // logs / percentage_history: latest first, limit clamped to 1..1000.
  OpResult<Migration> register_migration(Migration m, const std::string& actor);
  OpResult<Migration> set_phase(const std::string& id, Phase to, bool force,
                                const std::string& actor);
  // The same with every option; `actions` (optional) receives what the change did besides the
  // phase, as its log row's details record it ({"sequences": [...], "foreign_keys_moved": [...]};
  // empty when nothing): the sequences advanced entering cleanup, the foreign keys moved entering
  // completed.
  OpResult<Migration> set_phase(const std::string& id, Phase to, const PhaseChangeOptions& options,
                                const std::string& actor, boost::json::object* actions);
  OpResult<Migration> set_dual_write(const std::string& id, bool enabled, bool force,
                                     const std::string& actor);
  // `actions` (optional): as for set_phase (the source's sequences advanced leaving cleanup).
  OpResult<Migration> rollback(const std::string& id, const std::string& actor,
                               const std::string& reason, boost::json::object* actions = nullptr);
  OpResult<std::vector<LogEntry>> logs(const std::string& migration_id, int limit);
  // Re-copies the keys whose eventual dual write failed (t_sys_dual_write_logs) from the source;
  // logged as action "repair". kNotFound unknown id; kUnprocessable tables not resolved.
  OpResult<RepairReport> repair(const std::string& id, const std::string& actor);
  // The latest consistency check score of the migration `s` belongs to; nullopt when there is
  // none or the control database cannot be read.
  std::optional<double> latest_consistency_score(const SwitchConfig& s);
  // Figures for /metrics read from the control database: each migration's latest consistency
  // score, and its log entries (t_sys_migration_logs) counted by status. nullopt when the
  // control database cannot be read.
  struct StoredFigures {
    std::map<std::string, double> consistency_scores;                    // by migration_id
    std::map<std::pair<std::string, std::string>, int64_t> log_entries;  // (migration_id, status)
  };
  std::optional<StoredFigures> stored_figures();
  // Records a change request to the admin API in t_sys_audit_log (false when the control
  // database cannot be written; the caller logs it).
  bool record_audit(const AuditRow& row);
  // Records a write the proxy passed although it cannot mirror it (allow_and_flag) as a
  // divergence in t_sys_migration_logs (action "unsupported_write", status "flagged"), which the
  // next validation must clear. Never blocks: entries are queued and written by a background
  // thread; beyond 1000 queued entries new ones are dropped and counted in the log.
  void record_flagged_write(const std::string& migration_id, const std::string& reason,
                            const std::string& sql);

  OpResult<SwitchConfig> register_switch(SwitchConfig s, const std::string& actor);
  OpResult<SwitchConfig> activate_switch(const std::string& id, const std::string& actor);
  OpResult<SwitchConfig> set_switch_percentage(const std::string& id, double percentage,
                                               const std::string& actor, const std::string& reason);
  OpResult<SwitchConfig> rollback_switch(const std::string& id, const std::string& actor,
                                         const std::string& reason);
  // pause: active -> paused (reads keep their split, a ramp stops); resume: paused -> active.
  OpResult<SwitchConfig> set_switch_paused(const std::string& id, bool paused,
                                           const std::string& actor);
  OpResult<std::vector<PercentageChange>> percentage_history(const std::string& id, int limit);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgphase::migration
