#include "migration/model.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "migration/snapshot.h"

namespace pgphase::migration {
namespace {

namespace json = boost::json;

// The entries of the manual's migration_configs.json and read_switch_configs.json, verbatim.
constexpr const char* kManualMigration = R"({
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
    })";

constexpr const char* kManualSwitch = R"({
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
    })";

json::object obj(const char* text) {
  return json::parse(text).as_object();
}

// The message of the ModelError `f` throws; fails the test if it throws something else or nothing.
template <class F>
std::string model_error(F&& f) {
  try {
    f();
  } catch (const ModelError& e) {
    return e.what();
  }
  FAIL("no ModelError thrown");
  return {};
}

template <class F>
bool is_value_error(F&& f) {
  try {
    f();
  } catch (const ModelValueError&) {
    return true;
  } catch (const ModelError&) {
    return false;
  }
  return false;
}

Migration migration_with(const char* key, json::value v) {
  json::object o = obj(kManualMigration);
  o[key] = std::move(v);
  return migration_from_json(o);
}

SwitchConfig switch_with(const char* key, json::value v) {
  json::object o = obj(kManualSwitch);
  o[key] = std::move(v);
  return switch_from_json(o);
}

}  // namespace

TEST_CASE("enum names are exactly the manual's and round-trip", "[model]") {
  const std::pair<Phase, const char*> phases[] = {
      {Phase::kPreparation, "preparation"}, {Phase::kDualWrite, "dual_write"},
      {Phase::kValidation, "validation"},   {Phase::kReadSwitch, "read_switch"},
      {Phase::kCleanup, "cleanup"},         {Phase::kCompleted, "completed"}};
  for (const auto& [p, name] : phases) {
    CHECK(to_string(p) == name);
    CHECK(parse_phase(name) == p);
  }
  CHECK(std::size(kAllPhases) == 6);
  CHECK(to_string(ConsistencyLevel::kStrict) == "strict");
  CHECK(to_string(ConsistencyLevel::kEventual) == "eventual");
  CHECK(parse_consistency_level("eventual") == ConsistencyLevel::kEventual);
  const std::pair<SwitchStrategy, const char*> strategies[] = {
      {SwitchStrategy::kImmediate, "immediate"},
      {SwitchStrategy::kGradual, "gradual"},
      {SwitchStrategy::kSticky, "sticky"},
      {SwitchStrategy::kCanary, "canary"},
      {SwitchStrategy::kShadow, "shadow"}};
  for (const auto& [s, name] : strategies) {
    CHECK(to_string(s) == name);
    CHECK(parse_switch_strategy(name) == s);
  }
  const std::pair<SwitchStatus, const char*> statuses[] = {
      {SwitchStatus::kInactive, "inactive"},
      {SwitchStatus::kActive, "active"},
      {SwitchStatus::kPaused, "paused"},
      {SwitchStatus::kCompleted, "completed"},
      {SwitchStatus::kRolledBack, "rolled_back"}};
  for (const auto& [s, name] : statuses) {
    CHECK(to_string(s) == name);
    CHECK(parse_switch_status(name) == s);
  }
  CHECK_FALSE(parse_phase("PREPARATION").has_value());
  CHECK_FALSE(parse_phase("dual-write").has_value());
  CHECK_FALSE(parse_phase("").has_value());
  CHECK_FALSE(parse_consistency_level("basic").has_value());
  CHECK_FALSE(parse_switch_strategy("GRADUAL").has_value());
  CHECK_FALSE(parse_switch_status("rolledback").has_value());
  CHECK(to_string(UnsupportedWritePolicy::kReject) == "reject");
  CHECK(to_string(UnsupportedWritePolicy::kAllowAndFlag) == "allow_and_flag");
  CHECK(parse_unsupported_write_policy("reject") == UnsupportedWritePolicy::kReject);
  CHECK(parse_unsupported_write_policy("allow_and_flag") == UnsupportedWritePolicy::kAllowAndFlag);
  CHECK_FALSE(parse_unsupported_write_policy("allow-and-flag").has_value());
  CHECK_FALSE(parse_unsupported_write_policy("REJECT").has_value());
  CHECK_FALSE(parse_unsupported_write_policy("").has_value());
}

