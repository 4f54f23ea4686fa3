// Exactness, second list (issue 17), the items of the protocol and of the mirror: pgjdbc update
// counts, prepared statement names the server cuts to 63 bytes, eventual-mode row images, key
// changes under another unique index, and tables too wide for an inline row image. Each case
// runs through pgphase and on a twin database without pgphase (oracle.h) and asserts on the
// client's answers and on both tables.
#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "oracle.h"

using namespace pgphase;
using namespace pgphase::dw;

namespace {

const char* const kJdbcJar = "/usr/share/java/postgresql.jar";

std::string jdbc_url(int port, const std::string& db, const std::string& extra) {
  return "jdbc:postgresql://127.0.0.1:" + std::to_string(port) + "/" + db +
         "?user=postgres&sslmode=disable" + extra;
}

// Runs JdbcUpdateCounts against `url`; its standard output.
std::string run_jdbc(const std::string& url, const std::string& table) {
  const it::RunResult java = it::run({"java", "-cp", std::string(kJdbcJar) + ":" + DW_JDBC_CLASSES,
                                      "JdbcUpdateCounts", url, table},
                                     {.timeout = std::chrono::seconds(120)});
  INFO(url << "\n" << java.describe());
  CHECK(java.ok());
  CHECK(it::contains(java.out, "JDBC DONE"));
  return java.out;
}

// libpq's PQprepare + PQexecPrepared with a statement name of our choosing.
std::string prepare(const it::PgConn& c, const std::string& name, const std::string& sql) {
  it::PgResult r(PQprepare(c.get(), name.c_str(), sql.c_str(), 0, nullptr));
  return received(r);
}
std::string execute(const it::PgConn& c, const std::string& name) {
  it::PgResult r(PQexecPrepared(c.get(), name.c_str(), 0, nullptr, nullptr, nullptr, 0));
  return received(r);
}

}  // namespace

TEST_CASE("pgjdbc: executeUpdate and executeBatch counts in every phase that rewrites writes") {
  INFO("needs Debian packages default-jdk-headless and libpostgresql-jdbc-java");
  REQUIRE(std::filesystem::exists(kJdbcJar));
  std::filesystem::create_directories(DW_JDBC_CLASSES);
  const it::RunResult javac =
      it::run({"javac", "-d", DW_JDBC_CLASSES, "-Xlint:all", "-Werror", DW_JDBC_SOURCE},
              {.timeout = std::chrono::seconds(120)});
  INFO(javac.describe());
  REQUIRE(javac.ok());

  Env& e = env();
  const std::string setup =
      "CREATE TABLE jd_users (id int PRIMARY KEY, name text, version int NOT NULL);"
      "CREATE TABLE t_sys_jd_users (id int PRIMARY KEY, name text, version int NOT NULL);";
  Twin t = twin(e, "oracle_jdbc", setup);
  register_migration(e.stack.api, "jd_mig", "jd_users", "t_sys_jd_users");
  const int port = e.stack.proxy->port();
  const char* const kPhases[] = {"dual_write", "validation", "read_switch", "cleanup"};
  bool switched = false;
  for (const char* phase : kPhases) {
    advance_to(e.stack.api, "jd_mig", phase);
    if (std::string(phase) == "read_switch" && !switched) {
      switch_reads(e, "jd_sw", "jd_users", "jd_mig", 100);
      switched = true;
    }
    // prepareThreshold=1: named server-side statements from the first execution; the default
    // (5) switches from unnamed to named statements mid-way.
    for (const std::string extra : {"&prepareThreshold=1", ""}) {
      INFO("phase " << phase << " " << extra);
      e.direct.exec_ok("TRUNCATE jd_users, t_sys_jd_users");
      t.oracle.exec_ok("TRUNCATE jd_users");
      const std::string got = run_jdbc(jdbc_url(port, kControlDb, extra), "jd_users");
      const std::string want =
          run_jdbc(jdbc_url(e.stack.pg->port(), "oracle_jdbc", extra), "jd_users");
      CHECK(got == want);
      CHECK(it::contains(want, "insert 6: 1"));
      CHECK(it::contains(want, "batch: [1, 1, 1, 1, 1]"));
      CHECK(it::contains(want, "stale: 0"));
      check_tables(e, t, "jd_users", "t_sys_jd_users", "id, name, version");
    }
  }
}

