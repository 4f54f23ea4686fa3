#include "protocol/messages.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "protocol/codes.h"
#include "tests/unit/frame_count.h"
#include "tests/unit/wire_builders.h"

namespace pgphase::protocol {
namespace {

using test::bytes;
using test::cstr;
using test::i32;
using test::msg;

// Field code -> value of an ErrorResponse/NoticeResponse body; fails on a malformed body.
std::map<char, std::string> error_fields(const std::string& body) {
  std::map<char, std::string> out;
  size_t p = 0;
  while (p < body.size() && body[p] != '\0') {
    const size_t nul = body.find('\0', p + 1);
    REQUIRE(nul != std::string::npos);
    out[body[p]] = body.substr(p + 1, nul - p - 1);
    p = nul + 1;
  }
  REQUIRE(p + 1 == body.size());  // exactly one terminating NUL
  return out;
}

std::string sasl_body(const std::vector<std::string>& mechanisms) {
  std::string body = i32(auth::kSASL);
  for (const auto& m : mechanisms) body += cstr(m);
  return body + '\0';
}

}  // namespace

TEST_CASE("decode_message needs a whole header and body", "[messages]") {
  const std::string m = msg(be::kCommandComplete, cstr("UPDATE 3"));
  for (size_t n = 0; n < m.size(); ++n) {
    const DecodedMessage d = decode_message(bytes(m.substr(0, n)), kDefaultMaxMessageLength);
    INFO("prefix " << n);
    CHECK(d.status == DecodeStatus::kNeedMore);
    if (n >= 5) CHECK(d.length == m.size() - 1);
  }
  const std::string two = m + msg(be::kReadyForQuery, "I");
  const DecodedMessage d = decode_message(bytes(two), kDefaultMaxMessageLength);
  CHECK(d.status == DecodeStatus::kComplete);
  CHECK(d.type == 'C');
  CHECK(d.length == 13);
  CHECK(d.total == m.size());
  CHECK(test::str(d.body) == cstr("UPDATE 3"));
  CHECK(d.body.data() == bytes(two).data() + 5);  // a view, not a copy
  const DecodedMessage next = decode_message(bytes(two).subspan(d.total), 100);
  CHECK(next.status == DecodeStatus::kComplete);
  CHECK(next.type == 'Z');
  CHECK(test::str(next.body) == "I");
}

TEST_CASE("decode_message rejects bad lengths", "[messages]") {
  for (uint32_t len : {0u, 1u, 3u, 101u, 0xFFFFFFFFu}) {
    const DecodedMessage d = decode_message(bytes(test::header('R', len) + "xxxx"), 100);
    INFO("length " << len);
    CHECK(d.status == DecodeStatus::kBadLength);
    CHECK(d.length == len);
    CHECK(d.type == 'R');
  }
  const DecodedMessage at_max = decode_message(bytes(msg('R', std::string(96, 'r'))), 100);
  CHECK(at_max.status == DecodeStatus::kComplete);
  CHECK(at_max.body.size() == 96);
  const DecodedMessage empty = decode_message(bytes(msg('1', "")), 100);
  CHECK(empty.status == DecodeStatus::kComplete);
  CHECK(empty.body.empty());
  CHECK(empty.total == 5);
}

TEST_CASE("encode_error_response fields read back", "[messages]") {
  const std::string wire = encode_error_response({.severity = "FATAL",
                                                  .sqlstate = sqlstate::kTooManyConnections,
                                                  .message = "too many clients",
                                                  .detail = "pool full",
                                                  .hint = "retry later"});
  const DecodedMessage d = decode_message(bytes(wire), kDefaultMaxMessageLength);
  REQUIRE(d.status == DecodeStatus::kComplete);
  CHECK(d.type == be::kErrorResponse);
  CHECK(d.total == wire.size());
  CHECK(error_sqlstate(d.body) == "53300");
  const auto fields = error_fields(test::str(d.body));
  CHECK(fields == std::map<char, std::string>{{'S', "FATAL"},
                                              {'V', "FATAL"},
                                              {'C', "53300"},
                                              {'M', "too many clients"},
                                              {'D', "pool full"},
                                              {'H', "retry later"}});

  // Optional fields are left out; the default severity is FATAL.
  const std::string bare =
      encode_error_response({.sqlstate = sqlstate::kProtocolViolation, .message = "bad"});
  const DecodedMessage b = decode_message(bytes(bare), kDefaultMaxMessageLength);
  REQUIRE(b.status == DecodeStatus::kComplete);
  CHECK(error_sqlstate(b.body) == "08P01");
  CHECK(error_fields(test::str(b.body)) ==
        std::map<char, std::string>{{'S', "FATAL"}, {'V', "FATAL"}, {'C', "08P01"}, {'M', "bad"}});
}

TEST_CASE("error_sqlstate tolerates odd bodies", "[messages]") {
  CHECK(error_sqlstate({}).empty());
  CHECK(error_sqlstate(bytes(std::string(1, '\0'))).empty());
  CHECK(error_sqlstate(bytes(cstr("SERROR") + cstr("Mno code") + '\0')).empty());
  CHECK(error_sqlstate(bytes(cstr("C42P01") + '\0')) == "42P01");
  CHECK(error_sqlstate(bytes("SERROR")).empty());                  // unterminated field
  CHECK(error_sqlstate(bytes(cstr("SERROR") + "C42P0")).empty());  // unterminated SQLSTATE
  // A 'C' inside another field's value is not the SQLSTATE field.
  CHECK(error_sqlstate(bytes(cstr("MC0000") + cstr("C22012") + '\0')) == "22012");
}

TEST_CASE("fixed encoders produce exact bytes", "[messages]") {
  CHECK(encode_ready_for_query(kTxInBlock) == msg('Z', "T"));
  CHECK(encode_backend_key_data(77, -1) == msg('K', i32(77) + i32(-1)));
  CHECK(encode_terminate() == msg('X', ""));
  // Each encoded message is a valid frame in its direction.
  CHECK(test::count_frames(Direction::kBackend,
                           encode_backend_key_data(1, 2) + encode_ready_for_query(kTxIdle) +
                               encode_error_response({.sqlstate = "XX000", .message = "m"})) == 3);
}

TEST_CASE("strip_channel_binding_mechanisms drops only -PLUS", "[messages]") {
  const std::string body = sasl_body({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  const std::string out = strip_channel_binding_mechanisms(bytes(body));
  CHECK(out == msg(be::kAuthentication, sasl_body({"SCRAM-SHA-256"})));
  const DecodedMessage d = decode_message(bytes(out), kDefaultMaxMessageLength);
  REQUIRE(d.status == DecodeStatus::kComplete);
  CHECK(d.total == out.size());
  // Already clean lists are passed through unchanged.
  CHECK(strip_channel_binding_mechanisms(d.body) == out);
  CHECK(strip_channel_binding_mechanisms(bytes(sasl_body({"SCRAM-SHA-256", "X-PLUS", "Y"}))) ==
        msg('R', sasl_body({"SCRAM-SHA-256", "Y"})));
}

TEST_CASE("strip_channel_binding_mechanisms ignores non-SASL requests", "[messages]") {
  CHECK(strip_channel_binding_mechanisms({}).empty());
  CHECK(strip_channel_binding_mechanisms(bytes(i32(auth::kOk))).empty());
  CHECK(strip_channel_binding_mechanisms(bytes(i32(auth::kMD5Password) + "salt")).empty());
  CHECK(strip_channel_binding_mechanisms(bytes(i32(auth::kSASLContinue) + "r=abc")).empty());
  CHECK(strip_channel_binding_mechanisms(bytes(i32(auth::kSASL).substr(0, 3))).empty());
  // A mechanism name without its NUL is malformed: nothing is rewritten.
  CHECK(strip_channel_binding_mechanisms(bytes(i32(auth::kSASL) + "SCRAM-SHA-256")).empty());
}

}  // namespace pgphase::protocol
