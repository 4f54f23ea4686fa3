#include "protocol/startup.h"

#include <algorithm>
#include <cctype>

#include "protocol/codes.h"
#include "protocol/wire.h"

namespace pgphase::protocol {

const std::string* StartupMessage::find(std::string_view key) const {
  for (const auto& [k, v] : parameters) {
    if (k == key) return &v;
  }
  return nullptr;
}

StartupLength startup_packet_length(std::span<const uint8_t> data) noexcept {
  if (data.size() < 4) return {.need_more = true};
  const uint32_t len = read_u32(data.data());
  // A packet must hold at least its length and a 4-byte code.
  if (len < 8 || len > kMaxStartupPacketLength) return {.valid = false, .length = len};
  return {.valid = true, .length = len};
}

StartupPacket decode_startup_packet(std::span<const uint8_t> packet) {
  if (packet.size() < 8) return StartupError{"startup packet too short"};
  const uint32_t len = read_u32(packet.data());
  if (len != packet.size()) return StartupError{"startup packet length mismatch"};
  const int32_t code = read_i32(packet.data() + 4);
  switch (code) {
    case kSSLRequestCode:
      if (len != 8) return StartupError{"invalid SSLRequest length"};
      return SslRequest{};
    case kGSSENCRequestCode:
      if (len != 8) return StartupError{"invalid GSSENCRequest length"};
      return GssEncRequest{};
    case kCancelRequestCode:
      if (len != 16) return StartupError{"invalid CancelRequest length"};
      return CancelRequest{read_i32(packet.data() + 8), read_i32(packet.data() + 12)};
    default:
      break;
  }
  const int major = code >> 16;
  if (major != 3) {
    return StartupError{"unsupported frontend protocol " + std::to_string(major) + "." +
                        std::to_string(code & 0xFFFF) + ": server supports 3.0"};
  }
  StartupMessage m;
  m.protocol_version = code;
  // Body: pairs of NUL-terminated strings, ended by an empty name (one extra NUL).
  const auto* p = reinterpret_cast<const char*>(packet.data()) + 8;
  const auto* const end = reinterpret_cast<const char*>(packet.data()) + packet.size();
  auto next_string = [&](std::string& out) -> bool {
    const char* nul = std::find(p, end, '\0');
    if (nul == end) return false;
    out.assign(p, nul);
    p = nul + 1;
    return true;
  };
  for (;;) {
    std::string key;
    if (!next_string(key))
      return StartupError{"invalid startup packet layout: expected terminator"};
    if (key.empty()) break;
    std::string value;
    if (!next_string(value)) {
      return StartupError{"invalid startup packet layout: missing value for \"" + key + "\""};
    }
    m.parameters.emplace_back(std::move(key), std::move(value));
  }
  if (p != end) return StartupError{"invalid startup packet layout: trailing bytes"};
  if (m.find("user") == nullptr)
    return StartupError{"no PostgreSQL user name specified in startup packet"};
  return m;
}

bool wants_replication(const StartupMessage& m) {
  const std::string* v = m.find("replication");
  if (v == nullptr) return false;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  // PostgreSQL's parse_bool (utils/adt/bool.c) reads as false any non-empty prefix of "false" or
  // "no", "of"/"off" (two letters at least) and "0"; anything else (true, on, 1, database) asks
  // for a walsender or is refused by the server.
  const std::string_view sv = s;
  const bool is_false =
      !sv.empty() &&
      (std::string_view("false").starts_with(sv) || std::string_view("no").starts_with(sv) ||
       (sv.size() >= 2 && std::string_view("off").starts_with(sv)) || sv == "0");
  return !is_false;
}

std::string encode_startup_message(const StartupMessage& m) {
  std::string out;
  append_u32(out, 0);  // patched below
  append_i32(out, m.protocol_version);
  for (const auto& [k, v] : m.parameters) {
    out.append(k).push_back('\0');
    out.append(v).push_back('\0');
  }
  out.push_back('\0');
  put_u32(out.data(), static_cast<uint32_t>(out.size()));
  return out;
}

}  // namespace pgphase::protocol
