// The migration model: a migration (the manual's MigrationConfig) and a read switch config (the
// manual's SwitchConfig), with their enums, JSON forms (field names and values exactly as in the
// manual's migration_configs.json and read_switch_configs.json) and validation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace boost::json {
class value;
class object;
}  // namespace boost::json

namespace pgphase::migration {

// A request that is malformed or names something invalid; the message says which field and why.
// Thrown as such for the shape of a document (not an object, unknown key, wrong type, missing
// required key): HTTP 400.
struct ModelError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// A well-formed document with an invalid value (unknown phase, percentage outside 0-100, bad
// table name, ...): HTTP 422. Catching ModelError catches both.
struct ModelValueError : ModelError {
  using ModelError::ModelError;
};

enum class Phase : uint8_t {
  kPreparation,
  kDualWrite,
  kValidation,
  kReadSwitch,
  kCleanup,
  kCompleted
};
inline constexpr Phase kAllPhases[] = {Phase::kPreparation, Phase::kDualWrite, Phase::kValidation,
                                       Phase::kReadSwitch,  Phase::kCleanup,   Phase::kCompleted};
[[nodiscard]] std::string_view to_string(Phase p) noexcept;
[[nodiscard]] std::optional<Phase> parse_phase(std::string_view s) noexcept;

enum class ConsistencyLevel : uint8_t { kStrict, kEventual };
[[nodiscard]] std::string_view to_string(ConsistencyLevel c) noexcept;
[[nodiscard]] std::optional<ConsistencyLevel> parse_consistency_level(std::string_view s) noexcept;

enum class SwitchStrategy : uint8_t { kImmediate, kGradual, kSticky, kCanary, kShadow };
[[nodiscard]] std::string_view to_string(SwitchStrategy s) noexcept;
[[nodiscard]] std::optional<SwitchStrategy> parse_switch_strategy(std::string_view s) noexcept;

enum class SwitchStatus : uint8_t { kInactive, kActive, kPaused, kCompleted, kRolledBack };
[[nodiscard]] std::string_view to_string(SwitchStatus s) noexcept;
[[nodiscard]] std::optional<SwitchStatus> parse_switch_status(std::string_view s) noexcept;

// What the proxy does with a write it cannot mirror to the other table during dual write (a
// statement it cannot rewrite, or a table whose shape does not allow dual write): refuse it, or
// let it through without the mirror write and flag it.
enum class UnsupportedWritePolicy : uint8_t { kReject, kAllowAndFlag };
[[nodiscard]] std::string_view to_string(UnsupportedWritePolicy p) noexcept;
[[nodiscard]] std::optional<UnsupportedWritePolicy> parse_unsupported_write_policy(
    std::string_view s) noexcept;

struct Migration {
  std::string migration_id;
  std::string source_table;  // as given; "users" means public.users
  std::string target_table;
  std::string database;  // empty: the database of every session
  Phase phase = Phase::kPreparation;
  ConsistencyLevel consistency_level = ConsistencyLevel::kStrict;
  bool dual_write_enabled = false;
  bool read_from_target = false;
  bool validation_enabled = true;
  double auto_switch_threshold = 0.99;
  bool rollback_enabled = true;
  std::vector<std::string> key_columns;           // empty: the source's primary key
  std::map<std::string, std::string> column_map;  // source column -> target column ("" = dropped)
  // Absent: the default for consistency_level (effective_unsupported_write_policy()).
  std::optional<UnsupportedWritePolicy> unsupported_write_policy;
  int64_t version = 0;     // bumped by every change (optimistic concurrency)
  std::string created_at;  // ISO 8601, from the control database
  std::string updated_at;
};

// The explicit unsupported_write_policy, else kReject for strict and kAllowAndFlag for eventual.
[[nodiscard]] UnsupportedWritePolicy effective_unsupported_write_policy(
    const Migration& m) noexcept;

struct SwitchConfig {
  std::string config_id;
  std::string table_name;
  std::string migration_id;  // optional link; empty: matched by table_name
  std::string current_source = "source";
  std::string target_source = "target";
  SwitchStrategy strategy = SwitchStrategy::kGradual;
  double switch_percentage = 0.0;  // 0..100
  // The manual's conditions (consistency_threshold, error_rate_threshold, latency_threshold) plus
  // any other numeric/string settings later features read (kept as given, JSON text).
  std::string conditions_json = "{}";
  bool rollback_enabled = true;
  double auto_rollback_threshold = 0.05;
  SwitchStatus status = SwitchStatus::kInactive;
  int64_t version = 0;
  std::string created_at;
  std::string updated_at;
};

// Parses one entry of migration_configs.json's "migrations" array (or a POST body). Unknown keys
// and wrong types throw ModelError naming the key. Missing optional keys take the defaults above.
// The result is validate()d (ModelValueError). "version", "created_at" and "updated_at" are
// accepted (so that to_json output parses back) but registration ignores them.
[[nodiscard]] Migration migration_from_json(const boost::json::value& v);
[[nodiscard]] boost::json::object to_json(const Migration& m);

[[nodiscard]] SwitchConfig switch_from_json(const boost::json::value& v);
[[nodiscard]] boost::json::object to_json(const SwitchConfig& s);

// Splits "schema.table" (quoted identifiers allowed) into its parts; "users" -> {"public",
// "users"}. Unquoted identifiers are folded to lower case as PostgreSQL does ("Users" -> "users"),
// quoted ones are kept exactly ('"Users"' -> "Users"). Throws ModelValueError for an invalid name.
struct QualifiedName {
  std::string schema;
  std::string table;
};
[[nodiscard]] QualifiedName qualify(std::string_view name);
// One column name (key_columns, column_map) as the catalog spells it, by the same rules: "Email"
// -> "email", '"Email"' -> "Email". Throws ModelValueError for an invalid name.
[[nodiscard]] std::string column_name(std::string_view name);

// Field rules shared by parsing and updates (ids, table names, ranges). Throw ModelValueError.
void validate(const Migration& m);
void validate(const SwitchConfig& s);

// What registration additionally needs: a migration starts in preparation (with the flags that
// implies), a switch config starts inactive (any percentage: it applies once activated). Later
// phases and statuses are reached only through the phase machine. Throw ModelValueError.
void validate_for_register(const Migration& m);
void validate_for_register(const SwitchConfig& s);

}  // namespace pgphase::migration
