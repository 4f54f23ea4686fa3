// Per-worker list of live sessions, so shutdown can reach each one. Used only on the worker's
// own thread (shutdown posts onto it), so it needs no lock.
#pragma once

#include <cstddef>
#include <unordered_set>

namespace pgphase::proxy {

class SessionTracker {
 public:
  struct Entry {
    virtual ~Entry() = default;
    // force=false: close when idle (at once if idle now); force=true: close now.
    virtual void shutdown(bool force) = 0;
    // Called about once a second when a session timeout is configured (proxy/config.h).
    virtual void sweep() = 0;
  };

  void add(Entry* e) { live_.insert(e); }
  void remove(Entry* e) noexcept { live_.erase(e); }
  [[nodiscard]] size_t size() const noexcept { return live_.size(); }
  [[nodiscard]] bool draining() const noexcept { return draining_; }

  void sweep_all() {
    const std::unordered_set<Entry*> copy = live_;
    for (Entry* e : copy) {
      if (live_.contains(e)) e->sweep();
    }
  }

  void shutdown_all(bool force) {
    draining_ = true;
    // Entries may remove themselves while being told; iterate over a copy.
    const std::unordered_set<Entry*> copy = live_;
    for (Entry* e : copy) {
      if (live_.contains(e)) e->shutdown(force);
    }
  }

 private:
  std::unordered_set<Entry*> live_;
  bool draining_ = false;
};

}  // namespace pgphase::proxy