TEST_CASE("the manual's migration_configs.json entry parses unchanged", "[model]") {
  const Migration m = migration_from_json(json::parse(kManualMigration));
  CHECK(m.migration_id == "users_table_migration");
  CHECK(m.source_table == "users");
  CHECK(m.target_table == "t_sys_users");
  CHECK(m.database.empty());
  CHECK(m.phase == Phase::kPreparation);
  CHECK(m.consistency_level == ConsistencyLevel::kStrict);
  CHECK_FALSE(m.dual_write_enabled);
  CHECK_FALSE(m.read_from_target);
  CHECK(m.validation_enabled);
  CHECK(m.auto_switch_threshold == 0.99);
  CHECK(m.rollback_enabled);
  CHECK(m.key_columns.empty());
  CHECK(m.column_map.empty());
  CHECK_FALSE(m.unsupported_write_policy.has_value());
  CHECK(effective_unsupported_write_policy(m) == UnsupportedWritePolicy::kReject);
}

TEST_CASE("unsupported_write_policy: optional, defaulting by consistency_level", "[model]") {
  Migration m = migration_from_json(json::parse(kManualMigration));
  CHECK(effective_unsupported_write_policy(m) == UnsupportedWritePolicy::kReject);
  m.consistency_level = ConsistencyLevel::kEventual;
  CHECK(effective_unsupported_write_policy(m) == UnsupportedWritePolicy::kAllowAndFlag);
  // The effective value is emitted even when the field is absent.
  CHECK(to_json(m).at("unsupported_write_policy").as_string() == "allow_and_flag");
  m.unsupported_write_policy = UnsupportedWritePolicy::kReject;
  CHECK(effective_unsupported_write_policy(m) == UnsupportedWritePolicy::kReject);
  CHECK(to_json(m).at("unsupported_write_policy").as_string() == "reject");
  m.consistency_level = ConsistencyLevel::kStrict;
  m.unsupported_write_policy = UnsupportedWritePolicy::kAllowAndFlag;
  CHECK(effective_unsupported_write_policy(m) == UnsupportedWritePolicy::kAllowAndFlag);

  const Migration given = migration_with("unsupported_write_policy", "allow_and_flag");
  CHECK(given.unsupported_write_policy == UnsupportedWritePolicy::kAllowAndFlag);
  CHECK(given.consistency_level == ConsistencyLevel::kStrict);
  CHECK(effective_unsupported_write_policy(given) == UnsupportedWritePolicy::kAllowAndFlag);
  CHECK(migration_with("unsupported_write_policy", "reject").unsupported_write_policy ==
        UnsupportedWritePolicy::kReject);
  const Migration back = migration_from_json(to_json(given));
  CHECK(back.unsupported_write_policy == UnsupportedWritePolicy::kAllowAndFlag);

  CHECK(is_value_error([] { (void)migration_with("unsupported_write_policy", "ignore"); }));
  CHECK_THAT(model_error([] { (void)migration_with("unsupported_write_policy", "ignore"); }),
             Catch::Contains("unsupported_write_policy") && Catch::Contains("\"ignore\"") &&
                 Catch::Contains("reject, allow_and_flag"));
  for (const json::value& wrong : {json::value(true), json::value(nullptr), json::value(1)}) {
    INFO(json::serialize(wrong));
    CHECK_FALSE(is_value_error([&] { (void)migration_with("unsupported_write_policy", wrong); }));
    CHECK_THAT(model_error([&] { (void)migration_with("unsupported_write_policy", wrong); }),
               Catch::Contains("unsupported_write_policy: expected a string"));
  }
}

