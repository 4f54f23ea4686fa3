// protocol/message_splitter: bad input. Message types per direction, lengths under 4 and over
// the maximum rejected at the header, what the failing pass sends on (everything before the bad
// header, none of it), and errors that stay.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "protocol/extended.h"
#include "tests/unit/splitter_harness.h"
#include "tests/unit/wire_builders.h"

namespace pgphase::protocol {
namespace {

using namespace splitter_test;
using test::bytes;
using test::cstr;
using test::header;
using test::i16;
using test::i32;
using test::msg;

}  // namespace

TEST_CASE("message types are known per direction", "[message_splitter]") {
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
      const std::string m = msg(type, "abc");
      const Fed fed = feed_whole(dir, prefix + m);
      if (expected) {
        CHECK(fed.error == ScanError::kNone);
        REQUIRE(fed.views.size() == 2);
        CHECK(fed.views[1] == Seen{type, 7, "abc"});
        CHECK(fed.output == prefix + m);
      } else {
        CHECK(fed.error == ScanError::kUnknownType);
        CHECK(fed.output == prefix);
        CHECK(fed.bad_type == type);
        CHECK(fed.bad_length == 7);
        CHECK(fed.views.size() == 1);
      }
    }
  }
}

TEST_CASE("lengths under 4 are rejected at the header", "[message_splitter]") {
  const std::string prefix = msg(be::kReadyForQuery, "I") + msg(be::kDataRow, std::string(50, 'x'));
  for (uint32_t len = 0; len < 4; ++len) {
    INFO("length " << len);
    const Fed fed = feed_whole(Direction::kBackend, prefix + header('C', len) + "trailing");
    CHECK(fed.error == ScanError::kLengthTooShort);
    CHECK(fed.output == prefix);
    CHECK(fed.bad_type == 'C');
    CHECK(fed.bad_length == len);
    CHECK(fed.views.size() == 2);
  }
  // The length is checked before the type: a short length of an unknown type is a length error.
  CHECK(feed_whole(Direction::kBackend, header('!', 2)).error == ScanError::kLengthTooShort);
  CHECK(check_header(Direction::kBackend, kDefaultMaxMessageLength, static_cast<uint8_t>('!'), 2) ==
        ScanError::kLengthTooShort);
  const Fed empty = feed_whole(Direction::kBackend, header('1', 4));
  CHECK(empty.error == ScanError::kNone);
  CHECK(empty.views == std::vector<Seen>{{'1', 4, ""}});
  CHECK(empty.output == header('1', 4));
  CHECK(empty.boundary_after_chunk == std::vector<bool>{true});
}

TEST_CASE("lengths over the maximum are rejected at the header", "[message_splitter]") {
  const std::string ok = msg(fe::kQuery, std::string(96, 'q'));  // length exactly 100
  const Fed at_max = feed_whole(Direction::kFrontend, ok, 100);
  CHECK(at_max.error == ScanError::kNone);
  REQUIRE(at_max.views.size() == 1);
  CHECK(at_max.views[0].length == 100);
  CHECK(at_max.output == ok);

  const Fed over =
      feed_whole(Direction::kFrontend, ok + msg(fe::kQuery, std::string(97, 'q')), 100);
  CHECK(over.error == ScanError::kLengthTooLong);
  CHECK(over.output == ok);
  CHECK(over.bad_type == fe::kQuery);
  CHECK(over.bad_length == 101);
  CHECK(over.views.size() == 1);

  const Fed huge = feed_whole(Direction::kFrontend, header(fe::kQuery, 0xFFFFFFFFu));
  CHECK(huge.error == ScanError::kLengthTooLong);
  CHECK(huge.bad_length == 0xFFFFFFFFu);
  CHECK(huge.output.empty());
}

