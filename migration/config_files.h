// The operations manual's JSON files, loaded unchanged: migration_configs.json ("migrations"),
// read_switch_configs.json ("switch_configs") and alerting_config.json ("alert_rules",
// "notification_configs": the alerting subsystem's, recognised here and skipped). Parsing only;
// ControlPlane registers what does not exist yet and never overrides the database's state.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "migration/model.h"

namespace pgphase::migration {

// A file that cannot be read, is not JSON, or holds an invalid entry. The message names the file
// and the entry ("conf/x.json: migrations[0] (users_table_migration): auto_switch_threshold: ...").
struct ConfigFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ConfigFile {
  std::string path;
  std::vector<Migration> migrations;  // each passed validate_for_register()
  std::vector<SwitchConfig> switches;
  std::vector<std::string> skipped_keys;  // recognised top-level keys handled elsewhere
};

// Reads and parses one file; throws ConfigFileError.
[[nodiscard]] ConfigFile load_config_file(const std::string& path);
// Parses `text` as the content of `path` (for messages); throws ConfigFileError.
[[nodiscard]] ConfigFile parse_config_file(const std::string& path, std::string_view text);

}  // namespace pgphase::migration
