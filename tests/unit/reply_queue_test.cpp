// intercept/reply_queue: request sequences pushed as the rewriter pushes them, answers fed as the
// server sends them; what each answer does (forward, swallow, mismatch) and what is left in flight.
#include "intercept/reply_queue.h"

#include <catch2/catch.hpp>
#include <vector>

#include "protocol/codes.h"

using namespace pgphase;
using intercept::Expect;
using intercept::ReplyQueue;
using intercept::Request;
using Fit = ReplyQueue::Fit;
namespace be = protocol::be;

namespace {

// Pushes the client's requests (not injected), Syncs through push_sync() as the rewriter does.
void send(ReplyQueue& q, std::initializer_list<Request> kinds) {
  for (Request k : kinds) {
    if (k == Request::kSync) {
      q.push_sync();
    } else {
      q.push({k});
    }
  }
}

std::vector<Fit> answers(ReplyQueue& q, std::string_view types) {
  std::vector<Fit> out;
  for (char t : types) out.push_back(q.answer(t));
  return out;
}

}  // namespace

TEST_CASE("simple Query: rows and tags of each statement, then ReadyForQuery ends it") {
  ReplyQueue q;
  send(q, {Request::kQuery});
  // Two statements: RowDescription, CommandComplete; EmptyQueryResponse; ReadyForQuery.
  CHECK(answers(q, "TC") == std::vector{Fit::kForward, Fit::kForward});
  REQUIRE(q.size() == 1);
  CHECK(q.front().statement == 1);  // the second statement is being answered
  CHECK(q.answer(be::kEmptyQueryResponse) == Fit::kForward);
  CHECK(q.front().statement == 2);
  CHECK(q.answer(be::kReadyForQuery) == Fit::kForward);
  CHECK(q.empty());
  CHECK_FALSE(q.desynchronised());
}

TEST_CASE("extended protocol: each answer ends the request it answers, in order") {
  ReplyQueue q;
  send(q, {Request::kParse, Request::kBind, Request::kDescribe, Request::kExecute, Request::kSync,
           Request::kParse, Request::kDescribe, Request::kSync});
  CHECK(q.size() == 8);
  CHECK(answers(q, "12T") == std::vector(3, Fit::kForward));  // RowDescription ends the Describe
  REQUIRE(q.front().kind == Request::kExecute);
  CHECK(q.answer(be::kDataRow) == Fit::kForward);  // no effect
  CHECK(q.front().kind == Request::kExecute);
  CHECK(answers(q, "CZ1n") == std::vector(4, Fit::kForward));  // NoData ends a Describe too
  REQUIRE(q.size() == 1);
  CHECK(q.front().kind == Request::kSync);
  CHECK(q.answer(be::kReadyForQuery) == Fit::kForward);
  CHECK(q.empty());
  CHECK_FALSE(q.desynchronised());
}

TEST_CASE("a suspended portal ends its Execute; RowDescription inside an Execute ends nothing") {
  ReplyQueue q;
  send(q, {Request::kExecute, Request::kExecute, Request::kSync});
  CHECK(q.answer(be::kRowDescription) == Fit::kForward);
  CHECK(q.size() == 3);
  CHECK(q.answer(be::kPortalSuspended) == Fit::kForward);
  CHECK(q.size() == 2);
  CHECK(answers(q, "CZ") == std::vector(2, Fit::kForward));
  CHECK(q.empty());
}

TEST_CASE("answers to pgphase's own requests are swallowed, the client's forwarded") {
  ReplyQueue q;
  // A statement prepared again before the client's Bind: Close s, Parse s (both injected).
  q.push({Request::kClose, true});
  q.push({Request::kParse, true});
  send(q, {Request::kBind, Request::kClose, Request::kSync});
  CHECK(answers(q, "3123Z") ==
        std::vector{Fit::kSwallow, Fit::kSwallow, Fit::kForward, Fit::kForward, Fit::kForward});
  CHECK(q.empty());
  CHECK_FALSE(q.desynchronised());
}

TEST_CASE("an answer that does not fit the oldest request: an explicit mismatch, reason kept") {
  ReplyQueue q;
  send(q, {Request::kQuery});
  CHECK(q.answer(be::kParseComplete) == Fit::kMismatch);
  CHECK(q.desynchronised());
  CHECK(q.desync_reason() ==
        "server message '1' does not answer the oldest request in flight (1 requests in flight)");
  CHECK(q.size() == 1);  // nothing popped
  // Later mismatches keep the first reason.
  CHECK(q.answer(be::kNoData) == Fit::kMismatch);
  CHECK_THAT(q.desync_reason(), Catch::StartsWith("server message '1'"));

  SECTION("each answer type checks the request kind") {
    ReplyQueue r;
    send(r, {Request::kBind});
    CHECK(r.answer(be::kParseComplete) == Fit::kMismatch);
    ReplyQueue s;
    send(s, {Request::kParse});
    CHECK(s.answer(be::kReadyForQuery) == Fit::kMismatch);
    ReplyQueue t;
    send(t, {Request::kDescribe});
    CHECK(t.answer(be::kCommandComplete) == Fit::kMismatch);
    ReplyQueue u;
    send(u, {Request::kExecute});
    CHECK(u.answer(be::kNoData) == Fit::kMismatch);
  }
}