TEST_CASE("column_name reads one column as the catalog spells it", "[model]") {
  CHECK(column_name("email") == "email");
  CHECK(column_name("Email") == "email");
  CHECK(column_name("\"Email\"") == "Email");
  CHECK(column_name("\"a \"\"b\"\"\"") == "a \"b\"");
  CHECK_THROWS_AS(column_name(""), ModelValueError);
  CHECK_THROWS_AS(column_name("a.b"), ModelValueError);
  CHECK_THROWS_AS(column_name("1a"), ModelValueError);
}

TEST_CASE("only the three required migration keys are needed", "[model]") {
  const Migration m = migration_from_json(
      json::parse(R"({"migration_id": "m1", "source_table": "a", "target_table": "b"})"));
  CHECK(m.phase == Phase::kPreparation);
  CHECK(m.auto_switch_threshold == 0.99);
  CHECK(m.validation_enabled);
  CHECK(m.rollback_enabled);
  for (const char* key : {"migration_id", "source_table", "target_table"}) {
    json::object o = obj(kManualMigration);
    o.erase(key);
    const std::string msg = model_error([&] { (void)migration_from_json(o); });
    CHECK_THAT(msg, Catch::Contains(key) && Catch::Contains("required"));
  }
}

TEST_CASE("the manual's read_switch_configs.json entry parses unchanged", "[model]") {
  const SwitchConfig s = switch_from_json(json::parse(kManualSwitch));
  CHECK(s.config_id == "users_gradual_switch");
  CHECK(s.table_name == "users");
  CHECK(s.migration_id.empty());
  CHECK(s.current_source == "source");
  CHECK(s.target_source == "target");
  CHECK(s.strategy == SwitchStrategy::kGradual);
  CHECK(s.switch_percentage == 0.0);
  CHECK(s.rollback_enabled);
  CHECK(s.auto_rollback_threshold == 0.05);
  CHECK(s.status == SwitchStatus::kInactive);
  const json::object conditions = json::parse(s.conditions_json).as_object();
  CHECK(conditions.size() == 3);
  CHECK(conditions.at("consistency_threshold").as_double() == 0.99);
  CHECK(conditions.at("error_rate_threshold").as_double() == 0.01);
  CHECK(conditions.at("latency_threshold").as_int64() == 100);
}

TEST_CASE("the manual's Python SwitchConfig (10%, two conditions) parses", "[model]") {
  const SwitchConfig s = switch_from_json(json::parse(R"({
    "config_id": "users_gradual_switch", "table_name": "users", "current_source": "source",
    "target_source": "target", "strategy": "gradual", "switch_percentage": 10.0,
    "conditions": {"consistency_threshold": 0.99, "error_rate_threshold": 0.01},
    "rollback_enabled": true, "auto_rollback_threshold": 0.05})"));
  CHECK(s.switch_percentage == 10.0);
  CHECK(s.status == SwitchStatus::kInactive);
  CHECK(json::parse(s.conditions_json).as_object().size() == 2);
}

