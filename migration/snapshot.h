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
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace pgphase::migration
