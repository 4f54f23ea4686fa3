// Startup through pgphase: parameters relayed both ways, BackendKeyData, transaction status in
// ReadyForQuery, replication connections refused, PostgreSQL's own startup errors passed through.
#include <catch2/catch.hpp>

#include "harness/harness.h"

using namespace pgphase::it;

TEST_CASE("startup parameters reach the server", "[startup]") {
  auto& env = shared_env();
  const PgConn c = env.proxy->connect("postgres", "postgres", "",
                                      "application_name=it_app options='-c search_path=foo'");
  REQUIRE(c.ok());
  CHECK(c.scalar("SHOW application_name") == "it_app");
  CHECK(c.scalar("SELECT current_setting('search_path')") == "foo");
  CHECK(c.scalar("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()") ==
        "it_app");
  // ParameterStatus for a GUC_REPORT parameter set at startup comes back to the client.
  CHECK(c.parameter("application_name") == "it_app");
}

TEST_CASE("ParameterStatus and BackendKeyData are relayed", "[startup]") {
  auto& env = shared_env();
  const PgConn c = env.proxy->connect();
  REQUIRE(c.ok());
  CHECK(c.parameter("server_version").starts_with("15."));
  CHECK(PQserverVersion(c.get()) >= 150000);
  CHECK(c.parameter("client_encoding") == "UTF8");
  CHECK(c.parameter("server_encoding") == "UTF8");
  CHECK(c.parameter("standard_conforming_strings") == "on");
  CHECK(c.parameter("integer_datetimes") == "on");
  CHECK(c.parameter("session_authorization") == "postgres");
  CHECK(c.backend_pid() != 0);
  // BackendKeyData is relayed unchanged: the pid is the server process's own.
  CHECK(c.backend_pid() == c.server_pid());

  // A client_encoding asked for at startup is applied and reported.
  const PgConn latin = env.proxy->connect("postgres", "postgres", "", "client_encoding=LATIN1");
  REQUIRE(latin.ok());
  CHECK(latin.parameter("client_encoding") == "LATIN1");
  CHECK(latin.scalar("SHOW client_encoding") == "LATIN1");
  CHECK(latin.backend_pid() != 0);

  // A SET of a reported parameter produces a ParameterStatus mid-session.
  c.exec_ok("SET application_name = 'changed_later'");
  CHECK(c.parameter("application_name") == "changed_later");
}

TEST_CASE("ReadyForQuery transaction status is relayed", "[startup]") {
  auto& env = shared_env();
  const PgConn c = env.proxy->connect();
  REQUIRE(c.ok());
  CHECK(c.tx_status() == PQTRANS_IDLE);
  c.exec_ok("BEGIN");
  CHECK(c.tx_status() == PQTRANS_INTRANS);
  c.exec_ok("SELECT 1");
  CHECK(c.tx_status() == PQTRANS_INTRANS);
  const PgResult bad = c.exec("SELECT 1/0");
  CHECK(bad.sqlstate() == "22012");
  CHECK(c.tx_status() == PQTRANS_INERROR);
  const PgResult still_bad = c.exec("SELECT 1");
  CHECK(still_bad.sqlstate() == "25P02");  // in_failed_sql_transaction
  c.exec_ok("ROLLBACK");
  CHECK(c.tx_status() == PQTRANS_IDLE);
  CHECK(c.scalar("SELECT 2") == "2");
}

TEST_CASE("replication connections are refused by pgphase", "[startup]") {
  auto& env = shared_env();
  // The cluster itself accepts replication connections from postgres (pg_hba.conf), so a
  // refusal can only come from the proxy.
  PgConn direct =
      PgConn::connect(env.pg->conninfo("postgres", "postgres", "", "replication=database"));
  REQUIRE(direct.ok());
  direct.close();

  for (const char* mode : {"database", "true"}) {
    INFO("replication=" << mode);
    const PgConn c =
        env.proxy->connect("postgres", "postgres", "", std::string("replication=") + mode);
    CHECK_FALSE(c.ok());
    INFO("error: " << c.error_message());
    CHECK(c.connect_sqlstate() == "0A000");  // feature_not_supported
    CHECK(icontains(c.error_message(), "replication"));
  }
  // The proxy is still serving ordinary clients.
  const PgConn after = env.proxy->connect();
  REQUIRE(after.ok());
  CHECK(after.scalar("SELECT 'still up'") == "still up");
}

TEST_CASE("startup errors from PostgreSQL pass through", "[startup]") {
  auto& env = shared_env();
  const PgConn c = env.proxy->connect("no_such_db");
  REQUIRE_FALSE(c.ok());
  INFO("error: " << c.error_message());
  CHECK(c.connect_sqlstate() == "3D000");
  CHECK(contains(c.error_message(), "database \"no_such_db\" does not exist"));

  const PgConn role = env.proxy->connect("postgres", "no_such_role", "whatever");
  REQUIRE_FALSE(role.ok());
  INFO("error: " << role.error_message());
  CHECK(role.connect_sqlstate() == "28P01");
  CHECK(contains(role.error_message(), "password authentication failed for user \"no_such_role\""));

  const PgConn bad_option =
      env.proxy->connect("postgres", "postgres", "", "options='-c no_such_guc_xyz=1'");
  REQUIRE_FALSE(bad_option.ok());
  INFO("error: " << bad_option.error_message());
  CHECK(bad_option.connect_sqlstate() == "42704");
  CHECK(contains(bad_option.error_message(), "no_such_guc_xyz"));
}

TEST_CASE("raw startup: AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery",
          "[startup]") {
  auto& env = shared_env();
  RawClient raw = RawClient::tcp(env.proxy->port());
  const auto msgs = raw.startup("postgres", "postgres", {{"application_name", "raw_it"}});
  const std::string t = types(msgs);
  INFO("message types: " << t);
  REQUIRE(t.front() == 'R');
  CHECK(msgs.front().auth_code() == 0);
  CHECK(t.find('S') != std::string::npos);
  CHECK(t.find('K') != std::string::npos);
  CHECK(t.back() == 'Z');
  CHECK(msgs.back().body == "I");
  CHECK(raw.backend_pid() != 0);
  bool saw_app = false;
  for (const auto& m : msgs) {
    if (m.type == 'S' && m.body == std::string("application_name\0raw_it\0", 24)) saw_app = true;
  }
  CHECK(saw_app);
  raw.send(wire::query("SELECT current_setting('application_name')"));
  const auto rows = raw.read_until_ready();
  REQUIRE(types(rows) == "TDCZ");
  CHECK(rows[1].columns().at(0).value_or("") == "raw_it");
  raw.send(wire::terminate());
  CHECK(raw.wait_closed());
}
