// protocol/message_splitter + splice: the framer of every session. Headers are validated (errors
// at the bad header, sticky), decide sees each message's header and peek once, streamed messages
// are forwarded as runs of the input chunk (never copied), held ones re-emitted in order, dropped
// ones absent; only a header or peek that straddles two chunks is copied. However the stream is
// cut into chunks, the views and the bytes sent on are those of a single feed.
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

TEST_CASE("streamed messages are forwarded in place, held ones replaced in order",
          "[message_splitter]") {
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
              no_held) == ScanError::kNone);
  REQUIRE(out.runs() == 1);
  CHECK(out.run(0).size() == chunk.size());
  CHECK(out.run(0).data() == bytes(chunk).data());
}

TEST_CASE("a header split across chunks is copied once, the body forwarded", "[message_splitter]") {
  const std::string m = encode_query("SELECT 'a long enough statement text'");
  MessageSplitter split(Direction::kFrontend, 1 << 20);
  for (size_t cut : {size_t{3}, size_t{30}}) {
    INFO("cut " << cut);
    const std::string first = m.substr(0, cut);
    const std::string rest = m.substr(cut);
    Splice out;
    auto stream = [](const MessageView&) { return Disposition::kStream; };
    REQUIRE(split.feed(bytes(first), out, stream, no_held) == ScanError::kNone);
    CHECK(out.empty());  // nothing goes out before decide has seen the peek
    REQUIRE(split.feed(bytes(rest), out, stream, no_held) == ScanError::kNone);
    CHECK(out.joined() == m);
    REQUIRE(out.runs() == 2);
    CHECK_FALSE(out.forwarded(0));
    CHECK(out.run(0).size() == 5 + kPeekBytes);  // header and peek, copied
    CHECK(out.forwarded(1));
    CHECK(out.run(1).data() == bytes(rest).data() + (5 + kPeekBytes - cut));
    CHECK(split.at_boundary());
  }
}

TEST_CASE("decide sees the chunk itself when the header and peek are in it", "[message_splitter]") {
  const Stream s = backend_stream();
  const Fed whole = feed_whole(Direction::kBackend, s.bytes, kDefaultMaxMessageLength, cycle);
  REQUIRE(whole.error == ScanError::kNone);
  REQUIRE(whole.views.size() == s.messages.size());
  const auto with_body = static_cast<size_t>(std::count_if(
      whole.views.begin(), whole.views.end(), [](const Seen& v) { return v.length > 4; }));
  CHECK(with_body == s.messages.size() - 2);  // ParseComplete and BindComplete have no body
  CHECK(whole.peeks_in_chunk == with_body);
  CHECK(whole.copied == 0);
  CHECK(whole.output == s.expected(cycle));

  // Cut inside a header or a peek, the peek is gathered (and so copied) first.
  const std::string m = msg(be::kDataRow, std::string(100, 'r'));
  for (size_t cut = 1; cut < 5 + kPeekBytes; ++cut) {
    INFO("cut " << cut);
    const Fed split = feed_cut(Direction::kBackend, m, {cut});
    CHECK(split.peeks_in_chunk == 0);
    CHECK(split.copied == 5 + kPeekBytes);
    CHECK(split.output == m);
  }
  const Fed after = feed_cut(Direction::kBackend, m, {5 + kPeekBytes});
  CHECK(after.peeks_in_chunk == 1);
  CHECK(after.copied == 0);
}

TEST_CASE("two messages in one buffer", "[message_splitter]") {
  const std::string data = msg(be::kCommandComplete, cstr("INSERT 0 1")) + msg('Z', "T");
  MessageSplitter s(Direction::kBackend, kDefaultMaxMessageLength);
  const Fed fed = feed(s, data, {});
  CHECK(fed.error == ScanError::kNone);
  REQUIRE(fed.views.size() == 2);
  CHECK(fed.views[0] == Seen{'C', 15, cstr("INSERT 0 1")});
  CHECK(fed.views[1] == Seen{'Z', 5, "T"});
  CHECK(fed.output == data);
  CHECK(s.at_boundary());
}

