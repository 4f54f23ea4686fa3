// libFuzzer target over protocol/ decoders, built with clang by run_fuzz.sh.
//
// Input: byte 0 picks the direction (bit 0) and the maximum message length (bits 1-2), byte 1
// seeds the chunk sizes; the rest is the payload. The payload is scanned as one chunk and in
// pseudo-random chunks (both must agree), then decoded as a first packet and as a typed message;
// the message body and the raw payload also go through every body decoder (messages.h, extended.h).
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
#include "protocol/frame_scanner.h"
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
  ScanResult error;
  size_t chunk_start = 0;  // stream offset of the chunk that reported the error
  bool boundary = false;   // at_boundary() at the end
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

// Scans `data` in chunks of 0..max_chunk bytes (max_chunk 0: one chunk), checking invariants.
Outcome scan(Direction dir, uint32_t max, Bytes data, size_t max_chunk, uint32_t rng) {
  FrameScanner s(dir, max);
  Outcome out;
  size_t pos = 0;
  do {
    size_t n = data.size() - pos;
    if (max_chunk != 0) {
      rng ^= rng << 13;
      rng ^= rng >> 17;
      rng ^= rng << 5;
      n = std::min(n, size_t{rng % (max_chunk + 1)});
    }
    const Bytes chunk = data.subspan(pos, n);
    const ScanResult r = s.scan(chunk, [&](const MessageView& v) {
      FUZZ_CHECK(v.length >= kMinMessageLength && v.length <= max);
      FUZZ_CHECK(is_known_message_type(dir, static_cast<uint8_t>(v.type)));
      FUZZ_CHECK(v.peek.size() == std::min<size_t>(v.body_length(), FrameScanner::kPeekBytes));
      out.views.push_back({v.type, v.length, {v.peek.begin(), v.peek.end()}});
    });
    if (r.error != ScanError::kNone) {
      FUZZ_CHECK(r.valid_bytes <= chunk.size());
      FUZZ_CHECK(!s.at_boundary());
      const ScanResult again = s.scan(chunk, [](const MessageView&) { FUZZ_CHECK(false); });
      FUZZ_CHECK(again.error == r.error && again.valid_bytes == 0);
      out.error = r;
      out.chunk_start = pos;
      return out;
    }
    pos += n;
  } while (pos < data.size());
  out.boundary = s.at_boundary();
  return out;
}

// The scanner's contract restated as a plain walk over a complete buffer.
Outcome reference(Direction dir, uint32_t max, Bytes data) {
  Outcome out;
  size_t pos = 0;
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
      out.error = {e, pos, type, length};
      return out;
    }
    const size_t peek = std::min<size_t>(length - 4, FrameScanner::kPeekBytes);
    if (data.size() - pos - 5 < peek) return out;
    const auto* p = reinterpret_cast<const char*>(data.data() + pos + 5);
    out.views.push_back({type, length, {p, peek}});
    if (data.size() - pos - 1 < length) return out;
    pos += size_t{length} + 1;
  }
  out.boundary = pos == data.size();
  return out;
}

void check_scanner(uint8_t control, uint8_t seed, Bytes data) {
  static constexpr uint32_t kMaxLengths[] = {kDefaultMaxMessageLength, 4, 64, 1024};
  const Direction dir = (control & 1) != 0 ? Direction::kBackend : Direction::kFrontend;
  const uint32_t max = kMaxLengths[(control >> 1) & 3];
  const Outcome whole = scan(dir, max, data, 0, 0);
  const Outcome split = scan(dir, max, data, seed % 64 + 1, seed * 2654435761u | 1u);
  const Outcome expected = reference(dir, max, data);
  FUZZ_CHECK(whole.views == expected.views);
  FUZZ_CHECK(whole.error.error == expected.error.error);
  FUZZ_CHECK(whole.error.valid_bytes == expected.error.valid_bytes);
  FUZZ_CHECK(whole.boundary == expected.boundary);
  FUZZ_CHECK(whole.views == split.views);
  FUZZ_CHECK(whole.error.error == split.error.error);
  if (whole.error.error == ScanError::kNone) {
    FUZZ_CHECK(whole.boundary == split.boundary);
    return;
  }
  FUZZ_CHECK(whole.error.bad_type == split.error.bad_type);
  FUZZ_CHECK(whole.error.bad_length == split.error.bad_length);
  // The bad header starts at whole.valid_bytes; a chunk that starts later reports 0.
  const size_t at = whole.error.valid_bytes;
  FUZZ_CHECK(split.error.valid_bytes == (at >= split.chunk_start ? at - split.chunk_start : 0));
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
  check_scanner(control, seed, data);
  check_startup(data);
  check_message(control, data);
  return 0;
}
