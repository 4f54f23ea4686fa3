// Every kind of write to a migrating table, through pgphase with the migration in dual_write,
// over the simple protocol (PQexec) and the extended protocol (PQexecParams, PQprepare): what the
// client receives is what PostgreSQL alone returns, and the target holds exactly the rows the
// source stored.
#include <catch2/catch.hpp>

#include "dw_env.h"

using namespace pgphase;
using namespace pgphase::dw;

namespace {

void check_in_step(const Env& e) {
  CHECK(differences(e.direct, "users", "t_sys_users") == 0);
  CHECK(e.direct.scalar("SELECT count(*) FROM users") ==
        e.direct.scalar("SELECT count(*) FROM t_sys_users"));
}

it::PgResult exec(const it::PgConn& c, const std::string& sql, bool extended) {
  return extended ? c.exec_params(sql, {}) : c.exec(sql);
}

}  // namespace

TEST_CASE("INSERT: defaults, serials, triggers and volatile functions reach the target as stored") {
  Env& e = env();
  reset_tables(e.direct);
  const it::PgConn c = e.proxied();
  for (const bool extended : {false, true}) {
    INFO((extended ? "extended" : "simple"));
    auto r = exec(c, "INSERT INTO users (name, email) VALUES ('a', NULL), ('b', NULL)", extended);
    INFO(r.describe());
    REQUIRE(r.status() == PGRES_COMMAND_OK);
    CHECK(r.cmd_status() == "INSERT 0 2");
    CHECK(r.cols() == 0);
    r = exec(c, "INSERT INTO users DEFAULT VALUES", extended);
    CHECK(r.cmd_status() == "INSERT 0 1");
    r = exec(c, "INSERT INTO users (name) SELECT 'g' || g FROM generate_series(1, 5) g", extended);
    CHECK(r.cmd_status() == "INSERT 0 5");
    r = exec(c,
             "WITH n AS (SELECT 'with' AS name) INSERT INTO users (name, score) SELECT name, "
             "random() FROM n",
             extended);
    CHECK(r.cmd_status() == "INSERT 0 1");
  }
  check_in_step(e);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_users WHERE touched_by LIKE 'trigger %' AND "
                        "token IS NOT NULL AND score IS NOT NULL") == "18");
}

TEST_CASE("INSERT ... RETURNING and ON CONFLICT return what PostgreSQL returns") {
  Env& e = env();
  reset_tables(e.direct);
  const it::PgConn c = e.proxied();
  auto r = c.exec("INSERT INTO users (name, email) VALUES ('r', 'r@x') RETURNING *");
  INFO(r.describe());
  REQUIRE(r.status() == PGRES_TUPLES_OK);
  CHECK(r.cmd_status() == "INSERT 0 1");
  REQUIRE(r.cols() == 8);
  CHECK(std::string(PQfname(r.get(), 0)) == "id");
  CHECK(std::string(PQfname(r.get(), 7)) == "amount");
  const Oid users = static_cast<Oid>(std::stoul(e.direct.scalar("SELECT 'users'::regclass::oid")));
  CHECK(PQftable(r.get(), 1) == users);
  CHECK(PQftablecol(r.get(), 1) == 2);
  CHECK(r.value(0, 1) == "r");

  r = c.exec_params("INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id, upper(name)",
                    {"s", "s@x"});
  REQUIRE(r.status() == PGRES_TUPLES_OK);
  REQUIRE(r.cols() == 2);
  CHECK(std::string(PQfname(r.get(), 1)) == "upper");
  CHECK(r.value(0, 1) == "S");

  r = c.exec("INSERT INTO users (name, email) VALUES ('dup', 'r@x') ON CONFLICT DO NOTHING");
  CHECK(r.cmd_status() == "INSERT 0 0");
  r = c.exec_params(
      "INSERT INTO users (name, email) VALUES ($1, 'r@x') ON CONFLICT (email) DO UPDATE SET "
      "name = EXCLUDED.name RETURNING name",
      {"upserted"});
  INFO(r.describe());
  CHECK(r.cmd_status() == "INSERT 0 1");
  CHECK(r.value(0, 0) == "upserted");
  check_in_step(e);
  CHECK(e.direct.scalar("SELECT name FROM t_sys_users WHERE email = 'r@x'") == "upserted");
}

