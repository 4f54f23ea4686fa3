// Session timeouts: --query-timeout closes a session whose server has not answered within the
// limit (a hung server: here a pg_sleep longer than the limit stands in for one) with FATAL
// 57014, and --client-idle-timeout closes a session idle outside a transaction with FATAL 57P05,
// its backend connection released. Neither touches a session that keeps working, nor a session
// idle inside a transaction (PostgreSQL's idle_in_transaction_session_timeout governs those).
// Real PostgreSQL 15 and a real pgphase; a silent network peer is in tests/faults.
#include <algorithm>
#include <catch2/catch.hpp>
#include <thread>

#include "rob_support.h"

using namespace pgphase;
using namespace pgphase::rob;

namespace {

it::ProxyOptions with_timeouts(const it::PgCluster& pg, const char* query, const char* idle) {
  it::ProxyOptions o = it::ProxyOptions::tcp(pg);
  o.extra_args = {"--query-timeout", query, "--client-idle-timeout", idle};
  return o;
}

// A session through `proxy` named `app` in pg_stat_activity (REQUIREs success).
it::PgConn connect_as(const it::ProxyProcess& proxy, const std::string& app) {
  it::PgConn c =
      it::PgConn::connect(proxy.conninfo("postgres", "postgres") + " application_name=" + app);
  REQUIRE(c.ok());
  return c;
}

}  // namespace

TEST_CASE("query_timeout: a server that does not answer in time gets the session closed, 57014",
          "[query]") {
  auto& env = it::shared_env();
  it::ProxyProcess proxy(with_timeouts(*env.pg, "2", "0"));
  const it::PgConn direct = env.pg->connect();

  it::PgConn c = connect_as(proxy, "qt_victim");
  // A statement that answers within the limit is untouched, however many run.
  for (int i = 0; i < 3; ++i) CHECK(c.scalar("SELECT 1 FROM pg_sleep(0.5)") == "1");

  const auto start = it::Clock::now();
  REQUIRE(PQsendQuery(c.get(), "SELECT pg_sleep(8)") == 1);
  const it::PgResult r = first_error(c.results());
  const auto ms = it::elapsed_ms(start);
  INFO("result: " << r.describe() << "\nconnection: " << c.error_message());
  REQUIRE(r);
  CHECK(r.sqlstate() == "57014");
  CHECK(r.field(PG_DIAG_SEVERITY_NONLOCALIZED) == "FATAL");
  CHECK(it::contains(r.field(PG_DIAG_MESSAGE_PRIMARY), "query_timeout"));
  CHECK(ms >= 2000);
  CHECK(ms < 5000);  // the limit plus at most the one-second sweep, with margin
  CHECK(PQstatus(c.get()) == CONNECTION_BAD);

  // The server's backend goes once PostgreSQL notices its client is gone (at the latest when the
  // sleep ends); pgphase serves new sessions meanwhile.
  const it::PgConn again = proxy.connect();
  REQUIRE(again.ok());
  CHECK(again.scalar("SELECT 41 + 1") == "42");
  CHECK(wait_backends_gone(direct, "qt_victim", 15s));
  CHECK(proxy.running());
}

TEST_CASE("client_idle_timeout: an idle session is closed with 57P05 and its backend released",
          "[idle]") {
  auto& env = it::shared_env();
  it::ProxyProcess proxy(with_timeouts(*env.pg, "0", "2"));
  const it::PgConn direct = env.pg->connect();

  it::PgConn idle = connect_as(proxy, "idle_victim");
  std::vector<std::string> states;
  PQsetNoticeReceiver(idle.get(), &record_sqlstate, &states);
  CHECK(idle.scalar("SELECT 1") == "1");
  // A session inside a transaction is not idle in pgphase's sense: it stays.
  it::PgConn in_tx = connect_as(proxy, "idle_in_tx");
  in_tx.exec_ok("BEGIN");
  CHECK(in_tx.scalar("SELECT 2") == "2");
  // A session that keeps working is not idle either.
  it::PgConn busy = connect_as(proxy, "idle_busy");

  REQUIRE(count_backends(direct, "idle_victim") == 1);
  const auto start = it::Clock::now();
  bool closed = false;
  while (it::elapsed_ms(start) < 6000) {
    CHECK(busy.scalar("SELECT 3") == "3");
    if (count_backends(direct, "idle_victim") == 0) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  REQUIRE(closed);
  CHECK(it::elapsed_ms(start) >= 1500);
  // libpq hands the FATAL that arrived while idle to the notice receiver on the next use.
  REQUIRE(PQsendQuery(idle.get(), "SELECT 1") == 1);
  const it::PgResult r = first_error(idle.results());
  INFO("result: " << r.describe() << "\nconnection: " << idle.error_message());
  const bool told = std::find(states.begin(), states.end(), "57P05") != states.end() ||
                    (r && r.sqlstate() == "57P05");
  CHECK(told);

  CHECK(busy.scalar("SELECT 4") == "4");
  CHECK(in_tx.scalar("SELECT 5") == "5");
  in_tx.exec_ok("COMMIT");
  CHECK(count_backends(direct, "idle_busy") == 1);
  CHECK(count_backends(direct, "idle_in_tx") == 1);
  CHECK(proxy.running());
}