TEST_CASE("byte-by-byte and split feeds give the same views and bytes as one feed",
          "[message_splitter]") {
  for (const size_t body : {0, 1, 2, 31, 32, 33, 64, 1000}) {
    std::string payload(body, '\0');
    for (size_t i = 0; i < body; ++i) payload[i] = static_cast<char>(i * 7 + 1);
    const std::string first = msg(be::kDataRow, payload);
    const std::string data = first + msg(be::kReadyForQuery, "E");
    for (const Disposition d : {Disposition::kStream, Disposition::kHold, Disposition::kDrop}) {
      INFO("body " << body << ", disposition " << static_cast<int>(d));
      const Policy policy = [d](size_t n) { return n == 0 ? d : Disposition::kStream; };
      const Fed whole = feed_whole(Direction::kBackend, data, kDefaultMaxMessageLength, policy);
      REQUIRE(whole.views.size() == 2);
      CHECK(whole.views[0].length == body + 4);
      CHECK(whole.views[0].peek == payload.substr(0, kPeekBytes));
      CHECK(whole.output == (d == Disposition::kDrop ? data.substr(first.size()) : data));
      const Fed bytewise = feed_bytewise(Direction::kBackend, data, policy);
      CHECK(bytewise.views == whole.views);
      CHECK(bytewise.output == whole.output);
      for (size_t cut = 0; cut <= data.size(); ++cut) {
        const Fed split = feed_cut(Direction::kBackend, data, {cut}, policy);
        INFO("cut " << cut);
        CHECK(split.views == whole.views);
        CHECK(split.output == whole.output);
        CHECK(split.boundary_after_chunk.back());
      }
    }
  }
}

TEST_CASE("every pair of split positions gives the same views and bytes", "[message_splitter]") {
  const std::string data = msg(fe::kQuery, cstr("SELECT 'a fairly long literal of 40 chars'")) +
                           msg(fe::kSync, "") + msg(fe::kExecute, cstr("") + i32(0)) +
                           msg(fe::kSync, "");
  for (const Policy& policy : {Policy(stream_all), Policy(cycle)}) {
    const Fed whole = feed_whole(Direction::kFrontend, data, kDefaultMaxMessageLength, policy);
    REQUIRE(whole.views.size() == 4);
    size_t matched = 0;
    for (size_t a = 0; a <= data.size(); ++a) {
      for (size_t b = a; b <= data.size(); ++b) {
        const Fed split = feed_cut(Direction::kFrontend, data, {a, b}, policy);
        if (split.views != whole.views) FAIL("views differ, cuts " << a << ", " << b);
        if (split.output != whole.output) FAIL("bytes differ, cuts " << a << ", " << b);
        if (!split.boundary_after_chunk.back()) FAIL("not at a boundary, cuts " << a << ", " << b);
        ++matched;
      }
    }
    CHECK(matched == (data.size() + 1) * (data.size() + 2) / 2);
  }
}

TEST_CASE("at_boundary tracks partial headers, peeks and bodies", "[message_splitter]") {
  const std::string body(40, 'b');
  const std::string data = msg(be::kDataRow, body);  // 5 + 40 bytes
  MessageSplitter s(Direction::kBackend, kDefaultMaxMessageLength);
  std::vector<Seen> views;
  std::string sent;
  auto step = [&](size_t from, size_t n) {
    Splice out;
    const ScanError e = s.feed(
        bytes(std::string_view(data).substr(from, n)), out,
        [&](const MessageView& v) {
          views.push_back({v.type, v.length, test::str(v.peek)});
          return Disposition::kStream;
        },
        no_held);
    REQUIRE(e == ScanError::kNone);
    sent = out.joined();
  };
  CHECK(s.at_boundary());
  step(0, 1);  // type byte only
  CHECK_FALSE(s.at_boundary());
  CHECK(sent.empty());
  step(1, 4);  // header complete, no body yet
  CHECK_FALSE(s.at_boundary());
  CHECK(views.empty());
  CHECK(sent.empty());
  step(5, 10);  // part of the peek
  CHECK_FALSE(s.at_boundary());
  CHECK(views.empty());
  CHECK(sent.empty());
  step(15, 22);  // peek complete: decided now, header and peek go out, 8 body bytes to come
  CHECK_FALSE(s.at_boundary());
  REQUIRE(views.size() == 1);
  CHECK(views[0] == Seen{'D', 44, body.substr(0, 32)});
  CHECK(sent == data.substr(0, 37));
  step(37, 7);
  CHECK_FALSE(s.at_boundary());
  CHECK(sent == data.substr(37, 7));
  step(44, 1);
  CHECK(s.at_boundary());
  CHECK(sent == data.substr(44));
  step(45, 0);  // an empty chunk changes nothing
  CHECK(s.at_boundary());
  CHECK(sent.empty());
  CHECK(views.size() == 1);

  // A body that is all peek ends with its chunk; held, it is re-emitted by that chunk's pass.
  const std::string first = msg(be::kNoData, "");
  const std::string second = msg(be::kDataRow, std::string(32, 'p'));
  for (const Policy& policy : {Policy(stream_all), Policy(cycle)}) {
    const Fed fed = feed_cut(Direction::kBackend, first + second, {5}, policy);
    CHECK(fed.boundary_after_chunk == std::vector<bool>{true, true});
    CHECK(fed.views.size() == 2);
    CHECK(fed.output == first + second);
  }
}

