#include "protocol/startup.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/codes.h"
#include "protocol/messages.h"
#include "tests/unit/wire_builders.h"

namespace pgphase::protocol {
namespace {

using test::bytes;
using test::cstr;
using test::i32;

// A first packet: int32 length (counting itself), int32 code, body.
std::string packet(int32_t code, const std::string& body) {
  std::string out;
  append_u32(out, static_cast<uint32_t>(8 + body.size()));
  return out + i32(code) + body;
}

std::string error_of(const StartupPacket& p) {
  REQUIRE(std::holds_alternative<StartupError>(p));
  return std::get<StartupError>(p).message;
}

const std::string kParams = cstr("user") + cstr("alice") + cstr("database") + cstr("shop") +
                            cstr("application_name") + cstr("psql");

}  // namespace

TEST_CASE("startup_packet_length validates the length prefix", "[startup]") {
  for (size_t n = 0; n < 4; ++n) {
    const StartupLength l = startup_packet_length(bytes(std::string(n, '\0')));
    CHECK(l.need_more);
    CHECK_FALSE(l.valid);
  }
  auto check = [](uint32_t len, bool valid) {
    std::string prefix;
    append_u32(prefix, len);
    const StartupLength l = startup_packet_length(bytes(prefix + "more"));
    INFO("length " << len);
    CHECK_FALSE(l.need_more);
    CHECK(l.valid == valid);
    CHECK(l.length == len);
  };
  check(0, false);
  check(7, false);  // cannot even hold the request code
  check(8, true);
  check(16, true);
  check(kMaxStartupPacketLength, true);
  check(kMaxStartupPacketLength + 1, false);
  check(0xFFFFFFFFu, false);
}

TEST_CASE("SSLRequest and GSSENCRequest", "[startup]") {
  const std::string ssl = encode_ssl_request();
  CHECK(ssl == packet(kSSLRequestCode, ""));
  CHECK(startup_packet_length(bytes(ssl)).length == 8);
  CHECK(std::holds_alternative<SslRequest>(decode_startup_packet(bytes(ssl))));
  CHECK(std::holds_alternative<GssEncRequest>(
      decode_startup_packet(bytes(packet(kGSSENCRequestCode, "")))));
  CHECK(error_of(decode_startup_packet(bytes(packet(kSSLRequestCode, "xxxx")))) ==
        "invalid SSLRequest length");
  CHECK(error_of(decode_startup_packet(bytes(packet(kGSSENCRequestCode, "x")))) ==
        "invalid GSSENCRequest length");
}

TEST_CASE("CancelRequest carries the process id and secret key", "[startup]") {
  const std::string cancel = encode_cancel_request(4242, -123456789);
  CHECK(cancel == packet(kCancelRequestCode, i32(4242) + i32(-123456789)));
  const StartupPacket p = decode_startup_packet(bytes(cancel));
  REQUIRE(std::holds_alternative<CancelRequest>(p));
  CHECK(std::get<CancelRequest>(p).process_id == 4242);
  CHECK(std::get<CancelRequest>(p).secret_key == -123456789);
  CHECK(error_of(decode_startup_packet(bytes(packet(kCancelRequestCode, i32(1))))) ==
        "invalid CancelRequest length");
  CHECK(error_of(decode_startup_packet(bytes(cancel + "x"))) == "startup packet length mismatch");
}

TEST_CASE("StartupMessage parameters are decoded in order", "[startup]") {
  const StartupPacket p = decode_startup_packet(bytes(packet(kProtocolV3, kParams + '\0')));
  REQUIRE(std::holds_alternative<StartupMessage>(p));
  const auto& m = std::get<StartupMessage>(p);
  CHECK(m.protocol_version == kProtocolV3);
  using Params = std::vector<std::pair<std::string, std::string>>;
  CHECK(m.parameters ==
        Params{{"user", "alice"}, {"database", "shop"}, {"application_name", "psql"}});
  REQUIRE(m.find("database") != nullptr);
  CHECK(*m.find("database") == "shop");
  CHECK(m.find("options") == nullptr);
  CHECK_FALSE(wants_replication(m));
}

TEST_CASE("StartupMessage layout errors", "[startup]") {
  auto decode_error = [](const std::string& body) {
    return error_of(decode_startup_packet(bytes(packet(kProtocolV3, body))));
  };
  CHECK(decode_error(cstr("database") + cstr("shop") + '\0') ==
        "no PostgreSQL user name specified in startup packet");
  CHECK(decode_error(std::string(1, '\0')) ==
        "no PostgreSQL user name specified in startup packet");
  CHECK(decode_error(kParams) == "invalid startup packet layout: expected terminator");
  CHECK(decode_error("") == "invalid startup packet layout: expected terminator");
  CHECK(decode_error(kParams + '\0' + "junk") == "invalid startup packet layout: trailing bytes");
  CHECK(decode_error(kParams + '\0' + '\0') == "invalid startup packet layout: trailing bytes");
  CHECK(decode_error(cstr("user") + cstr("bob") + cstr("database")) ==
        "invalid startup packet layout: missing value for \"database\"");
  CHECK(decode_error(cstr("user") + "bob") ==
        "invalid startup packet layout: missing value for \"user\"");
}

TEST_CASE("StartupMessage with another protocol major version is refused", "[startup]") {
  const std::string body = kParams + '\0';
  CHECK(error_of(decode_startup_packet(bytes(packet(2 << 16, body)))) ==
        "unsupported frontend protocol 2.0: server supports 3.0");
  CHECK(error_of(decode_startup_packet(bytes(packet((4 << 16) | 1, body)))) ==
        "unsupported frontend protocol 4.1: server supports 3.0");
  // A newer 3.x minor is decoded; the server answers it with NegotiateProtocolVersion.
  const StartupPacket minor = decode_startup_packet(bytes(packet(kProtocolV3 | 2, body)));
  REQUIRE(std::holds_alternative<StartupMessage>(minor));
  CHECK(std::get<StartupMessage>(minor).protocol_version == 0x30002);
}

TEST_CASE("decode_startup_packet rejects short and mismatched packets", "[startup]") {
  const std::string ssl = encode_ssl_request();
  CHECK(error_of(decode_startup_packet(bytes(ssl.substr(0, 7)))) == "startup packet too short");
  CHECK(error_of(decode_startup_packet({})) == "startup packet too short");
  std::string lying = packet(kProtocolV3, kParams + '\0');
  put_u32(lying.data(), static_cast<uint32_t>(lying.size() + 1));
  CHECK(error_of(decode_startup_packet(bytes(lying))) == "startup packet length mismatch");
}

TEST_CASE("wants_replication follows PostgreSQL's boolean spellings", "[startup]") {
  auto with = [](std::string value) {
    StartupMessage m{kProtocolV3, {{"user", "repl"}, {"replication", std::move(value)}}};
    return wants_replication(m);
  };
  for (const char* yes : {"true", "on", "database", "1", "yes", "TRUE", "On", "t", "y"}) {
    INFO(yes);
    CHECK(with(yes));
  }
  for (const char* no : {"false", "off", "0", "no", "FALSE", "Off", "f", "n", "fa", "fals", "of"}) {
    INFO(no);
    CHECK_FALSE(with(no));
  }
  CHECK_FALSE(wants_replication(StartupMessage{kProtocolV3, {{"user", "u"}}}));
}

TEST_CASE("encode_startup_message round-trips through the decoder", "[startup]") {
  const StartupMessage m{kProtocolV3,
                         {{"user", "bob"},
                          {"database", "db with spaces"},
                          {"options", "-c search_path=app"},
                          {"replication", "database"},
                          {"empty", ""}}};
  const std::string wire = encode_startup_message(m);
  CHECK(wire ==
        packet(kProtocolV3, cstr("user") + cstr("bob") + cstr("database") + cstr("db with spaces") +
                                cstr("options") + cstr("-c search_path=app") + cstr("replication") +
                                cstr("database") + cstr("empty") + cstr("") + '\0'));
  const StartupLength l = startup_packet_length(bytes(wire));
  CHECK(l.valid);
  CHECK(l.length == wire.size());
  const StartupPacket back = decode_startup_packet(bytes(wire));
  REQUIRE(std::holds_alternative<StartupMessage>(back));
  CHECK(std::get<StartupMessage>(back).protocol_version == m.protocol_version);
  CHECK(std::get<StartupMessage>(back).parameters == m.parameters);
  CHECK(wants_replication(std::get<StartupMessage>(back)));
}

}  // namespace pgphase::protocol
