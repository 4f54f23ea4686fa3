#include "intercept/read_choice.h"

namespace pgphase::intercept {

namespace {

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

const router::MigrationRoute* route_by_id(const router::RoutingTable* t, std::string_view id) {
  if (t == nullptr) return nullptr;
  for (const auto& r : t->routes()) {
    if (r.migration_id == id) return &r;
  }
  return nullptr;
}

double ReadChooser::next_percent() noexcept {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return static_cast<double>(rng_ % 1000000) / 10000.0;
}

bool ReadChooser::sticky_target(const router::ReadSwitch& s) const {
  const std::string& key =
      s.sticky_key == router::StickyKey::kApplicationName ? identity_.application_name
      : s.sticky_key == router::StickyKey::kClientAddress ? identity_.client_address
                                                          : identity_.user;
  // A stable point in [0, 100): raising the percentage only moves sessions to the target.
  const double point = static_cast<double>(fnv1a(key) % 10000) / 100.0;
  return point < s.percentage;
}

ReadChoice ReadChooser::choose(const router::QueryPlan& p, const router::RoutingTable* t) {
  ReadChoice c;
  if (!p.routes_reads()) return c;
  const router::MigrationRoute* r = route_by_id(t, p.route_ids[static_cast<size_t>(p.read_route)]);
  if (r == nullptr) return c;
  c.read = true;
  if (r->read_mode == router::ReadMode::kTarget) {
    c.target = true;
    return c;
  }
  if (r->read_mode != router::ReadMode::kSwitch) return c;
  const router::ReadSwitch& s = r->read_switch;
  c.config_id = s.config_id;
  switch (s.strategy) {
    case migration::SwitchStrategy::kImmediate:
      c.target = s.percentage >= 100;
      break;
    case migration::SwitchStrategy::kGradual:
      c.target = next_percent() < s.percentage;
      break;
    case migration::SwitchStrategy::kSticky:
      c.target = sticky_target(s);
      break;
    case migration::SwitchStrategy::kCanary: {
      bool match = false;
      for (const auto& u : s.canary_users) match = match || u == identity_.user;
      for (const auto& a : s.canary_applications) match = match || a == identity_.application_name;
      c.target = match && s.percentage > 0;
      break;
    }
    case migration::SwitchStrategy::kShadow:
      c.target = false;  // the client is always answered from the source
      c.shadow = next_percent() < s.percentage;
      break;
  }
  return c;
}

}  // namespace pgphase::intercept
