#include "protocol/frame_scanner.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/wire_builders.h"

namespace pgphase::protocol {
namespace {

using test::bytes;
using test::cstr;
using test::header;
using test::i16;
using test::i32;
using test::msg;

// A MessageView copied out of the callback (its peek span only lives during the call).
struct Seen {
  char type = 0;
  uint32_t length = 0;
  std::string peek;
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{'" << s.type << "', " << s.length << ", peek " << s.peek.size() << " bytes}";
}

struct Fed {
  std::vector<Seen> views;
  std::vector<bool> boundary_after_chunk;  // at_boundary() after each chunk
  ScanResult error;                        // first error, if any
  size_t error_chunk_start = 0;            // offset in the stream of the chunk that failed
};

// Scans `data` cut at the ascending positions `cuts` (empty chunks allowed) with one scanner.
Fed feed(FrameScanner& s, std::string_view data, const std::vector<size_t>& cuts) {
  Fed out;
  size_t pos = 0;
  auto on_message = [&](const MessageView& v) {
    out.views.push_back({v.type, v.length, test::str(v.peek)});
  };
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t next = i < cuts.size() ? cuts[i] : data.size();
    const ScanResult r = s.scan(bytes(data.substr(pos, next - pos)), on_message);
    out.boundary_after_chunk.push_back(s.at_boundary());
    if (r.error != ScanError::kNone) {
      out.error = r;
      out.error_chunk_start = pos;
      return out;
    }
    pos = next;
  }
  return out;
}

Fed feed_whole(Direction dir, std::string_view data, uint32_t max = kDefaultMaxMessageLength) {
  FrameScanner s(dir, max);
  return feed(s, data, {});
}

Fed feed_bytewise(Direction dir, std::string_view data) {
  FrameScanner s(dir, kDefaultMaxMessageLength);
  std::vector<size_t> cuts;
  for (size_t i = 1; i < data.size(); ++i) cuts.push_back(i);
  return feed(s, data, cuts);
}

// Realistic traffic: SELECT id, name FROM t over the extended protocol, as a server answers it.
std::string row_description() {
  std::string body = i16(2);
  body += cstr("id") + i32(16384) + i16(1) + i32(23) + i16(4) + i32(-1) + i16(0);
  body += cstr("name") + i32(16384) + i16(2) + i32(25) + i16(-1) + i32(-1) + i16(0);
  return msg(be::kRowDescription, body);
}

std::string data_row(int id, const std::string& name) {
  const std::string id_text = std::to_string(id);
  return msg(be::kDataRow, i16(2) + i32(static_cast<int32_t>(id_text.size())) + id_text +
                               i32(static_cast<int32_t>(name.size())) + name);
}

struct Stream {
  std::string bytes;
  std::set<size_t> boundaries;  // offsets where one message ends and the next begins
  size_t messages = 0;
  void add(const std::string& m) {
    bytes += m;
    boundaries.insert(bytes.size());
    ++messages;
  }
};

Stream backend_stream() {
  Stream s;
  s.boundaries.insert(0);
  s.add(msg(be::kParseComplete, ""));
  s.add(msg(be::kBindComplete, ""));
  s.add(row_description());
  for (int i = 0; i < 40; ++i) s.add(data_row(i, std::string(static_cast<size_t>(i) * 3, 'a')));
  s.add(data_row(40, std::string(5000, 'z')));                 // body far beyond kPeekBytes
  s.add(msg(be::kDataRow, i16(2) + i32(2) + "41" + i32(-1)));  // NULL name
  s.add(msg(be::kCommandComplete, cstr("SELECT 42")));
  s.add(msg(be::kReadyForQuery, "I"));
  return s;
}

Stream frontend_stream() {
  Stream s;
  s.boundaries.insert(0);
  s.add(msg(fe::kParse,
            cstr("s1") + cstr("SELECT id, name FROM t WHERE id > $1") + i16(1) + i32(23)));
  s.add(msg(fe::kBind, cstr("") + cstr("s1") + i16(0) + i16(1) + i32(2) + "10" + i16(0)));
  s.add(msg(fe::kDescribe, "P" + cstr("")));
  s.add(msg(fe::kExecute, cstr("") + i32(0)));
  s.add(msg(fe::kSync, ""));
  s.add(msg(fe::kQuery, cstr("SELECT 1; " + std::string(200, ' ') + "SELECT 2")));
  s.add(msg(fe::kTerminate, ""));
  return s;
}

const std::set<char> kFrontendTypes = {
    fe::kBind,     fe::kClose,    fe::kDescribe, fe::kExecute, fe::kFunctionCall,
    fe::kFlush,    fe::kParse,    fe::kQuery,    fe::kSync,    fe::kTerminate,
    fe::kCopyData, fe::kCopyDone, fe::kCopyFail, fe::kPassword};
const std::set<char> kBackendTypes = {be::kParseComplete,
                                      be::kBindComplete,
                                      be::kCloseComplete,
                                      be::kNotificationResponse,
                                      be::kCommandComplete,
                                      be::kDataRow,
                                      be::kErrorResponse,
                                      be::kCopyInResponse,
                                      be::kCopyOutResponse,
                                      be::kEmptyQueryResponse,
                                      be::kBackendKeyData,
                                      be::kNoticeResponse,
                                      be::kAuthentication,
                                      be::kParameterStatus,
                                      be::kRowDescription,
                                      be::kFunctionCallResponse,
                                      be::kCopyBothResponse,
                                      be::kReadyForQuery,
                                      be::kNoData,
                                      be::kPortalSuspended,
                                      be::kParameterDescription,
                                      be::kNegotiateProtocolVersion,
                                      be::kCopyData,
                                      be::kCopyDone};

}  // namespace

