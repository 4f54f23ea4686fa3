// Admin API, migration endpoints: good input, bad input (malformed JSON, wrong types, unknown
// keys, invalid values), unknown ids, and that a refused request changes nothing.
#include <catch2/catch.hpp>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

const char* const kMigrationFields[] = {"migration_id",
                                        "source_table",
                                        "target_table",
                                        "database",
                                        "phase",
                                        "consistency_level",
                                        "dual_write_enabled",
                                        "read_from_target",
                                        "validation_enabled",
                                        "auto_switch_threshold",
                                        "rollback_enabled",
                                        "key_columns",
                                        "column_map",
                                        "version",
                                        "created_at",
                                        "updated_at"};

// Expects `status` for POST /api/v1/migrations with `body`, and that `id` still does not exist.
std::string refused_register(const Api& api, const std::string& body, int status,
                             const std::string& id) {
  INFO("POST /api/v1/migrations " << body);
  const std::string why = expect_error(api.post("/api/v1/migrations", body), status);
  if (!id.empty()) CHECK(api.get("/api/v1/migrations/" + id).status == 404);
  return why;
}

std::string base(const std::string& id, const std::string& more) {
  return R"({"migration_id": ")" + id + R"(", "source_table": "m_src", "target_table": "m_dst")" +
         more + "}";
}

}  // namespace

TEST_CASE("POST /api/v1/migrations registers; GET lists and shows it without a token") {
  const Api api = shared_stack().api;
  const json::object m = register_migration(api, "mig_good", "public.m_src", "t_sys_m_src",
                                            {{"consistency_level", "eventual"},
                                             {"auto_switch_threshold", 0.95},
                                             {"rollback_enabled", false},
                                             {"key_columns", json::array{"id"}},
                                             {"column_map", json::object{{"name", "full_name"}}}});
  for (const char* f : kMigrationFields) {
    INFO("field " << f << " in " << json::serialize(m));
    CHECK(m.contains(f));
  }
  CHECK(str(m, "migration_id") == "mig_good");
  CHECK(str(m, "source_table") == "public.m_src");
  CHECK(str(m, "target_table") == "t_sys_m_src");
  CHECK(str(m, "phase") == "preparation");
  CHECK(str(m, "consistency_level") == "eventual");
  CHECK_FALSE(flag(m, "dual_write_enabled"));
  CHECK_FALSE(flag(m, "read_from_target"));
  CHECK(flag(m, "validation_enabled"));
  CHECK(num(m, "auto_switch_threshold") == Approx(0.95));
  CHECK_FALSE(flag(m, "rollback_enabled"));
  CHECK(json::serialize(arr(m, "key_columns")) == R"(["id"])");
  CHECK(str(obj(m, "column_map"), "name") == "full_name");
  CHECK_FALSE(str(m, "created_at").empty());

  // Defaults of the optional fields are the manual's.
  const json::object d = register_migration(api, "mig_defaults", "d_src", "t_sys_d_src");
  CHECK(str(d, "phase") == "preparation");
  CHECK(str(d, "consistency_level") == "strict");
  CHECK(num(d, "auto_switch_threshold") == Approx(0.99));
  CHECK(flag(d, "rollback_enabled"));
  CHECK(flag(d, "validation_enabled"));

  const Api anonymous = api.with_token("");
  const it::HttpResponse list = anonymous.get("/api/v1/migrations");
  INFO(describe(list));
  REQUIRE(list.status == 200);
  CHECK(it::contains(list.header("content-type"), "application/json"));
  std::vector<std::string> ids;
  const json::object listed = body_object(list);
  for (const auto& v : arr(listed, "migrations")) {
    ids.push_back(str(v.as_object(), "migration_id"));
  }
  CHECK(std::count(ids.begin(), ids.end(), "mig_good") == 1);
  CHECK(std::count(ids.begin(), ids.end(), "mig_defaults") == 1);

  const it::HttpResponse one = anonymous.get("/api/v1/migrations/mig_good");
  INFO(describe(one));
  REQUIRE(one.status == 200);
  const json::object got = body_object(one);
  CHECK(str(got, "target_table") == "t_sys_m_src");
  CHECK(num(got, "version") == num(m, "version"));
  const json::array& logs = arr(got, "logs");
  REQUIRE(logs.size() >= 1);  // the registration itself is a change
  for (const char* f :
       {"id", "migration_id", "action", "actor", "from", "to", "status", "message", "created_at"}) {
    INFO("log field " << f << " in " << json::serialize(logs));
    CHECK(logs.back().as_object().contains(f));
  }
  CHECK(str(logs.back().as_object(), "actor") == "tester");

  // Registering the same id again: 409, and the first registration stays.
  const std::string why = expect_error(
      api.post("/api/v1/migrations", base("mig_good", R"(, "consistency_level": "strict")")), 409);
  CHECK(it::contains(why, "mig_good"));
  CHECK(str(get_migration(api, "mig_good"), "consistency_level") == "eventual");
}

