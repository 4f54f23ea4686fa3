// intercept/rewriter: the interception layer fed message sequences as a session feeds it (through
// MessageSplitter, both directions), against a routing table with a migration in dual_write; no
// sockets, no database.
#include "intercept/rewriter.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>

#include "protocol/codes.h"
#include "protocol/extended.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "users_migration.h"

using namespace pgphase;

namespace {

std::shared_ptr<const router::RoutingTable> dual_write_table() {
  return router::RoutingTable::build(test::users_snapshot(migration::Phase::kDualWrite), "app");
}

std::string message(char type, const std::string& body) {
  std::string out = protocol::begin_message(type);
  out += body;
  protocol::finish_message(out);
  return out;
}
std::string cstr(std::string_view s) {
  return std::string(s) + '\0';
}
std::string u16(uint16_t v) {
  std::string s;
  protocol::append_u16(s, v);
  return s;
}
std::string u32(uint32_t v) {
  std::string s;
  protocol::append_u32(s, v);
  return s;
}
std::string bind(std::string_view portal, std::string_view statement) {
  return message('B', cstr(portal) + cstr(statement) + u16(0) + u16(0) + u16(0));
}
std::string execute(std::string_view portal, uint32_t max_rows) {
  return message('E', cstr(portal) + u32(max_rows));
}
std::string row_description(std::string_view column) {
  return message(
      'T', u16(1) + cstr(column) + u32(0) + u16(0) + u32(20) + u16(8) + u32(0xffffffff) + u16(0));
}
// An ErrorResponse with `sqlstate`, as the server sends it.
std::string error_response(std::string_view sqlstate, std::string_view text) {
  protocol::ErrorFields f;
  f.severity = "ERROR";
  f.sqlstate = sqlstate;
  f.message = text;
  return protocol::encode_error_response(f);
}
std::string data_row(std::string_view value) {
  return message('D', u16(1) + u32(static_cast<uint32_t>(value.size())) + std::string(value));
}

// The messages of a byte string: type and body.
std::vector<std::pair<char, std::string>> messages(const std::string& bytes) {
  std::vector<std::pair<char, std::string>> out;
  for (size_t at = 0; at + 5 <= bytes.size();) {
    const uint32_t len =
        protocol::read_u32(reinterpret_cast<const uint8_t*>(bytes.data()) + at + 1);
    out.emplace_back(bytes[at], bytes.substr(at + 5, len - 4));
    at += 1 + len;
  }
  return out;
}

struct Harness {
  router::PlanCache cache{1 << 20};
  intercept::NullRewriteObserver observer;
  std::shared_ptr<const router::RoutingTable> table = dual_write_table();
  intercept::Rewriter rw{[this] { return table; }, cache, observer};
  protocol::MessageSplitter fe{protocol::Direction::kFrontend, 1 << 20};
  protocol::MessageSplitter be{protocol::Direction::kBackend, std::numeric_limits<int32_t>::max()};

  std::string client(const std::string& bytes) {
    protocol::Splice out;
    const auto err = fe.feed(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), out,
        [&](const protocol::MessageView& m) { return rw.frontend_disposition(m); },
        [&](char t, std::span<const uint8_t> b, std::string& o) { rw.frontend_held(t, b, o); });
    REQUIRE(err == protocol::ScanError::kNone);
    return out.joined();
  }
  std::string server(const std::string& bytes) {
    protocol::Splice out;
    const auto err = be.feed(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), out,
        [&](const protocol::MessageView& m) { return rw.backend_disposition(m); },
        [&](char t, std::span<const uint8_t> b, std::string& o) { rw.backend_held(t, b, o); });
    REQUIRE(err == protocol::ScanError::kNone);
    return out.joined();
  }
};

}  // namespace

