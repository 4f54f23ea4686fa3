#include "stats/relay_stats.h"

#include <algorithm>

namespace pgphase::stats {

const char* protocol_error_name(ProtocolError e) noexcept {
  switch (e) {
    case ProtocolError::kLengthTooShort:
      return "length_too_short";
    case ProtocolError::kLengthTooLong:
      return "length_too_long";
    case ProtocolError::kUnknownType:
      return "unknown_message_type";
    case ProtocolError::kBadStartupPacket:
      return "bad_startup_packet";
    case ProtocolError::kUnencryptedAfterSsl:
      return "unencrypted_data_after_ssl_request";
    case ProtocolError::kTlsHandshake:
      return "tls_handshake";
    case ProtocolError::kReplyMismatch:
      return "unexpected_server_reply";
    case ProtocolError::kCount:
      break;
  }
  return "other";
}

void StatsShard::observe_latency_ns(uint64_t ns) noexcept {
  const double seconds = static_cast<double>(ns) / 1e9;
  const auto it = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds);
  bump(latency_buckets[static_cast<size_t>(it - kLatencyBuckets.begin())]);
  bump(latency_count);
  bump(latency_sum_ns, ns);
}

}  // namespace pgphase::stats
