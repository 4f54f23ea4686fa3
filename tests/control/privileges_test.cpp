// The privileges preflight of phase changes through the admin API (docs/control-plane.md,
// "Phases"): a role that can write the source but not the target makes the move to dual_write
// (and to validation, and enable-dual-write) a 409 naming the role and the privileges, force or
// not; once granted, the move succeeds and the role's writes through pgphase land in both tables.
// read_switch also needs every reader of the source to read the target; cleanup needs every
// writer of the target to write the source. Tables that do not exist add no message.
#include <catch2/catch.hpp>

#include "ctl_env.h"

using namespace pgphase;
using namespace pgphase::ctl;

namespace {

std::string body(const std::string& key, bool value, bool force) {
  return json::serialize(json::object{{key, value}, {"force", force}});
}

// POST .../phase expecting 409; returns the error text.
std::string refused_phase(const Api& api, const std::string& id, const std::string& to,
                          bool force = false) {
  INFO(id << " -> " << to << (force ? " (forced)" : ""));
  const std::string b = json::serialize(json::object{{"phase", to}, {"force", force}});
  return expect_error(api.post("/api/v1/migrations/" + id + "/phase", b), 409);
}

// The details of the latest log entry of `id`, as JSON text.
std::string latest_log_details(const it::PgConn& control, const std::string& id) {
  const it::PgResult r = control.exec_params(
      "SELECT status, coalesce(details::text, '') FROM t_sys_migration_logs "
      "WHERE migration_id = $1 ORDER BY id DESC LIMIT 1",
      {id});
  INFO(r.describe());
  REQUIRE(r.ok());
  REQUIRE(r.rows() == 1);
  return r.value(0, 0) + " " + r.value(0, 1);
}

// The number of differences between users and t_sys_users (0: same rows).
std::string differences(const it::PgConn& c) {
  return c.scalar(
      "SELECT (SELECT count(*) FROM (SELECT id, name FROM users EXCEPT "
      "SELECT id, name FROM t_sys_users) a) + (SELECT count(*) FROM (SELECT id, name FROM "
      "t_sys_users EXCEPT SELECT id, name FROM users) b)");
}

it::PgConn proxied(const Stack& s) {
  it::PgConn c = it::PgConn::connect(s.proxy->conninfo(kControlDb, "postgres"));
  INFO(c.error_message());
  REQUIRE(c.ok());
  return c;
}

}  // namespace

TEST_CASE("dual write waits until every writer of the source can write the target") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  control.exec_ok(
      "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);"
      "CREATE TABLE t_sys_users (id integer PRIMARY KEY, name text NOT NULL);"
      "CREATE ROLE app_writer NOLOGIN;"
      "GRANT INSERT, UPDATE, DELETE, SELECT ON users TO app_writer;"
      "GRANT USAGE ON SEQUENCE users_id_seq TO app_writer");
  (void)register_migration(s.api, "users_mig", "users", "t_sys_users");

  // Refused, with the role, what it can do and what it lacks, and the GRANT that fixes it.
  std::string why = refused_phase(s.api, "users_mig", "dual_write");
  CHECK(it::contains(why,
                     "role app_writer can INSERT, UPDATE, DELETE public.users but lacks INSERT, "
                     "UPDATE, DELETE, SELECT on public.t_sys_users"));
  CHECK(it::contains(why, "42501"));
  CHECK(it::contains(why,
                     "GRANT INSERT, UPDATE, DELETE, SELECT ON \"public\".\"t_sys_users\" TO "
                     "\"app_writer\""));
  const std::string logged = latest_log_details(control, "users_mig");
  CHECK(it::contains(logged, "refused"));
  CHECK(it::contains(logged, "app_writer"));
  CHECK(it::contains(logged, "privilege_gaps"));

  // force does not bypass it, and enable-dual-write (the same move) is refused too.
  CHECK(it::contains(refused_phase(s.api, "users_mig", "dual_write", true), "role app_writer"));
  why = expect_error(
      s.api.post("/api/v1/migrations/users_mig/dual-write", body("enabled", true, true)), 409);
  CHECK(it::contains(why,
                     "cannot enable dual write for users_mig in preparation: role "
                     "app_writer can INSERT, UPDATE, DELETE public.users"));
  CHECK(str(get_migration(s.api, "users_mig"), "phase") == "preparation");

  // Only what is still missing is named.
  control.exec_ok("GRANT INSERT ON t_sys_users TO app_writer");
  CHECK(it::contains(refused_phase(s.api, "users_mig", "dual_write"),
                     "but lacks UPDATE, DELETE, SELECT on public.t_sys_users"));

  control.exec_ok("GRANT UPDATE, DELETE, SELECT ON t_sys_users TO app_writer");
  const json::object m = set_phase(s.api, "users_mig", "dual_write");
  CHECK(str(m, "phase") == "dual_write");
  CHECK(flag(m, "dual_write_enabled"));

  // app_writer's writes through pgphase now land in both tables.
  const it::PgConn app = proxied(s);
  app.exec_ok("SET ROLE app_writer");
  CHECK(app.scalar("SELECT current_user") == "app_writer");
  app.exec_ok("INSERT INTO users (name) VALUES ('alice'), ('bob'), ('carol')");
  app.exec_ok("UPDATE users SET name = 'Bob' WHERE name = 'bob'");
  app.exec_ok("DELETE FROM users WHERE name = 'carol'");
  CHECK(control.scalar("SELECT string_agg(name, ',' ORDER BY id) FROM t_sys_users") == "alice,Bob");
  CHECK(differences(control) == "0");

  // A writer granted on the source alone afterwards fails, and holds validation up.
  control.exec_ok(
      "CREATE ROLE late_writer NOLOGIN; GRANT INSERT, SELECT ON users TO late_writer;"
      "GRANT USAGE ON SEQUENCE users_id_seq TO late_writer");
  const it::PgConn late = proxied(s);
  late.exec_ok("SET ROLE late_writer");
  const it::PgResult denied = late.exec("INSERT INTO users (name) VALUES ('dave')");
  INFO(denied.describe());
  CHECK(denied.sqlstate() == "42501");  // what the preflight prevents
  why = refused_phase(s.api, "users_mig", "validation");
  CHECK(it::contains(why,
                     "cannot move users_mig from dual_write to validation: role "
                     "late_writer can INSERT public.users but lacks INSERT, UPDATE, "
                     "SELECT on public.t_sys_users"));
  CHECK_FALSE(it::contains(why, "app_writer"));
  control.exec_ok("REVOKE INSERT ON users FROM late_writer");
  CHECK(str(set_phase(s.api, "users_mig", "validation"), "phase") == "validation");
  CHECK(differences(control) == "0");
}