TEST_CASE("UPDATE: with FROM, RETURNING, key changes, and rows not yet in the target") {
  Env& e = env();
  reset_tables(e.direct);
  const it::PgConn c = e.proxied();
  c.exec_ok("INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 10) g");
  e.direct.exec_ok("INSERT INTO orders (user_id, total) VALUES (1, 100), (2, 200)");
  for (const bool extended : {false, true}) {
    auto r = exec(c, "UPDATE users u SET amount = o.total FROM orders o WHERE o.user_id = u.id",
                  extended);
    INFO(r.describe());
    CHECK(r.cmd_status() == "UPDATE 2");
    CHECK(r.cols() == 0);
  }
  auto r =
      c.exec_params("UPDATE users SET name = $1 WHERE id > $2 RETURNING id, name", {"big", "8"});
  CHECK(r.cmd_status() == "UPDATE 2");
  CHECK(r.rows() == 2);
  CHECK(r.cols() == 2);
  r = c.exec("UPDATE users SET id = id + 1000 WHERE id <= 3");
  CHECK(r.cmd_status() == "UPDATE 3");
  check_in_step(e);
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_users WHERE id <= 3") == "0");

  // A row the target does not have yet (not backfilled): the UPDATE inserts it.
  e.direct.exec_ok("INSERT INTO users (id, name) VALUES (5000, 'old row')");
  CHECK(differences(e.direct, "users", "t_sys_users") == 1);
  r = c.exec("UPDATE users SET name = 'touched' WHERE id = 5000");
  CHECK(r.cmd_status() == "UPDATE 1");
  check_in_step(e);
  r = c.exec("UPDATE users SET name = 'nobody' WHERE id = -1");
  CHECK(r.cmd_status() == "UPDATE 0");
}

TEST_CASE("DELETE with USING and RETURNING; a row missing from the target is a no-op") {
  Env& e = env();
  reset_tables(e.direct);
  const it::PgConn c = e.proxied();
  c.exec_ok("INSERT INTO users (name) SELECT 'd' || g FROM generate_series(1, 6) g");
  e.direct.exec_ok("INSERT INTO orders (user_id, total) VALUES (1, 1), (2, 2)");
  auto r = c.exec("DELETE FROM users USING orders WHERE orders.user_id = users.id");
  CHECK(r.cmd_status() == "DELETE 2");
  r = c.exec_params("DELETE FROM users WHERE id = $1 RETURNING name", {"3"});
  CHECK(r.cmd_status() == "DELETE 1");
  CHECK(r.value(0, 0) == "d3");
  check_in_step(e);
  e.direct.exec_ok("INSERT INTO users (id, name) VALUES (6000, 'only in source')");
  r = c.exec("DELETE FROM users WHERE id = 6000");
  CHECK(r.cmd_status() == "DELETE 1");
  check_in_step(e);
}

TEST_CASE("TRUNCATE empties both tables") {
  Env& e = env();
  const it::PgConn c = e.proxied();
  c.exec_ok("INSERT INTO users (name) VALUES ('t')");
  const auto r = c.exec("TRUNCATE users");
  CHECK(r.cmd_status() == "TRUNCATE TABLE");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_users") == "0");
}

TEST_CASE("transactions and savepoints: ROLLBACK undoes both sides") {
  Env& e = env();
  reset_tables(e.direct);
  const it::PgConn c = e.proxied();
  c.exec_ok("BEGIN");
  c.exec_ok("INSERT INTO users (name) VALUES ('gone')");
  c.exec_ok("ROLLBACK");
  c.exec_ok("BEGIN");
  c.exec_ok("INSERT INTO users (name) VALUES ('kept')");
  c.exec_ok("SAVEPOINT s");
  c.exec_ok("INSERT INTO users (name) VALUES ('undone')");
  c.exec_ok("UPDATE users SET name = 'kept2' WHERE name = 'kept'");
  c.exec_ok("ROLLBACK TO SAVEPOINT s");
  c.exec_ok("COMMIT");
  CHECK(e.direct.scalar("SELECT string_agg(name, ',') FROM t_sys_users") == "kept");
  check_in_step(e);
}

