// Process metrics. The relay path writes plain per-worker counters (one writer per shard, relaxed
// atomics, no lock prefix, no shared cache lines); a scrape sums the shards and renders them with
// prometheus-cpp's text serializer together with the families later modules register.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/command_tag.h"

namespace prometheus {
class Collectable;
class Registry;
}  // namespace prometheus

namespace pgphase::admin {

using Counter = std::atomic<uint64_t>;

// Single-writer increment: a load and a store, no read-modify-write instruction.
inline void bump(Counter& c, uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

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

class Metrics {
 public:
  explicit Metrics(size_t shards);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  [[nodiscard]] StatsShard& shard(size_t i) noexcept { return *shards_[i]; }
  [[nodiscard]] size_t shard_count() const noexcept { return shards_.size(); }
  // Where other modules register their own prometheus-cpp families.
  [[nodiscard]] prometheus::Registry& registry() noexcept { return *registry_; }
  // Collectables rendered on every scrape besides the registry (prometheus-cpp 1.0's Registry
  // holds only families it built). Dropped once the owner releases them.
  void add_collectable(std::weak_ptr<const prometheus::Collectable> collectable);
  // The Prometheus text exposition format (version 0.0.4).
  [[nodiscard]] std::string render() const;

 private:
  std::vector<std::unique_ptr<StatsShard>> shards_;
  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex collectables_mutex_;
  std::vector<std::weak_ptr<const prometheus::Collectable>> collectables_;
};

}  // namespace pgphase::admin
