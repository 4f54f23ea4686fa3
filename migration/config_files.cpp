#include "migration/config_files.h"

#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>

namespace pgphase::migration {
namespace json = boost::json;
namespace {

// Line and column (1-based) of byte offset `at` in `text`.
std::string position(std::string_view text, size_t at) {
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < at && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

json::value parse_json(const std::string& path, std::string_view text) {
  json::stream_parser p;
  boost::system::error_code ec;
  const size_t used = p.write(text.data(), text.size(), ec);
  if (!ec) p.finish(ec);
  if (ec) {
    throw ConfigFileError(path + ": invalid JSON at " + position(text, used) + ": " + ec.message());
  }
  return p.release();
}

const json::array& entries(const std::string& path, const json::value& v, const char* key) {
  if (!v.is_array()) throw ConfigFileError(path + ": \"" + key + "\" must be an array");
  return v.get_array();
}

// "migrations[2] (users_table_migration)" or "migrations[2]" when the id is unreadable.
std::string entry_name(const char* key, size_t index, const json::value& entry,
                       const char* id_key) {
  std::string out = std::string(key) + "[" + std::to_string(index) + "]";
  if (entry.is_object()) {
    if (const json::value* id = entry.get_object().if_contains(id_key); id && id->is_string()) {
      out += " (" + std::string(id->get_string()) + ")";
    }
  }
  return out;
}

}  // namespace

ConfigFile parse_config_file(const std::string& path, std::string_view text) {
  const json::value doc = parse_json(path, text);
  if (!doc.is_object()) throw ConfigFileError(path + ": expected a JSON object at the top level");
  ConfigFile out;
  out.path = path;
  bool recognised = false;
  for (const auto& kv : doc.get_object()) {
    const std::string key(kv.key());
    if (key == "migrations") {
      recognised = true;
      std::set<std::string> ids;
      const json::array& list = entries(path, kv.value(), "migrations");
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string name = entry_name("migrations", i, list[i], "migration_id");
        try {
          Migration m = migration_from_json(list[i]);
          validate_for_register(m);
          if (!ids.insert(m.migration_id).second) {
            throw ModelValueError("migration_id: \"" + m.migration_id +
                                  "\" appears more than once in this file");
          }
          out.migrations.push_back(std::move(m));
        } catch (const ModelError& e) {
          throw ConfigFileError(path + ": " + name + ": " + e.what());
        }
      }
    } else if (key == "switch_configs") {
      recognised = true;
      std::set<std::string> ids;
      const json::array& list = entries(path, kv.value(), "switch_configs");
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string name = entry_name("switch_configs", i, list[i], "config_id");
        try {
          SwitchConfig s = switch_from_json(list[i]);
          validate_for_register(s);
          if (!ids.insert(s.config_id).second) {
            throw ModelValueError("config_id: \"" + s.config_id +
                                  "\" appears more than once in this file");
          }
          out.switches.push_back(std::move(s));
        } catch (const ModelError& e) {
          throw ConfigFileError(path + ": " + name + ": " + e.what());
        }
      }
    } else if (key == "alert_rules" || key == "notification_configs") {
      recognised = true;
      out.skipped_keys.push_back(key);
    } else {
      throw ConfigFileError(path + ": unknown top-level key \"" + key +
                            "\" (expected migrations, switch_configs, alert_rules or "
                            "notification_configs)");
    }
  }
  if (!recognised) {
    throw ConfigFileError(path +
                          ": no migrations, switch_configs, alert_rules or notification_configs");
  }
  return out;
}

ConfigFile load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigFileError(path + ": cannot read the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigFileError(path + ": cannot read the file");
  return parse_config_file(path, text.str());
}

}  // namespace pgphase::migration
