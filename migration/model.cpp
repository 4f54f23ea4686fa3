#include "migration/model.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <sstream>

#include "migration/phase_machine.h"

namespace pgphase::migration {
namespace json = boost::json;

// ---- enums ---------------------------------------------------------------------------------

namespace {

template <class E, size_t N>
std::optional<E> lookup(const std::pair<E, std::string_view> (&table)[N], std::string_view s) {
  for (const auto& [value, name] : table) {
    if (name == s) return value;
  }
  return std::nullopt;
}

template <class E, size_t N>
std::string_view name_of(const std::pair<E, std::string_view> (&table)[N], E e) {
  for (const auto& [value, name] : table) {
    if (value == e) return name;
  }
  return "?";
}

template <class E, size_t N>
std::string names_of(const std::pair<E, std::string_view> (&table)[N]) {
  std::string out;
  for (const auto& entry : table) {
    if (!out.empty()) out += ", ";
    out += entry.second;
  }
  return out;
}

constexpr std::pair<Phase, std::string_view> kPhaseNames[] = {
    {Phase::kPreparation, "preparation"}, {Phase::kDualWrite, "dual_write"},
    {Phase::kValidation, "validation"},   {Phase::kReadSwitch, "read_switch"},
    {Phase::kCleanup, "cleanup"},         {Phase::kCompleted, "completed"}};
constexpr std::pair<ConsistencyLevel, std::string_view> kLevelNames[] = {
    {ConsistencyLevel::kStrict, "strict"}, {ConsistencyLevel::kEventual, "eventual"}};
constexpr std::pair<SwitchStrategy, std::string_view> kStrategyNames[] = {
    {SwitchStrategy::kImmediate, "immediate"},
    {SwitchStrategy::kGradual, "gradual"},
    {SwitchStrategy::kSticky, "sticky"},
    {SwitchStrategy::kCanary, "canary"},
    {SwitchStrategy::kShadow, "shadow"}};
constexpr std::pair<SwitchStatus, std::string_view> kStatusNames[] = {
    {SwitchStatus::kInactive, "inactive"},
    {SwitchStatus::kActive, "active"},
    {SwitchStatus::kPaused, "paused"},
    {SwitchStatus::kCompleted, "completed"},
    {SwitchStatus::kRolledBack, "rolled_back"}};
constexpr std::pair<UnsupportedWritePolicy, std::string_view> kPolicyNames[] = {
    {UnsupportedWritePolicy::kReject, "reject"},
    {UnsupportedWritePolicy::kAllowAndFlag, "allow_and_flag"}};

}  // namespace

std::string_view to_string(Phase p) noexcept {
  return name_of(kPhaseNames, p);
}
std::optional<Phase> parse_phase(std::string_view s) noexcept {
  return lookup(kPhaseNames, s);
}
std::string_view to_string(ConsistencyLevel c) noexcept {
  return name_of(kLevelNames, c);
}
std::optional<ConsistencyLevel> parse_consistency_level(std::string_view s) noexcept {
  return lookup(kLevelNames, s);
}
std::string_view to_string(SwitchStrategy s) noexcept {
  return name_of(kStrategyNames, s);
}
std::optional<SwitchStrategy> parse_switch_strategy(std::string_view s) noexcept {
  return lookup(kStrategyNames, s);
}
std::string_view to_string(SwitchStatus s) noexcept {
  return name_of(kStatusNames, s);
}
std::optional<SwitchStatus> parse_switch_status(std::string_view s) noexcept {
  return lookup(kStatusNames, s);
}
std::string_view to_string(UnsupportedWritePolicy p) noexcept {
  return name_of(kPolicyNames, p);
}
std::optional<UnsupportedWritePolicy> parse_unsupported_write_policy(std::string_view s) noexcept {
  return lookup(kPolicyNames, s);
}

UnsupportedWritePolicy effective_unsupported_write_policy(const Migration& m) noexcept {
  if (m.unsupported_write_policy) return *m.unsupported_write_policy;
  return m.consistency_level == ConsistencyLevel::kEventual ? UnsupportedWritePolicy::kAllowAndFlag
                                                            : UnsupportedWritePolicy::kReject;
}

// ---- JSON reading --------------------------------------------------------------------------

namespace {

const char* kind_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "?";
}

ModelError type_error(std::string_view key, const char* expected, const json::value& got) {
  return ModelError(std::string(key) + ": expected " + expected + ", got " + kind_of(got));
}

// The keys of one JSON object, read with type checks; unknown keys are refused.
class Reader {
 public:
  Reader(const json::value& v, std::string_view what, std::initializer_list<std::string_view> known)
      : what_(what) {
    if (!v.is_object()) throw ModelError(std::string(what) + ": expected a JSON object");
    obj_ = &v.get_object();
    for (const auto& kv : *obj_) {
      if (std::find(known.begin(), known.end(), kv.key()) != known.end()) continue;
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw ModelError("unknown key \"" + std::string(kv.key()) + "\" in " + std::string(what) +
                       " (known keys: " + list + ")");
    }
  }

