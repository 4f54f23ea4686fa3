// Driver for jdbc/JdbcPortalTest.java: compiles it with javac into the build directory, runs it
// with pgjdbc (Debian's libpostgresql-jdbc-java) through a real pgphase, and checks on pgphase's
// /metrics that PortalSuspended messages really went through the proxy.
#include <catch2/catch.hpp>
#include <filesystem>

#include "rob_support.h"

using namespace pgphase;
using namespace pgphase::rob;

namespace {
const char* const kJdbcJar = "/usr/share/java/postgresql.jar";
}

TEST_CASE("pgjdbc with portal suspension, server-side prepares and batches", "[jdbc]") {
  INFO("needs Debian packages default-jdk-headless and libpostgresql-jdbc-java");
  REQUIRE(std::filesystem::exists(kJdbcJar));
  std::filesystem::create_directories(ROB_JDBC_CLASSES);
  const it::RunResult javac =
      it::run({"javac", "-d", ROB_JDBC_CLASSES, "-Xlint:all", "-Werror", ROB_JDBC_SOURCE},
              {.timeout = std::chrono::seconds(120)});
  INFO(javac.describe());
  REQUIRE(javac.ok());

  const auto pg = it::PgCluster::start();
  it::ProxyProcess proxy(it::ProxyOptions::tcp(*pg));
  const std::string url = "jdbc:postgresql://127.0.0.1:" + std::to_string(proxy.port()) +
                          "/postgres?user=postgres&sslmode=disable&ApplicationName=rob_jdbc";
  const it::RunResult java = it::run(
      {"java", "-cp", std::string(kJdbcJar) + ":" + ROB_JDBC_CLASSES, "JdbcPortalTest", url},
      {.timeout = std::chrono::seconds(180)});
  INFO(java.describe() << "\npgphase stderr:\n" << proxy.stderr_tail(20));
  REQUIRE(java.ok());
  CHECK(it::contains(java.out, "JDBC OK"));

  const it::Metrics m = it::scrape_metrics(proxy.admin_port());
  const auto be = [&](const char* type) {
    return m.get("pgphase_messages_total", {{"direction", "backend_to_client"}, {"type", type}});
  };
  const auto fe = [&](const char* type) {
    return m.get("pgphase_messages_total", {{"direction", "client_to_backend"}, {"type", type}});
  };
  // PortalSuspended ends every Execute that hit its row limit: 10000 rows in pieces of 100 (twice:
  // 100 each, the last piece is full too), 1000 rows in pieces of 50 (20) and of 70 (14).
  CHECK(be("s") == 2 * 100 + 20 + 14);
  CHECK(fe("E") > 200);                    // Execute, with a row limit for every piece
  CHECK(fe("P") > 0);                      // Parse
  CHECK(fe("B") > 0);                      // Bind
  CHECK(be("D") >= 2 * 10000 + 2 * 1000);  // every DataRow went through pgphase
  CHECK(m.get("pgphase_protocol_errors_total") == 0);
  CHECK(proxy.running());
  // The batch committed through pgphase is really on the server.
  CHECK(pg->connect().scalar("SELECT count(*) FROM jdbc_batch") == "1000");
}