TEST_CASE("large bodies go through once, whatever their disposition", "[message_splitter]") {
  std::string body(1 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i % 251);
  const std::string big = msg(be::kDataRow, body);
  const std::string data = big + msg(be::kReadyForQuery, "I");
  const std::vector<Seen> expected = {{'D', (1u << 20) + 4, body.substr(0, 32)}, {'Z', 5, "I"}};
  std::vector<size_t> cuts;
  for (size_t c = 4096; c < data.size(); c += 4096) cuts.push_back(c);
  for (const Disposition d : {Disposition::kStream, Disposition::kHold, Disposition::kDrop}) {
    INFO("disposition " << static_cast<int>(d));
    const Policy policy = [d](size_t n) { return n == 0 ? d : Disposition::kStream; };
    const Fed whole = feed_whole(Direction::kBackend, data, kDefaultMaxMessageLength, policy);
    CHECK(whole.views == expected);
    CHECK(whole.output == (d == Disposition::kDrop ? data.substr(big.size()) : data));
    const Fed chunked = feed_cut(Direction::kBackend, data, cuts, policy);
    CHECK(chunked.views == expected);
    CHECK(chunked.output == whole.output);
    CHECK(chunked.copied == 0);  // no header straddles a 4096-byte cut here
    CHECK(std::count(chunked.boundary_after_chunk.begin(), chunked.boundary_after_chunk.end(),
                     true) == 1);  // only after the last chunk
    CHECK(chunked.boundary_after_chunk.back());
  }
}

TEST_CASE("a 1 GiB message streams through with O(1) state", "[message_splitter]") {
  const uint32_t length = kDefaultMaxMessageLength;  // 1 GiB, the largest accepted
  for (const Disposition d : {Disposition::kStream, Disposition::kDrop}) {
    INFO("disposition " << static_cast<int>(d));
    MessageSplitter s(Direction::kBackend, kDefaultMaxMessageLength);
    std::vector<Seen> views;
    auto decide = [&](const MessageView& v) {
      views.push_back({v.type, v.length, test::str(v.peek)});
      return views.size() == 1 ? d : Disposition::kStream;
    };
    Splice out;
    const std::string head = header(be::kCopyData, length);
    REQUIRE(s.feed(bytes(head), out, decide, no_held) == ScanError::kNone);
    CHECK(out.empty());  // decided only once the peek is in
    const std::string zeros(1 << 20, '\0');
    size_t left = length - 4;
    size_t sent = 0;
    bool first = true;
    while (left > 0) {
      const size_t n = std::min(left, zeros.size());
      const auto chunk = bytes(std::string_view(zeros).substr(0, n));
      out.clear();
      REQUIRE(s.feed(chunk, out, decide, no_held) == ScanError::kNone);
      left -= n;
      if (left > 0 && s.at_boundary()) FAIL("boundary reported with " << left << " bytes left");
      sent += out.size();
      if (d == Disposition::kDrop) {
        if (!out.empty()) FAIL("a dropped message went out");
      } else if (first) {
        // The header and peek, gathered across the two chunks; the rest of the chunk in place.
        REQUIRE(out.runs() == 2);
        CHECK(out.run(0).size() == 5 + kPeekBytes);
        CHECK(out.run(1).data() == chunk.data() + kPeekBytes);
        CHECK(out.run(1).size() == n - kPeekBytes);
      } else if (out.runs() != 1 || !out.forwarded(0) || out.run(0).data() != chunk.data() ||
                 out.run(0).size() != n) {
        FAIL("a chunk of the body was not forwarded whole, in place");
      }
      if (out.owned().size() > 5 + kPeekBytes) FAIL("the splitter copies the body");
      first = false;
    }
    CHECK(sent == (d == Disposition::kDrop ? 0 : size_t{length} + 1));
    CHECK(s.at_boundary());
    out.clear();
    REQUIRE(s.feed(bytes(msg(be::kCopyDone, "")), out, decide, no_held) == ScanError::kNone);
    CHECK(out.joined() == msg(be::kCopyDone, ""));
    REQUIRE(views.size() == 2);
    CHECK(views[0] == Seen{'d', length, std::string(32, '\0')});
    CHECK(views[0].length - 4 == MessageView{'d', length, {}}.body_length());
    CHECK(views[1] == Seen{'c', 4, ""});
  }
}

