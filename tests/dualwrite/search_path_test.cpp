// Name resolution (the SQL-layer issue): an unqualified name means what PostgreSQL resolves it
// to in that session at that moment. Every way a session's search_path can be set (the startup
// packet, ALTER ROLE ... SET, ALTER ROLE ... IN DATABASE ... SET, ALTER DATABASE ... SET, SET,
// SET LOCAL undone at the transaction's end, set_config() session-wide and local) and a
// temporary table shadowing the name, in both protocols: writes that resolve to a same-named
// table of another schema must work on it exactly as without pgphase and never reach the
// migration's target; writes that resolve to the source are mirrored. The oracle is a twin
// database without pgphase, set up and written the same way.
#include <catch2/catch.hpp>

#include "oracle.h"

using namespace pgphase;
using namespace pgphase::dw;

namespace {

constexpr const char* kSetup =
    "CREATE TABLE sx_users (id int PRIMARY KEY, name text);"
    "CREATE TABLE t_sys_sx_users (id int PRIMARY KEY, name text);"
    "CREATE SCHEMA tenant; CREATE TABLE tenant.sx_users (id int PRIMARY KEY, name text)";
constexpr const char* kOracleDb = "oracle_sx";

int g_next_id = 0;

// The environment of this file: the migration sx_mig (public.sx_users -> t_sys_sx_users) in
// dual_write, tenant.sx_users beside it, and the twin database.
Env& sx_env() {
  static Env& e = [&]() -> Env& {
    Env& x = env();
    (void)oracle_db(x, kOracleDb, kSetup);
    x.direct.exec_ok(kSetup);
    register_migration(x.stack.api, "sx_mig", "sx_users", "t_sys_sx_users");
    set_phase(x.stack.api, "sx_mig", "dual_write");
    return x;
  }();
  return e;
}

// A pair of connections (through pgphase / to the twin) with `extra` conninfo and `user`.
Twin connect_pair(Env& e, const std::string& user = "postgres", const std::string& extra = "") {
  it::PgConn real = it::PgConn::connect(e.stack.proxy->conninfo(kControlDb, user, "", extra));
  INFO(real.error_message());
  REQUIRE(real.ok());
  it::PgConn oracle = it::PgConn::connect(e.stack.pg->conninfo(kOracleDb, user, "", extra));
  INFO(oracle.error_message());
  REQUIRE(oracle.ok());
  return Twin{std::move(real), std::move(oracle)};
}

// Writes of one session whose unqualified sx_users is tenant.sx_users: an INSERT with RETURNING,
// an UPDATE, a DELETE; they must touch tenant.sx_users on both sides and nothing else.
void write_elsewhere(const Twin& t, Protocol p) {
  const std::string a = std::to_string(++g_next_id);
  const std::string b = std::to_string(++g_next_id);
  t.both(p, "INSERT INTO sx_users VALUES (" + a + ", 'tenant a'), (" + b +
                ", 'tenant b') RETURNING *");
  t.both(p, "UPDATE sx_users SET name = name || '!' WHERE id = " + a);
  t.both(p, "DELETE FROM sx_users WHERE id = " + b + " RETURNING name");
  t.both(p, "SELECT count(*) FROM sx_users WHERE id = " + a);
}

// Writes that resolve to public.sx_users: mirrored.
void write_source(const Twin& t, Protocol p) {
  const std::string a = std::to_string(++g_next_id);
  t.both(p, "INSERT INTO sx_users VALUES (" + a + ", 'public') RETURNING id");
  t.both(p, "UPDATE sx_users SET name = 'public!' WHERE id = " + a);
}

// Both tables of both sides: tenant's rows as the oracle's, public's as the oracle's and equal
// to the target, and no tenant id in the target.
void check_all(Env& e, const Twin& t) {
  CHECK(rows_of(e.direct, "tenant.sx_users", "id, name") ==
        rows_of(t.oracle, "tenant.sx_users", "id, name"));
  check_tables(e, t, "public.sx_users", "t_sys_sx_users", "id, name");
  CHECK(e.direct.scalar(
            "SELECT count(*) FROM t_sys_sx_users t JOIN tenant.sx_users u USING (id)") == "0");
  CHECK(e.direct.scalar("SELECT count(*) FROM tenant.sx_users") != "0");
}

}  // namespace

TEST_CASE("search_path from the startup packet") {
  Env& e = sx_env();
  const Twin t = connect_pair(e, "postgres", "options='-c search_path=tenant,public'");
  REQUIRE(t.real.scalar("SHOW search_path") == "tenant,public");
  for (Protocol p : kBoth) write_elsewhere(t, p);
  const Twin plain = connect_pair(e);
  for (Protocol p : kBoth) write_source(plain, p);
  check_all(e, t);
}