TEST_CASE("a rewritten write's answer is the client's own: count row dropped, tag rebuilt") {
  Harness h;
  const auto sent = messages(h.client(protocol::encode_query("INSERT INTO users VALUES (1, 'a')")));
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].second.find("t_sys_users") != std::string::npos);
  const std::string answer = row_description("count") + data_row("1") +
                             protocol::encode_command_complete("SELECT 1") +
                             protocol::encode_ready_for_query('I');
  const auto got = messages(h.server(answer));
  REQUIRE(got.size() == 2);
  CHECK(got[0].first == 'C');
  CHECK(got[0].second == cstr("INSERT 0 1"));
  CHECK(got[1].first == 'Z');
  CHECK(h.rw.pending() == 0);
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("Execute of a rewritten write runs it whole whatever the row limit (pgjdbc's 1)") {
  Harness h;
  const std::string out = h.client(protocol::encode_parse("s1", "UPDATE users SET name = $1", {}) +
                                   bind("", "s1") + execute("", 1) + message('S', ""));
  const auto sent = messages(out);
  REQUIRE(sent.size() == 4);
  CHECK(sent[0].second.find("t_sys_users") != std::string::npos);  // Parse of the rewrite
  CHECK(sent[2].first == 'E');
  CHECK(sent[2].second == cstr("") + u32(0));  // the limit is gone
  const auto got = messages(h.server(message('1', "") + message('2', "") + data_row("3") +
                                     protocol::encode_command_complete("SELECT 1") +
                                     protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 4);
  CHECK(got[2].first == 'C');
  CHECK(got[2].second == cstr("UPDATE 3"));
  // A read keeps its limit.
  const auto read = messages(h.client(protocol::encode_parse("s2", "SELECT 1", {}) +
                                      bind("p", "s2") + execute("p", 1) + message('S', "")));
  CHECK(read[2].second == cstr("p") + u32(1));
}

TEST_CASE("an answer that fits no request in flight: dropped, and the session told") {
  Harness h;
  (void)h.client(protocol::encode_query("SELECT 1"));
  // A ParseComplete nobody asked for, then what would follow: nothing reaches the client.
  const std::string out =
      h.server(message('1', "") + data_row("x") + protocol::encode_command_complete("SELECT 1") +
               protocol::encode_ready_for_query('I'));
  CHECK(out.empty());
  CHECK(h.rw.desynchronised());
  CHECK_THAT(h.rw.desync_reason(), Catch::Contains("does not answer the oldest request"));
  // A ReadyForQuery with nothing in flight too.
  Harness idle;
  CHECK(idle.server(protocol::encode_ready_for_query('I')).empty());
  CHECK(idle.rw.desynchronised());
}

// Binds and executes `name` as a rewritten UPDATE: its count row must become the client's tag.
// Statement `name` is the UPDATE the rewriter rewrites in dual_write, prepared and confirmed.
void prepare_update(Harness& h, std::string_view name) {
  (void)h.client(protocol::encode_parse(name, "UPDATE users SET name = 'x'", {}) +
                 message('S', ""));
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));
}
// The migration is rolled back (a new generation in preparation): statements prepared under dual
// write are prepared again as the client wrote them.
void roll_back(Harness& h) {
  h.table =
      router::RoutingTable::build(test::users_snapshot(migration::Phase::kPreparation, 4), "app");
}

