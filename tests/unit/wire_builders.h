// Small helpers shared by the protocol unit tests: build wire bytes without the code under test.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocol/wire.h"

namespace pgphase::test {

// A typed v3 message: type byte, int32 length (counting itself), body.
inline std::string msg(char type, std::string_view body) {
  std::string out(1, type);
  protocol::append_u32(out, static_cast<uint32_t>(body.size() + 4));
  out.append(body);
  return out;
}

// A header with an arbitrary (possibly invalid) length and no body.
inline std::string header(char type, uint32_t length) {
  std::string out(1, type);
  protocol::append_u32(out, length);
  return out;
}

inline std::string i32(int32_t v) {
  std::string out;
  protocol::append_i32(out, v);
  return out;
}

inline std::string i16(int16_t v) {
  std::string out;
  protocol::append_u16(out, static_cast<uint16_t>(v));
  return out;
}

// NUL-terminated string as the protocol writes it.
inline std::string cstr(std::string_view s) {
  return std::string(s) + '\0';
}

inline std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

inline std::string str(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace pgphase::test
