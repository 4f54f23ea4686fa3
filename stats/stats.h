// Every worker's figures in one place: its relay shard and its routing shard. Built by the
// application for the proxy's worker count; the proxy's workers write them, the admin API, the
// alerting and the auto-rollback read them (one source).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "stats/relay_stats.h"
#include "stats/routing_stats.h"

namespace pgphase::stats {

class Stats {
 public:
  // `routing`: the proxy routes statements (it has a control plane), so routing figures exist
  // (rendered even while zero).
  Stats(size_t workers, bool routing);
  ~Stats();
  Stats(const Stats&) = delete;
  Stats& operator=(const Stats&) = delete;

  [[nodiscard]] size_t workers() const noexcept { return relay_.size(); }
  [[nodiscard]] StatsShard& relay(size_t worker) noexcept { return *relay_[worker]; }
  [[nodiscard]] const StatsShard& relay(size_t worker) const noexcept { return *relay_[worker]; }
  [[nodiscard]] bool routing_enabled() const noexcept { return routing_enabled_; }
  [[nodiscard]] RoutingStats& routing() noexcept { return routing_; }
  [[nodiscard]] const RoutingStats& routing() const noexcept { return routing_; }

 private:
  std::vector<std::unique_ptr<StatsShard>> relay_;
  bool routing_enabled_;
  RoutingStats routing_;
};

}  // namespace pgphase::stats