TEST_CASE("message types are known per direction", "[frame_scanner]") {
  REQUIRE(kFrontendTypes.size() == 14);
  REQUIRE(kBackendTypes.size() == 24);
  for (const Direction dir : {Direction::kFrontend, Direction::kBackend}) {
    const auto& known = dir == Direction::kFrontend ? kFrontendTypes : kBackendTypes;
    const std::string prefix = dir == Direction::kFrontend ? msg(fe::kSync, "") : msg('Z', "I");
    for (int b = 0; b < 256; ++b) {
      const char type = static_cast<char>(b);
      const bool expected = known.count(type) == 1;
      INFO("direction " << static_cast<int>(dir) << ", type byte " << b);
      CHECK(is_known_message_type(dir, static_cast<uint8_t>(b)) == expected);
      const Fed fed = feed_whole(dir, prefix + msg(type, "abc"));
      if (expected) {
        CHECK(fed.error.error == ScanError::kNone);
        REQUIRE(fed.views.size() == 2);
        CHECK(fed.views[1] == Seen{type, 7, "abc"});
      } else {
        CHECK(fed.error.error == ScanError::kUnknownType);
        CHECK(fed.error.valid_bytes == prefix.size());
        CHECK(fed.error.bad_type == type);
        CHECK(fed.error.bad_length == 7);
        CHECK(fed.views.size() == 1);
      }
    }
  }
}

TEST_CASE("lengths under 4 are rejected at the header's offset", "[frame_scanner]") {
  const std::string prefix = msg(be::kReadyForQuery, "I") + msg(be::kDataRow, std::string(50, 'x'));
  for (uint32_t len = 0; len < 4; ++len) {
    INFO("length " << len);
    const Fed fed = feed_whole(Direction::kBackend, prefix + header('C', len) + "trailing");
    CHECK(fed.error.error == ScanError::kLengthTooShort);
    CHECK(fed.error.valid_bytes == prefix.size());
    CHECK(fed.error.bad_type == 'C');
    CHECK(fed.error.bad_length == len);
    CHECK(fed.views.size() == 2);
  }
  // The length is checked before the type: a short length of an unknown type is a length error.
  CHECK(feed_whole(Direction::kBackend, header('!', 2)).error.error == ScanError::kLengthTooShort);
  const Fed empty = feed_whole(Direction::kBackend, header('1', 4));
  CHECK(empty.error.error == ScanError::kNone);
  CHECK(empty.views == std::vector<Seen>{{'1', 4, ""}});
}

