// Tables in another database (the SQL-layer issue): a migration whose `database` is not the
// control database has its shapes read from that database's catalog, and the sessions of that
// database are rewritten; the control database holds none of its tables. Sessions of any other
// database, the control database included, are never rewritten for it, nor for a migration
// whose tables are in the control database.
#include <catch2/catch.hpp>

#include "oracle.h"

using namespace pgphase;
using namespace pgphase::dw;

namespace {

constexpr const char* kAppDb = "od_app";
constexpr const char* kTables =
    "CREATE TABLE od_users (id serial PRIMARY KEY, name text, score int DEFAULT 7);"
    "CREATE TABLE t_sys_od_users (id int PRIMARY KEY, name text, score int)";

}  // namespace

TEST_CASE("a migration of another database: shapes from its catalog, its sessions dual-written") {
  Env& e = env();
  e.direct.exec_ok(std::string("DROP DATABASE IF EXISTS ") + kAppDb);
  e.direct.exec_ok(std::string("CREATE DATABASE ") + kAppDb);
  it::PgConn app_direct = it::PgConn::connect(e.stack.pg->conninfo(kAppDb));
  REQUIRE(app_direct.ok());
  app_direct.exec_ok(kTables);
  // The control database has no od_users: the shape must come from od_app's catalog.
  REQUIRE(e.direct.scalar("SELECT to_regclass('od_users') IS NULL") == "t");

  json::object extra;
  extra["database"] = kAppDb;
  extra["key_columns"] = json::array{"id"};
  register_migration(e.stack.api, "od_mig", "od_users", "t_sys_od_users", extra);
  set_phase(e.stack.api, "od_mig", "dual_write");

  it::PgConn app = it::PgConn::connect(e.stack.proxy->conninfo(kAppDb));
  REQUIRE(app.ok());
  // The shapes are read within a reload interval of the phase change.
  REQUIRE(ctl::time_until(
      [&] {
        app.exec_ok("INSERT INTO od_users (name) VALUES ('probe')");
        return app_direct.scalar("SELECT count(*) FROM t_sys_od_users") != "0";
      },
      std::chrono::seconds(10), std::chrono::milliseconds(100)));
  for (Protocol p : kBoth) {
    const std::string a = p == Protocol::kSimple ? "'a1'" : "'a2'";
    const std::string b = p == Protocol::kSimple ? "'b1'" : "'b2'";
    CHECK(run(app, p, "INSERT INTO od_users (name) VALUES (" + a + "), (" + b + ") RETURNING score")
              .cmd_status() == "INSERT 0 2");
    CHECK(run(app, p, "UPDATE od_users SET score = score + 1 WHERE name = " + a).cmd_status() ==
          "UPDATE 1");
    CHECK(run(app, p, "DELETE FROM od_users WHERE name = " + b).cmd_status() == "DELETE 1");
  }
  CHECK(differences(app_direct, "od_users", "t_sys_od_users", "id, name, score") == 0);
  CHECK(app_direct.scalar("SELECT count(*) FROM t_sys_od_users") ==
        app_direct.scalar("SELECT count(*) FROM od_users"));

  // Rows written before dual_write (directly, not through pgphase) are copied by a backfill run
  // in od_app; its progress is kept in the control database.
  app_direct.exec_ok(
      "INSERT INTO od_users (name) SELECT 'old ' || g FROM generate_series(1, 500) g");
  REQUIRE(differences(app_direct, "od_users", "t_sys_od_users", "id, name, score") == 500);
  const it::HttpResponse start =
      e.stack.api.post("/api/v1/migrations/od_mig/backfill", R"({"batch_size": 120})");
  INFO(describe(start));
  REQUIRE(start.status == 200);
  REQUIRE(ctl::time_until(
      [&] {
        const it::HttpResponse r = e.stack.api.get("/api/v1/migrations/od_mig/backfill");
        return r.status == 200 && body_object(r).at("status").as_string() == "completed";
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100)));
  CHECK(differences(app_direct, "od_users", "t_sys_od_users", "id, name, score") == 0);
  CHECK(e.direct.scalar("SELECT rows_copied FROM t_sys_backfills WHERE migration_id = 'od_mig'") ==
        app_direct.scalar("SELECT count(*) FROM od_users"));

  // A validation of the migration compares the tables in od_app and keeps its report in the
  // control database: one difference injected in the target is found.
  app_direct.exec_ok(
      "UPDATE t_sys_od_users SET name = 'drifted' WHERE id = (SELECT max(id) FROM t_sys_od_users)");
  const it::HttpResponse v = e.stack.api.post(
      "/api/v1/validations", R"({"migration_id": "od_mig", "level": "comprehensive"})");
  INFO(describe(v));
  REQUIRE(v.status == 202);
  const std::string vid(body_object(v).at("validation_id").as_string());
  json::object done;
  REQUIRE(ctl::time_until(
      [&] {
        const it::HttpResponse r = e.stack.api.get("/api/v1/validations/" + vid);
        if (r.status != 200) return false;
        done = body_object(r);
        return done.at("status").as_string() != "running";
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100)));
  INFO(json::serialize(done));
  REQUIRE(done.at("status").as_string() == "completed");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_consistency_checks WHERE check_id = '" + vid +
                        "'") == "1");
  CHECK(json::serialize(done.at("report")).find("drifted") != std::string::npos);

  // The same table name in the control database: its sessions are not rewritten for od_mig.
  e.direct.exec_ok(kTables);
  it::PgConn control_session = e.proxied();
  control_session.exec_ok("INSERT INTO od_users (name) VALUES ('control db')");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_od_users") == "0");
  e.direct.exec_ok("DROP TABLE od_users, t_sys_od_users");
}

TEST_CASE("a migration of the control database does not rewrite sessions of other databases") {
  Env& e = env();  // users_mig: users -> t_sys_users in the control database, in dual_write
  e.direct.exec_ok("DROP DATABASE IF EXISTS od_other");
  e.direct.exec_ok("CREATE DATABASE od_other");
  it::PgConn other_direct = it::PgConn::connect(e.stack.pg->conninfo("od_other"));
  REQUIRE(other_direct.ok());
  other_direct.exec_ok(
      "CREATE TABLE users (id int PRIMARY KEY, name text);"
      "CREATE TABLE t_sys_users (id int PRIMARY KEY, name text)");
  it::PgConn other = it::PgConn::connect(e.stack.proxy->conninfo("od_other"));
  REQUIRE(other.ok());
  for (Protocol p : kBoth) {
    CHECK(run(other, p,
              "INSERT INTO users VALUES (" + std::to_string(p == Protocol::kSimple ? 1 : 2) +
                  ", 'x')")
              .cmd_status() == "INSERT 0 1");
  }
  CHECK(other_direct.scalar("SELECT count(*) FROM users") == "2");
  CHECK(other_direct.scalar("SELECT count(*) FROM t_sys_users") == "0");
}
