// Maps the BackendKeyData pgphase hands to clients onto the backend's own key. Clients cancel
// with pgphase's key; pgphase forwards a CancelRequest with the backend's key to the backend.
// Touched only at session start/end and on cancel: a mutex is fine here.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>

namespace pgphase::proxy {

struct BackendKey {
  int32_t process_id = 0;
  int32_t secret_key = 0;
  friend bool operator==(const BackendKey&, const BackendKey&) = default;
};

class CancelRegistry {
 public:
  CancelRegistry();
  // Records a backend key and returns the unique key the client gets instead.
  [[nodiscard]] BackendKey add(BackendKey backend);
  void remove(BackendKey client_key) noexcept;
  [[nodiscard]] std::optional<BackendKey> find(BackendKey client_key) const;
  [[nodiscard]] size_t size() const;

 private:
  static uint64_t pack(BackendKey k) noexcept {
    return (uint64_t{static_cast<uint32_t>(k.process_id)} << 32) |
           static_cast<uint32_t>(k.secret_key);
  }
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::unordered_map<uint64_t, BackendKey> keys_;
};

}  // namespace pgphase::proxy
