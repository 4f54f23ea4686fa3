// Analysis results by query text, bounded in bytes (texts and plans), least recently used out
// first. One per worker thread: no locks. Cleared when the routing table changes.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "router/query_plan.h"

namespace pgphase::router {

class PlanCache {
 public:
  explicit PlanCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // nullptr when absent (or cached for another routing generation).
  [[nodiscard]] std::shared_ptr<const QueryPlan> find(uint64_t generation, std::string_view sql);
  void insert(uint64_t generation, std::string_view sql, std::shared_ptr<const QueryPlan> plan);

  [[nodiscard]] size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] size_t entries() const noexcept { return map_.size(); }
  [[nodiscard]] uint64_t hits() const noexcept { return hits_; }
  [[nodiscard]] uint64_t misses() const noexcept { return misses_; }

 private:
  struct Entry {
    std::shared_ptr<const QueryPlan> plan;
    std::list<std::string_view>::iterator lru;
    size_t bytes;
  };
  void reset(uint64_t generation);

  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t generation_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  std::list<std::string_view> lru_;  // most recent first; views into map_'s keys
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map_;
};

}  // namespace pgphase::router