TEST_CASE("to_json and from_json round-trip every field", "[model]") {
  Migration m = migration_from_json(json::parse(kManualMigration));
  m.database = "shop";
  m.phase = Phase::kCleanup;
  m.dual_write_enabled = true;
  m.read_from_target = true;
  m.consistency_level = ConsistencyLevel::kEventual;
  m.auto_switch_threshold = 0.5;
  m.key_columns = {"id", "\"Tenant\""};
  m.column_map = {{"email", "email_address"}, {"legacy", ""}};
  m.unsupported_write_policy = UnsupportedWritePolicy::kReject;
  m.version = 7;
  m.created_at = "2026-01-02T03:04:05.678Z";
  m.updated_at = "2026-01-03T03:04:05.678Z";
  const json::object j = to_json(m);
  CHECK(j.at("phase").as_string() == "cleanup");
  CHECK(j.at("consistency_level").as_string() == "eventual");
  CHECK(j.at("key_columns").as_array().size() == 2);
  CHECK(j.at("column_map").as_object().at("legacy").as_string() == "");
  CHECK(j.at("unsupported_write_policy").as_string() == "reject");
  const Migration back = migration_from_json(j);
  CHECK(back.migration_id == m.migration_id);
  CHECK(back.database == "shop");
  CHECK(back.phase == Phase::kCleanup);
  CHECK(back.dual_write_enabled);
  CHECK(back.read_from_target);
  CHECK(back.consistency_level == ConsistencyLevel::kEventual);
  CHECK(back.auto_switch_threshold == 0.5);
  CHECK(back.key_columns == m.key_columns);
  CHECK(back.column_map == m.column_map);
  CHECK(back.unsupported_write_policy == UnsupportedWritePolicy::kReject);
  CHECK(back.version == 7);
  CHECK(back.created_at == m.created_at);
  CHECK(back.updated_at == m.updated_at);

  SwitchConfig s = switch_from_json(json::parse(kManualSwitch));
  s.migration_id = "users_table_migration";
  s.strategy = SwitchStrategy::kCanary;
  s.switch_percentage = 37.5;
  s.status = SwitchStatus::kPaused;
  s.version = 3;
  const json::object sj = to_json(s);
  CHECK(sj.at("conditions").is_object());
  CHECK(sj.at("conditions").as_object().at("latency_threshold").as_int64() == 100);
  const SwitchConfig sback = switch_from_json(sj);
  CHECK(sback.migration_id == "users_table_migration");
  CHECK(sback.strategy == SwitchStrategy::kCanary);
  CHECK(sback.switch_percentage == 37.5);
  CHECK(sback.status == SwitchStatus::kPaused);
  CHECK(sback.version == 3);
  CHECK(json::parse(sback.conditions_json) == json::parse(s.conditions_json));
}

TEST_CASE("unknown keys are refused, naming the key", "[model]") {
  json::object m = obj(kManualMigration);
  m["dual_write"] = true;
  std::string msg = model_error([&] { (void)migration_from_json(m); });
  CHECK_THAT(msg, Catch::Contains("unknown key \"dual_write\""));
  CHECK_FALSE(is_value_error([&] { (void)migration_from_json(m); }));

  json::object s = obj(kManualSwitch);
  s["percentage"] = 5;
  msg = model_error([&] { (void)switch_from_json(s); });
  CHECK_THAT(msg, Catch::Contains("unknown key \"percentage\""));
}

TEST_CASE("wrong types are refused, naming the key", "[model]") {
  const std::pair<const char*, json::value> migration_cases[] = {
      {"migration_id", 5},
      {"source_table", json::array{"users"}},
      {"phase", 1},
      {"dual_write_enabled", "false"},
      {"read_from_target", 0},
      {"validation_enabled", nullptr},
      {"auto_switch_threshold", "0.99"},
      {"rollback_enabled", "yes"},
      {"key_columns", "id"},
      {"key_columns", json::array{1}},
      {"column_map", json::array{}},
      {"column_map", json::object{{"a", 1}}},
      {"version", 1.5},
      {"created_at", 0}};
  for (const auto& [key, value] : migration_cases) {
    INFO(key << " = " << json::serialize(value));
    json::object o = obj(kManualMigration);
    o[key] = value;
    const std::string msg = model_error([&] { (void)migration_from_json(o); });
    CHECK_THAT(msg, Catch::Contains(key) && Catch::Contains("expected"));
    CHECK_FALSE(is_value_error([&] { (void)migration_from_json(o); }));
  }
  const std::pair<const char*, json::value> switch_cases[] = {
      {"config_id", true},           {"switch_percentage", "10"},
      {"conditions", json::array{}}, {"conditions", "{}"},
      {"rollback_enabled", 1},       {"auto_rollback_threshold", false},
      {"status", json::object{}},    {"strategy", 2}};
  for (const auto& [key, value] : switch_cases) {
    INFO(key << " = " << json::serialize(value));
    json::object o = obj(kManualSwitch);
    o[key] = value;
    const std::string msg = model_error([&] { (void)switch_from_json(o); });
    CHECK_THAT(msg, Catch::Contains(key) && Catch::Contains("expected"));
  }
  CHECK_THAT(model_error([] { (void)migration_from_json(json::parse("[]")); }),
             Catch::Contains("expected a JSON object"));
  CHECK_THAT(model_error([] { (void)switch_from_json(json::parse("\"x\"")); }),
             Catch::Contains("expected a JSON object"));
}

