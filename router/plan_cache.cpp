#include "router/plan_cache.h"

namespace pgphase::router {

void PlanCache::reset(uint64_t generation) {
  lru_.clear();
  map_.clear();
  bytes_ = 0;
  generation_ = generation;
}

const CachedPlan* PlanCache::find(uint64_t generation, std::string_view key) {
  if (generation != generation_) reset(generation);
  const auto it = map_.find(key);
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second.plan;
}

void PlanCache::insert(uint64_t generation, std::string_view key, CachedPlan plan) {
  if (generation != generation_) reset(generation);
  // A plain pass-through plan costs only its key; texts bigger than the whole cache are skipped.
  const size_t cost = key.size() * 2 + 96 +
                      (plan.shape  ? plan.shape->bytes()
                       : plan.plan ? plan.plan->bytes()
                                   : 0);
  if (cost > max_bytes_) return;
  if (map_.find(key) != map_.end()) return;
  while (bytes_ + cost > max_bytes_ && !lru_.empty()) {
    const auto victim = map_.find(lru_.back());
    bytes_ -= victim->second.bytes;
    lru_.pop_back();
    map_.erase(victim);
  }
  auto [it, inserted] = map_.emplace(std::string(key), Entry{std::move(plan), {}, cost});
  lru_.push_front(it->first);
  it->second.lru = lru_.begin();
  bytes_ += cost;
}

}  // namespace pgphase::router
