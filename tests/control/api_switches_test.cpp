// Admin API, switch endpoints: register, activate, percentage, rollback and analytics with good
// input, bad input (malformed JSON, wrong types, unknown keys, percentage -1 / 101 / "abc"),
// unknown ids and state conflicts.
#include <catch2/catch.hpp>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

const char* const kSwitchFields[] = {
    "config_id", "table_name",        "migration_id", "current_source",   "target_source",
    "strategy",  "switch_percentage", "conditions",   "rollback_enabled", "auto_rollback_threshold",
    "status",    "version",           "created_at",   "updated_at"};

std::string sw(const std::string& id, const std::string& more) {
  return R"({"config_id": ")" + id + R"(", "table_name": "s_tab", "strategy": "gradual")" + more +
         "}";
}

std::string refused_switch(const Api& api, const std::string& body, int status,
                           const std::string& id) {
  INFO("POST /api/v1/switches " << body);
  const std::string why = expect_error(api.post("/api/v1/switches", body), status);
  if (!id.empty()) CHECK(api.get("/api/v1/switches/" + id).status == 404);
  return why;
}

}  // namespace

TEST_CASE("POST /api/v1/switches registers; GETs answer without a token") {
  const Api api = shared_stack().api;
  (void)register_migration(api, "sw_mig_good", "sg_tab", "t_sys_sg_tab");
  const json::object s = register_switch(
      api, "sw_good", "sg_tab", "sw_mig_good",
      {{"conditions",
        json::object{{"consistency_threshold", 0.99}, {"error_rate_threshold", 0.01}}}});
  for (const char* f : kSwitchFields) {
    INFO("field " << f << " in " << json::serialize(s));
    CHECK(s.contains(f));
  }
  CHECK(str(s, "config_id") == "sw_good");
  CHECK(str(s, "table_name") == "sg_tab");
  CHECK(str(s, "migration_id") == "sw_mig_good");
  CHECK(str(s, "strategy") == "gradual");
  CHECK(num(s, "switch_percentage") == 0);
  CHECK(str(s, "status") == "inactive");
  CHECK(num(obj(s, "conditions"), "error_rate_threshold") == Approx(0.01));
  CHECK(num(s, "auto_rollback_threshold") == Approx(0.05));

  const Api anonymous = api.with_token("");
  const it::HttpResponse list = anonymous.get("/api/v1/switches");
  INFO(describe(list));
  REQUIRE(list.status == 200);
  bool listed = false;
  const json::object all = body_object(list);
  for (const auto& v : arr(all, "switch_configs")) {
    listed = listed || str(v.as_object(), "config_id") == "sw_good";
  }
  CHECK(listed);
  CHECK(str(get_switch(anonymous, "sw_good"), "table_name") == "sg_tab");
  const it::HttpResponse analytics = anonymous.get("/api/v1/switches/sw_good/analytics");
  INFO(describe(analytics));
  REQUIRE(analytics.status == 200);
  const json::object a = body_object(analytics);
  CHECK(str(obj(a, "config"), "config_id") == "sw_good");
  CHECK(arr(a, "percentage_history").empty());

  CHECK(
      it::contains(expect_error(api.post("/api/v1/switches", sw("sw_good", "")), 409), "sw_good"));
}

TEST_CASE("POST /api/v1/switches: bad input") {
  const Api api = shared_stack().api;
  refused_switch(api, "{", 400, "");
  refused_switch(api, "", 400, "");
  refused_switch(api, "[1]", 400, "");
  refused_switch(api, R"({"config_id": 7, "table_name": "s_tab"})", 400, "");
  CHECK(it::contains(
      refused_switch(api, sw("sw_pct_abc", R"(, "switch_percentage": "abc")"), 400, "sw_pct_abc"),
      "switch_percentage"));
  CHECK(it::contains(
      refused_switch(api, sw("sw_pct_neg", R"(, "switch_percentage": -1)"), 422, "sw_pct_neg"),
      "switch_percentage"));
  CHECK(it::contains(
      refused_switch(api, sw("sw_pct_big", R"(, "switch_percentage": 101)"), 422, "sw_pct_big"),
      "switch_percentage"));
  refused_switch(api, sw("sw_cond", R"(, "conditions": "fast")"), 400, "sw_cond");
  refused_switch(api, sw("sw_rb", R"(, "rollback_enabled": "no")"), 400, "sw_rb");
  CHECK(it::contains(refused_switch(api, sw("sw_unknown", R"(, "speed": 3)"), 400, "sw_unknown"),
                     "speed"));
  CHECK(it::contains(refused_switch(api, R"({"table_name": "s_tab"})", 400, ""), "config_id"));
  CHECK(it::contains(
      refused_switch(api, sw("sw_strategy", R"(, "strategy": "yolo")"), 422, "sw_strategy"),
      "yolo"));
  CHECK(it::contains(
      refused_switch(api, sw("sw_status", R"(, "status": "sleeping")"), 422, "sw_status"),
      "sleeping"));
}

