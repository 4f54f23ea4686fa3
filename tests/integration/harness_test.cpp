// Checks of the harness itself, so that the other integration tests can trust it: process
// running and capture, temp-dir and cluster cleanup, free ports, the wire builders' exact bytes,
// and the Prometheus parser.
#include <csignal>
#include <set>

#include <catch2/catch.hpp>

#include "harness/harness.h"

using namespace pgphase::it;

TEST_CASE("run captures output and exit status, and enforces its timeout", "[harness]") {
  const RunResult ok = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  CHECK(ok.exit_code == 3);
  CHECK(ok.out == "out\n");
  CHECK(ok.err == "err\n");
  CHECK(run({"cat"}, {.stdin_data = std::string(300000, 'z')}).out.size() == 300000);
  const auto start = Clock::now();
  const RunResult slow = run({"sleep", "30"}, {.timeout = 300ms});
  CHECK(slow.timed_out);
  CHECK(slow.exit_code == -SIGKILL);
  CHECK(elapsed_ms(start) < 5000);
  CHECK_THROWS(run({"/nonexistent/binary"}));
  // libpq's environment never leaks into children.
  ::setenv("PGHOST", "/should-not-be-seen", 1);
  CHECK(run({"sh", "-c", "echo \"[$PGHOST]\""}).out == "[]\n");
  ::unsetenv("PGHOST");
  if (running_as_root()) {
    CHECK(run({"id", "-un"}, {.as_postgres_user = true}).out == "postgres\n");
  }
}

TEST_CASE("TempDir removes its directory, free_port hands out distinct free ports", "[harness]") {
  std::filesystem::path kept;
  {
    TempDir dir("selftest");
    kept = dir.path();
    write_file(dir / "f", "x");
    CHECK(std::filesystem::exists(kept / "f"));
  }
  CHECK_FALSE(std::filesystem::exists(kept));
  std::set<uint16_t> ports;
  for (int i = 0; i < 50; ++i) ports.insert(free_port());
  CHECK(ports.size() == 50);
  for (uint16_t p : ports) CHECK_FALSE(is_listening(p));
}

TEST_CASE("PgCluster starts a real server and cleans up after itself", "[harness]") {
  std::string data_dir;
  int postmaster = 0;
  {
    PgCluster pg;
    data_dir = pg.data_dir();
    const PgConn c = pg.connect();
    REQUIRE(c.ok());
    CHECK(c.scalar("SHOW server_version_num").starts_with("15"));
    CHECK(c.scalar("SHOW unix_socket_directories") == pg.socket_dir());
    CHECK(std::filesystem::exists(pg.socket_path()));
    CHECK(pg.psql("SELECT 1, 'two'") == "1|two\n");
    postmaster = std::stoi(read_file(std::filesystem::path(data_dir) / "postmaster.pid"));
    CHECK(postmaster > 0);
    // The hba methods are what pg_cluster.h documents.
    const std::string rules = c.scalar(
        "SELECT string_agg(type || ':' || user_name[1] || ':' || auth_method, ' ' ORDER BY "
        "line_number) FROM pg_hba_file_rules WHERE user_name[1] LIKE 'u_%'");
    CHECK(rules ==
          "local:u_password:password local:u_md5:md5 local:u_scram:scram-sha-256 "
          "host:u_password:password host:u_md5:md5 host:u_scram:scram-sha-256");
    for (const TestRole& role : kTestRoles) {
      INFO(role.name);
      CHECK(PgConn::connect(
                pg.unix_conninfo("postgres", role.name, role.password ? role.password : ""))
                .ok());
    }
  }
  CHECK_FALSE(std::filesystem::exists(data_dir));
  CHECK(::kill(postmaster, 0) != 0);  // gone
}

TEST_CASE("wire builders produce the documented bytes", "[harness]") {
  using namespace std::string_literals;
  CHECK(wire::query("SELECT 1") == "Q\0\0\0\x0dSELECT 1\0"s);
  CHECK(wire::sync() == "S\0\0\0\x04"s);
  CHECK(wire::ssl_request() == "\0\0\0\x08\x04\xd2\x16\x2f"s);
  CHECK(wire::gssenc_request() == "\0\0\0\x08\x04\xd2\x16\x30"s);
  CHECK(wire::cancel_request(1, 2) == "\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x01\0\0\0\x02"s);
  CHECK(wire::startup({{"user", "u"}}) == "\0\0\0\x10\0\x03\0\0user\0u\0\0"s);
  CHECK(wire::execute("", 2) == "E\0\0\0\x09\0\0\0\0\x02"s);
  CHECK(wire::bind("", "s", {std::nullopt, "ab"}) ==
        "B\0\0\0\x17\0s\0\0\0\0\x02\xff\xff\xff\xff\0\0\0\x02"
        "ab\0\0"s);
  const BackendMessage err{'E', "SERROR\0C42601\0Mbad\0\0"s};
  CHECK(err.fields().at('C') == "42601");
  const BackendMessage row{'D', "\0\x02\0\0\0\x01x\xff\xff\xff\xff"s};
  const auto cols = row.columns();
  REQUIRE(cols.size() == 2);
  CHECK(cols[0] == "x");
  CHECK_FALSE(cols[1].has_value());
}

TEST_CASE("the Prometheus parser reads labels, histograms and rejects junk", "[harness]") {
  const Metrics m = Metrics::parse(
      "# HELP a_total help\n# TYPE a_total counter\na_total{dir=\"in\",type=\"Q\"} 3\n"
      "a_total{dir=\"out\",type=\"Q\"} 4\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\n"
      "h_bucket{le=\"+Inf\"} 2\nh_sum 0.75\nh_count 2\n");
  CHECK(m.types.at("a_total") == "counter");
  CHECK(m.get("a_total") == 7);
  CHECK(m.get("a_total", {{"dir", "out"}}) == 4);
  CHECK_FALSE(m.value("a_total", {{"dir", "sideways"}}).has_value());
  CHECK(m.all("h_bucket").size() == 2);
  CHECK(m.get("h_sum") == 0.75);
  CHECK_THROWS(Metrics::parse("a_total{dir=\"in\" 3\n"));
  CHECK_THROWS(Metrics::parse("a_total three\n"));
}