TEST_CASE("lengths over the maximum are rejected at the header's offset", "[frame_scanner]") {
  const std::string ok = msg(fe::kQuery, std::string(96, 'q'));  // length exactly 100
  const Fed at_max = feed_whole(Direction::kFrontend, ok, 100);
  CHECK(at_max.error.error == ScanError::kNone);
  REQUIRE(at_max.views.size() == 1);
  CHECK(at_max.views[0].length == 100);

  const Fed over =
      feed_whole(Direction::kFrontend, ok + msg(fe::kQuery, std::string(97, 'q')), 100);
  CHECK(over.error.error == ScanError::kLengthTooLong);
  CHECK(over.error.valid_bytes == ok.size());
  CHECK(over.error.bad_type == fe::kQuery);
  CHECK(over.error.bad_length == 101);
  CHECK(over.views.size() == 1);

  const Fed huge = feed_whole(Direction::kFrontend, header(fe::kQuery, 0xFFFFFFFFu));
  CHECK(huge.error.error == ScanError::kLengthTooLong);
  CHECK(huge.error.bad_length == 0xFFFFFFFFu);
  CHECK(huge.error.valid_bytes == 0);
}

TEST_CASE("error offsets are relative to the chunk that completes the bad header",
          "[frame_scanner]") {
  const std::string good = msg(be::kReadyForQuery, "I");  // 6 bytes
  const std::string data = good + header(be::kDataRow, 1);
  SECTION("bad header starts mid-chunk") {
    FrameScanner s(Direction::kBackend, kDefaultMaxMessageLength);
    const Fed fed = feed(s, data, {3});
    CHECK(fed.error.error == ScanError::kLengthTooShort);
    CHECK(fed.error_chunk_start == 3);
    CHECK(fed.error.valid_bytes == 3);  // the tail of ReadyForQuery may still be forwarded
    CHECK(fed.views.size() == 1);
  }
  SECTION("bad header split over two chunks") {
    FrameScanner s(Direction::kBackend, kDefaultMaxMessageLength);
    const Fed fed = feed(s, data, {good.size() + 2});
    CHECK(fed.boundary_after_chunk == std::vector<bool>{false, false});
    CHECK(fed.error.error == ScanError::kLengthTooShort);
    CHECK(fed.error_chunk_start == good.size() + 2);
    CHECK(fed.error.valid_bytes == 0);  // it began in the previous chunk
  }
  SECTION("bad header after a skipped large body in the same chunk") {
    const std::string big = msg(be::kDataRow, std::string(1000, 'd'));
    FrameScanner s(Direction::kBackend, kDefaultMaxMessageLength);
    const Fed fed = feed(s, big + msg('?', "x"), {10});
    CHECK(fed.error.error == ScanError::kUnknownType);
    CHECK(fed.error.valid_bytes == big.size() - 10);
    CHECK(fed.views.size() == 1);
  }
}

TEST_CASE("a scan error is sticky", "[frame_scanner]") {
  FrameScanner s(Direction::kFrontend, 1000);
  int views = 0;
  auto count = [&](const MessageView&) { ++views; };
  const std::string data = msg(fe::kSync, "") + header(fe::kQuery, 5000) + msg(fe::kSync, "");
  const ScanResult first = s.scan(bytes(data), count);
  CHECK(first.error == ScanError::kLengthTooLong);
  CHECK(first.valid_bytes == 5);
  CHECK(views == 1);
  CHECK_FALSE(s.at_boundary());
  // Later chunks are not read as headers: the same error comes back with nothing valid.
  for (const std::string& more : {msg(fe::kSync, ""), std::string()}) {
    const ScanResult again = s.scan(bytes(more), count);
    CHECK(again.error == ScanError::kLengthTooLong);
    CHECK(again.valid_bytes == 0);
    CHECK(again.bad_type == fe::kQuery);
    CHECK(again.bad_length == 5000);
  }
  CHECK(views == 1);
  CHECK_FALSE(s.at_boundary());
}

TEST_CASE("two messages in one buffer", "[frame_scanner]") {
  const std::string data = msg(be::kCommandComplete, cstr("INSERT 0 1")) + msg('Z', "T");
  FrameScanner s(Direction::kBackend, kDefaultMaxMessageLength);
  const Fed fed = feed(s, data, {});
  CHECK(fed.error.error == ScanError::kNone);
  REQUIRE(fed.views.size() == 2);
  CHECK(fed.views[0] == Seen{'C', 15, cstr("INSERT 0 1")});
  CHECK(fed.views[1] == Seen{'Z', 5, "T"});
  CHECK(s.at_boundary());
}