TEST_CASE("an answer with nothing in flight is a mismatch") {
  ReplyQueue q;
  for (char type : {be::kReadyForQuery, be::kParseComplete, be::kBindComplete, be::kCloseComplete,
                    be::kNoData, be::kRowDescription, be::kCommandComplete, be::kPortalSuspended,
                    be::kEmptyQueryResponse, be::kCopyInResponse}) {
    ReplyQueue idle;
    CHECK(idle.answer(type) == Fit::kMismatch);
    CHECK(idle.desync_reason() == std::string("server message '") + type +
                                      "' arrived with no request in flight (0 requests in flight)");
  }
  // Notices, notifications, ParameterStatus: no request needed.
  CHECK(q.answer(be::kNoticeResponse) == Fit::kForward);
  CHECK(q.answer(be::kParameterStatus) == Fit::kForward);
  CHECK_FALSE(q.desynchronised());
}

TEST_CASE("an error in the extended protocol: the server skips everything up to Sync") {
  ReplyQueue q;
  send(q, {Request::kParse, Request::kBind, Request::kExecute, Request::kSync, Request::kQuery});
  std::vector<Request> undone;
  std::vector<bool> failed;
  q.failed([&](Expect& e, size_t, bool f) {
    undone.push_back(e.kind);
    failed.push_back(f);
  });
  // Newest first: two skipped Parses (or a Parse and a Close) of one name must put back what
  // the name was before the first of them. Only the oldest is the one that failed.
  CHECK(undone == std::vector{Request::kExecute, Request::kBind, Request::kParse});
  CHECK(failed == std::vector{false, false, true});
  REQUIRE(q.size() == 2);
  CHECK(q.front().kind == Request::kSync);
  CHECK_FALSE(q.discarding());
  CHECK(answers(q, "ZCZ") == std::vector(3, Fit::kForward));
  CHECK(q.empty());
}

TEST_CASE("an error before the Sync was sent: later requests expect nothing until Sync") {
  ReplyQueue q;
  send(q, {Request::kParse, Request::kBind});
  size_t undone = 0;
  q.failed([&](Expect&, size_t, bool) { ++undone; });
  CHECK(undone == 2);
  CHECK(q.empty());
  CHECK(q.discarding());
  // The client goes on before it sees the error: the server skips these, no answer will come.
  send(q, {Request::kDescribe, Request::kExecute});
  CHECK(q.empty());
  send(q, {Request::kSync});
  CHECK_FALSE(q.discarding());
  REQUIRE(q.size() == 1);
  CHECK(q.answer(be::kReadyForQuery) == Fit::kForward);
  // The next requests are expected again.
  send(q, {Request::kParse, Request::kSync});
  CHECK(q.size() == 2);
}

TEST_CASE("an error to a simple Query or a FunctionCall ends with its ReadyForQuery") {
  for (Request k : {Request::kQuery, Request::kFunctionCall}) {
    ReplyQueue q;
    send(q, {k, Request::kQuery});
    bool undone = false;
    q.failed([&](Expect&, size_t, bool) { undone = true; });
    CHECK_FALSE(undone);
    CHECK(q.size() == 2);
    CHECK_FALSE(q.discarding());
    CHECK(q.answer(be::kReadyForQuery) == Fit::kForward);
    CHECK(q.size() == 1);
  }
}

TEST_CASE("COPY FROM STDIN: the Syncs the server ignores are not expected") {
  ReplyQueue q;
  // libpq: Parse, Bind, Execute, Sync; the server answers CopyInResponse to the Execute.
  send(q, {Request::kParse, Request::kBind, Request::kExecute, Request::kSync});
  CHECK(answers(q, "12G") == std::vector(3, Fit::kForward));
  REQUIRE(q.size() == 1);  // the Sync sent before CopyInResponse is ignored
  CHECK(q.front().kind == Request::kExecute);
  send(q, {Request::kSync});  // during COPY: ignored too
  CHECK(q.size() == 1);
  q.copy_ended();             // CopyDone
  send(q, {Request::kSync});  // the one answered
  CHECK(answers(q, "CZ") == std::vector(2, Fit::kForward));
  CHECK(q.empty());
  CHECK_FALSE(q.desynchronised());
}

TEST_CASE("finish_front: a Query moves to its next statement, anything else is answered") {
  ReplyQueue q;
  send(q, {Request::kQuery, Request::kDescribe});
  q.finish_front();
  REQUIRE(q.size() == 2);
  CHECK(q.front().statement == 1);
  CHECK(q.answer(be::kReadyForQuery) == Fit::kForward);
  q.finish_front();
  CHECK(q.empty());
}

TEST_CASE("lose_track: the first reason is kept and counts the requests in flight") {
  ReplyQueue q;
  send(q, {Request::kQuery, Request::kSync});
  q.lose_track(be::kDataRow, "is shorter than its rewrite requires");
  q.lose_track(be::kCommandComplete, "has no terminated command tag");
  CHECK(q.desynchronised());
  CHECK(q.desync_reason() ==
        "server message 'D' is shorter than its rewrite requires (2 requests in flight)");
}
