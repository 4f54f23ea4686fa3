#include "protocol/frame_scanner.h"

namespace pgphase::protocol {
namespace {

constexpr std::array<bool, 256> make_table(const char* types) {
  std::array<bool, 256> t{};
  for (const char* c = types; *c != '\0'; ++c) t[static_cast<uint8_t>(*c)] = true;
  return t;
}

// Every message type a client may send after startup (docs, "Message Formats": F markers).
constexpr auto kFrontendTypes = make_table("BCDEFHPQSXdcfp");
// Every message type a server may send (B markers), including COPY both ways.
constexpr auto kBackendTypes = make_table("123ACDEGHIKNRSTVWZnstvdc");

}  // namespace

bool is_known_message_type(Direction dir, uint8_t type) noexcept {
  return dir == Direction::kFrontend ? kFrontendTypes[type] : kBackendTypes[type];
}

const char* describe(ScanError e) noexcept {
  switch (e) {
    case ScanError::kNone:
      return "no error";
    case ScanError::kLengthTooShort:
      return "invalid message length (shorter than 4 bytes)";
    case ScanError::kLengthTooLong:
      return "message length exceeds the configured maximum";
    case ScanError::kUnknownType:
      return "unknown message type";
  }
  return "unknown scan error";
}

}  // namespace pgphase::protocol
