// An immutable picture of all migration state, published atomically: readers (sessions, the admin
// API, metrics) take a shared_ptr and never see a half-applied change.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "migration/model.h"

namespace pgphase::migration {

struct Snapshot {
  uint64_t generation = 0;  // increases with every publication in this process
  std::vector<Migration> migrations;
  std::vector<SwitchConfig> switches;
  std::chrono::system_clock::time_point loaded_at{};

  [[nodiscard]] const Migration* find_migration(std::string_view id) const noexcept;
  [[nodiscard]] const SwitchConfig* find_switch(std::string_view id) const noexcept;
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

}  // namespace pgphase::migration
