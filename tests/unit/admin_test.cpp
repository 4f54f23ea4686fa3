// admin/ without a database: bearer-token auth, the router's 404/405/401/503 answers, which
// requests run off the I/O thread, the migration metrics read from a snapshot, and the routing
// metrics rendered from the workers' figures.
#include <prometheus/text_serializer.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <memory>

#include "admin/auth.h"
#include "admin/metrics.h"
#include "admin/migration_metrics.h"
#include "admin/routes.h"
#include "migration/control_plane.h"
#include "stats/stats.h"

namespace pgphase::admin {
namespace {

namespace json = boost::json;

HttpRequest req(std::string method, std::string target, std::string body = {},
                std::string authorization = {}) {
  return {std::move(method), std::move(target), std::move(body), std::move(authorization), {}};
}

std::string error_of(const HttpResponse& r) {
  const json::value v = json::parse(r.body);
  return std::string(v.at("error").as_string()) + " | " + std::string(v.at("detail").as_string());
}

TEST_CASE("bearer token: missing, wrong scheme, wrong token, right token") {
  const AdminAuth auth("s3cret", "PGPHASE_ADMIN_TOKEN");
  CHECK(auth.check(req("POST", "/x", "", "Bearer s3cret")) == std::nullopt);
  CHECK(auth.check(req("POST", "/x", "", "bearer   s3cret ")) == std::nullopt);
  for (const char* bad :
       {"", "s3cret", "Basic s3cret", "Bearer s3cre", "Bearer s3cret2", "Bearer", "Bearer  "}) {
    INFO("Authorization: " << bad);
    const auto refused = auth.check(req("POST", "/x", "", bad));
    REQUIRE(refused);
    CHECK(refused->status == 401);
    CHECK_THAT(error_of(*refused), Catch::Contains("token"));
  }
}

TEST_CASE("no token configured: every change is refused, naming the variable") {
  const AdminAuth none("", "PGPHASE_ADMIN_TOKEN");
  CHECK_FALSE(none.configured());
  const auto refused = none.check(req("POST", "/x", "", "Bearer anything"));
  REQUIRE(refused);
  CHECK(refused->status == 401);
  CHECK_THAT(error_of(*refused),
             Catch::Contains("no admin token configured: set PGPHASE_ADMIN_TOKEN"));
}

TEST_CASE("roles: the viewer token reads, only the operator token changes") {
  const AdminAuth auth("op-token", "PGPHASE_ADMIN_TOKEN", "view-token", "PGPHASE_VIEWER_TOKEN");
  CHECK(auth.role_of(req("GET", "/x", "", "Bearer op-token")) == Role::kOperator);
  CHECK(auth.role_of(req("GET", "/x", "", "Bearer view-token")) == Role::kViewer);
  CHECK(auth.role_of(req("GET", "/x", "", "Bearer other")) == std::nullopt);
  CHECK(auth.role_of(req("GET", "/x", "", "")) == std::nullopt);
  CHECK(auth.check(req("GET", "/x", "", "Bearer view-token"), Role::kViewer) == std::nullopt);
  CHECK(auth.check(req("GET", "/x", "", "Bearer op-token"), Role::kViewer) == std::nullopt);
  CHECK(auth.check(req("POST", "/x", "", "Bearer op-token"), Role::kOperator) == std::nullopt);
  const auto forbidden = auth.check(req("POST", "/x", "", "Bearer view-token"), Role::kOperator);
  REQUIRE(forbidden);
  CHECK(forbidden->status == 403);
  CHECK_THAT(error_of(*forbidden),
             Catch::Contains("may only read") && Catch::Contains("PGPHASE_ADMIN_TOKEN"));
  const auto wrong = auth.check(req("GET", "/x", "", "Bearer nope"), Role::kViewer);
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  // A viewer token alone: reads work, changes are refused for want of an operator token.
  const AdminAuth viewer_only("", "PGPHASE_ADMIN_TOKEN", "v", "PGPHASE_VIEWER_TOKEN");
  CHECK(viewer_only.check(req("GET", "/x", "", "Bearer v"), Role::kViewer) == std::nullopt);
  const auto none = viewer_only.check(req("POST", "/x", "", "Bearer v"), Role::kOperator);
  REQUIRE(none);
  CHECK(none->status == 401);
}

TEST_CASE("constant_time_equal") {
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  CHECK_FALSE(constant_time_equal("", "a"));
}

TEST_CASE("router without a control database") {
  const stats::Stats figures(1, false);
  Metrics metrics(figures);
  const AdminAuth auth("t", "PGPHASE_ADMIN_TOKEN");
  AdminContext ctx{metrics, [] { return true; }, nullptr, &auth};

  CHECK(handle_request(req("GET", "/healthz"), ctx).status == 200);
  CHECK(handle_request(req("GET", "/metrics"), ctx).status == 200);
  for (const char* path : {"/api/v1/migrations", "/api/v1/migrations/", "/api/v1/switches",
                           "/api/v1/migrations/a%2Fb", "/api/v1/switches/x/analytics"}) {
    INFO(path);
    const HttpResponse r = handle_request(req("GET", path), ctx);
    CHECK(r.status == 503);
    CHECK_THAT(error_of(r), Catch::Contains("control database"));
  }
  // Changes: the token first, then 503.
  CHECK(handle_request(req("POST", "/api/v1/migrations/m/phase", "{}"), ctx).status == 401);
  CHECK(handle_request(req("POST", "/api/v1/migrations/m/phase", "{}", "Bearer t"), ctx).status ==
        503);
  // Wrong methods and unknown routes.
  const HttpResponse put = handle_request(req("PUT", "/api/v1/migrations"), ctx);
  CHECK(put.status == 405);
  CHECK(put.headers.size() == 1);
  CHECK(handle_request(req("GET", "/api/v1/migrations/m/phase"), ctx).status == 405);
  CHECK(handle_request(req("POST", "/api/v1/switches/s/analytics"), ctx).status == 405);
  CHECK(handle_request(req("GET", "/api/v1/migrations/m/bogus"), ctx).status == 404);
  CHECK(handle_request(req("GET", "/api/v2/migrations"), ctx).status == 404);
  CHECK(handle_request(req("GET", "/api/v1/switches/s/history/1"), ctx).status == 404);
}

TEST_CASE("router with an unreachable control database: reads and changes answer 503") {
  const stats::Stats figures(1, false);
  Metrics metrics(figures);
  const AdminAuth auth("t", "PGPHASE_ADMIN_TOKEN");
  migration::ControlPlane control(
      migration::ControlConfig{"host=127.0.0.1 port=1 dbname=x connect_timeout=1", 2.0, 1800, {}});
  AdminContext ctx{metrics, [] { return true; }, &control, &auth};
  CHECK(handle_request(req("GET", "/api/v1/migrations"), ctx).status == 503);
  // Bad input is reported before the database is asked.
  CHECK(handle_request(req("POST", "/api/v1/migrations/m/phase", "{", "Bearer t"), ctx).status ==
        400);
  CHECK(
      handle_request(req("POST", "/api/v1/migrations/m/phase", R"({"phase": 1})", "Bearer t"), ctx)
          .status == 400);
  CHECK(handle_request(
            req("POST", "/api/v1/migrations/m/phase", R"({"phase": "warp"})", "Bearer t"), ctx)
            .status == 422);
  CHECK(handle_request(
            req("POST", "/api/v1/switches/s/percentage", R"({"percentage": 101})", "Bearer t"), ctx)
            .status == 422);
  CHECK(
      handle_request(req("POST", "/api/v1/migrations", R"({"migration_id": "m"})", "Bearer t"), ctx)
          .status == 400);
  const HttpResponse change =
      handle_request(req("POST", "/api/v1/migrations/m/rollback", "", "Bearer t"), ctx);
  CHECK(change.status == 503);
}

TEST_CASE("requests that may wait for the control database run off the I/O thread") {
  CHECK_FALSE(may_block(req("GET", "/healthz")));
  CHECK_FALSE(may_block(req("GET", "/metrics")));
  CHECK_FALSE(may_block(req("GET", "/api/v1/migrations")));
  CHECK_FALSE(may_block(req("GET", "/api/v1/switches/s")));
  CHECK(may_block(req("GET", "/api/v1/migrations/m")));  // with its logs
  CHECK(may_block(req("GET", "/api/v1/switches/s/analytics")));
  CHECK(may_block(req("POST", "/api/v1/migrations")));
  CHECK(may_block(req("POST", "/api/v1/switches/s/activate")));
}

TEST_CASE("migration metrics from the snapshot in force") {
  auto snap = std::make_shared<migration::Snapshot>();
  snap->generation = 7;
  migration::Migration m;
  m.migration_id = "users_table_migration";
  m.phase = migration::Phase::kDualWrite;
  m.dual_write_enabled = true;
  snap->migrations.push_back(m);
  migration::SwitchConfig s;
  s.config_id = "users_gradual_switch";
  s.table_name = "users";
  s.switch_percentage = 25;
  s.status = migration::SwitchStatus::kActive;
  snap->switches.push_back(s);

  const stats::Stats figures(1, false);
  Metrics metrics(figures);
  auto collector = std::make_shared<MigrationCollector>(
      [snap]() -> migration::SnapshotPtr { return snap; }, [] { return true; });
  metrics.add_collectable(collector);
  const std::string text = metrics.render();
  CHECK_THAT(
      text,
      Catch::Contains(
          R"(pgphase_migration_phase{migration_id="users_table_migration",phase="dual_write"} 1)"));
  CHECK_THAT(
      text,
      Catch::Contains(
          R"(pgphase_migration_phase{migration_id="users_table_migration",phase="preparation"} 0)"));
  CHECK_THAT(
      text, Catch::Contains(
                R"(pgphase_migration_dual_write_enabled{migration_id="users_table_migration"} 1)"));
  CHECK_THAT(
      text,
      Catch::Contains(
          R"(pgphase_read_switch_percentage{config_id="users_gradual_switch",table="users"} 25)"));
  CHECK_THAT(text,
             Catch::Contains(R"(pgphase_read_switch_active{config_id="users_gradual_switch"} 1)"));
  CHECK_THAT(text, Catch::Contains("pgphase_control_db_connected 1"));
  CHECK_THAT(text, Catch::Contains("pgphase_state_generation 7"));

  collector.reset();  // released: no longer rendered
  CHECK_THAT(metrics.render(), !Catch::Contains("pgphase_state_generation"));
}

TEST_CASE("routing metrics rendered from the workers' figures") {
  stats::Stats figures(2, true);
  Metrics metrics(figures);
  // Before any statement: the analysis series only.
  std::string text = metrics.render();
  CHECK_THAT(text, Catch::Contains(R"(pgphase_statement_analysis_total{result="hit"} 0)"));
  CHECK_THAT(text, Catch::Contains("pgphase_statement_analysis_seconds_total 0"));
  CHECK_THAT(text, !Catch::Contains("pgphase_read_switch_statements_total"));

  figures.routing().shard(0).mirrored("m1", stats::WriteOp::kUpdate, true, 4);
  figures.routing().shard(1).mirrored("m1", stats::WriteOp::kUpdate, true, 1);
  figures.routing().shard(1).refused("m1");
  figures.routing().shard(0).analysed(true, 2'000'000'000);
  figures.routing().shard(0).read("sw", true, true, 2'000'000);  // 2 ms
  figures.routing().shard(1).read("sw", true, false, 20'000'000);
  figures.routing().shard(1).unroutable("m1", "sw");
  figures.routing().shard(1).unroutable("m1", "sw");
  text = metrics.render();
  CHECK_THAT(text, Catch::Contains("# HELP pgphase_dual_write_statements_total Writes to a "
                                   "migrating table mirrored to its other table"));
  CHECK_THAT(text, Catch::Contains(R"(pgphase_dual_write_statements_total{migration_id="m1",)"
                                   R"(operation="update",result="ok"} 2)"));
  CHECK_THAT(text, !Catch::Contains(R"(operation="update",result="error")"));
  CHECK_THAT(text, Catch::Contains(
                       R"(pgphase_dual_write_rows_total{migration_id="m1",operation="update"} 5)"));
  CHECK_THAT(
      text,
      Catch::Contains(R"(pgphase_unsupported_writes_total{migration_id="m1",action="refused"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(pgphase_statement_analysis_total{result="hit"} 1)"));
  CHECK_THAT(text, Catch::Contains("pgphase_statement_analysis_seconds_total 2"));
  CHECK_THAT(text, Catch::Contains(R"(pgphase_read_switch_statements_total{config_id="sw",)"
                                   R"(side="target",result="error"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(pgphase_read_switch_statements_total{config_id="sw",)"
                                   R"(side="source",result="ok"} 0)"));
  CHECK_THAT(text, Catch::Contains("# TYPE pgphase_read_switch_latency_seconds histogram"));
  CHECK_THAT(text, Catch::Contains(R"(pgphase_read_switch_latency_seconds_bucket{config_id="sw",)"
                                   R"(side="target",le="0.0025"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(pgphase_read_switch_latency_seconds_bucket{config_id="sw",)"
                                   R"(side="target",le="0.025"} 2)"));
  CHECK_THAT(text, Catch::Contains(R"(pgphase_read_switch_latency_seconds_bucket{config_id="sw",)"
                                   R"(side="target",le="+Inf"} 2)"));
  CHECK_THAT(text,
             Catch::Contains(
                 R"(pgphase_read_switch_latency_seconds_count{config_id="sw",side="target"} 2)"));
  CHECK_THAT(text, Catch::Contains(
                       R"(pgphase_read_unroutable_total{migration_id="m1",config_id="sw"} 2)"));
}

TEST_CASE("without a control plane no routing families are rendered") {
  const stats::Stats figures(1, false);
  const Metrics metrics(figures);
  CHECK_THAT(metrics.render(), !Catch::Contains("pgphase_statement_analysis_total"));
}

}  // namespace
}  // namespace pgphase::admin
