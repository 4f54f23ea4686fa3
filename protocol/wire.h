// Big-endian integer helpers for the v3 wire format (all integers are network byte order) and
// the typed-message header writers shared by the encoders.
#pragma once

#include <cstdint>
#include <string>

namespace pgphase::protocol {

[[nodiscard]] inline uint32_t read_u32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
[[nodiscard]] inline int32_t read_i32(const uint8_t* p) noexcept {
  return static_cast<int32_t>(read_u32(p));
}
[[nodiscard]] inline uint16_t read_u16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

inline void append_u32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}
inline void append_i32(std::string& out, int32_t v) {
  append_u32(out, static_cast<uint32_t>(v));
}
inline void append_u16(std::string& out, uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 2);
}
inline void put_u32(char* p, uint32_t v) noexcept {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

// Appends the start of a typed message to `out`: type byte and a length placeholder that
// finish_message(out, start) fills in. Returns where the message starts.
inline size_t begin_message(std::string& out, char type) {
  const size_t start = out.size();
  out.push_back(type);
  append_u32(out, 0);
  return start;
}
// Sets the length of the message begun at `start`, the last one in `out` (it counts itself, not
// the type).
inline void finish_message(std::string& out, size_t start) noexcept {
  put_u32(out.data() + start + 1, static_cast<uint32_t>(out.size() - start - 1));
}
// The same for a string holding only that message.
[[nodiscard]] inline std::string begin_message(char type) {
  std::string out;
  begin_message(out, type);
  return out;
}
inline void finish_message(std::string& out) noexcept {
  finish_message(out, 0);
}

}  // namespace pgphase::protocol
