#include "tests/unit/splitter_harness.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "protocol/extended.h"
#include "tests/unit/wire_builders.h"

namespace pgphase::protocol::splitter_test {

using test::bytes;
using test::cstr;
using test::i16;
using test::i32;
using test::msg;

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{'" << s.type << "', " << s.length << ", peek " << s.peek.size() << " bytes}";
}

Disposition stream_all(size_t) {
  return Disposition::kStream;
}

// Stream, hold, drop, stream, hold, drop, ...
Disposition cycle(size_t n) {
  return static_cast<Disposition>(n % 3);
}

// Feeds `data` cut at the ascending positions `cuts` (empty chunks allowed) to one splitter;
// a held message goes out again unchanged.
Fed feed(MessageSplitter& s, std::string_view data, const std::vector<size_t>& cuts,
         const Policy& policy) {
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

Fed feed_whole(Direction dir, std::string_view data, uint32_t max, const Policy& policy) {
  MessageSplitter s(dir, max);
  return feed(s, data, {}, policy);
}

Fed feed_cut(Direction dir, std::string_view data, const std::vector<size_t>& cuts,
             const Policy& policy) {
  MessageSplitter s(dir, kDefaultMaxMessageLength);
  return feed(s, data, cuts, policy);
}

Fed feed_bytewise(Direction dir, std::string_view data, const Policy& policy) {
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

}  // namespace pgphase::protocol::splitter_test
