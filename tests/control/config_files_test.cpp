// The manual's three JSON files (shipped in conf/) load unchanged with --config-file: the
// migration and the switch config exist with the manual's values; a restart with the same files
// after a change through the API keeps the newer state and logs that it skipped the files' ones.
#include <catch2/catch.hpp>
#include <sstream>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

const std::string kConf = std::string(PGPHASE_SOURCE_DIR) + "/conf/";

// The manual's examples ("配置文件示例"), verbatim.
constexpr const char* kManualMigrations = R"({
  "migrations": [
    {
      "migration_id": "users_table_migration",
      "source_table": "users",
      "target_table": "t_sys_users",
      "phase": "preparation",
      "consistency_level": "strict",
      "dual_write_enabled": false,
      "read_from_target": false,
      "validation_enabled": true,
      "auto_switch_threshold": 0.99,
      "rollback_enabled": true
    }
  ]
})";

constexpr const char* kManualSwitches = R"({
  "switch_configs": [
    {
      "config_id": "users_gradual_switch",
      "table_name": "users",
      "current_source": "source",
      "target_source": "target",
      "strategy": "gradual",
      "switch_percentage": 0.0,
      "conditions": {
        "consistency_threshold": 0.99,
        "error_rate_threshold": 0.01,
        "latency_threshold": 100
      },
      "rollback_enabled": true,
      "auto_rollback_threshold": 0.05,
      "status": "inactive"
    }
  ]
})";

ServeOptions with_files(const it::PgCluster& pg) {
  ServeOptions o = serve_on(pg);
  o.config_files = {kConf + "migration_configs.json", kConf + "read_switch_configs.json",
                    kConf + "alerting_config.json"};
  return o;
}

}  // namespace

TEST_CASE("conf/ ships the manual's JSON files unchanged") {
  CHECK(parse_json(it::read_file(kConf + "migration_configs.json")) ==
        parse_json(kManualMigrations));
  CHECK(parse_json(it::read_file(kConf + "read_switch_configs.json")) ==
        parse_json(kManualSwitches));
  const json::value alerting = parse_json(it::read_file(kConf + "alerting_config.json"));
  const json::object& a = alerting.as_object();
  CHECK(str(arr(a, "alert_rules").at(0).as_object(), "rule_id") == "migration_failure_rule");
  CHECK(str(arr(a, "notification_configs").at(0).as_object(), "channel") == "email");
}

TEST_CASE("the manual's files register users_table_migration and users_gradual_switch") {
  const auto pg = start_cluster();
  auto first = start_pgphase(with_files(*pg));
  const Api api = api_for(*first);

  const json::object m = get_migration(api, "users_table_migration");
  const json::value manual_m = parse_json(kManualMigrations);
  const json::object& want_m = manual_m.at("migrations").at(0).as_object();
  for (const auto& [key, value] : want_m) {
    INFO("migration field " << key << ": " << json::serialize(m));
    REQUIRE(m.contains(key));
    if (value.is_number()) {
      CHECK(as_number(m.at(key)) == Approx(as_number(value)));
    } else {
      CHECK(m.at(key) == value);
    }
  }
  const json::object s = get_switch(api, "users_gradual_switch");
  const json::value manual_s = parse_json(kManualSwitches);
  const json::object& want_s = manual_s.at("switch_configs").at(0).as_object();
  for (const auto& [key, value] : want_s) {
    INFO("switch field " << key << ": " << json::serialize(s));
    REQUIRE(s.contains(key));
    if (value.is_number()) {
      CHECK(as_number(s.at(key)) == Approx(as_number(value)));
    } else if (value.is_object()) {
      for (const auto& [ck, cv] : value.as_object()) {
        INFO("conditions." << ck);
        REQUIRE(s.at(key).as_object().contains(ck));
        CHECK(as_number(s.at(key).as_object().at(ck)) == Approx(as_number(cv)));
      }
    } else {
      CHECK(s.at(key) == value);
    }
  }

  // A change through the API, then a restart with the same files: the newer state stays.
  (void)set_phase(api, "users_table_migration", "dual_write");
  const json::object changed = get_migration(api, "users_table_migration");
  stop_pgphase(*first);
  first.reset();

  const auto second = start_pgphase(with_files(*pg));
  const Api again = api_for(*second);
  const json::object kept = get_migration(again, "users_table_migration");
  CHECK(str(kept, "phase") == "dual_write");
  CHECK(flag(kept, "dual_write_enabled"));
  CHECK(num(kept, "version") == num(changed, "version"));
  CHECK(str(kept, "updated_at") == str(changed, "updated_at"));
  CHECK(num(get_switch(again, "users_gradual_switch"), "version") == num(s, "version"));
  const json::value list = parse_json(again.get("/api/v1/migrations").body);
  CHECK(list.as_object().at("migrations").as_array().size() == 1);

  const std::string log = second->stderr_text();
  INFO("pgphase stderr:\n" << it::tail_lines(log, 60));
  bool skipped_migration = false, skipped_switch = false;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    // "skipped ..." or "... already exists ...; kept the database state": either says the file's
    // entry was not applied.
    if (!it::icontains(line, "skip") && !it::icontains(line, "kept")) continue;
    skipped_migration = skipped_migration || it::contains(line, "users_table_migration");
    skipped_switch = skipped_switch || it::contains(line, "users_gradual_switch");
  }
  CHECK(skipped_migration);
  CHECK(skipped_switch);
}