void check_runs_as_rewritten_update(Harness& h, const std::string& name) {
  (void)h.client(bind("", name.c_str()) + execute("", 0) + message('S', ""));
  const auto got = messages(h.server(message('2', "") + data_row("4") +
                                     protocol::encode_command_complete("SELECT 1") +
                                     protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 3);
  CHECK(got[1].second == cstr("UPDATE 4"));
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("a Parse the server refuses leaves the statement it would have replaced") {
  Harness h;
  prepare_update(h, "s");
  // The same name again: PostgreSQL answers 42P05 and keeps the first statement.
  (void)h.client(protocol::encode_parse("s", "SELECT 2", {}) + message('S', ""));
  protocol::ErrorFields f;
  f.severity = "ERROR";
  f.sqlstate = "42P05";
  f.message = "prepared statement \"s\" already exists";
  (void)h.server(protocol::encode_error_response(f) + protocol::encode_ready_for_query('I'));
  // Executing "s" is still the rewritten UPDATE: its count row becomes the tag.
  check_runs_as_rewritten_update(h, "s");
}

TEST_CASE("no migration for the session: requests go on untouched, Parse still remembered") {
  Harness h;
  h.table = std::make_shared<const router::RoutingTable>();  // no migration applies
  const std::string parse = protocol::encode_parse("s", "UPDATE users SET name = $1", {});
  CHECK(h.client(parse + message('S', "")) == parse + message('S', ""));
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));
  const std::string run = bind("", "s") + execute("", 1) + message('S', "");
  protocol::Splice out;
  REQUIRE(h.fe.feed(
              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(run.data()), run.size()),
              out, [&](const protocol::MessageView& m) { return h.rw.frontend_disposition(m); },
              [&](char t, std::span<const uint8_t> b, std::string& o) {
                h.rw.frontend_held(t, b, o);
              }) == protocol::ScanError::kNone);
  REQUIRE(out.runs() == 1);  // Bind, Execute and Sync forwarded in place
  CHECK(out.forwarded(0));
  CHECK(out.joined() == run);
  (void)h.server(message('2', "") + protocol::encode_command_complete("UPDATE 0") +
                 protocol::encode_ready_for_query('I'));
  CHECK(h.rw.pending() == 0);

  // The migration begins: the statement prepared before it is prepared again, rewritten, before
  // its next Bind.
  h.table = dual_write_table();
  const auto sent = messages(h.client(bind("", "s") + execute("", 0) + message('S', "")));
  REQUIRE(sent.size() == 5);
  CHECK(sent[0].first == 'C');  // Close s
  CHECK(sent[1].first == 'P');
  CHECK(sent[1].second.find("t_sys_users") != std::string::npos);
  CHECK(sent[2].first == 'B');
  const auto got = messages(h.server(message('3', "") + message('1', "") + message('2', "") +
                                     data_row("2") + protocol::encode_command_complete("SELECT 1") +
                                     protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 3);  // the re-preparation's answers are swallowed
  CHECK(got[0].first == '2');
  CHECK(got[1].second == cstr("UPDATE 2"));
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("COPY FROM STDIN in the extended protocol: the Syncs the server ignores expect nothing") {
  Harness h;
  (void)h.client(protocol::encode_parse("", "COPY users FROM STDIN", {}) + bind("", "") +
                 execute("", 0) + message('S', ""));
  (void)h.server(message('1', "") + message('2', "") + message('G', std::string(1, '\0') + u16(0)));
  // libpq sends a second Sync after CopyDone; only that one is answered.
  (void)h.client(message('d', "1\tx\n") + message('c', "") + message('S', ""));
  CHECK(messages(h.server(protocol::encode_command_complete("COPY 1") +
                          protocol::encode_ready_for_query('I')))
            .size() == 2);
  CHECK(h.rw.pending() == 0);
  CHECK_FALSE(h.rw.desynchronised());
  // The session goes on in step.
  (void)h.client(protocol::encode_query("SELECT 1"));
  (void)h.server(protocol::encode_command_complete("SELECT 1") +
                 protocol::encode_ready_for_query('I'));
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("an error answering a FunctionCall ends with its ReadyForQuery") {
  Harness h;
  (void)h.client(message('F', u32(1) + u16(0) + u16(0) + u16(0)));
  protocol::ErrorFields f;
  f.severity = "ERROR";
  f.sqlstate = "42883";
  f.message = "function 1 does not exist";
  const auto got = messages(
      h.server(protocol::encode_error_response(f) + protocol::encode_ready_for_query('I')));
  CHECK(got.size() == 2);
  CHECK(h.rw.pending() == 0);
  CHECK_FALSE(h.rw.desynchronised());
}

// Found by fuzz_intercept (regress_chained_undo_past_sync): the server fails or skips a change of
// a name while a later change of the same name, pipelined past the Sync, is still in flight.
TEST_CASE("changes of one name failed in turn across a Sync leave what the server has") {
  Harness h;
  prepare_update(h, "s");
  const auto error = [](const char* sqlstate) { return error_response(sqlstate, "refused"); };
  SECTION("a refused Parse, then a skipped one") {
    (void)h.client(protocol::encode_parse("s", "SELECT 2", {}) + message('S', "") +
                   bind("", "nope") + protocol::encode_parse("s", "SELECT 3", {}) +
                   message('S', ""));
    (void)h.server(error("42P05") + protocol::encode_ready_for_query('I'));
    (void)h.server(error("26000") + protocol::encode_ready_for_query('I'));
  }
  SECTION("a skipped Close, then a skipped Parse") {
    (void)h.client(bind("", "nope") + message('C', "Ss" + std::string(1, '\0')) + message('S', "") +
                   bind("", "nope") + protocol::encode_parse("s", "SELECT 3", {}) +
                   message('S', ""));
    (void)h.server(error("26000") + protocol::encode_ready_for_query('I'));
    (void)h.server(error("26000") + protocol::encode_ready_for_query('I'));
  }
  // "s" is still the rewritten UPDATE on the server: its count row becomes the tag.
  check_runs_as_rewritten_update(h, "s");
}

TEST_CASE("a Parse of a name the server has: later requests use the statement the server keeps") {
  Harness h;
  prepare_update(h, "s");
  // Pipelined: the Bind goes out before the refusal of the Parse comes back.
  (void)h.client(protocol::encode_parse("s", "SELECT 2", {}) + message('S', ""));
  (void)h.client(bind("", "s") + execute("", 0) + message('S', ""));
  protocol::ErrorFields f;
  f.severity = "ERROR";
  f.sqlstate = "42P05";
  f.message = "prepared statement \"s\" already exists";
  (void)h.server(protocol::encode_error_response(f) + protocol::encode_ready_for_query('I'));
  const auto got = messages(h.server(message('2', "") + data_row("4") +
                                     protocol::encode_command_complete("SELECT 1") +
                                     protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 3);
  CHECK(got[1].second == cstr("UPDATE 4"));  // the UPDATE's count row became its tag
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE(
    "a Parse of a name whose own Parse then fails: the server takes it, and so does pgphase") {
  Harness h;
  protocol::ErrorFields f;
  f.severity = "ERROR";
  f.sqlstate = "XX000";
  f.message = "failed";
  // Both Parses go out before any answer; the first fails, so the second is not refused.
  (void)h.client(protocol::encode_parse("s", "UPDATE users SET name = 'x'", {}) + message('S', "") +
                 protocol::encode_parse("s", "SELECT 2", {}) + message('S', ""));
  (void)h.server(protocol::encode_error_response(f) + protocol::encode_ready_for_query('I') +
                 message('1', "") + protocol::encode_ready_for_query('I'));
  // "s" is SELECT 2: its answers go to the client untouched.
  const std::string answers = message('2', "") + data_row("2") +
                              protocol::encode_command_complete("SELECT 1") +
                              protocol::encode_ready_for_query('I');
  (void)h.client(bind("", "s") + execute("", 0) + message('S', ""));
  CHECK(h.server(answers) == answers);
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("a statement dropped behind the registry's back is prepared again as the client says") {
  Harness h;
  prepare_update(h, "s");
  const std::string answers = message('1', "") + message('2', "") + data_row("2") +
                              protocol::encode_command_complete("SELECT 1") +
                              protocol::encode_ready_for_query('I');
  SECTION("by DEALLOCATE: the Parse, Bind and Execute that follow are pipelined") {
    (void)h.client(protocol::encode_query("DEALLOCATE s"));
    (void)h.server(protocol::encode_command_complete("DEALLOCATE") +
                   protocol::encode_ready_for_query('I'));
    (void)h.client(protocol::encode_parse("s", "SELECT 2", {}) + bind("", "s") + execute("", 0) +
                   message('S', ""));
    CHECK(h.server(answers) == answers);  // SELECT 2's answers, untouched
  }
  SECTION("unseen: the server takes the Parse, and so does the registry") {
    (void)h.client(protocol::encode_parse("s", "SELECT 2", {}) + message('S', ""));
    (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));
    (void)h.client(bind("", "s") + execute("", 0) + message('S', ""));
    CHECK(h.server(answers.substr(5)) == answers.substr(5));
  }
  CHECK_FALSE(h.rw.desynchronised());
}

// Found by fuzz_intercept (regress_refresh_in_failed_transaction).
TEST_CASE("no re-preparation in a failed transaction: the statement is described as it is") {
  Harness h;
  (void)h.client(protocol::encode_parse("s", "INSERT INTO users (id, name) VALUES ($1, $2)", {}) +
                 message('S', ""));
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));
  (void)h.client(protocol::encode_query("BEGIN; SELECT 1/0"));
  (void)h.server(protocol::encode_command_complete("BEGIN") +
                 error_response("22012", "division by zero") +
                 protocol::encode_ready_for_query('E'));
  // The migration is rolled back: the statement would be prepared again as the client wrote it.
  roll_back(h);
  const std::string describe = message('D', "Ss" + std::string(1, '\0')) + message('S', "");
  CHECK(h.client(describe) == describe);  // no Close and Parse of pgphase's before it
  (void)h.server(message('t', u16(0)) + message('T', u16(0)) +
                 protocol::encode_ready_for_query('E'));
  (void)h.client(protocol::encode_query("ROLLBACK"));
  (void)h.server(protocol::encode_command_complete("ROLLBACK") +
                 protocol::encode_ready_for_query('I'));
  // Once the transaction ended, its next use prepares it again.
  const auto next = messages(h.client(describe));
  REQUIRE(next.size() >= 3);
  CHECK(next[0].first == 'C');
  CHECK(next[1].first == 'P');
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("a re-preparation the server skipped is made again even in a failed transaction") {
  Harness h;
  (void)h.client(protocol::encode_parse("s", "INSERT INTO users (id, name) VALUES ($1, $2)", {}) +
                 message('S', ""));
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));
  roll_back(h);
  const std::string describe = message('D', "Ss" + std::string(1, '\0')) + message('S', "");
  // The re-preparation (Close, Parse) is skipped with the rest after an earlier error: the
  // server still has the rewritten statement, the registry the plan of the client's text.
  (void)h.client(bind("", "nope") + describe);
  (void)h.server(error_response("26000", "prepared statement \"nope\" does not exist") +
                 protocol::encode_ready_for_query('I'));
  (void)h.client(protocol::encode_query("BEGIN; SELECT 1/0"));
  (void)h.server(protocol::encode_command_complete("BEGIN") +
                 error_response("22012", "division by zero") +
                 protocol::encode_ready_for_query('E'));
  const auto sent = messages(h.client(describe));
  REQUIRE(sent.size() >= 3);
  CHECK(sent[0].first == 'C');  // made again, not described under a plan the server lacks
  CHECK(sent[1].first == 'P');
  CHECK_FALSE(h.rw.desynchronised());
}

// Found by fuzz_intercept (regress_portal_bound_behind_transaction_end).
TEST_CASE("a portal bound behind a transaction's end keeps its transforms") {
  Harness h;
  prepare_update(h, "s");
  // The Bind is pipelined behind a COMMIT; its Execute goes out once the COMMIT was answered.
  (void)h.client(protocol::encode_query("COMMIT") + bind("", "s"));
  (void)h.server(protocol::encode_command_complete("COMMIT") +
                 protocol::encode_ready_for_query('I') + message('2', ""));
  (void)h.client(execute("", 0) + message('S', ""));
  const auto got = messages(h.server(data_row("4") + protocol::encode_command_complete("SELECT 1") +
                                     protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 2);
  CHECK(got[0].second == cstr("UPDATE 4"));  // the count row became the tag, as before the end
  CHECK_FALSE(h.rw.desynchronised());
}

// Found by fuzz_intercept (regress_refresh_confirms_its_own_entry).
TEST_CASE("a re-preparation's ParseComplete confirms the statement it was made for") {
  Harness h;
  h.table =
      router::RoutingTable::build(test::users_snapshot(migration::Phase::kPreparation, 2), "app");
  prepare_update(h, "s");
  h.table = dual_write_table();  // "s" is prepared again (Close, Parse) on its next use
  // Pipelined before any answer: the use, and a Parse of the name behind the re-preparation
  // (sent, since the re-preparation is not confirmed), which the server refuses.
  const auto sent =
      messages(h.client(bind("", "s") + message('S', "") +
                        protocol::encode_parse("s", "SELECT 2", {}) + message('S', "")));
  REQUIRE(sent.size() >= 4);
  CHECK(sent[0].first == 'C');
  CHECK(sent[1].first == 'P');
  (void)h.server(message('3', "") + message('1', "") + message('2', "") +
                 protocol::encode_ready_for_query('I') + error_response("42P05", "exists") +
                 protocol::encode_ready_for_query('I'));
  // The server has the rewritten UPDATE, and the registry knows it: the next Parse of "s" is
  // refused too, and a use pipelined behind it runs the UPDATE.
  (void)h.client(protocol::encode_parse("s", "SELECT 3", {}) + message('S', "") + bind("", "s") +
                 execute("", 0) + message('S', ""));
  (void)h.server(error_response("42P05", "exists") + protocol::encode_ready_for_query('I'));
  const auto got = messages(h.server(message('2', "") + data_row("4") +
                                     protocol::encode_command_complete("SELECT 1") +
                                     protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 3);
  CHECK(got[1].second == cstr("UPDATE 4"));  // the count row became the tag
  CHECK_FALSE(h.rw.desynchronised());
}

// Found by fuzz_intercept (regress_describe_unsettled, regress_describe_after_refused_parse).
TEST_CASE("a Describe is answered for the statement the server has when the answer comes") {
  Harness h;
  (void)h.client(protocol::encode_parse("s", "UPDATE users SET name = 'x'", {}) + message('S', ""));
  // Pipelined before the first ParseComplete: a second Parse of "s" (so sent, and recorded, as
  // the statement the client means to have) that the server refuses, and a Describe of "s".
  (void)h.client(protocol::encode_parse("s", "INSERT INTO users VALUES (3, 'c') RETURNING *", {}) +
                 message('S', "") + message('D', "Ss" + std::string(1, '\0')) + message('S', ""));
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I') +
                 error_response("42P05", "exists") + protocol::encode_ready_for_query('I'));
  // The server describes the rewritten UPDATE (its count row); the client's statement has none.
  const auto got = messages(h.server(message('t', u16(0)) + row_description("count") +
                                     protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 3);
  CHECK(got[0].first == 't');
  CHECK(got[1].first == 'n');
  CHECK(got[2].first == 'Z');
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("a Describe of the unnamed statement answered before a Query behind it drops it") {
  Harness h;
  (void)h.client(protocol::encode_parse("", "UPDATE users SET name = 'x'", {}) +
                 message('D', "S" + std::string(1, '\0')) + message('S', "") +
                 protocol::encode_query("SELECT 1"));
  // The Describe is answered while the Query is in flight: the server still has the UPDATE.
  const auto got =
      messages(h.server(message('1', "") + message('t', u16(0)) + row_description("count") +
                        protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 4);
  CHECK(got[2].first == 'n');  // the rewrite's count row is not the client's statement's
  CHECK_FALSE(h.rw.desynchronised());
}

// Found by fuzz_intercept (regress_describe_unnamed_before_portal_close).
TEST_CASE("a Close of a portal is no change of the unnamed statement") {
  Harness h;
  (void)h.client(protocol::encode_parse("", "UPDATE users SET name = 'x'", {}) + message('S', ""));
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));
  // A Describe of the unnamed statement with a Close of the unnamed portal pipelined behind it.
  (void)h.client(message('D', "S" + std::string(1, '\0')) +
                 message('C', "P" + std::string(1, '\0')) + message('S', ""));
  const auto got = messages(h.server(message('t', u16(0)) + row_description("count")));
  REQUIRE(got.size() == 2);
  CHECK(got[1].first == 'n');
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("a Parse of the unnamed statement skipped after an error leaves the one before it") {
  Harness h;
  prepare_update(h, "");
  // The Bind fails, so the server skips the Parse behind it and keeps the UPDATE.
  (void)h.client(bind("", "nope") + protocol::encode_parse("", "SELECT 2", {}) + message('S', ""));
  (void)h.server(error_response("26000", "prepared statement \"nope\" does not exist") +
                 protocol::encode_ready_for_query('I'));
  check_runs_as_rewritten_update(h, "");
}

// Found by fuzz_intercept (regress_describe_after_skipped_refresh).
TEST_CASE("a re-preparation the server skipped leaves the statement described as it was") {
  Harness h;
  prepare_update(h, "s");
  roll_back(h);
  const std::string describe = message('D', "Ss" + std::string(1, '\0'));
  // The Describe re-prepares "s" as the client wrote it, but the Bind before it fails: the
  // server skips the re-preparation and the Parse behind it. The second Describe, sent before
  // that answer came, adds nothing of its own ("s" is not settled).
  (void)h.client(bind("", "nope") + describe + protocol::encode_parse("s", "SELECT 2", {}) +
                 message('S', "") + describe + message('S', ""));
  (void)h.server(error_response("26000", "prepared statement \"nope\" does not exist") +
                 protocol::encode_ready_for_query('I'));
  // The server still has the rewritten UPDATE: its count row is not the client's statement's.
  const auto got = messages(h.server(message('t', u16(0)) + row_description("count") +
                                     protocol::encode_ready_for_query('I')));
  REQUIRE(got.size() == 3);
  CHECK(got[1].first == 'n');
  CHECK_FALSE(h.rw.desynchronised());
}

// Found by fuzz_intercept (regress_bind_after_skipped_parse, the one report of the one-hour run).
TEST_CASE("a Bind sent while a Parse of its name may fail gets the server's statement's answers") {
  Harness h;
  // All before any answer: "s" is prepared, an Execute fails, so the server skips the second
  // Parse of "s" (a write pgphase rewrites, sent since "s" was not known to be on the server).
  // The Bind of "s" behind the Sync was sent as for that write.
  (void)h.client(protocol::encode_parse("s", "SELECT name FROM users WHERE id = 1", {}) +
                 execute("nope", 0) +
                 protocol::encode_parse("s", "INSERT INTO users VALUES (3, 'c') RETURNING *", {}) +
                 message('S', "") + bind("", "s") + execute("", 0) + message('S', ""));
  (void)h.server(message('1', "") + error_response("34000", "portal \"nope\" does not exist") +
                 protocol::encode_ready_for_query('I'));
  // The server bound the SELECT: its row and tag reach the client as they are.
  const std::string answers = message('2', "") + data_row("a") +
                              protocol::encode_command_complete("SELECT 1") +
                              protocol::encode_ready_for_query('I');
  CHECK(h.server(answers) == answers);
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("a BindComplete answering a Describe whose transform is chosen at its answer") {
  Harness h;
  prepare_update(h, "s");
  (void)h.client(message('D', "S" + cstr("s")) + message('S', ""));
  (void)h.server(message('2', ""));  // not a Bind's answer: no portal to look at
  CHECK(h.rw.desynchronised());      // the session is told, and closes
}

TEST_CASE(
    "a simple Query drops the unnamed statement, as PostgreSQL does; a skipped one does not") {
  Harness h;
  const auto prepared_again = [](const std::string& sent) {
    const auto m = messages(sent);  // a re-preparation went out before the Bind
    return !m.empty() && m.front().first == 'P';
  };
  // The migration is rolled back to preparation: the statement prepared rewritten (writing
  // t_sys_users too) must be prepared again as the client wrote it before it next runs.
  const auto rolled_back = [&h] {
    h.table =
        router::RoutingTable::build(test::users_snapshot(migration::Phase::kPreparation, 4), "app");
  };
  (void)h.client(protocol::encode_parse("", "UPDATE users SET name = 'x'", {}) + message('S', ""));
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));

  SECTION("the Query runs: a later Bind of the unnamed statement goes on as it is") {
    (void)h.client(protocol::encode_query("SELECT 1"));
    (void)h.server(row_description("?column?") + data_row("1") +
                   protocol::encode_command_complete("SELECT 1") +
                   protocol::encode_ready_for_query('I'));
    rolled_back();  // a statement still known would be prepared again
    const std::string run = bind("", "") + execute("", 0) + message('S', "");
    CHECK(h.client(run) == run);  // PostgreSQL answers 26000, as it would without pgphase
    protocol::ErrorFields f;
    f.severity = "ERROR";
    f.sqlstate = "26000";
    f.message = "unnamed prepared statement does not exist";
    const std::string error = protocol::encode_error_response(f);
    CHECK(h.server(error + protocol::encode_ready_for_query('I')) ==
          error + protocol::encode_ready_for_query('I'));
  }
  SECTION("the Query is skipped after an error: the unnamed statement is still known") {
    (void)h.client(bind("", "nope") + execute("", 0) + protocol::encode_query("SELECT 1") +
                   message('S', ""));
    protocol::ErrorFields f;
    f.severity = "ERROR";
    f.sqlstate = "26000";
    f.message = "prepared statement \"nope\" does not exist";
    (void)h.server(protocol::encode_error_response(f) + protocol::encode_ready_for_query('I'));
    rolled_back();
    CHECK(prepared_again(h.client(bind("", "") + execute("", 0) + message('S', ""))));
  }
  CHECK_FALSE(h.rw.desynchronised());
}

// users in read_switch with its switch at 100%, and "r", a read of it, prepared.
void prepare_target_read(Harness& h) {
  h.table = router::RoutingTable::build(
      test::with_users_switch(test::users_snapshot(migration::Phase::kReadSwitch), 100), "app");
  (void)h.client(protocol::encode_parse("r", "SELECT name FROM users WHERE id = $1", {}) +
                 message('S', ""));
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));
}

TEST_CASE("a target read's twin whose Parse the server skipped is prepared again on next use") {
  Harness h;
  prepare_target_read(h);
  // An earlier request of the pipeline fails: the server skips the rest up to Sync, the twin's
  // Close and Parse that pgphase put before the client's Bind among them.
  const std::string read = bind("", "r") + execute("", 0);
  const auto first = messages(h.client(bind("", "nope") + read + message('S', "")));
  const auto has_twin_parse = [](const std::vector<std::pair<char, std::string>>& ms) {
    for (const auto& [type, body] : ms) {
      if (type == 'P' && body.find("t_sys_users") != std::string::npos) return true;
    }
    return false;
  };
  REQUIRE(has_twin_parse(first));
  protocol::ErrorFields f;
  f.severity = "ERROR";
  f.sqlstate = "26000";
  f.message = "prepared statement \"nope\" does not exist";
  (void)h.server(protocol::encode_error_response(f) + protocol::encode_ready_for_query('I'));
  // The next target read prepares the twin again rather than binding one the server lacks.
  CHECK(has_twin_parse(messages(h.client(read + message('S', "")))));
  CHECK_FALSE(h.rw.desynchronised());
}

// Found by fuzz_intercept (regress_unsettled_twin): a Parse in flight in an earlier batch may
// fail and leave the name as it was; pgphase prepares nothing of its own for it until it knows.
TEST_CASE("a read whose Parse is in flight before a Sync is bound as the client sent it") {
  Harness h;
  h.table = router::RoutingTable::build(
      test::with_users_switch(test::users_snapshot(migration::Phase::kReadSwitch), 100), "app");
  (void)h.client(protocol::encode_parse("r", "SELECT name FROM users WHERE id = $1", {}) +
                 message('S', ""));
  const std::string read = bind("", "r") + execute("", 0) + message('S', "");
  CHECK(h.client(read) == read);  // no twin: the Parse may yet fail
  (void)h.server(message('1', "") + protocol::encode_ready_for_query('I'));
  // Confirmed: the next read goes to its twin on the target.
  const auto next = messages(h.client(read));
  REQUIRE_FALSE(next.empty());
  CHECK(next.front().first == 'C');
  CHECK(std::any_of(next.begin(), next.end(), [](const auto& m) {
    return m.first == 'P' && m.second.find("t_sys_users") != std::string::npos;
  }));
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("a re-preparation the server skipped is made again on the statement's next use") {
  Harness h;
  prepare_update(h, "s");
  // The migration is rolled back: "s" must be prepared again as the client wrote it. The
  // pipeline's first request fails, so the server skips pgphase's Close and Parse of "s".
  roll_back(h);
  const std::string describe = message('D', "S" + cstr("s"));
  const auto reprepared = [](const std::string& sent) {
    for (const auto& [type, body] : messages(sent)) {
      if (type == 'P') return true;
    }
    return false;
  };
  REQUIRE(reprepared(h.client(bind("", "nope") + describe + message('S', ""))));
  protocol::ErrorFields f;
  f.severity = "ERROR";
  f.sqlstate = "26000";
  f.message = "prepared statement \"nope\" does not exist";
  (void)h.server(protocol::encode_error_response(f) + protocol::encode_ready_for_query('I'));
  // The server still has the rewritten "s": pgphase prepares it again before describing it,
  // rather than describe the rewritten statement as if it were the client's.
  CHECK(reprepared(h.client(describe + message('S', ""))));
  CHECK_FALSE(h.rw.desynchronised());
}

TEST_CASE("a twin is bound without preparing it again only once the server confirmed it") {
  Harness h;
  prepare_target_read(h);
  const std::string read = bind("", "r") + execute("", 0) + message('S', "");
  const auto twin_parses = [](const std::string& sent) {
    int n = 0;
    for (const auto& [type, body] : messages(sent)) n += type == 'P' ? 1 : 0;
    return n;
  };
  // Pipelined: the second read goes out before the first twin Parse is answered, which may yet
  // be failed or skipped; it prepares the twin again (Close, Parse) rather than assume it.
  CHECK(twin_parses(h.client(read)) == 1);
  CHECK(twin_parses(h.client(read)) == 1);
  const std::string answer = message('3', "") + message('1', "") + message('2', "") +
                             data_row("x") + protocol::encode_command_complete("SELECT 1") +
                             protocol::encode_ready_for_query('I');
  (void)h.server(answer + answer);
  // Confirmed: bound as it is.
  CHECK(twin_parses(h.client(read)) == 0);
  CHECK_FALSE(h.rw.desynchronised());
}
