#include "protocol/extended.h"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "protocol/codes.h"
#include "protocol/wire.h"

namespace pgphase::protocol {

namespace {

using Bytes = std::span<const uint8_t>;

// Bounds-checked cursor over a message body.
class Reader {
 public:
  explicit Reader(Bytes body, size_t pos = 0) : b_(body), pos_(std::min(pos, body.size())) {}

  [[nodiscard]] size_t pos() const { return pos_; }
  [[nodiscard]] bool done() const { return pos_ == b_.size(); }
  [[nodiscard]] Bytes rest() const { return b_.subspan(pos_); }

  // A NUL-terminated string (the view excludes the NUL).
  std::optional<std::string_view> cstring() {
    const uint8_t* begin = b_.data() + pos_;
    const uint8_t* end = b_.data() + b_.size();
    const uint8_t* nul = std::find(begin, end, uint8_t{0});
    if (nul == end) return std::nullopt;
    pos_ += static_cast<size_t>(nul - begin) + 1;
    return std::string_view(reinterpret_cast<const char*>(begin), static_cast<size_t>(nul - begin));
  }
  std::optional<uint8_t> u8() {
    if (done()) return std::nullopt;
    return b_[pos_++];
  }
  std::optional<uint16_t> u16() {
    if (b_.size() - pos_ < 2) return std::nullopt;
    const uint16_t v = read_u16(b_.data() + pos_);
    pos_ += 2;
    return v;
  }
  std::optional<int32_t> i32() {
    if (b_.size() - pos_ < 4) return std::nullopt;
    const int32_t v = read_i32(b_.data() + pos_);
    pos_ += 4;
    return v;
  }
  bool skip(size_t n) {
    if (b_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  // An int32 length (-1: NULL; any other negative length is malformed) and that many bytes.
  bool value(bool& is_null, Bytes& bytes) {
    const auto len = i32();
    if (!len || *len < -1) return false;
    is_null = *len == -1;
    const size_t n = is_null ? 0 : static_cast<size_t>(*len);
    if (b_.size() - pos_ < n) return false;
    bytes = b_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool value() {
    bool is_null = false;
    Bytes bytes;
    return value(is_null, bytes);
  }

 private:
  Bytes b_;
  size_t pos_;
};

// The whole message `type` + length + `body`, unchanged.
std::string whole(char type, Bytes body) {
  std::string out = begin_message(type);
  out.append(reinterpret_cast<const char*>(body.data()), body.size());
  finish_message(out);
  return out;
}

void append_cstring(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

// A body that is an int16 count followed by that many items filling it exactly (RowDescription,
// DataRow). `keep_end` is the offset just past the first `keep` items (2 when keep is 0).
struct CountedList {
  uint16_t count = 0;
  size_t keep_end = 2;
};
template <typename ReadItem>
std::optional<CountedList> walk_list(Bytes body, uint16_t keep, ReadItem read_item) {
  Reader r(body);
  const auto count = r.u16();
  if (!count) return std::nullopt;
  CountedList list{.count = *count};
  for (uint32_t i = 0; i < *count; ++i) {
    if (!read_item(r)) return std::nullopt;
    if (i + 1 == keep) list.keep_end = r.pos();
  }
  if (!r.done()) return std::nullopt;
  return list;
}

// RowDescription field: name, table OID, column number, type OID, type size, typmod, format.
constexpr size_t kFieldFixedBytes = 4 + 2 + 4 + 2 + 4 + 2;

bool read_field(Reader& r) {
  return r.cstring() && r.skip(kFieldFixedBytes);
}
bool read_column(Reader& r) {
  return r.value();
}

// The first `keep` items of a counted list, as a whole `type` message.
std::string keep_prefix(char type, Bytes body, uint16_t keep, size_t keep_end) {
  std::string out = begin_message(type);
  append_u16(out, keep);
  out.append(reinterpret_cast<const char*>(body.data()) + 2, keep_end - 2);
  finish_message(out);
  return out;
}

// True when `m`'s result format codes are exactly the end of `body`.
bool result_formats_fit(Bytes body, const BindMessage& m) {
  return m.result_formats_offset <= body.size() &&
         body.size() - m.result_formats_offset == 2 + size_t{m.n_result_formats} * 2 &&
         read_u16(body.data() + m.result_formats_offset) == m.n_result_formats;
}

}  // namespace

// ---- Frontend ----

std::optional<std::string_view> decode_query(std::span<const uint8_t> body) {
  Reader r(body);
  const auto sql = r.cstring();
  if (!sql || !r.done()) return std::nullopt;
  return sql;
}

std::optional<std::pair<std::string_view, std::string_view>> decode_parameter_status(
    std::span<const uint8_t> body) {
  Reader r(body);
  const auto name = r.cstring();
  const auto value = r.cstring();
  if (!name || !value || !r.done()) return std::nullopt;
  return std::pair{*name, *value};
}

void append_query(std::string& out, std::string_view sql) {
  const size_t start = begin_message(out, fe::kQuery);
  append_cstring(out, sql);
  finish_message(out, start);
}

std::string encode_query(std::string_view sql) {
  std::string out;
  append_query(out, sql);
  return out;
}

std::optional<ParseMessage> decode_parse(std::span<const uint8_t> body) {
  Reader r(body);
  const auto name = r.cstring();
  if (!name) return std::nullopt;
  const auto query = r.cstring();
  if (!query) return std::nullopt;
  const Bytes tail = r.rest();
  const auto count = r.u16();
  if (!count || tail.size() != 2 + size_t{*count} * 4) return std::nullopt;
  return ParseMessage{.name = *name, .query = *query, .param_types = tail};
}

void append_parse(std::string& out, std::string_view name, std::string_view query,
                  std::span<const uint8_t> param_types) {
  const size_t start = begin_message(out, fe::kParse);
  append_cstring(out, name);
  append_cstring(out, query);
  if (param_types.empty()) {
    append_u16(out, 0);
  } else {
    out.append(reinterpret_cast<const char*>(param_types.data()), param_types.size());
  }
  finish_message(out, start);
}

std::string encode_parse(std::string_view name, std::string_view query,
                         std::span<const uint8_t> param_types) {
  std::string out;
  append_parse(out, name, query, param_types);
  return out;
}

std::optional<BindMessage> decode_bind(std::span<const uint8_t> body) {
  Reader r(body);
  const auto portal = r.cstring();
  if (!portal) return std::nullopt;
  const auto statement = r.cstring();
  if (!statement) return std::nullopt;
  const auto n_param_formats = r.u16();
  if (!n_param_formats || !r.skip(size_t{*n_param_formats} * 2)) return std::nullopt;
  const auto n_params = r.u16();
  if (!n_params) return std::nullopt;
  for (uint32_t i = 0; i < *n_params; ++i) {
    if (!r.value()) return std::nullopt;
  }
  const size_t result_formats_offset = r.pos();
  const auto n_result_formats = r.u16();
  if (!n_result_formats || !r.skip(size_t{*n_result_formats} * 2) || !r.done()) {
    return std::nullopt;
  }
  return BindMessage{.portal = *portal,
                     .statement = *statement,
                     .n_result_formats = *n_result_formats,
                     .result_formats_offset = result_formats_offset};
}

std::optional<BindParams> decode_bind_params(std::span<const uint8_t> body) {
  if (!decode_bind(body)) return std::nullopt;  // the whole layout is valid
  Reader r(body);
  (void)r.cstring();
  (void)r.cstring();
  const uint16_t n_formats = *r.u16();
  std::vector<int16_t> formats;
  for (uint16_t i = 0; i < n_formats; ++i) formats.push_back(static_cast<int16_t>(*r.u16()));
  const uint16_t n = *r.u16();
  BindParams out;
  for (uint16_t i = 0; i < n; ++i) {
    bool is_null = false;
    Bytes bytes;
    (void)r.value(is_null, bytes);
    out.values.push_back(is_null ? std::nullopt
                                 : std::optional<std::string_view>(std::string_view(
                                       reinterpret_cast<const char*>(bytes.data()), bytes.size())));
    out.formats.push_back(n_formats == 0   ? int16_t{0}
                          : n_formats == 1 ? formats[0]
                          : i < n_formats  ? formats[i]
                                           : int16_t{0});
  }
  return out;
}

std::string bind_with_extra_result_columns(std::span<const uint8_t> body, const BindMessage& m,
                                           uint16_t client_columns, uint16_t extra) {
  const bool per_column =
      m.n_result_formats > 1 || (m.n_result_formats == 1 && client_columns == 1);
  const uint32_t total = uint32_t{m.n_result_formats} + extra;
  if (!per_column || extra == 0 || total > UINT16_MAX || !result_formats_fit(body, m)) {
    return whole(fe::kBind, body);
  }
  const auto* p = reinterpret_cast<const char*>(body.data());
  std::string out = begin_message(fe::kBind);
  out.append(p, m.result_formats_offset);
  append_u16(out, static_cast<uint16_t>(total));
  out.append(p + m.result_formats_offset + 2, size_t{m.n_result_formats} * 2);
  out.append(size_t{extra} * 2, '\0');  // text format
  finish_message(out);
  return out;
}

int16_t bind_result_format(std::span<const uint8_t> body, const BindMessage& m, uint16_t column) {
  if (m.n_result_formats == 0 || !result_formats_fit(body, m)) return 0;
  const uint16_t i = m.n_result_formats == 1 ? 0 : column;
  if (i >= m.n_result_formats) return 0;
  return static_cast<int16_t>(read_u16(body.data() + m.result_formats_offset + 2 + size_t{i} * 2));
}

std::optional<NamedTarget> decode_describe(std::span<const uint8_t> body) {
  if (body.empty()) return std::nullopt;
  const char kind = static_cast<char>(body[0]);
  if (kind != 'S' && kind != 'P') return std::nullopt;
  Reader r(body, 1);
  const auto name = r.cstring();
  if (!name || !r.done()) return std::nullopt;
  return NamedTarget{.kind = kind, .name = *name};
}

std::optional<std::string_view> decode_execute_portal(std::span<const uint8_t> body) {
  Reader r(body);
  const auto portal = r.cstring();
  if (!portal || !r.i32() || !r.done()) return std::nullopt;
  return portal;
}

// ---- Backend ----

std::optional<uint16_t> row_description_field_count(std::span<const uint8_t> body) {
  const auto list = walk_list(body, 0, read_field);
  if (!list) return std::nullopt;
  return list->count;
}

std::optional<std::string> row_description_keep(std::span<const uint8_t> body, uint16_t keep) {
  const auto list = walk_list(body, keep, read_field);
  if (!list || keep > list->count) return std::nullopt;
  return keep_prefix(be::kRowDescription, body, keep, list->keep_end);
}

std::optional<std::string> data_row_keep(std::span<const uint8_t> body, uint16_t keep) {
  const auto list = walk_list(body, keep, read_column);
  if (!list || keep > list->count) return std::nullopt;
  return keep_prefix(be::kDataRow, body, keep, list->keep_end);
}

std::optional<int64_t> data_row_first_int(std::span<const uint8_t> body, bool binary) {
  const auto list = walk_list(body, 0, read_column);
  if (!list || list->count == 0) return std::nullopt;
  Reader r(body, 2);
  bool is_null = false;
  Bytes v;
  if (!r.value(is_null, v) || is_null) return std::nullopt;
  if (binary) {
    if (v.size() == 8) {
      const uint64_t hi = read_u32(v.data());
      return static_cast<int64_t>((hi << 32) | read_u32(v.data() + 4));
    }
    if (v.size() == 4) return read_i32(v.data());
    return std::nullopt;
  }
  // from_chars takes exactly [-]digits: no '+', spaces or empty text.
  const auto* begin = reinterpret_cast<const char*>(v.data());
  const auto* end = begin + v.size();
  int64_t n = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return n;
}

std::string encode_command_complete(std::string_view tag) {
  std::string out = begin_message(be::kCommandComplete);
  append_cstring(out, tag);
  finish_message(out);
  return out;
}

std::string encode_no_data() {
  std::string out = begin_message(be::kNoData);
  finish_message(out);
  return out;
}

std::optional<std::string> error_map_position(
    char type, std::span<const uint8_t> body,
    const std::function<std::optional<uint32_t>(uint32_t)>& map) {
  std::string out = begin_message(type);
  Reader r(body);
  while (true) {
    const auto byte = r.u8();
    if (!byte) return std::nullopt;  // no terminating 0 byte
    const char code = static_cast<char>(*byte);
    if (code == '\0') break;
    const auto value = r.cstring();
    if (!value) return std::nullopt;
    if (code != 'P') {
      out.push_back(code);
      append_cstring(out, *value);
      continue;
    }
    uint32_t position = 0;
    const char* end = value->data() + value->size();
    const auto [ptr, ec] = std::from_chars(value->data(), end, position);
    if (ec != std::errc{} || ptr != end) continue;  // not a position: drop it
    const std::optional<uint32_t> mapped = map(position);
    if (!mapped) continue;
    out.push_back('P');
    append_cstring(out, std::to_string(*mapped));
  }
  if (!r.done()) return std::nullopt;  // bytes after the terminator
  out.push_back('\0');
  finish_message(out);
  return out;
}

}  // namespace pgphase::protocol
