// protocol/message_splitter + splice: the framer of every session. Headers are validated (errors
// at the bad header, sticky), decide sees each message's header and peek once, streamed messages
// are forwarded as runs of the input chunk (never copied), held ones re-emitted in order, dropped
// ones absent; only a header or peek that straddles two chunks is copied. However the stream is
// cut into chunks, the views and the bytes sent on are those of a single feed.
#include "protocol/message_splitter.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "protocol/extended.h"
#include "tests/unit/wire_builders.h"

namespace pgphase::protocol {
namespace {

using test::bytes;
using test::cstr;
using test::header;
using test::i16;
using test::i32;
using test::msg;

// A MessageView copied out of decide (its peek span only lives during the call).
struct Seen {
  char type = 0;
  uint32_t length = 0;
  std::string peek;
  bool operator==(const Seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{'" << s.type << "', " << s.length << ", peek " << s.peek.size() << " bytes}";
}

// Which disposition the n-th message (from 0) of a feed gets.
using Policy = std::function<Disposition(size_t n)>;

Disposition stream_all(size_t) {
  return Disposition::kStream;
}

// Stream, hold, drop, stream, hold, drop, ...
Disposition cycle(size_t n) {
  return static_cast<Disposition>(n % 3);
}

struct Fed {
  std::vector<Seen> views;
  std::vector<bool> boundary_after_chunk;  // at_boundary() after each chunk
  std::string output;                      // what every chunk's pass sent on, joined in order
  size_t copied = 0;          // bytes sent on that were neither forwarded nor made by on_held
  size_t peeks_in_chunk = 0;  // views whose peek pointed into the chunk being fed
  ScanError error = ScanError::kNone;  // first error, if any
  char bad_type = 0;
  uint32_t bad_length = 0;
  size_t error_chunk_start = 0;    // offset in the stream of the chunk that failed
  std::string error_chunk_output;  // what that chunk's pass sent on
  // Where in that chunk its last forwarded run ends (none: nothing of it was forwarded).
  std::optional<size_t> error_forwarded_end;
};

// Feeds `data` cut at the ascending positions `cuts` (empty chunks allowed) to one splitter;
// a held message goes out again unchanged.
Fed feed(MessageSplitter& s, std::string_view data, const std::vector<size_t>& cuts,
         const Policy& policy = stream_all) {
  Fed fed;
  size_t pos = 0;
  std::span<const uint8_t> chunk;
  size_t made = 0;  // bytes on_held appended in this pass
  auto decide = [&](const MessageView& v) {
    REQUIRE(v.peek.size() == std::min<size_t>(v.body_length(), kPeekBytes));
    if (!v.peek.empty() && v.peek.data() >= chunk.data() &&
        v.peek.data() + v.peek.size() <= chunk.data() + chunk.size()) {
      ++fed.peeks_in_chunk;
    }
    fed.views.push_back({v.type, v.length, test::str(v.peek)});
    return policy(fed.views.size() - 1);
  };
  auto on_held = [&](char type, std::span<const uint8_t> body, std::string& out) {
    const std::string m = msg(type, test::str(body));
    out += m;
    made += m.size();
  };
  Splice out;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t next = i < cuts.size() ? cuts[i] : data.size();
    chunk = bytes(data.substr(pos, next - pos));
    out.clear();
    made = 0;
    const ScanError e = s.feed(chunk, out, decide, on_held);
    size_t owned = 0;
    for (size_t r = 0; r < out.runs(); ++r) {
      const auto run = out.run(r);
      if (out.forwarded(r)) {
        REQUIRE(run.data() >= chunk.data());
        REQUIRE(run.data() + run.size() <= chunk.data() + chunk.size());
      } else {
        owned += run.size();
      }
    }
    REQUIRE(owned >= made);
    fed.copied += owned - made;
    fed.output += out.joined();
    fed.boundary_after_chunk.push_back(s.at_boundary());
    if (e != ScanError::kNone) {
      fed.error = e;
      fed.bad_type = s.bad_type();
      fed.bad_length = s.bad_length();
      fed.error_chunk_start = pos;
      fed.error_chunk_output = out.joined();
      for (size_t r = out.runs(); r-- > 0;) {
        if (!out.forwarded(r)) continue;
        fed.error_forwarded_end =
            static_cast<size_t>(out.run(r).data() - chunk.data()) + out.run(r).size();
        break;
      }
      return fed;
    }
    REQUIRE(s.bad_type() == 0);
    pos = next;
  }
  return fed;
}

Fed feed_whole(Direction dir, std::string_view data, uint32_t max = kDefaultMaxMessageLength,
               const Policy& policy = stream_all) {
  MessageSplitter s(dir, max);
  return feed(s, data, {}, policy);
}

Fed feed_cut(Direction dir, std::string_view data, const std::vector<size_t>& cuts,
             const Policy& policy = stream_all) {
  MessageSplitter s(dir, kDefaultMaxMessageLength);
  return feed(s, data, cuts, policy);
}

Fed feed_bytewise(Direction dir, std::string_view data, const Policy& policy = stream_all) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < data.size(); ++i) cuts.push_back(i);
  return feed_cut(dir, data, cuts, policy);
}

void no_held(char, std::span<const uint8_t>, std::string&) {
  FAIL("no message is held");
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
  std::vector<std::string> messages;
  std::set<size_t> boundaries{0};  // offsets where one message ends and the next begins
  void add(const std::string& m) {
    bytes += m;
    messages.push_back(m);
    boundaries.insert(bytes.size());
  }
  // What a splitter sends on under `policy` (held messages go out unchanged).
  [[nodiscard]] std::string expected(const Policy& policy) const {
    std::string out;
    for (size_t n = 0; n < messages.size(); ++n) {
      if (policy(n) != Disposition::kDrop) out += messages[n];
    }
    return out;
  }
};

Stream backend_stream() {
  Stream s;
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

TEST_CASE("framing errors have distinct descriptions", "[message_splitter]") {
  const std::set<std::string> texts = {
      describe(ScanError::kNone), describe(ScanError::kLengthTooShort),
      describe(ScanError::kLengthTooLong), describe(ScanError::kUnknownType)};
  CHECK(texts.size() == 4);
  CHECK(std::string(describe(ScanError::kUnknownType)).find("type") != std::string::npos);
}

}  // namespace pgphase::protocol
