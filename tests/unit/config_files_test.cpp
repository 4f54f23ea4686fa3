#include "migration/config_files.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <string>

namespace pgphase::migration {
namespace {

const std::string kConf = std::string(PGPHASE_SOURCE_DIR) + "/conf/";

std::string error_of(const std::string& text) {
  try {
    (void)parse_config_file("x.json", text);
  } catch (const ConfigFileError& e) {
    return e.what();
  }
  FAIL("no ConfigFileError for " << text);
  return {};
}

}  // namespace

TEST_CASE("conf/migration_configs.json (the manual's) registers one migration", "[config]") {
  const ConfigFile f = load_config_file(kConf + "migration_configs.json");
  CHECK(f.path == kConf + "migration_configs.json");
  REQUIRE(f.migrations.size() == 1);
  CHECK(f.switches.empty());
  CHECK(f.skipped_keys.empty());
  const Migration& m = f.migrations[0];
  CHECK(m.migration_id == "users_table_migration");
  CHECK(m.source_table == "users");
  CHECK(m.target_table == "t_sys_users");
  CHECK(m.phase == Phase::kPreparation);
  CHECK(m.auto_switch_threshold == 0.99);
}

TEST_CASE("conf/read_switch_configs.json (the manual's) registers one switch", "[config]") {
  const ConfigFile f = load_config_file(kConf + "read_switch_configs.json");
  CHECK(f.migrations.empty());
  REQUIRE(f.switches.size() == 1);
  const SwitchConfig& s = f.switches[0];
  CHECK(s.config_id == "users_gradual_switch");
  CHECK(s.table_name == "users");
  CHECK(s.strategy == SwitchStrategy::kGradual);
  CHECK(s.switch_percentage == 0.0);
  CHECK(s.status == SwitchStatus::kInactive);
  CHECK(boost::json::parse(s.conditions_json).as_object().at("latency_threshold").as_int64() ==
        100);
}

TEST_CASE("conf/alerting_config.json (the manual's) is recognised and skipped", "[config]") {
  const ConfigFile f = load_config_file(kConf + "alerting_config.json");
  CHECK(f.migrations.empty());
  CHECK(f.switches.empty());
  CHECK(f.skipped_keys == std::vector<std::string>{"alert_rules", "notification_configs"});
}

TEST_CASE("a file can hold migrations and switch configs together", "[config]") {
  const ConfigFile f = parse_config_file("both.json", R"({
    "migrations": [{"migration_id": "a", "source_table": "s1", "target_table": "t1"},
                   {"migration_id": "b", "source_table": "s2", "target_table": "t2"}],
    "switch_configs": [{"config_id": "sa", "table_name": "s1"}]})");
  CHECK(f.migrations.size() == 2);
  CHECK(f.switches.size() == 1);
  CHECK(f.switches[0].strategy == SwitchStrategy::kGradual);
}

TEST_CASE("bad JSON names the file and the position", "[config]") {
  const std::string msg = error_of("{\n  \"migrations\": [\n    {\"migration_id\": }\n  ]\n}");
  CHECK_THAT(msg, Catch::StartsWith("x.json: invalid JSON at line 3"));
  CHECK_THAT(error_of("{\"migrations\": []} trailing"), Catch::Contains("invalid JSON"));
  CHECK_THAT(error_of(""), Catch::Contains("invalid JSON"));
  CHECK_THAT(error_of("{\"migrations\": [],}"), Catch::Contains("invalid JSON"));
}

TEST_CASE("invalid entries name the file, the entry and the key", "[config]") {
  CHECK(error_of(R"({"migrations": [
      {"migration_id": "ok", "source_table": "a", "target_table": "b"},
      {"migration_id": "users_table_migration", "source_table": "users",
       "target_table": "t_sys_users", "auto_switch_threshold": 1.5}]})") ==
        "x.json: migrations[1] (users_table_migration): auto_switch_threshold: 1.5 is outside "
        "0..1");
  CHECK_THAT(error_of(R"({"migrations": [{"migration_id": "m", "source_table": "a",
                          "target_table": "b", "colour": "red"}]})"),
             Catch::StartsWith("x.json: migrations[0] (m): unknown key \"colour\""));
  CHECK_THAT(error_of(R"({"switch_configs": [{"config_id": "s", "table_name": "users",
                          "switch_percentage": "10"}]})"),
             Catch::StartsWith("x.json: switch_configs[0] (s): switch_percentage: expected a "
                               "number"));
  CHECK_THAT(error_of(R"({"switch_configs": [{"table_name": "users"}]})"),
             Catch::StartsWith("x.json: switch_configs[0]: config_id: required"));
  CHECK_THAT(error_of(R"({"migrations": [{"migration_id": "m", "source_table": "a",
                          "target_table": "b", "phase": "dual_write",
                          "dual_write_enabled": true}]})"),
             Catch::Contains("migrations[0] (m): phase: a migration is registered in preparation"));
  CHECK_THAT(error_of(R"({"switch_configs": [{"config_id": "s", "table_name": "users",
                          "status": "active"}]})"),
             Catch::Contains("switch_configs[0] (s): status"));
  CHECK_THAT(error_of(R"({"migrations": [
      {"migration_id": "m", "source_table": "a", "target_table": "b"},
      {"migration_id": "m", "source_table": "c", "target_table": "d"}]})"),
             Catch::Contains("migrations[1] (m): migration_id: \"m\" appears more than once"));
}

TEST_CASE("the file's shape is checked", "[config]") {
  CHECK_THAT(error_of("[]"), Catch::Contains("expected a JSON object at the top level"));
  CHECK_THAT(error_of("{}"), Catch::Contains("no migrations, switch_configs"));
  CHECK_THAT(error_of(R"({"migrations": {}})"), Catch::Contains("\"migrations\" must be an array"));
  CHECK_THAT(error_of(R"({"migrations": [], "servers": []})"),
             Catch::Contains("unknown top-level key \"servers\""));
  CHECK_THAT(error_of(R"({"migrations": [5]})"),
             Catch::Contains("migrations[0]: migration: expected a JSON object"));
}

TEST_CASE("an unreadable file is an error naming it", "[config]") {
  try {
    (void)load_config_file(kConf + "does_not_exist.json");
    FAIL("no error");
  } catch (const ConfigFileError& e) {
    CHECK_THAT(e.what(), Catch::Contains("does_not_exist.json: cannot read the file"));
  }
}

}  // namespace pgphase::migration
