// The extended query protocol through pgphase: named and unnamed statements, text and binary
// formats, Describe, pipelines with and without Sync (Flush), Execute with a row limit
// (PortalSuspended) and Close, the last ones as raw protocol compared with PostgreSQL itself.
#include <poll.h>

#include <bit>
#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include "harness/harness.h"

using namespace pgphase::it;

namespace {

PgConn proxied() {
  PgConn c = shared_env().proxy->connect();
  INFO("connect error: " << c.error_message());
  REQUIRE(c.ok());
  return c;
}

std::string be_bytes(uint64_t v, int n) {
  std::string out;
  for (int i = n - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

uint64_t from_be(const std::string& s) {
  uint64_t v = 0;
  for (char ch : s) v = (v << 8) | static_cast<unsigned char>(ch);
  return v;
}

PgResult next(const PgConn& c) {
  return PgResult(PQgetResult(c.get()));
}

// Raw session as the trust role, to pgphase or directly to PostgreSQL.
RawClient raw_session(uint16_t port) {
  RawClient raw = RawClient::tcp(port);
  raw.startup();
  return raw;
}

}  // namespace

TEST_CASE("named prepared statements", "[extended]") {
  const PgConn c = proxied();
  const PgResult prep(
      PQprepare(c.get(), "it_add", "SELECT $1::int4 + $2::int4 AS sum", 2, nullptr));
  REQUIRE(prep.status() == PGRES_COMMAND_OK);
  for (int i = 0; i < 5; ++i) {
    const std::string a = std::to_string(i);
    const std::string b = std::to_string(i * 100);
    const char* values[] = {a.c_str(), b.c_str()};
    const PgResult r(PQexecPrepared(c.get(), "it_add", 2, values, nullptr, nullptr, 0));
    REQUIRE(r.status() == PGRES_TUPLES_OK);
    CHECK(r.value() == std::to_string(i + i * 100));
  }
  const PgResult dup(PQprepare(c.get(), "it_add", "SELECT 1", 0, nullptr));
  CHECK(dup.sqlstate() == "42P05");
  CHECK(c.scalar("SELECT count(*) FROM pg_prepared_statements WHERE name = 'it_add'") == "1");

  const PgResult d(PQdescribePrepared(c.get(), "it_add"));
  REQUIRE(d.status() == PGRES_COMMAND_OK);
  CHECK(PQnparams(d.get()) == 2);
  CHECK(PQparamtype(d.get(), 0) == 23);
  CHECK(PQparamtype(d.get(), 1) == 23);
  REQUIRE(d.cols() == 1);
  CHECK(std::string(PQfname(d.get(), 0)) == "sum");
  CHECK(PQftype(d.get(), 0) == 23);

  c.exec_ok("DEALLOCATE it_add");
  const char* values[] = {"1", "2"};
  const PgResult gone(PQexecPrepared(c.get(), "it_add", 2, values, nullptr, nullptr, 0));
  CHECK(gone.sqlstate() == "26000");
}

TEST_CASE("unnamed statements with text and binary formats", "[extended]") {
  const PgConn c = proxied();
  const PgResult text =
      c.exec_params("SELECT $1::text || $2::text, $3::int IS NULL", {"ab", "cd", std::nullopt});
  REQUIRE(text.status() == PGRES_TUPLES_OK);
  CHECK(text.value(0, 0) == "abcd");
  CHECK(text.value(0, 1) == "t");

  const std::string i4 = be_bytes(21, 4);
  const std::string bytes("\x00\x01\x02\xff", 4);
  const std::string f8 = be_bytes(std::bit_cast<uint64_t>(1.5), 8);
  const Oid types[] = {23, 17, 701};
  const char* values[] = {i4.data(), bytes.data(), f8.data()};
  const int lengths[] = {4, 4, 8};
  const int formats[] = {1, 1, 1};
  const char* sql = "SELECT $1::int4 * 2, $2::bytea, $3::float8 + 1";
  SECTION("binary results") {
    const PgResult r(PQexecParams(c.get(), sql, 3, types, values, lengths, formats, 1));
    REQUIRE(r.status() == PGRES_TUPLES_OK);
    for (int col = 0; col < 3; ++col) CHECK(PQfformat(r.get(), col) == 1);
    CHECK(from_be(r.value(0, 0)) == 42);
    CHECK(r.value(0, 1) == bytes);
    CHECK(std::bit_cast<double>(from_be(r.value(0, 2))) == 2.5);
  }
  SECTION("text results from binary parameters") {
    const PgResult r(PQexecParams(c.get(), sql, 3, types, values, lengths, formats, 0));
    REQUIRE(r.status() == PGRES_TUPLES_OK);
    CHECK(PQfformat(r.get(), 0) == 0);
    CHECK(r.value(0, 0) == "42");
    CHECK(r.value(0, 1) == "\\x000102ff");
    CHECK(r.value(0, 2) == "2.5");
  }
}

TEST_CASE("Describe of a portal", "[extended]") {
  const PgConn c = proxied();
  c.exec_ok("BEGIN");
  c.exec_ok("DECLARE it_cur CURSOR FOR SELECT 1::int4 AS x, 'a'::text AS y");
  const PgResult d(PQdescribePortal(c.get(), "it_cur"));
  REQUIRE(d.status() == PGRES_COMMAND_OK);
  REQUIRE(d.cols() == 2);
  CHECK(std::string(PQfname(d.get(), 0)) == "x");
  CHECK(std::string(PQfname(d.get(), 1)) == "y");
  CHECK(PQftype(d.get(), 0) == 23);
  CHECK(PQftype(d.get(), 1) == 25);
  const PgResult missing(PQdescribePortal(c.get(), "no_such_portal"));
  CHECK(missing.sqlstate() == "34000");
  c.exec_ok("ROLLBACK");
}

TEST_CASE("pipeline mode with several queries per Sync", "[extended][pipeline]") {
  const PgConn c = proxied();
  REQUIRE(PQenterPipelineMode(c.get()) == 1);
  const char* one[] = {"1"};
  const char* seven[] = {"7"};
  REQUIRE(PQsendQueryParams(c.get(), "SELECT $1::int", 1, nullptr, one, nullptr, nullptr, 0));
  REQUIRE(PQsendPrepare(c.get(), "it_pipe", "SELECT $1::int * 10", 1, nullptr));
  REQUIRE(PQsendQueryPrepared(c.get(), "it_pipe", 1, seven, nullptr, nullptr, 0));
  REQUIRE(PQsendQueryParams(c.get(), "SELECT 1/0", 0, nullptr, nullptr, nullptr, nullptr, 0));
  REQUIRE(PQsendQueryParams(c.get(), "SELECT 3", 0, nullptr, nullptr, nullptr, nullptr, 0));
  REQUIRE(PQpipelineSync(c.get()) == 1);
  REQUIRE(PQsendQueryParams(c.get(), "SELECT 4", 0, nullptr, nullptr, nullptr, nullptr, 0));
  REQUIRE(PQpipelineSync(c.get()) == 1);

  const auto expect = [&](ExecStatusType status, const char* value) {
    const PgResult r = next(c);
    INFO("got " << r.describe());
    REQUIRE(r.status() == status);
    if (value != nullptr) CHECK(r.value() == value);
    if (status != PGRES_PIPELINE_SYNC) CHECK_FALSE(next(c));  // end of this query's results
    return r;
  };
  expect(PGRES_TUPLES_OK, "1");
  expect(PGRES_COMMAND_OK, nullptr);
  expect(PGRES_TUPLES_OK, "70");
  CHECK(expect(PGRES_FATAL_ERROR, nullptr).sqlstate() == "22012");
  expect(PGRES_PIPELINE_ABORTED, nullptr);
  expect(PGRES_PIPELINE_SYNC, nullptr);
  expect(PGRES_TUPLES_OK, "4");
  expect(PGRES_PIPELINE_SYNC, nullptr);
  REQUIRE(PQexitPipelineMode(c.get()) == 1);
  CHECK(c.scalar("SELECT 'out of pipeline'") == "out of pipeline");
}

TEST_CASE("pipeline with a Flush request and no Sync", "[extended][pipeline]") {
  const PgConn c = proxied();
  REQUIRE(PQenterPipelineMode(c.get()) == 1);
  REQUIRE(PQsendQueryParams(c.get(), "SELECT 'flushed'", 0, nullptr, nullptr, nullptr, nullptr, 0));
  REQUIRE(PQsendFlushRequest(c.get()) == 1);
  REQUIRE(PQflush(c.get()) == 0);
  // The result must arrive although no Sync (hence no ReadyForQuery) has been sent.
  const bool arrived = wait_until(
      [&] {
        pollfd p{PQsocket(c.get()), POLLIN, 0};
        poll(&p, 1, 50);
        PQconsumeInput(c.get());
        return PQisBusy(c.get()) == 0;
      },
      5s, 1ms);
  REQUIRE(arrived);
  const PgResult r = next(c);
  REQUIRE(r.status() == PGRES_TUPLES_OK);
  CHECK(r.value() == "flushed");
  CHECK_FALSE(next(c));
  REQUIRE(PQpipelineSync(c.get()) == 1);
  CHECK(next(c).status() == PGRES_PIPELINE_SYNC);
  REQUIRE(PQexitPipelineMode(c.get()) == 1);
}

TEST_CASE("Execute with a row limit gives PortalSuspended", "[extended][raw]") {
  auto& env = shared_env();
  const std::string script = wire::parse("", "SELECT g FROM generate_series(1, 5) g") +
                             wire::bind("", "") + wire::execute("", 2) + wire::execute("", 0) +
                             wire::sync();
  RawClient raw = raw_session(env.proxy->port());
  raw.send(script);
  const auto got = raw.read_until_ready();
  REQUIRE(types(got) == "12DDsDDDCZ");
  CHECK(got[2].columns().at(0).value_or("") == "1");
  CHECK(got[3].columns().at(0).value_or("") == "2");
  CHECK(got[5].columns().at(0).value_or("") == "3");
  CHECK(got[7].columns().at(0).value_or("") == "5");
  CHECK(got[8].tag() == "SELECT 3");
  CHECK(got[9].body == "I");

  RawClient direct = raw_session(env.pg->port());
  direct.send(script);
  const auto want = direct.read_until_ready();
  REQUIRE(types(want) == types(got));
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i].body == want[i].body);
}