TEST_CASE("a --config-file that cannot be read stops pgphase at start, naming the file") {
  const auto pg = start_cluster();
  const std::string missing = kConf + "no_such_file.json";
  const it::RunResult r = it::ProxyProcess::run_cli(
      {"serve", "--listen", "127.0.0.1:" + std::to_string(it::free_port()), "--admin",
       "127.0.0.1:" + std::to_string(it::free_port()), "--backend", pg->tcp_endpoint(),
       "--control-dsn", control_dsn(*pg), "--config-file", missing},
      20s);
  INFO(r.describe());
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code != 0);
  CHECK(it::contains(r.err, "no_such_file.json"));
}

TEST_CASE("a later file adds what is new; a file with an unknown key stops pgphase") {
  const auto pg = start_cluster();
  it::TempDir dir("ctl-conf");
  const std::string extra = (dir / "more_migrations.json").string();
  it::write_file(extra, R"({"migrations": [{"migration_id": "orders_table_migration",
    "source_table": "orders", "target_table": "t_sys_orders", "phase": "preparation",
    "consistency_level": "eventual", "dual_write_enabled": false, "read_from_target": false,
    "validation_enabled": true, "auto_switch_threshold": 0.98, "rollback_enabled": true}]})");
  {
    const auto first = start_pgphase(with_files(*pg));
    (void)set_phase(api_for(*first), "users_table_migration", "dual_write");
    stop_pgphase(*first);
  }
  ServeOptions o = with_files(*pg);
  o.config_files.push_back(extra);
  const auto second = start_pgphase(o);
  const Api api = api_for(*second);
  CHECK(str(get_migration(api, "users_table_migration"), "phase") == "dual_write");
  const json::object orders = get_migration(api, "orders_table_migration");
  CHECK(str(orders, "consistency_level") == "eventual");
  CHECK(num(orders, "auto_switch_threshold") == Approx(0.98));
  stop_pgphase(*second);

  const std::string bad = (dir / "bad_migrations.json").string();
  it::write_file(bad, R"({"migrations": [{"migration_id": "bad_one", "source_table": "a",
    "target_table": "b", "colour": "red"}]})");
  const it::RunResult r = it::ProxyProcess::run_cli(
      {"serve", "--listen", "127.0.0.1:" + std::to_string(it::free_port()), "--admin",
       "127.0.0.1:" + std::to_string(it::free_port()), "--backend", pg->tcp_endpoint(),
       "--control-dsn", control_dsn(*pg), "--config-file", bad},
      20s);
  INFO(r.describe());
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code != 0);
  CHECK(it::contains(r.err, "bad_migrations.json"));
  CHECK(it::contains(r.err, "colour"));
  CHECK(control_conn(*pg).scalar(
            "SELECT count(*) FROM t_sys_migrations WHERE migration_id = 'bad_one'") == "0");
}
