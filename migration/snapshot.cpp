#include "migration/snapshot.h"

namespace pgphase::migration {
namespace {

bool same_table(std::string_view a, std::string_view b) noexcept {
  try {
    const QualifiedName qa = qualify(a);
    const QualifiedName qb = qualify(b);
    return qa.schema == qb.schema && qa.table == qb.table;
  } catch (...) {
    return false;  // names are validated on the way in; an invalid one matches nothing
  }
}

}  // namespace

const Migration* Snapshot::find_migration(std::string_view id) const noexcept {
  for (const auto& m : migrations) {
    if (m.migration_id == id) return &m;
  }
  return nullptr;
}

const SwitchConfig* Snapshot::find_switch(std::string_view id) const noexcept {
  for (const auto& s : switches) {
    if (s.config_id == id) return &s;
  }
  return nullptr;
}

const TableShape* Snapshot::shape_for(std::string_view migration_id) const noexcept {
  for (const auto& [id, shape] : shapes) {  // no allocation (noexcept); a handful of entries
    if (id == migration_id) return &shape;
  }
  return nullptr;
}

const SwitchConfig* Snapshot::switch_for(const Migration& m) const noexcept {
  return migration::switch_for(switches, m);
}

const Migration* Snapshot::migration_for(const SwitchConfig& s) const noexcept {
  return migration::migration_for(migrations, s);
}

bool governs(const SwitchConfig& s, const Migration& m) noexcept {
  if (!s.migration_id.empty()) return s.migration_id == m.migration_id;
  return same_table(s.table_name, m.source_table);
}

const SwitchConfig* switch_for(const std::vector<SwitchConfig>& switches,
                               const Migration& m) noexcept {
  const SwitchConfig* first = nullptr;
  const SwitchConfig* paused = nullptr;
  for (const auto& s : switches) {
    if (!governs(s, m)) continue;
    if (s.status == SwitchStatus::kActive) return &s;
    if (s.status == SwitchStatus::kPaused && paused == nullptr) paused = &s;
    if (first == nullptr || s.config_id < first->config_id) first = &s;
  }
  return paused != nullptr ? paused : first;
}

const Migration* migration_for(const std::vector<Migration>& migrations,
                               const SwitchConfig& s) noexcept {
  if (!s.migration_id.empty()) {
    for (const auto& m : migrations) {
      if (m.migration_id == s.migration_id) return &m;
    }
    return nullptr;
  }
  const Migration* best = nullptr;
  auto rank = [](const Migration& m) {
    if (m.phase == Phase::kReadSwitch) return 0;
    return m.phase == Phase::kCompleted ? 2 : 1;
  };
  for (const auto& m : migrations) {
    if (!same_table(s.table_name, m.source_table)) continue;
    if (best == nullptr || rank(m) < rank(*best)) best = &m;
  }
  return best;
}

}  // namespace pgphase::migration