TEST_CASE("strict: a target failure fails the client's statement and nothing is half-written") {
  Env& e = env();
  reset_tables(e.direct);
  e.direct.exec_ok(
      "ALTER TABLE t_sys_users ADD CONSTRAINT no_forbidden CHECK (name <> 'forbidden')");
  const it::PgConn c = e.proxied();
  c.exec_ok("BEGIN");
  auto r = c.exec("INSERT INTO users (name) VALUES ('forbidden')");
  CHECK(r.sqlstate() == "23514");
  CHECK(c.tx_status() == PQTRANS_INERROR);
  c.exec_ok("ROLLBACK");
  c.exec_ok("INSERT INTO users (name) VALUES ('fine')");
  r = c.exec_params("UPDATE users SET name = $1", {"forbidden"});
  CHECK(r.sqlstate() == "23514");
  CHECK(c.tx_status() == PQTRANS_IDLE);
  e.direct.exec_ok("ALTER TABLE t_sys_users DROP CONSTRAINT no_forbidden");
  CHECK(e.direct.scalar("SELECT string_agg(name, ',') FROM users") == "fine");
  check_in_step(e);
}

TEST_CASE("prepared statements executed many times, Describe answers as for the client's text") {
  Env& e = env();
  reset_tables(e.direct);
  const it::PgConn c = e.proxied();
  it::PgResult r(
      PQprepare(c.get(), "ins", "INSERT INTO users (name, score) VALUES ($1, $2)", 2, nullptr));
  REQUIRE(r.ok());
  r = it::PgResult(PQdescribePrepared(c.get(), "ins"));
  CHECK(r.cols() == 0);
  CHECK(PQnparams(r.get()) == 2);
  for (int i = 0; i < 50; ++i) {
    const std::string name = "p" + std::to_string(i);
    const std::string score = std::to_string(i) + ".5";
    const char* values[2] = {name.c_str(), score.c_str()};
    r = it::PgResult(PQexecPrepared(c.get(), "ins", 2, values, nullptr, nullptr, 0));
    REQUIRE(r.cmd_status() == "INSERT 0 1");
  }
  r = it::PgResult(PQprepare(
      c.get(), "upd", "UPDATE users SET score = score + 1 WHERE name = $1 RETURNING id, score", 0,
      nullptr));
  REQUIRE(r.ok());
  r = it::PgResult(PQdescribePrepared(c.get(), "upd"));
  CHECK(r.cols() == 2);
  CHECK(std::string(PQfname(r.get(), 1)) == "score");
  const char* p7[1] = {"p7"};
  // Binary results: the image columns pgphase adds must not disturb the client's formats.
  const int formats[1] = {1};
  (void)formats;
  r = it::PgResult(PQexecPrepared(c.get(), "upd", 1, p7, nullptr, nullptr, 1));
  CHECK(r.cmd_status() == "UPDATE 1");
  REQUIRE(r.rows() == 1);
  CHECK(PQgetlength(r.get(), 0, 1) == 8);  // float8 in binary
  check_in_step(e);
}

TEST_CASE("multi-statement simple queries: each statement answered as by PostgreSQL") {
  Env& e = env();
  reset_tables(e.direct);
  const it::PgConn c = e.proxied();
  REQUIRE(PQsendQuery(c.get(),
                      "INSERT INTO users (name) VALUES ('m1'), ('m2'); SELECT 42; UPDATE users SET "
                      "name = 'm' RETURNING id; DELETE FROM users WHERE id = 1") == 1);
  const auto results = c.results();
  REQUIRE(results.size() == 4);
  CHECK(results[0].cmd_status() == "INSERT 0 2");
  CHECK(results[1].value(0, 0) == "42");
  CHECK(results[2].cmd_status() == "UPDATE 2");
  CHECK(results[2].cols() == 1);
  CHECK(results[3].cmd_status() == "DELETE 1");
  check_in_step(e);
}