TEST_CASE("the pass that meets a bad header sends on what precedes it, none of the header",
          "[message_splitter]") {
  const std::string good = msg(be::kReadyForQuery, "I");  // 6 bytes
  const std::string data = good + header(be::kDataRow, 1);
  SECTION("bad header starts mid-chunk") {
    const Fed fed = feed_cut(Direction::kBackend, data, {3});
    CHECK(fed.error == ScanError::kLengthTooShort);
    CHECK(fed.error_chunk_start == 3);
    // ReadyForQuery (header and 1-byte peek) was cut: it goes out whole with this pass, gathered.
    CHECK(fed.error_chunk_output == good);
    CHECK_FALSE(fed.error_forwarded_end.has_value());
    CHECK(fed.output == good);
    CHECK(fed.views.size() == 1);
    // A message decided in the previous chunk: the rest of it is forwarded from this chunk, and
    // the forwarded bytes end right where the bad header starts.
    const std::string row = msg(be::kDataRow, std::string(50, 'x'));
    const Fed later = feed_cut(Direction::kBackend, row + header(be::kDataRow, 1), {40});
    CHECK(later.error == ScanError::kLengthTooShort);
    CHECK(later.error_chunk_output == row.substr(40));
    CHECK(later.error_forwarded_end == row.size() - 40);
    CHECK(later.output == row);
  }
  SECTION("bad header split over two chunks") {
    const Fed fed = feed_cut(Direction::kBackend, data, {good.size() + 2});
    CHECK(fed.boundary_after_chunk == std::vector<bool>{false, false});
    CHECK(fed.error == ScanError::kLengthTooShort);
    CHECK(fed.error_chunk_start == good.size() + 2);
    // Its first two bytes came in the previous chunk, but were kept back, not sent on.
    CHECK(fed.error_chunk_output.empty());
    CHECK_FALSE(fed.error_forwarded_end.has_value());
    CHECK(fed.output == good);
  }
  SECTION("bad header after a streamed large body in the same chunk") {
    const std::string big = msg(be::kDataRow, std::string(1000, 'd'));
    const Fed fed = feed_cut(Direction::kBackend, big + msg('?', "x"), {10});
    CHECK(fed.error == ScanError::kUnknownType);
    CHECK(fed.error_chunk_output == big);
    CHECK(fed.error_forwarded_end == big.size() - 10);
    CHECK(fed.output == big);
    CHECK(fed.views.size() == 1);
  }
  SECTION("bad header after a streamed large body that began in an earlier chunk") {
    const std::string big = msg(be::kDataRow, std::string(1000, 'd'));
    const Fed fed = feed_cut(Direction::kBackend, big + msg('?', "x"), {100});
    CHECK(fed.error == ScanError::kUnknownType);
    CHECK(fed.error_chunk_output == big.substr(100));  // all forwarded from this chunk
    CHECK(fed.error_forwarded_end == big.size() - 100);
    CHECK(fed.output == big);
  }
  SECTION("bad header after a held message in the same chunk") {
    const std::string big = msg(be::kDataRow, std::string(1000, 'd'));
    const Fed fed = feed_cut(Direction::kBackend, good + big + msg('?', "x"), {10},
                             [](size_t n) { return n == 1 ? Disposition::kHold : cycle(n); });
    CHECK(fed.error == ScanError::kUnknownType);
    CHECK(fed.error_chunk_output == big);  // held, re-emitted whole by on_held
    CHECK(fed.output == good + big);
    CHECK(fed.views.size() == 2);
  }
}

TEST_CASE("a framing error is sticky", "[message_splitter]") {
  MessageSplitter s(Direction::kFrontend, 1000);
  int views = 0;
  auto count = [&](const MessageView&) {
    ++views;
    return Disposition::kStream;
  };
  const std::string data = msg(fe::kSync, "") + header(fe::kQuery, 5000) + msg(fe::kSync, "");
  Splice out;
  CHECK(s.feed(bytes(data), out, count, no_held) == ScanError::kLengthTooLong);
  CHECK(out.joined() == msg(fe::kSync, ""));
  CHECK(views == 1);
  CHECK_FALSE(s.at_boundary());
  // Later chunks are not read as headers: the same error comes back and nothing goes out.
  for (const std::string& more : {msg(fe::kSync, ""), std::string()}) {
    out.clear();
    CHECK(s.feed(bytes(more), out, count, no_held) == ScanError::kLengthTooLong);
    CHECK(out.empty());
    CHECK(s.bad_type() == fe::kQuery);
    CHECK(s.bad_length() == 5000);
  }
  CHECK(views == 1);
  CHECK_FALSE(s.at_boundary());
}

TEST_CASE("streaming everything, what goes out is the input up to the first bad header",
          "[message_splitter]") {
  std::mt19937 rng(7);
  for (const Direction dir : {Direction::kBackend, Direction::kFrontend}) {
    const Stream stream = dir == Direction::kBackend ? backend_stream() : frontend_stream();
    const std::vector<std::pair<std::string, ScanError>> bad = {
        {header('!', 10), ScanError::kUnknownType},
        {header(dir == Direction::kBackend ? 'D' : 'Q', 3), ScanError::kLengthTooShort},
        {header(dir == Direction::kBackend ? 'D' : 'Q', kDefaultMaxMessageLength + 1),
         ScanError::kLengthTooLong}};
    size_t before = 0;  // messages before the bad header
    for (const size_t at : stream.boundaries) {
      for (const auto& [h, error] : bad) {
        const std::string data = stream.bytes.substr(0, at) + h + stream.bytes.substr(at);
        INFO("bad header at " << at << ", error " << describe(error));
        const Fed whole = feed_whole(dir, data);
        REQUIRE(whole.error == error);
        CHECK(whole.output == data.substr(0, at));
        CHECK(whole.views.size() == before);
        std::uniform_int_distribution<size_t> pos(0, data.size());
        for (int iter = 0; iter < 20; ++iter) {
          std::vector<size_t> cuts(static_cast<size_t>(rng() % 12 + 1));
          for (auto& c : cuts) c = pos(rng);
          std::sort(cuts.begin(), cuts.end());
          const Fed split = feed_cut(dir, data, cuts);
          if (split.error != error) FAIL("error " << describe(split.error));
          if (split.output != data.substr(0, at)) FAIL("output differs, iteration " << iter);
          if (split.views != whole.views) FAIL("views differ, iteration " << iter);
        }
      }
      ++before;
    }
  }
}

}  // namespace pgphase::protocol