TEST_CASE("prepared statement names: long names never collide with pgphase's own") {
  Env& e = env();
  Twin t = twin(e, "oracle_names",
                "CREATE TABLE nm_users (id int PRIMARY KEY, name text);"
                "CREATE TABLE t_sys_nm_users (id int PRIMARY KEY, name text);"
                "INSERT INTO nm_users VALUES (1, 'one'), (2, 'two');"
                "INSERT INTO t_sys_nm_users SELECT * FROM nm_users;");
  register_migration(e.stack.api, "nm_mig", "nm_users", "t_sys_nm_users");
  advance_to(e.stack.api, "nm_mig", "read_switch");
  switch_reads(e, "nm_sw", "nm_users", "nm_mig", 100);

  // 60-byte names that share their first 55 bytes: distinct for PostgreSQL.
  const std::string stem(55, 's');
  const std::string a = stem + "aaaaa";
  const std::string b = stem + "bbbbb";
  // 70-byte names that share their first 63 bytes: one statement for PostgreSQL (the second
  // Parse fails with 42P05, and the name runs the first statement).
  const std::string c = std::string(63, 'c') + "1111111";
  const std::string d = std::string(63, 'c') + "2222222";
  const auto both = [&](const std::string& what, const std::string& got, const std::string& want) {
    INFO(what);
    CHECK(got == want);
  };
  for (int round = 0; round < 2; ++round) {
    both("prepare a", prepare(t.real, a, "SELECT name FROM nm_users WHERE id = 1"),
         prepare(t.oracle, a, "SELECT name FROM nm_users WHERE id = 1"));
    both("prepare b", prepare(t.real, b, "SELECT name, id FROM nm_users WHERE id = 2"),
         prepare(t.oracle, b, "SELECT name, id FROM nm_users WHERE id = 2"));
    both("execute a", execute(t.real, a), execute(t.oracle, a));
    both("execute b", execute(t.real, b), execute(t.oracle, b));
    both("execute a again", execute(t.real, a), execute(t.oracle, a));
    both("prepare c", prepare(t.real, c, "SELECT 'c', count(*) FROM nm_users"),
         prepare(t.oracle, c, "SELECT 'c', count(*) FROM nm_users"));
    const std::string dup = prepare(t.real, d, "SELECT 'd', id FROM nm_users ORDER BY id");
    CHECK_THAT(dup, Catch::StartsWith("ERROR 42P05"));
    both("prepare d", dup, prepare(t.oracle, d, "SELECT 'd', id FROM nm_users ORDER BY id"));
    both("execute d (is c)", execute(t.real, d), execute(t.oracle, d));
    both("execute c", execute(t.real, c), execute(t.oracle, c));
    // A statement that failed to prepare leaves no trace: the name can be prepared afterwards.
    both("prepare bad", prepare(t.real, "bad", "SELECT nosuch FROM nm_users"),
         prepare(t.oracle, "bad", "SELECT nosuch FROM nm_users"));
    both("prepare bad again", prepare(t.real, "bad", "SELECT id FROM nm_users WHERE id = 2"),
         prepare(t.oracle, "bad", "SELECT id FROM nm_users WHERE id = 2"));
    both("execute bad", execute(t.real, "bad"), execute(t.oracle, "bad"));
    t.set("DEALLOCATE ALL");
  }
  // The reads really went to the target (tell the sides apart).
  e.direct.exec_ok("UPDATE t_sys_nm_users SET name = 'target ' || name");
  prepare(t.real, a, "SELECT name FROM nm_users WHERE id = 1");
  CHECK_THAT(execute(t.real, a), Catch::Contains("target one"));
}

