#include "router/routing_table.h"

#include <algorithm>
#include <boost/json.hpp>

namespace pgphase::router {
namespace {

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

TableName name_of(std::string_view qualified) {
  migration::QualifiedName q = migration::qualify(qualified);
  return {std::move(q.schema), std::move(q.table)};
}

WriteMode mode_for(migration::Phase p) noexcept {
  switch (p) {
    case migration::Phase::kPreparation:
      return WriteMode::kPass;
    case migration::Phase::kDualWrite:
    case migration::Phase::kValidation:
    case migration::Phase::kReadSwitch:
      return WriteMode::kMirrorTarget;
    case migration::Phase::kCleanup:
      return WriteMode::kMirrorSource;
    case migration::Phase::kCompleted:
      return WriteMode::kTargetOnly;
  }
  return WriteMode::kPass;
}

const migration::ColumnShape* find_column(const std::vector<migration::ColumnShape>& cols,
                                          std::string_view name) {
  for (const auto& c : cols) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Fills columns/key/problem of `r` from the catalog shape and the column map.
void compile_columns(MigrationRoute& r, const migration::Migration& m,
                     const migration::TableShape* shape) {
  for (const auto& [from, to] : m.column_map) {
    if (from != to) r.identity_map = false;
  }
  if (shape != nullptr) {
    r.homonyms = shape->source_homonyms;
    r.read_problem = shape->rls_difference;
    r.update_trigger = r.mode == WriteMode::kMirrorSource ? shape->target_update_trigger
                                                          : shape->source_update_trigger;
  }
  // completed: statements naming the source are only renamed to the target; the source may be
  // gone already, its shape does not matter.
  if (r.mode == WriteMode::kTargetOnly) return;
  if (shape == nullptr) {
    r.problem = "the shapes of " + m.source_table + " and " + m.target_table +
                " are not known yet (pgphase reads them from the control database's catalog)";
    return;
  }
  if (!shape->problem.empty()) {
    r.problem = shape->problem;
    return;
  }
  auto mapped = [&](const std::string& source_col) -> std::string {
    const auto it = m.column_map.find(source_col);
    return it == m.column_map.end() ? source_col : it->second;
  };
  const bool reversed = r.mode == WriteMode::kMirrorSource;
  for (const auto& sc : shape->source_columns) {
    const std::string tname = mapped(sc.name);
    if (tname.empty()) continue;  // dropped in the target
    const migration::ColumnShape* tc = find_column(shape->target_columns, tname);
    if (tc == nullptr && sc.generated) continue;  // computed on the source only
    if (tc == nullptr) {
      r.problem = "column " + sc.name + " of " + m.source_table + " has no column " + tname +
                  " in " + m.target_table + " (map or drop it in column_map)";
      return;
    }
    // The mirrored side computes generated columns itself.
    if (reversed ? sc.generated : tc->generated) continue;
    if (reversed) {
      r.columns.push_back({tname, sc.name});
    } else {
      r.columns.push_back({sc.name, tname});
    }
  }
  for (const auto& k : shape->key_columns) {
    const std::string tk = mapped(k);
    if (tk.empty()) {
      r.problem = "key column " + k + " is dropped by column_map";
      return;
    }
    if (reversed) {
      r.key.push_back({tk, k});
    } else {
      r.key.push_back({k, tk});
    }
  }
  if (r.key.empty()) {
    r.problem = m.source_table + " has no key (set key_columns or add a primary key)";
  } else if (r.mode == WriteMode::kMirrorTarget && !shape->target_has_unique_key) {
    r.problem = m.target_table + " has no unique index on the key columns, needed to apply " +
                "mirrored writes by key";
  } else if (r.mode == WriteMode::kMirrorSource && !shape->source_has_unique_key) {
    r.problem = m.source_table + " has no unique index on the key columns, needed to mirror " +
                "cleanup writes back to it";
  }
}

// The read side's picture of the target: each source column's target column and, where the
// types differ, the source's type to cast it to. Computed whenever both shapes are known (in
// completed too, as long as the source still exists).
void compile_read_shape(MigrationRoute& r, const migration::Migration& m,
                        const migration::TableShape* shape) {
  r.reshaped = !r.identity_map;
  if (shape == nullptr || shape->source_columns.empty() || shape->target_columns.empty()) {
    if (r.reshaped)
      r.reshape_problem =
          "the columns of " + m.source_table + " and " + m.target_table + " are not known";
    return;
  }
  const auto& src = shape->source_columns;
  const auto& dst = shape->target_columns;
  if (src.size() != dst.size()) r.reshaped = true;
  for (size_t i = 0; i < src.size(); ++i) {
    const auto& sc = src[i];
    const auto it = m.column_map.find(sc.name);
    const std::string to = it == m.column_map.end() ? sc.name : it->second;
    if (to.empty()) {
      if (r.reshape_problem.empty())
        r.reshape_problem = "column_map drops column " + sc.name + " of " + m.source_table;
      continue;
    }
    const migration::ColumnShape* tc = find_column(dst, to);
    if (tc == nullptr) {
      if (r.reshape_problem.empty())
        r.reshape_problem = "column " + sc.name + " of " + m.source_table + " has no column " + to +
                            " in " + m.target_table;
      continue;
    }
    const bool typed = !sc.type.empty() && !tc->type.empty();
    const bool other_type = typed && (sc.type != tc->type || sc.type_oid != tc->type_oid);
    if (other_type || i >= dst.size() || dst[i].name != to || to != sc.name) r.reshaped = true;
    r.read_columns.push_back({sc.name, to, other_type ? sc.type : std::string()});
  }
}

std::vector<std::string> strings_of(const boost::json::object& o, const char* key) {
  std::vector<std::string> out;
  const auto* v = o.if_contains(key);
  if (v == nullptr) return out;
  if (v->is_string()) {
    out.emplace_back(v->as_string());
  } else if (v->is_array()) {
    for (const auto& e : v->as_array()) {
      if (e.is_string()) out.emplace_back(e.as_string());
    }
  }
  return out;
}

// The read side of a route: cleanup and completed read the target; read_switch follows its
// switch config (active or paused: its percentage; otherwise the source).
void compile_reads(MigrationRoute& r, const migration::Snapshot& snapshot,
                   const migration::Migration& m) {
  if (m.phase == migration::Phase::kCleanup || m.phase == migration::Phase::kCompleted) {
    r.read_mode = ReadMode::kTarget;
    return;
  }
  if (m.phase != migration::Phase::kReadSwitch) return;
  const migration::SwitchConfig* s = snapshot.switch_for(m);
  if (s == nullptr) return;
  if (s->status != migration::SwitchStatus::kActive &&
      s->status != migration::SwitchStatus::kPaused)
    return;
  r.read_mode = ReadMode::kSwitch;
  ReadSwitch& rs = r.read_switch;
  rs.config_id = std::make_shared<const std::string>(s->config_id);
  rs.strategy = s->strategy;
  rs.percentage = s->switch_percentage;
  boost::system::error_code ec;
  const boost::json::value c = boost::json::parse(s->conditions_json, ec);
  if (!ec && c.is_object()) {
    const auto& o = c.as_object();
    const auto key = strings_of(o, "sticky_key");
    if (!key.empty() && key[0] == "application_name") rs.sticky_key = StickyKey::kApplicationName;
    if (!key.empty() && key[0] == "client_address") rs.sticky_key = StickyKey::kClientAddress;
    rs.canary_users = strings_of(o, "canary_users");
    rs.canary_applications = strings_of(o, "canary_application_names");
  }
}

}  // namespace

bool contains_ci(std::string_view haystack, std::string_view lower_needle) noexcept {
  if (lower_needle.empty()) return true;
  if (haystack.size() < lower_needle.size()) return false;
  const char first = lower_needle[0];
  const size_t last = haystack.size() - lower_needle.size();
  for (size_t i = 0; i <= last; ++i) {
    if (lower(haystack[i]) != first) continue;
    size_t j = 1;
    while (j < lower_needle.size() && lower(haystack[i + j]) == lower_needle[j]) ++j;
    if (j == lower_needle.size()) return true;
  }
  return false;
}

std::shared_ptr<const RoutingTable> RoutingTable::build(const migration::Snapshot& snapshot,
                                                        std::string_view database) {
  auto t = std::make_shared<RoutingTable>();
  t->generation_ = snapshot.generation;
  for (const auto& m : snapshot.migrations) {
    if (m.phase == migration::Phase::kPreparation) continue;
    const std::string& tables_in = m.database.empty() ? snapshot.control_database : m.database;
    if (!tables_in.empty() && tables_in != database) continue;  // another database's tables
    MigrationRoute r;
    r.migration_id = m.migration_id;
    try {
      r.source = name_of(m.source_table);
      r.target = name_of(m.target_table);
    } catch (const std::exception&) {
      continue;  // names are validated on registration; an invalid one routes nothing
    }
    r.phase = m.phase;
    r.consistency = m.consistency_level;
    r.unsupported_policy = migration::effective_unsupported_write_policy(m);
    r.mode = mode_for(m.phase);
    compile_columns(r, m, snapshot.shape_for(m.migration_id));
    compile_read_shape(r, m, snapshot.shape_for(m.migration_id));
    compile_reads(r, snapshot, m);
    std::string needle;
    for (char c : r.source.table) needle.push_back(lower(c));
    if (std::find(t->needles_.begin(), t->needles_.end(), needle) == t->needles_.end())
      t->needles_.push_back(std::move(needle));
    t->routes_.push_back(std::move(r));
  }
  if (!t->routes_.empty()) t->needles_.emplace_back("u&");  // U&"\0075sers" spells users
  return t;
}

bool RoutingTable::may_touch(std::string_view sql) const noexcept {
  for (const auto& n : needles_) {
    if (contains_ci(sql, n)) return true;
  }
  return false;
}

const MigrationRoute* RoutingTable::find_source(const TableName& name,
                                                bool* ambiguous) const noexcept {
  const MigrationRoute* found = nullptr;
  for (const auto& r : routes_) {
    if (r.source.table != name.table) continue;
    if (!name.schema.empty()) {
      if (r.source.schema == name.schema) return &r;
      continue;
    }
    if (found == nullptr) {
      found = &r;
    } else if (ambiguous != nullptr) {
      *ambiguous = true;
    }
  }
  return found;
}

}  // namespace pgphase::router