TEST_CASE("integers are accepted where numbers are expected", "[model]") {
  CHECK(migration_with("auto_switch_threshold", 1).auto_switch_threshold == 1.0);
  CHECK(switch_with("switch_percentage", 25).switch_percentage == 25.0);
  CHECK(switch_with("switch_percentage", 100u).switch_percentage == 100.0);
}

TEST_CASE("unknown enum values are invalid values naming the key and the choices", "[model]") {
  json::object o = obj(kManualMigration);
  o["phase"] = "switching";
  CHECK(is_value_error([&] { (void)migration_from_json(o); }));
  CHECK_THAT(model_error([&] { (void)migration_from_json(o); }),
             Catch::Contains("phase") && Catch::Contains("\"switching\"") &&
                 Catch::Contains("read_switch"));
  CHECK(is_value_error([] { (void)migration_with("consistency_level", "basic"); }));
  CHECK(is_value_error([] { (void)switch_with("strategy", "random"); }));
  CHECK(is_value_error([] { (void)switch_with("status", "enabled"); }));
}

TEST_CASE("ranges are enforced inclusively", "[model]") {
  CHECK(migration_with("auto_switch_threshold", 0.0).auto_switch_threshold == 0.0);
  CHECK(migration_with("auto_switch_threshold", 1.0).auto_switch_threshold == 1.0);
  for (double bad : {-0.01, 1.01, 99.0}) {
    INFO(bad);
    CHECK(is_value_error([&] { (void)migration_with("auto_switch_threshold", bad); }));
    CHECK_THAT(model_error([&] { (void)migration_with("auto_switch_threshold", bad); }),
               Catch::Contains("auto_switch_threshold"));
  }
  CHECK(switch_with("switch_percentage", 0.0).switch_percentage == 0.0);
  CHECK(switch_with("switch_percentage", 100.0).switch_percentage == 100.0);
  for (double bad : {-1.0, 100.5, 1000.0}) {
    INFO(bad);
    CHECK(is_value_error([&] { (void)switch_with("switch_percentage", bad); }));
  }
  CHECK(switch_with("auto_rollback_threshold", 1.0).auto_rollback_threshold == 1.0);
  CHECK(is_value_error([] { (void)switch_with("auto_rollback_threshold", 1.5); }));
  CHECK(is_value_error([] { (void)switch_with("auto_rollback_threshold", -0.5); }));
}

TEST_CASE("ids: letters, digits, _ . - up to 128 characters", "[model]") {
  CHECK(migration_with("migration_id", "users_table.migration-2").migration_id ==
        "users_table.migration-2");
  CHECK(migration_with("migration_id", std::string(128, 'a').c_str()).migration_id.size() == 128);
  for (const std::string& bad : {std::string(), std::string(129, 'a'), std::string("a b"),
                                 std::string("a/b"), std::string("x;y"), std::string("é")}) {
    INFO(bad);
    CHECK(is_value_error([&] { (void)migration_with("migration_id", bad.c_str()); }));
    CHECK(is_value_error([&] { (void)switch_with("config_id", bad.c_str()); }));
  }
  CHECK(switch_with("migration_id", "users_table_migration").migration_id ==
        "users_table_migration");
  CHECK(is_value_error([] { (void)switch_with("migration_id", "bad id"); }));
}