  [[nodiscard]] const json::value* find(std::string_view key) const {
    return obj_->if_contains(key);
  }

  void required(std::string_view key) const {
    if (find(key) == nullptr) {
      throw ModelError(std::string(key) + ": required in " + std::string(what_));
    }
  }

  void str(std::string_view key, std::string& out) const {
    if (const json::value* v = find(key)) {
      if (!v->is_string()) throw type_error(key, "a string", *v);
      out = std::string(v->get_string());
    }
  }

  void boolean(std::string_view key, bool& out) const {
    if (const json::value* v = find(key)) {
      if (!v->is_bool()) throw type_error(key, "true or false", *v);
      out = v->get_bool();
    }
  }

  void number(std::string_view key, double& out) const {
    if (const json::value* v = find(key)) {
      if (v->is_double()) {
        out = v->get_double();
      } else if (v->is_int64()) {
        out = static_cast<double>(v->get_int64());
      } else if (v->is_uint64()) {
        out = static_cast<double>(v->get_uint64());
      } else {
        throw type_error(key, "a number", *v);
      }
    }
  }

  void integer(std::string_view key, int64_t& out) const {
    if (const json::value* v = find(key)) {
      if (v->is_int64()) {
        out = v->get_int64();
      } else if (v->is_uint64() &&
                 v->get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        out = static_cast<int64_t>(v->get_uint64());
      } else {
        throw type_error(key, "an integer", *v);
      }
    }
  }

  template <class E>
  void enumeration(std::string_view key, E& out, std::optional<E> (*parse)(std::string_view),
                   const std::string& allowed) const {
    if (const json::value* v = find(key)) {
      if (!v->is_string()) throw type_error(key, "a string", *v);
      const auto parsed = parse(v->get_string());
      if (!parsed) {
        throw ModelValueError(std::string(key) + ": \"" + std::string(v->get_string()) +
                              "\" is not one of " + allowed);
      }
      out = *parsed;
    }
  }

 private:
  std::string_view what_;
  const json::object* obj_ = nullptr;
};

}  // namespace

