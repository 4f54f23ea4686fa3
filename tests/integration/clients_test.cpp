// Real PostgreSQL client programs through pgphase: a psql script (\copy both ways, \gset, \if,
// multi-statement lines, PREPARE/EXECUTE, transactions) with exact expected output, and pgbench
// (-i, then -T 5 with -M simple, extended and prepared) with zero failed transactions.
#include <regex>

#include <catch2/catch.hpp>

#include "harness/harness.h"

using namespace pgphase::it;

namespace {

std::vector<std::string> conn_args(uint16_t port, const std::string& user = "postgres") {
  return {"-h", "127.0.0.1", "-p", std::to_string(port), "-U", user};
}

RunResult psql_file(uint16_t port, const std::string& script) {
  std::vector<std::string> argv{pg_tool("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"};
  const auto c = conn_args(port);
  argv.insert(argv.end(), c.begin(), c.end());
  argv.insert(argv.end(), {"-d", "postgres", "-f", script});
  return run(argv, {.timeout = 60s});
}

long match_number(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return -1;
  return std::stol(m[1].str());
}

}  // namespace

TEST_CASE("a psql script runs through pgphase with the expected output", "[clients][psql]") {
  auto& env = shared_env();
  TempDir dir("psql");
  write_file(dir / "data.csv", "1,one\n2,two\n3,three\n");
  const std::string script = R"(\set ON_ERROR_STOP on
DROP TABLE IF EXISTS psql_t;
CREATE TABLE psql_t(id int PRIMARY KEY, name text);
\copy psql_t FROM ')" + (dir / "data.csv").string() +
                             R"(' WITH (FORMAT csv)
SELECT count(*) AS n, count(*) > 0 AS has_rows FROM psql_t \gset
\echo rows=:n
SELECT name FROM psql_t WHERE id = 2;
BEGIN;
UPDATE psql_t SET name = 'TWO' WHERE id = 2;
COMMIT;
SELECT string_agg(name, ',' ORDER BY id) FROM psql_t;
SELECT 1 AS a \; SELECT 2 AS b;
\copy (SELECT id, upper(name) FROM psql_t ORDER BY id) TO ')" +
                             (dir / "out.csv").string() +
                             R"(' WITH (FORMAT csv)
PREPARE p(int) AS SELECT name FROM psql_t WHERE id = $1;
EXECUTE p(3);
SELECT :n * 10 AS ten_x;
\if :has_rows
\echo has rows
\else
\echo no rows
\endif
DO $$ BEGIN RAISE NOTICE 'notice from script'; END $$;
)";
  write_file(dir / "script.sql", script);
  const std::string expected = "rows=3\ntwo\none,TWO,three\n1\n2\nthree\n30\nhas rows\n";

  const RunResult proxied = psql_file(env.proxy->port(), (dir / "script.sql").string());
  INFO(proxied.describe());
  REQUIRE(proxied.ok());
  CHECK(proxied.out == expected);
  CHECK(contains(proxied.err, "NOTICE:  notice from script"));
  CHECK(read_file(dir / "out.csv") == "1,ONE\n2,TWO\n3,THREE\n");

  // The same script straight to PostgreSQL prints the same.
  const RunResult direct = psql_file(env.pg->port(), (dir / "script.sql").string());
  INFO(direct.describe());
  REQUIRE(direct.ok());
  CHECK(direct.out == proxied.out);
}

TEST_CASE("psql with a SCRAM password and an error exit", "[clients][psql]") {
  auto& env = shared_env();
  std::vector<std::string> argv{pg_tool("psql"), "-X", "-A", "-t"};
  const auto c = conn_args(env.proxy->port(), kScramRole.name);
  argv.insert(argv.end(), c.begin(), c.end());
  argv.insert(argv.end(), {"-d", "postgres", "-c", "SELECT current_user, 6 * 7"});
  const RunResult ok =
      run(argv, {.env = {std::string("PGPASSWORD=") + kScramRole.password}, .timeout = 30s});
  INFO(ok.describe());
  REQUIRE(ok.ok());
  CHECK(ok.out == "u_scram|42\n");

  const RunResult bad = run(argv, {.env = {"PGPASSWORD=wrong"}, .timeout = 30s});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "password authentication failed for user \"u_scram\""));

  argv.back() = "SELECT 1/0";
  const RunResult err =
      run(argv, {.env = {std::string("PGPASSWORD=") + kScramRole.password}, .timeout = 30s});
  CHECK(err.exit_code == 1);
  CHECK(contains(err.err, "ERROR:  division by zero"));
}

TEST_CASE("pgbench through pgphase in every query mode", "[clients][pgbench]") {
  auto& env = shared_env();
  const auto c = conn_args(env.proxy->port());
  std::vector<std::string> init{pg_tool("pgbench"), "-i", "-s", "1", "-q"};
  init.insert(init.end(), c.begin(), c.end());
  init.emplace_back("postgres");
  const RunResult i = run(init, {.timeout = 120s});
  INFO(i.describe());
  REQUIRE(i.ok());
  CHECK(contains(i.err, "done in"));
  CHECK(env.pg->psql("SELECT count(*) FROM pgbench_accounts") == "100000\n");

  for (const char* mode : {"simple", "extended", "prepared"}) {
    std::vector<std::string> argv{pg_tool("pgbench"), "-T", "5", "-c", "4", "-j", "2", "-M", mode};
    argv.insert(argv.end(), c.begin(), c.end());
    argv.emplace_back("postgres");
    const RunResult r = run(argv, {.timeout = 90s});
    INFO("mode " << mode << ": " << r.describe());
    CHECK(r.ok());
    CHECK(contains(r.out, std::string("query mode: ") + mode));
    CHECK(match_number(r.out, R"(number of transactions actually processed: (\d+))") > 0);
    CHECK(match_number(r.out, R"(number of failed transactions: (\d+))") == 0);
    CHECK_FALSE(icontains(r.err, "error"));
  }
  {
    // A new connection per transaction (-C), select-only.
    std::vector<std::string> argv{pg_tool("pgbench"), "-T", "3", "-c", "2", "-C", "-S"};
    argv.insert(argv.end(), c.begin(), c.end());
    argv.emplace_back("postgres");
    const RunResult r = run(argv, {.timeout = 90s});
    INFO(r.describe());
    REQUIRE(r.ok());
    CHECK(match_number(r.out, R"(number of transactions actually processed: (\d+))") > 10);
    CHECK(match_number(r.out, R"(number of failed transactions: (\d+))") == 0);
  }
}
