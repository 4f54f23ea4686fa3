// protocol/message_splitter + splice: streamed messages are forwarded as runs of the input chunk
// (never copied), held ones replaced in order, headers that straddle chunks copied.
#include "protocol/message_splitter.h"

#include <catch2/catch.hpp>

#include "protocol/extended.h"
#include "protocol/wire.h"

using namespace pgphase::protocol;

namespace {
std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
}  // namespace

TEST_CASE("streamed messages are forwarded in place, held ones replaced in order") {
  const std::string a = encode_query("SELECT 1");
  const std::string b = encode_query("SELECT 2");
  const std::string c = encode_query("SELECT 3");
  const std::string chunk = a + b + c;
  MessageSplitter split(Direction::kFrontend, 1 << 20);
  Splice out;
  int seen = 0;
  const auto err = split.feed(
      bytes(chunk), out,
      [&](const MessageView&) { return ++seen == 2 ? Disposition::kHold : Disposition::kStream; },
      [&](char, std::span<const uint8_t>, std::string& o) { o += encode_query("SELECT 22"); });
  REQUIRE(err == ScanError::kNone);
  CHECK(out.joined() == a + encode_query("SELECT 22") + c);
  REQUIRE(out.runs() == 3);
  CHECK(out.forwarded(0));
  CHECK(out.run(0).data() == bytes(chunk).data());  // the chunk itself, not a copy
  CHECK_FALSE(out.forwarded(1));
  CHECK(out.forwarded(2));
  CHECK(out.run(2).data() == bytes(chunk).data() + a.size() + b.size());

  // All streamed: one run, the whole chunk.
  out.clear();
  REQUIRE(split.feed(
              bytes(chunk), out, [](const MessageView&) { return Disposition::kStream; },
              [](char, std::span<const uint8_t>, std::string&) {}) == ScanError::kNone);
  REQUIRE(out.runs() == 1);
  CHECK(out.run(0).size() == chunk.size());
  CHECK(out.run(0).data() == bytes(chunk).data());
}

TEST_CASE("a header split across chunks is copied once, the body forwarded") {
  const std::string m = encode_query("SELECT 'a long enough statement text'");
  MessageSplitter split(Direction::kFrontend, 1 << 20);
  std::string got;
  for (size_t cut : {size_t{3}, size_t{30}}) {
    const std::string first = m.substr(0, cut);
    const std::string rest = m.substr(cut);
    Splice out;
    auto stream = [](const MessageView&) { return Disposition::kStream; };
    auto none = [](char, std::span<const uint8_t>, std::string&) {};
    REQUIRE(split.feed(bytes(first), out, stream, none) == ScanError::kNone);
    got = out.joined();
    out.clear();
    REQUIRE(split.feed(bytes(rest), out, stream, none) == ScanError::kNone);
    got += out.joined();
    CHECK(got == m);
    CHECK(split.at_boundary());
  }
}
