// Backend problems: a backend that is not there, a backend terminated mid-query by
// pg_terminate_backend(), and a backend process killed with SIGKILL (crash recovery). Each ctest
// entry runs one tag of this executable, with its own cluster and pgphase.
#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>

#include "rob_support.h"

using namespace pgphase;
using namespace pgphase::rob;
namespace wire = it::wire;

namespace {

bool healthz_ok(uint16_t admin_port) {
  return it::http_get(admin_port, "/healthz").status == 200;
}

}  // namespace

TEST_CASE("backend down: clients get 08006 at connect, pgphase keeps serving", "[down]") {
  const uint16_t dead_port = it::free_port();  // nothing listens there
  it::TempDir dir("nobackend");
  const std::vector<std::string> backends = {"127.0.0.1:" + std::to_string(dead_port),
                                             "unix:" + (dir / ".s.PGSQL.5432").string()};
  for (const auto& backend : backends) {
    INFO("backend " << backend);
    it::ProxyOptions o;
    o.backend = backend;
    o.extra_args = {"--connect-timeout-ms", "2000"};
    it::ProxyProcess proxy(o);
    for (int attempt = 1; attempt <= 2; ++attempt) {
      INFO("attempt " << attempt);
      const auto start = it::Clock::now();
      const it::PgConn c = proxy.connect();
      REQUIRE_FALSE(c.ok());
      INFO("libpq: " << c.error_message());
      CHECK(c.connect_sqlstate() == "08006");
      CHECK(it::contains(c.error_message(), "pgphase could not connect to the server"));
      CHECK(it::elapsed_ms(start) < 5000);
      REQUIRE(proxy.running());
      CHECK(healthz_ok(proxy.admin_port()));
    }
    // The same on the wire: one FATAL ErrorResponse, then the connection is closed.
    it::RawClient raw = it::RawClient::tcp(proxy.port());
    raw.send(wire::startup({{"user", "postgres"}, {"database", "postgres"}}));
    const it::BackendMessage m = raw.read_message();
    REQUIRE(m.type == 'E');
    auto f = m.fields();
    CHECK(f['S'] == "FATAL");
    CHECK(f['C'] == "08006");
    CHECK(raw.read_some() == "");
    CHECK(it::scrape_metrics(proxy.admin_port()).get("pgphase_backend_connect_failures_total") ==
          3);
    CHECK(proxy.running());
  }
}

TEST_CASE("backend terminated mid-query: PostgreSQL's FATAL 57P01 reaches the client",
          "[terminated]") {
  auto& env = it::shared_env();
  const it::PgConn direct = env.pg->connect();
  REQUIRE(direct.ok());
  const it::PgConn bystander =
      env.proxy->connect("postgres", "postgres", "", "application_name=rob_bystander");
  const it::PgConn idle_bystander =
      env.proxy->connect("postgres", "postgres", "", "application_name=rob_idle_bystander");
  REQUIRE(bystander.ok());
  REQUIRE(idle_bystander.ok());
  REQUIRE(PQsendQuery(bystander.get(), "SELECT pg_sleep(1), 'bystander'") == 1);

  SECTION("libpq client") {
    const it::PgConn victim =
        env.proxy->connect("postgres", "postgres", "", "application_name=rob_victim");
    REQUIRE(victim.ok());
    REQUIRE(PQsendQuery(victim.get(), "SELECT pg_sleep(30)") == 1);
    const int pid = wait_backend_pid(direct, "rob_victim", "active");
    REQUIRE(pid > 0);
    const auto start = it::Clock::now();
    REQUIRE(direct.scalar("SELECT pg_terminate_backend(" + std::to_string(pid) + ")") == "t");
    const it::PgResult r = first_error(victim.results());
    INFO("result: " << r.describe() << "\nconnection: " << victim.error_message());
    CHECK(it::elapsed_ms(start) < 5000);
    REQUIRE(r);
    CHECK(r.sqlstate() == "57P01");
    CHECK(r.field(PG_DIAG_SEVERITY_NONLOCALIZED) == "FATAL");
    CHECK(r.field(PG_DIAG_MESSAGE_PRIMARY) ==
          "terminating connection due to administrator command");
    CHECK(PQstatus(victim.get()) == CONNECTION_BAD);
    CHECK_FALSE(it::contains(victim.error_message(), "pgphase"));  // nothing added by pgphase
  }

  SECTION("raw client: exactly PostgreSQL's bytes, then the close") {
    it::RawClient victim = it::RawClient::tcp(env.proxy->port());
    victim.startup("postgres", "postgres", {{"application_name", "rob_victim_raw"}});
    victim.send(wire::query("SELECT pg_sleep(30)"));
    const int pid = wait_backend_pid(direct, "rob_victim_raw", "active");
    REQUIRE(pid > 0);
    REQUIRE(direct.scalar("SELECT pg_terminate_backend(" + std::to_string(pid) + ")") == "t");
    const auto msgs = victim.read_until('E', 5s);
    REQUIRE(it::types(msgs) == "TE");  // RowDescription goes out before pg_sleep runs
    auto f = msgs[1].fields();
    CHECK(f['S'] == "FATAL");
    CHECK(f['C'] == "57P01");
    CHECK(f['M'] == "terminating connection due to administrator command");
    std::string after;
    for (std::string got; !(got = victim.read_some(5s)).empty();) after += got;
    INFO("after the FATAL: " << hex(after));
    CHECK(after.empty());
  }

  // The other sessions through the same pgphase did not notice.
  const auto results = bystander.results();
  REQUIRE(results.size() == 1);
  INFO(results[0].describe());
  REQUIRE(results[0].ok());
  CHECK(results[0].value(0, 1) == "bystander");
  CHECK(bystander.scalar("SELECT 1") == "1");
  CHECK(idle_bystander.scalar("SELECT 2") == "2");
  const it::PgConn fresh = env.proxy->connect();
  REQUIRE(fresh.ok());
  CHECK(fresh.scalar("SELECT 3") == "3");
  CHECK(env.proxy->running());
}

