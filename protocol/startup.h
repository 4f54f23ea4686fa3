// Decoding of the first packet a client sends: StartupMessage, SSLRequest, GSSENCRequest or
// CancelRequest. These have no type byte: int32 length, int32 code, then a code-specific body.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace pgphase::protocol {

struct SslRequest {};
struct GssEncRequest {};
struct CancelRequest {
  int32_t process_id = 0;
  int32_t secret_key = 0;
};
struct StartupMessage {
  int32_t protocol_version = 0;
  std::vector<std::pair<std::string, std::string>> parameters;
  [[nodiscard]] const std::string* find(std::string_view key) const;
};
struct StartupError {
  std::string message;  // human-readable, suitable for an 08P01 ErrorResponse
};

using StartupPacket =
    std::variant<SslRequest, GssEncRequest, CancelRequest, StartupMessage, StartupError>;

// How many bytes the first packet occupies, from its 4-byte length prefix; 0 if fewer than 4
// bytes are available yet. Validates the length against [8, kMaxStartupPacketLength].
struct StartupLength {
  bool need_more = false;
  bool valid = false;
  uint32_t length = 0;
};
[[nodiscard]] StartupLength startup_packet_length(std::span<const uint8_t> data) noexcept;

// Decodes one complete first packet (`packet` is exactly `length` bytes, length prefix included).
[[nodiscard]] StartupPacket decode_startup_packet(std::span<const uint8_t> packet);

// True when the startup parameters ask for a replication connection ("replication" set to
// anything PostgreSQL reads as true or "database").
[[nodiscard]] bool wants_replication(const StartupMessage& m);

// Re-encodes a StartupMessage (used when pgphase must forward one it decoded).
[[nodiscard]] std::string encode_startup_message(const StartupMessage& m);

}  // namespace pgphase::protocol