TEST_CASE("eventual: row images arrive byte-exact (json text, -0, array bounds, jsonb null)") {
  Env& e = env();
  const std::string setup =
      "CREATE TABLE ev_docs (id int PRIMARY KEY, j json, jb jsonb, f float8, f4 real, "
      "a int[], n numeric, t text, b bytea);"
      "CREATE TABLE t_sys_ev_docs (id int PRIMARY KEY, j json, jb jsonb, f float8, f4 real, "
      "a int[], n numeric, t text, b bytea);";
  Twin t = twin(e, "oracle_eventual", setup);
  register_migration(e.stack.api, "ev_mig", "ev_docs", "t_sys_ev_docs",
                     {{"consistency_level", "eventual"}});
  set_phase(e.stack.api, "ev_mig", "dual_write");
  const std::string cols = "id, j::text, jb::text, f, f4, array_lower(a, 1), a, n, t, b";
  for (Protocol p : kBoth) {
    e.direct.exec_ok("TRUNCATE ev_docs, t_sys_ev_docs");
    t.oracle.exec_ok("TRUNCATE ev_docs");
    t.both(p,
           "INSERT INTO ev_docs VALUES "
           "(1, '{\"b\": 1,   \"a\": [1, 2.50]}', 'null', '-0', '-0', '[0:1]={1,2}', '-0.000', "
           "E'tab\\there', '\\x00ff'),"
           "(2, '  {\"k\":\"v\", \"k\":\"w\"} ', '{\"z\": null}', 1e-300, 'NaN', '[5:5]={7}', "
           "'NaN', '', ''),"
           "(3, 'null', NULL, '-Infinity', '-0', '{}', '1e-20', NULL, NULL)");
    t.both(p, "UPDATE ev_docs SET jb = 'null', j = '[1,  2]', a[-3] = 9 WHERE id = 2");
    t.both(p, "UPDATE ev_docs SET f = -f, n = -n WHERE id = 1 RETURNING f, n");
    t.both(p, "DELETE FROM ev_docs WHERE id = 3");
    INFO((p == Protocol::kSimple ? "simple" : "extended"));
    CHECK(rows_of(e.direct, "ev_docs", cols) == rows_of(t.oracle, "ev_docs", cols));
    CHECK(rows_of(e.direct, "t_sys_ev_docs", cols) == rows_of(t.oracle, "ev_docs", cols));
    // jsonb 'null' is a value, not SQL NULL; json text is kept as written.
    CHECK(e.direct.scalar("SELECT jb IS NULL FROM t_sys_ev_docs WHERE id = 1") == "f");
    CHECK(e.direct.scalar("SELECT j::text FROM t_sys_ev_docs WHERE id = 1") ==
          "{\"b\": 1,   \"a\": [1, 2.50]}");
    CHECK(e.direct.scalar("SELECT array_lower(a, 1) FROM t_sys_ev_docs WHERE id = 1") == "0");
    CHECK(e.direct.scalar("SELECT f4::text || ' ' || n::text FROM t_sys_ev_docs WHERE id = 1") ==
          "-0 0.000");
  }
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_dual_write_logs WHERE migration_id = "
                        "'ev_mig'") == "0");
}

TEST_CASE("a key change on a table with another unique index") {
  Env& e = env();
  for (const char* level : {"strict", "eventual"}) {
    INFO(level);
    const std::string suffix = std::string(level) == "strict" ? "s" : "e";
    const std::string src = "uk_" + suffix;
    const std::string dst = "t_sys_uk_" + suffix;
    const std::string setup =
        "CREATE TABLE " + src + " (id int PRIMARY KEY, email text UNIQUE, name text);" +
        "CREATE TABLE " + dst + " (id int PRIMARY KEY, email text UNIQUE, name text);";
    Twin t = twin(e, "oracle_uk_" + suffix, setup);
    register_migration(e.stack.api, "uk_mig_" + suffix, src, dst, {{"consistency_level", level}});
    set_phase(e.stack.api, "uk_mig_" + suffix, "dual_write");
    for (Protocol p : kBoth) {
      e.direct.exec_ok("TRUNCATE " + src + ", " + dst);
      t.oracle.exec_ok("TRUNCATE " + src);
      t.both(p, "INSERT INTO " + src + " VALUES (1, 'a@x', 'a'), (2, 'b@x', 'b'), (3, 'c@x', 'c')");
      t.both(p, "UPDATE " + src + " SET id = 100 WHERE id = 1");
      t.both(p, "UPDATE " + src + " SET id = id + 10, name = name || '+' WHERE id IN (2, 3)");
      t.both(p, "UPDATE " + src + " SET id = 200, email = 'new@x' WHERE id = 100 RETURNING *");
      t.both(p, "UPDATE " + src + " SET id = 1 WHERE email = 'b@x'");  // back to a freed key
      check_tables(e, t, src, dst, "id, email, name");
    }
    CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_dual_write_logs WHERE migration_id = "
                          "'uk_mig_" +
                          suffix + "'") == "0");
  }
}

