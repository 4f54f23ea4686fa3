// The simple query protocol through pgphase: multi-statement strings, empty queries, errors with
// every field intact (compared with the same error taken directly from PostgreSQL), notices,
// LISTEN/NOTIFY across sessions, and large queries and results.
#include <poll.h>

#include <map>

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

constexpr int kErrorFields[] = {PG_DIAG_SEVERITY,           PG_DIAG_SEVERITY_NONLOCALIZED,
                                PG_DIAG_SQLSTATE,           PG_DIAG_MESSAGE_PRIMARY,
                                PG_DIAG_MESSAGE_DETAIL,     PG_DIAG_MESSAGE_HINT,
                                PG_DIAG_STATEMENT_POSITION, PG_DIAG_INTERNAL_POSITION,
                                PG_DIAG_INTERNAL_QUERY,     PG_DIAG_CONTEXT,
                                PG_DIAG_SCHEMA_NAME,        PG_DIAG_TABLE_NAME,
                                PG_DIAG_COLUMN_NAME,        PG_DIAG_DATATYPE_NAME,
                                PG_DIAG_CONSTRAINT_NAME,    PG_DIAG_SOURCE_FILE,
                                PG_DIAG_SOURCE_LINE,        PG_DIAG_SOURCE_FUNCTION};

// Every notice's fields (code -> value), as PQsetNoticeReceiver saw them.
struct Notices {
  std::vector<std::map<char, std::string>> received;
};

void on_notice(void* arg, const PGresult* r) {
  std::map<char, std::string> fields;
  for (int code : kErrorFields) {
    if (const char* v = PQresultErrorField(r, code)) fields[static_cast<char>(code)] = v;
  }
  static_cast<Notices*>(arg)->received.push_back(std::move(fields));
}

// Waits up to `timeout` for a NOTIFY on `c`.
std::unique_ptr<PGnotify, void (*)(void*)> wait_notify(const PgConn& c,
                                                       std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    PQconsumeInput(c.get());
    if (PGnotify* n = PQnotifies(c.get())) return {n, &PQfreemem};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return {nullptr, &PQfreemem};
    pollfd p{PQsocket(c.get()), POLLIN, 0};
    poll(&p, 1, static_cast<int>(std::min<long>(left, 100)));
  }
}

}  // namespace

TEST_CASE("a multi-statement query returns every result", "[simple]") {
  const PgConn c = proxied();
  REQUIRE(PQsendQuery(c.get(),
                      "SELECT 1 AS a; SELECT 'x' AS b, 'y' AS c; CREATE TEMP TABLE sq_multi(i int);"
                      " INSERT INTO sq_multi VALUES (1), (2); SELECT count(*) FROM sq_multi") == 1);
  const auto rs = c.results();
  REQUIRE(rs.size() == 5);
  CHECK(rs[0].status() == PGRES_TUPLES_OK);
  CHECK(std::string(PQfname(rs[0].get(), 0)) == "a");
  CHECK(rs[0].value() == "1");
  CHECK(rs[1].cols() == 2);
  CHECK(rs[1].value(0, 1) == "y");
  CHECK(rs[2].cmd_status() == "CREATE TABLE");
  CHECK(rs[3].cmd_status() == "INSERT 0 2");
  CHECK(std::string(PQcmdTuples(rs[3].get())) == "2");
  CHECK(rs[4].value() == "2");
  CHECK(c.tx_status() == PQTRANS_IDLE);

  // An error stops the string, and the implicit transaction rolls back the earlier INSERT.
  REQUIRE(PQsendQuery(c.get(), "INSERT INTO sq_multi VALUES (3); SELECT 1/0; SELECT 3") == 1);
  const auto err = c.results();
  REQUIRE(err.size() == 2);
  CHECK(err[0].cmd_status() == "INSERT 0 1");
  CHECK(err[1].sqlstate() == "22012");
  CHECK(c.scalar("SELECT count(*) FROM sq_multi") == "2");
}

TEST_CASE("an empty query gives EmptyQueryResponse", "[simple]") {
  const PgConn c = proxied();
  CHECK(c.exec("").status() == PGRES_EMPTY_QUERY);
  CHECK(c.exec("   ").status() == PGRES_EMPTY_QUERY);
  CHECK(c.tx_status() == PQTRANS_IDLE);
  CHECK(c.scalar("SELECT 'after empty'") == "after empty");
}