TEST_CASE("POST /api/v1/migrations: malformed JSON and wrong types are 400") {
  const Api api = shared_stack().api;
  refused_register(api, "{", 400, "");
  refused_register(api, R"({"migration_id": "bad_trunc", "source_table": )", 400, "bad_trunc");
  refused_register(api, "", 400, "");
  refused_register(api, "[]", 400, "");
  refused_register(api, R"("mig")", 400, "");
  refused_register(api, R"({"migration_id": 5, "source_table": "a", "target_table": "b"})", 400,
                   "");
  CHECK(it::contains(
      refused_register(api, base("bad_bool", R"(, "dual_write_enabled": "yes")"), 400, "bad_bool"),
      "dual_write_enabled"));
  CHECK(it::contains(refused_register(api, base("bad_num", R"(, "auto_switch_threshold": "high")"),
                                      400, "bad_num"),
                     "auto_switch_threshold"));
  CHECK(it::contains(
      refused_register(api, base("bad_keys", R"(, "key_columns": "id")"), 400, "bad_keys"),
      "key_columns"));
  CHECK(it::contains(
      refused_register(api, base("bad_map", R"(, "column_map": ["a"])"), 400, "bad_map"),
      "column_map"));
}

TEST_CASE("POST /api/v1/migrations: unknown keys and missing required fields are 400") {
  const Api api = shared_stack().api;
  CHECK(it::contains(
      refused_register(api, base("bad_unknown", R"(, "colour": "blue")"), 400, "bad_unknown"),
      "colour"));
  CHECK(
      it::contains(refused_register(api, R"({"migration_id": "bad_missing", "source_table": "a"})",
                                    400, "bad_missing"),
                   "target_table"));
  CHECK(
      it::contains(refused_register(api, R"({"source_table": "a", "target_table": "b"})", 400, ""),
                   "migration_id"));
}

TEST_CASE("POST /api/v1/migrations: invalid values are 422") {
  const Api api = shared_stack().api;
  CHECK(it::contains(
      refused_register(api, base("bad_phase", R"(, "phase": "warp_speed")"), 422, "bad_phase"),
      "warp_speed"));
  CHECK(it::contains(refused_register(api, base("bad_level", R"(, "consistency_level": "bogus")"),
                                      422, "bad_level"),
                     "consistency_level"));
  CHECK(it::contains(refused_register(api, base("bad_thr_hi", R"(, "auto_switch_threshold": 1.5)"),
                                      422, "bad_thr_hi"),
                     "auto_switch_threshold"));
  CHECK(it::contains(refused_register(api, base("bad_thr_lo", R"(, "auto_switch_threshold": -0.1)"),
                                      422, "bad_thr_lo"),
                     "auto_switch_threshold"));
  refused_register(api, R"({"migration_id": "", "source_table": "a", "target_table": "b"})", 422,
                   "");
}

