#include "proxy/cancel_registry.h"

namespace pgphase::proxy {

CancelRegistry::CancelRegistry() : rng_(std::random_device{}()) {}

BackendKey CancelRegistry::add(BackendKey backend) {
  std::lock_guard lock(mu_);
  for (;;) {
    const uint64_t r = rng_();
    // A positive process id, as PostgreSQL's are; the secret is the full 32 random bits.
    BackendKey k{static_cast<int32_t>((r >> 33) | 1u),
                 static_cast<int32_t>(static_cast<uint32_t>(r))};
    if (keys_.try_emplace(pack(k), backend).second) return k;
  }
}

void CancelRegistry::remove(BackendKey client_key) noexcept {
  std::lock_guard lock(mu_);
  keys_.erase(pack(client_key));
}

std::optional<BackendKey> CancelRegistry::find(BackendKey client_key) const {
  std::lock_guard lock(mu_);
  if (auto it = keys_.find(pack(client_key)); it != keys_.end()) return it->second;
  return std::nullopt;
}

size_t CancelRegistry::size() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

}  // namespace pgphase::proxy