TEST_CASE("table names: identifiers, optionally schema-qualified and quoted", "[model]") {
  CHECK(qualify("users").schema == "public");
  CHECK(qualify("users").table == "users");
  CHECK(qualify("Users").table == "users");
  CHECK(qualify("app.users").schema == "app");
  CHECK(qualify("\"My Table\"").table == "My Table");
  CHECK(qualify("\"Sales\".\"Q\"\"1\"").schema == "Sales");
  CHECK(qualify("\"Sales\".\"Q\"\"1\"").table == "Q\"1");
  CHECK(qualify("_t$1").table == "_t$1");
  CHECK(qualify(std::string(63, 'a')).table.size() == 63);
  for (const std::string& bad :
       {std::string(), std::string("1users"), std::string("a.b.c"), std::string("users;drop"),
        std::string("\"\""), std::string("\"open"), std::string("a."), std::string(".a"),
        std::string("my table"), std::string(64, 'a'), std::string("\"x\"y")}) {
    INFO(bad);
    try {
      (void)qualify(bad);
      FAIL("accepted " << bad);
    } catch (const ModelValueError&) {
      SUCCEED();
    }
    CHECK(is_value_error([&] { (void)migration_with("source_table", bad.c_str()); }));
    CHECK(is_value_error([&] { (void)switch_with("table_name", bad.c_str()); }));
  }
  CHECK(migration_with("target_table", "archive.t_sys_users").target_table ==
        "archive.t_sys_users");
}

TEST_CASE("source and target must be different tables", "[model]") {
  json::object o = obj(kManualMigration);
  o["target_table"] = "public.USERS";
  CHECK(is_value_error([&] { (void)migration_from_json(o); }));
  CHECK_THAT(model_error([&] { (void)migration_from_json(o); }),
             Catch::Contains("same table as source_table"));
  o["target_table"] = "\"Users\"";  // quoted: a different table from users
  CHECK(migration_from_json(o).target_table == "\"Users\"");
}

TEST_CASE("key_columns and column_map hold column names", "[model]") {
  CHECK(migration_with("key_columns", json::array{"id", "\"Tenant Id\""}).key_columns.size() == 2);
  CHECK(is_value_error([] { (void)migration_with("key_columns", json::array{"a.b"}); }));
  CHECK(is_value_error([] { (void)migration_with("key_columns", json::array{""}); }));
  CHECK(is_value_error([] { (void)migration_with("key_columns", json::array{"1id"}); }));
  CHECK(migration_with("column_map", json::object{{"old", ""}}).column_map.at("old").empty());
  CHECK(is_value_error([] { (void)migration_with("column_map", json::object{{"a b", "c"}}); }));
  CHECK(is_value_error([] { (void)migration_with("column_map", json::object{{"a", "c;d"}}); }));
}

TEST_CASE("flags must agree with the phase", "[model]") {
  CHECK(is_value_error([] { (void)migration_with("dual_write_enabled", true); }));
  CHECK(is_value_error([] { (void)migration_with("read_from_target", true); }));
  json::object o = obj(kManualMigration);
  o["phase"] = "cleanup";
  o["dual_write_enabled"] = true;
  CHECK_THAT(model_error([&] { (void)migration_from_json(o); }),
             Catch::Contains("read_from_target"));
  o["read_from_target"] = true;
  CHECK(migration_from_json(o).phase == Phase::kCleanup);
  o["dual_write_enabled"] = false;  // cleanup after disable-dual-write
  CHECK_FALSE(migration_from_json(o).dual_write_enabled);
  o["phase"] = "validation";
  o["read_from_target"] = false;  // dual write off in validation: only after a forced disable
  CHECK(migration_from_json(o).phase == Phase::kValidation);
}

TEST_CASE("switch sources and conditions are checked", "[model]") {
  CHECK(is_value_error([] { (void)switch_with("current_source", "replica"); }));
  CHECK(is_value_error([] { (void)switch_with("target_source", "source"); }));
  const SwitchConfig flipped = [] {
    json::object o = obj(kManualSwitch);
    o["current_source"] = "target";
    o["target_source"] = "source";
    return switch_from_json(o);
  }();
  CHECK(flipped.current_source == "target");
  CHECK(is_value_error([] {
    (void)switch_with("conditions", json::object{{"consistency_threshold", 2}});
  }));
  CHECK(is_value_error([] {
    (void)switch_with("conditions", json::object{{"error_rate_threshold", -1}});
  }));
  CHECK(is_value_error([] {
    (void)switch_with("conditions", json::object{{"latency_threshold", "100ms"}});
  }));
  const SwitchConfig extra =
      switch_with("conditions", json::object{{"canary_users", json::array{"a", "b"}}});
  CHECK(json::parse(extra.conditions_json).as_object().contains("canary_users"));
}