TEST_CASE("phase, dual-write and rollback endpoints: bad input is refused and changes nothing") {
  const Api api = shared_stack().api;
  const json::object before = register_migration(api, "mig_inputs", "i_src", "t_sys_i_src");
  const std::string phase = "/api/v1/migrations/mig_inputs/phase";
  const std::string dual = "/api/v1/migrations/mig_inputs/dual-write";
  const std::string rollback = "/api/v1/migrations/mig_inputs/rollback";

  expect_error(api.post(phase, "{"), 400);
  expect_error(api.post(phase, ""), 400);
  expect_error(api.post(phase, "{}"), 400);
  expect_error(api.post(phase, R"({"phase": 5})"), 400);
  expect_error(api.post(phase, R"({"phase": "dual_write", "force": "yes"})"), 400);
  CHECK(it::contains(expect_error(api.post(phase, R"({"phase": "dual_write", "now": true})"), 400),
                     "now"));
  CHECK(
      it::contains(expect_error(api.post(phase, R"({"phase": "warp_speed"})"), 422), "warp_speed"));

  expect_error(api.post(dual, "{"), 400);
  expect_error(api.post(dual, "{}"), 400);
  expect_error(api.post(dual, R"({"enabled": "true"})"), 400);
  expect_error(api.post(dual, R"({"enabled": true, "force": 1})"), 400);
  CHECK(
      it::contains(expect_error(api.post(dual, R"({"enabled": true, "speed": 2})"), 400), "speed"));

  expect_error(api.post(rollback, "{"), 400);
  expect_error(api.post(rollback, R"({"reason": 5})"), 400);
  CHECK(it::contains(expect_error(api.post(rollback, R"({"reason": "x", "hard": true})"), 400),
                     "hard"));

  const json::object after = get_migration(api, "mig_inputs");
  CHECK(str(after, "phase") == "preparation");
  CHECK_FALSE(flag(after, "dual_write_enabled"));
  CHECK(num(after, "version") == num(before, "version"));
}

TEST_CASE("unknown migration ids are 404 for every migration endpoint") {
  const Api api = shared_stack().api;
  CHECK(it::contains(expect_error(api.get("/api/v1/migrations/no_such_migration"), 404),
                     "no_such_migration"));
  expect_error(api.post("/api/v1/migrations/no_such_migration/phase", R"({"phase": "dual_write"})"),
               404);
  expect_error(api.post("/api/v1/migrations/no_such_migration/dual-write", R"({"enabled": true})"),
               404);
  expect_error(api.post("/api/v1/migrations/no_such_migration/rollback", R"({"reason": "x"})"),
               404);
  expect_error(api.post("/api/v1/migrations/no_such_migration/rollback"), 404);
}

TEST_CASE("GET /api/v1/migrations/{id} returns the latest 20 log entries") {
  const Api api = shared_stack().api;
  (void)register_migration(api, "mig_many_logs", "ml_src", "t_sys_ml_src");
  for (int i = 0; i < 24; ++i) {
    const it::HttpResponse r =
        api.as("refusal_" + std::to_string(i))
            .post("/api/v1/migrations/mig_many_logs/phase", R"({"phase": "completed"})");
    REQUIRE(r.status == 409);
  }
  const auto logs = api_logs(api, "mig_many_logs");  // sorted by id
  REQUIRE(logs.size() == 20);
  CHECK(str(logs.front(), "actor") == "refusal_4");
  CHECK(str(logs.back(), "actor") == "refusal_23");
}

TEST_CASE("hostile or nonsensical registrations are refused or stored literally") {
  const Api api = shared_stack().api;
  const it::HttpResponse inj =
      api.post("/api/v1/migrations", R"({"migration_id": "x'; DROP TABLE t_sys_migrations; --",)"
                                     R"( "source_table": "a", "target_table": "b"})");
  INFO(describe(inj));
  CHECK((inj.status == 201 || inj.status == 422));
  const it::PgConn control = control_conn(*shared_stack().pg);
  CHECK(control.scalar("SELECT count(*) > 0 FROM t_sys_migrations") == "t");
  CHECK(api.get("/api/v1/migrations").status == 200);

  // A migration from a table to itself would write every row twice into the same table.
  CHECK(it::contains(refused_register(api,
                                      R"({"migration_id": "mig_self", "source_table": "same",)"
                                      R"( "target_table": "same"})",
                                      422, "mig_self"),
                     "same"));
  refused_register(api,
                   R"({"migration_id": "mig_self2", "source_table": "public.same",)"
                   R"( "target_table": "same"})",
                   422, "mig_self2");
}