TEST_CASE("errors: same SQLSTATE, message and position as PostgreSQL alone") {
  Env& e = env();
  const it::PgConn c = e.proxied();
  for (const char* sql : {"INSERT INTO users (nosuch) VALUES (1)",
                          "SELECT 1; UPDATE users SET name = nosuch WHERE id = 1",
                          "DELETE FROM users WHERE id = 'x'"}) {
    INFO(sql);
    const auto via = c.exec(sql);
    const auto direct = e.direct.exec(sql);
    CHECK(via.sqlstate() == direct.sqlstate());
    CHECK(via.field(PG_DIAG_MESSAGE_PRIMARY) == direct.field(PG_DIAG_MESSAGE_PRIMARY));
    CHECK(via.field(PG_DIAG_STATEMENT_POSITION) == direct.field(PG_DIAG_STATEMENT_POSITION));
  }
}

TEST_CASE("writes pgphase cannot mirror are refused with 0A000 naming the migration") {
  Env& e = env();
  const it::PgConn c = e.proxied();
  for (const char* sql :
       {"COPY users FROM STDIN", "ALTER TABLE users ADD COLUMN z int",
        "MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN DELETE",
        "WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d"}) {
    INFO(sql);
    const auto r = c.exec(sql);
    CHECK(r.sqlstate() == "0A000");
    CHECK(r.field(PG_DIAG_MESSAGE_PRIMARY).find("users_mig") != std::string::npos);
  }
  // Extended protocol, with a parameter the refusal does not take.
  const auto r =
      c.exec_params("WITH d AS (DELETE FROM users WHERE id = $1 RETURNING *) SELECT 1", {"1"});
  CHECK(r.sqlstate() == "0A000");
  // The session is usable afterwards, in and out of transactions.
  c.exec_ok("BEGIN");
  CHECK(c.exec("COPY users FROM STDIN").sqlstate() == "0A000");
  CHECK(c.tx_status() == PQTRANS_INERROR);
  c.exec_ok("ROLLBACK");
  CHECK(c.scalar("SELECT 7") == "7");
  const auto m = it::scrape_metrics(e.stack.proxy->admin_port());
  CHECK(m.value("pgphase_unsupported_writes_total",
                {{"migration_id", "users_mig"}, {"action", "refused"}})
            .value_or(0) >= 5);
}

TEST_CASE("statements prepared before dual write began are prepared again, and after it ended") {
  Env& e = env();
  const it::PgConn c = e.proxied();
  register_migration(e.stack.api, "orders_mig", "orders", "t_sys_orders");
  e.direct.exec_ok("TRUNCATE orders, t_sys_orders");
  it::PgResult r(
      PQprepare(c.get(), "ord", "INSERT INTO orders (user_id, total) VALUES ($1, 1)", 0, nullptr));
  REQUIRE(r.ok());
  auto run = [&](const char* user) {
    const char* v[1] = {user};
    const it::PgResult x(PQexecPrepared(c.get(), "ord", 1, v, nullptr, nullptr, 0));
    INFO(x.describe());
    CHECK(x.cmd_status() == "INSERT 0 1");
  };
  run("1");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_orders") == "0");
  set_phase(e.stack.api, "orders_mig", "dual_write");
  run("2");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_orders WHERE user_id = 2") == "1");
  const it::HttpResponse rb =
      e.stack.api.post("/api/v1/migrations/orders_mig/rollback", R"({"reason":"test"})");
  INFO(describe(rb));
  REQUIRE(rb.status == 200);
  run("3");
  CHECK(e.direct.scalar("SELECT count(*) FROM t_sys_orders WHERE user_id = 3") == "0");
}

TEST_CASE("dual-write metrics count mirrored statements and rows") {
  Env& e = env();
  const it::PgConn c = e.proxied();
  c.exec_ok("INSERT INTO users (name) VALUES ('metric1'), ('metric2')");
  const auto m = it::scrape_metrics(e.stack.proxy->admin_port());
  CHECK(m.value("pgphase_dual_write_statements_total",
                {{"migration_id", "users_mig"}, {"operation", "insert"}, {"result", "ok"}})
            .value_or(0) >= 1);
  CHECK(m.value("pgphase_dual_write_rows_total",
                {{"migration_id", "users_mig"}, {"operation", "insert"}})
            .value_or(0) >= 2);
  CHECK(m.value("pgphase_statement_analysis_total", {{"result", "hit"}}).value_or(0) >= 1);
}