TEST_CASE("switch activate, percentage, rollback: state rules, bad input, unknown ids") {
  const Api api = shared_stack().api;
  (void)register_migration(api, "sw_mig_flow", "sf_tab", "t_sys_sf_tab");
  (void)register_switch(api, "sw_flow", "sf_tab", "sw_mig_flow");
  const std::string pct = "/api/v1/switches/sw_flow/percentage";

  // Migration in preparation: cannot activate; an inactive switch's percentage cannot change.
  CHECK(it::contains(expect_error(api.post("/api/v1/switches/sw_flow/activate"), 409),
                     "read_switch"));
  expect_error(api.post(pct, R"({"percentage": 10})"), 409);
  CHECK(str(get_switch(api, "sw_flow"), "status") == "inactive");

  advance_to(api, "sw_mig_flow", "read_switch");
  const it::HttpResponse act = api.post("/api/v1/switches/sw_flow/activate");
  INFO(describe(act));
  REQUIRE(act.status == 200);
  CHECK(str(body_object(act), "status") == "active");

  CHECK(it::contains(expect_error(api.post(pct, R"({"percentage": -1})"), 422), "percentage"));
  CHECK(it::contains(expect_error(api.post(pct, R"({"percentage": 101})"), 422), "percentage"));
  CHECK(it::contains(expect_error(api.post(pct, R"({"percentage": 100.5})"), 422), "percentage"));
  CHECK(it::contains(expect_error(api.post(pct, R"({"percentage": "abc"})"), 400), "percentage"));
  expect_error(api.post(pct, "{}"), 400);
  expect_error(api.post(pct, "{"), 400);
  expect_error(api.post(pct, R"({"percentage": 5, "reason": 3})"), 400);
  CHECK(it::contains(expect_error(api.post(pct, R"({"percentage": 5, "step": 1})"), 400), "step"));
  CHECK(num(get_switch(api, "sw_flow"), "switch_percentage") == 0);

  (void)set_percentage(api, "sw_flow", 25, "first step");
  (void)set_percentage(api, "sw_flow", 0, "back to zero");
  (void)set_percentage(api, "sw_flow", 100, "all in");

  expect_error(api.post("/api/v1/switches/sw_flow/rollback", R"({"reason": 1})"), 400);
  expect_error(api.post("/api/v1/switches/sw_flow/rollback", "{"), 400);
  const it::HttpResponse rb =
      api.post("/api/v1/switches/sw_flow/rollback", R"({"reason": "errors"})");
  INFO(describe(rb));
  REQUIRE(rb.status == 200);
  const json::object rolled = body_object(rb);
  CHECK(str(rolled, "status") == "rolled_back");
  CHECK(num(rolled, "switch_percentage") == 0);

  const json::object a = body_object(api.get("/api/v1/switches/sw_flow/analytics"));
  const json::array& history = arr(a, "percentage_history");
  INFO(json::serialize(history));
  REQUIRE(history.size() >= 3);
  bool saw_25 = false, saw_rollback = false;
  for (const auto& h : history) {
    const json::object& e = h.as_object();
    for (const char* f : {"from", "to", "actor", "reason", "created_at"}) CHECK(e.contains(f));
    if (as_number(e.at("to")) == 25) {
      saw_25 = true;
      CHECK(as_number(e.at("from")) == 0);
      CHECK(str(e, "actor") == "tester");
      CHECK(str(e, "reason") == "first step");
    }
    // The rollback is a percentage change too (100 -> 0), the one the history must not miss.
    saw_rollback = saw_rollback || (as_number(e.at("from")) == 100 && as_number(e.at("to")) == 0 &&
                                    it::contains(str(e, "reason"), "errors"));
  }
  CHECK(saw_25);
  CHECK(saw_rollback);
}

