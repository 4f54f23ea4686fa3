// What every framer of a v3 connection shares: the direction, the view of one message that its
// callback sees (type, length, first body bytes), and the one check of a message header.
// protocol/message_splitter.h is the framer; this header is what other code needs of it
// without the splitter itself. Pure: no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/codes.h"
#include "protocol/wire.h"

namespace pgphase::protocol {

enum class Direction : uint8_t { kFrontend, kBackend };

// How many body bytes a framer shows before the caller decides about a message. Enough for
// CommandComplete tags ("INSERT 0 1234567890"), ReadyForQuery's status byte, the SQLSTATE field of
// a short ErrorResponse, and the authentication code of 'R'.
inline constexpr size_t kPeekBytes = 32;

// One message as a framer sees it: header plus a prefix of the body.
struct MessageView {
  char type = 0;
  uint32_t length = 0;            // as on the wire: counts the 4 length bytes, not the type byte
  std::span<const uint8_t> peek;  // first min(length - 4, kPeekBytes) body bytes
  [[nodiscard]] uint32_t body_length() const noexcept { return length - 4; }
};

enum class ScanError : uint8_t { kNone, kLengthTooShort, kLengthTooLong, kUnknownType };

[[nodiscard]] const char* describe(ScanError e) noexcept;

namespace detail {
constexpr std::array<bool, 256> make_type_table(const char* types) {
  std::array<bool, 256> t{};
  for (const char* c = types; *c != '\0'; ++c) t[static_cast<uint8_t>(*c)] = true;
  return t;
}
// Every message type a client may send after startup (docs, "Message Formats": F markers).
inline constexpr auto kFrontendTypes = make_type_table("BCDEFHPQSXdcfp");
// Every message type a server may send (B markers), including COPY both ways.
inline constexpr auto kBackendTypes = make_type_table("123ACDEGHIKNRSTVWZnstvdc");
}  // namespace detail

[[nodiscard]] inline bool is_known_message_type(Direction dir, uint8_t type) noexcept {
  return dir == Direction::kFrontend ? detail::kFrontendTypes[type] : detail::kBackendTypes[type];
}

// A header's length is checked before its type: a short length of an unknown type is a length
// error.
[[nodiscard]] inline ScanError check_header(Direction dir, uint32_t max_length, uint8_t type,
                                            uint32_t length) noexcept {
  if (length < kMinMessageLength) return ScanError::kLengthTooShort;
  if (length > max_length) return ScanError::kLengthTooLong;
  if (!is_known_message_type(dir, type)) return ScanError::kUnknownType;
  return ScanError::kNone;
}

}  // namespace pgphase::protocol
