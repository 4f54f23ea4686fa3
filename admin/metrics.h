// Process metrics: the workers' figures (stats/stats.h: per-worker shards, one writer each, merged
// here) rendered at scrape time with prometheus-cpp's text serializer, together with the families
// later modules register.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace prometheus {
class Collectable;
class Registry;
}  // namespace prometheus

namespace pgphase::stats {
class Stats;
}

namespace pgphase::admin {

class Metrics {
 public:
  explicit Metrics(const stats::Stats& stats);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Where other modules register their own prometheus-cpp families.
  [[nodiscard]] prometheus::Registry& registry() noexcept { return *registry_; }
  // Collectables rendered on every scrape besides the registry (prometheus-cpp 1.0's Registry
  // holds only families it built). Dropped once the owner releases them.
  void add_collectable(std::weak_ptr<const prometheus::Collectable> collectable);
  // The Prometheus text exposition format (version 0.0.4).
  [[nodiscard]] std::string render() const;

 private:
  const stats::Stats& stats_;
  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex collectables_mutex_;
  std::vector<std::weak_ptr<const prometheus::Collectable>> collectables_;
};

}  // namespace pgphase::admin