TEST_CASE("random split points over realistic streams match a single feed", "[message_splitter]") {
  std::mt19937 rng(20240601);
  for (const Direction dir : {Direction::kBackend, Direction::kFrontend}) {
    const Stream stream = dir == Direction::kBackend ? backend_stream() : frontend_stream();
    std::vector<Disposition> chosen(stream.messages.size());
    for (auto& d : chosen) d = static_cast<Disposition>(rng() % 3);
    const Policy random_policy = [&chosen](size_t n) { return chosen.at(n); };
    for (const Policy& policy : {Policy(stream_all), random_policy}) {
      const Fed whole = feed_whole(dir, stream.bytes, kDefaultMaxMessageLength, policy);
      REQUIRE(whole.error == ScanError::kNone);
      REQUIRE(whole.views.size() == stream.messages.size());
      REQUIRE(whole.output == stream.expected(policy));
      CHECK(whole.copied == 0);
      std::uniform_int_distribution<size_t> pos(0, stream.bytes.size());
      std::uniform_int_distribution<int> ncuts(1, 40);
      int matched = 0;
      for (int iter = 0; iter < 2000; ++iter) {
        std::vector<size_t> cuts(static_cast<size_t>(ncuts(rng)));
        for (auto& c : cuts) c = pos(rng);
        std::sort(cuts.begin(), cuts.end());
        const Fed split = feed_cut(dir, stream.bytes, cuts, policy);
        if (split.error != ScanError::kNone) FAIL("error " << describe(split.error));
        if (split.views != whole.views) FAIL("views differ at iteration " << iter);
        if (split.output != whole.output) FAIL("bytes differ at iteration " << iter);
        // Only headers and peeks cut by a chunk's end are copied, each at most once.
        if (split.copied > cuts.size() * (5 + kPeekBytes)) FAIL("copied " << split.copied);
        for (size_t i = 0; i < cuts.size(); ++i) {
          if (split.boundary_after_chunk[i] != (stream.boundaries.count(cuts[i]) == 1)) {
            FAIL("at_boundary wrong after cut at " << cuts[i]);
          }
        }
        ++matched;
      }
      CHECK(matched == 2000);
      CHECK(whole.views.back().type == (dir == Direction::kBackend ? 'Z' : 'X'));
    }
  }
}

TEST_CASE("framing errors have distinct descriptions", "[message_splitter]") {
  const std::set<std::string> texts = {
      describe(ScanError::kNone), describe(ScanError::kLengthTooShort),
      describe(ScanError::kLengthTooLong), describe(ScanError::kUnknownType)};
  CHECK(texts.size() == 4);
  CHECK(std::string(describe(ScanError::kUnknownType)).find("type") != std::string::npos);
}

}  // namespace pgphase::protocol