TEST_CASE("named portals, Describe and Close over the raw protocol", "[extended][raw]") {
  auto& env = shared_env();
  const std::string script =
      wire::query("BEGIN") +
      wire::parse("ps1", "SELECT $1::int + g AS v FROM generate_series(1, 3) g", {23}) +
      wire::describe('S', "ps1") + wire::bind("p1", "ps1", {"10"}) + wire::describe('P', "p1") +
      wire::execute("p1", 1) + wire::execute("p1", 1) + wire::close('P', "p1") +
      wire::execute("p1", 1) + wire::sync() + wire::close('S', "ps1") +
      wire::bind("p2", "ps1", {"1"}) + wire::sync() + wire::query("COMMIT");
  const auto run_script = [&](uint16_t port) {
    RawClient raw = raw_session(port);
    // Also exercise reassembly: the script arrives in three uneven pieces.
    raw.send(script.substr(0, 7));
    std::this_thread::sleep_for(20ms);
    raw.send(script.substr(7, 50));
    std::this_thread::sleep_for(20ms);
    raw.send(script.substr(57));
    std::vector<BackendMessage> all;
    for (int ready = 0; ready < 4; ++ready) {
      auto part = raw.read_until_ready();
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  };
  const auto got = run_script(env.proxy->port());
  // BEGIN | Parse Describe(S) Bind Describe(P) Exec Exec Close Exec(closed: error) Sync |
  // Close(S) Bind(missing statement: error) Sync | COMMIT of a failed transaction
  REQUIRE(types(got) ==
          "CZ"
          "1tT2TDsDs3EZ"
          "3EZ"
          "CZ");
  CHECK(got[7].columns().at(0).value_or("") == "11");
  CHECK(got[9].columns().at(0).value_or("") == "12");
  CHECK(got[12].fields().at('C') == "34000");  // portal "p1" does not exist
  CHECK(got[13].body == "E");
  CHECK(got[15].fields().at('C') == "26000");  // prepared statement "ps1" does not exist
  CHECK(got[17].tag() == "ROLLBACK");

  const auto want = run_script(env.pg->port());
  REQUIRE(types(want) == types(got));
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("message " << i << " '" << want[i].type << "'");
    CHECK(got[i].body == want[i].body);
  }
}
