// intercept/result_transforms: the server's answers to rewritten statements turned back into the
// answers of the client's own statements.
#include "intercept/result_transforms.h"

#include <catch2/catch.hpp>
#include <memory>

#include "protocol/codes.h"
#include "protocol/extended.h"
#include "wire_builders.h"

using namespace pgphase;
using intercept::Expect;
using intercept::Request;
using router::ResultTransform;
using test::bytes;
using test::cstr;
using test::i16;
using test::i32;
using test::msg;

namespace {

std::string field(std::string_view name) {
  return cstr(name) + i32(0) + i16(0) + i32(23) + i16(4) + i32(-1) + i16(0);
}
std::string row_description_body(std::initializer_list<std::string_view> names) {
  std::string body = i16(static_cast<int16_t>(names.size()));
  for (auto n : names) body += field(n);
  return body;
}
std::string data_row_body(std::initializer_list<std::string_view> values) {
  std::string body = i16(static_cast<int16_t>(values.size()));
  for (auto v : values) body += i32(static_cast<int32_t>(v.size())) + std::string(v);
  return body;
}
ResultTransform count_to_tag(router::TagKind tag) {
  ResultTransform t;
  t.kind = ResultTransform::Kind::kCountToTag;
  t.tag = tag;
  return t;
}
ResultTransform strip(uint16_t n, router::TagKind tag = router::TagKind::kInsert) {
  ResultTransform t;
  t.kind = ResultTransform::Kind::kStripColumns;
  t.strip = n;
  t.tag = tag;
  return t;
}

}  // namespace

TEST_CASE("the transform that applies: a Query's current statement, a Describe's, an Execute's") {
  auto plan = std::make_shared<router::QueryPlan>();
  plan->statements = {count_to_tag(router::TagKind::kUpdate), strip(2)};
  Expect q{Request::kQuery};
  CHECK(intercept::active_transform(q) == nullptr);  // not rewritten
  q.plan = plan;
  CHECK(intercept::active_transform(q) == &plan->statements[0]);
  q.statement = 1;
  CHECK(intercept::active_transform(q) == &plan->statements[1]);
  q.statement = 2;  // past the last statement
  CHECK(intercept::active_transform(q) == nullptr);

  for (Request k : {Request::kExecute, Request::kDescribe}) {
    Expect e{k};
    e.transform = strip(1);
    REQUIRE(intercept::active_transform(e) == &e.transform);
    CHECK(intercept::active_transform(e)->strip == 1);
  }
  for (Request k : {Request::kParse, Request::kBind, Request::kClose, Request::kSync}) {
    Expect e{k};
    e.plan = plan;
    CHECK(intercept::active_transform(e) == nullptr);
  }
}

TEST_CASE("RowDescription: NoData for a write without RETURNING, added columns stripped") {
  std::string out;
  const std::string three = row_description_body({"id", "name", "__pgphase_key"});
  REQUIRE(
      intercept::client_row_description(count_to_tag(router::TagKind::kDelete), bytes(three), out));
  CHECK(out == protocol::encode_no_data());

  out.clear();
  REQUIRE(intercept::client_row_description(strip(1), bytes(three), out));
  CHECK(out == msg('T', row_description_body({"id", "name"})));

  // Fewer columns than the rewrite added: nothing for the client.
  out.clear();
  CHECK_FALSE(intercept::client_row_description(strip(4), bytes(three), out));
  CHECK(out.empty());
}

TEST_CASE("DataRow: a write's count row is kept back, added columns stripped") {
  Expect e{Request::kExecute};
  std::string out;
  REQUIRE(intercept::client_data_row(e, count_to_tag(router::TagKind::kUpdate),
                                     bytes(data_row_body({"42"})), out));
  CHECK(out.empty());  // the client's UPDATE returns no rows
  CHECK(e.count == 42);

  // The count in binary (int8), as a Bind with result format 1 asks.
  e.count_binary = true;
  const std::string be8 = std::string(7, '\0') + '\x05';
  REQUIRE(intercept::client_data_row(e, count_to_tag(router::TagKind::kUpdate),
                                     bytes(data_row_body({be8})), out));
  CHECK(e.count == 5);

  REQUIRE(intercept::client_data_row(e, strip(2), bytes(data_row_body({"1", "a", "k", "x"})), out));
  CHECK(out == msg('D', data_row_body({"1", "a"})));

  out.clear();
  CHECK_FALSE(intercept::client_data_row(e, strip(3), bytes(data_row_body({"1", "a"})), out));
  CHECK(out.empty());
}

TEST_CASE("CommandComplete: the client statement's tag and row count") {
  Expect e{Request::kQuery};
  e.count = 3;
  // Rewritten as a count: the count row's value, whatever the rewrite's tag says.
  CHECK(intercept::client_rows(e, count_to_tag(router::TagKind::kUpdate),
                               bytes(cstr("SELECT 1"))) == 3);
  // Rewritten as SELECT * (RETURNING): the rewrite's own row count.
  CHECK(intercept::client_rows(e, strip(1), bytes(cstr("SELECT 17"))) == 17);
  CHECK(intercept::client_rows(e, strip(1), bytes(cstr("SELECT x"))) == 0);

  CHECK(intercept::client_command_complete(router::TagKind::kInsert, 2) ==
        protocol::encode_command_complete("INSERT 0 2"));
  CHECK(intercept::client_command_complete(router::TagKind::kUpdate, 17) ==
        protocol::encode_command_complete("UPDATE 17"));
  CHECK(intercept::client_command_complete(router::TagKind::kDelete, 0) ==
        protocol::encode_command_complete("DELETE 0"));

  CHECK(intercept::terminated_tag(bytes(cstr("SELECT 1"))));
  CHECK_FALSE(intercept::terminated_tag(bytes("SELECT 1")));
  CHECK_FALSE(intercept::terminated_tag({}));
}

TEST_CASE("ErrorResponse: positions mapped into the client's text, on the side it went to") {
  auto plan = std::make_shared<router::QueryPlan>();
  // The client's text starts at character 10 of the rewrite; the target text at character 0.
  plan->segments = {{0, 0, 0}, {10, 0, 20}};
  plan->segments_target = {{0, 0, 20}};
  Expect e{Request::kQuery};
  e.plan = plan;
  const auto error = [](std::string_view position) {
    return std::string("SERROR") + '\0' + "C42601" + '\0' + "Msyntax error" + '\0' + "P" +
           std::string(position) + '\0' + '\0';
  };
  std::string out;
  intercept::client_error(e, bytes(error("15")), out);
  CHECK(out == msg('E', error("5")));

  out.clear();
  e.read.target = true;
  intercept::client_error(e, bytes(error("15")), out);
  CHECK(out == msg('E', error("15")));

  // A malformed error is relayed as it came.
  out.clear();
  const std::string bad = "SERROR";
  intercept::client_error(e, bytes(bad), out);
  CHECK(out == msg('E', bad));
}
