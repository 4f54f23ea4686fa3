// COPY through pgphase: FROM STDIN (PQputCopyData), TO STDOUT (PQgetCopyData) in text and
// binary, CopyFail (57014, table unchanged), a bad row mid-stream, and a multi-megabyte copy.
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

std::string rows_text(int from, int to) {
  std::string out;
  for (int i = from; i <= to; ++i) out += std::to_string(i) + "\tname " + std::to_string(i) + "\n";
  return out;
}

// Sends `data` in chunks of `chunk` bytes, then CopyDone (or CopyFail with `fail_with`).
PgResult copy_in(const PgConn& c, const std::string& sql, const std::string& data,
                 size_t chunk = 8192, const char* fail_with = nullptr) {
  const PgResult start = c.exec(sql);
  if (start.status() != PGRES_COPY_IN) return start;
  for (size_t pos = 0; pos < data.size(); pos += chunk) {
    const std::string piece = data.substr(pos, chunk);
    if (PQputCopyData(c.get(), piece.data(), static_cast<int>(piece.size())) != 1) break;
  }
  PQputCopyEnd(c.get(), fail_with);
  PgResult end(PQgetResult(c.get()));
  while (PGresult* extra = PQgetResult(c.get())) PQclear(extra);
  return end;
}

std::string copy_out(const PgConn& c, const std::string& sql) {
  const PgResult start = c.exec(sql);
  INFO(start.describe());
  REQUIRE(start.status() == PGRES_COPY_OUT);
  std::string out;
  char* buf = nullptr;
  int n;
  while ((n = PQgetCopyData(c.get(), &buf, 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    PQfreemem(buf);
  }
  REQUIRE(n == -1);  // -2 would be an error
  const PgResult end(PQgetResult(c.get()));
  INFO(end.describe());
  REQUIRE(end.status() == PGRES_COMMAND_OK);
  CHECK_FALSE(PgResult(PQgetResult(c.get())));
  return out;
}

}  // namespace

TEST_CASE("COPY FROM STDIN and COPY TO STDOUT", "[copy]") {
  const PgConn c = proxied();
  c.exec_ok("CREATE TABLE copy_t(id int PRIMARY KEY, name text)");
  const std::string data = rows_text(1, 1000);
  const PgResult in = copy_in(c, "COPY copy_t FROM STDIN", data, 1000);
  INFO(in.describe());
  REQUIRE(in.status() == PGRES_COMMAND_OK);
  CHECK(in.cmd_status() == "COPY 1000");
  CHECK(c.scalar("SELECT count(*) FROM copy_t") == "1000");
  CHECK(c.scalar("SELECT name FROM copy_t WHERE id = 777") == "name 777");

  CHECK(copy_out(c, "COPY (SELECT id, name FROM copy_t ORDER BY id) TO STDOUT") == data);
  CHECK(copy_out(c,
                 "COPY (SELECT id, name FROM copy_t WHERE id <= 2 ORDER BY id) TO STDOUT "
                 "WITH (FORMAT csv, HEADER)") == "id,name\n1,name 1\n2,name 2\n");
  const std::string binary =
      copy_out(c, "COPY (SELECT id FROM copy_t WHERE id = 1) TO STDOUT WITH (FORMAT binary)");
  REQUIRE(binary.size() > 19);
  CHECK(binary.substr(0, 11) == std::string("PGCOPY\n\377\r\n\0", 11));
  CHECK(c.tx_status() == PQTRANS_IDLE);
}

TEST_CASE("CopyFail aborts the COPY and leaves the table unchanged", "[copy]") {
  const PgConn c = proxied();
  c.exec_ok("CREATE TABLE copy_fail_t(id int, name text)");
  c.exec_ok("INSERT INTO copy_fail_t VALUES (0, 'existing')");
  const PgResult r =
      copy_in(c, "COPY copy_fail_t FROM STDIN", rows_text(1, 50), 100, "client changed its mind");
  REQUIRE(r.status() == PGRES_FATAL_ERROR);
  CHECK(r.sqlstate() == "57014");
  CHECK(contains(r.field(PG_DIAG_MESSAGE_PRIMARY), "client changed its mind"));
  CHECK(c.scalar("SELECT count(*) FROM copy_fail_t") == "1");
  CHECK(c.tx_status() == PQTRANS_IDLE);
}

TEST_CASE("a bad row fails the COPY with the server's error", "[copy]") {
  const PgConn c = proxied();
  c.exec_ok("CREATE TABLE copy_bad_t(id int, name text)");
  const PgResult r = copy_in(c, "COPY copy_bad_t FROM STDIN",
                             rows_text(1, 10) + "not_a_number\tx\n" + rows_text(12, 20));
  REQUIRE(r.status() == PGRES_FATAL_ERROR);
  CHECK(r.sqlstate() == "22P02");
  CHECK(contains(r.field(PG_DIAG_CONTEXT), "COPY copy_bad_t, line 11"));
  CHECK(c.scalar("SELECT count(*) FROM copy_bad_t") == "0");
  CHECK(c.scalar("SELECT 'usable'") == "usable");
}

TEST_CASE("a multi-megabyte COPY in both directions", "[copy][large]") {
  const PgConn c = proxied();
  c.exec_ok("CREATE TABLE copy_big_t(id int, payload text)");
  std::string data;
  for (int i = 1; i <= 20000; ++i) {
    data += std::to_string(i) + "\t" + std::string(500, static_cast<char>('a' + i % 26)) + "\n";
  }
  const PgResult in = copy_in(c, "COPY copy_big_t FROM STDIN", data, 65536);
  INFO(in.describe());
  REQUIRE(in.status() == PGRES_COMMAND_OK);
  CHECK(in.cmd_status() == "COPY 20000");
  CHECK(c.scalar("SELECT sum(id) FROM copy_big_t") == "200010000");
  CHECK(c.scalar("SELECT sum(length(payload)) FROM copy_big_t") == "10000000");
  CHECK(copy_out(c, "COPY (SELECT * FROM copy_big_t ORDER BY id) TO STDOUT") == data);
}

TEST_CASE("COPY inside a transaction block and via the extended protocol", "[copy]") {
  const PgConn c = proxied();
  c.exec_ok("CREATE TABLE copy_tx_t(id int, name text)");
  c.exec_ok("BEGIN");
  const PgResult in = copy_in(c, "COPY copy_tx_t FROM STDIN", rows_text(1, 5));
  REQUIRE(in.status() == PGRES_COMMAND_OK);
  CHECK(c.tx_status() == PQTRANS_INTRANS);
  c.exec_ok("ROLLBACK");
  CHECK(c.scalar("SELECT count(*) FROM copy_tx_t") == "0");

  // PQexecParams sends COPY as Parse/Bind/Execute/Sync.
  const PgResult start(
      PQexecParams(c.get(), "COPY copy_tx_t FROM STDIN", 0, nullptr, nullptr, nullptr, nullptr, 0));
  REQUIRE(start.status() == PGRES_COPY_IN);
  const std::string rows = rows_text(1, 3);
  REQUIRE(PQputCopyData(c.get(), rows.data(), static_cast<int>(rows.size())) == 1);
  REQUIRE(PQputCopyEnd(c.get(), nullptr) == 1);
  const PgResult end(PQgetResult(c.get()));
  CHECK(end.cmd_status() == "COPY 3");
  CHECK_FALSE(PgResult(PQgetResult(c.get())));
  CHECK(c.scalar("SELECT count(*) FROM copy_tx_t") == "3");
}
