// Reading and writing the control-plane tables (schema.h) over one pg::Connection. Every function
// runs in the caller's transaction, if any; none commits. Timestamps come back as ISO 8601 UTC
// ("2026-11-25T21:30:00.123Z"), ages are computed by the database's clock.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "migration/audit_row.h"
#include "migration/control_plane.h"
#include "migration/model.h"
#include "migration/pg_client.h"

namespace pgphase::migration::store {

// A row pgphase cannot interpret (an unknown phase written by hand, malformed JSON, ...).
struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[nodiscard]] std::vector<Migration> load_migrations(pg::Connection& c);   // by migration_id
[[nodiscard]] std::vector<SwitchConfig> load_switches(pg::Connection& c);  // by config_id
// for_update: SELECT ... FOR UPDATE (the caller holds a transaction).
[[nodiscard]] std::optional<Migration> find_migration(pg::Connection& c, const std::string& id,
                                                      bool for_update);
[[nodiscard]] std::optional<SwitchConfig> find_switch(pg::Connection& c, const std::string& id,
                                                      bool for_update);

// Inserts with version 1 and the database's timestamps; returns the stored row.
Migration insert_migration(pg::Connection& c, const Migration& m);
SwitchConfig insert_switch(pg::Connection& c, const SwitchConfig& s);
// Writes every mutable field WHERE version = m.version (optimistic concurrency), bumping version
// and updated_at; returns the stored row, or nullopt when the version no longer matches.
std::optional<Migration> update_migration(pg::Connection& c, const Migration& m);
std::optional<SwitchConfig> update_switch(pg::Connection& c, const SwitchConfig& s);

struct LogRow {
  std::string migration_id;
  std::string action;
  std::string actor;
  std::string from_state;
  std::string to_state;
  std::string status;  // "success" | "failed" | "refused"
  std::string message;
  std::string details_json;  // a JSON object, or "" for NULL
};
void insert_log(pg::Connection& c, const LogRow& row);

void insert_audit(pg::Connection& c, const AuditRow& row);
// Latest first.
[[nodiscard]] std::vector<LogEntry> list_logs(pg::Connection& c, const std::string& migration_id,
                                              int limit);

// The latest consistency check of `m`: rows with its migration_id, or rows without one for its
// source and target tables (as the manual's validator writes them).
struct CheckFacts {
  std::string check_id;
  double score = 0;
  double age_seconds = 0;  // now() - created_at, by the database
};
[[nodiscard]] std::optional<CheckFacts> latest_check(pg::Connection& c, const Migration& m);

void insert_history(pg::Connection& c, const std::string& config_id, double from, double to,
                    const std::string& actor, const std::string& reason);
// Latest first.
[[nodiscard]] std::vector<PercentageChange> list_history(pg::Connection& c,
                                                         const std::string& config_id, int limit);

// pg_notify('pgphase_state', payload): delivered to every listener at COMMIT.
inline constexpr const char* kNotifyChannel = "pgphase_state";
void notify(pg::Connection& c, const std::string& payload);

}  // namespace pgphase::migration::store