TEST_CASE("read_switch needs every reader of the source to read the target") {
  Stack& s = shared_stack();
  const it::PgConn control = control_conn(*s.pg);
  control.exec_ok(
      "CREATE TABLE accounts (id integer PRIMARY KEY, owner text);"
      "CREATE TABLE t_sys_accounts (id integer PRIMARY KEY, owner text);"
      "CREATE ROLE app_reader NOLOGIN; GRANT SELECT ON accounts TO app_reader;"
      "CREATE ROLE target_writer NOLOGIN;"
      "GRANT INSERT, UPDATE, DELETE, SELECT ON t_sys_accounts TO target_writer");
  (void)register_migration(s.api, "accounts_mig", "accounts", "t_sys_accounts");
  // A reader alone does not hold dual write up; neither does a writer of the target only.
  (void)set_phase(s.api, "accounts_mig", "dual_write");
  (void)set_phase(s.api, "accounts_mig", "validation");
  insert_check(control, "accounts_mig", 1.0);

  const std::string reader_gap =
      "role app_reader can SELECT public.accounts but lacks SELECT on public.t_sys_accounts";
  CHECK(it::contains(refused_phase(s.api, "accounts_mig", "read_switch"), reader_gap));
  // force skips the consistency check, not this.
  CHECK(it::contains(refused_phase(s.api, "accounts_mig", "read_switch", true), reader_gap));
  control.exec_ok("GRANT SELECT ON t_sys_accounts TO app_reader");
  CHECK(str(set_phase(s.api, "accounts_mig", "read_switch"), "phase") == "read_switch");

  // cleanup mirrors writes of the target back to the source: target_writer needs the source.
  (void)register_switch(s.api, "accounts_switch", "accounts", "accounts_mig");
  REQUIRE(s.api.post("/api/v1/switches/accounts_switch/activate").status == 200);
  (void)set_percentage(s.api, "accounts_switch", 100);
  const std::string why = refused_phase(s.api, "accounts_mig", "cleanup");
  CHECK(it::contains(why,
                     "role target_writer can INSERT, UPDATE, DELETE public.t_sys_accounts but "
                     "lacks INSERT, UPDATE, DELETE, SELECT on public.accounts"));
  CHECK_FALSE(it::contains(why, "app_reader"));
  control.exec_ok("GRANT INSERT, UPDATE, DELETE, SELECT ON accounts TO target_writer");
  CHECK(str(set_phase(s.api, "accounts_mig", "cleanup"), "phase") == "cleanup");
}

TEST_CASE("tables that do not exist add no privileges message") {
  Stack& s = shared_stack();
  (void)register_migration(s.api, "ghost_mig", "ghosts", "t_sys_ghosts");
  const json::object m = set_phase(s.api, "ghost_mig", "dual_write");
  CHECK(str(m, "phase") == "dual_write");
  const it::PgConn control = control_conn(*s.pg);
  const std::string logged = latest_log_details(control, "ghost_mig");
  CHECK(it::contains(logged, "success"));
  CHECK_FALSE(it::contains(logged, "privilege"));
}