TEST_CASE("backend killed with SIGKILL: the client gets an error, pgphase stays up", "[killed]") {
  // A dedicated cluster: PostgreSQL answers a crashed backend by restarting all of them.
  const auto pg = it::PgCluster::start();
  it::ProxyProcess proxy(it::ProxyOptions::tcp(*pg));
  it::PgConn direct = pg->connect();
  REQUIRE(direct.ok());
  const it::PgConn victim = proxy.connect("postgres", "postgres", "", "application_name=rob_kill9");
  const it::PgConn neighbour =
      proxy.connect("postgres", "postgres", "", "application_name=rob_kill9_neighbour");
  REQUIRE(victim.ok());
  REQUIRE(neighbour.ok());
  std::vector<std::string> neighbour_heard;  // SQLSTATEs of what arrives while it is idle
  PQsetNoticeReceiver(neighbour.get(), record_sqlstate, &neighbour_heard);
  REQUIRE(PQsendQuery(victim.get(), "SELECT pg_sleep(30)") == 1);
  const int pid = wait_backend_pid(direct, "rob_kill9", "active");
  REQUIRE(pid > 0);

  const auto start = it::Clock::now();
  REQUIRE(::kill(pid, SIGKILL) == 0);
  const it::PgResult r = first_error(victim.results());
  INFO("victim: " << r.describe() << "\nconnection: " << victim.error_message()
                  << "\npgphase stderr:\n"
                  << proxy.stderr_tail(20));
  CHECK(it::elapsed_ms(start) < 10000);
  REQUIRE(r);
  // pgphase reports the lost backend (08006); PostgreSQL's crash notice (57P02) is also fine.
  CHECK((r.sqlstate() == "08006" || r.sqlstate() == "57P02"));
  CHECK(PQstatus(victim.get()) == CONNECTION_BAD);

  // The idle neighbour's backend is ended by PostgreSQL's crash recovery, which tells it why
  // (WARNING 57P02); pgphase relays that, adds its own 08006 and closes: no hang.
  const auto nstart = it::Clock::now();
  bool neighbour_open = true;
  CHECK(it::wait_until(
      [&] {
        neighbour_open = PQconsumeInput(neighbour.get()) == 1;
        (void)PQisBusy(neighbour.get());  // parses what arrived: notices go to the receiver
        return !neighbour_open;
      },
      10s));
  INFO("neighbour heard " << ::Catch::Detail::stringify(neighbour_heard) << " after "
                          << it::elapsed_ms(nstart) << " ms");
  CHECK(std::find(neighbour_heard.begin(), neighbour_heard.end(), "57P02") !=
        neighbour_heard.end());
  CHECK((!neighbour_heard.empty() && neighbour_heard.back() == "08006"));
  CHECK_FALSE(neighbour.exec("SELECT 1").ok());

  REQUIRE(proxy.running());
  CHECK(healthz_ok(proxy.admin_port()));
  // Once PostgreSQL has recovered, pgphase serves new sessions again.
  CHECK(pg->running());
  REQUIRE(it::wait_until([&] { return pg->connect().ok(); }, 60s, 200ms));
  it::PgConn again;
  REQUIRE(it::wait_until([&] { return (again = proxy.connect()).ok(); }, 30s, 200ms));
  CHECK(again.scalar("SELECT 40 + 2") == "42");
  direct = pg->connect();
  CHECK(count_backends(direct, "rob_kill9") == 0);
  CHECK(proxy.running());
}
