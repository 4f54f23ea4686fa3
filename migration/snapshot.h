// An immutable picture of all migration state, published atomically: readers (sessions, the admin
// API, metrics) take a shared_ptr and never see a half-applied change.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "migration/model.h"

namespace pgphase::migration {

// One column of a table, as the control database's catalog describes it.
struct ColumnShape {
  std::string name;              // as the catalog spells it (quote it when building SQL)
  bool generated = false;        // GENERATED ALWAYS AS (...) STORED: cannot be written
  bool identity_always = false;  // GENERATED ALWAYS AS IDENTITY: needs OVERRIDING SYSTEM VALUE
  // The type with its modifier as a cast spells it under any search_path: format_type() for
  // pg_catalog's types ("integer", "numeric(12,3)"), else schema-qualified ("public"."email");
  // "" when not known.
  std::string type;
  uint32_t type_oid = 0;  // atttypid; 0 when not known
  bool operator==(const ColumnShape&) const = default;
};

// What the proxy needs to build dual-write SQL for a migration without catalog access of its own
// (migration/table_shape.h resolves it). Column names are the catalog's; the target name of a
// source column is column_name() of its column_map entry ("" = not written to the target), else
// the same name.
struct TableShape {
  std::vector<ColumnShape> source_columns;  // attnum order, not dropped
  std::vector<ColumnShape> target_columns;  // every column of the target, attnum order
  // Source names: the migration's key_columns, else the source's primary key (index order).
  std::vector<std::string> key_columns;
  // A unique, non-partial, non-expression, non-deferrable, valid index (or the primary key) on
  // exactly the mapped key columns of the target (any order; INCLUDE columns do not count), so
  // that INSERT ... ON CONFLICT (key) works there.
  bool target_has_unique_key = false;
  // The same on the source (needed when writes are mirrored target->source in cleanup).
  bool source_has_unique_key = false;
  // Non-empty: why dual write cannot be built (table missing, no key, key column dropped by
  // column_map, column_map names an unknown column, ...); several reasons are joined with "; ".
  // The fields above hold what could be resolved. The unique keys are not part of it: which one
  // is needed depends on the phase (target_has_unique_key / source_has_unique_key).
  std::string problem;
  // Other schemas holding a relation named like the source (or the target), ", "-joined: an
  // unqualified name then depends on the session's search_path.
  std::string source_homonyms;
  std::string target_homonyms;
  // A BEFORE UPDATE row trigger is enabled on the table (it may change the key).
  bool source_update_trigger = false;
  bool target_update_trigger = false;
  // Non-empty: row-level security differs between the tables (enabled, forced, owner or
  // policies), so a read moved to the target could see other rows; reads stay on the source.
  std::string rls_difference;
  bool operator==(const TableShape&) const = default;
};

struct Snapshot {
  uint64_t generation = 0;  // increases with every publication in this process
  std::vector<Migration> migrations;
  std::vector<SwitchConfig> switches;
  // By migration_id, for every migration whose phase is not preparation; resolved in the same
  // transaction as `migrations`.
  std::map<std::string, TableShape> shapes;
  std::chrono::system_clock::time_point loaded_at{};
  // The control database's name: a migration with an empty `database` has its tables there, and
  // only sessions of that database are rewritten for it ("" = any database: snapshots built
  // without a control plane, as in unit tests).
  std::string control_database;

  [[nodiscard]] const Migration* find_migration(std::string_view id) const noexcept;
  [[nodiscard]] const SwitchConfig* find_switch(std::string_view id) const noexcept;
  // nullptr for an unknown migration or one in preparation.
  [[nodiscard]] const TableShape* shape_for(std::string_view migration_id) const noexcept;
  // See the free functions below.
  [[nodiscard]] const SwitchConfig* switch_for(const Migration& m) const noexcept;
  [[nodiscard]] const Migration* migration_for(const SwitchConfig& s) const noexcept;
};

// The switch config governing reads of `m`: those linked by migration_id, or unlinked ones whose
// table_name names m's source table ("users" matches "public.users"); among several, the active
// one, else a paused one, else the first by config_id. nullptr when there is none.
[[nodiscard]] const SwitchConfig* switch_for(const std::vector<SwitchConfig>& switches,
                                             const Migration& m) noexcept;
// The migration a switch config belongs to: the one named by its migration_id, else the one whose
// source table is its table_name (preferring one in read_switch, then one not completed).
[[nodiscard]] const Migration* migration_for(const std::vector<Migration>& migrations,
                                             const SwitchConfig& s) noexcept;
// True when `s` belongs to `m` by the rules above (linked, or unlinked on m's source table).
[[nodiscard]] bool governs(const SwitchConfig& s, const Migration& m) noexcept;

using SnapshotPtr = std::shared_ptr<const Snapshot>;

// Where the latest snapshot is published. load() copies a shared_ptr out of an atomic one (a lock
// and a reference count increment); readers that look once per statement (the proxy's workers)
// compare generation() instead, a plain load, and load() only when it changed.
class SnapshotCell {
 public:
  SnapshotCell() { publish(std::make_shared<const Snapshot>()); }
  SnapshotCell(const SnapshotCell&) = delete;
  SnapshotCell& operator=(const SnapshotCell&) = delete;

  [[nodiscard]] SnapshotPtr load() const noexcept { return snap_.load(); }
  // The generation of the latest published snapshot, set once the snapshot can be loaded.
  [[nodiscard]] uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  // `next->generation` is greater than every one published before.
  void publish(SnapshotPtr next) noexcept {
    const uint64_t g = next->generation;
    snap_.store(std::move(next));
    generation_.store(g, std::memory_order_release);
  }

 private:
  std::atomic<SnapshotPtr> snap_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace pgphase::migration