TEST_CASE("errors keep all their fields", "[simple][errors]") {
  auto& env = shared_env();
  const PgConn direct = env.pg->connect();
  REQUIRE(direct.ok());
  PQsetNoticeProcessor(
      direct.get(), [](void*, const char*) {}, nullptr);
  direct.exec_ok("CREATE TABLE IF NOT EXISTS sq_err(id int PRIMARY KEY, v int CHECK (v > 0))");
  direct.exec_ok("INSERT INTO sq_err VALUES (1, 1) ON CONFLICT DO NOTHING");
  const PgConn c = proxied();

  SECTION("RAISE with DETAIL, HINT and ERRCODE") {
    const PgResult r = c.exec(
        "DO $$ BEGIN RAISE EXCEPTION 'boom %', 42 USING DETAIL = 'the detail', "
        "HINT = 'the hint', ERRCODE = 'check_violation'; END $$");
    CHECK(r.status() == PGRES_FATAL_ERROR);
    CHECK(r.field(PG_DIAG_SEVERITY) == "ERROR");
    CHECK(r.field(PG_DIAG_SEVERITY_NONLOCALIZED) == "ERROR");
    CHECK(r.sqlstate() == "23514");
    CHECK(r.field(PG_DIAG_MESSAGE_PRIMARY) == "boom 42");
    CHECK(r.field(PG_DIAG_MESSAGE_DETAIL) == "the detail");
    CHECK(r.field(PG_DIAG_MESSAGE_HINT) == "the hint");
    CHECK(contains(r.field(PG_DIAG_CONTEXT), "PL/pgSQL function inline_code_block"));
  }
  SECTION("syntax error with a position") {
    const PgResult r = c.exec("SELECT * FROM WHERE");
    CHECK(r.sqlstate() == "42601");
    CHECK(r.field(PG_DIAG_MESSAGE_PRIMARY) == "syntax error at or near \"WHERE\"");
    CHECK(r.field(PG_DIAG_STATEMENT_POSITION) == "15");
  }
  SECTION("unique and check violations name schema, table and constraint") {
    const PgResult dup = c.exec("INSERT INTO sq_err VALUES (1, 5)");
    CHECK(dup.sqlstate() == "23505");
    CHECK(dup.field(PG_DIAG_MESSAGE_DETAIL) == "Key (id)=(1) already exists.");
    CHECK(dup.field(PG_DIAG_SCHEMA_NAME) == "public");
    CHECK(dup.field(PG_DIAG_TABLE_NAME) == "sq_err");
    CHECK(dup.field(PG_DIAG_CONSTRAINT_NAME) == "sq_err_pkey");
    const PgResult check = c.exec("INSERT INTO sq_err VALUES (2, -1)");
    CHECK(check.sqlstate() == "23514");
    CHECK(check.field(PG_DIAG_CONSTRAINT_NAME) == "sq_err_v_check");
  }
  SECTION("every field equals what PostgreSQL sends directly") {
    for (const char* sql :
         {"DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'd', HINT = 'h'; END $$",
          "SELECT * FROM WHERE", "SELECT 1 +", "INSERT INTO sq_err VALUES (1, 5)",
          "INSERT INTO sq_err VALUES (3, -1)", "SELECT no_such_column FROM sq_err",
          "DO $$ BEGIN PERFORM 1/0; END $$", "SELECT 'abc'::int",
          "CREATE FUNCTION sq_bad() RETURNS int LANGUAGE sql AS 'SELEC 1'"}) {
      INFO("query: " << sql);
      const PgResult want = direct.exec(sql);
      const PgResult got = c.exec(sql);
      REQUIRE(want.status() == PGRES_FATAL_ERROR);
      REQUIRE(got.status() == PGRES_FATAL_ERROR);
      for (int field : kErrorFields) {
        INFO("field '" << static_cast<char>(field) << "'");
        CHECK(got.field(field) == want.field(field));
      }
    }
  }
  CHECK(c.tx_status() == PQTRANS_IDLE);
}

TEST_CASE("notices are delivered", "[simple][notice]") {
  const PgConn c = proxied();
  Notices notices;
  PQsetNoticeReceiver(c.get(), &on_notice, &notices);
  c.exec_ok(
      "DO $$ BEGIN RAISE NOTICE 'hello %', 7; RAISE WARNING 'careful' USING HINT = 'mind it'; "
      "END $$");
  c.exec_ok("DROP TABLE IF EXISTS sq_never_existed");
  REQUIRE(notices.received.size() == 3);
  auto& n = notices.received;
  CHECK(n[0][PG_DIAG_SEVERITY] == "NOTICE");
  CHECK(n[0][PG_DIAG_MESSAGE_PRIMARY] == "hello 7");
  CHECK(n[0][PG_DIAG_SQLSTATE] == "00000");
  CHECK(contains(n[0][PG_DIAG_CONTEXT], "PL/pgSQL function inline_code_block"));
  CHECK(n[1][PG_DIAG_SEVERITY] == "WARNING");
  CHECK(n[1][PG_DIAG_SQLSTATE] == "01000");
  CHECK(n[1][PG_DIAG_MESSAGE_HINT] == "mind it");
  CHECK(n[2][PG_DIAG_MESSAGE_PRIMARY] == "table \"sq_never_existed\" does not exist, skipping");
  CHECK(n[2][PG_DIAG_SQLSTATE] == "00000");
}

