#include "stats/stats.h"

namespace pgphase::stats {

Stats::Stats(size_t workers, bool routing) : routing_enabled_(routing), routing_(workers) {
  relay_.reserve(workers);
  for (size_t i = 0; i < workers; ++i) relay_.push_back(std::make_unique<StatsShard>());
}

Stats::~Stats() = default;

}  // namespace pgphase::stats