Migration migration_from_json(const json::value& v) {
  const Reader r(v, "migration",
                 {"migration_id", "source_table", "target_table", "database", "phase",
                  "consistency_level", "dual_write_enabled", "read_from_target",
                  "validation_enabled", "auto_switch_threshold", "rollback_enabled", "key_columns",
                  "column_map", "unsupported_write_policy", "version", "created_at", "updated_at"});
  for (const char* key : {"migration_id", "source_table", "target_table"}) r.required(key);
  Migration m;
  r.str("migration_id", m.migration_id);
  r.str("source_table", m.source_table);
  r.str("target_table", m.target_table);
  r.str("database", m.database);
  r.enumeration("phase", m.phase, &parse_phase, names_of(kPhaseNames));
  r.enumeration("consistency_level", m.consistency_level, &parse_consistency_level,
                names_of(kLevelNames));
  r.boolean("dual_write_enabled", m.dual_write_enabled);
  r.boolean("read_from_target", m.read_from_target);
  r.boolean("validation_enabled", m.validation_enabled);
  r.number("auto_switch_threshold", m.auto_switch_threshold);
  r.boolean("rollback_enabled", m.rollback_enabled);
  if (const json::value* keys = r.find("key_columns")) {
    if (!keys->is_array()) throw type_error("key_columns", "an array of strings", *keys);
    for (const json::value& k : keys->get_array()) {
      if (!k.is_string()) throw type_error("key_columns[]", "a string", k);
      m.key_columns.emplace_back(k.get_string());
    }
  }
  if (const json::value* map = r.find("column_map")) {
    if (!map->is_object()) throw type_error("column_map", "an object of strings", *map);
    for (const auto& kv : map->get_object()) {
      if (!kv.value().is_string()) {
        throw type_error("column_map." + std::string(kv.key()), "a string", kv.value());
      }
      m.column_map.emplace(std::string(kv.key()), std::string(kv.value().get_string()));
    }
  }
  if (r.find("unsupported_write_policy") != nullptr) {
    UnsupportedWritePolicy policy{};
    r.enumeration("unsupported_write_policy", policy, &parse_unsupported_write_policy,
                  names_of(kPolicyNames));
    m.unsupported_write_policy = policy;
  }
  r.integer("version", m.version);
  r.str("created_at", m.created_at);
  r.str("updated_at", m.updated_at);
  validate(m);
  return m;
}

json::object to_json(const Migration& m) {
  json::object o;
  o["migration_id"] = m.migration_id;
  o["source_table"] = m.source_table;
  o["target_table"] = m.target_table;
  o["database"] = m.database;
  o["phase"] = to_string(m.phase);
  o["consistency_level"] = to_string(m.consistency_level);
  o["dual_write_enabled"] = m.dual_write_enabled;
  o["read_from_target"] = m.read_from_target;
  o["validation_enabled"] = m.validation_enabled;
  o["auto_switch_threshold"] = m.auto_switch_threshold;
  o["rollback_enabled"] = m.rollback_enabled;
  json::array keys;
  for (const auto& k : m.key_columns) keys.emplace_back(k);
  o["key_columns"] = std::move(keys);
  json::object map;
  for (const auto& [from, to] : m.column_map) map[from] = to;
  o["column_map"] = std::move(map);
  o["unsupported_write_policy"] = to_string(effective_unsupported_write_policy(m));
  o["version"] = m.version;
  o["created_at"] = m.created_at;
  o["updated_at"] = m.updated_at;
  return o;
}

SwitchConfig switch_from_json(const json::value& v) {
  const Reader r(v, "switch config",
                 {"config_id", "table_name", "migration_id", "current_source", "target_source",
                  "strategy", "switch_percentage", "conditions", "rollback_enabled",
                  "auto_rollback_threshold", "status", "version", "created_at", "updated_at"});
  for (const char* key : {"config_id", "table_name"}) r.required(key);
  SwitchConfig s;
  r.str("config_id", s.config_id);
  r.str("table_name", s.table_name);
  r.str("migration_id", s.migration_id);
  r.str("current_source", s.current_source);
  r.str("target_source", s.target_source);
  r.enumeration("strategy", s.strategy, &parse_switch_strategy, names_of(kStrategyNames));
  r.number("switch_percentage", s.switch_percentage);
  if (const json::value* c = r.find("conditions")) {
    if (!c->is_object()) throw type_error("conditions", "an object", *c);
    s.conditions_json = json::serialize(*c);
  }
  r.boolean("rollback_enabled", s.rollback_enabled);
  r.number("auto_rollback_threshold", s.auto_rollback_threshold);
  r.enumeration("status", s.status, &parse_switch_status, names_of(kStatusNames));
  r.integer("version", s.version);
  r.str("created_at", s.created_at);
  r.str("updated_at", s.updated_at);
  validate(s);
  return s;
}