TEST_CASE("byte-by-byte and split feeds give the same views as one feed", "[frame_scanner]") {
  for (const size_t body : {0, 1, 2, 31, 32, 33, 64, 1000}) {
    std::string payload(body, '\0');
    for (size_t i = 0; i < body; ++i) payload[i] = static_cast<char>(i * 7 + 1);
    const std::string data = msg(be::kDataRow, payload) + msg(be::kReadyForQuery, "E");
    INFO("body " << body);
    const Fed whole = feed_whole(Direction::kBackend, data);
    REQUIRE(whole.views.size() == 2);
    CHECK(whole.views[0].length == body + 4);
    CHECK(whole.views[0].peek == payload.substr(0, FrameScanner::kPeekBytes));
    CHECK(feed_bytewise(Direction::kBackend, data).views == whole.views);
    for (size_t cut = 0; cut <= data.size(); ++cut) {
      FrameScanner s(Direction::kBackend, kDefaultMaxMessageLength);
      const Fed split = feed(s, data, {cut});
      INFO("cut " << cut);
      CHECK(split.views == whole.views);
      CHECK(split.boundary_after_chunk.back());
    }
  }
}

TEST_CASE("every pair of split positions gives the same views", "[frame_scanner]") {
  const std::string data = msg(fe::kQuery, cstr("SELECT 'a fairly long literal of 40 chars'")) +
                           msg(fe::kSync, "") + msg(fe::kExecute, cstr("") + i32(0));
  const Fed whole = feed_whole(Direction::kFrontend, data);
  REQUIRE(whole.views.size() == 3);
  size_t matched = 0;
  for (size_t a = 0; a <= data.size(); ++a) {
    for (size_t b = a; b <= data.size(); ++b) {
      FrameScanner s(Direction::kFrontend, kDefaultMaxMessageLength);
      const Fed split = feed(s, data, {a, b});
      if (split.views != whole.views) FAIL("cuts " << a << ", " << b);
      ++matched;
    }
  }
  CHECK(matched == (data.size() + 1) * (data.size() + 2) / 2);
}

TEST_CASE("at_boundary tracks partial headers, peeks and skipped bodies", "[frame_scanner]") {
  const std::string body(40, 'b');
  const std::string data = msg(be::kDataRow, body);  // 5 + 40 bytes
  FrameScanner s(Direction::kBackend, kDefaultMaxMessageLength);
  std::vector<Seen> views;
  auto step = [&](size_t from, size_t n) {
    const ScanResult r =
        s.scan(bytes(std::string_view(data).substr(from, n)), [&](const MessageView& v) {
          views.push_back({v.type, v.length, test::str(v.peek)});
        });
    REQUIRE(r.error == ScanError::kNone);
  };
  CHECK(s.at_boundary());
  step(0, 1);  // type byte only
  CHECK_FALSE(s.at_boundary());
  step(1, 4);  // header complete, no body yet
  CHECK_FALSE(s.at_boundary());
  CHECK(views.empty());
  step(5, 10);  // part of the peek
  CHECK_FALSE(s.at_boundary());
  CHECK(views.empty());
  step(15, 22);  // peek complete: reported now, 8 body bytes still to skip
  CHECK_FALSE(s.at_boundary());
  REQUIRE(views.size() == 1);
  CHECK(views[0] == Seen{'D', 44, body.substr(0, 32)});
  step(37, 7);
  CHECK_FALSE(s.at_boundary());
  step(44, 1);
  CHECK(s.at_boundary());
  step(45, 0);  // an empty chunk changes nothing
  CHECK(s.at_boundary());
  CHECK(views.size() == 1);

  FrameScanner e(Direction::kBackend, kDefaultMaxMessageLength);
  const Fed empty = feed(e, msg(be::kNoData, "") + msg(be::kDataRow, std::string(32, 'p')), {5});
  CHECK(empty.boundary_after_chunk == std::vector<bool>{true, true});
  CHECK(empty.views.size() == 2);
}

