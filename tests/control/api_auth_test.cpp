// Admin API: the bearer token (401 for every POST without it or with a wrong one, GETs open),
// no token configured at all, wrong methods (405) and unknown routes (404).
#include <catch2/catch.hpp>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

struct Post {
  std::string path;
  std::string body;
};

// Every POST endpoint, each with a body that would succeed with the token (migration auth_mig in
// read_switch, switch auth_sw inactive).
std::vector<Post> every_post() {
  return {
      {"/api/v1/migrations",
       R"({"migration_id": "auth_new", "source_table": "an_src", "target_table": "t_sys_an"})"},
      {"/api/v1/migrations/auth_mig/phase", R"({"phase": "cleanup", "force": true})"},
      {"/api/v1/migrations/auth_mig/dual-write", R"({"enabled": false, "force": true})"},
      {"/api/v1/migrations/auth_mig/rollback", R"({"reason": "intruder"})"},
      {"/api/v1/switches",
       R"({"config_id": "auth_new_sw", "table_name": "an_src", "strategy": "gradual"})"},
      {"/api/v1/switches/auth_sw/activate", ""},
      {"/api/v1/switches/auth_sw/percentage", R"({"percentage": 50})"},
      {"/api/v1/switches/auth_sw/rollback", R"({"reason": "intruder"})"},
  };
}

void setup_auth_objects(const Api& api) {
  static bool done = false;
  if (done) return;
  (void)register_migration(api, "auth_mig", "auth_tab", "t_sys_auth_tab");
  advance_to(api, "auth_mig", "read_switch");
  (void)register_switch(api, "auth_sw", "auth_tab", "auth_mig");
  done = true;
}

// Everything a refused POST must not have touched.
std::string state(const Api& api) {
  return json::serialize(body_object(api.get("/api/v1/migrations"))) +
         json::serialize(body_object(api.get("/api/v1/switches")));
}

}  // namespace

TEST_CASE("every POST without the token, with a wrong one or another scheme is 401") {
  const Stack& s = shared_stack();
  setup_auth_objects(s.api);
  const std::string before = state(s.api);
  for (const Post& p : every_post()) {
    INFO("POST " << p.path << " " << p.body);
    const Headers json_only;
    CHECK(it::icontains(
        expect_error(http_request(s.api.port, "POST", p.path, json_only, p.body), 401), "token"));
    expect_error(s.api.with_token("wrong-token").post(p.path, p.body), 401);
    expect_error(s.api.with_token(std::string(kToken) + "x").post(p.path, p.body), 401);
    expect_error(s.api.with_token(std::string(kToken).substr(1)).post(p.path, p.body), 401);
    expect_error(http_request(s.api.port, "POST", p.path, {{"Authorization", kToken}}, p.body),
                 401);
    expect_error(http_request(s.api.port, "POST", p.path,
                              {{"Authorization", std::string("Basic ") + kToken}}, p.body),
                 401);
  }
  // Authentication comes first: without the token an unknown id is 401 too (no probing).
  expect_error(http_request(s.api.port, "POST", "/api/v1/migrations/no_such/phase", {},
                            R"({"phase": "dual_write"})"),
               401);
  expect_error(http_request(s.api.port, "POST", "/api/v1/switches/no_such/activate", {}, ""), 401);
  CHECK(state(s.api) == before);
  CHECK(s.api.get("/api/v1/migrations/auth_new").status == 404);
  CHECK(s.api.get("/api/v1/switches/auth_new_sw").status == 404);

  // The same requests with the token go through (so the 401s above were about the token).
  const it::HttpResponse ok = s.api.post(every_post()[0].path, every_post()[0].body);
  INFO(describe(ok));
  CHECK(ok.status == 201);
  const it::HttpResponse pct = s.api.post("/api/v1/switches/auth_sw/activate");
  INFO(describe(pct));
  CHECK(pct.status == 200);
}

TEST_CASE("every GET works without a token") {
  const Stack& s = shared_stack();
  setup_auth_objects(s.api);
  const Api anonymous = s.api.with_token("");
  for (const char* path :
       {"/api/v1/migrations", "/api/v1/migrations/auth_mig", "/api/v1/switches",
        "/api/v1/switches/auth_sw", "/api/v1/switches/auth_sw/analytics", "/metrics", "/healthz"}) {
    INFO("GET " << path);
    const it::HttpResponse r = anonymous.get(path);
    INFO(describe(r));
    CHECK(r.status == 200);
  }
}

TEST_CASE("wrong methods are 405, unknown routes 404, both as JSON errors") {
  const Stack& s = shared_stack();
  setup_auth_objects(s.api);
  const std::vector<std::pair<std::string, std::string>> wrong = {
      {"DELETE", "/api/v1/migrations"},
      {"PUT", "/api/v1/migrations"},
      {"POST", "/api/v1/migrations/auth_mig"},
      {"DELETE", "/api/v1/migrations/auth_mig"},
      {"GET", "/api/v1/migrations/auth_mig/phase"},
      {"PUT", "/api/v1/migrations/auth_mig/phase"},
      {"GET", "/api/v1/migrations/auth_mig/dual-write"},
      {"GET", "/api/v1/migrations/auth_mig/rollback"},
      {"PATCH", "/api/v1/switches"},
      {"POST", "/api/v1/switches/auth_sw"},
      {"GET", "/api/v1/switches/auth_sw/activate"},
      {"GET", "/api/v1/switches/auth_sw/percentage"},
      {"DELETE", "/api/v1/switches/auth_sw/rollback"},
      {"POST", "/api/v1/switches/auth_sw/analytics"},
  };
  const std::string before = state(s.api);
  for (const auto& [method, path] : wrong) {
    INFO(method << " " << path);
    expect_error(s.api.send(method, path, method == "GET" ? "" : "{}"), 405);
  }
  CHECK(state(s.api) == before);
  for (const char* path : {"/api/v1/nothing", "/api/v1/migrations/auth_mig/bogus",
                           "/api/v2/migrations", "/api/v1/switches/auth_sw/history/1"}) {
    INFO("GET " << path);
    expect_error(s.api.get(path), 404);
  }
}

