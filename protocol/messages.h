// Whole-message decoding (for the few messages pgphase must read in full, e.g. during
// authentication) and encoders for the messages pgphase itself sends.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pgphase::protocol {

enum class DecodeStatus : uint8_t { kComplete, kNeedMore, kBadLength };

struct DecodedMessage {
  DecodeStatus status = DecodeStatus::kNeedMore;
  char type = 0;
  std::span<const uint8_t> body;  // valid when kComplete
  size_t total = 0;               // bytes the message occupies (1 + length) when kComplete
  uint32_t length = 0;            // the claimed length (also set for kBadLength)
};

// Looks at the start of `data` for one typed message, without copying.
[[nodiscard]] DecodedMessage decode_message(std::span<const uint8_t> data, uint32_t max_length);

// Fields of an ErrorResponse/NoticeResponse pgphase sends (severity is both S and V).
struct ErrorFields {
  std::string_view severity = "FATAL";
  std::string_view sqlstate;
  std::string_view message;
  std::string_view detail = {};
  std::string_view hint = {};
};
[[nodiscard]] std::string encode_error_response(const ErrorFields& f);
[[nodiscard]] std::string encode_ready_for_query(char tx_status);
[[nodiscard]] std::string encode_backend_key_data(int32_t process_id, int32_t secret_key);
[[nodiscard]] std::string encode_cancel_request(int32_t process_id, int32_t secret_key);
[[nodiscard]] std::string encode_ssl_request();
[[nodiscard]] std::string encode_terminate();

// Reads the SQLSTATE ('C' field) out of an ErrorResponse body; empty when absent or malformed.
[[nodiscard]] std::string_view error_sqlstate(std::span<const uint8_t> body);

// AuthenticationSASL ('R', code 10) lists mechanisms. A proxy cannot take part in channel
// binding (the TLS sessions differ on each side), so "-PLUS" mechanisms are removed. Returns the
// rewritten whole message, or an empty string when `body` is not a SASL request.
[[nodiscard]] std::string strip_channel_binding_mechanisms(std::span<const uint8_t> body);

}  // namespace pgphase::protocol