json::object to_json(const SwitchConfig& s) {
  json::object o;
  o["config_id"] = s.config_id;
  o["table_name"] = s.table_name;
  o["migration_id"] = s.migration_id;
  o["current_source"] = s.current_source;
  o["target_source"] = s.target_source;
  o["strategy"] = to_string(s.strategy);
  o["switch_percentage"] = s.switch_percentage;
  boost::system::error_code ec;
  json::value conditions = json::parse(s.conditions_json, ec);
  if (ec || !conditions.is_object()) conditions = json::object();  // validate() prevents this
  o["conditions"] = std::move(conditions);
  o["rollback_enabled"] = s.rollback_enabled;
  o["auto_rollback_threshold"] = s.auto_rollback_threshold;
  o["status"] = to_string(s.status);
  o["version"] = s.version;
  o["created_at"] = s.created_at;
  o["updated_at"] = s.updated_at;
  return o;
}

// ---- names and validation ------------------------------------------------------------------

namespace {

constexpr size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1
constexpr size_t kMaxIdBytes = 128;

bool ident_start(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
bool ident_char(unsigned char c) {
  return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

ModelValueError name_error(std::string_view what, std::string_view name, std::string_view why) {
  return ModelValueError(std::string(what) + ": \"" + std::string(name) + "\" " + std::string(why));
}

// Reads one identifier at `pos` (quoted or not); returns it folded/unescaped.
std::string read_identifier(std::string_view what, std::string_view name, size_t& pos) {
  std::string out;
  if (pos < name.size() && name[pos] == '"') {
    ++pos;
    for (;;) {
      if (pos >= name.size()) throw name_error(what, name, "has an unterminated quoted identifier");
      if (name[pos] == '"') {
        if (pos + 1 < name.size() && name[pos + 1] == '"') {
          out += '"';
          pos += 2;
          continue;
        }
        ++pos;
        break;
      }
      if (name[pos] == '\0') throw name_error(what, name, "contains a NUL byte");
      out += name[pos++];
    }
    if (out.empty()) throw name_error(what, name, "has an empty quoted identifier");
  } else {
    const size_t start = pos;
    while (pos < name.size() && name[pos] != '.') {
      const auto c = static_cast<unsigned char>(name[pos]);
      const bool ok = pos == start ? ident_start(c) : ident_char(c);
      if (!ok) {
        throw name_error(what, name,
                         "is not a valid identifier (letters, digits, _ and $, not starting "
                         "with a digit; quote other names: \"My Table\")");
      }
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
      ++pos;
    }
    if (out.empty()) throw name_error(what, name, "has an empty identifier");
  }
  if (out.size() > kMaxIdentifierBytes) {
    throw name_error(what, name, "has an identifier longer than 63 bytes");
  }
  return out;
}

QualifiedName parse_name(std::string_view what, std::string_view name) {
  if (name.empty()) throw ModelValueError(std::string(what) + ": must not be empty");
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    parts.push_back(read_identifier(what, name, pos));
    if (pos == name.size()) break;
    if (name[pos] != '.' || parts.size() == 2) {
      throw name_error(what, name, "is not a table name (table or schema.table)");
    }
    ++pos;
  }
  if (parts.size() == 1) return {"public", parts[0]};
  return {parts[0], parts[1]};
}

void check_column(std::string_view what, std::string_view name) {
  size_t pos = 0;
  (void)read_identifier(what, name, pos);
  if (pos != name.size()) throw name_error(what, name, "is not a single column name");
}

void check_id(std::string_view what, std::string_view id) {
  if (id.empty()) throw ModelValueError(std::string(what) + ": must not be empty");
  if (id.size() > kMaxIdBytes) {
    throw ModelValueError(std::string(what) + ": longer than 128 characters");
  }
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      throw ModelValueError(std::string(what) + ": \"" + std::string(id) +
                            "\" may contain only letters, digits, '_', '.' and '-'");
    }
  }
}

void check_range(std::string_view what, double v, double lo, double hi) {
  if (!std::isfinite(v) || v < lo || v > hi) {
    std::ostringstream out;
    out << what << ": " << v << " is outside " << lo << ".." << hi;
    throw ModelValueError(out.str());
  }
}

bool same_table(std::string_view a, std::string_view b) {
  const QualifiedName qa = qualify(a);
  const QualifiedName qb = qualify(b);
  return qa.schema == qb.schema && qa.table == qb.table;
}

}  // namespace