TEST_CASE("unknown switch ids are 404 for every switch endpoint") {
  const Api api = shared_stack().api;
  CHECK(it::contains(expect_error(api.get("/api/v1/switches/no_such_switch"), 404),
                     "no_such_switch"));
  expect_error(api.get("/api/v1/switches/no_such_switch/analytics"), 404);
  expect_error(api.post("/api/v1/switches/no_such_switch/activate"), 404);
  expect_error(api.post("/api/v1/switches/no_such_switch/percentage", R"({"percentage": 10})"),
               404);
  expect_error(api.post("/api/v1/switches/no_such_switch/rollback", R"({"reason": "x"})"), 404);
}

TEST_CASE("percentages as JSON integers and at the bounds are accepted") {
  const Api api = shared_stack().api;
  (void)register_migration(api, "sw_mig_int", "si_tab", "t_sys_si_tab");
  advance_to(api, "sw_mig_int", "read_switch");
  (void)register_switch(api, "sw_int", "si_tab", "sw_mig_int");
  REQUIRE(api.post("/api/v1/switches/sw_int/activate").status == 200);
  for (const char* body : {R"({"percentage": 30})", R"({"percentage": 0})",
                           R"({"percentage": 100})", R"({"percentage": 12.5})"}) {
    const it::HttpResponse r = api.post("/api/v1/switches/sw_int/percentage", body);
    INFO(body << " -> " << describe(r));
    CHECK(r.status == 200);
  }
  CHECK(num(get_switch(api, "sw_int"), "switch_percentage") == 12.5);
}

TEST_CASE("switch state rules at registration and after a rollback") {
  const Api api = shared_stack().api;
  (void)register_migration(api, "sw_mig_rules", "sr_tab", "t_sys_sr_tab");
  // Registering as active would be activating without the read_switch guard: refused (the
  // contract does not say whether as a conflict or an invalid value).
  const it::HttpResponse born =
      api.post("/api/v1/switches", R"({"config_id": "sw_born_active", "table_name": "sr_tab",)"
                                   R"( "migration_id": "sw_mig_rules", "strategy": "gradual",)"
                                   R"( "switch_percentage": 100, "status": "active"})");
  CHECK((born.status == 409 || born.status == 422));
  CHECK(it::icontains(expect_error(born, born.status), "activ"));
  CHECK(api.get("/api/v1/switches/sw_born_active").status == 404);
  // A switch for a migration that does not exist.
  const it::HttpResponse orphan =
      api.post("/api/v1/switches", R"({"config_id": "sw_orphan", "table_name": "sr_tab",)"
                                   R"( "migration_id": "no_such_migration"})");
  INFO(describe(orphan));
  CHECK((orphan.status == 404 || orphan.status == 422));
  CHECK(api.get("/api/v1/switches/sw_orphan").status == 404);

  advance_to(api, "sw_mig_rules", "read_switch");
  (void)register_switch(api, "sw_rules", "sr_tab", "sw_mig_rules");
  REQUIRE(api.post("/api/v1/switches/sw_rules/activate").status == 200);
  (void)set_percentage(api, "sw_rules", 40);
  REQUIRE(api.post("/api/v1/switches/sw_rules/rollback").status == 200);
  expect_error(api.post("/api/v1/switches/sw_rules/percentage", R"({"percentage": 60})"), 409);
  CHECK(num(get_switch(api, "sw_rules"), "switch_percentage") == 0);
}

TEST_CASE("reasons and actors round-trip exactly (UTF-8, quotes, newlines)") {
  const Api api = shared_stack().api;
  (void)register_migration(api, "sw_mig_text", "st_tab", "t_sys_st_tab");
  advance_to(api, "sw_mig_text", "read_switch");
  (void)register_switch(api, "sw_text", "st_tab", "sw_mig_text");
  REQUIRE(api.post("/api/v1/switches/sw_text/activate").status == 200);
  const std::string reason = "灰度 10% \"first\"\nline two \\ tab\t'quote'";
  const std::string body = json::serialize(json::object{{"percentage", 10}, {"reason", reason}});
  const it::HttpResponse r = api.as("运维-张三").post("/api/v1/switches/sw_text/percentage", body);
  INFO(describe(r));
  REQUIRE(r.status == 200);
  const json::value a = parse_json(api.get("/api/v1/switches/sw_text/analytics").body);
  const json::array& history = a.at("percentage_history").as_array();
  REQUIRE(history.size() == 1);
  CHECK(str(history[0].as_object(), "reason") == reason);
  CHECK(str(history[0].as_object(), "actor") == "运维-张三");
}