TEST_CASE("registration needs preparation / inactive", "[model]") {
  Migration m = migration_from_json(json::parse(kManualMigration));
  CHECK_NOTHROW(validate_for_register(m));
  m.phase = Phase::kDualWrite;
  m.dual_write_enabled = true;
  CHECK_NOTHROW(validate(m));
  try {
    validate_for_register(m);
    FAIL("registered in dual_write");
  } catch (const ModelValueError& e) {
    CHECK_THAT(e.what(), Catch::Contains("preparation"));
  }
  SwitchConfig s = switch_from_json(json::parse(kManualSwitch));
  CHECK_NOTHROW(validate_for_register(s));
  s.status = SwitchStatus::kActive;
  CHECK_THROWS_AS(validate_for_register(s), ModelValueError);
}

TEST_CASE("snapshot lookups and switch/migration matching", "[model][snapshot]") {
  Snapshot snap;
  Migration users = migration_from_json(json::parse(kManualMigration));
  Migration orders = users;
  orders.migration_id = "orders_migration";
  orders.source_table = "shop.orders";
  orders.target_table = "shop.t_sys_orders";
  snap.migrations = {orders, users};
  SwitchConfig by_table = switch_from_json(json::parse(kManualSwitch));
  by_table.table_name = "public.users";  // same table as "users"
  SwitchConfig linked = by_table;
  linked.config_id = "orders_switch";
  linked.table_name = "shop.orders";
  linked.migration_id = "orders_migration";
  SwitchConfig other = by_table;
  other.config_id = "aaa_other";
  other.table_name = "accounts";
  snap.switches = {other, linked, by_table};

  REQUIRE(snap.find_migration("users_table_migration") != nullptr);
  CHECK(snap.find_migration("users_table_migration")->source_table == "users");
  CHECK(snap.find_migration("nope") == nullptr);
  REQUIRE(snap.find_switch("orders_switch") != nullptr);
  CHECK(snap.find_switch("nope") == nullptr);

  REQUIRE(snap.switch_for(users) != nullptr);
  CHECK(snap.switch_for(users)->config_id == "users_gradual_switch");
  REQUIRE(snap.switch_for(orders) != nullptr);
  CHECK(snap.switch_for(orders)->config_id == "orders_switch");
  CHECK(snap.migration_for(by_table) == snap.find_migration("users_table_migration"));
  CHECK(snap.migration_for(linked) == snap.find_migration("orders_migration"));
  CHECK(snap.migration_for(other) == nullptr);

  // Among several switches of one table, the active one governs.
  SwitchConfig second = by_table;
  second.config_id = "users_canary";
  second.status = SwitchStatus::kActive;
  snap.switches.push_back(second);
  CHECK(snap.switch_for(users)->config_id == "users_canary");
  // A switch linked to another migration does not govern by table name.
  SwitchConfig foreign = by_table;
  foreign.migration_id = "orders_migration";
  CHECK_FALSE(governs(foreign, users));
  CHECK(governs(by_table, users));

  // Table shapes: by migration_id.
  CHECK(snap.shape_for("users_table_migration") == nullptr);
  TableShape shape;
  shape.key_columns = {"id"};
  shape.problem = "target table public.t_sys_users does not exist";
  snap.shapes["users_table_migration"] = shape;
  REQUIRE(snap.shape_for("users_table_migration") != nullptr);
  CHECK(snap.shape_for("users_table_migration")->problem == shape.problem);
  CHECK(*snap.shape_for("users_table_migration") == shape);
  CHECK(snap.shape_for("orders_migration") == nullptr);
  CHECK(snap.shape_for("") == nullptr);
}

}  // namespace pgphase::migration
