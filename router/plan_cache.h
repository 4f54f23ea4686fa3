// Analysis results by query text or by shape (statement_shape.h), bounded in bytes (keys, plans
// and templates), least recently used out first. One per worker thread: no locks. Cleared when
// the routing table changes. plan_lookup.h says which key a text is found by.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "router/query_plan.h"
#include "router/statement_shape.h"
#include "router/text_template.h"

namespace pgphase::router {

// The plan of every text of one shape, as a template: the plan of the text first planned, with
// its literals, and its texts described so that they render for another text of the shape.
struct ShapePlan {
  std::shared_ptr<const QueryPlan> plan;
  std::vector<Literal> literals;
  TextTemplate sql;
  TextTemplate sql_target;
  [[nodiscard]] size_t bytes() const noexcept {
    return sizeof(ShapePlan) + plan->bytes() + literals.capacity() * sizeof(Literal) + sql.bytes() +
           sql_target.bytes();
  }
};

struct CachedPlan {
  // The plan of the text (cached by text), or of every text of the shape when `shape` is null
  // (a plan whose texts are the client's own: nothing rewritten, no read routed).
  std::shared_ptr<const QueryPlan> plan;
  std::shared_ptr<const ShapePlan> shape;
};

class PlanCache {
 public:
  explicit PlanCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // nullptr when absent (or cached for another routing generation).
  [[nodiscard]] const CachedPlan* find(uint64_t generation, std::string_view key);
  void insert(uint64_t generation, std::string_view key, CachedPlan plan);

  [[nodiscard]] size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] size_t entries() const noexcept { return map_.size(); }
  [[nodiscard]] uint64_t hits() const noexcept { return hits_; }
  [[nodiscard]] uint64_t misses() const noexcept { return misses_; }

 private:
  struct Entry {
    CachedPlan plan;
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