TEST_CASE("LISTEN/NOTIFY between two sessions through pgphase", "[simple][notify]") {
  const PgConn listener = proxied();
  const PgConn notifier = proxied();
  listener.exec_ok("LISTEN it_chan");
  // Delivered while the listener is idle: pgphase must relay backend data nobody asked for.
  notifier.exec_ok("NOTIFY it_chan, 'payload one'");
  auto n = wait_notify(listener, 5s);
  REQUIRE(n != nullptr);
  CHECK(std::string(n->relname) == "it_chan");
  CHECK(std::string(n->extra) == "payload one");
  // pgphase relays BackendKeyData unchanged, so the pid in a notification is the one the
  // notifying client was given (clients compare the two to skip their own notifications).
  CHECK(n->be_pid == notifier.server_pid());
  CHECK(n->be_pid == notifier.backend_pid());

  notifier.exec_ok("SELECT pg_notify('it_chan', 'payload two')");
  notifier.exec_ok("NOTIFY other_chan, 'not for us'");
  auto n2 = wait_notify(listener, 5s);
  REQUIRE(n2 != nullptr);
  CHECK(std::string(n2->extra) == "payload two");
  CHECK(wait_notify(listener, 300ms) == nullptr);

  // Self-notification arrives with the command's own response.
  listener.exec_ok("NOTIFY it_chan, 'self'");
  auto self = wait_notify(listener, 5s);
  REQUIRE(self != nullptr);
  CHECK(std::string(self->extra) == "self");
  listener.exec_ok("UNLISTEN *");
}

TEST_CASE("large queries and results", "[simple][large]") {
  const PgConn c = proxied();
  const std::string big(2'000'000, 'q');
  CHECK(c.scalar("SELECT length('" + big + "')") == "2000000");
  const PgResult r = c.exec("SELECT i, md5(i::text) FROM generate_series(1, 200000) i");
  REQUIRE(r.status() == PGRES_TUPLES_OK);
  CHECK(r.rows() == 200000);
  CHECK(r.value(199999, 0) == "200000");
  CHECK(r.value(199999, 1) == c.scalar("SELECT md5('200000')"));
  CHECK(c.scalar("SELECT 'héllo ☃ ü'") == "héllo ☃ ü");
}

// A reply that exactly fills pgphase's landing buffer (1536 bytes) or a pool buffer (32 KiB) made
// it try for more without blocking; on a backend socket Asio had made non-blocking itself, that
// read waited in poll() for bytes the server would only send after the client's next request:
// the session (and its worker) stalled. Each size around both limits, then a second query that
// must be answered within the deadline.
TEST_CASE("replies that exactly fill a read buffer do not stall the session", "[simple]") {
  const PgConn c = proxied();
  const auto answered = [&](const std::string& sql, std::string& last) {
    if (PQsendQuery(c.get(), sql.c_str()) != 1) return false;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      if (PQconsumeInput(c.get()) != 1) return false;
      if (PQisBusy(c.get()) == 0) {
        while (PGresult* r = PQgetResult(c.get())) {
          if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) last = PQgetvalue(r, 0, 0);
          PQclear(r);
        }
        return true;
      }
      pollfd p{PQsocket(c.get()), POLLIN, 0};
      poll(&p, 1, 100);
    }
    return false;
  };
  // The reply to SELECT repeat('x', n) AS r is 58 + n bytes (RowDescription 27, DataRow 11 + n,
  // CommandComplete 14, ReadyForQuery 6).
  for (const size_t reply : {size_t{1536}, size_t{32 * 1024}}) {
    for (size_t n = reply - 58 - 8; n <= reply - 58 + 8; ++n) {
      INFO("reply of " << 58 + n << " bytes");
      std::string last;
      REQUIRE(answered("SELECT repeat('x', " + std::to_string(n) + ") AS r", last));
      CHECK(last.size() == n);
      REQUIRE(answered("SELECT 'next'", last));
      CHECK(last == "next");
    }
  }
}