TEST_CASE("with no token configured, POSTs are 401 with a detail saying so; GETs work") {
  const Stack& s = shared_stack();
  setup_auth_objects(s.api);
  ServeOptions o = serve_on(*s.pg);
  o.token = false;
  const auto open = start_pgphase(o);
  const Api api = api_for(*open);
  const std::string before = state(s.api);
  for (const Post& p : every_post()) {
    INFO("POST " << p.path);
    const std::string why = expect_error(api.post(p.path, p.body), 401);
    CHECK((it::contains(why, kTokenEnv) || it::icontains(why, "configured") ||
           it::icontains(why, "not set")));
  }
  CHECK(state(s.api) == before);
  const it::HttpResponse list = api.get("/api/v1/migrations");
  INFO(describe(list));
  CHECK(list.status == 200);
  CHECK(it::contains(list.body, "auth_mig"));
}

TEST_CASE("plain curl works: lower-case header names, curl's default form content type") {
  const Stack& s = shared_stack();
  setup_auth_objects(s.api);
  (void)register_migration(s.api, "curl_mig", "curl_tab", "t_sys_curl_tab");
  const std::string url =
      "http://127.0.0.1:" + std::to_string(s.api.port) + "/api/v1/migrations/curl_mig/phase";
  // `curl -d` sends Content-Type: application/x-www-form-urlencoded.
  const it::RunResult r = it::run(
      {"curl", "-sS", "-w", "\n%{http_code}", "-H", std::string("authorization: Bearer ") + kToken,
       "-H", "x-pgphase-actor: curl_user", "-d", R"({"phase": "dual_write"})", url});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.ends_with("\n200"));
  CHECK(str(get_migration(s.api, "curl_mig"), "phase") == "dual_write");
  CHECK(str(api_logs(s.api, "curl_mig").back(), "actor") == "curl_user");
}

TEST_CASE("roles: the viewer token reads reports; every change needs the operator token (403)") {
  const Stack& s = shared_stack();
  setup_auth_objects(s.api);
  setenv("PGPHASE_VIEWER_TOKEN", "viewer-s3cret", 1);
  std::unique_ptr<it::ProxyProcess> roles;
  try {
    roles = start_pgphase(serve_on(*s.pg));
  } catch (...) {
    unsetenv("PGPHASE_VIEWER_TOKEN");
    throw;
  }
  unsetenv("PGPHASE_VIEWER_TOKEN");
  const Api op = api_for(*roles);
  const Api viewer = op.with_token("viewer-s3cret");
  const Api anonymous = op.with_token("");

  // What each token may do, as the console asks.
  const json::object who_op = body_object(op.get("/api/v1/auth"));
  CHECK(who_op.at("role").as_string() == "operator");
  CHECK(who_op.at("may_change").as_bool());
  const json::object who_viewer = body_object(viewer.get("/api/v1/auth"));
  CHECK(who_viewer.at("role").as_string() == "viewer");
  CHECK(who_viewer.at("may_read_reports").as_bool());
  CHECK_FALSE(who_viewer.at("may_change").as_bool());
  const json::object who_none = body_object(anonymous.get("/api/v1/auth"));
  CHECK(who_none.at("role").is_null());
  CHECK(who_none.at("viewer_token_configured").as_bool());

  // Reports with row values: a token of either role, none without.
  CHECK(viewer.get("/api/v1/validations").status == 200);
  CHECK(op.get("/api/v1/validations").status == 200);
  CHECK(anonymous.get("/api/v1/validations").status == 401);
  CHECK(op.with_token("guess").get("/api/v1/validations").status == 401);

  // Every change with the viewer token: 403 naming both variables, nothing changed.
  const std::string before = state(s.api);
  for (const Post& p : every_post()) {
    INFO("POST " << p.path);
    const std::string why = expect_error(viewer.post(p.path, p.body), 403);
    CHECK(it::contains(why, "PGPHASE_VIEWER_TOKEN"));
    CHECK(it::contains(why, kTokenEnv));
  }
  CHECK(state(s.api) == before);
  // The operator token still changes.
  CHECK(op.post("/api/v1/switches/auth_sw/percentage", R"({"percentage": 0})").status != 403);
  // Every change request is audited with its actor, the role of its token and its answer.
  const it::PgConn control = control_conn(*s.pg);
  CHECK(control.scalar("SELECT count(*) FROM t_sys_audit_log WHERE role = 'viewer' AND status = "
                       "403 AND actor = 'tester'") == std::to_string(every_post().size()));
  CHECK(control.scalar("SELECT count(*) FROM t_sys_audit_log WHERE role = 'operator' AND path = "
                       "'/api/v1/switches/auth_sw/percentage'") != "0");
  (void)anonymous.post("/api/v1/migrations/auth_mig/rollback", R"({"reason": "anonymous"})");
  CHECK(control.scalar("SELECT role || ' ' || status FROM t_sys_audit_log ORDER BY id DESC "
                       "LIMIT 1") == "none 401");
  stop_pgphase(*roles);
}
