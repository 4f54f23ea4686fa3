// Entries of one kind on one worker, keyed by N strings (a migration id; a config id; both): the
// worker finds its entry through a private index by string_view, without allocating once it
// exists; a new key (rare) allocates a stable entry and registers it, under a mutex, where readers
// on other threads find it. Entries are never removed (ids are few).
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pgphase::stats {

template <size_t N>
using Key = std::array<std::string, N>;
template <size_t N>
using KeyView = std::array<std::string_view, N>;

template <size_t N, class Entry>
class KeyedEntries {
 public:
  // The owner's entry for `key`, registered on first use as Entry(make()...): the callables run
  // only then. Owner thread only.
  template <class... Make>
  Entry& get(const KeyView<N>& key, Make&&... make) {
    if (const auto it = index_.find(key); it != index_.end()) return it->second->entry;
    auto node = std::make_unique<Node>(key, make()...);
    Node& n = *node;
    {
      const std::lock_guard lock(mu_);
      nodes_.push_back(std::move(node));
    }
    index_.emplace(n.view(), &n);
    return n.entry;
  }

  // Readers (any thread): f(key, entry) for every registered entry.
  template <class F>
  void for_each(F&& f) const {
    const std::lock_guard lock(mu_);
    for (const auto& n : nodes_) f(n->key, n->entry);
  }

 private:
  // Cache-line aligned: entries of different workers never share a line.
  struct alignas(64) Node {
    template <class... Args>
    explicit Node(const KeyView<N>& k, Args&&... args) : entry(std::forward<Args>(args)...) {
      for (size_t i = 0; i < N; ++i) key[i] = std::string(k[i]);
    }
    KeyView<N> view() const {
      KeyView<N> v;
      for (size_t i = 0; i < N; ++i) v[i] = key[i];
      return v;
    }
    Key<N> key;
    Entry entry;
  };
  struct Hash {
    size_t operator()(const KeyView<N>& k) const noexcept {
      size_t h = 0;
      for (const auto& s : k) h = h * 1000003u ^ std::hash<std::string_view>{}(s);
      return h;
    }
  };

  // Owner only; its views point into the nodes' keys.
  std::unordered_map<KeyView<N>, Node*, Hash> index_;
  mutable std::mutex mu_;  // nodes_: appended by the owner, read by readers
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace pgphase::stats
