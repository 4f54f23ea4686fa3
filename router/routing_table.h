// What the router needs to know about the migrations a session can touch, compiled once per
// published migration snapshot and database: the tables to look for (with a cheap byte-level
// pre-filter) and, per migration, how a write to its source is mirrored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "migration/snapshot.h"

namespace pgphase::router {

struct TableName {
  std::string schema;
  std::string table;
  [[nodiscard]] bool operator==(const TableName&) const = default;
};

// A column written on one side and its counterpart on the other.
struct ColumnPair {
  std::string from;  // column of the table the client's statement writes
  std::string to;    // the same value's column on the mirrored table
};

// A source column as the target presents it to reads.
struct ReadColumn {
  std::string from;  // the source column
  std::string to;    // its target column
  std::string cast;  // the source column's type when the target column's differs, else ""
};

// What a write naming a migration's source table turns into.
enum class WriteMode : uint8_t {
  kPass,          // preparation: untouched
  kMirrorTarget,  // dual_write, validation, read_switch: write the source, mirror to the target
  kMirrorSource,  // cleanup: write the target, mirror to the source
  kTargetOnly,    // completed: write the target only
};

// Where reads of a migration's source go.
enum class ReadMode : uint8_t {
  kSource,  // before read_switch: unparsed unless the text also writes
  kSwitch,  // read_switch with an active or paused switch config: by its strategy
  kTarget,  // cleanup, completed: every routable read goes to the target
};

// Which session property a sticky switch hashes.
enum class StickyKey : uint8_t { kUser, kApplicationName, kClientAddress };

// A switch config's id, shared by the reads chosen under it: copying it allocates nothing (a
// routing table is a worker's own, so its count is touched by one thread).
using SharedId = std::shared_ptr<const std::string>;

struct ReadSwitch {
  SharedId config_id;  // never null in a built table
  migration::SwitchStrategy strategy = migration::SwitchStrategy::kGradual;
  double percentage = 0;  // 0..100
  StickyKey sticky_key = StickyKey::kUser;
  std::vector<std::string> canary_users;
  std::vector<std::string> canary_applications;
};

struct MigrationRoute {
  std::string migration_id;
  TableName source;
  TableName target;
  migration::Phase phase = migration::Phase::kPreparation;
  migration::ConsistencyLevel consistency = migration::ConsistencyLevel::kStrict;
  migration::UnsupportedWritePolicy unsupported_policy = migration::UnsupportedWritePolicy::kReject;
  WriteMode mode = WriteMode::kPass;
  // Columns copied source -> target (generated target columns and dropped ones left out).
  std::vector<ColumnPair> columns;
  std::vector<ColumnPair> key;  // source key column -> target key column
  bool identity_map = true;     // column_map renames or drops nothing
  // How reads (and, in cleanup and completed, RETURNING) present the target as the source: every
  // source column in order with its target column. Empty when the shapes are unknown.
  std::vector<ReadColumn> read_columns;
  // The target differs from the source in column names, order, count (extra target columns) or
  // types, or column_map renames: reads go through a derived table with the source's columns,
  // names, order and types (read_columns). False: the target is read by its bare name.
  bool reshaped = false;
  // Non-empty: the target cannot present the source's columns (a source column has no target
  // column, column_map drops one, the shapes are unknown under a renaming column_map); reads
  // stay on the source (refused in completed) and reshaped writes are refused.
  std::string reshape_problem;
  // Non-empty: writes cannot be mirrored (the shape's problem, or a missing unique key).
  std::string problem;
  // Other schemas have a relation named like the source ("" none): an unqualified name may
  // resolve to one of them under the session's search_path.
  std::string homonyms;
  // The table the statements write (the source; the target in cleanup) has an enabled BEFORE
  // UPDATE row trigger, which may change the key: every UPDATE is mirrored as a key change.
  bool update_trigger = false;
  // Non-empty: reads stay on the source for this reason (row-level security differs).
  std::string read_problem;
  ReadMode read_mode = ReadMode::kSource;
  ReadSwitch read_switch;  // kSwitch
};

class RoutingTable {
 public:
  // Migrations of `snapshot` that apply to sessions on `database` (those whose tables are in it:
  // `database`, or the control database when the migration names none) and are past
  // preparation. Sessions of any other database are never rewritten.
  static std::shared_ptr<const RoutingTable> build(const migration::Snapshot& snapshot,
                                                   std::string_view database);

  [[nodiscard]] uint64_t generation() const noexcept { return generation_; }
  [[nodiscard]] bool empty() const noexcept { return routes_.empty(); }
  [[nodiscard]] const std::vector<MigrationRoute>& routes() const noexcept { return routes_; }

  // Cheap pre-filter: true when `sql` may name a migrating table (contains a source table name,
  // case-insensitively, or a Unicode-escaped identifier). False means: no parse needed.
  [[nodiscard]] bool may_touch(std::string_view sql) const noexcept;

  // The route whose source is `name`. An unqualified name (schema "") matches a source of that
  // name in any schema (the session's search_path decides whether it resolves to it; see
  // MigrationRoute::homonyms); when sources of several migrations share the name, `ambiguous`
  // (if given) is set and the first is returned.
  [[nodiscard]] const MigrationRoute* find_source(const TableName& name,
                                                  bool* ambiguous = nullptr) const noexcept;

 private:
  uint64_t generation_ = 0;
  std::vector<MigrationRoute> routes_;
  std::vector<std::string> needles_;  // lower-case table names
};

// A routing table borrowed from whoever keeps it (a proxy worker keeps one per database until the
// next snapshot generation): copying it is copying a pointer, no reference count. It reads like
// the shared_ptr it replaces. Valid until its keeper refreshes, so a holder takes a fresh one
// from the keeper before each use rather than keeping it across calls.
class TableRef {
 public:
  TableRef() noexcept = default;
  TableRef(std::nullptr_t) noexcept {}
  // Borrows from `owner`, which must outlive every use of this reference.
  TableRef(const std::shared_ptr<const RoutingTable>& owner) noexcept : table_(owner.get()) {}

  [[nodiscard]] const RoutingTable* get() const noexcept { return table_; }
  const RoutingTable* operator->() const noexcept { return table_; }
  const RoutingTable& operator*() const noexcept { return *table_; }
  explicit operator bool() const noexcept { return table_ != nullptr; }
  friend bool operator==(const TableRef& a, std::nullptr_t) noexcept { return a.table_ == nullptr; }

 private:
  const RoutingTable* table_ = nullptr;
};

// Case-insensitive (ASCII) substring search.
[[nodiscard]] bool contains_ci(std::string_view haystack, std::string_view lower_needle) noexcept;

}  // namespace pgphase::router
