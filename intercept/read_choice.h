// Where a routed read goes, chosen per execution from the read switch of its migration: source
// or target, and whether it is also compared on both tables (strategy shadow).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "router/query_plan.h"
#include "router/routing_table.h"

namespace pgphase::intercept {

// Who the session is, for sticky and canary read switches.
struct SessionIdentity {
  std::string user;
  std::string application_name;
  std::string client_address;
};

struct ReadChoice {
  bool read = false;
  bool target = false;
  bool shadow = false;         // also compare this read on both tables (strategy shadow)
  router::SharedId config_id;  // null: not counted (cleanup/completed read the target always)
};

// The route of migration `id` in `t` (nullptr: none, or no table).
[[nodiscard]] const router::MigrationRoute* route_by_id(const router::RoutingTable* t,
                                                        std::string_view id);

class ReadChooser {
 public:
  // `seed` (not 0) starts the gradual and shadow draws.
  ReadChooser(SessionIdentity identity, uint64_t seed)
      : identity_(std::move(identity)), rng_(seed) {}

  // Picks the side for `p`'s reads under routing table `t`.
  [[nodiscard]] ReadChoice choose(const router::QueryPlan& p, const router::RoutingTable* t);
  // Whether this session falls in a sticky switch's percentage.
  [[nodiscard]] bool sticky_target(const router::ReadSwitch& s) const;

 private:
  // A uniform draw in [0, 100) with 4 decimals (xorshift).
  double next_percent() noexcept;

  SessionIdentity identity_;
  uint64_t rng_;
};

}  // namespace pgphase::intercept
