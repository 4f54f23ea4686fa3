#include "protocol/framing.h"

namespace pgphase::protocol {

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