TEST_CASE("search_path from ALTER ROLE ... SET and ALTER ROLE ... IN DATABASE ... SET") {
  Env& e = sx_env();
  e.direct.exec_ok(
      "DROP ROLE IF EXISTS sx_tenant; CREATE ROLE sx_tenant LOGIN SUPERUSER PASSWORD 'x'");
  e.direct.exec_ok("ALTER ROLE sx_tenant SET search_path = tenant, public");
  {
    const Twin t = connect_pair(e, "sx_tenant", "password=x");
    REQUIRE(t.real.scalar("SHOW search_path") == "tenant, public");
    for (Protocol p : kBoth) write_elsewhere(t, p);
  }
  e.direct.exec_ok("ALTER ROLE sx_tenant RESET search_path");
  e.direct.exec_ok(std::string("ALTER ROLE sx_tenant IN DATABASE ") + kControlDb +
                   " SET search_path = tenant, public");
  e.direct.exec_ok(std::string("ALTER ROLE sx_tenant IN DATABASE ") + kOracleDb +
                   " SET search_path = tenant, public");
  {
    const Twin t = connect_pair(e, "sx_tenant", "password=x");
    REQUIRE(t.real.scalar("SHOW search_path") == "tenant, public");
    for (Protocol p : kBoth) write_elsewhere(t, p);
    const Twin plain = connect_pair(e);
    for (Protocol p : kBoth) write_source(plain, p);
    check_all(e, t);
  }
  e.direct.exec_ok("DROP OWNED BY sx_tenant; DROP ROLE sx_tenant");
}

TEST_CASE("search_path from ALTER DATABASE ... SET") {
  Env& e = sx_env();
  const std::string set = " SET search_path = tenant, public";
  e.direct.exec_ok(std::string("ALTER DATABASE ") + kControlDb + set);
  e.direct.exec_ok(std::string("ALTER DATABASE ") + kOracleDb + set);
  {
    const Twin t = connect_pair(e);
    REQUIRE(t.real.scalar("SHOW search_path") == "tenant, public");
    for (Protocol p : kBoth) write_elsewhere(t, p);
    check_all(e, t);
  }
  e.direct.exec_ok(std::string("ALTER DATABASE ") + kControlDb + " RESET search_path");
  e.direct.exec_ok(std::string("ALTER DATABASE ") + kOracleDb + " RESET search_path");
}

TEST_CASE("search_path from SET, SET LOCAL (undone at the end) and set_config()") {
  Env& e = sx_env();
  const Twin t = connect_pair(e);
  for (Protocol p : kBoth) {
    t.set("SET search_path = tenant, public");
    write_elsewhere(t, p);
    t.set("RESET search_path");
    write_source(t, p);

    // SET LOCAL: tenant's inside the transaction, the source's after COMMIT and after ROLLBACK.
    t.both(p, "BEGIN");
    t.both(p, "SET LOCAL search_path = tenant, public");
    write_elsewhere(t, p);
    t.both(p, "COMMIT");
    write_source(t, p);
    t.both(p, "BEGIN");
    t.both(p, "SET LOCAL search_path = tenant");
    t.both(p, "INSERT INTO sx_users VALUES (" + std::to_string(++g_next_id) + ", 'rolled back')");
    t.both(p, "ROLLBACK");
    write_source(t, p);

    // set_config(): session-wide, then local to a transaction.
    t.both(p, "SELECT set_config('search_path', 'tenant, public', false)");
    write_elsewhere(t, p);
    t.both(p, "SELECT set_config('search_path', 'public', false)");
    write_source(t, p);
    t.both(p, "BEGIN");
    t.both(p, "SELECT set_config('search_path', 'tenant', true)");
    write_elsewhere(t, p);
    t.both(p, "COMMIT");
    write_source(t, p);
    // In the same Query string as the writes (simple protocol) or the same transaction.
    if (p == Protocol::kSimple) {
      const std::string a = std::to_string(++g_next_id);
      t.both(p, "SELECT set_config('search_path', 'tenant', false); INSERT INTO sx_users VALUES (" +
                    a + ", 'same string')");
      t.set("RESET search_path");
    }
  }
  check_all(e, t);
}

TEST_CASE("a temporary table shadows the source for its session only") {
  Env& e = sx_env();
  const Twin t = connect_pair(e);
  for (Protocol p : kBoth) {
    t.both(p, "CREATE TEMP TABLE sx_users (id int PRIMARY KEY, name text)");
    write_elsewhere(t, p);
    CHECK(t.real.scalar("SELECT count(*) FROM pg_temp.sx_users") != "0");
    // Another session is not shadowed: its writes are mirrored.
    write_source(connect_pair(e), p);
    t.both(p, "DROP TABLE pg_temp.sx_users");
    write_source(t, p);  // the name is the source's again
  }
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_sx_users") ==
        e.direct.scalar("SELECT count(*) FROM public.sx_users"));
  check_tables(e, t, "public.sx_users", "t_sys_sx_users", "id, name");
}