TEST_CASE("large bodies are skipped without being reported twice", "[frame_scanner]") {
  std::string body(1 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i % 251);
  const std::string data = msg(be::kDataRow, body) + msg(be::kReadyForQuery, "I");
  const Fed whole = feed_whole(Direction::kBackend, data);
  const std::vector<Seen> expected = {{'D', (1u << 20) + 4, body.substr(0, 32)}, {'Z', 5, "I"}};
  CHECK(whole.views == expected);
  std::vector<size_t> cuts;
  for (size_t c = 4096; c < data.size(); c += 4096) cuts.push_back(c);
  FrameScanner s(Direction::kBackend, kDefaultMaxMessageLength);
  const Fed chunked = feed(s, data, cuts);
  CHECK(chunked.views == expected);
  CHECK(std::count(chunked.boundary_after_chunk.begin(), chunked.boundary_after_chunk.end(),
                   true) == 1);  // only after the last chunk
  CHECK(chunked.boundary_after_chunk.back());
}

TEST_CASE("a 1 GiB message streams through with O(1) state", "[frame_scanner]") {
  const uint32_t length = kDefaultMaxMessageLength;  // 1 GiB, the largest accepted
  FrameScanner s(Direction::kBackend, kDefaultMaxMessageLength);
  std::vector<Seen> views;
  auto on_message = [&](const MessageView& v) {
    views.push_back({v.type, v.length, test::str(v.peek)});
  };
  const std::string head = header(be::kCopyData, length);
  REQUIRE(s.scan(bytes(head), on_message).error == ScanError::kNone);
  const std::string zeros(1 << 20, '\0');
  size_t left = length - 4;
  while (left > 0) {
    const size_t n = std::min(left, zeros.size());
    REQUIRE(s.scan(bytes(std::string_view(zeros).substr(0, n)), on_message).error ==
            ScanError::kNone);
    left -= n;
    if (left > 0 && s.at_boundary()) FAIL("boundary reported with " << left << " bytes left");
  }
  CHECK(s.at_boundary());
  REQUIRE(s.scan(bytes(msg(be::kCopyDone, "")), on_message).error == ScanError::kNone);
  REQUIRE(views.size() == 2);
  CHECK(views[0] == Seen{'d', length, std::string(32, '\0')});
  CHECK(views[0].length - 4 == MessageView{'d', length, {}}.body_length());
  CHECK(views[1] == Seen{'c', 4, ""});
}

TEST_CASE("random split points over realistic streams match a single feed", "[frame_scanner]") {
  std::mt19937 rng(20240601);
  for (const Direction dir : {Direction::kBackend, Direction::kFrontend}) {
    const Stream stream = dir == Direction::kBackend ? backend_stream() : frontend_stream();
    const Fed whole = feed_whole(dir, stream.bytes);
    REQUIRE(whole.error.error == ScanError::kNone);
    REQUIRE(whole.views.size() == stream.messages);
    std::uniform_int_distribution<size_t> pos(0, stream.bytes.size());
    std::uniform_int_distribution<int> ncuts(1, 40);
    int matched = 0;
    for (int iter = 0; iter < 3000; ++iter) {
      std::vector<size_t> cuts(static_cast<size_t>(ncuts(rng)));
      for (auto& c : cuts) c = pos(rng);
      std::sort(cuts.begin(), cuts.end());
      FrameScanner s(dir, kDefaultMaxMessageLength);
      const Fed split = feed(s, stream.bytes, cuts);
      if (split.error.error != ScanError::kNone) FAIL("error " << describe(split.error.error));
      if (split.views != whole.views) FAIL("views differ at iteration " << iter);
      for (size_t i = 0; i < cuts.size(); ++i) {
        if (split.boundary_after_chunk[i] != (stream.boundaries.count(cuts[i]) == 1)) {
          FAIL("at_boundary wrong after cut at " << cuts[i]);
        }
      }
      ++matched;
    }
    CHECK(matched == 3000);
    CHECK(whole.views.back().type == (dir == Direction::kBackend ? 'Z' : 'X'));
  }
}

TEST_CASE("scan errors have distinct descriptions", "[frame_scanner]") {
  const std::set<std::string> texts = {
      describe(ScanError::kNone), describe(ScanError::kLengthTooShort),
      describe(ScanError::kLengthTooLong), describe(ScanError::kUnknownType)};
  CHECK(texts.size() == 4);
  CHECK(std::string(describe(ScanError::kUnknownType)).find("type") != std::string::npos);
}

}  // namespace pgphase::protocol
