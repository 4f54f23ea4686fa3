// What one pass of a MessageSplitter sends on: runs of the input chunk, forwarded in place (never
// copied), and bytes pgphase made (rewritten or answered messages, a header that straddled two
// chunks), in order. PgBouncer's sbuf model: the caller writes the runs with one gather write
// while the chunk is still alive. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pgphase::protocol {

class Splice {
 public:
  // A run: `chunk` != nullptr points into the input chunk; else `offset` into owned().
  struct Run {
    const uint8_t* chunk;
    size_t offset;
    size_t length;
  };

  void clear() noexcept {
    owned_.clear();
    runs_.clear();
  }
  // Bytes of the input chunk, forwarded as they are (joined to the previous run when adjacent).
  void forward(const uint8_t* p, size_t n) {
    if (n == 0) return;
    if (!runs_.empty() && runs_.back().chunk != nullptr &&
        runs_.back().chunk + runs_.back().length == p) {
      runs_.back().length += n;
      return;
    }
    runs_.push_back({p, 0, n});
  }
  // The buffer pgphase appends its own bytes to; mark_owned(start) then records what was added
  // since owned().size() was `start`.
  std::string& owned() noexcept { return owned_; }
  void mark_owned(size_t start) {
    const size_t n = owned_.size() - start;
    if (n == 0) return;
    if (!runs_.empty() && runs_.back().chunk == nullptr &&
        runs_.back().offset + runs_.back().length == start) {
      runs_.back().length += n;
      return;
    }
    runs_.push_back({nullptr, start, n});
  }
  void append_owned(const uint8_t* p, size_t n) {
    const size_t start = owned_.size();
    owned_.append(reinterpret_cast<const char*>(p), n);
    mark_owned(start);
  }

  [[nodiscard]] bool empty() const noexcept { return runs_.empty(); }
  [[nodiscard]] size_t size() const noexcept {
    size_t n = 0;
    for (const Run& r : runs_) n += r.length;
    return n;
  }
  [[nodiscard]] size_t runs() const noexcept { return runs_.size(); }
  // Run i's bytes (valid while the input chunk is alive and owned() unchanged).
  [[nodiscard]] std::span<const uint8_t> run(size_t i) const noexcept {
    const Run& r = runs_[i];
    return {
        r.chunk != nullptr ? r.chunk : reinterpret_cast<const uint8_t*>(owned_.data()) + r.offset,
        r.length};
  }
  // Whether run i is forwarded from the chunk (for tests).
  [[nodiscard]] bool forwarded(size_t i) const noexcept { return runs_[i].chunk != nullptr; }
  // All runs as one string (tests, fuzzing).
  [[nodiscard]] std::string joined() const {
    std::string s;
    for (size_t i = 0; i < runs_.size(); ++i) {
      const auto r = run(i);
      s.append(reinterpret_cast<const char*>(r.data()), r.size());
    }
    return s;
  }

 private:
  std::string owned_;
  std::vector<Run> runs_;
};

}  // namespace pgphase::protocol
