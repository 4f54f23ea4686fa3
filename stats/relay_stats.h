// The relay's own figures, one shard per worker (sessions of a worker bump its shard only):
// connections, bytes, messages, statements, protocol errors and statement latency.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "protocol/command_tag.h"
#include "stats/counter.h"

namespace pgphase::stats {

enum class ProtocolError : uint8_t {
  kLengthTooShort,
  kLengthTooLong,
  kUnknownType,
  kBadStartupPacket,
  kUnencryptedAfterSsl,
  kTlsHandshake,
  kReplyMismatch,  // a server answer that does not fit the requests pgphase has in flight
  kCount
};
[[nodiscard]] const char* protocol_error_name(ProtocolError e) noexcept;

// Statement latency buckets, in seconds (upper bounds; +Inf is implied).
inline constexpr std::array<double, 16> kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

struct alignas(64) StatsShard {
  Counter client_connections_opened{0};
  Counter client_connections_closed{0};
  Counter backend_connections_opened{0};
  Counter backend_connections_closed{0};
  Counter backend_connect_failures{0};
  Counter cancel_requests{0};
  Counter bytes_client_to_backend{0};
  Counter bytes_backend_to_client{0};
  std::array<Counter, 256> frontend_messages{};
  std::array<Counter, 256> backend_messages{};
  std::array<Counter, static_cast<size_t>(protocol::Command::kCount)> statements{};
  std::array<Counter, static_cast<size_t>(ProtocolError::kCount)> protocol_errors{};
  std::array<Counter, kLatencyBuckets.size() + 1> latency_buckets{};  // non-cumulative
  Counter latency_count{0};
  Counter latency_sum_ns{0};

  void observe_latency_ns(uint64_t ns) noexcept;
};

}  // namespace pgphase::stats
