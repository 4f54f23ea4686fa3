#include "protocol/extended.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/codes.h"
#include "protocol/messages.h"
#include "tests/unit/frame_count.h"
#include "tests/unit/wire_builders.h"

namespace pgphase::protocol {
namespace {

using test::bytes;
using test::cstr;
using test::i16;
using test::i32;
using test::msg;

using Value = std::optional<std::string>;  // nullopt: SQL NULL

std::string i64(int64_t v) {
  return i32(static_cast<int32_t>(static_cast<uint64_t>(v) >> 32)) + i32(static_cast<int32_t>(v));
}

// int32 length (-1 for NULL) and bytes, as in Bind parameters and DataRow columns.
std::string values(const std::vector<Value>& vs) {
  std::string out;
  for (const auto& v : vs) out += v ? i32(static_cast<int32_t>(v->size())) + *v : i32(-1);
  return out;
}

std::string codes(const std::vector<int16_t>& cs) {
  std::string out = i16(static_cast<int16_t>(cs.size()));
  for (int16_t c : cs) out += i16(c);
  return out;
}

std::string bind_body(std::string_view portal, std::string_view statement,
                      const std::vector<int16_t>& param_formats, const std::vector<Value>& params,
                      const std::vector<int16_t>& result_formats) {
  return cstr(portal) + cstr(statement) + codes(param_formats) +
         i16(static_cast<int16_t>(params.size())) + values(params) + codes(result_formats);
}

// One RowDescription field: name, table OID, attnum, type OID, typlen, typmod, format.
std::string field(std::string_view name, int32_t type_oid = 23, int16_t format = 0) {
  return cstr(name) + i32(16384) + i16(1) + i32(type_oid) + i16(4) + i32(-1) + i16(format);
}

std::string row_description(const std::vector<std::string>& names) {
  std::string out = i16(static_cast<int16_t>(names.size()));
  for (const auto& n : names) out += field(n);
  return out;
}

std::string data_row(const std::vector<Value>& columns) {
  return i16(static_cast<int16_t>(columns.size())) + values(columns);
}

// The body of a whole message this codec produced, after checking its header.
std::string body_of(const std::string& whole, char type) {
  const DecodedMessage d = decode_message(bytes(whole), kDefaultMaxMessageLength);
  REQUIRE(d.status == DecodeStatus::kComplete);
  REQUIRE(d.type == type);
  REQUIRE(d.total == whole.size());
  return test::str(d.body);
}

std::optional<uint32_t> identity(uint32_t p) {
  return p;
}

// Every decoder on `body`; none may crash, whatever the bytes.
void decode_all(std::span<const uint8_t> body) {
  (void)decode_query(body);
  (void)decode_parse(body);
  if (const auto b = decode_bind(body)) {
    (void)bind_with_extra_result_columns(body, *b, 1, 3);
    (void)bind_result_format(body, *b, 2);
  }
  (void)decode_describe(body);
  (void)decode_execute_portal(body);
  (void)row_description_field_count(body);
  (void)row_description_keep(body, 1);
  (void)data_row_keep(body, 1);
  (void)data_row_first_int(body, false);
  (void)data_row_first_int(body, true);
  (void)error_map_position('E', body, identity);
}

}  // namespace

TEST_CASE("Query round trip", "[extended]") {
  const std::string wire = encode_query("SELECT 1");
  CHECK(wire == msg(fe::kQuery, cstr("SELECT 1")));
  const std::string body = body_of(wire, 'Q');
  CHECK(decode_query(bytes(body)) == "SELECT 1");
  CHECK(decode_query(bytes(body))->data() == body.data());  // a view into the body
  CHECK(encode_query("") == msg('Q', std::string(1, '\0')));
  CHECK(decode_query(bytes(std::string(1, '\0'))) == "");
}

TEST_CASE("Query rejects a missing or misplaced NUL", "[extended]") {
  CHECK_FALSE(decode_query({}));
  CHECK_FALSE(decode_query(bytes("SELECT 1")));
  CHECK_FALSE(decode_query(bytes(cstr("SELECT 1") + "x")));
  CHECK_FALSE(decode_query(bytes(cstr("SELECT 1") + cstr("SELECT 2"))));
}

TEST_CASE("Parse round trip", "[extended]") {
  const std::string types = i16(2) + i32(23) + i32(25);
  const std::string body = cstr("s1") + cstr("SELECT $1::int, $2") + types;
  const auto p = decode_parse(bytes(body));
  REQUIRE(p);
  CHECK(p->name == "s1");
  CHECK(p->query == "SELECT $1::int, $2");
  CHECK(test::str(p->param_types) == types);
  CHECK(p->param_types.data() == bytes(body).data() + body.size() - types.size());
  CHECK(encode_parse(p->name, p->query, p->param_types) == msg(fe::kParse, body));

  // Unnamed statement, no parameter types; an empty tail encodes as a zero count.
  const std::string unnamed = cstr("") + cstr("SELECT 1") + i16(0);
  const auto u = decode_parse(bytes(unnamed));
  REQUIRE(u);
  CHECK(u->name.empty());
  CHECK(u->query == "SELECT 1");
  CHECK(test::str(u->param_types) == i16(0));
  CHECK(encode_parse("", "SELECT 1", {}) == msg('P', unnamed));
  CHECK(encode_parse("", "SELECT 1", u->param_types) == msg('P', unnamed));
  const std::string rewritten = body_of(encode_parse("s2", "SELECT 2, $1", p->param_types), 'P');
  const auto r = decode_parse(bytes(rewritten));
  REQUIRE(r);
  CHECK(r->name == "s2");
  CHECK(r->query == "SELECT 2, $1");
  CHECK(test::str(r->param_types) == types);
}

TEST_CASE("Parse rejects malformed bodies", "[extended]") {
  CHECK_FALSE(decode_parse({}));
  CHECK_FALSE(decode_parse(bytes("s1")));                           // name without NUL
  CHECK_FALSE(decode_parse(bytes(cstr("s1") + "SELECT 1")));        // query without NUL
  CHECK_FALSE(decode_parse(bytes(cstr("s1") + cstr("SELECT 1"))));  // no count
  CHECK_FALSE(decode_parse(bytes(cstr("") + cstr("q") + std::string(1, '\0'))));  // half a count
  CHECK_FALSE(decode_parse(bytes(cstr("") + cstr("q") + i16(1))));                // count 1, no OID
  CHECK_FALSE(decode_parse(bytes(cstr("") + cstr("q") + i16(1) + i32(23) + i32(25))));  // extra
  CHECK_FALSE(decode_parse(bytes(cstr("") + cstr("q") + i16(2) + i32(23))));            // short
  CHECK_FALSE(
      decode_parse(bytes(cstr("") + cstr("q") + i16(1) + std::string(3, '\0'))));  // partial OID
  CHECK_FALSE(decode_parse(bytes(cstr("") + cstr("q") + i16(-1))));                // 65535 OIDs
  CHECK_FALSE(decode_parse(bytes(cstr("") + cstr("q") + i16(0) + "x")));           // trailing byte
}

TEST_CASE("Bind decodes names and finds the result formats", "[extended]") {
  SECTION("no parameters, no result formats") {
    const std::string body = bind_body("", "", {}, {}, {});
    const auto b = decode_bind(bytes(body));
    REQUIRE(b);
    CHECK(b->portal.empty());
    CHECK(b->statement.empty());
    CHECK(b->n_result_formats == 0);
    CHECK(b->result_formats_offset == body.size() - 2);
  }
  SECTION("NULL, empty and non-empty parameters, one result format") {
    const std::string body =
        bind_body("p1", "s1", {1}, {std::nullopt, "", "abc", std::nullopt}, {1});
    const auto b = decode_bind(bytes(body));
    REQUIRE(b);
    CHECK(b->portal == "p1");
    CHECK(b->statement == "s1");
    CHECK(b->n_result_formats == 1);
    CHECK(b->result_formats_offset == body.size() - 4);
  }
  SECTION("per-parameter and per-column formats") {
    const std::string body =
        bind_body("", "stmt", {0, 1}, {"42", std::string("\0\0\0\1", 4)}, {0, 1, 1});
    const auto b = decode_bind(bytes(body));
    REQUIRE(b);
    CHECK(b->statement == "stmt");
    CHECK(b->n_result_formats == 3);
    CHECK(b->result_formats_offset == body.size() - 8);
    CHECK(body.substr(b->result_formats_offset) == codes({0, 1, 1}));
  }
  SECTION("a parameter value may contain NUL bytes") {
    const std::string body = bind_body("", "", {1}, {std::string("\0\0", 2)}, {});
    CHECK(decode_bind(bytes(body)));
  }
}

TEST_CASE("Bind rejects malformed bodies", "[extended]") {
  const std::string ok = bind_body("p", "s", {0}, {"1", std::nullopt}, {0, 1});
  REQUIRE(decode_bind(bytes(ok)));
  CHECK_FALSE(decode_bind({}));
  CHECK_FALSE(decode_bind(bytes("p")));                                    // portal without NUL
  CHECK_FALSE(decode_bind(bytes(cstr("p") + "s")));                        // statement without NUL
  CHECK_FALSE(decode_bind(bytes(cstr("") + cstr("") + i16(2) + i16(0))));  // short formats
  CHECK_FALSE(decode_bind(bytes(cstr("") + cstr("") + codes({}) + i16(1))));  // missing param
  CHECK_FALSE(decode_bind(bytes(cstr("") + cstr("") + codes({}) + i16(0))));  // no result count
  CHECK_FALSE(decode_bind(bytes(cstr("") + cstr("") + codes({}) + i16(0) + i16(2) + i16(0))));
  CHECK_FALSE(decode_bind(bytes(ok + "x")));                     // trailing byte
  CHECK_FALSE(decode_bind(bytes(ok.substr(0, ok.size() - 1))));  // truncated
  // Negative lengths other than -1 and lengths past the end.
  for (int32_t len : {-2, -100, INT32_MIN, 2, 1000, INT32_MAX}) {
    INFO("length " << len);
    const std::string body = cstr("") + cstr("") + codes({}) + i16(1) + i32(len) + "x" + codes({});
    CHECK_FALSE(decode_bind(bytes(body)));
  }
  // Length 1 fits exactly; the same bytes with -1 leave "x" where the result count should be.
  CHECK(decode_bind(bytes(cstr("") + cstr("") + codes({}) + i16(1) + i32(1) + "x" + codes({}))));
  CHECK_FALSE(
      decode_bind(bytes(cstr("") + cstr("") + codes({}) + i16(1) + i32(-1) + "x" + codes({}))));
}

TEST_CASE("bind_result_format follows Bind's rules", "[extended]") {
  const std::string none = bind_body("", "s", {}, {}, {});
  const std::string one = bind_body("", "s", {}, {}, {1});
  const std::string per = bind_body("", "s", {}, {"7"}, {1, 0, 1});
  const auto n = decode_bind(bytes(none));
  const auto o = decode_bind(bytes(one));
  const auto p = decode_bind(bytes(per));
  REQUIRE((n && o && p));
  for (uint16_t col : {0, 1, 5}) {
    INFO("column " << col);
    CHECK(bind_result_format(bytes(none), *n, col) == 0);
    CHECK(bind_result_format(bytes(one), *o, col) == 1);
  }
  CHECK(bind_result_format(bytes(per), *p, 0) == 1);
  CHECK(bind_result_format(bytes(per), *p, 1) == 0);
  CHECK(bind_result_format(bytes(per), *p, 2) == 1);
  CHECK(bind_result_format(bytes(per), *p, 3) == 0);  // past the codes: text
  // A BindMessage that does not belong to the body reads nothing.
  CHECK(bind_result_format(bytes(none), *p, 0) == 0);
}

TEST_CASE("bind_with_extra_result_columns appends text codes only per column", "[extended]") {
  SECTION("no codes: all text, unchanged") {
    const std::string body = bind_body("", "s", {}, {"1"}, {});
    const auto b = decode_bind(bytes(body));
    REQUIRE(b);
    CHECK(bind_with_extra_result_columns(bytes(body), *b, 3, 2) == msg(fe::kBind, body));
  }
  SECTION("one code for several columns applies to all: unchanged") {
    const std::string body = bind_body("", "s", {}, {}, {1});
    const auto b = decode_bind(bytes(body));
    REQUIRE(b);
    CHECK(bind_with_extra_result_columns(bytes(body), *b, 2, 1) == msg('B', body));
    CHECK(bind_with_extra_result_columns(bytes(body), *b, 0, 1) == msg('B', body));
  }
  SECTION("one code for a one-column statement is per column") {
    const std::string body = bind_body("p", "s", {1}, {std::nullopt}, {1});
    const auto b = decode_bind(bytes(body));
    REQUIRE(b);
    const std::string out = bind_with_extra_result_columns(bytes(body), *b, 1, 2);
    CHECK(out == msg('B', bind_body("p", "s", {1}, {std::nullopt}, {1, 0, 0})));
    const std::string out_body = body_of(out, 'B');
    const auto d = decode_bind(bytes(out_body));
    REQUIRE(d);
    CHECK(d->portal == "p");
    CHECK(d->statement == "s");
    CHECK(d->n_result_formats == 3);
    CHECK(d->result_formats_offset == b->result_formats_offset);
    CHECK(bind_result_format(bytes(out_body), *d, 0) == 1);
    CHECK(bind_result_format(bytes(out_body), *d, 1) == 0);
    CHECK(bind_result_format(bytes(out_body), *d, 2) == 0);
  }
  SECTION("N codes get `extra` more") {
    const std::vector<Value> params = {"a", std::nullopt, ""};
    const std::string body = bind_body("", "s", {0, 1, 0}, params, {1, 1});
    const auto b = decode_bind(bytes(body));
    REQUIRE(b);
    CHECK(bind_with_extra_result_columns(bytes(body), *b, 2, 1) ==
          msg('B', bind_body("", "s", {0, 1, 0}, params, {1, 1, 0})));
    // The client-visible column count does not matter once there are several codes.
    CHECK(bind_with_extra_result_columns(bytes(body), *b, 7, 1) ==
          msg('B', bind_body("", "s", {0, 1, 0}, params, {1, 1, 0})));
    CHECK(bind_with_extra_result_columns(bytes(body), *b, 2, 0) == msg('B', body));
  }
  SECTION("a count past 65535 or a foreign BindMessage leaves the message alone") {
    const std::string body = bind_body("", "", {}, {}, {1, 1});
    const auto b = decode_bind(bytes(body));
    REQUIRE(b);
    CHECK(bind_with_extra_result_columns(bytes(body), *b, 2, 65534) == msg('B', body));
    CHECK(body_of(bind_with_extra_result_columns(bytes(body), *b, 2, 65533), 'B').size() ==
          body.size() + 65533 * 2);
    const std::string other = bind_body("", "", {}, {"xyz"}, {1, 1});
    CHECK(bind_with_extra_result_columns(bytes(other), *b, 2, 1) == msg('B', other));
  }
}

TEST_CASE("Describe and Close name a statement or portal", "[extended]") {
  const std::string statement = "S" + cstr("stmt1");
  const auto s = decode_describe(bytes(statement));
  REQUIRE(s);
  CHECK(s->kind == 'S');
  CHECK(s->name == "stmt1");
  CHECK(s->name.data() == statement.data() + 1);
  const std::string portal = "P" + cstr("");
  const auto p = decode_describe(bytes(portal));
  REQUIRE(p);
  CHECK(p->kind == 'P');
  CHECK(p->name.empty());
  CHECK_FALSE(decode_describe({}));
  CHECK_FALSE(decode_describe(bytes("S")));                    // no name
  CHECK_FALSE(decode_describe(bytes("Sstmt")));                // name without NUL
  CHECK_FALSE(decode_describe(bytes("X" + cstr("stmt"))));     // unknown kind
  CHECK_FALSE(decode_describe(bytes("s" + cstr("stmt"))));     // kinds are upper case
  CHECK_FALSE(decode_describe(bytes("S" + cstr("a") + "b")));  // trailing bytes
}

TEST_CASE("Execute yields the portal", "[extended]") {
  CHECK(decode_execute_portal(bytes(cstr("p1") + i32(0))) == "p1");
  CHECK(decode_execute_portal(bytes(cstr("") + i32(100))) == "");
  CHECK(decode_execute_portal(bytes(cstr("") + i32(-1))) == "");  // the row limit is not checked
  CHECK_FALSE(decode_execute_portal({}));
  CHECK_FALSE(decode_execute_portal(bytes(cstr("p1"))));                         // no row limit
  CHECK_FALSE(decode_execute_portal(bytes(cstr("p1") + std::string(3, '\0'))));  // short row limit
  CHECK_FALSE(decode_execute_portal(bytes("p1" + i32(0))));              // no NUL (0 bytes later)
  CHECK_FALSE(decode_execute_portal(bytes(cstr("p1") + i32(0) + "x")));  // trailing byte
}

TEST_CASE("RowDescription keeps the first fields", "[extended]") {
  const std::string body = row_description({"id", "name", "_pgphase_version"});
  CHECK(row_description_field_count(bytes(body)) == 3);
  CHECK(row_description_keep(bytes(body), 3) == msg(be::kRowDescription, body));
  CHECK(row_description_keep(bytes(body), 2) == msg('T', row_description({"id", "name"})));
  CHECK(row_description_keep(bytes(body), 1) == msg('T', row_description({"id"})));
  CHECK(row_description_keep(bytes(body), 0) == msg('T', i16(0)));
  CHECK_FALSE(row_description_keep(bytes(body), 4));
  const std::string kept = body_of(*row_description_keep(bytes(body), 2), 'T');
  CHECK(row_description_field_count(bytes(kept)) == 2);

  const std::string empty = i16(0);
  CHECK(row_description_field_count(bytes(empty)) == 0);
  CHECK(row_description_keep(bytes(empty), 0) == msg('T', empty));
  CHECK_FALSE(row_description_keep(bytes(empty), 1));
  // A field name may be empty (e.g. "SELECT 1 AS \"\"").
  CHECK(row_description_field_count(bytes(row_description({""}))) == 1);
}

TEST_CASE("RowDescription rejects malformed bodies", "[extended]") {
  const std::string body = row_description({"a", "b"});
  CHECK_FALSE(row_description_field_count({}));
  CHECK_FALSE(row_description_field_count(bytes(std::string(1, '\0'))));
  CHECK_FALSE(row_description_field_count(bytes(i16(3) + field("a") + field("b"))));  // few
  CHECK_FALSE(row_description_field_count(bytes(i16(1) + field("a") + field("b"))));  // many
  CHECK_FALSE(row_description_field_count(bytes(body.substr(0, body.size() - 1))));
  CHECK_FALSE(row_description_field_count(bytes(body + "x")));
  CHECK_FALSE(row_description_field_count(bytes(i16(1) + "abc")));   // name without NUL
  CHECK_FALSE(row_description_keep(bytes(i16(2) + field("a")), 1));  // the whole body must be valid
}

TEST_CASE("DataRow keeps the first columns, NULLs included", "[extended]") {
  const std::vector<Value> cols = {"1", std::nullopt, "", "99"};
  const std::string body = data_row(cols);
  CHECK(data_row_keep(bytes(body), 4) == msg(be::kDataRow, body));
  CHECK(data_row_keep(bytes(body), 3) == msg('D', data_row({"1", std::nullopt, ""})));
  CHECK(data_row_keep(bytes(body), 2) == msg('D', data_row({"1", std::nullopt})));
  CHECK(data_row_keep(bytes(body), 1) == msg('D', data_row({"1"})));
  CHECK(data_row_keep(bytes(body), 0) == msg('D', i16(0)));
  CHECK_FALSE(data_row_keep(bytes(body), 5));
  const std::string nulls = data_row({std::nullopt, std::nullopt});
  CHECK(data_row_keep(bytes(nulls), 1) == msg('D', data_row({std::nullopt})));
  CHECK(data_row_keep(bytes(i16(0)), 0) == msg('D', i16(0)));
}

TEST_CASE("DataRow rejects malformed bodies", "[extended]") {
  const std::string body = data_row({"12", std::nullopt});
  CHECK_FALSE(data_row_keep({}, 0));
  CHECK_FALSE(data_row_keep(bytes("\x01"), 0));
  CHECK_FALSE(data_row_keep(bytes(body.substr(0, body.size() - 1)), 1));
  CHECK_FALSE(data_row_keep(bytes(body + "x"), 1));
  CHECK_FALSE(data_row_keep(bytes(i16(3) + values({"12", std::nullopt})), 1));  // missing column
  for (int32_t len : {-2, -7, INT32_MIN, 3, INT32_MAX}) {
    INFO("length " << len);
    const std::string bad = i16(1) + i32(len) + "xy";
    CHECK_FALSE(data_row_keep(bytes(bad), 0));
    CHECK_FALSE(data_row_first_int(bytes(bad), false));
    CHECK_FALSE(data_row_first_int(bytes(bad), true));
  }
  CHECK(data_row_keep(bytes(i16(1) + i32(2) + "xy"), 1));
}

TEST_CASE("data_row_first_int reads text integers", "[extended]") {
  const auto text = [](Value v) {
    return data_row_first_int(bytes(data_row({std::move(v), "ignored"})), false);
  };
  CHECK(text("42") == 42);
  CHECK(text("0") == 0);
  CHECK(text("-7") == -7);
  CHECK(text("007") == 7);
  CHECK(text("9223372036854775807") == INT64_MAX);
  CHECK(text("-9223372036854775808") == INT64_MIN);
  for (const char* bad : {"", "-", "+1", " 1", "1 ", "1a", "0x10", "1.5", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999999"}) {
    INFO("text '" << bad << "'");
    CHECK_FALSE(text(bad));
  }
  CHECK_FALSE(text(std::nullopt));
  CHECK_FALSE(data_row_first_int(bytes(i16(0)), false));  // no columns
  // Column 0 is fine but the row is not.
  CHECK_FALSE(data_row_first_int(bytes(i16(2) + values({"5"})), false));
}

TEST_CASE("data_row_first_int reads binary int8 and int4", "[extended]") {
  const auto bin = [](Value v) {
    return data_row_first_int(bytes(data_row({std::move(v)})), true);
  };
  CHECK(bin(i64(5'000'000'000)) == 5'000'000'000);  // a count(*) past 32 bits
  CHECK(bin(i64(0)) == 0);
  CHECK(bin(i64(-1)) == -1);
  CHECK(bin(i64(INT64_MIN)) == INT64_MIN);
  CHECK(bin(i64(INT64_MAX)) == INT64_MAX);
  CHECK(bin(i32(123456)) == 123456);
  CHECK(bin(i32(-5)) == -5);
  CHECK(bin(i32(INT32_MIN)) == INT32_MIN);
  CHECK_FALSE(bin(i16(3)));  // int2 is not read
  CHECK_FALSE(bin(""));
  CHECK_FALSE(bin("123"));
  CHECK_FALSE(bin(std::string(9, '\1')));
  CHECK_FALSE(bin(std::nullopt));
  // Text and binary readings of the same bytes differ: "1234" as int4 is 0x31323334.
  CHECK(bin("1234") == 0x31323334);
  CHECK(data_row_first_int(bytes(data_row({"1234"})), false) == 1234);
}

TEST_CASE("fixed backend encoders produce exact bytes", "[extended]") {
  CHECK(encode_command_complete("SELECT 3") == msg(be::kCommandComplete, cstr("SELECT 3")));
  CHECK(encode_command_complete("") == msg('C', std::string(1, '\0')));
  CHECK(encode_no_data() == msg(be::kNoData, ""));
  // Each encoded message is a valid frame in its direction.
  CHECK(test::count_frames(Direction::kBackend,
                           encode_no_data() + encode_command_complete("UPDATE 1") +
                               *row_description_keep(bytes(row_description({"a"})), 1) +
                               *data_row_keep(bytes(data_row({"1", "2"})), 1)) == 4);
  CHECK(test::count_frames(Direction::kFrontend,
                           encode_query("SELECT 1") + encode_parse("", "SELECT 1", {})) == 2);
}

TEST_CASE("error_map_position rewrites or drops the position", "[extended]") {
  const std::string body =
      cstr("SERROR") + cstr("C42601") + cstr("Msyntax error") + cstr("P17") + cstr("p3") + '\0';
  std::vector<uint32_t> asked;
  const auto shift = [&](uint32_t p) -> std::optional<uint32_t> {
    asked.push_back(p);
    return p - 10;
  };
  const auto out = error_map_position(be::kErrorResponse, bytes(body), shift);
  REQUIRE(out);
  CHECK(asked == std::vector<uint32_t>{17});
  CHECK(*out == msg('E', cstr("SERROR") + cstr("C42601") + cstr("Msyntax error") + cstr("P7") +
                             cstr("p3") + '\0'));
  CHECK(error_sqlstate(bytes(body_of(*out, 'E'))) == "42601");

  const auto drop = [](uint32_t) -> std::optional<uint32_t> { return std::nullopt; };
  CHECK(error_map_position('E', bytes(body), drop) ==
        msg('E', cstr("SERROR") + cstr("C42601") + cstr("Msyntax error") + cstr("p3") + '\0'));
  // Growing the number of digits, a notice, and an identity map that changes nothing.
  CHECK(error_map_position(be::kNoticeResponse, bytes(cstr("SNOTICE") + cstr("P9") + '\0'),
                           [](uint32_t p) { return std::optional<uint32_t>(p * 1000); }) ==
        msg('N', cstr("SNOTICE") + cstr("P9000") + '\0'));
  CHECK(error_map_position('E', bytes(body), identity) == msg('E', body));
}

TEST_CASE("error_map_position without a usable position", "[extended]") {
  int calls = 0;
  const auto count = [&](uint32_t p) -> std::optional<uint32_t> {
    ++calls;
    return p;
  };
  const std::string plain = cstr("SERROR") + cstr("Mboom") + '\0';
  CHECK(error_map_position('E', bytes(plain), count) == msg('E', plain));
  CHECK(error_map_position('E', bytes(std::string(1, '\0')), count) ==
        msg('E', std::string(1, '\0')));
  // Positions that are not decimal uint32 text are dropped without asking the map.
  for (const char* bad : {"", "x", "-1", "+1", "1 ", "4294967296"}) {
    INFO("P '" << bad << "'");
    CHECK(error_map_position('E', bytes(cstr("SERROR") + cstr(std::string("P") + bad) + '\0'),
                             count) == msg('E', cstr("SERROR") + '\0'));
  }
  CHECK(calls == 0);
  CHECK(error_map_position('E', bytes(cstr("P4294967295") + '\0'), count) ==
        msg('E', cstr("P4294967295") + '\0'));
  CHECK(calls == 1);
}

TEST_CASE("error_map_position rejects malformed bodies", "[extended]") {
  CHECK_FALSE(error_map_position('E', {}, identity));                             // no terminator
  CHECK_FALSE(error_map_position('E', bytes(cstr("SERROR")), identity));          // no terminator
  CHECK_FALSE(error_map_position('E', bytes(cstr("SERROR") + "P12"), identity));  // unterminated
  CHECK_FALSE(error_map_position('E', bytes("S"), identity));
  CHECK_FALSE(error_map_position('E', bytes(cstr("SERROR") + '\0' + "x"), identity));  // trailing
}

TEST_CASE("every proper prefix and any trailing byte is rejected", "[extended]") {
  struct Case {
    const char* name;
    std::string body;
    bool (*accepts)(std::span<const uint8_t>);
  };
  const std::vector<Case> cases = {
      {"Query", cstr("SELECT $1"), [](auto b) { return decode_query(b).has_value(); }},
      {"Parse", cstr("s") + cstr("SELECT $1") + i16(1) + i32(23),
       [](auto b) { return decode_parse(b).has_value(); }},
      {"Bind", bind_body("p", "s", {0, 1}, {"1", std::nullopt}, {0, 1}),
       [](auto b) { return decode_bind(b).has_value(); }},
      {"Describe", "P" + cstr("portal"), [](auto b) { return decode_describe(b).has_value(); }},
      {"Execute", cstr("portal") + i32(0),
       [](auto b) { return decode_execute_portal(b).has_value(); }},
      {"RowDescription", row_description({"a", "b"}),
       [](auto b) { return row_description_field_count(b).has_value(); }},
      {"DataRow", data_row({"1", std::nullopt, "abc"}),
       [](auto b) { return data_row_keep(b, 0).has_value(); }},
      {"ErrorResponse", cstr("SERROR") + cstr("P5") + '\0',
       [](auto b) { return error_map_position('E', b, identity).has_value(); }},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    CHECK(c.accepts(bytes(c.body)));
    for (size_t n = 0; n < c.body.size(); ++n) {
      INFO("prefix " << n);
      CHECK_FALSE(c.accepts(bytes(c.body.substr(0, n))));
    }
    CHECK_FALSE(c.accepts(bytes(c.body + "x")));
    CHECK_FALSE(c.accepts(bytes(c.body + '\0')));
  }
}

TEST_CASE("decoders survive arbitrary bytes", "[extended]") {
  uint32_t rng = 0x9E3779B9u;
  const auto next = [&] {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
  };
  // Small alphabets make NULs, -1 lengths and plausible counts common.
  const std::string alphabet = std::string("\0\1\2\xff", 4) + "SPx0-9";
  for (int i = 0; i < 20000; ++i) {
    std::string body(next() % 40, '\0');
    for (auto& ch : body) ch = alphabet[next() % alphabet.size()];
    decode_all(bytes(body));
  }
  // Mutations of valid bodies.
  const std::string seed =
      bind_body("p", "s", {1}, {"12", std::nullopt}, {1, 0}) + data_row({"7", std::nullopt});
  for (int i = 0; i < 20000; ++i) {
    std::string body = seed.substr(next() % seed.size());
    for (int k = 0; k < 3 && !body.empty(); ++k) {
      body[next() % body.size()] = static_cast<char>(next());
    }
    decode_all(bytes(body));
  }
}

}  // namespace pgphase::protocol