TEST_CASE("a table of 900 columns: INSERT ... RETURNING * is mirrored") {
  Env& e = env();
  std::string cols = "id int PRIMARY KEY";
  for (int i = 1; i < 900; ++i)
    cols += ", c" + std::to_string(i) + " int DEFAULT " + std::to_string(i);
  Twin t = twin(e, "oracle_wide",
                "CREATE TABLE wide (" + cols + "); CREATE TABLE t_sys_wide (" + cols + ");");
  register_migration(e.stack.api, "wide_mig", "wide", "t_sys_wide");
  set_phase(e.stack.api, "wide_mig", "dual_write");
  int id = 0;
  for (Protocol p : kBoth) {
    ++id;
    const std::string got =
        t.both(p, "INSERT INTO wide (id, c5) VALUES (" + std::to_string(id) + ", 55) RETURNING *");
    CHECK_THAT(got, Catch::StartsWith("INSERT 0 1"));
    t.both(p, "UPDATE wide SET c899 = -1 WHERE id = " + std::to_string(id) + " RETURNING *");
    t.both(p, "UPDATE wide SET c1 = c1 + 1 WHERE id = " + std::to_string(id));
  }
  t.both(Protocol::kSimple, "DELETE FROM wide WHERE id = 1 RETURNING *");
  CHECK(differences(e.direct, "wide", "t_sys_wide", "id, c1, c5, c899") == 0);
  CHECK(differences(e.direct, "wide", "t_sys_wide", "*") == 0);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_wide") == "1");
}

TEST_CASE("completed: reads inside writes read the target, never the stale source") {
  Env& e = env();
  // The oracle: PostgreSQL alone, where cp_users holds what the target holds.
  const std::string tables =
      "CREATE TABLE cp_log (id int, name text);"
      "CREATE TABLE cp_users (id int PRIMARY KEY, name text);";
  e.direct.exec_ok(tables + "CREATE TABLE t_sys_cp_users (id int PRIMARY KEY, name text);" +
                   "INSERT INTO cp_users VALUES (1, 'a'), (2, 'b');" +
                   "INSERT INTO t_sys_cp_users SELECT * FROM cp_users;");
  Twin t{e.proxied(), oracle_db(e, "oracle_completed",
                                tables + "INSERT INTO cp_users VALUES (1, 'a'), (2, 'b');")};
  register_migration(e.stack.api, "cp_mig", "cp_users", "t_sys_cp_users");
  advance_to(e.stack.api, "cp_mig", "read_switch");
  switch_reads(e, "cp_sw", "cp_users", "cp_mig", 100);
  advance_to(e.stack.api, "cp_mig", "completed");
  e.direct.exec_ok("DELETE FROM cp_users");  // the source is stale from now on
  for (Protocol p : kBoth) {
    t.both(p, "INSERT INTO cp_log SELECT id, name FROM cp_users WHERE id > 1");
    t.both(p,
           "INSERT INTO cp_users (id, name) SELECT id + 10, name || '+' FROM cp_users "
           "WHERE id < 10 RETURNING *");
    t.both(p, "UPDATE cp_log SET name = u.name FROM cp_users u WHERE u.id = cp_log.id + 10");
    t.both(p, "WITH x AS (DELETE FROM cp_log RETURNING id) SELECT count(*) FROM cp_users, x");
    t.both(p, "DELETE FROM cp_users WHERE id > 10");
  }
  CHECK(rows_of(e.direct, "t_sys_cp_users", "id, name") ==
        rows_of(t.oracle, "cp_users", "id, name"));
  CHECK(rows_of(e.direct, "cp_log", "id, name") == rows_of(t.oracle, "cp_log", "id, name"));
  CHECK(e.direct.scalar("SELECT count(*) FROM cp_users") == "0");  // nothing read or wrote it

  // A read whose literals pgphase cannot be sure of is refused, not answered from the source.
  for (Protocol p : kBoth) {
    it::PgConn c = e.proxied();
    c.exec_ok("SET standard_conforming_strings = off");
    check_refused(run(c, p, "SELECT count(*) FROM cp_users WHERE name = 'a\\\\'"));
  }
}
