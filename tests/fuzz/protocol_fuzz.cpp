// libFuzzer target over protocol/ decoders, built with clang by run_fuzz.sh.
//
// Input: byte 0 picks the direction (bit 0), the maximum message length (bits 1-2) and whether
// every message streams through the MessageSplitter (bits 3-4 both set; otherwise a seed byte per
// message, derived from byte 1, picks stream, hold or drop); byte 1 also seeds the chunk sizes;
// the rest is the payload. The payload is split as one chunk and in pseudo-random chunks, and both
// must agree with a plain walk over it: the same views, and the same bytes sent on (held messages
// re-emitted unchanged, dropped ones absent, up to the first bad header). It is then decoded as a
// first packet and as a typed message (bit 7 of byte 0 lowers the maximum length); the message
// body and the raw payload also go through every body decoder (messages.h, extended.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/extended.h"
#include "protocol/message_splitter.h"
#include "protocol/messages.h"
#include "protocol/startup.h"
#include "protocol/wire.h"

using namespace pgphase::protocol;

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace {

using Bytes = std::span<const uint8_t>;

struct View {
  char type;
  uint32_t length;
  std::string peek;
  bool operator==(const View&) const = default;
};

struct Outcome {
  std::vector<View> views;
  std::string output;  // what every pass sent on, joined in order
  ScanError error = ScanError::kNone;
  char bad_type = 0;
  uint32_t bad_length = 0;
  bool boundary = false;  // at_boundary() at the end
};

bool same(Bytes a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// `body` as the whole message of `type`.
std::string whole(char type, Bytes body) {
  std::string out = begin_message(type);
  out.append(reinterpret_cast<const char*>(body.data()), body.size());
  finish_message(out);
  return out;
}

// The body of a whole message an encoder produced, after checking its header.
Bytes body_of(const std::string& out, char type) {
  const DecodedMessage d = decode_message(as_bytes(out), kDefaultMaxMessageLength);
  FUZZ_CHECK(d.status == DecodeStatus::kComplete && d.type == type && d.total == out.size());
  return d.body;
}

// The disposition of message n (from 0): all streamed, or one seed byte per message. A message
// longer than any input is never held (its body could not complete, and holding it reserves its
// claimed length up front): it is dropped instead.
struct Dispositions {
  bool stream_all;
  uint8_t seed;
  [[nodiscard]] Disposition operator()(size_t n, uint32_t length) const {
    if (stream_all) return Disposition::kStream;
    uint32_t h = (seed + 1u) * 2654435761u ^ static_cast<uint32_t>(n) * 0x9E3779B9u;
    h ^= h >> 15;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    const auto d = static_cast<Disposition>(static_cast<uint8_t>(h) % 3);
    return d == Disposition::kHold && length > kMaxHeld ? Disposition::kDrop : d;
  }
  static constexpr uint32_t kMaxHeld = 1u << 16;  // run_fuzz.sh's -max_len is 8192
};

// Feeds `data` to a MessageSplitter in chunks of 0..max_chunk bytes (max_chunk 0: one chunk),
// checking invariants; a held message goes out again unchanged.
Outcome split(Direction dir, uint32_t max, Bytes data, const Dispositions& dispositions,
              size_t max_chunk, uint32_t rng) {
  MessageSplitter s(dir, max);
  Outcome out;
  Splice splice;
  size_t pos = 0;
  size_t made = 0;  // bytes on_held appended in this pass
  size_t passes = 0;
  size_t copied = 0;
  const auto on_held = [&](char type, Bytes body, std::string& o) {
    FUZZ_CHECK(!out.views.empty() && out.views.back().type == type);
    FUZZ_CHECK(body.size() == out.views.back().length - 4);
    FUZZ_CHECK(same(body.first(out.views.back().peek.size()), out.views.back().peek));
    const std::string m = whole(type, body);
    o += m;
    made += m.size();
  };
  do {
    size_t n = data.size() - pos;
    if (max_chunk != 0) {
      rng ^= rng << 13;
      rng ^= rng >> 17;
      rng ^= rng << 5;
      n = std::min(n, size_t{rng % (max_chunk + 1)});
    }
    const Bytes chunk = data.subspan(pos, n);
    const auto decide = [&](const MessageView& v) {
      FUZZ_CHECK(v.length >= kMinMessageLength && v.length <= max);
      FUZZ_CHECK(is_known_message_type(dir, static_cast<uint8_t>(v.type)));
      FUZZ_CHECK(v.peek.size() == std::min<size_t>(v.body_length(), kPeekBytes));
      out.views.push_back({v.type, v.length, {v.peek.begin(), v.peek.end()}});
      return dispositions(out.views.size() - 1, v.length);
    };
    splice.clear();
    made = 0;
    const ScanError e = s.feed(chunk, splice, decide, on_held);
    ++passes;
    size_t owned = 0;
    for (size_t r = 0; r < splice.runs(); ++r) {
      const Bytes run = splice.run(r);
      if (splice.forwarded(r)) {
        FUZZ_CHECK(run.data() >= chunk.data() && run.data() + run.size() <= chunk.data() + n);
      } else {
        owned += run.size();
      }
    }
    FUZZ_CHECK(owned >= made);
    copied += owned - made;
    out.output += splice.joined();
    if (e != ScanError::kNone) {
      FUZZ_CHECK(!s.at_boundary());
      out.error = e;
      out.bad_type = s.bad_type();
      out.bad_length = s.bad_length();
      FUZZ_CHECK(check_header(dir, max, static_cast<uint8_t>(out.bad_type), out.bad_length) == e);
      // Sticky: the same error again, nothing decided, nothing sent on.
      splice.clear();
      const ScanError again = s.feed(
          chunk, splice, [](const MessageView&) -> Disposition { std::abort(); },
          [](char, Bytes, std::string&) { std::abort(); });
      FUZZ_CHECK(again == e && splice.empty() && !s.at_boundary());
      break;
    }
    FUZZ_CHECK(s.bad_type() == 0 && s.bad_length() == 0);
    pos += n;
  } while (pos < data.size());
  // Only headers and peeks that a chunk's end cut are copied, each once; one chunk copies none.
  FUZZ_CHECK(copied <= (passes - 1) * (5 + kPeekBytes));
  out.boundary = s.at_boundary();
  return out;
}

// The splitter's contract restated as a plain walk over a complete buffer: the views, and the
// bytes sent on (streamed and held messages as they are, dropped ones not, up to the first bad
// header; of a last, incomplete message what there is once its peek is in, if it streams).
Outcome reference(Direction dir, uint32_t max, Bytes data, const Dispositions& dispositions) {
  Outcome out;
  size_t pos = 0;
  const auto* const text = reinterpret_cast<const char*>(data.data());
  while (data.size() - pos >= 5) {
    const char type = static_cast<char>(data[pos]);
    const uint32_t length = read_u32(data.data() + pos + 1);
    ScanError e = ScanError::kNone;
    if (length < kMinMessageLength) {
      e = ScanError::kLengthTooShort;
    } else if (length > max) {
      e = ScanError::kLengthTooLong;
    } else if (!is_known_message_type(dir, static_cast<uint8_t>(type))) {
      e = ScanError::kUnknownType;
    }
    if (e != ScanError::kNone) {
      out.error = e;
      out.bad_type = type;
      out.bad_length = length;
      return out;
    }
    const size_t peek = std::min<size_t>(length - 4, kPeekBytes);
    if (data.size() - pos - 5 < peek) return out;
    out.views.push_back({type, length, {text + pos + 5, peek}});
    const Disposition d = dispositions(out.views.size() - 1, length);
    const bool complete = data.size() - pos - 1 >= length;
    if (d == Disposition::kStream || (d == Disposition::kHold && complete)) {
      out.output.append(text + pos, complete ? size_t{length} + 1 : data.size() - pos);
    }
    if (!complete) return out;
    pos += size_t{length} + 1;
  }
  out.boundary = pos == data.size();
  return out;
}

void check_splitter(uint8_t control, uint8_t seed, Bytes data) {
  static constexpr uint32_t kMaxLengths[] = {kDefaultMaxMessageLength, 4, 64, 1024};
  const Direction dir = (control & 1) != 0 ? Direction::kBackend : Direction::kFrontend;
  const uint32_t max = kMaxLengths[(control >> 1) & 3];
  const Dispositions dispositions{((control >> 3) & 3) == 3, seed};
  const Outcome expected = reference(dir, max, data, dispositions);
  const Outcome one = split(dir, max, data, dispositions, 0, 0);
  const Outcome cut = split(dir, max, data, dispositions, seed % 64 + 1, seed * 2654435761u | 1u);
  for (const Outcome* o : {&one, &cut}) {
    FUZZ_CHECK(o->views == expected.views);
    FUZZ_CHECK(o->output == expected.output);
    FUZZ_CHECK(o->error == expected.error);
    FUZZ_CHECK(o->bad_type == expected.bad_type && o->bad_length == expected.bad_length);
    FUZZ_CHECK(o->boundary == expected.boundary);
  }
}

void check_startup_packet(Bytes packet) {
  const StartupPacket p = decode_startup_packet(packet);
  if (const auto* m = std::get_if<StartupMessage>(&p)) {
    FUZZ_CHECK(m->find("user") != nullptr);
    (void)wants_replication(*m);
    FUZZ_CHECK(same(packet, encode_startup_message(*m)));  // the decoder accepts one layout
  } else if (const auto* c = std::get_if<CancelRequest>(&p)) {
    FUZZ_CHECK(same(packet, encode_cancel_request(c->process_id, c->secret_key)));
  } else if (std::holds_alternative<SslRequest>(p)) {
    FUZZ_CHECK(same(packet, encode_ssl_request()));
  } else if (const auto* e = std::get_if<StartupError>(&p)) {
    FUZZ_CHECK(!e->message.empty());
  }
}

void check_startup(Bytes data) {
  const StartupLength l = startup_packet_length(data);
  FUZZ_CHECK(l.need_more == (data.size() < 4));
  if (l.need_more) return;
  FUZZ_CHECK(l.length == read_u32(data.data()));
  FUZZ_CHECK(l.valid == (l.length >= 8 && l.length <= kMaxStartupPacketLength));
  if (l.valid && l.length <= data.size()) check_startup_packet(data.first(l.length));
  check_startup_packet(data);
}

void check_body(Bytes body) {
  const std::string_view state = error_sqlstate(body);
  if (!state.empty()) {
    const auto* begin = reinterpret_cast<const char*>(body.data());
    FUZZ_CHECK(state.data() > begin && state.data() + state.size() < begin + body.size());
    FUZZ_CHECK(state.data()[-1] == 'C' && state.data()[state.size()] == '\0');
  }
  const std::string out = strip_channel_binding_mechanisms(body);
  if (out.empty()) return;
  FUZZ_CHECK(body.size() >= 4 && read_i32(body.data()) == 10);
  const DecodedMessage d = decode_message(
      {reinterpret_cast<const uint8_t*>(out.data()), out.size()}, kDefaultMaxMessageLength);
  FUZZ_CHECK(d.status == DecodeStatus::kComplete && d.type == 'R' && d.total == out.size());
  FUZZ_CHECK(strip_channel_binding_mechanisms(d.body) == out);  // idempotent
  std::string_view rest(out);
  rest.remove_prefix(9);  // type, length, SASL code
  while (!rest.empty() && rest.front() != '\0') {
    const size_t nul = rest.find('\0');
    FUZZ_CHECK(nul != std::string_view::npos);
    FUZZ_CHECK(!rest.substr(0, nul).ends_with("-PLUS"));  // no channel binding survives
    rest.remove_prefix(nul + 1);
  }
  FUZZ_CHECK(rest.size() == 1);  // the list's terminating NUL ends the message
}

// protocol/extended.h: decoders accept one layout, so re-encoding gives the same bytes.
void check_extended_frontend(Bytes body) {
  if (const auto q = decode_query(body)) FUZZ_CHECK(encode_query(*q) == whole('Q', body));
  if (const auto p = decode_parse(body)) {
    FUZZ_CHECK(encode_parse(p->name, p->query, p->param_types) == whole('P', body));
  }
  if (const auto d = decode_describe(body)) {
    FUZZ_CHECK((d->kind == 'S' || d->kind == 'P') && body.size() == d->name.size() + 2);
  }
  if (const auto e = decode_execute_portal(body)) FUZZ_CHECK(body.size() == e->size() + 5);
  const auto b = decode_bind(body);
  if (!b) return;
  FUZZ_CHECK(bind_with_extra_result_columns(body, *b, 1, 0) == whole('B', body));
  const std::string out = bind_with_extra_result_columns(body, *b, 1, 2);
  const Bytes out_body = body_of(out, 'B');
  const auto ob = decode_bind(out_body);
  FUZZ_CHECK(ob && ob->portal == b->portal && ob->statement == b->statement);
  FUZZ_CHECK(ob->result_formats_offset == b->result_formats_offset);
  if (b->n_result_formats == 0 || b->n_result_formats > UINT16_MAX - 2) {
    FUZZ_CHECK(out == whole('B', body));
    return;
  }
  FUZZ_CHECK(ob->n_result_formats == b->n_result_formats + 2);
  for (uint16_t i = 0; i < ob->n_result_formats; ++i) {
    const int16_t want = i < b->n_result_formats ? bind_result_format(body, *b, i) : 0;
    FUZZ_CHECK(bind_result_format(out_body, *ob, i) == want);
  }
}

void check_extended_backend(Bytes body) {
  if (const auto n = row_description_field_count(body)) {
    FUZZ_CHECK(row_description_keep(body, *n) == whole('T', body));
    const auto half = row_description_keep(body, *n / 2);
    FUZZ_CHECK(half && row_description_field_count(body_of(*half, 'T')) == *n / 2);
    if (*n < UINT16_MAX) FUZZ_CHECK(!row_description_keep(body, *n + 1));
  }
  if (data_row_keep(body, 0)) {
    const uint16_t n = read_u16(body.data());
    FUZZ_CHECK(data_row_keep(body, n) == whole('D', body));
    const auto half = data_row_keep(body, n / 2);
    FUZZ_CHECK(half && data_row_keep(body_of(*half, 'D'), n / 2) == half);
    if (n < UINT16_MAX) FUZZ_CHECK(!data_row_keep(body, n + 1));
  } else {
    FUZZ_CHECK(!data_row_first_int(body, false) && !data_row_first_int(body, true));
  }
  const auto keep = [](uint32_t p) { return std::optional<uint32_t>(p); };
  const auto drop = [](uint32_t) { return std::optional<uint32_t>(); };
  const auto kept = error_map_position('N', body, keep);
  if (!kept) {
    FUZZ_CHECK(!error_map_position('E', body, drop));
    return;
  }
  FUZZ_CHECK(error_map_position('N', body_of(*kept, 'N'), keep) == kept);  // normalized
  const auto dropped = error_map_position('E', body, drop);
  FUZZ_CHECK(dropped && dropped->size() <= kept->size());
  FUZZ_CHECK(error_map_position('E', body_of(*dropped, 'E'), keep) == dropped);  // no P left
}

void check_message(uint8_t control, Bytes data) {
  const uint32_t max = (control & 0x80) != 0 ? 256 : kDefaultMaxMessageLength;
  const DecodedMessage d = decode_message(data, max);
  if (data.size() < 5) {
    FUZZ_CHECK(d.status == DecodeStatus::kNeedMore);
  } else if (d.status == DecodeStatus::kBadLength) {
    FUZZ_CHECK(d.length < kMinMessageLength || d.length > max);
  } else if (d.status == DecodeStatus::kNeedMore) {
    FUZZ_CHECK(size_t{d.length} + 1 > data.size());
  } else {
    FUZZ_CHECK(d.type == static_cast<char>(data[0]) && d.total == size_t{d.length} + 1);
    FUZZ_CHECK(d.total <= data.size() && d.body.data() == data.data() + 5);
    FUZZ_CHECK(d.body.size() == d.length - 4);
    check_body(d.body);
    check_extended_frontend(d.body);
    check_extended_backend(d.body);
  }
  check_body(data);
  check_extended_frontend(data);
  check_extended_backend(data);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* raw, size_t size) {
  const Bytes input(raw, size);
  const uint8_t control = size > 0 ? raw[0] : 0;
  const uint8_t seed = size > 1 ? raw[1] : 0;
  const Bytes data = input.subspan(std::min<size_t>(size, 2));
  check_splitter(control, seed, data);
  check_startup(data);
  check_message(control, data);
  return 0;
}
