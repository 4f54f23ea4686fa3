// app/app_config: one flat JSON file dispatched to the proxy, control-plane and admin settings;
// unknown keys refused by name; the control DSN from the environment.
#include "app/app_config.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace pgphase::app {
namespace {

TEST_CASE("the flat file dispatches keys to their owners") {
  AppConfig c;
  apply_json(c, R"({"listen": "127.0.0.1:7000", "workers": 3, "control_dsn": "dbname=ctl",
                    "config_files": ["a.json", "b.json"], "admin_token_env": "MY_TOKEN",
                    "state_reload_interval_ms": 500, "max_check_age_seconds": 60,
                    "query_timeout": 30, "client_idle_timeout": 600,
                    "control_answer_timeout_ms": 4000})");
  CHECK(c.proxy.listen.port == 7000);
  CHECK(c.proxy.query_timeout_seconds == 30);
  CHECK(c.proxy.client_idle_timeout_seconds == 600);
  CHECK(c.control.answer_timeout_ms == 4000);
  CHECK(c.proxy.workers == 3);
  CHECK(c.control.dsn == "dbname=ctl");
  CHECK(c.control.config_files == std::vector<std::string>{"a.json", "b.json"});
  CHECK(c.admin.token_env == "MY_TOKEN");
  CHECK(c.control.reload_interval_seconds == Approx(0.5));
  CHECK(c.control.max_check_age_seconds == Approx(60));
}

TEST_CASE("unknown keys, wrong types and bad values are refused by name") {
  const auto refused = [](const char* text, const char* needle) {
    AppConfig c;
    INFO(text);
    CHECK_THROWS_WITH(apply_json(c, text), Catch::Contains(needle));
  };
  refused(R"({"colour": "blue"})", "\"colour\"");
  refused(R"({"control_dsn": 5})", "control_dsn");
  refused(R"({"config_files": "a.json"})", "config_files");
  refused(R"({"state_reload_interval_ms": 0})", "state_reload_interval_ms");
  refused(R"({"max_check_age_seconds": -1})", "max_check_age_seconds");
  refused(R"({"admin_token_env": "NOT A NAME"})", "admin_token_env");
  refused(R"({"control_dsn": "x", "control_dsn_env": "Y"})", "control_dsn_env");
  refused(R"({"workers": "two"})", "workers");
  refused(R"({"query_timeout": -5})", "query_timeout");
  refused(R"({"client_idle_timeout": "10"})", "client_idle_timeout");
  refused(R"({"control_answer_timeout_ms": 0})", "control_answer_timeout_ms");
}

TEST_CASE("conf/pgphase.json, the shipped example, loads as it is") {
  std::ifstream in(std::string(PGPHASE_SOURCE_DIR) + "/conf/pgphase.json");
  REQUIRE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  AppConfig c;
  apply_json(c, text);
  CHECK(c.proxy.query_timeout_seconds == 0);
  CHECK(c.proxy.client_idle_timeout_seconds == 0);
  CHECK(c.proxy.startup_timeout_seconds == 60);
}

TEST_CASE("the control DSN from the environment; the DSN is never echoed") {
  AppConfig c;
  apply_json(c, R"({"control_dsn_env": "PGPHASE_TEST_DSN_VAR"})");
  ::unsetenv("PGPHASE_TEST_DSN_VAR");
  CHECK_THROWS_WITH(resolve_environment(c), Catch::Contains("PGPHASE_TEST_DSN_VAR"));
  ::setenv("PGPHASE_TEST_DSN_VAR", "dbname=from_env", 1);
  resolve_environment(c);
  CHECK(c.control.dsn == "dbname=from_env");

  AppConfig d;
  ::setenv("PGPHASE_CONTROL_DSN", "dbname=default_env", 1);
  resolve_environment(d);
  CHECK(d.control.dsn == "dbname=default_env");
  ::unsetenv("PGPHASE_CONTROL_DSN");

  AppConfig e;
  e.control.config_files = {"conf/migration_configs.json"};
  CHECK_THROWS_WITH(validate(e), Catch::Contains("control database"));
}

}  // namespace
}  // namespace pgphase::app
