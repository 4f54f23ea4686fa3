// The FunctionCall ('F') sub-protocol through pgphase: PQfn with integer and text arguments,
// errors, and libpq's large-object API (lo_creat/lo_open/lo_write/lo_lseek/lo_read/...), which is
// built on FunctionCall.
#include <libpq/libpq-fs.h>

#include <random>

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

Oid oid_of(const PgConn& c, const std::string& regprocedure) {
  return static_cast<Oid>(std::stoul(c.scalar("SELECT '" + regprocedure + "'::regprocedure::oid")));
}

}  // namespace

TEST_CASE("PQfn with integer arguments", "[fastpath]") {
  const PgConn c = proxied();
  const Oid int4pl = oid_of(c, "int4pl(int4,int4)");
  CHECK(int4pl == 177);
  PQArgBlock args[2];
  args[0].len = 4;
  args[0].isint = 1;
  args[0].u.integer = 40;
  args[1].len = 4;
  args[1].isint = 1;
  args[1].u.integer = 2;
  int result = 0;
  int result_len = 0;
  const PgResult r(PQfn(c.get(), static_cast<int>(int4pl), &result, &result_len, 1, args, 2));
  INFO(r.describe());
  REQUIRE(r.status() == PGRES_COMMAND_OK);
  CHECK(result_len == 4);
  CHECK(result == 42);
  CHECK(c.tx_status() == PQTRANS_IDLE);
}

TEST_CASE("PQfn with a text argument and result", "[fastpath]") {
  const PgConn c = proxied();
  const Oid md5 = oid_of(c, "md5(text)");
  std::string text = "hello, fastpath";
  PQArgBlock arg;
  arg.len = static_cast<int>(text.size());
  arg.isint = 0;
  arg.u.ptr = reinterpret_cast<int*>(text.data());
  char buf[64] = {};
  int result_len = 0;
  const PgResult r(
      PQfn(c.get(), static_cast<int>(md5), reinterpret_cast<int*>(buf), &result_len, 0, &arg, 1));
  INFO(r.describe());
  REQUIRE(r.status() == PGRES_COMMAND_OK);
  REQUIRE(result_len == 32);
  CHECK(std::string(buf, 32) == c.scalar("SELECT md5('hello, fastpath')"));
}

TEST_CASE("PQfn errors pass through", "[fastpath]") {
  const PgConn c = proxied();
  PQArgBlock args[2];
  args[0].len = 4;
  args[0].isint = 1;
  args[0].u.integer = 2147483647;
  args[1] = args[0];
  int result = 0;
  int result_len = 0;
  const PgResult overflow(PQfn(c.get(), 177, &result, &result_len, 1, args, 2));
  CHECK(overflow.status() == PGRES_FATAL_ERROR);
  CHECK(overflow.sqlstate() == "22003");  // integer out of range

  const PgResult missing(PQfn(c.get(), 999999, &result, &result_len, 1, args, 2));
  CHECK(missing.status() == PGRES_FATAL_ERROR);
  CHECK(missing.sqlstate() == "42883");
  CHECK(c.tx_status() == PQTRANS_IDLE);
  CHECK(c.scalar("SELECT 'after fastpath errors'") == "after fastpath errors");
}

TEST_CASE("large objects through the FunctionCall protocol", "[fastpath][lo]") {
  const PgConn c = proxied();
  std::mt19937 rng(12345);
  std::string data(300000, '\0');
  for (char& ch : data) ch = static_cast<char>(rng());

  c.exec_ok("BEGIN");
  const Oid lo = lo_creat(c.get(), INV_READ | INV_WRITE);
  INFO("libpq: " << c.error_message());
  REQUIRE(lo != InvalidOid);
  const int fd = lo_open(c.get(), lo, INV_READ | INV_WRITE);
  REQUIRE(fd >= 0);
  size_t written = 0;
  while (written < data.size()) {
    const size_t n = std::min<size_t>(65536, data.size() - written);
    REQUIRE(lo_write(c.get(), fd, data.data() + written, n) == static_cast<int>(n));
    written += n;
  }
  CHECK(lo_tell64(c.get(), fd) == static_cast<int64_t>(data.size()));
  REQUIRE(lo_lseek64(c.get(), fd, 1000, SEEK_SET) == 1000);
  std::string back(data.size(), '\0');
  size_t read_total = 0;
  while (true) {
    const int n = lo_read(c.get(), fd, back.data() + read_total, 50000);
    REQUIRE(n >= 0);
    if (n == 0) break;
    read_total += static_cast<size_t>(n);
  }
  CHECK(read_total == data.size() - 1000);
  CHECK(back.substr(0, read_total) == data.substr(1000));
  REQUIRE(lo_truncate(c.get(), fd, 10) == 0);
  REQUIRE(lo_close(c.get(), fd) == 0);
  c.exec_ok("COMMIT");

  CHECK(c.scalar("SELECT length(lo_get(" + std::to_string(lo) + "))") == "10");
  CHECK(lo_unlink(c.get(), lo) == 1);
  CHECK(c.scalar("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = " +
                 std::to_string(lo)) == "0");
}