QualifiedName qualify(std::string_view name) {
  return parse_name("table name", name);
}

std::string column_name(std::string_view name) {
  size_t pos = 0;
  std::string out = read_identifier("column name", name, pos);
  if (pos != name.size()) throw name_error("column name", name, "is not a single column name");
  return out;
}

void validate(const Migration& m) {
  check_id("migration_id", m.migration_id);
  (void)parse_name("source_table", m.source_table);
  (void)parse_name("target_table", m.target_table);
  if (same_table(m.source_table, m.target_table)) {
    throw ModelValueError("target_table: \"" + m.target_table +
                          "\" is the same table as source_table \"" + m.source_table + "\"");
  }
  if (m.database.size() > kMaxIdentifierBytes || m.database.find('\0') != std::string::npos) {
    throw ModelValueError("database: not a valid database name");
  }
  check_range("auto_switch_threshold", m.auto_switch_threshold, 0.0, 1.0);
  for (const auto& k : m.key_columns) check_column("key_columns", k);
  for (const auto& [from, to] : m.column_map) {
    check_column("column_map", from);
    if (!to.empty()) check_column("column_map." + from, to);
  }
  const PhaseFlags implied = flags_for(m.phase);
  if (m.read_from_target != implied.read_from_target) {
    throw ModelValueError(std::string("read_from_target: ") +
                          (m.read_from_target ? "true" : "false") + " disagrees with phase " +
                          std::string(to_string(m.phase)) + " (which reads from the " +
                          (implied.read_from_target ? "target" : "source") + ")");
  }
  if (m.dual_write_enabled && !implied.dual_write_enabled) {
    throw ModelValueError("dual_write_enabled: true disagrees with phase " +
                          std::string(to_string(m.phase)) +
                          " (dual writes happen from dual_write to cleanup)");
  }
}

void validate(const SwitchConfig& s) {
  check_id("config_id", s.config_id);
  (void)parse_name("table_name", s.table_name);
  if (!s.migration_id.empty()) check_id("migration_id", s.migration_id);
  for (const auto& [key, value] :
       {std::pair<const char*, const std::string*>{"current_source", &s.current_source},
        {"target_source", &s.target_source}}) {
    if (*value != "source" && *value != "target") {
      throw ModelValueError(std::string(key) + ": \"" + *value + "\" is not one of source, target");
    }
  }
  if (s.current_source == s.target_source) {
    throw ModelValueError("target_source: must differ from current_source (\"" + s.current_source +
                          "\")");
  }
  check_range("switch_percentage", s.switch_percentage, 0.0, 100.0);
  check_range("auto_rollback_threshold", s.auto_rollback_threshold, 0.0, 1.0);

  boost::system::error_code ec;
  const json::value conditions = json::parse(s.conditions_json, ec);
  if (ec || !conditions.is_object()) throw ModelValueError("conditions: expected a JSON object");
  // The manual's conditions; other keys are kept as given for later features.
  for (const auto& [key, hi] : {std::pair<const char*, double>{"consistency_threshold", 1.0},
                                {"error_rate_threshold", 1.0},
                                {"latency_threshold", std::numeric_limits<double>::max()}}) {
    const json::value* v = conditions.get_object().if_contains(key);
    if (v == nullptr) continue;
    if (!v->is_number()) {
      throw ModelValueError(std::string("conditions.") + key + ": expected a number, got " +
                            kind_of(*v));
    }
    check_range(std::string("conditions.") + key, v->to_number<double>(), 0.0, hi);
  }
}

void validate_for_register(const Migration& m) {
  validate(m);
  if (m.phase != Phase::kPreparation) {
    throw ModelValueError("phase: a migration is registered in preparation, not " +
                          std::string(to_string(m.phase)) +
                          "; later phases are reached with set-phase");
  }
}

void validate_for_register(const SwitchConfig& s) {
  validate(s);
  if (s.status != SwitchStatus::kInactive) {
    throw ModelValueError("status: a switch config is registered inactive, not " +
                          std::string(to_string(s.status)) + "; use activate afterwards");
  }
}

}  // namespace pgphase::migration
